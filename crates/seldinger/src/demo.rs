//! The demo department: rooms, a day's list across every lifecycle state, referrals waiting to be
//! vetted, and patients with drugs, allergies and labs. Entirely synthetic; the same seed and day
//! give the same department. Every change goes through the domain and store exactly as the API's
//! do, so the demo's histories are real histories.

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seldinger_domain::assessment::{Consent, PreAssessment, Setting};
use seldinger_domain::catalogue::{AccessRoute, SheathFrench, VascularAccess};
use seldinger_domain::catalogue::{GuidanceModality, Procedure, ProcedureCatalogue};
use seldinger_domain::clinical::{LabResult, LabTest, Medication};
use seldinger_domain::device_registry::{tasks_settled_by, DeviceEvent, TrackedDevice};
use seldinger_domain::dose::{Gray, GrayMetre, GrayMetreSquared, Seconds};
use seldinger_domain::dose_link::LinkBasis;
use seldinger_domain::followup::{FollowUpTask, OutcomeFinding};
use seldinger_domain::lifecycle::{Case, CaseEvent, CaseState, StudyIdentity, TimeOut};
use seldinger_domain::patient::{AllergyInput, PatientDetails, PatientInput};
use seldinger_domain::performed_step::{
    effect_on_case, CaseEffect, PerformedStep, ReportedDose, StepReport, StepStatus,
};
use seldinger_domain::referral::{ReferralDetails, ReferralInput, Urgency};
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::{
    Actor, AeTitle, CaseId, DicomModality, Equipment, EventMeta, PatientId, Referral, ReferralId,
    Room, RoomId, RoomKind,
};
use seldinger_store::{StepMessage, Store};
use uuid::Uuid;

pub struct Summary {
    pub patients: usize,
    pub cases: usize,
    pub dose_reports: usize,
}

const FAMILY: &[&str] = &[
    "Abara",
    "Bergstrom",
    "Castellano",
    "Dimitriou",
    "Eze",
    "Fairweather",
    "Gallagher",
    "Haddad",
    "Ivanova",
    "Jovanovic",
    "Kowalczyk",
    "Lindqvist",
    "Mbeki",
    "Nakamura",
    "Okonkwo",
    "Petrov",
    "Quinlan",
    "Rahman",
    "Sandoval",
    "Takahashi",
    "Ueda",
    "Varga",
    "Whitlock",
    "Xu",
    "Yilmaz",
    "Zielinski",
    "Achterberg",
    "Brennan",
    "Coelho",
    "Devlin",
];
const GIVEN_FEMALE: &[&str] = &[
    "Ada", "Beatriz", "Chiara", "Dagny", "Elif", "Freya", "Grace", "Hana", "Ines", "Julia", "Kemi",
    "Lena",
];
const GIVEN_MALE: &[&str] = &[
    "Arjun", "Bram", "Cormac", "Dmitri", "Emeka", "Felix", "Goran", "Hiro", "Ivan", "Jonas",
    "Kwame", "Luis",
];
const CLINICIANS: &[(&str, &str)] = &[
    ("Dr P. Anand", "oncology"),
    ("Dr M. Kessler", "surgery"),
    ("Dr R. Osei", "primary_care"),
    ("Dr L. Moreau", "ward"),
    ("Dr S. Haugen", "emergency_department"),
    ("Dr T. Brandt", "urology"),
    ("Dr C. Ferreira", "gastroenterology"),
    ("Dr E. Novak", "nephrology"),
];
const PHYSICIAN: &str = "dr.okafor";
/// As the booking names who is to do a case (the demo's IR physician's display name).
const PERFORMING_PHYSICIAN: &str = "Dr N. Okafor";
const NURSE: &str = "nurse.lindqvist";
const RADIOGRAPHER: &str = "rad.tanaka";
const SCHEDULER: &str = "sched.moreau";
const PHYSICIST: &str = "phys.mendez";

/// Today's list per room, in slot order: the state each booked case has reached.
/// The device-leaving procedure each room does first (fitting its primary guidance).
fn showcase_procedure(room: &str) -> Option<&'static str> {
    match room {
        "angio-1" => Some("ivc-filter-placement"),
        "angio-2" => Some("biliary-drainage"),
        "ct-1" => Some("abscess-drainage-deep"),
        "us-1" => Some("port-placement"),
        _ => None,
    }
}

fn day_plan() -> Vec<(&'static str, Vec<CaseState>)> {
    use CaseState::*;
    vec![
        (
            "angio-1",
            vec![
                Discharged, InRecovery, InRoom, CheckedIn, Scheduled, Scheduled,
            ],
        ),
        (
            "angio-2",
            vec![
                Closed,
                Discharged,
                InRecovery,
                ProcedureComplete,
                CheckedIn,
                Scheduled,
            ],
        ),
        (
            "ct-1",
            vec![
                FollowUp, Discharged, InRecovery, InRoom, Scheduled, Cancelled, Scheduled,
            ],
        ),
        (
            "us-1",
            vec![
                Closed,
                Discharged,
                FollowUp,
                InRecovery,
                ProcedureComplete,
                InRoom,
                CheckedIn,
                Scheduled,
                Scheduled,
            ],
        ),
    ]
}

/// Cases not on today's list: the vetting queue and its outcomes.
fn queue_plan() -> Vec<CaseState> {
    use CaseState::*;
    vec![
        Referred,
        Referred,
        Referred,
        Referred,
        Referred,
        Referred,
        MoreInformationRequested,
        MoreInformationRequested,
        Vetted,
        Vetted,
        Vetted,
        Declined,
        Declined,
    ]
}

fn rooms() -> Vec<Room> {
    use GuidanceModality::*;
    let room = |id: &str,
                name: &str,
                kind,
                modalities: &[GuidanceModality],
                (ae_title, modality): (&str, DicomModality)| Room {
        id: RoomId::parse(id).expect("demo room ids are valid"),
        name: name.into(),
        kind,
        modalities: modalities.to_vec(),
        equipment: vec![Equipment {
            ae_title: AeTitle::parse(ae_title).expect("demo AE titles are valid"),
            modality,
        }],
    };
    vec![
        room(
            "angio-1",
            "Angio suite 1 (biplane)",
            RoomKind::AngioSuite,
            &[Fluoroscopy, ConeBeamCt, Ultrasound],
            ("ANGIO1", DicomModality::Xa),
        ),
        room(
            "angio-2",
            "Angio suite 2",
            RoomKind::AngioSuite,
            &[Fluoroscopy, ConeBeamCt, Ultrasound],
            ("ANGIO2", DicomModality::Xa),
        ),
        room(
            "ct-1",
            "CT interventional",
            RoomKind::Ct,
            &[Ct, Ultrasound],
            ("CTIR1", DicomModality::Ct),
        ),
        room(
            "us-1",
            "Ultrasound procedure room",
            RoomKind::Ultrasound,
            &[Ultrasound, None],
            ("USIR1", DicomModality::Us),
        ),
    ]
}

struct Demo<'a> {
    /// The store written to: the database's, or a batch's while history is generated.
    store: Store,
    catalogue: &'a ProcedureCatalogue,
    rng: ChaCha8Rng,
    day_start: DateTime<Utc>,
    reference: &'a SafetyReference,
    patients: usize,
    cases: usize,
    dose_reports: usize,
    /// Cases checked in whose imaging already began (one, for the imaging review list).
    early_imaging: usize,
    /// The next case's patient, when it is one already known (a patient comes back).
    returning: Option<PatientId>,
}

pub async fn seed(
    store: &Store,
    catalogue: &ProcedureCatalogue,
    reference: &SafetyReference,
    seed: u64,
    today: NaiveDate,
) -> anyhow::Result<Summary> {
    let day_start = Utc.from_utc_datetime(&today.and_hms_opt(0, 0, 0).context("midnight")?);
    let mut demo = Demo::new(store, catalogue, reference, seed, day_start, 0);
    for (i, room) in rooms().iter().enumerate() {
        store.put_room(room, i as i64).await?;
    }
    let rooms = rooms();
    for (room_id, states) in day_plan() {
        let room = rooms
            .iter()
            .find(|r| r.id.as_str() == room_id)
            .context("planned room exists")?;
        let mut slot = day_start + Duration::hours(8);
        // Each room's first case done today leaves a device, so the record shows every part
        // (a device with its UDI label, its §7 follow-up, a drain's complication).
        let mut showcase = showcase_procedure(room_id);
        for target in states {
            let done = matches!(
                target,
                CaseState::ProcedureComplete
                    | CaseState::InRecovery
                    | CaseState::Discharged
                    | CaseState::FollowUp
                    | CaseState::Closed
            );
            let chosen = showcase.filter(|_| done).and_then(|id| {
                demo.catalogue
                    .procedures
                    .iter()
                    .find(|p| p.id.as_str() == id)
            });
            let procedure = match chosen {
                Some(procedure) => {
                    showcase = None;
                    procedure
                }
                None => demo.procedure_for(room)?,
            };
            let minutes = procedure.room_minutes;
            demo.case(procedure, target, Some((room.id.clone(), slot)))
                .await?;
            slot += Duration::minutes(i64::from(minutes) + 15);
        }
    }
    for target in queue_plan() {
        let procedure = demo.any_procedure();
        demo.case(procedure, target, None).await?;
    }
    demo.filter_history(&rooms).await?;
    demo.past_year(&rooms).await?;
    Ok(Summary {
        patients: demo.patients,
        cases: demo.cases,
        dose_reports: demo.dose_reports,
    })
}

/// Cases a weekday of the generated history holds across the rooms, and a weekend day (the
/// emergencies): 5 × 56 + 2 × 6 = 292 a week, about 15,200 a year.
const HISTORY_WEEKDAY_CASES: usize = 56;
const HISTORY_WEEKEND_CASES: usize = 6;
/// Cases written per transaction while generating history (one flush each, not one per event).
const HISTORY_CASES_PER_BATCH: usize = 250;
/// The history's patients are numbered from here (their MRNs follow the number).
const HISTORY_FIRST_PATIENT: usize = 1_000_000;

/// Days of history, and how many days before today it ends (1: yesterday).
#[derive(Clone, Copy)]
pub struct HistorySpan {
    pub days: u32,
    pub ends_days_ago: u32,
}

impl HistorySpan {
    /// `days` of history ending yesterday: a department whose last year is as busy as the others.
    pub fn up_to_yesterday(days: u32) -> Self {
        HistorySpan {
            days,
            ends_days_ago: 1,
        }
    }
}

/// Adds `span` of a large department's past work, through
/// the same event and projection writes as the application (the demo's, in batches of
/// [`HISTORY_CASES_PER_BATCH`] cases per transaction): about 15,000 cases a year over every
/// room and procedure type, mostly done and closed, some cancelled or declined; a third of
/// them for a patient who came before; each new patient with drugs and labs; dose reports,
/// devices and follow-up tasks as the demo's cases have them; and the reads of each case in
/// the audit trail. What is due after today stays open, as in any department. Deterministic for
/// a seed. `progress(done, total)` is told after each batch.
pub async fn history(
    store: &Store,
    catalogue: &ProcedureCatalogue,
    reference: &SafetyReference,
    seed: u64,
    today: NaiveDate,
    span: HistorySpan,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<Summary> {
    // Another random stream than the demo's own, so its ids never meet the history's, and
    // patients counted from HISTORY_FIRST_PATIENT so its MRNs never do either.
    let mut demo = Demo::new(
        store,
        catalogue,
        reference,
        seed ^ 0x5e1d_1a9e_0000_0016,
        Utc.from_utc_datetime(&today.and_hms_opt(0, 0, 0).context("midnight")?),
        HISTORY_FIRST_PATIENT,
    );
    let rooms = rooms();
    // History runs up to `ends_days_ago` (yesterday, for a department whose last year is as
    // busy as the others), beside the demo's own year of showcase cases.
    let last = today - Duration::days(i64::from(span.ends_days_ago.max(1)));
    let first = last - Duration::days(i64::from(span.days.max(1)) - 1);
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let per_day = |day: &NaiveDate| match chrono::Datelike::weekday(day) {
        chrono::Weekday::Sat | chrono::Weekday::Sun => HISTORY_WEEKEND_CASES,
        _ => HISTORY_WEEKDAY_CASES,
    };
    let total: usize = days.iter().map(per_day).sum();
    // What the history's cases led to is done by the demo's day, never after it.
    let now = demo.day_start;
    let mut known: Vec<PatientId> = Vec::new();
    let mut done = 0;
    let mut batch: Option<seldinger_store::Batch> = None;
    let mut audits = Vec::new();
    for day in &days {
        demo.day_start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).context("midnight")?);
        let mut slots: Vec<DateTime<Utc>> = vec![demo.day_start + Duration::hours(8); rooms.len()];
        for n in 0..per_day(day) {
            if batch.is_none() {
                let opened = store.begin_batch().await?;
                demo.store = opened.store().clone();
                batch = Some(opened);
            }
            let index = n % rooms.len();
            let room = &rooms[index];
            let procedure = demo.procedure_for(room)?;
            let target = match demo.rng.gen_range(0..100) {
                0..=2 => CaseState::Cancelled,
                3..=4 => CaseState::Declined,
                5..=11 => CaseState::FollowUp,
                _ => CaseState::Closed,
            };
            let returns = !known.is_empty() && demo.rng.gen_bool(0.33);
            if returns {
                demo.returning = Some(known[demo.rng.gen_range(0..known.len())]);
            }
            let booking = (target != CaseState::Declined).then(|| (room.id.clone(), slots[index]));
            slots[index] += Duration::minutes(i64::from(procedure.room_minutes) + 15);
            let case = demo.case(procedure, target, booking).await?;
            demo.settle_history(&case, now).await?;
            if !returns {
                known.push(case.patient_id);
            }
            // Who read the case, as the trail keeps it: its board card, its page, its checklist.
            let read_at = case.updated_at;
            for (username, role, action) in [
                ("nurse.lindqvist", "ir_nurse", "read_board"),
                ("dr.okafor", "ir_physician", "read"),
                ("nurse.lindqvist", "ir_nurse", "read_checklist"),
            ] {
                audits.push(seldinger_store::AuditEntry {
                    seq: 0,
                    at: read_at,
                    username: username.into(),
                    role: role.into(),
                    action: action.into(),
                    resource_type: "case".into(),
                    resource_id: Some(case.id.to_string()),
                    patient_id: Some(case.patient_id.to_string()),
                    client_addr: "10.20.0.14".into(),
                    outcome: "allowed".into(),
                    break_glass_reason: None,
                    via_message: None,
                    via_claim: None,
                });
            }
            done += 1;
            if done % HISTORY_CASES_PER_BATCH == 0 {
                demo.store.append_audit_batch(&audits).await?;
                audits.clear();
                if let Some(full) = batch.take() {
                    full.commit().await?;
                }
                progress(done, total);
            }
        }
    }
    if !audits.is_empty() {
        demo.store.append_audit_batch(&audits).await?;
    }
    if let Some(last) = batch.take() {
        last.commit().await?;
    }
    progress(done, total);
    Ok(Summary {
        patients: demo.patients - HISTORY_FIRST_PATIENT,
        cases: done,
        dose_reports: demo.dose_reports,
    })
}

/// What became of a demo IVC filter placed in the past (the registry and the tracker's rows).
#[derive(Clone, Copy)]
enum FilterFate {
    /// Its retrieval review not yet due.
    InWindow,
    /// Reviewed, kept for now, and no new plan made: flagged "no plan" (§7).
    ReviewedStillIn,
    /// Past its window, never reviewed: overdue, lost to follow-up.
    Overdue,
    /// Retrieved this many days after placement.
    Retrieved(i64),
    Permanent,
}

/// Filters placed this many days before the demo's day, and what became of each.
const FILTER_HISTORY: &[(i64, FilterFate)] = &[
    (12, FilterFate::InWindow),
    (78, FilterFate::ReviewedStillIn),
    (96, FilterFate::Overdue),
    (130, FilterFate::Retrieved(41)),
    (170, FilterFate::Retrieved(52)),
    (210, FilterFate::Permanent),
];

/// Past placements whose adverse events the §6 published measures count: (procedure, days
/// before the demo's day, the event found after it if any: days after, kind, SIR severity, CIRSE).
type LaterEvent = (i64, &'static str, &'static str, u8);
const MEASURED_HISTORY: &[(&str, i64, Option<LaterEvent>)] = &[
    ("nephrostomy", 150, None),
    ("nephrostomy", 118, Some((9, "dislodgement", "moderate", 2))),
    ("nephrostomy", 64, None),
    ("nephrostomy", 33, None),
    ("gastrostomy", 140, None),
    ("gastrostomy", 101, Some((6, "infection", "mild", 1))),
    ("gastrostomy", 47, None),
];

impl<'a> Demo<'a> {
    fn new(
        store: &Store,
        catalogue: &'a ProcedureCatalogue,
        reference: &'a SafetyReference,
        seed: u64,
        day_start: DateTime<Utc>,
        patients: usize,
    ) -> Demo<'a> {
        Demo {
            store: store.clone(),
            returning: None,
            catalogue,
            reference,
            dose_reports: 0,
            early_imaging: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            day_start,
            patients,
            cases: 0,
        }
    }

    /// A year of the department's past work, so the quality dashboard has months to show:
    /// a case every few days in each room, and nephrostomies and gastrostomies with the events
    /// the §6 published measures count (one dislodged within 30 days, one peristomal infection),
    /// and the M&M meeting's note on the severe event of the IVC filter history.
    async fn past_year(&mut self, rooms: &[Room]) -> anyhow::Result<()> {
        use seldinger_domain::adverse_event::{
            AdverseEvent, AdverseEventDetails, Detected, EventCategory, Outcome,
        };
        use seldinger_domain::procedure_record::SirSeverity;
        for days_ago in (16..=360).step_by(4) {
            let room = &rooms[(days_ago as usize / 4) % rooms.len()];
            let procedure = self.procedure_for(room)?;
            let start = self.day_start - Duration::days(days_ago) + Duration::hours(10);
            let case = self
                .case(procedure, CaseState::Closed, Some((room.id.clone(), start)))
                .await?;
            // Most outcomes are known a month on; some patients are not reached, a few checks
            // are still owed (§6).
            let finding = match self.rng.gen_range(0..20) {
                0 => Some(OutcomeFinding::NotReached),
                1 | 2 => None,
                _ => Some(OutcomeFinding::NoAdverseEvent),
            };
            if let Some(finding) = finding {
                self.outcome_check(&case, finding).await?;
            }
        }
        for (id, days_ago, later) in MEASURED_HISTORY {
            let procedure = self
                .catalogue
                .procedures
                .iter()
                .find(|p| p.id.as_str() == *id)
                .context("the catalogue has the measured placements")?;
            let room = rooms
                .iter()
                .find(|r| r.modalities.first() == procedure.modalities.first())
                .unwrap_or(&rooms[0]);
            let start = self.day_start - Duration::days(*days_ago) + Duration::hours(11);
            let case = self
                .case(
                    procedure,
                    CaseState::FollowUp,
                    Some((room.id.clone(), start)),
                )
                .await?;
            let Some((after, kind, severity, cirse)) = later else {
                continue;
            };
            let started = case.procedure_started_at.context("the procedure began")?;
            let onset = started + Duration::days(*after);
            let (description, treatment) = if *kind == "dislodgement" {
                (
                    "nephrostomy tube found withdrawn into the flank tissues",
                    "replaced through the same tract under fluoroscopy",
                )
            } else {
                (
                    "erythema and discharge around the gastrostomy site",
                    "oral antibiotics from the ward; settled",
                )
            };
            let event = AdverseEvent {
                id: format!("{}-r1", case.id),
                case_id: case.id,
                patient_id: case.patient_id,
                details: AdverseEventDetails {
                    onset,
                    detected: Detected::AfterDischarge,
                    description: description.into(),
                    category: EventCategory::parse(kind),
                    severity: if *severity == "moderate" {
                        SirSeverity::Moderate
                    } else {
                        SirSeverity::Mild
                    },
                    cirse_grade: Some(*cirse),
                    treatment: treatment.into(),
                    outcome: Outcome::Resolved,
                },
                attribution: None,
                reported_by: NURSE.into(),
                reported_at: onset + Duration::hours(3),
                entered_in_error: None,
                version: 1,
            };
            self.store
                .report_adverse_event(&event, &self.meta(NURSE, event.reported_at, None), &[])
                .await?;
            self.outcome_check(&case, OutcomeFinding::AdverseEventReported)
                .await?;
        }
        self.mm_note().await
    }

    /// The case's 30-day outcome check closed by the nurse a few days into its window.
    async fn outcome_check(&mut self, case: &Case, finding: OutcomeFinding) -> anyhow::Result<()> {
        let tasks = self.store.follow_up_tasks_of_cases(&[case.id]).await?;
        let Some(check) = tasks
            .iter()
            .find(|t| t.kind == seldinger_domain::followup::FollowUpKind::OutcomeCheck)
        else {
            return Ok(());
        };
        let at = check.due_from + Duration::days(3);
        if at > self.day_start {
            return Ok(());
        }
        let note = match finding {
            OutcomeFinding::NoAdverseEvent => {
                "Telephoned: well, back to usual activity, no problem since the procedure."
            }
            OutcomeFinding::AdverseEventReported => {
                "Telephoned: the event reported on the case has settled."
            }
            OutcomeFinding::NotReached => "Three calls unanswered; letter sent to the GP.",
        };
        let done = check
            .complete_with(NURSE, at, note, Some(finding))
            .map_err(|(_, e)| anyhow::anyhow!("demo outcome check: {e}"))?;
        self.store
            .complete_follow_up_task(&done, check.version, &self.meta(NURSE, at, None), &[])
            .await?;
        Ok(())
    }

    /// What a department did after a past case, by `until`: each device it left taken out
    /// (settling its follow-up as the application does), and the rest of its follow-up done
    /// a few days into its window — but for about one in a hundred of each, lost to follow-up
    /// and still open, as the follow-up list and the device tracker should find them.
    async fn settle_history(&mut self, case: &Case, until: DateTime<Utc>) -> anyhow::Result<()> {
        use seldinger_domain::followup::FollowUpKind;
        if !matches!(case.state, CaseState::FollowUp | CaseState::Closed) {
            return Ok(());
        }
        let mut tasks = self.store.follow_up_tasks_of_cases(&[case.id]).await?;
        let mut devices = self
            .store
            .devices(
                &seldinger_domain::access::RowScope::Department,
                &seldinger_store::DeviceFilter {
                    case_id: Some(case.id),
                    ..Default::default()
                },
                100,
            )
            .await?;
        // In an order of their own, not the engine's (text collation differs), and not by id
        // (some tasks' ids are random): the same draws for the same seed on either engine.
        tasks.sort_by_key(|t| (t.due_from, t.kind.as_str()));
        devices.sort_by_key(|d| d.device.index);
        for index in 0..devices.len() {
            if !devices[index].in_place() || self.rng.gen_range(0..100) == 0 {
                continue;
            }
            let device = devices[index].clone();
            let at = device.placed_at + Duration::days(self.rng.gen_range(14..=300));
            if at > until {
                continue;
            }
            let event = DeviceEvent::Removed {
                at,
                in_case: None,
                note: "removed at the end of treatment (synthetic history)".into(),
            };
            let (after, settled) = self
                .device_event(&device, &event, at, &devices, &tasks)
                .await?;
            for done in settled {
                if let Some(task) = tasks.iter_mut().find(|t| t.id == done.id) {
                    *task = done;
                }
            }
            devices[index] = after;
        }
        for task in &tasks {
            if task.completed.is_some()
                || task.withdrawn.is_some()
                || self.rng.gen_range(0..100) == 0
            {
                continue;
            }
            let at = task.due_from + Duration::days(self.rng.gen_range(0..=5));
            if at > until {
                continue;
            }
            let (note, finding) = match task.kind {
                FollowUpKind::OutcomeCheck if self.rng.gen_range(0..20) == 0 => (
                    "Three calls unanswered; letter sent to the GP.",
                    Some(OutcomeFinding::NotReached),
                ),
                FollowUpKind::OutcomeCheck => (
                    "Telephoned: well, no problem since the procedure.",
                    Some(OutcomeFinding::NoAdverseEvent),
                ),
                _ => ("Done as planned (synthetic history).", None),
            };
            let by = match task.kind {
                FollowUpKind::PhysicistDoseReview => PHYSICIST,
                _ => NURSE,
            };
            let done = task
                .complete_with(by, at, note, finding)
                .map_err(|(_, e)| anyhow::anyhow!("history follow-up: {e}"))?;
            self.store
                .complete_follow_up_task(&done, task.version, &self.meta(by, at, None), &[])
                .await?;
        }
        Ok(())
    }

    /// The M&M meeting discussed the filter found tilted at retrieval.
    async fn mm_note(&mut self) -> anyhow::Result<()> {
        use seldinger_domain::mm::{MmNoteAdded, MmReview};
        use seldinger_domain::procedure_record::SirSeverity;
        let severe = self
            .store
            .adverse_events(
                &seldinger_domain::access::RowScope::Department,
                &seldinger_store::AdverseEventFilter::default(),
                1000,
            )
            .await?
            .into_iter()
            .find(|e| e.details.severity == SirSeverity::Severe)
            .context("the filter history has its severe event")?;
        let at = severe.reported_at + Duration::days(10);
        let note = MmNoteAdded {
            meeting_on: at.date_naive(),
            discussion: "Filter left beyond its retrieval window after a missed review; tilt and strut penetration made retrieval complex.".into(),
            actions: "Retrieval reviews booked at placement; the IVC filter tracker checked at the weekly IR meeting.".into(),
        };
        let (after, decided) = MmReview::new(severe.case_id, severe.patient_id)
            .add_note(&note, PHYSICIAN, at, at.date_naive())
            .map_err(|e| anyhow::anyhow!("demo M&M note: {e}"))?;
        self.store
            .add_mm_note(&after, &decided, &self.meta(PHYSICIAN, at, None), &[])
            .await?;
        Ok(())
    }

    /// Retrievable IVC filters placed over the past months in angio-1, so the registry and the
    /// IVC filter tracker show every standing: in window, overdue, no plan, retrieved,
    /// permanent. Their life events go through the same domain decisions and store writes as
    /// the application's.
    async fn filter_history(&mut self, rooms: &[Room]) -> anyhow::Result<()> {
        use seldinger_domain::device_registry::DeviceRef;
        let room = rooms
            .iter()
            .find(|r| r.id.as_str() == "angio-1")
            .context("angio-1 exists")?;
        let procedure = self
            .catalogue
            .procedures
            .iter()
            .find(|p| p.id.as_str() == "ivc-filter-placement")
            .context("the catalogue has IVC filter placement")?;
        for (days_ago, fate) in FILTER_HISTORY {
            let start = self.day_start - Duration::days(*days_ago) + Duration::hours(9);
            let case = self
                .case(
                    procedure,
                    CaseState::FollowUp,
                    Some((room.id.clone(), start)),
                )
                .await?;
            let device_ref = DeviceRef {
                case_id: case.id,
                index: 0,
            };
            let device = self
                .store
                .device(device_ref)
                .await?
                .context("the filter is registered")?;
            let tasks = self.store.follow_up_tasks_of_cases(&[case.id]).await?;
            let placed = device.placed_at;
            self.later_adverse_event(&case, *fate).await?;
            self.signed_report(&case, *fate).await?;
            let event = match fate {
                FilterFate::InWindow | FilterFate::Overdue => continue,
                FilterFate::ReviewedStillIn => {
                    let review = tasks
                        .iter()
                        .find(|t| {
                            t.kind
                                == seldinger_domain::followup::FollowUpKind::IvcFilterRetrievalReview
                        })
                        .context("the filter has its review")?;
                    let at = placed + Duration::days(35);
                    let done = review
                        .complete(
                            PHYSICIAN,
                            at,
                            "Filter still needed while anticoagulation is on hold; to be reviewed again.",
                        )
                        .map_err(|e| anyhow::anyhow!(e))?;
                    self.store
                        .complete_follow_up_task(&done, review.version, &self.meta(PHYSICIAN, at, None), &[])
                        .await?;
                    continue;
                }
                FilterFate::Retrieved(after) => DeviceEvent::Removed {
                    at: placed + Duration::days(*after),
                    in_case: None,
                    note: "retrieved intact with a snare via the right internal jugular vein".into(),
                },
                FilterFate::Permanent => DeviceEvent::DeclaredPermanent {
                    reason: "lasting contraindication to anticoagulation; discussed with the patient and haematology".into(),
                },
            };
            let at = match &event {
                DeviceEvent::Removed { at, .. } => *at,
                _ => placed + Duration::days(60),
            };
            self.device_event(&device, &event, at, &[], &tasks).await?;
        }
        Ok(())
    }

    /// A device's life event as the application records it: decided by the domain, with the
    /// follow-up tasks of the case it settles (`others`: the case's other devices). Returns the
    /// device after it and the tasks it closed.
    async fn device_event(
        &mut self,
        device: &TrackedDevice,
        event: &DeviceEvent,
        at: DateTime<Utc>,
        others: &[TrackedDevice],
        tasks: &[FollowUpTask],
    ) -> anyhow::Result<(TrackedDevice, Vec<FollowUpTask>)> {
        let decided = device
            .decide(event, at)
            .map_err(|e| anyhow::anyhow!("demo device event: {e}"))?;
        let mut after = device.clone();
        after.apply(&decided);
        let settled = tasks_settled_by(device, &decided, others, tasks, PHYSICIAN, at);
        self.store
            .record_device_event(
                &after,
                &decided,
                &settled,
                &self.meta(PHYSICIAN, at, None),
                &[],
            )
            .await?;
        Ok((after, settled))
    }

    /// Adverse events reported after discharge (§6), so the record shows more than the room's
    /// mild bleeds: a moderate groin haematoma within the window, and a severe complication found
    /// at a retrieval after it, which a physician attributes to the placement.
    async fn later_adverse_event(&mut self, case: &Case, fate: FilterFate) -> anyhow::Result<()> {
        use seldinger_domain::adverse_event::{
            AdverseEvent, AdverseEventChange, AdverseEventDetails, Detected, EventCategory, Outcome,
        };
        use seldinger_domain::procedure_record::SirSeverity;
        let started = case.procedure_started_at.context("the procedure began")?;
        let details = match fate {
            FilterFate::ReviewedStillIn => AdverseEventDetails {
                onset: started + Duration::hours(20),
                detected: Detected::AfterDischarge,
                description: "haematoma at the jugular access site, observed overnight on the ward"
                    .into(),
                category: Some(EventCategory::Bleeding),
                severity: SirSeverity::Moderate,
                cirse_grade: Some(2),
                treatment: "manual compression; overnight observation".into(),
                outcome: Outcome::Resolved,
            },
            FilterFate::Retrieved(after) if after > 45 => AdverseEventDetails {
                onset: started + Duration::days(after),
                detected: Detected::AfterDischarge,
                description:
                    "filter tilted with a strut through the caval wall, found at retrieval".into(),
                category: Some(EventCategory::OrganInjury),
                severity: SirSeverity::Severe,
                cirse_grade: Some(3),
                treatment: "retrieved by an advanced technique under general anaesthesia".into(),
                outcome: Outcome::Resolved,
            },
            _ => return Ok(()),
        };
        let reported_at = details.onset + Duration::hours(4);
        let event = AdverseEvent {
            id: format!("{}-r1", case.id),
            case_id: case.id,
            patient_id: case.patient_id,
            details,
            attribution: None,
            reported_by: NURSE.into(),
            reported_at,
            entered_in_error: None,
            version: 1,
        };
        self.store
            .report_adverse_event(&event, &self.meta(NURSE, reported_at, None), &[])
            .await?;
        if event.details.severity == SirSeverity::Severe {
            // Past the 30-day window, so the physician says whose it is.
            let change = AdverseEventChange::AttributionDecided {
                attributed: true,
                reason: "a complication of the filter placed at this procedure".into(),
            };
            let at = reported_at + Duration::hours(20);
            let mut after = event.clone();
            after.apply(&change, PHYSICIAN, at);
            self.store
                .change_adverse_event(&after, &change, &self.meta(PHYSICIAN, at, None), &[])
                .await?;
        }
        Ok(())
    }

    /// The IR physician's report of a past filter placement, signed the day after (all but the
    /// newest, left a draft to sign); the one whose filter was found tilted at retrieval gets an
    /// addendum. Through the application's own use case, on a clock set to then.
    async fn signed_report(&mut self, case: &Case, fate: FilterFate) -> anyhow::Result<()> {
        use seldinger_app::{App, FixedClock, Principal, ReportRequest};
        use seldinger_domain::report::ReportText;
        if matches!(fate, FilterFate::InWindow) {
            return Ok(());
        }
        let done = case
            .procedure_completed_at
            .context("the procedure is complete")?;
        let physician = Principal {
            username: PHYSICIAN.into(),
            role: seldinger_domain::access::Role::IrPhysician,
            client_addr: "demo".into(),
            break_glass_reason: None,
            via_message: None,
            via_claim: None,
        };
        let at = |t: DateTime<Utc>| {
            App::new(
                self.store.clone(),
                self.catalogue.clone(),
                self.reference.clone(),
                std::sync::Arc::new(FixedClock(t)),
            )
        };
        let text = ReportText {
            technique: "Ultrasound-guided venous access; cavogram: \
                        patent infrarenal IVC, single renal veins."
                .into(),
            findings: "Retrievable filter deployed infrarenally with its apex at L2; no tilt on \
                       the completion image."
                .into(),
            impression: "Successful placement of a retrievable infrarenal IVC filter. Retrieval \
                         to be considered between day 29 and day 54 once the PE risk has passed \
                         (clinical-rules.md §7)."
                .into(),
            plan: "Filter clinic review for retrieval; anticoagulation as soon as safe.".into(),
        };
        let signed_at = done + Duration::hours(20);
        at(signed_at)
            .change_procedure_report(&physician, case.id, 0, ReportRequest::Sign(text))
            .await
            .map_err(|e| anyhow::anyhow!("demo report: {e}"))?;
        if let FilterFate::Retrieved(after) = fate {
            if after > 45 {
                let added = done + Duration::days(after) + Duration::hours(6);
                at(added)
                    .change_procedure_report(
                        &physician,
                        case.id,
                        1,
                        ReportRequest::Addendum {
                            reason: "complication found at retrieval".into(),
                            text: "At retrieval on day 52 the filter was tilted with a strut \
                                   through the caval wall; retrieved by an advanced technique \
                                   under general anaesthesia (see the adverse event)."
                                .into(),
                        },
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("demo addendum: {e}"))?;
            }
        }
        Ok(())
    }

    fn id(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.gen()).into_uuid()
    }

    fn at(&self, hours_from_day_start: f64) -> DateTime<Utc> {
        self.day_start + Duration::minutes((hours_from_day_start * 60.0) as i64)
    }

    fn procedure_for(&mut self, room: &Room) -> anyhow::Result<&'a Procedure> {
        // Book by primary guidance: angio suites get fluoroscopy cases, CT gets CT-guided ones.
        let primary = room.modalities.first();
        let fits: Vec<&'a Procedure> = self
            .catalogue
            .procedures
            .iter()
            .filter(|p| p.modalities.first() == primary)
            .collect();
        fits.choose(&mut self.rng)
            .copied()
            .context("a catalogue procedure fits every demo room")
    }

    fn any_procedure(&mut self) -> &'a Procedure {
        let all: Vec<&'a Procedure> = self.catalogue.procedures.iter().collect();
        all.choose(&mut self.rng)
            .copied()
            .unwrap_or(&self.catalogue.procedures[0])
    }

    fn meta(&self, actor: &str, at: DateTime<Utc>, reason: Option<&str>) -> EventMeta {
        EventMeta {
            actor: Actor::parse(actor).expect("demo actors are valid"),
            at,
            reason: reason.map(str::to_string),
        }
    }

    async fn patient(&mut self, procedure: &Procedure) -> anyhow::Result<PatientId> {
        if let Some(known) = self.returning.take() {
            return Ok(known);
        }
        self.patients += 1;
        let female = self.rng.gen_bool(0.5);
        let given = if female { GIVEN_FEMALE } else { GIVEN_MALE };
        let age_years: i64 = self.rng.gen_range(19..92);
        let birth = self.day_start.date_naive()
            - Duration::days(age_years * 365 + self.rng.gen_range(0..365));
        let mut allergies = Vec::new();
        if self.rng.gen_bool(0.12) {
            allergies.push(AllergyInput {
                class: "iodinated_contrast".into(),
                substance: "iohexol".into(),
                reaction: "urticaria".into(),
            });
        }
        if self.rng.gen_bool(0.06) {
            allergies.push(AllergyInput {
                class: "latex".into(),
                substance: "latex".into(),
                reaction: "contact dermatitis".into(),
            });
        }
        if self.rng.gen_bool(0.15) {
            allergies.push(AllergyInput {
                class: "drug".into(),
                substance: "penicillin".into(),
                reaction: "rash".into(),
            });
        }
        let childbearing = female && (12..=50).contains(&age_years);
        let input = PatientInput {
            site: "MAIN".into(),
            mrn: format!("SDM{:06}", 100_000 + self.patients * 37),
            family_name: FAMILY
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("Doe")
                .into(),
            given_name: given
                .choose(&mut self.rng)
                .copied()
                .unwrap_or("Alex")
                .into(),
            middle_names: String::new(),
            birth_date: birth.to_string(),
            sex: if female { "female" } else { "male" }.into(),
            weight_kg: Some(f64::from(self.rng.gen_range(48..118u8))),
            allergies,
            pregnancy_status: childbearing.then(|| "not_pregnant".to_string()),
            pregnancy_recorded_at: None,
        };
        let days_ago = f64::from(self.rng.gen_range(3..60u8));
        let registered = self.at(-24.0 * days_ago);
        let details = PatientDetails::parse(&input, registered)
            .map_err(|e| anyhow::anyhow!("demo patient: {e}"))?;
        let id = PatientId(self.id());
        let mut version = self
            .store
            .register_patient(id, details, &self.meta(SCHEDULER, registered, None), &[])
            .await?
            .version;

        for medication in self.medications() {
            version = self
                .store
                .record_medication(id, version, medication, &self.meta(NURSE, registered, None))
                .await?
                .version;
        }
        let drawn_days_ago = f64::from(self.rng.gen_range(1..20u8));
        let drawn = self.at(-24.0 * drawn_days_ago);
        let high_risk = procedure.bleeding_risk == seldinger_domain::BleedingRisk::High;
        let mut labs = vec![
            (LabTest::Haemoglobin, self.rng.gen_range(9.5..15.5)),
            (LabTest::Creatinine, self.rng.gen_range(0.6..2.4)),
            (LabTest::Egfr, f64::from(self.rng.gen_range(22..105u8))),
        ];
        if high_risk || self.rng.gen_bool(0.4) {
            labs.push((LabTest::Inr, self.rng.gen_range(0.9..2.1)));
            labs.push((
                LabTest::Platelets,
                f64::from(self.rng.gen_range(35..380u16)),
            ));
        }
        for (test, value) in labs {
            let value = (value * 100.0).round() / 100.0;
            let result = LabResult::new(test, value, drawn).map_err(anyhow::Error::msg)?;
            version = self
                .store
                .record_lab_result(
                    id,
                    version,
                    result,
                    &self.meta(NURSE, drawn + Duration::hours(2), None),
                )
                .await?
                .version;
        }
        Ok(id)
    }

    fn medications(&mut self) -> Vec<Medication> {
        const DRUGS: &[(&str, &str, &str)] = &[
            ("apixaban", "5 mg", "twice daily"),
            ("rivaroxaban", "20 mg", "once daily"),
            ("warfarin", "3 mg", "once daily"),
            ("clopidogrel", "75 mg", "once daily"),
            ("aspirin", "75 mg", "once daily"),
            ("enoxaparin", "40 mg", "once daily"),
            ("metformin", "1 g", "twice daily"),
            ("atorvastatin", "40 mg", "at night"),
            ("ramipril", "5 mg", "once daily"),
        ];
        let count = self.rng.gen_range(0..4);
        let mut chosen: Vec<&(&str, &str, &str)> =
            DRUGS.choose_multiple(&mut self.rng, count).collect();
        chosen.sort();
        let mut medications = Vec::with_capacity(chosen.len());
        for (drug, dose, frequency) in chosen {
            let hours_ago = f64::from(self.rng.gen_range(2..72u8));
            medications.push(Medication {
                drug: (*drug).into(),
                dose: (*dose).into(),
                frequency: (*frequency).into(),
                last_dose_at: Some(self.at(-hours_ago)),
                dose_intent: (*drug == "enoxaparin").then(|| "prophylactic".to_string()),
                indication: (*drug == "aspirin").then(|| "secondary_prevention".to_string()),
            });
        }
        medications
    }

    /// Creates a patient, a referral and its case, and walks the case to `target`.
    async fn case(
        &mut self,
        procedure: &Procedure,
        target: CaseState,
        booking: Option<(RoomId, DateTime<Utc>)>,
    ) -> anyhow::Result<Case> {
        self.cases += 1;
        let patient_id = self.patient(procedure).await?;
        let (clinician, service) = *CLINICIANS.choose(&mut self.rng).unwrap_or(&CLINICIANS[0]);
        let urgency = *[
            Urgency::Routine,
            Urgency::Routine,
            Urgency::Routine,
            Urgency::Urgent,
            Urgency::Emergent,
        ]
        .choose(&mut self.rng)
        .unwrap_or(&Urgency::Routine);
        let urgency_text = match urgency {
            Urgency::Emergent => "emergent",
            Urgency::Urgent => "urgent",
            Urgency::Routine => "routine",
        };
        let input = ReferralInput {
            patient_id: patient_id.to_string(),
            requesting_clinician: clinician.into(),
            requesting_service: service.into(),
            indication: format!("Please assess for {}", procedure.name.to_lowercase()),
            requested_procedure: Some(procedure.id.as_str().into()),
            requested_procedure_text: None,
            urgency: urgency_text.into(),
            clinical_question: "Is the procedure indicated, and when can it be done?".into(),
        };
        let details = ReferralDetails::parse(&input, self.catalogue)
            .map_err(|e| anyhow::anyhow!("demo referral: {e}"))?;
        let slot = booking.as_ref().map(|(_, start)| *start);
        let received = slot.unwrap_or(self.day_start) - Duration::days(self.rng.gen_range(2..15));
        let referral = Referral {
            id: ReferralId(self.id()),
            patient_id,
            case_id: CaseId(self.id()),
            received_at: received,
            details,
            version: 1,
        };
        let meta = self.meta(clinician_username(clinician).as_str(), received, None);
        let (mut case, opening) = Case::open(
            referral.case_id,
            patient_id,
            referral.id,
            urgency,
            Some(procedure.id.clone()),
            &meta,
        );
        self.store
            .create_referral(&referral, &case, &opening, &meta, &[])
            .await?;

        let vetted_at = received + Duration::hours(20);
        let accept = CaseEvent::Accept {
            procedure_id: procedure.id.clone(),
            modality: procedure.modalities[0],
            sedation: procedure.sedation,
            priority: urgency,
            // Angiographic and CT-guided vascular work uses iodinated contrast.
            iodinated_contrast: matches!(
                procedure.modalities[0],
                GuidanceModality::Fluoroscopy | GuidanceModality::ConeBeamCt
            ) && matches!(
                procedure.category,
                seldinger_domain::catalogue::Category::Vascular
                    | seldinger_domain::catalogue::Category::Oncologic
                    | seldinger_domain::catalogue::Category::Venous
            ),
            // The demo's vascular plans: femoral with a 5 F sheath for arterial work, venous
            // for venous; others reach no vessel.
            access_route: match procedure.vascular_access {
                VascularAccess::Arterial | VascularAccess::Varies => Some(AccessRoute::Femoral),
                VascularAccess::Venous => Some(AccessRoute::Venous),
                VascularAccess::None => None,
            },
            sheath_french: match procedure.vascular_access {
                VascularAccess::None => None,
                _ => SheathFrench::parse(5.0).ok(),
            },
        };
        let steps: Vec<(CaseEvent, &str, DateTime<Utc>, Option<&str>)> = match (target, &booking) {
            (CaseState::Referred, _) => vec![],
            (CaseState::MoreInformationRequested, _) => vec![(
                CaseEvent::RequestInformation {
                    question: "Please send the latest cross-sectional imaging report.".into(),
                },
                PHYSICIAN,
                vetted_at,
                None,
            )],
            (CaseState::Declined, _) => {
                vec![(
                    CaseEvent::Decline,
                    PHYSICIAN,
                    vetted_at,
                    Some("Not indicated: conservative management first"),
                )]
            }
            (CaseState::Vetted, _) => vec![(accept, PHYSICIAN, vetted_at, None)],
            (_, Some((room, start))) => {
                let start = *start;
                let end = start + Duration::minutes(i64::from(procedure.room_minutes));
                let time_out = TimeOut {
                    completed_at: start + Duration::minutes(5),
                    team_introduced: true,
                    patient_identity_confirmed: true,
                    procedure_and_site_confirmed: true,
                    consent_confirmed: true,
                    imaging_available: true,
                    equipment_available: true,
                };
                let study = StudyIdentity::new(start.date_naive(), self.id());
                let mut path = vec![
                    (accept, PHYSICIAN, vetted_at, None),
                    (
                        CaseEvent::Schedule {
                            room: room.clone(),
                            start,
                            duration_minutes: None,
                            study: Some(study),
                            // The demo's IR physician does the department's cases.
                            performing_physician: Some(PERFORMING_PHYSICIAN.into()),
                        },
                        SCHEDULER,
                        vetted_at + Duration::hours(2),
                        None,
                    ),
                ];
                // Most booked cases have their pre-assessment and consent; a few do not yet,
                // so the day shows what "not ready" looks like.
                if self.rng.gen_bool(0.85) {
                    let setting = if procedure.outpatient {
                        Setting::Outpatient
                    } else {
                        Setting::Inpatient
                    };
                    let assessment = PreAssessment {
                        setting,
                        admitted_at: (setting == Setting::Inpatient).then_some(vetted_at),
                        asa_class: Some(self.rng.gen_range(1..=3)),
                        difficult_airway: false,
                        chronic_liver_disease: self.rng.gen_bool(0.05),
                        acute_kidney_injury: false,
                        on_dialysis: false,
                        high_thrombotic_risk: self.rng.gen_bool(0.1),
                        creatinine_clearance: Some(f64::from(self.rng.gen_range(35..110u8))),
                    };
                    path.push((
                        CaseEvent::RecordAssessment { assessment },
                        NURSE,
                        vetted_at + Duration::hours(3),
                        None,
                    ));
                }
                if self.rng.gen_bool(0.9) {
                    let consent = Consent {
                        obtained_by: "Dr N. Okafor".into(),
                        obtained_at: vetted_at + Duration::hours(3),
                    };
                    path.push((
                        CaseEvent::RecordConsent { consent },
                        PHYSICIAN,
                        vetted_at + Duration::hours(3),
                        None,
                    ));
                }
                let walk: Vec<(CaseEvent, &str, DateTime<Utc>, Option<&str>)> = vec![
                    (
                        CaseEvent::CheckIn,
                        NURSE,
                        start - Duration::minutes(45),
                        None,
                    ),
                    (
                        CaseEvent::StartProcedure { time_out },
                        RADIOGRAPHER,
                        start + Duration::minutes(5),
                        None,
                    ),
                    (
                        CaseEvent::CompleteProcedure,
                        PHYSICIAN,
                        end - Duration::minutes(10),
                        None,
                    ),
                    (CaseEvent::AdmitToRecovery, NURSE, end, None),
                    (CaseEvent::Discharge, NURSE, end + Duration::hours(2), None),
                    (
                        CaseEvent::StartFollowUp,
                        NURSE,
                        end + Duration::hours(2),
                        None,
                    ),
                ];
                if target == CaseState::Cancelled {
                    path.push((
                        CaseEvent::Cancel,
                        SCHEDULER,
                        start - Duration::hours(3),
                        Some("Patient unwell, rebooking after review"),
                    ));
                } else {
                    let upto = match target {
                        CaseState::Scheduled => 0,
                        CaseState::CheckedIn => 1,
                        CaseState::InRoom => 2,
                        CaseState::ProcedureComplete => 3,
                        CaseState::InRecovery => 4,
                        CaseState::Discharged | CaseState::Closed => 5,
                        CaseState::FollowUp => 6,
                        other => {
                            anyhow::bail!("demo plan: a booked case cannot be planned as {other}")
                        }
                    };
                    path.extend(walk.into_iter().take(upto));
                    if upto >= 3 {
                        // The procedure as done, before it is marked complete: the record,
                        // the devices it leaves (§7 follows them) and, for drains, a mild
                        // bleed at the puncture site, so the record has each part to show.
                        let done = path
                            .iter()
                            .position(|(e, ..)| matches!(e, CaseEvent::CompleteProcedure))
                            .unwrap_or(path.len());
                        // Between the start (start + 5 min) and the completion (end - 10 min),
                        // whatever the room time; a complication before it is recorded.
                        let began = start + Duration::minutes(5);
                        let at = began + (end - Duration::minutes(10) - began) / 2;
                        let record = procedure_record(procedure, began, began + (at - began) / 2);
                        for (offset, event) in record.into_iter().enumerate() {
                            let when = at + Duration::seconds(offset as i64);
                            path.insert(done + offset, (event, PHYSICIAN, when, None));
                        }
                    }
                    if target == CaseState::Closed {
                        // Closed straight from discharge: nothing to follow up.
                        path.push((CaseEvent::Close, PHYSICIAN, end + Duration::hours(3), None));
                    }
                }
                path
            }
            (other, None) => anyhow::bail!("demo plan: {other} needs a booking"),
        };
        let (catalogue, reference) = (self.catalogue, self.reference);
        for (event, actor, at, reason) in steps {
            let meta = self.meta(actor, at, reason);
            let decided = case.decide(event, &meta, catalogue)?;
            let before = case.version;
            case.apply(&decided, &meta)?;
            // As through the app: a discharge brings its §7 follow-up, stored with it.
            let follow_ups = seldinger_domain::followup::follow_ups_of_event(
                &decided,
                &case,
                catalogue,
                at,
                reference,
                || self.id(),
            );
            self.store
                .record_case_event(
                    &case,
                    before,
                    &decided,
                    &meta,
                    seldinger_store::WithCaseEvent {
                        follow_ups: &follow_ups,
                        ..Default::default()
                    },
                )
                .await?;
        }
        anyhow::ensure!(
            case.state == target,
            "demo case reached {} instead of {target}",
            case.state
        );
        if let (Some(done), Some(booking)) = (case.procedure_completed_at, &case.booking) {
            if matches!(booking.room.as_str(), "angio-1" | "angio-2" | "ct-1") {
                self.dose_report(&case, done).await?;
            }
        }
        // What the rooms' systems reported: imaging under way in the room; and once, imaging
        // begun on a checked-in case before its time-out (the imaging review list's example).
        let early = case.state == CaseState::CheckedIn && self.early_imaging == 0;
        if case.state == CaseState::InRoom || early {
            let started = case
                .procedure_started_at
                .or(case.checked_in_at)
                .unwrap_or(self.day_start)
                + Duration::minutes(4);
            if self
                .performed_step(&case, started, None, Default::default())
                .await?
                && early
            {
                self.early_imaging += 1;
            }
        }
        Ok(case)
    }

    /// A performed procedure step (DICOM MPPS) from the case's room's imaging system, as the
    /// listener records one: begun at `started`, completed at `ended` when given, with the dose
    /// the system reported; false when the room has no imaging system.
    async fn performed_step(
        &mut self,
        case: &Case,
        started: DateTime<Utc>,
        ended: Option<DateTime<Utc>>,
        dose: ReportedDose,
    ) -> anyhow::Result<bool> {
        let Some(system) = case
            .booking
            .as_ref()
            .and_then(|b| rooms().into_iter().find(|r| r.id == b.room))
            .and_then(|r| r.equipment.into_iter().next())
        else {
            return Ok(false);
        };
        let uid = format!("2.25.{}", self.id().as_u128());
        let report = StepReport {
            status: Some(StepStatus::InProgress),
            station_ae_title: Some(system.ae_title.as_str().to_string()),
            modality: Some(system.modality.code().to_string()),
            step_id: Some(format!("PPS{}", self.cases)),
            study_instance_uid: case.study_instance_uid.clone(),
            accession_number: case.accession_number.clone(),
            scheduled_step_id: Some("SPS1".into()),
            started_at: Some(started),
            dose: dose.clone(),
            ..Default::default()
        };
        let actor = format!("dicom:{}", system.ae_title.as_str());
        let mut step = PerformedStep::create(&uid, &report, started)?;
        step.case_id = Some(case.id);
        step.link_basis = Some(LinkBasis::AccessionNumber);
        let state_then = if ended.is_some() {
            CaseState::InRoom
        } else {
            case.state
        };
        if let CaseEffect::Review(why) = effect_on_case(&step, state_then, false) {
            step.review = Some(why);
        }
        self.store
            .record_performed_step(
                &step,
                StepMessage::Create,
                &report,
                &self.meta(&actor, started, None),
                &[],
            )
            .await?;
        if let Some(ended) = ended {
            let done = StepReport {
                status: Some(StepStatus::Completed),
                ended_at: Some(ended),
                dose,
                ..Default::default()
            };
            let completed = step.set(&done, ended)?;
            self.store
                .record_performed_step(
                    &completed,
                    StepMessage::Set,
                    &done,
                    &self.meta(&actor, ended, None),
                    &[],
                )
                .await?;
        }
        Ok(true)
    }

    /// A synthetic dose report for a finished fluoroscopy or CT case, through the real ingest
    /// path: about one in eight passes a substantial radiation dose level (§5), so the demo has
    /// skin checks to show, and one report carries a mistyped MRN, so the unmatched queue has one.
    async fn dose_report(&mut self, case: &Case, done: DateTime<Utc>) -> anyhow::Result<()> {
        let patient = self
            .store
            .patient(case.patient_id)
            .await?
            .context("demo patient exists")?;
        let mut mrn = patient.details.mrn.as_str().to_string();
        if self.dose_reports == 3 {
            mrn.push('7');
        }
        let started = case.procedure_started_at.unwrap_or(done) + Duration::minutes(3);
        // The second report is always high, so every demo has a skin check to show.
        let high = self.rng.gen_bool(0.125) || self.dose_reports == 1;
        let kar = if high {
            self.rng.gen_range(5.0..7.5)
        } else {
            self.rng.gen_range(0.05..2.0)
        };
        let kap = kar * self.rng.gen_range(0.08..0.2);
        let fluoro = self.rng.gen_range(120.0..2400.0);
        let uid = format!("2.25.{}", self.id().as_u128());
        let is_ct = case
            .booking
            .as_ref()
            .is_some_and(|b| b.room.as_str() == "ct-1");
        let planes = if is_ct {
            Vec::new()
        } else {
            vec![seldinger_dicom::AccumulatedProjection {
                dose_area_product_total: Some(GrayMetreSquared(kap / 10.0)),
                dose_rp_total: Some(Gray(kar)),
                total_fluoro_time: Some(Seconds(fluoro)),
                plane: Some(("113622".into(), "Single Plane".into())),
                ..Default::default()
            }]
        };
        let ct = is_ct.then(|| seldinger_dicom::rdsr::CtDose {
            dlp_total: Some(GrayMetre::from_milligray_centimetres(
                self.rng.gen_range(200.0..1500.0),
            )),
            acquisitions: Vec::new(),
            units_in_file: Vec::new(),
        });
        let report = seldinger_dicom::DoseReport {
            sop_instance_uid: format!("{uid}.1"),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.88.67".into(),
            study_instance_uid: uid,
            accession_number: None,
            patient_id: Some(mrn),
            study_date: Some(started.format("%Y%m%d").to_string()),
            study_time: Some(started.format("%H%M%S").to_string()),
            manufacturer: Some(
                if is_ct {
                    "Synthetic CT Co"
                } else {
                    "Synthetic Angio Co"
                }
                .into(),
            ),
            model: Some(if is_ct { "CT 128" } else { "Biplane 9000" }.into()),
            station_name: case
                .booking
                .as_ref()
                .map(|b| b.room.as_str().to_uppercase()),
            planes,
            events: Vec::new(),
            ct,
            participants: vec![seldinger_dicom::rdsr::Participant {
                name: "Okafor N".into(),
                role: Some(("113850".into(), "Irradiation Authorizing".into())),
            }],
            totals_from_events: false,
            missing: vec!["Irradiation Event X-Ray Data (113706): synthetic demo report".into()],
        };
        let ingest = seldinger_dicom::ingest::Ingest {
            store: &self.store,
            reference: self.reference,
            station: None,
        };
        ingest
            .report(&report, "demo", done + Duration::minutes(5))
            .await?;
        self.dose_reports += 1;
        if !is_ct {
            // The angio system's own step, with the figures it showed in the room.
            let dose = ReportedDose {
                dose_area_product_gy_m2: Some(kap / 10.0),
                fluoroscopy_time_s: Some(fluoro.round()),
                ..Default::default()
            };
            self.performed_step(case, started - Duration::minutes(1), Some(done), dose)
                .await?;
        }
        Ok(())
    }
}

fn clinician_username(name: &str) -> String {
    name.trim_start_matches("Dr ")
        .replace(['.', ' '], "")
        .to_lowercase()
}

/// What the physician records of a demo procedure: the details, a device for each follow-up that
/// one calls for, and a mild puncture-site bleed after a drain (synthetic, deterministic).
fn procedure_record(
    procedure: &Procedure,
    began: DateTime<Utc>,
    complication_at: DateTime<Utc>,
) -> Vec<CaseEvent> {
    use seldinger_domain::catalogue::FollowUpKind as K;
    use seldinger_domain::procedure_record::{
        Complication, DeviceKind, DeviceLeft, Operator, OperatorRole, Phase, ProcedureDetails,
        SirSeverity, VitalSigns,
    };
    let guidance = procedure
        .modalities
        .first()
        .copied()
        .unwrap_or(GuidanceModality::Fluoroscopy);
    let mut events = vec![CaseEvent::RecordProcedure {
        details: ProcedureDetails {
            operators: vec![
                Operator {
                    name: PERFORMING_PHYSICIAN.into(),
                    role: OperatorRole::Primary,
                },
                Operator {
                    name: "K. Tanaka".into(),
                    role: OperatorRole::Radiographer,
                },
            ],
            guidance,
            access_site: "right common femoral".into(),
            contrast_agent: None,
            contrast_volume_ml: None,
            findings: format!(
                "{} completed as planned (synthetic demo record).",
                procedure.name
            ),
            technical_success: Some(true),
        },
    }];
    // Vital signs at the start and while under way (the second set without a breathing rate,
    // as a busy room records them).
    for (at, heart_rate, systolic, diastolic, spo2, respiratory_rate) in [
        (began, 78, 132, 78, 98, Some(14)),
        (complication_at, 72, 124, 74, 97, None),
    ] {
        events.push(CaseEvent::RecordVitalSigns {
            vitals: VitalSigns {
                at,
                phase: Phase::InRoom,
                heart_rate: Some(heart_rate),
                systolic: Some(systolic),
                diastolic: Some(diastolic),
                spo2: Some(spo2),
                respiratory_rate,
            },
        });
    }
    for kind in &procedure.follow_up {
        let device = match kind {
            K::IvcFilterRetrievalReview => {
                Some((DeviceKind::IvcFilter, "retrievable IVC filter, infrarenal"))
            }
            K::NephrostomyExchange => {
                Some((DeviceKind::Nephrostomy, "8 Fr locking pigtail nephrostomy"))
            }
            K::BiliaryDrainExchange => Some((
                DeviceKind::BiliaryDrain,
                "8.5 Fr internal-external biliary drain",
            )),
            K::GastrostomyExchange => Some((DeviceKind::Gastrostomy, "14 Fr balloon gastrostomy")),
            K::PortFlush => Some((
                DeviceKind::Port,
                "single-lumen chest port, right internal jugular",
            )),
            K::DrainReview => Some((DeviceKind::Drain, "10 Fr locking pigtail drain")),
            _ => None,
        };
        if let Some((kind, description)) = device {
            events.push(CaseEvent::RecordDeviceLeft {
                device: DeviceLeft {
                    kind,
                    description: description.into(),
                    // Scanned labels, synthetic: GS1's own example GTIN, a made-up HIBC labeler.
                    udi_label: match kind {
                        DeviceKind::IvcFilter => {
                            Some("(01)09506000134352(17)300630(10)DEMO-IVC-7(21)F000412".into())
                        }
                        DeviceKind::Port => Some("+A999PORT8F1/$$3310331PL20268".into()),
                        _ => None,
                    },
                    udi: None,
                },
            });
            if kind == DeviceKind::Drain {
                events.push(CaseEvent::RecordComplication {
                    complication: Complication {
                        description: "minor bleeding at the puncture site, settled with pressure"
                            .into(),
                        severity: SirSeverity::Mild,
                        // Settled in the same session without sequelae (§6).
                        cirse_grade: Some(1),
                        at: complication_at,
                    },
                });
            }
        }
    }
    events
}

//! Follow-up tasks: work owed to a patient after the procedure, which must not be lost.
//!
//! They come from radiation dose (clinical-rules.md §5) and, at discharge, from the devices and
//! treatments of the procedure (§7). A task is created once per case and kind, and closed (or
//! withdrawn) with who, when and a note.

use crate::access::Role;
use crate::dose::{DoseAssessment, DoseMeasure};
use crate::ids::{CaseId, PatientId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    /// A substantial radiation dose level was reached: look at the patient's skin (§5).
    DoseSkinCheck,
    /// The dose was high enough for a medical physicist to review it (§5).
    PhysicistDoseReview,
    // Device and treatment follow-up from the procedure catalogue, intervals from §7.
    IvcFilterRetrievalReview,
    NephrostomyExchange,
    BiliaryDrainExchange,
    GastrostomyExchange,
    PortFlush,
    PostAblationImaging,
    PostTaceImaging,
    ClinicReview,
    DrainReview,
    /// Every case: how the patient is 30 days after the procedure, and any adverse event since
    /// (§6: one within 30 days is attributed to the procedure).
    OutcomeCheck,
}

impl FollowUpKind {
    pub const ALL: [FollowUpKind; 12] = [
        FollowUpKind::DoseSkinCheck,
        FollowUpKind::PhysicistDoseReview,
        FollowUpKind::IvcFilterRetrievalReview,
        FollowUpKind::NephrostomyExchange,
        FollowUpKind::BiliaryDrainExchange,
        FollowUpKind::GastrostomyExchange,
        FollowUpKind::PortFlush,
        FollowUpKind::PostAblationImaging,
        FollowUpKind::PostTaceImaging,
        FollowUpKind::ClinicReview,
        FollowUpKind::DrainReview,
        FollowUpKind::OutcomeCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpKind::DoseSkinCheck => "dose_skin_check",
            FollowUpKind::PhysicistDoseReview => "physicist_dose_review",
            FollowUpKind::IvcFilterRetrievalReview => "ivc_filter_retrieval_review",
            FollowUpKind::NephrostomyExchange => "nephrostomy_exchange",
            FollowUpKind::BiliaryDrainExchange => "biliary_drain_exchange",
            FollowUpKind::GastrostomyExchange => "gastrostomy_exchange",
            FollowUpKind::PortFlush => "port_flush",
            FollowUpKind::PostAblationImaging => "post_ablation_imaging",
            FollowUpKind::PostTaceImaging => "post_tace_imaging",
            FollowUpKind::ClinicReview => "clinic_review",
            FollowUpKind::DrainReview => "drain_review",
            FollowUpKind::OutcomeCheck => "outcome_check",
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == value)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "'{value}' is not a follow-up kind; use one of: {}",
                    names.join(", ")
                )
            })
    }

    /// Who does the work.
    pub fn roles(self) -> Vec<Role> {
        match self {
            FollowUpKind::DoseSkinCheck => vec![Role::IrPhysician, Role::IrNurse],
            FollowUpKind::PhysicistDoseReview => vec![Role::MedicalPhysicist],
            FollowUpKind::OutcomeCheck => vec![Role::IrPhysician, Role::IrNurse],
            // Someone books it; a clinician does it.
            _ => vec![Role::IrPhysician, Role::IrNurse, Role::Scheduler],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Completion {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: String,
    /// The 30-day outcome check's finding (§6), coded; other tasks have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<OutcomeFinding>,
}

/// What the 30-day outcome check found (clinical-rules.md §6), so the department knows for how
/// many of its cases the outcome is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OutcomeFinding {
    /// Reached (patient, ward, referrer or record): no adverse event since the procedure.
    NoAdverseEvent,
    /// An adverse event since the procedure, reported on the case.
    AdverseEventReported,
    /// Not reached: the outcome stays unknown.
    NotReached,
}

impl OutcomeFinding {
    pub const ALL: [OutcomeFinding; 3] = [
        OutcomeFinding::NoAdverseEvent,
        OutcomeFinding::AdverseEventReported,
        OutcomeFinding::NotReached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeFinding::NoAdverseEvent => "no_adverse_event",
            OutcomeFinding::AdverseEventReported => "adverse_event_reported",
            OutcomeFinding::NotReached => "not_reached",
        }
    }

    pub fn parse(text: &str) -> Option<OutcomeFinding> {
        OutcomeFinding::ALL.into_iter().find(|f| f.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            OutcomeFinding::NoAdverseEvent => "reached: no adverse event",
            OutcomeFinding::AdverseEventReported => "adverse event (reported on the case)",
            OutcomeFinding::NotReached => "not reached: outcome unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FollowUpTask {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: Uuid,
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub kind: FollowUpKind,
    /// Not before (a skin check too early misses late erythema).
    pub due_from: DateTime<Utc>,
    /// Overdue after this, when the rule gives an end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_until: Option<DateTime<Utc>>,
    /// What to do, for the person doing it.
    pub instructions: String,
    pub roles: Vec<Role>,
    /// The rule that created it.
    pub citation: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Completion>,
    /// Taken back because what called for it no longer holds (e.g. the dose report that reached
    /// the level was moved to another patient's case): who, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<Completion>,
    pub version: u64,
}

/// Where a task stands at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    NotYetDue,
    Due,
    Overdue,
    Done,
    Withdrawn,
}

impl TaskStatus {
    pub const ALL: &'static [TaskStatus] = &[
        TaskStatus::NotYetDue,
        TaskStatus::Due,
        TaskStatus::Overdue,
        TaskStatus::Done,
        TaskStatus::Withdrawn,
    ];

    /// A name for styling and selectors.
    pub fn class(self) -> &'static str {
        match self {
            TaskStatus::NotYetDue => "not-yet-due",
            TaskStatus::Due => "due",
            TaskStatus::Overdue => "overdue",
            TaskStatus::Done => "done",
            TaskStatus::Withdrawn => "withdrawn",
        }
    }
}

impl FollowUpTask {
    pub fn status(&self, now: DateTime<Utc>) -> TaskStatus {
        if self.withdrawn.is_some() {
            TaskStatus::Withdrawn
        } else if self.completed.is_some() {
            TaskStatus::Done
        } else if now < self.due_from {
            TaskStatus::NotYetDue
        } else if self.due_until.is_some_and(|until| now > until) {
            TaskStatus::Overdue
        } else {
            TaskStatus::Due
        }
    }

    /// Closes the task. The note says what was found or done; it is required.
    pub fn complete(&self, by: &str, at: DateTime<Utc>, note: &str) -> Result<Self, String> {
        self.complete_with(by, at, note, None).map_err(|(_, e)| e)
    }

    /// Closes the task with what was found: the outcome check with its coded finding (§6,
    /// required), any other task without one. A refusal names its field (`note`, `finding`).
    pub fn complete_with(
        &self,
        by: &str,
        at: DateTime<Utc>,
        note: &str,
        finding: Option<OutcomeFinding>,
    ) -> Result<Self, (&'static str, String)> {
        if self.completed.is_some() {
            return Err(("note", "the task is already done".into()));
        }
        if let Some(w) = &self.withdrawn {
            return Err((
                "note",
                format!("the task was withdrawn by {}: {}", w.by, w.note),
            ));
        }
        match (self.kind, finding) {
            (FollowUpKind::OutcomeCheck, None) => {
                return Err((
                    "finding",
                    "required for the 30-day outcome check (§6): no_adverse_event, adverse_event_reported or not_reached".into(),
                ))
            }
            (FollowUpKind::OutcomeCheck, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err((
                    "finding",
                    "only the 30-day outcome check takes a finding".into(),
                ))
            }
        }
        let note = crate::validation::optional_text(Some(note), crate::validation::LONG_TEXT)
            .map_err(|e| ("note", e))?
            .ok_or(("note", "say what was found or done".to_string()))?;
        Ok(FollowUpTask {
            completed: Some(Completion {
                by: by.to_string(),
                at,
                note,
                finding,
            }),
            version: self.version + 1,
            ..self.clone()
        })
    }

    /// Takes an open task back, saying why; a done task stays as it was (what was found stands).
    pub fn withdraw(&self, by: &str, at: DateTime<Utc>, why: &str) -> Option<Self> {
        if self.completed.is_some() || self.withdrawn.is_some() {
            return None;
        }
        Some(FollowUpTask {
            withdrawn: Some(Completion {
                by: by.to_string(),
                at,
                finding: None,
                note: why.trim().to_string(),
            }),
            version: self.version + 1,
            ..self.clone()
        })
    }

    /// A withdrawn task called for again (a new rule result): open once more, with the windows
    /// and instructions of `wanted`, keeping its id and history.
    pub fn reinstate(&self, wanted: &FollowUpTask) -> Option<Self> {
        self.withdrawn.as_ref()?;
        Some(FollowUpTask {
            id: self.id,
            created_at: self.created_at,
            withdrawn: None,
            completed: None,
            version: self.version + 1,
            ..wanted.clone()
        })
    }
}

/// The open dose tasks (§5) a case no longer needs once a report has left it: those its
/// remaining reports' assessment (`None`: no reports left) does not call for.
pub fn dose_tasks_no_longer_needed<'a>(
    open: &'a [FollowUpTask],
    remaining: Option<&DoseAssessment>,
) -> Vec<&'a FollowUpTask> {
    let needed: Vec<FollowUpKind> = open
        .first()
        .zip(remaining)
        .map(|(t, a)| {
            dose_follow_ups(t.case_id, t.patient_id, a, t.created_at, Uuid::nil)
                .into_iter()
                .map(|task| task.kind)
                .collect()
        })
        .unwrap_or_default();
    open.iter()
        .filter(|t| {
            matches!(
                t.kind,
                FollowUpKind::DoseSkinCheck | FollowUpKind::PhysicistDoseReview
            )
        })
        .filter(|t| t.completed.is_none() && t.withdrawn.is_none())
        .filter(|t| !needed.contains(&t.kind))
        .collect()
}

fn measure_name(measure: DoseMeasure) -> &'static str {
    match measure {
        DoseMeasure::ReferenceAirKerma => "reference-point air kerma",
        DoseMeasure::PeakSkinDose => "peak skin dose",
        DoseMeasure::KermaAreaProduct => "kerma-area product",
        DoseMeasure::FluoroscopyTime => "fluoroscopy time",
    }
}

fn levels_text(assessment: &DoseAssessment) -> String {
    assessment
        .levels_reached
        .iter()
        .map(|l| {
            format!(
                "{} {:.3} {} (level {} {})",
                measure_name(l.measure),
                l.value,
                l.unit,
                l.level,
                l.unit
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The tasks §5 asks for after a procedure with this assessment. `ids` supplies one fresh id per
/// task (the domain does not generate ids).
pub fn dose_follow_ups(
    case_id: CaseId,
    patient_id: PatientId,
    assessment: &DoseAssessment,
    now: DateTime<Utc>,
    mut ids: impl FnMut() -> Uuid,
) -> Vec<FollowUpTask> {
    let mut tasks = Vec::new();
    let task = |kind, due_from, due_until, instructions: String, id| FollowUpTask {
        id,
        case_id,
        patient_id,
        kind,
        due_from,
        due_until,
        instructions,
        roles: FollowUpKind::roles(kind),
        citation: assessment.citation.clone(),
        created_at: now,
        completed: None,
        withdrawn: None,
        version: 1,
    };
    if let Some(window) = &assessment.skin_check {
        tasks.push(task(
            FollowUpKind::DoseSkinCheck,
            window.from,
            Some(window.until),
            format!(
                "Substantial radiation dose: {}. See the patient or call them and look at the skin where the beam entered (usually the back) for redness, hair loss or breakdown; record what you find.",
                levels_text(assessment)
            ),
            ids(),
        ));
    }
    if assessment.physicist_review {
        tasks.push(task(
            FollowUpKind::PhysicistDoseReview,
            now,
            None,
            format!(
                "Dose above the physicist review level: {}. Estimate the peak skin dose and its location, and advise on follow-up.",
                levels_text(assessment)
            ),
            ids(),
        ));
    }
    tasks
}

/// A plain-language paragraph for the patient's discharge instructions, when §5 asks that the
/// patient be told. The dates are the skin-check window.
pub fn dose_discharge_note(
    assessment: &DoseAssessment,
    time: &crate::DepartmentTime,
) -> Option<String> {
    let window = assessment.skin_check.as_ref()?;
    Some(format!(
        "Your procedure needed more X-ray use than most. Rarely, this can cause skin changes where the X-rays entered your body, usually on your back: redness like sunburn, itching, or hair loss, appearing days to weeks later. We will check your skin between {} and {}. If you notice any of these changes before then, please call the interventional radiology department.",
        time.format(window.from, "%-d %B %Y"),
        time.format(window.until, "%-d %B %Y")
    ))
}

/// The window after `at` a §7 row gives, by its unit: days, weeks or calendar months (the
/// reference refuses any other unit for these rows at load). An interval too large for the
/// calendar (a mistyped table) is due at once rather than a panic on the discharge.
fn after(at: DateTime<Utc>, threshold: &crate::safety::reference::Threshold) -> DateTime<Utc> {
    let whole = threshold.value.round() as i64;
    let later = match threshold.unit.as_str() {
        "mo" => u32::try_from(whole)
            .ok()
            .and_then(|months| at.checked_add_months(chrono::Months::new(months))),
        "wk" => chrono::Duration::try_weeks(whole).and_then(|d| at.checked_add_signed(d)),
        _ => chrono::Duration::try_days(whole).and_then(|d| at.checked_add_signed(d)),
    };
    later.unwrap_or(at)
}

/// The follow-up a procedure's catalogue entry asks for, created at discharge with the §7
/// windows from the reference table. Kinds with no interval in §7 (clinic review, drain review)
/// are due at once: someone must arrange them.
pub fn procedure_follow_ups(
    case_id: CaseId,
    patient_id: PatientId,
    procedure: &crate::catalogue::Procedure,
    discharged_at: DateTime<Utc>,
    reference: &crate::safety::SafetyReference,
    mut ids: impl FnMut() -> Uuid,
) -> Vec<FollowUpTask> {
    use crate::catalogue::FollowUpKind as C;
    use crate::safety::ThresholdId as T;
    let window = |from: T, until: T| {
        (
            after(discharged_at, reference.threshold(from)),
            Some(after(discharged_at, reference.threshold(until))),
        )
    };
    procedure
        .follow_up
        .iter()
        .map(|kind| {
            let (kind, (due_from, due_until), instructions) = match kind {
                C::IvcFilterRetrievalReview => (
                    FollowUpKind::IvcFilterRetrievalReview,
                    window(T::FollowupIvcFilterRetrievalFromDays, T::FollowupIvcFilterRetrievalUntilDays),
                    "Retrievable IVC filter in place: review whether the PE risk has passed and book its removal within the window.",
                ),
                C::NephrostomyExchange => (
                    FollowUpKind::NephrostomyExchange,
                    window(T::FollowupNephrostomyExchangeFromWeeks, T::FollowupNephrostomyExchangeUntilWeeks),
                    "Nephrostomy in place: book the routine exchange.",
                ),
                C::BiliaryDrainExchange => (
                    FollowUpKind::BiliaryDrainExchange,
                    window(T::FollowupBiliaryDrainExchangeFromWeeks, T::FollowupBiliaryDrainExchangeUntilWeeks),
                    "Internal-external biliary drain in place: book the routine exchange.",
                ),
                C::GastrostomyExchange => (
                    FollowUpKind::GastrostomyExchange,
                    window(T::FollowupGastrostomyExchangeFromMonths, T::FollowupGastrostomyExchangeUntilMonths),
                    "Balloon gastrostomy in place: book the exchange.",
                ),
                C::PortFlush => (
                    FollowUpKind::PortFlush,
                    window(T::FollowupPortFlushWeeks, T::FollowupPortFlushWeeks),
                    "Implanted port: flush it if it is not in use.",
                ),
                C::PostAblationImaging => (
                    FollowUpKind::PostAblationImaging,
                    window(T::FollowupPostAblationImagingMonths, T::FollowupPostAblationImagingMonths),
                    "After tumour ablation: contrast CT or MRI, then every 3 months in the first year.",
                ),
                C::PostTaceImaging => (
                    FollowUpKind::PostTaceImaging,
                    window(T::FollowupPostTaceImagingFromWeeks, T::FollowupPostTaceImagingUntilWeeks),
                    "After TACE: imaging to assess response.",
                ),
                C::ClinicReview => (
                    FollowUpKind::ClinicReview,
                    (discharged_at, None),
                    "Arrange the clinic review of results and next steps.",
                ),
                C::DrainReview => (
                    FollowUpKind::DrainReview,
                    (discharged_at, None),
                    "Review the drain output and decide when it can come out.",
                ),
            };
            FollowUpTask {
                id: ids(),
                case_id,
                patient_id,
                kind,
                due_from,
                due_until,
                instructions: instructions.to_string(),
                roles: kind.roles(),
                citation: "clinical-rules.md §7".into(),
                created_at: discharged_at,
                completed: None,
                withdrawn: None,
                version: 1,
            }
        })
        .collect()
}

/// The follow-up a case event brings, to be stored with it: at discharge, the device and
/// treatment follow-up the case's procedure needs (§7); any other event brings none.
pub fn follow_ups_of_event(
    event: &crate::lifecycle::CaseEvent,
    after: &crate::lifecycle::Case,
    catalogue: &crate::catalogue::ProcedureCatalogue,
    at: DateTime<Utc>,
    reference: &crate::safety::SafetyReference,
    ids: impl FnMut() -> Uuid,
) -> Vec<FollowUpTask> {
    if !matches!(event, crate::lifecycle::CaseEvent::Discharge) {
        return Vec::new();
    }
    let mut ids = ids;
    let mut tasks: Vec<FollowUpTask> = after
        .vetting
        .as_ref()
        .and_then(|v| catalogue.get(&v.procedure_id))
        .map(|procedure| {
            procedure_follow_ups(
                after.id,
                after.patient_id,
                procedure,
                at,
                reference,
                &mut ids,
            )
        })
        .unwrap_or_default();
    tasks.push(outcome_check(after, at, reference, ids()));
    tasks
}

/// Every case's outcome check (§6): due when the attribution window after the procedure ends.
pub(crate) fn outcome_check(
    case: &crate::lifecycle::Case,
    discharged_at: DateTime<Utc>,
    reference: &crate::safety::SafetyReference,
    id: Uuid,
) -> FollowUpTask {
    let procedure = case.procedure_started_at.unwrap_or(discharged_at);
    let threshold = reference.threshold(crate::safety::ThresholdId::OutcomeCheckAfterDays);
    FollowUpTask {
        id,
        case_id: case.id,
        patient_id: case.patient_id,
        kind: FollowUpKind::OutcomeCheck,
        due_from: after(procedure, threshold),
        due_until: None,
        instructions: format!(
            "Outcome check {} days after the procedure: contact the patient or review the record, and record any adverse event since (with its SIR severity and CIRSE grade); one within this window is attributed to the procedure unless a physician records otherwise.",
            threshold.value.round()
        ),
        roles: FollowUpKind::OutcomeCheck.roles(),
        citation: "clinical-rules.md §6".into(),
        created_at: discharged_at,
        completed: None,
        withdrawn: None,
        version: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dose::{assess, DoseTotals, Gray, GrayMetreSquared};
    use crate::safety::SafetyReference;
    use chrono::TimeZone;

    fn reference() -> SafetyReference {
        SafetyReference::parse(
            include_str!("../../../catalog/safety-thresholds.toml"),
            "safety-thresholds.toml",
        )
        .expect("reference")
    }

    fn end() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn tasks_for(kar_gray: f64) -> Vec<FollowUpTask> {
        let reference = reference();
        let totals = DoseTotals {
            reference_air_kerma: Some(Gray(kar_gray)),
            kerma_area_product: Some(GrayMetreSquared(0.001)),
            ..DoseTotals::default()
        };
        let assessment = assess(&totals, end(), &reference);
        let mut n = 0u128;
        dose_follow_ups(
            CaseId(Uuid::from_u128(100)),
            PatientId(Uuid::from_u128(101)),
            &assessment,
            end(),
            || {
                n += 1;
                Uuid::from_u128(n)
            },
        )
    }

    #[test]
    fn below_every_level_nothing_is_owed() {
        assert!(tasks_for(0.5).is_empty());
    }

    #[test]
    fn a_substantial_dose_owes_a_skin_check_in_the_window_for_physician_and_nurse() {
        let reference = reference();
        let level = reference
            .threshold(crate::safety::ThresholdId::DoseSrdlReferenceAirKerma)
            .value;
        let tasks = tasks_for(level);
        assert_eq!(tasks.len(), 1);
        let skin = &tasks[0];
        assert_eq!(skin.kind, FollowUpKind::DoseSkinCheck);
        assert!(skin.due_from > end() && skin.due_until.is_some_and(|u| u > skin.due_from));
        assert_eq!(skin.roles, vec![Role::IrPhysician, Role::IrNurse]);
        assert_eq!(skin.status(end()), TaskStatus::NotYetDue);
        assert_eq!(skin.status(skin.due_from), TaskStatus::Due);
        let late = skin.due_until.expect("until") + chrono::Duration::seconds(1);
        assert_eq!(skin.status(late), TaskStatus::Overdue);
    }

    #[test]
    fn above_the_review_level_a_physicist_review_is_due_now() {
        let reference = reference();
        let review = reference
            .threshold(crate::safety::ThresholdId::DosePhysicistReviewReferenceAirKermaAbove)
            .value;
        let tasks = tasks_for(review + 0.1);
        let kinds: Vec<_> = tasks.iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            vec![
                FollowUpKind::DoseSkinCheck,
                FollowUpKind::PhysicistDoseReview
            ]
        );
        assert_eq!(tasks[1].status(end()), TaskStatus::Due);
        assert_eq!(tasks[1].roles, vec![Role::MedicalPhysicist]);
    }

    #[test]
    fn completing_needs_a_note_and_happens_once() {
        let reference = reference();
        let level = reference
            .threshold(crate::safety::ThresholdId::DoseSrdlReferenceAirKerma)
            .value;
        let task = tasks_for(level).remove(0);
        assert!(task.complete("nurse", end(), "  ").is_err());
        let done = task.complete("nurse", end(), "no erythema").expect("done");
        assert_eq!(done.status(end()), TaskStatus::Done);
        assert_eq!(done.version, 2);
        assert!(done.complete("nurse", end(), "again").is_err());
    }

    #[test]
    fn tasks_a_moved_report_no_longer_supports_are_withdrawn_and_can_come_back() {
        let reference = reference();
        let review = reference
            .threshold(crate::safety::ThresholdId::DosePhysicistReviewReferenceAirKermaAbove)
            .value;
        let level = reference
            .threshold(crate::safety::ThresholdId::DoseSrdlReferenceAirKerma)
            .value;
        let open = tasks_for(review + 0.1);
        let assessment = |kar: f64| {
            let totals = DoseTotals {
                reference_air_kerma: Some(Gray(kar)),
                ..DoseTotals::default()
            };
            assess(&totals, end(), &reference)
        };
        let kinds = |tasks: Vec<&FollowUpTask>| tasks.iter().map(|t| t.kind).collect::<Vec<_>>();
        // What remains still reaches the SRDL but not the review level: only the review goes.
        assert_eq!(
            kinds(dose_tasks_no_longer_needed(&open, Some(&assessment(level)))),
            [FollowUpKind::PhysicistDoseReview]
        );
        assert_eq!(
            kinds(dose_tasks_no_longer_needed(&open, None)),
            [
                FollowUpKind::DoseSkinCheck,
                FollowUpKind::PhysicistDoseReview
            ],
            "no reports left"
        );
        // A task already done stays done.
        let done = vec![open[0]
            .complete("nurse", end(), "no erythema")
            .expect("done")];
        assert!(dose_tasks_no_longer_needed(&done, None).is_empty());

        let withdrawn = open[0]
            .withdraw("physicist", end(), "report moved to the right patient")
            .expect("open");
        assert_eq!(withdrawn.status(end()), TaskStatus::Withdrawn);
        assert_eq!(withdrawn.version, 2);
        assert!(withdrawn.withdraw("physicist", end(), "again").is_none());
        let refused = withdrawn
            .complete("nurse", end(), "seen")
            .expect_err("withdrawn");
        assert!(refused.contains("withdrawn by physicist"), "{refused}");
        let back = withdrawn.reinstate(&open[0]).expect("withdrawn");
        assert_eq!((back.id, back.version), (open[0].id, 3));
        assert_eq!(back.status(open[0].due_from), TaskStatus::Due);
        assert!(
            open[0].reinstate(&open[0]).is_none(),
            "only a withdrawn task"
        );
    }

    #[test]
    fn the_discharge_note_gives_the_window_in_plain_words() {
        let reference = reference();
        let level = reference
            .threshold(crate::safety::ThresholdId::DoseSrdlReferenceAirKerma)
            .value;
        let totals = DoseTotals {
            reference_air_kerma: Some(Gray(level)),
            ..DoseTotals::default()
        };
        let note = dose_discharge_note(
            &assess(&totals, end(), &reference),
            &crate::DepartmentTime::default(),
        )
        .expect("note");
        assert!(note.contains("December 2026"), "{note}");
        let below = DoseTotals {
            reference_air_kerma: Some(Gray(0.1)),
            ..DoseTotals::default()
        };
        assert_eq!(
            dose_discharge_note(
                &assess(&below, end(), &reference),
                &crate::DepartmentTime::default()
            ),
            None
        );
    }
}

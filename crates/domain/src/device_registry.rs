//! The device registry's rules (clinical-rules.md §7, v2): every device left in a patient is
//! tracked until it is removed, exchanged, or an IR physician declares it permanent with a reason —
//! "no device without a plan and a date". A device is the `n`th one its case recorded; its life
//! after placement is a stream of [`DeviceEvent`]s. What each device's plan is, where a retrievable
//! IVC filter stands in its window, and the department's retrieval measures (§6: "retrievable IVC
//! filter retrieval or documented plan") are computed here, at a `now` the caller gives.

use crate::followup::{FollowUpKind, FollowUpTask, TaskStatus};
use crate::procedure_record::{DeviceKind, DeviceLeft};
use crate::validation::Collector;
use crate::{CaseId, PatientId, ValidationErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A device: the case that placed it and its place in that case's list (as FHIR's
/// `Device/device-<case>-<n>` names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceRef {
    pub case_id: CaseId,
    pub index: usize,
}

impl DeviceRef {
    /// The stream id of its life events.
    pub fn stream_id(&self) -> String {
        format!("{}-{}", self.case_id, self.index)
    }

    /// Reads a stream id back (`<case uuid>-<n>`); None for anything else.
    pub fn parse(text: &str) -> Option<DeviceRef> {
        let (case, index) = text.trim().rsplit_once('-')?;
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) || index.len() > 4 {
            return None;
        }
        Some(DeviceRef {
            case_id: CaseId(uuid::Uuid::parse_str(case).ok()?),
            index: index.parse().ok()?,
        })
    }
}

/// What happened to a device after it was placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeviceEvent {
    /// Taken out (an IVC filter retrieved, a drain or line removed), in a case or at the bedside.
    Removed {
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_case: Option<CaseId>,
        note: String,
    },
    /// Replaced by a new one (recorded as a device of the exchanging case).
    Exchanged {
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_case: Option<CaseId>,
        note: String,
    },
    /// To stay: an IR physician's decision, with the reason (§7). The permission is the caller's
    /// to check (docs/roles.md: IR physicians only).
    DeclaredPermanent { reason: String },
}

impl DeviceEvent {
    /// The event's kind as the event log names it.
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceEvent::Removed { .. } => "removed",
            DeviceEvent::Exchanged { .. } => "exchanged",
            DeviceEvent::DeclaredPermanent { .. } => "declared_permanent",
        }
    }

    /// One line for a history: what happened and the words given.
    pub fn summary(&self) -> String {
        match self {
            DeviceEvent::Removed { note, .. } => format!("removed: {note}"),
            DeviceEvent::Exchanged { note, .. } => format!("exchanged: {note}"),
            DeviceEvent::DeclaredPermanent { reason } => format!("declared permanent: {reason}"),
        }
    }
}

/// Where a device's life stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LifeState {
    InPlace,
    Removed { at: DateTime<Utc> },
    Exchanged { at: DateTime<Utc> },
    Permanent { reason: String },
}

impl LifeState {
    /// Its name, as the registry's `life` column and the API's filter hold it.
    pub fn as_str(&self) -> &'static str {
        match self {
            LifeState::InPlace => "in_place",
            LifeState::Removed { .. } => "removed",
            LifeState::Exchanged { .. } => "exchanged",
            LifeState::Permanent { .. } => "permanent",
        }
    }

    pub const NAMES: [&'static str; 4] = ["in_place", "removed", "exchanged", "permanent"];
}

/// A tracked device: what was placed, where, when, and what has happened since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedDevice {
    pub device: DeviceRef,
    pub patient_id: PatientId,
    pub placed: DeviceLeft,
    pub placed_at: DateTime<Utc>,
    pub state: LifeState,
    /// Events applied.
    pub version: u64,
}

impl TrackedDevice {
    pub fn placed(
        device: DeviceRef,
        patient_id: PatientId,
        placed: DeviceLeft,
        placed_at: DateTime<Utc>,
    ) -> TrackedDevice {
        TrackedDevice {
            device,
            patient_id,
            placed,
            placed_at,
            state: LifeState::InPlace,
            version: 0,
        }
    }

    pub fn in_place(&self) -> bool {
        self.state == LifeState::InPlace
    }

    /// Checks an event against the device's life at `now`: its text trimmed and required, its time
    /// neither before the placement nor in the future, and only a device in place can change.
    pub fn decide(
        &self,
        event: &DeviceEvent,
        now: DateTime<Utc>,
    ) -> Result<DeviceEvent, ValidationErrors> {
        let mut c = Collector::new();
        if !self.in_place() {
            c.push(
                "event",
                format!(
                    "this device is no longer in place ({}): correct that record instead",
                    match &self.state {
                        LifeState::Permanent { .. } => "declared permanent",
                        other => other.as_str(),
                    }
                ),
            );
        }
        let mut when = |at: DateTime<Utc>| {
            if at < self.placed_at {
                c.push("at", "must not be before the device was placed".to_string());
            } else if at > now {
                c.push("at", "must not be in the future".to_string());
            }
        };
        let decided = match event {
            DeviceEvent::Removed { at, in_case, note }
            | DeviceEvent::Exchanged { at, in_case, note } => {
                when(*at);
                let note = required(&mut c, "note", note);
                let (at, in_case) = (*at, *in_case);
                if matches!(event, DeviceEvent::Removed { .. }) {
                    DeviceEvent::Removed { at, in_case, note }
                } else {
                    DeviceEvent::Exchanged { at, in_case, note }
                }
            }
            DeviceEvent::DeclaredPermanent { reason } => DeviceEvent::DeclaredPermanent {
                reason: required(&mut c, "reason", reason),
            },
        };
        c.finish()?;
        Ok(decided)
    }

    pub fn apply(&mut self, event: &DeviceEvent) {
        self.state = match event {
            DeviceEvent::Removed { at, .. } => LifeState::Removed { at: *at },
            DeviceEvent::Exchanged { at, .. } => LifeState::Exchanged { at: *at },
            DeviceEvent::DeclaredPermanent { reason } => LifeState::Permanent {
                reason: reason.clone(),
            },
        };
        self.version += 1;
    }
}

fn required(c: &mut Collector, field: &str, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        c.push(
            field,
            "required: say what was done or decided, and why".to_string(),
        );
    } else if value.chars().count() > 2000 {
        c.push(field, "at most 2000 characters".to_string());
    }
    value.to_string()
}

/// The §7 follow-up that keeps a kind of device on someone's list (none for lines, stents and
/// others: they need a plan of their own or a permanent decision).
pub fn follow_up_of(kind: DeviceKind) -> Option<FollowUpKind> {
    match kind {
        DeviceKind::IvcFilter => Some(FollowUpKind::IvcFilterRetrievalReview),
        DeviceKind::Nephrostomy => Some(FollowUpKind::NephrostomyExchange),
        DeviceKind::BiliaryDrain => Some(FollowUpKind::BiliaryDrainExchange),
        DeviceKind::Gastrostomy => Some(FollowUpKind::GastrostomyExchange),
        DeviceKind::Port => Some(FollowUpKind::PortFlush),
        DeviceKind::Drain => Some(FollowUpKind::DrainReview),
        DeviceKind::Picc | DeviceKind::CentralLine | DeviceKind::Stent | DeviceKind::Other => None,
    }
}

/// A device's plan at `now` (§7: no device without a plan and a date).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "plan", rename_all = "snake_case")]
pub enum Plan {
    /// Out of the patient: nothing more is owed for it.
    Ended,
    /// Staying, by an IR physician's decision.
    Permanent,
    /// Its follow-up is owed: from, until (when §7 gives an end), and whether that has passed.
    FollowUp {
        due_from: DateTime<Utc>,
        due_until: Option<DateTime<Utc>>,
        overdue: bool,
    },
    /// Its case has not been discharged yet: its §7 follow-up is made at discharge.
    AtDischarge,
    /// In place with no follow-up open and no decision: flagged.
    NoPlan,
}

/// The plan of a device, given the follow-up tasks of the case that placed it and whether that
/// case has been discharged (the follow-up is made then).
pub fn plan(
    device: &TrackedDevice,
    case_tasks: &[FollowUpTask],
    discharged: bool,
    now: DateTime<Utc>,
) -> Plan {
    match &device.state {
        LifeState::Removed { .. } | LifeState::Exchanged { .. } => return Plan::Ended,
        LifeState::Permanent { .. } => return Plan::Permanent,
        LifeState::InPlace => {}
    }
    if !discharged {
        return Plan::AtDischarge;
    }
    let owed = follow_up_of(device.placed.kind).and_then(|kind| {
        case_tasks
            .iter()
            .filter(|t| t.kind == kind && t.case_id == device.device.case_id)
            .filter(|t| {
                matches!(
                    t.status(now),
                    TaskStatus::NotYetDue | TaskStatus::Due | TaskStatus::Overdue
                )
            })
            .min_by_key(|t| t.due_from)
    });
    match owed {
        Some(task) => Plan::FollowUp {
            due_from: task.due_from,
            due_until: task.due_until,
            overdue: task.status(now) == TaskStatus::Overdue,
        },
        None => Plan::NoPlan,
    }
}

/// The follow-up tasks a device's event settles: once no device of its kind from its case is left
/// in place, the case's open task for that kind is done — with what was done as its note — so a
/// retrieved filter is not left overdue on the follow-up list. `others` are the case's other
/// devices; `by` and `at` are the event's.
pub fn tasks_settled_by(
    device: &TrackedDevice,
    event: &DeviceEvent,
    others: &[TrackedDevice],
    case_tasks: &[FollowUpTask],
    by: &str,
    at: DateTime<Utc>,
) -> Vec<FollowUpTask> {
    let Some(kind) = follow_up_of(device.placed.kind) else {
        return Vec::new();
    };
    let another_in_place = others.iter().any(|o| {
        o.device != device.device
            && o.device.case_id == device.device.case_id
            && o.placed.kind == device.placed.kind
            && o.in_place()
    });
    if another_in_place {
        return Vec::new();
    }
    let note = format!("{} {}", device.placed.kind.label(), event.summary());
    case_tasks
        .iter()
        .filter(|t| t.kind == kind && t.case_id == device.device.case_id)
        .filter(|t| t.completed.is_none() && t.withdrawn.is_none())
        .filter_map(|t| t.complete(by, at, &note).ok())
        .collect()
}

/// A proportion with its 95% Wilson score interval (Wilson 1927; z = 1.96), the interval the
/// quality measures report (§6: "with their 95% confidence interval").
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub numerator: u32,
    pub denominator: u32,
    /// None when nothing was counted.
    pub proportion: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl Rate {
    pub fn of(numerator: u32, denominator: u32) -> Rate {
        if denominator == 0 {
            return Rate {
                numerator,
                denominator,
                proportion: None,
                low: None,
                high: None,
            };
        }
        let z = 1.959_963_984_540_054_f64;
        let n = f64::from(denominator);
        let p = f64::from(numerator) / n;
        let centre = p + z * z / (2.0 * n);
        let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        let scale = 1.0 + z * z / n;
        Rate {
            numerator,
            denominator,
            proportion: Some(p),
            low: Some(((centre - spread) / scale).max(0.0)),
            high: Some(((centre + spread) / scale).min(1.0)),
        }
    }
}

/// The retrievable IVC filters placed in a period, and where they stand at `now`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterMeasures {
    pub placed: u32,
    pub retrieved: u32,
    pub permanent: u32,
    /// Past the retrieval window with neither retrieval nor a permanent decision (§7).
    pub overdue: u32,
    /// Retrieved / placed.
    pub retrieval: Rate,
    /// Retrieved or declared permanent / placed: §6's "retrieval or documented plan".
    pub retrieval_or_plan: Rate,
    /// Overdue / placed: lost to follow-up.
    pub lost_to_follow_up: Rate,
}

/// Counts the filters among `devices` placed in `[from, until)`, each with its [`plan`] now.
pub fn filter_measures(
    devices: &[(&TrackedDevice, &Plan)],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> FilterMeasures {
    let (mut placed, mut retrieved, mut permanent, mut overdue) = (0, 0, 0, 0);
    for (device, plan) in devices {
        if device.placed.kind != DeviceKind::IvcFilter
            || device.placed_at < from
            || device.placed_at >= until
        {
            continue;
        }
        placed += 1;
        match plan {
            Plan::Ended => retrieved += 1,
            Plan::Permanent => permanent += 1,
            Plan::FollowUp { overdue: true, .. } => overdue += 1,
            // No task left and still in place: nobody is following it (§7 counts it against the
            // department).
            Plan::NoPlan => overdue += 1,
            Plan::FollowUp { .. } | Plan::AtDischarge => {}
        }
    }
    FilterMeasures {
        placed,
        retrieved,
        permanent,
        overdue,
        retrieval: Rate::of(retrieved, placed),
        retrieval_or_plan: Rate::of(retrieved + permanent, placed),
        lost_to_follow_up: Rate::of(overdue, placed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::followup::Completion;
    use chrono::{Duration, TimeZone};
    use uuid::Uuid;

    /// Ids from a counter: the domain never makes random ones.
    fn case_id(n: u128) -> CaseId {
        CaseId(Uuid::from_u128(n))
    }

    fn patient() -> PatientId {
        PatientId(Uuid::from_u128(7))
    }

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0)
            .single()
            .expect("time")
            + Duration::days(day)
    }

    fn filter(case: CaseId) -> TrackedDevice {
        TrackedDevice::placed(
            DeviceRef {
                case_id: case,
                index: 0,
            },
            patient(),
            DeviceLeft {
                kind: DeviceKind::IvcFilter,
                description: "retrievable IVC filter".into(),
                udi_label: None,
                udi: None,
            },
            at(0),
        )
    }

    fn review(case: CaseId) -> FollowUpTask {
        FollowUpTask {
            id: Uuid::nil(),
            case_id: case,
            patient_id: patient(),
            kind: FollowUpKind::IvcFilterRetrievalReview,
            due_from: at(29),
            due_until: Some(at(54)),
            instructions: String::new(),
            roles: Vec::new(),
            citation: "§7".into(),
            created_at: at(0),
            completed: None,
            withdrawn: None,
            version: 1,
        }
    }

    #[test]
    fn a_device_in_place_has_a_plan_or_is_flagged() {
        let case = case_id(1);
        let device = filter(case);
        let tasks = vec![review(case)];
        assert_eq!(
            plan(&device, &tasks, true, at(10)),
            Plan::FollowUp {
                due_from: at(29),
                due_until: Some(at(54)),
                overdue: false
            }
        );
        assert!(matches!(
            plan(&device, &tasks, true, at(60)),
            Plan::FollowUp { overdue: true, .. }
        ));
        // The review closed but the filter still in: no plan any more.
        let mut done = review(case);
        done.completed = Some(Completion {
            by: "dr.okafor".into(),
            at: at(30),
            note: "PE risk persists; review again".into(),
            finding: None,
        });
        assert_eq!(plan(&device, &[done], true, at(31)), Plan::NoPlan);
        assert_eq!(plan(&device, &[], true, at(1)), Plan::NoPlan);
        // Before discharge the follow-up is yet to be made: not flagged.
        assert_eq!(plan(&device, &[], false, at(1)), Plan::AtDischarge);
    }

    #[test]
    fn a_device_leaves_the_list_only_by_removal_exchange_or_a_permanent_decision() {
        let case = case_id(2);
        let mut device = filter(case);
        let too_early = DeviceEvent::Removed {
            at: at(-1),
            in_case: None,
            note: "retrieved".into(),
        };
        let errors = device
            .decide(&too_early, at(40))
            .expect_err("before placement")
            .0;
        assert_eq!(errors[0].field, "at");
        let unexplained = DeviceEvent::DeclaredPermanent {
            reason: "  ".into(),
        };
        assert_eq!(
            device
                .decide(&unexplained, at(40))
                .expect_err("no reason")
                .0[0]
                .field,
            "reason"
        );
        let removal = DeviceEvent::Removed {
            at: at(40),
            in_case: Some(case_id(3)),
            note: " retrieved, intact ".into(),
        };
        let decided = device.decide(&removal, at(41)).expect("removal");
        device.apply(&decided);
        assert_eq!(device.state, LifeState::Removed { at: at(40) });
        assert_eq!(plan(&device, &[review(case)], true, at(41)), Plan::Ended);
        let again = device.decide(&removal, at(42)).expect_err("twice").0;
        assert!(again[0].detail.contains("no longer in place"));
    }

    #[test]
    fn taking_the_last_device_of_a_kind_out_settles_its_follow_up() {
        let case = case_id(4);
        let device = filter(case);
        let removal = DeviceEvent::Removed {
            at: at(40),
            in_case: None,
            note: "retrieved intact".into(),
        };
        let settled =
            tasks_settled_by(&device, &removal, &[], &[review(case)], "dr.okafor", at(40));
        assert_eq!(settled.len(), 1);
        let done = settled[0].completed.as_ref().expect("completed");
        assert_eq!(done.note, "IVC filter removed: retrieved intact");
        assert_eq!(settled[0].version, 2);
        // A second filter of the same case still in: its review stays open.
        let mut second = filter(case);
        second.device.index = 1;
        assert!(tasks_settled_by(
            &device,
            &removal,
            &[second],
            &[review(case)],
            "dr.okafor",
            at(40)
        )
        .is_empty());
    }

    #[test]
    fn the_wilson_interval_matches_published_values() {
        // Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 → 0.2553 to 0.3662.
        let rate = Rate::of(81, 263);
        assert!((rate.low.expect("low") - 0.2553).abs() < 5e-5, "{rate:?}");
        assert!((rate.high.expect("high") - 0.3662).abs() < 5e-5, "{rate:?}");
        // 0/10 → 0 to 0.2775; 10/10 → 0.7225 to 1 (same table).
        let none = Rate::of(0, 10);
        assert_eq!(none.low, Some(0.0));
        assert!((none.high.expect("high") - 0.2775).abs() < 5e-5);
        assert!((Rate::of(10, 10).low.expect("low") - 0.7225).abs() < 5e-5);
        assert_eq!(Rate::of(0, 0).proportion, None);
    }

    #[test]
    fn filter_measures_count_retrieval_plans_and_the_lost() {
        let mut devices = Vec::new();
        for (n, outcome) in ["retrieved", "permanent", "overdue", "in_window", "no_plan"]
            .into_iter()
            .enumerate()
        {
            let case = case_id(10 + n as u128);
            let mut device = filter(case);
            match outcome {
                "retrieved" => device.apply(&DeviceEvent::Removed {
                    at: at(35),
                    in_case: None,
                    note: "retrieved".into(),
                }),
                "permanent" => device.apply(&DeviceEvent::DeclaredPermanent {
                    reason: "ongoing contraindication to anticoagulation".into(),
                }),
                _ => {}
            }
            let tasks = match outcome {
                "no_plan" => Vec::new(),
                "in_window" => {
                    let mut late = review(case);
                    late.due_until = Some(at(200));
                    vec![late]
                }
                _ => vec![review(case)],
            };
            devices.push((device, tasks));
        }
        let plans: Vec<Plan> = devices
            .iter()
            .map(|(d, tasks)| plan(d, tasks, true, at(60)))
            .collect();
        let devices: Vec<(&TrackedDevice, &Plan)> =
            devices.iter().map(|(d, _)| d).zip(plans.iter()).collect();
        let measures = filter_measures(&devices, at(-1), at(1));
        assert_eq!(
            (
                measures.placed,
                measures.retrieved,
                measures.permanent,
                measures.overdue
            ),
            (5, 1, 1, 2)
        );
        assert_eq!(measures.retrieval_or_plan.numerator, 2);
        assert_eq!(measures.lost_to_follow_up.numerator, 2);
        assert_eq!(filter_measures(&devices, at(1), at(2)).placed, 0);
    }
}

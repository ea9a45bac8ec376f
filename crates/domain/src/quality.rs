//! The department's quality measures (clinical-rules.md §6): per procedure type and period —
//! volume, technical success, adverse event rates by severity (the worst attributed event of
//! each case), consent and time-out documented, high-dose follow-up done — each a proportion
//! with its 95% Wilson interval, and the same month by month for the trend. Pure: the caller
//! gives each case with its facts.

use crate::adverse_event::AdverseEvent;
use crate::device_registry::Rate;
use crate::followup::FollowUpTask;
use crate::lifecycle::Case;
use crate::procedure_record::SirSeverity;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// One case done in the period, with what the measures read of it.
pub struct CaseFacts<'a> {
    pub case: &'a Case,
    /// Its counted adverse events (withdrawn ones left out by the caller).
    pub adverse_events: Vec<&'a AdverseEvent>,
    /// Its dose follow-up tasks (§5 skin checks, physicist reviews), if the dose called for any.
    pub dose_tasks: Vec<&'a FollowUpTask>,
}

/// The measures over a set of cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measures {
    /// Cases whose procedure began in the period.
    pub volume: u32,
    /// Technically successful / those where success was recorded.
    pub technical_success: Rate,
    /// Cases with any adverse event attributed to the procedure (§6: 30 days unless a physician
    /// says otherwise).
    pub adverse_events: Rate,
    /// By the worst attributed event of the case.
    pub mild: Rate,
    pub moderate: Rate,
    /// Severe, life-threatening or death.
    pub severe_or_worse: Rate,
    pub deaths: Rate,
    /// Consent recorded before the procedure.
    pub consent_documented: Rate,
    /// Time-out completed with every item confirmed (the start needs one: a gap here is a data
    /// problem, shown rather than assumed).
    pub time_out_completed: Rate,
    /// Cases that went ahead past a blocking checklist item by a physician's override.
    pub safety_overrides: u32,
    /// Dose follow-up done / owed and due by now (§5).
    pub high_dose_follow_up: Rate,
}

fn worst(
    events: &[&AdverseEvent],
    start: Option<DateTime<Utc>>,
    window: Duration,
) -> Option<SirSeverity> {
    events
        .iter()
        .filter(|e| e.counts() && e.attributed(start, window).0)
        .map(|e| e.details.severity)
        .max_by_key(|s| severity_rank(*s))
}

fn severity_rank(s: SirSeverity) -> u8 {
    match s {
        SirSeverity::Mild => 1,
        SirSeverity::Moderate => 2,
        SirSeverity::Severe => 3,
        SirSeverity::LifeThreatening => 4,
        SirSeverity::Death => 5,
    }
}

/// The measures over `cases` at `now`, attributing events by `window` (§6).
pub fn measures(cases: &[CaseFacts<'_>], window: Duration, now: DateTime<Utc>) -> Measures {
    let volume = cases.len() as u32;
    let (mut success, mut success_known) = (0, 0);
    let (mut any, mut mild, mut moderate, mut severe, mut deaths) = (0, 0, 0, 0, 0);
    let (mut consent, mut time_out, mut overrides) = (0, 0, 0);
    let (mut dose_owed, mut dose_done) = (0, 0);
    for facts in cases {
        let case = facts.case;
        if let Some(known) = case.procedure.as_ref().and_then(|p| p.technical_success) {
            success_known += 1;
            success += u32::from(known);
        }
        match worst(&facts.adverse_events, case.procedure_started_at, window) {
            None => {}
            Some(s) => {
                any += 1;
                match s {
                    SirSeverity::Mild => mild += 1,
                    SirSeverity::Moderate => moderate += 1,
                    SirSeverity::Death => {
                        severe += 1;
                        deaths += 1
                    }
                    _ => severe += 1,
                }
            }
        }
        consent += u32::from(case.consent.is_some());
        time_out += u32::from(case.time_out.is_some());
        overrides += u32::from(!case.safety_overrides.is_empty());
        for task in &facts.dose_tasks {
            if task.withdrawn.is_some() || task.due_from > now {
                continue;
            }
            dose_owed += 1;
            dose_done += u32::from(task.completed.is_some());
        }
    }
    Measures {
        volume,
        technical_success: Rate::of(success, success_known),
        adverse_events: Rate::of(any, volume),
        mild: Rate::of(mild, volume),
        moderate: Rate::of(moderate, volume),
        severe_or_worse: Rate::of(severe, volume),
        deaths: Rate::of(deaths, volume),
        consent_documented: Rate::of(consent, volume),
        time_out_completed: Rate::of(time_out, volume),
        safety_overrides: overrides,
        high_dose_follow_up: Rate::of(dose_done, dose_owed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adverse_event::{AdverseEventDetails, Detected, Outcome};
    use crate::followup::{Completion, FollowUpKind};
    use crate::lifecycle::Case;
    use crate::referral::Urgency;
    use crate::{Actor, CaseId, EventMeta, PatientId, ReferralId};
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0)
            .single()
            .expect("time")
            + Duration::days(day)
    }

    fn case(n: u128) -> Case {
        let meta = EventMeta {
            actor: Actor::parse("test.user").expect("actor"),
            at: at(0),
            reason: None,
        };
        let (mut case, _) = Case::open(
            CaseId(Uuid::from_u128(n)),
            PatientId(Uuid::from_u128(100 + n)),
            ReferralId(Uuid::from_u128(200 + n)),
            Urgency::Routine,
            None,
            &meta,
        );
        case.procedure_started_at = Some(at(0));
        case
    }

    fn event(case: &Case, day: i64, severity: SirSeverity) -> AdverseEvent {
        AdverseEvent {
            id: format!("{}-r1", case.id),
            case_id: case.id,
            patient_id: case.patient_id,
            details: AdverseEventDetails {
                onset: at(day),
                detected: Detected::AfterDischarge,
                description: "synthetic".into(),
                severity,
                cirse_grade: Some(2),
                treatment: String::new(),
                outcome: Outcome::Resolved,
            },
            attribution: None,
            reported_by: "test.user".into(),
            reported_at: at(day),
            entered_in_error: None,
            version: 1,
        }
    }

    #[test]
    fn each_case_counts_once_by_its_worst_attributed_event() {
        let cases: Vec<Case> = (1..=4).map(case).collect();
        let a = [
            event(&cases[0], 1, SirSeverity::Mild),
            event(&cases[0], 2, SirSeverity::Severe),
        ];
        // Outside the 30-day window and not attributed by a physician: not counted.
        let late = [event(&cases[1], 45, SirSeverity::Moderate)];
        let moderate = [event(&cases[2], 3, SirSeverity::Moderate)];
        let facts = vec![
            CaseFacts {
                case: &cases[0],
                adverse_events: a.iter().collect(),
                dose_tasks: vec![],
            },
            CaseFacts {
                case: &cases[1],
                adverse_events: late.iter().collect(),
                dose_tasks: vec![],
            },
            CaseFacts {
                case: &cases[2],
                adverse_events: moderate.iter().collect(),
                dose_tasks: vec![],
            },
            CaseFacts {
                case: &cases[3],
                adverse_events: vec![],
                dose_tasks: vec![],
            },
        ];
        let m = measures(&facts, Duration::days(30), at(60));
        assert_eq!(m.volume, 4);
        assert_eq!(m.adverse_events.numerator, 2);
        assert_eq!(
            (
                m.mild.numerator,
                m.moderate.numerator,
                m.severe_or_worse.numerator
            ),
            (0, 1, 1)
        );
        assert_eq!(m.consent_documented.numerator, 0);
        assert_eq!(m.technical_success.denominator, 0, "none recorded");
    }

    #[test]
    fn high_dose_follow_up_counts_what_was_due_by_now() {
        let c = case(9);
        let task = |due: i64, done: bool| FollowUpTask {
            id: Uuid::from_u128(due as u128),
            case_id: c.id,
            patient_id: c.patient_id,
            kind: FollowUpKind::DoseSkinCheck,
            due_from: at(due),
            due_until: Some(at(due + 14)),
            instructions: String::new(),
            roles: Vec::new(),
            citation: "§5".into(),
            created_at: at(0),
            completed: done.then(|| Completion {
                by: "nurse".into(),
                at: at(due + 1),
                note: "skin intact".into(),
            }),
            withdrawn: None,
            version: 1,
        };
        let (done, owed, later) = (task(14, true), task(15, false), task(90, false));
        let facts = [CaseFacts {
            case: &c,
            adverse_events: vec![],
            dose_tasks: vec![&done, &owed, &later],
        }];
        let m = measures(&facts, Duration::days(30), at(30));
        assert_eq!(
            (
                m.high_dose_follow_up.numerator,
                m.high_dose_follow_up.denominator
            ),
            (1, 2)
        );
    }
}

//! The department's quality measures (clinical-rules.md §6): per procedure type and period —
//! volume, technical success, adverse event rates by severity (the worst attributed event of
//! each case), consent and time-out documented, high-dose follow-up done — each a proportion
//! with its 95% Wilson interval, and the same month by month for the trend. Pure: the caller
//! gives each case with its facts.

use crate::adverse_event::{AdverseEvent, EventCategory};
use crate::device_registry::Rate;
use crate::followup::FollowUpTask;
use crate::lifecycle::Case;
use crate::procedure_record::SirSeverity;
use crate::ProcedureId;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// One case done in the period, with what the measures read of it.
pub struct CaseFacts<'a> {
    pub case: &'a Case,
    /// Its counted adverse events (withdrawn ones left out by the caller).
    pub adverse_events: Vec<&'a AdverseEvent>,
    /// Its dose follow-up tasks (§5 skin checks, physicist reviews), if the dose called for any.
    pub dose_tasks: Vec<&'a FollowUpTask>,
    /// Its 30-day outcome check (§6), once discharge set it.
    pub outcome_checks: Vec<&'a FollowUpTask>,
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
    /// 30-day outcome checks that reached the patient (a finding other than "not reached") /
    /// those due by now (§6): how many outcomes the department knows.
    pub outcome_known: Rate,
    /// §6 published measure: nephrostomy placements with an attributed adverse event coded
    /// "dislodgement" (within the §6 window: the tube replaced or lost within 30 days).
    pub nephrostomy_dislodged: Rate,
    /// §6 published measure: gastrostomy placements with an attributed adverse event coded
    /// "infection" (early peristomal infection: within the §6 window).
    pub gastrostomy_infection: Rate,
}

/// The catalogue's placements that §6's published measures are about.
const NEPHROSTOMY: &str = "nephrostomy";
const GASTROSTOMY: &str = "gastrostomy";

fn attributed<'a>(
    events: &'a [&'a AdverseEvent],
    start: Option<DateTime<Utc>>,
    window: Duration,
) -> impl Iterator<Item = &'a AdverseEvent> + 'a {
    events
        .iter()
        .copied()
        .filter(move |e| e.counts() && e.attributed(start, window).0)
}

fn worst(
    events: &[&AdverseEvent],
    start: Option<DateTime<Utc>>,
    window: Duration,
) -> Option<SirSeverity> {
    attributed(events, start, window)
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
    let (mut checks_due, mut checks_known) = (0, 0);
    let (mut nephrostomies, mut dislodged, mut gastrostomies, mut infected) = (0, 0, 0, 0);
    for facts in cases {
        let case = facts.case;
        let has = |category: EventCategory| {
            attributed(&facts.adverse_events, case.procedure_started_at, window)
                .any(|e| e.details.category == Some(category))
        };
        match case.planned_procedure().map(ProcedureId::as_str) {
            Some(NEPHROSTOMY) => {
                nephrostomies += 1;
                dislodged += u32::from(has(EventCategory::Dislodgement));
            }
            Some(GASTROSTOMY) => {
                gastrostomies += 1;
                infected += u32::from(has(EventCategory::Infection));
            }
            _ => {}
        }
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
        for task in &facts.outcome_checks {
            // Owed once due; one done early counts as done.
            if task.withdrawn.is_some() || (task.completed.is_none() && task.due_from > now) {
                continue;
            }
            checks_due += 1;
            checks_known += u32::from(task.completed.as_ref().is_some_and(|c| {
                c.finding
                    .is_some_and(|f| f != crate::followup::OutcomeFinding::NotReached)
            }));
        }
        for task in &facts.dose_tasks {
            // Owed once due; one done early counts as done.
            if task.withdrawn.is_some() || (task.completed.is_none() && task.due_from > now) {
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
        outcome_known: Rate::of(checks_known, checks_due),
        nephrostomy_dislodged: Rate::of(dislodged, nephrostomies),
        gastrostomy_infection: Rate::of(infected, gastrostomies),
    }
}

/// A measure a department may set a threshold on, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    TechnicalSuccess,
    AdverseEvents,
    Mild,
    Moderate,
    SevereOrWorse,
    Deaths,
    ConsentDocumented,
    TimeOutCompleted,
    HighDoseFollowUp,
    OutcomeKnown,
    NephrostomyDislodged,
    GastrostomyInfection,
    IvcRetrievalOrPlan,
}

impl Measure {
    pub const ALL: [Measure; 13] = [
        Measure::TechnicalSuccess,
        Measure::AdverseEvents,
        Measure::Mild,
        Measure::Moderate,
        Measure::SevereOrWorse,
        Measure::Deaths,
        Measure::ConsentDocumented,
        Measure::TimeOutCompleted,
        Measure::HighDoseFollowUp,
        Measure::OutcomeKnown,
        Measure::NephrostomyDislodged,
        Measure::GastrostomyInfection,
        Measure::IvcRetrievalOrPlan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::TechnicalSuccess => "technical_success",
            Measure::AdverseEvents => "adverse_events",
            Measure::Mild => "mild",
            Measure::Moderate => "moderate",
            Measure::SevereOrWorse => "severe_or_worse",
            Measure::Deaths => "deaths",
            Measure::ConsentDocumented => "consent_documented",
            Measure::TimeOutCompleted => "time_out_completed",
            Measure::HighDoseFollowUp => "high_dose_follow_up",
            Measure::OutcomeKnown => "outcome_known",
            Measure::NephrostomyDislodged => "nephrostomy_dislodged",
            Measure::GastrostomyInfection => "gastrostomy_infection",
            Measure::IvcRetrievalOrPlan => "ivc_retrieval_or_plan",
        }
    }

    /// What it counts, as the dashboard and the CSV header read.
    pub fn label(self) -> &'static str {
        match self {
            Measure::TechnicalSuccess => "Technical success",
            Measure::AdverseEvents => "Any adverse event (§6)",
            Measure::Mild => "Worst event mild",
            Measure::Moderate => "Worst event moderate",
            Measure::SevereOrWorse => "Worst event severe, life-threatening or death",
            Measure::Deaths => "Death",
            Measure::ConsentDocumented => "Consent documented",
            Measure::TimeOutCompleted => "Time-out completed",
            Measure::HighDoseFollowUp => "High-dose follow-up done (§5)",
            Measure::OutcomeKnown => "30-day outcome known (§6)",
            Measure::NephrostomyDislodged => "Nephrostomy dislodged within 30 days (§6)",
            Measure::GastrostomyInfection => "Early peristomal infection after gastrostomy (§6)",
            Measure::IvcRetrievalOrPlan => "IVC filter retrieved or declared permanent (§6, §7)",
        }
    }

    /// A higher proportion is better (success, documentation); otherwise lower is.
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Measure::TechnicalSuccess
                | Measure::ConsentDocumented
                | Measure::TimeOutCompleted
                | Measure::HighDoseFollowUp
                | Measure::OutcomeKnown
                | Measure::IvcRetrievalOrPlan
        )
    }

    /// Its rate among `measures` (the IVC measure is the registry's, not a case measure).
    pub fn of(self, m: &Measures) -> Option<Rate> {
        Some(match self {
            Measure::TechnicalSuccess => m.technical_success,
            Measure::AdverseEvents => m.adverse_events,
            Measure::Mild => m.mild,
            Measure::Moderate => m.moderate,
            Measure::SevereOrWorse => m.severe_or_worse,
            Measure::Deaths => m.deaths,
            Measure::ConsentDocumented => m.consent_documented,
            Measure::TimeOutCompleted => m.time_out_completed,
            Measure::HighDoseFollowUp => m.high_dose_follow_up,
            Measure::OutcomeKnown => m.outcome_known,
            Measure::NephrostomyDislodged => m.nephrostomy_dislodged,
            Measure::GastrostomyInfection => m.gastrostomy_infection,
            Measure::IvcRetrievalOrPlan => return None,
        })
    }
}

/// A threshold the department set on one measure, for one procedure or for every procedure
/// (§6: the department's own; none are shipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// A catalogue procedure; absent: every procedure, and the department as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub procedure: Option<ProcedureId>,
    pub measure: Measure,
    /// In percent: the worst the department accepts (at most for a rate of harm, at least for
    /// one of success or documentation, by the measure).
    pub percent: f64,
    /// Where the number comes from (a registry benchmark, the department's governance decision).
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Thresholds {
    pub thresholds: Vec<Threshold>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsFile {
    #[serde(default)]
    threshold: Vec<Threshold>,
}

impl Thresholds {
    /// Reads the department's thresholds (TOML, `[[threshold]]` rows). `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Thresholds, String> {
        let parsed: ThresholdsFile = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
        let mut seen = std::collections::HashSet::new();
        for (i, t) in parsed.threshold.iter().enumerate() {
            let row = i + 1;
            if !(t.percent.is_finite() && (0.0..=100.0).contains(&t.percent)) {
                return Err(format!(
                    "{file}: threshold {row}: percent must be a number from 0 to 100"
                ));
            }
            if t.source.trim().is_empty() {
                return Err(format!(
                    "{file}: threshold {row}: name the source of the value"
                ));
            }
            if !seen.insert((t.procedure.clone(), t.measure)) {
                return Err(format!(
                    "{file}: threshold {row}: {} for {} is given twice",
                    t.measure.as_str(),
                    t.procedure
                        .as_ref()
                        .map_or("every procedure", |p| p.as_str())
                ));
            }
        }
        Ok(Thresholds {
            thresholds: parsed.threshold,
        })
    }

    /// The threshold for `measure` of `procedure` (None: the department as a whole): the
    /// procedure's own, else the department-wide one.
    pub fn get(&self, procedure: Option<&ProcedureId>, measure: Measure) -> Option<&Threshold> {
        let own = procedure.and_then(|p| {
            self.thresholds
                .iter()
                .find(|t| t.measure == measure && t.procedure.as_ref() == Some(p))
        });
        own.or_else(|| {
            self.thresholds
                .iter()
                .find(|t| t.measure == measure && t.procedure.is_none())
        })
    }
}

/// How a rate stands against its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// The rate is on the right side of the threshold.
    Within,
    /// The rate is on the wrong side, but its 95% interval still reaches the threshold: could be
    /// chance at this volume.
    WorseNotSignificant,
    /// The whole 95% interval is on the wrong side.
    Worse,
    /// Nothing counted.
    NoData,
}

/// Compares a rate with a threshold in percent, by the measure's direction.
pub fn judge(measure: Measure, rate: &Rate, percent: f64) -> Standing {
    let (Some(p), Some(low), Some(high)) = (rate.proportion, rate.low, rate.high) else {
        return Standing::NoData;
    };
    let limit = percent / 100.0;
    let (worse, clearly) = if measure.higher_is_better() {
        (p < limit, high < limit)
    } else {
        (p > limit, low > limit)
    };
    match (worse, clearly) {
        (false, _) => Standing::Within,
        (true, false) => Standing::WorseNotSignificant,
        (true, true) => Standing::Worse,
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
                category: None,
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
                outcome_checks: vec![],
            },
            CaseFacts {
                case: &cases[1],
                adverse_events: late.iter().collect(),
                dose_tasks: vec![],
                outcome_checks: vec![],
            },
            CaseFacts {
                case: &cases[2],
                adverse_events: moderate.iter().collect(),
                dose_tasks: vec![],
                outcome_checks: vec![],
            },
            CaseFacts {
                case: &cases[3],
                adverse_events: vec![],
                dose_tasks: vec![],
                outcome_checks: vec![],
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
                finding: None,
            }),
            withdrawn: None,
            version: 1,
        };
        let (done, owed, later) = (task(14, true), task(15, false), task(90, false));
        let facts = [CaseFacts {
            case: &c,
            adverse_events: vec![],
            dose_tasks: vec![&done, &owed, &later],
            outcome_checks: vec![],
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

    #[test]
    fn the_published_measures_count_coded_events_of_their_placements() {
        let mut nephrostomy = case(20);
        nephrostomy.requested_procedure =
            Some(ProcedureId::try_from(NEPHROSTOMY.to_string()).expect("id"));
        let mut gastrostomy = case(21);
        gastrostomy.requested_procedure =
            Some(ProcedureId::try_from(GASTROSTOMY.to_string()).expect("id"));
        let mut out = event(&nephrostomy, 9, SirSeverity::Mild);
        out.details.category = Some(EventCategory::Dislodgement);
        // Bleeding is not the gastrostomy measure's infection.
        let mut bleed = event(&gastrostomy, 2, SirSeverity::Mild);
        bleed.details.category = Some(EventCategory::Bleeding);
        let (out, bleed) = ([out], [bleed]);
        let facts = [
            CaseFacts {
                case: &nephrostomy,
                adverse_events: out.iter().collect(),
                dose_tasks: vec![],
                outcome_checks: vec![],
            },
            CaseFacts {
                case: &gastrostomy,
                adverse_events: bleed.iter().collect(),
                dose_tasks: vec![],
                outcome_checks: vec![],
            },
        ];
        let m = measures(&facts, Duration::days(30), at(40));
        assert_eq!(
            (
                m.nephrostomy_dislodged.numerator,
                m.nephrostomy_dislodged.denominator
            ),
            (1, 1)
        );
        assert_eq!(
            (
                m.gastrostomy_infection.numerator,
                m.gastrostomy_infection.denominator
            ),
            (0, 1)
        );
    }

    #[test]
    fn thresholds_are_the_departments_named_and_judged_by_their_interval() {
        let text = r#"
[[threshold]]
measure = "severe_or_worse"
percent = 5.0
source = "department governance, 2026"

[[threshold]]
procedure = "nephrostomy"
measure = "severe_or_worse"
percent = 4.0
source = "department governance, 2026"
"#;
        let t = Thresholds::parse(text, "q.toml").expect("parsed");
        let nephrostomy = ProcedureId::try_from(NEPHROSTOMY.to_string()).expect("id");
        assert_eq!(
            t.get(Some(&nephrostomy), Measure::SevereOrWorse)
                .map(|t| t.percent),
            Some(4.0)
        );
        assert_eq!(
            t.get(None, Measure::SevereOrWorse).map(|t| t.percent),
            Some(5.0)
        );
        assert!(t.get(None, Measure::Deaths).is_none(), "none shipped");
        let unsourced = "[[threshold]]\nmeasure = \"deaths\"\npercent = 1.0\nsource = \" \"\n";
        assert!(Thresholds::parse(unsourced, "q.toml")
            .expect_err("refused")
            .contains("source"));
        let out_of_range = "[[threshold]]\nmeasure = \"deaths\"\npercent = 101\nsource = \"x\"\n";
        assert!(Thresholds::parse(out_of_range, "q.toml").is_err());
        // 2 of 20 is 10% (95% CI about 3-30%): above 5% but could be chance; 10 of 100 is not.
        assert_eq!(
            judge(Measure::SevereOrWorse, &Rate::of(2, 20), 5.0),
            Standing::WorseNotSignificant
        );
        assert_eq!(
            judge(Measure::SevereOrWorse, &Rate::of(10, 100), 5.0),
            Standing::Worse
        );
        assert_eq!(
            judge(Measure::TechnicalSuccess, &Rate::of(99, 100), 95.0),
            Standing::Within
        );
        assert_eq!(
            judge(Measure::TechnicalSuccess, &Rate::of(0, 0), 95.0),
            Standing::NoData
        );
    }
}

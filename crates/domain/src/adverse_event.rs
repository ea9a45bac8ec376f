//! Adverse events (clinical-rules.md §6) as records of their own: recorded in the room or in
//! recovery (a complication of the procedure record), or reported later — at follow-up, by the
//! ward, by the referrer — with onset, description, SIR severity and CIRSE grade, treatment and
//! outcome; corrected with a reason, or withdrawn as entered in error, never edited in place.
//! Attribution follows §6: within the window after the procedure an event is the procedure's
//! unless a physician records otherwise (and outside it, not, unless a physician says it is).

use crate::procedure_record::{Complication, SirSeverity};
use crate::validation::Collector;
use crate::{CaseId, PatientId, ValidationErrors};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where the event came to light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Detected {
    InRoom,
    InRecovery,
    /// After the patient left: at follow-up, on the ward, told by the referrer.
    AfterDischarge,
}

impl Detected {
    pub const ALL: [Detected; 3] = [
        Detected::InRoom,
        Detected::InRecovery,
        Detected::AfterDischarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detected::InRoom => "in_room",
            Detected::InRecovery => "in_recovery",
            Detected::AfterDischarge => "after_discharge",
        }
    }
}

/// How the patient came out of it (FHIR R4's adverse-event-outcome codes, snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Resolved,
    Recovering,
    Ongoing,
    ResolvedWithSequelae,
    Fatal,
    Unknown,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Resolved,
        Outcome::Recovering,
        Outcome::Ongoing,
        Outcome::ResolvedWithSequelae,
        Outcome::Fatal,
        Outcome::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::Recovering => "recovering",
            Outcome::Ongoing => "ongoing",
            Outcome::ResolvedWithSequelae => "resolved_with_sequelae",
            Outcome::Fatal => "fatal",
            Outcome::Unknown => "unknown",
        }
    }

    /// FHIR's code (camelCase).
    pub fn fhir_code(self) -> &'static str {
        match self {
            Outcome::ResolvedWithSequelae => "resolvedWithSequelae",
            other => other.as_str(),
        }
    }
}

/// What kind of event it was, coded so the §6 published measures can be counted (early
/// peristomal infection after gastrostomy; nephrostomy dislodgement) rather than read out of free
/// text. Optional: events recorded before it was asked for, or that fit none, have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventCategory {
    Bleeding,
    /// Infection, including at a stoma or catheter exit site.
    Infection,
    /// A catheter, tube or drain out of place.
    Dislodgement,
    /// A catheter, tube, drain or line blocked.
    Occlusion,
    Thromboembolism,
    OrganInjury,
    ContrastReaction,
    /// Sedation or anaesthesia related.
    Sedation,
    Pain,
    Other,
}

impl EventCategory {
    pub const ALL: [EventCategory; 10] = [
        EventCategory::Bleeding,
        EventCategory::Infection,
        EventCategory::Dislodgement,
        EventCategory::Occlusion,
        EventCategory::Thromboembolism,
        EventCategory::OrganInjury,
        EventCategory::ContrastReaction,
        EventCategory::Sedation,
        EventCategory::Pain,
        EventCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventCategory::Bleeding => "bleeding",
            EventCategory::Infection => "infection",
            EventCategory::Dislodgement => "dislodgement",
            EventCategory::Occlusion => "occlusion",
            EventCategory::Thromboembolism => "thromboembolism",
            EventCategory::OrganInjury => "organ_injury",
            EventCategory::ContrastReaction => "contrast_reaction",
            EventCategory::Sedation => "sedation",
            EventCategory::Pain => "pain",
            EventCategory::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<EventCategory> {
        EventCategory::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            EventCategory::Bleeding => "bleeding / haematoma",
            EventCategory::Infection => "infection",
            EventCategory::Dislodgement => "device dislodged",
            EventCategory::Occlusion => "device blocked",
            EventCategory::Thromboembolism => "thrombosis / embolism",
            EventCategory::OrganInjury => "organ or vessel injury",
            EventCategory::ContrastReaction => "contrast reaction",
            EventCategory::Sedation => "sedation / anaesthesia",
            EventCategory::Pain => "pain",
            EventCategory::Other => "other",
        }
    }
}

/// What is known of the event: reported, then corrected as a whole with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdverseEventDetails {
    pub onset: DateTime<Utc>,
    pub detected: Detected,
    pub description: String,
    /// Its kind, coded (for the §6 published measures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<EventCategory>,
    pub severity: SirSeverity,
    /// 1-6 (§6); events recorded before CIRSE grading was asked for may lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cirse_grade: Option<u8>,
    /// What was done about it.
    #[serde(default)]
    pub treatment: String,
    pub outcome: Outcome,
}

impl AdverseEventDetails {
    /// Checks the details of an event of a procedure begun at `procedure_start` (if it has),
    /// at `now`. A new report grades both ways (`cirse_required`).
    pub fn check(
        &self,
        procedure_start: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        cirse_required: bool,
    ) -> Result<AdverseEventDetails, ValidationErrors> {
        let mut c = Collector::new();
        let description = self.description.trim().to_string();
        if description.is_empty() {
            c.push("description", "required: what happened".to_string());
        } else if description.chars().count() > 2000 {
            c.push("description", "at most 2000 characters".to_string());
        }
        let treatment = self.treatment.trim().to_string();
        if treatment.chars().count() > 2000 {
            c.push("treatment", "at most 2000 characters".to_string());
        }
        match self.cirse_grade {
            Some(g) if !(1..=6).contains(&g) => c.push(
                "cirse_grade",
                "a CIRSE grade from 1 (solved in the same session) to 6 (death), §6".to_string(),
            ),
            None if cirse_required => c.push(
                "cirse_grade",
                "required: grade it both ways, SIR and CIRSE 1-6 (§6)".to_string(),
            ),
            _ => {}
        }
        if self.onset > now {
            c.push("onset", "must not be in the future".to_string());
        } else if procedure_start.is_some_and(|start| self.onset < start) {
            c.push(
                "onset",
                "must not be before the procedure began: an event before it is not its adverse event"
                    .to_string(),
            );
        }
        // Death is death in each of the three scales (§6: SIR "death", CIRSE 6).
        let dead = [
            self.severity == SirSeverity::Death,
            self.cirse_grade == Some(6),
            self.outcome == Outcome::Fatal,
        ];
        if dead.iter().any(|d| *d) {
            if self.severity != SirSeverity::Death {
                c.push(
                    "severity",
                    "a fatal event is SIR 'death' (§6): severity, CIRSE grade 6 and outcome 'fatal' go together"
                        .to_string(),
                );
            }
            if self.cirse_grade.is_some_and(|g| g != 6) {
                c.push(
                    "cirse_grade",
                    "a fatal event is CIRSE grade 6 (§6)".to_string(),
                );
            }
            if self.outcome != Outcome::Fatal {
                c.push("outcome", "a death is the outcome 'fatal'".to_string());
            }
        }
        c.finish()?;
        Ok(AdverseEventDetails {
            description,
            treatment,
            ..self.clone()
        })
    }
}

/// A physician's word on whether the event is the procedure's (§6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributionDecision {
    pub attributed: bool,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A withdrawal: who, when, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Withdrawal {
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdverseEvent {
    /// `<case>-<n>` for the n-th complication of the case's record, `<case>-r<k>` for the k-th
    /// reported later: the stream id of its changes.
    pub id: String,
    pub case_id: CaseId,
    pub patient_id: PatientId,
    #[serde(flatten)]
    pub details: AdverseEventDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionDecision>,
    pub reported_by: String,
    pub reported_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_in_error: Option<Withdrawal>,
    /// Changes applied (1: reported).
    pub version: u64,
}

/// A change to an adverse event after it was reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AdverseEventChange {
    /// The details as they should have read, and why.
    Corrected {
        details: AdverseEventDetails,
        reason: String,
    },
    /// A physician's word on attribution (§6), with the reason.
    AttributionDecided { attributed: bool, reason: String },
    /// Not an adverse event of this case after all (wrong patient, not an event): kept, out of
    /// the counts.
    EnteredInError { reason: String },
}

impl AdverseEventChange {
    pub fn kind(&self) -> &'static str {
        match self {
            AdverseEventChange::Corrected { .. } => "corrected",
            AdverseEventChange::AttributionDecided { .. } => "attribution_decided",
            AdverseEventChange::EnteredInError { .. } => "entered_in_error",
        }
    }
}

/// Why an event counts (or not) as the procedure's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionBasis {
    /// Onset within the window after the procedure (§6).
    Window,
    /// A physician recorded it.
    Physician,
}

impl AdverseEvent {
    /// A complication recorded in the case's procedure record, as the registry keeps it.
    pub fn from_record(
        case_id: CaseId,
        patient_id: PatientId,
        n: usize,
        complication: &Complication,
        detected: Detected,
        by: &str,
        at: DateTime<Utc>,
    ) -> AdverseEvent {
        AdverseEvent {
            id: format!("{case_id}-{n}"),
            case_id,
            patient_id,
            details: AdverseEventDetails {
                onset: complication.at,
                detected,
                description: complication.description.clone(),
                category: None,
                severity: complication.severity,
                cirse_grade: complication.cirse_grade,
                treatment: String::new(),
                outcome: Outcome::Unknown,
            },
            attribution: None,
            reported_by: by.to_string(),
            reported_at: at,
            entered_in_error: None,
            version: 1,
        }
    }

    /// Whether it counts as the procedure's adverse event, and on what basis: a physician's word,
    /// else onset within `window` after the procedure began (`procedure_start`).
    pub fn attributed(
        &self,
        procedure_start: Option<DateTime<Utc>>,
        window: Duration,
    ) -> (bool, AttributionBasis) {
        if let Some(decision) = &self.attribution {
            return (decision.attributed, AttributionBasis::Physician);
        }
        let within = procedure_start.is_none_or(|start| self.details.onset <= start + window);
        (within, AttributionBasis::Window)
    }

    pub fn counts(&self) -> bool {
        self.entered_in_error.is_none()
    }

    /// Checks a change at `now` against the event (a withdrawn event changes no more; every
    /// change says why).
    pub fn decide(
        &self,
        change: &AdverseEventChange,
        procedure_start: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<AdverseEventChange, ValidationErrors> {
        let mut c = Collector::new();
        if let Some(w) = &self.entered_in_error {
            c.push(
                "type",
                format!(
                    "this event was withdrawn as entered in error by {}: {}",
                    w.by, w.reason
                ),
            );
        }
        let mut reason = |given: &str| {
            let given = given.trim();
            if given.is_empty() {
                c.push("reason", "required: say why".to_string());
            } else if given.chars().count() > 1000 {
                c.push("reason", "at most 1000 characters".to_string());
            }
            given.to_string()
        };
        let decided = match change {
            AdverseEventChange::Corrected { details, reason: r } => {
                let r = reason(r);
                // A correction may not drop a grade already given.
                let cirse_required = self.details.cirse_grade.is_some();
                match details.check(procedure_start, now, cirse_required) {
                    Ok(details) => AdverseEventChange::Corrected { details, reason: r },
                    Err(errors) => {
                        for e in errors.0 {
                            c.push(format!("details.{}", e.field), e.detail);
                        }
                        change.clone()
                    }
                }
            }
            AdverseEventChange::AttributionDecided {
                attributed,
                reason: r,
            } => AdverseEventChange::AttributionDecided {
                attributed: *attributed,
                reason: reason(r),
            },
            AdverseEventChange::EnteredInError { reason: r } => {
                AdverseEventChange::EnteredInError { reason: reason(r) }
            }
        };
        c.finish()?;
        Ok(decided)
    }

    pub fn apply(&mut self, change: &AdverseEventChange, by: &str, at: DateTime<Utc>) {
        match change {
            AdverseEventChange::Corrected { details, .. } => self.details = details.clone(),
            AdverseEventChange::AttributionDecided { attributed, reason } => {
                self.attribution = Some(AttributionDecision {
                    attributed: *attributed,
                    reason: reason.clone(),
                    by: by.to_string(),
                    at,
                })
            }
            AdverseEventChange::EnteredInError { reason } => {
                self.entered_in_error = Some(Withdrawal {
                    by: by.to_string(),
                    at,
                    reason: reason.clone(),
                })
            }
        }
        self.version += 1;
    }
}

/// Where a complication recorded in the procedure record came to light: before the procedure was
/// complete it was in the room, after it in recovery.
pub fn detected_in_record(
    at: DateTime<Utc>,
    procedure_completed_at: Option<DateTime<Utc>>,
) -> Detected {
    match procedure_completed_at {
        Some(done) if at > done => Detected::InRecovery,
        _ => Detected::InRoom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("time")
            + Duration::days(day)
    }

    fn details(day: i64) -> AdverseEventDetails {
        AdverseEventDetails {
            onset: at(day),
            detected: Detected::AfterDischarge,
            description: "cholangitis after biliary drainage".into(),
            category: Some(EventCategory::Infection),
            severity: SirSeverity::Moderate,
            cirse_grade: Some(2),
            treatment: "IV antibiotics, overnight stay".into(),
            outcome: Outcome::Resolved,
        }
    }

    fn event(day: i64) -> AdverseEvent {
        AdverseEvent {
            id: "x-r1".into(),
            case_id: CaseId(Uuid::from_u128(1)),
            patient_id: PatientId(Uuid::from_u128(2)),
            details: details(day),
            attribution: None,
            reported_by: "nurse.a".into(),
            reported_at: at(day),
            entered_in_error: None,
            version: 1,
        }
    }

    #[test]
    fn a_report_grades_both_ways_and_death_is_death_on_every_scale() {
        let start = Some(at(0));
        assert!(details(3).check(start, at(4), true).is_ok());
        let mut ungraded = details(3);
        ungraded.cirse_grade = None;
        let errors = ungraded.check(start, at(4), true).expect_err("no CIRSE").0;
        assert_eq!(errors[0].field, "cirse_grade");
        assert!(ungraded.check(start, at(4), false).is_ok());
        let mut early = details(-1);
        early.description = "  ".into();
        let fields: Vec<String> = early
            .check(start, at(4), true)
            .expect_err("bad")
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["description", "onset"]);
        let mut death = details(3);
        death.severity = SirSeverity::Death;
        let fields: Vec<String> = death
            .check(start, at(4), true)
            .expect_err("inconsistent")
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["cirse_grade", "outcome"]);
        death.cirse_grade = Some(6);
        death.outcome = Outcome::Fatal;
        assert!(death.check(start, at(4), true).is_ok());
    }

    #[test]
    fn attribution_follows_the_window_unless_a_physician_says_otherwise() {
        let window = Duration::days(30);
        let start = Some(at(0));
        assert_eq!(
            event(30).attributed(start, window),
            (true, AttributionBasis::Window)
        );
        assert_eq!(
            event(31).attributed(start, window),
            (false, AttributionBasis::Window)
        );
        let mut late = event(40);
        let change = AdverseEventChange::AttributionDecided {
            attributed: true,
            reason: "drain-track infection from the procedure".into(),
        };
        let decided = late.decide(&change, start, at(41)).expect("decided");
        late.apply(&decided, "dr.okafor", at(41));
        assert_eq!(
            late.attributed(start, window),
            (true, AttributionBasis::Physician)
        );
        assert_eq!(late.version, 2);
    }

    #[test]
    fn changes_say_why_and_a_withdrawn_event_changes_no_more() {
        let start = Some(at(0));
        let mut e = event(2);
        let unexplained = AdverseEventChange::EnteredInError { reason: " ".into() };
        assert_eq!(
            e.decide(&unexplained, start, at(3)).expect_err("why").0[0].field,
            "reason"
        );
        let mut dropped = details(2);
        dropped.cirse_grade = None;
        let correction = AdverseEventChange::Corrected {
            details: dropped,
            reason: "regraded".into(),
        };
        assert_eq!(
            e.decide(&correction, start, at(3))
                .expect_err("grade kept")
                .0[0]
                .field,
            "details.cirse_grade"
        );
        let withdraw = AdverseEventChange::EnteredInError {
            reason: "recorded on the wrong patient".into(),
        };
        let decided = e.decide(&withdraw, start, at(3)).expect("withdrawn");
        e.apply(&decided, "dr.okafor", at(3));
        assert!(!e.counts());
        assert!(e.decide(&withdraw, start, at(4)).is_err());
    }
}

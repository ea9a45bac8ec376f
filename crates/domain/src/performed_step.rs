//! A modality's performed procedure step (DICOM MPPS, PS3.4 Annex F): what the angio system or
//! scanner reports it did — started (N-CREATE, IN PROGRESS), then COMPLETED or DISCONTINUED
//! (N-SET) — and what that means for the case. Pure: the DICOM adapter reads the messages into
//! [`StepReport`]s, the application finds the case and stores the step.
//!
//! The modality does not record the WHO time-out (clinical-rules.md §8): imaging that begins
//! before the team has taken the case into the room in Seldinger (time-out and start gate) does
//! not move the case; it goes on the review list with the reason. A completed step moves a case
//! that is in the room to "procedure complete" once no other step of it is still in progress.

use crate::dose_link::LinkBasis;
use crate::ids::CaseId;
use crate::lifecycle::CaseState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Performed Procedure Step Status (0040,0252).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    InProgress,
    Completed,
    Discontinued,
}

impl StepStatus {
    /// The defined terms (PS3.3 C.4.14).
    pub fn from_dicom(value: &str) -> Option<StepStatus> {
        match value.trim() {
            "IN PROGRESS" => Some(StepStatus::InProgress),
            "COMPLETED" => Some(StepStatus::Completed),
            "DISCONTINUED" => Some(StepStatus::Discontinued),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::InProgress => "in_progress",
            StepStatus::Completed => "completed",
            StepStatus::Discontinued => "discontinued",
        }
    }

    pub fn dicom(self) -> &'static str {
        match self {
            StepStatus::InProgress => "IN PROGRESS",
            StepStatus::Completed => "COMPLETED",
            StepStatus::Discontinued => "DISCONTINUED",
        }
    }

    /// Completed and discontinued steps may not be changed (PS3.4 F.7.2.2.2).
    pub fn is_final(self) -> bool {
        self != StepStatus::InProgress
    }
}

/// Dose the modality reports in the step (Radiation Dose module, PS3.3 C.4.16): preliminary,
/// shown beside the dose report's figures once that arrives. In SI-derived units as stored
/// elsewhere (the adapter converts the DICOM units).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportedDose {
    /// Total Time of Fluoroscopy (0040,0300), seconds.
    pub fluoroscopy_time_s: Option<f64>,
    /// Total Number of Exposures (0040,0301).
    pub exposures: Option<u32>,
    /// Image and Fluoroscopy Area Dose Product (0018,115E), Gy·m².
    pub dose_area_product_gy_m2: Option<f64>,
    /// Entrance Dose in mGy (0040,8302), else Entrance Dose (0040,0302) converted.
    pub entrance_dose_mgy: Option<f64>,
}

impl ReportedDose {
    fn is_empty(&self) -> bool {
        *self == ReportedDose::default()
    }
}

/// What one N-CREATE or N-SET says, as read from its data set. `None`: not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub status: Option<StepStatus>,
    /// The status as sent, when it is not one of the defined terms.
    pub unknown_status: Option<String>,
    pub station_ae_title: Option<String>,
    pub modality: Option<String>,
    /// Performed Procedure Step ID (0040,0253).
    pub step_id: Option<String>,
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    /// From the Scheduled Step Attribute Sequence (0040,0270): what the worklist gave.
    pub study_instance_uid: Option<String>,
    pub accession_number: Option<String>,
    pub scheduled_step_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Performed Procedure Step Discontinuation Reason Code Sequence (0040,0281), its meaning.
    pub discontinuation_reason: Option<String>,
    pub dose: ReportedDose,
}

/// A step as Seldinger keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PerformedStep {
    /// The MPPS SOP Instance UID: the step's identity across messages.
    pub sop_instance_uid: String,
    pub status: StepStatus,
    pub station_ae_title: String,
    pub modality: String,
    pub step_id: String,
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub study_instance_uid: Option<String>,
    pub accession_number: Option<String>,
    pub scheduled_step_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub discontinuation_reason: Option<String>,
    pub dose: ReportedDose,
    /// The case it was performed for, once known, and how it was found.
    pub case_id: Option<CaseId>,
    pub link_basis: Option<LinkBasis>,
    /// Why a person needs to look at it (no case, or what it reports does not fit the case);
    /// `None`: nothing to review.
    pub review: Option<String>,
    pub version: u64,
    pub updated_at: DateTime<Utc>,
}

/// Why a message about a step is refused; the adapter answers with the matching status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepRefusal {
    /// Required attributes absent (0x0120), by DICOM keyword.
    Missing(Vec<&'static str>),
    /// Required attributes present but empty or unreadable (0x0121), by DICOM keyword.
    MissingValue(Vec<&'static str>),
    /// An attribute's value is not allowed here (0x0106), with why.
    InvalidValue(&'static str, String),
    /// The step is already completed or discontinued (0x0110).
    AlreadyFinal(StepStatus),
}

impl std::fmt::Display for StepRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepRefusal::Missing(names) => write!(f, "missing: {}", names.join(", ")),
            StepRefusal::MissingValue(names) => write!(f, "empty: {}", names.join(", ")),
            StepRefusal::InvalidValue(name, why) => write!(f, "{name}: {why}"),
            StepRefusal::AlreadyFinal(status) => write!(
                f,
                "the step is already {}: it may not be changed",
                status.dicom()
            ),
        }
    }
}

impl std::error::Error for StepRefusal {}

fn given(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.trim().is_empty())
}

impl PerformedStep {
    /// A step from its N-CREATE: it must say IN PROGRESS and name the station, modality, step
    /// ID and start (PS3.4 F.7.2.1, the type 1 attributes this department keeps).
    pub fn create(
        sop_instance_uid: &str,
        report: &StepReport,
        at: DateTime<Utc>,
    ) -> Result<PerformedStep, StepRefusal> {
        let mut missing = Vec::new();
        if report.status.is_none() && report.unknown_status.is_none() {
            missing.push("PerformedProcedureStepStatus");
        }
        for (name, value) in [
            ("PerformedStationAETitle", &report.station_ae_title),
            ("Modality", &report.modality),
            ("PerformedProcedureStepID", &report.step_id),
        ] {
            if !given(value) {
                missing.push(name);
            }
        }
        if report.started_at.is_none() {
            missing.push("PerformedProcedureStepStartDate/Time");
        }
        if !missing.is_empty() {
            return Err(StepRefusal::MissingValue(missing));
        }
        if report.status != Some(StepStatus::InProgress) {
            return Err(StepRefusal::InvalidValue(
                "PerformedProcedureStepStatus",
                format!(
                    "a step is created IN PROGRESS, not '{}'",
                    report
                        .status
                        .map(StepStatus::dicom)
                        .or(report.unknown_status.as_deref())
                        .unwrap_or_default()
                ),
            ));
        }
        let text = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        Ok(PerformedStep {
            sop_instance_uid: sop_instance_uid.to_string(),
            status: StepStatus::InProgress,
            station_ae_title: text(&report.station_ae_title).unwrap_or_default(),
            modality: text(&report.modality).unwrap_or_default(),
            step_id: text(&report.step_id).unwrap_or_default(),
            patient_id: text(&report.patient_id),
            patient_name: text(&report.patient_name),
            study_instance_uid: text(&report.study_instance_uid),
            accession_number: text(&report.accession_number),
            scheduled_step_id: text(&report.scheduled_step_id),
            started_at: report.started_at.unwrap_or(at),
            ended_at: report.ended_at,
            discontinuation_reason: None,
            dose: report.dose.clone(),
            case_id: None,
            link_basis: None,
            review: None,
            version: 1,
            updated_at: at,
        })
    }

    /// The step after an N-SET: refused once final; a final status needs the end date and
    /// time (PS3.4 F.7.2.2.2). Values not sent are kept.
    pub fn set(
        &self,
        report: &StepReport,
        at: DateTime<Utc>,
    ) -> Result<PerformedStep, StepRefusal> {
        if self.status.is_final() {
            return Err(StepRefusal::AlreadyFinal(self.status));
        }
        if let Some(unknown) = &report.unknown_status {
            return Err(StepRefusal::InvalidValue(
                "PerformedProcedureStepStatus",
                format!("'{unknown}' is not IN PROGRESS, COMPLETED or DISCONTINUED"),
            ));
        }
        let mut next = self.clone();
        if let Some(status) = report.status {
            next.status = status;
        }
        if let Some(ended) = report.ended_at {
            next.ended_at = Some(ended);
        }
        if next.status.is_final() && next.ended_at.is_none() {
            return Err(StepRefusal::MissingValue(vec![
                "PerformedProcedureStepEndDate/Time",
            ]));
        }
        if next.status == StepStatus::Discontinued {
            next.discontinuation_reason = report
                .discontinuation_reason
                .clone()
                .or(next.discontinuation_reason)
                .or_else(|| Some("no reason given".into()));
        }
        if !report.dose.is_empty() {
            let (old, new) = (&mut next.dose, &report.dose);
            old.fluoroscopy_time_s = new.fluoroscopy_time_s.or(old.fluoroscopy_time_s);
            old.exposures = new.exposures.or(old.exposures);
            old.dose_area_product_gy_m2 =
                new.dose_area_product_gy_m2.or(old.dose_area_product_gy_m2);
            old.entrance_dose_mgy = new.entrance_dose_mgy.or(old.entrance_dose_mgy);
        }
        next.version = self.version + 1;
        next.updated_at = at;
        Ok(next)
    }
}

/// What a step's news does to its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEffect {
    /// Recorded; the case is where the step says it should be.
    Nothing,
    /// The case's procedure is complete (the case is in the room, no other step in progress).
    CompleteProcedure,
    /// The case does not move; a person looks at the step, for this reason.
    Review(String),
}

/// The effect of `step` on a case in `state`; `others_in_progress`: another step of the case is
/// still in progress (a biplane run and a cone-beam CT, say).
pub fn effect_on_case(
    step: &PerformedStep,
    state: CaseState,
    others_in_progress: bool,
) -> CaseEffect {
    let station = &step.station_ae_title;
    match (step.status, state) {
        (StepStatus::InProgress, CaseState::InRoom) => CaseEffect::Nothing,
        (StepStatus::InProgress, CaseState::Scheduled | CaseState::CheckedIn) => {
            CaseEffect::Review(format!(
                "imaging began on {station} before the case was taken into the room in Seldinger: record the time-out (clinical-rules.md §8)"
            ))
        }
        (StepStatus::Completed, CaseState::InRoom) if others_in_progress => CaseEffect::Nothing,
        (StepStatus::Completed, CaseState::InRoom) => CaseEffect::CompleteProcedure,
        (
            StepStatus::Completed,
            CaseState::ProcedureComplete
            | CaseState::InRecovery
            | CaseState::Discharged
            | CaseState::FollowUp
            | CaseState::Closed,
        ) => CaseEffect::Nothing,
        (StepStatus::Discontinued, _) => CaseEffect::Review(format!(
            "discontinued on {station}: {}; record on the case what was done",
            step.discontinuation_reason
                .as_deref()
                .unwrap_or("no reason given")
        )),
        (status, state) => CaseEffect::Review(format!(
            "{} on {station} while the case is {state}",
            match status {
                StepStatus::InProgress => "imaging began",
                _ => "imaging completed",
            }
        )),
    }
}

/// One quantity the systems reported in their steps beside the dose report's figure.
#[derive(Debug, Clone, PartialEq)]
pub struct DoseComparison {
    pub quantity: &'static str,
    /// Summed over the case's steps; in the unit named by `unit`.
    pub preliminary: f64,
    pub reported: f64,
    pub unit: &'static str,
    /// The two disagree at three significant figures: more than the rounding of values
    /// reported by different messages, so the physicist should look at which is right.
    pub differs: bool,
}

/// The case's steps' preliminary kerma-area product and fluoroscopy time beside the dose
/// reports' totals, where both give one.
pub fn compare_dose(
    steps: &[PerformedStep],
    totals: &crate::dose::DoseTotals,
) -> Vec<DoseComparison> {
    let sum = |get: fn(&ReportedDose) -> Option<f64>| {
        let values: Vec<f64> = steps.iter().filter_map(|s| get(&s.dose)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>())
    };
    let rows = [
        (
            "Kerma-area product",
            "Gy·cm²",
            sum(|d| d.dose_area_product_gy_m2).map(|v| v * 10_000.0),
            totals
                .kerma_area_product
                .map(|k| k.gray_square_centimetres()),
        ),
        (
            "Fluoroscopy time",
            "s",
            sum(|d| d.fluoroscopy_time_s),
            totals.fluoroscopy_time.map(|t| t.0),
        ),
    ];
    rows.into_iter()
        .filter_map(|(quantity, unit, preliminary, reported)| {
            let (preliminary, reported) = (preliminary?, reported?);
            Some(DoseComparison {
                quantity,
                preliminary,
                reported,
                unit,
                differs: significant(preliminary) != significant(reported),
            })
        })
        .collect()
}

/// A value at three significant figures, as text (so 235.04 and 235.05 agree).
fn significant(value: f64) -> String {
    format!("{:.2e}", value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, hour, 0, 0)
            .single()
            .expect("time")
    }

    fn started() -> StepReport {
        StepReport {
            status: Some(StepStatus::InProgress),
            station_ae_title: Some("ANGIO1".into()),
            modality: Some("XA".into()),
            step_id: Some("PPS1".into()),
            started_at: Some(at(9)),
            study_instance_uid: Some("2.25.1".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_step_is_created_in_progress_with_what_the_standard_requires() {
        let step = PerformedStep::create("1.2.3", &started(), at(9)).expect("created");
        assert_eq!(step.status, StepStatus::InProgress);
        let mut without = started();
        without.station_ae_title = None;
        without.started_at = None;
        assert_eq!(
            PerformedStep::create("1.2.3", &without, at(9)),
            Err(StepRefusal::MissingValue(vec![
                "PerformedStationAETitle",
                "PerformedProcedureStepStartDate/Time"
            ]))
        );
        let mut completed = started();
        completed.status = Some(StepStatus::Completed);
        assert!(matches!(
            PerformedStep::create("1.2.3", &completed, at(9)),
            Err(StepRefusal::InvalidValue("PerformedProcedureStepStatus", _))
        ));
    }

    #[test]
    fn a_final_step_needs_its_end_and_is_then_closed() {
        let step = PerformedStep::create("1.2.3", &started(), at(9)).expect("created");
        let done = StepReport {
            status: Some(StepStatus::Completed),
            ..Default::default()
        };
        assert_eq!(
            step.set(&done, at(10)),
            Err(StepRefusal::MissingValue(vec![
                "PerformedProcedureStepEndDate/Time"
            ]))
        );
        let done = StepReport {
            ended_at: Some(at(10)),
            dose: ReportedDose {
                fluoroscopy_time_s: Some(312.0),
                ..Default::default()
            },
            ..done
        };
        let completed = step.set(&done, at(10)).expect("completed");
        assert_eq!(completed.version, 2);
        assert_eq!(completed.dose.fluoroscopy_time_s, Some(312.0));
        assert_eq!(
            completed.set(&StepReport::default(), at(11)),
            Err(StepRefusal::AlreadyFinal(StepStatus::Completed))
        );
    }

    #[test]
    fn the_steps_dose_is_set_beside_the_dose_report_and_a_real_difference_flagged() {
        let mut step = PerformedStep::create("1.2.3", &started(), at(9)).expect("created");
        step.dose.dose_area_product_gy_m2 = Some(0.023505);
        step.dose.fluoroscopy_time_s = Some(312.0);
        let totals = crate::dose::DoseTotals {
            kerma_area_product: Some(crate::dose::GrayMetreSquared(0.02351)),
            fluoroscopy_time: Some(crate::dose::Seconds(412.0)),
            ..Default::default()
        };
        let rows = compare_dose(&[step], &totals);
        assert_eq!(rows.len(), 2);
        assert!(!rows[0].differs, "235.05 and 235.1 Gy·cm² agree: {rows:?}");
        assert!(rows[1].differs, "312 s is not 412 s");
        assert!(compare_dose(&[], &totals).is_empty());
    }

    #[test]
    fn imaging_never_stands_in_for_the_time_out() {
        let step = PerformedStep::create("1.2.3", &started(), at(9)).expect("created");
        assert!(matches!(
            effect_on_case(&step, CaseState::CheckedIn, false),
            CaseEffect::Review(why) if why.contains("time-out")
        ));
        assert_eq!(
            effect_on_case(&step, CaseState::InRoom, false),
            CaseEffect::Nothing
        );
        let done = step
            .set(
                &StepReport {
                    status: Some(StepStatus::Completed),
                    ended_at: Some(at(10)),
                    ..Default::default()
                },
                at(10),
            )
            .expect("completed");
        assert_eq!(
            effect_on_case(&done, CaseState::InRoom, false),
            CaseEffect::CompleteProcedure
        );
        assert_eq!(
            effect_on_case(&done, CaseState::InRoom, true),
            CaseEffect::Nothing
        );
        assert!(matches!(
            effect_on_case(&done, CaseState::CheckedIn, false),
            CaseEffect::Review(_)
        ));
    }
}

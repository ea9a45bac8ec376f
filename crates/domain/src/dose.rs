//! Radiation dose: the quantities a dose report gives, with their units in the types, and what
//! clinical-rules.md §5 says must follow (substantial radiation dose levels, physicist review,
//! skin-check follow-up, in-room notifications). Pure: the procedure's end time is a parameter.

use crate::safety::reference::{Evidence, SafetyReference, ThresholdId as T};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Absorbed dose or air kerma, in gray.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = f64))]
#[serde(transparent)]
pub struct Gray(pub f64);

/// Kerma-area (dose-area) product in Gy·m², the unit RDSR stores (1 Gy·m² = 10 000 Gy·cm²).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = f64))]
#[serde(transparent)]
pub struct GrayMetreSquared(pub f64);

impl GrayMetreSquared {
    /// clinical-rules.md §5: 1 Gy·m² = 10 000 Gy·cm².
    pub fn from_gray_square_centimetres(value: f64) -> Self {
        GrayMetreSquared(value / 10_000.0)
    }

    pub fn gray_square_centimetres(self) -> f64 {
        self.0 * 10_000.0
    }
}

/// Dose-length product in Gy·m (CT); reports usually give mGy·cm (1 mGy·cm = 10⁻⁵ Gy·m).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = f64))]
#[serde(transparent)]
pub struct GrayMetre(pub f64);

impl GrayMetre {
    pub fn from_milligray_centimetres(value: f64) -> Self {
        GrayMetre(value * 1e-5)
    }

    pub fn milligray_centimetres(self) -> f64 {
        self.0 * 1e5
    }
}

/// A duration in seconds (fluoroscopy and acquisition time).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = f64))]
#[serde(transparent)]
pub struct Seconds(pub f64);

/// A procedure's dose totals, summed over planes; absent when the report did not give them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoseTotals {
    pub reference_air_kerma: Option<Gray>,
    pub peak_skin_dose: Option<Gray>,
    pub kerma_area_product: Option<GrayMetreSquared>,
    pub fluoroscopy_time: Option<Seconds>,
    /// CT dose-length product total (TID 10011), when the report is a CT one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct_dose_length_product: Option<GrayMetre>,
    /// The kerma-area product's part from fluoroscopy (DCM 113726) and from acquisitions
    /// (113727), and the radiographic frames (113731), summed over planes: what the HL7 dose
    /// summary IG reports beside the total. Absent from reports stored before they were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluoro_kerma_area_product: Option<GrayMetreSquared>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisition_kerma_area_product: Option<GrayMetreSquared>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radiographic_frames: Option<u32>,
}

/// One stored report's totals, with what says whether a later report replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportTotals {
    pub study_instance_uid: String,
    /// Manufacturer, model and station: one system's reports of a study supersede each other.
    pub device: String,
    pub totals: DoseTotals,
}

/// Which of a case's reports (in the order received) its totals count: the latest of each study
/// and device, by position.
pub fn counted(reports: &[ReportTotals]) -> Vec<usize> {
    let mut latest: Vec<usize> = Vec::new();
    for (index, report) in reports.iter().enumerate() {
        match latest.iter_mut().find(|i| {
            reports[**i].study_instance_uid == report.study_instance_uid
                && reports[**i].device == report.device
        }) {
            Some(slot) => *slot = index,
            None => latest.push(index),
        }
    }
    latest
}

/// A case's totals from its reports, in the order they were received. Systems re-send a study's
/// report as it grows, so for each study and device only the latest counts; different studies or
/// devices (a fluoroscopy report and a CT report, say) add up. A report without a measure adds
/// nothing to it; a measure no report gave stays absent.
pub fn case_totals(reports: &[ReportTotals]) -> DoseTotals {
    let latest: Vec<&ReportTotals> = counted(reports).into_iter().map(|i| &reports[i]).collect();
    fn sum<T>(
        reports: &[&ReportTotals],
        get: impl Fn(&DoseTotals) -> Option<f64>,
        wrap: impl Fn(f64) -> T,
    ) -> Option<T> {
        let values: Vec<f64> = reports.iter().filter_map(|r| get(&r.totals)).collect();
        (!values.is_empty()).then(|| wrap(values.iter().sum()))
    }
    DoseTotals {
        reference_air_kerma: sum(&latest, |t| t.reference_air_kerma.map(|g| g.0), Gray),
        peak_skin_dose: sum(&latest, |t| t.peak_skin_dose.map(|g| g.0), Gray),
        kerma_area_product: sum(
            &latest,
            |t| t.kerma_area_product.map(|k| k.0),
            GrayMetreSquared,
        ),
        fluoroscopy_time: sum(&latest, |t| t.fluoroscopy_time.map(|s| s.0), Seconds),
        ct_dose_length_product: sum(
            &latest,
            |t| t.ct_dose_length_product.map(|d| d.0),
            GrayMetre,
        ),
        fluoro_kerma_area_product: sum(
            &latest,
            |t| t.fluoro_kerma_area_product.map(|k| k.0),
            GrayMetreSquared,
        ),
        acquisition_kerma_area_product: sum(
            &latest,
            |t| t.acquisition_kerma_area_product.map(|k| k.0),
            GrayMetreSquared,
        ),
        radiographic_frames: sum(
            &latest,
            |t| t.radiographic_frames.map(f64::from),
            |n| n.round() as u32,
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DoseMeasure {
    ReferenceAirKerma,
    PeakSkinDose,
    KermaAreaProduct,
    FluoroscopyTime,
}

/// One substantial radiation dose level reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LevelReached {
    pub measure: DoseMeasure,
    pub value: f64,
    pub level: f64,
    pub unit: String,
}

/// When the patient's skin should be checked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FollowUpWindow {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// What §5 says follows from a procedure's dose.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoseAssessment {
    /// Levels reached; any one means: note it in the record, tell the patient, check the skin.
    pub levels_reached: Vec<LevelReached>,
    /// Present when a level was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skin_check: Option<FollowUpWindow>,
    pub physicist_review: bool,
    /// Measures the report did not give, so the assessment could not use them.
    pub not_reported: Vec<DoseMeasure>,
    pub citation: String,
    /// True while any §5 value used is marked U in the reference.
    pub unverified: bool,
}

impl DoseAssessment {
    pub fn substantial(&self) -> bool {
        !self.levels_reached.is_empty()
    }
}

/// Assesses a procedure's totals against clinical-rules.md §5.
pub fn assess(
    totals: &DoseTotals,
    procedure_end: DateTime<Utc>,
    reference: &SafetyReference,
) -> DoseAssessment {
    let t = |id| reference.threshold(id);
    let measures = [
        (
            DoseMeasure::ReferenceAirKerma,
            totals.reference_air_kerma.map(|g| g.0),
            t(T::DoseSrdlReferenceAirKerma),
        ),
        (
            DoseMeasure::PeakSkinDose,
            totals.peak_skin_dose.map(|g| g.0),
            t(T::DoseSrdlPeakSkinDose),
        ),
        (
            DoseMeasure::KermaAreaProduct,
            totals.kerma_area_product.map(|k| k.0),
            t(T::DoseSrdlKermaAreaProduct),
        ),
        // The level is in minutes; the report gives seconds.
        (
            DoseMeasure::FluoroscopyTime,
            totals.fluoroscopy_time.map(|s| s.0 / 60.0),
            t(T::DoseSrdlFluoroscopyTime),
        ),
    ];
    let mut levels_reached = Vec::new();
    let mut not_reported = Vec::new();
    for (measure, value, level) in measures {
        match value {
            None => not_reported.push(measure),
            Some(v) if v >= level.value => levels_reached.push(LevelReached {
                measure,
                value: v,
                level: level.value,
                unit: level.unit.clone(),
            }),
            Some(_) => {}
        }
    }
    let kar_review = t(T::DosePhysicistReviewReferenceAirKermaAbove);
    let psd_review = t(T::DosePhysicistReviewPeakSkinDoseAbove);
    let physicist_review = totals
        .reference_air_kerma
        .is_some_and(|g| g.0 > kar_review.value)
        || totals
            .peak_skin_dose
            .is_some_and(|g| g.0 > psd_review.value);
    let skin_check = (!levels_reached.is_empty()).then(|| {
        let days = |id| Duration::minutes((t(id).value * 24.0 * 60.0).round() as i64);
        FollowUpWindow {
            from: procedure_end + days(T::DoseSkinCheckFromDays),
            until: procedure_end + days(T::DoseSkinCheckUntilDays),
        }
    });
    let used = [
        T::DoseSrdlReferenceAirKerma,
        T::DoseSrdlPeakSkinDose,
        T::DoseSrdlKermaAreaProduct,
        T::DoseSrdlFluoroscopyTime,
        T::DosePhysicistReviewReferenceAirKermaAbove,
        T::DosePhysicistReviewPeakSkinDoseAbove,
        T::DoseSkinCheckFromDays,
        T::DoseSkinCheckUntilDays,
    ];
    DoseAssessment {
        levels_reached,
        skin_check,
        physicist_review,
        not_reported,
        citation: "clinical-rules.md §5".into(),
        unverified: used
            .iter()
            .any(|id| t(*id).evidence == Evidence::Unverified),
    }
}

/// The reference air kerma values at which the room is told during a procedure that has reached
/// `so_far`: the first notification level, then every step after (§5).
pub fn notifications_due(so_far: Gray, reference: &SafetyReference) -> Vec<Gray> {
    let first = reference
        .threshold(T::DoseNotifyReferenceAirKermaFirst)
        .value;
    let step = reference
        .threshold(T::DoseNotifyReferenceAirKermaStep)
        .value;
    if step <= 0.0 || !so_far.0.is_finite() {
        return Vec::new();
    }
    let mut levels = Vec::new();
    let mut level = first;
    while level <= so_far.0 && levels.len() < 1000 {
        levels.push(Gray(level));
        level += step;
    }
    levels
}

#[cfg(test)]
mod case_totals_tests {
    use super::*;

    fn report(study: &str, device: &str, kar: Option<f64>, dlp: Option<f64>) -> ReportTotals {
        ReportTotals {
            study_instance_uid: study.into(),
            device: device.into(),
            totals: DoseTotals {
                reference_air_kerma: kar.map(Gray),
                ct_dose_length_product: dlp.map(GrayMetre),
                ..DoseTotals::default()
            },
        }
    }

    #[test]
    fn a_resent_growing_report_replaces_the_earlier_one() {
        let totals = case_totals(&[
            report("1", "angio", Some(1.0), None),
            report("1", "angio", Some(2.5), None),
        ]);
        assert_eq!(totals.reference_air_kerma, Some(Gray(2.5)));
    }

    #[test]
    fn different_studies_and_devices_add_up_and_ct_does_not_hide_fluoroscopy() {
        let totals = case_totals(&[
            report("1", "angio", Some(1.0), None),
            report("2", "angio", Some(0.5), None),
            report("3", "ct", None, Some(0.01)),
        ]);
        assert_eq!(totals.reference_air_kerma, Some(Gray(1.5)));
        assert_eq!(totals.ct_dose_length_product, Some(GrayMetre(0.01)));
        assert_eq!(totals.kerma_area_product, None);
    }
}

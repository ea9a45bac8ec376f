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

//! The safety reference: thresholds, the drug table and hold rules, parsed from
//! `catalog/safety-thresholds.toml`. Each value keeps its source and status (V/U/D) so every
//! checklist item can cite it and say when a value is not yet verified.

use std::collections::BTreeMap;

/// How far a reference value can be trusted (clinical-rules.md, header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Evidence {
    /// Verified against the cited public source.
    #[serde(rename = "V")]
    Verified,
    /// Widely used but not yet checked against the primary text: shown with a warning.
    #[serde(rename = "U")]
    Unverified,
    /// Department policy: a configurable default.
    #[serde(rename = "D")]
    DepartmentPolicy,
}

impl Evidence {
    fn parse(value: &str) -> Result<Self, String> {
        match value {
            "V" => Ok(Evidence::Verified),
            "U" => Ok(Evidence::Unverified),
            "D" => Ok(Evidence::DepartmentPolicy),
            other => Err(format!("'{other}' is not V, U or D")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub id: String,
    pub value: f64,
    pub unit: String,
    pub source: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrugClass {
    VitaminKAntagonist,
    Heparin,
    Lmwh,
    FactorXaIndirect,
    Doac,
    P2y12,
    Aspirin,
    Nsaid,
    Metformin,
    NotAntithrombotic,
}

impl DrugClass {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "vitamin_k_antagonist" => DrugClass::VitaminKAntagonist,
            "heparin" => DrugClass::Heparin,
            "lmwh" => DrugClass::Lmwh,
            "factor_xa_indirect" => DrugClass::FactorXaIndirect,
            "doac" => DrugClass::Doac,
            "p2y12" => DrugClass::P2y12,
            "aspirin" => DrugClass::Aspirin,
            "nsaid" => DrugClass::Nsaid,
            "metformin" => DrugClass::Metformin,
            "not_antithrombotic" => DrugClass::NotAntithrombotic,
            other => return Err(format!("'{other}' is not a drug class this engine knows")),
        })
    }

    /// Drugs whose timing matters before a procedure with bleeding risk.
    pub fn is_antithrombotic(self) -> bool {
        !matches!(self, DrugClass::Metformin | DrugClass::NotAntithrombotic)
    }
}

/// A renal-function band in mL/min: `lower <= CrCl` (or `<`), `CrCl < upper` (or `<=`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrClBand {
    pub lower: Option<(f64, bool)>,
    pub upper: Option<(f64, bool)>,
}

impl CrClBand {
    pub const ANY: CrClBand = CrClBand {
        lower: None,
        upper: None,
    };

    /// Parses `>25`, `<=25`, `>=30,<50` …
    fn parse(text: &str) -> Result<Self, String> {
        let mut band = CrClBand::ANY;
        for part in text.split(',').map(str::trim) {
            let (op, number) = ["<=", ">=", "<", ">"]
                .iter()
                .find_map(|op| part.strip_prefix(op).map(|n| (*op, n)))
                .ok_or_else(|| format!("'{part}' must start with <, <=, > or >="))?;
            let value: f64 = number
                .trim()
                .parse()
                .map_err(|_| format!("'{number}' is not a number"))?;
            match op {
                ">" => band.lower = Some((value, false)),
                ">=" => band.lower = Some((value, true)),
                "<" => band.upper = Some((value, false)),
                _ => band.upper = Some((value, true)),
            }
        }
        Ok(band)
    }

    pub fn contains(&self, crcl: f64) -> bool {
        let above = match self.lower {
            None => true,
            Some((v, inclusive)) => crcl > v || (inclusive && crcl == v),
        };
        let below = match self.upper {
            None => true,
            Some((v, inclusive)) => crcl < v || (inclusive && crcl == v),
        };
        above && below
    }

    pub fn is_any(&self) -> bool {
        self.lower.is_none() && self.upper.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseIntent {
    Prophylactic,
    Therapeutic,
}

/// How long before a high-bleeding-risk procedure the last dose must be.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRule {
    pub drug: String,
    pub crcl: CrClBand,
    pub dose: Option<DoseIntent>,
    /// Only for this indication (aspirin: primary prevention).
    pub indication: Option<String>,
    pub hours: u32,
    pub source: String,
    pub evidence: Evidence,
    pub note: String,
}

#[derive(Debug, Clone)]
pub struct SafetyReference {
    pub version: String,
    /// In `ThresholdId::ALL` order, all present (checked at load).
    thresholds: Vec<Threshold>,
    drugs: BTreeMap<String, DrugClass>,
    pub holds: Vec<HoldRule>,
}

/// Every threshold the engine reads, by its id in the reference file. A reference missing
/// one fails to load, so a lookup can never come back empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThresholdId {
    InrLowRiskPassMax,
    InrLowRiskBlockAbove,
    InrHighRiskPassMax,
    InrHighRiskBlockAbove,
    InrArterialFemoralPassBelow,
    InrArterialRadialPassBelow,
    SheathArterialHighRiskAbove,
    PlateletsLowRiskTransfuseBelow,
    PlateletsHighRiskTransfuseBelow,
    LiverPlateletsLowRiskMinExclusive,
    LiverPlateletsHighRiskMinExclusive,
    LiverFibrinogenMinExclusive,
    RecencyCoagulationOutpatientHours,
    RecencyCoagulationStoppingWarfarinHours,
    EgfrContrastActionBelow,
    RecencyEgfrOutpatientHours,
    RecencyEgfrInpatientHours,
    MetforminHoldAfterContrastHours,
    PremedicationElectiveOralFirstDoseHoursBefore,
    PremedicationAcceleratedIvMinimumHoursBefore,
    PregnancyAgeMinYears,
    PregnancyAgeMaxYears,
    FastingClearLiquidsHours,
    FastingBreastMilkHours,
    FastingLightMealHours,
    FastingFattyMealHours,
    AsaAnaesthesiaReviewFrom,
    ResumeDoacHighRiskFromHours,
    ResumeDoacHighRiskUntilHours,
    ResumeWarfarinHighRiskHours,
    DoseSrdlReferenceAirKerma,
    DoseSrdlPeakSkinDose,
    DoseSrdlKermaAreaProduct,
    DoseSrdlFluoroscopyTime,
    DosePhysicistReviewReferenceAirKermaAbove,
    DosePhysicistReviewPeakSkinDoseAbove,
    DoseSkinCheckFromDays,
    DoseSkinCheckUntilDays,
    DoseNotifyReferenceAirKermaFirst,
    DoseNotifyReferenceAirKermaStep,
    RecoveryAldreteDischargeTotalAtLeast,
    RecoveryAldreteItemAtLeast,
    FollowupIvcFilterRetrievalFromDays,
    FollowupIvcFilterRetrievalUntilDays,
    FollowupNephrostomyExchangeFromWeeks,
    FollowupNephrostomyExchangeUntilWeeks,
    FollowupBiliaryDrainExchangeFromWeeks,
    FollowupBiliaryDrainExchangeUntilWeeks,
    FollowupGastrostomyExchangeFromMonths,
    FollowupGastrostomyExchangeUntilMonths,
    FollowupPortFlushWeeks,
    FollowupPostAblationImagingMonths,
    FollowupPostTaceImagingFromWeeks,
    FollowupPostTaceImagingUntilWeeks,
    OutcomeCheckAfterDays,
}

impl ThresholdId {
    pub const ALL: [ThresholdId; 55] = [
        ThresholdId::InrLowRiskPassMax,
        ThresholdId::InrLowRiskBlockAbove,
        ThresholdId::InrHighRiskPassMax,
        ThresholdId::InrHighRiskBlockAbove,
        ThresholdId::InrArterialFemoralPassBelow,
        ThresholdId::InrArterialRadialPassBelow,
        ThresholdId::SheathArterialHighRiskAbove,
        ThresholdId::PlateletsLowRiskTransfuseBelow,
        ThresholdId::PlateletsHighRiskTransfuseBelow,
        ThresholdId::LiverPlateletsLowRiskMinExclusive,
        ThresholdId::LiverPlateletsHighRiskMinExclusive,
        ThresholdId::LiverFibrinogenMinExclusive,
        ThresholdId::RecencyCoagulationOutpatientHours,
        ThresholdId::RecencyCoagulationStoppingWarfarinHours,
        ThresholdId::EgfrContrastActionBelow,
        ThresholdId::RecencyEgfrOutpatientHours,
        ThresholdId::RecencyEgfrInpatientHours,
        ThresholdId::MetforminHoldAfterContrastHours,
        ThresholdId::PremedicationElectiveOralFirstDoseHoursBefore,
        ThresholdId::PremedicationAcceleratedIvMinimumHoursBefore,
        ThresholdId::PregnancyAgeMinYears,
        ThresholdId::PregnancyAgeMaxYears,
        ThresholdId::FastingClearLiquidsHours,
        ThresholdId::FastingBreastMilkHours,
        ThresholdId::FastingLightMealHours,
        ThresholdId::FastingFattyMealHours,
        ThresholdId::AsaAnaesthesiaReviewFrom,
        ThresholdId::ResumeDoacHighRiskFromHours,
        ThresholdId::ResumeDoacHighRiskUntilHours,
        ThresholdId::ResumeWarfarinHighRiskHours,
        ThresholdId::DoseSrdlReferenceAirKerma,
        ThresholdId::DoseSrdlPeakSkinDose,
        ThresholdId::DoseSrdlKermaAreaProduct,
        ThresholdId::DoseSrdlFluoroscopyTime,
        ThresholdId::DosePhysicistReviewReferenceAirKermaAbove,
        ThresholdId::DosePhysicistReviewPeakSkinDoseAbove,
        ThresholdId::DoseSkinCheckFromDays,
        ThresholdId::DoseSkinCheckUntilDays,
        ThresholdId::DoseNotifyReferenceAirKermaFirst,
        ThresholdId::DoseNotifyReferenceAirKermaStep,
        ThresholdId::RecoveryAldreteDischargeTotalAtLeast,
        ThresholdId::RecoveryAldreteItemAtLeast,
        ThresholdId::FollowupIvcFilterRetrievalFromDays,
        ThresholdId::FollowupIvcFilterRetrievalUntilDays,
        ThresholdId::FollowupNephrostomyExchangeFromWeeks,
        ThresholdId::FollowupNephrostomyExchangeUntilWeeks,
        ThresholdId::FollowupBiliaryDrainExchangeFromWeeks,
        ThresholdId::FollowupBiliaryDrainExchangeUntilWeeks,
        ThresholdId::FollowupGastrostomyExchangeFromMonths,
        ThresholdId::FollowupGastrostomyExchangeUntilMonths,
        ThresholdId::FollowupPortFlushWeeks,
        ThresholdId::FollowupPostAblationImagingMonths,
        ThresholdId::FollowupPostTaceImagingFromWeeks,
        ThresholdId::FollowupPostTaceImagingUntilWeeks,
        ThresholdId::OutcomeCheckAfterDays,
    ];

    /// The UCUM-style unit the engine reads this threshold in. A reference row in another unit
    /// is refused at load: a department's "weeks" must not be read silently as days.
    pub fn unit(self) -> &'static str {
        use ThresholdId as T;
        match self {
            T::InrLowRiskPassMax
            | T::InrLowRiskBlockAbove
            | T::InrHighRiskPassMax
            | T::InrHighRiskBlockAbove
            | T::InrArterialFemoralPassBelow
            | T::InrArterialRadialPassBelow => "{INR}",
            T::SheathArterialHighRiskAbove => "[Ch]",
            T::PlateletsLowRiskTransfuseBelow
            | T::PlateletsHighRiskTransfuseBelow
            | T::LiverPlateletsLowRiskMinExclusive
            | T::LiverPlateletsHighRiskMinExclusive => "10*9/L",
            T::LiverFibrinogenMinExclusive => "mg/dL",
            T::EgfrContrastActionBelow => "mL/min/{1.73_m2}",
            T::RecencyCoagulationOutpatientHours
            | T::RecencyCoagulationStoppingWarfarinHours
            | T::RecencyEgfrOutpatientHours
            | T::RecencyEgfrInpatientHours
            | T::MetforminHoldAfterContrastHours
            | T::PremedicationElectiveOralFirstDoseHoursBefore
            | T::PremedicationAcceleratedIvMinimumHoursBefore
            | T::FastingClearLiquidsHours
            | T::FastingBreastMilkHours
            | T::FastingLightMealHours
            | T::FastingFattyMealHours
            | T::ResumeDoacHighRiskFromHours
            | T::ResumeDoacHighRiskUntilHours
            | T::ResumeWarfarinHighRiskHours => "h",
            T::PregnancyAgeMinYears | T::PregnancyAgeMaxYears => "a",
            T::AsaAnaesthesiaReviewFrom => "1",
            T::DoseSrdlReferenceAirKerma
            | T::DoseSrdlPeakSkinDose
            | T::DosePhysicistReviewReferenceAirKermaAbove
            | T::DosePhysicistReviewPeakSkinDoseAbove
            | T::DoseNotifyReferenceAirKermaFirst
            | T::DoseNotifyReferenceAirKermaStep => "Gy",
            T::DoseSrdlKermaAreaProduct => "Gy.m2",
            T::DoseSrdlFluoroscopyTime => "min",
            T::RecoveryAldreteDischargeTotalAtLeast | T::RecoveryAldreteItemAtLeast => "points",
            T::DoseSkinCheckFromDays
            | T::DoseSkinCheckUntilDays
            | T::FollowupIvcFilterRetrievalFromDays
            | T::FollowupIvcFilterRetrievalUntilDays
            | T::OutcomeCheckAfterDays => "d",
            T::FollowupNephrostomyExchangeFromWeeks
            | T::FollowupNephrostomyExchangeUntilWeeks
            | T::FollowupBiliaryDrainExchangeFromWeeks
            | T::FollowupBiliaryDrainExchangeUntilWeeks
            | T::FollowupPortFlushWeeks
            | T::FollowupPostTaceImagingFromWeeks
            | T::FollowupPostTaceImagingUntilWeeks => "wk",
            T::FollowupGastrostomyExchangeFromMonths
            | T::FollowupGastrostomyExchangeUntilMonths
            | T::FollowupPostAblationImagingMonths => "mo",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdId::InrLowRiskPassMax => "inr.low_risk.pass_max",
            ThresholdId::InrLowRiskBlockAbove => "inr.low_risk.block_above",
            ThresholdId::InrHighRiskPassMax => "inr.high_risk.pass_max",
            ThresholdId::InrHighRiskBlockAbove => "inr.high_risk.block_above",
            ThresholdId::InrArterialFemoralPassBelow => "inr.arterial_femoral.pass_below",
            ThresholdId::InrArterialRadialPassBelow => "inr.arterial_radial.pass_below",
            ThresholdId::SheathArterialHighRiskAbove => "sheath.arterial_high_risk_above",
            ThresholdId::PlateletsLowRiskTransfuseBelow => "platelets.low_risk.transfuse_below",
            ThresholdId::PlateletsHighRiskTransfuseBelow => "platelets.high_risk.transfuse_below",
            ThresholdId::LiverPlateletsLowRiskMinExclusive => {
                "liver.platelets.low_risk.min_exclusive"
            }
            ThresholdId::LiverPlateletsHighRiskMinExclusive => {
                "liver.platelets.high_risk.min_exclusive"
            }
            ThresholdId::LiverFibrinogenMinExclusive => "liver.fibrinogen.min_exclusive",
            ThresholdId::RecencyCoagulationOutpatientHours => {
                "recency.coagulation.outpatient_hours"
            }
            ThresholdId::RecencyCoagulationStoppingWarfarinHours => {
                "recency.coagulation.stopping_warfarin_hours"
            }
            ThresholdId::EgfrContrastActionBelow => "egfr.contrast.action_below",
            ThresholdId::RecencyEgfrOutpatientHours => "recency.egfr.outpatient_hours",
            ThresholdId::RecencyEgfrInpatientHours => "recency.egfr.inpatient_hours",
            ThresholdId::MetforminHoldAfterContrastHours => "metformin.hold_after_contrast_hours",
            ThresholdId::PremedicationElectiveOralFirstDoseHoursBefore => {
                "premedication.elective_oral.first_dose_hours_before"
            }
            ThresholdId::PremedicationAcceleratedIvMinimumHoursBefore => {
                "premedication.accelerated_iv.minimum_hours_before"
            }
            ThresholdId::PregnancyAgeMinYears => "pregnancy.age_min_years",
            ThresholdId::PregnancyAgeMaxYears => "pregnancy.age_max_years",
            ThresholdId::FastingClearLiquidsHours => "fasting.clear_liquids_hours",
            ThresholdId::FastingBreastMilkHours => "fasting.breast_milk_hours",
            ThresholdId::FastingLightMealHours => "fasting.light_meal_hours",
            ThresholdId::FastingFattyMealHours => "fasting.fatty_meal_hours",
            ThresholdId::AsaAnaesthesiaReviewFrom => "asa.anaesthesia_review_from",
            ThresholdId::ResumeDoacHighRiskFromHours => "resume.doac.high_risk_from_hours",
            ThresholdId::ResumeDoacHighRiskUntilHours => "resume.doac.high_risk_until_hours",
            ThresholdId::ResumeWarfarinHighRiskHours => "resume.warfarin.high_risk_hours",
            ThresholdId::DoseSrdlReferenceAirKerma => "dose.srdl.reference_air_kerma",
            ThresholdId::DoseSrdlPeakSkinDose => "dose.srdl.peak_skin_dose",
            ThresholdId::DoseSrdlKermaAreaProduct => "dose.srdl.kerma_area_product",
            ThresholdId::DoseSrdlFluoroscopyTime => "dose.srdl.fluoroscopy_time",
            ThresholdId::DosePhysicistReviewReferenceAirKermaAbove => {
                "dose.physicist_review.reference_air_kerma_above"
            }
            ThresholdId::DosePhysicistReviewPeakSkinDoseAbove => {
                "dose.physicist_review.peak_skin_dose_above"
            }
            ThresholdId::DoseSkinCheckFromDays => "dose.skin_check.from_days",
            ThresholdId::DoseSkinCheckUntilDays => "dose.skin_check.until_days",
            ThresholdId::DoseNotifyReferenceAirKermaFirst => {
                "dose.notify.reference_air_kerma_first"
            }
            ThresholdId::DoseNotifyReferenceAirKermaStep => "dose.notify.reference_air_kerma_step",
            ThresholdId::RecoveryAldreteDischargeTotalAtLeast => {
                "recovery.aldrete.discharge_total_at_least"
            }
            ThresholdId::RecoveryAldreteItemAtLeast => "recovery.aldrete.item_at_least",
            ThresholdId::FollowupIvcFilterRetrievalFromDays => {
                "followup.ivc_filter_retrieval.from_days"
            }
            ThresholdId::FollowupIvcFilterRetrievalUntilDays => {
                "followup.ivc_filter_retrieval.until_days"
            }
            ThresholdId::FollowupNephrostomyExchangeFromWeeks => {
                "followup.nephrostomy_exchange.from_weeks"
            }
            ThresholdId::FollowupNephrostomyExchangeUntilWeeks => {
                "followup.nephrostomy_exchange.until_weeks"
            }
            ThresholdId::FollowupBiliaryDrainExchangeFromWeeks => {
                "followup.biliary_drain_exchange.from_weeks"
            }
            ThresholdId::FollowupBiliaryDrainExchangeUntilWeeks => {
                "followup.biliary_drain_exchange.until_weeks"
            }
            ThresholdId::FollowupGastrostomyExchangeFromMonths => {
                "followup.gastrostomy_exchange.from_months"
            }
            ThresholdId::FollowupGastrostomyExchangeUntilMonths => {
                "followup.gastrostomy_exchange.until_months"
            }
            ThresholdId::FollowupPortFlushWeeks => "followup.port_flush.weeks",
            ThresholdId::FollowupPostAblationImagingMonths => {
                "followup.post_ablation_imaging.months"
            }
            ThresholdId::FollowupPostTaceImagingFromWeeks => {
                "followup.post_tace_imaging.from_weeks"
            }
            ThresholdId::FollowupPostTaceImagingUntilWeeks => {
                "followup.post_tace_imaging.until_weeks"
            }
            ThresholdId::OutcomeCheckAfterDays => "outcome.check.after_days",
        }
    }
}

/// Why the reference could not be loaded: file, row and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {location}{problem}")]
pub struct ReferenceError {
    pub file: String,
    pub location: String,
    pub problem: String,
}

impl SafetyReference {
    pub fn parse(text: &str, file: &str) -> Result<Self, ReferenceError> {
        let err = |location: String, problem: String| ReferenceError {
            file: file.into(),
            location,
            problem,
        };
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(String::new(), e.to_string()))?;
        let version = doc
            .get("version")
            .and_then(toml::Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| err(String::new(), "'version' must be a non-empty string".into()))?
            .to_string();
        let rows = |key: &str| -> Vec<toml::Table> {
            doc.get(key)
                .and_then(toml::Value::as_array)
                .map_or_else(Vec::new, |a| {
                    a.iter().filter_map(|v| v.as_table().cloned()).collect()
                })
        };
        let text_field = |row: &toml::Table, field: &str| -> Result<String, String> {
            row.get(field)
                .and_then(toml::Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("field '{field}' is missing or blank"))
        };
        let cited = |row: &toml::Table| -> Result<String, String> {
            let source = text_field(row, "source")?;
            if source.starts_with("clinical-rules.md §") {
                Ok(source)
            } else {
                Err("field 'source' must cite clinical-rules.md §…".into())
            }
        };

        let mut thresholds = BTreeMap::new();
        for (i, row) in rows("threshold").iter().enumerate() {
            let id = row
                .get("id")
                .and_then(toml::Value::as_str)
                .unwrap_or("?")
                .to_string();
            let at = format!("threshold {} (id '{id}'): ", i + 1);
            let parsed = (|| -> Result<Threshold, String> {
                let value = match row.get("value") {
                    Some(toml::Value::Float(v)) if v.is_finite() && *v >= 0.0 => *v,
                    Some(toml::Value::Integer(v)) if *v >= 0 => *v as f64,
                    _ => return Err("field 'value' must be a number ≥ 0".into()),
                };
                Ok(Threshold {
                    id: text_field(row, "id")?,
                    value,
                    unit: text_field(row, "unit")?,
                    source: cited(row)?,
                    evidence: Evidence::parse(&text_field(row, "status")?)
                        .map_err(|e| format!("field 'status': {e}"))?,
                })
            })()
            .map_err(|problem| err(at.clone(), problem))?;
            if thresholds.insert(parsed.id.clone(), parsed).is_some() {
                return Err(err(at, "duplicates an earlier id".into()));
            }
        }
        let mut ordered = Vec::with_capacity(ThresholdId::ALL.len());
        for id in ThresholdId::ALL {
            let t = thresholds.remove(id.as_str()).ok_or_else(|| {
                err(
                    String::new(),
                    format!("threshold '{}' is missing", id.as_str()),
                )
            })?;
            if t.unit != id.unit() {
                return Err(err(
                    String::new(),
                    format!(
                        "threshold '{}': unit '{}' is not the one the engine reads it in; use '{}'",
                        id.as_str(),
                        t.unit,
                        id.unit()
                    ),
                ));
            }
            ordered.push(t);
        }
        if let Some(unknown) = thresholds.keys().next() {
            return Err(err(
                String::new(),
                format!("threshold '{unknown}' is not one the engine reads (a typo?)"),
            ));
        }
        let thresholds = ordered;

        let mut drugs = BTreeMap::new();
        for (i, row) in rows("drug").iter().enumerate() {
            let at = format!("drug {}: ", i + 1);
            let name = text_field(row, "name")
                .map_err(|p| err(at.clone(), p))?
                .to_lowercase();
            let class = text_field(row, "class")
                .and_then(|c| DrugClass::parse(&c))
                .map_err(|p| err(format!("drug {} ('{name}'): ", i + 1), p))?;
            if drugs.insert(name.clone(), class).is_some() {
                return Err(err(at, format!("'{name}' is listed twice")));
            }
        }

        let mut holds = Vec::new();
        for (i, row) in rows("hold").iter().enumerate() {
            let drug = row
                .get("drug")
                .and_then(toml::Value::as_str)
                .unwrap_or("?")
                .to_lowercase();
            let at = format!("hold {} (drug '{drug}'): ", i + 1);
            let parsed = (|| -> Result<HoldRule, String> {
                if !drugs.contains_key(&drug) {
                    return Err("field 'drug' names a drug missing from the [[drug]] table".into());
                }
                let hours = match row.get("hours") {
                    Some(toml::Value::Integer(h)) if (1..=24 * 30).contains(h) => *h as u32,
                    _ => return Err("field 'hours' must be a whole number from 1 to 720".into()),
                };
                let crcl = match row.get("crcl").and_then(toml::Value::as_str) {
                    Some(band) => {
                        CrClBand::parse(band).map_err(|e| format!("field 'crcl': {e}"))?
                    }
                    None => CrClBand::ANY,
                };
                let dose = match row.get("dose").and_then(toml::Value::as_str) {
                    None => None,
                    Some("prophylactic") => Some(DoseIntent::Prophylactic),
                    Some("therapeutic") => Some(DoseIntent::Therapeutic),
                    Some(other) => {
                        return Err(format!(
                            "field 'dose': '{other}' is not prophylactic or therapeutic"
                        ))
                    }
                };
                Ok(HoldRule {
                    drug: drug.clone(),
                    crcl,
                    dose,
                    indication: row
                        .get("indication")
                        .and_then(toml::Value::as_str)
                        .map(str::to_string),
                    hours,
                    source: cited(row)?,
                    evidence: Evidence::parse(&text_field(row, "status")?)
                        .map_err(|e| format!("field 'status': {e}"))?,
                    note: row
                        .get("note")
                        .and_then(toml::Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                })
            })()
            .map_err(|problem| err(at, problem))?;
            holds.push(parsed);
        }
        Ok(SafetyReference {
            version,
            thresholds,
            drugs,
            holds,
        })
    }

    /// A threshold the engine needs; present by construction (every id is checked at load).
    pub fn threshold(&self, id: ThresholdId) -> &Threshold {
        &self.thresholds[id as usize]
    }

    pub fn thresholds(&self) -> impl Iterator<Item = &Threshold> {
        self.thresholds.iter()
    }

    pub fn drug_class(&self, name: &str) -> Option<DrugClass> {
        self.drugs.get(&name.trim().to_lowercase()).copied()
    }

    /// The hold rows for a drug that match the patient's renal function, dose and indication.
    pub fn holds_for(
        &self,
        drug: &str,
        crcl: Option<f64>,
        dose: Option<DoseIntent>,
    ) -> Vec<&HoldRule> {
        let drug = drug.trim().to_lowercase();
        self.holds
            .iter()
            .filter(|h| h.drug == drug)
            .filter(|h| h.crcl.is_any() || crcl.is_some_and(|c| h.crcl.contains(c)))
            .filter(|h| h.dose.is_none() || h.dose == dose)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn shipped() -> SafetyReference {
        SafetyReference::parse(
            include_str!("../../../../catalog/safety-thresholds.toml"),
            "catalog/safety-thresholds.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_shipped_reference_loads_and_cites_every_row() {
        let r = shipped();
        assert_eq!(r.threshold(ThresholdId::InrHighRiskPassMax).value, 1.5);
        assert!(ThresholdId::ALL
            .iter()
            .all(|id| r.threshold(*id).id == id.as_str()));
        assert!(r
            .thresholds()
            .all(|t| t.source.starts_with("clinical-rules.md §")));
        assert!(r.holds.iter().all(|h| r
            .drug_class(&h.drug)
            .is_some_and(DrugClass::is_antithrombotic)));
    }

    #[test]
    fn renal_bands_do_not_overlap_or_leave_gaps_for_a_drug() {
        let r = shipped();
        for drug in ["fondaparinux", "apixaban", "rivaroxaban", "dabigatran"] {
            for crcl in [
                0.0, 14.9, 15.0, 25.0, 25.1, 29.9, 30.0, 30.1, 49.9, 50.0, 120.0,
            ] {
                let n = r.holds_for(drug, Some(crcl), None).len();
                assert_eq!(n, 1, "{drug} at CrCl {crcl}: {n} matching rows");
            }
        }
        // Edoxaban below 16: the reference gives no interval; the engine says so.
        assert!(r.holds_for("edoxaban", Some(15.0), None).is_empty());
        assert_eq!(r.holds_for("edoxaban", Some(15.1), None)[0].hours, 48);
    }

    #[test]
    fn boundaries_follow_the_reference_wording() {
        let r = shipped();
        let hours = |drug: &str, crcl: f64| r.holds_for(drug, Some(crcl), None)[0].hours;
        assert_eq!(hours("apixaban", 25.0), 72, "CrCl ≤ 25: +1 day");
        assert_eq!(hours("apixaban", 25.5), 48);
        assert_eq!(hours("rivaroxaban", 30.0), 72);
        assert_eq!(hours("dabigatran", 50.0), 48, "≥ 50");
        assert_eq!(hours("dabigatran", 30.0), 96, "30-49");
        assert_eq!(hours("dabigatran", 29.9), 120);
        assert_eq!(hours("fondaparinux", 50.0), 72);
        assert_eq!(hours("fondaparinux", 49.9), 120);
    }

    #[test]
    fn a_malformed_row_names_file_row_and_field() {
        let text = include_str!("../../../../catalog/safety-thresholds.toml").replacen(
            "status = \"V\"",
            "status = \"maybe\"",
            1,
        );
        let e = SafetyReference::parse(&text, "t.toml").expect_err("bad status");
        assert_eq!(e.to_string(), "t.toml: threshold 1 (id 'inr.low_risk.pass_max'): field 'status': 'maybe' is not V, U or D");
        let text = include_str!("../../../../catalog/safety-thresholds.toml").replacen(
            "crcl = \">25\"",
            "crcl = \"25+\"",
            1,
        );
        let e = SafetyReference::parse(&text, "t.toml").expect_err("bad band");
        assert!(
            e.to_string()
                .contains("(drug 'apixaban'): field 'crcl': '25+' must start with"),
            "{e}"
        );
        let text = include_str!("../../../../catalog/safety-thresholds.toml").replacen(
            "id = \"asa.anaesthesia_review_from\"",
            "id = \"asa.other\"",
            1,
        );
        let e = SafetyReference::parse(&text, "t.toml").expect_err("missing");
        assert!(
            e.to_string()
                .ends_with("threshold 'asa.anaesthesia_review_from' is missing"),
            "{e}"
        );
        let text = include_str!("../../../../catalog/safety-thresholds.toml").replacen(
            "unit = \"wk\"",
            "unit = \"weeks\"",
            1,
        );
        let e = SafetyReference::parse(&text, "t.toml").expect_err("wrong unit");
        assert!(
            e.to_string().ends_with(
                "threshold 'followup.nephrostomy_exchange.from_weeks': unit 'weeks' is not the one the engine reads it in; use 'wk'"
            ),
            "{e}"
        );
    }
}

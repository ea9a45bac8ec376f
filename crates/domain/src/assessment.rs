//! The pre-procedure assessment of a case: where the patient comes from, ASA class and airway,
//! conditions the safety rules ask about, fasting times and consent. Recorded as case events.

use crate::validation::required_text;
use crate::ValidationErrors;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    Outpatient,
    Inpatient,
    Emergency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreAssessment {
    pub setting: Setting,
    /// Start of this presentation, for inpatients and ED patients (labs must come from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<DateTime<Utc>>,
    /// ASA physical status I-VI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asa_class: Option<u8>,
    #[serde(default)]
    pub difficult_airway: bool,
    #[serde(default)]
    pub chronic_liver_disease: bool,
    #[serde(default)]
    pub acute_kidney_injury: bool,
    #[serde(default)]
    pub on_dialysis: bool,
    /// Mechanical valve, recent VTE or stent.
    #[serde(default)]
    pub high_thrombotic_risk: bool,
    /// Creatinine clearance, mL/min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creatinine_clearance: Option<f64>,
}

impl PreAssessment {
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ValidationErrors> {
        let mut c = crate::validation::Collector::new();
        if self.asa_class.is_some_and(|a| !(1..=6).contains(&a)) {
            c.push("event.assessment.asa_class", "must be 1 to 6 (ASA I-VI)");
        }
        if self
            .creatinine_clearance
            .is_some_and(|v| !v.is_finite() || !(0.0..=300.0).contains(&v))
        {
            c.push(
                "event.assessment.creatinine_clearance",
                "must be mL/min between 0 and 300",
            );
        }
        match (self.setting, self.admitted_at) {
            (Setting::Outpatient, _) => {}
            (_, None) => c.push(
                "event.assessment.admitted_at",
                "is required for inpatients and ED patients",
            ),
            (_, Some(t)) if t > now => {
                c.push("event.assessment.admitted_at", "must not be in the future")
            }
            _ => {}
        }
        c.finish()
    }
}

/// When the patient last had each kind of intake; absent means none since the fast began.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FastingTimes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_liquids: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breast_milk: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub light_meal: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fatty_meal: Option<DateTime<Utc>>,
}

impl FastingTimes {
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ValidationErrors> {
        let mut c = crate::validation::Collector::new();
        for (field, t) in [
            ("clear_liquids", self.clear_liquids),
            ("breast_milk", self.breast_milk),
            ("light_meal", self.light_meal),
            ("fatty_meal", self.fatty_meal),
        ] {
            if t.is_some_and(|t| t > now) {
                c.push(
                    format!("event.fasting.{field}"),
                    "must not be in the future",
                );
            }
        }
        c.finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The clinician who took consent.
    pub obtained_by: String,
    pub obtained_at: DateTime<Utc>,
}

impl Consent {
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), ValidationErrors> {
        let mut c = crate::validation::Collector::new();
        c.take(
            "event.consent.obtained_by",
            required_text(&self.obtained_by, crate::validation::SHORT_TEXT),
        );
        if self.obtained_at > now {
            c.push("event.consent.obtained_at", "must not be in the future");
        }
        c.finish()
    }
}

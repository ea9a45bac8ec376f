//! Medications and laboratory results as recorded for a patient. The rules that read them (the
//! safety engine) come later; here they are typed, coded and timed so those rules can trust them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A medication the patient takes, with the last dose time that hold rules need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Medication {
    /// Generic name, lower case, e.g. "apixaban".
    pub drug: String,
    /// Dose as prescribed, e.g. "5 mg".
    pub dose: String,
    /// e.g. "twice daily".
    pub frequency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_dose_at: Option<DateTime<Utc>>,
}

/// Laboratory tests the IR rules use, each with its LOINC code and the UCUM unit it is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LabTest {
    Inr,
    Platelets,
    Haemoglobin,
    Creatinine,
    Egfr,
    Fibrinogen,
}

impl LabTest {
    pub const ALL: [LabTest; 5] = [
        LabTest::Inr,
        LabTest::Platelets,
        LabTest::Haemoglobin,
        LabTest::Creatinine,
        LabTest::Egfr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LabTest::Inr => "inr",
            LabTest::Platelets => "platelets",
            LabTest::Haemoglobin => "haemoglobin",
            LabTest::Creatinine => "creatinine",
            LabTest::Egfr => "egfr",
            LabTest::Fibrinogen => "fibrinogen",
        }
    }

    /// LOINC code of the test as stored.
    pub fn loinc(self) -> &'static str {
        match self {
            LabTest::Inr => "6301-6", // INR in Platelet poor plasma by Coagulation assay
            LabTest::Platelets => "777-3", // Platelets [#/volume] in Blood by Automated count
            LabTest::Haemoglobin => "718-7", // Hemoglobin [Mass/volume] in Blood
            LabTest::Creatinine => "2160-0", // Creatinine [Mass/volume] in Serum or Plasma
            LabTest::Egfr => "98979-8", // GFR/1.73 sq M predicted, CKD-EPI 2021
            LabTest::Fibrinogen => "3255-7", // Fibrinogen [Mass/volume] in Platelet poor plasma
        }
    }

    /// UCUM unit the value is stored in.
    pub fn ucum_unit(self) -> &'static str {
        match self {
            LabTest::Inr => "{INR}",
            LabTest::Platelets => "10*9/L",
            LabTest::Haemoglobin => "g/dL",
            LabTest::Creatinine => "mg/dL",
            LabTest::Egfr => "mL/min/{1.73_m2}",
            LabTest::Fibrinogen => "mg/dL",
        }
    }
}

/// One result, with the time the specimen was drawn (recency rules use the draw time, not the report time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabResult {
    pub test: LabTest,
    pub loinc: String,
    pub value: f64,
    pub unit: String,
    pub drawn_at: DateTime<Utc>,
}

impl LabResult {
    /// A result in the test's canonical unit; rejects non-finite or negative values.
    pub fn new(test: LabTest, value: f64, drawn_at: DateTime<Utc>) -> Result<Self, String> {
        if !value.is_finite() || value < 0.0 {
            return Err(format!(
                "{value} is not a valid result for {test:?}: must be a number ≥ 0"
            ));
        }
        Ok(LabResult {
            test,
            loinc: test.loinc().into(),
            value,
            unit: test.ucum_unit().into(),
            drawn_at,
        })
    }
}

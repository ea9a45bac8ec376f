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
    /// For low-molecular-weight heparins: `prophylactic` or `therapeutic` (hold times differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dose_intent: Option<String>,
    /// For aspirin: `primary_prevention` or `secondary_prevention` (only the first is held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indication: Option<String>,
}

/// A drug's dose intent, where the rules tell prophylactic from therapeutic dosing.
pub const DOSE_INTENTS: &[&str] = &["prophylactic", "therapeutic"];
/// Why an antiplatelet is taken, where the rules tell the two apart.
pub const INDICATIONS: &[&str] = &["primary_prevention", "secondary_prevention"];

/// A medication as a client sends it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MedicationInput {
    /// Generic name, e.g. "apixaban". Drugs the safety table does not know are accepted and
    /// reported on the checklist as needing review.
    pub drug: String,
    #[serde(default)]
    pub dose: String,
    #[serde(default)]
    pub frequency: String,
    /// When the last dose was taken (RFC 3339).
    #[serde(default)]
    pub last_dose_at: Option<DateTime<Utc>>,
    /// `prophylactic` or `therapeutic`.
    #[serde(default)]
    pub dose_intent: Option<String>,
    /// `primary_prevention` or `secondary_prevention`.
    #[serde(default)]
    pub indication: Option<String>,
}

impl Medication {
    pub fn parse(
        input: &MedicationInput,
        now: DateTime<Utc>,
    ) -> Result<Medication, crate::ValidationErrors> {
        use crate::validation::{optional_text, parse_choice, required_text, Collector};
        let mut c = Collector::new();
        let drug = c
            .take(
                "drug",
                required_text(&input.drug, crate::validation::SHORT_TEXT),
            )
            .map(|d| d.to_lowercase());
        let dose = c
            .take(
                "dose",
                optional_text(Some(&input.dose), crate::validation::SHORT_TEXT),
            )
            .flatten()
            .unwrap_or_default();
        let frequency = c
            .take(
                "frequency",
                optional_text(Some(&input.frequency), crate::validation::SHORT_TEXT),
            )
            .flatten()
            .unwrap_or_default();
        if input.last_dose_at.is_some_and(|t| t > now) {
            c.push("last_dose_at", "must not be in the future");
        }
        let choice =
            |c: &mut Collector, field: &str, value: &Option<String>, allowed: &[&'static str]| {
                let allowed: Vec<(&str, &'static str)> = allowed.iter().map(|a| (*a, *a)).collect();
                value
                    .as_deref()
                    .filter(|v| !v.is_empty())
                    .and_then(|v| c.take(field, parse_choice(v, &allowed)).map(str::to_string))
            };
        let dose_intent = choice(&mut c, "dose_intent", &input.dose_intent, DOSE_INTENTS);
        let indication = choice(&mut c, "indication", &input.indication, INDICATIONS);
        c.finish()?;
        Ok(Medication {
            drug: drug.unwrap_or_default(),
            dose,
            frequency,
            last_dose_at: input.last_dose_at,
            dose_intent,
            indication,
        })
    }
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
    pub const ALL: [LabTest; 6] = [
        LabTest::Inr,
        LabTest::Platelets,
        LabTest::Haemoglobin,
        LabTest::Creatinine,
        LabTest::Egfr,
        LabTest::Fibrinogen,
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
    /// The sender's identifier of the result (`system|value`, a FHIR Observation's), when it
    /// gave one: the same result sent again is recognised, not recorded twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
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
            identifier: None,
        })
    }
}

/// A laboratory result as a client sends it: a test (by name or LOINC code), a value in some
/// UCUM unit, and the draw time.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabResultInput {
    /// inr, platelets, haemoglobin, creatinine, egfr, fibrinogen — or the LOINC code.
    pub test: String,
    pub value: f64,
    /// A UCUM unit the test is reported in, e.g. `umol/L` or `mg/dL` for creatinine.
    pub unit: String,
    /// When the specimen was drawn (RFC 3339). Required: recency rules use it.
    pub drawn_at: Option<DateTime<Utc>>,
}

/// Units each test accepts, with the factor to its canonical unit (value × factor).
/// Factors are unit arithmetic and molar masses, not clinical thresholds.
const UNITS: &[(LabTest, &str, f64)] = &[
    (LabTest::Inr, "{INR}", 1.0),
    (LabTest::Inr, "1", 1.0),
    (LabTest::Platelets, "10*9/L", 1.0),
    (LabTest::Platelets, "10*3/uL", 1.0),
    (LabTest::Haemoglobin, "g/dL", 1.0),
    (LabTest::Haemoglobin, "g/L", 0.1),
    // Haemoglobin monomer, 16.114 g/mmol (UCUM/IFCC convention for mmol/L reporting).
    (LabTest::Haemoglobin, "mmol/L", 1.6114),
    (LabTest::Creatinine, "mg/dL", 1.0),
    // Creatinine 113.12 g/mol: 1 mg/dL = 88.42 umol/L.
    (LabTest::Creatinine, "umol/L", 1.0 / 88.42),
    (LabTest::Creatinine, "mmol/L", 1000.0 / 88.42),
    (LabTest::Egfr, "mL/min/{1.73_m2}", 1.0),
    (LabTest::Egfr, "mL/min/1.73m2", 1.0),
    (LabTest::Fibrinogen, "mg/dL", 1.0),
    (LabTest::Fibrinogen, "g/L", 100.0),
];

impl LabResult {
    /// Checks the input and converts the value to the test's canonical unit; the unit the
    /// client used is kept in the error messages, never silently guessed.
    pub fn parse(
        input: &LabResultInput,
        now: DateTime<Utc>,
    ) -> Result<LabResult, crate::ValidationErrors> {
        let mut c = crate::validation::Collector::new();
        let wanted = input.test.trim().to_lowercase();
        let test = LabTest::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted || t.loinc() == wanted);
        if test.is_none() {
            let names: Vec<String> = LabTest::ALL
                .iter()
                .map(|t| format!("{} ({})", t.as_str(), t.loinc()))
                .collect();
            c.push(
                "test",
                format!(
                    "'{}' is not a test the rules use; use one of: {}",
                    input.test,
                    names.join(", ")
                ),
            );
        }
        let factor = test.and_then(|t| {
            let unit = input.unit.trim().replace('µ', "u");
            let found = UNITS
                .iter()
                .find(|(ut, u, _)| *ut == t && *u == unit)
                .map(|(_, _, f)| *f);
            if found.is_none() {
                let allowed: Vec<&str> = UNITS
                    .iter()
                    .filter(|(ut, ..)| *ut == t)
                    .map(|(_, u, _)| *u)
                    .collect();
                c.push(
                    "unit",
                    format!(
                        "'{}' is not a unit for {}; use one of: {}",
                        input.unit,
                        t.as_str(),
                        allowed.join(", ")
                    ),
                );
            }
            found
        });
        if !input.value.is_finite() || input.value < 0.0 {
            c.push(
                "value",
                format!("{} is not a result: must be a number ≥ 0", input.value),
            );
        }
        match input.drawn_at {
            None => c.push(
                "drawn_at",
                "is required: when the specimen was drawn (RFC 3339)",
            ),
            Some(t) if t > now => c.push("drawn_at", "must not be in the future"),
            Some(_) => {}
        }
        c.finish()?;
        match (test, factor, input.drawn_at) {
            (Some(test), Some(factor), Some(drawn_at)) => {
                let canonical = (input.value * factor * 1000.0).round() / 1000.0;
                LabResult::new(test, canonical, drawn_at)
                    .map_err(|e| crate::ValidationErrors::single("value", e))
            }
            _ => Err(crate::ValidationErrors::single("lab", "incomplete input")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
            .single()
            .expect("valid")
    }

    fn input(test: &str, value: f64, unit: &str) -> LabResultInput {
        LabResultInput {
            test: test.into(),
            value,
            unit: unit.into(),
            drawn_at: Some(now()),
        }
    }

    #[test]
    fn converts_to_the_canonical_unit() {
        let creat = LabResult::parse(&input("creatinine", 88.42, "µmol/L"), now()).expect("valid");
        assert_eq!(
            (creat.value, creat.unit.as_str(), creat.loinc.as_str()),
            (1.0, "mg/dL", "2160-0")
        );
        assert_eq!(
            LabResult::parse(&input("creatinine", 177.0, "umol/L"), now())
                .expect("valid")
                .value,
            2.002
        );
        assert_eq!(
            LabResult::parse(&input("haemoglobin", 125.0, "g/L"), now())
                .expect("valid")
                .value,
            12.5
        );
        assert_eq!(
            LabResult::parse(&input("fibrinogen", 1.5, "g/L"), now())
                .expect("valid")
                .value,
            150.0
        );
        assert_eq!(
            LabResult::parse(&input("777-3", 150.0, "10*3/uL"), now())
                .expect("valid")
                .test,
            LabTest::Platelets
        );
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        let e = LabResult::parse(&input("creatinine", 1.0, "mg/L"), now()).expect_err("unit");
        assert_eq!(e.0[0].field, "unit");
        assert!(
            e.0[0].detail.contains("mg/dL, umol/L, mmol/L"),
            "{}",
            e.0[0].detail
        );
        let e = LabResult::parse(&input("potassium", 4.0, "mmol/L"), now()).expect_err("test");
        assert!(e.0[0].detail.contains("inr (6301-6)"));
        let e = LabResult::parse(
            &LabResultInput {
                drawn_at: None,
                ..input("inr", -1.0, "{INR}")
            },
            now(),
        )
        .expect_err("bad");
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["value", "drawn_at"]);
    }
}

/// Checks a correction of one recorded lab or drug entry before it is stored: the entry must be
/// one of the patient's current entries, a reason must say why (the history keeps it), and a
/// replacement must change something. Returns the reason, trimmed.
///
/// Entries are never edited in place without a trace: a correction is a new event naming the
/// entry, and "entered in error" withdraws it from the rules while the history keeps it.
pub fn check_correction<T: PartialEq>(
    what: &str,
    entry: u64,
    current: &[(u64, T)],
    replacement: Option<&T>,
    reason: Option<&str>,
) -> Result<String, crate::ValidationErrors> {
    let mut c = crate::validation::Collector::new();
    match current.iter().find(|(e, _)| *e == entry) {
        None => c.push(
            "entry",
            format!(
                "{what} entry {entry} is not a current entry of this patient's record; \
                 it may have been corrected or withdrawn already — reload the record"
            ),
        ),
        Some((_, existing)) if replacement == Some(existing) => c.push(
            "entry",
            format!("nothing changed in {what} entry {entry}; change a value or cancel"),
        ),
        Some(_) => {}
    }
    let reason = c.take(
        "reason",
        crate::validation::required_text(
            reason.unwrap_or_default(),
            crate::validation::MEDIUM_TEXT,
        )
        .map_err(|e| format!("{e}: say why the entry is corrected (e.g. transcription error)")),
    );
    c.finish()?;
    Ok(reason.unwrap_or_default())
}

#[cfg(test)]
mod correction_tests {
    use super::*;

    #[test]
    fn a_correction_needs_a_current_entry_a_reason_and_a_change() {
        let current = [(3_u64, "5 mg"), (7, "10 mg")];
        assert_eq!(
            check_correction("drug", 7, &current, Some(&"2.5 mg"), Some(" misread ")),
            Ok("misread".to_string())
        );
        assert_eq!(
            check_correction("drug", 3, &current, None, Some("wrong patient")),
            Ok("wrong patient".to_string()),
            "withdrawing needs no replacement"
        );
        let errors = check_correction("drug", 9, &current, Some(&"1 mg"), None)
            .expect_err("unknown entry, no reason");
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["entry", "reason"]);
        assert!(errors.0[0].detail.contains("entry 9"));
        let unchanged = check_correction("drug", 3, &current, Some(&"5 mg"), Some("x"))
            .expect_err("nothing changed");
        assert!(unchanged.0[0].detail.contains("nothing changed"));
    }
}

/// What a laboratory says of one result it reports (HL7 OBX-11, table 0085).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedStatus {
    /// Final or preliminary: the value stands until the laboratory says otherwise.
    Result,
    /// A correction of a result reported before (same test, same specimen time).
    Corrected,
    /// The result reported before was wrong or is deleted: withdrawn from the record.
    Withdrawn,
}

/// One result as a laboratory reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedLab {
    pub result: LabResult,
    pub status: ReportedStatus,
}

/// The events a laboratory report makes on a record whose current results are `current`: a
/// result already there with the same value is not added twice (a report sent again); a
/// correction replaces the result of the same test and specimen time (or is added, when that
/// result never arrived); a withdrawal removes it (and is ignored when nothing matches).
pub fn lab_report_events(
    current: &[(u64, LabResult)],
    reported: &[ReportedLab],
) -> Vec<crate::patient::PatientEvent> {
    use crate::patient::PatientEvent;
    let same_specimen = |a: &LabResult, b: &LabResult| a.test == b.test && a.drawn_at == b.drawn_at;
    let mut events = Vec::new();
    for line in reported {
        let existing = current.iter().find(|(_, r)| same_specimen(r, &line.result));
        match (line.status, existing) {
            (ReportedStatus::Result | ReportedStatus::Corrected, Some((_, r)))
                if r.value == line.result.value => {}
            (ReportedStatus::Corrected, Some((entry, _))) => {
                events.push(PatientEvent::LabResultCorrected {
                    entry: *entry,
                    result: line.result.clone(),
                })
            }
            (ReportedStatus::Result | ReportedStatus::Corrected, _) => {
                events.push(PatientEvent::LabResultRecorded {
                    result: line.result.clone(),
                })
            }
            (ReportedStatus::Withdrawn, Some((entry, _))) => {
                events.push(PatientEvent::LabResultEnteredInError { entry: *entry })
            }
            (ReportedStatus::Withdrawn, None) => {}
        }
    }
    events
}

#[cfg(test)]
mod lab_report_tests {
    use super::*;
    use chrono::TimeZone;

    fn inr(value: f64, hour: u32) -> LabResult {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 30, hour, 0, 0)
            .unwrap();
        LabResult::new(LabTest::Inr, value, at).unwrap()
    }

    fn line(result: LabResult, status: ReportedStatus) -> ReportedLab {
        ReportedLab { result, status }
    }

    #[test]
    fn a_report_sent_again_adds_nothing_and_a_correction_replaces_its_result() {
        use crate::patient::PatientEvent as E;
        let current = vec![(7, inr(1.4, 8))];
        assert!(
            lab_report_events(&current, &[line(inr(1.4, 8), ReportedStatus::Result)]).is_empty()
        );
        assert_eq!(
            lab_report_events(&current, &[line(inr(1.9, 8), ReportedStatus::Corrected)]),
            vec![E::LabResultCorrected {
                entry: 7,
                result: inr(1.9, 8)
            }]
        );
        // A final result for another specimen is a new result, even with the same value.
        assert_eq!(
            lab_report_events(&current, &[line(inr(1.4, 9), ReportedStatus::Result)]),
            vec![E::LabResultRecorded {
                result: inr(1.4, 9)
            }]
        );
        assert_eq!(
            lab_report_events(&current, &[line(inr(1.4, 8), ReportedStatus::Withdrawn)]),
            vec![E::LabResultEnteredInError { entry: 7 }]
        );
        assert!(lab_report_events(&[], &[line(inr(1.4, 8), ReportedStatus::Withdrawn)]).is_empty());
    }
}

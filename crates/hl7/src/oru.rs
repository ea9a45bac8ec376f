//! ORU^R01 laboratory results: the OBX of the tests the safety rules read (INR, platelets,
//! haemoglobin, creatinine, eGFR, fibrinogen — LOINC, or a laboratory code the interface file
//! maps), in a UCUM unit, at the specimen's collection time; other observations are not IR's
//! and are left alone.

use crate::config::InterfaceConfig;
use crate::fields::{instant, patient_identity};
use crate::message::{Received, Seg, Value};
use crate::problem::{ErrorCode, Problem};
use chrono::{DateTime, Utc};
use seldinger_domain::clinical::{LabResult, LabResultInput, LabTest, ReportedLab, ReportedStatus};
use seldinger_domain::patient::{Mrn, SiteCode};
use seldinger_domain::DepartmentTime;

/// A laboratory report for one patient.
#[derive(Debug, Clone, PartialEq)]
pub struct LabReport {
    pub site: SiteCode,
    pub mrn: Mrn,
    pub results: Vec<ReportedLab>,
}

/// Reads an ORU^R01; `now` bounds collection times (none in the future).
pub fn read(
    received: &Received,
    config: &InterfaceConfig,
    time: &DepartmentTime,
    now: DateTime<Utc>,
) -> Result<LabReport, Problem> {
    let (site, mrn) = patient_identity(received, config)?;
    let mut results = Vec::new();
    let mut collected: Option<DateTime<Utc>> = None;
    let mut obr_seen = 0;
    let mut obx_seen = 0;
    for segment in received.message.segments() {
        match segment.name() {
            "OBR" => {
                obr_seen += 1;
                let obr = received
                    .segments("OBR")
                    .nth(obr_seen - 1)
                    .ok_or_else(|| internal("OBR vanished"))?;
                collected = match obr.get(7, 1) {
                    Value::Text(t) => Some(instant(&t, &obr.at(7).component(1), time)?),
                    _ => None,
                };
            }
            "OBX" => {
                obx_seen += 1;
                let obx = received
                    .segments("OBX")
                    .nth(obx_seen - 1)
                    .ok_or_else(|| internal("OBX vanished"))?;
                if let Some(line) = result(&obx, collected, config, time, now)? {
                    results.push(line);
                }
            }
            _ => {}
        }
    }
    Ok(LabReport { site, mrn, results })
}

fn internal(what: &str) -> Problem {
    Problem::new(ErrorCode::ApplicationInternalError, None, what)
}

/// The test an OBX-3 names: its identifier or, when coded twice, its alternate identifier.
fn test_of(obx: &Seg<'_>, config: &InterfaceConfig) -> Option<LabTest> {
    [1, 4]
        .into_iter()
        .filter_map(|c| obx.get(3, c).text().map(str::to_string))
        .find_map(|code| config.test_of(&code))
}

fn result(
    obx: &Seg<'_>,
    collected: Option<DateTime<Utc>>,
    config: &InterfaceConfig,
    time: &DepartmentTime,
    now: DateTime<Utc>,
) -> Result<Option<ReportedLab>, Problem> {
    let Some(test) = test_of(obx, config) else {
        return Ok(None);
    };
    // OBX-11, table 0085: results that stand (F, P), a correction (C), a withdrawal (D, W);
    // unverified, pending or missing ones (R, I, S, X, N, …) are not acted on.
    let status = match obx.get(11, 1).text().unwrap_or("F").trim() {
        "F" | "P" => ReportedStatus::Result,
        "C" => ReportedStatus::Corrected,
        "D" | "W" => ReportedStatus::Withdrawn,
        _ => return Ok(None),
    };
    let drawn_at = match obx.get(14, 1) {
        Value::Text(t) => instant(&t, &obx.at(14).component(1), time)?,
        _ => collected.ok_or_else(|| {
            Problem::new(
                ErrorCode::RequiredFieldMissing,
                Some(obx.at(14)),
                "no collection time: send it in OBR-7 or OBX-14",
            )
        })?,
    };
    let value_type = obx.get(2, 1).text().unwrap_or("NM").trim().to_string();
    let raw_value = match obx.get(5, 1) {
        Value::Text(t) => t,
        _ if status == ReportedStatus::Withdrawn => "0".to_string(),
        _ => {
            return Err(Problem::new(
                ErrorCode::RequiredFieldMissing,
                Some(obx.at(5)),
                format!("the {} result has no value", test.as_str()),
            ))
        }
    };
    if value_type == "SN" {
        // A structured numeric with a comparator ("<", ">") is not a value the rules can judge.
        let comparator = obx.get(5, 1).text().unwrap_or("").trim().to_string();
        let number = obx.get(5, 2).text().unwrap_or("").trim().to_string();
        if !comparator.is_empty() && comparator != "=" {
            return Err(Problem::invalid(
                obx.at(5),
                format!(
                    "the {} result '{comparator}{number}' has a comparator; the rules need a number",
                    test.as_str()
                ),
            ));
        }
        return lab(obx, test, &number, status, drawn_at, now).map(Some);
    }
    if value_type != "NM" && value_type != "ST" {
        return Err(Problem::invalid(
            obx.at(2),
            format!(
                "value type '{value_type}' is not read for {}: send NM (or SN)",
                test.as_str()
            ),
        ));
    }
    lab(obx, test, &raw_value, status, drawn_at, now).map(Some)
}

fn lab(
    obx: &Seg<'_>,
    test: LabTest,
    value: &str,
    status: ReportedStatus,
    drawn_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<ReportedLab, Problem> {
    let number: f64 = value.trim().parse().map_err(|_| {
        Problem::invalid(
            obx.at(5),
            format!("'{value}' is not a number ({} result)", test.as_str()),
        )
    })?;
    let unit = obx
        .get(6, 1)
        .text()
        .map(str::to_string)
        .unwrap_or_else(|| test.ucum_unit().to_string());
    let input = LabResultInput {
        test: test.as_str().to_string(),
        value: number,
        unit,
        drawn_at: Some(drawn_at),
    };
    let result = LabResult::parse(&input, now).map_err(|errors| {
        let field = errors.0.first().map(|e| e.field.as_str()).unwrap_or("");
        let at = match field {
            "unit" => obx.at(6).component(1),
            "drawn_at" => obx.at(14),
            _ => obx.at(5),
        };
        let details: Vec<&str> = errors.0.iter().map(|e| e.detail.as_str()).collect();
        Problem::invalid(at, details.join("; "))
    })?;
    Ok(ReportedLab { result, status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn read_text(text: &str) -> Result<LabReport, Problem> {
        let received = Received::read(text.as_bytes()).unwrap();
        let config = InterfaceConfig::parse(crate::DEMO_INTERFACE, "demo").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        read(
            &received,
            &config,
            &DepartmentTime::parse("UTC").unwrap(),
            now,
        )
    }

    #[test]
    fn loinc_and_local_codes_in_any_accepted_unit_become_results_at_collection_time() {
        let report = read_text(
            "MSH|^~\\&|LAB|GENHOSP|SELDINGER|IR|202612020800||ORU^R01^ORU_R01|L1|P|2.5.1\r\
             PID|1||M0042^^^GENHOSP^MR||Fairweather^Ada||19610412|F\r\
             OBR|1|PL1|FL1|COAG^Coagulation|||202612020715\r\
             OBX|1|NM|6301-6^INR^LN||1.3|{INR}|||||F\r\
             OBX|2|NM|NA^Sodium^L||140|mmol/L|||||F\r\
             OBR|2|PL2|FL2|CHEM^Chemistry|||202612020716\r\
             OBX|1|NM|CREA^Creatinine^L^2160-0^Creatinine^LN||88.42|umol/L|||||C\r\
             OBX|2|NM|PLT^Platelets^L||210|10*9/L|||||F|||202612020700\r",
        )
        .unwrap();
        assert_eq!(report.results.len(), 3, "sodium is not IR's");
        let [inr, creatinine, platelets] = &report.results[..] else {
            panic!()
        };
        assert_eq!(inr.result.test, LabTest::Inr);
        assert_eq!(
            inr.result.drawn_at.to_rfc3339(),
            "2026-12-02T07:15:00+00:00"
        );
        assert_eq!(creatinine.status, ReportedStatus::Corrected);
        assert!(
            (creatinine.result.value - 1.0).abs() < 1e-9,
            "umol/L → mg/dL"
        );
        assert_eq!(
            platelets.result.drawn_at.to_rfc3339(),
            "2026-12-02T07:00:00+00:00"
        );
    }

    #[test]
    fn an_unusable_result_names_its_field_and_the_allowed_values() {
        let unit = read_text(
            "MSH|^~\\&|LAB|GENHOSP|SELDINGER|IR|202612020800||ORU^R01|L2|P|2.5.1\r\
             PID|1||M0042^^^GENHOSP^MR\r\
             OBR|1|PL1|FL1|COAG|||202612020715\r\
             OBX|1|NM|6301-6^INR^LN||1.3|mg|||||F\r",
        )
        .unwrap_err();
        assert_eq!(unit.location.unwrap().path(), "OBX-6.1");
        assert!(unit.reason.contains("{INR}"), "{}", unit.reason);
        let comparator = read_text(
            "MSH|^~\\&|LAB|GENHOSP|SELDINGER|IR|202612020800||ORU^R01|L3|P|2.5.1\r\
             PID|1||M0042^^^GENHOSP^MR\r\
             OBR|1|PL1|FL1|CBC|||202612020715\r\
             OBX|1|SN|777-3^Platelets^LN||<^10|10*9/L|||||F\r",
        )
        .unwrap_err();
        assert!(comparator.reason.contains("comparator"));
        let no_time = read_text(
            "MSH|^~\\&|LAB|GENHOSP|SELDINGER|IR|202612020800||ORU^R01|L4|P|2.5.1\r\
             PID|1||M0042^^^GENHOSP^MR\r\
             OBR|1|PL1|FL1|CBC\r\
             OBX|1|NM|777-3^Platelets^LN||100|10*9/L|||||F\r",
        )
        .unwrap_err();
        assert_eq!(no_time.code, ErrorCode::RequiredFieldMissing);
    }
}

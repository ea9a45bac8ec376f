//! Vital signs as Observations after FHIR R4's vital-signs profiles: heart rate, blood pressure
//! (systolic and diastolic as components), oxygen saturation and respiratory rate, each set taken
//! in the room or in recovery split into one Observation per sign (LOINC, UCUM), as the profiles
//! want. Their id names the case, the set and the sign: `vs-<case>-<n>-<sign>`.

use crate::caller::Caller;
use crate::case_list::{case_of_id, open_case};
use crate::error::FhirError;
use crate::observation::{CATEGORY, LOINC, UCUM};
use crate::respond::{self, instant};
use crate::Request;
use axum::http::StatusCode;
use axum::response::Response;
use seldinger_app::Audit;
use seldinger_domain::procedure_record::{Phase, VitalSigns};
use seldinger_domain::Case;
use serde_json::{json, Value};

/// The signs Seldinger records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    HeartRate,
    BloodPressure,
    OxygenSaturation,
    RespiratoryRate,
}

impl Sign {
    pub const ALL: [Sign; 4] = [
        Sign::HeartRate,
        Sign::BloodPressure,
        Sign::OxygenSaturation,
        Sign::RespiratoryRate,
    ];

    /// The LOINC code the profile fixes (searched by `code`).
    pub fn loinc(self) -> &'static str {
        match self {
            Sign::HeartRate => "8867-4",
            Sign::BloodPressure => "85354-9",
            Sign::OxygenSaturation => "2708-6",
            Sign::RespiratoryRate => "9279-1",
        }
    }

    /// Also accepted in a search: pulse oximetry's own code, which the saturation carries too.
    pub fn of_code(code: &str) -> Option<Sign> {
        match code {
            "59408-5" => Some(Sign::OxygenSaturation),
            _ => Sign::ALL.into_iter().find(|s| s.loinc() == code),
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Sign::HeartRate => "hr",
            Sign::BloodPressure => "bp",
            Sign::OxygenSaturation => "spo2",
            Sign::RespiratoryRate => "rr",
        }
    }

    fn profile(self) -> &'static str {
        match self {
            Sign::HeartRate => "http://hl7.org/fhir/StructureDefinition/heartrate",
            Sign::BloodPressure => "http://hl7.org/fhir/StructureDefinition/bp",
            Sign::OxygenSaturation => "http://hl7.org/fhir/StructureDefinition/oxygensat",
            Sign::RespiratoryRate => "http://hl7.org/fhir/StructureDefinition/resprate",
        }
    }

    /// What a clinician calls it.
    fn text(self) -> &'static str {
        match self {
            Sign::HeartRate => "Heart rate",
            Sign::BloodPressure => "Blood pressure",
            Sign::OxygenSaturation => "Oxygen saturation (pulse oximetry)",
            Sign::RespiratoryRate => "Respiratory rate",
        }
    }

    /// LOINC's display name.
    fn display(self) -> &'static str {
        match self {
            Sign::HeartRate => "Heart rate",
            Sign::BloodPressure => "Blood pressure panel with all children optional",
            Sign::OxygenSaturation => "Oxygen saturation in Arterial blood",
            Sign::RespiratoryRate => "Respiratory rate",
        }
    }
}

fn quantity(value: u16, unit: &str, code: &str) -> Value {
    json!({"value": value, "unit": unit, "system": UCUM, "code": code})
}

fn coded(code: &str, display: &str) -> Value {
    json!({"system": LOINC, "code": code, "display": display})
}

fn blood_pressure_part(code: &str, display: &str, value: Option<u16>) -> Value {
    let mut part = json!({"code": {"coding": [coded(code, display)]}});
    match value {
        Some(v) => part["valueQuantity"] = quantity(v, "mmHg", "mm[Hg]"),
        // The profile wants both pressures; one not taken is said to be absent.
        None => {
            part["dataAbsentReason"] = json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                "code": "not-performed",
                "display": "Not Performed",
            }]})
        }
    }
    part
}

/// One sign of the `n`th set of a case's vital signs, if that set has it.
pub fn to_fhir(case: &Case, n: usize, set: &VitalSigns, sign: Sign) -> Option<Value> {
    let mut codings = vec![coded(sign.loinc(), sign.display())];
    let mut resource = json!({
        "resourceType": "Observation",
        "id": format!("vs-{}-{n}-{}", case.id, sign.slug()),
        "meta": {"profile": [sign.profile()], "lastUpdated": instant(case.updated_at)},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
        "subject": {"reference": format!("Patient/{}", case.patient_id)},
        "effectiveDateTime": instant(set.at),
        "note": [{"text": match set.phase {
            Phase::InRoom => "taken in the procedure room",
            Phase::Recovery => "taken in recovery",
        }}],
    });
    match sign {
        Sign::HeartRate => {
            resource["valueQuantity"] = quantity(set.heart_rate?, "beats/minute", "/min")
        }
        Sign::RespiratoryRate => {
            resource["valueQuantity"] =
                quantity(set.respiratory_rate?.into(), "breaths/minute", "/min")
        }
        Sign::OxygenSaturation => {
            codings.push(coded(
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
            ));
            resource["valueQuantity"] = quantity(set.spo2?.into(), "%", "%");
        }
        Sign::BloodPressure => {
            if set.systolic.is_none() && set.diastolic.is_none() {
                return None;
            }
            resource["component"] = json!([
                blood_pressure_part("8480-6", "Systolic blood pressure", set.systolic),
                blood_pressure_part("8462-4", "Diastolic blood pressure", set.diastolic),
            ]);
        }
    }
    resource["code"] = json!({"coding": codings, "text": sign.text()});
    Some(resource)
}

/// Every sign of every set of a case that `keep` accepts, with when it was taken.
pub fn of_case(
    case: &Case,
    keep: impl Fn(Sign) -> bool,
) -> Vec<(chrono::DateTime<chrono::Utc>, Value)> {
    case.vital_signs
        .iter()
        .enumerate()
        .flat_map(|(n, set)| {
            Sign::ALL
                .into_iter()
                .filter(|s| keep(*s))
                .filter_map(move |sign| to_fhir(case, n, set, sign).map(|r| (set.at, r)))
        })
        .collect()
}

/// Reads `vs-<case>-<n>-<sign>`.
pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let what = format!("Observation/{id}");
    let not_found = || FhirError::not_found(&what);
    let (rest, slug) = id.rsplit_once('-').ok_or_else(not_found)?;
    let sign = Sign::ALL
        .into_iter()
        .find(|s| s.slug() == slug)
        .ok_or_else(not_found)?;
    let Some((case, Some(n))) = case_of_id(rest, "vs-") else {
        return Err(not_found());
    };
    let (case, opened) = open_case(request, caller, case, &what).await?;
    let resource = case
        .vital_signs
        .get(n)
        .and_then(|set| to_fhir(&case, n, set, sign))
        .ok_or_else(not_found)?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "vital_signs", id, case.patient_id).break_glass(&opened)],
        )
        .await?;
    Ok(respond::fhir_json(StatusCode::OK, &resource))
}

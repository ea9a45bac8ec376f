//! A token bound to one patient (SMART `patient/` scopes) reaches that patient's record only:
//! every search names them, and every resource answered is theirs — checked on what is about to
//! be sent, so no handler can leak another patient's resource by mistake.

use crate::caller::Caller;
use crate::error::FhirError;
use axum::body::Body;
use axum::response::Response;
use seldinger_domain::PatientId;
use serde_json::Value;

/// The largest answer checked in memory; a patient's own pages are far smaller.
const LARGEST_ANSWER: usize = 64 * 1024 * 1024;

fn outside(patient: PatientId) -> FhirError {
    FhirError::forbidden(format!(
        "this token reaches Patient/{patient} only: search with patient=Patient/{patient} (or _id={patient} for Patient)"
    ))
}

/// A search by a bound token must name its patient.
pub fn search_names_patient(
    caller: &Caller,
    resource: &str,
    pairs: &[(String, String)],
) -> Result<(), FhirError> {
    let Some(patient) = caller.bound_patient() else {
        return Ok(());
    };
    let id = patient.to_string();
    let named = pairs
        .iter()
        .any(|(name, value)| match (resource, name.as_str()) {
            ("Patient", "_id") => value.trim() == id,
            (_, "patient" | "subject") => {
                let value = value.trim();
                value == id || value.ends_with(&format!("Patient/{id}"))
            }
            _ => false,
        });
    if named {
        Ok(())
    } else {
        Err(outside(patient))
    }
}

/// A resource sent by a bound token (a create) must be about its patient.
pub fn body_is_about_patient(caller: &Caller, body: &Value) -> Result<(), FhirError> {
    match caller.bound_patient() {
        Some(patient) if !belongs_to(body, patient) => Err(outside(patient)),
        _ => Ok(()),
    }
}

/// Passes `response` on when every resource in it is the bound patient's (or there is no bound
/// patient); refuses it whole otherwise.
pub async fn only_patient(caller: &Caller, response: Response) -> Result<Response, FhirError> {
    let Some(patient) = caller.bound_patient() else {
        return Ok(response);
    };
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, LARGEST_ANSWER)
        .await
        .map_err(|_| FhirError::internal())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| FhirError::internal())?;
    let all_theirs = match value["resourceType"].as_str() {
        Some("OperationOutcome") => true,
        Some("Bundle") => value["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| belongs_to(&e["resource"], patient)),
        _ => belongs_to(&value, patient),
    };
    if !all_theirs {
        return Err(outside(patient));
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Whether a resource is in the patient's compartment: the patient, or about them.
fn belongs_to(resource: &Value, patient: PatientId) -> bool {
    let reference = format!("Patient/{patient}");
    if resource["resourceType"] == "Patient" {
        return resource["id"] == patient.to_string();
    }
    ["subject", "patient", "for"]
        .iter()
        .any(|field| resource[*field]["reference"] == reference.as_str())
        // An Appointment names its patient among its participants.
        || resource["participant"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["actor"]["reference"] == reference.as_str()))
}

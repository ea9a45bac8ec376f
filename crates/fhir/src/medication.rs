//! MedicationStatement: the drugs on a patient's record as recorded (generic name, dose,
//! frequency, the last dose when known) — what the safety rules read for holds.

use crate::bundle::Entry;
use crate::caller::Caller;
use crate::error::FhirError;
use crate::respond::{self, instant};
use crate::search::{Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use seldinger_app::Audit;
use seldinger_domain::clinical::Medication;
use seldinger_domain::PatientId;
use serde_json::{json, Value};

pub const RESOURCE: Resource = Resource {
    name: "MedicationStatement",
    documentation: "The drugs recorded on a patient's record (those withdrawn as entered in error are left out): generic name, dose and frequency, the last dose when known. Search by patient.",
    params: &[Param {
        name: "patient",
        kind: Kind::Reference,
        documentation: "the patient (Patient/id); required",
    }],
    history: false,
    create: false,
};

pub fn id_of(patient: PatientId, entry: u64) -> String {
    format!("med-{patient}-{entry}")
}

pub fn to_fhir(patient: PatientId, entry: u64, drug: &Medication, at: DateTime<Utc>) -> Value {
    let dosage = [drug.dose.trim(), drug.frequency.trim()]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut resource = json!({
        "resourceType": "MedicationStatement",
        "id": id_of(patient, entry),
        "meta": {"lastUpdated": instant(at)},
        "status": "active",
        "medicationCodeableConcept": {"text": drug.drug},
        "subject": {"reference": format!("Patient/{patient}")},
    });
    if !dosage.is_empty() {
        resource["dosage"] = json!([{"text": dosage}]);
    }
    let mut notes = Vec::new();
    if let Some(last) = drug.last_dose_at {
        notes.push(json!({"text": format!("last dose {}", instant(last))}));
    }
    if let Some(intent) = &drug.dose_intent {
        notes.push(json!({"text": format!("dose intent: {intent}")}));
    }
    if let Some(indication) = &drug.indication {
        resource["reasonCode"] = json!([{"text": indication.replace('_', " ")}]);
    }
    if !notes.is_empty() {
        resource["note"] = json!(notes);
    }
    resource
}

async fn drugs_of(
    request: &Request,
    caller: &Caller,
    patient: PatientId,
) -> Result<(Vec<(u64, Medication)>, DateTime<Utc>, seldinger_app::Opened), FhirError> {
    let (_, drugs, opened) = request.app.medications_of_patient(caller, patient).await?;
    let at = request
        .patient_changed_at(patient)
        .await?
        .unwrap_or_default();
    Ok((drugs, at, opened))
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let not_found = || FhirError::not_found(format!("MedicationStatement/{id}"));
    let (patient, entry) = id
        .strip_prefix("med-")
        .and_then(|rest| rest.rsplit_once('-'))
        .ok_or_else(not_found)?;
    let patient: PatientId = patient.parse().map_err(|_| not_found())?;
    let entry: u64 = entry.parse().map_err(|_| not_found())?;
    let (drugs, at, opened) = match drugs_of(request, caller, patient).await {
        Err(e) if e.status == StatusCode::NOT_FOUND => return Err(not_found()),
        other => other?,
    };
    let (_, drug) = drugs
        .iter()
        .find(|(n, _)| *n == entry)
        .ok_or_else(not_found)?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "medication", id, patient).break_glass(&opened)],
        )
        .await?;
    Ok(respond::fhir_json(
        StatusCode::OK,
        &to_fhir(patient, entry, drug, at),
    ))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let found = match crate::patient_list::required_patient(search, "drugs")? {
        Some(id) => match drugs_of(request, caller, id).await {
            Ok(found) => Some((id, found)),
            Err(e) if e.status == StatusCode::NOT_FOUND => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let changed = search.last_updated()?;
    let ids = search.ids()?;
    let mut entries = Vec::new();
    if let Some((patient, (drugs, at, opened))) = &found {
        let in_span =
            changed.from.is_none_or(|f| *at >= f) && changed.before.is_none_or(|b| *at < b);
        let shown: Vec<&(u64, Medication)> = drugs
            .iter()
            .filter(|_| in_span)
            .filter(|(n, _)| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&id_of(*patient, *n)))
            })
            .collect();
        request
            .app
            .audit_reads(
                caller,
                shown
                    .iter()
                    .map(|(n, _)| {
                        Audit::of("fhir-search", "medication", id_of(*patient, *n), patient)
                            .break_glass(opened)
                    })
                    .collect(),
            )
            .await?;
        entries = shown
            .into_iter()
            .map(|(n, drug)| Entry {
                resource_type: "MedicationStatement",
                id: id_of(*patient, *n),
                resource: to_fhir(*patient, *n, drug, *at),
            })
            .collect();
    }
    crate::patient_list::one_page(request, search, "MedicationStatement", entries, "drugs")
}

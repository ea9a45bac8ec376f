//! AllergyIntolerance: the allergies on a patient's record (contrast, latex, drugs, food), each
//! with the reaction when known. They live on the patient's record, so they are read within its
//! scope and change with it; each has a stable id made from the patient and the substance.

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
use seldinger_domain::patient::{Allergy, AllergyClass, Patient};
use seldinger_domain::PatientId;
use serde_json::{json, Value};

pub const RESOURCE: Resource = Resource {
    name: "AllergyIntolerance",
    documentation: "The allergies on a patient's record: contrast media, latex, drugs, food; the reaction as recorded. Search by patient.",
    params: &[Param {
        name: "patient",
        kind: Kind::Reference,
        documentation: "the patient (Patient/id); required",
    }],
    history: false,
    create: false,
};

/// A stable id: the patient's, then a hash of the substance as written (FNV-1a, so the same
/// allergy keeps its id through other changes to the record).
pub fn id_of(patient: PatientId, allergy: &Allergy) -> String {
    let key = format!(
        "{:?}:{}",
        allergy.class,
        allergy.substance.trim().to_lowercase()
    );
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{patient}-{hash:016x}")
}

pub fn to_fhir(patient: &Patient, allergy: &Allergy, last_updated: DateTime<Utc>) -> Value {
    let category = match allergy.class {
        AllergyClass::IodinatedContrast | AllergyClass::GadoliniumContrast | AllergyClass::Drug => {
            Some("medication")
        }
        AllergyClass::Food => Some("food"),
        AllergyClass::Latex => Some("environment"),
        AllergyClass::Other => None,
    };
    let mut resource = json!({
        "resourceType": "AllergyIntolerance",
        "id": id_of(patient.id, allergy),
        "meta": {"lastUpdated": instant(last_updated)},
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active",
        }]},
        "code": {"text": allergy.substance},
        "patient": {"reference": format!("Patient/{}", patient.id)},
    });
    if let Some(category) = category {
        resource["category"] = json!([category]);
    }
    if !allergy.reaction.trim().is_empty() {
        resource["reaction"] = json!([{"manifestation": [{"text": allergy.reaction}]}]);
    }
    resource
}

async fn patient_with_allergies(
    request: &Request,
    caller: &Caller,
    id: PatientId,
) -> Result<(Patient, DateTime<Utc>, seldinger_app::Opened), FhirError> {
    let (patient, opened) = request.app.open_patient_record(caller, id).await?;
    let at = request.patient_changed_at(id).await?.unwrap_or_default();
    Ok((patient, at, opened))
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let not_found = || FhirError::not_found(format!("AllergyIntolerance/{id}"));
    let patient_id: PatientId = id
        .get(..36)
        .and_then(|p| p.parse().ok())
        .ok_or_else(not_found)?;
    let (patient, at, opened) = match patient_with_allergies(request, caller, patient_id).await {
        Err(e) if e.status == StatusCode::NOT_FOUND => return Err(not_found()),
        other => other?,
    };
    let allergy = patient
        .details
        .allergies
        .iter()
        .find(|a| id_of(patient.id, a) == id)
        .ok_or_else(not_found)?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "allergy", id, patient.id).break_glass(&opened)],
        )
        .await?;
    Ok(respond::fhir_json(
        StatusCode::OK,
        &to_fhir(&patient, allergy, at),
    ))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let found = match crate::patient_list::required_patient(search, "allergies")? {
        Some(id) => match patient_with_allergies(request, caller, id).await {
            Ok(found) => Some(found),
            Err(e) if e.status == StatusCode::NOT_FOUND => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let changed = search.last_updated()?;
    let mut entries = Vec::new();
    if let Some((patient, at, opened)) = &found {
        let ids = search.ids()?;
        let shown: Vec<&Allergy> = patient
            .details
            .allergies
            .iter()
            .filter(|a| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&id_of(patient.id, a)))
            })
            .filter(|_| {
                changed.from.is_none_or(|f| *at >= f) && changed.before.is_none_or(|b| *at < b)
            })
            .collect();
        request
            .app
            .audit_reads(
                caller,
                shown
                    .iter()
                    .map(|a| {
                        Audit::of("fhir-search", "allergy", id_of(patient.id, a), patient.id)
                            .break_glass(opened)
                    })
                    .collect(),
            )
            .await?;
        entries = shown
            .into_iter()
            .map(|a| Entry {
                resource_type: "AllergyIntolerance",
                id: id_of(patient.id, a),
                resource: to_fhir(patient, a, *at),
            })
            .collect();
    }
    crate::patient_list::one_page(request, search, "AllergyIntolerance", entries, "allergies")
}

//! `_include` of the patient a search's matches are about (`<Type>:patient`, `AdverseEvent:subject`):
//! the patients come in the same page, marked `include`, read in one query within the caller's
//! scope and audited like any read — so a client need not fetch each one after.

use crate::caller::Caller;
use crate::error::FhirError;
use crate::{Request, Resource};
use axum::body::Body;
use axum::response::Response;
use seldinger_domain::PatientId;
use serde_json::Value;

/// The largest page handled in memory (a page is at most 500 matches).
const LARGEST_PAGE: usize = 64 * 1024 * 1024;

/// The `_include`s a resource offers: its reference to the patient.
pub fn offered(resource: &Resource) -> Vec<String> {
    resource
        .params
        .iter()
        .filter(|p| p.kind == crate::search::Kind::Reference)
        .filter(|p| matches!(p.name, "patient" | "subject"))
        .map(|p| format!("{}:{}", resource.name, p.name))
        .collect()
}

/// The patients a resource refers to.
fn patients_of(resource: &Value) -> impl Iterator<Item = &str> {
    let direct = ["subject", "patient", "for"]
        .into_iter()
        .filter_map(move |field| resource[field]["reference"].as_str());
    let participants = resource["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["actor"]["reference"].as_str());
    direct
        .chain(participants)
        .filter_map(|r| r.strip_prefix("Patient/"))
}

/// Adds the patients of a searchset's matches to it.
pub async fn patients(
    request: &Request,
    caller: &Caller,
    answer: Response,
) -> Result<Response, FhirError> {
    caller.may("Patient", false)?;
    let (parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, LARGEST_PAGE)
        .await
        .map_err(|_| FhirError::internal())?;
    let mut bundle: Value = serde_json::from_slice(&bytes).map_err(|_| FhirError::internal())?;
    let mut ids: Vec<PatientId> = Vec::new();
    for entry in bundle["entry"].as_array().into_iter().flatten() {
        for id in patients_of(&entry["resource"]).filter_map(|id| id.parse().ok()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let included = crate::patient::included(request, caller, ids).await?;
    if let Some(entries) = bundle["entry"].as_array_mut() {
        entries.extend(
            included
                .into_iter()
                .map(|e| crate::bundle::search_entry(&request.base, e, "include")),
        );
    }
    Ok(Response::from_parts(parts, Body::from(bundle.to_string())))
}

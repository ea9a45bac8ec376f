//! Lists that belong to one patient's record (allergies, drugs): searched by patient, given in
//! one page (a record's list is short), within the record's scope.

use crate::bundle::{self, Entry};
use crate::error::FhirError;
use crate::respond;
use crate::search::{reference_id, Search};
use crate::Request;
use axum::http::StatusCode;
use axum::response::Response;
use seldinger_domain::PatientId;

/// The patient a search names (required); `None` when the id names no patient here.
pub fn required_patient(search: &Search, what: &str) -> Result<Option<PatientId>, FhirError> {
    let Some((_, patient)) = search.single("patient")? else {
        return Err(FhirError::invalid(
            "patient",
            format!("search the {what} of one patient: give patient=Patient/id"),
        ));
    };
    if search.cursor.is_some() {
        return Err(FhirError::invalid(
            "_cursor",
            format!("a patient's {what} come in one page"),
        ));
    }
    Ok(reference_id("patient", patient, "Patient")?.parse().ok())
}

/// The whole list as one searchset page (or only its total, for `_count=0`).
pub fn one_page(
    request: &Request,
    search: &Search,
    resource_type: &str,
    mut entries: Vec<Entry>,
    what: &str,
) -> Result<Response, FhirError> {
    let total = entries.len() as u64;
    if search.count == 0 {
        entries.clear();
    } else if entries.len() > search.count as usize {
        return Err(FhirError::invalid(
            "_count",
            format!("{total} {what} match, and come in one page: ask for _count={total} or more"),
        ));
    }
    Ok(respond::fhir_json(
        StatusCode::OK,
        &bundle::searchset(&request.base, resource_type, search, entries, None, total),
    ))
}

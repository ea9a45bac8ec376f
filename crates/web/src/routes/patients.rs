//! Patients: register, find, read, update, history.

use super::{path_id, QueryParams};
use crate::auth::{Audit, Caller};
use crate::json::{ApiJson, ApiJsonParts, BasedOn};
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
pub(crate) use seldinger_app::Correction;
use seldinger_domain::clinical::{LabResult, LabResultInput, Medication, MedicationInput};
use seldinger_domain::patient::{Patient, PatientDetails, PatientEvent, PatientInput};
use seldinger_domain::{PatientId, ValidationErrors};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A patient with what the department knows about them now.
#[derive(Serialize, ToSchema)]
pub struct PatientRecord {
    #[serde(flatten)]
    pub patient: Patient,
    /// Age in completed years today.
    pub age: u32,
    /// Current drugs; those withdrawn as entered in error are only in the history.
    pub medications: Vec<MedicationEntry>,
    /// Current results, newest first.
    pub lab_results: Vec<LabResultEntry>,
}

/// A drug on the record, with the entry number a correction names.
#[derive(Serialize, ToSchema)]
pub struct MedicationEntry {
    pub entry: u64,
    #[serde(flatten)]
    pub medication: Medication,
}

/// A lab result on the record, with the entry number a correction names.
#[derive(Serialize, ToSchema)]
pub struct LabResultEntry {
    pub entry: u64,
    #[serde(flatten)]
    pub result: LabResult,
}

/// A change to a patient's details, based on the version the client read.
/// The documented body; the handler reads it in parts (`ApiJsonParts`) so errors name their field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PatientUpdate {
    pub expected_version: u64,
    #[serde(flatten)]
    pub details: PatientInput,
}

/// One entry of a record's history, as the store keeps it.
pub type HistoryEntry = seldinger_store::RecordedEvent;

async fn record(state: &AppState, patient: Patient) -> Result<PatientRecord, ApiError> {
    let medications = state
        .store
        .medication_entries(patient.id)
        .await?
        .into_iter()
        .map(|(entry, medication)| MedicationEntry { entry, medication })
        .collect();
    let lab_results = state
        .store
        .lab_result_entries(patient.id)
        .await?
        .into_iter()
        .map(|(entry, result)| LabResultEntry { entry, result })
        .collect();
    let age = patient.details.age_on(state.today());
    Ok(PatientRecord {
        patient,
        age,
        medications,
        lab_results,
    })
}

#[utoipa::path(post, path = "/api/v1/patients", tag = "patients", request_body = PatientInput,
    responses((status = 201, body = PatientRecord), (status = 400, body = crate::problem::Problem),
        (status = 409, description = "MRN already registered at the site", body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<PatientInput>,
) -> Result<impl IntoResponse, ApiError> {
    let details = PatientDetails::parse(&input, state.clock.now())?;
    let patient = state.register_patient(&caller, details).await?;
    let location = format!("/api/v1/patients/{}", patient.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(record(&state, patient).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/patients", tag = "patients",
    params(("mrn" = Option<String>, Query, description = "exact MRN, any site (neither mrn nor name: every patient the caller may see, page by page)"),
        ("name" = Option<String>, Query, description = "words, each the start of a word of the family or given names (\"ng\" finds Ng and Nguyen), case-insensitive"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1-500, default 50"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, body = Vec<Patient>, description = "one page, by name",
            headers(("X-Total-Count" = u64, description = "patients the search matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem)))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    let q = QueryParams::new(pairs, &["mrn", "name", "limit", "cursor"])?;
    // Neither: every patient the caller may see, page by page.
    let (mrn, name) = (q.one("mrn"), q.one("name"));
    let limit = q.limit(50, 500)?;
    let found = state
        .search_patients_page(
            &caller,
            mrn.as_deref(),
            name.as_deref(),
            q.cursor()?.as_ref(),
            limit,
        )
        .await?;
    state
        .audit_all(
            &caller,
            found
                .items
                .iter()
                .map(|p| Audit::of("search", "patient", p.id, p.id))
                .collect(),
        )
        .await?;
    Ok(super::paged_json(&uri, found))
}

#[utoipa::path(get, path = "/api/v1/patients/{id}", tag = "patients",
    params(("id" = String, Path, description = "patient id (UUID)")),
    responses((status = 200, body = PatientRecord), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PatientRecord>, ApiError> {
    let (patient, break_glass) = visible_patient(&state, &caller, &id).await?;
    state
        .audit(
            &caller,
            Audit::of("read", "patient", patient.id, patient.id).break_glass(break_glass),
        )
        .await?;
    Ok(Json(record(&state, patient).await?))
}

#[utoipa::path(put, path = "/api/v1/patients/{id}", tag = "patients", request_body = PatientUpdate,
    params(("id" = String, Path, description = "patient id (UUID)")),
    responses((status = 200, body = PatientRecord), (status = 404, body = crate::problem::Problem),
        (status = 409, description = "stale version or duplicate MRN", body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJsonParts(based_on, details): ApiJsonParts<BasedOn, PatientInput>,
) -> Result<Json<PatientRecord>, ApiError> {
    let id: PatientId = path_id("patient", &id)?;
    let details = PatientDetails::parse(&details, state.clock.now())?;
    let patient = state
        .update_patient(&caller, id, based_on.expected_version, details)
        .await?;
    Ok(Json(record(&state, patient).await?))
}

#[utoipa::path(get, path = "/api/v1/patients/{id}/history", tag = "patients",
    params(("id" = String, Path, description = "patient id (UUID)")),
    responses((status = 200, body = Vec<HistoryEntry>), (status = 404, body = crate::problem::Problem)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let (patient, break_glass) = visible_patient(&state, &caller, &id).await?;
    let events = state.store.patient_history(patient.id).await?;
    state
        .audit(
            &caller,
            Audit::of("read_history", "patient", patient.id, patient.id).break_glass(break_glass),
        )
        .await?;
    Ok(Json(events))
}

/// The patient a body names, or a field error saying it names nobody.
pub(crate) async fn existing_patient(
    state: &AppState,
    field: &str,
    raw: &str,
) -> Result<Patient, ApiError> {
    let unknown = || {
        ApiError::invalid(ValidationErrors::single(
            field,
            format!("'{raw}' is not a registered patient's id"),
        ))
    };
    let id: PatientId = raw.trim().parse().map_err(|_| unknown())?;
    state.store.patient(id).await?.ok_or_else(unknown)
}

/// The patient's whole record, if the caller may see it (refusal reads as not found), with any
/// break-glass reason.
async fn visible_patient(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<(Patient, Option<String>), ApiError> {
    let id: PatientId = path_id("patient", raw)?;
    let (patient, opened) = state.open_patient_record(caller, id).await?;
    Ok((patient, opened.break_glass_reason))
}

/// A lab result, based on the version of the patient the client read.
/// The documented body; the handler reads it in parts (`ApiJsonParts`) so errors name their field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewLabResult {
    pub expected_version: u64,
    #[serde(flatten)]
    pub result: seldinger_domain::clinical::LabResultInput,
}

/// A medication, based on the version of the patient the client read.
/// The documented body; the handler reads it in parts (`ApiJsonParts`) so errors name their field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewMedication {
    pub expected_version: u64,
    #[serde(flatten)]
    pub medication: seldinger_domain::clinical::MedicationInput,
}

#[utoipa::path(post, path = "/api/v1/patients/{id}/lab-results", tag = "patients", request_body = NewLabResult,
    params(("id" = String, Path, description = "patient id (UUID)")),
    responses((status = 201, description = "stored in the test's canonical UCUM unit", body = PatientRecord),
        (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem),
        (status = 422, description = "unknown test, unit not understood, missing draw time", body = crate::problem::Problem)))]
pub async fn add_lab_result(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJsonParts(based_on, result): ApiJsonParts<BasedOn, LabResultInput>,
) -> Result<impl IntoResponse, ApiError> {
    let result = LabResult::parse(&result, state.clock.now())?;
    add_fact(
        &state,
        &caller,
        &id,
        based_on.expected_version,
        PatientEvent::LabResultRecorded { result },
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/patients/{id}/medications", tag = "patients", request_body = NewMedication,
    params(("id" = String, Path, description = "patient id (UUID)")),
    responses((status = 201, body = PatientRecord), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn add_medication(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJsonParts(based_on, medication): ApiJsonParts<BasedOn, MedicationInput>,
) -> Result<impl IntoResponse, ApiError> {
    let medication = Medication::parse(&medication, state.clock.now())?;
    add_fact(
        &state,
        &caller,
        &id,
        based_on.expected_version,
        PatientEvent::MedicationRecorded { medication },
    )
    .await
}

/// Records a lab or drug on the patient's record and answers 201 with the updated record.
async fn add_fact(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    expected_version: u64,
    fact: PatientEvent,
) -> Result<impl IntoResponse, ApiError> {
    let id: PatientId = path_id("patient", raw_id)?;
    let updated = state
        .record_fact(caller, id, expected_version, fact)
        .await?;
    Ok((StatusCode::CREATED, Json(record(state, updated).await?)))
}

/// What every correction names: the version of the patient the client read, and why. Alone,
/// it withdraws an entry as entered in error (wrong patient, never taken, never drawn).
#[derive(Deserialize, ToSchema)]
pub struct ChangeBasis {
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub expected_version: u64,
    /// Why the entry was wrong; kept in the history.
    pub reason: Option<String>,
}

/// A corrected drug entry.
/// The documented body; the handler reads it in parts (`ApiJsonParts`) so errors name their field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MedicationCorrection {
    #[serde(flatten)]
    pub basis: ChangeBasis,
    #[serde(flatten)]
    pub medication: seldinger_domain::clinical::MedicationInput,
}

/// A corrected lab entry.
/// The documented body; the handler reads it in parts (`ApiJsonParts`) so errors name their field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LabResultCorrection {
    #[serde(flatten)]
    pub basis: ChangeBasis,
    #[serde(flatten)]
    pub result: seldinger_domain::clinical::LabResultInput,
}

fn entry_number(raw: &str) -> Result<u64, ApiError> {
    raw.trim().parse().map_err(|_| {
        ApiError::not_found(format!(
            "entry '{raw}' (entries are numbered, as the record lists them)"
        ))
    })
}

async fn corrected(
    state: &AppState,
    caller: &Caller,
    id: &str,
    correction: Correction,
    basis: &ChangeBasis,
) -> Result<Json<PatientRecord>, ApiError> {
    let id: PatientId = path_id("patient", id)?;
    let updated = state
        .correct_fact(
            caller,
            id,
            basis.expected_version,
            correction,
            basis.reason.as_deref(),
        )
        .await?;
    Ok(Json(record(state, updated).await?))
}

#[utoipa::path(put, path = "/api/v1/patients/{id}/medications/{entry}", tag = "patients",
    request_body = MedicationCorrection,
    params(("id" = String, Path, description = "patient id (UUID)"),
        ("entry" = u64, Path, description = "the entry number the record lists")),
    responses((status = 200, body = PatientRecord), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem),
        (status = 422, description = "not a current entry, nothing changed, no reason, bad values", body = crate::problem::Problem)))]
pub async fn correct_medication(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, entry)): Path<(String, String)>,
    ApiJsonParts(basis, medication): ApiJsonParts<ChangeBasis, MedicationInput>,
) -> Result<Json<PatientRecord>, ApiError> {
    let entry = entry_number(&entry)?;
    let medication = Medication::parse(&medication, state.clock.now())?;
    let correction = Correction::Medication(entry, Some(medication));
    corrected(&state, &caller, &id, correction, &basis).await
}

#[utoipa::path(post, path = "/api/v1/patients/{id}/medications/{entry}/entered-in-error", tag = "patients",
    request_body = ChangeBasis,
    params(("id" = String, Path, description = "patient id (UUID)"),
        ("entry" = u64, Path, description = "the entry number the record lists")),
    responses((status = 200, body = PatientRecord), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn withdraw_medication(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, entry)): Path<(String, String)>,
    ApiJson(body): ApiJson<ChangeBasis>,
) -> Result<Json<PatientRecord>, ApiError> {
    let correction = Correction::Medication(entry_number(&entry)?, None);
    corrected(&state, &caller, &id, correction, &body).await
}

#[utoipa::path(put, path = "/api/v1/patients/{id}/lab-results/{entry}", tag = "patients",
    request_body = LabResultCorrection,
    params(("id" = String, Path, description = "patient id (UUID)"),
        ("entry" = u64, Path, description = "the entry number the record lists")),
    responses((status = 200, description = "stored in the test's canonical UCUM unit", body = PatientRecord),
        (status = 404, body = crate::problem::Problem), (status = 409, body = crate::problem::Problem),
        (status = 422, description = "not a current entry, nothing changed, no reason, bad values", body = crate::problem::Problem)))]
pub async fn correct_lab_result(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, entry)): Path<(String, String)>,
    ApiJsonParts(basis, result): ApiJsonParts<ChangeBasis, LabResultInput>,
) -> Result<Json<PatientRecord>, ApiError> {
    let entry = entry_number(&entry)?;
    let result = LabResult::parse(&result, state.clock.now())?;
    let correction = Correction::Lab(entry, Some(result));
    corrected(&state, &caller, &id, correction, &basis).await
}

#[utoipa::path(post, path = "/api/v1/patients/{id}/lab-results/{entry}/entered-in-error", tag = "patients",
    request_body = ChangeBasis,
    params(("id" = String, Path, description = "patient id (UUID)"),
        ("entry" = u64, Path, description = "the entry number the record lists")),
    responses((status = 200, body = PatientRecord), (status = 404, body = crate::problem::Problem),
        (status = 409, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn withdraw_lab_result(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, entry)): Path<(String, String)>,
    ApiJson(body): ApiJson<ChangeBasis>,
) -> Result<Json<PatientRecord>, ApiError> {
    let correction = Correction::Lab(entry_number(&entry)?, None);
    corrected(&state, &caller, &id, correction, &body).await
}

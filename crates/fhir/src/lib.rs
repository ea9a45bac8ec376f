//! Seldinger's FHIR R4 (4.0.1) face, under `/fhir/r4`: the IR record as FHIR resources for EHRs,
//! apps and analytics, with the same users, row scope and audit trail as every other surface.
//! Like the JSON API, the pages and the DICOM and HL7 interfaces, it calls the application layer
//! and nothing else: a route parses FHIR into a use case's input and maps its answer back.
//!
//! Resources are mapped by hand onto `serde_json` (docs/decisions/0008-fhir-mapped-by-hand.md): the
//! tests hold every one to HL7's R4 JSON Schema and an independent FHIR library.

mod adverse_event;
mod allergy;
mod appointment;
mod bundle;
mod caller;
mod capability;
mod case_list;
mod compartment;
mod device;
mod diagnostic_report;
mod error;
mod include;
mod input;
mod medication;
mod observation;
mod patient;
mod patient_list;
mod practitioner;
mod procedure;
mod respond;
mod search;
mod service_request;
mod task;
mod vital_signs;

pub use error::FhirError;
pub use respond::BASE_PATH;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use caller::Caller;
use chrono::Duration;
use search::{Param, Search};
use seldinger_app::App;

/// A resource type the server supports: what the CapabilityStatement says of it, and what the
/// router accepts.
pub struct Resource {
    pub name: &'static str,
    pub documentation: &'static str,
    pub params: &'static [Param],
    /// Versions are kept (vread, `_history`).
    pub history: bool,
    /// May be created (conditionally, with `If-None-Exist` on the identifier).
    pub create: bool,
}

/// Every resource type served, in the CapabilityStatement's order.
pub const RESOURCES: &[Resource] = &[
    patient::RESOURCE,
    allergy::RESOURCE,
    observation::RESOURCE,
    service_request::RESOURCE,
    task::RESOURCE,
    medication::RESOURCE,
    appointment::RESOURCE,
    procedure::RESOURCE,
    diagnostic_report::RESOURCE,
    device::RESOURCE,
    adverse_event::RESOURCE,
    practitioner::RESOURCE,
];

/// What every FHIR handler reaches.
#[derive(Clone)]
pub struct FhirState {
    app: App,
    /// Sessions idle longer than this are over (the web's sign-in policy).
    session_idle: Duration,
    /// Served over TLS: the links given out are https.
    tls: bool,
}

/// One request's context: the application and the base its links are built on.
pub(crate) struct Request {
    app: App,
    base: String,
}

impl Request {
    /// When a patient's record last changed (its latest event): the `lastUpdated` of the
    /// resources that live on it.
    async fn patient_changed_at(
        &self,
        patient: seldinger_domain::PatientId,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, FhirError> {
        let changed = self.app.last_changed("patient", &[patient]).await?;
        Ok(changed.get(&patient.to_string()).copied())
    }
}

/// The FHIR server, to be nested at [`BASE_PATH`].
pub fn router(app: App, session_idle: Duration, tls: bool) -> Router {
    let state = FhirState {
        app,
        session_idle,
        tls,
    };
    Router::new()
        .route("/metadata", get(metadata))
        .route("/{resource}", get(search_type).post(create))
        .route("/{resource}/{id}", get(read))
        .route("/{resource}/{id}/_history", get(history))
        .route("/{resource}/{id}/_history/{version}", get(vread))
        .fallback(|| async {
            FhirError::not_supported("no such FHIR interaction here: see /fhir/r4/metadata")
        })
        .method_not_allowed_fallback(|| async {
            FhirError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                "this interaction is not supported on this path: see /fhir/r4/metadata",
            )
        })
        .with_state(state)
}

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn request(
    state: &FhirState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<Request, FhirError> {
    let format = pairs
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.as_str());
    respond::negotiate(headers, format)?;
    Ok(Request {
        app: state.app.clone(),
        base: respond::base_url(headers, state.tls),
    })
}

fn pairs(query: Pairs) -> Result<Vec<(String, String)>, FhirError> {
    query
        .map(|Query(pairs)| pairs)
        .map_err(|e| FhirError::invalid("query", format!("the query string is malformed: {e}")))
}

fn supported(name: &str) -> Result<&'static Resource, FhirError> {
    RESOURCES.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<&str> = RESOURCES.iter().map(|r| r.name).collect();
        FhirError::not_supported(format!(
            "{name} is not a resource type this server supports; it serves: {}",
            names.join(", ")
        ))
    })
}

fn supported_with_history(name: &str) -> Result<&'static Resource, FhirError> {
    let resource = supported(name)?;
    if !resource.history {
        return Err(FhirError::not_supported(format!(
            "{name}'s history is not served here: read it (its meta.versionId, where given, is its record's version)"
        )));
    }
    Ok(resource)
}

async fn metadata(
    State(state): State<FhirState>,
    headers: HeaderMap,
    query: Pairs,
) -> Result<Response, FhirError> {
    let request = request(&state, &headers, &pairs(query)?)?;
    Ok(respond::fhir_json(
        axum::http::StatusCode::OK,
        &capability::statement(&request.base, state.app.clock.now()),
    ))
}

async fn search_type(
    State(state): State<FhirState>,
    caller: Caller,
    headers: HeaderMap,
    Path(resource): Path<String>,
    query: Pairs,
) -> Result<Response, FhirError> {
    let pairs = pairs(query)?;
    let request = request(&state, &headers, &pairs)?;
    let resource = supported(&resource)?;
    caller.may(resource.name, false)?;
    compartment::search_names_patient(&caller, resource.name, &pairs)?;
    let search = Search::parse(
        pairs,
        resource.params,
        &include::offered(resource),
        &headers,
    )?;
    let answer = match resource.name {
        "Patient" => patient::search(&request, &caller, &search).await,
        "AllergyIntolerance" => allergy::search(&request, &caller, &search).await,
        "Observation" => observation::search(&request, &caller, &search).await,
        "ServiceRequest" => service_request::search(&request, &caller, &search).await,
        "Task" => task::search(&request, &caller, &search).await,
        "MedicationStatement" => medication::search(&request, &caller, &search).await,
        "Appointment" => appointment::search(&request, &caller, &search).await,
        "Procedure" => procedure::search(&request, &caller, &search).await,
        "DiagnosticReport" => diagnostic_report::search(&request, &caller, &search).await,
        "Device" => device::search(&request, &caller, &search).await,
        "AdverseEvent" => adverse_event::search(&request, &caller, &search).await,
        "Practitioner" => practitioner::search(&request, &caller, &search).await,
        other => Err(FhirError::not_supported(format!("{other} search"))),
    }?;
    let answer = if search.includes.is_empty() {
        answer
    } else {
        include::patients(&request, &caller, answer).await?
    };
    compartment::only_patient(&caller, answer).await
}

async fn create(
    State(state): State<FhirState>,
    caller: Caller,
    headers: HeaderMap,
    Path(resource): Path<String>,
    query: Pairs,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    let request = request(&state, &headers, &pairs(query)?)?;
    let resource = supported(&resource)?;
    caller.may(resource.name, true)?;
    if !resource.create {
        return Err(FhirError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!(
                "{} is not created here: see /fhir/r4/metadata",
                resource.name
            ),
        ));
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !matches!(mime, "application/fhir+json" | "application/json") {
        return Err(FhirError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!(
                "send the resource as application/fhir+json (Content-Type was '{content_type}')"
            ),
        ));
    }
    let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        FhirError::invalid(
            resource.name,
            format!(
                "the body is not JSON: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    compartment::body_is_about_patient(&caller, &body)?;
    let answer = match resource.name {
        "ServiceRequest" => service_request::create(&request, &caller, &headers, &body).await,
        "Observation" => observation::create(&request, &caller, &headers, &body).await,
        other => Err(FhirError::not_supported(format!("{other} create"))),
    }?;
    compartment::only_patient(&caller, answer).await
}

async fn read(
    State(state): State<FhirState>,
    caller: Caller,
    headers: HeaderMap,
    Path((resource, id)): Path<(String, String)>,
    query: Pairs,
) -> Result<Response, FhirError> {
    let request = request(&state, &headers, &pairs(query)?)?;
    let resource = supported(&resource)?;
    caller.may(resource.name, false)?;
    let answer = match resource.name {
        "Patient" => patient::read(&request, &caller, &id).await,
        "AllergyIntolerance" => allergy::read(&request, &caller, &id).await,
        "Observation" => observation::read(&request, &caller, &id).await,
        "ServiceRequest" => service_request::read(&request, &caller, &id).await,
        "Task" => task::read(&request, &caller, &id).await,
        "MedicationStatement" => medication::read(&request, &caller, &id).await,
        "Appointment" => appointment::read(&request, &caller, &id).await,
        "Procedure" => procedure::read(&request, &caller, &id).await,
        "DiagnosticReport" => diagnostic_report::read(&request, &caller, &id).await,
        "Device" => device::read(&request, &caller, &id).await,
        "AdverseEvent" => adverse_event::read(&request, &caller, &id).await,
        "Practitioner" => practitioner::read(&request, &caller, &id).await,
        other => Err(FhirError::not_supported(format!("{other} read"))),
    }?;
    compartment::only_patient(&caller, answer).await
}

async fn history(
    State(state): State<FhirState>,
    caller: Caller,
    headers: HeaderMap,
    Path((resource, id)): Path<(String, String)>,
    query: Pairs,
) -> Result<Response, FhirError> {
    versions(state, caller, headers, resource, id, None, query).await
}

async fn vread(
    State(state): State<FhirState>,
    caller: Caller,
    headers: HeaderMap,
    Path((resource, id, version)): Path<(String, String, String)>,
    query: Pairs,
) -> Result<Response, FhirError> {
    versions(state, caller, headers, resource, id, Some(version), query).await
}

/// A resource's history (`version` none) or one version of it.
async fn versions(
    state: FhirState,
    caller: Caller,
    headers: HeaderMap,
    resource: String,
    id: String,
    version: Option<String>,
    query: Pairs,
) -> Result<Response, FhirError> {
    let request = request(&state, &headers, &pairs(query)?)?;
    let resource = supported_with_history(&resource)?;
    caller.may(resource.name, false)?;
    let answer = match resource.name {
        "Patient" => patient::history(&request, &caller, &id, version.as_deref()).await,
        "DiagnosticReport" => {
            diagnostic_report::history(&request, &caller, &id, version.as_deref()).await
        }
        "Appointment" | "Procedure" => {
            let to_fhir = match resource.name {
                "Appointment" => appointment::to_fhir,
                _ => procedure::to_fhir,
            };
            case_list::case_resource_versions(
                &request,
                &caller,
                resource.name,
                &id,
                version.as_deref(),
                to_fhir,
            )
            .await
        }
        other => Err(FhirError::not_supported(format!("{other} history"))),
    }?;
    compartment::only_patient(&caller, answer).await
}

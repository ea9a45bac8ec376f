//! The procedure report page: printable, and as a PDF from the server, its status in view; for
//! the IR physician the draft's free text and the signature, then addenda.

use super::{api_error_page, render, Viewer};
use crate::problem::ApiError;
use crate::routes::cases::case_id as parse_case_id;
use crate::routes::reports::ReportChangeRequest;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_domain::access::{grant, Permission};
use seldinger_domain::report::{ReportStatus, Section};
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    case_id: String,
    patient_name: String,
    birth_date: String,
    mrn: String,
    accession: String,
    status: &'static str,
    status_words: &'static str,
    sections: Vec<Section>,
    signed: Option<String>,
    /// (who and when, why, text)
    addenda: Vec<(String, String, String)>,
    can_sign: bool,
    is_draft: bool,
    csrf_token: String,
    version: u64,
    /// (field, label, value) of the physician's parts.
    fields: Vec<(&'static str, &'static str, String)>,
    errors: HashMap<String, String>,
    kept_reason: String,
    kept_text: String,
    notice: Option<String>,
}

impl ReportPage {
    pub fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

/// What a refused form brings back: each field's error and what was typed.
#[derive(Default)]
struct Refused {
    errors: HashMap<String, String>,
    input: HashMap<String, String>,
    notice: Option<String>,
}

async fn show(
    state: &AppState,
    viewer: &Viewer,
    raw_id: &str,
    status: StatusCode,
    refused: Refused,
) -> Result<Response, ApiError> {
    let case_id = parse_case_id(raw_id)?;
    let (view, _) = state.procedure_report(&viewer.caller, case_id).await?;
    let case = state
        .store
        .case(case_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("case {case_id}")))?;
    let patient = state.store.patient(case.patient_id).await?;
    let (patient_name, mrn) = crate::routes::patient_label(patient.as_ref());
    let when = |t| state.time.format(t, "%Y-%m-%d %H:%M");
    let text = &view.report.text;
    let kept = |field: &str, recorded: &str| {
        refused
            .input
            .get(field)
            .cloned()
            .unwrap_or_else(|| recorded.to_string())
    };
    let mut response = render(&ReportPage {
        case_id: case_id.to_string(),
        patient_name,
        birth_date: patient
            .as_ref()
            .map(|p| p.details.birth_date.to_string())
            .unwrap_or_default(),
        mrn,
        accession: case.accession_number.clone().unwrap_or_default(),
        status: match view.status {
            ReportStatus::Draft => "draft",
            ReportStatus::Final => "final",
            ReportStatus::Amended => "amended",
        },
        status_words: match view.status {
            ReportStatus::Draft => "draft — not signed",
            ReportStatus::Final => "final — signed",
            ReportStatus::Amended => "final, with addenda",
        },
        sections: view.sections.clone(),
        signed: view.report.signed.as_ref().map(|s| {
            format!(
                "Signed by {} at {} ({}).",
                s.by,
                when(s.at),
                state.time.name()
            )
        }),
        addenda: view
            .report
            .addenda
            .iter()
            .map(|a| {
                (
                    format!("{}, {}", a.by, when(a.at)),
                    a.reason.clone(),
                    a.text.clone(),
                )
            })
            .collect(),
        can_sign: grant(viewer.caller.role, Permission::SignReports).is_some(),
        is_draft: view.status == ReportStatus::Draft,
        csrf_token: viewer.csrf_token.clone(),
        version: view.report.version,
        fields: vec![
            (
                "technique",
                "Technique (beyond the record)",
                kept("technique", &text.technique),
            ),
            ("findings", "Findings", kept("findings", &text.findings)),
            (
                "impression",
                "Impression (required to sign)",
                kept("impression", &text.impression),
            ),
            ("plan", "Disposition and plan", kept("plan", &text.plan)),
        ],
        kept_reason: kept("reason", ""),
        kept_text: kept("text", ""),
        errors: refused.errors,
        notice: refused.notice,
    });
    *response.status_mut() = status;
    Ok(response)
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
) -> Response {
    let viewer =
        match Viewer::require(&state, &headers, &extensions, Permission::ReadCases, "").await {
            Ok(v) => v,
            Err(page) => return page,
        };
    show(&state, &viewer, &id, StatusCode::OK, Refused::default())
        .await
        .unwrap_or_else(api_error_page)
}

/// The report as a PDF (`/cases/{id}/report.pdf`): read like the page (scope, audit), the text
/// as signed and sent.
pub async fn pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
) -> Response {
    let viewer =
        match Viewer::require(&state, &headers, &extensions, Permission::ReadCases, "").await {
            Ok(v) => v,
            Err(page) => return page,
        };
    let result: Result<Response, ApiError> = async {
        let case_id = parse_case_id(&id)?;
        let (view, _) = state.procedure_report(&viewer.caller, case_id).await?;
        let case = state
            .store
            .case(case_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("case {case_id}")))?;
        let patient = state.store.patient(case.patient_id).await?;
        let (patient_name, mrn) = crate::routes::patient_label(patient.as_ref());
        let birth_date = patient
            .as_ref()
            .map(|p| p.details.birth_date.to_string())
            .unwrap_or_default();
        let accession = case.accession_number.clone().unwrap_or_default();
        let printed = format!(
            "{} ({})",
            state.time.format(state.clock.now(), "%Y-%m-%d %H:%M"),
            state.time.name()
        );
        let heading = super::report_pdf::PdfHeading {
            procedure: &view.procedure_name,
            patient: &patient_name,
            mrn: &mrn,
            birth_date: &birth_date,
            accession: &accession,
            case_id: &id,
            status: match view.status {
                ReportStatus::Draft => "DRAFT - NOT SIGNED",
                ReportStatus::Final => "FINAL",
                ReportStatus::Amended => "FINAL, WITH ADDENDA",
            },
            printed: &printed,
        };
        let bytes = super::report_pdf::report_pdf(&heading, &view.text).map_err(|e| {
            tracing::error!(case = %case_id, error = %e, "procedure report PDF");
            ApiError::internal()
        })?;
        Ok((
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "application/pdf".to_string(),
                ),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    format!("inline; filename=\"procedure-report-{case_id}.pdf\""),
                ),
            ],
            bytes,
        )
            .into_response())
    }
    .await;
    result.unwrap_or_else(api_error_page)
}

pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let viewer =
        match Viewer::require(&state, &headers, &extensions, Permission::SignReports, "").await {
            Ok(v) => v,
            Err(page) => return page,
        };
    if !viewer.csrf_ok(
        form.get("csrf_token")
            .map(String::as_str)
            .unwrap_or_default(),
    ) {
        return super::expired_form();
    }
    let get = |k: &str| form.get(k).cloned();
    let action = get("action").unwrap_or_default();
    let drafting = action != "addendum";
    let action = crate::routes::reports::ReportAction::parse(&action);
    let result = async {
        let case_id = parse_case_id(&id)?;
        let request = ReportChangeRequest {
            expected_version: get("expected_version")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ApiError::bad_request("expected_version", "reload the page"))?,
            action: action?,
            technique: get("technique").filter(|_| drafting),
            findings: get("findings").filter(|_| drafting),
            impression: get("impression").filter(|_| drafting),
            plan: get("plan").filter(|_| drafting),
            reason: get("reason").filter(|_| !drafting),
            text: get("text").filter(|_| !drafting),
        };
        let version = request.expected_version;
        state
            .change_procedure_report(&viewer.caller, case_id, version, request.request()?)
            .await
            .map_err(ApiError::from)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!("/cases/{id}/report")).into_response(),
        Err(error) => {
            let status = error.status();
            let errors = error
                .field_errors()
                .iter()
                .map(|e| (e.field.clone(), e.detail.clone()))
                .collect();
            let notice = Some(if error.current_version().is_some() {
                "Someone else changed this report while you were working; it now shows as it is, with what you wrote kept. Check and submit again.".to_string()
            } else {
                error.detail().to_string()
            });
            let refused = Refused {
                errors,
                input: form
                    .into_iter()
                    .filter(|(k, _)| k != "csrf_token")
                    .collect(),
                notice,
            };
            show(&state, &viewer, &id, status, refused)
                .await
                .unwrap_or_else(api_error_page)
        }
    }
}

//! The procedure report through the API: read it (sections, status, the text as printed and
//! sent, its history), save the draft, sign it, add an addendum.

use crate::auth::Caller;
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use seldinger_app::{ReportRequest, ReportView};
use seldinger_domain::report::ReportText;
use seldinger_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A case's report as it reads now.
#[derive(Serialize, ToSchema)]
pub struct ReportRecord {
    /// draft, final (signed) or amended (signed, with addenda).
    pub status: String,
    /// The physician's free text, the signature (who, when, the sections as signed) and the
    /// addenda; `version` for the next change.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
    /// The sections as they read: the signed ones once signed, else generated from the record
    /// with the draft's words.
    pub sections: Vec<seldinger_domain::report::Section>,
    /// The whole report as text, with the signature and addenda.
    pub text: String,
    pub history: Vec<RecordedEvent>,
}

pub(crate) fn record(view: ReportView, history: Vec<RecordedEvent>) -> ReportRecord {
    ReportRecord {
        status: serde_json::to_value(view.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        report: serde_json::to_value(&view.report).unwrap_or_default(),
        sections: view.sections,
        text: view.text,
        history,
    }
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/report", tag = "cases",
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 200, body = ReportRecord),
        (status = 404, description = "no such case, or its procedure has not begun", body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReportRecord>, ApiError> {
    let case_id = super::path_id("case", &id)?;
    let (view, history) = state.procedure_report(&caller, case_id).await?;
    Ok(Json(record(view, history)))
}

/// What is asked of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportAction {
    SaveDraft,
    /// Needs the impression and a complete procedure.
    Sign,
    /// After signing: `reason` and `text`.
    Addendum,
}

impl ReportAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportAction::SaveDraft => "save_draft",
            ReportAction::Sign => "sign",
            ReportAction::Addendum => "addendum",
        }
    }

    pub fn parse(value: &str) -> Result<ReportAction, ApiError> {
        match value {
            "save_draft" => Ok(ReportAction::SaveDraft),
            "sign" => Ok(ReportAction::Sign),
            "addendum" => Ok(ReportAction::Addendum),
            other => Err(ApiError::bad_request(
                "action",
                format!("'{other}' is not save_draft, sign or addendum"),
            )),
        }
    }
}

/// A change to the report, based on the version read (0 before anything was saved).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportChangeRequest {
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub expected_version: u64,
    pub action: ReportAction,
    #[serde(default)]
    pub technique: Option<String>,
    #[serde(default)]
    pub findings: Option<String>,
    #[serde(default)]
    pub impression: Option<String>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

impl ReportChangeRequest {
    pub fn request(self) -> Result<ReportRequest, ApiError> {
        let words = |v: Option<String>| v.unwrap_or_default();
        let refuse = |field: &str, given: bool| {
            if given {
                Err(ApiError::invalid_field(
                    field,
                    format!("does not belong to '{}'", self.action.as_str()),
                ))
            } else {
                Ok(())
            }
        };
        match self.action {
            ReportAction::SaveDraft | ReportAction::Sign => {
                refuse("reason", self.reason.is_some())?;
                refuse("text", self.text.is_some())?;
                let text = ReportText {
                    technique: words(self.technique),
                    findings: words(self.findings),
                    impression: words(self.impression),
                    plan: words(self.plan),
                };
                Ok(if self.action == ReportAction::Sign {
                    ReportRequest::Sign(text)
                } else {
                    ReportRequest::SaveDraft(text)
                })
            }
            ReportAction::Addendum => {
                for (field, given) in [
                    ("technique", self.technique.is_some()),
                    ("findings", self.findings.is_some()),
                    ("impression", self.impression.is_some()),
                    ("plan", self.plan.is_some()),
                ] {
                    refuse(field, given)?;
                }
                Ok(ReportRequest::Addendum {
                    reason: words(self.reason),
                    text: words(self.text),
                })
            }
        }
    }
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/report", tag = "cases", request_body = ReportChangeRequest,
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 200, body = ReportRecord), (status = 400, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem),
        (status = 409, description = "stale version", body = crate::problem::Problem),
        (status = 422, description = "signed and locked, not signed yet, no impression, the procedure not complete, no reason", body = crate::problem::Problem)))]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReportChangeRequest>,
) -> Result<Json<ReportRecord>, ApiError> {
    let case_id = super::path_id("case", &id)?;
    let version = request.expected_version;
    state
        .change_procedure_report(&caller, case_id, version, request.request()?)
        .await?;
    let (view, history) = state.procedure_report(&caller, case_id).await?;
    Ok(Json(record(view, history)))
}

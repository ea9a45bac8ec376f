//! Adverse events (clinical-rules.md §6): listed, read with their changes, reported at any time
//! after the procedure began, corrected, attributed or withdrawn with a reason.

use super::dose::Period;
use super::QueryParams;
use crate::auth::Caller;
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use seldinger_app::AdverseEventStanding;
use seldinger_domain::adverse_event::{
    AdverseEventChange, AdverseEventDetails, Detected, EventCategory, Outcome,
};
use seldinger_domain::procedure_record::SirSeverity;
use seldinger_store::{AdverseEventFilter, RecordedEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An adverse event with whether it counts as its procedure's (§6).
#[derive(Serialize, ToSchema)]
pub struct AdverseEventView {
    /// `<case>-<n>` (recorded in the procedure record) or `<case>-r<k>` (reported later).
    pub id: String,
    /// Onset, where detected, description, SIR severity, CIRSE grade, treatment, outcome, who
    /// reported it and when, a physician's attribution decision, a withdrawal; version.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    pub attributed: bool,
    /// `window` (onset within 30 days of the procedure, §6) or `physician`.
    pub attribution_basis: String,
    pub procedure: Option<String>,
}

impl From<AdverseEventStanding> for AdverseEventView {
    fn from(s: AdverseEventStanding) -> Self {
        AdverseEventView {
            id: s.event.id.clone(),
            event: serde_json::to_value(&s.event).unwrap_or_default(),
            attributed: s.attributed,
            attribution_basis: serde_json::to_value(s.attribution_basis)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            procedure: s.procedure,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/adverse-events", tag = "adverse-events",
    params(("case_id" = Option<String>, Query, description = "one case's events"),
        ("patient_id" = Option<String>, Query, description = "one patient's events"),
        ("from" = Option<String>, Query, description = "first day of onset (YYYY-MM-DD); with until, default a year before it"),
        ("until" = Option<String>, Query, description = "last day of onset (YYYY-MM-DD, the department's day), inclusive")),
    responses((status = 200, description = "events by onset, withdrawn ones included (marked)", body = Vec<AdverseEventView>),
        (status = 400, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<AdverseEventView>>, ApiError> {
    let q = QueryParams::new(pairs, &["case_id", "patient_id", "from", "until"])?;
    let mut filter = AdverseEventFilter {
        case_id: q.id("case_id")?,
        patient_id: q.id("patient_id")?,
        ..Default::default()
    };
    if q.one("from").is_some() || q.one("until").is_some() {
        let period = Period::parse(&q, state.today())?;
        filter.onset_from = Some(state.time.start_of(period.from));
        filter.onset_before = Some(state.time.start_of(period.until + chrono::Days::new(1)));
    }
    let events = state.adverse_events(&caller, &filter).await?;
    Ok(Json(
        events.into_iter().map(AdverseEventView::from).collect(),
    ))
}

/// An adverse event with its changes.
#[derive(Serialize, ToSchema)]
pub struct AdverseEventRecord {
    #[serde(flatten)]
    pub view: AdverseEventView,
    /// Reported (for one reported later), corrected, attribution decided, entered in error: who,
    /// when and why, oldest first.
    pub history: Vec<RecordedEvent>,
}

#[utoipa::path(get, path = "/api/v1/adverse-events/{id}", tag = "adverse-events",
    params(("id" = String, Path, description = "<case id>-<n> or <case id>-r<k>")),
    responses((status = 200, body = AdverseEventRecord), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AdverseEventRecord>, ApiError> {
    let (standing, history) = state.adverse_event(&caller, &id).await?;
    Ok(Json(AdverseEventRecord {
        view: standing.into(),
        history,
    }))
}

/// What is known of an adverse event (§6: graded both ways).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdverseEventInput {
    /// When it began: not before the procedure, not in the future.
    pub onset: DateTime<Utc>,
    pub detected: Detected,
    pub description: String,
    /// Its kind, coded (the §6 published measures count infections after gastrostomy and
    /// dislodged nephrostomies by it).
    #[serde(default)]
    pub category: Option<EventCategory>,
    pub severity: SirSeverity,
    /// 1-6 (§6).
    pub cirse_grade: Option<u8>,
    /// What was done about it.
    #[serde(default)]
    pub treatment: String,
    pub outcome: Outcome,
}

impl AdverseEventInput {
    pub fn details(self) -> AdverseEventDetails {
        AdverseEventDetails {
            onset: self.onset,
            detected: self.detected,
            description: self.description,
            category: self.category,
            severity: self.severity,
            cirse_grade: self.cirse_grade,
            treatment: self.treatment,
            outcome: self.outcome,
        }
    }
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/adverse-events", tag = "adverse-events", request_body = AdverseEventInput,
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 201, body = AdverseEventView), (status = 400, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem),
        (status = 422, description = "which field and why (an onset before the procedure, no CIRSE grade, a death not fatal)", body = crate::problem::Problem)))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AdverseEventInput>,
) -> Result<(StatusCode, Json<AdverseEventView>), ApiError> {
    let case_id = super::path_id("case", &id)?;
    let reported = state
        .report_adverse_event(&caller, case_id, &input.details())
        .await?;
    Ok((StatusCode::CREATED, Json(reported.into())))
}

/// Which change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdverseEventChangeType {
    Corrected,
    /// IR physicians.
    AttributionDecided,
    EnteredInError,
}

/// A change to an adverse event, based on the version the client read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdverseEventChangeRequest {
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub expected_version: u64,
    /// corrected (with `details`), attribution_decided (with `attributed`; IR physicians) or
    /// entered_in_error.
    #[serde(rename = "type")]
    pub kind: AdverseEventChangeType,
    /// Why (required for every change).
    pub reason: String,
    #[serde(default)]
    pub details: Option<AdverseEventInput>,
    #[serde(default)]
    pub attributed: Option<bool>,
}

impl AdverseEventChangeRequest {
    pub fn change(self) -> Result<AdverseEventChange, ApiError> {
        let reason = self.reason;
        let not_for = |field: &str, given: bool, kind: &str| -> Result<(), ApiError> {
            if given {
                Err(ApiError::invalid_field(
                    field,
                    format!("does not belong to a '{kind}' change"),
                ))
            } else {
                Ok(())
            }
        };
        match self.kind {
            AdverseEventChangeType::Corrected => {
                not_for("attributed", self.attributed.is_some(), "corrected")?;
                let details = self.details.ok_or_else(|| {
                    ApiError::invalid_field("details", "required: the event as it should read")
                })?;
                Ok(AdverseEventChange::Corrected {
                    details: details.details(),
                    reason,
                })
            }
            AdverseEventChangeType::AttributionDecided => {
                not_for("details", self.details.is_some(), "attribution_decided")?;
                let attributed = self.attributed.ok_or_else(|| {
                    ApiError::invalid_field("attributed", "required: true or false")
                })?;
                Ok(AdverseEventChange::AttributionDecided { attributed, reason })
            }
            AdverseEventChangeType::EnteredInError => {
                not_for("details", self.details.is_some(), "entered_in_error")?;
                not_for("attributed", self.attributed.is_some(), "entered_in_error")?;
                Ok(AdverseEventChange::EnteredInError { reason })
            }
        }
    }
}

#[utoipa::path(post, path = "/api/v1/adverse-events/{id}/changes", tag = "adverse-events", request_body = AdverseEventChangeRequest,
    params(("id" = String, Path, description = "<case id>-<n> or <case id>-r<k>")),
    responses((status = 200, body = AdverseEventView), (status = 400, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem),
        (status = 409, description = "stale version", body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AdverseEventChangeRequest>,
) -> Result<Json<AdverseEventView>, ApiError> {
    let version = request.expected_version;
    let change = request.change()?;
    let after = state
        .change_adverse_event(&caller, &id, version, &change)
        .await?;
    Ok(Json(after.into()))
}

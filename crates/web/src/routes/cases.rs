//! Cases: the day's list, one case, its lifecycle transitions and its history.

use super::patients::HistoryEntry;
use super::{parse_date, path_id, patient_label, QueryParams};
use crate::auth::Caller;
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::Json;
use chrono::NaiveDate;
use seldinger_app::CaseEventRequest;
use seldinger_domain::access::Permission;
use seldinger_domain::lifecycle::{Case, CaseEvent, CaseState};
use seldinger_domain::{CaseId, PatientId};
use seldinger_store::CaseFilter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A case with what a client needs to act on it.
#[derive(Serialize, ToSchema)]
pub struct CaseRecord {
    #[serde(flatten)]
    pub case: Case,
    /// Name of the vetted (or else requested) procedure from the catalogue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure_name: Option<String>,
    /// Events the case may take next, by name (`type` in a transition request).
    pub allowed_events: Vec<String>,
}

impl CaseRecord {
    pub fn new(case: Case, state: &AppState) -> Self {
        let procedure = case.planned_procedure();
        let procedure_name = procedure
            .and_then(|id| state.catalogue.get(id))
            .map(|p| p.name.clone());
        let allowed_events = case
            .state
            .allowed_events()
            .into_iter()
            .map(str::to_string)
            .collect();
        CaseRecord {
            case,
            procedure_name,
            allowed_events,
        }
    }
}

/// A proposed lifecycle event, based on the version of the case the client read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// The case's `version` when the client read it; a stale version is refused with 409.
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub expected_version: u64,
    /// Why: required to decline, cancel or reschedule.
    #[serde(default)]
    pub reason: Option<String>,
    /// The event, tagged by `type`.
    #[schema(value_type = CaseEvent)]
    pub event: serde_json::Value,
}

/// Reads the event, naming the field inside it that was wrong. serde loses the path inside an
/// internally tagged enum, so the field is found from the message and the submitted object.
pub(crate) fn parse_event(value: serde_json::Value) -> Result<CaseEvent, ApiError> {
    let object = value.as_object().cloned().unwrap_or_default();
    serde_json::from_value::<CaseEvent>(value).map_err(|e| {
        let message = e.to_string();
        let quoted = |marker: &str| {
            message
                .split_once(marker)
                .and_then(|(_, rest)| rest.split('`').next())
                .map(str::to_string)
        };
        let field = quoted("missing field `")
            .or_else(|| quoted("unknown field `"))
            .or_else(|| {
                let bad_value = quoted("unknown variant `");
                object
                    .iter()
                    .find(|(_, v)| {
                        v.as_str().is_some_and(|v| {
                            bad_value.as_deref() == Some(v) || message.contains(&format!("'{v}'"))
                        })
                    })
                    .map(|(k, _)| k.clone())
            });
        let field = field.map_or_else(|| "event".to_string(), |f| format!("event.{f}"));
        ApiError::invalid(seldinger_domain::ValidationErrors::single(field, message))
    })
}

#[utoipa::path(get, path = "/api/v1/cases", tag = "cases",
    params(("date" = Option<String>, Query, description = "YYYY-MM-DD: cases booked on that day (the department's day, in its time zone)"),
        ("state" = Option<String>, Query, description = "one or more states, comma-separated or repeated"),
        ("patient_id" = Option<String>, Query, description = "one patient's cases"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1-1000, default 200"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, body = Vec<CaseRecord>, description = "one page; X-Total-Count says how many match, Link rel=next points to the next page",
            headers(("X-Total-Count" = u64, description = "cases the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    let q = QueryParams::new(pairs, &["date", "state", "patient_id", "limit", "cursor"])?;
    let date = q
        .one("date")
        .map(|d| parse_date("date", Some(d), state.today()))
        .transpose()?;
    let states = q
        .all("state")
        .iter()
        .map(|s| CaseState::parse(s).map_err(|e| ApiError::bad_request("state", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let patient_id = q
        .one("patient_id")
        .map(|p| {
            p.parse::<PatientId>()
                .map_err(|e| ApiError::bad_request("patient_id", e))
        })
        .transpose()?;
    let filter = CaseFilter {
        booked_between: date.map(|d| state.time.day(d)),
        states,
        patient_id,
        limit: q.limit(200, 1000)?,
        ..CaseFilter::default()
    };
    let page = state
        .list_cases(&caller, &filter, q.cursor()?.as_ref(), "list")
        .await?;
    let page = seldinger_store::Page {
        items: page
            .items
            .into_iter()
            .map(|c| CaseRecord::new(c, &state))
            .collect(),
        next: page.next,
        total: page.total,
    };
    Ok(super::paged_json(&uri, page))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 200, body = CaseRecord), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CaseRecord>, ApiError> {
    let (case, _) = state.read_case(&caller, case_id(&id)?, "read").await?;
    Ok(Json(CaseRecord::new(case, &state)))
}

#[utoipa::path(post, path = "/api/v1/cases/{id}/transitions", tag = "cases", request_body = TransitionRequest,
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 200, description = "the case after the event", body = CaseRecord),
        (status = 400, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem),
        (status = 409, description = "stale version, or the event is not allowed from the current state", body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem)))]
pub async fn transition(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<TransitionRequest>,
) -> Result<Json<CaseRecord>, ApiError> {
    let request = CaseEventRequest {
        case_id: case_id(&id)?,
        expected_version: request.expected_version,
        event: parse_event(request.event)?,
        reason: request.reason,
    };
    let after = state.apply_case_event(&caller, request).await?;
    Ok(Json(CaseRecord::new(after, &state)))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/history", tag = "cases",
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 200, description = "every event, oldest first", body = Vec<HistoryEntry>),
        (status = 404, body = crate::problem::Problem)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let (case, _) = state
        .read_case(&caller, case_id(&id)?, "read_history")
        .await?;
    Ok(Json(state.store.case_history(case.id).await?))
}

/// A case id from the path; a malformed one is a 404 like any id that names nothing.
pub(crate) fn case_id(raw: &str) -> Result<CaseId, ApiError> {
    path_id("case", raw)
}

/// The case, if the caller may see it (a refusal reads as not found), with any break-glass
/// reason. Not audited: the page or endpoint audits what it shows.
pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<(Case, Option<String>), ApiError> {
    let (case, opened) = state
        .open_case(caller, Permission::ReadCases, case_id(raw_id)?)
        .await?;
    Ok((case, opened.break_glass_reason))
}

#[utoipa::path(get, path = "/api/v1/cases/{id}/checklist", tag = "safety",
    params(("id" = String, Path, description = "case id (UUID)")),
    responses((status = 200, description = "one item per rule, evaluated now", body = seldinger_domain::safety::Checklist),
        (status = 404, body = crate::problem::Problem)))]
pub async fn checklist(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<seldinger_domain::safety::Checklist>, ApiError> {
    let (case, _) = state
        .read_case(&caller, case_id(&id)?, "read_checklist")
        .await?;
    Ok(Json(state.checklist_of(&case).await?))
}

/// One booked case's readiness: the worst status and the items that are not a pass.
#[derive(Serialize, ToSchema)]
pub struct CaseReadiness {
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub mrn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    pub state: CaseState,
    pub overall: seldinger_domain::safety::ItemStatus,
    pub open_items: Vec<seldinger_domain::safety::ChecklistItem>,
}

/// A dated task from a checklist action.
#[derive(Serialize, ToSchema)]
pub struct Task {
    pub case_id: CaseId,
    pub patient_name: String,
    pub mrn: String,
    pub rule: String,
    pub status: seldinger_domain::safety::ItemStatus,
    #[serde(flatten)]
    pub action: seldinger_domain::safety::Action,
}

/// The readiness of every case booked on `date` (not yet in the room), in booking order.
async fn readiness_on(
    state: &AppState,
    caller: &Caller,
    date: NaiveDate,
) -> Result<Vec<CaseReadiness>, ApiError> {
    let mut out = Vec::new();
    for checked in state.day_readiness(caller, date).await? {
        // Every case of the day is vetted and before the room: its checklist is there.
        let Some(checklist) = checked.checklist else {
            continue;
        };
        let case = checked.case;
        let record = CaseRecord::new(case.clone(), state);
        let (patient_name, mrn) = patient_label(checked.patient.as_ref());
        out.push(CaseReadiness {
            case_id: case.id,
            patient_id: case.patient_id,
            patient_name,
            mrn,
            procedure_name: record.procedure_name,
            room: case.booking.as_ref().map(|b| b.room.as_str().to_string()),
            start: case.booking.as_ref().map(|b| b.start),
            state: case.state,
            overall: checklist.overall,
            open_items: checklist
                .items
                .into_iter()
                .filter(|i| i.status != seldinger_domain::safety::ItemStatus::Pass)
                .collect(),
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/readiness", tag = "safety",
    params(("date" = Option<String>, Query, description = "YYYY-MM-DD (the department's day, in its time zone); default tomorrow")),
    responses((status = 200, description = "every booked case of the day not yet in the room, with its open checklist items", body = Vec<CaseReadiness>),
        (status = 400, body = crate::problem::Problem)))]
pub async fn readiness(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<CaseReadiness>>, ApiError> {
    let q = QueryParams::new(pairs, &["date"])?;
    let tomorrow = state.today() + chrono::Days::new(1);
    let date = parse_date("date", q.one("date"), tomorrow)?;
    Ok(Json(readiness_on(&state, &caller, date).await?))
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "safety",
    params(("from" = Option<String>, Query, description = "first day of bookings, YYYY-MM-DD; default today"),
        ("days" = Option<u32>, Query, minimum = 1, maximum = 14, description = "how many days of bookings, 1-14; default 3"),
        ("role" = Option<String>, Query, description = "whose tasks; default the caller's role")),
    responses((status = 200, description = "checklist actions due, earliest first", body = Vec<Task>),
        (status = 400, body = crate::problem::Problem)))]
pub async fn tasks(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<Task>>, ApiError> {
    let q = QueryParams::new(pairs, &["from", "days", "role"])?;
    let from = parse_date("from", q.one("from"), state.today())?;
    let days = match q.one("days") {
        None => 3,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=14).contains(d))
            .ok_or_else(|| {
                ApiError::bad_request("days", format!("'{d}' is not a whole number from 1 to 14"))
            })?,
    };
    let role = match q.one("role") {
        None => caller.role,
        Some(r) => seldinger_domain::access::Role::parse(&r)
            .map_err(|e| ApiError::bad_request("role", e))?,
    };
    let mut tasks = Vec::new();
    for offset in 0..days {
        let date = from + chrono::Days::new(u64::from(offset));
        for day in readiness_on(&state, &caller, date).await? {
            for item in day.open_items {
                for action in item.actions.into_iter().filter(|a| a.role == role) {
                    tasks.push(Task {
                        case_id: day.case_id,
                        patient_name: day.patient_name.clone(),
                        mrn: day.mrn.clone(),
                        rule: item.rule.clone(),
                        status: item.status,
                        action,
                    });
                }
            }
        }
    }
    tasks.sort_by_key(|t| t.action.due);
    Ok(Json(tasks))
}

//! The device registry (clinical-rules.md §7): every device left in a patient with its plan, its
//! life after placement (removed, exchanged, declared permanent), and the IVC filter tracker.

use super::dose::Period;
use super::QueryParams;
use crate::auth::Caller;
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, Days, NaiveDate, Utc};
use seldinger_app::DeviceStanding;
use seldinger_domain::device_registry::{DeviceEvent, DeviceRef, FilterMeasures, LifeState};
use seldinger_domain::procedure_record::DeviceKind;
use seldinger_domain::CaseId;
use seldinger_store::{DeviceFilter, RecordedEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A device and where it stands now.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    /// `<case>-<n>`: the n-th device its case recorded (FHIR `Device/device-<case>-<n>`).
    pub id: String,
    /// What was placed (kind, description, UDI read from its label), where, when, its life state
    /// and version.
    #[schema(value_type = Object)]
    pub device: serde_json::Value,
    /// `ended`, `permanent`, `follow_up` (with due_from, due_until, overdue) or `no_plan`: in
    /// place with no follow-up and no permanent decision (flagged, §7).
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    pub days_since_placement: i64,
    pub patient_name: String,
    pub mrn: String,
    pub procedure: Option<String>,
    pub responsible_physician: Option<String>,
    pub referrer: Option<String>,
}

impl From<DeviceStanding> for DeviceView {
    fn from(s: DeviceStanding) -> Self {
        DeviceView {
            id: s.id,
            device: serde_json::to_value(&s.device).unwrap_or_default(),
            plan: serde_json::to_value(&s.plan).unwrap_or_default(),
            days_since_placement: s.days_since_placement,
            patient_name: s.patient_name,
            mrn: s.mrn,
            procedure: s.procedure,
            responsible_physician: s.responsible_physician,
            referrer: s.referrer,
        }
    }
}

/// A device's id from the path; a malformed one names nothing (404).
pub(crate) fn device_ref(raw: &str) -> Result<DeviceRef, ApiError> {
    DeviceRef::parse(raw).ok_or_else(|| ApiError::not_found(format!("device {raw}")))
}

pub(crate) fn parse_kind(raw: &str) -> Result<DeviceKind, ApiError> {
    DeviceKind::ALL
        .into_iter()
        .find(|k| k.as_str() == raw)
        .ok_or_else(|| {
            ApiError::bad_request(
                "kind",
                format!(
                    "'{raw}' is not a device kind; allowed: {}",
                    kind_names().join(", ")
                ),
            )
        })
}

pub(crate) fn kind_names() -> Vec<&'static str> {
    DeviceKind::ALL.iter().map(|k| k.as_str()).collect()
}

pub(crate) fn parse_life(raw: &str) -> Result<&'static str, ApiError> {
    LifeState::NAMES
        .iter()
        .find(|n| **n == raw)
        .copied()
        .ok_or_else(|| {
            ApiError::bad_request(
                "life",
                format!(
                    "'{raw}' is not a device's life state; allowed: {}",
                    LifeState::NAMES.join(", ")
                ),
            )
        })
}

#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(("life" = Option<String>, Query, description = "in_place (default), removed, exchanged or permanent; repeat or comma-separate for several"),
        ("kind" = Option<String>, Query, description = "ivc_filter, drain, nephrostomy, … (DeviceKind)"),
        ("patient_id" = Option<String>, Query, description = "one patient's devices"),
        ("case_id" = Option<String>, Query, description = "the devices one case placed")),
    responses((status = 200, description = "the devices, the longest in place first, each with its plan now", body = Vec<DeviceView>),
        (status = 400, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let q = QueryParams::new(pairs, &["life", "kind", "patient_id", "case_id"])?;
    let mut life = Vec::new();
    for raw in q.all("life") {
        life.push(parse_life(&raw)?);
    }
    if life.is_empty() {
        life.push("in_place");
    }
    let filter = DeviceFilter {
        life,
        kind: q.one("kind").map(|k| parse_kind(&k)).transpose()?,
        patient_id: q.id("patient_id")?,
        case_id: q.id("case_id")?,
        ..Default::default()
    };
    let standings = state.device_registry(&caller, &filter).await?;
    Ok(Json(standings.into_iter().map(DeviceView::from).collect()))
}

/// A device with its life events.
#[derive(Serialize, ToSchema)]
pub struct DeviceRecord {
    #[serde(flatten)]
    pub view: DeviceView,
    /// Removed, exchanged, declared permanent: who, when, the note or reason (oldest first).
    pub history: Vec<RecordedEvent>,
}

#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "device id: <case id>-<n>")),
    responses((status = 200, body = DeviceRecord), (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeviceRecord>, ApiError> {
    let (standing, history) = state.device(&caller, device_ref(&id)?).await?;
    Ok(Json(DeviceRecord {
        view: standing.into(),
        history,
    }))
}

/// What happened to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceEventType {
    Removed,
    Exchanged,
    /// An IR physician's decision.
    DeclaredPermanent,
}

impl DeviceEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceEventType::Removed => "removed",
            DeviceEventType::Exchanged => "exchanged",
            DeviceEventType::DeclaredPermanent => "declared_permanent",
        }
    }

    pub fn parse(value: &str) -> Result<DeviceEventType, ApiError> {
        match value {
            "removed" => Ok(DeviceEventType::Removed),
            "exchanged" => Ok(DeviceEventType::Exchanged),
            "declared_permanent" => Ok(DeviceEventType::DeclaredPermanent),
            other => Err(ApiError::bad_request(
                "type",
                format!("'{other}' is not removed, exchanged or declared_permanent"),
            )),
        }
    }
}

/// What happened to a device, based on the version the client read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceEventRequest {
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub expected_version: u64,
    #[serde(rename = "type")]
    pub kind: DeviceEventType,
    /// When it was taken out (removed, exchanged); default now. Not before placement, not future.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// The case it was taken out in (removed, exchanged): a case of the same patient.
    #[serde(default)]
    pub in_case: Option<String>,
    /// What was done (removed, exchanged; required for them).
    #[serde(default)]
    pub note: Option<String>,
    /// Why it stays (declared_permanent; required for it).
    #[serde(default)]
    pub reason: Option<String>,
}

impl DeviceEventRequest {
    /// The event the request asks for, at `now` unless it says when; fields that belong to
    /// another kind of event are refused rather than dropped.
    pub fn event(&self, now: DateTime<Utc>) -> Result<DeviceEvent, ApiError> {
        let not_for = |field: &str, given: bool| {
            if given {
                Err(ApiError::invalid_field(
                    field,
                    format!("does not belong to a '{}' event", self.kind.as_str()),
                ))
            } else {
                Ok(())
            }
        };
        let in_case = self
            .in_case
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<CaseId>()
                    .map_err(|e| ApiError::invalid_field("in_case", e))
            })
            .transpose()?;
        let note = self.note.clone().unwrap_or_default();
        match self.kind {
            DeviceEventType::Removed | DeviceEventType::Exchanged => {
                not_for("reason", self.reason.is_some())?;
                let at = self.at.unwrap_or(now);
                Ok(if self.kind == DeviceEventType::Removed {
                    DeviceEvent::Removed { at, in_case, note }
                } else {
                    DeviceEvent::Exchanged { at, in_case, note }
                })
            }
            DeviceEventType::DeclaredPermanent => {
                not_for("at", self.at.is_some())?;
                not_for("in_case", in_case.is_some())?;
                not_for("note", self.note.is_some())?;
                Ok(DeviceEvent::DeclaredPermanent {
                    reason: self.reason.clone().unwrap_or_default(),
                })
            }
        }
    }
}

#[utoipa::path(post, path = "/api/v1/devices/{id}/events", tag = "devices", request_body = DeviceEventRequest,
    params(("id" = String, Path, description = "device id: <case id>-<n>")),
    responses((status = 200, description = "the device after the event", body = DeviceView),
        (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem),
        (status = 409, description = "stale version", body = crate::problem::Problem),
        (status = 422, description = "refused: which field and why (no longer in place, a time before placement, no note)", body = crate::problem::Problem)))]
pub async fn record_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<DeviceEventRequest>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = device_ref(&id)?;
    let event = request.event(state.clock.now())?;
    let after = state
        .record_device_event(&caller, device, request.expected_version, &event)
        .await?;
    Ok(Json(after.into()))
}

/// The IVC filter tracker's answer.
#[derive(Serialize, ToSchema)]
pub struct FilterTracker {
    pub from: NaiveDate,
    pub until: NaiveDate,
    /// Placed, retrieved, declared permanent, overdue; retrieval, retrieval or documented plan
    /// (§6) and lost to follow-up, each with its 95% Wilson interval.
    #[schema(value_type = Object)]
    pub measures: FilterMeasures,
    pub filters: Vec<DeviceView>,
}

#[utoipa::path(get, path = "/api/v1/devices/ivc-filters", tag = "devices",
    params(("from" = Option<String>, Query, description = "first day a filter was placed (YYYY-MM-DD), default a year before until"),
        ("until" = Option<String>, Query, description = "last day (YYYY-MM-DD, the department's day), inclusive; default today")),
    responses((status = 200, body = FilterTracker), (status = 400, body = crate::problem::Problem)))]
pub async fn ivc_filters(
    State(state): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<FilterTracker>, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until"])?;
    let period = Period::parse(&q, state.today())?;
    Ok(Json(tracker(&state, &caller, &period).await?))
}

pub(crate) async fn tracker(
    state: &AppState,
    caller: &Caller,
    period: &Period,
) -> Result<FilterTracker, ApiError> {
    let (filters, measures) = state
        .ivc_filter_tracker(
            caller,
            state.time.start_of(period.from),
            state.time.start_of(period.until + Days::new(1)),
        )
        .await?;
    Ok(FilterTracker {
        from: period.from,
        until: period.until,
        measures,
        filters: filters.into_iter().map(DeviceView::from).collect(),
    })
}

//! The HL7 inbox: every message hospital systems sent, with its outcome; the dead letters
//! (failed and refused) with the reason and the offending field; replay once the cause is fixed.

use super::QueryParams;
use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use seldinger_store::{InboundMessage, InboxFilter, InboxStatus};
use serde::Serialize;
use utoipa::ToSchema;

/// A received message and its outcome (the message itself: see the one-message endpoint).
#[derive(Serialize, ToSchema)]
pub struct InboundMessageView {
    pub id: String,
    /// MSH-3^MSH-4, when readable.
    pub sender: Option<String>,
    /// MSH-10, when readable.
    pub control_id: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The peer's address, a batch file, or who replayed it.
    pub peer: String,
    /// MSH-9 as sent.
    pub message_type: String,
    pub version: String,
    /// `SITE/MRN` of the patient it is about, when readable.
    pub patient_key: Option<String>,
    /// received, applied, failed (AE) or refused (AR).
    pub status: String,
    /// HL7 table 0357 code of the failure.
    pub error_code: Option<String>,
    /// Where in the message, e.g. `PID-3.4`.
    pub error_location: Option<String>,
    pub error_reason: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Deliveries and replays that reached the application.
    pub attempts: i64,
}

impl From<&InboundMessage> for InboundMessageView {
    fn from(m: &InboundMessage) -> Self {
        InboundMessageView {
            id: m.arrived.id.clone(),
            sender: m.arrived.sender.clone(),
            control_id: m.arrived.control_id.clone(),
            received_at: m.arrived.received_at,
            peer: m.arrived.peer.clone(),
            message_type: m.arrived.message_type.clone(),
            version: m.arrived.version.clone(),
            patient_key: m.arrived.patient_key.clone(),
            status: m.status.as_str().to_string(),
            error_code: m.error_code.clone(),
            error_location: m.error_location.clone(),
            error_reason: m.error_reason.clone(),
            finished_at: m.finished_at,
            attempts: m.attempts,
        }
    }
}

/// One message as it arrived, with the acknowledgement it got.
#[derive(Serialize, ToSchema)]
pub struct InboundMessageDetail {
    #[serde(flatten)]
    pub message: InboundMessageView,
    /// The message as text, one segment a line.
    pub text: String,
    /// Where in `text` the offending field is (byte offsets, end exclusive), for a failure.
    pub marked: Option<MarkedRange>,
    /// The acknowledgement sent (HL7, segments separated by CR).
    pub ack: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MarkedRange {
    pub start: usize,
    pub end: usize,
}

/// How a replay ended.
#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    /// applied, failed or refused.
    pub status: String,
    /// Why, when not applied.
    pub reason: Option<String>,
}

/// The statuses a list asks for: `dead` is failed and refused.
pub(crate) fn statuses(words: &[String]) -> Result<Option<Vec<InboxStatus>>, ApiError> {
    if words.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for word in words {
        if word == "dead" {
            out.extend([InboxStatus::Failed, InboxStatus::Refused]);
        } else {
            out.push(
                InboxStatus::parse(word)
                    .map_err(|e| ApiError::bad_request("status", format!("{e}, or dead")))?,
            );
        }
    }
    Ok(Some(out))
}

#[utoipa::path(get, path = "/api/v1/hl7/messages", tag = "interfaces",
    params(
        ("status" = Option<String>, Query, pattern = r"^ *(received|applied|failed|refused|dead) *(, *(received|applied|failed|refused|dead) *)*$",
            description = "received, applied, failed, refused, or dead (failed and refused); comma-separated"),
        ("sender" = Option<String>, Query, description = "MSH-3^MSH-4, e.g. LAB^GENHOSP"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1-1000, default 100"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, body = Vec<InboundMessageView>, description = "one page, newest first",
            headers(("X-Total-Count" = u64, description = "messages the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["status", "sender", "limit", "cursor"])?;
    let filter = InboxFilter {
        statuses: statuses(&q.all("status"))?,
        sender: q.one("sender"),
        limit: q.limit(100, 1000)? as usize,
    };
    let page = state
        .inbox_page(&caller, &filter, q.cursor()?.as_ref())
        .await?;
    let page = seldinger_store::Page {
        items: page.items.iter().map(InboundMessageView::from).collect(),
        next: page.next,
        total: page.total,
    };
    Ok(super::paged_json(&uri, page))
}

#[utoipa::path(get, path = "/api/v1/hl7/messages/{id}", tag = "interfaces",
    params(("id" = String, Path, description = "the inbox id")),
    responses((status = 200, body = InboundMessageDetail), (status = 403, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InboundMessageDetail>, ApiError> {
    Ok(Json(detail(&state, &caller, &id).await?))
}

pub(crate) async fn detail(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<InboundMessageDetail, ApiError> {
    let (message, shown) = state.inbound_message(caller, id).await?;
    let (text, marked) = match shown {
        Some(shown) => (
            shown.text,
            shown.mark.map(|r| MarkedRange {
                start: r.start,
                end: r.end,
            }),
        ),
        None => (
            String::from_utf8_lossy(&message.arrived.raw).replace('\r', "\n"),
            None,
        ),
    };
    Ok(InboundMessageDetail {
        message: InboundMessageView::from(&message),
        text,
        marked,
        ack: message.ack.clone(),
    })
}

#[utoipa::path(post, path = "/api/v1/hl7/messages/{id}/replay", tag = "interfaces",
    params(("id" = String, Path, description = "the inbox id of a failed or refused message")),
    responses((status = 200, body = ReplayResult), (status = 403, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem),
        (status = 422, description = "not a dead letter, or the interface is not running", body = crate::problem::Problem)))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReplayResult>, ApiError> {
    let replayed = state.replay_message(&caller, &id).await?;
    Ok(Json(ReplayResult {
        status: replayed.status.as_str().to_string(),
        reason: replayed.reason,
    }))
}

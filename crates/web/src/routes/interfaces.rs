//! The HL7 inbox: every message hospital systems sent, with its outcome; the dead letters
//! (failed and refused) with the reason and the offending field; replay once the cause is fixed.
//! The outbox: every message owed to a destination, with the receiver's answer; send a rejected
//! one again once the cause is fixed.

use super::QueryParams;
use crate::auth::Caller;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use seldinger_store::{
    InboundMessage, InboxFilter, InboxStatus, OutboundMessage, OutboxFilter, OutboxStatus,
};
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
        ("status" = Option<String>, Query, pattern = r"^ *(failed|refused|dead) *(, *(failed|refused|dead) *)*$",
            description = "failed, refused, or dead (both; the default), comma-separated: people read the dead letters, applied messages one at a time by id"),
        ("sender" = Option<String>, Query, description = "MSH-3^MSH-4, e.g. LAB^GENHOSP"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1-1000, default 100"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, body = Vec<InboundMessageView>, description = "one page, newest first",
            headers(("X-Total-Count" = u64, description = "messages the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem),
        (status = 422, body = crate::problem::Problem, description = "a status other than the dead letters' (applied, received)")))]
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

/// A message owed to a destination and how its sending went (the text: see the one-message
/// endpoint).
#[derive(Serialize, ToSchema)]
pub struct OutboundMessageView {
    pub id: String,
    /// The sending order.
    pub seq: i64,
    pub destination: String,
    pub patient_id: String,
    pub case_id: Option<String>,
    /// booked, rescheduled, cancelled, declined, report or report_corrected.
    pub notice: String,
    pub created_at: DateTime<Utc>,
    /// pending, sent (AA/CA), rejected (AE/AR) or skipped (nothing this destination is sent).
    pub status: String,
    /// Tries that got no answer, and the one answered.
    pub attempts: i64,
    /// When a pending message is tried next (after a try with no answer).
    pub next_attempt_at: DateTime<Utc>,
    /// The last try's trouble, the receiver's refusal, or why it was skipped.
    pub last_error: Option<String>,
    /// MSH-9 of the rendered message, once rendered.
    pub message_type: Option<String>,
    /// MSH-10, once rendered.
    pub control_id: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&OutboundMessage> for OutboundMessageView {
    fn from(m: &OutboundMessage) -> Self {
        OutboundMessageView {
            id: m.owed.id.clone(),
            seq: m.seq,
            destination: m.owed.destination.clone(),
            patient_id: m.owed.patient_id.clone(),
            case_id: m.owed.case_id.clone(),
            notice: m.owed.trigger.clone(),
            created_at: m.owed.created_at,
            status: m.status.as_str().to_string(),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error.clone(),
            message_type: m.message.as_deref().and_then(message_type),
            control_id: m.control_id.clone(),
            finished_at: m.finished_at,
        }
    }
}

/// MSH-9 of a rendered message (the ninth field of its first line).
fn message_type(text: &str) -> Option<String> {
    let msh = text.split('\r').next()?;
    msh.split('|').nth(8).map(str::to_string)
}

/// One owed message with its text and the receiver's answer.
#[derive(Serialize, ToSchema)]
pub struct OutboundMessageDetail {
    #[serde(flatten)]
    pub message: OutboundMessageView,
    /// The message sent, one segment a line (none before its first try).
    pub text: Option<String>,
    /// The receiver's acknowledgement, one segment a line.
    pub ack: Option<String>,
}

/// The outbox statuses a list asks for: `waiting` is pending and rejected.
fn outbox_statuses(words: &[String]) -> Result<Option<Vec<OutboxStatus>>, ApiError> {
    if words.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for word in words {
        if word == "waiting" {
            out.extend([OutboxStatus::Pending, OutboxStatus::Rejected]);
        } else {
            out.push(
                OutboxStatus::parse(word)
                    .map_err(|e| ApiError::bad_request("status", format!("{e}, or waiting")))?,
            );
        }
    }
    Ok(Some(out))
}

pub(crate) fn outbox_filter(
    status: &[String],
    destination: Option<String>,
    case_id: Option<String>,
    limit: usize,
) -> Result<OutboxFilter, ApiError> {
    Ok(OutboxFilter {
        statuses: outbox_statuses(status)?,
        destination,
        case_id,
        limit,
    })
}

#[utoipa::path(get, path = "/api/v1/hl7/outbox", tag = "interfaces",
    params(
        ("status" = Option<String>, Query, pattern = r"^ *(pending|sent|rejected|skipped|waiting) *(, *(pending|sent|rejected|skipped|waiting) *)*$",
            description = "pending, sent, rejected, skipped, or waiting (pending and rejected); comma-separated"),
        ("destination" = Option<String>, Query, description = "a destination's name"),
        ("case" = Option<String>, Query, description = "a case id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1-1000, default 100"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, body = Vec<OutboundMessageView>, description = "one page, newest first",
            headers(("X-Total-Count" = u64, description = "messages the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem), (status = 403, body = crate::problem::Problem)))]
pub async fn outbox(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["status", "destination", "case", "limit", "cursor"])?;
    let filter = outbox_filter(
        &q.all("status"),
        q.one("destination"),
        q.one("case"),
        q.limit(100, 1000)? as usize,
    )?;
    let (page, _) = state
        .outbox_page(&caller, &filter, q.cursor()?.as_ref())
        .await?;
    let page = seldinger_store::Page {
        items: page.items.iter().map(OutboundMessageView::from).collect(),
        next: page.next,
        total: page.total,
    };
    Ok(super::paged_json(&uri, page))
}

pub(crate) fn outbound_detail(message: &OutboundMessage) -> OutboundMessageDetail {
    OutboundMessageDetail {
        message: OutboundMessageView::from(message),
        text: message.message.as_ref().map(|t| t.replace('\r', "\n")),
        ack: message.ack.as_ref().map(|t| t.replace('\r', "\n")),
    }
}

#[utoipa::path(get, path = "/api/v1/hl7/outbox/{id}", tag = "interfaces",
    params(("id" = String, Path, description = "the outbox id")),
    responses((status = 200, body = OutboundMessageDetail), (status = 403, body = crate::problem::Problem),
        (status = 404, body = crate::problem::Problem)))]
pub async fn outbound(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OutboundMessageDetail>, ApiError> {
    let message = state.outbound_message(&caller, &id).await?;
    Ok(Json(outbound_detail(&message)))
}

#[utoipa::path(post, path = "/api/v1/hl7/outbox/{id}/send-again", tag = "interfaces",
    params(("id" = String, Path, description = "the outbox id of a rejected or skipped message")),
    responses((status = 200, body = OutboundMessageView, description = "back in its destination's queue"),
        (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem),
        (status = 422, description = "not rejected or skipped", body = crate::problem::Problem)))]
pub async fn send_again(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OutboundMessageView>, ApiError> {
    let message = state.send_again(&caller, &id).await?;
    Ok(Json(OutboundMessageView::from(&message)))
}

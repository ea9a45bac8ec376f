//! The HL7 inbox for administrators: the dead letters (failed and refused messages) with their
//! reason, each message as it arrived with the offending field marked, and "replay" once the
//! cause is fixed; the outbox, each destination's queue with the receivers' answers, and "send
//! again" for a refused one. Every view is audited (the messages hold patient data).

use super::{api_error_page, render, NavItem, Viewer};
use crate::routes::interfaces::{
    detail, outbound_detail, outbox_filter, InboundMessageView, OutboundMessageView,
};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_domain::access::Permission;
use seldinger_store::{InboxFilter, OutboxStatus};
use serde::Deserialize;

/// The signed-in administrator (or the page saying why not).
async fn inbox_viewer(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Viewer, Response> {
    Viewer::require(
        state,
        headers,
        extensions,
        Permission::ManageInterfaces,
        "/interfaces/hl7",
    )
    .await
}

/// The list shows at most this many messages, newest first; it says how many more there are.
const ROWS: usize = 200;

#[derive(Template)]
#[template(path = "hl7_inbox.html")]
struct InboxPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    zone: &'static str,
    rows: Vec<Row>,
    more: u64,
    rows_at_most: usize,
    strangers: Vec<StrangerRow>,
}

struct Row {
    message: InboundMessageView,
    received: String,
}

/// An address's messages refused before their sender was established (not in the inbox).
struct StrangerRow {
    address: String,
    kind: &'static str,
    claimed: String,
    reason: String,
    arrivals: i64,
    first: String,
    last: String,
    head: String,
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "unreadable" => "no readable header",
        "unknown_sender" => "sender not listed",
        "address" => "not the sender's address",
        "certificate" => "not the sender's certificate",
        _ => "refused",
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    show: Option<String>,
}

pub async fn inbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let viewer = match inbox_viewer(&state, &headers, &extensions).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let filter = InboxFilter {
        // The application lists the dead letters when no status is named.
        statuses: None,
        sender: None,
        limit: ROWS,
    };
    let page = match state.inbox_page(&viewer.caller, &filter, None).await {
        Ok(page) => page,
        Err(e) => return api_error_page(e.into()),
    };
    let rows = page
        .items
        .iter()
        .map(|m| Row {
            message: InboundMessageView::from(m),
            received: state
                .time
                .format(m.arrived.received_at, "%Y-%m-%d %H:%M:%S"),
        })
        .collect::<Vec<_>>();
    let strangers = match state.app.refused_arrivals(&viewer.caller, ROWS).await {
        Ok(list) => list,
        Err(e) => return api_error_page(e.into()),
    };
    let at = |t| state.time.format(t, "%Y-%m-%d %H:%M:%S");
    let strangers = strangers
        .iter()
        .map(|r| StrangerRow {
            address: r.latest.peer_address.clone(),
            kind: kind_label(&r.latest.kind),
            claimed: r.latest.claimed_sender.clone(),
            reason: r.latest.reason.clone(),
            arrivals: r.arrivals,
            first: at(r.first_at),
            last: at(r.latest.at),
            head: String::from_utf8_lossy(&r.latest.head).replace('\r', "\n"),
        })
        .collect();
    render(&InboxPage {
        strangers,
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        zone: state.time.name(),
        more: page.total.saturating_sub(rows.len() as u64),
        rows,
        rows_at_most: ROWS,
    })
}

#[derive(Template)]
#[template(path = "hl7_message.html")]
struct MessagePage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    zone: &'static str,
    message: InboundMessageView,
    received: String,
    /// The text before the marked field, the field, and after it.
    before: String,
    marked: String,
    after: String,
    has_mark: bool,
    ack: String,
    can_replay: bool,
    outcome: String,
}

#[derive(Deserialize)]
pub struct OutcomeQuery {
    outcome: Option<String>,
}

pub async fn message(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Query(query): Query<OutcomeQuery>,
) -> Response {
    let viewer = match inbox_viewer(&state, &headers, &extensions).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let detail = match detail(&state, &viewer.caller, &id).await {
        Ok(d) => d,
        Err(e) => return api_error_page(e),
    };
    let text = &detail.text;
    let (before, marked, after) = match &detail.marked {
        Some(m)
            if m.start <= m.end
                && text.is_char_boundary(m.start)
                && text.is_char_boundary(m.end)
                && m.end <= text.len() =>
        {
            (
                text[..m.start].to_string(),
                text[m.start..m.end].to_string(),
                text[m.end..].to_string(),
            )
        }
        _ => (text.clone(), String::new(), String::new()),
    };
    let can_replay = matches!(detail.message.status.as_str(), "failed" | "refused");
    render(&MessagePage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        zone: state.time.name(),
        received: state
            .time
            .format(detail.message.received_at, "%Y-%m-%d %H:%M:%S"),
        has_mark: detail.marked.is_some(),
        before,
        marked,
        after,
        ack: detail.ack.clone().unwrap_or_default().replace('\r', "\n"),
        can_replay,
        outcome: query.outcome.unwrap_or_default(),
        message: detail.message,
    })
}

#[derive(Deserialize)]
pub struct ReplayForm {
    csrf_token: String,
}

/// The administrator posting one of this page's forms, with the form's token checked.
async fn form_viewer(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
    form: &ReplayForm,
) -> Result<Viewer, Response> {
    let viewer = inbox_viewer(state, headers, extensions).await?;
    if !viewer.csrf_ok(&form.csrf_token) {
        return Err(super::expired_form());
    }
    Ok(viewer)
}

pub async fn replay(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<ReplayForm>,
) -> Response {
    let viewer = match form_viewer(&state, &headers, &extensions, &form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    match state.replay_message(&viewer.caller, &id).await {
        Ok(replayed) => {
            let outcome = match replayed.reason {
                None => format!("Replayed: {}.", replayed.status.as_str()),
                Some(reason) => format!("Replayed: {} — {reason}", replayed.status.as_str()),
            };
            let query: String = url_encode(&outcome);
            Redirect::to(&format!("/interfaces/hl7/{id}?outcome={query}")).into_response()
        }
        Err(e) => api_error_page(e.into()),
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "hl7_outbox.html")]
struct OutboxPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    zone: &'static str,
    show: String,
    destinations: Vec<DestinationCounts>,
    rows: Vec<OutboundRow>,
    more: u64,
    rows_at_most: usize,
}

/// A destination's messages by status.
struct DestinationCounts {
    name: String,
    pending: i64,
    sent: i64,
    rejected: i64,
    skipped: i64,
}

struct OutboundRow {
    message: OutboundMessageView,
    created: String,
    next: String,
}

/// The outbox: each destination's counts, then the messages waiting (pending or rejected), or
/// every message.
pub async fn outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(query): Query<ShowQuery>,
) -> Response {
    let viewer = match inbox_viewer(&state, &headers, &extensions).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let show = match query.show.as_deref() {
        Some("all") => "all",
        _ => "waiting",
    };
    let words = if show == "all" {
        Vec::new()
    } else {
        vec![show.to_string()]
    };
    let filter = match outbox_filter(&words, None, None, ROWS) {
        Ok(f) => f,
        Err(e) => return api_error_page(e),
    };
    let (page, counts) = match state.outbox_page(&viewer.caller, &filter, None).await {
        Ok(found) => found,
        Err(e) => return api_error_page(e.into()),
    };
    let mut destinations: Vec<DestinationCounts> = Vec::new();
    let routed = state
        .outbound
        .as_ref()
        .map(|o| o.routes.iter().map(|r| r.destination.clone()).collect())
        .unwrap_or_else(Vec::new);
    for name in routed
        .into_iter()
        .chain(counts.iter().map(|c| c.destination.clone()))
    {
        if destinations.iter().any(|d| d.name == name) {
            continue;
        }
        let count = |status: OutboxStatus| {
            counts
                .iter()
                .find(|c| c.destination == name && c.status == status)
                .map_or(0, |c| c.count)
        };
        destinations.push(DestinationCounts {
            pending: count(OutboxStatus::Pending),
            sent: count(OutboxStatus::Sent),
            rejected: count(OutboxStatus::Rejected),
            skipped: count(OutboxStatus::Skipped),
            name,
        });
    }
    let format = |t| state.time.format(t, "%Y-%m-%d %H:%M:%S");
    let rows = page
        .items
        .iter()
        .map(|m| OutboundRow {
            created: format(m.owed.created_at),
            next: if m.status == OutboxStatus::Pending && m.attempts > 0 {
                format(m.next_attempt_at)
            } else {
                String::new()
            },
            message: OutboundMessageView::from(m),
        })
        .collect::<Vec<_>>();
    render(&OutboxPage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        zone: state.time.name(),
        show: show.to_string(),
        destinations,
        more: page.total.saturating_sub(rows.len() as u64),
        rows,
        rows_at_most: ROWS,
    })
}

#[derive(Template)]
#[template(path = "hl7_outbound.html")]
struct OutboundPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    zone: &'static str,
    message: OutboundMessageView,
    created: String,
    finished: String,
    text: String,
    ack: String,
    can_send_again: bool,
    outcome: String,
}

pub async fn outbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Query(query): Query<OutcomeQuery>,
) -> Response {
    let viewer = match inbox_viewer(&state, &headers, &extensions).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    let message = match state.outbound_message(&viewer.caller, &id).await {
        Ok(m) => m,
        Err(e) => return api_error_page(e.into()),
    };
    let detail = outbound_detail(&message);
    render(&OutboundPage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        zone: state.time.name(),
        created: state
            .time
            .format(message.owed.created_at, "%Y-%m-%d %H:%M:%S"),
        finished: message
            .finished_at
            .map(|t| state.time.format(t, "%Y-%m-%d %H:%M:%S"))
            .unwrap_or_default(),
        text: detail.text.unwrap_or_default(),
        ack: detail.ack.unwrap_or_default(),
        can_send_again: matches!(
            message.status,
            OutboxStatus::Rejected | OutboxStatus::Skipped
        ),
        outcome: query.outcome.unwrap_or_default(),
        message: detail.message,
    })
}

pub async fn send_again(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<ReplayForm>,
) -> Response {
    let viewer = match form_viewer(&state, &headers, &extensions, &form).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    match state.send_again(&viewer.caller, &id).await {
        Ok(_) => {
            let outcome = url_encode("Back in the queue: it is rendered anew and sent in turn.");
            Redirect::to(&format!("/interfaces/hl7/outbox/{id}?outcome={outcome}")).into_response()
        }
        Err(e) => api_error_page(e.into()),
    }
}

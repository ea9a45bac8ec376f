//! The board: one lane per room for a day, plus the add-on lane of vetted cases not yet booked.
//! Each card shows time, patient (name, MRN, age), procedure, state and, before the room,
//! readiness from the safety engine. `static/board.js` re-fetches the lanes every few seconds
//! with the last ETag, so cards move as cases change; an unchanged board answers 304 and shows
//! (and audits) nothing new.

use super::{api_error_page, render, NavItem, Viewer};
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use seldinger_app::{BoardCase, BoardDay};
use seldinger_domain::access::Permission;
use seldinger_domain::lifecycle::CaseState;
use seldinger_domain::performed_step::{PerformedStep, StepStatus};
use seldinger_domain::safety::ItemStatus;
use seldinger_domain::Urgency;
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub struct Card {
    pub case_id: String,
    pub time: String,
    pub patient_name: String,
    pub mrn: String,
    pub age: u32,
    pub procedure: String,
    pub state: &'static str,
    pub state_label: String,
    /// ready / action / blocked, before the room only.
    pub readiness: Option<(&'static str, String)>,
    pub urgency: &'static str,
    /// What the room's imaging systems reported of the case (MPPS): a step under way, or one
    /// waiting on the imaging review list.
    pub imaging: Option<(&'static str, String)>,
}

pub struct Lane {
    pub id: String,
    pub name: String,
    pub cards: Vec<Card>,
    /// Cases in this lane not shown as cards (the lane holds at most a page): said, never dropped.
    pub more: u64,
}

#[derive(Template)]
#[template(path = "board_lanes.html")]
struct LanesFragment<'a> {
    lanes: &'a [Lane],
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    date: String,
    lanes_html: Arc<str>,
    etag: String,
}

#[derive(Deserialize)]
pub struct DateQuery {
    date: Option<String>,
}

fn state_label(state: CaseState) -> String {
    let text = state.as_str().replace('_', " ");
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

fn urgency_name(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Emergent => "emergent",
        Urgency::Urgent => "urgent",
        Urgency::Routine => "routine",
    }
}

/// The card's imaging line from the case's performed steps: one to review first (someone must
/// act), else one still in progress.
fn imaging_of(state: &AppState, steps: &[PerformedStep]) -> Option<(&'static str, String)> {
    if let Some(step) = steps.iter().find(|s| s.review.is_some()) {
        return Some((
            "review",
            format!(
                "Imaging to review: {}",
                step.review.as_deref().unwrap_or_default()
            ),
        ));
    }
    steps
        .iter()
        .rev()
        .find(|s| s.status == StepStatus::InProgress)
        .map(|step| {
            (
                "progress",
                format!(
                    "Imaging on {} since {}",
                    step.station_ae_title,
                    state.time.format(step.started_at, "%H:%M")
                ),
            )
        })
}

fn card(state: &AppState, on: NaiveDate, shown: &BoardCase) -> Card {
    let case = &shown.case;
    let (patient_name, mrn) = crate::routes::patient_label(shown.patient.as_ref());
    let age = shown
        .patient
        .as_ref()
        .map(|p| p.details.age_on(on))
        .unwrap_or_default();
    let procedure = case
        .planned_procedure()
        .and_then(|id| state.catalogue.get(id))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "procedure not chosen".into());
    let readiness = shown.checklist.as_ref().map(|checklist| {
        let overridden: Vec<&str> = case
            .safety_overrides
            .iter()
            .flat_map(|o| o.rules.iter().map(String::as_str))
            .collect();
        let open = |status: ItemStatus| -> Vec<String> {
            checklist
                .items
                .iter()
                .filter(|i| i.status == status && !overridden.contains(&i.rule.as_str()))
                .map(|i| i.title.to_lowercase())
                .collect()
        };
        let (blocked, missing) = (open(ItemStatus::Block), open(ItemStatus::MissingData));
        // Blocks and missing data both stop the start (clinical-rules.md §8): the card says which.
        if !blocked.is_empty() {
            ("blocked", format!("Blocked: {}", blocked.join("; ")))
        } else if !missing.is_empty() {
            ("blocked", format!("Missing: {}", missing.join("; ")))
        } else {
            match checklist.overall {
                ItemStatus::Pass => ("ready", "Ready".to_string()),
                ItemStatus::Block | ItemStatus::MissingData => {
                    ("action", "Overridden by a physician".to_string())
                }
                ItemStatus::ActionNeeded => ("action", "Action needed".to_string()),
            }
        }
    });
    Card {
        case_id: case.id.to_string(),
        time: case
            .booking
            .as_ref()
            .map(|b| state.time.format(b.start, "%H:%M"))
            .unwrap_or_default(),
        patient_name,
        mrn,
        age,
        procedure,
        state: case.state.as_str(),
        state_label: state_label(case.state),
        readiness,
        urgency: urgency_name(
            case.vetting
                .as_ref()
                .map(|v| v.priority)
                .unwrap_or(case.urgency),
        ),
        imaging: imaging_of(state, &shown.steps),
    }
}

/// Lanes rendered lately, with the board they show: a board the application layer kept is
/// the same board (the same `Arc`), and its lanes read the same, so they are rendered once.
#[derive(Default)]
pub struct RenderedLanes(Mutex<VecDeque<RenderedBoard>>);

/// A kept board, the day it shows and its lanes' HTML.
type RenderedBoard = (Arc<BoardDay>, NaiveDate, Arc<str>);

/// Rendered lanes kept: as many as the boards the application layer keeps.
const LANES_KEPT: usize = 16;

/// The day's lanes as HTML, read (and audited) through the board use case; rendered once for
/// each board kept.
async fn lanes_html(
    state: &AppState,
    viewer: &Viewer,
    on: NaiveDate,
    stamp: &seldinger_app::BoardStamp,
) -> Result<Arc<str>, ApiError> {
    let day = state.board(&viewer.caller, on, stamp).await?;
    let kept = state.rendered_lanes.0.lock().ok().and_then(|kept| {
        kept.iter()
            .find(|(board, day_shown, _)| Arc::ptr_eq(board, &day) && *day_shown == on)
            .map(|(_, _, html)| html.clone())
    });
    if let Some(html) = kept {
        return Ok(html);
    }
    let lanes = collect_lanes(state, on, &day);
    let html: Arc<str> = LanesFragment { lanes: &lanes }
        .render()
        .map_err(|_| ApiError::internal())?
        .into();
    // A break-glass board is built afresh each time: not worth a place.
    if viewer.caller.break_glass_reason.is_none() {
        if let Ok(mut kept) = state.rendered_lanes.0.lock() {
            if kept.len() >= LANES_KEPT {
                kept.pop_front();
            }
            kept.push_back((day, on, html.clone()));
        }
    }
    Ok(html)
}

/// The day's lanes: one per room, then the add-on lane.
fn collect_lanes(state: &AppState, on: NaiveDate, day: &BoardDay) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = day
        .rooms
        .iter()
        .map(|room| Lane {
            id: room.id.as_str().to_string(),
            name: room.name.clone(),
            cards: day
                .booked
                .iter()
                .filter(|c| c.case.booking.as_ref().is_some_and(|b| b.room == room.id))
                .map(|c| card(state, on, c))
                .collect(),
            more: 0,
        })
        .collect();
    lanes.push(Lane {
        id: "add-on".into(),
        name: "Add-on: vetted, not booked".into(),
        cards: day.add_on.iter().map(|c| card(state, on, c)).collect(),
        more: day.add_on_more,
    });
    if day.booked_more > 0 {
        // More bookings on one day than a page holds: said on the first lane, not dropped.
        if let Some(first) = lanes.first_mut() {
            first.more = day.booked_more;
        }
    }
    lanes
}

fn parse_day(state: &AppState, raw: Option<String>) -> Result<NaiveDate, ApiError> {
    crate::routes::parse_date("date", raw, state.today())
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(query): Query<DateQuery>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/board",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    let result = async {
        let on = parse_day(&state, query.date)?;
        // Taken before the read: a change while the board is built moves the stamp, so the
        // next refresh fetches it rather than keeping a board older than its tag.
        let stamp = state.board_stamp(&viewer.caller, on).await?;
        let lanes = lanes_html(&state, &viewer, on, &stamp).await?;
        Ok::<_, ApiError>((on, lanes, stamp.etag))
    }
    .await;
    match result {
        Ok((on, lanes, etag)) => render(&BoardPage {
            nav: &viewer.nav,
            username: viewer.username(),
            role: viewer.role(),
            csrf_token: &viewer.csrf_token,
            date: on.to_string(),
            etag,
            lanes_html: lanes,
        }),
        Err(e) => api_error_page(e),
    }
}

/// The lanes alone, for the refresh script; 304 when nothing changed, decided from the board's
/// stamp alone (one indexed read), without building or auditing the board.
pub async fn lanes_fragment(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    raw_date: Option<String>,
) -> Result<Response, ApiError> {
    let on = parse_day(state, raw_date)?;
    let stamp = state.board_stamp(&viewer.caller, on).await?;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(stamp.etag.as_str());
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, stamp.etag)]).into_response());
    }
    let html = lanes_html(state, viewer, on, &stamp).await?;
    Ok((
        [
            (header::ETAG, stamp.etag),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::response::Html(html.to_string()),
    )
        .into_response())
}

pub async fn lanes(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(query): Query<DateQuery>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/board",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    lanes_fragment(&state, &viewer, &headers, query.date)
        .await
        .unwrap_or_else(api_error_page)
}

pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/board.js"),
    )
}

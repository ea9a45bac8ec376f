//! The board: one lane per room for a day, plus the add-on lane of vetted cases not yet booked.
//! Each card shows time, patient (name, MRN, age), procedure, state and, before the room,
//! readiness from the safety engine. `static/board.js` re-fetches the lanes every few seconds
//! with the last ETag, so cards move as cases change; an unchanged board answers 304 and shows
//! (and audits) nothing new.

use super::{api_error_page, render, NavItem, Viewer};
use crate::auth::Audit;
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use seldinger_domain::access::Permission;
use seldinger_domain::lifecycle::{Case, CaseState};
use seldinger_domain::performed_step::{PerformedStep, StepStatus};
use seldinger_domain::safety::ItemStatus;
use seldinger_domain::Urgency;
use seldinger_store::CaseFilter;
use serde::Deserialize;
use sha2::{Digest, Sha256};

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

/// Cards an add-on lane shows before it says how many more wait.
const ADD_ON_CARDS: u32 = 100;

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
    lanes_html: String,
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

async fn card(
    state: &AppState,
    case: &Case,
    on: NaiveDate,
    steps: &[PerformedStep],
) -> Result<Card, ApiError> {
    let patient = state.store.patient(case.patient_id).await?;
    let (patient_name, mrn) = crate::routes::patient_label(patient.as_ref());
    let age = patient
        .as_ref()
        .map(|p| p.details.age_on(on))
        .unwrap_or_default();
    let procedure = case
        .planned_procedure()
        .and_then(|id| state.catalogue.get(id))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "procedure not chosen".into());
    let readiness = if case.state.is_pre_procedure() && case.vetting.is_some() {
        let checklist = state.checklist_of(case).await?;
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
        Some(if !blocked.is_empty() {
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
        })
    } else {
        None
    };
    Ok(Card {
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
        imaging: imaging_of(state, steps),
    })
}

/// The day's lanes and the cases shown, for the audit trail.
async fn collect_lanes(
    state: &AppState,
    viewer: &Viewer,
    on: NaiveDate,
) -> Result<(Vec<Lane>, Vec<Case>), ApiError> {
    let rooms = state.store.rooms().await?;
    let booked = state
        .cases_page(
            &viewer.caller,
            &CaseFilter {
                booked_between: Some(state.time.day(on)),
                limit: 1000,
                ..Default::default()
            },
            None,
        )
        .await?;
    let booked_more = booked.total.saturating_sub(booked.items.len() as u64);
    let booked = booked.items;
    let add_on_page = state
        .cases_page(
            &viewer.caller,
            &CaseFilter {
                states: vec![CaseState::Vetted],
                limit: ADD_ON_CARDS,
                ..Default::default()
            },
            None,
        )
        .await?;
    let add_on_more = add_on_page
        .total
        .saturating_sub(add_on_page.items.len() as u64);
    let mut add_on = add_on_page.items;
    add_on.sort_by_key(|c| (c.vetting.as_ref().map(|v| v.priority), c.opened_at));
    // The day's performed steps in one read, not one per card.
    let ids: Vec<_> = booked.iter().map(|c| c.id).collect();
    let steps = state.store.performed_steps_of_cases(&ids).await?;
    let steps_of = |case: &Case| steps.get(&case.id).map(Vec::as_slice).unwrap_or(&[]);
    let mut lanes = Vec::new();
    for room in &rooms {
        let mut cards = Vec::new();
        for case in booked
            .iter()
            .filter(|c| c.booking.as_ref().is_some_and(|b| b.room == room.id))
        {
            cards.push(card(state, case, on, steps_of(case)).await?);
        }
        lanes.push(Lane {
            id: room.id.as_str().to_string(),
            name: room.name.clone(),
            cards,
            more: 0,
        });
    }
    let mut cards = Vec::new();
    for case in &add_on {
        cards.push(card(state, case, on, &[]).await?);
    }
    lanes.push(Lane {
        id: "add-on".into(),
        name: "Add-on: vetted, not booked".into(),
        cards,
        more: add_on_more,
    });
    if booked_more > 0 {
        // More bookings on one day than a page holds: said on the first lane, not dropped.
        if let Some(first) = lanes.first_mut() {
            first.more = booked_more;
        }
    }
    let shown = booked.into_iter().chain(add_on).collect();
    Ok((lanes, shown))
}

fn parse_day(state: &AppState, raw: Option<String>) -> Result<NaiveDate, ApiError> {
    crate::routes::parse_date("date", raw, state.today())
}

async fn audit_shown(state: &AppState, viewer: &Viewer, shown: &[Case]) -> Result<(), ApiError> {
    state
        .audit_all(
            &viewer.caller,
            shown
                .iter()
                .map(|c| Audit::of("read_board", "case", c.id, c.patient_id))
                .collect(),
        )
        .await
}

fn etag_of(html: &str) -> String {
    let digest = Sha256::digest(html.as_bytes());
    format!(
        "\"{}\"",
        digest
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
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
        let (lanes, shown) = collect_lanes(&state, &viewer, on).await?;
        let lanes_html = LanesFragment { lanes: &lanes }
            .render()
            .map_err(|_| ApiError::internal())?;
        audit_shown(&state, &viewer, &shown).await?;
        Ok::<_, ApiError>((on, lanes_html))
    }
    .await;
    match result {
        Ok((on, lanes_html)) => render(&BoardPage {
            nav: &viewer.nav,
            username: viewer.username(),
            role: viewer.role(),
            csrf_token: &viewer.csrf_token,
            date: on.to_string(),
            etag: etag_of(&lanes_html),
            lanes_html,
        }),
        Err(e) => api_error_page(e),
    }
}

/// The lanes alone, for the refresh script; 304 when nothing changed.
pub async fn lanes_fragment(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    raw_date: Option<String>,
) -> Result<Response, ApiError> {
    let on = parse_day(state, raw_date)?;
    let (lanes, shown) = collect_lanes(state, viewer, on).await?;
    let html = LanesFragment { lanes: &lanes }
        .render()
        .map_err(|_| ApiError::internal())?;
    let etag = etag_of(&html);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str());
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    audit_shown(state, viewer, &shown).await?;
    Ok((
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::response::Html(html),
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

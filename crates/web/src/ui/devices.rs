//! The device registry's pages: every device in place with its plan (a device with none is
//! flagged, §7), taken out or declared permanent from its row; and the IVC filter tracker (days
//! since placement, window, status, responsible physician and referrer, retrieval and
//! lost-to-follow-up rates over a period).

use super::{api_error_page, render, NavItem, Viewer};
use crate::problem::ApiError;
use crate::routes::devices::{device_ref, parse_kind, DeviceEventRequest};
use crate::routes::dose::Period;
use crate::routes::QueryParams;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_app::DeviceStanding;
use seldinger_domain::access::{grant, Permission};
use seldinger_domain::device_registry::{LifeState, Plan, Rate};
use seldinger_domain::procedure_record::DeviceKind;
use seldinger_store::DeviceFilter;
use serde::Deserialize;

/// A device as a row of the registry or the tracker.
pub struct DeviceRow {
    pub id: String,
    pub version: u64,
    pub case_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub kind: &'static str,
    pub description: String,
    pub udi: String,
    pub placed: String,
    pub days: i64,
    /// What is owed or decided, in words.
    pub plan: String,
    /// `no-plan`, `overdue`, `due`, `permanent`, `ended`: the row's colour.
    pub plan_class: &'static str,
    pub window: String,
    pub responsible: String,
    pub referrer: String,
    pub in_place: bool,
    /// The refused form's message, beside the row's forms.
    pub error: String,
}

fn row(state: &AppState, s: &DeviceStanding, refused: &Option<(String, String)>) -> DeviceRow {
    let d = &s.device;
    let (plan, plan_class, window) = match &s.plan {
        Plan::Ended => (
            match &d.state {
                LifeState::Removed { at } => {
                    format!("removed {}", state.time.format(*at, "%Y-%m-%d"))
                }
                LifeState::Exchanged { at } => {
                    format!("exchanged {}", state.time.format(*at, "%Y-%m-%d"))
                }
                _ => "ended".to_string(),
            },
            "ended",
            String::new(),
        ),
        Plan::Permanent => (
            match &d.state {
                LifeState::Permanent { reason } => format!("permanent: {reason}"),
                _ => "permanent".to_string(),
            },
            "permanent",
            String::new(),
        ),
        Plan::FollowUp {
            due_from,
            due_until,
            overdue,
        } => (
            if *overdue {
                "follow-up overdue".to_string()
            } else {
                "follow-up owed".to_string()
            },
            if *overdue { "overdue" } else { "due" },
            format!(
                "{}{}",
                state.time.format(*due_from, "%Y-%m-%d"),
                due_until
                    .map(|u| format!(" to {}", state.time.format(u, "%Y-%m-%d")))
                    .unwrap_or_default()
            ),
        ),
        Plan::AtDischarge => (
            "follow-up made at discharge (§7)".to_string(),
            "due",
            String::new(),
        ),
        Plan::NoPlan => (
            "NO PLAN: no follow-up owed and no permanent decision".to_string(),
            "no-plan",
            String::new(),
        ),
    };
    let error = match refused {
        Some((id, message)) if *id == s.id => message.clone(),
        _ => String::new(),
    };
    DeviceRow {
        id: s.id.clone(),
        version: d.version,
        case_id: d.device.case_id.to_string(),
        patient_name: s.patient_name.clone(),
        mrn: s.mrn.clone(),
        kind: d.placed.kind.label(),
        description: d.placed.description.clone(),
        udi: d
            .placed
            .udi
            .as_ref()
            .map(|u| u.summary())
            .unwrap_or_default(),
        placed: state.time.format(d.placed_at, "%Y-%m-%d"),
        days: s.days_since_placement,
        plan,
        plan_class,
        window,
        responsible: s.responsible_physician.clone().unwrap_or_default(),
        referrer: s.referrer.clone().unwrap_or_default(),
        in_place: d.in_place(),
        error,
    }
}

/// A rate as the tracker shows it: "3/5 = 60% (95% CI 23–88%)".
pub fn rate_words(rate: &Rate) -> String {
    match (rate.proportion, rate.low, rate.high) {
        (Some(p), Some(low), Some(high)) => format!(
            "{}/{} = {:.0}% (95% CI {:.0}–{:.0}%)",
            rate.numerator,
            rate.denominator,
            p * 100.0,
            low * 100.0,
            high * 100.0
        ),
        _ => "none placed in the period".to_string(),
    }
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    /// The page's address with its choices, where a form returns to.
    back: String,
    tracker: bool,
    show: String,
    kind: String,
    kinds: Vec<(&'static str, &'static str)>,
    from: String,
    until: String,
    /// (label, figure) of the tracker's measures.
    measures: Vec<(&'static str, String)>,
    rows: Vec<DeviceRow>,
    flagged: usize,
    at_most: usize,
    can_record: bool,
    can_declare: bool,
    now_input: String,
}

#[derive(Deserialize)]
pub struct RegistryQuery {
    show: Option<String>,
    kind: Option<String>,
}

async fn registry_page(
    state: &AppState,
    viewer: &Viewer,
    show: String,
    kind: String,
    refused: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let life = match show.as_str() {
        "all" => Vec::new(),
        "ended" => vec!["removed", "exchanged", "permanent"],
        _ => vec!["in_place"],
    };
    let filter = DeviceFilter {
        life,
        kind: if kind.is_empty() {
            None
        } else {
            Some(parse_kind(&kind)?)
        },
        ..Default::default()
    };
    let mut standings = state.device_registry(&viewer.caller, &filter).await?;
    match show.as_str() {
        "no_plan" => standings.retain(|s| s.plan == Plan::NoPlan),
        "overdue" => standings
            .retain(|s| matches!(s.plan, Plan::NoPlan | Plan::FollowUp { overdue: true, .. })),
        _ => {}
    }
    // Flagged first: no plan, then overdue; the longest in place first within each.
    standings.sort_by_key(|s| {
        (
            match s.plan {
                Plan::NoPlan => 0,
                Plan::FollowUp { overdue: true, .. } => 1,
                _ => 2,
            },
            s.device.placed_at,
        )
    });
    let rows: Vec<DeviceRow> = standings.iter().map(|s| row(state, s, &refused)).collect();
    let back = format!(
        "/devices?show={show}{}",
        if kind.is_empty() {
            String::new()
        } else {
            format!("&kind={kind}")
        }
    );
    page(
        state,
        viewer,
        DevicesView {
            back,
            tracker: false,
            show,
            kind,
            from: String::new(),
            until: String::new(),
            measures: Vec::new(),
            rows,
        },
        status,
    )
}

/// What differs between the registry and the tracker.
struct DevicesView {
    back: String,
    tracker: bool,
    show: String,
    kind: String,
    from: String,
    until: String,
    measures: Vec<(&'static str, String)>,
    rows: Vec<DeviceRow>,
}

fn page(
    state: &AppState,
    viewer: &Viewer,
    view: DevicesView,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let can = |p: Permission| grant(viewer.caller.role, p).is_some();
    let flagged = view
        .rows
        .iter()
        .filter(|r| r.plan_class == "no-plan" || r.plan_class == "overdue")
        .count();
    let mut response = render(&DevicesPage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        back: view.back,
        tracker: view.tracker,
        show: view.show,
        kind: view.kind,
        kinds: DeviceKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.label()))
            .collect(),
        from: view.from,
        until: view.until,
        measures: view.measures,
        flagged,
        rows: view.rows,
        at_most: seldinger_app::DEVICES_AT_MOST,
        can_record: can(Permission::RecordClinicalData),
        can_declare: can(Permission::DeclareDevicesPermanent),
        now_input: state.time.format(state.clock.now(), "%Y-%m-%dT%H:%M"),
    });
    *response.status_mut() = status;
    Ok(response)
}

pub async fn registry(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(query): Query<RegistryQuery>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/devices",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    registry_page(
        &state,
        &viewer,
        query.show.unwrap_or_else(|| "in_place".into()),
        query.kind.unwrap_or_default(),
        None,
        StatusCode::OK,
    )
    .await
    .unwrap_or_else(api_error_page)
}

async fn tracker_page(
    state: &AppState,
    viewer: &Viewer,
    pairs: Vec<(String, String)>,
    refused: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let q = QueryParams::new(pairs, &["from", "until"])?;
    let period = Period::parse(&q, state.today())?;
    let (standings, m) = state
        .ivc_filter_tracker(
            &viewer.caller,
            state.time.start_of(period.from),
            state.time.start_of(period.until + chrono::Days::new(1)),
        )
        .await?;
    let measures = vec![
        ("Retrievable filters placed", m.placed.to_string()),
        ("Retrieved", m.retrieved.to_string()),
        ("Declared permanent", m.permanent.to_string()),
        ("Overdue or without a plan", m.overdue.to_string()),
        ("Retrieval rate", rate_words(&m.retrieval)),
        (
            "Retrieval or documented plan (§6)",
            rate_words(&m.retrieval_or_plan),
        ),
        ("Lost to follow-up", rate_words(&m.lost_to_follow_up)),
    ];
    let rows = standings.iter().map(|s| row(state, s, &refused)).collect();
    let (from, until) = (period.from.to_string(), period.until.to_string());
    page(
        state,
        viewer,
        DevicesView {
            back: format!("/devices/ivc-filters?from={from}&until={until}"),
            tracker: true,
            show: String::new(),
            kind: String::new(),
            from,
            until,
            measures,
            rows,
        },
        status,
    )
}

pub async fn ivc_filters(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/devices/ivc-filters",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    tracker_page(&state, &viewer, pairs, None, StatusCode::OK)
        .await
        .unwrap_or_else(api_error_page)
}

/// A row's form: removed, exchanged or declared permanent.
#[derive(Deserialize)]
pub struct DeviceForm {
    csrf_token: String,
    expected_version: u64,
    form: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
    /// The page to return to (a path on this site).
    #[serde(default)]
    back: String,
}

pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<DeviceForm>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/devices",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return super::expired_form();
    }
    // Only back to one of our own pages: never a redirect elsewhere.
    let back = if form.back.starts_with("/devices") || form.back.starts_with("/cases/") {
        form.back.clone()
    } else {
        "/devices".to_string()
    };
    let result = async {
        let at = super::case::instant(&state.time, &form.at)
            .map_err(|e| ApiError::bad_request("at", e))?;
        let permanent = form.form == "declared_permanent";
        let request = DeviceEventRequest {
            expected_version: form.expected_version,
            kind: crate::routes::devices::DeviceEventType::parse(&form.form)?,
            at: if permanent { None } else { at },
            in_case: None,
            note: (!permanent).then(|| form.note.clone()),
            reason: permanent.then(|| form.reason.clone()),
        };
        let event = request.event(state.clock.now())?;
        state
            .record_device_event(
                &viewer.caller,
                device_ref(&id)?,
                form.expected_version,
                &event,
            )
            .await
            .map_err(ApiError::from)
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(error) => {
            let message = match error.field_errors().first() {
                Some(e) => format!("{}: {}", e.field, e.detail),
                None => error.detail().to_string(),
            };
            let status = error.status();
            let refused = Some((id, message));
            let shown = if back.starts_with("/devices/ivc-filters") {
                let pairs = back
                    .split_once('?')
                    .map(|(_, q)| {
                        // Our own link: `from=YYYY-MM-DD&until=YYYY-MM-DD`, nothing to decode.
                        q.split('&')
                            .filter_map(|pair| pair.split_once('='))
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                tracker_page(&state, &viewer, pairs, refused, status).await
            } else {
                registry_page(
                    &state,
                    &viewer,
                    "in_place".into(),
                    String::new(),
                    refused,
                    status,
                )
                .await
            };
            shown.unwrap_or_else(api_error_page)
        }
    }
}

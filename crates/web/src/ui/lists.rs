//! Working lists: the follow-up queue (tasks due and overdue by type, with the patient and what
//! to do, closed with a note) and the recovery board (patients in recovery, how long since they
//! arrived).

use super::{api_error_page, render, NavItem, Viewer};
use crate::auth::Audit;
use crate::problem::ApiError;
use crate::routes::followup::{complete_task, permission_to_complete, statuses_for};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use seldinger_domain::access::{grant, Permission};
use seldinger_domain::followup::{FollowUpKind, TaskStatus};
use seldinger_domain::lifecycle::CaseState;
use seldinger_store::{CaseFilter, FollowUpFilter, Standing};
use serde::Deserialize;

pub struct TaskRow {
    pub id: String,
    pub version: u64,
    pub case_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub kind: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub window: String,
    pub instructions: String,
    pub can_complete: bool,
    /// The 30-day outcome check: its form asks for the coded finding (§6).
    pub outcome_check: bool,
    pub error: String,
}

#[derive(Template)]
#[template(path = "follow_up.html")]
struct FollowUpPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    show: String,
    groups: Vec<(String, Vec<TaskRow>)>,
    /// Tasks the choice matches beyond the ones shown.
    more: u64,
    rows_at_most: usize,
}

/// The follow-up page shows at most this many tasks, the earliest due first; it says how many
/// more there are.
const FOLLOW_UP_PAGE_ROWS: usize = 500;

#[derive(Deserialize)]
pub struct ShowQuery {
    show: Option<String>,
}

fn status_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::NotYetDue => "not yet due",
        TaskStatus::Due => "due",
        TaskStatus::Overdue => "overdue",
        TaskStatus::Done => "done",
        TaskStatus::Withdrawn => "withdrawn",
    }
}

async fn follow_up_page(
    state: &AppState,
    viewer: &Viewer,
    show: String,
    refused: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    // The page's choices in the API's words: "all" here is every open task.
    let word = match show.as_str() {
        "all" => "open",
        "overdue" => "overdue",
        _ => "due",
    };
    let statuses = statuses_for(word).unwrap_or_default();
    let page = state
        .follow_up_tasks_page(
            &viewer.caller,
            &FollowUpFilter {
                standing: Some(Standing { statuses, now }),
                ..Default::default()
            },
            None,
            FOLLOW_UP_PAGE_ROWS,
        )
        .await?;
    let more = page.total.saturating_sub(page.items.len() as u64);
    let mut groups: Vec<(String, Vec<TaskRow>)> = FollowUpKind::ALL
        .iter()
        .map(|k| (k.as_str().replace('_', " "), Vec::new()))
        .collect();
    let mut shown = Vec::new();
    let labels =
        crate::routes::patient_labels(state, page.items.iter().map(|t| t.patient_id)).await?;
    for task in page.items {
        let (patient_name, mrn) = labels.get(&task.patient_id).cloned().unwrap_or_default();
        let index = FollowUpKind::ALL
            .iter()
            .position(|k| *k == task.kind)
            .unwrap_or_default();
        let id = task.id.to_string();
        let error = match &refused {
            Some((refused_id, message)) if *refused_id == id => message.clone(),
            _ => String::new(),
        };
        groups[index].1.push(TaskRow {
            id,
            version: task.version,
            case_id: task.case_id.to_string(),
            patient_name,
            mrn,
            kind: task.kind.as_str().replace('_', " "),
            status: status_name(task.status(now)),
            status_class: task.status(now).class(),
            window: format!(
                "{}{}",
                state.time.format(task.due_from, "%Y-%m-%d"),
                task.due_until
                    .map(|u| format!(" to {}", state.time.format(u, "%Y-%m-%d")))
                    .unwrap_or_default()
            ),
            instructions: task.instructions.clone(),
            can_complete: grant(viewer.caller.role, permission_to_complete(task.kind)).is_some(),
            outcome_check: task.kind == seldinger_domain::followup::FollowUpKind::OutcomeCheck,
            error,
        });
        shown.push(Audit::of(
            "read",
            "follow_up_task",
            task.id,
            task.patient_id,
        ));
    }
    state.audit_all(&viewer.caller, shown).await?;
    let mut response = render(&FollowUpPage {
        nav: &viewer.nav,
        username: viewer.username(),
        role: viewer.role(),
        csrf_token: &viewer.csrf_token,
        show,
        groups,
        more,
        rows_at_most: FOLLOW_UP_PAGE_ROWS,
    });
    *response.status_mut() = status;
    Ok(response)
}

pub async fn follow_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Query(query): Query<ShowQuery>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/follow-up",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    let show = query.show.unwrap_or_else(|| "due".into());
    follow_up_page(&state, &viewer, show, None, StatusCode::OK)
        .await
        .unwrap_or_else(api_error_page)
}

#[derive(Deserialize)]
pub struct CompleteForm {
    csrf_token: String,
    expected_version: u64,
    note: String,
    /// The outcome check's finding (its form only).
    #[serde(default)]
    finding: String,
    #[serde(default)]
    show: String,
}

pub async fn complete(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(id): Path<String>,
    Form(form): Form<CompleteForm>,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/follow-up",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    if !viewer.csrf_ok(&form.csrf_token) {
        return super::expired_form();
    }
    let show = if form.show.is_empty() {
        "due".to_string()
    } else {
        form.show.clone()
    };
    match complete_task(
        &state,
        &viewer.caller,
        &id,
        form.expected_version,
        &form.note,
        seldinger_domain::followup::OutcomeFinding::parse(&form.finding),
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/follow-up?show={show}")).into_response(),
        Err(error) => {
            let message = match error.field_errors().first() {
                Some(e) => e.detail.clone(),
                None => error.detail().to_string(),
            };
            follow_up_page(&state, &viewer, show, Some((id, message)), error.status())
                .await
                .unwrap_or_else(api_error_page)
        }
    }
}

pub struct RecoveryRow {
    pub case_id: String,
    pub patient_name: String,
    pub mrn: String,
    pub procedure: String,
    pub state: String,
    pub since: String,
    pub minutes: i64,
    /// The latest recovery score against the §4 discharge criteria.
    pub readiness: String,
    pub ready: bool,
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage<'a> {
    nav: &'a [NavItem],
    username: &'a str,
    role: &'a str,
    csrf_token: &'a str,
    /// The department's time zone, named beside every time.
    zone: &'static str,
    rows: Vec<RecoveryRow>,
    /// Patients in recovery beyond the page shown: said, never dropped.
    more: u64,
}

pub async fn recovery(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let viewer = match Viewer::require(
        &state,
        &headers,
        &extensions,
        Permission::ReadCases,
        "/recovery",
    )
    .await
    {
        Ok(v) => v,
        Err(page) => return page,
    };
    let result = async {
        let page = state
            .cases_page(
                &viewer.caller,
                &CaseFilter {
                    states: vec![CaseState::ProcedureComplete, CaseState::InRecovery],
                    limit: 500,
                    ..Default::default()
                },
                None,
            )
            .await?;
        let more = page.total.saturating_sub(page.items.len() as u64);
        let cases = page.items;
        let now = state.clock.now();
        let mut rows = Vec::new();
        let labels =
            crate::routes::patient_labels(&state, cases.iter().map(|c| c.patient_id)).await?;
        let ids: Vec<_> = cases.iter().map(|c| c.id).collect();
        let admitted = state
            .store
            .last_event_of_kind("case", "admit_to_recovery", &ids)
            .await?;
        for case in &cases {
            let (patient_name, mrn) = labels.get(&case.patient_id).cloned().unwrap_or_default();
            // Arrival in recovery is the admit event; until then, the end of the procedure.
            let arrived = admitted
                .get(&case.id.to_string())
                .copied()
                .or(case.procedure_completed_at)
                .unwrap_or(case.updated_at);
            rows.push(RecoveryRow {
                case_id: case.id.to_string(),
                patient_name,
                mrn,
                procedure: case
                    .vetting
                    .as_ref()
                    .and_then(|v| state.catalogue.get(&v.procedure_id))
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                state: case.state.as_str().replace('_', " "),
                since: state.time.format(arrived, "%H:%M"),
                minutes: (now - arrived).num_minutes().max(0),
                ready: case.discharge_criteria_unmet(&state.safety).is_empty(),
                readiness: match case.latest_recovery_score() {
                    None if !case.needs_recovery_score() => {
                        "no sedation planned: the score is not required".into()
                    }
                    None => "not scored yet".into(),
                    Some(score) => {
                        let r = score.readiness(&state.safety);
                        if r.ready {
                            format!("meets discharge criteria (Aldrete {})", r.total)
                        } else {
                            format!("not yet: {}", r.reasons.join("; "))
                        }
                    }
                },
            });
        }
        rows.sort_by_key(|r| std::cmp::Reverse(r.minutes));
        state
            .audit_all(
                &viewer.caller,
                cases
                    .iter()
                    .map(|c| Audit::of("read_recovery", "case", c.id, c.patient_id))
                    .collect(),
            )
            .await?;
        Ok::<_, ApiError>((rows, more))
    }
    .await;
    match result {
        Ok((rows, more)) => render(&RecoveryPage {
            nav: &viewer.nav,
            username: viewer.username(),
            role: viewer.role(),
            csrf_token: &viewer.csrf_token,
            zone: state.time.name(),
            rows,
            more,
        }),
        Err(e) => api_error_page(e),
    }
}

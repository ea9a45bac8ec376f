//! Follow-up tasks: work owed to patients after their procedure (today: dose skin checks and
//! physicist dose reviews), listed by when they are due and closed with a note.

use super::{path_id, QueryParams};
use crate::auth::{Audit, Caller};
use crate::json::ApiJson;
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::Json;
use seldinger_domain::followup::{FollowUpKind, FollowUpTask, TaskStatus};
use seldinger_store::{FollowUpFilter, Page, Standing};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// A task with where it stands now and whose it is.
#[derive(Serialize, ToSchema)]
pub struct FollowUpView {
    #[serde(flatten)]
    pub task: FollowUpTask,
    pub status: TaskStatus,
    pub patient_name: String,
    pub mrn: String,
}

/// The tasks as views, their patients read in one query.
async fn views(state: &AppState, tasks: Vec<FollowUpTask>) -> Result<Vec<FollowUpView>, ApiError> {
    let labels = crate::routes::patient_labels(state, tasks.iter().map(|t| t.patient_id)).await?;
    let now = state.clock.now();
    Ok(tasks
        .into_iter()
        .map(|task| {
            let (patient_name, mrn) = labels.get(&task.patient_id).cloned().unwrap_or_default();
            FollowUpView {
                status: task.status(now),
                patient_name,
                mrn,
                task,
            }
        })
        .collect())
}

pub(crate) use seldinger_app::permission_to_complete;

/// The statuses a `status=` value asks for (the API's and the follow-up page's words).
pub(crate) fn statuses_for(word: &str) -> Option<Vec<TaskStatus>> {
    use TaskStatus::*;
    Some(match word {
        "open" => vec![NotYetDue, Due, Overdue],
        "due" => vec![Due, Overdue],
        "overdue" => vec![Overdue],
        "done" => vec![Done],
        "withdrawn" => vec![Withdrawn],
        "all" => vec![NotYetDue, Due, Overdue, Done, Withdrawn],
        _ => return None,
    })
}

#[utoipa::path(get, path = "/api/v1/follow-up-tasks", tag = "follow-up",
    params(("status" = Option<String>, Query, description = "open (default: not yet done, due or not), due (due now or overdue), overdue, done, withdrawn, or all"),
        ("kind" = Option<String>, Query, description = "dose_skin_check, physicist_dose_review, ivc_filter_retrieval_review, nephrostomy_exchange, … (FollowUpKind)"),
        ("case_id" = Option<String>, Query, description = "one case's tasks"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1-1000, default 200"),
        ("cursor" = Option<String>, Query, description = "the next page: as given in the previous page's Link header")),
    responses((status = 200, description = "one page of tasks, earliest due first", body = Vec<FollowUpView>,
            headers(("X-Total-Count" = u64, description = "tasks the filter matches in all"), ("Link" = String, description = "rel=\"next\": the next page, when there is one"))),
        (status = 400, body = crate::problem::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<axum::response::Response, ApiError> {
    let q = QueryParams::new(pairs, &["status", "kind", "case_id", "limit", "cursor"])?;
    let status = q.one("status").unwrap_or_else(|| "open".into());
    let statuses = statuses_for(&status).ok_or_else(|| {
        ApiError::bad_request(
            "status",
            format!("'{status}' is not open, due, overdue, done, withdrawn or all"),
        )
    })?;
    let now = state.clock.now();
    let filter = FollowUpFilter {
        standing: Some(Standing { statuses, now }),
        kind: q
            .one("kind")
            .map(|k| FollowUpKind::parse(&k).map_err(|e| ApiError::bad_request("kind", e)))
            .transpose()?,
        case_id: q.id("case_id")?,
        ..Default::default()
    };
    let page = state
        .follow_up_tasks_page(
            &caller,
            &filter,
            q.cursor()?.as_ref(),
            q.limit(200, 1000)? as usize,
        )
        .await?;
    let views = views(&state, page.items).await?;
    state
        .audit_all(
            &caller,
            views
                .iter()
                .map(|v| Audit::of("read", "follow_up_task", v.task.id, v.task.patient_id))
                .collect(),
        )
        .await?;
    Ok(super::paged_json(
        &uri,
        Page {
            items: views,
            next: page.next,
            total: page.total,
        },
    ))
}

/// Closing a task, based on the version the client read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    #[serde(deserialize_with = "crate::json::whole_number")]
    pub expected_version: u64,
    /// What was found or done (required).
    pub note: String,
    /// The 30-day outcome check's finding (§6; required for it, refused for any other task).
    #[serde(default)]
    pub finding: Option<seldinger_domain::followup::OutcomeFinding>,
}

#[utoipa::path(post, path = "/api/v1/follow-up-tasks/{id}/complete", tag = "follow-up", request_body = CompleteRequest,
    params(("id" = String, Path, description = "task id (UUID)")),
    responses((status = 200, body = FollowUpView), (status = 400, body = crate::problem::Problem),
        (status = 403, body = crate::problem::Problem), (status = 404, body = crate::problem::Problem),
        (status = 409, description = "stale version", body = crate::problem::Problem),
        (status = 422, description = "which field and why (no note, an outcome check without its finding, an adverse event found but none on the case)", body = crate::problem::Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CompleteRequest>,
) -> Result<Json<FollowUpView>, ApiError> {
    let done = complete_task(
        &state,
        &caller,
        &id,
        request.expected_version,
        &request.note,
        request.finding,
    )
    .await?;
    let mut done = views(&state, vec![done]).await?;
    done.pop().map(Json).ok_or_else(ApiError::internal)
}

/// Closes a task as the caller, as the API and the follow-up page both do.
pub(crate) async fn complete_task(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    expected_version: u64,
    note: &str,
    finding: Option<seldinger_domain::followup::OutcomeFinding>,
) -> Result<FollowUpTask, ApiError> {
    let id: Uuid = path_id("follow-up task", raw_id)?;
    Ok(state
        .complete_follow_up_task(caller, id, expected_version, note, finding)
        .await?)
}

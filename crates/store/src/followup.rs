//! Follow-up tasks: one per case and kind, each change an event (stream `follow_up_task`).

use crate::page::{Cursor, Order, Page, PagedQuery};
use crate::records::{append_event, version_of, Stream};
use crate::scope::{condition, Rows};
use crate::AuditEntry;
use crate::{text, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use seldinger_domain::access::RowScope;
use seldinger_domain::dose::{assess, case_totals, DoseAssessment};
use seldinger_domain::followup::{dose_follow_ups, FollowUpKind, FollowUpTask, TaskStatus};
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::{CaseId, EventMeta, PatientId};
use uuid::Uuid;

/// How a task was closed, as the `closed_as` column holds it (the statuses' names).
fn closed_as(task: &FollowUpTask) -> Option<&'static str> {
    if task.withdrawn.is_some() {
        Some("withdrawn")
    } else if task.completed.is_some() {
        Some("done")
    } else {
        None
    }
}

/// Tasks standing at one of `statuses` at `now`, decided in the query as
/// [`FollowUpTask::status`] decides it.
#[derive(Debug, Clone)]
pub struct Standing {
    pub statuses: Vec<TaskStatus>,
    pub now: DateTime<Utc>,
}

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct FollowUpFilter {
    /// Open tasks only (not yet done).
    pub open: bool,
    pub standing: Option<Standing>,
    pub case_id: Option<CaseId>,
    pub patient_id: Option<PatientId>,
    pub kind: Option<FollowUpKind>,
    /// Only tasks this role owes (one of the task's roles).
    pub owed_by: Option<seldinger_domain::access::Role>,
    /// Only tasks whose due window overlaps [from, before).
    pub due_window_from: Option<DateTime<Utc>>,
    pub due_window_before: Option<DateTime<Utc>>,
}

/// Inserts a task with its "created" event on the caller's transaction, unless its case already
/// has one of that kind (then nothing is written and the answer is false).
pub(crate) async fn insert_follow_up_task(
    conn: &mut sqlx::AnyConnection,
    task: &FollowUpTask,
    meta: &EventMeta,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO follow_up_tasks \
         (id, case_id, patient_id, kind, due_from, due_until, done, closed_as, version, data) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, $7, $8) ON CONFLICT (case_id, kind) DO NOTHING",
    )
    .bind(task.id.to_string())
    .bind(task.case_id.to_string())
    .bind(task.patient_id.to_string())
    .bind(task.kind.as_str().to_string())
    .bind(ts(task.due_from))
    .bind(task.due_until.map(ts))
    .bind(task.version as i64)
    .bind(serde_json::to_string(task)?)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        // One task per case and kind: a withdrawn one is called for again, an open or done one
        // already stands.
        let existing =
            sqlx::query("SELECT data FROM follow_up_tasks WHERE case_id = $1 AND kind = $2")
                .bind(task.case_id.to_string())
                .bind(task.kind.as_str().to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let existing: Option<FollowUpTask> = existing
            .map(|row| serde_json::from_str(&text(&row, "data")?).map_err(StoreError::from))
            .transpose()?;
        return match existing.and_then(|e| e.reinstate(task)) {
            Some(back) => {
                update_follow_up_task(conn, &back, "reinstated", &back, meta).await?;
                Ok(true)
            }
            None => Ok(false),
        };
    }
    append_event(
        conn,
        Stream::FollowUpTask,
        &task.id.to_string(),
        task.version,
        "created",
        meta,
        task,
    )
    .await?;
    Ok(true)
}

/// Writes a changed task (completed, withdrawn, reinstated) with its event, on the caller's
/// transaction, if the stored task is still at the version before `after`. A stale task is a
/// conflict; the caller rolls back.
pub(crate) async fn update_follow_up_task(
    conn: &mut sqlx::AnyConnection,
    after: &FollowUpTask,
    event_kind: &str,
    payload: &impl serde::Serialize,
    meta: &EventMeta,
) -> Result<(), StoreError> {
    let id = after.id.to_string();
    let expected = after.version.saturating_sub(1);
    append_event(
        conn,
        Stream::FollowUpTask,
        &id,
        after.version,
        event_kind,
        meta,
        payload,
    )
    .await?;
    let closed_as = closed_as(after);
    let result = sqlx::query(
        "UPDATE follow_up_tasks SET done = $1, closed_as = $2, due_until = $3, version = $4, data = $5 \
         WHERE id = $6 AND version = $7",
    )
    .bind(i64::from(closed_as.is_some()))
    .bind(closed_as.map(str::to_string))
    .bind(after.due_until.map(ts))
    .bind(after.version as i64)
    .bind(serde_json::to_string(after)?)
    .bind(id.clone())
    .bind(expected as i64)
    .execute(&mut *conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(StoreError::Conflict {
            what: format!("follow-up task {id}"),
            expected,
            current: expected + 1,
        });
    }
    Ok(())
}

impl Store {
    /// Adds each task unless its case already has one of that kind. Returns the ones added.
    pub async fn add_follow_up_tasks(
        &self,
        tasks: &[FollowUpTask],
        meta: &EventMeta,
    ) -> Result<Vec<FollowUpTask>, StoreError> {
        let mut added = Vec::new();
        for task in tasks {
            let mut conn = self.write_conn().await?;
            let mut tx = self.begin(&mut conn).await?;
            if insert_follow_up_task(&mut tx, task, meta).await? {
                tx.commit().await?;
                added.push(task.clone());
            } else {
                tx.rollback().await?;
            }
        }
        Ok(added)
    }

    pub async fn follow_up_task(&self, id: Uuid) -> Result<Option<FollowUpTask>, StoreError> {
        let row = sqlx::query("SELECT data FROM follow_up_tasks WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| Ok(serde_json::from_str(&text(&r, "data")?)?))
            .transpose()
    }

    /// The first page of tasks (see [`Store::follow_up_tasks_page`]).
    pub async fn follow_up_tasks(
        &self,
        scope: &RowScope,
        filter: &FollowUpFilter,
    ) -> Result<Vec<FollowUpTask>, StoreError> {
        Ok(self
            .follow_up_tasks_page(scope, filter, None, 5000)
            .await?
            .items)
    }

    /// A page of the tasks `scope` may see, the earliest due first, with the total.
    pub async fn follow_up_tasks_page(
        &self,
        scope: &RowScope,
        filter: &FollowUpFilter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<FollowUpTask>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> =
            condition(scope, Rows::OfCase("follow_up_tasks.case_id"), &mut params)
                .into_iter()
                .collect();
        if filter.open {
            conditions.push("closed_as IS NULL".to_string());
        }
        if let Some(standing) = &filter.standing {
            params.push(ts(standing.now));
            let now = format!("${}", params.len());
            let open = "closed_as IS NULL";
            // Due and overdue together are every open task due from before now: one range of
            // the open-due index, where the two alternatives would read each row's window.
            let due_or_overdue = standing.statuses.contains(&TaskStatus::Due)
                && standing.statuses.contains(&TaskStatus::Overdue);
            let alternatives: Vec<String> = standing
                .statuses
                .iter()
                .filter(|status| {
                    !(due_or_overdue && matches!(status, TaskStatus::Due | TaskStatus::Overdue))
                })
                .map(|status| match status {
                    TaskStatus::NotYetDue => format!("({open} AND due_from > {now})"),
                    TaskStatus::Due => format!(
                        "({open} AND due_from <= {now} AND (due_until IS NULL OR due_until >= {now}))"
                    ),
                    TaskStatus::Overdue => {
                        format!("({open} AND due_from <= {now} AND due_until < {now})")
                    }
                    TaskStatus::Done => "closed_as = 'done'".to_string(),
                    TaskStatus::Withdrawn => "closed_as = 'withdrawn'".to_string(),
                })
                .chain(due_or_overdue.then(|| format!("({open} AND due_from <= {now})")))
                .collect();
            conditions.push(if alternatives.is_empty() {
                "1 = 0".to_string()
            } else {
                format!("({})", alternatives.join(" OR "))
            });
        }
        let mut eq = |column: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push(value);
                conditions.push(format!("{column} = ${}", params.len()));
            }
        };
        eq("case_id", filter.case_id.map(|c| c.to_string()));
        eq("patient_id", filter.patient_id.map(|p| p.to_string()));
        eq("kind", filter.kind.map(|k| k.as_str().to_string()));
        // The roles are a JSON array of names in the row; a quoted name is only ever a whole string.
        if let Some(role) = filter.owed_by {
            params.push(format!("%\"{}\"%", role.as_str()));
            conditions.push(format!("data LIKE ${}", params.len()));
        }
        // Due windows that overlap [from, before): one without an end runs on.
        if let Some(before) = filter.due_window_before {
            params.push(ts(before));
            conditions.push(format!("due_from < ${}", params.len()));
        }
        if let Some(from) = filter.due_window_from {
            params.push(ts(from));
            conditions.push(format!(
                "(due_until IS NULL OR due_until >= ${})",
                params.len()
            ));
        }
        let order = Order {
            key: "due_from",
            id: "id",
            descending: false,
            numeric: false,
        };
        let decode = |rows: &[sqlx::any::AnyRow]| {
            rows.iter()
                .map(|r| Ok(serde_json::from_str(&text(r, "data")?)?))
                .collect()
        };
        self.page(
            PagedQuery {
                from: "follow_up_tasks",
                columns: "data",
                order,
                conditions,
                params,
            },
            after,
            limit.clamp(1, 5000),
            decode,
        )
        .await
    }

    /// Records a completed task, if it is still at `expected_version`.
    pub async fn complete_follow_up_task(
        &self,
        after: &FollowUpTask,
        expected_version: u64,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        if after.version == expected_version + 1 {
            let mut conn = self.write_conn().await?;
            let mut tx = self.begin(&mut conn).await?;
            match update_follow_up_task(&mut tx, after, "completed", &after.completed, meta).await {
                Ok(()) => {
                    crate::access::insert_audit_all(&mut tx, audit).await?;
                    return tx.commit().await;
                }
                // PostgreSQL aborts the transaction on the violation: read the version outside it.
                Err(StoreError::Conflict { .. }) => tx.rollback().await?,
                Err(other) => return Err(other),
            }
        }
        Err(StoreError::Conflict {
            what: format!("follow-up task {}", after.id),
            expected: expected_version,
            current: self.follow_up_version(after.id).await?,
        })
    }

    async fn follow_up_version(&self, id: Uuid) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT version FROM follow_up_tasks WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| version_of(&r))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Assesses a case's dose from all its linked reports (clinical-rules.md §5) and adds the
    /// follow-up tasks that assessment asks for and the case does not have yet. Returns the
    /// assessment, or `None` when the case has no reports.
    pub async fn assess_case_dose(
        &self,
        case_id: CaseId,
        reference: &SafetyReference,
        meta: &EventMeta,
    ) -> Result<Option<(DoseAssessment, Vec<FollowUpTask>)>, StoreError> {
        let Some(case) = self.case(case_id).await? else {
            return Err(StoreError::NotFound(format!("case {case_id}")));
        };
        let reports = self.case_dose_reports(case_id).await?;
        if reports.is_empty() {
            return Ok(None);
        }
        let totals = case_totals(
            &reports
                .iter()
                .map(|r| r.report_totals())
                .collect::<Vec<_>>(),
        );
        // The skin-check window runs from the end of the procedure; before it is recorded, the
        // latest report's study time stands in, then the time of assessment.
        let end = case
            .procedure_completed_at
            .or_else(|| reports.iter().filter_map(|r| r.performed_at).max())
            .unwrap_or(meta.at);
        let assessment = assess(&totals, end, reference);
        let tasks = dose_follow_ups(case.id, case.patient_id, &assessment, meta.at, Uuid::new_v4);
        let added = self.add_follow_up_tasks(&tasks, meta).await?;
        Ok(Some((assessment, added)))
    }
}

//! Follow-up owed to patients after their procedure: listed within scope, closed with a note.

use crate::{App, AppError, Audit, Principal};
use seldinger_domain::access::Permission;
use seldinger_domain::followup::OutcomeFinding;
use seldinger_domain::followup::{FollowUpKind, FollowUpTask};
use seldinger_domain::EventMeta;
use seldinger_store::{Cursor, FollowUpFilter, Page, Record};
use uuid::Uuid;

/// The permission closing a task of this kind needs.
pub fn permission_to_complete(kind: FollowUpKind) -> Permission {
    match kind {
        FollowUpKind::PhysicistDoseReview => Permission::ManageDose,
        // Skin checks and device, imaging and clinic follow-up are clinical work.
        _ => Permission::RecordClinicalData,
    }
}

impl App {
    /// The tasks `who` may see that match `filter` (scope in the query). Not audited here: the
    /// adapter audits the rows it shows.
    pub async fn list_follow_up_tasks(
        &self,
        who: &Principal,
        filter: &FollowUpFilter,
    ) -> Result<Vec<FollowUpTask>, AppError> {
        let tasks = self
            .store
            .follow_up_tasks(&who.scope(Permission::ReadCases), filter)
            .await?;
        Ok(tasks)
    }

    /// One task, if `who` may open it (in scope, or by break-glass).
    pub async fn follow_up_task(
        &self,
        who: &Principal,
        id: uuid::Uuid,
    ) -> Result<(FollowUpTask, crate::Opened), AppError> {
        let what = format!("follow-up task {id}");
        let task = self
            .store
            .follow_up_task(id)
            .await?
            .ok_or_else(|| AppError::NotFound(what.clone()))?;
        let opened = self
            .open(
                who,
                Permission::ReadCases,
                seldinger_store::Record::FollowUpTask,
                &id.to_string(),
                &what,
            )
            .await?;
        Ok((task, opened))
    }

    /// A page of the tasks `who` may see that match `filter`, the earliest due first, with the
    /// total. Not audited here: the adapter audits the rows it shows.
    pub async fn follow_up_tasks_page(
        &self,
        who: &Principal,
        filter: &FollowUpFilter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<FollowUpTask>, AppError> {
        Ok(self
            .store
            .follow_up_tasks_page(&who.scope(Permission::ReadCases), filter, after, limit)
            .await?)
    }

    /// Closes a task as `who`: scope, the permission its kind needs, the version check, a
    /// required note (and for the 30-day outcome check its finding: an adverse event found must
    /// be on the case first), then the event and its audit row in one commit.
    pub async fn complete_follow_up_task(
        &self,
        who: &Principal,
        id: Uuid,
        expected_version: u64,
        note: &str,
        finding: Option<OutcomeFinding>,
    ) -> Result<FollowUpTask, AppError> {
        let what = format!("follow-up task {id}");
        let task = self
            .store
            .follow_up_task(id)
            .await?
            .ok_or_else(|| AppError::NotFound(what.clone()))?;
        let opened = self
            .open(
                who,
                Permission::ReadCases,
                Record::FollowUpTask,
                &id.to_string(),
                &what,
            )
            .await?;
        who.require(permission_to_complete(task.kind))?;
        if task.version != expected_version {
            return Err(AppError::stale(what, expected_version, task.version));
        }
        let now = self.clock.now();
        let done = task
            .complete_with(&who.username, now, note, finding)
            .map_err(|(field, e)| AppError::invalid(field, e))?;
        if finding == Some(OutcomeFinding::AdverseEventReported)
            && !self
                .store
                .adverse_events_of_cases(&[task.case_id])
                .await?
                .iter()
                .any(|e| e.counts())
        {
            return Err(AppError::invalid(
                "finding",
                "no adverse event is on the case: report it on the case first (§6), then close the check",
            ));
        }
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let audit = who.audit_entry(
            now,
            Audit::of("complete", "follow_up_task", done.id, done.patient_id).break_glass(&opened),
        );
        self.store
            .complete_follow_up_task(&done, expected_version, &meta, &[audit])
            .await?;
        Ok(done)
    }
}

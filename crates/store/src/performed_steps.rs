//! Modality performed procedure steps (MPPS): each message kept as read (append-only), the
//! step's current state beside it, in one transaction with whatever the step did to its case.

use crate::access::AuditEntry;
use crate::records::version_of;
use crate::{text, ts, Store, StoreError};
use seldinger_domain::event::EventMeta;
use seldinger_domain::ids::CaseId;
use seldinger_domain::performed_step::{PerformedStep, StepReport};
use std::collections::HashMap;

/// Which message changed a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMessage {
    Create,
    Set,
}

impl StepMessage {
    fn as_str(self) -> &'static str {
        match self {
            StepMessage::Create => "n-create",
            StepMessage::Set => "n-set",
        }
    }
}

fn step_of(row: &sqlx::any::AnyRow) -> Result<PerformedStep, StoreError> {
    let mut step: PerformedStep = serde_json::from_str(&text(row, "data")?)?;
    step.version = version_of(row)?;
    Ok(step)
}

impl Store {
    pub async fn performed_step(&self, uid: &str) -> Result<Option<PerformedStep>, StoreError> {
        let row =
            sqlx::query("SELECT version, data FROM performed_steps WHERE sop_instance_uid = $1")
                .bind(uid.to_string())
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        row.as_ref().map(step_of).transpose()
    }

    /// A case's steps, in the order they began.
    pub async fn performed_steps_of_case(
        &self,
        case_id: CaseId,
    ) -> Result<Vec<PerformedStep>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, data FROM performed_steps WHERE case_id = $1 ORDER BY started_at, sop_instance_uid",
        )
        .bind(case_id.to_string())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(step_of).collect()
    }

    /// The steps of each of these cases, in the order they began, in a few queries (a period's
    /// dose statistics name thousands of cases); a case with none is left out.
    pub async fn performed_steps_of_cases(
        &self,
        case_ids: &[CaseId],
    ) -> Result<HashMap<CaseId, Vec<PerformedStep>>, StoreError> {
        let mut found: HashMap<CaseId, Vec<PerformedStep>> = HashMap::new();
        self.each_row_for_ids(
            case_ids,
            &[],
            |list| {
                format!(
                    "SELECT version, data FROM performed_steps WHERE case_id IN ({list}) \
                     ORDER BY started_at, sop_instance_uid"
                )
            },
            |row| {
                let step = step_of(row)?;
                if let Some(case) = step.case_id {
                    found.entry(case).or_default().push(step);
                }
                Ok(())
            },
        )
        .await?;
        Ok(found)
    }

    /// Steps a person must look at, most recent first, at most `limit`.
    pub async fn performed_steps_to_review(
        &self,
        limit: u32,
    ) -> Result<Vec<PerformedStep>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, data FROM performed_steps WHERE review IS NOT NULL \
             ORDER BY started_at DESC, sop_instance_uid LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(step_of).collect()
    }

    /// Records `step` as `message` (with `report`, what it said) left it: a new step at version
    /// 1, else an update of the version before. A step that exists already (a second N-CREATE)
    /// is refused as a duplicate; a stale update as a conflict. Kept with its audit rows.
    pub async fn record_performed_step(
        &self,
        step: &PerformedStep,
        message: StepMessage,
        report: &StepReport,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let data = serde_json::to_string(step)?;
        let case_id = step.case_id.map(|c| c.to_string());
        let written = if message == StepMessage::Create {
            sqlx::query(
                "INSERT INTO performed_steps (sop_instance_uid, case_id, status, station_ae_title, \
                 started_at, review, version, updated_at, data, study_instance_uid) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(step.sop_instance_uid.clone())
            .bind(case_id)
            .bind(step.status.as_str().to_string())
            .bind(step.station_ae_title.clone())
            .bind(ts(step.started_at))
            .bind(step.review.clone())
            .bind(step.version as i64)
            .bind(ts(step.updated_at))
            .bind(data)
            .bind(step.study_instance_uid.clone())
            .execute(&mut *tx)
            .await
        } else {
            sqlx::query(
                "UPDATE performed_steps SET case_id = $2, status = $3, review = $4, version = $5, \
                 updated_at = $6, data = $7 WHERE sop_instance_uid = $1 AND version = $8",
            )
            .bind(step.sop_instance_uid.clone())
            .bind(case_id)
            .bind(step.status.as_str().to_string())
            .bind(step.review.clone())
            .bind(step.version as i64)
            .bind(ts(step.updated_at))
            .bind(data)
            .bind(step.version as i64 - 1)
            .execute(&mut *tx)
            .await
        };
        let written = match written {
            Err(e) if StoreError::is_unique_violation(&e) => {
                tx.rollback().await?;
                return Err(StoreError::Duplicate(format!(
                    "performed procedure step {} exists already",
                    step.sop_instance_uid
                )));
            }
            other => other?,
        };
        if written.rows_affected() == 0 {
            tx.rollback().await?;
            drop(conn);
            let current = self.performed_step(&step.sop_instance_uid).await?;
            return Err(StoreError::Conflict {
                what: format!("performed procedure step {}", step.sop_instance_uid),
                expected: step.version.saturating_sub(1),
                current: current.map(|s| s.version).unwrap_or_default(),
            });
        }
        sqlx::query(
            "INSERT INTO performed_step_messages (sop_instance_uid, version, kind, actor, at, data) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(step.sop_instance_uid.clone())
        .bind(step.version as i64)
        .bind(message.as_str().to_string())
        .bind(meta.actor.as_str().to_string())
        .bind(ts(meta.at))
        .bind(serde_json::to_string(report)?)
        .execute(&mut *tx)
        .await?;
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

//! The device registry (clinical-rules.md §7): a row per device a case left in a patient, placed
//! by the case's `record_device_left` event (in the same commit), changed by its own `device`
//! event stream (removed, exchanged, declared permanent).

use crate::records::{append_event, version_of, Stream};
use crate::scope::{condition, Rows};
use crate::{text, ts, AuditEntry, RecordedEvent, Store, StoreError};
use chrono::{DateTime, Utc};
use seldinger_domain::access::RowScope;
use seldinger_domain::device_registry::{DeviceEvent, DeviceRef, TrackedDevice};
use seldinger_domain::followup::FollowUpTask;
use seldinger_domain::procedure_record::DeviceKind;
use seldinger_domain::{CaseId, EventMeta, PatientId};

/// Which devices to list: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub patient_id: Option<PatientId>,
    pub case_id: Option<CaseId>,
    pub kind: Option<DeviceKind>,
    /// Life states by name (`in_place`, `removed`, `exchanged`, `permanent`); empty: any.
    pub life: Vec<&'static str>,
    /// Placed in [from, before).
    pub placed_from: Option<DateTime<Utc>>,
    pub placed_before: Option<DateTime<Utc>>,
}

/// The kind as its serde name (the `kind` column).
pub(crate) fn kind_name(kind: DeviceKind) -> String {
    kind.as_str().to_string()
}

/// Registers a device on the caller's transaction (the case event that placed it is written
/// there too). A device already registered is left as it is.
pub(crate) async fn insert_device(
    conn: &mut sqlx::AnyConnection,
    device: &TrackedDevice,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO devices (id, case_id, idx, patient_id, kind, placed_at, life, version, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(device.device.stream_id())
    .bind(device.device.case_id.to_string())
    .bind(device.device.index as i64)
    .bind(device.patient_id.to_string())
    .bind(kind_name(device.placed.kind))
    .bind(ts(device.placed_at))
    .bind(device.state.as_str().to_string())
    .bind(device.version as i64)
    .bind(serde_json::to_string(device)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    pub async fn device(&self, device: DeviceRef) -> Result<Option<TrackedDevice>, StoreError> {
        let row = sqlx::query("SELECT data FROM devices WHERE id = $1")
            .bind(device.stream_id())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| Ok(serde_json::from_str(&text(&r, "data")?)?))
            .transpose()
    }

    /// The devices `scope` may see that match `filter`, the longest in place first, at most
    /// `limit`.
    pub async fn devices(
        &self,
        scope: &RowScope,
        filter: &DeviceFilter,
        limit: usize,
    ) -> Result<Vec<TrackedDevice>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> =
            condition(scope, Rows::OfCase("devices.case_id"), &mut params)
                .into_iter()
                .collect();
        let mut eq = |column: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push(value);
                conditions.push(format!("{column} = ${}", params.len()));
            }
        };
        eq("patient_id", filter.patient_id.map(|p| p.to_string()));
        eq("case_id", filter.case_id.map(|c| c.to_string()));
        eq("kind", filter.kind.map(kind_name));
        if !filter.life.is_empty() {
            let mut names = Vec::new();
            for life in &filter.life {
                params.push(life.to_string());
                names.push(format!("${}", params.len()));
            }
            conditions.push(format!("life IN ({})", names.join(", ")));
        }
        if let Some(from) = filter.placed_from {
            params.push(ts(from));
            conditions.push(format!("placed_at >= ${}", params.len()));
        }
        if let Some(before) = filter.placed_before {
            params.push(ts(before));
            conditions.push(format!("placed_at < ${}", params.len()));
        }
        let sql = format!(
            "SELECT data FROM devices {} ORDER BY placed_at, id LIMIT {}",
            if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            },
            limit.min(10_000)
        );
        let rows = crate::fetch_with_text_params(&mut *self.conn().await?, &sql, &params).await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&text(r, "data")?)?))
            .collect()
    }

    /// Writes a device's life event and the device it produced (`after`), the follow-up tasks
    /// it settles (completed) and its audit rows, if the stored device (and each task) is still
    /// at the version before; else a conflict and nothing is written.
    pub async fn record_device_event(
        &self,
        after: &TrackedDevice,
        event: &DeviceEvent,
        settled: &[FollowUpTask],
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let id = after.device.stream_id();
        let expected = after.version.saturating_sub(1);
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let appended = append_event(
            &mut tx,
            Stream::Device,
            &id,
            after.version,
            event.kind(),
            meta,
            event,
        )
        .await;
        if let Err(StoreError::Conflict { .. }) = appended {
            tx.rollback().await?;
            drop(conn);
            return Err(self.device_conflict(&id, expected).await);
        }
        appended?;
        let result = sqlx::query(
            "UPDATE devices SET life = $1, version = $2, data = $3 WHERE id = $4 AND version = $5",
        )
        .bind(after.state.as_str().to_string())
        .bind(after.version as i64)
        .bind(serde_json::to_string(after)?)
        .bind(id.clone())
        .bind(expected as i64)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            tx.rollback().await?;
            drop(conn);
            return Err(self.device_conflict(&id, expected).await);
        }
        for task in settled {
            crate::followup::update_follow_up_task(
                &mut tx,
                task,
                "completed",
                &task.completed,
                meta,
            )
            .await?;
        }
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn device_conflict(&self, id: &str, expected: u64) -> StoreError {
        let current = async {
            let row = sqlx::query("SELECT version FROM devices WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&mut *self.conn().await?)
                .await?;
            row.map(|r| version_of(&r)).transpose()
        }
        .await;
        StoreError::Conflict {
            what: format!("device {id}"),
            expected,
            current: current.ok().flatten().unwrap_or_default(),
        }
    }

    /// A device's life events, oldest first (its placement is in its case's history).
    pub async fn device_history(
        &self,
        device: DeviceRef,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.history_of(Stream::Device, &device.stream_id()).await
    }

    /// The follow-up tasks of these cases (a device's plan is its case's task), any status.
    pub async fn follow_up_tasks_of_cases(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<FollowUpTask>, StoreError> {
        self.rows_with("follow_up_tasks", "case_id", cases).await
    }
}

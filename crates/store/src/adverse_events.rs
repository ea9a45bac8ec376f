//! Adverse events (clinical-rules.md §6): a row per event — a complication in a case's record
//! (registered in that event's commit) or one reported later (its own `reported` event) — and
//! the `adverse_event` stream of its corrections, attribution decisions and withdrawal.

use crate::records::{append_event, version_of, Stream};
use crate::scope::{condition, Rows};
use crate::{text, ts, AuditEntry, RecordedEvent, Store, StoreError};
use chrono::{DateTime, Utc};
use seldinger_domain::access::RowScope;
use seldinger_domain::adverse_event::{AdverseEvent, AdverseEventChange};
use seldinger_domain::{CaseId, EventMeta, PatientId};

/// Which adverse events to list: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct AdverseEventFilter {
    pub case_id: Option<CaseId>,
    pub patient_id: Option<PatientId>,
    /// Onset in [from, before).
    pub onset_from: Option<DateTime<Utc>>,
    pub onset_before: Option<DateTime<Utc>>,
    /// Leave out those withdrawn as entered in error.
    pub counted_only: bool,
}

fn severity_name(event: &AdverseEvent) -> String {
    serde_json::to_value(event.details.severity)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Inserts an event's row on the caller's transaction; false if its id is taken.
pub(crate) async fn insert_adverse_event(
    conn: &mut sqlx::AnyConnection,
    event: &AdverseEvent,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO adverse_events (id, case_id, patient_id, onset, severity, counted, version, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
    )
    .bind(event.id.clone())
    .bind(event.case_id.to_string())
    .bind(event.patient_id.to_string())
    .bind(ts(event.details.onset))
    .bind(severity_name(event))
    .bind(i64::from(event.counts()))
    .bind(event.version as i64)
    .bind(serde_json::to_string(event)?)
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

impl Store {
    pub async fn adverse_event(&self, id: &str) -> Result<Option<AdverseEvent>, StoreError> {
        let row = sqlx::query("SELECT data FROM adverse_events WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| Ok(serde_json::from_str(&text(&r, "data")?)?))
            .transpose()
    }

    /// The events `scope` may see that match `filter`, by onset, at most `limit`.
    pub async fn adverse_events(
        &self,
        scope: &RowScope,
        filter: &AdverseEventFilter,
        limit: usize,
    ) -> Result<Vec<AdverseEvent>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> =
            condition(scope, Rows::OfCase("adverse_events.case_id"), &mut params)
                .into_iter()
                .collect();
        let mut add = |sql: &str, value: Option<String>| {
            if let Some(value) = value {
                params.push(value);
                conditions.push(sql.replace('?', &format!("${}", params.len())));
            }
        };
        add("case_id = ?", filter.case_id.map(|c| c.to_string()));
        add("patient_id = ?", filter.patient_id.map(|p| p.to_string()));
        add("onset >= ?", filter.onset_from.map(ts));
        add("onset < ?", filter.onset_before.map(ts));
        if filter.counted_only {
            conditions.push("counted = 1".to_string());
        }
        let sql = format!(
            "SELECT data FROM adverse_events {} ORDER BY onset, id LIMIT {}",
            if conditions.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", conditions.join(" AND "))
            },
            limit.min(100_000)
        );
        let rows = crate::fetch_with_text_params(&mut *self.conn().await?, &sql, &params).await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&text(r, "data")?)?))
            .collect()
    }

    /// Records an event reported after the record was closed (its own `reported` event, with
    /// its audit rows). A taken id is a conflict: someone reported one for the case meanwhile.
    pub async fn report_adverse_event(
        &self,
        event: &AdverseEvent,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        if !insert_adverse_event(&mut tx, event).await? {
            tx.rollback().await?;
            return Err(StoreError::Conflict {
                what: format!("adverse event {}", event.id),
                expected: 0,
                current: 1,
            });
        }
        append_event(
            &mut tx,
            Stream::AdverseEvent,
            &event.id,
            event.version,
            "reported",
            meta,
            event,
        )
        .await?;
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a change and the event it produced (`after`), with its audit rows, if the stored
    /// event is still at the version before; else a conflict and nothing is written.
    pub async fn change_adverse_event(
        &self,
        after: &AdverseEvent,
        change: &AdverseEventChange,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let expected = after.version.saturating_sub(1);
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let appended = append_event(
            &mut tx,
            Stream::AdverseEvent,
            &after.id,
            after.version,
            change.kind(),
            meta,
            change,
        )
        .await;
        let stale = match appended {
            Err(StoreError::Conflict { .. }) => true,
            Err(other) => return Err(other),
            Ok(()) => {
                let result = sqlx::query(
                    "UPDATE adverse_events SET onset = $1, severity = $2, counted = $3, version = $4, \
                     data = $5 WHERE id = $6 AND version = $7",
                )
                .bind(ts(after.details.onset))
                .bind(severity_name(after))
                .bind(i64::from(after.counts()))
                .bind(after.version as i64)
                .bind(serde_json::to_string(after)?)
                .bind(after.id.clone())
                .bind(expected as i64)
                .execute(&mut *tx)
                .await?;
                result.rows_affected() == 0
            }
        };
        if stale {
            tx.rollback().await?;
            drop(conn);
            let row = sqlx::query("SELECT version FROM adverse_events WHERE id = $1")
                .bind(after.id.clone())
                .fetch_optional(&mut *self.conn().await?)
                .await?;
            return Err(StoreError::Conflict {
                what: format!("adverse event {}", after.id),
                expected,
                current: row.map(|r| version_of(&r)).transpose()?.unwrap_or_default(),
            });
        }
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An event's changes, oldest first (a complication's recording is in its case's history).
    pub async fn adverse_event_history(&self, id: &str) -> Result<Vec<RecordedEvent>, StoreError> {
        self.history_of(Stream::AdverseEvent, id).await
    }
}

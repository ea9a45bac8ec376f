//! What the quality pages and the registry export read: a period's cases by when their
//! procedure began, and the facts of those cases (adverse events, devices, dose reports, M&M
//! notes), each table read once per few hundred cases; and the M&M record's writes.

use crate::dose::{stored_report, REPORT_COLUMNS};
use crate::records::{append_event, placeholders, version_of, Stream, IDS_PER_QUERY};
use crate::scope::{condition, Rows};
use crate::{
    fetch_with_text_params, text, ts, AuditEntry, RecordedEvent, Store, StoreError,
    StoredDoseReport,
};
use chrono::{DateTime, Utc};
use seldinger_domain::access::RowScope;
use seldinger_domain::adverse_event::AdverseEvent;
use seldinger_domain::device_registry::TrackedDevice;
use seldinger_domain::lifecycle::Case;
use seldinger_domain::mm::{MmNoteAdded, MmReview};
use seldinger_domain::{CaseId, EventMeta};

impl Store {
    /// The cases `scope` may see whose procedure began in [from, until), oldest first, at most
    /// `limit`.
    pub async fn cases_begun(
        &self,
        scope: &RowScope,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Case>, StoreError> {
        let mut params = vec![ts(from), ts(until)];
        let mut conditions = vec![
            "procedure_started_at >= $1".to_string(),
            "procedure_started_at < $2".to_string(),
        ];
        conditions.extend(condition(scope, Rows::Cases("cases"), &mut params));
        let sql = format!(
            "SELECT data FROM cases WHERE {} ORDER BY procedure_started_at, id LIMIT {}",
            conditions.join(" AND "),
            limit.min(1_000_000)
        );
        let rows = fetch_with_text_params(&mut *self.conn().await?, &sql, &params).await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&text(r, "data")?)?))
            .collect()
    }

    /// Every adverse event of these cases, withdrawn ones included (the caller counts).
    pub async fn adverse_events_of_cases(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<AdverseEvent>, StoreError> {
        self.rows_with("adverse_events", "case_id", cases).await
    }

    /// Every device these cases left.
    pub async fn devices_of_cases(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<TrackedDevice>, StoreError> {
        self.rows_with("devices", "case_id", cases).await
    }

    /// The dose reports linked to these cases, in the order they arrived.
    pub async fn dose_reports_of_cases(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<StoredDoseReport>, StoreError> {
        let mut ids: Vec<String> = cases.iter().map(ToString::to_string).collect();
        ids.sort();
        ids.dedup();
        let mut found = Vec::new();
        let mut conn = self.conn().await?;
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT {REPORT_COLUMNS} FROM dose_reports WHERE case_id IN ({}) \
                 ORDER BY received_at, sop_instance_uid",
                placeholders(chunk.len())
            );
            let rows = fetch_with_text_params(&mut conn, &sql, chunk).await?;
            for row in &rows {
                found.push(stored_report(row)?);
            }
        }
        Ok(found)
    }

    /// The M&M records of these cases (those with notes).
    pub async fn mm_reviews_of_cases(&self, cases: &[CaseId]) -> Result<Vec<MmReview>, StoreError> {
        self.rows_with("mm_reviews", "id", cases).await
    }

    pub async fn mm_review(&self, case_id: CaseId) -> Result<Option<MmReview>, StoreError> {
        Ok(self.mm_reviews_of_cases(&[case_id]).await?.pop())
    }

    /// Adds a meeting's note: the record it produced (`after`), if the stored one is still at
    /// the version before (none stored: 0), with its audit rows, in one commit; else a conflict.
    pub async fn add_mm_note(
        &self,
        after: &MmReview,
        note: &MmNoteAdded,
        meta: &EventMeta,
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let id = after.case_id.to_string();
        let expected = after.version.saturating_sub(1);
        let mut conn = self.conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let appended = append_event(
            &mut tx,
            Stream::MmReview,
            &id,
            after.version,
            "note_added",
            meta,
            note,
        )
        .await;
        let written =
            match appended {
                Err(StoreError::Conflict { .. }) => false,
                Err(other) => return Err(other),
                Ok(()) if expected == 0 => {
                    sqlx::query(
                        "INSERT INTO mm_reviews (id, patient_id, version, data) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id.clone())
                    .bind(after.patient_id.to_string())
                    .bind(after.version as i64)
                    .bind(serde_json::to_string(after)?)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                }
                Ok(()) => sqlx::query(
                    "UPDATE mm_reviews SET version = $1, data = $2 WHERE id = $3 AND version = $4",
                )
                .bind(after.version as i64)
                .bind(serde_json::to_string(after)?)
                .bind(id.clone())
                .bind(expected as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1,
            };
        if !written {
            tx.rollback().await?;
            drop(conn);
            let row = sqlx::query("SELECT version FROM mm_reviews WHERE id = $1")
                .bind(id.clone())
                .fetch_optional(&mut *self.conn().await?)
                .await?;
            return Err(StoreError::Conflict {
                what: format!("M&M record of case {id}"),
                expected,
                current: row.map(|r| version_of(&r)).transpose()?.unwrap_or_default(),
            });
        }
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn mm_review_history(
        &self,
        case_id: CaseId,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.history_of(Stream::MmReview, &case_id.to_string())
            .await
    }
}

//! What the quality pages and the registry export read: a period's cases by when their
//! procedure began, and the facts of those cases (adverse events, devices, dose reports, M&M
//! notes), each table read once per few hundred cases; and the M&M record's writes.

use crate::dose::{stored_report, REPORT_COLUMNS};
use crate::records::{write_versioned, Stream, VersionedRow};
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
        let mut found = Vec::new();
        self.each_row_for_ids(
            cases,
            &[],
            |list| {
                format!(
                    "SELECT {REPORT_COLUMNS} FROM dose_reports WHERE case_id IN ({list}) \
                     ORDER BY received_at, sop_instance_uid"
                )
            },
            |row| {
                found.push(stored_report(row)?);
                Ok(())
            },
        )
        .await?;
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
        let row = VersionedRow {
            stream: Stream::MmReview,
            table: "mm_reviews",
            id: &id,
            patient_id: after.patient_id.to_string(),
            version: after.version,
            data: serde_json::to_string(after)?,
            status: None,
        };
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        if !write_versioned(&mut tx, &row, "note_added", meta, note).await? {
            tx.rollback().await?;
            drop(conn);
            return Err(StoreError::Conflict {
                what: format!("M&M record of case {id}"),
                expected: after.version.saturating_sub(1),
                current: self.current_version("mm_reviews", &id).await?,
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

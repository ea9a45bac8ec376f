//! Procedure reports: one per case, each change an event of the `procedure_report` stream,
//! written with its audit rows and the messages it owes (the signed report to the hospital).

use crate::records::{write_versioned, Stream, VersionedRow};
use crate::{text, AuditEntry, NewOutboundMessage, RecordedEvent, Store, StoreError};
use seldinger_domain::report::{ProcedureReport, ReportChange};
use seldinger_domain::{CaseId, EventMeta};

fn status_name(report: &ProcedureReport) -> String {
    serde_json::to_value(report.status())
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Store {
    pub async fn procedure_report(
        &self,
        case_id: CaseId,
    ) -> Result<Option<ProcedureReport>, StoreError> {
        let row = sqlx::query("SELECT data FROM procedure_reports WHERE id = $1")
            .bind(case_id.to_string())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| Ok(serde_json::from_str(&text(&r, "data")?)?))
            .transpose()
    }

    /// Writes a change and the report it produced (`after`), if the stored report is still at
    /// the version before (none stored: version 0), with its audit rows and owed messages, in one
    /// commit; else a conflict and nothing is written.
    pub async fn change_procedure_report(
        &self,
        after: &ProcedureReport,
        change: &ReportChange,
        meta: &EventMeta,
        audit: &[AuditEntry],
        owed: &[NewOutboundMessage],
    ) -> Result<(), StoreError> {
        let id = after.case_id.to_string();
        let row = VersionedRow {
            stream: Stream::ProcedureReport,
            table: "procedure_reports",
            id: &id,
            patient_id: after.patient_id.to_string(),
            version: after.version,
            data: serde_json::to_string(after)?,
            status: Some(status_name(after)),
        };
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        if !write_versioned(&mut tx, &row, change.kind(), meta, change).await? {
            tx.rollback().await?;
            drop(conn);
            return Err(StoreError::Conflict {
                what: format!("procedure report of case {id}"),
                expected: after.version.saturating_sub(1),
                current: self.current_version("procedure_reports", &id).await?,
            });
        }
        crate::outbox::insert_owed(&mut tx, owed).await?;
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every report of a patient's cases (the caller scopes the cases they are shown with).
    pub async fn procedure_reports_of_patient(
        &self,
        patient_id: seldinger_domain::PatientId,
    ) -> Result<Vec<ProcedureReport>, StoreError> {
        let rows = sqlx::query("SELECT data FROM procedure_reports WHERE patient_id = $1")
            .bind(patient_id.to_string())
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&text(r, "data")?)?))
            .collect()
    }

    pub async fn procedure_report_history(
        &self,
        case_id: CaseId,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.history_of(Stream::ProcedureReport, &case_id.to_string())
            .await
    }
}

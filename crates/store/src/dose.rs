//! Stored radiation dose reports and the quarantine of files that could not be read.

use crate::{text, ts, Store, StoreError};
use chrono::{DateTime, Utc};

/// A dose report ready to store: its identifiers for look-up and the full extraction as JSON.
#[derive(Debug, Clone)]
pub struct NewDoseReport {
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub accession_number: Option<String>,
    pub patient_id: Option<String>,
    pub study_date: Option<String>,
    /// Where it came from: a file path, or the sending AE title.
    pub source: String,
    pub data: serde_json::Value,
}

impl Store {
    /// Stores a report unless its SOP instance is already stored. Returns whether it was new:
    /// re-sending the same report is acknowledged without duplicating it.
    pub async fn store_dose_report(
        &self,
        report: &NewDoseReport,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO dose_reports (sop_instance_uid, study_instance_uid, accession_number, patient_id, study_date, received_at, source, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sop_instance_uid) DO NOTHING",
        )
        .bind(report.sop_instance_uid.clone())
        .bind(report.study_instance_uid.clone())
        .bind(report.accession_number.clone())
        .bind(report.patient_id.clone())
        .bind(report.study_date.clone())
        .bind(ts(at))
        .bind(report.source.clone())
        .bind(serde_json::to_string(&report.data)?)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Keeps an unreadable file and why, for a physicist to look at.
    pub async fn quarantine_dose_file(
        &self,
        source: &str,
        reason: &str,
        bytes: Option<&[u8]>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO dose_quarantine (received_at, source, reason, bytes) VALUES ($1, $2, $3, $4)")
            .bind(ts(at))
            .bind(source.to_string())
            .bind(reason.to_string())
            .bind(bytes.map(<[u8]>::to_vec))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Stored reports (newest first) as their extraction JSON.
    pub async fn dose_reports(&self, limit: u32) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT data FROM dose_reports ORDER BY received_at DESC, sop_instance_uid LIMIT {}",
            limit.clamp(1, 10_000)
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok(serde_json::from_str(&text(r, "data")?)?))
            .collect()
    }

    /// Quarantined files: (source, reason), oldest first.
    pub async fn dose_quarantine(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT source, reason FROM dose_quarantine ORDER BY seq")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((text(r, "source")?, text(r, "reason")?)))
            .collect()
    }
}

//! Stored radiation dose reports, their links to cases, and the quarantine of files that could not
//! be read.
//!
//! A report row never changes after it is stored; its link to a case does, and every link change
//! is an event (stream `dose_report`) with who, when and why.

use crate::page::{Cursor, Order, Page, PagedQuery};
use crate::records::{append_event, Stream};
use crate::scope::{condition, Rows};
use crate::AuditEntry;
use crate::{parse_ts, text, ts, Store, StoreError};
use chrono::{DateTime, Utc};
use seldinger_domain::access::RowScope;
use seldinger_domain::dose::{DoseTotals, ReportTotals};
use seldinger_domain::dose_link::{CaseCandidate, LinkBasis, LinkOutcome, ReportKeys};
use seldinger_domain::lifecycle::{Case, CaseState};
use seldinger_domain::{CaseId, EventMeta, PatientId};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A dose report ready to store: its identifiers for look-up and the full extraction as JSON.
#[derive(Debug, Clone)]
pub struct NewDoseReport {
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub accession_number: Option<String>,
    pub patient_id: Option<String>,
    /// DICOM DA and TM as the report gave them.
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    /// Manufacturer, model and station, joined: the system that reported.
    pub device: String,
    /// Who authorized (else administered) the irradiation, when the report names them.
    pub operator: Option<String>,
    pub totals: DoseTotals,
    /// Where it came from: a file path, or the sending AE title.
    pub source: String,
    pub data: serde_json::Value,
}

impl NewDoseReport {
    pub fn keys(&self) -> ReportKeys {
        ReportKeys {
            accession_number: self.accession_number.clone(),
            study_instance_uid: self.study_instance_uid.clone(),
            patient_id: self.patient_id.clone(),
            study_date: self.study_date.clone(),
            study_time: self.study_time.clone(),
            booked_study: false,
        }
    }
}

/// A stored report with its current link.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredDoseReport {
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accession_number: Option<String>,
    /// The Patient ID the report carries (DICOM (0010,0020)), not Seldinger's patient id: named
    /// apart, so that no client takes one for the other.
    #[serde(rename = "dicom_patient_id", skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<String>,
    /// When the study started, as read from the report (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performed_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<CaseId>,
    /// The linked case's patient (Seldinger's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_patient_id: Option<PatientId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_basis: Option<LinkBasis>,
    /// Why it is in the unmatched queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmatched_reason: Option<String>,
    /// Version of the link; a manual link must name it.
    pub link_version: u64,
    pub totals: DoseTotals,
    /// Everything extracted from the file.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extracted: serde_json::Value,
}

impl StoredDoseReport {
    pub fn report_totals(&self) -> ReportTotals {
        ReportTotals {
            study_instance_uid: self.study_instance_uid.clone(),
            device: self.device.clone(),
            totals: self.totals.clone(),
        }
    }
}

/// Which stored reports to list.
#[derive(Debug, Clone, Default)]
pub struct DoseReportFilter {
    /// Only reports not linked to a case (the physicist's queue).
    pub unmatched: bool,
    pub case_id: Option<CaseId>,
    /// Only reports linked to a case of this patient.
    pub patient_id: Option<PatientId>,
    /// Reports whose study started in [from, until).
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
    /// Leave each report's extraction (`extracted`, its every irradiation event) unread: sums
    /// and statistics over a year's thousands of reports need only their totals.
    pub totals_only: bool,
}

/// What the event log records for a link change.
#[derive(Serialize)]
struct LinkEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    case_id: Option<CaseId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basis: Option<LinkBasis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unmatched_reason: Option<&'a str>,
}

/// A stored report's columns, its extraction read as `$data`.
macro_rules! report_columns {
    ($data:literal) => {
        concat!(
            "sop_instance_uid, study_instance_uid, accession_number, patient_id, performed_at, \
             received_at, source, device, operator, case_id, link_basis, unmatched_reason, link_version, totals, ",
            $data,
            ", (SELECT patient_id FROM cases WHERE cases.id = dose_reports.case_id) AS case_patient_id"
        )
    };
}

pub(crate) const REPORT_COLUMNS: &str = report_columns!("data");

/// [`REPORT_COLUMNS`] without the extraction (see [`DoseReportFilter::totals_only`]).
const REPORT_TOTALS_COLUMNS: &str = report_columns!("'null' AS data");

pub(crate) fn stored_report(row: &AnyRow) -> Result<StoredDoseReport, StoreError> {
    let optional = |column: &str| row.try_get::<Option<String>, _>(column);
    let case_id = optional("case_id")?
        .map(|id| id.parse().map_err(StoreError::Corrupt))
        .transpose()?;
    let case_patient_id = optional("case_patient_id")?
        .map(|id| id.parse().map_err(StoreError::Corrupt))
        .transpose()?;
    let link_basis = optional("link_basis")?
        .map(|b| serde_json::from_value(serde_json::Value::String(b)))
        .transpose()?;
    Ok(StoredDoseReport {
        sop_instance_uid: text(row, "sop_instance_uid")?,
        study_instance_uid: text(row, "study_instance_uid")?,
        accession_number: optional("accession_number")?,
        patient_id: optional("patient_id")?,
        performed_at: optional("performed_at")?
            .map(|t| parse_ts(&t))
            .transpose()?,
        received_at: parse_ts(&text(row, "received_at")?)?,
        source: text(row, "source")?,
        device: text(row, "device")?,
        operator: optional("operator")?,
        case_id,
        case_patient_id,
        link_basis,
        unmatched_reason: optional("unmatched_reason")?,
        link_version: row.try_get::<i64, _>("link_version")?.max(0) as u64,
        totals: serde_json::from_str(&text(row, "totals")?)?,
        extracted: serde_json::from_str(&text(row, "data")?)?,
    })
}

/// When the patient was in the room: the recorded times, else the booking.
fn room_time(case: &Case) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let booking = case.booking.as_ref().map(|b| (b.start, b.end.max(b.start)));
    match (case.procedure_started_at, case.procedure_completed_at) {
        (Some(start), Some(end)) => Some((start, end.max(start))),
        (Some(start), None) => Some((start, booking.map_or(start, |b| b.1.max(start)))),
        _ => booking,
    }
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
            "INSERT INTO dose_reports (sop_instance_uid, study_instance_uid, accession_number, patient_id, study_date, \
             received_at, source, data, performed_at, device, totals, unmatched_reason, operator) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (sop_instance_uid) DO NOTHING",
        )
        .bind(report.sop_instance_uid.clone())
        .bind(report.study_instance_uid.clone())
        .bind(report.accession_number.clone())
        .bind(report.patient_id.clone())
        .bind(report.study_date.clone())
        .bind(ts(at))
        .bind(report.source.clone())
        .bind(serde_json::to_string(&report.data)?)
        .bind(report.keys().study_started().map(ts))
        .bind(report.device.clone())
        .bind(serde_json::to_string(&report.totals)?)
        .bind("not yet linked".to_string())
        .bind(report.operator.clone())
        .execute(&mut *self.write_conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn dose_report(&self, sop: &str) -> Result<Option<StoredDoseReport>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REPORT_COLUMNS} FROM dose_reports WHERE sop_instance_uid = $1"
        ))
        .bind(sop.to_string())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.as_ref().map(stored_report).transpose()
    }

    /// The first page of stored reports (see [`Store::dose_reports_page`]).
    pub async fn dose_reports(
        &self,
        scope: &RowScope,
        filter: &DoseReportFilter,
    ) -> Result<Vec<StoredDoseReport>, StoreError> {
        Ok(self.dose_reports_page(scope, filter, None).await?.items)
    }

    /// A page of the reports `scope` may see, the newest study first, with the total.
    pub async fn dose_reports_page(
        &self,
        scope: &RowScope,
        filter: &DoseReportFilter,
        after: Option<&Cursor>,
    ) -> Result<Page<StoredDoseReport>, StoreError> {
        let mut params = Vec::new();
        let mut conditions: Vec<String> =
            condition(scope, Rows::OfCase("dose_reports.case_id"), &mut params)
                .into_iter()
                .collect();
        if filter.unmatched {
            conditions.push("case_id IS NULL".to_string());
        }
        if let Some(case_id) = filter.case_id {
            params.push(case_id.to_string());
            conditions.push(format!("case_id = ${}", params.len()));
        }
        if let Some(patient) = filter.patient_id {
            params.push(patient.to_string());
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM cases pc WHERE pc.id = dose_reports.case_id AND pc.patient_id = ${})",
                params.len()
            ));
        }
        if let Some(from) = filter.from {
            params.push(ts(from));
            conditions.push(format!(
                "COALESCE(performed_at, received_at) >= ${}",
                params.len()
            ));
        }
        if let Some(until) = filter.until {
            params.push(ts(until));
            conditions.push(format!(
                "COALESCE(performed_at, received_at) < ${}",
                params.len()
            ));
        }
        let limit = if filter.limit == 0 {
            1000
        } else {
            filter.limit.min(100_000)
        } as usize;
        let order = Order {
            key: "COALESCE(performed_at, received_at)",
            id: "sop_instance_uid",
            descending: true,
            numeric: false,
        };
        let decode = |rows: &[sqlx::any::AnyRow]| rows.iter().map(stored_report).collect();
        self.page(
            PagedQuery {
                from: "dose_reports",
                columns: if filter.totals_only {
                    REPORT_TOTALS_COLUMNS
                } else {
                    REPORT_COLUMNS
                },
                order,
                conditions,
                params,
            },
            after,
            limit,
            decode,
        )
        .await
    }

    /// A case's reports in the order they arrived (later ones of a study supersede earlier).
    pub async fn case_dose_reports(
        &self,
        case_id: CaseId,
    ) -> Result<Vec<StoredDoseReport>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {REPORT_COLUMNS} FROM dose_reports WHERE case_id = $1 ORDER BY received_at, sop_instance_uid"
        ))
        .bind(case_id.to_string())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter().map(stored_report).collect()
    }

    /// The cases a report could belong to: any with its accession number, any booked with its
    /// study (the worklist's) or already holding it, and every open or completed case of a
    /// patient with its patient ID as MRN.
    pub async fn dose_link_candidates(
        &self,
        keys: &ReportKeys,
    ) -> Result<Vec<CaseCandidate>, StoreError> {
        let rows = sqlx::query(
            // Each way of matching is its own indexed lookup: an OR across the join would read
            // every case of the department for every report.
            "SELECT c.data AS data, p.mrn AS mrn FROM cases c JOIN patients p ON p.id = c.patient_id \
             WHERE c.id IN ( \
                SELECT id FROM cases WHERE accession_number = $1 \
                UNION SELECT pc.id FROM patients pp JOIN cases pc ON pc.patient_id = pp.id WHERE pp.mrn = $2 \
                UNION SELECT id FROM cases WHERE study_instance_uid = $3 \
                UNION SELECT case_id FROM dose_reports WHERE study_instance_uid = $3 AND case_id IS NOT NULL \
                UNION SELECT case_id FROM performed_steps WHERE study_instance_uid = $3 AND case_id IS NOT NULL)",
        )
        .bind(keys.accession_number.clone().unwrap_or_default())
        .bind(keys.patient_id.clone().unwrap_or_default())
        .bind(keys.study_instance_uid.clone())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut candidates = Vec::new();
        for row in &rows {
            let case: Case = serde_json::from_str(&text(row, "data")?)?;
            if matches!(case.state, CaseState::Declined | CaseState::Cancelled) {
                continue;
            }
            let studies = sqlx::query(
                "SELECT study_instance_uid FROM dose_reports WHERE case_id = $1 \
                 UNION SELECT study_instance_uid FROM performed_steps \
                 WHERE case_id = $1 AND study_instance_uid IS NOT NULL",
            )
            .bind(case.id.to_string())
            .fetch_all(&mut *self.conn().await?)
            .await?;
            let mut study_instance_uids: Vec<String> = studies
                .iter()
                .map(|r| text(r, "study_instance_uid"))
                .collect::<Result<_, _>>()?;
            study_instance_uids.extend(case.study_instance_uid.clone());
            candidates.push(CaseCandidate {
                case_id: case.id,
                mrn: text(row, "mrn")?,
                accession_number: case.accession_number.clone(),
                study_instance_uids,
                room_time: room_time(&case),
            });
        }
        Ok(candidates)
    }

    /// Whether the keys' accession number or study is one Seldinger gave at a booking (any
    /// case, open or not) or heard in a performed step: such a report is linked by them or not
    /// at all (`ReportKeys::booked_study`).
    pub async fn is_booked_study(&self, keys: &ReportKeys) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM cases WHERE accession_number = $1 OR study_instance_uid = $2 \
             UNION ALL SELECT 1 AS found FROM performed_steps WHERE study_instance_uid = $2 LIMIT 1",
        )
        .bind(keys.accession_number.clone().unwrap_or_default())
        .bind(keys.study_instance_uid.clone())
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row.is_some())
    }

    /// Records a link change for a report at `expected_version` of its link: an event, the
    /// report's current link, and the withdrawal of the case's tasks it no longer supports
    /// (`withdrawn`, as they are to be stored), in one transaction. A stale version is refused.
    pub async fn record_dose_link(
        &self,
        sop: &str,
        expected_version: u64,
        outcome: &LinkOutcome,
        meta: &EventMeta,
        withdrawn: &[seldinger_domain::followup::FollowUpTask],
        audit: &[AuditEntry],
    ) -> Result<(), StoreError> {
        let (case_id, basis, reason) = match outcome {
            LinkOutcome::Linked { case_id, basis } => (Some(*case_id), Some(*basis), None),
            LinkOutcome::Unmatched { reason } => (None, None, Some(reason.as_str())),
        };
        let basis_name = basis
            .map(|b| serde_json::to_value(b).map(|v| v.as_str().unwrap_or_default().to_string()))
            .transpose()?;
        let kind = if case_id.is_some() {
            "linked"
        } else {
            "unmatched"
        };
        let mut conn = self.write_conn().await?;
        let mut tx = self.begin(&mut conn).await?;
        let append = append_event(
            &mut tx,
            Stream::DoseReport,
            sop,
            expected_version + 1,
            kind,
            meta,
            &LinkEvent {
                case_id,
                basis,
                unmatched_reason: reason,
            },
        )
        .await;
        if let Err(StoreError::Conflict { .. }) = append {
            tx.rollback().await?;
            drop(conn);
            return Err(self.stale_link(sop, expected_version).await);
        }
        append?;
        let result = sqlx::query(
            "UPDATE dose_reports SET case_id = $1, link_basis = $2, unmatched_reason = $3, link_version = $4 \
             WHERE sop_instance_uid = $5 AND link_version = $6",
        )
        .bind(case_id.map(|c| c.to_string()))
        .bind(basis_name)
        .bind(reason.map(str::to_string))
        .bind((expected_version + 1) as i64)
        .bind(sop.to_string())
        .bind(expected_version as i64)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            tx.rollback().await?;
            drop(conn);
            return Err(self.stale_link(sop, expected_version).await);
        }
        for task in withdrawn {
            // A failure drops the transaction, which rolls the link back with it.
            crate::followup::update_follow_up_task(
                &mut tx,
                task,
                "withdrawn",
                &task.withdrawn,
                meta,
            )
            .await?;
        }
        crate::access::insert_audit_all(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn stale_link(&self, sop: &str, expected: u64) -> StoreError {
        match self.dose_report(sop).await {
            Ok(Some(report)) => StoreError::Conflict {
                what: format!("the link of dose report {sop}"),
                expected,
                current: report.link_version,
            },
            Ok(None) => StoreError::NotFound(format!("dose report {sop}")),
            Err(e) => e,
        }
    }

    /// Links a stored report by the matching rules (accession, study, patient and room time) and
    /// returns the outcome. A report already linked is left as it is.
    pub async fn link_dose_report(
        &self,
        sop: &str,
        meta: &EventMeta,
        station: Option<&str>,
    ) -> Result<Option<LinkOutcome>, StoreError> {
        let Some(report) = self.dose_report(sop).await? else {
            return Err(StoreError::NotFound(format!("dose report {sop}")));
        };
        if report.case_id.is_some() {
            return Ok(None);
        }
        let keys = ReportKeys {
            accession_number: report.accession_number.clone(),
            study_instance_uid: report.study_instance_uid.clone(),
            patient_id: report.patient_id.clone(),
            study_date: report.performed_at.map(|t| t.format("%Y%m%d").to_string()),
            study_time: report.performed_at.map(|t| t.format("%H%M%S").to_string()),
            booked_study: false,
        };
        let keys = ReportKeys {
            booked_study: self.is_booked_study(&keys).await?,
            ..keys
        };
        let candidates = self.dose_link_candidates(&keys).await?;
        let mut outcome = seldinger_domain::dose_link::match_report(&keys, &candidates);
        if let (LinkOutcome::Linked { case_id, .. }, Some(station)) = (&outcome, station) {
            if let Some(reason) = self.held_for_physicist(*case_id, station, &report).await? {
                outcome = LinkOutcome::Unmatched { reason };
            }
        }
        if let LinkOutcome::Unmatched { reason } = &outcome {
            if report.unmatched_reason.as_deref() == Some(reason.as_str()) {
                return Ok(Some(outcome));
            }
        }
        self.record_dose_link(sop, report.link_version, &outcome, meta, &[], &[])
            .await?;
        Ok(Some(outcome))
    }

    /// Why a report an imaging system sent for `case_id` waits for the physicist instead of
    /// counting: the system is not one of the room the case is booked in, or the report would
    /// replace (same study and device) what another system sent for the case.
    async fn held_for_physicist(
        &self,
        case_id: CaseId,
        station: &str,
        report: &StoredDoseReport,
    ) -> Result<Option<String>, StoreError> {
        let held = |why: String| Ok(Some(format!("{why}; held for the physicist")));
        let Some(case) = self.case(case_id).await? else {
            return held(format!("sent by {station} for a case that cannot be read"));
        };
        let rooms = self.rooms().await?;
        if let Some(why) = seldinger_domain::station_outside_room(&case, &rooms, station) {
            return held(why);
        }
        for earlier in self.case_dose_reports(case_id).await? {
            let replaced = earlier.study_instance_uid == report.study_instance_uid
                && earlier.device == report.device;
            match sending_station(&earlier.source) {
                Some(from) if replaced && from != station => {
                    return held(format!(
                        "it would replace the dose {from} sent for this case with one sent by {station}"
                    ))
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Link history of a report, oldest first.
    pub async fn dose_link_history(
        &self,
        sop: &str,
    ) -> Result<Vec<crate::RecordedEvent>, StoreError> {
        self.history_of(Stream::DoseReport, sop).await
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
            .execute(&mut *self.write_conn().await?)
            .await?;
        Ok(())
    }

    /// Quarantined files: (source, reason), oldest first.
    pub async fn dose_quarantine(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT source, reason FROM dose_quarantine ORDER BY seq")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter()
            .map(|r| Ok((text(r, "source")?, text(r, "reason")?)))
            .collect()
    }
}

/// The station a report came from over DICOM (`C-STORE from ANGIO1 at …`); none for a file.
fn sending_station(source: &str) -> Option<&str> {
    source
        .strip_prefix("C-STORE from ")
        .and_then(|rest| rest.split(" at ").next())
}

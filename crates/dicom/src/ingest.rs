//! One path for every dose report, whether from `seldinger dose import` or the C-STORE listener:
//! read, store durably, link to its case, and create the follow-up the dose asks for.
//!
//! The store comes first and alone decides the answer to the sender: linking and alerting run
//! after the report is committed, and a failure there leaves the report stored and in the
//! unmatched queue rather than lost.

use crate::rdsr::{parse_bytes, parse_dataset, DoseReport, RdsrError};
use chrono::{DateTime, Utc};
use seldinger_domain::dose_link::LinkOutcome;
use seldinger_domain::followup::FollowUpTask;
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::{Actor, EventMeta};
use seldinger_store::{NewDoseReport, Store, StoreError};

/// Largest file kept in quarantine (the reason is always kept).
pub const QUARANTINE_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Who the log names for automatic linking and alerts.
pub const INGEST_ACTOR: &str = "system:dose-ingest";

/// What happened to one report.
#[derive(Debug)]
pub enum Ingested {
    Stored {
        sop_instance_uid: String,
        link: Option<LinkOutcome>,
        tasks: Vec<FollowUpTask>,
    },
    /// The same SOP instance was stored before: acknowledged, not duplicated.
    AlreadyStored { sop_instance_uid: String },
    /// Not a readable dose report: kept with the reason.
    Quarantined { reason: String },
}

fn device(report: &DoseReport) -> String {
    [&report.manufacturer, &report.model, &report.station_name]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn new_dose_report(
    report: &DoseReport,
    source: &str,
) -> Result<NewDoseReport, serde_json::Error> {
    Ok(NewDoseReport {
        sop_instance_uid: report.sop_instance_uid.clone(),
        study_instance_uid: report.study_instance_uid.clone(),
        accession_number: report.accession_number.clone(),
        patient_id: report.patient_id.clone(),
        study_date: report.study_date.clone(),
        study_time: report.study_time.clone(),
        device: device(report),
        operator: report.operator().map(str::to_string),
        totals: report.totals(),
        source: source.to_string(),
        data: serde_json::to_value(report)?,
    })
}

/// The department's ingest settings.
pub struct Ingest<'a> {
    pub store: &'a Store,
    pub reference: &'a SafetyReference,
    /// The imaging system sending (the association's calling AE title); none for a file an
    /// administrator imports. A report from a system not of its case's room, or that would
    /// replace what another system reported for the case, waits for the physicist.
    pub station: Option<&'a str>,
}

impl Ingest<'_> {
    /// Bytes of a DICOM file.
    pub async fn file_bytes(
        &self,
        bytes: &[u8],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Ingested, StoreError> {
        self.parsed(parse_bytes(bytes), bytes, source, now).await
    }

    /// A data set as a C-STORE delivers it, in its negotiated transfer syntax.
    pub async fn dataset(
        &self,
        bytes: &[u8],
        transfer_syntax_uid: &str,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Ingested, StoreError> {
        self.parsed(
            parse_dataset(bytes, transfer_syntax_uid),
            bytes,
            source,
            now,
        )
        .await
    }

    async fn parsed(
        &self,
        parsed: Result<DoseReport, RdsrError>,
        bytes: &[u8],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Ingested, StoreError> {
        match parsed {
            Ok(report) => self.report(&report, source, now).await,
            Err(reason) => {
                let reason = reason.to_string();
                let kept = (bytes.len() <= QUARANTINE_MAX_BYTES).then_some(bytes);
                self.store
                    .quarantine_dose_file(source, &reason, kept, now)
                    .await?;
                Ok(Ingested::Quarantined { reason })
            }
        }
    }

    /// A report already read: store, then link and alert.
    pub async fn report(
        &self,
        report: &DoseReport,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Ingested, StoreError> {
        let new = new_dose_report(report, source)?;
        if !self.store.store_dose_report(&new, now).await? {
            return Ok(Ingested::AlreadyStored {
                sop_instance_uid: new.sop_instance_uid,
            });
        }
        let (link, tasks) = match self.link_and_alert(&new.sop_instance_uid, now).await {
            Ok(done) => done,
            Err(error) => {
                // Stored is what matters to the sender; the report waits in the unmatched queue.
                tracing::warn!(sop = %new.sop_instance_uid, %error, "dose report stored but not linked");
                (None, Vec::new())
            }
        };
        Ok(Ingested::Stored {
            sop_instance_uid: new.sop_instance_uid,
            link,
            tasks,
        })
    }

    async fn link_and_alert(
        &self,
        sop: &str,
        now: DateTime<Utc>,
    ) -> Result<(Option<LinkOutcome>, Vec<FollowUpTask>), StoreError> {
        let meta = EventMeta {
            actor: Actor::parse(INGEST_ACTOR).map_err(StoreError::Config)?,
            at: now,
            reason: None,
        };
        let link = self
            .store
            .link_dose_report(sop, &meta, self.station)
            .await?;
        let tasks = match &link {
            Some(LinkOutcome::Linked { case_id, .. }) => self
                .store
                .assess_case_dose(*case_id, self.reference, &meta)
                .await?
                .map(|(_, tasks)| tasks)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok((link, tasks))
    }
}

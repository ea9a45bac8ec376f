//! Reading the audit trail: what a reader without patient scope may see of it. Quality leads and
//! administrators review who did what; neither may identify a patient from it.

use crate::{App, AppError, Audit, Principal};
use seldinger_domain::access::{Permission, Role};
use seldinger_store::{AuditEntry, AuditFilter, Cursor, Page};
use sha2::{Digest, Sha256};

/// Resources whose id names a patient's record (a case id is as identifying as a patient id to
/// anyone who can look it up).
const PATIENT_BOUND: &[&str] = &[
    "patient",
    "case",
    "referral",
    "lab_result",
    "medication",
    "follow_up_task",
    "device",
    "adverse_event",
    "procedure_report",
    "mm_review",
    "mm_review_deidentified",
    "case_dose",
    "patient_dose",
];

impl App {
    /// Audit rows matching `filter`, as `who` may see them: readers who may not see every patient
    /// get a stable pseudonym (keyed per deployment) for each patient and patient-bound record
    /// instead of its id; a quality lead also gets no client addresses and no break-glass
    /// reasons (only that one was given). The read itself is on the trail.
    pub async fn audit_trail(
        &self,
        who: &Principal,
        filter: &AuditFilter,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page<AuditEntry>, AppError> {
        who.require(Permission::ReadAudit)?;
        let mut page = self.store.audit_page(filter, after, limit).await?;
        let note = Audit {
            action: "read",
            resource_type: "audit_log",
            resource_id: None,
            // Looking up one patient's trail is itself a look at that patient.
            patient_id: filter.patient_id.clone(),
            break_glass_reason: None,
            outcome: "allowed",
        };
        self.audit_reads(who, vec![note]).await?;
        if who.scope(Permission::ReadPatients).is_department() {
            return Ok(page);
        }
        let key = self.store.deployment_secret("audit_pseudonym_key").await?;
        let pseudonym = |kind: &str, id: &str| {
            let digest = Sha256::digest(format!("{key}:{id}").as_bytes());
            let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("{kind}-{hex}")
        };
        let deidentified = who.role == Role::QualityLead;
        for entry in &mut page.items {
            // Any record read about a patient is theirs: its id is as telling as theirs.
            let bound = entry.patient_id.is_some()
                || PATIENT_BOUND.contains(&entry.resource_type.as_str())
                || entry.resource_type == "dose_report";
            entry.patient_id = entry.patient_id.as_deref().map(|id| pseudonym("pt", id));
            if bound {
                entry.resource_id = entry.resource_id.as_deref().map(|id| pseudonym("rec", id));
            }
            if deidentified {
                entry.client_addr = String::new();
                entry.break_glass_reason = entry
                    .break_glass_reason
                    .as_ref()
                    .map(|_| "(reason given; not shown to this role)".to_string());
            }
        }
        Ok(page)
    }
}

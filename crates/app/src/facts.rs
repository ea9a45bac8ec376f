//! Labs and drugs on a patient's record: added, corrected with a reason, or withdrawn as entered
//! in error — each an event with the version check and its audit row in one commit.

use crate::{App, AppError, Audit, Principal};
use seldinger_domain::access::Permission;
use seldinger_domain::clinical::{check_correction, LabResult, Medication};
use seldinger_domain::patient::{Patient, PatientEvent};
use seldinger_domain::{EventMeta, PatientId};

/// What a correction does to one entry: replace it, or withdraw it (`None`).
#[derive(Debug, Clone)]
pub enum Correction {
    Medication(u64, Option<Medication>),
    Lab(u64, Option<LabResult>),
}

/// How a lab or drug write is kept: its audit action and resource, and the reason it carries.
struct FactWrite {
    action: &'static str,
    resource_type: &'static str,
    reason: Option<String>,
}

impl App {
    /// Adds a lab result or a drug (`fact` is the event that records it) to the patient's record.
    pub async fn record_fact(
        &self,
        who: &Principal,
        patient_id: PatientId,
        expected_version: u64,
        fact: PatientEvent,
    ) -> Result<Patient, AppError> {
        let patient = self.open_for_clinical_data(who, patient_id).await?;
        let resource_type = match fact {
            PatientEvent::LabResultRecorded { .. } => "lab_result",
            _ => "medication",
        };
        let write = FactWrite {
            action: "create",
            resource_type,
            reason: None,
        };
        self.write_fact(who, &patient, expected_version, &fact, write)
            .await
    }

    /// Records one lab result sent by another system (a FHIR Observation): on the record's
    /// current version, retried if someone else changes the record meanwhile. A result whose
    /// identifier was recorded already is refused as a duplicate. Returns its entry number.
    pub async fn record_lab_result(
        &self,
        who: &Principal,
        patient_id: PatientId,
        result: LabResult,
    ) -> Result<u64, AppError> {
        let fact = PatientEvent::LabResultRecorded { result };
        crate::interfaces::retrying(crate::interfaces::lost_race, || async {
            let patient = self.open_for_clinical_data(who, patient_id).await?;
            let write = FactWrite {
                action: "create",
                resource_type: "lab_result",
                reason: None,
            };
            self.write_fact(who, &patient, patient.version, &fact, write)
                .await
        })
        .await?;
        let PatientEvent::LabResultRecorded { result } = &fact else {
            return Err(AppError::NotFound("the recorded result".into()));
        };
        // The newest entry that is this result: its number is what a reader names.
        let entries = self.store.lab_result_entries(patient_id).await?;
        entries
            .iter()
            .filter(|(_, r)| r == result)
            .map(|(n, _)| *n)
            .max()
            .ok_or_else(|| AppError::NotFound("the recorded result".into()))
    }

    /// The lab result a sender's identifier names, if `who` may open its patient's record.
    pub async fn lab_result_by_identifier(
        &self,
        who: &Principal,
        identifier: &str,
    ) -> Result<Option<(PatientId, u64)>, AppError> {
        let Some((patient, entry)) = self.store.lab_result_by_identifier(identifier).await? else {
            return Ok(None);
        };
        self.open_patient_record(who, patient).await?;
        Ok(Some((patient, entry)))
    }

    /// Corrects or withdraws one lab or drug entry, with the reason kept in the history.
    pub async fn correct_fact(
        &self,
        who: &Principal,
        patient_id: PatientId,
        expected_version: u64,
        correction: Correction,
        reason: Option<&str>,
    ) -> Result<Patient, AppError> {
        let patient = self.open_for_clinical_data(who, patient_id).await?;
        if patient.version != expected_version {
            // Checked before the entry: an entry someone else just withdrew is a stale page, not bad input.
            return Err(AppError::stale(
                format!("patient {}", patient.id),
                expected_version,
                patient.version,
            ));
        }
        let (event, reason, resource_type) = match correction {
            Correction::Medication(entry, replacement) => {
                let current = self.store.medication_entries(patient.id).await?;
                let reason =
                    check_correction("drug", entry, &current, replacement.as_ref(), reason)?;
                let event = match replacement {
                    Some(medication) => PatientEvent::MedicationCorrected { entry, medication },
                    None => PatientEvent::MedicationEnteredInError { entry },
                };
                (event, reason, "medication")
            }
            Correction::Lab(entry, replacement) => {
                let current = self.store.lab_result_entries(patient.id).await?;
                let reason =
                    check_correction("lab", entry, &current, replacement.as_ref(), reason)?;
                let event = match replacement {
                    Some(result) => PatientEvent::LabResultCorrected { entry, result },
                    None => PatientEvent::LabResultEnteredInError { entry },
                };
                (event, reason, "lab_result")
            }
        };
        let write = FactWrite {
            action: "update",
            resource_type,
            reason: Some(reason),
        };
        self.write_fact(who, &patient, expected_version, &event, write)
            .await
    }

    /// The patient whose labs and drugs `who` records: the role must record clinical data, and
    /// the patient must be one they may see (those roles see the whole department).
    async fn open_for_clinical_data(
        &self,
        who: &Principal,
        patient_id: PatientId,
    ) -> Result<Patient, AppError> {
        who.require(Permission::RecordClinicalData)?;
        let (patient, _) = self.open_patient_record(who, patient_id).await?;
        Ok(patient)
    }

    async fn write_fact(
        &self,
        who: &Principal,
        patient: &Patient,
        expected_version: u64,
        fact: &PatientEvent,
        write: FactWrite,
    ) -> Result<Patient, AppError> {
        let meta = EventMeta {
            actor: who.actor()?,
            at: self.clock.now(),
            reason: write.reason,
        };
        let audit = who.audit_entry(
            meta.at,
            Audit::of(write.action, write.resource_type, patient.id, patient.id),
        );
        Ok(self
            .store
            .record_patient_fact(patient.id, expected_version, fact, &meta, &[audit])
            .await?)
    }
}

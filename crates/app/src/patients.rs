//! Patients and referrals: opening a record within scope, registering and updating a patient,
//! and filing a referral (which opens its case).

use crate::{App, AppError, Audit, Opened, Principal};
use seldinger_domain::access::{Permission, RowScope};
use seldinger_domain::clinical::LabResult;
use seldinger_domain::patient::{Patient, PatientDetails, PatientEvent};
use seldinger_domain::referral::ReferralDetails;
use seldinger_domain::{Case, CaseId, EventMeta, PatientId, Referral, ReferralId};
use seldinger_store::{Record, RecordedEvent, StoreError};

impl App {
    /// The patient's whole record (details, labs, drugs, history), if `who` may see it: the
    /// department's roles, or a referring clinician for a patient they registered. Filing a
    /// referral opens that referral's case, not the rest of the record (docs/roles.md).
    pub async fn open_patient_record(
        &self,
        who: &Principal,
        id: PatientId,
    ) -> Result<(Patient, Opened), AppError> {
        let patient = self
            .store
            .patient(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("patient {id}")))?;
        self.open_loaded_patient(who, patient).await
    }

    /// [`Self::open_patient_record`] for a patient already read (by MRN, say): the same check,
    /// without reading the record again.
    pub(crate) async fn open_loaded_patient(
        &self,
        who: &Principal,
        patient: Patient,
    ) -> Result<(Patient, Opened), AppError> {
        let what = format!("patient {}", patient.id);
        let opened = self
            .open(
                who,
                Permission::ReadPatients,
                Record::PatientRecord,
                &patient.id.to_string(),
                &what,
            )
            .await?;
        Ok((patient, opened))
    }

    /// Every version of a patient's record, oldest first, each with the event that made it, if
    /// `who` may open the record (as [`Self::open_patient_record`]).
    pub async fn patient_versions(
        &self,
        who: &Principal,
        id: PatientId,
    ) -> Result<(Vec<(Patient, RecordedEvent)>, Opened), AppError> {
        let (_, opened) = self.open_patient_record(who, id).await?;
        let events = self.store.patient_history(id).await?;
        let mut folded: Vec<PatientEvent> = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        for recorded in events {
            let event: PatientEvent = serde_json::from_value(recorded.payload.clone())
                .map_err(|e| StoreError::Corrupt(format!("patient {id} event: {e}")))?;
            folded.push(event);
            if let Some(patient) = Patient::replay(id, &folded) {
                versions.push((patient, recorded));
            }
        }
        Ok((versions, opened))
    }

    /// A patient's current lab results (newest first, each with its entry number), if `who` may
    /// open the record.
    pub async fn lab_results_of_patient(
        &self,
        who: &Principal,
        id: PatientId,
    ) -> Result<(Patient, Vec<(u64, LabResult)>, Opened), AppError> {
        let (patient, opened) = self.open_patient_record(who, id).await?;
        let results = self.store.lab_result_entries(id).await?;
        Ok((patient, results, opened))
    }

    /// A patient's current drugs (each with its entry number), if `who` may open the record.
    pub async fn medications_of_patient(
        &self,
        who: &Principal,
        id: PatientId,
    ) -> Result<
        (
            Patient,
            Vec<(u64, seldinger_domain::clinical::Medication)>,
            Opened,
        ),
        AppError,
    > {
        let (patient, opened) = self.open_patient_record(who, id).await?;
        let drugs = self.store.medication_entries(id).await?;
        Ok((patient, drugs, opened))
    }

    /// Whether a patient with this id is registered (a referral may be filed for any).
    pub async fn patient_exists(&self, id: PatientId) -> Result<bool, AppError> {
        Ok(self.store.patient(id).await?.is_some())
    }

    /// When each record of a kind (`patient`, `referral`, `case`) last changed, by id: the time
    /// of its latest event.
    pub async fn last_changed(
        &self,
        kind: &str,
        ids: &[impl ToString],
    ) -> Result<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>, AppError> {
        Ok(self.store.last_changed(kind, ids).await?)
    }

    /// Registers a patient. An MRN already registered at the site is refused, and the refused
    /// attempt is on the audit trail like the registration would have been.
    pub async fn register_patient(
        &self,
        who: &Principal,
        details: PatientDetails,
    ) -> Result<Patient, AppError> {
        who.require(Permission::RegisterPatients)?;
        let meta = EventMeta {
            actor: who.actor()?,
            at: self.clock.now(),
            reason: None,
        };
        let id = PatientId(uuid::Uuid::new_v4());
        let audit = who.audit_entry(meta.at, Audit::of("create", "patient", id, id));
        let (site, mrn) = (details.site.clone(), details.mrn.clone());
        match self
            .store
            .register_patient(id, details, &meta, &[audit])
            .await
        {
            Err(StoreError::Duplicate(detail)) => {
                let existing = self
                    .store
                    .search_patients(&RowScope::Department, Some(mrn.as_str()), None, 50)
                    .await?
                    .into_iter()
                    .find(|p| p.details.site == site)
                    .map(|p| p.id.to_string());
                let refused = Audit {
                    action: "create",
                    resource_type: "patient",
                    resource_id: None,
                    patient_id: existing,
                    break_glass_reason: None,
                    outcome: "denied",
                };
                self.audit_reads(who, vec![refused]).await?;
                Err(StoreError::Duplicate(detail).into())
            }
            other => Ok(other?),
        }
    }

    /// Replaces a patient's details, if nobody changed them since `expected_version`.
    pub async fn update_patient(
        &self,
        who: &Principal,
        id: PatientId,
        expected_version: u64,
        details: PatientDetails,
    ) -> Result<Patient, AppError> {
        self.replace_patient_details(who, id, expected_version, details, false)
            .await
    }

    /// Replaces the details; the hospital visit too only when `from_pas` (it is the patient
    /// administration system's: an edit by hand keeps it).
    pub(crate) async fn replace_patient_details(
        &self,
        who: &Principal,
        id: PatientId,
        expected_version: u64,
        details: PatientDetails,
        from_pas: bool,
    ) -> Result<Patient, AppError> {
        who.require(Permission::UpdatePatients)?;
        let (current, _) = self.open_patient_record(who, id).await?;
        self.replace_details_of(who, current, expected_version, details, from_pas)
            .await
    }

    /// [`Self::replace_patient_details`] of a record `who` has already opened.
    pub(crate) async fn replace_details_of(
        &self,
        who: &Principal,
        current: Patient,
        expected_version: u64,
        mut details: PatientDetails,
        from_pas: bool,
    ) -> Result<Patient, AppError> {
        who.require(Permission::UpdatePatients)?;
        let id = current.id;
        if !from_pas {
            details.visit = current.details.visit.clone();
        }
        let meta = EventMeta {
            actor: who.actor()?,
            at: self.clock.now(),
            reason: None,
        };
        let audit = who.audit_entry(meta.at, Audit::of("update", "patient", id, id));
        Ok(self
            .store
            .update_loaded_patient(&current, expected_version, details, &meta, &[audit])
            .await?)
    }

    /// Files a referral for `patient_id` and opens its case, audited in the same commit. Anyone
    /// who may refer may refer any registered patient (that is how patients reach IR); what the
    /// referrer then sees is this referral and its case, nothing more of the record.
    pub async fn file_referral(
        &self,
        who: &Principal,
        patient_id: PatientId,
        details: ReferralDetails,
    ) -> Result<(Referral, Case), AppError> {
        if let Some(placer) = &details.placer_order {
            if self
                .order_namespaces
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&placer.authority))
            {
                return Err(AppError::invalid(
                    "placer_order",
                    format!(
                        "order numbers of {} are issued by the hospital's order system, which sends its orders over HL7: a referral filed here cannot take one (give it the referring system's own identifier)",
                        placer.authority
                    ),
                ));
            }
        }
        self.file_referral_for(who, patient_id, details, None).await
    }

    /// Files a referral on behalf of `referrer` (an order an interface files for the clinician
    /// who placed it), or of `who` when none is named.
    pub(crate) async fn file_referral_for(
        &self,
        who: &Principal,
        patient_id: PatientId,
        details: ReferralDetails,
        referrer: Option<&str>,
    ) -> Result<(Referral, Case), AppError> {
        who.require(Permission::CreateReferrals)?;
        let now = self.clock.now();
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let referral = Referral {
            id: ReferralId(uuid::Uuid::new_v4()),
            patient_id,
            case_id: CaseId(uuid::Uuid::new_v4()),
            received_at: now,
            details,
            version: 1,
        };
        let (case, opening) = Case::open(
            referral.case_id,
            patient_id,
            referral.id,
            referral.details.urgency,
            referral.details.requested_procedure.clone(),
            &meta,
        );
        let audit = who.audit_entry(
            now,
            Audit::of("create", "referral", referral.id, patient_id),
        );
        self.store
            .create_referral_for(
                &referral,
                &case,
                &opening,
                &meta,
                referrer.unwrap_or(&who.username),
                &[audit],
            )
            .await?;
        Ok((referral, case))
    }
}

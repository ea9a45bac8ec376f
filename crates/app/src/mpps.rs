//! Performed procedure steps reported by the rooms' imaging systems (DICOM MPPS): each is
//! kept, linked to its case (exactly by the worklist's accession number or study; by patient and
//! room time only for a step that did not come from the worklist), and what it means for the
//! case decided by the domain (`performed_step::effect_on_case`): a completed step ends the
//! procedure of a case in the room; anything that does not fit goes on the review list with
//! the reason. The step, its message and the case's change are one commit, made before the
//! modality is answered.

use crate::cases::CaseEventRequest;
use crate::{App, AppError, Audit, Principal};
use chrono::{DateTime, Utc};
use seldinger_domain::access::Permission;
use seldinger_domain::dose_link::{match_report, LinkOutcome, ReportKeys};
use seldinger_domain::event::EventMeta;
use seldinger_domain::lifecycle::CaseEvent;
use seldinger_domain::performed_step::{
    effect_on_case, CaseEffect, PerformedStep, StepRefusal, StepReport, StepStatus,
};
use seldinger_domain::station_outside_room;
use seldinger_store::{StepMessage, StoreError};

/// A step on the review list, with what Seldinger knows of its case.
#[derive(Debug, Clone)]
pub struct StepToReview {
    pub step: PerformedStep,
    pub case: Option<seldinger_domain::lifecycle::Case>,
    pub patient: Option<seldinger_domain::patient::Patient>,
}

/// Why a step's message was not taken.
#[derive(Debug)]
pub enum StepError {
    /// What it says is not allowed (missing attributes, a final step changed).
    Refused(StepRefusal),
    /// An N-CREATE for a step that exists.
    Duplicate,
    /// An N-SET for a step never created.
    NoSuchStep,
    App(AppError),
}

impl From<AppError> for StepError {
    fn from(error: AppError) -> Self {
        StepError::App(error)
    }
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> Self {
        StepError::App(AppError::Store(error))
    }
}

impl App {
    /// An N-CREATE: the step began.
    pub async fn report_step_started(
        &self,
        who: &Principal,
        uid: &str,
        report: StepReport,
    ) -> Result<PerformedStep, StepError> {
        who.require(Permission::RecordPerformedSteps)?;
        if self.store.performed_step(uid).await?.is_some() {
            return Err(StepError::Duplicate);
        }
        let now = self.clock.now();
        let step = PerformedStep::create(uid, &report, now).map_err(StepError::Refused)?;
        self.place_step(who, step, StepMessage::Create, &report, now)
            .await
    }

    /// An N-SET: the step changed (its dose so far, or its end).
    pub async fn report_step_changed(
        &self,
        who: &Principal,
        uid: &str,
        report: StepReport,
    ) -> Result<PerformedStep, StepError> {
        who.require(Permission::RecordPerformedSteps)?;
        let Some(current) = self.store.performed_step(uid).await? else {
            return Err(StepError::NoSuchStep);
        };
        let now = self.clock.now();
        let step = current.set(&report, now).map_err(StepError::Refused)?;
        self.place_step(who, step, StepMessage::Set, &report, now)
            .await
    }

    /// Steps a person must look at (the review list), most recent first, with their case and
    /// patient where known; each one of a known patient is audited as read.
    pub async fn performed_steps_to_review(
        &self,
        who: &Principal,
        limit: u32,
    ) -> Result<Vec<StepToReview>, AppError> {
        who.require(Permission::RunProcedures)?;
        let mut shown = Vec::new();
        for step in self.store.performed_steps_to_review(limit).await? {
            let (case, patient) = match step.case_id {
                Some(case_id) => match self.open_case(who, Permission::ReadCases, case_id).await {
                    Ok((case, _)) => {
                        let patient = self.store.patient(case.patient_id).await?;
                        (Some(case), patient)
                    }
                    // Outside the viewer's scope: not shown.
                    Err(AppError::NotFound(_)) => continue,
                    Err(other) => return Err(other),
                },
                // Not yet anyone's case: what the modality sent is for the whole department.
                None if who.scope(Permission::RunProcedures).is_department() => (None, None),
                None => continue,
            };
            shown.push(StepToReview {
                step,
                case,
                patient,
            });
        }
        self.audit_reads(
            who,
            shown
                .iter()
                // A step not yet anyone's case still names a patient (as the modality knows
                // them): its read is on the trail too.
                .map(|s| match s.case.as_ref() {
                    Some(case) => Audit::of(
                        "read",
                        "performed_step",
                        &s.step.sop_instance_uid,
                        case.patient_id,
                    ),
                    None => Audit {
                        patient_id: None,
                        ..Audit::of("read", "performed_step", &s.step.sop_instance_uid, "")
                    },
                })
                .collect(),
        )
        .await?;
        Ok(shown)
    }

    /// Links the step, decides what it does to its case, and commits both.
    async fn place_step(
        &self,
        who: &Principal,
        mut step: PerformedStep,
        message: StepMessage,
        report: &StepReport,
        now: DateTime<Utc>,
    ) -> Result<PerformedStep, StepError> {
        if step.case_id.is_none() {
            self.link_step(&mut step).await?;
        }
        let mut complete = None;
        let mut patient = None;
        if let Some(case_id) = step.case_id {
            let (case, _) = self.open_case(who, Permission::ReadCases, case_id).await?;
            patient = Some(case.patient_id);
            let others_in_progress = self
                .store
                .performed_steps_of_case(case_id)
                .await?
                .iter()
                .any(|s| {
                    s.sop_instance_uid != step.sop_instance_uid
                        && s.status == StepStatus::InProgress
                });
            // A station speaks only for its own room: another room's system (or a forged
            // one) never moves the case.
            let rooms = self.store.rooms().await?;
            // The association's calling AE title, not what the step's data claims.
            let station = who.dicom_station().unwrap_or(&step.station_ae_title);
            let effect = match station_outside_room(&case, &rooms, station) {
                Some(why) => CaseEffect::Review(why),
                None => effect_on_case(&step, case.state, others_in_progress),
            };
            match effect {
                CaseEffect::Nothing => {}
                CaseEffect::CompleteProcedure => complete = Some(case),
                CaseEffect::Review(why) => step.review = Some(why),
            }
        }
        let batch = self.store.begin_batch().await?;
        let inside = self.in_batch(&batch);
        if let Some(case) = complete {
            let request = CaseEventRequest {
                case_id: case.id,
                expected_version: case.version,
                event: CaseEvent::CompleteProcedure,
                reason: Some(format!(
                    "imaging completed on {} (performed procedure step {})",
                    step.station_ae_title, step.step_id
                )),
            };
            match inside
                .apply_case_event_as(who, request, Permission::RecordPerformedSteps)
                .await
            {
                Ok(_) => {}
                // The database: nothing is kept, the modality is told to try again.
                Err(error @ AppError::Store(_)) => return Err(error.into()),
                Err(refused) => {
                    step.review = Some(format!(
                        "completed on {}, but the case was not moved: {refused}",
                        step.station_ae_title
                    ))
                }
            }
        }
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let audit: Vec<_> = step
            .case_id
            .zip(patient)
            .map(|(case_id, patient_id)| {
                who.audit_entry(
                    now,
                    Audit::of("record", "performed_step", case_id, patient_id),
                )
            })
            .into_iter()
            .collect();
        match inside
            .store
            .record_performed_step(&step, message, report, &meta, &audit)
            .await
        {
            // A second N-CREATE that raced the first past the look-up above.
            Err(StoreError::Duplicate(_)) if message == StepMessage::Create => {
                return Err(StepError::Duplicate)
            }
            other => other?,
        }
        batch.commit().await?;
        self.wake_senders();
        Ok(step)
    }

    /// Finds the step's case as a dose report's is found: by the worklist's accession number or
    /// study; by patient and room time only when the step did not come from the worklist.
    async fn link_step(&self, step: &mut PerformedStep) -> Result<(), StoreError> {
        let from_worklist = step.accession_number.is_some() || step.scheduled_step_id.is_some();
        let keys = ReportKeys {
            accession_number: step.accession_number.clone(),
            study_instance_uid: step.study_instance_uid.clone().unwrap_or_default(),
            patient_id: if from_worklist {
                None
            } else {
                step.patient_id.clone()
            },
            // The step's start is in UTC already; the keys read their date and time as UTC.
            study_date: Some(step.started_at.format("%Y%m%d").to_string()),
            study_time: Some(step.started_at.format("%H%M%S").to_string()),
            // A step from the worklist is linked by its study or not at all.
            booked_study: from_worklist,
        };
        let candidates = self.store.dose_link_candidates(&keys).await?;
        match match_report(&keys, &candidates) {
            LinkOutcome::Linked { case_id, basis } => {
                step.case_id = Some(case_id);
                step.link_basis = Some(basis);
            }
            LinkOutcome::Unmatched { reason } => {
                step.review = Some(if from_worklist {
                    format!("from the worklist, but {reason}")
                } else {
                    reason
                })
            }
        }
        Ok(())
    }
}

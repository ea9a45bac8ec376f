//! What the hospital's systems do through an interface (HL7 v2 today): name patients by site and
//! MRN, keep their details as the patient administration system says, and file laboratory reports
//! — plus the inbox every received message is kept in. The interface adapters parse and map;
//! these decide and write, with the same permissions, scope and audit as a person would.

use crate::{App, AppError, Audit, Principal};
use seldinger_domain::access::Permission;
use seldinger_domain::clinical::{lab_report_events, ReportedLab};
use seldinger_domain::lifecycle::{Case, CaseEvent, CaseState};
use seldinger_domain::patient::{DetailsPatch, Mrn, Patient, SiteCode};
use seldinger_domain::referral::{PlacerOrder, Referral, ReferralDetails};
use seldinger_domain::{EventMeta, PatientId};
use seldinger_store::{
    Cursor, Finish, InboundMessage, InboxFilter, InboxStatus, NewInboundMessage, Page,
    RefusedArrival, RefusedArrivals, StoreError,
};

/// How many times a write that lost a race with another writer is tried.
const ATTEMPTS: usize = 3;

/// What only the interface adapter that read a message can do with it again (the application
/// layer cannot read HL7): apply it once more, and show it with the offending field marked. The
/// binary wires it in ([`App::messages`]).
pub trait MessageHandler: Send + Sync {
    fn replay<'a>(
        &'a self,
        message: &'a InboundMessage,
        requested_by: &'a Principal,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Replayed, AppError>> + Send + 'a>>;

    fn show(&self, message: &InboundMessage) -> Shown;
}

/// A stored message as people read it: its text (segments on their own lines) and, for a
/// failure, where in that text the offending field is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub text: String,
    pub mark: Option<std::ops::Range<usize>>,
}

/// How a replay ended: the message's status now, and why when not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub status: InboxStatus,
    pub reason: Option<String>,
}

/// Another writer changed the record between this use case's read and its write.
pub(crate) fn lost_race(error: &StoreError) -> bool {
    matches!(error, StoreError::Conflict { .. })
}

/// ... or registered the same MRN meanwhile (then the next attempt updates it).
fn lost_race_or_registered_meanwhile(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Conflict { .. } | StoreError::Duplicate(_)
    )
}

/// Runs `attempt` again while it loses a race with another writer (`lost`), at most
/// [`ATTEMPTS`] times: one patient's messages are applied one at a time, but a person may be
/// editing the same record.
pub(crate) async fn retrying<T, Fut>(
    lost: fn(&StoreError) -> bool,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, AppError>
where
    Fut: std::future::Future<Output = Result<T, AppError>>,
{
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match attempt().await {
            Err(AppError::Store(e)) if lost(&e) => last = Some(e),
            other => return other,
        }
    }
    Err(last
        .map(AppError::Store)
        .unwrap_or_else(|| AppError::invalid("record", "could not be written")))
}

/// The audit line of an administrator's look at (or replay of) a received message.
fn message_note<'a>(action: &'a str, id: &str) -> Audit<'a> {
    Audit {
        action,
        resource_type: "hl7_message",
        resource_id: Some(id.to_string()),
        patient_id: None,
        break_glass_reason: None,
        outcome: "allowed",
    }
}

/// An order message acts only on an order of the patient it names: a change or cancellation
/// naming another patient (a mistyped order number, a misrouted message) changes nothing, and
/// says so without naming whose order it is.
fn same_patient(referral: &Referral, patient: PatientId) -> Result<(), AppError> {
    if referral.patient_id == patient {
        return Ok(());
    }
    let number = referral
        .details
        .placer_order
        .as_ref()
        .map(|p| p.number.clone())
        .unwrap_or_default();
    Err(AppError::invalid(
        "order",
        format!("order {number} is not this patient's order: the message's patient (PID-3) and the order do not match; nothing was changed"),
    ))
}

/// What an ADT message did to the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailsOutcome {
    Registered,
    Updated,
}

impl App {
    /// The patient at `site` with `mrn`, if `who` may read patients.
    pub async fn patient_by_mrn(
        &self,
        who: &Principal,
        site: &SiteCode,
        mrn: &Mrn,
    ) -> Result<Option<Patient>, AppError> {
        who.require(Permission::ReadPatients)?;
        let Some(mut patient) = self.store.patient_by_mrn(site, mrn).await? else {
            return Ok(None);
        };
        // A record merged away answers with the record it was merged into (a late message
        // under the old MRN lands on the patient).
        for _ in 0..8 {
            match patient.merged_into {
                Some(survivor) => match self.store.patient(survivor).await? {
                    Some(next) => patient = next,
                    None => break,
                },
                None => break,
            }
        }
        Ok(Some(self.open_loaded_patient(who, patient).await?.0))
    }

    /// The record at `site`/`mrn` itself, merged away or not.
    async fn record_at(
        &self,
        who: &Principal,
        (site, mrn): &(SiteCode, Mrn),
    ) -> Result<Option<Patient>, AppError> {
        who.require(Permission::ReadPatients)?;
        match self.store.patient_by_mrn(site, mrn).await? {
            Some(patient) => Ok(Some(self.open_loaded_patient(who, patient).await?.0)),
            None => Ok(None),
        }
    }

    /// Registers the patient at `site` with `mrn` from `patch`, or applies `patch` to the
    /// patient already registered there (HL7 ADT A01/A04/A08/A31): one event, one commit.
    pub async fn keep_patient_details(
        &self,
        who: &Principal,
        site: SiteCode,
        mrn: Mrn,
        patch: &DetailsPatch,
    ) -> Result<(Patient, DetailsOutcome), AppError> {
        retrying(lost_race_or_registered_meanwhile, || async {
            match self.patient_by_mrn(who, &site, &mrn).await? {
                Some(current) => {
                    let details = patch.applied_to(&current.details);
                    let version = current.version;
                    self.replace_details_of(who, current, version, details, true)
                        .await
                        .map(|p| (p, DetailsOutcome::Updated))
                }
                None => {
                    let details = patch
                        .new_patient(site.clone(), mrn.clone())
                        .map_err(|e| AppError::invalid("patient", e))?;
                    self.register_patient(who, details)
                        .await
                        .map(|p| (p, DetailsOutcome::Registered))
                }
            }
        })
        .await
    }

    /// Files a laboratory report's results on the patient's record in one commit (see
    /// [`lab_report_events`]: a report sent again adds nothing; corrections keep the history).
    /// Returns the record and how many entries changed.
    pub async fn record_lab_report(
        &self,
        who: &Principal,
        patient_id: PatientId,
        report: &[ReportedLab],
    ) -> Result<(Patient, usize), AppError> {
        who.require(Permission::RecordClinicalData)?;
        retrying(lost_race, || async {
            let (patient, _) = self.open_patient_record(who, patient_id).await?;
            let current = self.store.lab_result_entries(patient_id).await?;
            let events = lab_report_events(&current, report);
            if events.is_empty() {
                return Ok((patient, 0));
            }
            let meta = EventMeta {
                actor: who.actor()?,
                at: self.clock.now(),
                reason: Some("reported by the laboratory".to_string()),
            };
            let audit = who.audit_entry(
                meta.at,
                Audit::of("create", "lab_result", patient_id, patient_id),
            );
            let patient = self
                .store
                .record_patient_facts(patient_id, patient.version, &events, &meta, &[audit])
                .await?;
            Ok((patient, events.len()))
        })
        .await
    }

    /// Files an order from the ordering system as a referral awaiting vetting, on behalf of the
    /// clinician who placed it when they are a user here (their scope then holds it). The same
    /// order number again is refused as a duplicate.
    pub async fn file_order(
        &self,
        who: &Principal,
        patient_id: PatientId,
        details: ReferralDetails,
        ordered_by: Option<&str>,
    ) -> Result<(Referral, Case), AppError> {
        if details.placer_order.is_none() {
            return Err(AppError::invalid(
                "placer_order",
                "an order needs its number",
            ));
        }
        self.open_patient_record(who, patient_id).await?;
        let referrer = match ordered_by {
            Some(username) => self
                .store
                .user_by_username(username)
                .await?
                .filter(|u| !u.disabled)
                .map(|u| u.username),
            None => None,
        };
        self.file_referral_for(who, patient_id, details, referrer.as_deref())
            .await
    }

    /// The referral an order number was filed as, if any.
    pub async fn order(
        &self,
        who: &Principal,
        placer: &PlacerOrder,
    ) -> Result<Option<Referral>, AppError> {
        who.require(Permission::ReadReferrals)?;
        Ok(self.store.referral_by_placer_order(&placer.key()).await?)
    }

    /// The referral an order number was filed as; none is "not found", naming the order.
    async fn filed_order(
        &self,
        who: &Principal,
        placer: &PlacerOrder,
    ) -> Result<Referral, AppError> {
        self.order(who, placer).await?.ok_or_else(|| {
            AppError::NotFound(format!("order {} of {}", placer.number, placer.authority))
        })
    }

    /// Cancels the case an order opened, with the ordering system's reason. Cancelled already:
    /// nothing to do. Too late (the procedure has started): refused, saying so.
    pub async fn cancel_order(
        &self,
        who: &Principal,
        patient: PatientId,
        placer: &PlacerOrder,
        reason: &str,
    ) -> Result<Case, AppError> {
        let referral = self.filed_order(who, placer).await?;
        same_patient(&referral, patient)?;
        retrying(lost_race, || async {
            let (case, _) = self
                .open_case(who, Permission::ReadCases, referral.case_id)
                .await?;
            if case.state == CaseState::Cancelled {
                return Ok(case);
            }
            let request = crate::CaseEventRequest {
                case_id: case.id,
                expected_version: case.version,
                event: CaseEvent::Cancel,
                reason: Some(reason.to_string()),
            };
            self.apply_case_event(who, request).await
        })
        .await
    }

    /// Changes what an order asks for (HL7 XO), while IR has not vetted it yet: the referral and
    /// the case's requested procedure and urgency, with the history kept. Vetted or booked
    /// already: refused, saying why (a vetting decided on the old request must not stand on a
    /// new one unseen).
    pub async fn change_order(
        &self,
        who: &Principal,
        patient: PatientId,
        details: ReferralDetails,
    ) -> Result<(Referral, Case), AppError> {
        who.require(Permission::CreateReferrals)?;
        let placer = details
            .placer_order
            .clone()
            .ok_or_else(|| AppError::invalid("placer_order", "an order needs its number"))?;
        retrying(lost_race, || async {
            let referral = self.filed_order(who, &placer).await?;
            same_patient(&referral, patient)?;
            let (case, _) = self
                .open_case(who, Permission::ReadCases, referral.case_id)
                .await?;
            match case.state {
                CaseState::Referred | CaseState::MoreInformationRequested => {}
                CaseState::Vetted => {
                    return Err(AppError::invalid(
                        "order",
                        format!(
                            "order {} was vetted by IR already: a change now needs IR to vet it again — call the department, or cancel and order anew",
                            placer.number
                        ),
                    ))
                }
                state => {
                    return Err(AppError::invalid(
                        "order",
                        format!(
                            "order {} is past the point of change (its case is {state}): cancel it or call the department",
                            placer.number
                        ),
                    ))
                }
            }
            let meta = EventMeta {
                actor: who.actor()?,
                at: self.clock.now(),
                reason: Some("changed by the ordering system".to_string()),
            };
            let audit = who.audit_entry(
                meta.at,
                Audit::of("update", "referral", referral.id, referral.patient_id),
            );
            let mut details = details.clone();
            // The order number stays as first filed; the rest is the new request.
            details.placer_order = referral.details.placer_order.clone();
            Ok(self
                .store
                .change_order(&referral, &case, &details, &meta, &[audit])
                .await?)
        })
        .await
    }

    /// Merges the record at `merged` into the one at `survivor` (HL7 A40: the PAS found two
    /// records of one patient), in one commit: referrals, cases, labs, drugs and tasks move, and
    /// both records keep their histories and say so. A survivor not registered here: the merged
    /// record takes the survivor's identifiers instead. Merged already: nothing to do.
    pub async fn merge_patients(
        &self,
        who: &Principal,
        survivor: (SiteCode, Mrn),
        merged: (SiteCode, Mrn),
    ) -> Result<Patient, AppError> {
        who.require(Permission::MergePatients)?;
        who.require(Permission::UpdatePatients)?;
        let name = |(site, mrn): &(SiteCode, Mrn)| format!("{}/{}", site.as_str(), mrn.as_str());
        if survivor == merged {
            return Err(AppError::invalid(
                "merge",
                format!("{} cannot be merged into itself", name(&merged)),
            ));
        }
        retrying(lost_race, || async {
            let kept = self.record_at(who, &survivor).await?;
            let gone = self.record_at(who, &merged).await?;
            match (kept, gone) {
                (Some(kept), Some(gone)) => {
                    match gone.merged_into {
                        Some(into) if into == kept.id => return Ok(kept),
                        Some(_) => {
                            return Err(AppError::invalid(
                                "merge",
                                format!("{} was merged into another record already", name(&merged)),
                            ))
                        }
                        None => {}
                    }
                    let meta = EventMeta {
                        actor: who.actor()?,
                        at: self.clock.now(),
                        reason: Some(format!("{} merged into {}", name(&merged), name(&survivor))),
                    };
                    let audits = [
                        who.audit_entry(meta.at, Audit::of("merge", "patient", gone.id, gone.id)),
                        who.audit_entry(meta.at, Audit::of("merge", "patient", kept.id, kept.id)),
                    ];
                    self.store
                        .merge_patients(&kept, &gone, &meta, &audits)
                        .await
                        .map_err(AppError::from)
                }
                (None, Some(gone)) => {
                    // Only the old record is here: it is the patient, under the new identifiers.
                    let mut details = gone.details.clone();
                    details.site = survivor.0.clone();
                    details.mrn = survivor.1.clone();
                    self.replace_patient_details(who, gone.id, gone.version, details, true)
                        .await
                }
                (Some(kept), None) => Ok(kept),
                (None, None) => Err(AppError::NotFound(format!(
                    "patients {} and {}",
                    name(&survivor),
                    name(&merged)
                ))),
            }
        })
        .await
    }

    /// The message this sender sent with this control id, if it arrived before.
    pub async fn find_message(
        &self,
        sender: &str,
        control_id: &str,
    ) -> Result<Option<InboundMessage>, AppError> {
        Ok(self.store.find_message(sender, control_id).await?)
    }

    /// Keeps a message with its outcome in one commit; a row already there for the same sender
    /// and control id stands, and is returned.
    pub async fn record_message(
        &self,
        new: &NewInboundMessage,
        finish: &Finish,
    ) -> Result<Option<InboundMessage>, AppError> {
        Ok(self.store.record_message(new, finish).await?)
    }

    /// Counts a message refused before its sender was established (it claims nothing in the
    /// inbox and is never replayed; its head is kept for the interface analyst).
    pub async fn note_refused_arrival(&self, arrival: &RefusedArrival) -> Result<(), AppError> {
        Ok(self.store.note_refused_arrival(arrival).await?)
    }

    /// Who was refused before being established as a sender, most recent first. Their heads may
    /// name patients: the view is audited.
    pub async fn refused_arrivals(
        &self,
        who: &Principal,
        limit: usize,
    ) -> Result<Vec<RefusedArrivals>, AppError> {
        who.require(Permission::ManageInterfaces)?;
        let list = self.store.refused_arrivals(limit).await?;
        if !list.is_empty() {
            let note = Audit {
                resource_id: None,
                ..message_note("read_refused_arrivals", "")
            };
            self.audit_reads(who, vec![note]).await?;
        }
        Ok(list)
    }

    /// Stores how a received message ended and what it was answered.
    pub async fn finish_message(&self, id: &str, finish: &Finish) -> Result<(), AppError> {
        Ok(self.store.finish_message(id, finish).await?)
    }

    /// A page of the inbox (dead letters: `failed` and `refused`). The messages hold patient
    /// data: the view is audited.
    pub async fn inbox_page(
        &self,
        who: &Principal,
        filter: &InboxFilter,
        after: Option<&Cursor>,
    ) -> Result<Page<InboundMessage>, AppError> {
        who.require(Permission::ManageInterfaces)?;
        // People read the dead letters, which need them; what was applied is the interfaces'
        // record (each change it made is audited as the sender's), not a list to browse.
        let asked = filter.statuses.clone().unwrap_or_default();
        if let Some(other) = asked.iter().find(|s| !s.is_dead_letter()) {
            return Err(AppError::invalid(
                "status",
                format!(
                    "'{}': people read the dead letters (failed, refused); applied messages are read one at a time, by id",
                    other.as_str()
                ),
            ));
        }
        let filter = InboxFilter {
            statuses: Some(if asked.is_empty() {
                vec![InboxStatus::Failed, InboxStatus::Refused]
            } else {
                asked
            }),
            ..filter.clone()
        };
        let page = self.store.inbound_messages_page(&filter, after).await?;
        // A patient's messages share one look-up (a dead letter is often one of several).
        let mut patients = std::collections::HashMap::new();
        let mut notes = Vec::with_capacity(page.items.len());
        for message in &page.items {
            notes.push(self.message_note_of(message, &mut patients).await?);
        }
        self.audit_reads(who, notes).await?;
        Ok(page)
    }

    /// The audit line of a person's look at a message: against its patient, when it names one
    /// registered here (`known`: the patients of messages noted before, by their key).
    async fn message_note_of(
        &self,
        message: &InboundMessage,
        known: &mut std::collections::HashMap<String, Option<String>>,
    ) -> Result<Audit<'static>, AppError> {
        let mut note = message_note("read", &message.arrived.id);
        let Some(key) = message.arrived.patient_key.as_deref() else {
            return Ok(note);
        };
        if !known.contains_key(key) {
            let patient = match key.split_once('/') {
                Some((site, mrn)) => match (SiteCode::parse(site), Mrn::parse(mrn)) {
                    (Ok(site), Ok(mrn)) => self
                        .store
                        .patient_by_mrn(&site, &mrn)
                        .await?
                        .map(|p| p.id.to_string()),
                    _ => None,
                },
                None => None,
            };
            known.insert(key.to_string(), patient);
        }
        note.patient_id = known.get(key).cloned().flatten();
        Ok(note)
    }

    /// One received message, as it arrived, with its outcome and (when the interface runs) as
    /// people read it; audited.
    pub async fn inbound_message(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<(InboundMessage, Option<Shown>), AppError> {
        who.require(Permission::ManageInterfaces)?;
        let message = self
            .store
            .inbound_message(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("message {id}")))?;
        let note = self
            .message_note_of(&message, &mut Default::default())
            .await?;
        self.audit_reads(who, vec![note]).await?;
        let shown = self.messages.as_ref().map(|m| m.show(&message));
        Ok((message, shown))
    }

    /// Applies a dead letter again once its cause is fixed (a mapping added, the patient's ADT
    /// arrived). Audited as the administrator's replay; the changes it makes are the sending
    /// system's, naming the message, as the first time.
    pub async fn replay_message(&self, who: &Principal, id: &str) -> Result<Replayed, AppError> {
        who.require(Permission::ManageInterfaces)?;
        let message = self
            .store
            .inbound_message(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("message {id}")))?;
        if !message.status.is_dead_letter() {
            return Err(AppError::invalid(
                "status",
                format!(
                    "message {id} is {}: only failed and refused messages are replayed",
                    message.status.as_str()
                ),
            ));
        }
        let replayer = self.messages.clone().ok_or_else(|| {
            AppError::invalid(
                "interface",
                "the HL7 interface is not running here (--no-hl7)",
            )
        })?;
        self.audit_reads(who, vec![message_note("replay", &message.arrived.id)])
            .await?;
        replayer.replay(&message, who).await
    }
}

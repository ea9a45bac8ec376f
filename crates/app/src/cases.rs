//! Cases: reading one within scope, the day's lists, the safety checklist, and the one way a
//! lifecycle event is recorded.

use crate::{App, AppError, Audit, Opened, Principal};
use seldinger_domain::access::Permission;
use seldinger_domain::lifecycle::{Case, CaseEvent, EventKind, StudyIdentity};
use seldinger_domain::safety::Checklist;
use seldinger_domain::validation::optional_text;
use seldinger_domain::{Actor, CaseId, EventMeta, ValidationErrors};
use seldinger_store::{CaseFilter, Cursor, Page, Record, RecordedEvent, StoreError, WithCaseEvent};

/// A proposed lifecycle event, based on the version of the case its author read.
#[derive(Debug, Clone)]
pub struct CaseEventRequest {
    pub case_id: CaseId,
    /// The case's version when the author read it; a stale one is refused.
    pub expected_version: u64,
    pub event: CaseEvent,
    /// Why: required to decline, cancel, reschedule or override.
    pub reason: Option<String>,
}

impl App {
    /// The case, if `who` may see it under `permission` (a refusal reads as not found), and how
    /// it was opened. Not audited: the caller audits what it shows.
    pub async fn open_case(
        &self,
        who: &Principal,
        permission: Permission,
        id: CaseId,
    ) -> Result<(Case, Opened), AppError> {
        let what = format!("case {id}");
        let case = self
            .store
            .case(id)
            .await?
            .ok_or_else(|| AppError::NotFound(what.clone()))?;
        let opened = self
            .open(who, permission, Record::Case, &id.to_string(), &what)
            .await?;
        Ok((case, opened))
    }

    /// Every version of a case, oldest first, each with the event that made it, rebuilt from
    /// the event log, if `who` may see the case (as [`Self::open_case`]). Not audited: the caller
    /// audits what it shows.
    pub async fn case_versions(
        &self,
        who: &Principal,
        id: CaseId,
    ) -> Result<(Vec<(Case, RecordedEvent)>, Opened), AppError> {
        let (_, opened) = self.open_case(who, Permission::ReadCases, id).await?;
        let corrupt =
            |what: String| AppError::from(StoreError::Corrupt(format!("case {id}: {what}")));
        let mut versions: Vec<(Case, RecordedEvent)> = Vec::new();
        for recorded in self.store.case_history(id).await? {
            let meta = EventMeta {
                actor: Actor::parse(&recorded.actor).map_err(corrupt)?,
                at: recorded.at,
                reason: recorded.reason.clone(),
            };
            let mut case = match versions.last() {
                Some((case, _)) => case.clone(),
                None => {
                    let event: CaseEvent = serde_json::from_value(recorded.payload.clone())
                        .map_err(|e| corrupt(e.to_string()))?;
                    let case =
                        Case::replay(id, [(&event, &meta)]).map_err(|e| corrupt(e.to_string()))?;
                    versions.push((case, recorded));
                    continue;
                }
            };
            // Besides its lifecycle events, a case's stream holds the changes made to it from
            // outside: an order changed by its placer, and a move to the surviving patient.
            match recorded.kind.as_str() {
                "order_changed" => {
                    #[derive(serde::Deserialize)]
                    struct OrderChanged {
                        requested_procedure: Option<seldinger_domain::ProcedureId>,
                        urgency: seldinger_domain::Urgency,
                    }
                    let changed: OrderChanged = serde_json::from_value(recorded.payload.clone())
                        .map_err(|e| corrupt(e.to_string()))?;
                    case.requested_procedure = changed.requested_procedure;
                    case.urgency = changed.urgency;
                }
                "patient_merged" => {
                    let to = recorded.payload["to"]
                        .as_str()
                        .and_then(|to| to.parse().ok())
                        .ok_or_else(|| corrupt("a merge names no patient".into()))?;
                    case.patient_id = to;
                }
                _ => {
                    let event: CaseEvent = serde_json::from_value(recorded.payload.clone())
                        .map_err(|e| corrupt(e.to_string()))?;
                    case.apply(&event, &meta)
                        .map_err(|e| corrupt(e.to_string()))?;
                }
            }
            case.version = recorded.version;
            case.updated_at = recorded.at;
            versions.push((case, recorded));
        }
        Ok((versions, opened))
    }

    /// Reads one case and audits the read as `action`.
    pub async fn read_case(
        &self,
        who: &Principal,
        id: CaseId,
        action: &str,
    ) -> Result<(Case, Opened), AppError> {
        let (case, opened) = self.open_case(who, Permission::ReadCases, id).await?;
        let note = Audit::of(action, "case", case.id, case.patient_id).break_glass(&opened);
        self.audit_reads(who, vec![note]).await?;
        Ok((case, opened))
    }

    /// A page of the cases `who` may see that match `filter` (scope in the query), each read
    /// audited as `action`.
    pub async fn list_cases(
        &self,
        who: &Principal,
        filter: &CaseFilter,
        after: Option<&Cursor>,
        action: &str,
    ) -> Result<Page<Case>, AppError> {
        let page = self
            .store
            .cases_page(&who.scope(Permission::ReadCases), filter, after)
            .await?;
        let notes = page
            .items
            .iter()
            .map(|c| Audit::of(action, "case", c.id, c.patient_id))
            .collect();
        self.audit_reads(who, notes).await?;
        Ok(page)
    }

    /// The case's safety checklist as of now, from its patient's current drugs and labs. Pure
    /// reading for whoever already holds the case.
    pub async fn checklist_of(&self, case: &Case) -> Result<Checklist, AppError> {
        let patient = self
            .store
            .patient(case.patient_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("patient {}", case.patient_id)))?;
        self.checklist_for(case, &patient).await
    }

    /// As [`App::checklist_of`], for a caller that has read the case's patient already.
    pub async fn checklist_for(
        &self,
        case: &Case,
        patient: &seldinger_domain::patient::Patient,
    ) -> Result<Checklist, AppError> {
        let medications = self.store.medication_entries(case.patient_id).await?;
        let labs = self.store.lab_result_entries(case.patient_id).await?;
        Ok(self.checklist_from_entries(case, patient, &medications, &labs))
    }

    /// As [`App::checklist_for`], from the patient's current drugs and labs with their entry
    /// numbers, which a caller read already to show them (the case page).
    pub fn checklist_from_entries(
        &self,
        case: &Case,
        patient: &seldinger_domain::patient::Patient,
        medications: &[(u64, seldinger_domain::clinical::Medication)],
        labs: &[(u64, seldinger_domain::clinical::LabResult)],
    ) -> Checklist {
        let medications: Vec<_> = medications.iter().map(|(_, m)| m.clone()).collect();
        let labs: Vec<_> = labs.iter().map(|(_, l)| l.clone()).collect();
        let facts = seldinger_domain::safety::PatientFacts {
            details: &patient.details,
            medications: &medications,
            labs: &labs,
        };
        self.checklist_with(case, &facts)
    }

    /// The checklist from facts a caller has read already (a list reads a table once for all
    /// its patients), at the clock's now.
    pub(crate) fn checklist_with(
        &self,
        case: &Case,
        facts: &seldinger_domain::safety::PatientFacts<'_>,
    ) -> Checklist {
        seldinger_domain::safety::case_checklist(
            case,
            facts,
            &self.catalogue,
            &self.safety,
            self.clock.now(),
            self.time,
        )
    }

    /// Records one lifecycle event as `who`: scope, the expected version, the reason, the
    /// permission the event needs, the safety gate before the room, known rooms, the lifecycle's
    /// own checks, the discharge criteria, then the event, the follow-up it brings and its audit
    /// row in one commit. Returns the case after it.
    pub async fn apply_case_event(
        &self,
        who: &Principal,
        request: CaseEventRequest,
    ) -> Result<Case, AppError> {
        let needs = Permission::for_case_event(request.event.kind());
        self.apply_case_event_as(who, request, needs).await
    }

    /// As [`App::apply_case_event`], with the permission the caller's use case stands for (an
    /// imaging system's performed step ends a procedure without running the day's work).
    pub(crate) async fn apply_case_event_as(
        &self,
        who: &Principal,
        request: CaseEventRequest,
        needs: Permission,
    ) -> Result<Case, AppError> {
        let (case, opened) = self
            .open_case(who, Permission::ReadCases, request.case_id)
            .await?;
        if case.version != request.expected_version {
            return Err(AppError::stale(
                format!("case {}", case.id),
                request.expected_version,
                case.version,
            ));
        }
        let reason = optional_text(
            request.reason.as_deref(),
            seldinger_domain::validation::LONG_TEXT,
        )
        .map_err(|e| AppError::Invalid(ValidationErrors::single("reason", e)))?;
        let mut event = request.event;
        who.require(needs)?;
        if let CaseEvent::Schedule { study, .. } = &mut event {
            // The study identity every other system will know the case by: given once.
            if study.is_none() && case.study_instance_uid.is_none() {
                let mut identity = StudyIdentity::new(self.today(), uuid::Uuid::new_v4());
                if let Some(own) = &case.accession_number {
                    identity.accession_number = own.clone();
                }
                *study = Some(identity);
            }
        }
        if matches!(event, CaseEvent::StartProcedure { .. }) {
            // Going in-room is where the checklist stops being advice: blocks need an override.
            case.check_safety_for_start(&self.checklist_of(&case).await?)?;
        }
        if let CaseEvent::Schedule { room, .. } = &event {
            let rooms = self.store.rooms().await?;
            if !rooms.iter().any(|r| &r.id == room) {
                let known: Vec<&str> = rooms.iter().map(|r| r.id.as_str()).collect();
                return Err(AppError::invalid(
                    "event.room",
                    format!(
                        "'{room}' is not a room of this department; rooms: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        let meta = EventMeta {
            actor: who.actor()?,
            at: self.clock.now(),
            reason,
        };
        let decided = case.decide(event, &meta, &self.catalogue)?;
        let mut after = case.clone();
        after.apply(&decided, &meta)?;
        if decided.kind() == EventKind::Discharge {
            case.check_discharge(&self.safety, meta.reason.as_deref())?;
        }
        // Stored with the event itself, so none is lost.
        let follow_ups = seldinger_domain::followup::follow_ups_of_event(
            &decided,
            &after,
            &self.catalogue,
            meta.at,
            &self.safety,
            uuid::Uuid::new_v4,
        );
        let audit = who.audit_entry(
            meta.at,
            Audit::of("transition", "case", case.id, case.patient_id).break_glass(&opened),
        );
        let owed = self
            .owed_by(
                &case,
                &decided,
                &after,
                meta.actor.as_str(),
                meta.reason.as_deref(),
                meta.at,
            )
            .await?;
        self.store
            .record_case_event(
                &after,
                case.version,
                &decided,
                &meta,
                WithCaseEvent {
                    follow_ups: &follow_ups,
                    owed: &owed,
                    audit: &[audit],
                },
            )
            .await?;
        self.wake_sender(&owed);
        Ok(after)
    }
}

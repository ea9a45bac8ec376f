//! The Modality Worklist's read: the cases booked in rooms whose imaging systems take a
//! worklist, as one entry per case and system, for the DICOM adapter to show as scheduled
//! procedure steps (PS3.4 Annex K). Reading it is reading patients' records: audited, one row
//! per case shown (the ones the query matched, not every one it looked at), for the system that
//! asked.

use crate::{App, AppError, Audit, Principal};
use chrono::{DateTime, Utc};
use seldinger_domain::access::{Permission, Role};
use seldinger_domain::catalogue::Procedure;
use seldinger_domain::lifecycle::{Case, CaseState};
use seldinger_domain::patient::Patient;
use seldinger_domain::safety::{Checklist, ItemStatus};
use seldinger_domain::{DicomModality, Equipment, PatientId, ReferralId, Room};
use seldinger_store::CaseFilter;
use std::collections::HashMap;

/// A case still to be done, booked in a room, for the room's imaging systems of one modality:
/// one scheduled step any of them may perform (a multi-valued Scheduled Station AE Title).
#[derive(Debug, Clone)]
pub struct WorklistEntry {
    pub case: Case,
    pub patient: Patient,
    pub room: Room,
    pub modality: DicomModality,
    /// The room's systems of that modality, in the room's order (at least one).
    pub systems: Vec<Equipment>,
    /// The vetted (else requested) procedure, from the catalogue.
    pub procedure: Option<Procedure>,
    /// Who asked for it: the referral's requesting clinician.
    pub requesting_clinician: Option<String>,
    /// What the team must know before starting: the safety checklist's items that block the
    /// start or need an action (clinical-rules.md §8), by title.
    pub alerts: Vec<String>,
}

/// Which entries a worklist read wants, and how much of each.
#[derive(Debug, Clone)]
pub struct WorklistRead<'a> {
    /// Cases booked to start in this span.
    pub between: (DateTime<Utc>, DateTime<Utc>),
    /// The steps of systems whose AE titles are named (none: every system). A step names all
    /// its room's systems of its modality, as a step on the list does.
    pub stations: Option<&'a [String]>,
    /// Fill each entry's alerts (the safety checklist: a few reads per case, done only when the
    /// caller will show them).
    pub alerts: bool,
    /// Fill each entry's requesting clinician (a read per case).
    pub requester: bool,
    /// The asking system's AE title: only the steps that name it are read — its room's, of its
    /// modality — and an AE title no room lists reads none. A system (the interface role) must
    /// name itself; `None` (every step) is for the department's own views.
    pub asking_station: Option<&'a str>,
}

/// Cases on the worklist: booked and not yet begun. Once in the room, a case's step has
/// started; cancelled or moved cases leave it or move with their booking.
pub const ON_THE_WORKLIST: [CaseState; 2] = [CaseState::Scheduled, CaseState::CheckedIn];

impl App {
    /// The worklist's entries `read` asks for, in start order, as `shown` presents them: an
    /// entry it turns down (`None`: the caller's query does not match it) is neither returned
    /// nor audited.
    pub async fn worklist<T>(
        &self,
        who: &Principal,
        read: &WorklistRead<'_>,
        mut shown: impl FnMut(&WorklistEntry) -> Option<T>,
    ) -> Result<Vec<T>, AppError> {
        let (between, stations) = (read.between, read.stations);
        who.require(Permission::ReadPatients)?;
        if who.role == Role::Interface && read.asking_station.is_none() {
            return Err(AppError::invalid(
                "station",
                "a system reading the worklist names its AE title: it reads only its own steps",
            ));
        }
        let rooms = self.store.rooms().await?;
        let filter = CaseFilter {
            booked_between: Some(between),
            states: ON_THE_WORKLIST.to_vec(),
            limit: 500,
            ..CaseFilter::default()
        };
        let mut cases = self.cases(who, &filter).await?;
        cases.sort_by_key(|c| c.booking.as_ref().map(|b| b.start));
        // The cases booked where a named system stands, with the steps it has there.
        let booked: Vec<(Case, &Room, Vec<Step>)> = cases
            .into_iter()
            .filter_map(|case| {
                let room = case
                    .booking
                    .as_ref()
                    .and_then(|b| rooms.iter().find(|r| r.id == b.room))?;
                let steps: Vec<Step> = steps_of(room)
                    .into_iter()
                    .filter(|(_, systems)| {
                        let names =
                            |title: &str| systems.iter().any(|e| e.ae_title.as_str() == title);
                        read.asking_station.is_none_or(names)
                            && stations.is_none_or(|named| named.iter().any(|t| names(t)))
                    })
                    .collect();
                (!steps.is_empty()).then_some((case, room, steps))
            })
            .collect();
        // Each table read once for all of them, not once per case: a room's day costs the
        // same few queries for four cases as for forty.
        let patient_ids: Vec<PatientId> = booked.iter().map(|(c, _, _)| c.patient_id).collect();
        let mut patients: HashMap<PatientId, Patient> = HashMap::new();
        for patient in self.store.patients_by_id(&patient_ids).await? {
            // The same scope check as every read of a record; one the asker may not open is
            // left off the list rather than failing it.
            match self.open_loaded_patient(who, patient).await {
                Ok((patient, _)) => {
                    patients.insert(patient.id, patient);
                }
                Err(AppError::NotFound(_)) => continue,
                Err(other) => return Err(other),
            }
        }
        let (medications, labs) = if read.alerts {
            (
                self.store.medications_of(&patient_ids).await?,
                self.store.lab_results_of(&patient_ids).await?,
            )
        } else {
            Default::default()
        };
        let requesters: HashMap<ReferralId, String> = if read.requester {
            let ids: Vec<ReferralId> = booked.iter().map(|(c, _, _)| c.referral_id).collect();
            self.store
                .referrals_by_id(&ids)
                .await?
                .into_iter()
                .map(|r| (r.id, r.details.requesting_clinician))
                .collect()
        } else {
            HashMap::new()
        };
        let (mut entries, mut audits) = (Vec::new(), Vec::new());
        for (case, room, steps) in booked {
            let Some(patient) = patients.get(&case.patient_id) else {
                continue;
            };
            let procedure = case
                .planned_procedure()
                .and_then(|id| self.catalogue.get(id))
                .cloned();
            let alerts = if read.alerts {
                let facts = crate::facts_from(patient, &medications, &labs);
                alerts_of(&self.checklist_with(&case, &facts))
            } else {
                Vec::new()
            };
            let requesting_clinician = requesters.get(&case.referral_id).cloned();
            let mut audited = false;
            for (modality, systems) in steps {
                let entry = WorklistEntry {
                    case: case.clone(),
                    patient: patient.clone(),
                    room: room.clone(),
                    modality,
                    systems,
                    procedure: procedure.clone(),
                    requesting_clinician: requesting_clinician.clone(),
                    alerts: alerts.clone(),
                };
                if let Some(presented) = shown(&entry) {
                    entries.push(presented);
                    if !audited {
                        audits.push(Audit::of("read", "worklist", case.id, patient.id));
                        audited = true;
                    }
                }
            }
        }
        self.audit_reads(who, audits).await?;
        Ok(entries)
    }
}

/// A room's systems of one modality: one scheduled step is for all of them.
type Step = (DicomModality, Vec<Equipment>);

/// The room's steps: its systems grouped by modality, in the order the room lists them.
fn steps_of(room: &Room) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for system in &room.equipment {
        match steps.iter_mut().find(|(m, _)| *m == system.modality) {
            Some((_, systems)) => systems.push(system.clone()),
            None => steps.push((system.modality, vec![system.clone()])),
        }
    }
    steps
}

/// What the team must know before starting: the checklist's items that block the start or need
/// an action, each once.
fn alerts_of(checklist: &Checklist) -> Vec<String> {
    let mut alerts = Vec::new();
    for item in &checklist.items {
        let alert = match item.status {
            ItemStatus::Block => format!("Blocks the start: {}", item.title),
            ItemStatus::ActionNeeded => format!("Action needed: {}", item.title),
            _ => continue,
        };
        if !alerts.contains(&alert) {
            alerts.push(alert);
        }
    }
    alerts
}

//! The device registry (clinical-rules.md §7): devices in and out of patients, each with its plan,
//! and their life after placement — removed, exchanged, or declared permanent by an IR physician.

use crate::{keyed, App, AppError, Audit, Principal};
use chrono::{DateTime, Utc};
use seldinger_domain::access::{Permission, RowScope};
use seldinger_domain::device_registry::{
    filter_measures, plan, tasks_settled_by, DeviceEvent, DeviceRef, FilterMeasures, Plan,
    TrackedDevice,
};
use seldinger_domain::followup::FollowUpTask;
use seldinger_domain::procedure_record::{DeviceKind, OperatorRole};
use seldinger_domain::EventMeta;
use seldinger_store::{DeviceFilter, Record};
use serde::Serialize;
use std::collections::HashMap;

/// A device with where it stands now and whose it is.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceStanding {
    /// `<case>-<n>`: the n-th device its case recorded.
    pub id: String,
    pub device: TrackedDevice,
    /// Its plan at the time asked: ended, permanent, follow_up (with its window and whether it
    /// is overdue) or no_plan (flagged, §7).
    pub plan: Plan,
    /// Whole days since placement.
    pub days_since_placement: i64,
    pub patient_name: String,
    pub mrn: String,
    /// The procedure of the case that placed it (catalogue id).
    pub procedure: Option<String>,
    /// The primary operator of that procedure: the physician responsible for the device.
    pub responsible_physician: Option<String>,
    /// Who referred the patient for it.
    pub referrer: Option<String>,
}

/// At most this many devices in one list (the registry pages say when more match).
pub const DEVICES_AT_MOST: usize = 2000;

impl App {
    /// The devices `who` may see that match `filter`, each with its plan at now (scope in the
    /// query; every device shown is audited as read).
    pub async fn device_registry(
        &self,
        who: &Principal,
        filter: &DeviceFilter,
    ) -> Result<Vec<DeviceStanding>, AppError> {
        who.require(Permission::ReadCases)?;
        let devices = self
            .store
            .devices(&who.scope(Permission::ReadCases), filter, DEVICES_AT_MOST)
            .await?;
        let standings = self.standings(devices).await?;
        self.audit_reads(
            who,
            standings
                .iter()
                .map(|s| Audit::of("read", "device", &s.id, s.device.patient_id))
                .collect(),
        )
        .await?;
        Ok(standings)
    }

    /// One device, if `who` may open it, with its life events (its placement is in its case's
    /// history). Audited.
    pub async fn device(
        &self,
        who: &Principal,
        device: DeviceRef,
    ) -> Result<(DeviceStanding, Vec<seldinger_store::RecordedEvent>), AppError> {
        let what = format!("device {}", device.stream_id());
        let (found, opened) = self
            .opened(
                who,
                self.store.device(device).await?,
                Record::Device,
                &device.stream_id(),
                &what,
            )
            .await?;
        let history = self.store.device_history(device).await?;
        let standing = self
            .standings(vec![found])
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound(what.clone()))?;
        self.audit_reads(
            who,
            vec![
                Audit::of("read", "device", &standing.id, standing.device.patient_id)
                    .break_glass(&opened),
            ],
        )
        .await?;
        Ok((standing, history))
    }

    /// Records what happened to a device, as `who`: removal and exchange are clinical records
    /// (record_clinical_data), a permanent decision is an IR physician's
    /// (declare_devices_permanent); then scope, the version check, the domain's decision, and
    /// the event with its audit row in one commit.
    pub async fn record_device_event(
        &self,
        who: &Principal,
        device: DeviceRef,
        expected_version: u64,
        event: &DeviceEvent,
    ) -> Result<DeviceStanding, AppError> {
        let what = format!("device {}", device.stream_id());
        let (found, opened) = self
            .opened(
                who,
                self.store.device(device).await?,
                Record::Device,
                &device.stream_id(),
                &what,
            )
            .await?;
        who.require(match event {
            DeviceEvent::DeclaredPermanent { .. } => Permission::DeclareDevicesPermanent,
            DeviceEvent::Removed { .. } | DeviceEvent::Exchanged { .. } => {
                Permission::RecordClinicalData
            }
        })?;
        if found.version != expected_version {
            return Err(AppError::stale(what, expected_version, found.version));
        }
        let now = self.clock.now();
        let decided = found.decide(event, now)?;
        if let DeviceEvent::Removed {
            in_case: Some(case),
            ..
        }
        | DeviceEvent::Exchanged {
            in_case: Some(case),
            ..
        } = &decided
        {
            // The case it was taken out in must be this patient's.
            let same_patient = self
                .store
                .case(*case)
                .await?
                .is_some_and(|c| c.patient_id == found.patient_id);
            if !same_patient {
                return Err(AppError::invalid(
                    "in_case",
                    format!("case {case} is not a case of this device's patient"),
                ));
            }
        }
        let mut after = found.clone();
        after.apply(&decided);
        let others = self
            .store
            .devices(
                &RowScope::Department,
                &DeviceFilter {
                    case_id: Some(found.device.case_id),
                    ..Default::default()
                },
                DEVICES_AT_MOST,
            )
            .await?;
        let case_tasks = self.tasks_of(std::slice::from_ref(&found)).await?;
        let settled = tasks_settled_by(&found, &decided, &others, &case_tasks, &who.username, now);
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let audit = who.audit_entry(
            now,
            Audit::of(
                decided.kind(),
                "device",
                device.stream_id(),
                found.patient_id,
            )
            .break_glass(&opened),
        );
        self.store
            .record_device_event(&after, &decided, &settled, &meta, &[audit])
            .await?;
        self.standings(vec![after])
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound(what))
    }

    /// The retrievable IVC filters placed in [from, until) with where each stands now, and the
    /// department's measures over them (§6, §7). A role that reads de-identified outcomes (the
    /// quality lead) gets the measures of the whole department and no rows.
    pub async fn ivc_filter_tracker(
        &self,
        who: &Principal,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(Vec<DeviceStanding>, FilterMeasures), AppError> {
        let filter = DeviceFilter {
            kind: Some(DeviceKind::IvcFilter),
            placed_from: Some(from),
            placed_before: Some(until),
            ..Default::default()
        };
        let rows_scope = who.scope(Permission::ReadCases);
        if rows_scope == RowScope::Nothing {
            // Counts only: no row, no patient, nothing to audit.
            who.require(Permission::ReadDeidentifiedOutcomes)?;
            let devices = self
                .store
                .devices(&RowScope::Department, &filter, usize::MAX)
                .await?;
            let standings = self.standings(devices).await?;
            let measures = measures_of(&standings, from, until);
            return Ok((Vec::new(), measures));
        }
        let standings = self.device_registry(who, &filter).await?;
        let measures = measures_of(&standings, from, until);
        Ok((standings, measures))
    }

    async fn tasks_of(&self, devices: &[TrackedDevice]) -> Result<Vec<FollowUpTask>, AppError> {
        let cases: Vec<_> = devices.iter().map(|d| d.device.case_id).collect();
        Ok(self.store.follow_up_tasks_of_cases(&cases).await?)
    }

    /// Each device with its plan now and the people around it: its case's tasks, case, referral
    /// and patient, each table read once.
    pub(crate) async fn standings(
        &self,
        devices: Vec<TrackedDevice>,
    ) -> Result<Vec<DeviceStanding>, AppError> {
        let now = self.clock.now();
        let tasks = self.tasks_of(&devices).await?;
        let case_ids: Vec<_> = devices.iter().map(|d| d.device.case_id).collect();
        let cases: HashMap<_, _> = keyed(self.store.cases_by_id(&case_ids).await?, |c| c.id);
        let referral_ids: Vec<_> = cases.values().map(|c| c.referral_id).collect();
        let referrals: HashMap<_, _> =
            keyed(self.store.referrals_by_id(&referral_ids).await?, |r| r.id);
        let patient_ids: Vec<_> = devices.iter().map(|d| d.patient_id).collect();
        let patients: HashMap<_, _> =
            keyed(self.store.patients_by_id(&patient_ids).await?, |p| p.id);
        Ok(devices
            .into_iter()
            .map(|device| {
                let case_tasks: Vec<FollowUpTask> = tasks
                    .iter()
                    .filter(|t| t.case_id == device.device.case_id)
                    .cloned()
                    .collect();
                let case = cases.get(&device.device.case_id);
                let patient = patients.get(&device.patient_id);
                DeviceStanding {
                    id: device.device.stream_id(),
                    plan: plan(
                        &device,
                        &case_tasks,
                        case.is_some_and(|c| c.discharged_at.is_some()),
                        now,
                    ),
                    days_since_placement: (now - device.placed_at).num_days(),
                    patient_name: patient
                        .map(|p| p.details.name.family_first())
                        .unwrap_or_default(),
                    mrn: patient
                        .map(|p| p.details.mrn.as_str().to_string())
                        .unwrap_or_default(),
                    procedure: case
                        .and_then(|c| c.planned_procedure())
                        .map(|p| p.as_str().to_string()),
                    responsible_physician: case.and_then(|c| c.procedure.as_ref()).and_then(|p| {
                        p.operators
                            .iter()
                            .find(|o| o.role == OperatorRole::Primary)
                            .map(|o| o.name.clone())
                    }),
                    referrer: case
                        .and_then(|c| referrals.get(&c.referral_id))
                        .map(|r| r.details.requesting_clinician.clone()),
                    device,
                }
            })
            .collect())
    }
}

fn measures_of(
    standings: &[DeviceStanding],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> FilterMeasures {
    let paired: Vec<(&TrackedDevice, &Plan)> =
        standings.iter().map(|s| (&s.device, &s.plan)).collect();
    filter_measures(&paired, from, until)
}

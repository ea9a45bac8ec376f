//! The quality lead's and the IR physicians' weekly view (clinical-rules.md §6): the measures per
//! procedure type and month over a period against the department's own thresholds, and the M&M
//! list — cases with a moderate or worse adverse event, with the meeting's notes kept.

use crate::adverse_events::AdverseEventStanding;
use crate::{grouped, keyed, App, AppError, Audit, Principal};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use seldinger_domain::access::{Permission, RowScope};
use seldinger_domain::adverse_event::AdverseEvent;
use seldinger_domain::device_registry::{filter_measures, FilterMeasures, Plan};
use seldinger_domain::dose::case_totals;
use seldinger_domain::followup::{FollowUpKind, FollowUpTask};
use seldinger_domain::lifecycle::Case;
use seldinger_domain::mm::{MmNoteAdded, MmReview};
use seldinger_domain::procedure_record::DeviceKind;
use seldinger_domain::procedure_record::SirSeverity;
use seldinger_domain::quality::{
    judge, measures, CaseFacts, Measure, Measures, Standing, Threshold,
};
use seldinger_domain::registry::{export, CaseRecord, DateMode, Pseudonymiser, RegistryExport};
use seldinger_domain::{CaseId, EventMeta};
use seldinger_store::{AdverseEventFilter, DeviceFilter, RecordedEvent};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// At most this many cases in one period's measures (a large department's year is ~15,000).
pub const QUALITY_CASES_AT_MOST: usize = 200_000;

/// One rate with the department's threshold for it and how it stands.
#[derive(Debug, Clone, Serialize)]
pub struct JudgedRate {
    pub measure: Measure,
    pub label: &'static str,
    #[serde(flatten)]
    pub rate: seldinger_domain::device_registry::Rate,
    /// Lower is better unless this is true.
    pub higher_is_better: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standing: Option<Standing>,
}

/// The measures of one procedure type (or of the department: no procedure).
#[derive(Debug, Clone, Serialize)]
pub struct ProcedureQuality {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure: Option<String>,
    pub name: String,
    pub volume: u32,
    /// Cases that went ahead past a blocking checklist item on a physician's override.
    pub safety_overrides: u32,
    pub rates: Vec<JudgedRate>,
}

/// One month's measures (the department's calendar month), for the trend.
#[derive(Debug, Clone, Serialize)]
pub struct MonthQuality {
    /// `YYYY-MM`.
    pub month: String,
    pub measures: Measures,
    /// The IVC filters placed that month: retrieved or declared permanent so far.
    pub ivc_retrieval_or_plan: seldinger_domain::device_registry::Rate,
}

#[derive(Debug, Clone, Serialize)]
pub struct QualityDashboard {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Every case whose procedure began in the period.
    pub department: ProcedureQuality,
    /// Each procedure type done in the period, the most done first.
    pub procedures: Vec<ProcedureQuality>,
    pub months: Vec<MonthQuality>,
    /// The retrievable IVC filters placed in the period, where they stand now (§6, §7).
    pub ivc_filters: FilterMeasures,
    /// How many thresholds the department configured (none are shipped, §6).
    pub thresholds_configured: usize,
    /// The attribution window in days (§6).
    pub attribution_window_days: i64,
}

/// A case for the M&M meeting: its moderate or worse adverse events in the period, and the
/// meeting's notes so far. Patient identity only for a role that reads identified cases.
#[derive(Debug, Clone, Serialize)]
pub struct MmCase {
    pub case_id: CaseId,
    /// The case's keyed pseudonym, as the registry export names it (`C-…`): how a role that
    /// reads de-identified outcomes refers to it.
    pub reference: String,
    /// Each event's pseudonym (`E-…`), in the order of `events`.
    pub event_references: Vec<String>,
    pub procedure: Option<String>,
    pub procedure_name: String,
    pub procedure_started_at: Option<DateTime<Utc>>,
    /// The primary operator.
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mrn: Option<String>,
    pub events: Vec<AdverseEventStanding>,
    pub review: MmReview,
}

fn at_least_moderate(severity: SirSeverity) -> bool {
    !matches!(severity, SirSeverity::Mild)
}

fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn next_month(date: NaiveDate) -> NaiveDate {
    let first = month_start(date);
    first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first)
}

/// A case with what the measures read of it: its counted adverse events, its dose follow-up
/// (§5) and its outcome check (§6) among its tasks.
fn facts<'a>(
    case: &'a Case,
    events_of: &HashMap<CaseId, Vec<&'a AdverseEvent>>,
    tasks_of: &HashMap<CaseId, Vec<&'a FollowUpTask>>,
) -> CaseFacts<'a> {
    let tasks = tasks_of
        .get(&case.id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let of_kind = |kinds: &[FollowUpKind]| {
        tasks
            .iter()
            .copied()
            .filter(|t| kinds.contains(&t.kind))
            .collect()
    };
    CaseFacts {
        case,
        adverse_events: events_of.get(&case.id).cloned().unwrap_or_default(),
        dose_tasks: of_kind(&[
            FollowUpKind::DoseSkinCheck,
            FollowUpKind::PhysicistDoseReview,
        ]),
        outcome_checks: of_kind(&[FollowUpKind::OutcomeCheck]),
    }
}

impl App {
    /// The department's thresholds judged against each rate of `m` (for `procedure`, or the
    /// department's when None).
    fn judged(
        &self,
        procedure: Option<&seldinger_domain::ProcedureId>,
        m: &Measures,
        ivc: Option<&FilterMeasures>,
    ) -> Vec<JudgedRate> {
        Measure::ALL
            .into_iter()
            .filter_map(|measure| {
                let rate = match measure.of(m) {
                    Some(rate) => rate,
                    None => ivc?.retrieval_or_plan,
                };
                let threshold = self.quality_thresholds.get(procedure, measure).cloned();
                let standing = threshold.as_ref().map(|t| judge(measure, &rate, t.percent));
                Some(JudgedRate {
                    measure,
                    label: measure.label(),
                    rate,
                    higher_is_better: measure.higher_is_better(),
                    threshold,
                    standing,
                })
            })
            // A published measure of a procedure not done here is noise on the page.
            .filter(|j| {
                j.rate.denominator > 0
                    || procedure.is_none()
                    || !matches!(
                        j.measure,
                        Measure::NephrostomyDislodged | Measure::GastrostomyInfection
                    )
            })
            .collect()
    }

    /// The measures over the cases whose procedure began in [from, until): the department's,
    /// each procedure type's, each month's, with the IVC filter measures. Counts only: no
    /// patient is named, so a role that reads de-identified outcomes may see it.
    pub async fn quality_dashboard(
        &self,
        who: &Principal,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<QualityDashboard, AppError> {
        who.require(Permission::ReadDeidentifiedOutcomes)?;
        let window = self.attribution_window();
        let now = self.clock.now();
        let cases = self
            .store
            .cases_begun(&RowScope::Department, from, until, QUALITY_CASES_AT_MOST)
            .await?;
        let ids: Vec<CaseId> = cases.iter().map(|c| c.id).collect();
        let events = self.store.adverse_events_of_cases(&ids).await?;
        let tasks = self.store.follow_up_tasks_of_cases(&ids).await?;
        let events_of = grouped(events.iter().filter(|e| e.counts()), |e| e.case_id);
        let tasks_of = grouped(&tasks, |t| t.case_id);
        let facts_of = |case| facts(case, &events_of, &tasks_of);
        let all: Vec<CaseFacts> = cases.iter().map(facts_of).collect();

        // IVC filters placed in the period, each with its plan now.
        let filters = self
            .store
            .devices(
                &RowScope::Department,
                &DeviceFilter {
                    kind: Some(DeviceKind::IvcFilter),
                    placed_from: Some(from),
                    placed_before: Some(until),
                    ..Default::default()
                },
                usize::MAX,
            )
            .await?;
        let standings = self.standings(filters).await?;
        let paired: Vec<(&_, &Plan)> = standings.iter().map(|s| (&s.device, &s.plan)).collect();
        let ivc_filters = filter_measures(&paired, from, until);

        let department_measures = measures(&all, window, now);
        let department = ProcedureQuality {
            procedure: None,
            name: "All procedures".to_string(),
            volume: department_measures.volume,
            safety_overrides: department_measures.safety_overrides,
            rates: self.judged(None, &department_measures, Some(&ivc_filters)),
        };

        let mut by_procedure: BTreeMap<String, Vec<CaseFacts>> = BTreeMap::new();
        for case in &cases {
            let key = case
                .planned_procedure()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            by_procedure.entry(key).or_default().push(facts_of(case));
        }
        let mut procedures: Vec<ProcedureQuality> = by_procedure
            .into_iter()
            .map(|(id, facts)| {
                let m = measures(&facts, window, now);
                let procedure = seldinger_domain::ProcedureId::try_from(id.clone()).ok();
                let name = procedure
                    .as_ref()
                    .and_then(|p| self.catalogue.get(p))
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| "(no procedure recorded)".to_string());
                ProcedureQuality {
                    rates: self.judged(procedure.as_ref(), &m, None),
                    procedure: procedure.map(|p| p.as_str().to_string()),
                    name,
                    volume: m.volume,
                    safety_overrides: m.safety_overrides,
                }
            })
            .collect();
        procedures.sort_by(|a, b| b.volume.cmp(&a.volume).then(a.name.cmp(&b.name)));

        // Every month of the period, empty ones too, so the trend's gaps show.
        let mut months = Vec::new();
        let last_day = self.time.date_of(until - chrono::Duration::seconds(1));
        let mut month = month_start(self.time.date_of(from));
        while month <= last_day && months.len() < 240 {
            let (start, end) = (
                self.time.start_of(month).max(from),
                self.time.start_of(next_month(month)).min(until),
            );
            let facts: Vec<CaseFacts> = cases
                .iter()
                .filter(|c| {
                    c.procedure_started_at
                        .is_some_and(|s| s >= start && s < end)
                })
                .map(facts_of)
                .collect();
            months.push(MonthQuality {
                month: month.format("%Y-%m").to_string(),
                measures: measures(&facts, window, now),
                ivc_retrieval_or_plan: filter_measures(&paired, start, end).retrieval_or_plan,
            });
            month = next_month(month);
        }
        self.audit_reads(
            who,
            vec![Audit {
                action: "read",
                resource_type: "quality_measures",
                resource_id: Some(format!("{}/{}", from.to_rfc3339(), until.to_rfc3339())),
                patient_id: None,
                break_glass_reason: None,
                outcome: "allowed",
            }],
        )
        .await?;
        Ok(QualityDashboard {
            from,
            until,
            department,
            procedures,
            months,
            ivc_filters,
            thresholds_configured: self.quality_thresholds.thresholds.len(),
            attribution_window_days: window.num_days(),
        })
    }

    /// The cases with a moderate or worse adverse event (withdrawn ones left out) whose onset
    /// is in [from, until), with the meeting's notes. A role that reads identified cases sees
    /// the patient (each case audited as read); the quality lead sees the case without them.
    pub async fn mm_list(
        &self,
        who: &Principal,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<MmCase>, AppError> {
        who.require(Permission::ReadDeidentifiedOutcomes)?;
        let identified = who.scope(Permission::ReadCases);
        let scope = if identified == RowScope::Nothing {
            RowScope::Department
        } else {
            identified.clone()
        };
        let events = self
            .store
            .adverse_events(
                &scope,
                &AdverseEventFilter {
                    onset_from: Some(from),
                    onset_before: Some(until),
                    counted_only: true,
                    ..Default::default()
                },
                crate::adverse_events::ADVERSE_EVENTS_AT_MOST,
            )
            .await?;
        let events: Vec<AdverseEvent> = events
            .into_iter()
            .filter(|e| at_least_moderate(e.details.severity))
            .collect();
        let standings = self.adverse_event_standings(events).await?;
        let mut case_ids: Vec<CaseId> = standings.iter().map(|s| s.event.case_id).collect();
        case_ids.dedup();
        let cases: HashMap<CaseId, Case> =
            keyed(self.store.cases_by_id(&case_ids).await?, |c| c.id);
        let reviews: HashMap<CaseId, MmReview> =
            keyed(self.store.mm_reviews_of_cases(&case_ids).await?, |r| {
                r.case_id
            });
        let patients: HashMap<_, _> = if identified == RowScope::Nothing {
            HashMap::new()
        } else {
            let ids: Vec<_> = cases.values().map(|c| c.patient_id).collect();
            self.store
                .patients_by_id(&ids)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect()
        };
        let key = self
            .store
            .deployment_secret("registry_pseudonym_key")
            .await?;
        let names = Pseudonymiser::new(key.as_bytes(), DateMode::Exact, &self.time);
        let mut list: Vec<MmCase> = Vec::new();
        // Each case's row in `list`, as its events come in onset order.
        let mut at: HashMap<CaseId, usize> = HashMap::new();
        for standing in standings {
            let case_id = standing.event.case_id;
            if let Some(row) = at.get(&case_id).map(|&i| &mut list[i]) {
                row.event_references
                    .push(names.adverse_event(&standing.event.id));
                row.events.push(standing);
                continue;
            }
            let Some(case) = cases.get(&case_id) else {
                continue;
            };
            let patient = patients.get(&case.patient_id);
            let procedure = case.planned_procedure();
            at.insert(case_id, list.len());
            list.push(MmCase {
                case_id,
                reference: names.case(case_id),
                event_references: vec![names.adverse_event(&standing.event.id)],
                procedure: procedure.map(|p| p.as_str().to_string()),
                procedure_name: procedure
                    .and_then(|p| self.catalogue.get(p))
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                procedure_started_at: case.procedure_started_at,
                operator: case.procedure.as_ref().and_then(|p| {
                    p.operators
                        .iter()
                        .find(|o| {
                            o.role == seldinger_domain::procedure_record::OperatorRole::Primary
                        })
                        .map(|o| o.name.clone())
                }),
                patient_name: patient.map(|p| p.details.name.family_first()),
                mrn: patient.map(|p| p.details.mrn.as_str().to_string()),
                events: vec![standing],
                review: reviews
                    .get(&case_id)
                    .cloned()
                    .unwrap_or_else(|| MmReview::new(case_id, case.patient_id)),
            });
        }
        let notes = list
            .iter()
            .map(|row| {
                let mut note = Audit::of("read", "mm_review", row.case_id, row.review.patient_id);
                if row.patient_name.is_none() {
                    note.resource_type = "mm_review_deidentified";
                }
                note
            })
            .collect();
        self.audit_reads(who, notes).await?;
        Ok(list)
    }

    /// Adds the meeting's note to a case's M&M record, on the version read (a stale write is
    /// refused). The case must have had a moderate or worse adverse event.
    pub async fn add_mm_note(
        &self,
        who: &Principal,
        case_id: CaseId,
        expected_version: u64,
        note: &MmNoteAdded,
    ) -> Result<MmReview, AppError> {
        who.require(Permission::RecordMmNotes)?;
        let what = format!("case {case_id}");
        let case = self
            .store
            .case(case_id)
            .await?
            .ok_or_else(|| AppError::NotFound(what.clone()))?;
        let events = self.store.adverse_events_of_cases(&[case_id]).await?;
        if !events
            .iter()
            .any(|e| e.counts() && at_least_moderate(e.details.severity))
        {
            return Err(AppError::invalid(
                "case_id",
                "the M&M list holds cases with a moderate or worse adverse event; this case has none",
            ));
        }
        let review = self
            .store
            .mm_review(case_id)
            .await?
            .unwrap_or_else(|| MmReview::new(case_id, case.patient_id));
        if review.version != expected_version {
            return Err(AppError::stale(
                format!("M&M record of case {case_id}"),
                expected_version,
                review.version,
            ));
        }
        let now = self.clock.now();
        let (after, decided) = review.add_note(note, &who.username, now, self.time.date_of(now))?;
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let audit = who.audit_entry(
            now,
            Audit::of("add_note", "mm_review", case_id, case.patient_id),
        );
        self.store
            .add_mm_note(&after, &decided, &meta, &[audit])
            .await?;
        Ok(after)
    }

    /// The M&M record's notes as events (who, when).
    pub async fn mm_history(
        &self,
        who: &Principal,
        case_id: CaseId,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        who.require(Permission::ReadDeidentifiedOutcomes)?;
        Ok(self.store.mm_review_history(case_id).await?)
    }
}

impl App {
    /// The de-identified registry export of the cases whose procedure began in [from, until):
    /// procedures with their dose summary and outcome, devices, adverse events — pseudonymised
    /// with the department's key, dates as asked. Audited as one export naming the period.
    pub async fn registry_export(
        &self,
        who: &Principal,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        dates: DateMode,
    ) -> Result<RegistryExport, AppError> {
        who.require(Permission::ReadDeidentifiedOutcomes)?;
        let cases = self
            .store
            .cases_begun(&RowScope::Department, from, until, QUALITY_CASES_AT_MOST)
            .await?;
        let ids: Vec<CaseId> = cases.iter().map(|c| c.id).collect();
        let patient_ids: Vec<_> = cases.iter().map(|c| c.patient_id).collect();
        let patients: HashMap<_, _> =
            keyed(self.store.patients_by_id(&patient_ids).await?, |p| p.id);
        let events = self.store.adverse_events_of_cases(&ids).await?;
        let devices = self.store.devices_of_cases(&ids).await?;
        let reports = self.store.dose_reports_of_cases(&ids).await?;
        let events_of = grouped(&events, |e| e.case_id);
        let devices_of = grouped(&devices, |d| d.device.case_id);
        let totals_of = grouped(
            reports
                .iter()
                .filter_map(|r| Some((r.case_id?, r.report_totals()))),
            |(case_id, _)| *case_id,
        );
        let records: Vec<CaseRecord> = cases
            .iter()
            .filter_map(|case| {
                let patient = patients.get(&case.patient_id)?;
                Some(CaseRecord {
                    case,
                    patient,
                    procedure_name: case
                        .planned_procedure()
                        .and_then(|p| self.catalogue.get(p))
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                    events: events_of.get(&case.id).cloned().unwrap_or_default(),
                    devices: devices_of.get(&case.id).cloned().unwrap_or_default(),
                    dose: totals_of.get(&case.id).map(|t| {
                        case_totals(
                            &t.iter()
                                .map(|(_, totals)| totals.clone())
                                .collect::<Vec<_>>(),
                        )
                    }),
                })
            })
            .collect();
        let key = self
            .store
            .deployment_secret("registry_pseudonym_key")
            .await?;
        let names = Pseudonymiser::new(key.as_bytes(), dates, &self.time);
        let export = export(&records, from, until, &names, self.attribution_window());
        self.audit_reads(
            who,
            vec![Audit {
                action: "export",
                resource_type: "registry_export",
                resource_id: Some(format!(
                    "{}/{} {} cases, dates {}",
                    from.to_rfc3339(),
                    until.to_rfc3339(),
                    export.procedures.len(),
                    dates.as_str()
                )),
                patient_id: None,
                break_glass_reason: None,
                outcome: "allowed",
            }],
        )
        .await?;
        Ok(export)
    }
}

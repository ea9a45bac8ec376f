//! Adverse events (clinical-rules.md §6): listed within scope, reported at any time after the
//! procedure began, corrected, attributed or withdrawn with a reason — each an audited event.

use crate::{keyed, App, AppError, Audit, Principal};
use chrono::Duration;
use seldinger_domain::access::Permission;
use seldinger_domain::adverse_event::{
    AdverseEvent, AdverseEventChange, AdverseEventDetails, AttributionBasis,
};
use seldinger_domain::safety::ThresholdId;
use seldinger_domain::{CaseId, EventMeta};
use seldinger_store::{AdverseEventFilter, Record, RecordedEvent};
use serde::Serialize;
use std::collections::HashMap;

/// An adverse event with whether it counts as its procedure's, and why.
#[derive(Debug, Clone, Serialize)]
pub struct AdverseEventStanding {
    #[serde(flatten)]
    pub event: AdverseEvent,
    /// The procedure's adverse event (§6): by the window after it, or a physician's word.
    pub attributed: bool,
    pub attribution_basis: AttributionBasis,
    /// The case's procedure (catalogue id).
    pub procedure: Option<String>,
}

/// At most this many adverse events in one list.
pub const ADVERSE_EVENTS_AT_MOST: usize = 5000;

impl App {
    /// The attribution window (§6): the outcome check's reference row, the same 30 days.
    pub(crate) fn attribution_window(&self) -> Duration {
        let days = self
            .safety
            .threshold(ThresholdId::OutcomeCheckAfterDays)
            .value;
        Duration::days(days as i64)
    }

    /// The events `who` may see that match `filter`, each audited as read.
    pub async fn adverse_events(
        &self,
        who: &Principal,
        filter: &AdverseEventFilter,
    ) -> Result<Vec<AdverseEventStanding>, AppError> {
        who.require(Permission::ReadCases)?;
        let events = self
            .store
            .adverse_events(
                &who.scope(Permission::ReadCases),
                filter,
                ADVERSE_EVENTS_AT_MOST,
            )
            .await?;
        let standings = self.adverse_event_standings(events).await?;
        self.audit_reads(
            who,
            standings
                .iter()
                .map(|s| Audit::of("read", "adverse_event", &s.event.id, s.event.patient_id))
                .collect(),
        )
        .await?;
        Ok(standings)
    }

    /// Each event with its attribution, reading the cases once.
    pub async fn adverse_event_standings(
        &self,
        events: Vec<AdverseEvent>,
    ) -> Result<Vec<AdverseEventStanding>, AppError> {
        let ids: Vec<CaseId> = events.iter().map(|e| e.case_id).collect();
        let cases: HashMap<_, _> = keyed(self.store.cases_by_id(&ids).await?, |c| c.id);
        let window = self.attribution_window();
        Ok(events
            .into_iter()
            .map(|event| {
                let case = cases.get(&event.case_id);
                let (attributed, attribution_basis) =
                    event.attributed(case.and_then(|c| c.procedure_started_at), window);
                AdverseEventStanding {
                    attributed,
                    attribution_basis,
                    procedure: case
                        .and_then(|c| c.planned_procedure())
                        .map(|p| p.as_str().to_string()),
                    event,
                }
            })
            .collect())
    }

    /// One event, if `who` may open it, with its changes. Audited.
    pub async fn adverse_event(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<(AdverseEventStanding, Vec<RecordedEvent>), AppError> {
        let what = format!("adverse event {id}");
        let (event, opened) = self
            .opened(
                who,
                self.store.adverse_event(id).await?,
                Record::AdverseEvent,
                id,
                &what,
            )
            .await?;
        let history = self.store.adverse_event_history(id).await?;
        let standing = self
            .adverse_event_standings(vec![event])
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound(what.clone()))?;
        self.audit_reads(
            who,
            vec![
                Audit::of("read", "adverse_event", id, standing.event.patient_id)
                    .break_glass(&opened),
            ],
        )
        .await?;
        Ok((standing, history))
    }

    /// Reports an adverse event of a case's procedure, as `who`: the permission, the case in
    /// scope, a procedure that has begun, both grades (§6); then the event with its audit row.
    pub async fn report_adverse_event(
        &self,
        who: &Principal,
        case_id: CaseId,
        details: &AdverseEventDetails,
    ) -> Result<AdverseEventStanding, AppError> {
        who.require(Permission::ReportAdverseEvents)?;
        let what = format!("case {case_id}");
        let (case, opened) = self
            .opened(
                who,
                self.store.case(case_id).await?,
                Record::Case,
                &case_id.to_string(),
                &what,
            )
            .await?;
        let Some(started) = case.procedure_started_at else {
            return Err(AppError::invalid(
                "case",
                "the procedure has not begun: an adverse event is of a procedure done (§6)",
            ));
        };
        let now = self.clock.now();
        let details = details.check(Some(started), now, true)?;
        let reported = self
            .store
            .adverse_events(
                &seldinger_domain::access::RowScope::Department,
                &AdverseEventFilter {
                    case_id: Some(case_id),
                    ..Default::default()
                },
                ADVERSE_EVENTS_AT_MOST,
            )
            .await?
            .iter()
            .filter(|e| e.id.contains("-r"))
            .count();
        let event = AdverseEvent {
            id: format!("{case_id}-r{}", reported + 1),
            case_id,
            patient_id: case.patient_id,
            details,
            attribution: None,
            reported_by: who.username.clone(),
            reported_at: now,
            entered_in_error: None,
            version: 1,
        };
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let audit = who.audit_entry(
            now,
            Audit::of("report", "adverse_event", &event.id, case.patient_id).break_glass(&opened),
        );
        self.store
            .report_adverse_event(&event, &meta, &[audit])
            .await?;
        self.adverse_event_standings(vec![event])
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound(what))
    }

    /// Corrects, attributes or withdraws an event, as `who`, based on `expected_version`.
    pub async fn change_adverse_event(
        &self,
        who: &Principal,
        id: &str,
        expected_version: u64,
        change: &AdverseEventChange,
    ) -> Result<AdverseEventStanding, AppError> {
        let what = format!("adverse event {id}");
        let (event, opened) = self
            .opened(
                who,
                self.store.adverse_event(id).await?,
                Record::AdverseEvent,
                id,
                &what,
            )
            .await?;
        who.require(match change {
            AdverseEventChange::AttributionDecided { .. } => Permission::AttributeAdverseEvents,
            _ => Permission::ReportAdverseEvents,
        })?;
        if event.version != expected_version {
            return Err(AppError::stale(what, expected_version, event.version));
        }
        let started = self
            .store
            .case(event.case_id)
            .await?
            .and_then(|c| c.procedure_started_at);
        let now = self.clock.now();
        let decided = event.decide(change, started, now)?;
        let mut after = event.clone();
        after.apply(&decided, &who.username, now);
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let audit = who.audit_entry(
            now,
            Audit::of(decided.kind(), "adverse_event", id, event.patient_id).break_glass(&opened),
        );
        self.store
            .change_adverse_event(&after, &decided, &meta, &[audit])
            .await?;
        self.adverse_event_standings(vec![after])
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound(what))
    }
}

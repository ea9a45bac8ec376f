//! The procedure report (issue 15): its sections from the record, the IR physician's draft,
//! the signature that freezes it, and addenda — each an audited event, the signed report and
//! each addendum owed to the hospital's systems (ORU^R01) in the same commit.

use crate::outbox::Notice;
use crate::{App, AppError, Audit, Principal};
use seldinger_domain::access::{Permission, RowScope};
use seldinger_domain::dose::{assess, case_totals};
use seldinger_domain::followup::dose_discharge_note;
use seldinger_domain::report::{
    plain_text, sections, ProcedureReport, ReportChange, ReportFacts, ReportStatus, ReportText,
    Section,
};
use seldinger_domain::{Case, CaseId, EventMeta};
use seldinger_store::{AdverseEventFilter, FollowUpFilter, Record, RecordedEvent};
use serde::Serialize;

/// A case's report as it reads now: signed (frozen) or the draft over the record.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    pub report: ProcedureReport,
    pub status: ReportStatus,
    pub sections: Vec<Section>,
    /// The whole report as text, with the signature and addenda (what is printed and sent).
    pub text: String,
    pub procedure_name: String,
}

/// What a physician asks of the report.
#[derive(Debug, Clone)]
pub enum ReportRequest {
    SaveDraft(ReportText),
    Sign(ReportText),
    Addendum { reason: String, text: String },
}

impl App {
    fn procedure_name(&self, case: &Case) -> String {
        case.planned_procedure()
            .and_then(|id| self.catalogue.get(id))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "Procedure".to_string())
    }

    /// The sections of `case`'s report with `text`, from the record as it is now.
    async fn report_sections(
        &self,
        case: &Case,
        text: &ReportText,
    ) -> Result<(Vec<Section>, String), AppError> {
        let referral = self.store.referral(case.referral_id).await?;
        let procedure_name = self.procedure_name(case);
        let reports = self.store.case_dose_reports(case.id).await?;
        let totals = (!reports.is_empty()).then(|| {
            case_totals(
                &reports
                    .iter()
                    .map(seldinger_store::StoredDoseReport::report_totals)
                    .collect::<Vec<_>>(),
            )
        });
        let note = totals.as_ref().and_then(|t| {
            let end = case
                .procedure_completed_at
                .unwrap_or_else(|| self.clock.now());
            dose_discharge_note(&assess(t, end, &self.safety), &self.time)
        });
        let adverse_events = self
            .store
            .adverse_events(
                &RowScope::Department,
                &AdverseEventFilter {
                    case_id: Some(case.id),
                    counted_only: true,
                    ..Default::default()
                },
                crate::ADVERSE_EVENTS_AT_MOST,
            )
            .await?
            .into_iter()
            // The report as of now: what had been reported by then.
            .filter(|e| e.reported_at <= self.clock.now())
            .collect::<Vec<_>>();
        let follow_ups = self
            .store
            .follow_up_tasks(
                &RowScope::Department,
                &FollowUpFilter {
                    case_id: Some(case.id),
                    ..Default::default()
                },
            )
            .await?;
        let facts = ReportFacts {
            case,
            referral: referral.as_ref(),
            procedure_name: &procedure_name,
            dose: totals.as_ref().map(|t| (t, note.clone())),
            adverse_events: &adverse_events,
            follow_ups: &follow_ups,
            time: &self.time,
        };
        Ok((sections(&facts, text), procedure_name))
    }

    /// The report as it reads: once signed, as signed (nothing of the record is read again).
    async fn view_of(&self, case: &Case, report: ProcedureReport) -> Result<ReportView, AppError> {
        let (sections, procedure_name) = match &report.signed {
            Some(signed) => (signed.sections.clone(), self.procedure_name(case)),
            None => self.report_sections(case, &report.text).await?,
        };
        Ok(ReportView {
            status: report.status(),
            text: plain_text(&report, &sections, &self.time),
            sections,
            procedure_name,
            report,
        })
    }

    /// A case's report, if `who` may read the case, with its history. Audited.
    pub async fn procedure_report(
        &self,
        who: &Principal,
        case_id: CaseId,
    ) -> Result<(ReportView, Vec<RecordedEvent>), AppError> {
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
        if case.procedure_started_at.is_none() {
            return Err(AppError::NotFound(format!(
                "a report of case {case_id}: its procedure has not begun"
            )));
        }
        let report = self
            .store
            .procedure_report(case_id)
            .await?
            .unwrap_or_else(|| ProcedureReport::new(&case));
        let history = self.store.procedure_report_history(case_id).await?;
        let view = self.view_of(&case, report).await?;
        self.audit_reads(
            who,
            vec![
                Audit::of("read", "procedure_report", case_id, case.patient_id)
                    .break_glass(&opened),
            ],
        )
        .await?;
        Ok((view, history))
    }

    /// Saves the draft, signs, or adds an addendum, as `who` (an IR physician), based on
    /// `expected_version`; the signed report and each addendum are owed to the destinations
    /// that take them, in the same commit.
    pub async fn change_procedure_report(
        &self,
        who: &Principal,
        case_id: CaseId,
        expected_version: u64,
        request: ReportRequest,
    ) -> Result<ReportView, AppError> {
        who.require(Permission::SignReports)?;
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
        if case.procedure_started_at.is_none() {
            return Err(AppError::invalid(
                "case",
                "the procedure has not begun: there is nothing to report yet",
            ));
        }
        let report = self
            .store
            .procedure_report(case_id)
            .await?
            .unwrap_or_else(|| ProcedureReport::new(&case));
        if report.version != expected_version {
            return Err(AppError::stale(
                format!("procedure report of case {case_id}"),
                expected_version,
                report.version,
            ));
        }
        let change = match request {
            ReportRequest::SaveDraft(text) => ReportChange::DraftSaved { text },
            ReportRequest::Sign(text) => {
                // What is signed is the report as it reads with these words, now.
                let checked = text.check().unwrap_or(text);
                let (sections, _) = self.report_sections(&case, &checked).await?;
                ReportChange::Signed {
                    text: checked,
                    sections,
                }
            }
            ReportRequest::Addendum { reason, text } => {
                ReportChange::AddendumAdded { reason, text }
            }
        };
        let decided = report.decide(&change, &case)?;
        let now = self.clock.now();
        let mut after = report.clone();
        after.apply(&decided, &who.username, now);
        let view = self.view_of(&case, after.clone()).await?;
        let notice = match decided {
            ReportChange::Signed { .. } => Some(Notice::ReportSigned),
            ReportChange::AddendumAdded { .. } => Some(Notice::ReportAddendum),
            ReportChange::DraftSaved { .. } => None,
        };
        let owed = match notice {
            Some(notice) => {
                let referral = self.store.referral(case.referral_id).await?;
                let lines = view.text.lines().map(str::to_string).collect();
                self.owed_notice(
                    &case,
                    notice,
                    referral,
                    &who.username,
                    None,
                    now,
                    Some(lines),
                )
                .await?
            }
            None => Vec::new(),
        };
        let meta = EventMeta {
            actor: who.actor()?,
            at: now,
            reason: None,
        };
        let audit = who.audit_entry(
            now,
            Audit::of(decided.kind(), "procedure_report", case_id, case.patient_id)
                .break_glass(&opened),
        );
        self.store
            .change_procedure_report(&after, &decided, &meta, &[audit], &owed)
            .await?;
        self.wake_sender(&owed);
        Ok(view)
    }
}

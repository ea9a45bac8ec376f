//! Dose reports linked to cases by hand: the physicist's link (or unlink), with the follow-up a
//! report brings moving with it.

use crate::{App, AppError, Audit, Principal};
use seldinger_domain::access::{Permission, RowScope};
use seldinger_domain::dose::{assess, case_totals};
use seldinger_domain::dose_link::{LinkBasis, LinkOutcome};
use seldinger_domain::followup::FollowUpTask;
use seldinger_domain::validation::{optional_text, LONG_TEXT};
use seldinger_domain::{CaseId, EventMeta};
use seldinger_store::{FollowUpFilter, StoredDoseReport};

/// A manual link decision, based on the link version its author read.
#[derive(Debug, Clone)]
pub struct LinkChange {
    pub sop_instance_uid: String,
    pub expected_version: u64,
    /// The case the report belongs to; `None` takes it off any case.
    pub case_id: Option<CaseId>,
    /// Why (required): kept with the link event.
    pub reason: String,
}

/// The report after a link, and the follow-up tasks its dose created.
#[derive(Debug, Clone)]
pub struct Linked {
    pub report: StoredDoseReport,
    pub follow_up_tasks_created: Vec<FollowUpTask>,
}

impl App {
    /// A case and its dose reports in the order received, if `who` may read the case's dose.
    pub async fn case_dose_reports(
        &self,
        who: &Principal,
        id: CaseId,
    ) -> Result<(seldinger_domain::Case, Vec<StoredDoseReport>, crate::Opened), AppError> {
        let (case, opened) = self.open_case(who, Permission::ReadDose, id).await?;
        let reports = self.store.case_dose_reports(id).await?;
        Ok((case, reports, opened))
    }

    /// Links (or unlinks) a report by hand: the reason, the case, the versioned link event with
    /// the withdrawal of the follow-up the report no longer calls for on the case it leaves and
    /// the audit row in one commit, then the §5 assessment of the case it joins.
    pub async fn link_dose_report(
        &self,
        who: &Principal,
        change: LinkChange,
    ) -> Result<Linked, AppError> {
        who.require(Permission::ManageDose)?;
        let sop = change.sop_instance_uid.as_str();
        let reason = optional_text(Some(&change.reason), LONG_TEXT)
            .map_err(|e| AppError::invalid("reason", e))?
            .ok_or_else(|| {
                AppError::invalid(
                    "reason",
                    "say why this report belongs to the case (or to none)",
                )
            })?;
        let reason = reason.as_str();
        let case =
            match change.case_id {
                Some(id) => Some(self.store.case(id).await?.ok_or_else(|| {
                    AppError::invalid("case_id", format!("no case has the id {id}"))
                })?),
                None => None,
            };
        let report = self
            .store
            .dose_report(sop)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("dose report {sop}")))?;
        let outcome = match &case {
            Some(case) => LinkOutcome::Linked {
                case_id: case.id,
                basis: LinkBasis::Manual,
            },
            None => LinkOutcome::Unmatched {
                reason: format!("taken off its case by hand: {reason}"),
            },
        };
        let meta = EventMeta {
            actor: who.actor()?,
            at: self.clock.now(),
            reason: Some(reason.to_string()),
        };
        let withdrawn = self
            .tasks_left_behind(&report, case.as_ref().map(|c| c.id), &meta)
            .await?;
        let audit = who.audit_entry(
            meta.at,
            Audit {
                action: "link",
                resource_type: "dose_report",
                resource_id: Some(sop.to_string()),
                patient_id: case.as_ref().map(|c| c.patient_id.to_string()),
                break_glass_reason: None,
                outcome: "allowed",
            },
        );
        self.store
            .record_dose_link(
                sop,
                change.expected_version,
                &outcome,
                &meta,
                &withdrawn,
                &[audit],
            )
            .await?;
        let follow_up_tasks_created = match &case {
            Some(case) => self
                .store
                .assess_case_dose(case.id, &self.safety, &meta)
                .await?
                .map(|(_, tasks)| tasks)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let report = self
            .store
            .dose_report(sop)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("dose report {sop}")))?;
        Ok(Linked {
            report,
            follow_up_tasks_created,
        })
    }

    /// The dose tasks of the case a report leaves that its remaining reports do not call for,
    /// withdrawn with the reason for the move (§5 follow-up must follow the patient who had the dose).
    async fn tasks_left_behind(
        &self,
        report: &StoredDoseReport,
        new_case: Option<CaseId>,
        meta: &EventMeta,
    ) -> Result<Vec<FollowUpTask>, AppError> {
        let sop = report.sop_instance_uid.as_str();
        let Some(old_case) = report.case_id.filter(|old| Some(*old) != new_case) else {
            return Ok(Vec::new());
        };
        let remaining: Vec<_> = self
            .store
            .case_dose_reports(old_case)
            .await?
            .iter()
            .filter(|r| r.sop_instance_uid != sop)
            .map(StoredDoseReport::report_totals)
            .collect();
        let assessment = (!remaining.is_empty())
            .then(|| assess(&case_totals(&remaining), meta.at, &self.safety));
        // The whole case's tasks, whoever may see them: this is the system keeping its own books.
        let open = self
            .store
            .follow_up_tasks(
                &RowScope::Department,
                &FollowUpFilter {
                    open: true,
                    case_id: Some(old_case),
                    ..Default::default()
                },
            )
            .await?;
        let why = format!(
            "the dose report {sop} that called for it was moved off this case: {}",
            meta.reason.as_deref().unwrap_or_default()
        );
        Ok(
            seldinger_domain::followup::dose_tasks_no_longer_needed(&open, assessment.as_ref())
                .into_iter()
                .filter_map(|t| t.withdraw(meta.actor.as_str(), meta.at, &why))
                .collect(),
        )
    }
}

//! The lists every adapter shows, each read within the reader's row scope (decided here, applied
//! by the store in the query). Not audited here: an adapter audits the rows it shows.

use crate::{App, AppError, Principal};
use seldinger_domain::access::{Permission, Role, RowScope};
use seldinger_domain::lifecycle::Case;
use seldinger_domain::patient::{name_words, Patient};
use seldinger_domain::performed_step::PerformedStep;
use seldinger_domain::referral::Referral;
use seldinger_domain::CaseId;
use seldinger_store::{
    CaseFilter, Cursor, DoseReportFilter, FiledReferral, Page, PatientFilter, Record,
    ReferralFilter, StoredDoseReport,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A period's dose reports as the physicist reads them: per case (each case's reports in the
/// order received, so the latest of a study is last), and those linked to no case `who` may see.
/// Each report with its totals, not its extraction (`extracted` is null).
pub struct DoseByCase {
    pub cases: Vec<(Case, Vec<StoredDoseReport>)>,
    pub unmatched: Vec<StoredDoseReport>,
    /// What the rooms' systems reported of those cases (their preliminary dose), by case.
    pub steps: std::collections::HashMap<CaseId, Vec<PerformedStep>>,
}

/// Periods' dose by case lately read, by the department's change sequence, the reader's scope
/// and the period: the statistics, the dose page and each case's comparison with its peers
/// read one year of reports, so an unchanged department is read once, not per request.
pub type DoseCache = crate::kept::Kept<DoseByCase, 4>;

/// A member of staff, without anything that signs them in.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffMember {
    pub id: uuid::Uuid,
    pub display_name: String,
    pub role: Role,
    pub active: bool,
    pub since: chrono::DateTime<chrono::Utc>,
}

impl App {
    /// A page of the cases `who` may see that match `filter`.
    pub async fn cases_page(
        &self,
        who: &Principal,
        filter: &CaseFilter,
        after: Option<&Cursor>,
    ) -> Result<Page<Case>, AppError> {
        Ok(self
            .store
            .cases_page(&who.scope(Permission::ReadCases), filter, after)
            .await?)
    }

    /// Every case `who` may see that matches `filter`, read page by page (`filter.limit` a
    /// page's size): for a computation over all of them (a day's readiness), not a list to show.
    pub async fn cases(&self, who: &Principal, filter: &CaseFilter) -> Result<Vec<Case>, AppError> {
        every_page(|after| async move { self.cases_page(who, filter, after.as_ref()).await }).await
    }

    /// A page of the referrals `who` may read, newest first; with `awaiting_vetting`, only those
    /// whose case waits for a decision.
    pub async fn referrals_page(
        &self,
        who: &Principal,
        awaiting_vetting: bool,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Referral>, AppError> {
        Ok(self
            .store
            .referrals_page(
                &who.scope(Permission::ReadReferrals),
                awaiting_vetting,
                after,
                limit,
            )
            .await?)
    }

    /// A page of the referrals `who` may read that match `filter`, newest first, with who filed
    /// each and where its case stands.
    pub async fn find_referrals(
        &self,
        who: &Principal,
        filter: &ReferralFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<FiledReferral>, AppError> {
        who.require(Permission::ReadReferrals)?;
        Ok(self
            .store
            .find_referrals_page(&who.scope(Permission::ReadReferrals), filter, after, limit)
            .await?)
    }

    /// One referral as [`Self::find_referrals`] gives it, if `who` may open it (in scope, or by
    /// break-glass).
    pub async fn filed_referral(
        &self,
        who: &Principal,
        id: seldinger_domain::ReferralId,
    ) -> Result<(FiledReferral, crate::Opened), AppError> {
        let what = format!("referral {id}");
        let opened = self
            .open(
                who,
                Permission::ReadReferrals,
                Record::Referral,
                &id.to_string(),
                &what,
            )
            .await?;
        let filter = ReferralFilter {
            ids: Some(vec![id]),
            ..ReferralFilter::default()
        };
        let found = self
            .store
            .find_referrals_page(
                &seldinger_domain::access::RowScope::Department,
                &filter,
                None,
                1,
            )
            .await?;
        let filed = found
            .items
            .into_iter()
            .next()
            .ok_or(AppError::NotFound(what))?;
        Ok((filed, opened))
    }

    /// The referrals waiting for `who` to vet them, newest first.
    pub async fn vetting_queue(
        &self,
        who: &Principal,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Referral>, AppError> {
        Ok(self
            .store
            .referrals_page(&who.scope(Permission::VetCases), true, after, limit)
            .await?)
    }

    /// A page of the patients `who` may see matching the MRN and/or name (neither: all of them).
    pub async fn search_patients_page(
        &self,
        who: &Principal,
        mrn: Option<&str>,
        name: Option<&str>,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Patient>, AppError> {
        let filter = PatientFilter {
            mrn: mrn.map(str::to_string),
            name: name.map(str::to_string),
            ..PatientFilter::default()
        };
        self.find_patients(who, &filter, after, limit).await
    }

    /// A page of the patients `who` may see that match every condition of `filter`, by name.
    pub async fn find_patients(
        &self,
        who: &Principal,
        filter: &PatientFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page<Patient>, AppError> {
        who.require(Permission::ReadPatients)?;
        if let Some(name) = &filter.name {
            if name_words(name).is_empty() {
                return Err(AppError::bad_request(
                    "name",
                    format!(
                        "'{name}' holds no word to look for: give letters or digits (spaces and hyphens only separate words)"
                    ),
                ));
            }
        }
        Ok(self
            .store
            .search_patients_page(&who.scope(Permission::ReadPatients), filter, after, limit)
            .await?)
    }

    /// A page of the dose reports `who` may read that match `filter`, the newest study first.
    pub async fn dose_reports_page(
        &self,
        who: &Principal,
        filter: &DoseReportFilter,
        after: Option<&Cursor>,
    ) -> Result<Page<StoredDoseReport>, AppError> {
        Ok(self
            .store
            .dose_reports_page(&who.scope(Permission::ReadDose), filter, after)
            .await?)
    }

    /// Every dose report `who` may read that matches `filter` (`filter.limit` a page's size),
    /// grouped by their case; a period's kept while the department is unchanged ([`DoseCache`]).
    pub async fn dose_by_case(
        &self,
        who: &Principal,
        filter: &DoseReportFilter,
    ) -> Result<Arc<DoseByCase>, AppError> {
        if filter.patient_id.is_some() || filter.case_id.is_some() {
            // One patient's or case's few reports: read, not kept in the place of a year's.
            return Ok(Arc::new(self.read_dose_by_case(who, filter).await?));
        }
        // Read before the reports: a change while they are read moves it, so what is kept
        // under it is never newer than its key says.
        let sequence = self.store.change_sequence().await?;
        let key = format!(
            "{sequence}|{:?}|{filter:?}",
            who.scope(Permission::ReadDose)
        );
        self.dose_cache
            .get_or_build(key, || self.read_dose_by_case(who, filter))
            .await
    }

    async fn read_dose_by_case(
        &self,
        who: &Principal,
        filter: &DoseReportFilter,
    ) -> Result<DoseByCase, AppError> {
        // Every report of the period, page by page: statistics over a cut-off list would be
        // wrong without a word. Their totals only: a year holds thousands, each with its events.
        let filter = &DoseReportFilter {
            totals_only: true,
            ..filter.clone()
        };
        let reports =
            every_page(
                |after| async move { self.dose_reports_page(who, filter, after.as_ref()).await },
            )
            .await?;
        let cases = self.cases_of(&reports).await?;
        let mut by_case: BTreeMap<CaseId, Vec<StoredDoseReport>> = BTreeMap::new();
        let mut unmatched = Vec::new();
        for report in reports {
            match report.case_id.filter(|id| cases.contains_key(id)) {
                Some(id) => by_case.entry(id).or_default().push(report),
                None => unmatched.push(report),
            }
        }
        let ids: Vec<CaseId> = by_case.keys().copied().collect();
        let steps = self.store.performed_steps_of_cases(&ids).await?;
        let cases = by_case
            .into_iter()
            .filter_map(|(id, mut reports)| {
                // Received order decides which of a study's reports is the latest.
                reports.sort_by_key(|r| r.received_at);
                cases.get(&id).map(|case| (case.clone(), reports))
            })
            .collect();
        Ok(DoseByCase {
            cases,
            unmatched,
            steps,
        })
    }

    /// Whether `who` may see the whole record of `patient` (labs, drugs, history) without
    /// break-glass: a referring clinician only for patients they registered (docs/roles.md).
    /// The patient read already: the department's staff need no read to know.
    pub async fn sees_patient_record(
        &self,
        who: &Principal,
        patient: &Patient,
    ) -> Result<bool, AppError> {
        let scope = who.scope(Permission::ReadPatients);
        Ok(match scope {
            RowScope::Department => true,
            RowScope::Nothing => false,
            RowScope::ReferredBy(_) => {
                self.store
                    .in_scope(&scope, Record::PatientRecord, &patient.id.to_string())
                    .await?
            }
        })
    }

    /// The department's staff as others may know them: the people who hold a clinical or
    /// departmental role (not administrators or interface accounts), with no credential, sign-in
    /// or lock state — only what a colleague or an EHR needs to name them.
    pub async fn staff(&self, who: &Principal) -> Result<Vec<StaffMember>, AppError> {
        who.require(Permission::ReadReferenceData)?;
        Ok(self
            .staff_users()
            .await?
            .into_iter()
            .map(|u| StaffMember {
                id: u.id,
                display_name: u.display_name,
                role: u.role,
                active: !u.disabled,
                since: u.created_at,
            })
            .collect())
    }

    /// The department's staff by sign-in name → their Practitioner id: references name people by
    /// id, never by what signs them in.
    pub async fn staff_ids(&self) -> Result<HashMap<String, uuid::Uuid>, AppError> {
        Ok(self
            .staff_users()
            .await?
            .into_iter()
            .map(|u| (u.username, u.id))
            .collect())
    }

    /// People of the department, as the Practitioner resource shows them (not the
    /// administrators, nor the systems' service accounts).
    async fn staff_users(&self) -> Result<Vec<seldinger_store::User>, AppError> {
        let mut users = self.store.users().await?;
        users.retain(|u| {
            !matches!(
                u.role,
                Role::Administrator | Role::Interface | Role::Monitoring
            )
        });
        Ok(users)
    }

    /// The cases the reports are linked to, by id (one query).
    pub async fn cases_of(
        &self,
        reports: &[StoredDoseReport],
    ) -> Result<BTreeMap<CaseId, Case>, AppError> {
        let ids: Vec<CaseId> = reports.iter().filter_map(|r| r.case_id).collect();
        Ok(self
            .store
            .cases_by_id(&ids)
            .await?
            .into_iter()
            .map(|case| (case.id, case))
            .collect())
    }
}

/// Every row of a paged list, page after page until none follows.
async fn every_page<T, Read, Reading>(mut read: Read) -> Result<Vec<T>, AppError>
where
    Read: FnMut(Option<Cursor>) -> Reading,
    Reading: std::future::Future<Output = Result<Page<T>, AppError>>,
{
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = read(after).await?;
        rows.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(rows),
        }
    }
}

//! What a patient's cases hold (the procedure as done, devices left, complications), read
//! within the caller's scope: the resources made from them are listed per patient, in memory
//! (one patient's cases are few), or read by an id that names their case.

use crate::bundle::Entry;
use crate::caller::Caller;
use crate::error::FhirError;
use crate::Request;
use axum::http::StatusCode;
use seldinger_app::{Audit, Opened};
use seldinger_domain::access::Permission;
use seldinger_domain::{Case, CaseId, PatientId};
use seldinger_store::CaseFilter;

/// Every case of the patient the caller may see.
pub async fn cases_of(
    request: &Request,
    caller: &Caller,
    patient: PatientId,
) -> Result<Vec<Case>, FhirError> {
    let filter = CaseFilter {
        patient_id: Some(patient),
        limit: 1000,
        ..CaseFilter::default()
    };
    Ok(request.app.cases(caller, &filter).await?)
}

/// The case an id names (`<prefix><case>` or `<prefix><case>-<n>`) and the number after it.
pub fn case_of_id(id: &str, prefix: &str) -> Option<(CaseId, Option<usize>)> {
    let rest = id.strip_prefix(prefix)?;
    let (case, n) = match rest.get(36..) {
        Some("") | None => (rest, None),
        Some(tail) => (rest.get(..36)?, Some(tail.strip_prefix('-')?.parse().ok()?)),
    };
    Some((case.parse().ok()?, n))
}

/// One case, if the caller may read it (refusals read as "not found": `what`).
pub async fn open_case(
    request: &Request,
    caller: &Caller,
    case: CaseId,
    what: &str,
) -> Result<(Case, Opened), FhirError> {
    request
        .app
        .open_case(caller, Permission::ReadCases, case)
        .await
        .map_err(|e| match FhirError::from(e) {
            e if e.status == StatusCode::NOT_FOUND => FhirError::not_found(what),
            e => e,
        })
}

/// One resource made from a whole case (Appointment, Procedure), read by the case's id: within
/// the caller's scope, audited as a read of the case, with the case's version as its own.
pub async fn read_case_resource(
    request: &Request,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    to_fhir: impl Fn(&Case, &seldinger_domain::ProcedureCatalogue) -> Option<serde_json::Value>,
) -> Result<axum::response::Response, FhirError> {
    let what = format!("{resource_type}/{id}");
    let case = id.parse().map_err(|_| FhirError::not_found(&what))?;
    let (case, opened) = open_case(request, caller, case, &what).await?;
    let resource =
        to_fhir(&case, &request.app.catalogue).ok_or_else(|| FhirError::not_found(&what))?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "case", case.id, case.patient_id).break_glass(&opened)],
        )
        .await?;
    Ok(crate::respond::resource(
        StatusCode::OK,
        &resource,
        case.version,
        case.updated_at,
    ))
}

/// The resources made from one list of each case (devices left, complications): those `keep`
/// accepts, as entries, with the audit row of each.
pub fn listed_entries<T>(
    cases: &[Case],
    list: impl Fn(&Case) -> &[T],
    to_fhir: impl Fn(&Case, usize, &T) -> serde_json::Value,
    keep: impl Fn(&T, &str) -> bool,
    resource_type: &'static str,
    audited_as: &'static str,
) -> (Vec<Entry>, Vec<Audit<'static>>) {
    let mut entries = Vec::new();
    let mut audits = Vec::new();
    for case in cases {
        for (n, item) in list(case).iter().enumerate() {
            let resource = to_fhir(case, n, item);
            let id = resource["id"].as_str().unwrap_or_default().to_string();
            if !keep(item, &id) {
                continue;
            }
            audits.push(Audit::of(
                "fhir-search",
                audited_as,
                id.clone(),
                case.patient_id,
            ));
            entries.push(Entry {
                resource_type,
                id,
                resource,
            });
        }
    }
    (entries, audits)
}

/// A search of what was done in one patient's cases (Procedure, DiagnosticReport): the cases
/// whose procedure began within `date` and that `keep` accepts, made into resources by
/// `to_fhir`, newest first, each audited as a read of its case, in one page.
pub async fn search_done(
    request: &Request,
    caller: &Caller,
    search: &crate::search::Search,
    resource_type: &'static str,
    what: &str,
    keep: impl Fn(&Case) -> bool,
    to_fhir: impl Fn(&Case, &seldinger_domain::ProcedureCatalogue) -> Option<serde_json::Value>,
) -> Result<axum::response::Response, FhirError> {
    let patient = crate::patient_list::required_patient(search, what)?;
    let date = search.instants("date", |day| Some(request.app.time.start_of(day)))?;
    let ids = search.ids()?;
    let cases = match patient {
        Some(patient) => cases_of(request, caller, patient).await?,
        None => Vec::new(),
    };
    let mut shown: Vec<(serde_json::Value, &Case)> = cases
        .iter()
        .filter(|c| {
            ids.as_ref()
                .is_none_or(|ids| ids.contains(&c.id.to_string()))
        })
        .filter(|c| keep(c))
        .filter(|c| {
            c.procedure_started_at.is_some_and(|at| {
                date.from.is_none_or(|f| at >= f) && date.before.is_none_or(|b| at < b)
            })
        })
        .filter_map(|c| to_fhir(c, &request.app.catalogue).map(|r| (r, c)))
        .collect();
    shown.sort_by_key(|(_, case)| std::cmp::Reverse(case.procedure_started_at));
    audit_cases_shown(request, caller, shown.iter().map(|(_, c)| *c)).await?;
    let entries = shown
        .into_iter()
        .map(|(resource, case)| Entry {
            resource_type,
            id: case.id.to_string(),
            resource,
        })
        .collect();
    crate::patient_list::one_page(request, search, resource_type, entries, what)
}

/// The history of a resource made from a whole case (Appointment, Procedure, DiagnosticReport):
/// the case's versions from its event log, those in which the resource existed, or one of them
/// (`version`). Audited as a history read of the case.
pub async fn case_resource_versions(
    request: &Request,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    version: Option<&str>,
    to_fhir: impl Fn(&Case, &seldinger_domain::ProcedureCatalogue) -> Option<serde_json::Value>,
) -> Result<axum::response::Response, FhirError> {
    let what = format!("{resource_type}/{id}");
    let case: CaseId = id.parse().map_err(|_| FhirError::not_found(&what))?;
    let (versions, opened) =
        request
            .app
            .case_versions(caller, case)
            .await
            .map_err(|e| match FhirError::from(e) {
                e if e.status == StatusCode::NOT_FOUND => FhirError::not_found(&what),
                e => e,
            })?;
    let Some((current, _)) = versions.last() else {
        return Err(FhirError::not_found(&what));
    };
    request
        .app
        .audit_reads(
            caller,
            vec![
                Audit::of("fhir-history", "case", current.id, current.patient_id)
                    .break_glass(&opened),
            ],
        )
        .await?;
    let existed: Vec<crate::bundle::Version> = versions
        .iter()
        .filter_map(|(case, event)| {
            to_fhir(case, &request.app.catalogue).map(|resource| crate::bundle::Version {
                resource,
                version: case.version,
                at: event.at,
            })
        })
        .collect();
    match version {
        Some(wanted) => {
            let missing = || FhirError::not_found(format!("{what}/_history/{wanted}"));
            let wanted: u64 = wanted.parse().map_err(|_| missing())?;
            let found = existed
                .into_iter()
                .find(|v| v.version == wanted)
                .ok_or_else(missing)?;
            Ok(crate::respond::resource(
                StatusCode::OK,
                &found.resource,
                found.version,
                found.at,
            ))
        }
        None if existed.is_empty() => Err(FhirError::not_found(&what)),
        None => Ok(crate::respond::fhir_json(
            StatusCode::OK,
            &crate::bundle::history(&request.base, resource_type, id, existed),
        )),
    }
}

/// Audits the cases a search shows, one row each.
pub async fn audit_cases_shown<'a>(
    request: &Request,
    caller: &Caller,
    cases: impl Iterator<Item = &'a Case>,
) -> Result<(), FhirError> {
    request
        .app
        .audit_reads(
            caller,
            cases
                .map(|c| Audit::of("fhir-search", "case", c.id, c.patient_id))
                .collect(),
        )
        .await?;
    Ok(())
}

//! DiagnosticReport: the procedure report of a case, made from its procedure record — what was
//! done, by whom, the access, contrast, findings, technical success, complications, devices left
//! and drugs given — as readable text (`presentedForm`) with the findings as its conclusion.
//!
//! Nobody signs it yet (the signed, locked report with addenda is issue 15), so it is
//! `preliminary` once the procedure is complete and `partial` while it is under way: a receiving
//! EHR must not file it as final.

use crate::caller::Caller;
use crate::error::FhirError;
use crate::respond::instant;
use crate::search::{Kind, Param, Search};
use crate::{Request, Resource};
use axum::response::Response;
use base64::Engine;
use seldinger_domain::report::{plain_text, ProcedureReport, ReportStatus};
use seldinger_domain::{Case, ProcedureCatalogue};
use seldinger_domain::{CaseId, DepartmentTime};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const RESOURCE: Resource = Resource {
    name: "DiagnosticReport",
    documentation: "The procedure report of a case, from its procedure record (category RAD, LOINC 18748-4): operators, guidance, access, contrast, findings (conclusion), technical success, complications, devices left and drugs given as text/plain presentedForm. Partial while under way, preliminary once complete, final once the IR physician signs the structured report (its text as signed, the impression as conclusion), amended with addenda. Search by patient.",
    params: &[
        Param {
            name: "patient",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id); required",
        },
        Param {
            name: "date",
            kind: Kind::Date,
            documentation: "when the procedure started, with prefixes",
        },
        Param {
            name: "status",
            kind: Kind::Token,
            documentation: "partial (under way), preliminary (complete, unsigned), final (signed) or amended (signed, with addenda)",
        },
    ],
    history: true,
    create: false,
};

/// LOINC 18748-4: Diagnostic imaging study (the report of one).
const REPORT_CODE: &str = "18748-4";

fn status(case: &Case, signed: Option<&ProcedureReport>) -> &'static str {
    match signed.map(ProcedureReport::status) {
        Some(ReportStatus::Final) => "final",
        Some(ReportStatus::Amended) => "amended",
        _ if case.procedure_completed_at.is_some() => "preliminary",
        _ => "partial",
    }
}

/// The signed report over the record's: final (or amended, with its addenda), its text as
/// signed, the impression as conclusion, issued when signed (or last added to).
fn with_signed(mut resource: Value, report: &ProcedureReport, time: &DepartmentTime) -> Value {
    let Some(signed) = &report.signed else {
        return resource;
    };
    let text = plain_text(report, &signed.sections, time);
    resource["presentedForm"][0]["data"] =
        json!(base64::engine::general_purpose::STANDARD.encode(text));
    resource["conclusion"] = json!(report.text.impression);
    resource["issued"] = json!(instant(report.updated_at));
    resource["resultsInterpreter"] = json!([{"display": signed.by}]);
    resource
}

/// The report as it stood at `at`: signed by then, with the addenda added by then.
fn report_as_of(report: &ProcedureReport, at: chrono::DateTime<chrono::Utc>) -> ProcedureReport {
    let mut then = report.clone();
    if then.signed.as_ref().is_some_and(|s| s.at > at) {
        then.signed = None;
    }
    then.addenda.retain(|a| a.at <= at);
    then
}

/// The history of a case's report: each version of the case with the report as it stood then,
/// and the newest with the report as it stands now (its signature and addenda are the report's
/// own events, not the case's: they show on the newest version, not as versions of their own).
pub async fn history(
    request: &Request,
    caller: &Caller,
    id: &str,
    version: Option<&str>,
) -> Result<Response, FhirError> {
    let case_id = id.parse::<CaseId>().ok();
    let (mut reports, mut newest) = (HashMap::new(), None);
    if let Some(case_id) = case_id {
        let store = &request.app.store;
        if let Some(report) = store
            .procedure_report(case_id)
            .await
            .map_err(seldinger_app::AppError::from)?
        {
            reports.insert(case_id, report);
        }
        newest = store
            .case(case_id)
            .await
            .map_err(seldinger_app::AppError::from)?
            .map(|c| c.version);
    }
    let time = request.app.time;
    crate::case_list::case_resource_versions(
        request,
        caller,
        "DiagnosticReport",
        id,
        version,
        |case, catalogue| {
            if Some(case.version) == newest {
                return report_of(case, catalogue, &reports, &time);
            }
            let then: HashMap<CaseId, ProcedureReport> = reports
                .iter()
                .map(|(id, r)| (*id, report_as_of(r, case.updated_at)))
                .collect();
            report_of(case, catalogue, &then, &time)
        },
    )
    .await
}

/// The case's resource with its signed report, if signed.
fn report_of(
    case: &Case,
    catalogue: &ProcedureCatalogue,
    reports: &HashMap<CaseId, ProcedureReport>,
    time: &DepartmentTime,
) -> Option<Value> {
    let signed = reports.get(&case.id).filter(|r| r.signed.is_some());
    let mut resource = to_fhir(case, catalogue)?;
    resource["status"] = json!(status(case, signed));
    Some(match signed {
        Some(report) => with_signed(resource, report, time),
        None => resource,
    })
}

/// The report's text, section by section, from what the record holds.
pub fn text(case: &Case, catalogue: &ProcedureCatalogue) -> String {
    let mut sections: Vec<(&str, String)> = Vec::new();
    if let Some(procedure) = case.planned_procedure() {
        let name = catalogue
            .get(procedure)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| procedure.as_str().to_string());
        sections.push(("Procedure", name));
    }
    if let Some(done) = &case.procedure {
        let operators: Vec<String> = done
            .operators
            .iter()
            .map(|o| format!("{} ({})", o.name, format!("{:?}", o.role).to_lowercase()))
            .collect();
        sections.push(("Operators", operators.join(", ")));
        sections.push(("Guidance", done.guidance.as_str().replace('_', " ")));
        sections.push(("Access", done.access_site.clone()));
        if let Some(agent) = &done.contrast_agent {
            let volume = done
                .contrast_volume_ml
                .map(|v| format!(", {v} mL"))
                .unwrap_or_default();
            sections.push(("Contrast", format!("{agent}{volume}")));
        }
        if !done.findings.is_empty() {
            sections.push(("Findings", done.findings.clone()));
        }
        if let Some(success) = done.technical_success {
            sections.push((
                "Technical success",
                if success { "yes" } else { "no" }.to_string(),
            ));
        }
    }
    if !case.drugs_given.is_empty() {
        let drugs: Vec<String> = case
            .drugs_given
            .iter()
            .map(|d| format!("{} {}", d.drug, d.dose))
            .collect();
        sections.push(("Drugs given", drugs.join("; ")));
    }
    let complications = if case.complications.is_empty() {
        "none recorded".to_string()
    } else {
        case.complications
            .iter()
            .map(|c| {
                let (_, severity, _, _) = crate::adverse_event::sir(c.severity);
                format!("{} (SIR {})", c.description, severity.to_lowercase())
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    sections.push(("Complications", complications));
    if !case.devices_left.is_empty() {
        let devices: Vec<String> = case
            .devices_left
            .iter()
            .map(|d| d.description.clone())
            .collect();
        sections.push(("Devices left in place", devices.join("; ")));
    }
    sections
        .into_iter()
        .map(|(heading, body)| format!("{heading}: {body}\n"))
        .collect()
}

/// The report of a case whose procedure has begun and been recorded.
pub fn to_fhir(case: &Case, catalogue: &ProcedureCatalogue) -> Option<Value> {
    let started = case.procedure_started_at?;
    let done = case.procedure.as_ref()?;
    let mut period = json!({"start": instant(started)});
    if let Some(end) = case.procedure_completed_at {
        period["end"] = json!(instant(end));
    }
    let name = case
        .planned_procedure()
        .and_then(|p| catalogue.get(p))
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "Interventional radiology procedure".to_string());
    let mut resource = json!({
        "resourceType": "DiagnosticReport",
        "id": case.id.to_string(),
        "meta": {"versionId": case.version.to_string(), "lastUpdated": instant(case.updated_at)},
        "status": status(case, None),
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
            "code": "RAD",
            "display": "Radiology",
        }]}],
        "code": {
            "coding": [{"system": crate::observation::LOINC, "code": REPORT_CODE, "display": "Diagnostic imaging study"}],
            "text": format!("{name} report"),
        },
        "subject": {"reference": format!("Patient/{}", case.patient_id)},
        "basedOn": [{"reference": format!("ServiceRequest/{}", case.referral_id)}],
        "effectivePeriod": period,
        "issued": instant(case.updated_at),
        "presentedForm": [{
            "contentType": "text/plain; charset=utf-8",
            "language": "en",
            "data": base64::engine::general_purpose::STANDARD.encode(text(case, catalogue)),
            "title": format!("{name} report"),
        }],
    });
    let performers: Vec<Value> = done
        .operators
        .iter()
        .filter(|o| o.role == seldinger_domain::procedure_record::OperatorRole::Primary)
        .map(|o| json!({"display": o.name}))
        .collect();
    if !performers.is_empty() {
        resource["performer"] = json!(performers);
    }
    if !done.findings.is_empty() {
        resource["conclusion"] = json!(done.findings);
    }
    Some(resource)
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let mut reports = HashMap::new();
    if let Ok(case_id) = id.parse::<CaseId>() {
        // Read before the scope check only to overlay it; nothing is shown unless the case opens.
        if let Some(report) = request
            .app
            .store
            .procedure_report(case_id)
            .await
            .map_err(seldinger_app::AppError::from)?
        {
            reports.insert(case_id, report);
        }
    }
    let time = request.app.time;
    crate::case_list::read_case_resource(
        request,
        caller,
        "DiagnosticReport",
        id,
        |case, catalogue| report_of(case, catalogue, &reports, &time),
    )
    .await
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let statuses = search.codes("status", None)?;
    // The patient's signed reports, to overlay on the cases the caller may see.
    let reports: HashMap<CaseId, ProcedureReport> =
        match crate::patient_list::required_patient(search, "reports")? {
            Some(patient) => request
                .app
                .store
                .procedure_reports_of_patient(patient)
                .await
                .map_err(seldinger_app::AppError::from)?
                .into_iter()
                .map(|r| (r.case_id, r))
                .collect(),
            None => HashMap::new(),
        };
    let time = request.app.time;
    crate::case_list::search_done(
        request,
        caller,
        search,
        "DiagnosticReport",
        "reports",
        |case: &Case| {
            let signed = reports.get(&case.id).filter(|r| r.signed.is_some());
            statuses.is_empty() || statuses.iter().any(|s| s == status(case, signed))
        },
        |case, catalogue| report_of(case, catalogue, &reports, &time),
    )
    .await
}

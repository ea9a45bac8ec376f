//! Procedure: what was done in a case — the procedure (the catalogue's code), when, by whom,
//! where it went in, the outcome (technical success), the complications and the devices left,
//! and the referral's indication as its reason.

use crate::caller::Caller;
use crate::case_list::case_of_id;
use crate::error::FhirError;
use crate::respond::instant;
use crate::search::{Kind, Param, Search};
use crate::service_request::PROCEDURE_SYSTEM;
use crate::{Request, Resource};
use axum::response::Response;
use seldinger_domain::{Case, ProcedureCatalogue};
use serde_json::{json, Value};

pub const RESOURCE: Resource = Resource {
    name: "Procedure",
    documentation: "The procedure done in a case: code (the catalogue's), performed period, operators, access site, technical success as outcome, complications, devices left (Device), the referral as basedOn. Search by patient.",
    params: &[
        Param {
            name: "patient",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id); required",
        },
        Param {
            name: "date",
            kind: Kind::Date,
            documentation: "when it started, with prefixes",
        },
        Param {
            name: "code",
            kind: Kind::Token,
            documentation: "the catalogue's procedure (urn:seldinger:procedure|id)",
        },
    ],
    history: true,
    create: false,
};

/// The Procedure of a case, once it has begun.
pub fn to_fhir(case: &Case, catalogue: &ProcedureCatalogue) -> Option<Value> {
    let started = case.procedure_started_at?;
    let status = if case.procedure_completed_at.is_some() {
        "completed"
    } else {
        "in-progress"
    };
    let mut period = json!({"start": instant(started)});
    if let Some(end) = case.procedure_completed_at {
        period["end"] = json!(instant(end));
    }
    let mut resource = json!({
        "resourceType": "Procedure",
        "id": case.id.to_string(),
        "meta": {"versionId": case.version.to_string(), "lastUpdated": instant(case.updated_at)},
        "status": status,
        "subject": {"reference": format!("Patient/{}", case.patient_id)},
        "basedOn": [{"reference": format!("ServiceRequest/{}", case.referral_id)}],
        "performedPeriod": period,
    });
    let mut code = json!({"text": "interventional radiology procedure"});
    if let Some(procedure) = case.planned_procedure() {
        let name = catalogue
            .get(procedure)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        code = json!({
            "coding": [{"system": PROCEDURE_SYSTEM, "code": procedure.as_str(), "display": name}],
            "text": name,
        });
    }
    resource["code"] = code;
    if let Some(done) = &case.procedure {
        resource["performer"] = done
            .operators
            .iter()
            .map(|o| json!({"actor": {"display": o.name}, "function": {"text": format!("{:?}", o.role).to_lowercase()}}))
            .collect();
        if !done.access_site.is_empty() {
            resource["bodySite"] = json!([{"text": done.access_site}]);
        }
        if let Some(success) = done.technical_success {
            resource["outcome"] =
                json!({"text": if success { "technical success" } else { "technical failure" }});
        }
        if !done.findings.is_empty() {
            resource["note"] = json!([{"text": done.findings}]);
        }
    }
    if !case.complications.is_empty() {
        resource["complication"] = case
            .complications
            .iter()
            .map(|c| json!({"text": c.description}))
            .collect();
        resource["complicationDetail"] = (0..case.complications.len())
            .map(|n| json!({"reference": format!("AdverseEvent/ae-{}-{n}", case.id)}))
            .collect();
    }
    if !case.devices_left.is_empty() {
        resource["focalDevice"] = (0..case.devices_left.len())
            .map(|n| {
                json!({
                    "action": {"text": "implanted"},
                    "manipulated": {"reference": format!("Device/device-{}-{n}", case.id)},
                })
            })
            .collect();
    }
    Some(resource)
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    crate::case_list::read_case_resource(request, caller, "Procedure", id, to_fhir).await
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let codes = search.codes("code", Some(PROCEDURE_SYSTEM))?;
    crate::case_list::search_done(
        request,
        caller,
        search,
        "Procedure",
        "procedures",
        |c: &Case| {
            codes.is_empty()
                || c.planned_procedure()
                    .is_some_and(|p| codes.iter().any(|code| code == p.as_str()))
        },
        to_fhir,
    )
    .await
}

/// Reads an id of a resource made from a case's list (`device-<case>-<n>`, `ae-<case>-<n>`).
pub fn listed(id: &str, prefix: &str) -> Option<(seldinger_domain::CaseId, usize)> {
    match case_of_id(id, prefix)? {
        (case, Some(n)) => Some((case, n)),
        _ => None,
    }
}

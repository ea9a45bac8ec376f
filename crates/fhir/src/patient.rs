//! Patient: the person and their identifier at the site (MRN), read, searched and versioned
//! from the event log.

use crate::bundle::{self, Entry, Version};
use crate::caller::Caller;
use crate::error::FhirError;
use crate::respond::{self, instant};
use crate::search::{token, Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use seldinger_app::Audit;
use seldinger_domain::patient::{Patient, Sex};
use seldinger_domain::PatientId;
use seldinger_store::PatientFilter;
use serde_json::{json, Value};

/// Patients are identified by their MRN in the namespace of the site that issued it.
pub const MRN_SYSTEM_PREFIX: &str = "urn:seldinger:site:";

pub const RESOURCE: Resource = Resource {
    name: "Patient",
    documentation: "Patients of the department: MRN at its site, name, birth date, gender. A merged record is inactive and links to the one that replaced it.",
    params: &[
        Param {
            name: "identifier",
            kind: Kind::Token,
            documentation: "the MRN: urn:seldinger:site:<SITE>|<MRN>, or the MRN at any site",
        },
        Param {
            name: "name",
            kind: Kind::String,
            documentation: "each word the start of a word of the family or given names (FHIR's default string match), case-insensitive",
        },
        Param {
            name: "birthdate",
            kind: Kind::Date,
            documentation: "the birth date, with prefixes eq, ge, gt, le, lt",
        },
    ],
    history: true,
    create: false,
};

pub fn system_of(site: &str) -> String {
    format!("{MRN_SYSTEM_PREFIX}{site}")
}

/// The FHIR Patient of a record as of `last_updated`.
pub fn to_fhir(patient: &Patient, last_updated: DateTime<Utc>) -> Value {
    let details = &patient.details;
    let mut given = vec![details.name.given.clone()];
    given.extend(details.name.middle.split_whitespace().map(str::to_string));
    let gender = match details.sex {
        Sex::Female => "female",
        Sex::Male => "male",
        Sex::Other => "other",
        Sex::Unknown => "unknown",
    };
    let mut resource = json!({
        "resourceType": "Patient",
        "id": patient.id.to_string(),
        "meta": {"versionId": patient.version.to_string(), "lastUpdated": instant(last_updated)},
        "identifier": [{
            "use": "usual",
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "code": "MR",
                "display": "Medical record number",
            }]},
            "system": system_of(details.site.as_str()),
            "value": details.mrn.as_str(),
        }],
        "active": patient.merged_into.is_none(),
        "name": [{
            "use": "official",
            "family": details.name.family,
            "given": given,
        }],
        "gender": gender,
        "birthDate": details.birth_date.to_string(),
    });
    if let Some(survivor) = patient.merged_into {
        resource["link"] = json!([{
            "other": {"reference": format!("Patient/{survivor}")},
            "type": "replaced-by",
        }]);
    }
    resource
}

fn parse_id(raw: &str) -> Result<PatientId, FhirError> {
    raw.parse()
        .map_err(|_| FhirError::not_found(format!("Patient/{raw}")))
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let id = parse_id(id)?;
    let (patient, opened) = request.app.open_patient_record(caller, id).await?;
    let at = request.patient_changed_at(id).await?.unwrap_or_default();
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "patient", id, id).break_glass(&opened)],
        )
        .await?;
    Ok(respond::resource(
        StatusCode::OK,
        &to_fhir(&patient, at),
        patient.version,
        at,
    ))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let mut filter = PatientFilter::default();
    for (_, value) in search.values("identifier") {
        let token = token(value);
        if let Some(system) = token.system {
            match system.strip_prefix(MRN_SYSTEM_PREFIX) {
                Some(site) if !site.is_empty() => filter.site = Some(site.to_string()),
                // Another namespace's identifiers are not Seldinger's MRNs: nothing matches.
                _ => filter.ids = Some(Vec::new()),
            }
        }
        filter.mrn = token.code.map(str::to_string);
    }
    let names: Vec<&str> = search.values("name").map(|(_, v)| v).collect();
    if !names.is_empty() {
        filter.name = Some(names.join(" "));
    }
    let born = search.days("birthdate")?;
    filter.born_from = born.from;
    filter.born_before = born.before;
    let changed = search.last_updated()?;
    filter.changed_from = changed.from;
    filter.changed_before = changed.before;
    if let Some(ids) = search.ids()? {
        // An id that is no patient's matches nothing.
        let parsed: Vec<PatientId> = ids.iter().filter_map(|id| id.parse().ok()).collect();
        filter.ids = Some(match filter.ids.take() {
            Some(already) if already.is_empty() => already,
            _ => parsed,
        });
    }
    let page = request
        .app
        .find_patients(caller, &filter, search.cursor.as_ref(), search.count.max(1))
        .await?;
    let patients = if search.count == 0 {
        Vec::new()
    } else {
        page.items
    };
    let entries = shown(request, caller, &patients).await?;
    let next = if search.count == 0 {
        None
    } else {
        page.next.as_ref()
    };
    Ok(respond::fhir_json(
        StatusCode::OK,
        &bundle::searchset(&request.base, "Patient", search, entries, next, page.total),
    ))
}

pub async fn history(
    request: &Request,
    caller: &Caller,
    id: &str,
    version: Option<&str>,
) -> Result<Response, FhirError> {
    let id = parse_id(id)?;
    let (versions, opened) = request.app.patient_versions(caller, id).await?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-history", "patient", id, id).break_glass(&opened)],
        )
        .await?;
    if let Some(version) = version {
        let wanted: u64 = version
            .parse()
            .map_err(|_| FhirError::not_found(format!("Patient/{id}/_history/{version}")))?;
        let (patient, event) = versions
            .iter()
            .find(|(p, _)| p.version == wanted)
            .ok_or_else(|| FhirError::not_found(format!("Patient/{id}/_history/{version}")))?;
        return Ok(respond::resource(
            StatusCode::OK,
            &to_fhir(patient, event.at),
            patient.version,
            event.at,
        ));
    }
    let versions = versions
        .iter()
        .map(|(patient, event)| Version {
            resource: to_fhir(patient, event.at),
            version: patient.version,
            at: event.at,
        })
        .collect();
    Ok(respond::fhir_json(
        StatusCode::OK,
        &bundle::history(&request.base, "Patient", &id.to_string(), versions),
    ))
}

/// The patients of `ids` the caller may see, as resources, each read audited (`_include`): one
/// query, within the caller's scope.
pub async fn included(
    request: &Request,
    caller: &Caller,
    ids: Vec<PatientId>,
) -> Result<Vec<Entry>, FhirError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filter = PatientFilter {
        ids: Some(ids.clone()),
        ..PatientFilter::default()
    };
    let limit = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    let patients = request
        .app
        .find_patients(caller, &filter, None, limit)
        .await?
        .items;
    shown(request, caller, &patients).await
}

/// Patients found by a search, as its entries, each read audited.
async fn shown(
    request: &Request,
    caller: &Caller,
    patients: &[Patient],
) -> Result<Vec<Entry>, FhirError> {
    let ids: Vec<PatientId> = patients.iter().map(|p| p.id).collect();
    let changed = request.app.last_changed("patient", &ids).await?;
    request
        .app
        .audit_reads(
            caller,
            ids.iter()
                .map(|id| Audit::of("fhir-search", "patient", id, id))
                .collect(),
        )
        .await?;
    Ok(patients
        .iter()
        .map(|p| Entry {
            resource_type: "Patient",
            id: p.id.to_string(),
            resource: to_fhir(
                p,
                changed.get(&p.id.to_string()).copied().unwrap_or_default(),
            ),
        })
        .collect())
}

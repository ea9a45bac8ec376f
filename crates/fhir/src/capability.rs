//! The CapabilityStatement at `/metadata`, built from the same table the router dispatches on,
//! so it lists exactly what is supported.

use crate::respond::instant;
use crate::search::COMMON;
use crate::{Resource, RESOURCES};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub fn statement(base: &str, now: DateTime<Utc>) -> Value {
    let resources: Vec<Value> = RESOURCES.iter().map(resource).collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now),
        "publisher": "Seldinger",
        "kind": "instance",
        "software": {"name": "Seldinger", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {
            "description": "Seldinger: an interventional radiology service's record",
            "url": base,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": "Searches are strict: an unknown or malformed parameter is refused with an OperationOutcome naming it (send Prefer: handling=lenient to have unknown ones ignored). Pages continue through the Bundle's next link.",
            "security": {
                "cors": false,
                "description": "The users of Seldinger: an API token as `Authorization: Bearer …` (made by an administrator, it may act in a narrower role, and be limited to SMART on FHIR scopes such as patient/*.read or user/ServiceRequest.write — SMART App Launch v1, or v2's .cruds letters — and, with patient/ scopes, to one patient's record), or the session cookie of a signed-in browser (writes then carry its x-csrf-token header). A referring clinician sees only their own patients, as on every other surface; every read and write is on the audit trail.",
            },
            "resource": resources,
        }],
    })
}

fn resource(resource: &Resource) -> Value {
    let mut interaction = vec![json!({"code": "read"}), json!({"code": "search-type"})];
    if resource.history {
        interaction.push(json!({"code": "vread"}));
        interaction.push(json!({"code": "history-instance"}));
    }
    if resource.create {
        interaction.push(json!({"code": "create"}));
    }
    let search_param: Vec<Value> = resource
        .params
        .iter()
        .chain(COMMON)
        .map(|p| {
            json!({
                "name": p.name,
                "type": p.kind.as_str(),
                "documentation": p.documentation,
            })
        })
        .collect();
    let mut statement = json!({
        "type": resource.name,
        "profile": format!("http://hl7.org/fhir/StructureDefinition/{}", resource.name),
        "documentation": resource.documentation,
        "interaction": interaction,
        "versioning": if resource.history { "versioned" } else { "no-version" },
        "readHistory": resource.history,
        "conditionalCreate": resource.create,
        "searchParam": search_param,
    });
    let includes = crate::include::offered(resource);
    if !includes.is_empty() {
        statement["searchInclude"] = json!(includes);
    }
    statement
}

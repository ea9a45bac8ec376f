//! Practitioner: the department's staff as others may know them — name, and whether they still
//! work here — with nothing that signs them in (no username, password, token or lock state).
//! Administrators and interface accounts are not practitioners and are not listed.

use crate::bundle::Entry;
use crate::caller::Caller;
use crate::error::FhirError;
use crate::respond::{self, instant};
use crate::search::{Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use seldinger_app::StaffMember;
use serde_json::{json, Value};

/// Staff roles as a code system (the department's own roles, docs/roles.md).
pub const ROLE_SYSTEM: &str = "urn:seldinger:role";

pub const RESOURCE: Resource = Resource {
    name: "Practitioner",
    documentation: "The department's staff (IR physicians, nurses, radiographers, schedulers, referring clinicians, physicists, quality leads): name, active, and their role in Seldinger as a qualification (urn:seldinger:role). No credentials or sign-in details. Not patient data; readable by every role.",
    params: &[
        Param {
            name: "name",
            kind: Kind::String,
            documentation: "each word contained in the name, case-insensitive",
        },
        Param {
            name: "active",
            kind: Kind::Token,
            documentation: "true (still works here) or false",
        },
    ],
    history: false,
    create: false,
};

pub fn to_fhir(member: &StaffMember) -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": member.id.to_string(),
        "meta": {"lastUpdated": instant(member.since)},
        "active": member.active,
        "name": [{"text": member.display_name}],
        "qualification": [{
            "code": {
                "coding": [{"system": ROLE_SYSTEM, "code": member.role.as_str()}],
                "text": member.role.as_str().replace('_', " "),
            },
        }],
    })
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let staff = request.app.staff(caller).await?;
    let member = staff
        .iter()
        .find(|m| m.id.to_string() == id)
        .ok_or_else(|| FhirError::not_found(format!("Practitioner/{id}")))?;
    Ok(respond::fhir_json(StatusCode::OK, &to_fhir(member)))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    if search.cursor.is_some() {
        return Err(FhirError::invalid("_cursor", "the staff come in one page"));
    }
    let words: Vec<String> = search
        .values("name")
        .flat_map(|(_, v)| v.split_whitespace())
        .map(str::to_lowercase)
        .collect();
    let active = match search.single("active")? {
        None => None,
        Some((_, "true")) => Some(true),
        Some((_, "false")) => Some(false),
        Some((_, other)) => {
            return Err(FhirError::invalid(
                "active",
                format!("'{other}' is not true or false"),
            ))
        }
    };
    let ids = search.ids()?;
    let changed = search.last_updated()?;
    let mut staff = request.app.staff(caller).await?;
    staff.retain(|m| {
        let name = m.display_name.to_lowercase();
        words.iter().all(|w| name.contains(w.as_str()))
            && active.is_none_or(|a| m.active == a)
            && ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&m.id.to_string()))
            && changed.from.is_none_or(|f| m.since >= f)
            && changed.before.is_none_or(|b| m.since < b)
    });
    staff.sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.id.cmp(&b.id)));
    let entries = staff
        .iter()
        .map(|m| Entry {
            resource_type: "Practitioner",
            id: m.id.to_string(),
            resource: to_fhir(m),
        })
        .collect();
    crate::patient_list::one_page(request, search, "Practitioner", entries, "staff")
}

//! Device: the devices left in a patient at a procedure (IVC filters, drains, nephrostomy and
//! biliary catheters, ports, lines, gastrostomies, stents) — each tracked until taken out.
//! Make, size and position as recorded, and the UDI read from the device's label where scanned.

use crate::caller::Caller;
use crate::case_list::{cases_of, open_case};
use crate::error::FhirError;
use crate::procedure::listed;
use crate::respond::{self, instant};
use crate::search::{token, Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use seldinger_app::Audit;
use seldinger_domain::device_registry::LifeState;
use seldinger_domain::procedure_record::{DeviceKind, DeviceLeft};
use seldinger_domain::Case;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Device kinds as a code system.
pub const DEVICE_SYSTEM: &str = "urn:seldinger:device";

pub const RESOURCE: Resource = Resource {
    name: "Device",
    documentation: "Devices left in a patient at a procedure (IVC filter, drain, nephrostomy, biliary drain, port, PICC, central line, gastrostomy, stent), with the description as recorded and, where the label was scanned, its UDI (GS1 or HIBCC: udiCarrier, lot, serial, expiry). Search by patient.",
    params: &[
        Param {
            name: "patient",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id); required",
        },
        Param {
            name: "type",
            kind: Kind::Token,
            documentation: "urn:seldinger:device|ivc_filter, drain, nephrostomy, …",
        },
        Param {
            name: "status",
            kind: Kind::Token,
            documentation: "active (in the patient: in place or declared permanent) or inactive (removed or exchanged, as the device registry records)",
        },
    ],
    history: false,
    create: false,
};

fn kind_code(kind: DeviceKind) -> String {
    let debug = format!("{kind:?}");
    let mut code = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            code.push('_');
        }
        code.push(c.to_ascii_lowercase());
    }
    code
}

/// FHIR's status of a device in the registry: in the patient (in place, or staying for good) is
/// active; taken out (removed, exchanged) is inactive.
fn status_of(life: Option<&LifeState>) -> &'static str {
    match life {
        Some(LifeState::Removed { .. } | LifeState::Exchanged { .. }) => "inactive",
        _ => "active",
    }
}

/// The registry's life states of the devices `filter` names (one patient's, one case's), by FHIR
/// id: one query. The caller's scope was applied to the cases they come with.
async fn life_states(
    request: &Request,
    filter: seldinger_store::DeviceFilter,
) -> Result<HashMap<String, LifeState>, FhirError> {
    let devices = request
        .app
        .store
        .devices(
            &seldinger_domain::access::RowScope::Department,
            &filter,
            seldinger_app::DEVICES_AT_MOST,
        )
        .await
        .map_err(seldinger_app::AppError::from)?;
    Ok(devices
        .into_iter()
        .map(|d| (format!("device-{}", d.device.stream_id()), d.state))
        .collect())
}

pub fn to_fhir(case: &Case, n: usize, device: &DeviceLeft, life: Option<&LifeState>) -> Value {
    let code = kind_code(device.kind);
    let mut resource = json!({
        "resourceType": "Device",
        "id": format!("device-{}-{n}", case.id),
        "meta": {"lastUpdated": instant(case.updated_at)},
        "status": status_of(life),
        "type": {
            "coding": [{"system": DEVICE_SYSTEM, "code": code}],
            "text": code.replace('_', " "),
        },
        "patient": {"reference": format!("Patient/{}", case.patient_id)},
        "note": [{"text": device.description}],
    });
    if let Some(udi) = &device.udi {
        resource["udiCarrier"] = json!([{
            "deviceIdentifier": udi.device_identifier,
            "issuer": udi.issuer.uri(),
            "carrierHRF": udi.carrier,
        }]);
        let optional = [
            ("lotNumber", udi.lot.clone()),
            ("serialNumber", udi.serial.clone()),
            ("expirationDate", udi.expiry.map(|d| d.to_string())),
            ("manufactureDate", udi.manufactured.map(|d| d.to_string())),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                resource[field] = json!(value);
            }
        }
    }
    resource
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let what = format!("Device/{id}");
    let (case, n) = listed(id, "device-").ok_or_else(|| FhirError::not_found(&what))?;
    let (case, opened) = open_case(request, caller, case, &what).await?;
    let device = case
        .devices_left
        .get(n)
        .ok_or_else(|| FhirError::not_found(&what))?;
    let states = life_states(
        request,
        seldinger_store::DeviceFilter {
            case_id: Some(case.id),
            ..Default::default()
        },
    )
    .await?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "device", id, case.patient_id).break_glass(&opened)],
        )
        .await?;
    Ok(respond::fhir_json(
        StatusCode::OK,
        &to_fhir(&case, n, device, states.get(id)),
    ))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let patient = crate::patient_list::required_patient(search, "devices")?;
    let kinds: Option<Vec<String>> = search.single("type")?.map(|(_, v)| {
        v.split(',')
            .map(|t| {
                let t = token(t.trim());
                match t.system {
                    Some(system) if system != DEVICE_SYSTEM => String::new(),
                    _ => t.code.unwrap_or_default().to_string(),
                }
            })
            .collect()
    });
    let status = match search.single("status")? {
        None => None,
        Some((_, wanted @ ("active" | "inactive"))) => Some(wanted.to_string()),
        Some((_, "entered-in-error" | "unknown")) => {
            return crate::patient_list::one_page(request, search, "Device", Vec::new(), "devices")
        }
        Some((_, other)) => {
            return Err(FhirError::invalid(
                "status",
                format!(
                    "'{other}' is not a device status: active, inactive, entered-in-error, unknown"
                ),
            ))
        }
    };
    let ids = search.ids()?;
    let cases = match patient {
        Some(patient) => cases_of(request, caller, patient).await?,
        None => Vec::new(),
    };
    let states = match patient {
        Some(patient) => {
            life_states(
                request,
                seldinger_store::DeviceFilter {
                    patient_id: Some(patient),
                    ..Default::default()
                },
            )
            .await?
        }
        None => HashMap::new(),
    };
    let (entries, audits) = crate::case_list::listed_entries(
        &cases,
        |case| &case.devices_left,
        |case, n, device| {
            to_fhir(
                case,
                n,
                device,
                states.get(&format!("device-{}-{n}", case.id)),
            )
        },
        |device, id| {
            kinds
                .as_ref()
                .is_none_or(|k| k.contains(&kind_code(device.kind)))
                && ids.as_ref().is_none_or(|ids| ids.iter().any(|i| i == id))
                && status
                    .as_deref()
                    .is_none_or(|wanted| status_of(states.get(id)) == wanted)
        },
        "Device",
        "device",
    );
    request.app.audit_reads(caller, audits).await?;
    crate::patient_list::one_page(request, search, "Device", entries, "devices")
}

//! The registry export as a FHIR R4 Bundle (type `collection`): the same de-identified rows as
//! the CSV — a Patient per pseudonym (gender only), a Procedure per case, its dose summary as an
//! Observation after HL7's Radiation Dose Summary IG, a Device per device left and an
//! AdverseEvent per event. Ids are the export's keyed pseudonyms; dates are the export's dates
//! (exact or shifted); no name, identifier, address, birth date or free text.

use crate::registry::{ProcedureRow, RegistryExport};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
// The FHIR server's code systems for the two §6 gradings, so the export reads like it.
const SIR_SYSTEM: &str = "urn:seldinger:sir-severity";
const CIRSE_SYSTEM: &str = "urn:seldinger:cirse-grade";
const UCUM: &str = "http://unitsofmeasure.org";
const PROCEDURE_SYSTEM: &str = "urn:seldinger:procedure";
const OUTCOME: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome";
const SEVERITY: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-severity";

fn gender(sex: &str) -> &'static str {
    match sex {
        "female" => "female",
        "male" => "male",
        "other" => "other",
        _ => "unknown",
    }
}

fn dose_observation(p: &ProcedureRow) -> Option<Value> {
    let mut components = Vec::new();
    let mut quantity = |code: &str, display: &str, value: Option<f64>, unit: &str| {
        if let Some(value) = value {
            components.push(json!({
                "code": {"coding": [{"system": DCM, "code": code, "display": display}]},
                "valueQuantity": {"value": (value * 1e3).round() / 1e3, "unit": unit, "system": UCUM, "code": unit},
            }));
        }
    };
    quantity(
        "113725",
        "Dose (RP) Total",
        p.reference_air_kerma_mgy,
        "mGy",
    );
    quantity(
        "113722",
        "Dose Area Product Total",
        p.kap_gy_cm2.map(|k| k * 1e3),
        "mGy.cm2",
    );
    quantity("113730", "Total Fluoro Time", p.fluoroscopy_s, "s");
    quantity(
        "113813",
        "CT Dose Length Product Total",
        p.ct_dlp_mgy_cm,
        "mGy.cm",
    );
    if components.is_empty() {
        return None;
    }
    Some(json!({
        "resourceType": "Observation",
        "id": format!("dose-{}", p.record),
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "imaging"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "73569-6", "display": "Radiation exposure and protection information"}]},
        "subject": {"reference": format!("Patient/{}", p.patient)},
        "partOf": [{"reference": format!("Procedure/{}", p.record)}],
        "effectiveDateTime": p.procedure_date.to_string(),
        "component": components,
    }))
}

/// The export as one Bundle.
pub fn bundle(export: &RegistryExport) -> Value {
    let mut entries = Vec::new();
    let patients: BTreeMap<&str, &str> = export
        .procedures
        .iter()
        .map(|p| (p.patient.as_str(), p.sex.as_str()))
        .collect();
    for (id, sex) in patients {
        entries.push(json!({"resourceType": "Patient", "id": id, "gender": gender(sex)}));
    }
    for p in &export.procedures {
        let mut procedure = json!({
            "resourceType": "Procedure",
            "id": p.record,
            "status": "completed",
            "code": {"coding": [{"system": PROCEDURE_SYSTEM, "code": p.procedure_code, "display": p.procedure_name}]},
            "subject": {"reference": format!("Patient/{}", p.patient)},
            "performedDateTime": p.procedure_date.to_string(),
        });
        if let Some(success) = p.technical_success {
            procedure["outcome"] = json!({"text": if success {
                "technically successful"
            } else {
                "not technically successful"
            }});
        }
        let complications: Vec<Value> = export
            .adverse_events
            .iter()
            .filter(|e| e.record == p.record && e.attributed)
            .map(|e| json!({"reference": format!("AdverseEvent/{}", e.event)}))
            .collect();
        if !complications.is_empty() {
            procedure["complicationDetail"] = Value::Array(complications);
        }
        entries.push(procedure);
        entries.extend(dose_observation(p));
    }
    for d in &export.devices {
        let mut device = json!({
            "resourceType": "Device",
            "id": d.device,
            "status": if d.state == "in_place" || d.state == "permanent" { "active" } else { "inactive" },
            "type": {"text": d.kind.replace('_', " ")},
            "patient": {"reference": format!("Patient/{}", d.patient)},
        });
        if let Some(di) = &d.device_identifier {
            device["udiCarrier"] = json!([{"deviceIdentifier": di}]);
        }
        if let Some(lot) = &d.lot {
            device["lotNumber"] = json!(lot);
        }
        entries.push(device);
    }
    for e in &export.adverse_events {
        let severity = match e.sir_severity.as_str() {
            "mild" => "mild",
            "moderate" => "moderate",
            _ => "severe",
        };
        let mut event = json!({
            "resourceType": "AdverseEvent",
            "id": e.event,
            "actuality": "actual",
            "subject": {"reference": format!("Patient/{}", e.patient)},
            "date": e.onset_date.to_string(),
            "severity": {"coding": [{"system": SEVERITY, "code": severity}]},
            "outcome": {"coding": [{"system": OUTCOME, "code": match e.outcome.as_str() {
                "resolved_with_sequelae" => "resolvedWithSequelae",
                other => other,
            }}]},
            "extension": [{
                "url": "https://seldinger.dev/fhir/StructureDefinition/sir-severity",
                "valueCoding": {"system": SIR_SYSTEM, "code": e.sir_severity},
            }],
            "suspectEntity": [{
                "instance": {"reference": format!("Procedure/{}", e.record)},
                "causality": [{"assessment": {"text": if e.attributed {
                    "attributed to the procedure (clinical-rules.md §6)"
                } else {
                    "not attributed to the procedure (clinical-rules.md §6)"
                }}}],
            }],
        });
        if let Some(category) = &e.category {
            event["event"] = json!({"coding": [{"system": "urn:seldinger:adverse-event-category", "code": category}]});
        }
        if let (Some(grade), Some(extensions)) = (e.cirse_grade, event["extension"].as_array_mut())
        {
            extensions.push(json!({
                "url": "https://seldinger.dev/fhir/StructureDefinition/cirse-grade",
                "valueCoding": {"system": CIRSE_SYSTEM, "code": grade.to_string()},
            }));
        }
        entries.push(event);
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "meta": {"tag": [{"system": "urn:seldinger:registry-export", "code": format!("dates-{}", export.dates.as_str())}]},
        "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    })
}

//! AdverseEvent: a complication recorded in a case, with its SIR severity and, where graded, its
//! CIRSE grade (clinical-rules.md §6: the department grades both ways).

use crate::caller::Caller;
use crate::case_list::{cases_of, open_case};
use crate::error::FhirError;
use crate::respond::{self, instant};
use crate::search::{token, Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::StatusCode;
use axum::response::Response;
use seldinger_app::Audit;
use seldinger_domain::adverse_event::AdverseEvent;
use seldinger_domain::procedure_record::SirSeverity;
use seldinger_domain::CaseId;
use seldinger_store::AdverseEventFilter;
use serde_json::{json, Value};
use std::collections::HashSet;

const SERIOUSNESS: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness";
const SEVERITY: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-severity";
/// SIR adverse event severity (clinical-rules.md §6) as a code system.
pub const SIR_SYSTEM: &str = "urn:seldinger:sir-severity";
pub const CIRSE_SYSTEM: &str = "urn:seldinger:cirse-grade";

/// What each CIRSE grade means (clinical-rules.md §6).
fn cirse(grade: u8) -> &'static str {
    match grade {
        1 => "Solved in the same session, no sequelae",
        2 => "Prolonged observation including overnight stay (< 48 h)",
        3 => "Additional therapy or stay > 48 h, no sequelae",
        4 => "Permanent mild sequelae",
        5 => "Permanent severe sequelae",
        _ => "Death",
    }
}

pub const RESOURCE: Resource = Resource {
    name: "AdverseEvent",
    documentation: "Adverse events of a procedure (clinical-rules.md §6): recorded in its record or reported later, with onset, outcome (FHIR adverse-event-outcome), treatment (extension), whether it is attributed to the procedure (suspectEntity.causality), and the SIR severity (§6) as an extension and as severity, and the CIRSE grade 1-6 (§6) as an extension where graded; seriousness where the SIR grade decides it (severe and worse: serious; mild: non-serious; moderate: not said). Search by subject.",
    params: &[
        Param {
            name: "subject",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id); required",
        },
        Param {
            name: "date",
            kind: Kind::Date,
            documentation: "when it happened, with prefixes",
        },
        Param {
            name: "seriousness",
            kind: Kind::Token,
            documentation: "serious or non-serious",
        },
    ],
    history: false,
    create: false,
};

/// (code, display, serious, FHIR severity) of a SIR grade. Seriousness follows the grade's own
/// definition (clinical-rules.md §6): severe (ICU, stay > 48 h), life-threatening and death are
/// serious; mild (no or minimal therapy) is not; moderate may or may not have prolonged the stay,
/// so it is left unsaid rather than guessed.
pub fn sir(severity: SirSeverity) -> (&'static str, &'static str, Option<bool>, &'static str) {
    match severity {
        SirSeverity::Mild => ("mild", "Mild", Some(false), "mild"),
        SirSeverity::Moderate => ("moderate", "Moderate", None, "moderate"),
        SirSeverity::Severe => ("severe", "Severe", Some(true), "severe"),
        SirSeverity::LifeThreatening => (
            "life_threatening",
            "Life-threatening or disabling",
            Some(true),
            "severe",
        ),
        SirSeverity::Death => ("death", "Death", Some(true), "severe"),
    }
}

const OUTCOME: &str = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome";

/// An adverse event of the registry as FHIR's AdverseEvent; `attributed`: the procedure's (§6).
pub fn to_fhir(event: &AdverseEvent, attributed: bool) -> Value {
    let d = &event.details;
    let (code, display, serious, severity) = sir(d.severity);
    let mut resource = json!({
        "resourceType": "AdverseEvent",
        "id": format!("ae-{}", event.id),
        "meta": {
            "versionId": event.version.to_string(),
            "lastUpdated": instant(event.reported_at),
        },
        "actuality": "actual",
        "event": {"text": d.description},
        "subject": {"reference": format!("Patient/{}", event.patient_id)},
        "date": instant(d.onset),
        "recordedDate": instant(event.reported_at),
        "severity": {"coding": [
            {"system": SEVERITY, "code": severity},
        ]},
        "outcome": {"coding": [{"system": OUTCOME, "code": d.outcome.fhir_code()}]},
        "extension": [{
            "url": "https://seldinger.dev/fhir/StructureDefinition/sir-severity",
            "valueCoding": {"system": SIR_SYSTEM, "code": code, "display": display},
        }],
        "suspectEntity": [{
            "instance": {"reference": format!("Procedure/{}", event.case_id)},
            "causality": [{"assessment": {"text": if attributed {
                "attributed to the procedure (clinical-rules.md §6)"
            } else {
                "not attributed to the procedure (clinical-rules.md §6)"
            }}}],
        }],
    });
    if let Some(extensions) = resource["extension"].as_array_mut() {
        if let Some(grade) = d.cirse_grade {
            extensions.push(json!({
                "url": "https://seldinger.dev/fhir/StructureDefinition/cirse-grade",
                "valueCoding": {"system": CIRSE_SYSTEM, "code": grade.to_string(), "display": cirse(grade)},
            }));
        }
        if !d.treatment.is_empty() {
            extensions.push(json!({
                "url": "https://seldinger.dev/fhir/StructureDefinition/treatment",
                "valueString": d.treatment,
            }));
        }
    }
    if let Some(serious) = serious {
        resource["seriousness"] = json!({"coding": [{
            "system": SERIOUSNESS,
            "code": if serious { "serious" } else { "non-serious" },
        }]});
    }
    resource
}

/// The case an AdverseEvent id names (`ae-<case>-<n>` or `ae-<case>-r<k>`), and the event's id.
fn event_id(id: &str) -> Option<(CaseId, &str)> {
    let rest = id.strip_prefix("ae-")?;
    let case = rest.get(..36)?.parse().ok()?;
    rest.get(36..)?.strip_prefix('-')?;
    Some((case, rest))
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let what = format!("AdverseEvent/{id}");
    let (case, event_id) = event_id(id).ok_or_else(|| FhirError::not_found(&what))?;
    let (_, opened) = open_case(request, caller, case, &what).await?;
    let event = request
        .app
        .store
        .adverse_event(event_id)
        .await
        .map_err(seldinger_app::AppError::from)?
        .filter(|e| e.case_id == case && e.counts())
        .ok_or_else(|| FhirError::not_found(&what))?;
    let standing = request
        .app
        .adverse_event_standings(vec![event])
        .await?
        .pop()
        .ok_or_else(|| FhirError::not_found(&what))?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of(
                "fhir-read",
                "adverse_event",
                event_id,
                standing.event.patient_id,
            )
            .break_glass(&opened)],
        )
        .await?;
    Ok(respond::fhir_json(
        StatusCode::OK,
        &to_fhir(&standing.event, standing.attributed),
    ))
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let Some((_, subject)) = search.single("subject")? else {
        return Err(FhirError::invalid(
            "subject",
            "search the adverse events of one patient: give subject=Patient/id",
        ));
    };
    let patient: Option<seldinger_domain::PatientId> =
        crate::search::reference_id("subject", subject, "Patient")?
            .parse()
            .ok();
    let date = search.instants("date", |day| Some(request.app.time.start_of(day)))?;
    let serious = match search.single("seriousness")? {
        None => None,
        Some((_, value)) => match token(value).code {
            Some("serious") => Some(true),
            Some("non-serious") => Some(false),
            _ => {
                return Err(FhirError::invalid(
                    "seriousness",
                    "give serious or non-serious",
                ))
            }
        },
    };
    let ids = search.ids()?;
    // The caller's scope is the patient's cases they may see; their events follow.
    let cases: HashSet<CaseId> = match patient {
        Some(patient) => cases_of(request, caller, patient)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect(),
        None => HashSet::new(),
    };
    let events = match patient {
        Some(patient) if !cases.is_empty() => request
            .app
            .store
            .adverse_events(
                &seldinger_domain::access::RowScope::Department,
                &AdverseEventFilter {
                    patient_id: Some(patient),
                    onset_from: date.from,
                    onset_before: date.before,
                    counted_only: true,
                    ..Default::default()
                },
                seldinger_app::ADVERSE_EVENTS_AT_MOST,
            )
            .await
            .map_err(seldinger_app::AppError::from)?,
        _ => Vec::new(),
    };
    let events = events
        .into_iter()
        .filter(|e| cases.contains(&e.case_id))
        .filter(|e| serious.is_none_or(|s| sir(e.details.severity).2 == Some(s)))
        .filter(|e| {
            ids.as_ref()
                .is_none_or(|ids| ids.iter().any(|i| *i == format!("ae-{}", e.id)))
        })
        .collect();
    let standings = request.app.adverse_event_standings(events).await?;
    let mut entries = Vec::new();
    let mut audits = Vec::new();
    for s in standings {
        let resource = to_fhir(&s.event, s.attributed);
        audits.push(Audit::of(
            "fhir-search",
            "adverse_event",
            s.event.id.clone(),
            s.event.patient_id,
        ));
        entries.push(crate::bundle::Entry {
            resource_type: "AdverseEvent",
            id: format!("ae-{}", s.event.id),
            resource,
        });
    }
    request.app.audit_reads(caller, audits).await?;
    crate::patient_list::one_page(request, search, "AdverseEvent", entries, "adverse events")
}

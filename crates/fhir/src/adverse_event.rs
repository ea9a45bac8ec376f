//! AdverseEvent: a complication recorded in a case, with its SIR severity and, where graded, its
//! CIRSE grade (clinical-rules.md §6: the department grades both ways).

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
use seldinger_domain::procedure_record::{Complication, SirSeverity};
use seldinger_domain::Case;
use serde_json::{json, Value};

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
    documentation: "Complications recorded in a case, with the SIR severity (§6) as an extension and as severity, and the CIRSE grade 1-6 (§6) as an extension where graded; seriousness where the SIR grade decides it (severe and worse: serious; mild: non-serious; moderate: not said). Search by subject.",
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

pub fn to_fhir(case: &Case, n: usize, complication: &Complication) -> Value {
    let (code, display, serious, severity) = sir(complication.severity);
    let mut resource = json!({
        "resourceType": "AdverseEvent",
        "id": format!("ae-{}-{n}", case.id),
        "meta": {"lastUpdated": instant(case.updated_at)},
        "actuality": "actual",
        "event": {"text": complication.description},
        "subject": {"reference": format!("Patient/{}", case.patient_id)},
        "date": instant(complication.at),
        "severity": {"coding": [
            {"system": SEVERITY, "code": severity},
        ]},
        "outcome": {"text": format!("SIR {display}")},
        "extension": [{
            "url": "https://seldinger.dev/fhir/StructureDefinition/sir-severity",
            "valueCoding": {"system": SIR_SYSTEM, "code": code, "display": display},
        }],
        "suspectEntity": [{"instance": {"reference": format!("Procedure/{}", case.id)}}],
    });
    if let (Some(grade), Some(extensions)) = (
        complication.cirse_grade,
        resource["extension"].as_array_mut(),
    ) {
        extensions.push(json!({
            "url": "https://seldinger.dev/fhir/StructureDefinition/cirse-grade",
            "valueCoding": {"system": CIRSE_SYSTEM, "code": grade.to_string(), "display": cirse(grade)},
        }));
    }
    if let Some(serious) = serious {
        resource["seriousness"] = json!({"coding": [{
            "system": SERIOUSNESS,
            "code": if serious { "serious" } else { "non-serious" },
        }]});
    }
    resource
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let what = format!("AdverseEvent/{id}");
    let (case, n) = listed(id, "ae-").ok_or_else(|| FhirError::not_found(&what))?;
    let (case, opened) = open_case(request, caller, case, &what).await?;
    let complication = case
        .complications
        .get(n)
        .ok_or_else(|| FhirError::not_found(&what))?;
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "complication", id, case.patient_id).break_glass(&opened)],
        )
        .await?;
    Ok(respond::fhir_json(
        StatusCode::OK,
        &to_fhir(&case, n, complication),
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
    let cases = match patient {
        Some(patient) => cases_of(request, caller, patient).await?,
        None => Vec::new(),
    };
    let (entries, audits) = crate::case_list::listed_entries(
        &cases,
        |case| &case.complications,
        to_fhir,
        |complication: &Complication, id| {
            let at = complication.at;
            date.from.is_none_or(|f| at >= f)
                && date.before.is_none_or(|b| at < b)
                && serious.is_none_or(|s| sir(complication.severity).2 == Some(s))
                && ids.as_ref().is_none_or(|ids| ids.iter().any(|i| i == id))
        },
        "AdverseEvent",
        "complication",
    );
    request.app.audit_reads(caller, audits).await?;
    crate::patient_list::one_page(request, search, "AdverseEvent", entries, "adverse events")
}

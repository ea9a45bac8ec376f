//! ServiceRequest: a referral to IR (or an order from the ordering system), read, searched and
//! created. A ServiceRequest an EHR creates goes through the same checks and into the same
//! vetting queue as a referral typed in the browser or ordered over HL7; its identifier (the
//! EHR's order number) makes a retry with `If-None-Exist` find the first instead of filing twice.

use crate::bundle::{self, Entry};
use crate::caller::Caller;
use crate::error::{FhirError, Issue};
use crate::input::{self, text};
use crate::respond::{self, instant};
use crate::search::{reference_id, token, Kind, Param, Search};
use crate::{Request, Resource};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use seldinger_app::{AppError, Audit};
use seldinger_domain::lifecycle::CaseState;
use seldinger_domain::referral::{PlacerOrder, ReferralDetails, ReferralInput, Urgency};
use seldinger_domain::{PatientId, ProcedureCatalogue, ReferralId};
use seldinger_store::{FiledReferral, ReferralFilter};
use serde_json::{json, Map, Value};

/// Seldinger's procedure catalogue as a code system (GET /api/v1/procedures lists it).
pub const PROCEDURE_SYSTEM: &str = "urn:seldinger:procedure";
/// Order numbers from a namespace that is not a URI (an HL7 sender's) get one here.
pub const PLACER_PREFIX: &str = "urn:seldinger:placer:";
/// Which service asked (oncology, surgery, …): Seldinger's own extension.
pub const REQUESTING_SERVICE: &str =
    "https://seldinger.dev/fhir/StructureDefinition/requesting-service";

pub const RESOURCE: Resource = Resource {
    name: "ServiceRequest",
    documentation: "Referrals to IR and orders from the ordering system: the requested procedure (the catalogue's code or text), indication, urgency, requester, the case's progress as status. Create one (a referral from the EHR, conditional on its identifier with If-None-Exist): it joins the vetting queue like any referral.",
    params: &[
        Param {
            name: "patient",
            kind: Kind::Reference,
            documentation: "the patient (Patient/id)",
        },
        Param {
            name: "status",
            kind: Kind::Token,
            documentation: "active (waiting, vetted or booked), on-hold (more information asked of the referrer), completed (done), revoked (declined or cancelled)",
        },
        Param {
            name: "authored",
            kind: Kind::Date,
            documentation: "when the referral was received, with prefixes",
        },
        Param {
            name: "requester",
            kind: Kind::Reference,
            documentation: "the member of staff who filed it (Practitioner/id)",
        },
        Param {
            name: "identifier",
            kind: Kind::Token,
            documentation: "the placer order number: system|value",
        },
    ],
    history: false,
    create: true,
};

/// The FHIR status of a referral, from where its case stands.
pub fn status_of(state: CaseState) -> &'static str {
    use CaseState as S;
    match state {
        S::MoreInformationRequested => "on-hold",
        S::Referred | S::Vetted | S::Scheduled | S::CheckedIn | S::InRoom => "active",
        S::ProcedureComplete | S::InRecovery | S::Discharged | S::FollowUp | S::Closed => {
            "completed"
        }
        S::Declined | S::Cancelled => "revoked",
    }
}

fn states_of(status: &str) -> Option<Vec<CaseState>> {
    let states: Vec<CaseState> = CaseState::ALL
        .into_iter()
        .filter(|s| status_of(*s) == status)
        .collect();
    (!states.is_empty()).then_some(states)
}

fn placer_system(authority: &str) -> String {
    if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{PLACER_PREFIX}{authority}")
    }
}

fn placer_of(system: &str, value: &str) -> Result<PlacerOrder, String> {
    match system.strip_prefix(PLACER_PREFIX) {
        Some(authority) => PlacerOrder::new(value, authority),
        None => PlacerOrder::in_namespace(value, system),
    }
}

/// As FHIR: `requester` is the referrer's Practitioner id when they are one of the staff.
pub fn to_fhir(
    filed: &FiledReferral,
    catalogue: &ProcedureCatalogue,
    at: DateTime<Utc>,
    requester_id: Option<uuid::Uuid>,
) -> Value {
    let referral = &filed.referral;
    let details = &referral.details;
    let priority = match details.urgency {
        Urgency::Emergent => "stat",
        Urgency::Urgent => "urgent",
        Urgency::Routine => "routine",
    };
    let mut code = Map::new();
    if let Some(procedure) = &details.requested_procedure {
        let display = catalogue
            .get(procedure)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        code.insert(
            "coding".into(),
            json!([{"system": PROCEDURE_SYSTEM, "code": procedure.as_str(), "display": display}]),
        );
    }
    if let Some(text) = &details.requested_procedure_text {
        code.insert("text".into(), json!(text));
    }
    let mut requester = json!({"display": details.requesting_clinician});
    if let Some(id) = requester_id {
        requester["reference"] = json!(format!("Practitioner/{id}"));
    }
    let mut resource = json!({
        "resourceType": "ServiceRequest",
        "id": referral.id.to_string(),
        "meta": {"versionId": referral.version.to_string(), "lastUpdated": instant(at)},
        "extension": [{
            "url": REQUESTING_SERVICE,
            "valueCode": details.requesting_service.as_str(),
        }],
        "status": status_of(filed.case_state),
        "intent": "order",
        "priority": priority,
        "code": code,
        "subject": {"reference": format!("Patient/{}", referral.patient_id)},
        "authoredOn": instant(referral.received_at),
        "requester": requester,
        "reasonCode": [{"text": details.indication}],
    });
    if let Some(placer) = &details.placer_order {
        resource["identifier"] = json!([{
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "code": "PLAC",
                "display": "Placer Identifier",
            }]},
            "system": placer_system(&placer.authority),
            "value": placer.number,
        }]);
    }
    if !details.clinical_question.is_empty() {
        resource["note"] = json!([{"text": details.clinical_question}]);
    }
    resource
}

async fn with_times(
    request: &Request,
    filed: &[FiledReferral],
) -> Result<Vec<(Value, String, PatientId)>, FhirError> {
    let ids: Vec<ReferralId> = filed.iter().map(|f| f.referral.id).collect();
    let changed = request.app.last_changed("referral", &ids).await?;
    let staff = request.app.staff_ids().await?;
    Ok(filed
        .iter()
        .map(|f| {
            let at = changed
                .get(&f.referral.id.to_string())
                .copied()
                .unwrap_or(f.referral.received_at);
            let requester = f.referred_by.as_ref().and_then(|by| staff.get(by)).copied();
            (
                to_fhir(f, &request.app.catalogue, at, requester),
                f.referral.id.to_string(),
                f.referral.patient_id,
            )
        })
        .collect())
}

pub async fn read(request: &Request, caller: &Caller, id: &str) -> Result<Response, FhirError> {
    let referral: ReferralId = id
        .parse()
        .map_err(|_| FhirError::not_found(format!("ServiceRequest/{id}")))?;
    let (filed, opened) = request.app.filed_referral(caller, referral).await?;
    let mut shown = with_times(request, std::slice::from_ref(&filed)).await?;
    let (resource, _, patient) = shown.remove(0);
    request
        .app
        .audit_reads(
            caller,
            vec![Audit::of("fhir-read", "referral", referral, patient).break_glass(&opened)],
        )
        .await?;
    Ok(respond::resource(
        StatusCode::OK,
        &resource,
        filed.referral.version,
        last_updated(&resource),
    ))
}

fn last_updated(resource: &Value) -> DateTime<Utc> {
    resource["meta"]["lastUpdated"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

pub async fn search(
    request: &Request,
    caller: &Caller,
    search: &Search,
) -> Result<Response, FhirError> {
    let mut filter = ReferralFilter::default();
    let mut nothing = false;
    if let Some((_, value)) = search.single("patient")? {
        match reference_id("patient", value, "Patient")?.parse() {
            Ok(id) => filter.patient_id = Some(id),
            Err(_) => nothing = true,
        }
    }
    if let Some((_, value)) = search.single("status")? {
        let mut states = Vec::new();
        for status in value.split(',') {
            match states_of(status.trim()) {
                Some(found) => states.extend(found),
                None if ["draft", "entered-in-error", "unknown"].contains(&status.trim()) => {}
                None => {
                    return Err(FhirError::invalid(
                        "status",
                        format!("'{status}' is not a request status: give active, on-hold, completed, revoked, draft, entered-in-error or unknown"),
                    ))
                }
            }
        }
        filter.case_states = Some(states);
    }
    if let Some((_, value)) = search.single("requester")? {
        let id = reference_id("requester", value, "Practitioner")?.to_string();
        // By the Practitioner's id; an id of no one matches nothing.
        let staff = request.app.staff_ids().await?;
        filter.referred_by = Some(
            staff
                .iter()
                .find(|(_, member)| member.to_string() == id)
                .map_or_else(
                    || format!("no practitioner {id}"),
                    |(username, _)| username.clone(),
                ),
        );
    }
    let authored = search.instants("authored", |day| Some(request.app.time.start_of(day)))?;
    filter.received_from = authored.from;
    filter.received_before = authored.before;
    let changed = search.last_updated()?;
    filter.changed_from = changed.from;
    filter.changed_before = changed.before;
    if let Some(ids) = search.ids()? {
        filter.ids = Some(ids.iter().filter_map(|id| id.parse().ok()).collect());
    }
    if let Some((_, value)) = search.single("identifier")? {
        let token = token(value);
        match (token.system, token.code) {
            (Some(system), Some(number)) => match placer_of(system, number) {
                Ok(placer) => match request.app.order(caller, &placer).await? {
                    Some(found) => {
                        let ids = filter.ids.get_or_insert_with(|| vec![found.id]);
                        ids.retain(|id| *id == found.id);
                    }
                    None => nothing = true,
                },
                Err(e) => return Err(FhirError::invalid("identifier", e)),
            },
            _ => {
                return Err(FhirError::invalid(
                    "identifier",
                    "give the order number with its system: system|value",
                ))
            }
        }
    }
    if nothing {
        filter.ids = Some(Vec::new());
    }
    let page = request
        .app
        .find_referrals(caller, &filter, search.cursor.as_ref(), search.count.max(1))
        .await?;
    let items = if search.count == 0 {
        Vec::new()
    } else {
        page.items
    };
    let shown = with_times(request, &items).await?;
    request
        .app
        .audit_reads(
            caller,
            shown
                .iter()
                .map(|(_, id, patient)| Audit::of("fhir-search", "referral", id, patient))
                .collect(),
        )
        .await?;
    let entries = shown
        .into_iter()
        .map(|(resource, id, _)| Entry {
            resource_type: "ServiceRequest",
            id,
            resource,
        })
        .collect();
    let next = if search.count == 0 {
        None
    } else {
        page.next.as_ref()
    };
    Ok(respond::fhir_json(
        StatusCode::OK,
        &bundle::searchset(
            &request.base,
            "ServiceRequest",
            search,
            entries,
            next,
            page.total,
        ),
    ))
}

/// The elements of a FHIR R4 ServiceRequest.
const DEFINED: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "identifier",
    "instantiatesCanonical",
    "instantiatesUri",
    "basedOn",
    "replaces",
    "requisition",
    "status",
    "intent",
    "category",
    "priority",
    "doNotPerform",
    "code",
    "orderDetail",
    "quantityQuantity",
    "quantityRatio",
    "quantityRange",
    "subject",
    "encounter",
    "occurrenceDateTime",
    "occurrencePeriod",
    "occurrenceTiming",
    "asNeededBoolean",
    "asNeededCodeableConcept",
    "authoredOn",
    "requester",
    "performerType",
    "performer",
    "locationCode",
    "locationReference",
    "reasonCode",
    "reasonReference",
    "insurance",
    "supportingInfo",
    "specimen",
    "bodySite",
    "note",
    "patientInstruction",
    "relevantHistory",
];

/// Elements a ServiceRequest may carry here; anything else would be dropped, so it is refused.
const ACCEPTED: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "text",
    "extension",
    "identifier",
    "status",
    "intent",
    "priority",
    "code",
    "subject",
    "authoredOn",
    "requester",
    "reasonCode",
    "note",
];

/// Reads a ServiceRequest into a referral's input, every problem at once with its path.
fn referral_input(
    body: &Value,
    catalogue: &ProcedureCatalogue,
) -> Result<(PatientId, ReferralDetails), FhirError> {
    let fields = input::resource(body, "ServiceRequest")?;
    let mut issues: Vec<Issue> =
        input::unkept_elements(fields, "ServiceRequest", DEFINED, ACCEPTED);
    let mut problem = |path: &str, code: &'static str, what: String| {
        issues.push(Issue {
            code,
            diagnostics: what,
            expression: Some(format!(
                "ServiceRequest{}{path}",
                if path.is_empty() { "" } else { "." }
            )),
        })
    };
    match text(fields.get("status")) {
        "active" => {}
        "" => problem("status", "required", "status is required: active".into()),
        other => problem(
            "status",
            "value",
            format!("'{other}': a referral is filed active"),
        ),
    }
    match text(fields.get("intent")) {
        "order" | "original-order" => {}
        "" => problem("intent", "required", "intent is required: order".into()),
        other => problem(
            "intent",
            "value",
            format!("'{other}': a referral here is an order"),
        ),
    }
    let urgency = match text(fields.get("priority")) {
        "" | "routine" => "routine",
        "urgent" => "urgent",
        "asap" | "stat" => "emergent",
        other => {
            problem(
                "priority",
                "value",
                format!("'{other}' is not a request priority: routine, urgent, asap or stat"),
            );
            "routine"
        }
    };
    let patient = match fields.get("subject").map(|s| text(s.get("reference"))) {
        None | Some("") => {
            problem(
                "subject",
                "required",
                "subject is required: Patient/id".into(),
            );
            None
        }
        Some(reference) => match reference
            .strip_prefix("Patient/")
            .map(str::parse::<PatientId>)
        {
            Some(Ok(id)) => Some(id),
            _ => {
                problem(
                    "subject.reference",
                    "value",
                    format!("'{reference}' is not a patient here: Patient/id"),
                );
                None
            }
        },
    };
    let requesting_clinician = fields
        .get("requester")
        .map(|r| text(r.get("display")).to_string())
        .unwrap_or_default();
    let mut requesting_service = "other".to_string();
    for (index, extension) in fields
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if text(extension.get("url")) == REQUESTING_SERVICE {
            requesting_service = text(extension.get("valueCode")).to_string();
        } else {
            problem(
                &format!("extension[{index}]"),
                "not-supported",
                format!(
                    "extension {} is not one Seldinger keeps",
                    text(extension.get("url"))
                ),
            );
        }
    }
    let indication = fields
        .get("reasonCode")
        .and_then(Value::as_array)
        .map(|reasons| {
            reasons
                .iter()
                .map(|r| {
                    let t = text(r.get("text"));
                    if t.is_empty() {
                        text(r["coding"].get(0).and_then(|c| c.get("display")))
                    } else {
                        t
                    }
                })
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let code = fields.get("code");
    let mut requested_procedure = None;
    for coding in code
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if text(coding.get("system")) == PROCEDURE_SYSTEM {
            requested_procedure = Some(text(coding.get("code")).to_string());
        }
    }
    let requested_procedure_text = code
        .map(|c| text(c.get("text")))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .or_else(|| {
            // A coding from another system (the EHR's) still says what was asked for.
            code.and_then(|c| c.get("coding"))
                .and_then(Value::as_array)
                .and_then(|codings| {
                    codings
                        .iter()
                        .filter(|c| text(c.get("system")) != PROCEDURE_SYSTEM)
                        .map(|c| text(c.get("display")))
                        .find(|d| !d.is_empty())
                        .map(str::to_string)
                })
        });
    let clinical_question = fields
        .get("note")
        .and_then(Value::as_array)
        .map(|notes| {
            notes
                .iter()
                .map(|n| text(n.get("text")))
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let placer = match fields.get("identifier").and_then(Value::as_array) {
        None => None,
        Some(identifiers) if identifiers.len() == 1 => {
            let identifier = &identifiers[0];
            match placer_of(
                text(identifier.get("system")),
                text(identifier.get("value")),
            ) {
                Ok(placer) if !text(identifier.get("system")).is_empty() => Some(placer),
                Ok(_) => {
                    problem(
                        "identifier[0].system",
                        "required",
                        "the order number's system is required".into(),
                    );
                    None
                }
                Err(e) => {
                    problem("identifier[0]", "value", e);
                    None
                }
            }
        }
        Some(_) => {
            problem(
                "identifier",
                "value",
                "give one identifier: the order number".into(),
            );
            None
        }
    };
    let input = ReferralInput {
        patient_id: String::new(),
        requesting_clinician,
        requesting_service,
        indication,
        requested_procedure,
        requested_procedure_text,
        urgency: urgency.to_string(),
        clinical_question,
    };
    let details = match ReferralDetails::parse(&input, catalogue) {
        Ok(details) => Some(details),
        Err(errors) => {
            for error in errors.0 {
                let path = match error.field.as_str() {
                    "requesting_clinician" => "requester.display",
                    "requesting_service" => "extension",
                    "indication" => "reasonCode",
                    "requested_procedure" => "code",
                    "requested_procedure_text" => "code.text",
                    "urgency" => "priority",
                    "clinical_question" => "note",
                    _ => "",
                };
                problem(
                    path,
                    "invariant",
                    format!("{}: {}", error.field, error.detail),
                );
            }
            None
        }
    };
    if !issues.is_empty() {
        let status = if issues
            .iter()
            .any(|i| i.code == "structure" || i.code == "not-supported")
        {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return Err(FhirError::many(status, issues));
    }
    match (patient, details) {
        (Some(patient), Some(mut details)) => {
            details.placer_order = placer;
            Ok((patient, details))
        }
        _ => Err(FhirError::internal()),
    }
}

pub async fn create(
    request: &Request,
    caller: &Caller,
    headers: &axum::http::HeaderMap,
    body: &Value,
) -> Result<Response, FhirError> {
    let condition = match input::identifier_condition(headers)? {
        Some((system, number)) => {
            Some(placer_of(&system, &number).map_err(|e| FhirError::invalid("If-None-Exist", e))?)
        }
        None => None,
    };
    let (patient, details) = referral_input(body, &request.app.catalogue)?;
    if let Some(wanted) = &condition {
        if details.placer_order.as_ref() != Some(wanted) {
            return Err(FhirError::invalid(
                "If-None-Exist",
                "names a different order number from the resource's identifier",
            ));
        }
    }
    // The order filed already (a retry): answered with it, nothing filed again.
    if let Some(placer) = &details.placer_order {
        if let Some(existing) = request.app.order(caller, placer).await? {
            // Named only to a caller who may see it: an identifier is not a key to others'
            // referrals.
            let unseen = || {
                FhirError::new(
                    StatusCode::CONFLICT,
                    "duplicate",
                    "an order with this identifier was filed already, by someone whose referrals you do not see",
                )
                .at("ServiceRequest.identifier")
            };
            let (filed, _) = request
                .app
                .filed_referral(caller, existing.id)
                .await
                .map_err(|_| unseen())?;
            if condition.is_none() {
                return Err(FhirError::new(
                    StatusCode::CONFLICT,
                    "duplicate",
                    format!("order {} of {} was filed already (as ServiceRequest/{}); send If-None-Exist to have it answered instead", placer.number, placer_system(&placer.authority), existing.id),
                )
                .at("ServiceRequest.identifier"));
            }
            let mut shown = with_times(request, std::slice::from_ref(&filed)).await?;
            let (resource, _, patient) = shown.remove(0);
            request
                .app
                .audit_reads(
                    caller,
                    vec![Audit::of("fhir-read", "referral", existing.id, patient)],
                )
                .await?;
            return Ok(respond::resource(
                StatusCode::OK,
                &resource,
                filed.referral.version,
                last_updated(&resource),
            ));
        }
    }
    if !request.app.patient_exists(patient).await? {
        return Err(FhirError::unprocessable(
            "ServiceRequest.subject",
            format!("Patient/{patient} is not a registered patient here"),
        ));
    }
    let (referral, _) = match request.app.file_referral(caller, patient, details).await {
        Ok(filed) => filed,
        // Filed by a concurrent retry between the look and the write: the store's key held.
        Err(AppError::Store(seldinger_store::StoreError::Duplicate(what))) => {
            return Err(FhirError::new(StatusCode::CONFLICT, "duplicate", what)
                .at("ServiceRequest.identifier"))
        }
        // A namespace the hospital's order system owns.
        Err(AppError::Invalid(errors)) if errors.0.iter().any(|e| e.field == "placer_order") => {
            return Err(FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "business-rule",
                errors.to_string(),
            )
            .at("ServiceRequest.identifier"))
        }
        Err(e) => return Err(e.into()),
    };
    let (filed, _) = request.app.filed_referral(caller, referral.id).await?;
    let mut shown = with_times(request, std::slice::from_ref(&filed)).await?;
    let (resource, _, _) = shown.remove(0);
    let mut response = respond::resource(
        StatusCode::CREATED,
        &resource,
        filed.referral.version,
        last_updated(&resource),
    );
    let location = format!(
        "{}/ServiceRequest/{}/_history/{}",
        request.base, referral.id, referral.version
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

//! The OpenAPI document, generated from the route annotations and the domain types themselves.

use crate::routes;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Seldinger API",
        description = "Interventional radiology service: patients, referrals, cases and their lifecycle. \
                       Errors are RFC 9457 problem+json.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(
        routes::system::health,
        routes::system::live,
        routes::system::ready,
        routes::system::openapi,
        crate::metrics::scrape,
        crate::auth::login::sign_in,
        crate::auth::login::current,
        crate::auth::login::sign_out,
        routes::catalogue::procedures,
        routes::catalogue::rooms,
        routes::patients::register,
        routes::patients::search,
        routes::patients::get,
        routes::patients::update,
        routes::patients::history,
        routes::patients::add_lab_result,
        routes::patients::add_medication,
        routes::patients::correct_lab_result,
        routes::patients::withdraw_lab_result,
        routes::patients::correct_medication,
        routes::patients::withdraw_medication,
        routes::referrals::create,
        routes::referrals::list,
        routes::referrals::get,
        routes::cases::list,
        routes::cases::get,
        routes::cases::transition,
        routes::cases::history,
        routes::cases::checklist,
        routes::cases::readiness,
        routes::cases::tasks,
        routes::safety::evaluate,
        routes::dose::reports,
        routes::dose::report,
        routes::dose::link,
        routes::dose::case_dose,
        routes::dose::patient_dose,
        routes::dose::statistics,
        routes::reports::get,
        routes::reports::change,
        routes::adverse_events::list,
        routes::adverse_events::get,
        routes::adverse_events::report,
        routes::adverse_events::change,
        routes::quality::get,
        routes::quality::mm,
        routes::quality::add_mm_note,
        routes::quality::registry_export,
        routes::devices::list,
        routes::devices::ivc_filters,
        routes::devices::get,
        routes::devices::record_event,
        routes::followup::list,
        routes::followup::complete,
        routes::admin::users,
        routes::admin::add_user,
        routes::admin::disable_user,
        routes::admin::enable_user,
        routes::admin::reset_password,
        routes::admin::tokens,
        routes::admin::create_token,
        routes::admin::revoke_token,
        routes::admin::audit,
        routes::interfaces::list,
        routes::interfaces::get,
        routes::interfaces::replay,
        routes::interfaces::outbox,
        routes::interfaces::outbound,
        routes::interfaces::send_again,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "system"), (name = "session"), (name = "catalogue"), (name = "patients"), (name = "referrals"),
        (name = "cases"), (name = "safety"), (name = "dose"), (name = "follow-up"), (name = "devices"), (name = "adverse-events"), (name = "quality"), (name = "administration"),
        (name = "interfaces")
    )
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate; which endpoints need them is in docs/roles.md.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("seldinger_session"))),
        );
    }
}

/// The document as served: the generated one, with what every operation can answer written out
/// from the access table and the error mapping, so the document says what the server does. Every
/// error is `application/problem+json`; every operation that needs a sign-in can answer 401, every
/// one that needs a permission 403, every one with a path id 404, every one with a body 415, every
/// write 409 and 422; CSV exports are `text/csv`.
pub fn document() -> &'static serde_json::Value {
    // Built from static annotations and tables: the same for the process's life.
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(build_document)
}

fn build_document() -> serde_json::Value {
    use crate::auth::endpoints::{rule_for, Rule};
    use serde_json::{json, Value};
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    constrain_schemas(&mut doc);
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let described = |code: &str| {
        match code {
        "400" => "malformed: an unknown or bad query parameter, or a body that is not JSON",
        "401" => "not signed in, or the session or token has ended",
        "403" => "the caller's role does not hold the permission (docs/roles.md), or a missing CSRF token",
        "404" => "no such record, or one outside the caller's scope (the two read alike)",
        "409" => "a stale version (someone changed the record first), or a change the record's state does not allow",
        "415" => "the body is not application/json",
        "422" => "the request was read but cannot be done as asked: a field of the body missing, of the wrong type or not valid (each field with what is allowed), or a change the rules refuse",
        "429" => "too many sign-in attempts: wait as the detail says",
        _ => "error",
    }
    };
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Ok(http) = axum::http::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let rule = rule_for(&http, path);
            let has_body = operation.get("requestBody").is_some();
            if has_body {
                // Every body the API reads is required: an empty one is refused.
                operation["requestBody"]["required"] = json!(true);
            }
            let takes_format = operation
                .get("parameters")
                .and_then(Value::as_array)
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "format"));
            if let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            {
                for parameter in parameters.iter_mut() {
                    if let Some(schema) = query_schema(path, parameter) {
                        parameter["schema"] = schema;
                    }
                    // A query value given is never blank (the server refuses `?x=` and `?x=%20`)
                    // and holds no control character.
                    let in_query = parameter["in"] == "query";
                    let schema = &mut parameter["schema"];
                    if parameter_is_text(schema) && schema.get("minLength").is_none() {
                        schema["minLength"] = json!(1);
                        let free_text =
                            schema.get("pattern").is_none() && schema.get("format").is_none();
                        if free_text && in_query {
                            schema["pattern"] = json!(QUERY_TEXT_PATTERN);
                        }
                    }
                }
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let mut codes = vec!["400"];
            if !matches!(rule, Some(Rule::Public)) {
                codes.push("401");
            }
            if matches!(rule, Some(Rule::Requires(_))) || http != axum::http::Method::GET {
                codes.push("403");
            }
            if path.contains('{') {
                codes.push("404");
            }
            if has_body {
                codes.push("415");
            }
            if http != axum::http::Method::GET {
                // A write can be refused for what it asks (422: e.g. disabling oneself) or for the
                // record's state or version (409).
                codes.extend(["409", "422"]);
            }
            if path == "/api/v1/session" && http == axum::http::Method::POST {
                codes.push("429");
            }
            for code in codes {
                responses
                    .entry(code)
                    .or_insert_with(|| json!({"description": described(code)}));
            }
            for (code, response) in responses.iter_mut() {
                if code.starts_with('4') || code.starts_with('5') {
                    response["content"] = problem.clone();
                } else if code == "200"
                    && takes_format
                    && response
                        .get("content")
                        .and_then(|c| c.get("text/csv"))
                        .is_none()
                {
                    let json_content = response
                        .get("content")
                        .and_then(|c| c.get("application/json"))
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    response["content"] = json!({
                        "application/json": json_content,
                        "text/csv": {"schema": {"type": "string"}}
                    });
                }
            }
        }
    }
    doc
}

/// The exact values a query parameter takes, where its name means the same everywhere: what the
/// server's parser accepts, so a request the document allows is one the server takes.
fn query_schema(path: &str, parameter: &serde_json::Value) -> Option<serde_json::Value> {
    use seldinger_domain::access::Role;
    use seldinger_domain::followup::FollowUpKind;
    use seldinger_domain::lifecycle::CaseState;
    use serde_json::json;
    if parameter["in"] != "query" {
        return None;
    }
    let day =
        json!({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"});
    Some(match parameter["name"].as_str()? {
        "format" if path == "/api/v1/quality/registry-export" => {
            json!({"type": "string", "enum": ["json", "csv", "fhir"]})
        }
        "format" => json!({"type": "string", "enum": ["json", "csv"]}),
        "table" => json!({"type": "string", "enum": seldinger_domain::registry::TABLES}),
        "dates" => json!({"type": "string", "enum": ["exact", "shifted"]}),
        "date" | "until" => day,
        "from" | "to" if path == "/api/v1/audit" => {
            json!({"anyOf": [day, {"type": "string", "format": "date-time"}]})
        }
        "from" => day,
        "status" if path == "/api/v1/follow-up-tasks" => json!({"type": "string",
            "enum": ["open", "due", "overdue", "done", "withdrawn", "all"]}),
        "state" => json!({"type": "string",
            "enum": CaseState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()}),
        "kind" if path.starts_with("/api/v1/devices") => json!({"type": "string",
            "enum": seldinger_domain::procedure_record::DeviceKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()}),
        "life" => json!({"type": "string",
            "enum": seldinger_domain::device_registry::LifeState::NAMES}),
        "kind" => json!({"type": "string",
            "enum": FollowUpKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()}),
        "role" => json!({"type": "string",
            "enum": Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()}),
        "patient_id" | "case_id" if path != "/api/v1/audit" => {
            json!({"type": "string", "format": "uuid"})
        }
        "by" if path == "/api/v1/dose/statistics" => json!({"type": "string",
            "enum": ["procedure", "room", "device", "operator"]}),
        "cursor" => json!({"type": "string", "pattern": "^([0-9a-f]{2})+$", "maxLength": 1024}),
        _ => return None,
    })
}

/// A free-text query value, as the server takes it (`routes::QueryParams`): no control
/// character (Unicode Cc), and not only spaces.
const QUERY_TEXT_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// Whether a parameter's schema is plain text (a string without an enum or alternatives).
fn parameter_is_text(schema: &serde_json::Value) -> bool {
    let string = match &schema["type"] {
        serde_json::Value::String(t) => t == "string",
        serde_json::Value::Array(ts) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    string && schema.get("enum").is_none()
}

/// What the server checks in each body field, written into the schemas so that the document is
/// never looser in shape nor stricter than the server: lengths and characters of free text (as
/// `validation::optional_text` counts them), the allowed values of choices (taken from the enum
/// schemas the domain types already publish), codes' patterns and numbers' ranges. A rule that
/// spans fields (a unit that must fit its test) stays in the description and answers 422.
fn constrain_schemas(doc: &mut serde_json::Value) {
    use crate::auth::credentials::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
    use crate::routes::admin::USERNAME_PATTERN;
    use seldinger_domain::catalogue::{ProcedureId, SheathFrench};
    use seldinger_domain::clinical::{DOSE_INTENTS, INDICATIONS};
    use seldinger_domain::patient::{BodyWeightKg, Mrn, SiteCode};
    use seldinger_domain::validation::{LONG_TEXT, MEDIUM_TEXT, SHORT_TEXT, TEXT_PATTERN};
    use seldinger_domain::RoomId;
    use serde_json::{json, Value};
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let text = |max: usize| json!({"maxLength": max, "pattern": TEXT_PATTERN});
    let required_text =
        |max: usize| json!({"minLength": 1, "maxLength": max, "pattern": TEXT_PATTERN});
    // Choices: the domain enum's values; a blank (or null) one means "not given" where optional.
    let choice = |name: &str, blank_allowed: bool| {
        let mut values = schemas
            .get(name)
            .and_then(|s| s.get("enum"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if blank_allowed {
            values.extend([json!(""), Value::Null]);
        }
        json!({"enum": values})
    };
    // Codes the server trims and upper-cases.
    let code = |max: usize| json!({"pattern": format!("^\\s*[A-Za-z0-9-]{{1,{max}}}\\s*$")});
    let uuid = json!({"format": "uuid"});
    let weight =
        json!({"exclusiveMinimum": BodyWeightKg::ABOVE_KG, "maximum": BodyWeightKg::MAX_KG});
    // An optional choice the domain lists: one of its values, or blank or null for "not given".
    let optional = |values: &[&str]| {
        let mut values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
        values.extend([json!(""), Value::Null]);
        json!({"enum": values})
    };
    let password = json!({"minLength": MIN_PASSWORD_CHARS, "maxLength": MAX_PASSWORD_CHARS});
    let patient = [
        ("birth_date", json!({"format": "date"})),
        ("sex", choice("Sex", false)),
        ("weight_kg", weight.clone()),
        ("pregnancy_status", choice("Pregnancy", true)),
    ];
    let mut properties: Vec<(&str, &str, Value)> = vec![
        ("PatientInput", "site", code(SiteCode::MAX_CHARS)),
        ("PatientInput", "mrn", code(Mrn::MAX_CHARS)),
        ("PatientInput", "family_name", required_text(SHORT_TEXT)),
        ("PatientInput", "given_name", required_text(SHORT_TEXT)),
        ("PatientInput", "middle_names", text(SHORT_TEXT)),
        ("AllergyInput", "class", choice("AllergyClass", false)),
        ("AllergyInput", "substance", required_text(SHORT_TEXT)),
        ("AllergyInput", "reaction", text(MEDIUM_TEXT)),
        ("ReferralInput", "patient_id", uuid.clone()),
        (
            "ReferralInput",
            "requesting_clinician",
            required_text(SHORT_TEXT),
        ),
        (
            "ReferralInput",
            "requesting_service",
            choice("RequestingService", false),
        ),
        ("ReferralInput", "indication", required_text(LONG_TEXT)),
        ("ReferralInput", "urgency", choice("Urgency", false)),
        (
            "ReferralInput",
            "requested_procedure_text",
            text(MEDIUM_TEXT),
        ),
        ("ReferralInput", "clinical_question", text(LONG_TEXT)),
        ("MedicationInput", "drug", required_text(SHORT_TEXT)),
        ("MedicationInput", "dose", text(SHORT_TEXT)),
        ("MedicationInput", "frequency", text(SHORT_TEXT)),
        ("MedicationInput", "dose_intent", optional(DOSE_INTENTS)),
        ("MedicationInput", "indication", optional(INDICATIONS)),
        ("LabResultInput", "test", json!({"minLength": 1})),
        ("LabResultInput", "value", json!({"minimum": 0})),
        ("Consent", "obtained_by", required_text(SHORT_TEXT)),
        ("TransitionRequest", "reason", text(LONG_TEXT)),
        ("ChangeBasis", "reason", text(MEDIUM_TEXT)),
        ("LinkRequest", "case_id", uuid),
        ("LinkRequest", "reason", required_text(LONG_TEXT)),
        ("CompleteRequest", "note", required_text(LONG_TEXT)),
        ("NewToken", "name", required_text(SHORT_TEXT)),
        ("NewToken", "role", {
            // Absent or null: the user's own role.
            let mut roles = choice("Role", false);
            if let Some(values) = roles["enum"].as_array_mut() {
                values.push(Value::Null);
            }
            roles
        }),
        ("NewUser", "username", json!({"pattern": USERNAME_PATTERN})),
        ("NewUser", "display_name", required_text(SHORT_TEXT)),
        ("NewUser", "role", choice("Role", false)),
        ("NewUser", "password", password.clone()),
        ("NewPassword", "password", password),
    ];
    for (field, rule) in &patient {
        properties.push(("PatientInput", field, rule.clone()));
        properties.push(("HypotheticalPatient", field, rule.clone()));
    }
    // The codes' own schemas, wherever they appear (the server parses them the same everywhere).
    let components = [
        ("RoomId", json!({"pattern": RoomId::PATTERN})),
        ("ProcedureId", json!({"pattern": ProcedureId::PATTERN})),
        (
            "SheathFrench",
            json!({"minimum": SheathFrench::MIN_FRENCH, "maximum": SheathFrench::MAX_FRENCH}),
        ),
        ("BodyWeightKg", weight),
    ];
    for (name, rule) in components {
        if let Some(schema) = schemas.get_mut(name) {
            merge(schema, &rule);
        }
    }
    for (name, field, rule) in properties {
        if let Some(property) = schemas
            .get_mut(name)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(field))
        {
            merge(property, &rule);
        }
    }
    // The case events' free text (a question asked at vetting and its answer).
    if let Some(variants) = schemas
        .get_mut("CaseEvent")
        .and_then(|s| s.get_mut("oneOf"))
        .and_then(Value::as_array_mut)
    {
        for variant in variants {
            for field in ["question", "answer"] {
                if let Some(property) = variant.pointer_mut(&format!("/properties/{field}")) {
                    merge(property, &required_text(LONG_TEXT));
                }
            }
        }
    }
}

fn merge(schema: &mut serde_json::Value, rule: &serde_json::Value) {
    if let (Some(schema), Some(rule)) = (schema.as_object_mut(), rule.as_object()) {
        for (key, value) in rule {
            schema.insert(key.clone(), value.clone());
        }
    }
}

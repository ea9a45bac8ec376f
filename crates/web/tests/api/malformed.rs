//! Malformed input at volume, property-based: generated JSON bodies (valid JSON of every shape,
//! with the API's own field names, and bytes that are not JSON) to every write the OpenAPI
//! document lists, generated query strings to every read, and generated form bodies to every
//! form of the web UI — on a department with real ids, so input reaches the handlers' own checks.
//! None may be answered with a server error (a panic is one), a refusal of the API is a problem
//! document, and the server answers its health check after each run. A body over the limit is
//! refused without being read into memory.

use crate::helpers::{content_type, spawn_apps, TestApp};
use crate::pages::{csrf_field, signed_in, site};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use seldinger_domain::access::Role;
use serde_json::Value;

/// Strings that have broken parsers elsewhere: empty, whitespace, huge numbers, odd dates,
/// control and combining characters, SQL and markup, path tricks.
const AWKWARD: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "2026-02-30",
    "2026-12-03T25:61:00Z",
    "9999-12-31T23:59:59Z",
    "\u{0}",
    "\u{202e}evil",
    "e\u{301}\u{301}\u{301}",
    "'; DROP TABLE cases; --",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%00",
    "null",
    "[]",
    "{}",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(AWKWARD).prop_map(String::from),
        ".{0,24}",
        "[0-9a-f-]{36}",
        "[A-Za-z0-9 ]{0,300}",
    ]
}

fn json(names: Vec<String>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    let key = prop_oneof![
        3 => prop::sample::select(names),
        1 => "[a-z_]{1,12}",
    ];
    leaf.prop_recursive(3, 32, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..10)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A request body: JSON (mostly an object, as the API takes), or bytes that are not JSON.
fn body(names: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json(names).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => "\\{\"[a-z_]{1,10}\": ?[0-9\"\\[\\{]{0,4}".prop_map(String::into_bytes),
    ]
}

/// `name=value` pairs, URL-encoded: the given names (mostly) and others, with awkward values;
/// or a raw string (`raw`, a pattern) that is not well-formed. Query strings and form bodies.
fn encoded_pairs(
    names: Vec<String>,
    at_most: usize,
    raw: &'static str,
) -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![3 => prop::sample::select(names), 1 => "[a-z_]{1,10}"],
        text(),
    );
    prop_oneof![
        4 => prop::collection::vec(pair, 0..at_most).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => raw,
    ]
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The operations the OpenAPI document lists, with their path filled in from real records.
struct Operations {
    writes: Vec<(Method, String)>,
    reads: Vec<(String, Vec<String>)>,
    field_names: Vec<String>,
}

async fn operations(app: &TestApp, ids: &Ids) -> Operations {
    let spec: Value = app
        .get("/openapi.json")
        .await
        .json()
        .await
        .expect("the OpenAPI document");
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let filled = ids.fill(path);
        for (method, operation) in item.as_object().expect("path item") {
            let parameters: Vec<String> = operation["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "query")
                        .filter_map(|p| p["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            match method.as_str() {
                "get" => reads.push((filled.clone(), parameters)),
                "post" | "put" | "patch" | "delete" => writes.push((
                    Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"),
                    filled.clone(),
                )),
                _ => {}
            }
        }
    }
    // Every property name any schema declares: generated bodies use the API's own words.
    let mut field_names = std::collections::BTreeSet::new();
    collect_property_names(&spec["components"], &mut field_names);
    Operations {
        writes,
        reads,
        field_names: field_names.into_iter().collect(),
    }
}

fn collect_property_names(value: &Value, names: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(fields) => {
            if let Some(Value::Object(properties)) = fields.get("properties") {
                names.extend(properties.keys().cloned());
            }
            for inner in fields.values() {
                collect_property_names(inner, names);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|inner| collect_property_names(inner, names)),
        _ => {}
    }
}

/// Real records, so paths name things that exist.
struct Ids {
    patient: String,
    case: String,
    referral: String,
}

impl Ids {
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/patients/") {
            &self.patient
        } else if path.starts_with("/referrals/") {
            &self.referral
        } else {
            &self.case
        };
        // Not a user the test signs in as: a generated request must not disable its own caller.
        let filled = path
            .replace("{id}", id)
            .replace("{username}", "no.such.user")
            .replace("{sop_instance_uid}", "1.2.826.0.1.3680043.2.1125.1")
            .replace("{case_id}", &self.case);
        // Any other parameter (a list entry's id): an id that names nothing.
        filled
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "00000000-0000-4000-8000-000000000000"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

const ROLES: [Role; 4] = [
    Role::IrPhysician,
    Role::IrNurse,
    Role::Scheduler,
    Role::Administrator,
];

/// Why a response is wrong, if it is.
async fn judge(response: reqwest::Response, api: bool, what: &str) -> Result<(), TestCaseError> {
    let status = response.status();
    let content_type = content_type(&response);
    prop_assert!(
        !status.is_server_error(),
        "{what}: {status}: {}",
        response.text().await.unwrap_or_default()
    );
    if api && status.is_client_error() && status != StatusCode::METHOD_NOT_ALLOWED {
        prop_assert!(
            content_type.starts_with("application/problem+json"),
            "{what}: {status} answered as {content_type}"
        );
    }
    Ok(())
}

/// Runs `cases` generated inputs through `check` on a blocking thread (proptest is
/// synchronous; each case drives the async client on the test's runtime).
async fn run<M, S, F, Fut>(cases: u32, strategy: M, check: F)
where
    // Made on the runner's thread: proptest's recursive strategies are not `Send`.
    M: FnOnce() -> S + Send + 'static,
    S: Strategy,
    F: Fn(S::Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), TestCaseError>>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy(), |input| handle.block_on(check(input)))
            .map_err(|e| e.to_string())
    })
    .await
    .expect("the runner's thread")
    .unwrap_or_else(|failure| panic!("{failure}"));
}

async fn department(app: &TestApp) -> Ids {
    let (patient, case) = app
        .booked_case("MAL-1", "angio-1", "2026-12-03T10:00:00Z")
        .await;
    let case_record = app.get(&format!("/cases/{case}")).await;
    let case_record: Value = case_record.json().await.expect("case");
    let referral = case_record["referral_id"]
        .as_str()
        .expect("the case names its referral")
        .to_string();
    Ids {
        patient,
        case,
        referral,
    }
}

async fn still_healthy(app: &TestApp) {
    let health = app.get("/health").await;
    assert_eq!(health.status(), StatusCode::OK, "{}: health", app.engine);
}

#[tokio::test]
async fn generated_json_bodies_and_query_strings_never_get_a_server_error() {
    for app in spawn_apps().await {
        let ids = department(&app).await;
        let Operations {
            writes,
            reads,
            field_names,
        } = operations(&app, &ids).await;
        assert!(
            writes.len() > 20 && reads.len() > 30,
            "the document's operations"
        );
        let tokens = app.tokens.clone();
        let client = app.client.clone();
        // The document's paths are whole (`/api/v1/…`).
        let base = site(&app);

        let (c, b, t) = (client.clone(), base.clone(), tokens.clone());
        let strategy = move || {
            (
                prop::sample::select(writes),
                prop::sample::select(&ROLES[..]),
                body(field_names),
            )
        };
        run(300, strategy, move |((method, path), role, body)| {
            let request = c
                .request(method.clone(), format!("{b}{path}"))
                .bearer_auth(&t[&role])
                .header("content-type", "application/json")
                .body(body);
            async move {
                let response = request.send().await.expect("request");
                judge(response, true, &format!("{method} {path}")).await
            }
        })
        .await;
        still_healthy(&app).await;

        let (c, b, t) = (client.clone(), base.clone(), tokens.clone());
        let strategy = move || {
            prop::sample::select(reads).prop_flat_map(|(path, names)| {
                let names = if names.is_empty() {
                    vec!["limit".to_string()]
                } else {
                    names
                };
                (
                    Just(path),
                    prop::sample::select(&ROLES[..]),
                    encoded_pairs(names, 5, "[%&=a-z0-9+;]{0,40}"),
                )
            })
        };
        run(300, strategy, move |(path, role, query)| {
            let request = c.get(format!("{b}{path}?{query}")).bearer_auth(&t[&role]);
            async move {
                let response = request.send().await.expect("request");
                judge(response, true, &format!("GET {path}?{query}")).await
            }
        })
        .await;
        still_healthy(&app).await;
    }
}

/// The web UI's forms, as a signed-in browser posts them (with its CSRF token, or a wrong one).
const FORMS: &[&str] = &[
    "/login",
    "/logout",
    "/vetting/{case_id}",
    "/cases/{id}/do",
    "/devices/{id}/do",
    "/follow-up/{id}/complete",
    "/quality/mm/{case_id}/notes",
    "/dose/reports/{sop_instance_uid}/link",
];

/// The forms' own field names and values a browser would send, and generated ones.
const FORM_FIELDS: &[&str] = &[
    "form",
    "event",
    "decision",
    "reason",
    "patient_version",
    "expected_version",
    "version",
    "test",
    "value",
    "unit",
    "drawn_at",
    "drug",
    "dose",
    "room",
    "start",
    "note",
    "finding",
    "case_id",
    "username",
    "password",
    "discussion",
    "actions",
    "meeting_on",
    "priority",
];

#[tokio::test]
async fn generated_form_bodies_never_get_a_server_error() {
    for app in spawn_apps().await {
        let ids = department(&app).await;
        let physician = signed_in(&app, "ir_physician").await;
        let case_page = physician
            .get(format!("{}/cases/{}", site(&app), ids.case))
            .send()
            .await
            .expect("case page")
            .text()
            .await
            .expect("html");
        let token = csrf_field(&case_page);
        assert!(!token.is_empty(), "the case page carries its CSRF token");
        let forms: Vec<String> = FORMS.iter().map(|f| ids.fill(f)).collect();
        let site = site(&app);
        let csrf = token.clone();
        let strategy = move || {
            let fields = FORM_FIELDS.iter().map(|f| f.to_string()).collect();
            (
                prop::sample::select(forms),
                prop::option::weighted(0.85, Just(csrf)),
                encoded_pairs(fields, 8, "[%&=a-z0-9+]{0,60}"),
            )
        };
        let browser = physician.clone();
        run(300, strategy, move |(path, csrf, form)| {
            let body = match csrf {
                Some(token) if !path.ends_with("/logout") => {
                    format!("csrf_token={}&{form}", encode(&token))
                }
                _ => form,
            };
            let request = browser
                .request(Method::POST, format!("{site}{path}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            async move {
                let response = request.send().await.expect("request");
                judge(response, false, &format!("POST {path}")).await
            }
        })
        .await;
        still_healthy(&app).await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_without_being_read() {
    for app in spawn_apps().await {
        // 32 MiB of an endless JSON string: refused as too large, not parsed or stored.
        let huge = format!("{{\"mrn\": \"{}\"}}", "A".repeat(32 << 20));
        let response = app
            .request_as(Role::IrPhysician, Method::POST, "/patients")
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await;
        match response {
            Ok(response) => assert_eq!(
                response.status(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "{}",
                app.engine
            ),
            // The server may close the connection once the limit is passed.
            Err(e) => assert!(e.is_request() || e.is_body(), "{}: {e}", app.engine),
        }
        still_healthy(&app).await;
    }
}

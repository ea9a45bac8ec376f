//! Row scope on every surface, tried the way a new user would: the demo department in the real
//! binary, every role signed in, two referring clinicians each with patients of their own, and
//! every page, every GET endpoint and every FHIR resource — walked from the route tables, so a new route is covered
//! without anyone remembering to — in HTML, JSON and CSV. No body may carry the name, MRN, birth
//! date or id of a patient outside the caller's scope; a quality lead's and an administrator's
//! bodies carry none at all. Break-glass stays the one way through, reasoned and flagged.

mod common;

use common::{cli, Server};
use reqwest::{Client, StatusCode};
use seldinger_web::{Rule, ENDPOINTS, PAGES};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const DEMO_PASSWORD: &str = "seldinger-demo";

/// A signed-in user: a client carrying their session cookie.
struct User {
    name: &'static str,
    client: Client,
    csrf: String,
}

async fn sign_in(base: &str, name: &'static str, password: &str) -> User {
    let client = Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let response = client
        .post(format!("{base}/session"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .expect("sign in");
    assert!(response.status().is_success(), "{name} signs in");
    let body: Value = response.json().await.expect("session");
    User {
        name,
        client,
        csrf: body["csrf_token"].as_str().unwrap_or_default().to_string(),
    }
}

impl User {
    async fn post(&self, url: &str, body: Value) -> Value {
        let response = self
            .client
            .post(url)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("post");
        assert!(
            response.status().is_success(),
            "{} POST {url}: {}",
            self.name,
            response.status()
        );
        response.json().await.expect("json")
    }

    async fn get_json(&self, url: &str) -> Value {
        let response = self.client.get(url).send().await.expect("get");
        assert!(response.status().is_success(), "{} GET {url}", self.name);
        response.json().await.expect("json")
    }
}

/// What identifies one patient on any page or in any document.
#[derive(Debug, Clone)]
struct Patient {
    id: String,
    markers: Vec<String>,
}

/// The patient and their cases and referrals, as a department-wide reader sees them.
async fn identify(reader: &User, api: &str, patient_id: &str, cases: &[Value]) -> Patient {
    let record = reader
        .get_json(&format!("{api}/patients/{patient_id}"))
        .await;
    let mut markers = vec![
        patient_id.to_string(),
        record["mrn"].as_str().expect("mrn").to_string(),
        record["birth_date"]
            .as_str()
            .expect("birth date")
            .to_string(),
        format!(
            "{}, {}",
            record["name"]["family"].as_str().expect("family"),
            record["name"]["given"].as_str().expect("given")
        ),
    ];
    for case in cases.iter().filter(|c| c["patient_id"] == patient_id) {
        markers.push(case["id"].as_str().expect("case id").to_string());
        markers.push(
            case["referral_id"]
                .as_str()
                .expect("referral id")
                .to_string(),
        );
    }
    Patient {
        id: patient_id.to_string(),
        markers,
    }
}

fn new_patient(mrn: &str, family: &str, born: &str) -> Value {
    json!({"site": "MAIN", "mrn": mrn, "family_name": family, "given_name": "Scope",
           "birth_date": born, "sex": "female"})
}

fn referral(patient_id: &str) -> Value {
    json!({"patient_id": patient_id, "requesting_clinician": "Dr Scope",
           "requesting_service": "oncology", "urgency": "routine",
           "requested_procedure": "biopsy-liver", "indication": "liver lesion on CT",
           "clinical_question": "tissue diagnosis"})
}

/// Registers a patient and refers them, as `user`; returns (patient id, case id).
async fn own_patient(
    user: &User,
    api: &str,
    mrn: &str,
    family: &str,
    born: &str,
) -> (String, String) {
    let patient = user
        .post(&format!("{api}/patients"), new_patient(mrn, family, born))
        .await;
    let id = patient["id"].as_str().expect("id").to_string();
    let received = user.post(&format!("{api}/referrals"), referral(&id)).await;
    (
        id,
        received["case"]["id"].as_str().expect("case").to_string(),
    )
}

/// Every GET a user can make: each API endpoint and page from the route tables, with its path
/// filled with records of the caller's own and of others', and the query variants that change
/// what a list shows (CSV, every status, a wider limit, the demo's day).
fn every_get(origin: &str, foreign: &Ids, own: Option<&Ids>, today: &str) -> Vec<String> {
    let mut paths: Vec<String> = ENDPOINTS
        .iter()
        .filter(|(method, _, rule)| *method == "GET" && *rule != Rule::Public)
        .map(|(_, path, _)| path.to_string())
        .chain(
            PAGES
                .iter()
                .filter(|page| page.methods.contains(&"GET"))
                .map(|page| page.path.to_string()),
        )
        .collect();
    paths.sort();
    let mut urls = Vec::new();
    for path in paths {
        let mut fills = vec![foreign];
        fills.extend(own);
        for ids in fills {
            let filled = path
                .replace("/patients/{id}", &format!("/patients/{}", ids.patient))
                .replace("/cases/{id}", &format!("/cases/{}", ids.case))
                .replace("/referrals/{id}", &format!("/referrals/{}", ids.referral))
                .replace("{sop_instance_uid}", &ids.dose_report)
                .replace("/devices/{id}", &format!("/devices/{}", ids.device))
                .replace(
                    "/adverse-events/{id}",
                    &format!("/adverse-events/{}", ids.adverse_event),
                )
                // No HL7 message in the demo: the one-message surfaces answer "not found".
                .replace("/hl7/messages/{id}", "/hl7/messages/no-such-message")
                .replace("/hl7/outbox/{id}", "/hl7/outbox/no-such-message")
                .replace("/interfaces/hl7/{id}", "/interfaces/hl7/no-such-message");
            if filled.contains('{') {
                panic!("the scope test does not know how to fill {path}; teach every_get");
            }
            for query in [
                "",
                "?format=csv",
                "?status=all",
                "?limit=1000",
                "?limit=1",
                &format!("?date={today}"),
                "?show=all",
            ] {
                urls.push(format!("{origin}{filled}{query}"));
            }
        }
    }
    // The FHIR server, from its own resource table.
    for ids in std::iter::once(foreign).chain(own) {
        for resource in seldinger_fhir::RESOURCES {
            let base = format!("{origin}{}/{}", seldinger_fhir::BASE_PATH, resource.name);
            let patient = &ids.patient;
            match resource.name {
                "Patient" => urls.extend([
                    base.clone(),
                    format!("{base}?_count=500"),
                    format!("{base}/{patient}"),
                    format!("{base}/{patient}/_history"),
                    format!("{base}/{patient}/_history/1"),
                ]),
                "AllergyIntolerance" | "MedicationStatement" | "Device" => {
                    urls.push(format!("{base}?patient=Patient/{patient}"))
                }
                "Procedure" | "DiagnosticReport" => urls.extend([
                    format!("{base}?patient=Patient/{patient}"),
                    format!("{base}/{}", ids.case),
                    format!("{base}/{}/_history", ids.case),
                ]),
                // Staff, not patients: nothing of a patient may show in it.
                "Practitioner" => urls.push(format!("{base}?_count=500")),
                "AdverseEvent" => urls.push(format!("{base}?subject=Patient/{patient}")),
                "Appointment" => urls.extend([
                    format!("{base}?_count=500"),
                    format!("{base}?patient=Patient/{patient}"),
                    format!("{base}/{}", ids.case),
                    format!("{base}/{}/_history", ids.case),
                ]),
                "Observation" => urls.extend([
                    format!("{base}?patient=Patient/{patient}&_count=500"),
                    format!("{base}?code=73569-6&_count=500"),
                    format!("{base}?code=73569-6&_count=500&_include=Observation:patient"),
                    format!("{base}?patient=Patient/{patient}&category=vital-signs&_count=500"),
                    format!("{base}/dose-{}", ids.case),
                    format!("{base}/vs-{}-0-hr", ids.case),
                ]),
                "Task" => urls.extend([
                    format!("{base}?_count=500"),
                    format!("{base}?patient=Patient/{patient}"),
                ]),
                "ServiceRequest" => urls.extend([
                    format!("{base}?_count=500"),
                    format!("{base}?_count=500&_include=ServiceRequest:patient"),
                    format!("{base}?patient=Patient/{patient}"),
                    format!("{base}/{}", ids.referral),
                ]),
                other => {
                    panic!("the scope test does not know how to read FHIR {other}; teach every_get")
                }
            }
        }
    }
    urls.sort();
    urls.dedup();
    urls
}

/// Records to fill path parameters with.
struct Ids {
    patient: String,
    case: String,
    referral: String,
    dose_report: String,
    device: String,
    adverse_event: String,
}

/// Requests each URL, and the next page of every paged list (its `Link rel="next"`), and checks
/// no body shows a patient of `outside`.
async fn walk(user: &User, urls: &[String], outside: &[&Patient], engine: &str) -> usize {
    let mut checked = 0;
    let mut queue: Vec<String> = urls.to_vec();
    while let Some(url) = queue.pop() {
        let url = &url;
        let response = user.client.get(url).send().await.expect("get");
        let status = response.status();
        if let Some(next) = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once('>'))
            .map(|(path, _)| path.to_string())
        {
            // One page further (the walk's own `?limit=1` lists page): continuations are scoped too.
            if url.ends_with("?limit=1") {
                let origin = url.split("/api/").next().unwrap_or_default();
                queue.push(format!("{origin}{next}"));
            }
        }
        let mut body = response.text().await.unwrap_or_default();
        // A FHIR Bundle's links repeat the caller's own query (a search by a patient they named):
        // what they sent is theirs; the rest of the Bundle is what must keep to their scope.
        if let Ok(mut bundle) = serde_json::from_str::<Value>(&body) {
            if bundle["resourceType"] == "Bundle" {
                if let Some(fields) = bundle.as_object_mut() {
                    fields.remove("link");
                }
                body = bundle.to_string();
            }
        }
        assert!(
            status != StatusCode::INTERNAL_SERVER_ERROR,
            "{engine}: {} GET {url} answered 500: {body}",
            user.name
        );
        for patient in outside {
            for marker in &patient.markers {
                // A value the caller put in the URL may be echoed in an error; it is theirs.
                if url.contains(marker.as_str()) && !status.is_success() {
                    continue;
                }
                assert!(
                    !body.contains(marker.as_str()),
                    "{engine}: {} GET {url} ({status}) shows {marker} of patient {} outside their scope",
                    user.name,
                    patient.id
                );
            }
        }
        checked += 1;
    }
    checked
}

async fn every_surface_keeps_to_the_viewers_scope(database_url: Option<&str>, engine: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start_with_database(&["demo"], dir.path(), database_url);
    let api = server.base.clone();
    let origin = api.trim_end_matches("/api/v1").to_string();
    // A second referring clinician, added as an operator would.
    cli(
        &["user", "add", "dr.bell", "--role", "referring_clinician"],
        dir.path(),
        database_url,
        &[("SELDINGER_NEW_PASSWORD", "a-long-test-password")],
    );
    let anand = sign_in(&api, "dr.anand", DEMO_PASSWORD).await;
    let bell = sign_in(&api, "dr.bell", "a-long-test-password").await;
    let (anand_patient, anand_case) =
        own_patient(&anand, &api, "SCOPE-A1", "Alphascope", "1961-02-03").await;
    let (bell_patient, bell_case) =
        own_patient(&bell, &api, "SCOPE-B1", "Bravoscope", "1962-04-05").await;

    // Who is who, as the department sees it.
    let physician = sign_in(&api, "dr.okafor", DEMO_PASSWORD).await;
    let cases = physician.get_json(&format!("{api}/cases?limit=1000")).await;
    let cases = cases.as_array().expect("cases").clone();
    let patient_ids: BTreeSet<String> = cases
        .iter()
        .map(|c| c["patient_id"].as_str().expect("patient").to_string())
        .collect();
    let mut everyone = Vec::new();
    for id in &patient_ids {
        everyone.push(identify(&physician, &api, id, &cases).await);
    }
    assert!(
        everyone.len() >= 30,
        "the demo has a department of patients"
    );
    let reports = physician.get_json(&format!("{api}/dose/reports")).await;
    let dose_report = reports[0]["sop_instance_uid"]
        .as_str()
        .expect("the demo has dose reports")
        .to_string();
    let demo_case = cases
        .iter()
        .find(|c| c["patient_id"] != anand_patient && c["patient_id"] != bell_patient)
        .expect("a demo case");
    let devices = physician.get_json(&format!("{api}/devices")).await;
    let device = devices[0]["id"]
        .as_str()
        .expect("the demo has devices in place")
        .to_string();
    let events = physician.get_json(&format!("{api}/adverse-events")).await;
    let adverse_event = events[0]["id"]
        .as_str()
        .expect("the demo has adverse events")
        .to_string();
    let foreign = Ids {
        patient: demo_case["patient_id"].as_str().expect("id").to_string(),
        case: demo_case["id"].as_str().expect("id").to_string(),
        referral: demo_case["referral_id"].as_str().expect("id").to_string(),
        dose_report: dose_report.clone(),
        device,
        adverse_event,
    };
    let own_ids = |patient: &str, case: &str| {
        let referral = cases
            .iter()
            .find(|c| c["id"] == case)
            .map(|c| c["referral_id"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        Ids {
            patient: patient.to_string(),
            case: case.to_string(),
            referral,
            dose_report: dose_report.clone(),
            // A case of their own has no device: the one-device surfaces answer "not found".
            device: format!("{case}-0"),
            adverse_event: format!("{case}-r1"),
        }
    };
    let today = common::test_today().to_string();
    let not = |keep: &str| -> Vec<&Patient> { everyone.iter().filter(|p| p.id != keep).collect() };

    // Each referring clinician: nobody's patient but their own.
    let mut checked = 0;
    for (user, patient, case) in [
        (&anand, &anand_patient, &anand_case),
        (&bell, &bell_patient, &bell_case),
    ] {
        let own = own_ids(patient, case);
        let urls = every_get(&origin, &foreign, Some(&own), &today);
        checked += walk(user, &urls, &not(patient), engine).await;
        // Their own patient is there to be seen: the test would prove nothing on empty pages.
        let board = user
            .client
            .get(format!("{origin}/cases/{case}"))
            .send()
            .await
            .expect("own case")
            .text()
            .await
            .expect("text");
        assert!(
            board.contains("scope"),
            "{engine}: {} sees their own case page",
            user.name
        );
    }
    // The quality lead and the administrator: no patient at all, on any surface.
    for name in ["qa.singh", "admin"] {
        let user = sign_in(&api, name, DEMO_PASSWORD).await;
        let urls = every_get(&origin, &foreign, None, &today);
        checked += walk(&user, &urls, &everyone.iter().collect::<Vec<_>>(), engine).await;
    }
    // The department's roles see the department: every surface answers without a server error.
    for name in [
        "dr.okafor",
        "nurse.lindqvist",
        "rad.tanaka",
        "sched.moreau",
        "phys.mendez",
    ] {
        let user = sign_in(&api, name, DEMO_PASSWORD).await;
        let urls = every_get(&origin, &foreign, None, &today);
        checked += walk(&user, &urls, &[], engine).await;
    }
    assert!(checked > 500, "{engine}: {checked} requests walked");

    // Break-glass: the one way through, with a reason, flagged for review.
    let refused = anand
        .client
        .get(format!("{api}/cases/{}", foreign.case))
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{engine}");
    let opened = anand
        .client
        .get(format!("{api}/cases/{}", foreign.case))
        .header(
            "x-break-glass-reason",
            "patient arrived in ED under my care",
        )
        .send()
        .await
        .expect("get");
    assert_eq!(
        opened.status(),
        StatusCode::OK,
        "{engine}: break-glass opens"
    );
    let admin = sign_in(&api, "admin", DEMO_PASSWORD).await;
    let flagged = admin
        .get_json(&format!("{api}/audit?break_glass=true&username=dr.anand"))
        .await;
    assert_eq!(
        flagged.as_array().map(Vec::len),
        Some(1),
        "{engine}: the break-glass read is flagged: {flagged}"
    );
    drop(server);
}

#[tokio::test]
async fn every_surface_keeps_to_the_viewers_scope_on_sqlite() {
    every_surface_keeps_to_the_viewers_scope(None, "SQLite").await;
}

#[tokio::test]
async fn every_surface_keeps_to_the_viewers_scope_on_postgresql() {
    let Some(db) = seldinger_store::testing::postgres().await else {
        return;
    };
    every_surface_keeps_to_the_viewers_scope(Some(&db.url), "PostgreSQL").await;
}

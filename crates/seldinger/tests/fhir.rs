//! The FHIR R4 server, tried as an EHR integration team would: the demo department in the real
//! binary, read over `/fhir/r4` with an API token, on both engines. Every resource, Bundle and
//! OperationOutcome the walk receives is then held to HL7's official R4 JSON Schema (the npm
//! package's copy, checked by ajv) and parsed by two independent FHIR libraries (fhirclient's
//! strict R4 models and fhir.resources' R4B models) — not by our own types.

mod common;

use common::{cli, Server};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// A FHIR client acting with one user's API token.
struct Fhir {
    client: Client,
    base: String,
    token: String,
}

struct Answer {
    status: StatusCode,
    etag: Option<String>,
    content_type: String,
    body: Value,
}

impl Fhir {
    fn new(server: &Server, dir: &Path, database_url: Option<&str>, user: &str) -> Fhir {
        Fhir::limited(server, dir, database_url, user, &[])
    }

    /// A token made with further `token create` options (`--scopes`, `--patient`).
    fn limited(
        server: &Server,
        dir: &Path,
        database_url: Option<&str>,
        user: &str,
        options: &[&str],
    ) -> Fhir {
        let mut args = vec!["token", "create", "--user", user];
        args.extend_from_slice(options);
        let printed = cli(&args, dir, database_url, &[]);
        let token = printed
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .expect("the token is printed")
            .to_string();
        Fhir {
            client: Client::new(),
            base: server.base.replace("/api/v1", "/fhir/r4"),
            token,
        }
    }

    /// GETs a path under the base (or an absolute URL, as a Bundle's link gives it).
    async fn get(&self, path: &str) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/{path}", self.base)
        };
        let response = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("get");
        answer(response).await
    }
}

impl Fhir {
    /// POSTs a resource (as application/fhir+json unless `content_type` says otherwise).
    async fn create(
        &self,
        kind: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (Answer, Option<String>) {
        let mut request = self
            .client
            .post(format!("{}/{kind}", self.base))
            .bearer_auth(&self.token)
            .body(body.to_string());
        if !headers.iter().any(|(name, _)| *name == "content-type") {
            request = request.header("content-type", "application/fhir+json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("post");
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (answer(response).await, location)
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let etag = header("etag");
    let content_type = header("content-type").unwrap_or_default();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    Answer {
        status,
        etag,
        content_type,
        body,
    }
}

/// How many laboratory results a patient has.
async fn labs_of(fhir: &Fhir, patient: &str) -> u64 {
    let url = format!("Observation?patient=Patient/{patient}&category=laboratory&_count=0");
    fhir.get(&url).await.body["total"].as_u64().expect("total")
}

/// What the walk received, for the independent peers.
#[derive(Default)]
struct Received(Vec<Value>);

impl Received {
    fn keep(&mut self, body: &Value) {
        self.0.push(body.clone());
    }
}

/// An OperationOutcome refusing the request, naming `expression`.
fn assert_refused(answer: &Answer, status: StatusCode, expression: Option<&str>, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    assert!(
        answer.content_type.starts_with("application/fhir+json"),
        "{what}: {}",
        answer.content_type
    );
    assert_eq!(answer.body["resourceType"], "OperationOutcome", "{what}");
    assert_eq!(answer.body["issue"][0]["severity"], "error", "{what}");
    if let Some(expression) = expression {
        assert_eq!(
            answer.body["issue"][0]["expression"][0], expression,
            "{what}: {}",
            answer.body
        );
    }
}

/// Every page of a search, following the Bundle's next links; checks the total and paging.
async fn search_all(fhir: &Fhir, query: &str, received: &mut Received) -> Vec<Value> {
    let mut resources = Vec::new();
    let mut next = Some(query.to_string());
    let mut total = None;
    while let Some(url) = next.take() {
        let page = fhir.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
        assert_eq!(page.body["type"], "searchset");
        received.keep(&page.body);
        total = page.body["total"].as_u64();
        for entry in page.body["entry"].as_array().into_iter().flatten() {
            let resource = entry["resource"].clone();
            assert_eq!(
                entry["fullUrl"],
                format!(
                    "{}/{}/{}",
                    fhir.base,
                    resource["resourceType"].as_str().unwrap_or_default(),
                    resource["id"].as_str().unwrap_or_default()
                )
            );
            resources.push(resource);
        }
        next = page.body["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["relation"] == "next")
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
    }
    let ids: BTreeSet<&str> = resources.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(
        ids.len(),
        resources.len(),
        "{query}: no resource twice across pages"
    );
    assert_eq!(
        total,
        Some(resources.len() as u64),
        "{query}: the total is what the pages hold"
    );
    resources
}

async fn fhir_server(database_url: Option<&str>, engine: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start_with_database(&["demo"], dir.path(), database_url);
    let physician = Fhir::new(&server, dir.path(), database_url, "dr.okafor");
    let mut received = Received::default();

    // The CapabilityStatement is public (clients read it before signing in) and lists Patient.
    let metadata = answer(
        Client::new()
            .get(format!("{}/metadata", physician.base))
            .send()
            .await
            .expect("metadata"),
    )
    .await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert_eq!(metadata.body["fhirVersion"], "4.0.1");
    let patient_entry = metadata.body["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Patient"))
        .expect("Patient is listed")
        .clone();
    for param in ["identifier", "name", "birthdate", "_lastUpdated", "_id"] {
        assert!(
            patient_entry["searchParam"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == param)),
            "{engine}: the statement lists {param}"
        );
    }
    received.keep(&metadata.body);

    // Every patient, seven a page.
    let patients = search_all(&physician, "Patient?_count=7", &mut received).await;
    assert!(patients.len() > 20, "{engine}: the demo's patients");
    let first = &patients[0];
    let id = first["id"].as_str().expect("id");
    let mrn = first["identifier"][0]["value"].as_str().expect("mrn");
    let system = first["identifier"][0]["system"].as_str().expect("system");
    assert!(system.starts_with("urn:seldinger:site:"), "{system}");

    // Read: the same resource, its version as the ETag.
    let read = physician.get(&format!("Patient/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    let version = read.body["meta"]["versionId"].as_str().expect("versionId");
    assert_eq!(
        read.etag.as_deref(),
        Some(format!("W/\"{version}\"").as_str())
    );
    assert_eq!(read.body["identifier"], first["identifier"]);
    received.keep(&read.body);

    // History: one entry per version, newest first; vread of the first.
    let history = physician.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    assert_eq!(history.body["type"], "history");
    let versions: Vec<&str> = history.body["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["resource"]["meta"]["versionId"].as_str())
        .collect();
    assert_eq!(versions.first(), Some(&version), "{engine}: newest first");
    assert_eq!(
        versions.len().to_string(),
        version,
        "{engine}: every version"
    );
    received.keep(&history.body);
    let first_version = physician.get(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(first_version.status, StatusCode::OK);
    assert_eq!(first_version.body["meta"]["versionId"], "1");
    received.keep(&first_version.body);

    // Searches clinicians and integrators use.
    let by_mrn = search_all(
        &physician,
        &format!("Patient?identifier={system}|{mrn}"),
        &mut received,
    )
    .await;
    assert_eq!(by_mrn.len(), 1, "{engine}: by MRN at its site");
    assert_eq!(by_mrn[0]["id"], id);
    let other_namespace = search_all(
        &physician,
        &format!("Patient?identifier=urn:other|{mrn}"),
        &mut received,
    )
    .await;
    assert!(
        other_namespace.is_empty(),
        "{engine}: another namespace's {mrn} is not ours"
    );
    let family = first["name"][0]["family"].as_str().expect("family");
    let by_name = search_all(&physician, &format!("Patient?name={family}"), &mut received).await;
    assert!(by_name.iter().any(|p| p["id"] == id), "{engine}: by name");
    let born = search_all(
        &physician,
        "Patient?birthdate=ge1950&birthdate=lt1960-07",
        &mut received,
    )
    .await;
    for patient in &born {
        let date = patient["birthDate"].as_str().unwrap_or_default();
        assert!(
            ("1950-01-01".."1960-07-01").contains(&date),
            "{engine}: {date}"
        );
    }
    let expected = patients
        .iter()
        .filter(|p| {
            ("1950-01-01".."1960-07-01").contains(&p["birthDate"].as_str().unwrap_or_default())
        })
        .count();
    assert_eq!(born.len(), expected, "{engine}: every patient born then");
    let future = search_all(
        &physician,
        "Patient?_lastUpdated=gt2100-01-01",
        &mut received,
    )
    .await;
    assert!(future.is_empty());
    let recent = search_all(&physician, "Patient?_lastUpdated=ge2000", &mut received).await;
    assert_eq!(
        recent.len(),
        patients.len(),
        "{engine}: every record changed since 2000"
    );
    let count_only = physician.get("Patient?_count=0").await;
    assert_eq!(
        count_only.body["total"].as_u64(),
        Some(patients.len() as u64)
    );
    assert!(count_only.body.get("entry").is_none());
    let by_id = search_all(&physician, &format!("Patient?_id={id}"), &mut received).await;
    assert_eq!(by_id.len(), 1);

    // Allergies, each patient's, by reference; one read back by its id.
    let mut allergies = Vec::new();
    for patient in &patients {
        let pid = patient["id"].as_str().unwrap_or_default();
        let theirs = search_all(
            &physician,
            &format!("AllergyIntolerance?patient=Patient/{pid}"),
            &mut received,
        )
        .await;
        for allergy in &theirs {
            assert_eq!(allergy["patient"]["reference"], format!("Patient/{pid}"));
        }
        allergies.extend(theirs);
    }
    assert!(
        !allergies.is_empty(),
        "{engine}: the demo records allergies"
    );
    assert!(
        allergies.iter().any(|a| a["category"][0] == "medication"),
        "{engine}: contrast or drug allergies"
    );
    let allergy_id = allergies[0]["id"].as_str().expect("allergy id");
    let allergy = physician
        .get(&format!("AllergyIntolerance/{allergy_id}"))
        .await;
    assert_eq!(allergy.status, StatusCode::OK);
    assert_eq!(allergy.body, allergies[0]);
    received.keep(&allergy.body);

    // Radiation dose: one summary per case after HL7's dose summary IG, its fixed codes and
    // units, the values the JSON API gives in SI units converted (1 Gy·m² = 10⁷ mGy·cm²).
    let doses = search_all(
        &physician,
        "Observation?code=http://loinc.org|73569-6&_count=3",
        &mut received,
    )
    .await;
    assert!(
        !doses.is_empty(),
        "{engine}: the demo's cases have dose reports"
    );
    let ig_units = [
        ("113725", "mGy"),
        ("113722", "mGy.cm2"),
        ("113726", "mGy.cm2"),
        ("113727", "mGy.cm2"),
        ("113730", "s"),
        ("113813", "mGy.cm"),
    ];
    for dose in &doses {
        assert_eq!(dose["code"]["coding"][0]["system"], "http://loinc.org");
        assert_eq!(dose["code"]["coding"][0]["code"], "73569-6");
        assert_eq!(dose["category"][0]["coding"][0]["code"], "imaging");
        assert_eq!(dose["status"], "final");
        let types: Vec<&str> = dose["identifier"]
            .as_array()
            .expect("identifiers")
            .iter()
            .filter_map(|i| i["type"]["coding"][0]["code"].as_str())
            .collect();
        assert!(
            types.contains(&"study-instance-uid") && types.contains(&"sop-instance-uid"),
            "{types:?}"
        );
        let components = dose["component"].as_array().expect("components");
        assert_eq!(components[0]["code"]["coding"][0]["code"], "121058");
        for component in &components[1..] {
            let code = component["code"]["coding"][0]["code"]
                .as_str()
                .unwrap_or_default();
            assert_eq!(
                component["code"]["coding"][0]["system"],
                "http://dicom.nema.org/resources/ontology/DCM"
            );
            if code == "113731" {
                assert!(component["valueInteger"].is_u64(), "frames are a count");
                continue;
            }
            let unit = ig_units
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, u)| *u)
                .unwrap_or_else(|| panic!("{engine}: component {code} is not one of the IG's"));
            assert_eq!(component["valueQuantity"]["code"], unit, "{engine}: {code}");
            assert_eq!(
                component["valueQuantity"]["system"],
                "http://unitsofmeasure.org"
            );
        }
    }
    // The walk's patient: one with a dose summary and a device left in them.
    let mut dose = &doses[0];
    for candidate in &doses {
        let subject = candidate["subject"]["reference"]
            .as_str()
            .unwrap_or_default();
        let devices = physician
            .get(&format!("Device?patient={subject}&_count=0"))
            .await;
        if devices.body["total"].as_u64() > Some(0) {
            dose = candidate;
            break;
        }
    }
    let dose_id = dose["id"].as_str().expect("dose id");
    let case_id = dose_id
        .strip_prefix("dose-")
        .expect("a case's dose summary");
    let api_dose: Value = physician
        .client
        .get(format!("{}/cases/{case_id}/dose", server.base))
        .bearer_auth(&physician.token)
        .send()
        .await
        .expect("case dose")
        .json()
        .await
        .expect("case dose JSON");
    let component = |code: &str| {
        dose["component"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["code"]["coding"][0]["code"] == code))
            .and_then(|c| c["valueQuantity"]["value"].as_f64())
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    // Each measure the JSON API gives in SI units, as the IG's unit (and absent alike).
    let mut compared = 0;
    for (si, code, factor) in [
        ("kerma_area_product", "113722", 1e7),     // Gy·m² → mGy·cm²
        ("reference_air_kerma", "113725", 1e3),    // Gy → mGy
        ("ct_dose_length_product", "113813", 1e5), // Gy·m → mGy·cm
        ("fluoroscopy_time", "113730", 1.0),
    ] {
        match (api_dose["totals"][si].as_f64(), component(code)) {
            (Some(value), Some(shown)) => {
                assert!(
                    close(shown, value * factor),
                    "{engine}: {si} {value} as {code} {shown}"
                );
                compared += 1;
            }
            (None, None) => {}
            (value, shown) => panic!("{engine}: {si} is {value:?} but {code} is {shown:?}"),
        }
    }
    assert!(compared > 0, "{engine}: a measure to compare");
    let read = physician.get(&format!("Observation/{dose_id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(&read.body, dose);
    received.keep(&read.body);
    let dosed_patient = dose["subject"]["reference"].as_str().expect("subject");
    let theirs = search_all(
        &physician,
        &format!("Observation?patient={dosed_patient}&_count=2"),
        &mut received,
    )
    .await;
    assert!(
        theirs.iter().any(|o| o["id"] == dose_id),
        "{engine}: the patient's dose is among theirs"
    );
    let times: Vec<&str> = theirs
        .iter()
        .filter_map(|o| o["effectiveDateTime"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "{engine}: newest first: {times:?}"
    );
    // Laboratory results: LOINC and UCUM, each patient's.
    let mut labs = Vec::new();
    for patient in patients.iter().take(12) {
        let pid = patient["id"].as_str().unwrap_or_default();
        labs.extend(
            search_all(
                &physician,
                &format!("Observation?patient=Patient/{pid}&category=laboratory"),
                &mut received,
            )
            .await,
        );
    }
    assert!(!labs.is_empty(), "{engine}: the demo's patients have labs");
    for lab in &labs {
        assert_eq!(lab["code"]["coding"][0]["system"], "http://loinc.org");
        assert_eq!(lab["valueQuantity"]["system"], "http://unitsofmeasure.org");
    }
    let lab = &labs[0];
    let loinc = lab["code"]["coding"][0]["code"].as_str().expect("loinc");
    let subject = lab["subject"]["reference"].as_str().expect("subject");
    let same_test = search_all(
        &physician,
        &format!("Observation?patient={subject}&code=http://loinc.org|{loinc}"),
        &mut received,
    )
    .await;
    assert!(same_test
        .iter()
        .all(|o| o["code"]["coding"][0]["code"] == loinc));
    assert!(same_test.iter().any(|o| o["id"] == lab["id"]));
    let lab_read = physician
        .get(&format!(
            "Observation/{}",
            lab["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(lab_read.status, StatusCode::OK);
    assert_eq!(&lab_read.body, lab);

    // Referrals and orders as ServiceRequests.
    let requests = search_all(&physician, "ServiceRequest?_count=10", &mut received).await;
    assert!(!requests.is_empty(), "{engine}: the demo's referrals");
    let request = &requests[0];
    let request_id = request["id"].as_str().expect("id");
    let read = physician.get(&format!("ServiceRequest/{request_id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(&read.body, request);
    let subject = request["subject"]["reference"].as_str().expect("subject");
    let of_patient = search_all(
        &physician,
        &format!("ServiceRequest?patient={subject}"),
        &mut received,
    )
    .await;
    assert!(of_patient.iter().any(|r| r["id"] == request_id));
    assert!(of_patient
        .iter()
        .all(|r| r["subject"]["reference"] == subject));
    for status in ["active", "on-hold", "completed", "revoked"] {
        let found = search_all(
            &physician,
            &format!("ServiceRequest?status={status}"),
            &mut received,
        )
        .await;
        assert!(
            found.iter().all(|r| r["status"] == status),
            "{engine}: status={status}"
        );
        let expected = requests.len().max(found.len()); // pages of 10 hold every referral
        assert!(found.len() <= expected);
    }
    let by_status: usize = {
        let mut n = 0;
        for status in ["active", "on-hold", "completed", "revoked"] {
            n += search_all(
                &physician,
                &format!("ServiceRequest?status={status}"),
                &mut received,
            )
            .await
            .len();
        }
        n
    };
    assert_eq!(
        by_status,
        requests.len(),
        "{engine}: every referral has one of the four statuses"
    );
    let authored = request["authoredOn"].as_str().expect("authoredOn");
    let same_day = search_all(
        &physician,
        &format!("ServiceRequest?authored={}", &authored[..10]),
        &mut received,
    )
    .await;
    assert!(
        same_day.iter().any(|r| r["id"] == request_id),
        "{engine}: authored on its day"
    );
    if let Some(requester) = request["requester"]["reference"].as_str() {
        let theirs = search_all(
            &physician,
            &format!("ServiceRequest?requester={requester}"),
            &mut received,
        )
        .await;
        assert!(theirs
            .iter()
            .all(|r| r["requester"]["reference"] == requester));
        assert!(theirs.iter().any(|r| r["id"] == request_id));
    }

    // An EHR files a referral: the same checks and vetting queue as any; a retry does not duplicate.
    let procedures: Value = physician
        .client
        .get(format!("{}/procedures", server.base))
        .bearer_auth(&physician.token)
        .send()
        .await
        .expect("procedures")
        .json()
        .await
        .expect("procedures JSON");
    let procedure = procedures["procedures"][0]["id"]
        .as_str()
        .expect("a catalogue procedure");
    let order = serde_json::json!({
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "http://ehr.example.org/orders", "value": "ORD-2026-0001"}],
        "status": "active",
        "intent": "order",
        "priority": "urgent",
        "code": {"coding": [{"system": "urn:seldinger:procedure", "code": procedure}]},
        "subject": {"reference": format!("Patient/{id}")},
        "requester": {"display": "Dr A. Synthetic (oncology)"},
        "reasonCode": [{"text": "Synthetic indication for an EHR order"}],
        "note": [{"text": "Synthetic clinical question?"}],
    });
    let before = physician.get("ServiceRequest?_count=0").await.body["total"]
        .as_u64()
        .expect("total");
    let condition = [(
        "if-none-exist",
        "identifier=http%3A%2F%2Fehr.example.org%2Forders%7CORD-2026-0001",
    )];
    let (created, location) = physician
        .create("ServiceRequest", &order.to_string(), &condition)
        .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{engine}: {}",
        created.body
    );
    let created_id = created.body["id"].as_str().expect("created id").to_string();
    assert!(
        location.is_some_and(|l| l.contains(&format!("/ServiceRequest/{created_id}/_history/")))
    );
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["priority"], "urgent");
    // Who filed it is referenced by their Practitioner id (never their sign-in name), and the
    // reference resolves; a search by it finds it.
    let reference = created.body["requester"]["reference"]
        .as_str()
        .expect("the filer referenced")
        .to_string();
    let practitioner_id = reference.strip_prefix("Practitioner/").unwrap_or_default();
    assert!(
        practitioner_id.parse::<uuid::Uuid>().is_ok(),
        "{engine}: {reference}"
    );
    let practitioner = physician.get(&reference).await;
    assert_eq!(practitioner.status, StatusCode::OK, "{engine}: {reference}");
    assert_eq!(practitioner.body["id"], practitioner_id);
    let by_filer = search_all(
        &physician,
        &format!("ServiceRequest?requester={reference}"),
        &mut received,
    )
    .await;
    assert!(by_filer.iter().any(|r| r["id"] == created.body["id"]));
    assert_eq!(
        created.body["identifier"][0]["system"],
        "http://ehr.example.org/orders"
    );
    received.keep(&created.body);
    let (again, _) = physician
        .create("ServiceRequest", &order.to_string(), &condition)
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "{engine}: the retry finds the first: {}",
        again.body
    );
    assert_eq!(again.body["id"], created_id.as_str());
    let (duplicate, _) = physician
        .create("ServiceRequest", &order.to_string(), &[])
        .await;
    assert_refused(
        &duplicate,
        StatusCode::CONFLICT,
        Some("ServiceRequest.identifier"),
        "a duplicate order",
    );
    received.keep(&duplicate.body);
    let after = physician.get("ServiceRequest?_count=0").await.body["total"]
        .as_u64()
        .expect("total");
    assert_eq!(after, before + 1, "{engine}: filed once");
    let found = search_all(
        &physician,
        "ServiceRequest?identifier=http://ehr.example.org/orders|ORD-2026-0001",
        &mut received,
    )
    .await;
    assert_eq!(found.len(), 1);
    let queue: Value = physician
        .client
        .get(format!(
            "{}/referrals?awaiting_vetting=true&limit=500",
            server.base
        ))
        .bearer_auth(&physician.token)
        .send()
        .await
        .expect("vetting queue")
        .json()
        .await
        .expect("queue JSON");
    assert!(
        queue
            .as_array()
            .is_some_and(|q| q.iter().any(|r| r["id"] == created_id.as_str())),
        "{engine}: the EHR's referral waits for vetting: {queue}"
    );
    // Bad input: the path of what was wrong, and nothing filed.
    let without = |field: &str| {
        let mut body = order.clone();
        body.as_object_mut().expect("object").remove(field);
        body["identifier"][0]["value"] = Value::from(format!("ORD-BAD-{field}"));
        body.to_string()
    };
    let bad_bodies = vec![
        (
            order
                .to_string()
                .replace("\"ServiceRequest\"", "\"Patient\""),
            StatusCode::BAD_REQUEST,
            "resourceType",
        ),
        (
            without("subject"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ServiceRequest.subject",
        ),
        (
            without("requester"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ServiceRequest.requester.display",
        ),
        (
            without("reasonCode"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ServiceRequest.reasonCode",
        ),
        (
            without("status"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ServiceRequest.status",
        ),
        (
            order
                .to_string()
                .replacen('{', "{\"bodySite\": [{\"text\": \"liver\"}], ", 1),
            StatusCode::BAD_REQUEST,
            "ServiceRequest.bodySite",
        ),
        (
            order.to_string().replace("\"urgent\"", "\"whenever\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ServiceRequest.priority",
        ),
        (
            order
                .to_string()
                .replace(
                    &format!("Patient/{id}"),
                    "Patient/00000000-0000-4000-8000-000000000000",
                )
                .replace("ORD-2026-0001", "ORD-BAD-PATIENT"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ServiceRequest.subject",
        ),
        (
            "{\"resourceType\": ".to_string(),
            StatusCode::BAD_REQUEST,
            "ServiceRequest",
        ),
    ];
    for (body, status, path) in bad_bodies {
        let (refused, _) = physician.create("ServiceRequest", &body, &[]).await;
        assert_refused(&refused, status, None, &format!("{engine}: {path}"));
        let paths: Vec<&str> = refused.body["issue"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["expression"][0].as_str())
            .collect();
        assert!(
            paths.contains(&path),
            "{engine}: names {path}: {}",
            refused.body
        );
        received.keep(&refused.body);
    }
    let (mismatch, _) = physician
        .create(
            "ServiceRequest",
            &order.to_string(),
            &[(
                "if-none-exist",
                "identifier=http://ehr.example.org/orders|OTHER",
            )],
        )
        .await;
    assert_refused(
        &mismatch,
        StatusCode::BAD_REQUEST,
        Some("If-None-Exist"),
        "condition and identifier differ",
    );
    let (wrong_type, _) = physician
        .create(
            "ServiceRequest",
            &order.to_string(),
            &[("content-type", "text/plain")],
        )
        .await;
    assert_refused(
        &wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
        "text/plain",
    );
    let (not_creatable, _) = physician.create("Patient", "{}", &[]).await;
    assert_refused(
        &not_creatable,
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "Patient create",
    );
    let unchanged = physician.get("ServiceRequest?_count=0").await.body["total"]
        .as_u64()
        .expect("total");
    assert_eq!(
        unchanged, after,
        "{engine}: nothing filed by a refused request"
    );

    // A laboratory result sent over FHIR: the same units and rules as any (creatinine in µmol/L
    // kept in mg/dL), conditional on its identifier.
    let labs_before = labs_of(&physician, id).await;
    let result = serde_json::json!({
        "resourceType": "Observation",
        "identifier": [{"system": "http://lab.example.org/results", "value": "RES-2026-0001"}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2160-0", "display": "Creatinine"}]},
        "subject": {"reference": format!("Patient/{id}")},
        "effectiveDateTime": "2026-01-05T08:30:00Z",
        "valueQuantity": {"value": 88.4, "unit": "umol/L", "system": "http://unitsofmeasure.org", "code": "umol/L"},
    });
    let lab_condition = [(
        "if-none-exist",
        "identifier=http://lab.example.org/results|RES-2026-0001",
    )];
    let (recorded, _) = physician
        .create("Observation", &result.to_string(), &lab_condition)
        .await;
    assert_eq!(
        recorded.status,
        StatusCode::CREATED,
        "{engine}: {}",
        recorded.body
    );
    assert_eq!(
        recorded.body["valueQuantity"]["code"], "mg/dL",
        "{engine}: kept in its canonical unit"
    );
    let mg_dl = recorded.body["valueQuantity"]["value"]
        .as_f64()
        .expect("value");
    assert!(
        (mg_dl - 1.0).abs() < 0.01,
        "{engine}: 88.4 µmol/L is 1.0 mg/dL, got {mg_dl}"
    );
    received.keep(&recorded.body);
    let (again, _) = physician
        .create("Observation", &result.to_string(), &lab_condition)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{engine}: {}", again.body);
    assert_eq!(again.body["id"], recorded.body["id"]);
    let (duplicate, _) = physician
        .create("Observation", &result.to_string(), &[])
        .await;
    assert_refused(
        &duplicate,
        StatusCode::CONFLICT,
        Some("Observation.identifier"),
        "a result twice",
    );
    assert_eq!(
        labs_of(&physician, id).await,
        labs_before + 1,
        "{engine}: recorded once"
    );
    let change = |from: &str, to: &str| {
        result
            .to_string()
            .replace(from, to)
            .replace("RES-2026-0001", &format!("RES-BAD-{}", to.len()))
    };
    let bad_results = vec![
        (
            change("\"code\":\"umol/L\"", "\"code\":\"mmol/mol\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Observation.valueQuantity.code",
        ),
        (
            change("\"2160-0\"", "\"1234-5\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Observation.code",
        ),
        (
            change("\"final\"", "\"preliminary\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Observation.status",
        ),
        (
            change("\"effectiveDateTime\":\"2026-01-05T08:30:00Z\",", ""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Observation.effectiveDateTime",
        ),
        (
            change("\"value\":88.4", "\"value\":-3"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Observation.valueQuantity.value",
        ),
        (
            change(
                "\"status\":",
                "\"note\":[{\"text\":\"haemolysed\"}],\"status\":",
            ),
            StatusCode::BAD_REQUEST,
            "Observation.note",
        ),
        (
            change("\"status\":", "\"colour\":\"red\",\"status\":"),
            StatusCode::BAD_REQUEST,
            "Observation.colour",
        ),
        (
            change(&format!("Patient/{id}"), "Patient/nobody"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Observation.subject.reference",
        ),
    ];
    for (body, status, path) in bad_results {
        let (refused, _) = physician.create("Observation", &body, &[]).await;
        assert_refused(&refused, status, None, &format!("{engine}: {path}: {body}"));
        let paths: Vec<&str> = refused.body["issue"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["expression"][0].as_str())
            .collect();
        assert!(
            paths.contains(&path),
            "{engine}: names {path}: {}",
            refused.body
        );
        received.keep(&refused.body);
    }
    assert_eq!(
        labs_of(&physician, id).await,
        labs_before + 1,
        "{engine}: nothing recorded by a refusal"
    );

    // The drugs on the record.
    let mut drugs = Vec::new();
    for patient in patients.iter().take(15) {
        let pid = patient["id"].as_str().unwrap_or_default();
        drugs.extend(
            search_all(
                &physician,
                &format!("MedicationStatement?patient=Patient/{pid}"),
                &mut received,
            )
            .await,
        );
    }
    assert!(!drugs.is_empty(), "{engine}: the demo records drugs");
    let drug = &drugs[0];
    assert!(drug["medicationCodeableConcept"]["text"].is_string());
    let drug_read = physician
        .get(&format!(
            "MedicationStatement/{}",
            drug["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(drug_read.status, StatusCode::OK);
    assert_eq!(&drug_read.body, drug);

    // Bookings, procedures, devices and complications from the cases.
    let today = metadata.body["date"].as_str().expect("date")[..10].to_string();
    let booked = search_all(
        &physician,
        &format!("Appointment?date={today}&_count=5"),
        &mut received,
    )
    .await;
    assert!(!booked.is_empty(), "{engine}: today's list");
    for appointment in &booked {
        assert!(["booked", "arrived", "fulfilled", "cancelled"]
            .contains(&appointment["status"].as_str().unwrap_or_default()));
        assert!(appointment["participant"]
            .as_array()
            .is_some_and(|p| p.len() >= 2));
    }
    let room = booked[0]["participant"][1]["actor"]["display"]
        .as_str()
        .expect("room");
    let in_room = search_all(
        &physician,
        &format!("Appointment?date={today}&location=Location/{room}"),
        &mut received,
    )
    .await;
    assert!(
        !in_room.is_empty()
            && in_room
                .iter()
                .all(|a| a["participant"][1]["actor"]["display"] == room)
    );
    assert!(in_room.len() <= booked.len());
    let appointment_read = physician
        .get(&format!(
            "Appointment/{}",
            booked[0]["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(&appointment_read.body, &booked[0]);
    let mut procedures = Vec::new();
    let mut devices = Vec::new();
    let mut events = Vec::new();
    for patient in &patients {
        let pid = patient["id"].as_str().unwrap_or_default();
        procedures.extend(
            search_all(
                &physician,
                &format!("Procedure?patient=Patient/{pid}"),
                &mut received,
            )
            .await,
        );
        devices.extend(
            search_all(
                &physician,
                &format!("Device?patient=Patient/{pid}"),
                &mut received,
            )
            .await,
        );
        events.extend(
            search_all(
                &physician,
                &format!("AdverseEvent?subject=Patient/{pid}"),
                &mut received,
            )
            .await,
        );
    }
    assert!(
        !procedures.is_empty() && !devices.is_empty() && !events.is_empty(),
        "{engine}: the demo's procedure records"
    );
    for device in &devices {
        assert_eq!(
            device["type"]["coding"][0]["system"],
            "urn:seldinger:device"
        );
    }
    // Status from the device registry: the demo's retrieved filters are inactive, the rest in
    // the patient (in place or declared permanent) active; `status=` searches by it.
    let inactive: Vec<&Value> = devices
        .iter()
        .filter(|d| d["status"] == "inactive")
        .collect();
    assert!(
        !inactive.is_empty() && devices.iter().any(|d| d["status"] == "active"),
        "{engine}: the demo has devices in and out"
    );
    assert!(devices
        .iter()
        .all(|d| d["status"] == "active" || d["status"] == "inactive"));
    let out = &inactive[0];
    let patient = out["patient"]["reference"].as_str().expect("patient");
    let found = search_all(
        &physician,
        &format!("Device?patient={patient}&status=inactive"),
        &mut received,
    )
    .await;
    assert!(found.iter().all(|d| d["status"] == "inactive"));
    assert!(found.iter().any(|d| d["id"] == out["id"]), "{engine}");
    // The demo's IVC filters carry a scanned GS1 label: its UDI as FHIR has it.
    // The demo scans its IVC filters' GS1 labels and its ports' HIBCC ones: the UDI as FHIR has it.
    let mut labelled = 0;
    for device in &devices {
        let expected = match device["type"]["coding"][0]["code"].as_str() {
            Some("ivc_filter") => (
                "09506000134352",
                "http://hl7.org/fhir/NamingSystem/gs1-di",
                "(01)09506000134352(17)300630(10)DEMO-IVC-7(21)F000412",
                Some("F000412"),
                "DEMO-IVC-7",
                "2030-06-30",
            ),
            Some("port") => (
                "A999PORT8F1",
                "http://hl7.org/fhir/NamingSystem/hibcc-dI",
                "+A999PORT8F1/$$3310331PL20268",
                None,
                "PL2026",
                "2031-03-31",
            ),
            _ => continue,
        };
        labelled += 1;
        let (identifier, issuer, carrier, serial, lot, expiry) = expected;
        let udi = &device["udiCarrier"][0];
        assert_eq!(udi["deviceIdentifier"], identifier, "{engine}");
        assert_eq!(udi["issuer"], issuer, "{engine}");
        assert_eq!(udi["carrierHRF"], carrier, "{engine}");
        assert_eq!(device["serialNumber"].as_str(), serial, "{engine}");
        assert_eq!(device["lotNumber"], lot, "{engine}");
        assert_eq!(device["expirationDate"], expiry, "{engine}");
    }
    assert!(labelled > 0, "{engine}: the demo's labelled devices");
    for device in devices.iter().filter(|d| d.get("udiCarrier").is_none()) {
        assert!(
            device.get("lotNumber").is_none(),
            "{engine}: no label, no lot"
        );
    }
    // The demo's events at several grades (§6): mild bleeds in the room, a moderate haematoma
    // and a severe complication reported later; each graded both ways, seriousness as the SIR
    // grade decides it, whether it is the procedure's in suspectEntity.causality.
    let mut grades = std::collections::BTreeSet::new();
    for event in &events {
        let graded: Vec<(&str, &str)> = event["extension"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e.get("valueCoding").is_some())
            .map(|e| {
                (
                    e["valueCoding"]["system"].as_str().unwrap_or_default(),
                    e["valueCoding"]["code"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(graded.len(), 2, "{engine}: SIR and CIRSE: {event}");
        assert_eq!(graded[0].0, "urn:seldinger:sir-severity");
        assert_eq!(graded[1].0, "urn:seldinger:cirse-grade");
        let seriousness = event["seriousness"]["coding"][0]["code"].as_str();
        match graded[0].1 {
            "mild" => assert_eq!(seriousness, Some("non-serious"), "{engine}"),
            "moderate" => assert_eq!(seriousness, None, "{engine}: not guessed"),
            _ => assert_eq!(seriousness, Some("serious"), "{engine}"),
        }
        assert!(
            event["suspectEntity"][0]["causality"][0]["assessment"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("attributed"))
        );
        grades.insert(graded[0].1.to_string());
    }
    assert!(
        grades.contains("mild") && grades.contains("moderate") && grades.contains("severe"),
        "{engine}: the demo's events at several grades: {grades:?}"
    );
    let severe = events
        .iter()
        .find(|e| e["severity"]["coding"][0]["code"] == "severe")
        .expect("a severe event");
    let serious = search_all(
        &physician,
        &format!(
            "AdverseEvent?subject={}&seriousness=serious",
            severe["subject"]["reference"].as_str().unwrap_or_default()
        ),
        &mut received,
    )
    .await;
    assert!(
        serious.iter().any(|e| e["id"] == severe["id"]),
        "{engine}: a severe event is serious"
    );
    let mild = events
        .iter()
        .find(|e| e["seriousness"]["coding"][0]["code"] == "non-serious")
        .expect("a mild event");
    let not_serious = search_all(
        &physician,
        &format!(
            "AdverseEvent?subject={}&seriousness=serious",
            mild["subject"]["reference"].as_str().unwrap_or_default()
        ),
        &mut received,
    )
    .await;
    assert!(
        not_serious.iter().all(|e| e["id"] != mild["id"]),
        "{engine}: a mild bleed is not serious"
    );
    for (kind, resource) in [
        ("Procedure", &procedures[0]),
        ("Device", &devices[0]),
        ("AdverseEvent", &events[0]),
    ] {
        let read = physician
            .get(&format!(
                "{kind}/{}",
                resource["id"].as_str().unwrap_or_default()
            ))
            .await;
        assert_eq!(read.status, StatusCode::OK, "{engine}: {kind}");
        assert_eq!(&read.body, resource, "{engine}: {kind} reads as searched");
    }
    let filters = search_all(
        &physician,
        "Procedure?patient={}"
            .replace(
                "{}",
                procedures[0]["subject"]["reference"]
                    .as_str()
                    .unwrap_or_default(),
            )
            .as_str(),
        &mut received,
    )
    .await;
    assert!(filters.iter().any(|p| p["id"] == procedures[0]["id"]));

    // The procedure reports (preliminary: nobody signs them until the report is built, issue 15)
    // and the vital signs taken in the room, after FHIR's vital-signs profiles.
    let mut reports = Vec::new();
    let mut vitals = Vec::new();
    for patient in &patients {
        let pid = patient["id"].as_str().unwrap_or_default();
        reports.extend(
            search_all(
                &physician,
                &format!("DiagnosticReport?patient=Patient/{pid}"),
                &mut received,
            )
            .await,
        );
        vitals.extend(
            search_all(
                &physician,
                &format!("Observation?patient=Patient/{pid}&category=vital-signs"),
                &mut received,
            )
            .await,
        );
    }
    assert!(
        !reports.is_empty(),
        "{engine}: the demo's procedure reports"
    );
    for status in ["final", "amended", "preliminary"] {
        assert!(
            reports.iter().any(|r| r["status"] == status),
            "{engine}: the demo has a {status} report"
        );
    }
    for report in &reports {
        assert!(
            procedures.iter().any(|p| p["id"] == report["id"]),
            "{engine}: a report is of a procedure done"
        );
        let status = report["status"].as_str().unwrap_or_default();
        assert!(
            ["preliminary", "partial", "final", "amended"].contains(&status),
            "{engine}: {status}"
        );
        assert_eq!(report["category"][0]["coding"][0]["code"], "RAD");
        assert_eq!(report["code"]["coding"][0]["code"], "18748-4");
        let text = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            report["presentedForm"][0]["data"]
                .as_str()
                .unwrap_or_default(),
        )
        .expect("presentedForm is base64");
        let text = String::from_utf8(text).expect("utf-8");
        // Unsigned: the record's text; signed: the structured report as signed, with its
        // signature (and addenda when amended).
        let sections: &[&str] = if matches!(status, "final" | "amended") {
            &[
                "PROCEDURE\n",
                "ACCESS AND TECHNIQUE\n",
                "FINDINGS\n",
                "COMPLICATIONS\n",
                "IMPRESSION\n",
                "Signed by ",
            ]
        } else {
            &[
                "Procedure: ",
                "Operators: ",
                "Access: ",
                "Findings: ",
                "Complications: ",
            ]
        };
        for section in sections {
            assert!(
                text.contains(section),
                "{engine}: report lacks {section}: {text}"
            );
        }
        if status == "amended" {
            assert!(text.contains("ADDENDUM by "), "{engine}: {text}");
        }
        assert_eq!(
            report["conclusion"].as_str().map(|c| text.contains(c)),
            Some(true)
        );
    }
    let complete = search_all(
        &physician,
        &format!(
            "DiagnosticReport?{}&status=preliminary",
            reports[0]["subject"]["reference"]
                .as_str()
                .map(|r| format!("patient={r}"))
                .unwrap_or_default()
        ),
        &mut received,
    )
    .await;
    assert!(complete.iter().all(|r| r["status"] == "preliminary"));
    assert!(!vitals.is_empty(), "{engine}: the demo's vital signs");
    let ucum = |q: &Value| (q["system"].clone(), q["code"].clone());
    let mut signs = BTreeSet::new();
    for observation in &vitals {
        assert_eq!(
            observation["category"][0]["coding"][0]["code"], "vital-signs",
            "{engine}"
        );
        let code = observation["code"]["coding"][0]["code"]
            .as_str()
            .unwrap_or_default();
        signs.insert(code.to_string());
        let profile = observation["meta"]["profile"][0]
            .as_str()
            .unwrap_or_default();
        let mm_hg = (
            serde_json::json!("http://unitsofmeasure.org"),
            serde_json::json!("mm[Hg]"),
        );
        let per_minute = (
            serde_json::json!("http://unitsofmeasure.org"),
            serde_json::json!("/min"),
        );
        match code {
            "85354-9" => {
                assert_eq!(profile, "http://hl7.org/fhir/StructureDefinition/bp");
                let parts = observation["component"].as_array().expect("components");
                assert_eq!(parts[0]["code"]["coding"][0]["code"], "8480-6");
                assert_eq!(parts[1]["code"]["coding"][0]["code"], "8462-4");
                for part in parts {
                    assert_eq!(ucum(&part["valueQuantity"]), mm_hg, "{engine}");
                }
                assert!(observation.get("valueQuantity").is_none());
            }
            "8867-4" | "9279-1" => {
                assert_eq!(ucum(&observation["valueQuantity"]), per_minute, "{engine}")
            }
            "2708-6" => {
                assert_eq!(observation["code"]["coding"][1]["code"], "59408-5");
                assert_eq!(observation["valueQuantity"]["code"], "%");
            }
            other => panic!("{engine}: an unexpected vital sign {other}"),
        }
    }
    assert_eq!(signs.len(), 4, "{engine}: every sign the demo records");
    let subject = vitals[0]["subject"]["reference"]
        .as_str()
        .unwrap_or_default();
    // By the sign's code, and the saturation by pulse oximetry's code too.
    for (code, sign) in [
        ("http://loinc.org|8867-4", "8867-4"),
        ("59408-5&category=vital-signs", "2708-6"),
    ] {
        let found = search_all(
            &physician,
            &format!("Observation?patient={subject}&code={code}"),
            &mut received,
        )
        .await;
        assert!(
            !found.is_empty() && found.iter().all(|o| o["code"]["coding"][0]["code"] == sign),
            "{engine}: code={code}"
        );
    }
    for (kind, resource) in [
        ("DiagnosticReport", &reports[0]),
        ("Observation", &vitals[0]),
    ] {
        let read = physician
            .get(&format!(
                "{kind}/{}",
                resource["id"].as_str().unwrap_or_default()
            ))
            .await;
        assert_eq!(read.status, StatusCode::OK, "{engine}: {kind}");
        assert_eq!(&read.body, resource, "{engine}: {kind} reads as searched");
    }

    // The history of what is made from a case, rebuilt from its event log: newest first, the
    // oldest its creation, the newest the resource as it reads now (the replay agrees with the
    // stored record), and each version readable on its own.
    for (kind, resource) in [
        ("Procedure", &procedures[0]),
        ("DiagnosticReport", &reports[0]),
        ("Appointment", &booked[0]),
    ] {
        let id = resource["id"].as_str().unwrap_or_default();
        let history = physician.get(&format!("{kind}/{id}/_history")).await;
        assert_eq!(history.status, StatusCode::OK, "{engine}: {kind} history");
        assert_eq!(history.body["type"], "history");
        let entries = history.body["entry"].as_array().expect("entries");
        let current = physician.get(&format!("{kind}/{id}")).await;
        assert_eq!(
            &entries[0]["resource"], &current.body,
            "{engine}: the newest {kind} version is the one read"
        );
        let versions: Vec<u64> = entries
            .iter()
            .filter_map(|e| e["resource"]["meta"]["versionId"].as_str()?.parse().ok())
            .collect();
        assert!(
            versions.windows(2).all(|w| w[0] > w[1]),
            "{engine}: {kind} newest first: {versions:?}"
        );
        let oldest = entries.last().expect("oldest");
        assert_eq!(oldest["request"]["method"], "POST", "{engine}: {kind}");
        let first = versions.last().copied().unwrap_or_default();
        let vread = physician
            .get(&format!("{kind}/{id}/_history/{first}"))
            .await;
        assert_eq!(vread.status, StatusCode::OK, "{engine}: {kind} vread");
        assert_eq!(&vread.body, &oldest["resource"], "{engine}: {kind} vread");
        received.keep(&history.body);
    }
    let no_version = physician
        .get(&format!(
            "Procedure/{}/_history/999999",
            procedures[0]["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(no_version.status, StatusCode::NOT_FOUND, "{engine}");

    // `_include`: the patient of each match in the same page, marked include, beside the
    // matches (which alone are counted); as the CapabilityStatement offers.
    let offered: Vec<&Value> = metadata.body["rest"][0]["resource"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r.get("searchInclude").is_some())
        .collect();
    assert!(offered.iter().any(|r| r["type"] == "ServiceRequest"
        && r["searchInclude"] == serde_json::json!(["ServiceRequest:patient"])));
    assert!(offered.iter().all(|r| r["type"] != "Patient"));
    for query in [
        "Observation?code=73569-6&_count=20&_include=Observation:patient".to_string(),
        format!(
            "Procedure?{}&_include=Procedure:patient",
            subject.replace("Patient/", "patient=Patient/")
        ),
        format!(
            "AdverseEvent?subject={}&_include=AdverseEvent:subject",
            events[0]["subject"]["reference"]
                .as_str()
                .unwrap_or_default()
        ),
        format!("Appointment?date={today}&_count=10&_include=Appointment:patient"),
    ] {
        let page = physician.get(&query).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{engine}: {query}: {}",
            page.body
        );
        received.keep(&page.body);
        let entries = page.body["entry"].as_array().expect("entries");
        let (matches, included): (Vec<&Value>, Vec<&Value>) =
            entries.iter().partition(|e| e["search"]["mode"] == "match");
        assert_eq!(
            page.body["total"]
                .as_u64()
                .map(|t| t >= matches.len() as u64),
            Some(true)
        );
        assert!(
            !matches.is_empty() && !included.is_empty(),
            "{engine}: {query}"
        );
        let wanted: BTreeSet<String> = matches
            .iter()
            .flat_map(|m| {
                let r = &m["resource"];
                ["subject", "patient"]
                    .iter()
                    .filter_map(|f| r[*f]["reference"].as_str())
                    .chain(
                        r["participant"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p["actor"]["reference"].as_str()),
                    )
                    .filter(|r| r.starts_with("Patient/"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let got: BTreeSet<String> = included
            .iter()
            .map(|e| {
                assert_eq!(e["search"]["mode"], "include");
                assert_eq!(e["resource"]["resourceType"], "Patient");
                format!(
                    "Patient/{}",
                    e["resource"]["id"].as_str().unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(got, wanted, "{engine}: {query}: each match's patient, once");
        assert!(
            page.body["link"][0]["url"]
                .as_str()
                .is_some_and(|u| u.contains("_include=")),
            "{engine}: the self link keeps the include"
        );
    }

    // Staff as Practitioners: names and roles, never how they sign in.
    let staff = search_all(&physician, "Practitioner?_count=500", &mut received).await;
    assert!(!staff.is_empty(), "{engine}: the department's staff");
    for member in &staff {
        let text = member.to_string();
        for secret in ["password", "username", "admin", "locked", "failed"] {
            assert!(!text.contains(secret), "{engine}: {secret} in {text}");
        }
        assert_eq!(
            member["qualification"][0]["code"]["coding"][0]["system"],
            "urn:seldinger:role"
        );
    }
    let named = search_all(
        &physician,
        &format!(
            "Practitioner?name={}",
            staff[0]["name"][0]["text"]
                .as_str()
                .and_then(|n| n.split_whitespace().last())
                .unwrap_or_default()
        ),
        &mut received,
    )
    .await;
    assert!(named.iter().any(|m| m["id"] == staff[0]["id"]));
    let read = physician
        .get(&format!(
            "Practitioner/{}",
            staff[0]["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(
        &read.body, &staff[0],
        "{engine}: Practitioner reads as searched"
    );

    // Follow-up owed, as Tasks.
    let open_tasks = search_all(
        &physician,
        "Task?status=requested,ready&_count=5",
        &mut received,
    )
    .await;
    assert!(!open_tasks.is_empty(), "{engine}: the demo owes follow-up");
    for task in &open_tasks {
        assert!(["requested", "ready"].contains(&task["status"].as_str().unwrap_or_default()));
        assert_eq!(
            task["code"]["coding"][0]["system"],
            "urn:seldinger:follow-up"
        );
        assert!(
            task["restriction"]["period"]["start"].is_string(),
            "{engine}: its due date"
        );
    }
    let task = &open_tasks[0];
    let task_read = physician
        .get(&format!("Task/{}", task["id"].as_str().unwrap_or_default()))
        .await;
    assert_eq!(task_read.status, StatusCode::OK);
    assert_eq!(&task_read.body, task);
    let owed_by = task["for"]["reference"].as_str().expect("for");
    let theirs = search_all(
        &physician,
        &format!("Task?patient={owed_by}"),
        &mut received,
    )
    .await;
    assert!(theirs.iter().any(|t| t["id"] == task["id"]));
    assert!(theirs.iter().all(|t| t["for"]["reference"] == owed_by));
    let due = &task["restriction"]["period"]["start"]
        .as_str()
        .expect("start")[..10];
    let in_window = search_all(
        &physician,
        &format!("Task?period={due}&status=requested,ready"),
        &mut received,
    )
    .await;
    assert!(
        in_window.iter().any(|t| t["id"] == task["id"]),
        "{engine}: due on {due}"
    );
    let owner = task["owner"]["display"]
        .as_str()
        .expect("owner")
        .split(", ")
        .next()
        .expect("a role")
        .to_string();
    let owed = search_all(&physician, &format!("Task?owner={owner}"), &mut received).await;
    assert!(owed.iter().all(|t| t["owner"]["display"]
        .as_str()
        .unwrap_or_default()
        .contains(&owner)));

    // Refusals: an OperationOutcome naming what was wrong.
    for (query, status, expression) in [
        (
            "Patient?brithdate=1950",
            StatusCode::BAD_REQUEST,
            Some("brithdate"),
        ),
        (
            "Patient?birthdate=1950-13",
            StatusCode::BAD_REQUEST,
            Some("birthdate"),
        ),
        (
            "Patient?birthdate=sa1950",
            StatusCode::BAD_REQUEST,
            Some("birthdate"),
        ),
        (
            "Patient?_count=100000",
            StatusCode::BAD_REQUEST,
            Some("_count"),
        ),
        (
            "Patient?_cursor=not-a-cursor",
            StatusCode::BAD_REQUEST,
            Some("_cursor"),
        ),
        (
            "Patient?name:fuzzy=x",
            StatusCode::BAD_REQUEST,
            Some("name:fuzzy"),
        ),
        (
            "Patient?_format=xml",
            StatusCode::NOT_ACCEPTABLE,
            Some("_format"),
        ),
        (
            "Patient?_include=Patient:organization",
            StatusCode::BAD_REQUEST,
            Some("_include"),
        ),
        (
            "Procedure?patient=Patient/{id}&_include=Procedure:performer",
            StatusCode::BAD_REQUEST,
            Some("_include"),
        ),
        (
            "Procedure?patient=Patient/{id}&_include:iterate=Procedure:patient",
            StatusCode::BAD_REQUEST,
            Some("_include:iterate"),
        ),
        ("Patient/no-such-patient", StatusCode::NOT_FOUND, None),
        (
            "Patient/00000000-0000-4000-8000-000000000000",
            StatusCode::NOT_FOUND,
            None,
        ),
        ("Patient/{id}/_history/999", StatusCode::NOT_FOUND, None),
        ("Spaceship", StatusCode::NOT_FOUND, None),
        (
            "AllergyIntolerance",
            StatusCode::BAD_REQUEST,
            Some("patient"),
        ),
        (
            "AllergyIntolerance?patient=Practitioner/x",
            StatusCode::BAD_REQUEST,
            Some("patient"),
        ),
        (
            "AllergyIntolerance/{id}-0000000000000000",
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "AllergyIntolerance/{id}/_history",
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let query = query.replace("{id}", id);
        let refused = physician.get(&query).await;
        assert_refused(&refused, status, expression, &format!("{engine}: {query}"));
        received.keep(&refused.body);
    }
    let lenient = physician
        .client
        .get(format!(
            "{}/Patient?brithdate=1950&_count=1",
            physician.base
        ))
        .bearer_auth(&physician.token)
        .header("prefer", "handling=lenient")
        .send()
        .await
        .expect("lenient");
    assert_eq!(
        lenient.status(),
        StatusCode::OK,
        "{engine}: lenient ignores the unknown"
    );
    let anonymous = answer(
        Client::new()
            .get(format!("{}/Patient", physician.base))
            .send()
            .await
            .expect("anonymous"),
    )
    .await;
    assert_refused(&anonymous, StatusCode::UNAUTHORIZED, None, "anonymous");
    received.keep(&anonymous.body);

    // The same row scope as every surface: a referring clinician with no patients of their own
    // finds none and cannot read one; a quality lead is refused patient records.
    cli(
        &["user", "add", "dr.bell", "--role", "referring_clinician"],
        dir.path(),
        database_url,
        &[("SELDINGER_NEW_PASSWORD", "a-long-test-password")],
    );
    let referrer = Fhir::new(&server, dir.path(), database_url, "dr.bell");
    let theirs = search_all(&referrer, "Patient", &mut received).await;
    assert!(
        theirs.is_empty(),
        "{engine}: a referrer sees only their own patients"
    );
    let outside = referrer.get(&format!("Patient/{id}")).await;
    assert_refused(
        &outside,
        StatusCode::NOT_FOUND,
        None,
        "outside the referrer's scope",
    );
    let history_outside = referrer.get(&format!("Patient/{id}/_history")).await;
    assert_refused(
        &history_outside,
        StatusCode::NOT_FOUND,
        None,
        "history outside scope",
    );
    let (theirs_created, _) = referrer
        .create(
            "ServiceRequest",
            &order.to_string().replace("ORD-2026-0001", "ORD-2026-0002"),
            &[],
        )
        .await;
    assert_eq!(
        theirs_created.status,
        StatusCode::CREATED,
        "{engine}: {}",
        theirs_created.body
    );
    let now_theirs = search_all(&referrer, "ServiceRequest", &mut received).await;
    assert_eq!(
        now_theirs.len(),
        1,
        "{engine}: a referrer sees the referral they filed"
    );
    let (theirs_retry, _) = referrer
        .create(
            "ServiceRequest",
            &order.to_string(),
            &[(
                "if-none-exist",
                "identifier=http://ehr.example.org/orders|ORD-2026-0001",
            )],
        )
        .await;
    assert_refused(
        &theirs_retry,
        StatusCode::CONFLICT,
        None,
        "another's order is not shown to a referrer",
    );
    // The order system's own namespace (ORDERS sends its orders over HL7): a FHIR client
    // cannot take its next number, so the real order is not refused as a duplicate later.
    let (in_orders_namespace, _) = referrer
        .create(
            "ServiceRequest",
            &order
                .to_string()
                .replace(
                    "http://ehr.example.org/orders",
                    "urn:seldinger:placer:ORDERS",
                )
                .replace("ORD-2026-0001", "PO-77001"),
            &[],
        )
        .await;
    assert_refused(
        &in_orders_namespace,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("ServiceRequest.identifier"),
        "the order system's namespace",
    );
    received.keep(&in_orders_namespace.body);
    // A referrer filing an order number someone else used, without If-None-Exist: told it
    // exists, never which resource it is.
    let (theirs_duplicate, _) = referrer
        .create("ServiceRequest", &order.to_string(), &[])
        .await;
    assert_refused(
        &theirs_duplicate,
        StatusCode::CONFLICT,
        Some("ServiceRequest.identifier"),
        "another's order number",
    );
    assert!(
        !theirs_duplicate.body.to_string().contains(&created_id),
        "{engine}: {}",
        theirs_duplicate.body
    );
    received.keep(&theirs_duplicate.body);
    let quality = Fhir::new(&server, dir.path(), database_url, "qa.singh");
    let (not_theirs, _) = quality
        .create("ServiceRequest", &order.to_string(), &[])
        .await;
    assert_refused(
        &not_theirs,
        StatusCode::FORBIDDEN,
        None,
        "a quality lead files no referrals",
    );
    let refused = quality.get("Patient").await;
    assert_refused(&refused, StatusCode::FORBIDDEN, None, "quality lead");
    received.keep(&refused.body);

    // Tokens limited to SMART scopes: only what both the role and the scopes allow, and with
    // patient/ scopes only that patient's record; never the JSON API.
    let other = patients[1]["id"].as_str().expect("another patient");
    let app = Fhir::limited(
        &server,
        dir.path(),
        database_url,
        "dr.okafor",
        &["--scopes", "launch/patient patient/*.read", "--patient", id],
    );
    assert_eq!(
        app.get(&format!("Patient/{id}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        search_all(&app, &format!("Patient?_id={id}"), &mut received)
            .await
            .len(),
        1
    );
    let own = search_all(
        &app,
        &format!("Observation?patient=Patient/{id}"),
        &mut received,
    )
    .await;
    for own_list in [
        "Appointment?patient",
        "AdverseEvent?subject",
        "Procedure?patient",
        "Task?patient",
    ] {
        let theirs = app.get(&format!("{own_list}=Patient/{id}")).await;
        assert_eq!(
            theirs.status,
            StatusCode::OK,
            "{engine}: {own_list}: {}",
            theirs.body
        );
    }
    assert!(own
        .iter()
        .all(|o| o["subject"]["reference"] == format!("Patient/{id}")));
    for (query, what) in [
        (format!("Patient/{other}"), "another patient"),
        ("Patient".to_string(), "every patient"),
        (
            format!("Observation?patient=Patient/{other}"),
            "another's results",
        ),
        ("Observation?code=73569-6".to_string(), "every dose"),
        (
            format!("ServiceRequest/{request_id}"),
            "a referral, unless theirs",
        ),
    ] {
        let refused = app.get(&query).await;
        if query.starts_with("ServiceRequest/") && subject == format!("Patient/{id}") {
            continue;
        }
        assert_refused(
            &refused,
            StatusCode::FORBIDDEN,
            None,
            &format!("{engine}: patient-bound token: {what}"),
        );
        received.keep(&refused.body);
    }
    let (write, _) = app
        .create(
            "ServiceRequest",
            &order.to_string().replace("ORD-2026-0001", "ORD-2026-0009"),
            &[],
        )
        .await;
    assert_refused(
        &write,
        StatusCode::FORBIDDEN,
        None,
        "a read-only scope writes nothing",
    );
    let api = app
        .client
        .get(format!("{}/patients/{id}", server.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("api");
    assert_eq!(
        api.status(),
        StatusCode::FORBIDDEN,
        "{engine}: a SMART-scoped token opens no JSON API"
    );
    let ehr = Fhir::limited(
        &server,
        dir.path(),
        database_url,
        "dr.okafor",
        &["--scopes", "user/ServiceRequest.cruds user/Patient.rs"],
    );
    assert_eq!(
        ehr.get(&format!("Patient/{other}")).await.status,
        StatusCode::OK
    );
    let no_labs = ehr.get(&format!("Observation?patient=Patient/{id}")).await;
    assert_refused(
        &no_labs,
        StatusCode::FORBIDDEN,
        None,
        "outside the token's scopes",
    );
    // An app's token breaks glass only when granted seldinger/break-glass.
    let glass = |fhir: &Fhir| {
        fhir.client
            .get(format!("{}/Patient/{other}", fhir.base))
            .bearer_auth(&fhir.token)
            .header(
                "x-break-glass-reason",
                "Synthetic emergency: patient arrested in CT",
            )
            .send()
    };
    let refused = answer(glass(&ehr).await.expect("break glass")).await;
    assert_refused(
        &refused,
        StatusCode::FORBIDDEN,
        None,
        "an app token without the break-glass scope",
    );
    received.keep(&refused.body);
    let granted = Fhir::limited(
        &server,
        dir.path(),
        database_url,
        "dr.okafor",
        &["--scopes", "user/Patient.rs seldinger/break-glass"],
    );
    let opened = answer(glass(&granted).await.expect("break glass")).await;
    assert_eq!(opened.status, StatusCode::OK, "{engine}: {}", opened.body);
    let (filed, _) = ehr
        .create(
            "ServiceRequest",
            &order.to_string().replace("ORD-2026-0001", "ORD-2026-0010"),
            &[],
        )
        .await;
    assert_eq!(
        filed.status,
        StatusCode::CREATED,
        "{engine}: {}",
        filed.body
    );
    // Limits that do not read are refused when the token is made, naming the field.
    let admin_api = Fhir::new(&server, dir.path(), database_url, "admin");
    for (scopes, patient, field) in [
        ("doctor/*.read", None, "scopes"),
        ("patient/*.read", None, "patient_id"),
        ("user/*.read", Some(id), "patient_id"),
    ] {
        let made = admin_api
            .client
            .post(format!("{}/tokens", server.base))
            .bearer_auth(&admin_api.token)
            .json(&serde_json::json!({
                "username": "dr.okafor", "name": "SMART app", "scopes": scopes, "patient_id": patient,
            }))
            .send()
            .await
            .expect("token");
        assert_eq!(
            made.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{engine}: {scopes}"
        );
        let problem: Value = made.json().await.expect("problem");
        assert!(
            problem.to_string().contains(field),
            "{engine}: {scopes}: {problem}"
        );
    }

    // Every read is on the audit trail, as FHIR.
    let admin = Fhir::new(&server, dir.path(), database_url, "admin");
    let trail = admin
        .client
        .get(format!(
            "{}/audit?username=dr.okafor&patient_id={id}&limit=500",
            server.base
        ))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("audit");
    let trail: Value = trail.json().await.expect("audit JSON");
    let actions: BTreeSet<&str> = trail
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["fhir-read", "fhir-search", "fhir-history"] {
        assert!(
            actions.contains(action),
            "{engine}: {action} audited: {actions:?}"
        );
    }

    walked_by_an_independent_client(&physician, dosed_patient, dose, engine, &mut received).await;
    held_to_independent_peers(&received, engine);
}

/// fhirclient walks the record of the patient with a dose summary: finds them by MRN, their
/// referrals, their dose summaries and their open follow-up; it must find what this test does.
async fn walked_by_an_independent_client(
    fhir: &Fhir,
    patient: &str,
    dose: &Value,
    engine: &str,
    received: &mut Received,
) {
    let dose_id = dose["id"].as_str().expect("dose id");
    let Ok(python) = std::env::var("SELDINGER_FHIR_PYTHON") else {
        let required = std::env::var("SELDINGER_REQUIRE_FHIR_PEERS").is_ok_and(|v| v == "1");
        assert!(!required, "SELDINGER_FHIR_PYTHON is not set");
        return;
    };
    let record = fhir.get(patient).await.body;
    let system = record["identifier"][0]["system"].as_str().expect("system");
    let mrn = record["identifier"][0]["value"].as_str().expect("mrn");
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/fhir_walk.py"))
        .args([&fhir.base, &fhir.token, system, mrn])
        .output()
        .expect("run the walk");
    assert!(
        output.status.success(),
        "{engine}: fhirclient's walk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let walked: Value = serde_json::from_slice(&output.stdout).expect("the walk's JSON");
    assert_eq!(walked["patient"], record["id"], "{engine}");
    assert_eq!(walked["family"], record["name"][0]["family"]);
    let ours = |resources: Vec<Value>| -> Vec<String> {
        let mut ids: Vec<String> = resources
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    };
    let requests =
        ours(search_all(fhir, &format!("ServiceRequest?patient={patient}"), received).await);
    assert!(!requests.is_empty());
    assert_eq!(
        walked["service_requests"],
        serde_json::json!(requests),
        "{engine}"
    );
    assert!(
        walked["doses"][dose_id].is_object(),
        "{engine}: the walk found {dose_id}: {walked}"
    );
    let components: serde_json::Map<String, Value> = dose["component"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["code"]["coding"][0]["code"] != "121058")
        .map(|c| {
            let value = c["valueQuantity"]["value"].clone();
            let value = if value.is_null() {
                c["valueInteger"].clone()
            } else {
                value
            };
            (
                c["code"]["coding"][0]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                value,
            )
        })
        .collect();
    assert_eq!(
        walked["doses"][dose_id],
        Value::Object(components),
        "{engine}: the same dose"
    );
    assert!(
        walked["doses"][dose_id].is_object(),
        "{engine}: with its DAP"
    );
    let open = ours(
        search_all(
            fhir,
            &format!("Task?patient={patient}&status=requested,ready"),
            received,
        )
        .await,
    );
    assert_eq!(walked["open_tasks"], serde_json::json!(open), "{engine}");
}

/// Writes what was received (and each Bundle's resources on their own) for the peers.
fn held_to_independent_peers(received: &Received, engine: &str) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    let mut count = 0;
    let mut types = BTreeSet::new();
    for body in &received.0 {
        writeln!(file, "{body}").expect("write");
        count += 1;
        for entry in body["entry"].as_array().into_iter().flatten() {
            writeln!(file, "{}", entry["resource"]).expect("write");
            types.insert(
                entry["resource"]["resourceType"]
                    .to_string()
                    .replace('"', ""),
            );
            count += 1;
        }
    }
    // Every type the server serves reaches the peers: a new one must be searched here too.
    for resource in seldinger_fhir::RESOURCES {
        assert!(
            types.contains(resource.name),
            "{engine}: no {} was held to the peers; search one in fhir_server",
            resource.name
        );
    }
    file.flush().expect("flush");
    common::held_to_fhir_peers(file.path(), count, engine);
}

#[tokio::test]
async fn the_fhir_server_answers_as_r4_on_sqlite() {
    fhir_server(None, "SQLite").await;
}

#[tokio::test]
async fn the_fhir_server_answers_as_r4_on_postgresql() {
    let Some(db) = seldinger_store::testing::postgres().await else {
        return;
    };
    fhir_server(Some(&db.url), "PostgreSQL").await;
}

/// Behind the documented TLS-terminating proxy (trusted with --trusted-proxies): the links a
/// FHIR client follows stay on https, and the audit trail names the client, not the proxy.
#[tokio::test]
async fn behind_a_trusted_proxy_fhir_links_are_https_and_the_audit_names_the_client() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(&["demo", "--trusted-proxies", "127.0.0.1"], dir.path());
    let physician = Fhir::new(&server, dir.path(), None, "dr.okafor");
    let page = answer(
        physician
            .client
            .get(format!("{}/Patient?_count=2", physician.base))
            .bearer_auth(&physician.token)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-for", "10.20.30.40")
            .send()
            .await
            .expect("search"),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let links: Vec<&str> = page.body["link"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["url"].as_str())
        .collect();
    assert!(
        !links.is_empty() && links.iter().all(|l| l.starts_with("https://")),
        "{links:?}"
    );
    let admin = Fhir::new(&server, dir.path(), None, "admin");
    let trail: Value = admin
        .client
        .get(format!("{}/audit?username=dr.okafor&limit=50", server.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let searches: Vec<&Value> = trail
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["action"] == "fhir-search")
        .collect();
    assert!(
        !searches.is_empty() && searches.iter().all(|r| r["client_addr"] == "10.20.30.40"),
        "{trail}"
    );
}

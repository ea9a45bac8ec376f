use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Response, StatusCode};
use seldinger_domain::catalogue::GuidanceModality;
use seldinger_domain::{ProcedureCatalogue, Room, RoomId, RoomKind};
use seldinger_store::testing::{self, TestDatabase};
use seldinger_web::{AppState, FixedClock};
use serde_json::{json, Value};
use std::sync::Arc;

/// The time every test server believes it is.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 7, 30, 0)
        .single()
        .expect("valid")
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub engine: String,
    /// Keeps the database (and its temporary directory) alive while the server runs.
    pub _db: TestDatabase,
}

/// One running app per available engine.
pub async fn spawn_apps() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for db in testing::engines().await {
        apps.push(spawn_app(db).await);
    }
    apps
}

pub async fn spawn_app(db: TestDatabase) -> TestApp {
    let catalogue = ProcedureCatalogue::parse(
        include_str!("../../../../catalog/procedures.toml"),
        "procedures.toml",
    )
    .expect("catalogue");
    let rooms = [
        (
            "angio-1",
            RoomKind::AngioSuite,
            GuidanceModality::Fluoroscopy,
        ),
        ("us-1", RoomKind::Ultrasound, GuidanceModality::Ultrasound),
    ];
    for (i, (id, kind, modality)) in rooms.into_iter().enumerate() {
        let room = Room {
            id: RoomId::parse(id).expect("room"),
            name: id.to_uppercase(),
            kind,
            modalities: vec![modality],
        };
        db.store
            .put_room(&room, i as i64)
            .await
            .expect("room stored");
    }
    let state = AppState {
        store: db.store.clone(),
        catalogue: Arc::new(catalogue),
        clock: Arc::new(FixedClock(now())),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/api/v1", listener.local_addr().expect("address"));
    tokio::spawn(seldinger_web::serve(
        listener,
        state,
        std::future::pending(),
    ));
    let engine = format!("{:?}", db.engine());
    TestApp {
        base,
        client: reqwest::Client::new(),
        engine,
        _db: db,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.client
            .put(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers a patient and returns its record.
    pub async fn patient(&self, mrn: &str) -> Value {
        let response = self.post("/patients", &patient_body(mrn)).await;
        expect_status(response, StatusCode::CREATED, &self.engine).await
    }

    /// Refers a registered patient for a liver biopsy; returns the response body (referral + case).
    pub async fn referral(&self, patient_id: &str) -> Value {
        let body = json!({
            "patient_id": patient_id,
            "requesting_clinician": "Dr Test",
            "requesting_service": "oncology",
            "indication": "new liver lesion",
            "requested_procedure": "biopsy-liver",
            "urgency": "routine",
            "clinical_question": "histology please"
        });
        expect_status(
            self.post("/referrals", &body).await,
            StatusCode::CREATED,
            &self.engine,
        )
        .await
    }

    /// A registered patient referred for a liver biopsy: the new case's id.
    pub async fn new_case(&self, mrn: &str) -> String {
        let patient = self.patient(mrn).await;
        let received = self
            .referral(patient["id"].as_str().expect("patient id"))
            .await;
        received["case"]["id"]
            .as_str()
            .expect("case id")
            .to_string()
    }

    pub async fn transition(
        &self,
        case_id: &str,
        version: u64,
        event: Value,
        reason: Option<&str>,
    ) -> Response {
        let mut body = json!({ "expected_version": version, "event": event });
        if let Some(reason) = reason {
            body["reason"] = json!(reason);
        }
        self.post(&format!("/cases/{case_id}/transitions"), &body)
            .await
    }
}

pub fn patient_body(mrn: &str) -> Value {
    json!({
        "site": "MAIN",
        "mrn": mrn,
        "family_name": "Testperson",
        "given_name": "Robin",
        "birth_date": "1961-05-17",
        "sex": "female",
        "weight_kg": 64.5,
        "allergies": [{"class": "iodinated_contrast", "substance": "iopamidol", "reaction": "hives"}]
    })
}

/// Asserts the status, returning the JSON body; on mismatch shows the body.
pub async fn expect_status(response: Response, status: StatusCode, engine: &str) -> Value {
    let actual = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "{engine}: body {body}");
    if !status.is_success() {
        assert_eq!(
            content_type, "application/problem+json",
            "{engine}: errors are problem+json"
        );
        assert_eq!(body["status"], status.as_u16(), "{engine}");
    }
    body
}

pub fn accept_event() -> Value {
    json!({"type": "accept", "procedure_id": "biopsy-liver", "modality": "ultrasound", "sedation": "local", "priority": "routine"})
}

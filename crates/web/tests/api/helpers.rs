use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Response, StatusCode};
use seldinger_domain::access::Role;
use seldinger_domain::catalogue::GuidanceModality;
use seldinger_domain::{ProcedureCatalogue, Room, RoomId, RoomKind};
use seldinger_store::testing::{self, TestDatabase};
use seldinger_web::{AppState, AuthPolicy, FixedClock};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The time every test server believes it is.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 7, 30, 0)
        .single()
        .expect("valid")
}

/// Every test user's password.
pub const PASSWORD: &str = "test-password-123";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub engine: String,
    /// A bearer token per role; the user of each is named after the role (e.g. `ir_nurse`).
    pub tokens: HashMap<Role, String>,
    /// Requests without an explicit role act as this one.
    pub role: Role,
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
    spawn_app_with(db, AuthPolicy::default()).await
}

/// As [`spawn_app`] with a chosen security policy (short sessions, tight limits).
pub async fn spawn_app_with(db: TestDatabase, policy: AuthPolicy) -> TestApp {
    spawn(db, policy, seldinger_domain::DepartmentTime::default()).await
}

/// As [`spawn_app`] with a clock the test moves.
pub async fn spawn_app_with_clock(
    db: TestDatabase,
    policy: AuthPolicy,
    clock: Arc<dyn seldinger_web::Clock>,
) -> TestApp {
    spawn_clocked(
        db,
        policy,
        seldinger_domain::DepartmentTime::default(),
        clock,
    )
    .await
}

/// As [`spawn_app`] for a department in this IANA time zone.
pub async fn spawn_app_in(db: TestDatabase, zone: &str) -> TestApp {
    let time = seldinger_domain::DepartmentTime::parse(zone).expect("zone");
    spawn(db, AuthPolicy::default(), time).await
}

async fn spawn(
    db: TestDatabase,
    policy: AuthPolicy,
    time: seldinger_domain::DepartmentTime,
) -> TestApp {
    spawn_clocked(db, policy, time, Arc::new(FixedClock(now()))).await
}

/// One running app per engine, with the department's quality thresholds from `toml`.
pub async fn spawn_apps_with_thresholds(toml: &str) -> Vec<TestApp> {
    let thresholds =
        seldinger_domain::quality::Thresholds::parse(toml, "test thresholds").expect("thresholds");
    let mut apps = Vec::new();
    for db in testing::engines().await {
        apps.push(
            spawn_configured(
                db,
                AuthPolicy::default(),
                seldinger_domain::DepartmentTime::default(),
                Arc::new(FixedClock(now())),
                thresholds.clone(),
            )
            .await,
        );
    }
    apps
}

async fn spawn_clocked(
    db: TestDatabase,
    policy: AuthPolicy,
    time: seldinger_domain::DepartmentTime,
    clock: Arc<dyn seldinger_web::Clock>,
) -> TestApp {
    spawn_configured(db, policy, time, clock, Default::default()).await
}

async fn spawn_configured(
    db: TestDatabase,
    policy: AuthPolicy,
    time: seldinger_domain::DepartmentTime,
    clock: Arc<dyn seldinger_web::Clock>,
    thresholds: seldinger_domain::quality::Thresholds,
) -> TestApp {
    let catalogue = shipped_catalogue();
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
            equipment: Vec::new(),
        };
        db.store
            .put_room(&room, i as i64)
            .await
            .expect("room stored");
    }
    let state = AppState::new(
        db.store.clone(),
        catalogue,
        crate::helpers::safety_reference(),
        clock,
        policy,
    )
    .with_time_zone(time)
    .with_quality_thresholds(thresholds);
    let hash = seldinger_web::auth::credentials::hash_password(PASSWORD).expect("hash");
    let mut tokens = HashMap::new();
    for role in Role::ALL {
        db.store
            .create_user(role.as_str(), role.as_str(), role, &hash, now(), &[])
            .await
            .expect("user");
        let asked = seldinger_web::routes::admin::NewToken {
            username: role.as_str().into(),
            role: None,
            name: "tests".into(),
            expires_in_days: None,
            scopes: None,
            patient_id: None,
        };
        let token = seldinger_web::issue_token(&state, None, &asked)
            .await
            .expect("token");
        tokens.insert(role, token.token);
    }
    let base = serve(state).await;
    let engine = format!("{:?}", db.engine());
    TestApp {
        base,
        client: reqwest::Client::new(),
        engine,
        tokens,
        role: Role::IrPhysician,
        _db: db,
    }
}

/// Serves `state` on a free loopback port until the test ends: its API base.
async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/api/v1", listener.local_addr().expect("address"));
    tokio::spawn(seldinger_web::serve(
        listener,
        state,
        std::future::pending(),
    ));
    base
}

impl TestApp {
    /// A second node on this app's database (as behind a load balancer): its own process state,
    /// the same store. Returns its API base.
    pub async fn another_node(&self, policy: AuthPolicy) -> String {
        let state = AppState::new(
            self._db.store.clone(),
            shipped_catalogue(),
            crate::helpers::safety_reference(),
            Arc::new(FixedClock(now())),
            policy,
        );
        serve(state).await
    }

    /// A patient referred, accepted and booked in `room` at `start` (RFC 3339, UTC): the
    /// patient's id and the case's.
    pub async fn booked_case(&self, mrn: &str, room: &str, start: &str) -> (String, String) {
        let patient = self.patient(mrn).await;
        let patient_id = patient["id"].as_str().expect("id").to_string();
        let case_id = self.referral(&patient_id).await["case"]["id"]
            .as_str()
            .expect("case")
            .to_string();
        expect_status(
            self.transition(&case_id, 1, accept_event(), None).await,
            StatusCode::OK,
            &self.engine,
        )
        .await;
        let booking = json!({"type": "schedule", "room": room, "start": start});
        expect_status(
            self.transition(&case_id, 2, booking, None).await,
            StatusCode::OK,
            &self.engine,
        )
        .await;
        (patient_id, case_id)
    }

    /// A request acting as `role` (by its bearer token).
    pub fn request_as(
        &self,
        role: Role,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.tokens[&role])
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request_as(self.role, reqwest::Method::GET, path)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request_as(self.role, reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.request_as(self.role, reqwest::Method::PUT, path)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers a patient and returns its record.
    pub async fn patient(&self, mrn: &str) -> Value {
        self.patient_as(self.role, mrn).await
    }

    pub async fn patient_as(&self, role: Role, mrn: &str) -> Value {
        let response = self
            .request_as(role, reqwest::Method::POST, "/patients")
            .json(&patient_body(mrn))
            .send()
            .await
            .expect("request");
        expect_status(response, StatusCode::CREATED, &self.engine).await
    }

    /// Refers a registered patient for a liver biopsy; returns the response body (referral + case).
    pub async fn referral(&self, patient_id: &str) -> Value {
        self.referral_as(self.role, patient_id).await
    }

    pub async fn referral_as(&self, role: Role, patient_id: &str) -> Value {
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
            self.request_as(role, reqwest::Method::POST, "/referrals")
                .json(&body)
                .send()
                .await
                .expect("request"),
            StatusCode::CREATED,
            &self.engine,
        )
        .await
    }

    /// A registered patient referred for a liver biopsy: the new case's id.
    pub async fn new_case(&self, mrn: &str) -> String {
        self.new_case_as(self.role, mrn).await
    }

    /// As `new_case`, with the patient registered and referred by a user of `role`.
    pub async fn new_case_as(&self, role: Role, mrn: &str) -> String {
        let patient = self.patient_as(role, mrn).await;
        let received = self
            .referral_as(role, patient["id"].as_str().expect("patient id"))
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

/// The response's media type as sent (empty when none).
pub fn content_type(response: &Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Asserts the status, returning the JSON body; on mismatch shows the body.
pub async fn expect_status(response: Response, status: StatusCode, engine: &str) -> Value {
    let actual = response.status();
    let content_type = content_type(&response);
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

/// The shipped procedure catalogue.
pub fn shipped_catalogue() -> ProcedureCatalogue {
    ProcedureCatalogue::parse(
        include_str!("../../../../catalog/procedures.toml"),
        "procedures.toml",
    )
    .expect("catalogue")
}

/// The shipped safety thresholds.
pub fn safety_reference() -> seldinger_domain::safety::SafetyReference {
    seldinger_domain::safety::SafetyReference::parse(
        include_str!("../../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("safety thresholds")
}

/// The `id` of every record in a JSON list, in order.
pub fn ids_of(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str())
        .collect()
}

pub const FILTER_LABEL: &str = "(01)09506000134352(17)300630(10)LOT-API(21)SN-API-1";

/// A patient referred for an IVC filter, walked into the room, the filter recorded, and (if
/// `discharge`) out through recovery: the case id and the device id.
pub async fn filter_placed(app: &TestApp, mrn: &str, discharge: bool) -> (String, String) {
    let case_id = app.new_case(mrn).await;
    let time_out = json!({
        "completed_at": "2026-11-24T07:00:00Z", "team_introduced": true, "patient_identity_confirmed": true,
        "procedure_and_site_confirmed": true, "consent_confirmed": true, "imaging_available": true,
        "equipment_available": true
    });
    let mut steps = vec![
        json!({"type": "accept", "procedure_id": "ivc-filter-placement", "modality": "ultrasound",
               "sedation": "local", "priority": "routine"}),
        json!({"type": "schedule", "room": "us-1", "start": "2026-11-24T09:00:00Z"}),
        json!({"type": "check_in"}),
        json!({"type": "override_safety_blocks",
               "rules": ["assessment", "coagulation.inr", "coagulation.platelets", "consent"]}),
        json!({"type": "start_procedure", "time_out": time_out}),
        json!({"type": "record_device_left", "device": {"kind": "ivc_filter",
               "description": "retrievable IVC filter, infrarenal", "udi_label": FILTER_LABEL}}),
    ];
    if discharge {
        steps.extend([
            json!({"type": "complete_procedure"}),
            json!({"type": "admit_to_recovery"}),
            json!({"type": "discharge", "reason": "walked for the device test"}),
        ]);
    }
    for (n, mut event) in steps.into_iter().enumerate() {
        let reason = event
            .as_object_mut()
            .and_then(|e| e.remove("reason"))
            .and_then(|r| r.as_str().map(str::to_string))
            .or_else(|| {
                (event["type"] == "override_safety_blocks")
                    .then(|| "device walk: the safety data is another test's".to_string())
            });
        let response = app
            .transition(&case_id, n as u64 + 1, event, reason.as_deref())
            .await;
        expect_status(response, StatusCode::OK, &app.engine).await;
    }
    let device_id = format!("{case_id}-0");
    (case_id, device_id)
}

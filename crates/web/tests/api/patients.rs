use crate::helpers::{expect_status, patient_body, spawn_apps};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn register_read_and_search_a_patient() {
    for app in spawn_apps().await {
        let created = app.post("/patients", &patient_body("q-1001")).await;
        let location = created
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let patient = expect_status(created, StatusCode::CREATED, &app.engine).await;
        let id = patient["id"].as_str().expect("id");
        assert_eq!(
            location.as_deref(),
            Some(format!("/api/v1/patients/{id}").as_str())
        );
        assert_eq!(
            patient["mrn"], "Q-1001",
            "MRNs are normalised to upper case"
        );
        assert_eq!(patient["age"], 65);
        assert_eq!(patient["version"], 1);
        assert_eq!(patient["allergies"][0]["class"], "iodinated_contrast");

        let read = expect_status(
            app.get(&format!("/patients/{id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(read["name"]["family"], "Testperson");
        let found = expect_status(
            app.get("/patients?mrn=Q-1001").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(found[0]["id"], id);
        let by_name = expect_status(
            app.get("/patients?name=robin%20test").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(by_name.as_array().map(Vec::len), Some(1));
        // A name of separators only holds no word: refused, not read as "every patient".
        for nothing in ["-", "%20", "-%20-"] {
            let problem = expect_status(
                app.get(&format!("/patients?name={nothing}")).await,
                StatusCode::BAD_REQUEST,
                &app.engine,
            )
            .await;
            assert_eq!(problem["errors"][0]["field"], "name", "{}", app.engine);
        }
        let history = expect_status(
            app.get(&format!("/patients/{id}/history")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(history[0]["kind"], "registered");
        assert_eq!(history[0]["actor"], "ir_physician");
    }
}

#[tokio::test]
async fn invalid_patient_input_names_every_field_and_writes_nothing() {
    for app in spawn_apps().await {
        let mut body = patient_body("");
        body["birth_date"] = json!("17/05/1961");
        body["sex"] = json!("F");
        body["weight_kg"] = json!(0);
        body["allergies"][0]["class"] = json!("shellfish");
        let problem = expect_status(
            app.post("/patients", &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            fields,
            [
                "mrn",
                "birth_date",
                "sex",
                "weight_kg",
                "allergies[0].class"
            ],
            "{}",
            app.engine
        );
        assert!(problem["errors"][2]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("female, male, other, unknown"));

        // Wrong JSON type: 422 naming the field (the body is JSON, so it was read).
        let mut wrong_type = patient_body("Q-2");
        wrong_type["weight_kg"] = json!("heavy");
        let problem = expect_status(
            app.post("/patients", &wrong_type).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "weight_kg");

        // Not JSON at all.
        let response = app
            .request_as(app.role, reqwest::Method::POST, "/patients")
            .body("mrn=1")
            .send()
            .await
            .expect("request");
        expect_status(response, StatusCode::UNSUPPORTED_MEDIA_TYPE, &app.engine).await;

        let none = expect_status(
            app.get("/patients?name=testperson").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(none, json!([]), "{}: nothing was written", app.engine);
    }
}

#[tokio::test]
async fn a_duplicate_mrn_is_refused() {
    for app in spawn_apps().await {
        app.patient("DUP-1").await;
        let problem = expect_status(
            app.post("/patients", &patient_body("dup-1")).await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        assert_eq!(problem["type"], "urn:seldinger:problem:duplicate");
        assert!(problem["detail"].as_str().unwrap_or("").contains("DUP-1"));
    }
}

#[tokio::test]
async fn a_stale_patient_update_is_refused_and_changes_nothing() {
    for app in spawn_apps().await {
        let patient = app.patient("UPD-1").await;
        let id = patient["id"].as_str().expect("id");
        let mut first = patient_body("UPD-1");
        first["weight_kg"] = json!(70.0);
        first["expected_version"] = json!(1);
        let updated = expect_status(
            app.put(&format!("/patients/{id}"), &first).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(updated["version"], 2);

        let mut stale = patient_body("UPD-1");
        stale["weight_kg"] = json!(99.0);
        stale["expected_version"] = json!(1);
        let problem = expect_status(
            app.put(&format!("/patients/{id}"), &stale).await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        assert_eq!(problem["type"], "urn:seldinger:problem:stale-version");
        assert_eq!(problem["current_version"], 2);
        let read = expect_status(
            app.get(&format!("/patients/{id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(read["weight_kg"], 70.0, "{}", app.engine);
    }
}

#[tokio::test]
async fn without_a_criterion_every_patient_in_scope_is_listed_and_unknown_parameters_refused() {
    for app in spawn_apps().await {
        app.patient("ALL-1").await;
        app.patient("ALL-2").await;
        let all = app.get("/patients?limit=1").await;
        assert_eq!(
            all.headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok()),
            Some("2"),
            "{}",
            app.engine
        );
        assert!(all.headers().get("link").is_some(), "a next page");
        let problem = expect_status(
            app.get("/patients?nmae=x").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "nmae");
    }
}

#[tokio::test]
async fn labs_are_entered_in_any_understood_unit_and_stored_canonically() {
    for app in spawn_apps().await {
        let patient = app.patient("LAB-1").await;
        let id = patient["id"].as_str().expect("id");
        let body = json!({"expected_version": 1, "test": "creatinine", "value": 176.84, "unit": "µmol/L", "drawn_at": "2026-11-24T06:00:00Z"});
        let record = expect_status(
            app.post(&format!("/patients/{id}/lab-results"), &body)
                .await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        assert_eq!(record["version"], 2);
        assert_eq!(record["lab_results"][0]["value"], 2.0);
        assert_eq!(record["lab_results"][0]["unit"], "mg/dL");
        assert_eq!(record["lab_results"][0]["loinc"], "2160-0");

        let bad =
            json!({"expected_version": 2, "test": "creatinine", "value": 1.0, "unit": "mg/L"});
        let problem = expect_status(
            app.post(&format!("/patients/{id}/lab-results"), &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, ["unit", "drawn_at"]);
        // A correction joins the version and reason to the entry's fields: a bad one is still
        // named (serde's flatten once reported "body: premature end of input").
        let blank_time = json!({"expected_version": 2, "reason": "typo", "test": "inr",
            "value": 1.0, "unit": "{INR}", "drawn_at": ""});
        let problem = expect_status(
            app.put(&format!("/patients/{id}/lab-results/1"), &blank_time)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "drawn_at", "{problem}");
        let stale = json!({"expected_version": 1, "test": "inr", "value": 1.1, "unit": "{INR}", "drawn_at": "2026-11-24T06:00:00Z"});
        expect_status(
            app.post(&format!("/patients/{id}/lab-results"), &stale)
                .await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;

        let med = json!({"expected_version": 2, "drug": "Enoxaparin", "dose": "40 mg", "dose_intent": "daily"});
        let problem = expect_status(
            app.post(&format!("/patients/{id}/medications"), &med).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "dose_intent");
        let med = json!({"expected_version": 2, "drug": "Enoxaparin", "dose": "40 mg", "dose_intent": "prophylactic", "last_dose_at": "2026-11-24T06:00:00Z"});
        let record = expect_status(
            app.post(&format!("/patients/{id}/medications"), &med).await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        assert_eq!(record["medications"][0]["drug"], "enoxaparin");
        assert_eq!(record["medications"][0]["dose_intent"], "prophylactic");
    }
}

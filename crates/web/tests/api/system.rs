use crate::helpers::{expect_status, spawn_apps};
use reqwest::{Method, StatusCode};
use seldinger_domain::access::Role;

#[tokio::test]
async fn health_names_the_engine_and_catalogue() {
    for app in spawn_apps().await {
        let body = expect_status(app.get("/health").await, StatusCode::OK, &app.engine).await;
        assert_eq!(body["status"], "ok");
        assert_eq!(body["database"], app.engine.to_lowercase());
        assert_eq!(body["catalogue_version"], "2026.12.1");
    }
}

#[tokio::test]
async fn the_catalogue_and_rooms_are_served() {
    for app in spawn_apps().await {
        let body = expect_status(app.get("/procedures").await, StatusCode::OK, &app.engine).await;
        let procedures = body["procedures"].as_array().expect("list");
        assert!(procedures.len() >= 50);
        let tips = procedures
            .iter()
            .find(|p| p["id"] == "tips")
            .expect("TIPS listed");
        assert_eq!(tips["bleeding_risk"], "high");
        let rooms = expect_status(app.get("/rooms").await, StatusCode::OK, &app.engine).await;
        assert_eq!(rooms[0]["id"], "angio-1");
    }
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    for app in spawn_apps().await.into_iter().take(1) {
        let doc = expect_status(app.get("/openapi.json").await, StatusCode::OK, &app.engine).await;
        assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/health",
            "/api/v1/procedures",
            "/api/v1/patients",
            "/api/v1/patients/{id}",
            "/api/v1/referrals",
            "/api/v1/cases",
            "/api/v1/cases/{id}",
            "/api/v1/cases/{id}/transitions",
            "/api/v1/cases/{id}/history",
        ] {
            assert!(
                paths.contains_key(path),
                "{path} missing from the OpenAPI document"
            );
        }
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for schema in [
            "CaseEvent",
            "CaseState",
            "PatientInput",
            "ReferralInput",
            "Problem",
            "TransitionRequest",
        ] {
            assert!(schemas.contains_key(schema), "schema {schema} missing");
        }
    }
}

#[tokio::test]
async fn unknown_paths_and_ids_are_404_problems() {
    for app in spawn_apps().await {
        expect_status(
            app.get("/nothing-here").await,
            StatusCode::NOT_FOUND,
            &app.engine,
        )
        .await;
        expect_status(
            app.get("/cases/not-a-uuid").await,
            StatusCode::NOT_FOUND,
            &app.engine,
        )
        .await;
        let missing = "/patients/7f0c9a52-0f6e-4a43-9c1e-000000000000";
        let body = expect_status(app.get(missing).await, StatusCode::NOT_FOUND, &app.engine).await;
        assert_eq!(body["type"], "urn:seldinger:problem:not-found");
    }
}

#[tokio::test]
async fn dates_at_the_calendars_ends_are_refused_not_a_panic() {
    for app in spawn_apps().await.into_iter().take(1) {
        // chrono reads these, and a period's arithmetic on them would overflow.
        for path in [
            "/dose/statistics?until=%2B262142-12-31",
            "/dose/statistics?until=-262143-01-01",
            "/dose/reports?until=%2B262142-12-31",
            "/cases?date=%2B262142-12-31",
            "/readiness?date=10000-01-01",
        ] {
            let problem =
                expect_status(app.get(path).await, StatusCode::BAD_REQUEST, &app.engine).await;
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("use YYYY-MM-DD")),
                "{path}: {problem}"
            );
        }
    }
}

#[tokio::test]
async fn with_postgresql_gone_requests_answer_503_with_retry_after_and_service_resumes() {
    let Some(db) = seldinger_store::testing::postgres().await else {
        return;
    };
    let (mut proxy, proxied) = seldinger_store::testing::CuttableProxy::before(&db).await;
    let app = crate::helpers::spawn_app(db.reached_at(&proxied).await).await;
    expect_status(app.get("/health").await, StatusCode::OK, "before").await;

    proxy.cut();
    let started = std::time::Instant::now();
    for path in ["/health", "/health/ready", "/patients?mrn=NOBODY"] {
        let answer = app.get(path).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(
            answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5"),
            "{path}"
        );
        let problem: serde_json::Value = answer.json().await.expect("problem");
        assert_eq!(
            problem["type"], "urn:seldinger:problem:database-unavailable",
            "{path}"
        );
    }
    eprintln!(
        "three requests with the database gone answered 503 in {:?}",
        started.elapsed()
    );
    // The process itself is alive: a supervisor must not restart it for this.
    expect_status(app.get("/health/live").await, StatusCode::OK, "live").await;

    proxy.restore().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if app.get("/health").await.status() == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "service never resumed after the database returned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    expect_status(
        app.get("/patients?mrn=NOBODY").await,
        StatusCode::OK,
        "after",
    )
    .await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_for_monitoring_and_administrators_only() {
    let app = crate::helpers::spawn_app(seldinger_store::testing::sqlite().await).await;
    let patient = app.patient("METRIC-1").await;
    let id = patient["id"].as_str().expect("id").to_string();
    expect_status(
        app.get(&format!("/patients/{id}")).await,
        StatusCode::OK,
        "read",
    )
    .await;
    let refused = app
        .request_as(Role::IrNurse, Method::GET, "/metrics")
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // A made-up method is counted, as `other`: it adds no series of its own.
    let brewed = app
        .request_as(
            Role::Monitoring,
            Method::from_bytes(b"BREW").expect("method"),
            "/metrics",
        )
        .send()
        .await
        .expect("request");
    assert_ne!(brewed.status(), StatusCode::OK);
    // The monitoring account reads the metrics and nothing else (a stolen Prometheus token
    // opens no patient, message, user or reference data).
    for path in ["/patients", "/rooms", "/hl7/messages", "/users", "/audit"] {
        let refused = app
            .request_as(Role::Monitoring, Method::GET, path)
            .send()
            .await
            .expect("request");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let by_administrator = app
        .request_as(Role::Administrator, Method::GET, "/metrics")
        .send()
        .await
        .expect("request");
    assert_eq!(by_administrator.status(), StatusCode::OK);
    let scraped = app
        .request_as(Role::Monitoring, Method::GET, "/metrics")
        .send()
        .await
        .expect("request");
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = scraped.text().await.expect("text");
    // By the route's pattern: the id read is not in it, nor the MRN.
    assert!(
        text.contains(r#"route="/api/v1/patients/{id}",status="200""#),
        "{text}"
    );
    assert!(text.contains("seldinger_http_request_duration_seconds_bucket"));
    assert!(text.contains("seldinger_hl7_dead_letters 0"));
    // Each read's wait for a connection (the read above took one).
    assert!(
        text.contains("seldinger_db_reader_wait_seconds_count"),
        "{text}"
    );
    assert!(!text.contains(&id) && !text.contains("METRIC-1"));
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(!text.contains("BREW"), "{text}");
}

//! Adverse events through the API (clinical-rules.md §6): reported at any time after the
//! procedure began by the roles that see them, graded both ways, refused with the field and the
//! reason, corrected and withdrawn only with a reason, attributed by a physician.

use crate::helpers::{expect_status, filter_placed, spawn_apps, TestApp};
use reqwest::{Method, StatusCode};
use seldinger_domain::access::Role;
use serde_json::{json, Value};

async fn post_as(app: &TestApp, role: Role, path: &str, body: Value) -> reqwest::Response {
    app.request_as(role, Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn report(onset: &str) -> Value {
    json!({"onset": onset, "detected": "after_discharge",
           "description": "haematoma at the access site", "severity": "moderate",
           "cirse_grade": 2, "treatment": "compression, overnight stay", "outcome": "resolved"})
}

fn field_named(problem: &Value, field: &str) -> bool {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["field"] == field)
        || problem["field"] == field
}

#[tokio::test]
async fn adverse_events_are_reported_graded_both_ways_corrected_attributed_and_withdrawn_with_reasons(
) {
    for app in spawn_apps().await {
        let engine = &app.engine;
        // Not before the procedure has begun.
        let referred = app.new_case("AE-API-0").await;
        let early = expect_status(
            post_as(
                &app,
                Role::IrNurse,
                &format!("/cases/{referred}/adverse-events"),
                report("2026-11-24T07:00:00Z"),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        assert!(field_named(&early, "case"), "{early}");

        let (case_id, _) = filter_placed(&app, "AE-API-1", true).await;
        let path = format!("/cases/{case_id}/adverse-events");
        // Who may: not a scheduler; a referrer only for their own patients.
        expect_status(
            post_as(&app, Role::Scheduler, &path, report("2026-11-24T07:30:00Z")).await,
            StatusCode::FORBIDDEN,
            engine,
        )
        .await;
        expect_status(
            post_as(
                &app,
                Role::ReferringClinician,
                &path,
                report("2026-11-24T07:30:00Z"),
            )
            .await,
            StatusCode::NOT_FOUND,
            engine,
        )
        .await;
        // What is wrong, and where.
        let mut ungraded = report("2026-11-24T07:30:00Z");
        ungraded["cirse_grade"] = Value::Null;
        let mut before = report("2026-11-20T07:20:00Z");
        before["description"] = json!(" ");
        let mut death = report("2026-11-24T07:30:00Z");
        death["severity"] = json!("death");
        for (body, fields) in [
            (ungraded, vec!["cirse_grade"]),
            (before, vec!["description", "onset"]),
            (death, vec!["cirse_grade", "outcome"]),
        ] {
            let problem = expect_status(
                post_as(&app, Role::Radiographer, &path, body.clone()).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                engine,
            )
            .await;
            for field in fields {
                assert!(field_named(&problem, field), "{engine}: {body} → {problem}");
            }
        }
        let listed = expect_status(
            app.get(&format!("/adverse-events?case_id={case_id}")).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(listed, json!([]), "{engine}: nothing refused was written");

        // A radiographer reports one; within 30 days, it is the procedure's.
        let first = expect_status(
            post_as(
                &app,
                Role::Radiographer,
                &path,
                report("2026-11-24T07:30:00Z"),
            )
            .await,
            StatusCode::CREATED,
            engine,
        )
        .await;
        let id = first["id"].as_str().expect("id").to_string();
        assert_eq!(id, format!("{case_id}-r1"));
        assert_eq!(first["attributed"], true);
        assert_eq!(first["attribution_basis"], "window");
        assert_eq!(first["event"]["reported_by"], "radiographer");
        let second = expect_status(
            post_as(&app, Role::IrNurse, &path, report("2026-11-24T07:30:00Z")).await,
            StatusCode::CREATED,
            engine,
        )
        .await;
        assert_eq!(second["id"], format!("{case_id}-r2"));

        // Corrected only with a reason, on the version read.
        let changes = format!("/adverse-events/{id}/changes");
        let mut corrected = report("2026-11-24T07:30:00Z");
        corrected["severity"] = json!("severe");
        corrected["cirse_grade"] = json!(3);
        let unexplained = expect_status(
            post_as(&app, Role::IrNurse, &changes, json!({"expected_version": 1, "type": "corrected", "reason": "", "details": corrected})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        assert!(field_named(&unexplained, "reason"), "{unexplained}");
        expect_status(
            post_as(&app, Role::IrNurse, &changes, json!({"expected_version": 4, "type": "corrected", "reason": "regraded", "details": corrected})).await,
            StatusCode::CONFLICT,
            engine,
        )
        .await;
        let regraded = expect_status(
            post_as(
                &app,
                Role::IrNurse,
                &changes,
                json!({"expected_version": 1, "type": "corrected",
                "reason": "returned to theatre: regraded", "details": corrected}),
            )
            .await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(regraded["event"]["severity"], "severe");
        assert_eq!(regraded["event"]["version"], 2);
        // Attribution is a physician's word.
        let attribution = json!({"expected_version": 2, "type": "attribution_decided", "attributed": false,
                                 "reason": "a fall on the ward, unrelated to the procedure"});
        expect_status(
            post_as(&app, Role::IrNurse, &changes, attribution.clone()).await,
            StatusCode::FORBIDDEN,
            engine,
        )
        .await;
        let decided = expect_status(
            post_as(&app, Role::IrPhysician, &changes, attribution).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(decided["attributed"], false);
        assert_eq!(decided["attribution_basis"], "physician");
        // Withdrawn as entered in error: kept, marked, changed no more.
        let withdrawn = expect_status(
            post_as(&app, Role::IrNurse, &format!("/adverse-events/{case_id}-r2/changes"),
                json!({"expected_version": 1, "type": "entered_in_error", "reason": "the same event reported twice"})).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(withdrawn["event"]["entered_in_error"]["by"], "ir_nurse");
        expect_status(
            post_as(
                &app,
                Role::IrNurse,
                &format!("/adverse-events/{case_id}-r2/changes"),
                json!({"expected_version": 2, "type": "entered_in_error", "reason": "again"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        let read = expect_status(
            app.get(&format!("/adverse-events/{id}")).await,
            StatusCode::OK,
            engine,
        )
        .await;
        let kinds: Vec<&str> = read["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(
            kinds,
            ["reported", "corrected", "attribution_decided"],
            "{engine}"
        );
        assert_eq!(read["history"][1]["actor"], "ir_nurse");
        // By onset, in a period.
        let in_period = expect_status(
            app.get("/adverse-events?from=2026-11-24&until=2026-11-24")
                .await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(in_period.as_array().map(Vec::len), Some(2));
        expect_status(
            app.request_as(Role::QualityLead, Method::GET, "/adverse-events")
                .send()
                .await
                .expect("request"),
            StatusCode::FORBIDDEN,
            engine,
        )
        .await;
    }
}

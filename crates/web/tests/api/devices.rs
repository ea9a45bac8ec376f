//! The device registry through the API: a device recorded at a procedure is tracked with its
//! plan, taken out or declared permanent only by the roles that may, refused with the field and
//! the reason otherwise, never twice; the IVC filter tracker counts it.

use crate::helpers::{expect_status, filter_placed, spawn_apps, TestApp};
use reqwest::{Method, StatusCode};
use seldinger_domain::access::Role;
use serde_json::{json, Value};

async fn post_event(app: &TestApp, role: Role, device: &str, body: Value) -> reqwest::Response {
    app.request_as(role, Method::POST, &format!("/devices/{device}/events"))
        .json(&body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_device_is_tracked_until_taken_out_by_a_role_that_may_and_never_twice() {
    for app in spawn_apps().await {
        let (case_id, device) = filter_placed(&app, "DEV-API-1", false).await;
        // In the room: registered, its follow-up to be made at discharge.
        let listed = expect_status(
            app.get(&format!("/devices?case_id={case_id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(listed[0]["id"], device.as_str(), "{}", app.engine);
        assert_eq!(listed[0]["plan"]["plan"], "at_discharge");
        assert_eq!(listed[0]["device"]["placed"]["udi"]["lot"], "LOT-API");
        assert_eq!(listed[0]["patient_name"], "Testperson, Robin");

        let (case_id, device) = filter_placed(&app, "DEV-API-2", true).await;
        let read = expect_status(
            app.get(&format!("/devices/{device}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(read["plan"]["plan"], "follow_up", "{read}");
        assert_eq!(read["plan"]["overdue"], false);
        assert_eq!(read["history"], json!([]));

        // Who may: a permanent decision is an IR physician's; a radiographer records neither.
        let permanent = json!({"expected_version": 0, "type": "declared_permanent",
                               "reason": "lasting contraindication to anticoagulation"});
        expect_status(
            post_event(&app, Role::IrNurse, &device, permanent.clone()).await,
            StatusCode::FORBIDDEN,
            &app.engine,
        )
        .await;
        let removal = json!({"expected_version": 0, "type": "removed",
                             "note": "retrieved intact via the right internal jugular vein"});
        expect_status(
            post_event(&app, Role::Radiographer, &device, removal.clone()).await,
            StatusCode::FORBIDDEN,
            &app.engine,
        )
        .await;

        // What is wrong, and where.
        for (body, status, field) in [
            (
                json!({"expected_version": 0, "type": "lost"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "type",
            ),
            (
                json!({"expected_version": 0, "type": "removed", "note": "out", "reason": "x"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "reason",
            ),
            (
                json!({"expected_version": 0, "type": "removed", "note": "  "}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "note",
            ),
            (
                json!({"expected_version": 0, "type": "removed", "note": "out",
                       "at": "2026-11-01T00:00:00Z"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "at",
            ),
            (
                json!({"expected_version": 0, "type": "removed", "note": "out",
                       "in_case": "not-a-case"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "in_case",
            ),
            (
                json!({"expected_version": 0, "type": "declared_permanent", "reason": ""}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "reason",
            ),
        ] {
            let problem = expect_status(
                post_event(&app, Role::IrPhysician, &device, body.clone()).await,
                status,
                &app.engine,
            )
            .await;
            let named = problem["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["field"] == field)
                || problem["field"] == field
                || problem["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(field);
            assert!(named, "{}: {body} → {problem}", app.engine);
        }
        // Based on a version it is not at: refused.
        let mut stale = removal.clone();
        stale["expected_version"] = json!(3);
        expect_status(
            post_event(&app, Role::IrNurse, &device, stale).await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        // Nothing was written by any of those.
        let unchanged = expect_status(
            app.get(&format!("/devices/{device}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(unchanged["device"]["version"], 0);

        // A nurse records the retrieval: ended, and its review closed with what was done.
        let out = expect_status(
            post_event(&app, Role::IrNurse, &device, removal.clone()).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(out["plan"]["plan"], "ended");
        assert_eq!(out["device"]["state"]["state"], "removed");
        let done = expect_status(
            app.get(&format!("/follow-up-tasks?case_id={case_id}&status=done"))
                .await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let review = done
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["kind"] == "ivc_filter_retrieval_review")
            .expect("the review is closed by the retrieval");
        assert_eq!(
            review["completed"]["note"],
            "IVC filter removed: retrieved intact via the right internal jugular vein"
        );
        // Never twice.
        let mut again = removal.clone();
        again["expected_version"] = json!(1);
        let twice = expect_status(
            post_event(&app, Role::IrNurse, &device, again).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert!(twice.to_string().contains("no longer in place"), "{twice}");
        let history = expect_status(
            app.get(&format!("/devices/{device}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(history["history"][0]["kind"], "removed");
        assert_eq!(history["history"][0]["actor"], "ir_nurse");

        // The lists and the tracker.
        let in_place = expect_status(app.get("/devices").await, StatusCode::OK, &app.engine).await;
        assert!(in_place
            .as_array()
            .into_iter()
            .flatten()
            .all(|d| d["id"] != device.as_str()));
        let removed = expect_status(
            app.get("/devices?life=removed&kind=ivc_filter").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(removed[0]["id"], device.as_str());
        expect_status(
            app.get("/devices?life=lost").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;
        let tracker = expect_status(
            app.get("/devices/ivc-filters?from=2026-11-01&until=2026-11-30")
                .await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(tracker["measures"]["placed"], 2, "{tracker}");
        assert_eq!(tracker["measures"]["retrieved"], 1);
        assert_eq!(tracker["measures"]["retrieval"]["numerator"], 1);

        // Outside a reader's scope, a device does not exist; a role without cases has none.
        expect_status(
            app.request_as(
                Role::ReferringClinician,
                Method::GET,
                &format!("/devices/{device}"),
            )
            .send()
            .await
            .expect("request"),
            StatusCode::NOT_FOUND,
            &app.engine,
        )
        .await;
        expect_status(
            app.request_as(Role::QualityLead, Method::GET, "/devices")
                .send()
                .await
                .expect("request"),
            StatusCode::FORBIDDEN,
            &app.engine,
        )
        .await;
    }
}

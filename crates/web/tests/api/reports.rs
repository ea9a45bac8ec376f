//! The procedure report through the API: generated from the record, the physician's draft,
//! signed only with an impression once the procedure is complete, then locked; later words only
//! as addenda with a reason.

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

#[tokio::test]
async fn a_report_is_drafted_signed_locked_and_added_to_only_with_a_reason() {
    for app in spawn_apps().await {
        let engine = &app.engine;
        // Before the procedure began there is nothing to report.
        let referred = app.new_case("REP-0").await;
        expect_status(
            app.get(&format!("/cases/{referred}/report")).await,
            StatusCode::NOT_FOUND,
            engine,
        )
        .await;

        let (case_id, _) = filter_placed(&app, "REP-1", true).await;
        let path = format!("/cases/{case_id}/report");
        let draft = expect_status(app.get(&path).await, StatusCode::OK, engine).await;
        assert_eq!(draft["status"], "draft");
        assert_eq!(draft["report"]["version"], 0);
        let titles: Vec<&str> = draft["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["title"].as_str())
            .collect();
        for title in [
            "Indication",
            "Consent",
            "Sedation, anaesthesia and monitoring",
            "Access and technique",
            "Devices placed",
            "Contrast and radiation dose",
            "Findings",
            "Technical success",
            "Complications",
            "Disposition and plan",
            "Follow-up owed",
        ] {
            assert!(titles.contains(&title), "{engine}: {title} in {titles:?}");
        }
        assert!(draft["text"]
            .as_str()
            .is_some_and(|t| t.contains("lot LOT-API")));

        // Only an IR physician writes it.
        let save = json!({"expected_version": 0, "action": "save_draft",
                          "findings": "Filter infrarenal, apex at L2.", "impression": ""});
        expect_status(
            post_as(&app, Role::IrNurse, &path, save.clone()).await,
            StatusCode::FORBIDDEN,
            engine,
        )
        .await;
        let saved = expect_status(
            post_as(&app, Role::IrPhysician, &path, save).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(saved["report"]["version"], 1);
        // Not signed without the impression; not on a stale version.
        let unsigned = expect_status(
            post_as(
                &app,
                Role::IrPhysician,
                &path,
                json!({"expected_version": 1, "action": "sign",
                "findings": "Filter infrarenal, apex at L2."}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        assert_eq!(unsigned["errors"][0]["field"], "impression", "{unsigned}");
        let sign = json!({"expected_version": 1, "action": "sign",
                          "findings": "Filter infrarenal, apex at L2.",
                          "impression": "Successful retrievable IVC filter placement."});
        let mut stale = sign.clone();
        stale["expected_version"] = json!(0);
        expect_status(
            post_as(&app, Role::IrPhysician, &path, stale).await,
            StatusCode::CONFLICT,
            engine,
        )
        .await;
        let signed = expect_status(
            post_as(&app, Role::IrPhysician, &path, sign).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(signed["status"], "final");
        assert_eq!(signed["report"]["signed"]["by"], "ir_physician");
        let text = signed["text"].as_str().unwrap_or_default().to_string();
        assert!(text.contains("Successful retrievable IVC filter placement."));
        assert!(text.contains("Signed by ir_physician"));
        // Locked: the draft cannot change; addenda only, with a reason.
        expect_status(
            post_as(
                &app,
                Role::IrPhysician,
                &path,
                json!({"expected_version": 2, "action": "save_draft",
                "impression": "changed"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        let unexplained = expect_status(
            post_as(
                &app,
                Role::IrPhysician,
                &path,
                json!({"expected_version": 2, "action": "addendum",
                "reason": "", "text": "Dose report received late."}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        assert_eq!(unexplained["errors"][0]["field"], "reason");
        expect_status(
            post_as(
                &app,
                Role::IrPhysician,
                &path,
                json!({"expected_version": 2, "action": "addendum",
                "reason": "x", "text": "y", "impression": "z"}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        let amended = expect_status(
            post_as(&app, Role::IrPhysician, &path, json!({"expected_version": 2, "action": "addendum",
                "reason": "dose report arrived after signing", "text": "Dose as reported by the room."})).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(amended["status"], "amended");
        let amended_text = amended["text"].as_str().unwrap_or_default();
        assert!(
            amended_text.starts_with(&text) && amended_text.contains("ADDENDUM by ir_physician"),
            "{engine}: the signed text stands, the addendum after it"
        );
        let kinds: Vec<&str> = amended["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["draft_saved", "signed", "addendum_added"]);
    }
}

use crate::helpers::{accept_event, expect_status, spawn_apps};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_referral_opens_a_case_that_walks_the_whole_lifecycle() {
    for app in spawn_apps().await {
        let patient = app.patient("LIFE-1").await;
        let received = app.referral(patient["id"].as_str().expect("id")).await;
        let case_id = received["case"]["id"]
            .as_str()
            .expect("case id")
            .to_string();
        assert_eq!(received["case"]["state"], "referred");
        assert_eq!(
            received["case"]["procedure_name"],
            "Image-guided liver biopsy (percutaneous)"
        );
        let awaiting = expect_status(
            app.get("/referrals?awaiting_vetting=true").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(awaiting.as_array().map(Vec::len), Some(1));

        let time_out = json!({
            "completed_at": "2026-11-24T07:00:00Z", "team_introduced": true, "patient_identity_confirmed": true,
            "procedure_and_site_confirmed": true, "consent_confirmed": true, "imaging_available": true,
            "equipment_available": true
        });
        let steps = [
            (accept_event(), "vetted"),
            (
                json!({"type": "schedule", "room": "us-1", "start": "2026-11-24T09:00:00Z"}),
                "scheduled",
            ),
            (json!({"type": "check_in"}), "checked_in"),
            // The start gate stops on missing data (§8); this walk is about the lifecycle.
            (
                json!({"type": "override_safety_blocks",
                       "rules": ["assessment", "coagulation.inr", "coagulation.platelets", "consent"]}),
                "checked_in",
            ),
            (
                json!({"type": "start_procedure", "time_out": time_out}),
                "in_room",
            ),
            (json!({"type": "complete_procedure"}), "procedure_complete"),
            (json!({"type": "admit_to_recovery"}), "in_recovery"),
            (json!({"type": "discharge"}), "discharged"),
            (json!({"type": "start_follow_up"}), "follow_up"),
            (json!({"type": "close"}), "closed"),
        ];
        for (version, (event, state)) in steps.into_iter().enumerate() {
            let reason = (event["type"] == "override_safety_blocks")
                .then_some("lifecycle walk: the safety data is another test's");
            let response = app
                .transition(&case_id, version as u64 + 1, event, reason)
                .await;
            let case = expect_status(response, StatusCode::OK, &app.engine).await;
            assert_eq!(case["state"], state, "{}", app.engine);
            assert_eq!(case["version"], version as u64 + 2);
        }
        let history = expect_status(
            app.get(&format!("/cases/{case_id}/history")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let kinds: Vec<&str> = history
            .as_array()
            .expect("list")
            .iter()
            .map(|e| e["kind"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            kinds,
            [
                "referred",
                "accept",
                "schedule",
                "check_in",
                "override_safety_blocks",
                "start_procedure",
                "complete_procedure",
                "admit_to_recovery",
                "discharge",
                "start_follow_up",
                "close"
            ]
        );
        let on_day = expect_status(
            app.get("/cases?date=2026-11-24").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(on_day[0]["id"], case_id.as_str());
        assert_eq!(
            on_day[0]["booking"]["end"], "2026-11-24T09:45:00Z",
            "catalogue room time"
        );
        let closed = expect_status(
            app.get("/cases?state=closed,cancelled").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(closed.as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn an_illegal_transition_names_the_state_and_what_is_allowed() {
    for app in spawn_apps().await {
        let case_id = app.new_case("ILL-1").await;
        let problem = expect_status(
            app.transition(&case_id, 1, json!({"type": "discharge"}), None)
                .await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        assert_eq!(
            problem["type"],
            "urn:seldinger:problem:transition-not-allowed"
        );
        assert_eq!(problem["current_state"], "referred");
        assert_eq!(
            problem["allowed_events"],
            json!([
                "accept",
                "decline",
                "request_information",
                "cancel",
                "record_assessment",
                "record_fasting",
                "record_consent"
            ])
        );
        let case = expect_status(
            app.get(&format!("/cases/{case_id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(case["version"], 1, "nothing written");
    }
}

#[tokio::test]
async fn a_stale_transition_is_refused_and_nothing_is_overwritten() {
    for app in spawn_apps().await {
        let case_id = app.new_case("STALE-1").await;
        expect_status(
            app.transition(&case_id, 1, accept_event(), None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        // A colleague who read version 1 tries to decline it.
        let problem = expect_status(
            app.transition(
                &case_id,
                1,
                json!({"type": "decline"}),
                Some("not indicated"),
            )
            .await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        assert_eq!(problem["type"], "urn:seldinger:problem:stale-version");
        assert_eq!(problem["current_version"], 2);
        let case = expect_status(
            app.get(&format!("/cases/{case_id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(case["state"], "vetted", "{}", app.engine);
    }
}

#[tokio::test]
async fn concurrent_transitions_on_one_version_one_wins_the_rest_get_409() {
    for app in spawn_apps().await {
        let case_id = app.new_case("RACE-1").await;
        let attempts = (0..6).map(|_| app.transition(&case_id, 1, accept_event(), None));
        let statuses: Vec<StatusCode> = futures_join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.status())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::OK).count(),
            1,
            "{}: {statuses:?}",
            app.engine
        );
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
            "{statuses:?}"
        );
        let history = expect_status(
            app.get(&format!("/cases/{case_id}/history")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(history.as_array().map(Vec::len), Some(2));
    }
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut outputs = Vec::new();
    // Poll them together so the requests overlap on the server.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.extend(done.into_iter().flatten());
    outputs
}

#[tokio::test]
async fn reasons_and_bad_event_fields_are_reported_by_field() {
    for app in spawn_apps().await {
        let case_id = app.new_case("WHY-1").await;
        let problem = expect_status(
            app.transition(&case_id, 1, json!({"type": "decline"}), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(
            problem["errors"][0],
            json!({"field": "reason", "detail": "decline needs a reason"})
        );

        let mut bad = accept_event();
        bad["modality"] = json!("xray");
        let problem = expect_status(
            app.transition(&case_id, 1, bad, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "event.modality");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or("")
                .contains("fluoroscopy"),
            "lists what is allowed"
        );

        let problem = expect_status(
            app.transition(
                &case_id,
                1,
                json!({"type": "accept", "procedure_id": "biopsy-liver"}),
                None,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "event.modality");

        let mut unknown = accept_event();
        unknown["procedure_id"] = json!("liver-transplant");
        let problem = expect_status(
            app.transition(&case_id, 1, unknown, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "event.procedure_id");

        expect_status(
            app.transition(&case_id, 1, accept_event(), None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let problem = expect_status(
            app.transition(
                &case_id,
                2,
                json!({"type": "schedule", "room": "angio-9", "start": "2026-11-25T08:00:00Z"}),
                None,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "event.room");
        assert!(problem["errors"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("angio-1, us-1"));

        let problem = expect_status(
            app.transition(
                &case_id,
                2,
                json!({"type": "schedule", "room": "Angio 1", "start": "2026-11-25T08:00:00Z"}),
                None,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "event.room");
        let case = expect_status(
            app.get(&format!("/cases/{case_id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(
            case["version"], 2,
            "{}: only the valid accept was written",
            app.engine
        );
    }
}

#[tokio::test]
async fn a_referral_for_an_unknown_patient_lists_every_problem() {
    for app in spawn_apps().await {
        let body = json!({
            "patient_id": "00000000-0000-4000-8000-000000000000",
            "requesting_clinician": "",
            "requesting_service": "cardiology",
            "indication": "x",
            "urgency": "asap"
        });
        let problem = expect_status(
            app.post("/referrals", &body).await,
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
                "patient_id",
                "requesting_clinician",
                "requesting_service",
                "requested_procedure",
                "urgency"
            ]
        );
        let referrals =
            expect_status(app.get("/referrals").await, StatusCode::OK, &app.engine).await;
        assert_eq!(referrals, json!([]));
    }
}

#[tokio::test]
async fn bad_case_filters_are_refused_by_name() {
    for app in spawn_apps().await {
        let problem = expect_status(
            app.get("/cases?date=24-11-2026").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "date");
        // A blank value is not "no filter": it is refused by name too.
        let problem = expect_status(
            app.get("/cases?patient_id=").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "patient_id");
        let problem = expect_status(
            app.get("/cases?state=done").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;
        assert!(problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("in_recovery"));
    }
}

#[tokio::test]
async fn lists_are_paged_with_the_total_and_a_next_link() {
    for app in spawn_apps().await {
        for i in 0..3 {
            app.new_case(&format!("PAGED-{i}")).await;
        }
        let first = app.get("/cases?limit=2").await;
        assert_eq!(first.status(), StatusCode::OK);
        let header = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header(&first, "x-total-count").as_deref(), Some("3"));
        let link = header(&first, "link").expect("a next link");
        let next = link
            .strip_prefix('<')
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(url, _)| url.to_string())
            .expect("rel=next");
        assert!(next.starts_with("/api/v1/cases?limit=2&cursor="), "{next}");
        let first: serde_json::Value = first.json().await.expect("json");
        let rest = app.get(next.trim_start_matches("/api/v1")).await;
        assert!(header(&rest, "link").is_none(), "the last page has no next");
        let rest: serde_json::Value = rest.json().await.expect("json");
        let ids: Vec<&str> = first
            .as_array()
            .into_iter()
            .chain(rest.as_array())
            .flatten()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(ids.len(), 3, "{}: every case once", app.engine);
        let bad = expect_status(
            app.get("/cases?cursor=not-a-cursor").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;
        assert_eq!(bad["errors"][0]["field"], "cursor");
        // A multi-byte character once panicked the cursor's reader (schemathesis found it).
        let bad = expect_status(
            app.get("/cases?cursor=%F0%99%A0%8D").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;
        assert_eq!(bad["errors"][0]["field"], "cursor");
    }
}

//! The web UI's sign-in, through a real HTTP client with a cookie jar.

use crate::helpers::{spawn_apps, TestApp, PASSWORD};
use reqwest::{Method, StatusCode};
use seldinger_domain::access::Role;

pub(crate) fn site(app: &TestApp) -> String {
    app.base.trim_end_matches("/api/v1").to_string()
}

pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

/// The hidden CSRF field's value in a page.
pub(crate) fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    html.split_once(marker)
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn signing_in_and_out_through_the_form() {
    for app in spawn_apps().await {
        let browser = browser();
        let form = browser
            .get(format!("{}/login", site(&app)))
            .send()
            .await
            .expect("get");
        assert_eq!(form.status(), StatusCode::OK);
        let csp = form
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"),
            "{csp}"
        );
        let html = form.text().await.expect("html");
        let token = csrf_field(&html);
        assert_eq!(token.len(), 43, "the form carries a CSRF token");

        let home = browser
            .post(format!("{}/login", site(&app)))
            .form(&[
                ("username", "ir_nurse"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(home.status(), StatusCode::OK, "{}", app.engine);
        assert_eq!(home.url().path(), "/board", "a nurse starts on the board");
        let html = home.text().await.expect("html");
        assert!(html.contains("ir_nurse (ir_nurse)"), "{html}");
        assert!(
            html.contains(r#"href="/board""#) && !html.contains(r#"href="/vetting""#),
            "the navigation shows only what the role may use: {html}"
        );

        let out = browser
            .post(format!("{}/logout", site(&app)))
            .form(&[("csrf_token", csrf_field(&html))])
            .send()
            .await
            .expect("post");
        assert_eq!(out.url().path(), "/login");
        let again = browser
            .get(format!("{}/", site(&app)))
            .send()
            .await
            .expect("get");
        assert_eq!(again.url().path(), "/login", "signed out");
    }
}

#[tokio::test]
async fn the_form_refuses_a_missing_token_and_a_wrong_password_keeping_the_escaped_username() {
    for app in spawn_apps().await {
        let forged = browser()
            .post(format!("{}/login", site(&app)))
            .form(&[
                ("username", "ir_nurse"),
                ("password", PASSWORD),
                ("csrf_token", "forged"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert!(forged
            .text()
            .await
            .expect("html")
            .contains("The form had expired"));

        let browser = browser();
        let html = browser
            .get(format!("{}/login", site(&app)))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("html");
        let wrong = browser
            .post(format!("{}/login", site(&app)))
            .form(&[
                ("username", "<b>ir_nurse</b>"),
                ("password", "not-the-password"),
                ("csrf_token", &csrf_field(&html)),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let html = wrong.text().await.expect("html");
        assert!(html.contains("the username or password is wrong"), "{html}");
        assert!(!html.contains("<b>ir_nurse</b>"), "user input is escaped");
        assert!(
            html.contains("ir_nurse"),
            "the username is kept for the next try"
        );
    }
}

/// A cookie-jar client signed in through the form as `user`.
pub(crate) async fn signed_in(app: &TestApp, user: &str) -> reqwest::Client {
    let client = browser();
    let form = client
        .get(format!("{}/login", site(app)))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    let signed = client
        .post(format!("{}/login", site(app)))
        .form(&[
            ("username", user),
            ("password", PASSWORD),
            ("csrf_token", &csrf_field(&form)),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(signed.status(), StatusCode::OK);
    client
}

#[tokio::test]
async fn the_department_day_and_the_times_on_its_pages_are_in_its_time_zone() {
    for db in seldinger_store::testing::engines().await {
        // 13 hours ahead of UTC in November: the test clock's 07:30 UTC is 20:30 there.
        let app = crate::helpers::spawn_app_in(db, "Pacific/Auckland").await;
        // 09:00 on the 25th in Auckland is 20:00 on the 24th in UTC.
        let (patient_id, case_id) = app
            .booked_case("TZ-1", "us-1", "2026-11-24T20:00:00Z")
            .await;
        let listed = |body: &serde_json::Value| {
            body.as_array()
                .expect("list")
                .iter()
                .any(|c| c["id"] == case_id.as_str() || c["case_id"] == case_id.as_str())
        };
        for (path, expected) in [
            ("/cases?date=2026-11-25", true),
            ("/cases?date=2026-11-24", false),
            ("/readiness", true),
        ] {
            let body =
                crate::helpers::expect_status(app.get(path).await, StatusCode::OK, &app.engine)
                    .await;
            assert_eq!(listed(&body), expected, "{}: {path}: {body}", app.engine);
        }

        let nurse = signed_in(&app, "ir_nurse").await;
        let page = |path: String| {
            let nurse = nurse.clone();
            async move {
                nurse
                    .get(path)
                    .send()
                    .await
                    .expect("get")
                    .text()
                    .await
                    .expect("html")
            }
        };
        let board = page(format!("{}/board?date=2026-11-25", site(&app))).await;
        assert!(
            board.contains(&case_id) && board.contains("09:00"),
            "{}: the case is on its local day at its local time",
            app.engine
        );
        let other_day = page(format!("{}/board?date=2026-11-24", site(&app))).await;
        assert!(!other_day.contains(&format!("/cases/{case_id}")));
        let case_page = page(format!("{}/cases/{case_id}", site(&app))).await;
        assert!(
            case_page.contains("2026-11-25 09:00 to 09:45 (Pacific/Auckland)"),
            "the banner names the zone"
        );
        assert!(case_page.contains("Drawn (Pacific/Auckland)"));

        // A time typed on the page is the wall clock's: 18:00 there is 05:00 UTC.
        let added = nurse
            .post(format!("{}/cases/{case_id}/do", site(&app)))
            .form(&[
                ("csrf_token", csrf_field(&case_page).as_str()),
                ("form", "lab"),
                ("patient_version", "1"),
                ("test", "inr"),
                ("value", "1.1"),
                ("unit", "{INR}"),
                ("drawn_at", "2026-11-24T18:00"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(added.status(), StatusCode::OK, "{}", app.engine);
        let record = crate::helpers::expect_status(
            app.get(&format!("/patients/{patient_id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(
            record["lab_results"][0]["drawn_at"], "2026-11-24T05:00:00Z",
            "{record}"
        );
    }
}

#[tokio::test]
async fn the_imaging_review_list_and_the_case_page_show_what_the_rooms_systems_reported() {
    use seldinger_domain::event::{Actor, EventMeta};
    use seldinger_domain::performed_step::{PerformedStep, StepReport, StepStatus};
    for db in seldinger_store::testing::engines().await {
        let app = crate::helpers::spawn_app(db).await;
        // Booked, with its dose report in (KAP 123 Gy·cm², fluoroscopy 754 s).
        let (case_id, _) = crate::dose::booked_embolization(&app).await;
        crate::dose::ingest(&app, "2.25.7001", "SDM100037", "0.81").await;
        // A step the angio system began before the case's time-out was recorded.
        let report = StepReport {
            status: Some(StepStatus::InProgress),
            station_ae_title: Some("ANGIO1".into()),
            modality: Some("XA".into()),
            step_id: Some("PPS7".into()),
            started_at: Some(crate::helpers::now()),
            ..Default::default()
        };
        let mut step =
            PerformedStep::create("1.2.826.0.1.3680043.10.9.1", &report, crate::helpers::now())
                .expect("step");
        step.case_id = Some(case_id.parse().expect("case id"));
        step.review = Some("imaging began on ANGIO1 before the time-out".into());
        // The system's own figures: the same KAP, a fluoroscopy time that is not.
        step.dose.dose_area_product_gy_m2 = Some(0.0123);
        step.dose.fluoroscopy_time_s = Some(600.0);
        app._db
            .store
            .record_performed_step(
                &step,
                seldinger_store::StepMessage::Create,
                &report,
                &EventMeta {
                    actor: Actor::parse("dicom:ANGIO1").expect("actor"),
                    at: crate::helpers::now(),
                    reason: None,
                },
                &[],
            )
            .await
            .expect("stored");

        let radiographer = signed_in(&app, "radiographer").await;
        let list = radiographer
            .get(format!("{}/imaging", site(&app)))
            .send()
            .await
            .expect("get");
        assert_eq!(list.status(), StatusCode::OK, "{}", app.engine);
        let html = list.text().await.expect("html");
        assert!(
            html.contains("before the time-out"),
            "{}: {html}",
            app.engine
        );
        assert!(
            html.contains(&format!("/cases/{case_id}")),
            "{}",
            app.engine
        );
        assert!(html.contains("SDM100037"), "{}", app.engine);

        let case = radiographer
            .get(format!("{}/cases/{case_id}", site(&app)))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("html");
        assert!(
            case.contains("Imaging reported by the room"),
            "{}",
            app.engine
        );
        assert!(
            case.contains("KAP 123.000 Gy·cm²"),
            "{}: {case}",
            app.engine
        );
        assert!(
            case.contains("Kerma-area product reported in the performed steps")
                && case.contains("agrees with the dose report"),
            "{}: {case}",
            app.engine
        );
        assert!(
            case.contains("600.000 s — differs from the dose report (754.000 s)"),
            "{}: {case}",
            app.engine
        );

        // The board's card says imaging waits for review (the badge moves with the steps).
        let board = radiographer
            .get(format!("{}/board?date=2026-11-24", site(&app)))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("html");
        let card = board
            .split(&format!("data-case=\"{case_id}\""))
            .nth(1)
            .and_then(|rest| rest.split("</li>").next())
            .expect("the case's card");
        assert!(
            card.contains("imaging-review")
                && card.contains("Imaging to review: imaging began on ANGIO1 before the time-out"),
            "{}: {card}",
            app.engine
        );

        // The physicist's dose page lists the case for its disagreeing fluoroscopy time only.
        let physicist = signed_in(&app, "medical_physicist").await;
        let dose = physicist
            .get(format!(
                "{}/dose?from=2026-01-01&until=2026-12-31",
                site(&app)
            ))
            .send()
            .await
            .expect("get");
        assert_eq!(dose.status(), StatusCode::OK, "{}", app.engine);
        let dose = dose.text().await.expect("html");
        let section = dose
            .split("id=\"differing\"")
            .nth(1)
            .and_then(|rest| rest.split("</section>").next())
            .expect("the differing section");
        assert!(
            section.contains(&format!("data-case=\"{case_id}\""))
                && section.contains("Fluoroscopy time")
                && section.contains("600.000 s")
                && section.contains("754.000 s")
                && !section.contains("Kerma-area product"),
            "{}: {section}",
            app.engine
        );

        // Not the scheduler's work.
        let scheduler = signed_in(&app, "scheduler").await;
        let refused = scheduler
            .get(format!("{}/imaging", site(&app)))
            .send()
            .await
            .expect("get");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{}", app.engine);
        // A page refused is on the trail as an endpoint refused is.
        let trail = app
            .request_as(
                seldinger_domain::access::Role::Administrator,
                reqwest::Method::GET,
                "/audit?username=scheduler",
            )
            .send()
            .await
            .expect("audit")
            .json::<serde_json::Value>()
            .await
            .expect("json");
        let refusals = trail
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|r| r["outcome"] == "denied" && r["resource_type"] == "page")
                    .count()
            })
            .unwrap_or_default();
        assert_eq!(refusals, 1, "{}: {trail}", app.engine);
    }
}

/// The signed report as a PDF: read by poppler's `pdftotext` (an independent reader) when the
/// suite installed it, else checked for its PDF header only.
#[tokio::test]
async fn the_signed_report_downloads_as_a_pdf_an_independent_reader_can_read() {
    for app in spawn_apps().await {
        let engine = &app.engine;
        let (case_id, _) = crate::helpers::filter_placed(&app, "PDF-1", true).await;
        let path = format!("/cases/{case_id}/report");
        for (version, body) in [
            (
                0,
                serde_json::json!({"action": "sign", "findings": "Filter infrarenal, apex at L2.",
                    "impression": "Retrievable IVC filter placed; retrieval review booked."}),
            ),
            (
                1,
                serde_json::json!({"action": "addendum", "reason": "dose report arrived after signing",
                    "text": "Dose as reported by the room."}),
            ),
        ] {
            let mut body = body;
            body["expected_version"] = serde_json::json!(version);
            let answer = app
                .request_as(
                    seldinger_domain::access::Role::IrPhysician,
                    reqwest::Method::POST,
                    &path,
                )
                .json(&body)
                .send()
                .await
                .expect("post");
            assert_eq!(answer.status(), StatusCode::OK, "{engine}");
        }
        let client = signed_in(&app, "ir_nurse").await;
        let answer = client
            .get(format!("{}/cases/{case_id}/report.pdf", site(&app)))
            .send()
            .await
            .expect("pdf");
        assert_eq!(answer.status(), StatusCode::OK, "{engine}");
        assert_eq!(
            answer
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/pdf")
        );
        let bytes = answer.bytes().await.expect("bytes");
        assert!(bytes.starts_with(b"%PDF-"), "{engine}");
        // Outside the caller's scope it reads like a case that does not exist.
        let referrer = signed_in(&app, "referring_clinician").await;
        let refused = referrer
            .get(format!("{}/cases/{case_id}/report.pdf", site(&app)))
            .send()
            .await
            .expect("pdf");
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{engine}");

        let required = std::env::var("SELDINGER_REQUIRE_PDF_READER").is_ok_and(|v| v == "1");
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), &bytes).expect("write");
        match std::process::Command::new("pdftotext")
            .arg("-layout")
            .arg(file.path())
            .arg("-")
            .output()
        {
            Ok(out) => {
                assert!(out.status.success(), "{engine}: pdftotext refuses the PDF");
                let text = String::from_utf8_lossy(&out.stdout);
                for wanted in [
                    "Procedure report: IVC filter placement",
                    "Testperson, Robin",
                    "MRN PDF-1",
                    "Status: FINAL, WITH ADDENDA",
                    "IMPRESSION",
                    "Retrievable IVC filter placed; retrieval review booked.",
                    "ADDENDUM by ir_physician",
                    "Dose as reported by the room.",
                ] {
                    assert!(text.contains(wanted), "{engine}: {wanted} not in\n{text}");
                }
            }
            Err(e) => assert!(!required, "pdftotext: {e}"),
        }
    }
}

#[tokio::test]
async fn the_boards_refresh_is_unchanged_from_its_stamp_until_something_it_shows_changes() {
    for db in seldinger_store::testing::engines().await {
        let clock = std::sync::Arc::new(seldinger_web::ManualClock::new(crate::helpers::now()));
        let app = crate::helpers::spawn_app_with_clock(
            db,
            seldinger_web::AuthPolicy::default(),
            clock.clone(),
        )
        .await;
        let (patient_id, case_id) = app
            .booked_case("ETAG-1", "us-1", "2026-11-24T13:00:00Z")
            .await;
        let nurse = signed_in(&app, "ir_nurse").await;
        let lanes = format!("{}/board/lanes?date=2026-11-24", site(&app));
        let refresh = |etag: Option<String>| {
            let mut request = nurse.get(&lanes);
            if let Some(etag) = etag {
                request = request.header("if-none-match", etag);
            }
            async move {
                let response = request.send().await.expect("refresh");
                let status = response.status();
                let etag = response
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                (status, etag, response.text().await.unwrap_or_default())
            }
        };
        let board_reads = || async {
            let audit = app
                .request_as(Role::Administrator, Method::GET, "/audit?username=ir_nurse")
                .send()
                .await
                .expect("audit");
            crate::helpers::expect_status(audit, StatusCode::OK, &app.engine)
                .await
                .as_array()
                .expect("list")
                .iter()
                .filter(|e| e["action"] == "read_board")
                .count()
        };

        // (Signing in lands the nurse on the board: counted from here.)
        let before = board_reads().await;
        let (status, first, html) = refresh(None).await;
        assert_eq!(status, StatusCode::OK, "{}", app.engine);
        assert!(html.contains(&case_id), "{}: {html}", app.engine);
        let reads = board_reads().await;
        assert_eq!(
            reads,
            before + 1,
            "{}: the card shown is audited",
            app.engine
        );
        // Unchanged: 304 with the same tag, nothing rebuilt and nothing new audited.
        let (status, again, html) = refresh(Some(first.clone())).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED, "{}", app.engine);
        assert_eq!(again, first);
        assert!(html.is_empty());
        assert_eq!(board_reads().await, reads, "{}", app.engine);
        // Fetched whole again, unchanged: the same board (kept, not rebuilt), audited again.
        let (status, same, first_html) = refresh(None).await;
        assert_eq!((status, same), (StatusCode::OK, first.clone()));
        let reads = board_reads().await;
        assert_eq!(reads, before + 2, "{}: every view is audited", app.engine);
        let (_, _, again_html) = refresh(None).await;
        assert_eq!(again_html, first_html, "{}", app.engine);
        let reads = board_reads().await;

        // A lab on the patient's record is a change the card may show (its readiness).
        let lab = serde_json::json!({"expected_version": 1, "test": "inr", "value": 1.1,
                                     "unit": "{INR}", "drawn_at": "2026-11-24T06:00:00Z"});
        crate::helpers::expect_status(
            app.post(&format!("/patients/{patient_id}/lab-results"), &lab)
                .await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        let (status, after_lab, html) = refresh(Some(first.clone())).await;
        assert_eq!(status, StatusCode::OK, "{}: a change is sent", app.engine);
        assert_ne!(after_lab, first);
        assert!(html.contains(&case_id));
        assert_ne!(html, first_html, "{}: built anew with the lab", app.engine);
        assert_eq!(board_reads().await, reads + 1, "{}", app.engine);
        assert_eq!(
            refresh(Some(after_lab.clone())).await.0,
            StatusCode::NOT_MODIFIED
        );
        // Time-based rules (a lab's age) move with the minute: so does the tag.
        clock.advance(chrono::Duration::minutes(1));
        let (status, next_minute, _) = refresh(Some(after_lab.clone())).await;
        assert_eq!(status, StatusCode::OK, "{}", app.engine);
        assert_ne!(next_minute, after_lab);
        // Another reader's tag is their own (their scope): a physician's differs.
        let physician = signed_in(&app, "ir_physician").await;
        let theirs = physician
            .get(&lanes)
            .header("if-none-match", next_minute.clone())
            .send()
            .await
            .expect("refresh");
        assert_eq!(theirs.status(), StatusCode::OK, "{}", app.engine);
    }
}

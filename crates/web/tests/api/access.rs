//! Who may do what, tested through the front door: every endpoint for every role, sessions and
//! CSRF, lock-out, the referrer's scope and break-glass, and the audit trail they leave.

use crate::helpers::{
    accept_event, expect_status, ids_of, patient_body, spawn_app, spawn_app_with, spawn_apps,
    TestApp, PASSWORD,
};
use reqwest::{Method, StatusCode};
use seldinger_domain::access::{grant, Role};
use seldinger_web::{Rule, ENDPOINTS};
use serde_json::{json, Value};

/// Fills an endpoint's path parameters with records that exist.
fn concrete(path: &str, patient_id: &str, case_id: &str, referral_id: &str) -> String {
    let path = path.trim_start_matches("/api/v1");
    if path.starts_with("/patients/") {
        path.replace("{id}", patient_id)
    } else if path.starts_with("/cases/") {
        path.replace("{id}", case_id)
    } else if path.starts_with("/referrals/") {
        path.replace("{id}", referral_id)
    } else if path.starts_with("/tokens/") {
        path.replace("{id}", "7f0c9a52-0f6e-4a43-9c1e-000000000000")
    } else {
        path.replace("{username}", "nobody")
    }
}

#[tokio::test]
async fn every_endpoint_for_every_role_is_allowed_or_refused_as_the_matrix_says() {
    for app in spawn_apps().await {
        let patient = app.patient("MATRIX-1").await;
        let patient_id = patient["id"].as_str().expect("id").to_string();
        let received = app.referral(&patient_id).await;
        let case_id = received["case"]["id"].as_str().expect("id").to_string();
        let referral_id = received["referral"]["id"].as_str().expect("id").to_string();
        for (method, path, rule) in ENDPOINTS {
            let url = concrete(path, &patient_id, &case_id, &referral_id);
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            // Without credentials: only public endpoints answer.
            let anonymous = app
                .client
                .request(method.clone(), format!("{}{url}", app.base))
                .json(&json!({}))
                .send()
                .await
                .expect("request");
            if *rule != Rule::Public {
                assert_eq!(
                    anonymous.status(),
                    StatusCode::UNAUTHORIZED,
                    "{} {method} {path} without credentials",
                    app.engine
                );
            }
            for role in Role::ALL {
                let status = app
                    .request_as(role, method.clone(), &url)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("request")
                    .status();
                let allowed = match rule {
                    Rule::Public | Rule::SignedIn => true,
                    Rule::Requires(permission) => grant(role, *permission).is_some(),
                };
                if allowed {
                    assert!(
                        status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                        "{}: {role} should pass {method} {path}, got {status}",
                        app.engine
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{}: {role} must be refused {method} {path}",
                        app.engine
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_access_table_names_every_route_in_the_api_description() {
    let doc =
        serde_json::to_value(<seldinger_web::ApiDoc as utoipa::OpenApi>::openapi()).expect("json");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let table: Vec<(String, String)> = ENDPOINTS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    for route in &documented {
        assert!(
            table.contains(route),
            "{route:?} is served but missing from the access table"
        );
    }
    for route in &table {
        assert!(
            documented.contains(route),
            "{route:?} is in the access table but not in the OpenAPI document"
        );
    }
}

async fn sign_in(
    app: &TestApp,
    username: &str,
    password: &str,
) -> (reqwest::Client, reqwest::Response) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let response = client
        .post(format!("{}/session", app.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("request");
    (client, response)
}

#[tokio::test]
async fn a_cookie_session_needs_the_csrf_token_to_change_anything() {
    for app in spawn_apps().await {
        let (client, response) = sign_in(&app, "ir_nurse", PASSWORD).await;
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let session = expect_status(response, StatusCode::CREATED, &app.engine).await;
        assert_eq!(session["role"], "ir_nurse");
        let csrf = session["csrf_token"].as_str().expect("csrf").to_string();

        let read = client
            .get(format!("{}/patients?name=nobody", app.base))
            .send()
            .await
            .expect("request");
        expect_status(read, StatusCode::OK, &app.engine).await;
        let forged = client
            .post(format!("{}/patients", app.base))
            .json(&patient_body("CSRF-1"))
            .send()
            .await
            .expect("request");
        let problem = expect_status(forged, StatusCode::FORBIDDEN, &app.engine).await;
        assert_eq!(problem["type"], "urn:seldinger:problem:csrf");
        let wrong = client
            .post(format!("{}/patients", app.base))
            .header("x-csrf-token", "guess")
            .json(&patient_body("CSRF-1"))
            .send()
            .await
            .expect("request");
        expect_status(wrong, StatusCode::FORBIDDEN, &app.engine).await;
        let real = client
            .post(format!("{}/patients", app.base))
            .header("x-csrf-token", &csrf)
            .json(&patient_body("CSRF-1"))
            .send()
            .await
            .expect("request");
        let patient = expect_status(real, StatusCode::CREATED, &app.engine).await;
        let history = expect_status(
            app.get(&format!(
                "/patients/{}/history",
                patient["id"].as_str().unwrap_or("")
            ))
            .await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(
            history[0]["actor"], "ir_nurse",
            "the event names the signed-in user"
        );

        let out = client
            .delete(format!("{}/session", app.base))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .expect("request");
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        let after = client
            .get(format!("{}/patients?name=nobody", app.base))
            .send()
            .await
            .expect("request");
        expect_status(after, StatusCode::UNAUTHORIZED, &app.engine).await;
    }
}

/// Signs in from a given loopback address (127.0.0.x all reach the server on Linux).
async fn sign_in_from(
    app: &TestApp,
    from: [u8; 4],
    username: &str,
    password: &str,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .build()
        .expect("client");
    client
        .post(format!("{}/session", app.base))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("request")
}

/// The scheduler's right password from `slowed_from` waits (the problem says `wait`); from
/// `own` it signs in, and their token goes on working. The problem.
async fn slowed_there_not_at_the_users_own(
    app: &TestApp,
    slowed_from: [u8; 4],
    own: [u8; 4],
    wait: &str,
) -> serde_json::Value {
    let response = sign_in_from(app, slowed_from, "scheduler", PASSWORD).await;
    let slowed = expect_status(response, StatusCode::TOO_MANY_REQUESTS, &app.engine).await;
    assert!(
        slowed["detail"].as_str().is_some_and(|d| d.contains(wait)),
        "{slowed}"
    );
    let response = sign_in_from(app, own, "scheduler", PASSWORD).await;
    expect_status(response, StatusCode::CREATED, &app.engine).await;
    let token = app
        .request_as(Role::Scheduler, Method::GET, "/session")
        .send()
        .await
        .expect("request");
    expect_status(token, StatusCode::OK, &app.engine).await;
    slowed
}

#[tokio::test]
async fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
    for app in spawn_apps().await {
        // No proxy is trusted here: a guesser naming a new address in each X-Forwarded-For is
        // still one address, and slowed after five.
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for n in 0..6 {
            let answer = client
                .post(format!("{}/session", app.base))
                .header("x-forwarded-for", format!("10.9.8.{n}"))
                .json(&json!({"username": "scheduler", "password": "wrong-password-000"}))
                .send()
                .await
                .expect("request");
            statuses.push(answer.status().as_u16());
        }
        assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "{}", app.engine);
    }
}

/// Guessing one account's password from many addresses, one try each, never meets the
/// per-address limit: the account's failures from every address together then slow its sign-in
/// from any address it has never signed in from, while the user's own workstation signs in and
/// their token goes on working.
#[tokio::test]
async fn guessing_spread_over_many_addresses_is_bounded_per_account() {
    for db in seldinger_store::testing::engines().await {
        let policy = seldinger_web::AuthPolicy {
            account_lockout_after: 6,
            ..Default::default()
        };
        let app = crate::helpers::spawn_app_with(db, policy).await;
        const WORKSTATION: [u8; 4] = [127, 0, 0, 1];
        let response = sign_in_from(&app, WORKSTATION, "scheduler", PASSWORD).await;
        expect_status(response, StatusCode::CREATED, &app.engine).await;
        for n in 0..6u8 {
            let response =
                sign_in_from(&app, [127, 0, 1, n], "scheduler", "wrong-password-000").await;
            expect_status(response, StatusCode::UNAUTHORIZED, &app.engine).await;
        }
        // A new address, even with the right password, waits; the user's own workstation
        // signs in, and their token still works.
        slowed_there_not_at_the_users_own(&app, [127, 0, 2, 1], WORKSTATION, "wait").await;
        // Another account is not slowed by it.
        let response = sign_in_from(&app, [127, 0, 2, 1], "ir_nurse", PASSWORD).await;
        expect_status(response, StatusCode::CREATED, &app.engine).await;
    }
}

/// Behind the documented TLS-terminating proxy (trusted with --trusted-proxies), a client that
/// came over HTTPS gets a `Secure` session cookie and HSTS, as under TLS; anyone else saying
/// `X-Forwarded-Proto: https` is not believed.
#[tokio::test]
async fn https_through_a_trusted_proxy_gets_a_secure_cookie_and_hsts_and_no_one_else_does() {
    for trusted in [true, false] {
        let policy = seldinger_web::AuthPolicy {
            trusted_proxies: if trusted {
                vec![[127, 0, 0, 1].into()]
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let app =
            crate::helpers::spawn_app_with(seldinger_store::testing::sqlite().await, policy).await;
        let answer = reqwest::Client::new()
            .post(format!("{}/session", app.base))
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-for", "10.20.30.40")
            .json(&json!({"username": "scheduler", "password": PASSWORD}))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), StatusCode::CREATED);
        let cookie = answer
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let hsts = answer.headers().get("strict-transport-security").is_some();
        assert_eq!(
            cookie.contains("; Secure"),
            trusted,
            "trusted {trusted}: {cookie}"
        );
        assert_eq!(hsts, trusted, "trusted {trusted}");
    }
}

#[tokio::test]
async fn guessing_is_slowed_per_account_and_address_without_locking_the_user_out() {
    for app in spawn_apps().await {
        const GUESSER: [u8; 4] = [127, 0, 0, 7];
        const NURSE_STATION: [u8; 4] = [127, 0, 0, 1];
        for _ in 0..5 {
            let response = sign_in_from(&app, GUESSER, "scheduler", "wrong-password-000").await;
            let problem = expect_status(response, StatusCode::UNAUTHORIZED, &app.engine).await;
            assert_eq!(problem["type"], "urn:seldinger:problem:sign-in-failed");
        }
        // From the guesser's address, even the right password now waits, with how long; the
        // user, elsewhere, signs in, and their token goes on working (nothing was revoked).
        let slowed =
            slowed_there_not_at_the_users_own(&app, GUESSER, NURSE_STATION, "wait 30 s").await;
        // An unknown user is answered exactly alike, slowed after the same count.
        for _ in 0..5 {
            let response = sign_in_from(&app, GUESSER, "no-such-user", PASSWORD).await;
            let unknown = expect_status(response, StatusCode::UNAUTHORIZED, &app.engine).await;
            assert_eq!(
                unknown["detail"],
                "the username or password is wrong, or the account is disabled"
            );
        }
        let response = sign_in_from(&app, GUESSER, "no-such-user", PASSWORD).await;
        let unknown = expect_status(response, StatusCode::TOO_MANY_REQUESTS, &app.engine).await;
        assert_eq!(unknown["detail"], slowed["detail"]);

        let audit = app
            .request_as(Role::Administrator, Method::GET, "/audit")
            .send()
            .await
            .expect("request");
        let entries = expect_status(audit, StatusCode::OK, &app.engine).await;
        let rows = entries.as_array().expect("list");
        let count = |user: &str, action: &str| {
            rows.iter()
                .filter(|e| e["username"] == user && e["action"] == action)
                .count()
        };
        assert_eq!(count("scheduler", "login_failed"), 5, "{}", app.engine);
        assert_eq!(count("scheduler", "login"), 1);
        // What was typed as an unknown username is not kept.
        assert_eq!(count("(no such user)", "login_failed"), 5);
        assert!(!entries.to_string().contains("no-such-user"));
        assert_eq!(
            count("(not checked: too many attempts)", "login_throttled"),
            2
        );
    }
}

#[tokio::test]
async fn a_referrer_sees_only_their_own_unless_they_break_glass_which_is_flagged() {
    for app in spawn_apps().await {
        // The physician's referral, and the referrer's own.
        let others_case = app.new_case("SCOPE-1").await;
        let own_case = app.new_case_as(Role::ReferringClinician, "SCOPE-2").await;

        let listed = expect_status(
            app.request_as(Role::ReferringClinician, Method::GET, "/cases")
                .send()
                .await
                .expect("request"),
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(ids_of(&listed), [own_case.as_str()], "{}", app.engine);

        let hidden = app
            .request_as(
                Role::ReferringClinician,
                Method::GET,
                &format!("/cases/{others_case}"),
            )
            .send()
            .await
            .expect("request");
        let hidden = expect_status(hidden, StatusCode::NOT_FOUND, &app.engine).await;
        let missing = app
            .request_as(
                Role::ReferringClinician,
                Method::GET,
                "/cases/7f0c9a52-0f6e-4a43-9c1e-000000000000",
            )
            .send()
            .await
            .expect("request");
        let missing = expect_status(missing, StatusCode::NOT_FOUND, &app.engine).await;
        assert_eq!(
            (&hidden["type"], &hidden["title"]),
            (&missing["type"], &missing["title"]),
            "refusal reads as absence"
        );

        let opened = app
            .request_as(
                Role::ReferringClinician,
                Method::GET,
                &format!("/cases/{others_case}"),
            )
            .header(
                "x-break-glass-reason",
                "patient in ED, treating team unreachable",
            )
            .send()
            .await
            .expect("request");
        expect_status(opened, StatusCode::OK, &app.engine).await;
        let too_short = app
            .request_as(
                Role::ReferringClinician,
                Method::GET,
                &format!("/cases/{others_case}"),
            )
            .header("x-break-glass-reason", "because")
            .send()
            .await
            .expect("request");
        expect_status(too_short, StatusCode::BAD_REQUEST, &app.engine).await;

        let flagged = app
            .request_as(Role::QualityLead, Method::GET, "/audit?break_glass=true")
            .send()
            .await
            .expect("request");
        let flagged = expect_status(flagged, StatusCode::OK, &app.engine).await;
        assert_eq!(
            flagged.as_array().map(Vec::len),
            Some(1),
            "{}: {flagged}",
            app.engine
        );
        assert_eq!(flagged[0]["username"], "referring_clinician");
        // The quality lead sees that a reason was given, under a pseudonym for the record, and
        // neither the case's id nor the reason's words (de-identified, issue 11).
        let pseudonym = flagged[0]["resource_id"].as_str().unwrap_or_default();
        assert!(pseudonym.starts_with("rec-"), "{flagged}");
        assert!(!flagged.to_string().contains(others_case.as_str()));
        assert!(!flagged.to_string().contains("treating team"));
        // The administrator reviews the reason, against the same pseudonym.
        let reviewed = app
            .request_as(Role::Administrator, Method::GET, "/audit?break_glass=true")
            .send()
            .await
            .expect("request");
        let reviewed = expect_status(reviewed, StatusCode::OK, &app.engine).await;
        assert_eq!(
            reviewed[0]["break_glass_reason"],
            "patient in ED, treating team unreachable"
        );
        assert_eq!(reviewed[0]["resource_id"], pseudonym);

        // A scheduler cannot break glass into what their role does not allow at all.
        let vet = app
            .request_as(
                Role::Scheduler,
                Method::POST,
                &format!("/cases/{own_case}/transitions"),
            )
            .json(&json!({"expected_version": 1, "event": accept_event()}))
            .send()
            .await
            .expect("request");
        let problem = expect_status(vet, StatusCode::FORBIDDEN, &app.engine).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or("")
                .contains("vet_cases"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn a_referral_is_not_a_key_to_the_rest_of_the_record() {
    for app in spawn_apps().await {
        // A patient the department knows: a case, a lab and a drug on their record.
        let patient = app.patient("KEY-1").await;
        let patient_id = patient["id"].as_str().expect("id").to_string();
        let earlier_case = app.referral(&patient_id).await["case"]["id"]
            .as_str()
            .expect("case")
            .to_string();
        let lab = json!({"expected_version": 1, "test": "inr", "value": 1.1, "unit": "{INR}",
                         "drawn_at": "2026-11-23T08:00:00Z"});
        let added = app
            .post(&format!("/patients/{patient_id}/lab-results"), &lab)
            .await;
        expect_status(added, StatusCode::CREATED, &app.engine).await;

        // A referring clinician refers the same patient: allowed (that is how patients reach IR).
        let received = app.referral_as(Role::ReferringClinician, &patient_id).await;
        let own_case = received["case"]["id"].as_str().expect("case").to_string();
        let get = |path: String| {
            app.request_as(Role::ReferringClinician, Method::GET, &path)
                .send()
        };
        // Their referral and its case are theirs...
        let own = get(format!("/cases/{own_case}")).await.expect("request");
        expect_status(own, StatusCode::OK, &app.engine).await;
        // The case's page too, without the record's labs and drugs; the physician's has them.
        let page = |user: &'static str| {
            let (app, own_case) = (&app, &own_case);
            async move {
                crate::pages::signed_in(app, user)
                    .await
                    .get(format!("{}/cases/{own_case}", crate::pages::site(app)))
                    .send()
                    .await
                    .expect("page")
                    .text()
                    .await
                    .expect("html")
            }
        };
        for (user, shows_record) in [("referring_clinician", false), ("ir_physician", true)] {
            let html = page(user).await;
            let told_why = html.contains("which your role sees only for patients you registered");
            assert_eq!(
                (html.contains("{INR}"), told_why),
                (shows_record, !shows_record),
                "{} {user}: {html}",
                app.engine
            );
        }
        // ...the rest of the record is not: its details with labs and drugs, its history, the
        // earlier case, and the list of the patient's cases shows only their own.
        for path in [
            format!("/patients/{patient_id}"),
            format!("/patients/{patient_id}/history"),
            format!("/cases/{earlier_case}"),
            format!("/cases/{earlier_case}/history"),
        ] {
            let hidden = get(path.clone()).await.expect("request");
            expect_status(hidden, StatusCode::NOT_FOUND, &app.engine).await;
        }
        let listed = get(format!("/cases?patient_id={patient_id}"))
            .await
            .expect("request");
        let listed = expect_status(listed, StatusCode::OK, &app.engine).await;
        assert_eq!(ids_of(&listed), [own_case.as_str()], "{}", app.engine);
        // Break-glass opens the record, with the reason flagged.
        let opened = app
            .request_as(
                Role::ReferringClinician,
                Method::GET,
                &format!("/patients/{patient_id}"),
            )
            .header("x-break-glass-reason", "seeing the patient in clinic today")
            .send()
            .await
            .expect("request");
        expect_status(opened, StatusCode::OK, &app.engine).await;
        // A patient the referrer registered themselves is theirs to read whole.
        let registered = app.patient_as(Role::ReferringClinician, "KEY-2").await;
        let mine = get(format!(
            "/patients/{}",
            registered["id"].as_str().expect("id")
        ))
        .await
        .expect("request");
        expect_status(mine, StatusCode::OK, &app.engine).await;
    }
}

#[tokio::test]
async fn a_refused_registration_is_audited_and_names_no_record() {
    for app in spawn_apps().await {
        let first = app.patient("DUP-1").await;
        let again = app
            .request_as(Role::ReferringClinician, Method::POST, "/patients")
            .json(&patient_body("DUP-1"))
            .send()
            .await
            .expect("request");
        let problem = expect_status(again, StatusCode::CONFLICT, &app.engine).await;
        let first_id = first["id"].as_str().expect("id");
        assert!(!problem.to_string().contains(first_id), "{problem}");
        let trail = app
            .request_as(
                Role::Administrator,
                Method::GET,
                "/audit?username=referring_clinician",
            )
            .send()
            .await
            .expect("request");
        let trail = expect_status(trail, StatusCode::OK, &app.engine).await;
        let denied: Vec<&Value> = trail
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["action"] == "create" && r["outcome"] == "denied")
            .collect();
        assert_eq!(denied.len(), 1, "{}: {trail}", app.engine);
        assert!(
            denied[0]["patient_id"]
                .as_str()
                .is_some_and(|p| p.starts_with("pt-")),
            "the attempt names the existing patient, by pseudonym: {trail}"
        );
    }
}

#[tokio::test]
async fn every_look_at_a_patient_is_in_the_audit_log_and_exports_as_csv() {
    for app in spawn_apps().await {
        let patient = app.patient("AUD-1").await;
        let id = patient["id"].as_str().expect("id").to_string();
        expect_status(
            app.get(&format!("/patients/{id}")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        expect_status(
            app.get("/patients?mrn=AUD-1").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let entries = expect_status(
            app.request_as(
                Role::Administrator,
                Method::GET,
                &format!("/audit?patient_id={id}"),
            )
            .send()
            .await
            .expect("request"),
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let actions: Vec<&str> = entries
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(actions, ["create", "read", "search"], "{}", app.engine);
        assert!(entries
            .as_array()
            .expect("list")
            .iter()
            .all(|e| e["username"] == "ir_physician" && e["client_addr"] == "127.0.0.1"));

        let csv = app
            .request_as(
                Role::QualityLead,
                Method::GET,
                &format!("/audit?patient_id={id}&format=csv"),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(
            csv.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/csv; charset=utf-8")
        );
        let text = csv.text().await.expect("body");
        let mut lines = text.lines();
        assert!(lines
            .next()
            .unwrap_or("")
            .starts_with("seq,at,username,role,action"));
        // The three accesses, and the administrator's own look at the trail for this patient.
        assert_eq!(lines.count(), 4);

        // The trail comes in pages, oldest first, with the total and a link to the next.
        let mut url = format!("/audit?patient_id={id}&limit=2");
        let mut seqs = Vec::new();
        let mut pages = 0;
        while pages < 10 {
            let response = app
                .request_as(Role::Administrator, Method::GET, &url)
                .send()
                .await
                .expect("request");
            let total = response
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.split_once("/api/v1").map(|(_, rest)| rest.to_string()))
                .and_then(|rest| rest.split_once('>').map(|(u, _)| u.to_string()));
            let page = expect_status(response, StatusCode::OK, &app.engine).await;
            if pages == 0 {
                // Five by now: the four above and the CSV export's own look.
                assert_eq!(total.as_deref(), Some("5"), "{}", app.engine);
            }
            seqs.extend(
                page.as_array()
                    .expect("page")
                    .iter()
                    .map(|e| e["seq"].clone()),
            );
            pages += 1;
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        // Each page read is itself on this patient's trail, so later pages find those too; the
        // walk still ends, and no entry comes twice or out of order.
        assert!(
            pages < 10 && seqs.len() >= 5,
            "{}: {pages} pages {seqs:?}",
            app.engine
        );
        assert!(
            seqs.windows(2).all(|w| w[0].as_i64() < w[1].as_i64()),
            "{}: in order, none twice: {seqs:?}",
            app.engine
        );
    }
}

#[tokio::test]
async fn revoked_tokens_and_disabled_users_are_shut_out() {
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let created = app
        .request_as(Role::Administrator, Method::POST, "/tokens")
        .json(&json!({"username": "interface", "name": "order system bridge"}))
        .send()
        .await
        .expect("request");
    let created = expect_status(created, StatusCode::CREATED, &app.engine).await;
    let token = created["token"].as_str().expect("token").to_string();
    let with_token = |t: String| {
        app.client
            .get(format!("{}/cases", app.base))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(
        with_token(token.clone()).await.expect("request").status(),
        StatusCode::OK
    );
    let revoke = app
        .request_as(
            Role::Administrator,
            Method::DELETE,
            &format!("/tokens/{}", created["id"].as_str().unwrap_or("")),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        with_token(token).await.expect("request").status(),
        StatusCode::UNAUTHORIZED
    );

    let disable = app
        .request_as(Role::Administrator, Method::POST, "/users/ir_nurse/disable")
        .send()
        .await
        .expect("request");
    expect_status(disable, StatusCode::OK, &app.engine).await;
    let nurse = app
        .request_as(Role::IrNurse, Method::GET, "/cases")
        .send()
        .await
        .expect("request");
    assert_eq!(
        nurse.status(),
        StatusCode::UNAUTHORIZED,
        "a disabled user's tokens stop working"
    );
    let (_, login) = sign_in(&app, "ir_nurse", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    for response in [
        app.get("/health").await,
        app.get("/cases").await,
        app.client
            .get(format!("{}/cases", app.base))
            .send()
            .await
            .expect("request"),
    ] {
        let h = response.headers();
        assert_eq!(
            h.get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        assert!(h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .contains("frame-ancestors 'none'"));
        assert_eq!(
            h.get("referrer-policy").and_then(|v| v.to_str().ok()),
            Some("no-referrer")
        );
        assert_eq!(
            h.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        // Plain HTTP on loopback: no HSTS (it would pin localhost to TLS in the browser).
        assert!(h.get("strict-transport-security").is_none());
    }
}

#[tokio::test]
async fn idle_sessions_expire() {
    // With no idle allowance, the session is over by the next request (the test clock stands still).
    let policy = seldinger_web::AuthPolicy {
        session_idle: chrono::Duration::zero(),
        ..Default::default()
    };
    let app = spawn_app_with(seldinger_store::testing::sqlite().await, policy).await;
    let (client, response) = sign_in(&app, "ir_nurse", PASSWORD).await;
    expect_status(response, StatusCode::CREATED, &app.engine).await;
    let after = client
        .get(format!("{}/cases", app.base))
        .send()
        .await
        .expect("request");
    expect_status(after, StatusCode::UNAUTHORIZED, &app.engine).await;
}

#[tokio::test]
async fn the_boards_own_refresh_does_not_keep_an_unattended_session_alive() {
    let clock = std::sync::Arc::new(seldinger_web::ManualClock::new(crate::helpers::now()));
    let policy = seldinger_web::AuthPolicy::default();
    let idle = policy.session_idle;
    let app = crate::helpers::spawn_app_with_clock(
        seldinger_store::testing::sqlite().await,
        policy,
        clock.clone(),
    )
    .await;
    let site = app.base.trim_end_matches("/api/v1").to_string();
    let refresh = |client: &reqwest::Client| {
        client
            .get(format!("{site}/board/lanes"))
            .header("x-seldinger-refresh", "background")
            .send()
    };
    // A screen left on the board: it refreshes itself all along, nobody touches it.
    let (screen, response) = sign_in(&app, "ir_nurse", PASSWORD).await;
    expect_status(response, StatusCode::CREATED, &app.engine).await;
    // Someone at a desk: one page view half-way.
    let (desk, response) = sign_in(&app, "ir_physician", PASSWORD).await;
    expect_status(response, StatusCode::CREATED, &app.engine).await;
    let half = idle / 2 + chrono::Duration::minutes(1);
    clock.advance(half);
    assert_eq!(
        refresh(&screen).await.expect("refresh").status(),
        StatusCode::OK
    );
    let page = desk
        .get(format!("{site}/board"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    clock.advance(half);
    // The refreshes did not count as activity: the screen's session has timed out, and the
    // refresh is told so plainly (the page then says it timed out); the desk's is alive.
    let timed_out = refresh(&screen).await.expect("refresh");
    assert_eq!(timed_out.status(), StatusCode::UNAUTHORIZED);
    assert!(timed_out
        .text()
        .await
        .unwrap_or_default()
        .contains("without activity"));
    assert_eq!(
        refresh(&desk).await.expect("refresh").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address() {
    let policy = seldinger_web::AuthPolicy {
        login_attempts_per_minute: 3,
        ..Default::default()
    };
    let app = spawn_app_with(seldinger_store::testing::sqlite().await, policy).await;
    for _ in 0..3 {
        let (_, response) = sign_in(&app, "no-such-user", "whatever-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, response) = sign_in(&app, "ir_nurse", PASSWORD).await;
    let problem = expect_status(response, StatusCode::TOO_MANY_REQUESTS, &app.engine).await;
    assert_eq!(problem["type"], "urn:seldinger:problem:too-many-attempts");
}

#[tokio::test]
async fn two_nodes_on_one_database_share_sign_in_limits_sessions_and_board_tags() {
    let policy = seldinger_web::AuthPolicy {
        login_attempts_per_minute: 3,
        ..Default::default()
    };
    for db in seldinger_store::testing::engines().await {
        let a = spawn_app_with(db, policy.clone()).await;
        let b_base = a.another_node(policy.clone()).await;
        let site = |base: &str| base.trim_end_matches("/api/v1").to_string();
        let attempt = |base: String, password: &'static str| async move {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .expect("client");
            let answer = client
                .post(format!("{base}/session"))
                .json(&json!({"username": "ir_nurse", "password": password}))
                .send()
                .await
                .expect("sign in");
            (client, answer.status())
        };
        // A session opened on one node is good on the other.
        let (nurse, status) = attempt(a.base.clone(), PASSWORD).await;
        assert_eq!(status, StatusCode::CREATED, "{}", a.engine);
        let on_b = nurse
            .get(format!("{b_base}/session"))
            .send()
            .await
            .expect("session");
        assert_eq!(
            on_b.status(),
            StatusCode::OK,
            "{}: session on node B",
            a.engine
        );
        // The board's tag is the department's, not a process's: B answers A's tag with 304.
        let lanes = nurse
            .get(format!("{}/board/lanes", site(&a.base)))
            .send()
            .await
            .expect("lanes");
        let tag = lanes
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .expect("etag")
            .to_string();
        let again = nurse
            .get(format!("{}/board/lanes", site(&b_base)))
            .header("if-none-match", tag)
            .send()
            .await
            .expect("lanes");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{}", a.engine);
        // Sign-in attempts from one address are counted together: 3 a minute across both.
        let (_, status) = attempt(b_base.clone(), "wrong-password-1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", a.engine);
        let (_, status) = attempt(a.base.clone(), "wrong-password-2").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", a.engine);
        let (_, status) = attempt(b_base.clone(), PASSWORD).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}: the fourth attempt, on the other node",
            a.engine
        );
    }
}

#[tokio::test]
async fn a_method_a_path_does_not_have_answers_405_naming_the_ones_it_has() {
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let patient = app.patient("METHODS-1").await;
    let patient_id = patient["id"].as_str().expect("id").to_string();
    let received = app.referral(&patient_id).await;
    let case_id = received["case"]["id"].as_str().expect("id").to_string();
    let referral_id = received["referral"]["id"].as_str().expect("id").to_string();
    let mut paths: Vec<&str> = ENDPOINTS.iter().map(|(_, p, _)| *p).collect();
    paths.dedup();
    for path in paths {
        let mut allowed: Vec<&str> = ENDPOINTS
            .iter()
            .filter(|(_, p, _)| *p == path)
            .map(|(m, _, _)| *m)
            .collect();
        if allowed.contains(&"GET") {
            allowed.push("HEAD");
        }
        let url = concrete(path, &patient_id, &case_id, &referral_id);
        for method in [
            "GET", "POST", "PUT", "PATCH", "DELETE", "TRACE", "OPTIONS", "HEAD",
        ] {
            if allowed.contains(&method) {
                continue;
            }
            let response = app
                .request_as(
                    Role::IrPhysician,
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    &url,
                )
                .send()
                .await
                .expect("request");
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow = response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let mut said: Vec<&str> = allow.split(", ").collect();
            said.sort();
            let mut expected = allowed.clone();
            expected.sort();
            assert_eq!(said, expected, "{method} {path}: Allow");
        }
    }
    // HEAD is answered wherever GET is.
    let head = app
        .request_as(Role::IrPhysician, Method::HEAD, "/health")
        .send()
        .await
        .expect("request");
    assert_eq!(head.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_is_never_wider_than_its_user_and_expires() {
    let clock = std::sync::Arc::new(seldinger_web::ManualClock::new(crate::helpers::now()));
    let app = crate::helpers::spawn_app_with_clock(
        seldinger_store::testing::sqlite().await,
        seldinger_web::AuthPolicy::default(),
        clock.clone(),
    )
    .await;
    let mint = |body: serde_json::Value| {
        app.request_as(Role::Administrator, Method::POST, "/tokens")
            .json(&body)
            .send()
    };
    // An administrator cannot mint a physician's token for themselves (patient data).
    let wider = mint(json!({"username": "administrator", "role": "ir_physician", "name": "x"}))
        .await
        .expect("request");
    let problem = expect_status(wider, StatusCode::UNPROCESSABLE_ENTITY, &app.engine).await;
    assert_eq!(problem["errors"][0]["field"], "role", "{problem}");
    // Nor a clinician's: its reads would be audited as the clinician's.
    let for_a_person = mint(json!({"username": "ir_physician", "name": "x"}))
        .await
        .expect("request");
    let problem = expect_status(for_a_person, StatusCode::UNPROCESSABLE_ENTITY, &app.engine).await;
    assert_eq!(problem["errors"][0]["field"], "username", "{problem}");
    // Their own token narrowed to the monitoring role's is fine, and says until when.
    let narrower = mint(json!({"username": "administrator", "role": "monitoring",
                               "name": "Prometheus", "expires_in_days": 30}))
    .await
    .expect("request");
    let created = expect_status(narrower, StatusCode::CREATED, &app.engine).await;
    assert_eq!(created["role"], "monitoring");
    assert_eq!(created["expires_at"], "2026-12-24T07:30:00Z", "{created}");
    let bad_days = mint(json!({"username": "ir_physician", "name": "x", "expires_in_days": 366}))
        .await
        .expect("request");
    expect_status(bad_days, StatusCode::UNPROCESSABLE_ENTITY, &app.engine).await;
    // The audit row names whom the token acts for, and as what.
    let trail = app
        .request_as(
            Role::Administrator,
            Method::GET,
            "/audit?username=administrator",
        )
        .send()
        .await
        .expect("request");
    let trail = expect_status(trail, StatusCode::OK, &app.engine).await;
    assert!(
        trail
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["resource_type"] == "api_token"
                && r["resource_id"]
                    .as_str()
                    .is_some_and(|id| id.ends_with("for administrator as monitoring"))),
        "{trail}"
    );
    // Used until it expires, refused after.
    let token = created["token"].as_str().expect("token").to_string();
    let use_it = || {
        app.client
            .get(format!("{}/session", app.base))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(use_it().await.expect("request").status(), StatusCode::OK);
    clock.advance(chrono::Duration::days(30));
    assert_eq!(
        use_it().await.expect("request").status(),
        StatusCode::UNAUTHORIZED
    );
}

//! The web UI's sign-in, through a real HTTP client with a cookie jar.

use crate::helpers::{spawn_apps, TestApp, PASSWORD};
use reqwest::StatusCode;

fn site(app: &TestApp) -> String {
    app.base.trim_end_matches("/api/v1").to_string()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client")
}

/// The hidden CSRF field's value in a page.
fn csrf_field(html: &str) -> String {
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

//! The web UI in a real browser: headless Chromium driven through chromedriver (Debian packages
//! chromium and chromium-driver; `scripts/test` installs them) with the fantoccini WebDriver
//! client. Each test runs a real server on a fresh SQLite database and asserts what the pages
//! show. Screenshots of the main pages go to docs/screenshots/ (the README shows them).

// The API tests' helpers (server, users, tokens); this binary uses only some of them.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::{spawn_app, TestApp, PASSWORD};
use reqwest::Method;
use seldinger_domain::access::Role;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian chromium-driver; scripts/test installs it)");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

/// A headless Chromium at 1366×768, the smallest screen the UI is made for.
async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                        "--disable-gpu", "--window-size=1366,768"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn site(app: &TestApp) -> String {
    app.base.trim_end_matches("/api/v1").to_string()
}

async fn sign_in(browser: &Client, app: &TestApp, role: Role) {
    browser
        .goto(&format!("{}/login", site(app)))
        .await
        .expect("login page");
    browser
        .find(Locator::Id("username"))
        .await
        .expect("username field")
        .send_keys(role.as_str())
        .await
        .expect("type");
    browser
        .find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("submit");
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("text")
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

/// A referral from a referring clinician, through the API: the new case's id.
async fn referral(app: &TestApp, mrn: &str) -> String {
    let patient = app.patient_as(Role::ReferringClinician, mrn).await;
    let body = json!({
        "patient_id": patient["id"], "requesting_clinician": "Dr Ward", "requesting_service": "oncology",
        "indication": "Enlarging liver lesion segment VI", "clinical_question": "Tissue diagnosis?",
        "requested_procedure": "biopsy-liver", "urgency": "urgent"
    });
    let received: serde_json::Value = app
        .request_as(Role::ReferringClinician, Method::POST, "/referrals")
        .json(&body)
        .send()
        .await
        .expect("referral")
        .json()
        .await
        .expect("json");
    received["case"]["id"]
        .as_str()
        .expect("case id")
        .to_string()
}

#[tokio::test]
async fn a_physician_vets_a_referral_and_the_board_follows_without_a_reload() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let case_id = referral(&app, "UI0001").await;
    let browser = browser(&driver).await;

    sign_in(&browser, &app, Role::IrPhysician).await;
    assert_eq!(
        text(&browser, "main h1").await,
        "Board",
        "signed in, on the board"
    );
    let nav = text(&browser, "header nav").await;
    assert!(nav.contains("Board") && nav.contains("Vetting"), "{nav}");

    // The vetting queue shows the referral with its urgency, indication and requester.
    browser
        .goto(&format!("{}/vetting", site(&app)))
        .await
        .expect("vetting");
    let card = format!("#referral-{case_id}");
    let shown = text(&browser, &card).await;
    assert!(
        shown.contains("Enlarging liver lesion segment VI"),
        "{shown}"
    );
    assert!(
        shown.contains("URGENT") || shown.contains("urgent"),
        "{shown}"
    );
    assert!(shown.contains("Dr Ward, oncology"), "{shown}");
    screenshot(&browser, "vetting").await;

    // Accepting without a procedure: the error is beside the field, the rest is kept.
    let accept_form = format!("#referral-{case_id} form.accept");
    let procedure = browser
        .find(Locator::Css(&format!(
            "{accept_form} select[name=procedure_id]"
        )))
        .await
        .expect("procedure");
    procedure.select_by_value("").await.expect("choose none");
    browser
        .find(Locator::Css(&format!(
            "{accept_form} select[name=priority]"
        )))
        .await
        .expect("priority")
        .select_by_value("emergent")
        .await
        .expect("choose");
    browser
        .find(Locator::Css(&format!("{accept_form} button[type=submit]")))
        .await
        .expect("accept")
        .click()
        .await
        .expect("submit");
    let error = text(&browser, &format!("#procedure-{case_id}-error")).await;
    assert_eq!(error, "required");
    let kept = browser
        .find(Locator::Css(&format!(
            "{accept_form} select[name=priority]"
        )))
        .await
        .expect("priority")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some("emergent"), "input kept");

    // Accepted: it leaves the queue and appears in the board's add-on lane.
    browser
        .find(Locator::Css(&format!(
            "{accept_form} select[name=procedure_id]"
        )))
        .await
        .expect("procedure")
        .select_by_value("biopsy-liver")
        .await
        .expect("choose");
    browser
        .find(Locator::Css(&format!("{accept_form} button[type=submit]")))
        .await
        .expect("accept")
        .click()
        .await
        .expect("submit");
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//h1[starts-with(., 'Vetting queue')]"))
        .await
        .expect("back on the queue");
    assert!(
        browser.find(Locator::Css(&card)).await.is_err(),
        "the referral left the queue"
    );
    browser
        .goto(&format!("{}/board", site(&app)))
        .await
        .expect("board");
    let add_on = text(&browser, "section[data-room=add-on]").await;
    assert!(
        add_on.contains("Robin") && add_on.contains("Vetted"),
        "{add_on}"
    );

    // Booked by a scheduler elsewhere: the card moves to its room lane with no reload here.
    let case: serde_json::Value = app
        .get(&format!("/cases/{case_id}"))
        .await
        .json()
        .await
        .expect("case");
    let booked = app
        .request_as(
            Role::Scheduler,
            Method::POST,
            &format!("/cases/{case_id}/transitions"),
        )
        .json(&json!({"expected_version": case["version"], "event":
            {"type": "schedule", "room": "us-1", "start": "2026-11-24T10:30:00Z"}}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(booked.status(), 200);
    let lane = format!("section[data-room=us-1] li[data-case='{case_id}']");
    let moved = browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&lane))
        .await
        .expect("the card moved to us-1 by itself");
    let card_text = moved.text().await.expect("text");
    assert!(
        card_text.contains("10:30") && card_text.contains("Scheduled"),
        "{card_text}"
    );
    screenshot(&browser, "board").await;
    browser.close().await.expect("close");
}

#[tokio::test]
async fn each_role_sees_only_what_it_may_use() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::Scheduler).await;
    let nav = text(&browser, "header nav").await;
    assert!(nav.contains("Board"), "{nav}");
    assert!(!nav.contains("Vetting"), "a scheduler does not vet: {nav}");
    browser
        .goto(&format!("{}/vetting", site(&app)))
        .await
        .expect("vetting");
    assert_eq!(
        text(&browser, "main h1").await,
        "Not available to your role"
    );
    browser.close().await.expect("close");
}

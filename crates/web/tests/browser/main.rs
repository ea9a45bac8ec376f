//! The web UI in a real browser: headless Chromium driven through chromedriver (Debian packages
//! chromium and chromium-driver; `scripts/test` installs them) with the fantoccini WebDriver
//! client. Each test runs a real server on a fresh SQLite database and asserts what the pages
//! show. Screenshots of the main pages go to docs/screenshots/ (the README shows them).

// The API tests' helpers (server, users, tokens); this binary uses only some of them.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::{filter_placed, spawn_app, TestApp, PASSWORD};
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
    // Signed in once the first page with the navigation is shown.
    browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("header nav"))
        .await
        .expect("signed in");
}

/// The element's text once it is there (up to 10 s). The board refreshes its lanes by itself, so
/// an element found may be replaced before it is read: then it is looked up again.
async fn text(browser: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let element = browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        match element.text().await {
            Ok(text) => return text,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{css}: read again after {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

/// Waits (up to 10 s) until the element's text passes `check`, as a submitted form's answer
/// replaces the page; returns the text.
async fn eventually(browser: &Client, css: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = match browser.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if check(&now) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never as expected; last: {now}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(browser: &Client, id: &str, value: &str) {
    let field = browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

/// Sets a field's value directly (date-time pickers take typed keys differently per locale).
async fn set_value(browser: &Client, id: &str, value: &str) {
    browser
        .execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            vec![json!(id), json!(value)],
        )
        .await
        .expect("set value");
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

async fn choose(browser: &Client, css: &str, value: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .select_by_value(value)
        .await
        .expect("choose");
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
        .find(Locator::Css(&format!(
            "{accept_form} select[name=sedation]"
        )))
        .await
        .expect("sedation")
        .select_by_value("moderate")
        .await
        .expect("choose");
    browser
        .find(Locator::Css(&format!("{accept_form} button[type=submit]")))
        .await
        .expect("accept")
        .click()
        .await
        .expect("submit");
    eventually(&browser, "main h1", |h| h == "Vetting queue 0").await;
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

    // The case page: the allergy is in the banner; booking with no start time is refused beside
    // the field with the room kept, then booked.
    click(&browser, &format!("li[data-case='{case_id}'] a")).await;
    let banner = text(&browser, "#banner").await;
    assert!(
        banner.contains("Allergy — iodinated contrast: iopamidol (hives)"),
        "{banner}"
    );
    assert!(banner.contains("MRN UI0001"), "{banner}");
    choose(&browser, "#schedule-room", "us-1").await;
    click(&browser, "#schedule button[type=submit]").await;
    assert_eq!(
        text(&browser, "[id='schedule.start-error']").await,
        "required"
    );
    let room = browser
        .find(Locator::Id("schedule-room"))
        .await
        .expect("room")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(room.as_deref(), Some("us-1"), "the room choice is kept");
    set_value(&browser, "schedule-start", "2026-11-24T10:30").await;
    click(&browser, "#schedule button[type=submit]").await;
    eventually(&browser, "#banner", |b| {
        b.contains("scheduled") && b.contains("us-1 · 2026-11-24 10:30")
    })
    .await;

    // Labs: a bad value is refused beside its field with the rest kept; an INR of 2.5 then
    // blocks this high-bleeding-risk biopsy.
    choose(&browser, "#lab-test", "inr").await;
    fill(&browser, "lab-value", "two").await;
    fill(&browser, "lab-unit", "{INR}").await;
    set_value(&browser, "lab-drawn", "2026-11-24T07:00").await;
    click(&browser, "#add-lab button[type=submit]").await;
    assert!(text(&browser, "[id='lab.value-error']")
        .await
        .contains("'two' is not a number"));
    let unit = browser
        .find(Locator::Id("lab-unit"))
        .await
        .expect("unit")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(unit.as_deref(), Some("{INR}"), "input kept");
    fill(&browser, "lab-value", "2.5").await;
    click(&browser, "#add-lab button[type=submit]").await;
    let inr = eventually(
        &browser,
        "#checklist tr[data-rule='coagulation.inr']",
        |t| t.starts_with("Block"),
    )
    .await;
    assert!(
        inr.contains("clinical-rules.md §1.2"),
        "the source is shown: {inr}"
    );
    eventually(&browser, "#banner", |b| {
        b.contains("Safety checklist: blocked")
    })
    .await;

    // The board, open elsewhere, follows: checked in by a nurse through the API, the card
    // changes without a reload.
    browser
        .goto(&format!("{}/board", site(&app)))
        .await
        .expect("board");
    let card_css = format!("section[data-room=us-1] li[data-case='{case_id}']");
    assert!(text(&browser, &card_css).await.contains("Blocked"));
    let case: serde_json::Value = app
        .get(&format!("/cases/{case_id}"))
        .await
        .json()
        .await
        .expect("case");
    let checked_in = app
        .request_as(
            Role::IrNurse,
            Method::POST,
            &format!("/cases/{case_id}/transitions"),
        )
        .json(&json!({"expected_version": case["version"], "event": {"type": "check_in"}}))
        .send()
        .await
        .expect("check in");
    assert_eq!(checked_in.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let card = text(&browser, &card_css).await;
        if card.contains("Checked in") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the card did not change by itself: {card}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    screenshot(&browser, "board").await;

    // Override the block with a reason, then the time-out: a missing confirmation is refused
    // with the ticks kept; complete, it starts the procedure.
    click(&browser, &format!("li[data-case='{case_id}'] a")).await;
    // Missing data stops the start like the block (clinical-rules.md §8): the page says what.
    let stopped = text(&browser, "#start-stopped").await;
    assert!(
        stopped.contains("INR for the procedure's bleeding risk (block)")
            && stopped.contains("Consent recorded (missing data)"),
        "{stopped}"
    );
    let boxes = browser
        .find_all(Locator::Css("#override input[type=checkbox]"))
        .await
        .expect("override items");
    assert!(boxes.len() >= 2, "the block and each missing item");
    for tick in boxes {
        tick.click().await.expect("tick");
    }
    fill(
        &browser,
        "override-reason",
        "Transjugular route not available; FFP given, benefit outweighs risk",
    )
    .await;
    click(&browser, "#override button[type=submit]").await;
    eventually(&browser, "#checklist", |c| {
        c.contains("Overridden: ")
            && c.contains("coagulation.inr")
            && c.contains("— by ir_physician")
    })
    .await;
    for item in [
        "team_introduced",
        "patient_identity_confirmed",
        "procedure_and_site_confirmed",
        "consent_confirmed",
        "imaging_available",
    ] {
        click(&browser, &format!("#start input[name={item}]")).await;
    }
    click(&browser, "#start button[type=submit]").await;
    eventually(&browser, "#notice", |n| {
        n.contains("not confirmed: equipment_available")
    })
    .await;
    let kept = browser
        .find(Locator::Css("#start input[name=team_introduced]"))
        .await
        .expect("tick")
        .prop("checked")
        .await
        .expect("checked");
    assert_eq!(kept.as_deref(), Some("true"), "ticks kept");
    click(&browser, "#start input[name=equipment_available]").await;
    click(&browser, "#start button[type=submit]").await;
    eventually(&browser, "#banner", |b| b.contains("in room")).await;

    // The procedure record: a missing access site is refused beside its field; then the record,
    // a sedation drug and vital signs (a typo refused) are kept and shown.
    fill(&browser, "proc-primary", "Dr N. Okafor").await;
    choose(&browser, "#proc-guidance", "ultrasound").await;
    fill(
        &browser,
        "proc-findings",
        "18G core biopsies x3 from segment VI lesion",
    )
    .await;
    click(&browser, "#record-procedure button[type=submit]").await;
    assert_eq!(
        text(&browser, "[id='details.access_site-error']").await,
        "required"
    );
    fill(&browser, "proc-access", "right intercostal, segment VI").await;
    click(&browser, "#record-procedure button[type=submit]").await;
    eventually(&browser, "#procedure", |p| {
        p.contains("Dr N. Okafor (primary)")
    })
    .await;
    fill(&browser, "given-drug", "midazolam").await;
    fill(&browser, "given-dose", "1 mg IV").await;
    click(&browser, "#add-drug-given button[type=submit]").await;
    eventually(&browser, "#drugs-given", |t| t.contains("midazolam")).await;
    fill(&browser, "vitals-hr", "720").await;
    click(&browser, "#add-vitals button[type=submit]").await;
    assert!(text(&browser, "[id='vitals.heart_rate-error']")
        .await
        .contains("from 1 to 350"));
    fill(&browser, "vitals-hr", "78").await;
    fill(&browser, "vitals-sbp", "132").await;
    fill(&browser, "vitals-dbp", "81").await;
    fill(&browser, "vitals-spo2", "97").await;
    click(&browser, "#add-vitals button[type=submit]").await;
    eventually(&browser, "#vitals", |t| t.contains("132/81")).await;

    // Through recovery to discharge; the recovery board lists the patient meanwhile, and the
    // recovery score says when the discharge criteria are met (§4).
    click(&browser, "#do-complete_procedure").await;
    eventually(&browser, "#banner", |b| b.contains("procedure complete")).await;
    click(&browser, "#do-admit_to_recovery").await;
    eventually(&browser, "#banner", |b| b.contains("in recovery")).await;
    set_value(&browser, "vitals-at", "2026-11-24T07:29").await;
    fill(&browser, "vitals-hr", "72").await;
    fill(&browser, "vitals-sbp", "124").await;
    fill(&browser, "vitals-dbp", "76").await;
    fill(&browser, "vitals-spo2", "98").await;
    click(&browser, "#add-vitals button[type=submit]").await;
    eventually(&browser, "#vitals", |t| t.contains("124/76")).await;
    assert!(browser
        .find(Locator::Css("svg.vitals-chart polyline.hr"))
        .await
        .is_ok());
    for (item, score) in [
        ("activity", "1"),
        ("respiration", "2"),
        ("circulation", "2"),
        ("consciousness", "1"),
        ("oxygen_saturation", "2"),
    ] {
        choose(&browser, &format!("#score-{item}"), score).await;
    }
    click(&browser, "#add-score button[type=submit]").await;
    eventually(&browser, "#discharge-readiness", |t| {
        t.starts_with("Not yet")
    })
    .await;
    // Discharging now would be against the §4 criteria: the page says why and asks for a reason.
    let against = text(&browser, "#discharge-against").await;
    assert!(against.contains("total 8 is below 9"), "{against}");
    for item in [
        "activity",
        "respiration",
        "circulation",
        "consciousness",
        "oxygen_saturation",
    ] {
        choose(&browser, &format!("#score-{item}"), "2").await;
    }
    click(&browser, "#add-score button[type=submit]").await;
    eventually(&browser, "#discharge-readiness", |t| {
        t.starts_with("Meets the discharge criteria")
    })
    .await;
    screenshot(&browser, "recovery-record").await;
    browser
        .goto(&format!("{}/recovery", site(&app)))
        .await
        .expect("recovery");
    let row = text(&browser, &format!("#recovery tr[data-case='{case_id}']")).await;
    assert!(
        row.contains("Testperson, Robin") && row.contains("in recovery"),
        "{row}"
    );
    screenshot(&browser, "recovery").await;
    click(&browser, &format!("#recovery tr[data-case='{case_id}'] a")).await;
    click(&browser, "#do-discharge").await;
    eventually(&browser, "#banner", |b| b.contains("discharged")).await;

    // The angio system's dose report arrives; above the substantial radiation dose level it
    // owes a skin check, shown on the case with the note for the patient.
    ingest_high_dose_report(&app, "UI0001").await;
    browser.refresh().await.expect("reload");
    let follow_up = text(&browser, "#follow-up").await;
    assert!(
        follow_up.contains("dose skin check") && follow_up.contains("not yet due"),
        "{follow_up}"
    );
    assert!(text(&browser, "#dose")
        .await
        .contains("For the discharge instructions"));
    let history = text(&browser, "#history").await;
    assert!(
        history.contains("overridden at the start gate (blocked or missing data): ")
            && history.contains("coagulation.inr")
            && history.contains("Transjugular route")
            && history.contains("modified Aldrete 10"),
        "{history}"
    );
    screenshot(&browser, "case").await;

    // The printable discharge sheet, in plain words, with the sedation advice and the dose note.
    click(&browser, "#discharge-sheet").await;
    let sheet = eventually(&browser, "main", |m| m.contains("After your procedure")).await;
    assert!(
        sheet.contains("Procedure: Image-guided liver biopsy (percutaneous)."),
        "{sheet}"
    );
    assert!(
        sheet.contains("do not drive"),
        "midazolam was given: {sheet}"
    );
    assert!(
        sheet.contains("X-rays used") && sheet.contains("check your skin"),
        "{sheet}"
    );
    screenshot(&browser, "discharge-instructions").await;

    // The follow-up queue lists it (not yet due: shown with "all"); closing it needs a note.
    browser
        .goto(&format!("{}/follow-up?show=all", site(&app)))
        .await
        .expect("follow-up");
    let queue = text(&browser, "section[aria-label='dose skin check']").await;
    assert!(
        queue.contains("Testperson, Robin") && queue.contains("not yet due"),
        "{queue}"
    );
    screenshot(&browser, "follow-up").await;
    click(
        &browser,
        "section[aria-label='dose skin check'] form button[type=submit]",
    )
    .await;
    eventually(
        &browser,
        "section[aria-label='dose skin check'] .field-error",
        |e| e.contains("say what was found or done"),
    )
    .await;
    fill(
        &browser,
        &browser
            .find(Locator::Css(
                "section[aria-label='dose skin check'] textarea",
            ))
            .await
            .expect("note")
            .attr("id")
            .await
            .expect("id")
            .expect("has id"),
        "Seen in clinic day 20: no erythema",
    )
    .await;
    click(
        &browser,
        "section[aria-label='dose skin check'] form button[type=submit]",
    )
    .await;
    eventually(&browser, "section[aria-label='dose skin check']", |t| {
        t.contains("Nothing open")
    })
    .await;
    browser.close().await.expect("close");
}

/// A synthetic report for the patient's study this morning, through the real ingest path.
async fn ingest_high_dose_report(app: &TestApp, mrn: &str) {
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use seldinger_dicom::fixtures::{plane, report};
    let mut obj = report(
        "1.2.840.10008.5.1.4.1.1.88.67",
        "2.25.7001",
        vec![plane(("0.09", "Gy.m2"), ("5.6", "Gy"), ("1900", "s"))],
    );
    obj.put(DataElement::new(tags::PATIENT_ID, VR::LO, mrn));
    // The procedure was recorded at the test clock's 07:30.
    obj.put(DataElement::new(tags::STUDY_TIME, VR::TM, "073500"));
    let parsed = seldinger_dicom::parse_object(&obj).expect("report");
    let reference = helpers::safety_reference();
    seldinger_dicom::ingest::Ingest {
        store: &app._db.store,
        reference: &reference,
        station: None,
    }
    .report(&parsed, "test", helpers::now())
    .await
    .expect("stored");
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

#[tokio::test]
async fn a_stale_edit_is_named_and_the_input_kept() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let case_id = referral(&app, "UI0002").await;
    let accepted = app
        .request_as(
            Role::IrPhysician,
            Method::POST,
            &format!("/cases/{case_id}/transitions"),
        )
        .json(&json!({"expected_version": 1, "event": helpers::accept_event()}))
        .send()
        .await
        .expect("accept");
    assert_eq!(accepted.status(), 200);
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::IrPhysician).await;
    browser
        .goto(&format!("{}/cases/{case_id}", site(&app)))
        .await
        .expect("case");
    fill(&browser, "cancel-reason", "Patient declined the procedure").await;
    // Meanwhile a scheduler books the case.
    let booked = app
        .request_as(
            Role::Scheduler,
            Method::POST,
            &format!("/cases/{case_id}/transitions"),
        )
        .json(&json!({"expected_version": 2, "event":
            {"type": "schedule", "room": "us-1", "start": "2026-11-24T13:00:00Z"}}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(booked.status(), 200);
    click(&browser, "#cancel button[type=submit]").await;
    let notice = text(&browser, "#notice").await;
    assert!(
        notice.contains("Someone else changed this record"),
        "{notice}"
    );
    assert!(
        text(&browser, "#banner")
            .await
            .contains("us-1 · 2026-11-24 13:00"),
        "the page shows the case as it is now"
    );
    let kept = browser
        .find(Locator::Id("cancel-reason"))
        .await
        .expect("reason")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some("Patient declined the procedure"));
    browser.close().await.expect("close");
}

#[tokio::test]
async fn a_mistyped_lab_is_corrected_on_its_row_with_a_reason_and_the_checklist_follows() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let case_id = referral(&app, "UI0003").await;
    for (version, role, event) in [
        (1, Role::IrPhysician, helpers::accept_event()),
        (
            2,
            Role::Scheduler,
            json!({"type": "schedule", "room": "us-1", "start": "2026-11-24T13:00:00Z"}),
        ),
    ] {
        let answer = app
            .request_as(role, Method::POST, &format!("/cases/{case_id}/transitions"))
            .json(&json!({"expected_version": version, "event": event}))
            .send()
            .await
            .expect("transition");
        assert_eq!(answer.status(), 200);
    }
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::IrNurse).await;
    browser
        .goto(&format!("{}/cases/{case_id}", site(&app)))
        .await
        .expect("case");
    // 1.2 typed as 2.5: the biopsy is blocked.
    choose(&browser, "#lab-test", "inr").await;
    fill(&browser, "lab-value", "2.5").await;
    fill(&browser, "lab-unit", "{INR}").await;
    set_value(&browser, "lab-drawn", "2026-11-24T07:00").await;
    click(&browser, "#add-lab button[type=submit]").await;
    eventually(
        &browser,
        "#checklist tr[data-rule='coagulation.inr']",
        |t| t.starts_with("Block"),
    )
    .await;
    let row_id = browser
        .find(Locator::Css("#labs tbody tr"))
        .await
        .expect("lab row")
        .attr("id")
        .await
        .expect("id")
        .expect("row id");
    let entry = row_id.trim_start_matches("lab-").to_string();

    // Without a reason the correction is refused beside the field, the row stays open and the
    // typed value is kept.
    click(&browser, &format!("#{row_id} details summary")).await;
    fill(&browser, &format!("correct-lab-{entry}-value"), "1.2").await;
    click(
        &browser,
        &format!("#correct-lab-{entry} button[type=submit]"),
    )
    .await;
    let refused = text(&browser, &format!("#correct-lab-{entry} .field-error")).await;
    assert!(refused.contains("say why"), "{refused}");
    let kept = browser
        .find(Locator::Id(&format!("correct-lab-{entry}-value")))
        .await
        .expect("value")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some("1.2"), "input kept");
    screenshot(&browser, "lab-correction").await;

    fill(
        &browser,
        &format!("correct-lab-{entry}-reason"),
        "Transcription error: lab report says 1.2",
    )
    .await;
    click(
        &browser,
        &format!("#correct-lab-{entry} button[type=submit]"),
    )
    .await;
    eventually(
        &browser,
        "#checklist tr[data-rule='coagulation.inr']",
        |t| t.starts_with("Pass"),
    )
    .await;
    assert!(text(&browser, "#labs").await.contains("1.2"));
    let history = text(&browser, "#history").await;
    assert!(
        history.contains(&format!("lab entry {entry} corrected to: inr 1.2 {{INR}}"))
            && history.contains("Transcription error: lab report says 1.2")
            && history.contains("ir_nurse"),
        "who, what and why are in the history: {history}"
    );

    // A drug's indication and intent are recorded from the page: the rules read them.
    fill(&browser, "drug-name", "aspirin").await;
    fill(&browser, "drug-dose", "75 mg").await;
    choose(&browser, "#drug-indication", "primary_prevention").await;
    set_value(&browser, "drug-last", "2026-11-24T06:00").await;
    click(&browser, "#add-drug button[type=submit]").await;
    let drugs = eventually(&browser, "#drugs", |t| t.contains("aspirin")).await;
    assert!(drugs.contains("primary_prevention"), "{drugs}");
    assert_ne!(
        text(&browser, "#checklist").await.find("aspirin"),
        None,
        "the aspirin hold rule sees it"
    );
    browser.close().await.expect("close");
}

/// A report for `mrn` at `date` 09:15 with this reference air kerma and KAP, through ingest.
async fn ingest_report(
    app: &TestApp,
    sop: &str,
    mrn: &str,
    date: &str,
    kar: &str,
    kap_gy_m2: &str,
) {
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use seldinger_dicom::fixtures::{plane, report};
    let mut obj = report(
        "1.2.840.10008.5.1.4.1.1.88.67",
        sop,
        vec![plane((kap_gy_m2, "Gy.m2"), (kar, "Gy"), ("600", "s"))],
    );
    obj.put(DataElement::new(tags::PATIENT_ID, VR::LO, mrn));
    obj.put(DataElement::new(tags::STUDY_DATE, VR::DA, date));
    obj.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        format!("{sop}.0"),
    ));
    let parsed = seldinger_dicom::parse_object(&obj).expect("report");
    let reference = helpers::safety_reference();
    seldinger_dicom::ingest::Ingest {
        store: &app._db.store,
        reference: &reference,
        station: None,
    }
    .report(&parsed, "test", helpers::now())
    .await
    .expect("stored");
}

#[tokio::test]
async fn the_physicist_sees_dose_per_procedure_over_time_and_links_the_queue_by_hand() {
    use chrono::{TimeZone, Utc};
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    // Four embolizations over four months, each with its report; one report with a typo.
    let mut last_case = String::new();
    for (i, (month, kap)) in [(8, "0.010"), (9, "0.014"), (10, "0.012"), (11, "0.020")]
        .into_iter()
        .enumerate()
    {
        let start = Utc
            .with_ymd_and_hms(2026, month, 10, 9, 0, 0)
            .single()
            .expect("valid");
        let mrn = format!("DOSE{i}");
        let case = seldinger_store::testing::records::booked_case(
            &app._db.store,
            &mrn,
            "angio-1",
            start,
            60,
        )
        .await;
        last_case = case.id.to_string();
        ingest_report(
            &app,
            &format!("2.25.88{i}"),
            &mrn,
            &format!("2026{month:02}10"),
            "0.9",
            kap,
        )
        .await;
    }
    ingest_report(&app, "2.25.889", "DOSE3X", "20261110", "0.4", "0.005").await;

    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::MedicalPhysicist).await;
    browser
        .goto(&format!("{}/dose", site(&app)))
        .await
        .expect("dose");
    let row = text(&browser, "tr[data-procedure='haemorrhage-embolization']").await;
    assert!(
        row.contains("Haemorrhage") || row.contains("haemorrhage"),
        "{row}"
    );
    assert!(row.contains(" 4 "), "four cases: {row}");
    assert!(row.contains("none configured"), "{row}");
    assert!(browser
        .find(Locator::Css("svg.dose-chart polyline.median"))
        .await
        .is_ok());
    let queue = text(&browser, "#unmatched").await;
    assert!(
        queue.contains("DOSE3X") && queue.contains("no case of patient DOSE3X"),
        "{queue}"
    );
    screenshot(&browser, "dose").await;

    // Linking needs a real case and a reason; then the report leaves the queue.
    let row = "tr[id='unmatched-2.25.889']";
    fill(&browser, "case-2.25.889", "not-a-case").await;
    fill(&browser, "reason-2.25.889", "MRN typo at the modality").await;
    click(&browser, &format!("{row} button[type=submit]")).await;
    eventually(&browser, &format!("{row} .field-error"), |e| {
        e.contains("case_id")
    })
    .await;
    fill(&browser, "case-2.25.889", &last_case).await;
    fill(
        &browser,
        "reason-2.25.889",
        "MRN typo at the modality; same room and time",
    )
    .await;
    click(&browser, &format!("{row} button[type=submit]")).await;
    eventually(&browser, "#unmatched", |t| {
        t.contains("Every report is linked")
    })
    .await;
    browser.close().await.expect("close");
}

/// WCAG 2.1 AA contrast for every visible text on the page (4.5:1, or 3:1 for large text),
/// computed in the browser from the rendered colours; returns the failures.
/// Opens each page and checks its text keeps WCAG AA contrast.
async fn assert_contrast(browser: &Client, app: &TestApp, paths: &[String]) {
    for path in paths {
        browser
            .goto(&format!("{}{path}", site(app)))
            .await
            .expect("page");
        text(browser, "main h1").await;
        let failures = contrast_failures(browser).await;
        assert!(
            failures.is_empty(),
            "{path}: contrast below WCAG AA: {failures:?}"
        );
    }
}

async fn contrast_failures(browser: &Client) -> Vec<String> {
    let script = r#"
        function rgb(c) { var m = c.match(/[\d.]+/g); return m ? m.map(Number) : [0,0,0,0]; }
        function lum(c) {
            var v = c.slice(0,3).map(function (x) { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
            return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
        }
        function background(el) {
            for (var e = el; e; e = e.parentElement) {
                var c = rgb(getComputedStyle(e).backgroundColor);
                if (c.length < 4 || c[3] > 0.5) return c;
            }
            return [255,255,255];
        }
        var failures = [];
        document.querySelectorAll('body *').forEach(function (el) {
            var text = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
            if (!text || el.offsetParent === null || el.closest('svg')) return;
            var s = getComputedStyle(el);
            var fg = lum(rgb(s.color)), bg = lum(background(el));
            var ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
            var size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight, 10) >= 700;
            var large = size >= 24 || (bold && size >= 18.66);
            if (ratio < (large ? 3 : 4.5)) failures.push(el.tagName + ' "' + el.textContent.trim().slice(0, 40) + '" ' + ratio.toFixed(2));
        });
        return failures;
    "#;
    let result = browser.execute(script, vec![]).await.expect("script");
    result
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn pages_are_readable_keyboard_reachable_and_fit_a_tablet() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let case_id = referral(&app, "UI0003").await;
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::IrPhysician).await;
    for path in [
        "/board".to_string(),
        "/vetting".into(),
        format!("/cases/{case_id}"),
        "/follow-up".into(),
        "/devices".into(),
        "/devices/ivc-filters".into(),
        "/quality".into(),
        "/quality/mm".into(),
    ] {
        browser
            .goto(&format!("{}{path}", site(&app)))
            .await
            .expect("page");
        text(&browser, "main h1").await;
        let failures = contrast_failures(&browser).await;
        assert!(
            failures.is_empty(),
            "{path}: contrast below WCAG AA: {failures:?}"
        );
        // Every control can be reached with the keyboard.
        let unreachable = browser
            .execute(
                "return Array.from(document.querySelectorAll('a, button, input:not([type=hidden]), select, textarea'))\
                 .filter(function (e) { return e.tabIndex < 0 || e.disabled; }).length;",
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(
            unreachable,
            json!(0),
            "{path}: controls out of the tab order"
        );
    }
    // Tabbing from the top reaches the vetting form's Accept button.
    browser
        .goto(&format!("{}/vetting", site(&app)))
        .await
        .expect("vetting");
    text(&browser, "main h1").await;
    // Start from the skip link, the first stop on every page.
    browser
        .execute("document.querySelector('a.skip').focus();", vec![])
        .await
        .expect("focus");
    let mut reached = false;
    let mut seen = Vec::new();
    for _ in 0..60 {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let tab = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: '\u{E004}' })
            .then(KeyAction::Up { value: '\u{E004}' });
        browser.perform_actions(tab).await.expect("tab");
        let focused = browser
            .execute(
                "return document.activeElement ? document.activeElement.textContent.trim() : '';",
                vec![],
            )
            .await
            .expect("focus");
        seen.push(focused.to_string());
        if focused == json!("Accept") {
            reached = true;
            break;
        }
    }
    assert!(reached, "the Accept button is reachable by Tab: {seen:?}");
    // A tablet in portrait: the page does not overflow sideways (the board's lanes scroll
    // inside their own strip).
    browser.set_window_size(768, 1024).await.expect("resize");
    for path in ["/board".to_string(), format!("/cases/{case_id}")] {
        browser
            .goto(&format!("{}{path}", site(&app)))
            .await
            .expect("page");
        text(&browser, "main h1").await;
        let overflow = browser
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("script");
        assert!(
            overflow.as_i64().unwrap_or(1) <= 0,
            "{path} overflows a tablet by {overflow}px"
        );
    }
    screenshot(&browser, "case-tablet").await;
    browser.close().await.expect("close");
}

/// The administrator's HL7 inbox in a browser: the dead letter listed with its reason, opened as
/// received, readable (contrast) and usable with the keyboard.
#[tokio::test]
async fn an_administrator_reads_a_dead_letter_in_the_hl7_inbox() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let store = &app._db.store;
    let raw = b"MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261201120000||ADT^A08|UI-DEAD-1|P|2.5.1\rPID|1||Z1^^^ELSEWHERE^MR||Letter^Dee||19700101|F\r".to_vec();
    let new = seldinger_store::NewInboundMessage {
        id: "00000000-0000-4000-8000-000000000001".into(),
        sender: Some("PAS^GENHOSP".into()),
        control_id: Some("UI-DEAD-1".into()),
        received_at: helpers::now(),
        peer: "127.0.0.1:40000".into(),
        message_type: "ADT^A08".into(),
        version: "2.5.1".into(),
        content_sha256: "0".repeat(64),
        raw,
        patient_key: None,
        peer_certificate: None,
    };
    store.receive_message(&new).await.expect("kept");
    store
        .finish_message(
            &new.id,
            &seldinger_store::Finish {
                status: seldinger_store::InboxStatus::Failed,
                ack: "MSH|^~\\&|SELDINGER|IR|PAS|GENHOSP|20261201120000||ACK^A08^ACK|A1|P|2.5.1\rMSA|AE|UI-DEAD-1\r".into(),
                error_code: Some("204".into()),
                error_location: Some("PID-3.4".into()),
                error_reason: Some("no PID-3 identifier comes from an assigning authority the interface file maps to a site".into()),
                at: helpers::now(),
            },
        )
        .await
        .expect("failed");
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::Administrator).await;
    let nav = text(&browser, "header nav").await;
    assert!(nav.contains("HL7 inbox"), "{nav}");
    browser
        .goto(&format!("{}/interfaces/hl7", site(&app)))
        .await
        .expect("inbox");
    let row = text(&browser, "#messages tbody tr").await;
    assert!(
        row.contains("PAS^GENHOSP") && row.contains("PID-3.4"),
        "{row}"
    );
    click(&browser, "#messages tbody tr a").await;
    let reason = text(&browser, "#reason").await;
    assert!(reason.contains("assigning authority"), "{reason}");
    assert!(text(&browser, "#message").await.contains("ELSEWHERE"));
    assert_contrast(
        &browser,
        &app,
        &[
            "/interfaces/hl7".to_string(),
            format!("/interfaces/hl7/{}", new.id),
        ],
    )
    .await;
    screenshot(&browser, "hl7-inbox-message").await;
    browser.close().await.expect("close");
}

#[tokio::test]
async fn an_administrator_reads_a_refused_outbound_message_and_sends_it_again() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let store = &app._db.store;
    // A booking the PACS refused: owed, rendered, answered AE.
    store
        .execute_raw_for_tests(
            "INSERT INTO hl7_outbox (id, destination, patient_id, case_id, trigger_event, payload, \
             created_at, status, attempts, next_attempt_at, last_error, control_id, message, ack, \
             finished_at) VALUES ('00000000-0000-4000-8000-0000000000aa', 'pacs', \
             '00000000-0000-4000-8000-0000000000bb', NULL, 'booked', '{}', \
             '2026-12-01T12:00:00Z', 'rejected', 1, '2026-12-01T12:00:00Z', \
             'AE: unknown procedure code', 'SD1-0000AAAA', \
             'MSH|^~\\&|SELDINGER|IR|PACS||20261201120000+0000||OMI^O23^OMI_O23|SD1-0000AAAA|P|2.5.1', \
             'MSH|^~\\&|PACS||SELDINGER|IR|20261201120001||ACK^O23^ACK|X1|P|2.5.1\rMSA|AE|SD1-0000AAAA', \
             '2026-12-01T12:00:01Z')",
        )
        .await
        .expect("an outbound message");
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::Administrator).await;
    let nav = text(&browser, "header nav").await;
    assert!(nav.contains("HL7 outbox"), "{nav}");
    browser
        .goto(&format!("{}/interfaces/hl7/outbox", site(&app)))
        .await
        .expect("outbox");
    let counts = text(&browser, "#destinations tbody tr").await;
    assert!(counts.contains("pacs"), "{counts}");
    let row = text(&browser, "#outbound tbody tr").await;
    assert!(
        row.contains("OMI^O23^OMI_O23") && row.contains("unknown procedure code"),
        "{row}"
    );
    click(&browser, "#outbound tbody tr a").await;
    assert!(text(&browser, "#reason")
        .await
        .contains("AE: unknown procedure code"));
    assert!(text(&browser, "#ack").await.contains("MSA|AE|SD1-0000AAAA"));
    assert_contrast(
        &browser,
        &app,
        &[
            "/interfaces/hl7/outbox".to_string(),
            "/interfaces/hl7/outbox/00000000-0000-4000-8000-0000000000aa".to_string(),
        ],
    )
    .await;
    click(&browser, "form[action$='/send-again'] button").await;
    let outcome = text(&browser, "#outcome").await;
    assert!(outcome.contains("Back in the queue"), "{outcome}");
    assert!(text(&browser, "#status").await.starts_with("pending"));
    browser.close().await.expect("close");
}

#[tokio::test]
async fn a_nurse_records_a_filter_retrieval_from_the_registry_and_the_banner_and_tracker_follow() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let (case_id, device) = filter_placed(&app, "UI-DEV-1", true).await;
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::IrNurse).await;
    // The case's banner lists the filter in place, with its plan.
    browser
        .goto(&format!("{}/cases/{case_id}", site(&app)))
        .await
        .expect("case page");
    let banner = text(&browser, "#devices-in-place").await;
    assert!(
        banner.contains("IVC filter") && banner.contains("follow-up due"),
        "{banner}"
    );
    // The registry: the filter's row with its follow-up owed.
    click(&browser, "#devices-in-place a").await;
    let row = format!("#device-{device}");
    let shown = text(&browser, &row).await;
    assert!(shown.contains("follow-up owed"), "{shown}");
    assert!(shown.contains("lot LOT-API"), "{shown}");
    screenshot(&browser, "devices").await;
    // A nurse may record a removal, not a permanent decision.
    assert!(browser
        .find(Locator::Css(&format!("{row} form.device-permanent")))
        .await
        .is_err());
    click(&browser, &format!("{row} details summary")).await;
    // Without saying what was done: refused beside the row, nothing recorded.
    click(&browser, &format!("{row} form.device-out button")).await;
    let refused = text(&browser, &format!("#device-{device}-error")).await;
    assert!(refused.contains("note"), "{refused}");
    fill(
        &browser,
        &format!("note-{device}"),
        "Retrieved intact with a snare via the right internal jugular vein",
    )
    .await;
    click(&browser, &format!("{row} form.device-out button")).await;
    eventually(&browser, "main", |page| {
        page.contains("No device") || !page.contains("retrievable IVC filter, infrarenal")
    })
    .await;
    // Out of the list of devices in place; in the ended list as removed.
    browser
        .goto(&format!("{}/devices?show=ended", site(&app)))
        .await
        .expect("ended");
    let ended = text(&browser, &row).await;
    assert!(ended.contains("removed"), "{ended}");
    // The banner no longer lists it; the tracker counts the retrieval.
    browser
        .goto(&format!("{}/cases/{case_id}", site(&app)))
        .await
        .expect("case page");
    text(&browser, "main h1").await;
    assert!(browser
        .find(Locator::Css("#devices-in-place"))
        .await
        .is_err());
    browser
        .goto(&format!(
            "{}/devices/ivc-filters?from=2026-11-01&until=2026-11-30",
            site(&app)
        ))
        .await
        .expect("tracker");
    let measures = text(&browser, "#measures").await;
    assert!(measures.contains("1/1 = 100%"), "{measures}");
    screenshot(&browser, "ivc-filter-tracker").await;
    browser.close().await.expect("close");
}

#[tokio::test]
async fn a_nurse_reports_an_adverse_event_after_discharge_and_a_physician_attributes_it() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let (case_id, _) = filter_placed(&app, "UI-AE-1", true).await;
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::IrNurse).await;
    browser
        .goto(&format!("{}/cases/{case_id}", site(&app)))
        .await
        .expect("case page");
    text(&browser, "#adverse-events h2").await;
    fill(
        &browser,
        "report-description",
        "haematoma at the jugular access site",
    )
    .await;
    choose(&browser, "#report-severity", "moderate").await;
    choose(&browser, "#report-outcome", "resolved").await;
    // Graded one way only: refused beside the CIRSE grade, what was typed kept.
    click(&browser, "#report-adverse-event button").await;
    // The form's labels name CIRSE too: read the refusal beside the field, once it is there.
    let refused = text(&browser, "#report-adverse-event .field-error").await;
    assert!(refused.contains("CIRSE"), "{refused}");
    let kept = browser
        .find(Locator::Id("report-description"))
        .await
        .expect("field")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(
        kept.as_deref(),
        Some("haematoma at the jugular access site")
    );
    choose(&browser, "#report-cirse", "2").await;
    click(&browser, "#report-adverse-event button").await;
    let row = format!("#ae-{case_id}-r1");
    let reported = text(&browser, &row).await;
    assert!(
        reported.contains("SIR moderate; CIRSE 2")
            && reported.contains("attributed (within 30 days"),
        "{reported}"
    );
    // A nurse cannot decide attribution; a physician can, with a reason.
    assert!(browser
        .find(Locator::Css("form.ae-attribute"))
        .await
        .is_err());
    browser.delete_all_cookies().await.expect("sign out");
    sign_in(&browser, &app, Role::IrPhysician).await;
    browser
        .goto(&format!("{}/cases/{case_id}", site(&app)))
        .await
        .expect("case page");
    click(&browser, "#adverse-events details summary").await;
    choose(&browser, "form.ae-attribute select", "false").await;
    fill(
        &browser,
        &format!("ae-attribution-reason-{case_id}-r1"),
        "bruising from a later cannula on the ward",
    )
    .await;
    click(&browser, "form.ae-attribute button").await;
    let decided = eventually(&browser, &row, |t| t.contains("not attributed by")).await;
    assert!(
        decided.contains("bruising from a later cannula"),
        "{decided}"
    );
    // The section itself: it sits below the fold (the sticky banner set aside for the picture).
    browser
        .execute(
            "document.getElementById('banner').style.position = 'static';",
            vec![],
        )
        .await
        .expect("script");
    let png = browser
        .find(Locator::Id("adverse-events"))
        .await
        .expect("section")
        .screenshot()
        .await
        .expect("screenshot");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::write(dir.join("adverse-events.png"), png).expect("write screenshot");
    browser.close().await.expect("close");
}

#[tokio::test]
async fn a_physician_writes_signs_and_adds_to_the_procedure_report() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let (case_id, _) = filter_placed(&app, "UI-REP-1", true).await;
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::IrPhysician).await;
    browser
        .goto(&format!("{}/cases/{case_id}", site(&app)))
        .await
        .expect("case page");
    click(&browser, "#procedure-report").await;
    let status = text(&browser, "#report-status").await;
    assert!(status.contains("draft"), "{status}");
    fill(
        &browser,
        "report-findings",
        "Filter infrarenal, apex at L2.",
    )
    .await;
    // Signing without the impression: refused beside it, the words kept.
    click(&browser, "#sign-report").await;
    let refused = text(&browser, "#report-impression-error").await;
    assert!(refused.contains("required"), "{refused}");
    let kept = browser
        .find(Locator::Id("report-findings"))
        .await
        .expect("findings")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(kept.as_deref(), Some("Filter infrarenal, apex at L2."));
    fill(
        &browser,
        "report-impression",
        "Successful retrievable IVC filter placement.",
    )
    .await;
    click(&browser, "#sign-report").await;
    // "draft — not signed" holds "signed" too: wait for the final status itself.
    let signed = eventually(&browser, "#report-status", |t| t.contains("final")).await;
    assert!(signed.contains("final — signed"), "{signed}");
    let main = text(&browser, "main").await;
    assert!(main.contains("Successful retrievable IVC filter placement."));
    assert!(main.contains("Signed by ir_physician"));
    // Locked: no draft form, an addendum form instead.
    assert!(browser.find(Locator::Id("report-draft")).await.is_err());
    fill(
        &browser,
        "addendum-text",
        "Dose report received after signing.",
    )
    .await;
    click(&browser, "#add-addendum").await;
    let refused = text(&browser, "#report-reason-error").await;
    assert!(refused.contains("required"), "{refused}");
    fill(&browser, "addendum-reason", "late dose report").await;
    click(&browser, "#add-addendum").await;
    let amended = eventually(&browser, "#report-status", |t| t.contains("addenda")).await;
    assert!(amended.contains("final, with addenda"), "{amended}");
    let main = text(&browser, "main").await;
    assert!(
        main.contains("Dose report received after signing."),
        "{main}"
    );
    screenshot(&browser, "procedure-report").await;
    browser.close().await.expect("close");
}

#[tokio::test]
async fn a_quality_lead_reads_the_dashboard_and_a_physician_records_the_mm_meeting() {
    let driver = start_driver().await;
    let app = spawn_app(seldinger_store::testing::sqlite().await).await;
    let (case_id, _) = filter_placed(&app, "UI-QA-1", true).await;
    let reported = app
        .request_as(
            Role::IrNurse,
            Method::POST,
            &format!("/cases/{case_id}/adverse-events"),
        )
        .json(
            &json!({"onset": "2026-11-24T07:30:00Z", "detected": "after_discharge",
            "description": "haematoma at the jugular access site", "category": "bleeding",
            "severity": "moderate", "cirse_grade": 2, "treatment": "compression",
            "outcome": "resolved"}),
        )
        .send()
        .await
        .expect("report");
    assert_eq!(reported.status(), 201);
    let browser = browser(&driver).await;
    sign_in(&browser, &app, Role::QualityLead).await;
    let period = "from=2026-11-01&until=2026-11-30";
    browser
        .goto(&format!("{}/quality?{period}", site(&app)))
        .await
        .expect("dashboard");
    let department = text(&browser, "#department").await;
    assert!(
        department.contains("1 procedure(s)") && department.contains("1/1 = 100%"),
        "{department}"
    );
    assert!(!department.contains("Testperson"), "counts only");
    let charts = browser
        .find_all(Locator::Css("#trends svg"))
        .await
        .expect("charts");
    assert_eq!(
        charts.len(),
        4,
        "volume, adverse events, documentation, follow-up"
    );
    // The export downloads with the page's own session.
    let csv = browser
        .execute_async(
            "fetch('/api/v1/quality/registry-export?from=2026-11-01&until=2026-11-30&format=csv&table=adverse_events')\
             .then(function (r) { return r.text(); }).then(arguments[0]);",
            vec![],
        )
        .await
        .expect("export");
    let csv = csv.as_str().unwrap_or_default();
    assert!(csv.contains(",bleeding,moderate,2,"), "{csv}");
    assert!(!csv.contains("UI-QA-1") && !csv.contains(&case_id), "{csv}");
    screenshot(&browser, "quality").await;
    // The quality lead's M&M list: the case by pseudonym, no note form.
    browser
        .goto(&format!("{}/quality/mm?{period}", site(&app)))
        .await
        .expect("M&M");
    let listed = text(&browser, "main").await;
    assert!(
        listed.contains("case C-") && !listed.contains("Testperson"),
        "{listed}"
    );
    assert!(browser.find(Locator::Css("form.row-form")).await.is_err());

    browser.delete_all_cookies().await.expect("sign out");
    sign_in(&browser, &app, Role::IrPhysician).await;
    browser
        .goto(&format!("{}/quality/mm?{period}", site(&app)))
        .await
        .expect("M&M");
    let case = text(&browser, &format!("#mm-{case_id}")).await;
    assert!(
        case.contains("Testperson, Robin") && case.contains("Not yet discussed"),
        "{case}"
    );
    fill(
        &browser,
        &format!("mm-actions-{case_id}"),
        "ultrasound-guided access for every jugular puncture",
    )
    .await;
    click(&browser, &format!("#mm-{case_id} button")).await;
    let refused = text(&browser, &format!("#mm-error-{case_id}")).await;
    assert!(refused.contains("discussion"), "{refused}");
    let kept = browser
        .find(Locator::Id(&format!("mm-actions-{case_id}")))
        .await
        .expect("field")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(
        kept.as_deref(),
        Some("ultrasound-guided access for every jugular puncture")
    );
    fill(
        &browser,
        &format!("mm-discussion-{case_id}"),
        "haematoma after a landmark-guided jugular access",
    )
    .await;
    click(&browser, &format!("#mm-{case_id} button")).await;
    let noted = eventually(&browser, &format!("#mm-{case_id} table.mm-notes"), |t| {
        t.contains("landmark-guided")
    })
    .await;
    assert!(noted.contains("every jugular puncture"), "{noted}");
    screenshot(&browser, "mm").await;
    browser.close().await.expect("close");
}

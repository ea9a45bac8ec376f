//! The quality dashboard, the M&M list and the registry export through the API (clinical-rules.md
//! §6): counts each case once against the department's thresholds, for the roles that read
//! de-identified outcomes; the M&M list identified only for roles that read cases, its notes kept
//! and never written over; the export de-identified in every form.

use crate::helpers::{expect_status, filter_placed, spawn_apps_with_thresholds, TestApp};
use reqwest::{Method, StatusCode};
use seldinger_domain::access::Role;
use serde_json::{json, Value};

const THRESHOLDS: &str = r#"
[[threshold]]
measure = "adverse_events"
percent = 5.0
source = "test department governance"

[[threshold]]
procedure = "ivc-filter-placement"
measure = "time_out_completed"
percent = 95.0
source = "test department governance"
"#;

async fn get_as(app: &TestApp, role: Role, path: &str) -> reqwest::Response {
    app.request_as(role, Method::GET, path)
        .send()
        .await
        .expect("request")
}

async fn post_as(app: &TestApp, role: Role, path: &str, body: Value) -> reqwest::Response {
    app.request_as(role, Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn text_as(app: &TestApp, role: Role, path: &str) -> String {
    let response = get_as(app, role, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{} {path}", app.engine);
    response.text().await.expect("text")
}

/// A filter placed and the patient discharged, with a moderate bleed reported after: the case.
async fn case_with_moderate_event(app: &TestApp, mrn: &str) -> String {
    let (case_id, _) = filter_placed(app, mrn, true).await;
    let report = json!({"onset": "2026-11-24T07:30:00Z", "detected": "after_discharge",
        "description": "haematoma at the access site", "category": "bleeding",
        "severity": "moderate", "cirse_grade": 2, "treatment": "compression, overnight stay",
        "outcome": "resolved"});
    expect_status(
        post_as(
            app,
            Role::IrNurse,
            &format!("/cases/{case_id}/adverse-events"),
            report,
        )
        .await,
        StatusCode::CREATED,
        &app.engine,
    )
    .await;
    case_id
}

fn rate<'a>(rates: &'a Value, measure: &str) -> &'a Value {
    rates
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["measure"] == measure)
        .unwrap_or(&Value::Null)
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
async fn the_dashboard_counts_each_case_once_against_the_departments_thresholds() {
    for app in spawn_apps_with_thresholds(THRESHOLDS).await {
        let engine = &app.engine;
        case_with_moderate_event(&app, "QA-API-1").await;
        let path = "/quality?from=2026-11-01&until=2026-11-30";
        for role in [
            Role::IrNurse,
            Role::Radiographer,
            Role::Scheduler,
            Role::ReferringClinician,
            Role::MedicalPhysicist,
            Role::Administrator,
        ] {
            expect_status(
                get_as(&app, role, path).await,
                StatusCode::FORBIDDEN,
                engine,
            )
            .await;
        }
        let physician = expect_status(
            get_as(&app, Role::IrPhysician, path).await,
            StatusCode::OK,
            engine,
        )
        .await;
        let view = expect_status(
            get_as(&app, Role::QualityLead, path).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(
            physician, view,
            "{engine}: counts are the same for both roles"
        );
        let m = &view["measures"];
        let all = &m["department"];
        assert_eq!(all["volume"], 1, "{engine}: {view}");
        let any = rate(&all["rates"], "adverse_events");
        assert_eq!(
            (any["numerator"].as_u64(), any["denominator"].as_u64()),
            (Some(1), Some(1))
        );
        assert_eq!(rate(&all["rates"], "moderate")["numerator"], 1);
        assert_eq!(rate(&all["rates"], "severe_or_worse")["numerator"], 0);
        // 1 of 1 (95% CI 21-100%) is past 5% with its whole interval.
        assert_eq!(any["threshold"]["percent"], 5.0, "{any}");
        assert_eq!(any["standing"], "worse");
        assert!(
            rate(&all["rates"], "deaths").get("threshold").is_none(),
            "none set"
        );
        let filters = &m["procedures"][0];
        assert_eq!(filters["procedure"], "ivc-filter-placement");
        let time_out = rate(&filters["rates"], "time_out_completed");
        assert_eq!(time_out["threshold"]["percent"], 95.0, "{filters}");
        assert_eq!(time_out["standing"], "within");
        assert_eq!(m["ivc_filters"]["placed"], 1);
        let november = m["months"]
            .as_array()
            .and_then(|months| months.iter().find(|x| x["month"] == "2026-11"))
            .expect("November is a month of the period");
        assert_eq!(november["measures"]["volume"], 1);
        assert!(
            !view.to_string().contains("Testperson"),
            "{engine}: counts only"
        );

        // Every figure as CSV.
        let csv = text_as(
            &app,
            Role::QualityLead,
            "/quality?from=2026-11-01&until=2026-11-30&format=csv",
        )
        .await;
        assert!(csv.starts_with("month,procedure,measure,numerator_or_count,denominator,percent,ci95_low_percent,ci95_high_percent,threshold_percent,standing\r\n"), "{csv}");
        assert!(
            csv.contains("period,all,adverse_events,1,1,100.0,20.7,100.0,5,worse\r\n"),
            "{csv}"
        );
        assert!(csv.contains("2026-11,all,volume,1,"), "{csv}");

        // What is wrong, and where.
        for (query, field) in [
            ("?from=2026-13-01", "from"),
            ("?format=xml", "format"),
            ("?bogus=1", "bogus"),
        ] {
            let problem = expect_status(
                get_as(&app, Role::QualityLead, &format!("/quality{query}")).await,
                StatusCode::BAD_REQUEST,
                engine,
            )
            .await;
            assert!(field_named(&problem, field), "{engine}: {problem}");
        }
    }
}

#[tokio::test]
async fn the_mm_list_names_patients_only_to_those_who_read_cases_and_keeps_every_note() {
    for app in spawn_apps_with_thresholds("").await {
        let engine = &app.engine;
        let case_id = case_with_moderate_event(&app, "QA-API-2").await;
        let (quiet, _) = filter_placed(&app, "QA-API-3", true).await;
        let path = "/quality/mm?from=2026-11-01&until=2026-11-30";
        let identified = expect_status(
            get_as(&app, Role::IrPhysician, path).await,
            StatusCode::OK,
            engine,
        )
        .await;
        let cases = identified["cases"].as_array().expect("cases");
        assert_eq!(
            cases.len(),
            1,
            "{engine}: only the case with a moderate event"
        );
        assert_eq!(cases[0]["case_id"], case_id.as_str());
        assert_eq!(cases[0]["patient_name"], "Testperson, Robin");
        assert_eq!(cases[0]["mrn"], "QA-API-2");

        // The quality lead: the case by its pseudonym, nothing to find the patient by.
        let body = text_as(&app, Role::QualityLead, path).await;
        let deidentified: Value = serde_json::from_str(&body).expect("json");
        let reference = deidentified["cases"][0]["reference"]
            .as_str()
            .expect("a reference");
        assert!(reference.starts_with("C-"), "{reference}");
        assert_eq!(
            deidentified["cases"][0]["events"][0]["severity"],
            "moderate"
        );
        let patient_id = cases[0]["review"]["patient_id"].as_str().expect("id");
        for marker in ["Testperson", "QA-API-2", "1961-05-17", &case_id, patient_id] {
            assert!(!body.contains(marker), "{engine}: {marker} in {body}");
        }
        expect_status(
            get_as(&app, Role::IrNurse, path).await,
            StatusCode::FORBIDDEN,
            engine,
        )
        .await;

        // The meeting's notes: an IR physician's, kept, each on the version read.
        let notes = format!("/cases/{case_id}/mm-notes");
        let note = json!({"expected_version": 0, "meeting_on": "2026-11-24",
            "discussion": "haematoma after a jugular access; no ultrasound used",
            "actions": "ultrasound-guided access for every jugular puncture"});
        for role in [Role::QualityLead, Role::IrNurse] {
            expect_status(
                post_as(&app, role, &notes, note.clone()).await,
                StatusCode::FORBIDDEN,
                engine,
            )
            .await;
        }
        for (body, status, field) in [
            (
                json!({"expected_version": 0, "meeting_on": "2026-11-24", "discussion": " "}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "discussion",
            ),
            (
                json!({"expected_version": 0, "meeting_on": "2026-11-25", "discussion": "x"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "meeting_on",
            ),
        ] {
            let problem = expect_status(
                post_as(&app, Role::IrPhysician, &notes, body).await,
                status,
                engine,
            )
            .await;
            assert!(field_named(&problem, field), "{engine}: {problem}");
        }
        let problem = expect_status(
            post_as(
                &app,
                Role::IrPhysician,
                &format!("/cases/{quiet}/mm-notes"),
                note.clone(),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            engine,
        )
        .await;
        assert!(field_named(&problem, "case_id"), "{engine}: {problem}");
        let first = expect_status(
            post_as(&app, Role::IrPhysician, &notes, note.clone()).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(first["version"], 1);
        // The same form sent again (version 0) is stale: refused, not a second note.
        expect_status(
            post_as(&app, Role::IrPhysician, &notes, note.clone()).await,
            StatusCode::CONFLICT,
            engine,
        )
        .await;
        let mut later = note.clone();
        later["expected_version"] = json!(1);
        later["discussion"] = json!("follow-up: the new access policy is in place");
        let second = expect_status(
            post_as(&app, Role::IrPhysician, &notes, later).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(second["notes"].as_array().map(Vec::len), Some(2));
        assert_eq!(second["notes"][0]["by"], "ir_physician");
        let listed = expect_status(
            get_as(&app, Role::QualityLead, path).await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(
            listed["cases"][0]["review"]["notes"][1]["discussion"],
            "follow-up: the new access policy is in place"
        );
    }
}

#[tokio::test]
async fn the_registry_export_is_de_identified_in_every_form_and_links_patients_by_pseudonym() {
    for app in spawn_apps_with_thresholds("").await {
        let engine = &app.engine;
        let case_id = case_with_moderate_event(&app, "QA-API-4").await;
        let patient: Value = expect_status(
            app.get("/patients?mrn=QA-API-4").await,
            StatusCode::OK,
            engine,
        )
        .await;
        let patient_id = patient[0]["id"].as_str().expect("patient id").to_string();
        let base = "/quality/registry-export?from=2026-11-01&until=2026-11-30";
        let mut bodies = Vec::new();
        for dates in ["exact", "shifted"] {
            for format in [
                "format=json",
                "format=fhir",
                "format=csv&table=procedures",
                "format=csv&table=devices",
                "format=csv&table=adverse_events",
                "format=csv&table=dictionary",
            ] {
                let path = format!("{base}&{format}&dates={dates}");
                bodies.push((path.clone(), text_as(&app, Role::QualityLead, &path).await));
            }
        }
        for (path, body) in &bodies {
            for marker in [
                "Testperson",
                "Robin",
                "QA-API-4",
                "1961-05-17",
                "19610517",
                case_id.as_str(),
                patient_id.as_str(),
                "SN-API-1",
            ] {
                assert!(
                    !body.contains(marker),
                    "{engine}: {marker} in {path}: {body}"
                );
            }
        }
        let json_of = |n: usize| -> Value { serde_json::from_str(&bodies[n].1).expect("json") };
        let (exact, shifted) = (json_of(0), json_of(6));
        let procedure = &exact["procedures"][0];
        assert_eq!(procedure["procedure_code"], "ivc-filter-placement");
        assert_eq!(procedure["age_years"], "65");
        assert_eq!(procedure["procedure_date"], "2026-11-24");
        assert_eq!(procedure["adverse_events_attributed"], 1);
        assert_eq!(procedure["worst_sir_severity"], "moderate");
        assert_eq!(exact["devices"][0]["device_identifier"], "09506000134352");
        assert_eq!(exact["adverse_events"][0]["category"], "bleeding");
        // The same patient and case under the same pseudonyms; dates moved by whole weeks.
        assert_eq!(procedure["patient"], shifted["procedures"][0]["patient"]);
        assert_eq!(procedure["record"], shifted["procedures"][0]["record"]);
        let day = |v: &Value| {
            chrono::NaiveDate::parse_from_str(v.as_str().expect("date"), "%Y-%m-%d")
                .expect("a date")
        };
        let moved = (day(&procedure["procedure_date"])
            - day(&shifted["procedures"][0]["procedure_date"]))
        .num_days();
        assert!(moved % 7 == 0 && (7..=364).contains(&moved), "{moved}");
        let again = text_as(&app, Role::QualityLead, &format!("{base}&dates=shifted")).await;
        assert_eq!(
            again, bodies[6].1,
            "{engine}: the same export twice is the same"
        );

        let bundle = json_of(1);
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "collection");
        let types: Vec<&str> = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["resourceType"].as_str())
            .collect();
        for wanted in ["Patient", "Procedure", "Device", "AdverseEvent"] {
            assert!(types.contains(&wanted), "{engine}: {types:?}");
        }
        let dictionary = &bodies[5].1;
        for line in bodies[2].1.lines().take(1) {
            for column in line.split(',') {
                assert!(
                    dictionary.contains(&format!("procedures,{column},")),
                    "{engine}: {column} is not in the dictionary"
                );
            }
        }

        for (query, status, field) in [
            (
                "&format=csv&table=patients",
                StatusCode::BAD_REQUEST,
                "table",
            ),
            (
                "&format=fhir&table=devices",
                StatusCode::UNPROCESSABLE_ENTITY,
                "table",
            ),
            ("&format=xml", StatusCode::BAD_REQUEST, "format"),
            ("&dates=fuzzy", StatusCode::BAD_REQUEST, "dates"),
        ] {
            let problem = expect_status(
                get_as(&app, Role::QualityLead, &format!("{base}{query}")).await,
                status,
                engine,
            )
            .await;
            assert!(field_named(&problem, field), "{engine}: {problem}");
        }
        expect_status(
            get_as(&app, Role::IrNurse, base).await,
            StatusCode::FORBIDDEN,
            engine,
        )
        .await;
    }
}

/// Closes a task as a nurse on the version read.
async fn complete(app: &TestApp, task: &Value, mut body: Value) -> reqwest::Response {
    let id = task["id"].as_str().unwrap_or_default().to_string();
    body["expected_version"] = task["version"].clone();
    post_as(
        app,
        Role::IrNurse,
        &format!("/follow-up-tasks/{id}/complete"),
        body,
    )
    .await
}

/// The task of `kind` of a case, as the follow-up list gives it.
async fn task_of(app: &TestApp, case_id: &str, kind: &str) -> Value {
    let tasks = expect_status(
        app.get(&format!(
            "/follow-up-tasks?status=all&kind={kind}&case_id={case_id}"
        ))
        .await,
        StatusCode::OK,
        &app.engine,
    )
    .await;
    tasks[0].clone()
}

#[tokio::test]
async fn the_outcome_check_closes_with_a_coded_finding_the_dashboard_counts() {
    for app in spawn_apps_with_thresholds("").await {
        let engine = &app.engine;
        let eventful = case_with_moderate_event(&app, "QA-API-5").await;
        let (quiet, _) = filter_placed(&app, "QA-API-6", true).await;
        let check = task_of(&app, &quiet, "outcome_check").await;
        let review = task_of(&app, &quiet, "ivc_filter_retrieval_review").await;
        for (task, body) in [
            // The check needs its finding; no other task takes one.
            (&check, json!({"note": "telephoned, well"})),
            (
                &review,
                json!({"note": "reviewed", "finding": "no_adverse_event"}),
            ),
            // An adverse event found must be on the case first.
            (
                &check,
                json!({"note": "bruising", "finding": "adverse_event_reported"}),
            ),
        ] {
            let problem = expect_status(
                complete(&app, task, body).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                engine,
            )
            .await;
            assert!(field_named(&problem, "finding"), "{engine}: {problem}");
        }
        let done = expect_status(
            complete(
                &app,
                &check,
                json!({"note": "telephoned: well, no problem since", "finding": "no_adverse_event"}),
            )
            .await,
            StatusCode::OK,
            engine,
        )
        .await;
        assert_eq!(done["completed"]["finding"], "no_adverse_event", "{done}");
        let check = task_of(&app, &eventful, "outcome_check").await;
        expect_status(
            complete(
                &app,
                &check,
                json!({"note": "three calls unanswered", "finding": "not_reached"}),
            )
            .await,
            StatusCode::OK,
            engine,
        )
        .await;
        // Known for one of the two checks closed (the other patient was not reached).
        let view = expect_status(
            get_as(
                &app,
                Role::QualityLead,
                "/quality?from=2026-11-01&until=2026-11-30",
            )
            .await,
            StatusCode::OK,
            engine,
        )
        .await;
        let known = rate(&view["measures"]["department"]["rates"], "outcome_known");
        assert_eq!(
            (known["numerator"].as_u64(), known["denominator"].as_u64()),
            (Some(1), Some(2)),
            "{engine}: {known}"
        );
    }
}

//! The safety checklist of a recorded case, through the front door.

use crate::helpers::{accept_event, expect_status, spawn_apps};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn status_of<'a>(checklist: &'a Value, rule: &str) -> &'a str {
    checklist["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["rule"] == rule))
        .and_then(|i| i["status"].as_str())
        .unwrap_or("absent")
}

#[tokio::test]
async fn a_case_checklist_follows_what_is_recorded() {
    for app in spawn_apps().await {
        let patient = app.patient("SAFE-1").await;
        let patient_id = patient["id"].as_str().expect("id").to_string();
        let case_id = app.referral(&patient_id).await["case"]["id"]
            .as_str()
            .expect("case")
            .to_string();

        let checklist = expect_status(
            app.get(&format!("/cases/{case_id}/checklist")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(
            status_of(&checklist, "vetting"),
            "missing_data",
            "{checklist}"
        );

        expect_status(
            app.transition(&case_id, 1, accept_event(), None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let booking = json!({"type": "schedule", "room": "us-1", "start": "2026-11-26T08:00:00Z"});
        expect_status(
            app.transition(&case_id, 2, booking, None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let checklist = expect_status(
            app.get(&format!("/cases/{case_id}/checklist")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(checklist["overall"], "missing_data");
        for rule in [
            "assessment",
            "coagulation.inr",
            "coagulation.platelets",
            "consent",
        ] {
            assert_eq!(
                status_of(&checklist, rule),
                "missing_data",
                "{rule}: {checklist}"
            );
        }
        assert!(checklist["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["citation"]
                .as_str()
                .unwrap_or("")
                .starts_with("clinical-rules.md §")));

        // A high INR for a liver biopsy blocks.
        for (version, test, value, unit) in
            [(1, "inr", 2.5, "{INR}"), (2, "platelets", 200.0, "10*9/L")]
        {
            let lab = json!({"expected_version": version, "test": test, "value": value, "unit": unit, "drawn_at": "2026-11-24T06:00:00Z"});
            expect_status(
                app.post(&format!("/patients/{patient_id}/lab-results"), &lab)
                    .await,
                StatusCode::CREATED,
                &app.engine,
            )
            .await;
        }
        let apixaban = json!({"expected_version": 3, "drug": "apixaban", "dose": "5 mg", "frequency": "twice daily", "last_dose_at": "2026-11-24T06:00:00Z"});
        expect_status(
            app.post(&format!("/patients/{patient_id}/medications"), &apixaban)
                .await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        let assessment = json!({"type": "record_assessment", "assessment": {"setting": "outpatient", "asa_class": 2, "creatinine_clearance": 80}});
        expect_status(
            app.transition(&case_id, 3, assessment, None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let consent = json!({"type": "record_consent", "consent": {"obtained_by": "Dr Test", "obtained_at": "2026-11-24T07:00:00Z"}});
        let case = expect_status(
            app.transition(&case_id, 4, consent, None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(
            case["state"], "scheduled",
            "recording facts does not move the case"
        );

        let checklist = expect_status(
            app.get(&format!("/cases/{case_id}/checklist")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(checklist["overall"], "block", "{checklist}");
        assert_eq!(status_of(&checklist, "coagulation.inr"), "block");
        assert_eq!(status_of(&checklist, "coagulation.platelets"), "pass");
        assert_eq!(status_of(&checklist, "consent"), "pass");
        assert_eq!(status_of(&checklist, "assessment"), "absent");
        let hold = checklist["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["rule"] == "hold.apixaban")
            .expect("apixaban item");
        assert_eq!(hold["status"], "action_needed", "{hold}");
        assert_eq!(hold["actions"][0]["role"], "ir_nurse");
        assert_eq!(
            hold["actions"][0]["due"], "2026-11-24T08:00:00Z",
            "48 h before the start"
        );

        // The day's readiness and each role's tasks come from the same checklists.
        let day = expect_status(
            app.get("/readiness?date=2026-11-26").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(day.as_array().map(Vec::len), Some(1), "{day}");
        assert_eq!(day[0]["overall"], "block");
        assert_eq!(day[0]["mrn"], "SAFE-1");
        assert!(day[0]["open_items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["status"] != "pass"));
        let nurse = expect_status(
            app.get("/tasks?from=2026-11-26&days=1&role=ir_nurse").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let apixaban = nurse
            .as_array()
            .expect("tasks")
            .iter()
            .find(|t| t["rule"] == "hold.apixaban")
            .expect("apixaban task");
        assert_eq!(apixaban["due"], "2026-11-24T08:00:00Z");
        assert!(
            apixaban["what"]
                .as_str()
                .unwrap_or("")
                .contains("last apixaban dose no later than"),
            "{apixaban}"
        );
        let mine = expect_status(
            app.get("/tasks?from=2026-11-26&days=1").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert!(
            mine.as_array()
                .expect("tasks")
                .iter()
                .all(|t| t["role"] == "ir_physician"),
            "{mine}"
        );
        assert!(mine
            .as_array()
            .expect("tasks")
            .iter()
            .any(|t| t["rule"] == "coagulation.inr"));
        let empty = expect_status(
            app.get("/readiness?date=2026-11-27").await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(empty, json!([]));
        expect_status(
            app.get("/tasks?days=30").await,
            StatusCode::BAD_REQUEST,
            &app.engine,
        )
        .await;

        // Bad assessment input names the field and records nothing.
        let bad = json!({"type": "record_assessment", "assessment": {"setting": "inpatient", "asa_class": 7}});
        let problem = expect_status(
            app.transition(&case_id, 5, bad, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(
            fields,
            ["event.assessment.asa_class", "event.assessment.admitted_at"]
        );
    }
}

#[tokio::test]
async fn a_blocked_case_goes_in_room_only_after_a_physicians_override_with_a_reason() {
    use reqwest::Method;
    use seldinger_domain::access::Role;
    for app in spawn_apps().await {
        let patient = app.patient("BLOCK-1").await;
        let patient_id = patient["id"].as_str().expect("id").to_string();
        let case_id = app.referral(&patient_id).await["case"]["id"]
            .as_str()
            .expect("case")
            .to_string();
        let lab = json!({"expected_version": 1, "test": "inr", "value": 2.5, "unit": "{INR}", "drawn_at": "2026-11-24T06:00:00Z"});
        expect_status(
            app.post(&format!("/patients/{patient_id}/lab-results"), &lab)
                .await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        let steps = [
            accept_event(),
            json!({"type": "schedule", "room": "us-1", "start": "2026-11-24T09:00:00Z"}),
            json!({"type": "check_in"}),
        ];
        for (i, event) in steps.into_iter().enumerate() {
            expect_status(
                app.transition(&case_id, i as u64 + 1, event, None).await,
                StatusCode::OK,
                &app.engine,
            )
            .await;
        }
        let time_out = json!({"type": "start_procedure", "time_out": {
            "completed_at": "2026-11-24T07:00:00Z", "team_introduced": true, "patient_identity_confirmed": true,
            "procedure_and_site_confirmed": true, "consent_confirmed": true, "imaging_available": true, "equipment_available": true}});
        // Missing data stops the start like a block (clinical-rules.md §8, v2), naming each item.
        let problem = expect_status(
            app.transition(&case_id, 4, time_out.clone(), None).await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        assert_eq!(
            problem["blocking_rules"],
            json!([
                "assessment",
                "coagulation.inr",
                "coagulation.platelets",
                "consent"
            ]),
            "{}",
            app.engine
        );
        // Entering the missing data clears those items; the block stays.
        let platelets = json!({"expected_version": 2, "test": "platelets", "value": 180, "unit": "10*9/L", "drawn_at": "2026-11-24T06:00:00Z"});
        expect_status(
            app.post(&format!("/patients/{patient_id}/lab-results"), &platelets)
                .await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        let steps = [
            json!({"type": "record_assessment", "assessment": {"setting": "outpatient", "asa_class": 2}}),
            json!({"type": "record_consent", "consent": {"obtained_by": "Dr Test", "obtained_at": "2026-11-24T07:00:00Z"}}),
        ];
        for (i, event) in steps.into_iter().enumerate() {
            expect_status(
                app.transition(&case_id, i as u64 + 4, event, None).await,
                StatusCode::OK,
                &app.engine,
            )
            .await;
        }
        let problem = expect_status(
            app.transition(&case_id, 6, time_out.clone(), None).await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        assert_eq!(problem["type"], "urn:seldinger:problem:safety-blocked");
        assert_eq!(problem["blocking_rules"], json!(["coagulation.inr"]));

        let override_event =
            json!({"type": "override_safety_blocks", "rules": ["coagulation.inr"]});
        let by_nurse = app
            .request_as(Role::IrNurse, Method::POST, &format!("/cases/{case_id}/transitions"))
            .json(&json!({"expected_version": 6, "event": override_event, "reason": "bleeding controllable"}))
            .send()
            .await
            .expect("request");
        expect_status(by_nurse, StatusCode::FORBIDDEN, &app.engine).await;
        let no_reason = expect_status(
            app.transition(&case_id, 6, override_event.clone(), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(no_reason["errors"][0]["field"], "reason");
        let reason = "Emergent drainage; FFP running, benefit outweighs bleeding risk";
        expect_status(
            app.transition(&case_id, 6, override_event, Some(reason))
                .await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let started = expect_status(
            app.transition(&case_id, 7, time_out, None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(started["state"], "in_room");
        assert_eq!(started["safety_overrides"][0]["by"], "ir_physician");
        let history = expect_status(
            app.get(&format!("/cases/{case_id}/history")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let entry = history
            .as_array()
            .expect("history")
            .iter()
            .find(|e| e["kind"] == "override_safety_blocks")
            .expect("override recorded");
        assert_eq!(entry["reason"], reason);
        assert_eq!(entry["actor"], "ir_physician");
    }
}

#[tokio::test]
async fn the_planning_calculator_answers_without_storing_anything() {
    use reqwest::Method;
    use seldinger_domain::access::Role;
    for app in spawn_apps().await {
        // "When must this patient stop apixaban for a liver biopsy on Thursday 08:00?"
        let body = json!({
            "procedure_id": "biopsy-liver",
            "planned_start": "2026-11-26T08:00:00Z",
            "patient": {"birth_date": "1950-06-01", "sex": "male"},
            "assessment": {"setting": "outpatient", "asa_class": 2, "creatinine_clearance": 60},
            "drugs": [{"drug": "apixaban", "last_dose_at": "2026-11-23T20:00:00Z"}, {"drug": "mystery-herb"}],
            "labs": [{"test": "inr", "value": 1.1, "unit": "{INR}", "drawn_at": "2026-11-23T09:00:00Z"},
                     {"test": "platelets", "value": 210, "unit": "10*9/L", "drawn_at": "2026-11-23T09:00:00Z"}]
        });
        let response = app
            .request_as(Role::ReferringClinician, Method::POST, "/safety/evaluate")
            .json(&body)
            .send()
            .await
            .expect("request");
        let checklist = expect_status(response, StatusCode::OK, &app.engine).await;
        let hold = checklist["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["rule"] == "hold.apixaban")
            .expect("apixaban");
        assert_eq!(hold["status"], "action_needed");
        assert_eq!(
            hold["actions"][0]["due"], "2026-11-24T08:00:00Z",
            "Tuesday 08:00: two days before"
        );
        assert_eq!(
            status_of(&checklist, "hold.mystery-herb"),
            "missing_data",
            "unknown drugs are never passed"
        );
        assert_eq!(status_of(&checklist, "coagulation.inr"), "pass");

        // serde alone would take an array for the fasting times' object; the documented
        // schema does not, and neither does the server.
        let mut array_for_object = body.clone();
        array_for_object["fasting"] = json!([null, null]);
        let problem = expect_status(
            app.post("/safety/evaluate", &array_for_object).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "fasting", "{problem}");

        let bad = json!({
            "procedure_id": "biopsy-livr",
            "planned_start": "2026-11-26T08:00:00Z",
            "patient": {"birth_date": "1950-06-01", "sex": "m"},
            "labs": [{"test": "inr", "value": -1, "unit": "{INR}", "drawn_at": "2026-11-23T09:00:00Z"},
                     {"test": "creatinine", "value": 90, "unit": "mg/L"},
                     {"test": "inr", "value": 1.0, "unit": "{INR}"}]
        });
        let problem = expect_status(
            app.post("/safety/evaluate", &bad).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "procedure_id",
                "patient.sex",
                "labs[0].value",
                "labs[1].unit",
                "labs[1].drawn_at",
                "labs[2].drawn_at"
            ]
        );
        let cases = expect_status(app.get("/cases").await, StatusCode::OK, &app.engine).await;
        assert_eq!(cases, json!([]), "nothing was stored");
    }
}

/// The item's status, after recording a fact: the checklist is read from the current entries.
async fn checklist_status(app: &crate::helpers::TestApp, case_id: &str, rule: &str) -> String {
    let checklist = expect_status(
        app.get(&format!("/cases/{case_id}/checklist")).await,
        StatusCode::OK,
        &app.engine,
    )
    .await;
    status_of(&checklist, rule).to_string()
}

#[tokio::test]
async fn a_corrected_lab_and_a_withdrawn_drug_change_the_checklist_with_a_reason_kept() {
    for app in spawn_apps().await {
        let patient = app.patient("SAFE-FIX").await;
        let patient_id = patient["id"].as_str().expect("id").to_string();
        let case_id = app.referral(&patient_id).await["case"]["id"]
            .as_str()
            .expect("case")
            .to_string();
        expect_status(
            app.transition(&case_id, 1, accept_event(), None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let booking = json!({"type": "schedule", "room": "us-1", "start": "2026-11-26T08:00:00Z"});
        expect_status(
            app.transition(&case_id, 2, booking, None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let inr = json!({"expected_version": 1, "test": "inr", "value": 2.5, "unit": "{INR}", "drawn_at": "2026-11-24T06:00:00Z"});
        let record = expect_status(
            app.post(&format!("/patients/{patient_id}/lab-results"), &inr)
                .await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        let inr_entry = record["lab_results"][0]["entry"].as_u64().expect("entry");
        let apixaban = json!({"expected_version": 2, "drug": "apixaban", "dose": "5 mg", "last_dose_at": "2026-11-24T06:00:00Z"});
        let record = expect_status(
            app.post(&format!("/patients/{patient_id}/medications"), &apixaban)
                .await,
            StatusCode::CREATED,
            &app.engine,
        )
        .await;
        let drug_entry = record["medications"][0]["entry"].as_u64().expect("entry");
        assert_eq!(
            checklist_status(&app, &case_id, "coagulation.inr").await,
            "block"
        );
        assert_ne!(
            checklist_status(&app, &case_id, "hold.apixaban").await,
            "absent"
        );

        // Refused, each naming what was wrong, and nothing is written.
        let lab_path = format!("/patients/{patient_id}/lab-results/{inr_entry}");
        let fixed = json!({"expected_version": 3, "test": "inr", "value": 1.2, "unit": "{INR}", "drawn_at": "2026-11-24T06:00:00Z"});
        let mut no_reason = fixed.clone();
        no_reason["reason"] = json!("  ");
        let problem = expect_status(
            app.put(&lab_path, &no_reason).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "reason", "{problem}");
        let mut unchanged = fixed.clone();
        unchanged["value"] = json!(2.5);
        unchanged["reason"] = json!("check");
        let problem = expect_status(
            app.put(&lab_path, &unchanged).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert!(
            problem["errors"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("nothing changed")),
            "{problem}"
        );
        let mut stale = fixed.clone();
        stale["expected_version"] = json!(2);
        stale["reason"] = json!("transcription error");
        expect_status(
            app.put(&lab_path, &stale).await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        let unknown = format!("/patients/{patient_id}/lab-results/999999");
        let mut corrected = fixed.clone();
        corrected["reason"] = json!("transcription error: 1.2 read as 2.5");
        let problem = expect_status(
            app.put(&unknown, &corrected).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "entry", "{problem}");
        let referrer = app
            .request_as(
                seldinger_domain::access::Role::ReferringClinician,
                reqwest::Method::PUT,
                &lab_path,
            )
            .json(&corrected)
            .send()
            .await
            .expect("request");
        assert_eq!(referrer.status(), StatusCode::FORBIDDEN);

        let record = expect_status(
            app.put(&lab_path, &corrected).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(record["version"], 4);
        assert_eq!(record["lab_results"][0]["value"], 1.2);
        assert_eq!(record["lab_results"][0]["entry"], inr_entry);
        assert_eq!(
            checklist_status(&app, &case_id, "coagulation.inr").await,
            "pass"
        );

        let withdraw = json!({"expected_version": 4, "reason": "recorded for the wrong patient"});
        let drug_path = format!("/patients/{patient_id}/medications/{drug_entry}/entered-in-error");
        let record = expect_status(
            app.post(&drug_path, &withdraw).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(record["medications"], json!([]));
        assert_eq!(
            checklist_status(&app, &case_id, "hold.apixaban").await,
            "absent"
        );
        let again = json!({"expected_version": 5, "reason": "again"});
        let problem = expect_status(
            app.post(&drug_path, &again).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert!(
            problem["errors"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("withdrawn already")),
            "{problem}"
        );

        let history = expect_status(
            app.get(&format!("/patients/{patient_id}/history")).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        let changes: Vec<(String, String)> = history
            .as_array()
            .expect("history")
            .iter()
            .skip(3)
            .map(|e| {
                (
                    e["kind"].as_str().unwrap_or_default().to_string(),
                    e["reason"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        assert_eq!(
            changes,
            [
                (
                    "lab_result_corrected".to_string(),
                    "transcription error: 1.2 read as 2.5".to_string()
                ),
                (
                    "medication_entered_in_error".to_string(),
                    "recorded for the wrong patient".to_string()
                )
            ]
        );
    }
}

/// The calculator on one hypothetical case: its checklist item's status for `rule`.
async fn calculated(app: &crate::helpers::TestApp, body: &Value, rule: &str) -> (String, String) {
    let checklist = expect_status(
        app.post("/safety/evaluate", body).await,
        StatusCode::OK,
        &app.engine,
    )
    .await;
    let item = checklist["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule}: {checklist}"))
        .clone();
    (
        item["status"].as_str().unwrap_or_default().to_string(),
        item["reason"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn the_calculator_applies_clinical_rules_v2_at_their_boundaries() {
    for app in spawn_apps().await {
        let angiography = |route: &str, sheath: f64, inr: f64| {
            json!({
                "procedure_id": "peripheral-angioplasty",
                "planned_start": "2026-11-26T08:00:00Z",
                "modality": "fluoroscopy",
                "access_route": route,
                "sheath_french": sheath,
                "patient": {"birth_date": "1950-06-01", "sex": "male"},
                "labs": [{"test": "inr", "value": inr, "unit": "{INR}", "drawn_at": "2026-11-24T07:00:00Z"}]
            })
        };
        // §1.2: femoral passes below 1.8, radial below 2.2; at or above, block.
        for (route, limit) in [("femoral", 1.8), ("radial", 2.2)] {
            for (inr, expected) in [
                (limit - 0.01, "pass"),
                (limit, "block"),
                (limit + 0.01, "block"),
            ] {
                let (status, reason) =
                    calculated(&app, &angiography(route, 5.0, inr), "coagulation.inr").await;
                assert_eq!(status, expected, "{route} INR {inr}: {reason}");
            }
        }
        // §1.1: above 7 F an arterial procedure is high risk (INR 1.6 needs a physician then).
        for (sheath, expected) in [(6.9, "pass"), (7.0, "pass"), (7.1, "action_needed")] {
            let (status, reason) = calculated(
                &app,
                &angiography("femoral", sheath, 1.6),
                "coagulation.inr",
            )
            .await;
            assert_eq!(status, expected, "{sheath} F: {reason}");
        }
        // §1.2: a low-risk arterial procedure with no access route: missing data.
        let mut no_route = angiography("femoral", 5.0, 1.0);
        no_route
            .as_object_mut()
            .expect("object")
            .remove("access_route");
        let (status, reason) = calculated(&app, &no_route, "plan.access_route").await;
        assert_eq!(status, "missing_data");
        assert!(reason.starts_with("Missing data: access route"), "{reason}");
        let bad_route = angiography("carotid", 5.0, 1.0);
        let problem = expect_status(
            app.post("/safety/evaluate", &bad_route).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "access_route", "{problem}");

        // §1.3: no CrCl recorded: Cockcroft–Gault from age 68, 100 kg, creatinine; dabigatran's
        // 2-day row needs CrCl ≥ 50 (creatinine 2.0 gives exactly 50). The last dose, Tuesday
        // 07:00, is before the 2-day deadline (Tuesday 08:00: still a task) but after the 4-day
        // one (a block).
        let dabigatran = |creatinine: f64| {
            json!({
                "procedure_id": "biopsy-liver",
                "planned_start": "2026-11-26T08:00:00Z",
                "patient": {"birth_date": "1958-06-01", "sex": "male", "weight_kg": 100},
                "assessment": {"setting": "outpatient", "asa_class": 2},
                "drugs": [{"drug": "dabigatran", "last_dose_at": "2026-11-24T07:00:00Z"}],
                "labs": [{"test": "creatinine", "value": creatinine, "unit": "mg/dL", "drawn_at": "2026-11-24T07:00:00Z"}]
            })
        };
        for (creatinine, expected) in [
            (1.99, "action_needed"),
            (2.0, "action_needed"),
            (2.01, "block"),
        ] {
            let (status, reason) =
                calculated(&app, &dabigatran(creatinine), "hold.dabigatran").await;
            assert_eq!(status, expected, "creatinine {creatinine}: {reason}");
            assert!(
                reason.contains("estimated (Cockcroft–Gault)") && reason.contains("weight 100 kg"),
                "{reason}"
            );
        }
        // §3: no pregnancy status on the day counts as unknown: block.
        let (status, _) = calculated(
            &app,
            &json!({"procedure_id": "tace", "planned_start": "2026-11-26T08:00:00Z",
                    "modality": "fluoroscopy", "patient": {"birth_date": "1990-06-01", "sex": "female"}}),
            "pregnancy",
        )
        .await;
        assert_eq!(status, "block");
    }
}

#[tokio::test]
async fn the_access_plan_is_recorded_at_vetting_and_changed_before_the_room_with_a_reason() {
    use reqwest::Method;
    use seldinger_domain::access::Role;
    for app in spawn_apps().await {
        let case_id = app.new_case("ACCESS-1").await;
        let accept = json!({"type": "accept", "procedure_id": "diagnostic-angiography",
            "modality": "fluoroscopy", "sedation": "moderate", "priority": "routine",
            "access_route": "radial", "sheath_french": 5});
        let vetted = expect_status(
            app.transition(&case_id, 1, accept, None).await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(vetted["vetting"]["access_route"], "radial");
        assert_eq!(vetted["vetting"]["sheath_french"], 5.0);
        let change =
            json!({"type": "revise_access", "access_route": "femoral", "sheath_french": 8});
        // Changing a recorded plan needs a reason; a nurse may not change it at all.
        let no_reason = expect_status(
            app.transition(&case_id, 2, change.clone(), None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(no_reason["errors"][0]["field"], "reason", "{no_reason}");
        let by_nurse = app
            .request_as(
                Role::IrNurse,
                Method::POST,
                &format!("/cases/{case_id}/transitions"),
            )
            .json(&json!({"expected_version": 2, "event": change, "reason": "radial too small"}))
            .send()
            .await
            .expect("request");
        expect_status(by_nurse, StatusCode::FORBIDDEN, &app.engine).await;
        let changed = expect_status(
            app.transition(
                &case_id,
                2,
                change.clone(),
                Some("radial artery too small on ultrasound"),
            )
            .await,
            StatusCode::OK,
            &app.engine,
        )
        .await;
        assert_eq!(changed["vetting"]["access_route"], "femoral");
        // A stale version is refused.
        expect_status(
            app.transition(&case_id, 2, change, Some("again")).await,
            StatusCode::CONFLICT,
            &app.engine,
        )
        .await;
        let bad = json!({"type": "revise_access", "access_route": "carotid"});
        let problem = expect_status(
            app.transition(&case_id, 3, bad, Some("typo")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &app.engine,
        )
        .await;
        assert_eq!(
            problem["errors"][0]["field"], "event.access_route",
            "{problem}"
        );
    }
}

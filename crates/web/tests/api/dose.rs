//! Radiation dose through the API: reports arrive by the real ingest path, are linked, alert,
//! and are read, linked by hand, summed and exported by the roles allowed to.

use crate::helpers::{expect_status, now, safety_reference, spawn_apps, TestApp};
use dicom_dictionary_std::uids;
use reqwest::{Method, StatusCode};
use seldinger_dicom::fixtures::{event, plane, report};
use seldinger_dicom::ingest::{Ingest, Ingested};
use seldinger_domain::access::Role;
use serde_json::{json, Value};

/// A case for a fluoroscopy-guided embolization, booked in angio-1 at 09:00 for an hour, for
/// the patient the synthetic reports name (SDM100037).
pub(crate) async fn booked_embolization(app: &TestApp) -> (String, String) {
    let patient = app.patient("SDM100037").await;
    let referral = app
        .referral(patient["id"].as_str().expect("patient id"))
        .await;
    let case_id = referral["case"]["id"].as_str().expect("case").to_string();
    let accept = json!({"type": "accept", "procedure_id": "haemorrhage-embolization",
        "modality": "fluoroscopy", "sedation": "moderate", "priority": "urgent"});
    expect_status(
        app.transition(&case_id, 1, accept, None).await,
        StatusCode::OK,
        &app.engine,
    )
    .await;
    let schedule = json!({"type": "schedule", "room": "angio-1", "start": "2026-11-24T09:00:00Z", "duration_minutes": 60});
    expect_status(
        app.transition(&case_id, 2, schedule, None).await,
        StatusCode::OK,
        &app.engine,
    )
    .await;
    (case_id, patient["id"].as_str().expect("id").to_string())
}

pub(crate) async fn ingest(app: &TestApp, sop: &str, patient_id: &str, kar: &str) -> Ingested {
    let mut obj = report(
        uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
        sop,
        vec![
            plane(("0.0123", "Gy.m2"), (kar, "Gy"), ("754", "s")),
            event(
                &format!("{sop}.1"),
                ("113622", "Single Plane"),
                ("150", "dGy.cm2"),
                ("12", "mGy"),
            ),
        ],
    );
    obj.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::PATIENT_ID,
        dicom_core::VR::LO,
        patient_id,
    ));
    obj.put(dicom_core::DataElement::new(
        dicom_dictionary_std::tags::STUDY_INSTANCE_UID,
        dicom_core::VR::UI,
        format!("{sop}.0"),
    ));
    let parsed = seldinger_dicom::parse_object(&obj).expect("synthetic report parses");
    let reference = safety_reference();
    Ingest {
        store: &app._db.store,
        reference: &reference,
        station: None,
    }
    .report(&parsed, "test", now())
    .await
    .expect("stored")
}

async fn get_as(app: &TestApp, role: Role, path: &str) -> reqwest::Response {
    app.request_as(role, Method::GET, path)
        .send()
        .await
        .expect("request")
}

async fn post_as(app: &TestApp, role: Role, path: &str, body: &Value) -> reqwest::Response {
    app.request_as(role, Method::POST, path)
        .json(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn dose_reports_are_linked_summarised_resolved_by_hand_and_exported() {
    for app in spawn_apps().await {
        let engine = app.engine.clone();
        let (case_id, patient_id) = booked_embolization(&app).await;
        // Above the substantial radiation dose level (§5: 5 Gy) and below the review level.
        let linked = ingest(&app, "2.25.3001", "SDM100037", "6.2").await;
        assert!(
            matches!(linked, Ingested::Stored { ref tasks, .. } if tasks.len() == 1),
            "{engine}: {linked:?}"
        );
        // A report with an MRN the modality mistyped: it waits in the queue.
        ingest(&app, "2.25.3002", "SDM10037", "0.8").await;

        // Who may see dose: physicist yes, scheduler no.
        expect_status(
            get_as(&app, Role::Scheduler, "/dose/reports").await,
            StatusCode::FORBIDDEN,
            &engine,
        )
        .await;
        let all = expect_status(
            get_as(&app, Role::MedicalPhysicist, "/dose/reports").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(all.as_array().map(Vec::len), Some(2), "{engine}");
        let queue = expect_status(
            get_as(&app, Role::MedicalPhysicist, "/dose/reports?unmatched=true").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(queue[0]["sop_instance_uid"], "2.25.3002", "{engine}");
        assert!(
            queue[0]["unmatched_reason"]
                .as_str()
                .is_some_and(|r| r.contains("SDM10037")),
            "{queue}"
        );
        assert_eq!(queue[0]["extracted"]["planes"][0]["dose_rp_total"], 0.8);
        // The read of an unmatched report is audited with the patient identifier it shows.
        let trail = expect_status(
            get_as(
                &app,
                Role::Administrator,
                "/audit?patient_id=dicom-patient-id:SDM10037",
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        // Both reads of the report (the whole list and the unmatched queue) name it.
        assert!(
            trail.as_array().is_some_and(|rows| rows.len() >= 2),
            "{engine}: {trail}"
        );

        // The case's dose: totals, §5 assessment, the patient's note, the skin check.
        let dose = expect_status(
            get_as(&app, Role::IrNurse, &format!("/cases/{case_id}/dose")).await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(
            dose["totals"]["reference_air_kerma"], 6.2,
            "{engine}: {dose}"
        );
        assert_eq!(
            dose["assessment"]["levels_reached"][0]["measure"],
            "reference_air_kerma"
        );
        assert!(
            dose["discharge_note"]
                .as_str()
                .is_some_and(|n| n.contains("skin")),
            "{dose}"
        );
        assert_eq!(dose["follow_up_tasks"][0]["kind"], "dose_skin_check");
        assert_eq!(dose["comparisons"][0]["measure"], "kerma_area_product");
        assert_eq!(dose["comparisons"][0]["local"]["n"], 1);

        // The year's statistics, read now and kept while nothing changes.
        let kar_median = |stats: &Value| {
            stats["groups"][0]["measures"]
                .as_array()
                .and_then(|m| m.iter().find(|m| m["measure"] == "reference_air_kerma"))
                .and_then(|m| m["distribution"]["median"].as_f64())
        };
        let year = || async {
            expect_status(
                get_as(&app, Role::MedicalPhysicist, "/dose/statistics").await,
                StatusCode::OK,
                &engine,
            )
            .await
        };
        assert_eq!(kar_median(&year().await), Some(6.2), "{engine}");
        assert_eq!(kar_median(&year().await), Some(6.2), "{engine}: kept");

        // The physicist links the queued report by hand; a stale second attempt is refused.
        let link = |version: u64, reason: &str| json!({"expected_version": version, "case_id": case_id, "reason": reason});
        let path = "/dose/reports/2.25.3002/link";
        let no_reason = expect_status(
            post_as(&app, Role::MedicalPhysicist, path, &link(1, " ")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &engine,
        )
        .await;
        assert_eq!(no_reason["errors"][0]["field"], "reason", "{no_reason}");
        expect_status(
            post_as(&app, Role::Radiographer, path, &link(1, "typo")).await,
            StatusCode::FORBIDDEN,
            &engine,
        )
        .await;
        let linked = expect_status(
            post_as(
                &app,
                Role::MedicalPhysicist,
                path,
                &link(1, "MRN typo at the modality; same study time and room"),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(linked["link_basis"], "manual", "{linked}");
        // The link changed the department: the year's statistics are read again, not kept.
        let again = kar_median(&year().await).expect("median");
        assert!((again - 7.0).abs() < 1e-9, "{engine}: {again}");
        assert_eq!(linked["link_history"].as_array().map(Vec::len), Some(2));
        expect_status(
            post_as(&app, Role::MedicalPhysicist, path, &link(1, "again")).await,
            StatusCode::CONFLICT,
            &engine,
        )
        .await;

        // Cumulative dose over the patient's procedures, JSON and CSV.
        let cumulative = expect_status(
            get_as(
                &app,
                Role::IrPhysician,
                &format!("/patients/{patient_id}/dose"),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        let kar = cumulative["cumulative"]["reference_air_kerma"]
            .as_f64()
            .expect("kar");
        assert!(
            (kar - 7.0).abs() < 1e-9,
            "{engine}: two studies add up: {cumulative}"
        );
        let csv = get_as(
            &app,
            Role::IrPhysician,
            &format!("/patients/{patient_id}/dose?format=csv"),
        )
        .await;
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let text = csv.text().await.expect("csv");
        assert!(
            text.starts_with("case_id,procedure,performed_at,reference_air_kerma_gy"),
            "{text}"
        );
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l.starts_with("cumulative,")),
            "{text}"
        );

        // Statistics per procedure (with the local median and 75th percentile) and per device.
        let stats = expect_status(
            get_as(
                &app,
                Role::MedicalPhysicist,
                "/dose/statistics?by=procedure&from=2026-01-01&until=2026-12-31",
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(
            stats["groups"][0]["group"], "haemorrhage-embolization",
            "{stats}"
        );
        assert_eq!(stats["groups"][0]["cases"], 1);
        let kar_stats = stats["groups"][0]["measures"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["measure"] == "reference_air_kerma"))
            .expect("kar measure");
        assert_eq!(kar_stats["unit"], "Gy");
        assert!(
            (kar_stats["distribution"]["median"]
                .as_f64()
                .expect("median")
                - 7.0)
                .abs()
                < 1e-9
        );
        let bad = expect_status(
            get_as(&app, Role::MedicalPhysicist, "/dose/statistics?by=colour").await,
            StatusCode::BAD_REQUEST,
            &engine,
        )
        .await;
        assert_eq!(bad["errors"][0]["field"], "by");
        let csv = get_as(
            &app,
            Role::MedicalPhysicist,
            "/dose/statistics?by=device&format=csv",
        )
        .await
        .text()
        .await
        .expect("csv");
        assert!(
            csv.starts_with("group,name,measure,unit,n,min,median,p75,max"),
            "{csv}"
        );
        assert!(
            csv.contains("Synthetic Angio Co Biplane 9000,,reference_air_kerma,Gy,1,"),
            "{csv}"
        );
        let events = get_as(
            &app,
            Role::MedicalPhysicist,
            &format!("/cases/{case_id}/dose?format=csv"),
        )
        .await
        .text()
        .await
        .expect("csv");
        assert_eq!(
            events.lines().count(),
            3,
            "header and one event per report: {events}"
        );
        let reports_csv = get_as(&app, Role::MedicalPhysicist, "/dose/reports?format=csv")
            .await
            .text()
            .await
            .expect("csv");
        assert!(
            reports_csv
                .lines()
                .nth(1)
                .is_some_and(|l| l.contains("haemorrhage-embolization,angio-1,")),
            "{reports_csv}"
        );
    }
}

#[tokio::test]
async fn follow_up_tasks_are_listed_by_due_date_and_closed_once_by_the_right_role() {
    for app in spawn_apps().await {
        let engine = app.engine.clone();
        booked_embolization(&app).await;
        ingest(&app, "2.25.4001", "SDM100037", "5.0").await;
        let open = expect_status(
            get_as(&app, Role::IrNurse, "/follow-up-tasks").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(open.as_array().map(Vec::len), Some(1), "{engine}: {open}");
        let task = &open[0];
        assert_eq!(task["kind"], "dose_skin_check");
        assert_eq!(
            task["status"], "not_yet_due",
            "the window opens 14 days after"
        );
        assert_eq!(task["mrn"], "SDM100037");
        let due_now = expect_status(
            get_as(&app, Role::IrNurse, "/follow-up-tasks?status=due").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(due_now.as_array().map(Vec::len), Some(0));
        let path = format!(
            "/follow-up-tasks/{}/complete",
            task["id"].as_str().expect("id")
        );
        let body = |note: &str| json!({"expected_version": 1, "note": note});
        expect_status(
            post_as(&app, Role::Radiographer, &path, &body("fine")).await,
            StatusCode::FORBIDDEN,
            &engine,
        )
        .await;
        let no_note = expect_status(
            post_as(&app, Role::IrNurse, &path, &body("")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &engine,
        )
        .await;
        assert_eq!(no_note["errors"][0]["field"], "note");
        let done = expect_status(
            post_as(
                &app,
                Role::IrNurse,
                &path,
                &body("Phone call day 21: no redness, no itching"),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(done["status"], "done");
        assert_eq!(done["completed"]["by"], "ir_nurse");
        expect_status(
            post_as(&app, Role::IrNurse, &path, &body("again")).await,
            StatusCode::CONFLICT,
            &engine,
        )
        .await;
        let open = expect_status(
            get_as(&app, Role::IrNurse, "/follow-up-tasks").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(open.as_array().map(Vec::len), Some(0));
        // Where a task stands is asked of the database, and the list is paged with its total.
        let all = get_as(&app, Role::IrNurse, "/follow-up-tasks?status=all&limit=1").await;
        assert_eq!(
            all.headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok()),
            Some("1"),
            "{engine}"
        );
        let all = expect_status(all, StatusCode::OK, &engine).await;
        assert_eq!(all[0]["status"], "done", "{engine}: {all}");
        let closed = expect_status(
            get_as(&app, Role::IrNurse, "/follow-up-tasks?status=done").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(closed.as_array().map(Vec::len), Some(1), "{engine}");
        let withdrawn = expect_status(
            get_as(&app, Role::IrNurse, "/follow-up-tasks?status=withdrawn").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(withdrawn.as_array().map(Vec::len), Some(0), "{engine}");
    }
}

#[tokio::test]
async fn discharge_creates_the_device_follow_up_the_procedure_needs() {
    for app in spawn_apps().await {
        let engine = app.engine.clone();
        let case_id = app.new_case("IVC0001").await;
        let time_out = json!({"completed_at": "2026-11-24T07:00:00Z", "team_introduced": true,
            "patient_identity_confirmed": true, "procedure_and_site_confirmed": true,
            "consent_confirmed": true, "imaging_available": true, "equipment_available": true});
        let steps = [
            json!({"type": "accept", "procedure_id": "ivc-filter-placement", "modality": "fluoroscopy",
                   "sedation": "moderate", "priority": "urgent"}),
            json!({"type": "schedule", "room": "angio-1", "start": "2026-11-24T08:00:00Z"}),
            json!({"type": "check_in"}),
            // The start gate stops on missing data (§8); this walk is about the follow-up.
            json!({"type": "override_safety_blocks",
                   "rules": ["assessment", "fasting", "anaesthesia.review", "consent"]}),
            json!({"type": "start_procedure", "time_out": time_out}),
            json!({"type": "complete_procedure"}),
            json!({"type": "admit_to_recovery"}),
        ];
        for (i, event) in steps.into_iter().enumerate() {
            let reason = (event["type"] == "override_safety_blocks")
                .then_some("walk to discharge: the safety data is another test's");
            expect_status(
                app.transition(&case_id, i as u64 + 1, event, reason).await,
                StatusCode::OK,
                &engine,
            )
            .await;
        }
        // After moderate sedation with no recovery score, leaving recovery needs a reason (§4);
        // the refusal writes nothing, not even the follow-up.
        let refused = expect_status(
            app.transition(&case_id, 8, json!({"type": "discharge"}), None)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            &engine,
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], "reason", "{refused}");
        assert!(
            refused["errors"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("no recovery score is recorded")),
            "{refused}"
        );
        let none = expect_status(
            get_as(
                &app,
                Role::IrNurse,
                &format!("/follow-up-tasks?status=all&case_id={case_id}"),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(none, json!([]), "{engine}");
        let reason = "Transferred to ward 4 for overnight monitoring";
        expect_status(
            app.transition(&case_id, 8, json!({"type": "discharge"}), Some(reason))
                .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        let history = expect_status(
            app.get(&format!("/cases/{case_id}/history")).await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert_eq!(history[8]["kind"], "discharge", "{history}");
        assert_eq!(history[8]["reason"], reason);
        let tasks = expect_status(
            get_as(
                &app,
                Role::IrNurse,
                &format!("/follow-up-tasks?status=all&case_id={case_id}"),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        let filter = &tasks[0];
        assert_eq!(
            filter["kind"], "ivc_filter_retrieval_review",
            "{engine}: {tasks}"
        );
        // Discharged at the test clock (2026-11-24 07:30): day 29 to day 54 (§7, from the table).
        assert_eq!(filter["due_from"], "2026-12-23T07:30:00Z");
        assert_eq!(filter["due_until"], "2027-01-17T07:30:00Z");
        assert_eq!(filter["citation"], "clinical-rules.md §7");
        assert_eq!(filter["status"], "not_yet_due");
    }
}

/// The case's follow-up tasks of every status, as a physician reads them: (kind, status, id).
async fn case_tasks(app: &TestApp, case_id: &str) -> Vec<(String, String, String)> {
    let tasks = expect_status(
        get_as(
            app,
            Role::IrPhysician,
            &format!("/follow-up-tasks?status=all&case_id={case_id}"),
        )
        .await,
        StatusCode::OK,
        &app.engine,
    )
    .await;
    tasks
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            let field = |k: &str| t[k].as_str().unwrap_or_default().to_string();
            (field("kind"), field("status"), field("id"))
        })
        .collect()
}

#[tokio::test]
async fn a_report_moved_to_another_patient_takes_its_skin_check_with_it() {
    for app in spawn_apps().await {
        let engine = app.engine.clone();
        let (first, _) = booked_embolization(&app).await;
        ingest(&app, "2.25.4001", "SDM100037", "6.2").await;
        let before = case_tasks(&app, &first).await;
        assert_eq!(before.len(), 1, "{engine}: {before:?}");
        assert_eq!(before[0].0, "dose_skin_check");
        let other = app.new_case("SDM100038").await;

        // The physicist finds the report belongs to the other patient's case.
        let version = |detail: &Value| detail["link_version"].as_u64().expect("link_version");
        let detail = expect_status(
            get_as(&app, Role::MedicalPhysicist, "/dose/reports/2.25.4001").await,
            StatusCode::OK,
            &engine,
        )
        .await;
        let reason = "Wrong patient selected at the modality";
        let moved = expect_status(
            post_as(
                &app,
                Role::MedicalPhysicist,
                "/dose/reports/2.25.4001/link",
                &json!({"expected_version": version(&detail), "case_id": other, "reason": reason}),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        let left = case_tasks(&app, &first).await;
        assert_eq!(
            left,
            [(
                "dose_skin_check".to_string(),
                "withdrawn".to_string(),
                before[0].2.clone()
            )],
            "{engine}"
        );
        let task = expect_status(
            get_as(
                &app,
                Role::IrNurse,
                &format!("/follow-up-tasks?status=withdrawn&case_id={first}"),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        assert!(
            task[0]["withdrawn"]["note"]
                .as_str()
                .is_some_and(|n| n.contains("2.25.4001") && n.contains(reason)),
            "{task}"
        );
        assert_eq!(task[0]["withdrawn"]["by"], "medical_physicist");
        let arrived = case_tasks(&app, &other).await;
        assert_eq!(arrived.len(), 1, "{arrived:?}");
        assert_eq!(
            (arrived[0].0.as_str(), arrived[0].1.as_str()),
            ("dose_skin_check", "not_yet_due")
        );

        // A withdrawn task cannot be closed; moved back, the same task is open again.
        let close = post_as(
            &app,
            Role::IrNurse,
            &format!("/follow-up-tasks/{}/complete", before[0].2),
            &json!({"expected_version": 2, "note": "seen"}),
        )
        .await;
        assert!(close.status().is_client_error(), "{}", close.status());
        expect_status(
            post_as(
                &app,
                Role::MedicalPhysicist,
                "/dose/reports/2.25.4001/link",
                &json!({"expected_version": version(&moved), "case_id": first, "reason": "Moved in error"}),
            )
            .await,
            StatusCode::OK,
            &engine,
        )
        .await;
        let back = case_tasks(&app, &first).await;
        assert_eq!(
            back,
            [(
                "dose_skin_check".to_string(),
                "not_yet_due".to_string(),
                before[0].2.clone()
            )],
            "{engine}"
        );
        assert_eq!(case_tasks(&app, &other).await[0].1, "withdrawn");
    }
}

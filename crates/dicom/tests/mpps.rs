//! Modality Performed Procedure Steps on the real listener from pynetdicom (an independent MPPS
//! SCU; dcmtk has no free one), on both engines: a step from the worklist is linked exactly and
//! its completion ends the procedure of a case in the room; imaging that begins before the
//! time-out, a discontinued step and a step for no known case go on the review list, not lost;
//! a step done without the worklist is found by patient and room time; and every status the
//! standard gives — duplicate create, unknown instance, change after completion, missing
//! attributes — comes back as PS3.4 Annex F and PS3.7 say.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{listener, peer, pynetdicom, room};
use seldinger_dicom::fixtures;
use seldinger_dicom::ingest::{Ingest, Ingested};
use seldinger_domain::dose_link::{LinkBasis, LinkOutcome};
use seldinger_domain::lifecycle::{Case, CaseEvent, CaseState, TimeOut};
use seldinger_domain::performed_step::StepStatus;
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::DicomModality;
use seldinger_store::testing::{engines, records};
use seldinger_store::Store;
use serde_json::json;

/// 10 June 2031, UTC; London is an hour ahead (summer time), as the modality's clock.
fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 6, 10, hour, minute, 0)
        .single()
        .expect("time")
}

async fn in_room(store: &Store, case: &Case, when: DateTime<Utc>) -> Case {
    let case = records::step(store, case, CaseEvent::CheckIn, when)
        .await
        .expect("checked in");
    let time_out = TimeOut {
        completed_at: when,
        team_introduced: true,
        patient_identity_confirmed: true,
        procedure_and_site_confirmed: true,
        consent_confirmed: true,
        imaging_available: true,
        equipment_available: true,
    };
    records::step(store, &case, CaseEvent::StartProcedure { time_out }, when)
        .await
        .expect("in room")
}

/// The angio suite, its system ANGIO1.
async fn angio_suite(store: &Store) {
    store
        .put_room(&room("angio-1", "ANGIO1", DicomModality::Xa), 0)
        .await
        .expect("room");
}

async fn booked(store: &Store, mrn: &str, start: DateTime<Utc>) -> Case {
    let patient = records::patient_named(store, mrn, "Synthetic", start).await;
    records::booked_case_for(store, patient, "angio-1", start, 60).await
}

async fn case_state(store: &Store, case: &Case) -> CaseState {
    store
        .case(case.id)
        .await
        .expect("read")
        .expect("case")
        .state
}

fn scheduled(case: &Case) -> serde_json::Value {
    json!({
        "StudyInstanceUID": case.study_instance_uid,
        "AccessionNumber": case.accession_number,
        "ScheduledProcedureStepID": "SPS1",
    })
}

/// A station speaks only for its own room: the CT's system (or anything calling itself so)
/// reporting a completed step for a case in the angio suite, with the case's own worklist
/// identifiers, does not end its procedure; the step waits on the review list saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_from_another_rooms_system_never_moves_the_case() {
    let Some(python) = pynetdicom() else {
        return;
    };
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        angio_suite(store).await;
        store
            .put_room(&room("ct-1", "CTIR1", DicomModality::Ct), 1)
            .await
            .expect("room");
        let case = booked(store, "MPX1", at(8, 0)).await;
        let case = in_room(store, &case, at(8, 5)).await;
        let port = listener(store).await;
        let operations = json!([
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.1.70", "scheduled": scheduled(&case),
             "attrs": {"PatientID": "MPX1", "PerformedProcedureStepStartDate": "20310610",
                       "PerformedProcedureStepStartTime": "091000"}},
            {"op": "set", "uid": "1.2.826.0.1.3680043.10.1.70",
             "attrs": {"PerformedProcedureStepStatus": "COMPLETED",
                       "PerformedProcedureStepEndDate": "20310610",
                       "PerformedProcedureStepEndTime": "095500"}}
        ]);
        let answers = common::peer_as(
            &python,
            "mpps_scu.py",
            port,
            "CTIR1",
            &[&operations.to_string()],
        )
        .await;
        assert_eq!(
            answers[0]["status"].as_u64(),
            Some(0),
            "{engine}: {answers}"
        );
        assert_eq!(
            case_state(store, &case).await,
            CaseState::InRoom,
            "{engine}: not moved"
        );
        let review = store.performed_steps_to_review(50).await.expect("review");
        let step = review
            .iter()
            .find(|s| s.sop_instance_uid == "1.2.826.0.1.3680043.10.1.70")
            .expect("on the review list");
        let why = step.review.as_deref().unwrap_or_default();
        assert!(
            why.contains("CTIR1") && why.contains("not an imaging system of"),
            "{engine}: {why}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_from_the_rooms_system_move_and_flag_cases_with_the_standards_statuses() {
    let Some(python) = pynetdicom() else {
        return;
    };
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        angio_suite(store).await;
        // A: in the room (time-out done); B: checked in only; C: in the room, done as an
        // emergency on the modality without the worklist.
        let a = booked(store, "MPA1", at(8, 0)).await;
        let a = in_room(store, &a, at(8, 5)).await;
        let b = booked(store, "MPB2", at(10, 0)).await;
        let b = records::step(store, &b, CaseEvent::CheckIn, at(9, 50))
            .await
            .expect("checked in");
        let c = booked(store, "MPC3", at(12, 0)).await;
        let c = in_room(store, &c, at(12, 0)).await;
        let port = listener(store).await;

        let operations = json!([
            // 0: A's step begins (09:10 London).
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.1.1", "scheduled": scheduled(&a),
             "attrs": {"PatientID": "MPA1", "PerformedProcedureStepStartDate": "20310610",
                       "PerformedProcedureStepStartTime": "091000"}},
            // 1: the same step created again.
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.1.1", "scheduled": scheduled(&a),
             "attrs": {"PerformedProcedureStepStartDate": "20310610",
                       "PerformedProcedureStepStartTime": "091000"}},
            // 2: the dose so far.
            {"op": "set", "uid": "1.2.826.0.1.3680043.10.1.1",
             "attrs": {"TotalTimeOfFluoroscopy": 312, "ImageAndFluoroscopyAreaDoseProduct": "2350.5",
                       "EntranceDoseInmGy": "410"}},
            // 3: completed.
            {"op": "set", "uid": "1.2.826.0.1.3680043.10.1.1",
             "attrs": {"PerformedProcedureStepStatus": "COMPLETED",
                       "PerformedProcedureStepEndDate": "20310610",
                       "PerformedProcedureStepEndTime": "095500"}},
            // 4: changed after completion.
            {"op": "set", "uid": "1.2.826.0.1.3680043.10.1.1",
             "attrs": {"PerformedProcedureStepStatus": "DISCONTINUED"}},
            // 5: a step never created.
            {"op": "set", "uid": "1.2.826.0.1.3680043.10.1.99",
             "attrs": {"PerformedProcedureStepStatus": "COMPLETED"}},
            // 6: no step ID and no start time.
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.1.2", "scheduled": scheduled(&b),
             "omit": ["PerformedProcedureStepID", "PerformedProcedureStepStartTime"],
             "attrs": {"PerformedProcedureStepStartDate": "20310610"}},
            // 7: B's imaging begins before its time-out is recorded.
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.1.3", "scheduled": scheduled(&b),
             "attrs": {"PerformedProcedureStepStartDate": "20310610",
                       "PerformedProcedureStepStartTime": "105500"}},
            // 8: and is abandoned.
            {"op": "set", "uid": "1.2.826.0.1.3680043.10.1.3", "discontinued": "Patient condition",
             "attrs": {"PerformedProcedureStepStatus": "DISCONTINUED",
                       "PerformedProcedureStepEndDate": "20310610",
                       "PerformedProcedureStepEndTime": "110500"}},
            // 9: C done without the worklist: its patient, inside its room time (13:05 London).
            {"op": "create", "uid": null,
             "scheduled": {"StudyInstanceUID": "1.2.826.0.1.3680043.10.5.9"},
             "attrs": {"PatientID": "MPC3", "PerformedProcedureStepStartDate": "20310610",
                       "PerformedProcedureStepStartTime": "130500"}},
            // 10: a step for nobody Seldinger knows.
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.1.5",
             "attrs": {"PatientID": "UNKNOWN9", "PerformedProcedureStepStartDate": "20310610",
                       "PerformedProcedureStepStartTime": "140000"}},
            // 11: a step created COMPLETED.
            {"op": "create", "uid": "1.2.826.0.1.3680043.10.1.6", "scheduled": scheduled(&c),
             "attrs": {"PerformedProcedureStepStatus": "COMPLETED",
                       "PerformedProcedureStepStartDate": "20310610",
                       "PerformedProcedureStepStartTime": "130000"}}
        ]);
        let answers = peer(&python, "mpps_scu.py", port, &[&operations.to_string()]).await;
        let status = |n: usize| answers[n]["status"].as_u64().unwrap_or(u64::MAX);
        let expected = [
            0x0000, 0x0111, 0x0000, 0x0000, 0x0110, 0x0112, 0x0120, 0x0000, 0x0000, 0x0000, 0x0000,
            0x0106,
        ];
        for (n, want) in expected.into_iter().enumerate() {
            assert_eq!(status(n), want, "{engine}: operation {n}: {}", answers[n]);
        }
        // Missing attributes are named (pynetdicom reads the error comment of an N-CREATE
        // response, not its attribute list, which the listener sends too).
        let named = answers[6]["comment"].to_string();
        assert!(
            named.contains("(0040,0253)") && named.contains("(0040,0245)"),
            "{engine}: {named}"
        );
        assert!(
            answers[4]["comment"]
                .as_str()
                .is_some_and(|c| c.contains("COMPLETED")),
            "{engine}: {}",
            answers[4]
        );

        // A: linked exactly, its dose kept (2350.5 dGy·cm² = 0.023505 Gy·m²), procedure complete.
        let step = store
            .performed_step("1.2.826.0.1.3680043.10.1.1")
            .await
            .expect("read")
            .expect("step");
        assert_eq!(step.case_id, Some(a.id), "{engine}");
        assert_eq!(step.link_basis, Some(LinkBasis::AccessionNumber));
        assert_eq!(step.status, StepStatus::Completed);
        assert_eq!(step.started_at, at(8, 10), "{engine}: London summer time");
        assert_eq!(step.dose.fluoroscopy_time_s, Some(312.0));
        assert!(step
            .dose
            .dose_area_product_gy_m2
            .is_some_and(|d| (d - 0.023505).abs() < 1e-9));
        assert_eq!(step.dose.entrance_dose_mgy, Some(410.0));
        assert_eq!(step.review, None, "{engine}");
        assert_eq!(case_state(store, &a).await, CaseState::ProcedureComplete);

        // B: not moved (no time-out recorded); on the review list, discontinued with its reason.
        assert_eq!(
            case_state(store, &b).await,
            CaseState::CheckedIn,
            "{engine}"
        );
        let review = store.performed_steps_to_review(50).await.expect("review");
        let b_step = review
            .iter()
            .find(|s| s.sop_instance_uid == "1.2.826.0.1.3680043.10.1.3")
            .expect("B's step on the review list");
        assert!(
            b_step
                .review
                .as_deref()
                .is_some_and(|r| r.contains("Patient condition")),
            "{engine}: {:?}",
            b_step.review
        );

        // C: found by patient and room time; the step's UID was given by the listener.
        let c_steps = store.performed_steps_of_case(c.id).await.expect("steps");
        assert_eq!(c_steps.len(), 1, "{engine}");
        assert_eq!(c_steps[0].link_basis, Some(LinkBasis::PatientAndRoomTime));
        assert!(c_steps[0].sop_instance_uid.starts_with("2.25."), "{engine}");
        assert_eq!(case_state(store, &c).await, CaseState::InRoom);

        // Nobody's step waits for a person; a person's look at it is on the trail too (it names
        // a patient as the modality knows them).
        assert!(review
            .iter()
            .any(|s| s.sop_instance_uid == "1.2.826.0.1.3680043.10.1.5" && s.case_id.is_none()));
        let radiographer = seldinger_app::Principal {
            username: "rad.test".into(),
            role: seldinger_domain::access::Role::Radiographer,
            client_addr: "127.0.0.1".into(),
            break_glass_reason: None,
            via_message: None,
            via_claim: None,
        };
        let shown = common::app(store)
            .performed_steps_to_review(&radiographer, 50)
            .await
            .expect("review list");
        assert!(shown.iter().any(|s| s.case.is_none()), "{engine}");
        let trail = store
            .audit_page(
                &seldinger_store::AuditFilter {
                    username: Some("rad.test".into()),
                    ..Default::default()
                },
                None,
                100,
            )
            .await
            .expect("audit");
        assert!(
            trail
                .items
                .iter()
                .any(|e| e.resource_type == "performed_step"
                    && e.resource_id.as_deref() == Some("1.2.826.0.1.3680043.10.1.5")
                    && e.patient_id.is_none()),
            "{engine}: the unlinked step's read is audited"
        );

        // Dose reports. A's, with the booked study and no accession number: linked by study.
        let linked = |outcome: Ingested| match outcome {
            Ingested::Stored { link, .. } => link,
            other => panic!("{engine}: not stored: {other:?}"),
        };
        let a_study = a.study_instance_uid.clone().expect("booked study");
        let link = linked(dose_report(store, "2.25.9001", "MPA1", None, &a_study, "091000").await);
        assert!(
            matches!(link, Some(LinkOutcome::Linked { case_id, basis: LinkBasis::StudyInstanceUid }) if case_id == a.id),
            "{engine}: {link:?}"
        );
        // C's study, heard only in its unscheduled step: linked by it, whatever the patient ID.
        let link = linked(
            dose_report(
                store,
                "2.25.9002",
                "ELSEWHERE",
                None,
                "1.2.826.0.1.3680043.10.5.9",
                "130500",
            )
            .await,
        );
        assert!(
            matches!(link, Some(LinkOutcome::Linked { case_id, basis: LinkBasis::StudyInstanceUid }) if case_id == c.id),
            "{engine}: {link:?}"
        );
        // B's booked accession after B is cancelled: not put on another case by room time.
        let b_now = store.case(b.id).await.expect("read").expect("case");
        records::step(store, &b_now, CaseEvent::Cancel, at(11, 0))
            .await
            .expect("cancelled");
        let b_accession = b.accession_number.clone().expect("accession");
        let link = linked(
            dose_report(
                store,
                "2.25.9003",
                "MPB2",
                Some(&b_accession),
                "2.25.424242",
                "105500",
            )
            .await,
        );
        assert!(
            matches!(&link, Some(LinkOutcome::Unmatched { reason }) if reason.contains("booked in Seldinger")),
            "{engine}: {link:?}"
        );
    }
}

/// Ingests a synthetic dose report for `patient` with these study keys (date 10 June 2031).
async fn dose_report(
    store: &Store,
    sop: &str,
    patient: &str,
    accession: Option<&str>,
    study: &str,
    time: &str,
) -> Ingested {
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    let mut obj = fixtures::report(
        dicom_dictionary_std::uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
        sop,
        vec![fixtures::plane(
            ("0.0123", "Gy.m2"),
            ("0.81", "Gy"),
            ("754", "s"),
        )],
    );
    obj.put(DataElement::new(tags::PATIENT_ID, VR::LO, patient));
    obj.put(DataElement::new(
        tags::ACCESSION_NUMBER,
        VR::SH,
        accession.unwrap_or_default(),
    ));
    obj.put(DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, study));
    obj.put(DataElement::new(tags::STUDY_DATE, VR::DA, "20310610"));
    obj.put(DataElement::new(tags::STUDY_TIME, VR::TM, time));
    let parsed = seldinger_dicom::parse_object(&obj).expect("synthetic report");
    let reference = SafetyReference::parse(
        include_str!("../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("reference");
    Ingest {
        store,
        reference: &reference,
        station: None,
    }
    .report(&parsed, "test", at(12, 0))
    .await
    .expect("stored")
}

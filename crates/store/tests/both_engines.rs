//! Storage behaviour, run against every real engine available (SQLite always, PostgreSQL when
//! `SELDINGER_TEST_POSTGRES_URL` is set — `scripts/test` sets it and requires it).

use chrono::{DateTime, Duration, TimeZone, Utc};
use seldinger_domain::clinical::{LabResult, LabTest, Medication};
use seldinger_domain::followup::TaskStatus;
use seldinger_domain::lifecycle::{Case, CaseEvent, CaseState};
use seldinger_domain::patient::{PatientDetails, PatientEvent, PatientInput};
use seldinger_domain::referral::Urgency;
use seldinger_domain::{Actor, EventMeta, PatientId, RoomId};
use seldinger_store::testing::{engines, records, TestDatabase};
use seldinger_store::{
    CaseFilter, DoseReportFilter, FollowUpFilter, NewDoseReport, Standing, Store, StoreError,
};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 7, 30, 0)
        .single()
        .expect("valid")
}

fn meta(reason: Option<&str>) -> EventMeta {
    EventMeta {
        actor: Actor::parse("nurse.test").expect("actor"),
        at: now(),
        reason: reason.map(str::to_string),
    }
}

fn patient_input(mrn: &str, family: &str) -> PatientInput {
    PatientInput {
        site: "MAIN".into(),
        mrn: mrn.into(),
        family_name: family.into(),
        given_name: "Sam".into(),
        birth_date: "1955-03-02".into(),
        sex: "male".into(),
        ..Default::default()
    }
}

async fn register(store: &Store, mrn: &str, family: &str) -> PatientId {
    records::patient_named(store, mrn, family, now()).await
}

async fn refer(store: &Store, patient_id: PatientId) -> Case {
    records::referred_case(store, patient_id, "biopsy-liver", now()).await
}

async fn transition(store: &Store, case: &Case, event: CaseEvent) -> Result<Case, StoreError> {
    records::step(store, case, event, now()).await
}

fn accept() -> CaseEvent {
    CaseEvent::Accept {
        procedure_id: seldinger_domain::ProcedureId::parse("biopsy-liver").expect("id"),
        modality: seldinger_domain::GuidanceModality::Ultrasound,
        sedation: seldinger_domain::Sedation::Local,
        priority: Urgency::Routine,
        iodinated_contrast: false,
        access_route: None,
        sheath_french: None,
    }
}

fn label(db: &TestDatabase) -> String {
    format!("{:?}", db.engine())
}

#[tokio::test]
async fn patients_register_search_and_refuse_a_duplicate_mrn() {
    for db in engines().await {
        let store = &db.store;
        let id = register(store, "A100", "O'Brien").await;
        register(store, "A101", "Obi").await;
        let dup = PatientDetails::parse(&patient_input("a100", "Other"), now()).expect("valid");
        let err = store
            .register_patient(PatientId(Uuid::new_v4()), dup, &meta(None), &[])
            .await
            .expect_err("duplicate");
        assert!(
            matches!(err, StoreError::Duplicate(ref m) if m.contains("A100")),
            "{}: {err}",
            label(&db)
        );

        assert_eq!(
            store
                .search_patients(
                    &seldinger_store::RowScope::Department,
                    Some("a100"),
                    None,
                    10
                )
                .await
                .expect("search")[0]
                .id,
            id
        );
        let by_name = store
            .search_patients(
                &seldinger_store::RowScope::Department,
                None,
                Some("o'b"),
                10,
            )
            .await
            .expect("search");
        assert_eq!(by_name.len(), 1, "{}", label(&db));
        assert_eq!(
            store
                .search_patients(
                    &seldinger_store::RowScope::Department,
                    None,
                    Some("SAM"),
                    10
                )
                .await
                .expect("search")
                .len(),
            2
        );
        assert_eq!(
            store
                .search_patients(
                    &seldinger_store::RowScope::Department,
                    None,
                    Some("sam obi"),
                    10
                )
                .await
                .expect("search")
                .len(),
            1,
            "every word must match"
        );
        assert!(
            store
                .search_patients(&seldinger_store::RowScope::Department, None, Some("%"), 10)
                .await
                .expect("search")
                .is_empty(),
            "LIKE wildcards are literal"
        );
        for nothing in ["-", " ", " - "] {
            assert!(
                store
                    .search_patients(
                        &seldinger_store::RowScope::Department,
                        None,
                        Some(nothing),
                        10
                    )
                    .await
                    .expect("search")
                    .is_empty(),
                "{}: '{nothing}' holds no word and finds no one",
                label(&db)
            );
        }
        // Found by the start of any word of the name, hyphenated parts too, never by the
        // middle of one; a renamed patient by the new name only.
        register(store, "A102", "Nguyen").await;
        register(store, "A103", "Ng").await;
        let double = register(store, "A104", "Smith-Jones").await;
        let found = |name: &'static str| async move {
            let mut families: Vec<String> = store
                .search_patients(&seldinger_store::RowScope::Department, None, Some(name), 10)
                .await
                .expect("search")
                .into_iter()
                .map(|p| p.details.name.family)
                .collect();
            families.sort();
            families
        };
        assert_eq!(found("NG").await, ["Ng", "Nguyen"], "{}", label(&db));
        assert_eq!(found("jon").await, ["Smith-Jones"], "{}", label(&db));
        assert_eq!(found("smith-j").await, ["Smith-Jones"], "{}", label(&db));
        assert!(found("ith").await.is_empty(), "{}", label(&db));
        let renamed =
            PatientDetails::parse(&patient_input("A104", "Fairweather"), now()).expect("valid");
        store
            .update_patient(double, 1, renamed, &meta(None), &[])
            .await
            .expect("renamed");
        assert!(found("smith").await.is_empty(), "{}", label(&db));
        assert_eq!(found("fair sam").await, ["Fairweather"], "{}", label(&db));
        assert_eq!(store.patient_history(id).await.expect("history").len(), 1);
    }
}

#[tokio::test]
async fn stale_writes_are_refused_and_nothing_is_overwritten() {
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "B200", "Stale").await;
        let case = refer(store, patient).await;
        let vetted = transition(store, &case, accept())
            .await
            .expect("first writer wins");
        // A second writer still holding version 1:
        let err = transition(store, &case, CaseEvent::Decline)
            .await
            .expect_err("stale");
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    expected: 1,
                    current: 2,
                    ..
                }
            ),
            "{}: {err}",
            label(&db)
        );
        let stored = store.case(case.id).await.expect("read").expect("exists");
        assert_eq!(stored, vetted, "the stale write changed nothing");
        assert_eq!(store.case_history(case.id).await.expect("history").len(), 2);

        // Patient facts follow the same rule.
        let med = Medication {
            drug: "apixaban".into(),
            dose: "5 mg".into(),
            frequency: "twice daily".into(),
            last_dose_at: Some(now()),
            dose_intent: None,
            indication: None,
        };
        store
            .record_medication(patient, 1, med.clone(), &meta(None))
            .await
            .expect("at version 1");
        let err = store
            .record_medication(patient, 1, med, &meta(None))
            .await
            .expect_err("stale");
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "{}: {err}",
            label(&db)
        );
        assert_eq!(store.medications(patient).await.expect("meds").len(), 1);
    }
}

#[tokio::test]
async fn concurrent_writers_on_one_version_exactly_one_succeeds() {
    for db in engines().await {
        let store = db.store.clone();
        let patient = register(&store, "C300", "Race").await;
        let case = refer(&store, patient).await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (store, case) = (store.clone(), case.clone());
            tasks.push(tokio::spawn(async move {
                transition(&store, &case, accept()).await
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => won += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(other) => panic!("{}: unexpected {other}", label(&db)),
            }
        }
        assert_eq!(won, 1, "{}", label(&db));
        assert_eq!(store.case_history(case.id).await.expect("history").len(), 2);
    }
}

#[tokio::test]
async fn the_projection_is_what_the_events_say() {
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "D400", "Replay").await;
        let mut case = refer(store, patient).await;
        let start = now() + Duration::days(1);
        for event in [
            accept(),
            CaseEvent::Schedule {
                room: RoomId::parse("us-1").expect("room"),
                start,
                duration_minutes: None,
                study: None,
                performing_physician: None,
            },
            CaseEvent::CheckIn,
        ] {
            case = transition(store, &case, event).await.expect("transition");
        }
        let history = store.case_history(case.id).await.expect("history");
        let events: Vec<(CaseEvent, EventMeta)> = history
            .iter()
            .map(|e| {
                let event: CaseEvent = serde_json::from_value(e.payload.clone()).expect("event");
                let meta = EventMeta {
                    actor: Actor::parse(&e.actor).expect("actor"),
                    at: e.at,
                    reason: e.reason.clone(),
                };
                (event, meta)
            })
            .collect();
        let replayed = Case::replay(case.id, events.iter().map(|(e, m)| (e, m))).expect("replay");
        assert_eq!(
            Some(replayed),
            store.case(case.id).await.expect("read"),
            "{}",
            label(&db)
        );
        assert_eq!(
            history.iter().map(|e| e.version).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(history[0].kind, "referred");
        assert_eq!(
            history[2].payload["duration_minutes"], 45,
            "the booking length is recorded in the event"
        );

        // The department's day, in its own zone (far from UTC here, to be sure it is used).
        let zone = seldinger_domain::DepartmentTime::parse("Pacific/Auckland").expect("zone");
        let day = zone.day(zone.date_of(start));
        let on_day = CaseFilter {
            booked_between: Some(day),
            ..Default::default()
        };
        assert_eq!(
            store
                .cases(&seldinger_store::RowScope::Department, &on_day)
                .await
                .expect("cases")
                .len(),
            1
        );
        let up_to_start = CaseFilter {
            booked_between: Some((start - Duration::hours(1), start)),
            ..Default::default()
        };
        assert!(
            store
                .cases(&seldinger_store::RowScope::Department, &up_to_start)
                .await
                .expect("cases")
                .is_empty(),
            "{}: the span's end is not in it",
            label(&db)
        );
        let checked_in = CaseFilter {
            states: vec![CaseState::CheckedIn, CaseState::Vetted],
            ..Default::default()
        };
        assert_eq!(
            store
                .cases(&seldinger_store::RowScope::Department, &checked_in)
                .await
                .expect("cases")
                .len(),
            1
        );
        let other_day = CaseFilter {
            booked_between: Some(zone.day(zone.date_of(start) - chrono::Days::new(1))),
            ..Default::default()
        };
        assert!(store
            .cases(&seldinger_store::RowScope::Department, &other_day)
            .await
            .expect("cases")
            .is_empty());
        assert_eq!(
            store
                .referrals(&seldinger_store::RowScope::Department, true, 10)
                .await
                .expect("referrals")
                .len(),
            0,
            "vetted: no longer awaiting"
        );
    }
}

#[tokio::test]
async fn the_event_log_and_audit_log_cannot_be_edited_or_deleted() {
    for db in engines().await {
        let store = &db.store;
        register(store, "E500", "Append").await;
        store
            .append_audit(&seldinger_store::AuditEntry {
                seq: 0,
                at: now(),
                username: "dr.test".into(),
                role: "ir_physician".into(),
                action: "read".into(),
                resource_type: "patient".into(),
                resource_id: None,
                patient_id: None,
                client_addr: "127.0.0.1".into(),
                outcome: "allowed".into(),
                break_glass_reason: None,
                via_message: None,
                via_claim: None,
            })
            .await
            .expect("audit");
        // A second, raw connection: even SQL outside the repository cannot rewrite history.
        let raw = Store::connect(&db.url).await.expect("connect");
        for sql in [
            "UPDATE events SET actor = 'someone else'",
            "DELETE FROM events",
            "UPDATE audit_log SET username = 'someone else'",
            "DELETE FROM audit_log",
        ] {
            let err = raw.execute_raw_for_tests(sql).await.expect_err("refused");
            assert!(
                err.to_string().contains("append-only"),
                "{}: {sql}: {err}",
                label(&db)
            );
        }
        raw.close().await;
    }
}

#[tokio::test]
async fn labs_are_stored_with_their_draw_time_newest_first() {
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "F600", "Labs").await;
        let older = LabResult::new(LabTest::Inr, 1.1, now() - Duration::days(10)).expect("lab");
        let newer = LabResult::new(LabTest::Inr, 1.4, now() - Duration::days(1)).expect("lab");
        store
            .record_lab_result(patient, 1, older, &meta(None))
            .await
            .expect("lab");
        let p = store
            .record_lab_result(patient, 2, newer, &meta(None))
            .await
            .expect("lab");
        assert_eq!(p.version, 3);
        let labs = store.lab_results(patient).await.expect("labs");
        assert_eq!(
            labs.iter().map(|l| l.value).collect::<Vec<_>>(),
            [1.4, 1.1],
            "{}",
            label(&db)
        );
        assert_eq!(labs[0].loinc, "6301-6");
    }
}

#[tokio::test]
async fn a_corrected_or_withdrawn_lab_changes_the_current_view_and_the_history_keeps_both() {
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "F601", "Corrected").await;
        let other = register(store, "F602", "Other").await;
        let misread = LabResult::new(LabTest::Inr, 2.1, now() - Duration::hours(3)).expect("lab");
        let extra =
            LabResult::new(LabTest::Platelets, 90.0, now() - Duration::hours(2)).expect("lab");
        store
            .record_lab_result(patient, 1, misread, &meta(None))
            .await
            .expect("lab");
        store
            .record_lab_result(patient, 2, extra, &meta(None))
            .await
            .expect("lab");
        let entries = store.lab_result_entries(patient).await.expect("entries");
        let (inr_entry, platelet_entry) = (entries[1].0, entries[0].0);

        let right = LabResult::new(LabTest::Inr, 1.2, now() - Duration::hours(3)).expect("lab");
        let corrected = PatientEvent::LabResultCorrected {
            entry: inr_entry,
            result: right,
        };
        store
            .record_patient_fact(
                patient,
                3,
                &corrected,
                &meta(Some("transcription error")),
                &[],
            )
            .await
            .expect("corrected");
        let withdrawn = PatientEvent::LabResultEnteredInError {
            entry: platelet_entry,
        };
        store
            .record_patient_fact(patient, 4, &withdrawn, &meta(Some("wrong patient")), &[])
            .await
            .expect("withdrawn");
        let labs = store.lab_results(patient).await.expect("labs");
        assert_eq!(
            labs.iter().map(|l| (l.test, l.value)).collect::<Vec<_>>(),
            [(LabTest::Inr, 1.2)],
            "{}",
            label(&db)
        );

        // Withdrawn twice, or through another patient's record: refused, and nothing is written.
        for (who, version) in [(patient, 5), (other, 1)] {
            let err = store
                .record_patient_fact(who, version, &withdrawn, &meta(Some("again")), &[])
                .await
                .expect_err("not a current entry");
            assert!(
                matches!(err, StoreError::NotFound(_)),
                "{}: {err}",
                label(&db)
            );
        }
        assert_eq!(
            store
                .patient(patient)
                .await
                .expect("read")
                .expect("p")
                .version,
            5
        );
        assert_eq!(
            store
                .patient(other)
                .await
                .expect("read")
                .expect("p")
                .version,
            1
        );

        let history = store.patient_history(patient).await.expect("history");
        let kinds: Vec<_> = history.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "registered",
                "lab_result_recorded",
                "lab_result_recorded",
                "lab_result_corrected",
                "lab_result_entered_in_error"
            ]
        );
        assert_eq!(history[3].reason.as_deref(), Some("transcription error"));
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for db in engines().await {
        db.store.migrate().await.expect("second run is a no-op");
    }
}

#[tokio::test]
async fn a_resent_dose_report_is_stored_once_and_bad_files_are_quarantined() {
    for db in engines().await {
        let store = &db.store;
        let report = seldinger_store::NewDoseReport {
            sop_instance_uid: "2.25.500".into(),
            study_instance_uid: "2.25.5".into(),
            accession_number: Some("ACC9".into()),
            patient_id: Some("SDM1".into()),
            study_date: Some("20261124".into()),
            study_time: Some("0900".into()),
            device: "Synthetic Angio".into(),
            operator: Some("Physician Paul".into()),
            totals: Default::default(),
            source: "test".into(),
            data: serde_json::json!({"sop_instance_uid": "2.25.500"}),
        };
        assert!(
            store
                .store_dose_report(&report, now())
                .await
                .expect("store"),
            "{}: first time is new",
            label(&db)
        );
        assert!(
            !store
                .store_dose_report(&report, now())
                .await
                .expect("store"),
            "{}: re-sent is not new",
            label(&db)
        );
        let listed = store
            .dose_reports(
                &seldinger_store::RowScope::Department,
                &DoseReportFilter::default(),
            )
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].performed_at, Some(at(9, 0)));
        store
            .quarantine_dose_file(
                "junk.dcm",
                "not a readable DICOM file",
                Some(b"junk"),
                now(),
            )
            .await
            .expect("quarantine");
        assert_eq!(
            store.dose_quarantine().await.expect("list"),
            [(
                "junk.dcm".to_string(),
                "not a readable DICOM file".to_string()
            )]
        );
    }
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, hour, minute, 0)
        .single()
        .expect("valid")
}

fn dose_report(sop: &str, study: &str, mrn: &str, time: &str, kar_gray: f64) -> NewDoseReport {
    NewDoseReport {
        sop_instance_uid: sop.into(),
        study_instance_uid: study.into(),
        accession_number: None,
        patient_id: Some(mrn.into()),
        study_date: Some("20261124".into()),
        study_time: Some(time.into()),
        device: "Synthetic Angio Biplane 9000 ANGIO1".into(),
        operator: None,
        totals: seldinger_domain::dose::DoseTotals {
            reference_air_kerma: Some(seldinger_domain::dose::Gray(kar_gray)),
            ..Default::default()
        },
        source: "test".into(),
        data: serde_json::json!({}),
    }
}

fn reference() -> seldinger_domain::safety::SafetyReference {
    seldinger_domain::safety::SafetyReference::parse(
        include_str!("../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("reference")
}

/// A case booked into angio-1 from 09:00 for an hour.
async fn booked_case(store: &Store, mrn: &str) -> Case {
    seldinger_store::testing::records::booked_case(store, mrn, "angio-1", at(9, 0), 60).await
}

#[tokio::test]
async fn dose_reports_link_by_room_time_then_study_and_the_rest_wait_in_the_queue() {
    for db in engines().await {
        let store = &db.store;
        let case = booked_case(store, "LNK1").await;
        let m = meta(None);
        for report in [
            dose_report("2.25.601", "2.25.60", "LNK1", "091500", 1.0),
            // The same study re-sent later that day (outside the room time): follows the study.
            dose_report("2.25.602", "2.25.60", "LNK1", "230000", 2.0),
            // Another patient's report, and one with no time: both wait for a physicist.
            dose_report("2.25.603", "2.25.61", "NOBODY", "091500", 1.0),
            dose_report("2.25.604", "2.25.62", "LNK1", "", 1.0),
        ] {
            store
                .store_dose_report(&report, now())
                .await
                .expect("store");
            store
                .link_dose_report(&report.sop_instance_uid, &m, None)
                .await
                .expect("link");
        }
        let linked = store
            .case_dose_reports(case.id)
            .await
            .expect("case reports");
        let bases: Vec<_> = linked.iter().map(|r| r.link_basis).collect();
        assert_eq!(
            bases,
            [
                Some(seldinger_domain::dose_link::LinkBasis::PatientAndRoomTime),
                Some(seldinger_domain::dose_link::LinkBasis::StudyInstanceUid)
            ],
            "{}",
            label(&db)
        );
        let queue = store
            .dose_reports(
                &seldinger_store::RowScope::Department,
                &DoseReportFilter {
                    unmatched: true,
                    ..Default::default()
                },
            )
            .await
            .expect("queue");
        let mut queued: Vec<_> = queue.iter().map(|r| r.sop_instance_uid.as_str()).collect();
        queued.sort();
        assert_eq!(queued, ["2.25.603", "2.25.604"]);
        assert!(queue.iter().all(|r| r.unmatched_reason.is_some()));

        // A physicist links one by hand; a second physicist working from the same version is
        // refused, and the link history keeps both the automatic and the manual decision.
        let waiting = store
            .dose_report("2.25.603")
            .await
            .expect("read")
            .expect("stored");
        let manual = seldinger_domain::dose_link::LinkOutcome::Linked {
            case_id: case.id,
            basis: seldinger_domain::dose_link::LinkBasis::Manual,
        };
        store
            .record_dose_link(
                "2.25.603",
                waiting.link_version,
                &manual,
                &meta(Some("MRN typo on the modality")),
                &[],
                &[],
            )
            .await
            .expect("manual link");
        let stale = store
            .record_dose_link(
                "2.25.603",
                waiting.link_version,
                &manual,
                &meta(Some("again")),
                &[],
                &[],
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{}: {stale:?}",
            label(&db)
        );
        let history = store.dose_link_history("2.25.603").await.expect("history");
        let kinds: Vec<_> = history.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["unmatched", "linked"]);
        assert_eq!(
            history[1].reason.as_deref(),
            Some("MRN typo on the modality")
        );
    }
}

#[tokio::test]
async fn a_substantial_dose_creates_its_follow_up_tasks_once_and_they_close_once() {
    for db in engines().await {
        let store = &db.store;
        let reference = reference();
        let level = reference
            .threshold(seldinger_domain::safety::ThresholdId::DoseSrdlReferenceAirKerma)
            .value;
        let case = booked_case(store, "HIGH1").await;
        let m = meta(None);
        // Two reports of one study: the later (cumulative) one counts, not the sum.
        for (sop, kar) in [("2.25.701", level / 2.0), ("2.25.702", level)] {
            store
                .store_dose_report(&dose_report(sop, "2.25.70", "HIGH1", "091500", kar), now())
                .await
                .expect("store");
            store.link_dose_report(sop, &m, None).await.expect("link");
        }
        let (assessment, added) = store
            .assess_case_dose(case.id, &reference, &m)
            .await
            .expect("assess")
            .expect("has reports");
        assert!(assessment.substantial(), "{}", label(&db));
        assert_eq!(added.len(), 1);
        let (_, again) = store
            .assess_case_dose(case.id, &reference, &m)
            .await
            .expect("assess")
            .expect("has reports");
        assert!(again.is_empty(), "{}: not duplicated", label(&db));

        let open = store
            .follow_up_tasks(
                &seldinger_store::RowScope::Department,
                &FollowUpFilter {
                    open: true,
                    ..Default::default()
                },
            )
            .await
            .expect("tasks");
        assert_eq!(open.len(), 1);
        let task = &open[0];
        // Where the task stands is asked of the database; it answers as the domain does, at
        // and either side of each edge of the window.
        let mut moments = vec![task.due_from];
        moments.extend(task.due_until);
        let micro = chrono::Duration::microseconds(1);
        let moments: Vec<_> = moments
            .iter()
            .flat_map(|t| [*t - micro, *t, *t + micro])
            .collect();
        let standing_at = |at| async move {
            let mut found = Vec::new();
            for status in TaskStatus::ALL {
                let tasks = store
                    .follow_up_tasks(
                        &seldinger_store::RowScope::Department,
                        &FollowUpFilter {
                            standing: Some(Standing {
                                statuses: vec![*status],
                                now: at,
                            }),
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("tasks");
                if !tasks.is_empty() {
                    found.push(*status);
                }
            }
            found
        };
        for at in &moments {
            assert_eq!(
                standing_at(*at).await,
                [task.status(*at)],
                "{}: at {at}",
                label(&db)
            );
        }
        let done = task
            .complete("nurse.test", now(), "no erythema")
            .expect("complete");
        store
            .complete_follow_up_task(&done, task.version, &m, &[])
            .await
            .expect("recorded");
        for at in &moments {
            assert_eq!(standing_at(*at).await, [TaskStatus::Done], "{}", label(&db));
        }
        let stale = store
            .complete_follow_up_task(&done, task.version, &m, &[])
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{}: {stale:?}",
            label(&db)
        );
        let open = store
            .follow_up_tasks(
                &seldinger_store::RowScope::Department,
                &FollowUpFilter {
                    open: true,
                    ..Default::default()
                },
            )
            .await
            .expect("tasks");
        assert!(open.is_empty());
    }
}

#[tokio::test]
async fn an_accession_number_links_first_and_belongs_to_one_case() {
    for db in engines().await {
        let store = &db.store;
        let first = booked_case(store, "ACC1").await;
        let second = booked_case(store, "ACC2").await;
        let assign = |value: &str| CaseEvent::AssignAccession {
            accession_number: value.into(),
        };
        transition(store, &first, assign("A100"))
            .await
            .expect("assigned");
        let taken = transition(store, &second, assign("A100")).await;
        assert!(
            matches!(taken, Err(StoreError::Duplicate(_))),
            "{}: {taken:?}",
            label(&db)
        );
        // A report with the accession number but another patient's ID still finds its case.
        let mut report = dose_report("2.25.801", "2.25.80", "ACC2", "091500", 0.1);
        report.accession_number = Some("A100".into());
        store
            .store_dose_report(&report, now())
            .await
            .expect("store");
        store
            .link_dose_report("2.25.801", &meta(None), None)
            .await
            .expect("link");
        let stored = store
            .dose_report("2.25.801")
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(stored.case_id, Some(first.id), "{}", label(&db));
    }
}

#[tokio::test]
async fn cases_are_read_by_many_ids_at_once_and_unknown_ids_left_out() {
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "M700", "Many").await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(refer(store, patient).await.id);
        }
        let unknown = seldinger_domain::CaseId(Uuid::new_v4());
        let mut asked = vec![ids[2], unknown, ids[0], ids[0], ids[1]];
        let found = store.cases_by_id(&asked).await.expect("cases");
        let mut got: Vec<_> = found.iter().map(|c| c.id).collect();
        got.sort();
        ids.sort();
        assert_eq!(got, ids, "{}", label(&db));
        asked.clear();
        assert!(store.cases_by_id(&asked).await.expect("none").is_empty());
    }
}

#[tokio::test]
async fn a_list_reads_each_fact_table_once_for_all_its_patients_as_one_read_sees_one() {
    for db in engines().await {
        let store = &db.store;
        let first = register(store, "M710", "Listed").await;
        let second = register(store, "M711", "Listed").await;
        let bare = register(store, "M712", "Bare").await;
        let drug = |name: &str| Medication {
            drug: name.into(),
            dose: "5 mg".into(),
            frequency: "twice daily".into(),
            last_dose_at: None,
            dose_intent: None,
            indication: None,
        };
        store
            .record_medication(first, 1, drug("apixaban"), &meta(None))
            .await
            .expect("drug");
        store
            .record_medication(first, 2, drug("aspirin"), &meta(None))
            .await
            .expect("drug");
        store
            .record_medication(second, 1, drug("warfarin"), &meta(None))
            .await
            .expect("drug");
        let mut version = 3;
        for (hours, value) in [(30, 1.1), (3, 1.6)] {
            let lab =
                LabResult::new(LabTest::Inr, value, now() - Duration::hours(hours)).expect("lab");
            store
                .record_lab_result(first, version, lab, &meta(None))
                .await
                .expect("lab");
            version += 1;
        }
        // A result withdrawn as entered in error is left out of the list's read too.
        let withdrawn = store.lab_result_entries(first).await.expect("entries")[1].0;
        store
            .record_patient_fact(
                first,
                version,
                &PatientEvent::LabResultEnteredInError { entry: withdrawn },
                &meta(Some("wrong patient")),
                &[],
            )
            .await
            .expect("withdrawn");
        let unknown = PatientId(Uuid::new_v4());
        let asked = [second, first, bare, unknown, first];
        let drugs = store.medications_of(&asked).await.expect("drugs");
        let labs = store.lab_results_of(&asked).await.expect("labs");
        for patient in [first, second, bare] {
            assert_eq!(
                drugs[&patient],
                store.medications(patient).await.expect("one"),
                "{}",
                label(&db)
            );
            assert_eq!(
                labs[&patient],
                store.lab_results(patient).await.expect("one"),
                "{}",
                label(&db)
            );
        }
        assert_eq!(labs[&first].len(), 1, "{}", label(&db));
        assert!(drugs[&unknown].is_empty() && labs[&bare].is_empty());

        let mut patients: Vec<_> = store
            .patients_by_id(&asked)
            .await
            .expect("patients")
            .into_iter()
            .map(|p| p.id)
            .collect();
        patients.sort();
        let mut expected = vec![first, second, bare];
        expected.sort();
        assert_eq!(patients, expected, "{}", label(&db));
        let case = refer(store, first).await;
        let referrals = store
            .referrals_by_id(&[
                case.referral_id,
                seldinger_domain::ReferralId(Uuid::new_v4()),
            ])
            .await
            .expect("referrals");
        assert_eq!(
            referrals.iter().map(|r| r.case_id).collect::<Vec<_>>(),
            [case.id],
            "{}",
            label(&db)
        );
    }
}

#[tokio::test]
async fn a_list_s_audit_rows_are_one_commit_however_many() {
    for db in engines().await {
        let store = &db.store;
        let entry = |n: usize| records::case_read("lister", "read", n);
        // One statement's worth, more than one, and none.
        for count in [3, 401, 0] {
            let entries: Vec<_> = (0..count).map(entry).collect();
            store.append_audit_batch(&entries).await.expect("audit");
        }
        let filter = seldinger_store::AuditFilter {
            username: Some("lister".into()),
            ..Default::default()
        };
        let page = store.audit_page(&filter, None, 1000).await.expect("page");
        assert_eq!(page.total, 404, "{}", label(&db));
        let ids: Vec<_> = page
            .items
            .iter()
            .map(|e| e.resource_id.clone().unwrap_or_default())
            .collect();
        let expected: Vec<_> = (0..3).chain(0..401).map(|n| format!("case-{n}")).collect();
        assert_eq!(ids, expected, "in the order given: {}", label(&db));
    }
}

/// Sixty readers append their audit rows at the same moment: they share commits (group
/// commit), and each returns only once its own rows are committed, each row there once, each
/// reader's rows together and in its order.
#[tokio::test]
async fn audit_rows_appended_at_once_share_commits_and_each_is_kept_once() {
    for db in engines().await {
        let store = &db.store;
        let readers = (0..60).map(|reader| {
            let store = store.clone();
            tokio::spawn(async move {
                let entries: Vec<_> = (0..5)
                    .map(|n| records::case_read(&format!("reader-{reader}"), "read_board", n))
                    .collect();
                store.append_audit_batch(&entries).await.expect("audit");
                // Returned: committed, so readable at once.
                let filter = seldinger_store::AuditFilter {
                    username: Some(format!("reader-{reader}")),
                    ..Default::default()
                };
                store.audit_page(&filter, None, 100).await.expect("page")
            })
        });
        for reader in readers.collect::<Vec<_>>() {
            let page = reader.await.expect("reader");
            let ids: Vec<_> = page
                .items
                .iter()
                .map(|e| e.resource_id.clone().unwrap_or_default())
                .collect();
            assert_eq!(
                ids,
                (0..5).map(|n| format!("case-{n}")).collect::<Vec<_>>(),
                "{}",
                label(&db)
            );
            let seqs: Vec<_> = page.items.iter().map(|e| e.seq).collect();
            assert!(
                seqs.windows(2).all(|w| w[1] == w[0] + 1),
                "{}: one reader's rows are written together: {seqs:?}",
                label(&db)
            );
        }
    }
}

#[tokio::test]
async fn a_change_whose_audit_row_cannot_be_written_is_not_made() {
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "AUDIT-1", "Trail").await;
        // The audit log refuses every row, as a full disk or a broken trigger would.
        let refuse = match db.engine() {
            seldinger_store::Engine::Sqlite => vec![
                "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'audit unavailable'); END",
            ],
            seldinger_store::Engine::Postgres => vec![
                "CREATE FUNCTION audit_refuses() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'audit unavailable'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER audit_refuses BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_refuses()",
            ],
        };
        for sql in refuse {
            store.execute_raw_for_tests(sql).await.expect("trigger");
        }
        let audit = seldinger_store::AuditEntry {
            seq: 0,
            at: now(),
            username: "nurse.test".into(),
            role: "ir_nurse".into(),
            action: "create".into(),
            resource_type: "lab_result".into(),
            resource_id: Some(patient.to_string()),
            patient_id: Some(patient.to_string()),
            client_addr: "127.0.0.1".into(),
            outcome: "allowed".into(),
            break_glass_reason: None,
            via_message: None,
            via_claim: None,
        };
        let inr = LabResult::new(LabTest::Inr, 1.1, now()).expect("lab");
        let event = PatientEvent::LabResultRecorded { result: inr };
        let refused = store
            .record_patient_fact(patient, 1, &event, &meta(None), &[audit])
            .await;
        assert!(refused.is_err(), "{}: {refused:?}", label(&db));
        // Nothing of the change stands: no lab, no event, the same version.
        assert!(store.lab_results(patient).await.expect("labs").is_empty());
        assert_eq!(
            store
                .patient(patient)
                .await
                .expect("read")
                .expect("patient")
                .version,
            1,
            "{}",
            label(&db)
        );
        assert_eq!(
            store.patient_history(patient).await.expect("history").len(),
            1
        );
    }
}

#[tokio::test]
async fn lists_come_in_pages_in_a_stable_order_with_the_total() {
    use seldinger_store::RowScope;
    for db in engines().await {
        let store = &db.store;
        let mut made = Vec::new();
        for i in 0..7 {
            let patient = register(store, &format!("PAGE-{i}"), "Pager").await;
            made.push(refer(store, patient).await.id);
        }
        let filter = CaseFilter {
            limit: 3,
            ..Default::default()
        };
        let first = store
            .cases_page(&RowScope::Department, &filter, None)
            .await
            .expect("page 1");
        assert_eq!((first.items.len(), first.total), (3, 7), "{}", label(&db));
        // A case added between pages does not shift the next page, whatever its place.
        let late = refer(store, register(store, "PAGE-LATE", "Pager").await).await;
        let second = store
            .cases_page(&RowScope::Department, &filter, first.next.as_ref())
            .await
            .expect("page 2");
        let third = store
            .cases_page(&RowScope::Department, &filter, second.next.as_ref())
            .await
            .expect("page 3");
        let mut seen: Vec<_> = first
            .items
            .iter()
            .chain(&second.items)
            .chain(&third.items)
            .map(|c| c.id)
            .collect();
        let pages = [first.items.len(), second.items.len(), third.items.len()];
        // Every case once; the late one appears only if it sorts after the first page.
        let before_dedup = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            before_dedup,
            "{}: no case twice {pages:?}",
            label(&db)
        );
        for id in &made {
            assert!(seen.contains(id), "{}: {id} on a page", label(&db));
        }
        // The pages end, and a fresh first page counts the late case in the total.
        assert!(
            !third.has_more(),
            "{}: 8 cases fit 3 pages of 3",
            label(&db)
        );
        let again = store
            .cases_page(&RowScope::Department, &filter, None)
            .await
            .expect("again");
        assert_eq!(again.total, 8, "{}", label(&db));
        // A first page that holds every row says the same total.
        let whole = store
            .cases_page(
                &RowScope::Department,
                &CaseFilter {
                    limit: 100,
                    ..Default::default()
                },
                None,
            )
            .await
            .expect("whole");
        assert_eq!((whole.items.len(), whole.total), (8, 8), "{}", label(&db));
        let _ = late;
        // Scope narrows the total too: a referrer with no cases has none.
        let none = store
            .cases_page(&RowScope::ReferredBy("nobody".into()), &filter, None)
            .await
            .expect("scoped");
        assert_eq!(
            (none.items.len(), none.total, none.has_more()),
            (0, 0, false)
        );
    }
}

fn with(owed: &[seldinger_store::NewOutboundMessage]) -> seldinger_store::WithCaseEvent<'_> {
    seldinger_store::WithCaseEvent {
        owed,
        ..Default::default()
    }
}

fn owed(destination: &str, case: &Case, trigger: &str) -> seldinger_store::NewOutboundMessage {
    seldinger_store::NewOutboundMessage {
        id: Uuid::new_v4().to_string(),
        destination: destination.into(),
        patient_id: case.patient_id.to_string(),
        case_id: Some(case.id.to_string()),
        trigger: trigger.into(),
        payload: format!("{{\"trigger\":\"{trigger}\"}}"),
        created_at: now(),
    }
}

/// One sender at a time holds a destination: a second is refused while the lease runs, takes
/// it once it has lapsed (the holder died), and the old holder then cannot renew it; giving it
/// up frees it at once, and only its holder can give it up. Many senders asking at once: one
/// is granted.
#[tokio::test]
async fn one_sender_at_a_time_holds_a_destination() {
    for db in engines().await {
        let store = &db.store;
        let at = now();
        let until = at + Duration::seconds(80);
        let hold = |holder: &'static str, at: DateTime<Utc>| async move {
            store
                .outbox_lease_hold("ris", holder, at, at + Duration::seconds(80))
                .await
                .expect("lease")
        };
        assert!(hold("node-a", at).await, "{}: free", label(&db));
        assert!(!hold("node-b", at).await, "{}: held by A", label(&db));
        assert!(
            hold("node-a", at + Duration::seconds(30)).await,
            "{}: A renews",
            label(&db)
        );
        // A's renewal ran to at + 110 s; B waits it out.
        assert!(!hold("node-b", until).await, "{}: renewed", label(&db));
        assert!(
            store
                .outbox_lease_hold("pacs", "node-b", at, until)
                .await
                .expect("lease"),
            "{}: another destination is its own",
            label(&db)
        );
        let lapsed = at + Duration::seconds(110);
        assert!(hold("node-b", lapsed).await, "{}: lapsed", label(&db));
        assert!(!hold("node-a", lapsed).await, "{}: A lost it", label(&db));
        store
            .outbox_lease_release("ris", "node-a")
            .await
            .expect("release");
        assert!(
            !hold("node-a", lapsed).await,
            "{}: only the holder gives it up",
            label(&db)
        );
        store
            .outbox_lease_release("ris", "node-b")
            .await
            .expect("release");
        assert!(hold("node-a", lapsed).await, "{}: given up", label(&db));

        // Eight senders ask for a free destination at the same moment: one is granted.
        let asks = (0..8).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .outbox_lease_hold("orders", &format!("sender-{n}"), at, until)
                    .await
                    .expect("lease")
            })
        });
        let mut granted = 0;
        for ask in asks.collect::<Vec<_>>() {
            granted += usize::from(ask.await.expect("asked"));
        }
        assert_eq!(granted, 1, "{}", label(&db));
    }
}

/// The outbox rows a case event owes are written in its commit (none when the event is
/// refused), come back per destination in the order owed, keep their first rendering, and end
/// sent, rejected (sent again on request, rendered anew) or skipped.
#[tokio::test]
async fn messages_owed_by_an_event_are_kept_with_it_and_sent_in_order() {
    use seldinger_store::{OutboxFilter, OutboxStatus};
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "OUT-1", "Outbox").await;
        let case = transition(store, &refer(store, patient).await, accept())
            .await
            .expect("vetted");
        let m = meta(None);
        let booking = CaseEvent::Schedule {
            room: RoomId::parse("us-1").expect("room"),
            start: now() + Duration::days(1),
            duration_minutes: Some(30),
            study: None,
            performing_physician: None,
        };
        let decided = case
            .decide(booking, &m, &records::catalogue())
            .expect("allowed");
        let mut after = case.clone();
        after.apply(&decided, &m).expect("applies");
        let rows = [
            owed("ris", &after, "booked"),
            owed("pacs", &after, "booked"),
        ];
        // A stale write owes nothing: its rows go with it.
        let stale = store
            .record_case_event(&after, case.version - 1, &decided, &m, with(&rows))
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{}",
            label(&db)
        );
        assert!(store
            .outbox_pending("ris", 10)
            .await
            .expect("read")
            .is_empty());
        store
            .record_case_event(&after, case.version, &decided, &m, with(&rows))
            .await
            .expect("booked");
        let later = owed("ris", &after, "rescheduled");
        let ris = store.outbox_pending("ris", 10).await.expect("read");
        assert_eq!(ris.len(), 1, "{}", label(&db));
        assert_eq!(ris[0].owed, rows[0], "{}", label(&db));
        assert_eq!(ris[0].status, OutboxStatus::Pending);
        // A second owed message queues behind the first.
        let moved = CaseEvent::Schedule {
            room: RoomId::parse("us-1").expect("room"),
            start: now() + Duration::days(2),
            duration_minutes: Some(30),
            study: None,
            performing_physician: None,
        };
        let m2 = meta(Some("list moved"));
        let decided = after.decide(moved, &m2, &records::catalogue()).expect("ok");
        let mut moved_case = after.clone();
        moved_case.apply(&decided, &m2).expect("applies");
        store
            .record_case_event(
                &moved_case,
                after.version,
                &decided,
                &m2,
                with(std::slice::from_ref(&later)),
            )
            .await
            .expect("rescheduled");
        let ris = store.outbox_pending("ris", 10).await.expect("read");
        let order: Vec<&str> = ris.iter().map(|r| r.owed.trigger.as_str()).collect();
        assert_eq!(order, ["booked", "rescheduled"], "{}", label(&db));
        assert!(ris[0].seq < ris[1].seq);

        // Rendered once: a second rendering (after a restart) keeps the first.
        let first = store
            .outbox_rendered(&ris[0].owed.id, "C1", "MSH|first")
            .await
            .expect("rendered");
        let again = store
            .outbox_rendered(&ris[0].owed.id, "C2", "MSH|second")
            .await
            .expect("rendered");
        assert_eq!(first, ("C1".to_string(), "MSH|first".to_string()));
        assert_eq!(again, first, "{}", label(&db));
        store
            .outbox_retry_at(
                &ris[0].owed.id,
                "connection refused",
                now() + Duration::seconds(4),
            )
            .await
            .expect("retry");
        store
            .outbox_finished(
                &ris[0].owed.id,
                OutboxStatus::Sent,
                Some("MSA|AA|C1"),
                None,
                now(),
            )
            .await
            .expect("sent");
        store
            .outbox_finished(
                &ris[1].owed.id,
                OutboxStatus::Rejected,
                Some("MSA|AE"),
                Some("AE: no"),
                now(),
            )
            .await
            .expect("rejected");
        let sent = store
            .outbound_message(&ris[0].owed.id)
            .await
            .expect("read")
            .expect("row");
        assert_eq!(
            (sent.status, sent.attempts),
            (OutboxStatus::Sent, 2),
            "{}",
            label(&db)
        );
        assert_eq!(sent.last_error.as_deref(), Some("connection refused"));
        // Sent again: back in the queue, to be rendered anew.
        assert!(store
            .outbox_send_again(&ris[1].owed.id, now())
            .await
            .expect("again"));
        assert!(!store
            .outbox_send_again(&ris[0].owed.id, now())
            .await
            .expect("not sent ones"));
        let back = store.outbox_pending("ris", 10).await.expect("read");
        assert_eq!(back.len(), 1);
        assert_eq!(
            (back[0].message.clone(), back[0].control_id.clone()),
            (None, None)
        );
        store
            .outbox_finished(
                &rows[1].id,
                OutboxStatus::Skipped,
                None,
                Some("not for pacs"),
                now(),
            )
            .await
            .expect("skipped");
        let counts = store.outbox_counts().await.expect("counts");
        let count = |d: &str, s: OutboxStatus| {
            counts
                .iter()
                .find(|c| c.destination == d && c.status == s)
                .map_or(0, |c| c.count)
        };
        assert_eq!(count("ris", OutboxStatus::Sent), 1, "{}", label(&db));
        assert_eq!(count("ris", OutboxStatus::Pending), 1);
        assert_eq!(count("pacs", OutboxStatus::Skipped), 1);
        let page = store
            .outbound_messages_page(
                &OutboxFilter {
                    statuses: Some(vec![OutboxStatus::Pending, OutboxStatus::Rejected]),
                    case_id: Some(case.id.to_string()),
                    limit: 1,
                    ..Default::default()
                },
                None,
            )
            .await
            .expect("page");
        assert_eq!((page.items.len(), page.total), (1, 1), "{}", label(&db));
        let all = store
            .outbound_messages_page(
                &OutboxFilter {
                    limit: 2,
                    ..Default::default()
                },
                None,
            )
            .await
            .expect("page");
        let next = store
            .outbound_messages_page(
                &OutboxFilter {
                    limit: 2,
                    ..Default::default()
                },
                all.next.as_ref(),
            )
            .await
            .expect("next page");
        assert_eq!(all.items.len() + next.items.len(), 3, "{}", label(&db));
        assert!(all.items[0].seq > next.items[0].seq, "newest first");
    }
}

/// A nurse's account, created at `created`.
async fn nurse(store: &Store, username: &str, created: DateTime<Utc>) -> seldinger_store::User {
    store
        .create_user(
            username,
            "N. Nurse",
            seldinger_domain::access::Role::IrNurse,
            "not-a-real-hash",
            created,
            &[],
        )
        .await
        .expect("user")
}

/// An eight-hour session of `user`'s, by the hash of its cookie.
fn session_of(user: &seldinger_store::User, token_hash: &str) -> seldinger_store::Session {
    seldinger_store::Session {
        token_hash: token_hash.into(),
        user_id: user.id,
        csrf_token: "csrf".into(),
        created_at: now(),
        last_seen_at: now(),
        expires_at: now() + Duration::hours(8),
        client_addr: "127.0.0.1".into(),
    }
}

#[tokio::test]
async fn writes_waiting_for_the_database_leave_the_readers_free() {
    for db in engines().await {
        let store = &db.store;
        let patient = register(store, "W100", "Reader").await;
        let user = nurse(store, "nurse.waiting", now()).await;
        // A long write holds SQLite's one writer (on PostgreSQL it locks nothing they need).
        let batch = store.begin_batch().await.expect("batch");
        register(batch.store(), "W101", "Holding").await;
        // More sign-ins than there are reader connections, all waiting to write.
        let sign_ins: Vec<_> = (0..12)
            .map(|n| {
                let store = store.clone();
                let session = session_of(&user, &format!("waiting-{n}"));
                tokio::spawn(async move { store.create_session(&session).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // A read still has a connection: the waiting writes hold none of the readers'.
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), store.patient(patient))
            .await
            .unwrap_or_else(|_| panic!("{:?}: the read waited behind the writes", db.engine()));
        assert!(read.expect("read").is_some());
        batch.commit().await.expect("commit");
        for sign_in in sign_ins {
            sign_in
                .await
                .expect("task")
                .expect("signed in once the writer is free");
        }
    }
}

#[tokio::test]
async fn a_batch_commits_once_and_a_change_refused_in_it_rolls_it_all_back() {
    for db in engines().await {
        let store = &db.store;
        let before = register(store, "D400", "Before").await;
        let case = refer(store, before).await;

        let batch = store.begin_batch().await.expect("batch");
        let inside = batch.store();
        assert!(inside.in_batch() && !store.in_batch());
        let first = register(inside, "D401", "First").await;
        // Later writes in the batch read what earlier ones wrote.
        let inside_case = refer(inside, first).await;
        let vetted = transition(inside, &inside_case, accept())
            .await
            .expect("reads its own write");
        // Nothing is seen outside until the commit.
        assert_eq!(store.case(inside_case.id).await.expect("read"), None);
        batch.commit().await.expect("commit");
        assert_eq!(
            store.case(inside_case.id).await.expect("read"),
            Some(vetted),
            "{}",
            label(&db)
        );

        // A stale write in a batch is refused, and the batch can no longer commit: everything
        // in it is rolled back, to be done again one change at a time.
        let batch = store.begin_batch().await.expect("batch");
        let accepted = transition(batch.store(), &case, accept())
            .await
            .expect("accept");
        // (On PostgreSQL the refusal aborts the transaction, so what it says may be that.)
        transition(batch.store(), &case, CaseEvent::Decline)
            .await
            .expect_err("stale");
        assert!(matches!(batch.commit().await, Err(StoreError::Spoiled)));
        let stored = store.case(case.id).await.expect("read").expect("exists");
        assert_eq!(stored.version, 1, "{}: neither change kept", label(&db));
        assert_eq!(accepted.version, 2);

        // A batch dropped without its commit leaves nothing.
        let batch = store.begin_batch().await.expect("batch");
        let dropped = refer(batch.store(), before).await;
        drop(batch);
        assert_eq!(store.case(dropped.id).await.expect("read"), None);

        // A statement that fails outside any write: PostgreSQL aborts the whole transaction,
        // and the commit must say so rather than report a rollback as committed.
        let batch = store.begin_batch().await.expect("batch");
        let lost = refer(batch.store(), before).await;
        assert!(batch
            .store()
            .execute_raw_for_tests("SELECT no_such_column FROM patients")
            .await
            .is_err());
        let committed = batch.commit().await;
        match store.engine() {
            seldinger_store::Engine::Postgres => {
                assert!(committed.is_err(), "{}: an aborted batch", label(&db));
                assert_eq!(store.case(lost.id).await.expect("read"), None);
            }
            seldinger_store::Engine::Sqlite => {
                committed.expect("SQLite keeps the transaction after a failed statement");
                assert!(store.case(lost.id).await.expect("read").is_some());
            }
        }
    }
}

/// A case in the room with one device recorded at `start` + 20 min.
async fn case_with_device(
    store: &Store,
    mrn: &str,
    kind: seldinger_domain::procedure_record::DeviceKind,
    start: DateTime<Utc>,
) -> Case {
    use seldinger_domain::lifecycle::TimeOut;
    use seldinger_domain::procedure_record::DeviceLeft;
    let case = records::booked_case(store, mrn, "angio-1", start, 60).await;
    let case = records::step(store, &case, CaseEvent::CheckIn, start)
        .await
        .expect("checked in");
    let time_out = TimeOut {
        completed_at: start,
        team_introduced: true,
        patient_identity_confirmed: true,
        procedure_and_site_confirmed: true,
        consent_confirmed: true,
        imaging_available: true,
        equipment_available: true,
    };
    let case = records::step(store, &case, CaseEvent::StartProcedure { time_out }, start)
        .await
        .expect("in room");
    let device = DeviceLeft {
        kind,
        description: "synthetic device".into(),
        udi_label: Some("(01)09506000134352(17)300630(10)LOT-1(21)SN-1".into()),
        udi: None,
    };
    records::step(
        store,
        &case,
        CaseEvent::RecordDeviceLeft { device },
        start + Duration::minutes(20),
    )
    .await
    .expect("device recorded")
}

#[tokio::test]
async fn a_recorded_device_is_registered_and_its_life_is_an_event_stream() {
    use seldinger_domain::device_registry::{DeviceEvent, DeviceRef, LifeState};
    use seldinger_domain::procedure_record::DeviceKind;
    use seldinger_store::{DeviceFilter, RowScope};
    for db in engines().await {
        let store = &db.store;
        let start = now() - Duration::days(40);
        let case = case_with_device(store, "DEV-1", DeviceKind::IvcFilter, start).await;
        let id = DeviceRef {
            case_id: case.id,
            index: 0,
        };
        let placed = store.device(id).await.expect("read").expect("registered");
        // Placed when the procedure began; the UDI read from its label.
        assert_eq!(placed.placed_at, start, "{}", label(&db));
        assert_eq!(placed.state, LifeState::InPlace);
        assert_eq!(
            placed.placed.udi.as_ref().map(|u| u.lot.clone()),
            Some(Some("LOT-1".to_string()))
        );
        let in_place = DeviceFilter {
            life: vec!["in_place"],
            kind: Some(DeviceKind::IvcFilter),
            ..Default::default()
        };
        assert_eq!(
            store
                .devices(&RowScope::Department, &in_place, 100)
                .await
                .expect("list")
                .len(),
            1
        );
        // The referrer of another case sees none of it.
        assert!(store
            .devices(&RowScope::ReferredBy("someone.else".into()), &in_place, 100)
            .await
            .expect("scoped list")
            .is_empty());

        let removal = DeviceEvent::Removed {
            at: now() - Duration::days(1),
            in_case: None,
            note: "retrieved".into(),
        };
        let mut after = placed.clone();
        after.apply(&removal);
        let mut stale = after.clone();
        stale.version = 5;
        let refused = store
            .record_device_event(&stale, &removal, &[], &meta(None), &[])
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict { .. })),
            "{refused:?}"
        );
        store
            .record_device_event(&after, &removal, &[], &meta(None), &[])
            .await
            .expect("removal stored");
        // Once: the same version again is a conflict, not a second removal.
        assert!(matches!(
            store
                .record_device_event(&after, &removal, &[], &meta(None), &[])
                .await,
            Err(StoreError::Conflict { .. })
        ));
        let read = store.device(id).await.expect("read").expect("there");
        assert_eq!(read, after);
        assert!(store
            .devices(&RowScope::Department, &in_place, 100)
            .await
            .expect("list")
            .is_empty());
        let history = store.device_history(id).await.expect("history");
        assert_eq!(
            history.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["removed"]
        );
    }
}

#[tokio::test]
async fn devices_recorded_before_the_registry_are_backfilled_as_the_application_registers_them() {
    use seldinger_domain::device_registry::DeviceRef;
    use seldinger_domain::procedure_record::DeviceKind;
    for db in engines().await {
        let store = &db.store;
        let case = case_with_device(store, "DEV-2", DeviceKind::Nephrostomy, now()).await;
        let id = DeviceRef {
            case_id: case.id,
            index: 0,
        };
        let registered = store.device(id).await.expect("read").expect("registered");
        // As a database from before migration 0019: the case holds the device, the registry
        // not; then the migration's backfill, as written, runs.
        store
            .execute_raw_for_tests(&format!(
                "DELETE FROM devices WHERE case_id = '{}'",
                case.id
            ))
            .await
            .expect("cleared");
        let migration = match db.engine() {
            seldinger_store::Engine::Sqlite => {
                include_str!("../migrations/sqlite/0019_devices.sql")
            }
            seldinger_store::Engine::Postgres => {
                include_str!("../migrations/postgres/0019_devices.sql")
            }
        };
        let backfill = &migration[migration.find("INSERT INTO devices").expect("backfill")..];
        store
            .execute_raw_for_tests(backfill)
            .await
            .expect("backfill runs");
        let backfilled = store.device(id).await.expect("read").expect("backfilled");
        assert_eq!(backfilled, registered, "{}", label(&db));
        let listed = store
            .devices(
                &seldinger_store::RowScope::Department,
                &seldinger_store::DeviceFilter {
                    placed_from: Some(now() - Duration::seconds(1)),
                    placed_before: Some(now() + Duration::seconds(1)),
                    case_id: Some(case.id),
                    ..Default::default()
                },
                10,
            )
            .await
            .expect("by placement time");
        assert_eq!(listed.len(), 1, "the backfilled placed_at compares as text");
    }
}

#[tokio::test]
async fn complications_are_adverse_events_backfilled_as_recorded_and_changed_only_on_their_version()
{
    use seldinger_domain::adverse_event::{AdverseEventChange, Detected};
    use seldinger_domain::procedure_record::{Complication, DeviceKind, SirSeverity};
    for db in engines().await {
        let store = &db.store;
        let start = now() - Duration::days(3);
        let case = case_with_device(store, "AE-1", DeviceKind::Drain, start).await;
        let complication = Complication {
            description: "minor bleeding at the puncture site".into(),
            severity: SirSeverity::Mild,
            cirse_grade: Some(1),
            at: start + Duration::minutes(30),
        };
        let case = records::step(
            store,
            &case,
            CaseEvent::RecordComplication { complication },
            start + Duration::minutes(31),
        )
        .await
        .expect("recorded");
        let id = format!("{}-0", case.id);
        let recorded = store
            .adverse_event(&id)
            .await
            .expect("read")
            .expect("there");
        assert_eq!(
            recorded.details.detected,
            Detected::InRoom,
            "{}",
            label(&db)
        );
        assert_eq!(recorded.reported_by, "test.nurse");
        store
            .execute_raw_for_tests(&format!(
                "DELETE FROM adverse_events WHERE case_id = '{}'",
                case.id
            ))
            .await
            .expect("cleared");
        let migration = match db.engine() {
            seldinger_store::Engine::Sqlite => {
                include_str!("../migrations/sqlite/0020_adverse_events.sql")
            }
            seldinger_store::Engine::Postgres => {
                include_str!("../migrations/postgres/0020_adverse_events.sql")
            }
        };
        let backfill = &migration[migration
            .find("INSERT INTO adverse_events")
            .expect("backfill")..];
        store
            .execute_raw_for_tests(backfill)
            .await
            .expect("backfill runs");
        let backfilled = store
            .adverse_event(&id)
            .await
            .expect("read")
            .expect("backfilled");
        assert_eq!(backfilled, recorded, "{}", label(&db));

        let change = AdverseEventChange::EnteredInError {
            reason: "recorded on the wrong case".into(),
        };
        let mut after = recorded.clone();
        after.apply(&change, "dr.test", now());
        let mut stale = after.clone();
        stale.version = 7;
        assert!(matches!(
            store
                .change_adverse_event(&stale, &change, &meta(None), &[])
                .await,
            Err(StoreError::Conflict { .. })
        ));
        store
            .change_adverse_event(&after, &change, &meta(None), &[])
            .await
            .expect("withdrawn");
        let counted = seldinger_store::AdverseEventFilter {
            case_id: Some(case.id),
            counted_only: true,
            ..Default::default()
        };
        assert!(store
            .adverse_events(&seldinger_store::RowScope::Department, &counted, 10)
            .await
            .expect("list")
            .is_empty());
        let history = store.adverse_event_history(&id).await.expect("history");
        assert_eq!(history[0].kind, "entered_in_error");
    }
}

/// Every signed-in request reads its session and user together: the same as read apart, the
/// session's own times (not the user's, the columns share a name).
#[tokio::test]
async fn a_session_is_read_with_its_user_in_one_read() {
    for db in engines().await {
        let store = &db.store;
        let user = nurse(store, "nurse.session", now() - Duration::days(30)).await;
        let session = session_of(&user, "hash-of-a-cookie");
        store.create_session(&session).await.expect("session");
        let (read, with) = store
            .session_and_user("hash-of-a-cookie")
            .await
            .expect("read")
            .expect("found");
        let apart = store
            .session("hash-of-a-cookie")
            .await
            .expect("read")
            .expect("found");
        assert_eq!(
            (
                read.user_id,
                read.created_at,
                read.expires_at,
                read.csrf_token
            ),
            (
                apart.user_id,
                apart.created_at,
                apart.expires_at,
                apart.csrf_token
            ),
            "{}",
            label(&db)
        );
        let with = with.expect("the user");
        assert_eq!(
            (with.id, with.username, with.role, with.created_at),
            (user.id, user.username, user.role, user.created_at),
            "{}",
            label(&db)
        );
        assert!(store
            .session_and_user("no-such-hash")
            .await
            .expect("read")
            .is_none());
    }
}

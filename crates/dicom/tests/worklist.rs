//! The worklist's read on both engines: booked cases in rooms with imaging systems become
//! scheduled procedure steps, a modality's query finds its room's day, and a cancelled case or a
//! room without a system is not on it. (The C-FIND service on the listener, with dcmtk's
//! `findscu -W` and pynetdicom, builds on this.)

mod common;

use chrono::{TimeZone, Utc};
use common::key;
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use seldinger_app::Principal;
use seldinger_dicom::worklist::{answer, ScheduledStep};
use seldinger_domain::access::Role;
use seldinger_domain::catalogue::GuidanceModality;
use seldinger_domain::lifecycle::CaseEvent;
use seldinger_domain::{AeTitle, DicomModality, Equipment, Room, RoomId, RoomKind};
use seldinger_store::testing::{self, records};

fn room(id: &str, ae_title: Option<&str>) -> Room {
    Room {
        id: RoomId::parse(id).expect("room"),
        name: format!("Room {id}"),
        kind: RoomKind::AngioSuite,
        modalities: vec![GuidanceModality::Fluoroscopy],
        equipment: ae_title
            .map(|t| Equipment {
                ae_title: AeTitle::parse(t).expect("title"),
                modality: DicomModality::Xa,
            })
            .into_iter()
            .collect(),
    }
}

fn modality() -> Principal {
    Principal {
        username: "dicom:ANGIO1".into(),
        role: Role::Interface,
        client_addr: "127.0.0.1:104".into(),
        break_glass_reason: None,
        via_message: None,
        via_claim: None,
    }
}

/// The department's own view of the worklist (a person: every room's steps).
fn department() -> Principal {
    Principal {
        username: "rad.test".into(),
        role: Role::Radiographer,
        ..modality()
    }
}

/// A read of `between`; with `stations`, as the first of them asks (a system reads only the
/// steps that name it).
fn read(
    between: (chrono::DateTime<Utc>, chrono::DateTime<Utc>),
    stations: Option<&[String]>,
) -> seldinger_app::WorklistRead<'_> {
    seldinger_app::WorklistRead {
        between,
        stations,
        alerts: true,
        requester: true,
        asking_station: stations.and_then(|s| s.first()).map(String::as_str),
    }
}

#[tokio::test]
async fn booked_cases_in_rooms_with_systems_are_their_rooms_worklist() {
    for db in testing::engines().await {
        let store = &db.store;
        store
            .put_room(&room("angio-1", Some("ANGIO1")), 0)
            .await
            .expect("room");
        store.put_room(&room("us-9", None), 1).await.expect("room");
        // 09:30 in London on 2 December is 09:30 UTC; the one at 10:00 is cancelled.
        let at = |h, m| {
            Utc.with_ymd_and_hms(2026, 12, 2, h, m, 0)
                .single()
                .expect("time")
        };
        let listed = records::booked_case(store, "WL1", "angio-1", at(9, 30), 60).await;
        let cancelled = records::booked_case(store, "WL2", "angio-1", at(10, 0), 60).await;
        records::step(store, &cancelled, CaseEvent::Cancel, at(8, 0))
            .await
            .expect("cancelled");
        records::booked_case(store, "WL3", "us-9", at(11, 0), 30).await;

        let app = common::app(store);
        let time = app.time;
        let day = time.day(chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"));
        let entries = app
            .worklist(
                &modality(),
                &read(day, Some(&["ANGIO1".to_string()])),
                |e| Some(e.clone()),
            )
            .await
            .expect("worklist");
        assert_eq!(entries.len(), 1, "{:?}", db.engine());
        assert_eq!(entries[0].case.id, listed.id);

        let step = ScheduledStep::of(&entries[0], &time);
        assert_eq!(
            (step.start_date.as_str(), step.start_time.as_str()),
            ("20261202", "093000")
        );
        assert_eq!(step.modality, "XA");
        let query = InMemDicomObject::from_element_iter([
            key(tags::PATIENT_NAME, VR::PN, ""),
            key(tags::PATIENT_ID, VR::LO, "WL1"),
            DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![InMemDicomObject::from_element_iter([
                    key(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, "ANGIO1"),
                    key(
                        tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
                        VR::DA,
                        "20261202",
                    ),
                ])]),
            ),
        ]);
        let found = answer(&query, &step.item())
            .expect("valid")
            .expect("matches");
        assert!(found.get(tags::PATIENT_NAME).is_some());

        // The read is on the audit trail, for the system that asked.
        let audit = store
            .audit_page(
                &seldinger_store::AuditFilter {
                    username: Some("dicom:ANGIO1".into()),
                    ..Default::default()
                },
                None,
                50,
            )
            .await
            .expect("audit");
        assert!(audit.items.iter().any(|e| e.resource_type == "worklist"));

        // A system that does not say which it is reads nothing; one no room lists, nothing.
        let unnamed = app
            .worklist(&modality(), &read(day, None), |e| Some(e.clone()))
            .await;
        assert!(unnamed.is_err(), "{:?}", db.engine());
        let stranger = app
            .worklist(&modality(), &read(day, Some(&["EVIL".to_string()])), |e| {
                Some(e.clone())
            })
            .await
            .expect("worklist");
        assert!(stranger.is_empty());
        // Another station's AE title: nothing.
        let others = app
            .worklist(&modality(), &read(day, Some(&["CTIR1".to_string()])), |e| {
                Some(e.clone())
            })
            .await
            .expect("worklist");
        assert!(others.is_empty());
    }
}

#[tokio::test]
async fn a_room_s_systems_of_one_modality_share_one_step_and_another_modality_has_its_own() {
    for db in testing::engines().await {
        let store = &db.store;
        let system = |title: &str, modality| Equipment {
            ae_title: AeTitle::parse(title).expect("title"),
            modality,
        };
        // A hybrid suite: two angio systems (either may take the case) and an ultrasound.
        let mut suite = room("hybrid-1", None);
        suite.equipment = vec![
            system("ANGIO1A", DicomModality::Xa),
            system("US1", DicomModality::Us),
            system("ANGIO1B", DicomModality::Xa),
        ];
        store.put_room(&suite, 0).await.expect("room");
        let at = Utc
            .with_ymd_and_hms(2026, 12, 2, 9, 30, 0)
            .single()
            .expect("time");
        records::booked_case(store, "WL9", "hybrid-1", at, 60).await;
        let app = common::app(store);
        let time = app.time;
        let day = time.day(chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"));
        let steps = |entries: Vec<seldinger_app::WorklistEntry>| -> Vec<ScheduledStep> {
            entries
                .iter()
                .map(|e| ScheduledStep::of(e, &time))
                .collect()
        };
        let all = steps(
            app.worklist(&department(), &read(day, None), |e| Some(e.clone()))
                .await
                .expect("worklist"),
        );
        let shown: Vec<_> = all
            .iter()
            .map(|s| (s.modality.as_str(), s.station_ae_titles.join("\\")))
            .collect();
        assert_eq!(
            shown,
            [("XA", "ANGIO1A\\ANGIO1B".to_string()), ("US", "US1".into())],
            "{:?}",
            db.engine()
        );
        assert_ne!(all[0].step_id, all[1].step_id, "two steps, two ids");
        assert!(all.iter().all(|s| s.step_id.len() == 16));

        // The second angio system asks for its day: the shared step, naming both systems,
        // matched on either (a multi-valued attribute matches when any value does).
        let second = steps(
            app.worklist(
                &modality(),
                &read(day, Some(&["ANGIO1B".to_string()])),
                |e| Some(e.clone()),
            )
            .await
            .expect("worklist"),
        );
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].station_ae_titles, ["ANGIO1A", "ANGIO1B"]);
        let query = InMemDicomObject::from_element_iter([
            key(tags::PATIENT_ID, VR::LO, "WL9"),
            DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![InMemDicomObject::from_element_iter([key(
                    tags::SCHEDULED_STATION_AE_TITLE,
                    VR::AE,
                    "ANGIO1B",
                )])]),
            ),
        ]);
        let found = answer(&query, &second[0].item())
            .expect("valid")
            .expect("matches");
        let item = &found
            .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .and_then(|e| e.items())
            .expect("step")[0];
        assert_eq!(
            item.get(tags::SCHEDULED_STATION_AE_TITLE)
                .and_then(|e| e.to_multi_str().ok())
                .map(|v| v.to_vec()),
            Some(vec!["ANGIO1A".to_string(), "ANGIO1B".to_string()])
        );
    }
}

#[tokio::test]
async fn a_patient_with_two_cases_on_the_day_has_the_same_alerts_on_both() {
    for db in testing::engines().await {
        let store = &db.store;
        store
            .put_room(&room("angio-1", Some("ANGIO1")), 0)
            .await
            .expect("room");
        let at = |h| {
            Utc.with_ymd_and_hms(2026, 12, 2, h, 0, 0)
                .single()
                .expect("time")
        };
        let twice = records::patient_named(store, "WL20", "Twice", at(6)).await;
        // An anticoagulant taken this morning.
        store
            .record_medication(
                twice,
                1,
                seldinger_domain::clinical::Medication {
                    drug: "apixaban".into(),
                    dose: "5 mg".into(),
                    frequency: "twice daily".into(),
                    last_dose_at: Some(at(7)),
                    dose_intent: None,
                    indication: None,
                },
                &seldinger_domain::EventMeta {
                    actor: seldinger_domain::Actor::parse("test.nurse").expect("actor"),
                    at: at(7),
                    reason: None,
                },
            )
            .await
            .expect("drug");
        // And an INR well above any procedure's threshold.
        let inr = seldinger_domain::clinical::LabResult::new(
            seldinger_domain::clinical::LabTest::Inr,
            4.5,
            at(7),
        )
        .expect("lab");
        store
            .record_lab_result(
                twice,
                2,
                inr,
                &seldinger_domain::EventMeta {
                    actor: seldinger_domain::Actor::parse("test.nurse").expect("actor"),
                    at: at(7),
                    reason: None,
                },
            )
            .await
            .expect("lab");
        records::booked_case_for(store, twice, "angio-1", at(9), 45).await;
        records::booked_case_for(store, twice, "angio-1", at(14), 45).await;
        let other = records::patient_named(store, "WL21", "Other", at(6)).await;
        records::booked_case_for(store, other, "angio-1", at(11), 45).await;

        let app = common::app(store);
        let day = app
            .time
            .day(chrono::NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"));
        let entries = app
            .worklist(&department(), &read(day, None), |e| Some(e.clone()))
            .await
            .expect("worklist");
        let alerts_of = |mrn: &str| -> Vec<Vec<String>> {
            entries
                .iter()
                .filter(|e| e.patient.details.mrn.as_str() == mrn)
                .map(|e| e.alerts.clone())
                .collect()
        };
        let (twice, other) = (alerts_of("WL20"), alerts_of("WL21"));
        assert_eq!(twice.len(), 2, "{:?}", db.engine());
        assert_eq!(twice[0], twice[1], "{:?}", db.engine());
        assert_ne!(twice[0], other[0], "the drug counts: {:?}", db.engine());
    }
}

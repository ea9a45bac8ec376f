//! The MLLP listener against an independent sender (python-hl7's `mllp_send`, installed by
//! scripts/test), on SQLite and PostgreSQL: what is applied, what is refused and why, what a
//! message sent again does, and what a crash between receipt and answer leaves.

mod common;

use seldinger_domain::clinical::LabTest;
use seldinger_domain::patient::{AllergyClass, Mrn, SiteCode};
use seldinger_hl7::mllp::{self, ListenerConfig};
use seldinger_hl7::{Interface, Peer};
use seldinger_store::testing::{self, TestDatabase};
use seldinger_store::{InboxFilter, InboxStatus, Receipt};
use std::path::PathBuf;
use std::sync::Arc;

fn interface(db: &TestDatabase) -> Arc<Interface> {
    common::interface(db.store.clone())
}

/// python-hl7's sender, or `None` (with a note) when it is not installed and not required.
fn mllp_send() -> Option<PathBuf> {
    match std::env::var("SELDINGER_MLLP_SEND") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var("SELDINGER_REQUIRE_HL7_PEER").is_ok_and(|v| v == "1") => {
            panic!("SELDINGER_REQUIRE_HL7_PEER=1 but SELDINGER_MLLP_SEND is not set")
        }
        _ => {
            eprintln!("note: SELDINGER_MLLP_SEND not set; the python-hl7 half of this test is skipped (scripts/test sets it)");
            None
        }
    }
}

fn messages(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/messages")
        .join(name)
}

async fn listen(interface: Arc<Interface>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(mllp::serve(listener, ListenerConfig::default(), interface));
    port
}

/// Sends a file's messages with python-hl7 over one connection; the acknowledgements it got.
async fn send_file(sender: &PathBuf, port: u16, file: &str) -> Vec<hl7kit::Message> {
    let output = tokio::process::Command::new(sender)
        .args(["--loose", "--file"])
        .arg(messages(file))
        .args(["--port", &port.to_string(), "127.0.0.1"])
        .output()
        .await
        .expect("mllp_send runs");
    assert!(
        output.status.success(),
        "mllp_send failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|&b| b == mllp::START_BLOCK)
        .filter(|chunk| chunk.contains(&b'M'))
        .map(|chunk| {
            let end = chunk
                .iter()
                .position(|&b| b == mllp::END_BLOCK)
                .unwrap_or(chunk.len());
            hl7kit::Message::parse_lossy(&chunk[..end]).expect("an ACK")
        })
        .collect()
}

fn code_of(ack: &hl7kit::Message) -> (String, String) {
    (
        ack.get("MSA-1").unwrap_or("").to_string(),
        ack.get("MSA-2").unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn a_day_of_adt_and_laboratory_messages_from_python_hl7() {
    let Some(sender) = mllp_send() else { return };
    for db in testing::engines().await {
        let engine = db.engine();
        let interface = interface(&db);
        let port = listen(interface.clone()).await;
        let acks = send_file(&sender, port, "day-one.hl7").await;
        let codes: Vec<(String, String)> = acks.iter().map(code_of).collect();
        let expected = [
            ("AA", "PAS-0001"),
            ("AA", "PAS-0002"),
            ("AA", "LAB-0001"),
            ("AA", "LAB-0002"),
            ("AE", "PAS-0003"),
            ("AR", "PAS-0004"),
            ("AR", "RX-0001"),
            ("AA", "LAB-0001"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(codes, expected, "{engine:?}");
        // Each problem says where and why, with its table 0357 code.
        assert_eq!(acks[4].get("ERR-3.1"), Some("204"), "{engine:?}");
        assert_eq!(acks[4].get("ERR-2"), Some("PID^1^3^1^4"), "{engine:?}");
        assert!(acks[4].get_decoded("ERR-8").unwrap().contains("ELSEWHERE"));
        assert_eq!(acks[5].get("ERR-3.1"), Some("201"));
        assert_eq!(acks[6].get("ERR-3.1"), Some("103"));
        assert!(acks[6]
            .get_decoded("ERR-8")
            .unwrap()
            .contains("PHARMACY^GENHOSP"));
        // The ACK answers its sender.
        assert_eq!(acks[2].get("MSH-5"), Some("LAB"));
        assert_eq!(acks[2].get("MSH-9"), Some("ACK^R01^ACK"));

        let store = &db.store;
        let site = SiteCode::parse("MAIN").unwrap();
        let patient = store
            .patient_by_mrn(&site, &Mrn::parse("M7001").unwrap())
            .await
            .unwrap()
            .expect("registered by A04");
        let details = &patient.details;
        assert_eq!(details.name.family, "Quill");
        assert_eq!(details.weight_kg.map(|w| w.kg()), Some(81.4));
        assert!(details.has_allergy(AllergyClass::IodinatedContrast));
        assert!(details.has_allergy(AllergyClass::Drug));
        let visit = details.visit.as_ref().expect("A01 visit");
        assert_eq!(visit.visit_number.as_deref(), Some("V-55001"));
        let labs = store.lab_results(patient.id).await.unwrap();
        let value = |test| labs.iter().find(|l| l.test == test).map(|l| l.value);
        assert_eq!(
            value(LabTest::Inr),
            Some(1.9),
            "the corrected INR replaced 1.6"
        );
        assert_eq!(value(LabTest::Fibrinogen), Some(310.0), "g/L → mg/dL");
        assert_eq!(
            value(LabTest::Platelets),
            Some(182.0),
            "the lab's own code, mapped"
        );
        assert_eq!(value(LabTest::Haemoglobin), Some(12.8));
        assert_eq!(
            labs.len(),
            4,
            "leukocytes are not IR's; the repeat added nothing"
        );
        // Both histories kept: recorded 1.6, then corrected to 1.9.
        let history = store.patient_history(patient.id).await.unwrap();
        let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "registered",
                "details_updated",
                "lab_result_recorded",
                "lab_result_recorded",
                "lab_result_recorded",
                "lab_result_recorded",
                "lab_result_corrected"
            ],
            "{engine:?}"
        );
        assert!(history.iter().all(|e| e.actor.starts_with("hl7:")));

        // Every message of a listed sender is kept; its refused or failed are the dead letters.
        // The pharmacy is not a listed sender: its message is only counted, with its head, and
        // claims nothing in the inbox.
        let dead = store
            .inbound_messages_page(
                &InboxFilter {
                    statuses: Some(vec![InboxStatus::Failed, InboxStatus::Refused]),
                    ..InboxFilter::default()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(dead.total, 2, "{engine:?}");
        let all = store
            .inbound_messages_page(&InboxFilter::default(), None)
            .await
            .unwrap();
        assert_eq!(
            all.total, 6,
            "the repeat is the same message, not a new one"
        );
        let refused = store.refused_arrivals(10).await.unwrap();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].latest.kind, "unknown_sender");
        assert_eq!(refused[0].latest.claimed_sender, "PHARMACY^GENHOSP");
        assert_eq!(refused[0].latest.peer_address, "127.0.0.1");
        let failed = dead
            .items
            .iter()
            .find(|m| m.status == InboxStatus::Failed)
            .unwrap();
        assert_eq!(failed.error_location.as_deref(), Some("PID-3.4"));
        assert_eq!(failed.error_code.as_deref(), Some("204"));
    }
}

#[tokio::test]
async fn iso_8859_1_and_escapes_arrive_as_the_sender_meant_them() {
    let Some(sender) = mllp_send() else { return };
    let db = testing::sqlite().await;
    let port = listen(interface(&db)).await;
    let acks = send_file(&sender, port, "latin1.hl7").await;
    assert_eq!(code_of(&acks[0]).0, "AA", "{:?}", acks[0].raw());
    assert_eq!(acks[0].get("MSH-18"), Some("8859/1"));
    assert_eq!(acks[0].get("MSH-12"), Some("2.3"));
    let patient = db
        .store
        .patient_by_mrn(
            &SiteCode::parse("MAIN").unwrap(),
            &Mrn::parse("M7002").unwrap(),
        )
        .await
        .unwrap()
        .expect("registered by A31");
    assert_eq!(patient.details.name.family, "Müller-étienne");
    assert_eq!(patient.details.name.given, "Zoë");
    assert!(patient.details.has_allergy(AllergyClass::Latex));
}

/// A crash between receipt and answer, at both moments it can happen: before the change
/// committed (the message is only 'received'), and after (applied, never answered). The
/// sender's retry applies it exactly once either way; a message sent again is answered as the
/// first time, and its control id reused for other content is refused — each applied alone and
/// through the listener's writers (in a batch, where the inbox's key finds the first copy).
#[tokio::test]
async fn a_message_cut_short_by_a_crash_is_applied_exactly_once_when_sent_again() {
    for db in testing::engines().await {
        let engine = db.engine();
        let interface = interface(&db);
        // Alone (a batch file, a replay) and through the listener's writers (in batches).
        let appliers = seldinger_hl7::applier::Appliers::start(interface.clone());
        for (pass, batched) in [(0, false), (1, true)] {
            let peer = Peer::connected(([127, 0, 0, 1], 1).into(), None);
            let send = |raw: String| {
                let (interface, appliers, peer) =
                    (interface.clone(), appliers.clone(), peer.clone());
                async move {
                    if batched {
                        appliers.receive(raw.into_bytes(), &peer).await
                    } else {
                        interface.receive(raw.as_bytes(), &peer).await
                    }
                }
            };
            let (mrn, late_mrn) = (format!("M71{pass}0"), format!("M71{pass}1"));
            let register = format!("MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130080000||ADT^A04|CRASH{pass}-1|P|2.5.1\rPID|1||{mrn}^^^GENHOSP^MR||Crash^Casey||19800101|U\r");
            let first = send(register.clone()).await;
            assert_eq!(first.code, "AA", "{engine:?}: {:?}", first.reason);
            let history_before = patient_events(&db, &mrn).await;
            let again = send(register.clone()).await;
            assert_eq!(
                (again.code, again.message_id),
                ("AA", first.message_id.clone())
            );
            assert_eq!(
                patient_events(&db, &mrn).await,
                history_before,
                "{engine:?}"
            );
            // The same control id for other content: refused (205), the first one stands.
            let reused = send(register.replace("Casey", "Other")).await;
            assert_eq!(
                reused.code, "AR",
                "{engine:?} batched {batched}: {:?}",
                reused.reason
            );
            assert_eq!(
                patient_events(&db, &mrn).await,
                history_before,
                "{engine:?}"
            );

            // Crash after the commit, before the answer: applied, no ACK stored.
            let update = format!("MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A08|CRASH{pass}-2|P|2.5.1\rPID|1||{mrn}^^^GENHOSP^MR||Crash^Casey||19800101|F\r");
            let applied = send(update.clone()).await;
            let id = applied.message_id.clone().unwrap();
            db.store
                .execute_raw_for_tests(&format!(
                    "UPDATE hl7_messages SET ack = NULL WHERE id = '{id}'"
                ))
                .await
                .unwrap();
            let events = patient_events(&db, &mrn).await;
            let resent = send(update).await;
            assert_eq!(resent.code, "AA");
            assert_eq!(patient_events(&db, &mrn).await, events, "{engine:?}");

            // A message stored but never applied (the process died first) is applied by the retry.
            let late = format!("MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130100000||ADT^A04|CRASH{pass}-3|P|2.5.1\rPID|1||{late_mrn}^^^GENHOSP^MR||Late^Lee||19800101|U\r");
            let new = seldinger_store::NewInboundMessage {
                id: uuid::Uuid::new_v4().to_string(),
                sender: Some("PAS^GENHOSP".into()),
                control_id: Some(format!("CRASH{pass}-3")),
                received_at: seldinger_store::testing::test_now(),
                peer: "127.0.0.1:1".into(),
                message_type: "ADT^A04".into(),
                version: "2.5.1".into(),
                content_sha256: seldinger_hl7::inbound::content_digest(late.as_bytes()),
                raw: late.clone().into_bytes(),
                patient_key: None,
                peer_certificate: None,
            };
            assert!(matches!(
                db.store.receive_message(&new).await.unwrap(),
                Receipt::New(_)
            ));
            let retried = send(late).await;
            assert_eq!(
                retried.code, "AA",
                "{engine:?} batched {batched}: {:?}",
                retried.reason
            );
            assert_eq!(patient_events(&db, &late_mrn).await, 1, "{engine:?}");
            let stored = db.store.inbound_message(&new.id).await.unwrap().unwrap();
            assert_eq!((stored.status, stored.attempts), (InboxStatus::Applied, 2));
        }
    }
}

async fn patient_events(db: &TestDatabase, mrn: &str) -> usize {
    let patient = db
        .store
        .patient_by_mrn(&SiteCode::parse("MAIN").unwrap(), &Mrn::parse(mrn).unwrap())
        .await
        .unwrap()
        .expect("patient");
    db.store.patient_history(patient.id).await.unwrap().len()
}

/// Orders as IHE RAD-2 sends them (OMG^O19, ORM^O01, OMI^O23): a new order opens a referral
/// awaiting vetting for the clinician who placed it; the same order again, an unmapped code and
/// an unknown patient are dead letters; a cancellation cancels, and again changes nothing.
#[tokio::test]
async fn orders_open_referrals_and_cancellations_cancel_them() {
    let Some(sender) = mllp_send() else { return };
    for db in testing::engines().await {
        let engine = db.engine();
        // The ordering provider D123 is dr.anand here (the demo interface file says so).
        db.store
            .create_user(
                "dr.anand",
                "Dr P. Anand",
                seldinger_domain::access::Role::ReferringClinician,
                "not-a-real-hash",
                seldinger_store::testing::test_now(),
                &[],
            )
            .await
            .expect("user");
        let port = listen(interface(&db)).await;
        let acks = send_file(&sender, port, "orders.hl7").await;
        let codes: Vec<String> = acks.iter().map(|a| code_of(a).0).collect();
        assert_eq!(
            codes,
            ["AA", "AA", "AE", "AE", "AE", "AA", "AA", "AA", "AA", "AE"],
            "{engine:?}: {:?}",
            acks.iter()
                .map(|a| a.get_decoded("ERR-8").map(|e| e.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(acks[2].get("ERR-3.1"), Some("205"), "the same order twice");
        // ORM^O01 is v2.3.1: the error is written the v2.3 way (ERR-1), with MSA-3.
        assert_eq!(
            acks[3].get("ERR-1"),
            Some("OBR^1^4^103&Table value not found&HL70357"),
            "an unmapped order code"
        );
        assert!(acks[3].get_decoded("MSA-3").unwrap().contains("XR-CHEST"));
        assert_eq!(
            acks[4].get("ERR-1"),
            Some("PID^1^3^204&Unknown key identifier&HL70357"),
            "an unknown patient"
        );

        let store = &db.store;
        let nephrostomy = store
            .referral_by_placer_order("ORDERS|PO-5001")
            .await
            .unwrap()
            .expect("filed");
        assert_eq!(nephrostomy.details.requesting_clinician, "Priya Anand");
        // As first ordered (the XO further down changed it since).
        let first = &store.referral_history(nephrostomy.id).await.unwrap()[0];
        assert_eq!(first.payload["indication"], "Obstructed left kidney");
        assert_eq!(first.payload["urgency"], "urgent");
        assert_eq!(
            nephrostomy
                .details
                .requested_procedure
                .as_ref()
                .map(|p| p.as_str()),
            Some("nephrostomy")
        );
        let case = store.case(nephrostomy.case_id).await.unwrap().unwrap();
        assert_eq!(
            case.state,
            seldinger_domain::lifecycle::CaseState::Referred,
            "{engine:?}: awaiting vetting"
        );
        // The clinician who placed it sees it as their own referral.
        assert!(store
            .in_scope(
                &seldinger_store::RowScope::ReferredBy("dr.anand".into()),
                seldinger_store::Record::Case,
                &case.id.to_string()
            )
            .await
            .unwrap());
        let picc = store
            .referral_by_placer_order("ORDERS|PO-5004")
            .await
            .unwrap()
            .expect("filed from OMI");
        let cancelled = store.case(picc.case_id).await.unwrap().unwrap();
        assert_eq!(
            cancelled.state,
            seldinger_domain::lifecycle::CaseState::Cancelled
        );
        assert_eq!(
            cancelled.ended_reason.as_deref(),
            Some("cancelled by the ordering system: Patient declined")
        );
        let history = store.case_history(picc.case_id).await.unwrap();
        assert_eq!(history.len(), 2, "{engine:?}: opened, cancelled once");
        // XO before vetting changes the order (now stat, a new reason); after, it is refused.
        let changed = store
            .referral_by_placer_order("ORDERS|PO-5001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            changed.details.indication,
            "Infected obstructed left kidney"
        );
        assert_eq!(changed.version, 2);
        let case = store.case(changed.case_id).await.unwrap().unwrap();
        assert_eq!(case.urgency, seldinger_domain::referral::Urgency::Emergent);
        let kinds: Vec<String> = store
            .case_history(case.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds.last().map(String::as_str), Some("order_changed"));
        assert!(acks[9]
            .get_decoded("ERR-8")
            .unwrap()
            .contains("past the point of change"));
    }
}

/// A40: the PAS found two records of one patient. Everything of the merged record moves to the
/// survivor in one commit, both histories say so, the same merge again changes nothing, and a
/// late result under the old MRN lands on the survivor.
#[tokio::test]
async fn a_merge_moves_the_record_and_both_histories_say_so() {
    let Some(sender) = mllp_send() else { return };
    for db in testing::engines().await {
        let engine = db.engine();
        let port = listen(interface(&db)).await;
        let acks = send_file(&sender, port, "merge.hl7").await;
        let codes: Vec<String> = acks.iter().map(|a| code_of(a).0).collect();
        assert_eq!(
            codes,
            ["AA"; 7],
            "{engine:?}: {:?}",
            acks.iter()
                .map(|a| a.get_decoded("ERR-8").map(|e| e.to_string()))
                .collect::<Vec<_>>()
        );
        let store = &db.store;
        let site = SiteCode::parse("MAIN").unwrap();
        let survivor = store
            .patient_by_mrn(&site, &Mrn::parse("M7401").unwrap())
            .await
            .unwrap()
            .unwrap();
        let merged = store
            .patient_by_mrn(&site, &Mrn::parse("M7402").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(merged.merged_into, Some(survivor.id), "{engine:?}");
        let labs = store.lab_results(survivor.id).await.unwrap();
        assert_eq!(
            labs.len(),
            2,
            "{engine:?}: the INR moved, the late platelets landed"
        );
        assert!(store.lab_results(merged.id).await.unwrap().is_empty());
        let order = store
            .referral_by_placer_order("ORDERS|PO-6001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.patient_id, survivor.id, "{engine:?}");
        let case = store.case(order.case_id).await.unwrap().unwrap();
        assert_eq!(case.patient_id, survivor.id);
        let case_kinds: Vec<String> = store
            .case_history(case.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            case_kinds.last().map(String::as_str),
            Some("patient_merged")
        );
        let kinds = |history: Vec<seldinger_store::RecordedEvent>| -> Vec<String> {
            history.into_iter().map(|e| e.kind).collect()
        };
        let survivor_history = kinds(store.patient_history(survivor.id).await.unwrap());
        assert_eq!(
            survivor_history
                .iter()
                .filter(|k| *k == "merged_from")
                .count(),
            1,
            "{engine:?}: merged once: {survivor_history:?}"
        );
        let merged_history = kinds(store.patient_history(merged.id).await.unwrap());
        assert_eq!(
            merged_history.last().map(String::as_str),
            Some("merged_into")
        );
    }
}

/// Messages in the shape IHE Radiology Scheduled Workflow (RAD-1 registration, RAD-12 update,
/// RAD-2 placer order) and the NIST v2.5.1 laboratory-results examples give them — every segment
/// a hospital engine sends, most of which IR does not read (PD1, NK1, PV2, DG1, GT1, IN1, SFT,
/// NTE, SPM; MSH-21 profiles; OBX-19/23-25) — are all accepted and read for what IR needs.
#[tokio::test]
async fn messages_shaped_as_ihe_scheduled_workflow_and_nist_examples_send_them_are_read() {
    let Some(sender) = mllp_send() else { return };
    for db in testing::engines().await {
        let engine = db.engine();
        let port = listen(interface(&db)).await;
        let acks = send_file(&sender, port, "ihe-swf-nist.hl7").await;
        let codes: Vec<(String, String)> = acks.iter().map(code_of).collect();
        assert_eq!(
            codes,
            [
                ("AA".to_string(), "SWF-0001".to_string()),
                ("AA".into(), "SWF-0002".into()),
                ("AA".into(), "SWF-0003".into()),
                ("AA".into(), "SWF-0004".into()),
            ],
            "{engine:?}: {:?}",
            acks.iter()
                .map(|a| a.get_decoded("ERR-8").map(|e| e.to_string()))
                .collect::<Vec<_>>()
        );
        let store = &db.store;
        let site = SiteCode::parse("MAIN").unwrap();
        let patient = store
            .patient_by_mrn(&site, &Mrn::parse("M7701").unwrap())
            .await
            .unwrap()
            .expect("registered by RAD-1, under the GENHOSP MRN of three identifiers");
        let details = &patient.details;
        assert_eq!(
            details.name.family, "Swf-Marr&co",
            "RAD-12 renamed, \\T\\ decoded"
        );
        assert_eq!(details.name.given, "Sasha");
        assert_eq!(details.weight_kg.map(|w| w.kg()), Some(71.9), "{engine:?}");
        assert!(details.has_allergy(AllergyClass::Latex), "{details:?}");
        let visit = details.visit.as_ref().expect("the inpatient visit");
        assert_eq!(
            visit.setting,
            seldinger_domain::assessment::Setting::Inpatient
        );
        let referral = store
            .referral_by_placer_order("ORDERS|PO-7701")
            .await
            .unwrap()
            .expect("the RAD-2 order is a referral");
        assert_eq!(
            referral
                .details
                .requested_procedure
                .as_ref()
                .map(|p| p.as_str()),
            Some("biopsy-liver")
        );
        assert_eq!(referral.patient_id, patient.id);
        let labs = store.lab_results(patient.id).await.unwrap();
        let value = |test| labs.iter().find(|l| l.test == test).map(|l| l.value);
        assert_eq!(value(LabTest::Inr), Some(1.3), "{engine:?}");
        assert_eq!(value(LabTest::Platelets), Some(143.0));
        let creatinine = value(LabTest::Creatinine).expect("creatinine");
        assert!(
            (creatinine - 97.0 / 88.42).abs() < 1e-3,
            "umol/L → mg/dL: {creatinine}"
        );
    }
}

/// Sixteen connections at once, their messages applied in shared batches; one message the
/// database refuses (a trigger standing for a disk error) spoils its batch: that batch is rolled
/// back and its messages applied again one at a time, so the refused one alone is answered
/// "send again" (AR, kept nowhere) and every other is applied exactly once, in order.
#[tokio::test]
async fn a_message_the_database_refuses_mid_batch_takes_no_other_with_it() {
    for db in testing::engines().await {
        let engine = db.engine();
        let refuse = match engine {
            seldinger_store::Engine::Sqlite => vec![
                "CREATE TRIGGER refuse_one BEFORE INSERT ON patients WHEN NEW.mrn = 'M9000' \
                 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
            ],
            seldinger_store::Engine::Postgres => vec![
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN \
                 IF NEW.mrn = 'M9000' THEN RAISE EXCEPTION 'refused for the test'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_one BEFORE INSERT ON patients \
                 FOR EACH ROW EXECUTE FUNCTION refuse_one()",
            ],
        };
        for sql in refuse {
            db.store.execute_raw_for_tests(sql).await.expect("trigger");
        }
        let port = listen(interface(&db)).await;
        let mut senders = Vec::new();
        for connection in 0..16u32 {
            senders.push(tokio::spawn(async move {
                let mut stream = common::connect(port).await;
                let mut answers = Vec::new();
                for n in 0..5 {
                    // Connection 0's third message is about the patient the database refuses.
                    let mrn = if connection == 0 && n == 2 {
                        9000
                    } else {
                        9001 + connection
                    };
                    let message = format!(
                        "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A08|B{connection}-{n}|P|2.5.1\r\
                         PID|1||M{mrn}^^^GENHOSP^MR||Batch^Bo{n}||19700101|U\r"
                    );
                    let (code, control, _) = common::exchange(&mut stream, message.as_bytes()).await;
                    answers.push((code, control));
                }
                (connection, answers)
            }));
        }
        for sender in senders {
            let (connection, answers) = sender.await.expect("sender");
            for (n, (code, control)) in answers.iter().enumerate() {
                assert_eq!(control, &format!("B{connection}-{n}"), "{engine:?}");
                let refused = connection == 0 && n == 2;
                assert_eq!(
                    code,
                    if refused { "AR" } else { "AA" },
                    "{engine:?} B{connection}-{n}"
                );
            }
            let own = if connection == 0 { 4 } else { 5 };
            // Registered by the first, then one update per message: each applied once.
            assert_eq!(
                patient_events(&db, &format!("M{}", 9001 + connection)).await,
                own,
                "{engine:?}"
            );
        }
        let kept = db
            .store
            .find_message("PAS^GENHOSP", "B0-2")
            .await
            .expect("read");
        assert!(
            kept.is_none(),
            "{engine:?}: the refused message is not kept"
        );
    }
}

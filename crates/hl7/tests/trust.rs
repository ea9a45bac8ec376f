//! Who may talk to the MLLP listener, and what each may say — each test performs the attack a
//! host on the hospital network could, over a real socket from a second loopback address
//! (127.0.0.2 is the laboratory's host here, 127.0.0.3 no sender's), and sees it refused. On
//! SQLite and PostgreSQL.

mod common;

use seldinger_domain::patient::{Mrn, SiteCode};
use seldinger_hl7::mllp::{self, ListenerConfig};
use seldinger_hl7::{Interface, InterfaceConfig};
use seldinger_store::testing::{self, TestDatabase};
use seldinger_store::{Finish, InboxFilter, InboxStatus, NewInboundMessage};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

/// The PAS on 127.0.0.1 (ADT, may merge), the laboratory on 127.0.0.2 (results only), order
/// entry on 127.0.0.1 (orders, may not merge).
const INTERFACE: &str = r#"
version = "trust-test"
[[senders]]
application = "PAS"
facility = "GENHOSP"
addresses = ["127.0.0.1"]
messages = ["ADT"]
merge = true

[[senders]]
application = "LAB"
facility = "GENHOSP"
addresses = ["127.0.0.2"]
messages = ["ORU^R01"]

[[senders]]
application = "ORDERS"
facility = "GENHOSP"
addresses = ["127.0.0.1"]
messages = ["ORM", "OMG", "OMI", "ADT"]

[identifiers]
GENHOSP = "MAIN"

[orders]
"IR-NEPH" = "nephrostomy"
"#;

const PAS: [u8; 4] = [127, 0, 0, 1];
const LAB_HOST: [u8; 4] = [127, 0, 0, 2];
const STRANGER: [u8; 4] = [127, 0, 0, 3];

fn interface(db: &TestDatabase) -> Arc<Interface> {
    let config = InterfaceConfig::parse(INTERFACE, "trust test").expect("interface file");
    Arc::new(Interface::new(common::app(db.store.clone()), config))
}

async fn listen(interface: Arc<Interface>, config: ListenerConfig) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(mllp::serve(listener, config, interface));
    address
}

/// A connection to the listener from `from` (a loopback address of this machine).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> common::Connection {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::from(from), 0))
        .expect("bind the source address");
    let stream = socket.connect(to).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    BufReader::new(stream)
}

/// Whether the listener closed the connection (within `within`) without answering anything
/// more (the CR that ends the last answer's frame may still be buffered).
async fn closed_without_answer(connection: &mut common::Connection, within: Duration) -> bool {
    let closed = async {
        let mut buffer = [0u8; 64];
        loop {
            match connection.read(&mut buffer).await {
                Ok(0) | Err(_) => return true,
                Ok(n) if buffer[..n].iter().all(|b| *b == b'\r') => continue,
                Ok(_) => return false,
            }
        }
    };
    tokio::time::timeout(within, closed).await.unwrap_or(false)
}

fn adt(kind: &str, control: &str, mrn: &str, rest: &str) -> String {
    format!("MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261201080000||ADT^{kind}^ADT_A01|{control}|P|2.5.1\rEVN|{kind}|20261201080000\rPID|1||{mrn}^^^GENHOSP^MR||Trust^Tara^^^^^L||19700101|F\r{rest}")
}

fn as_sender(message: &str, sender: &str) -> String {
    message.replacen("|PAS|GENHOSP|", &format!("|{sender}|GENHOSP|"), 1)
}

async fn patient(db: &TestDatabase, mrn: &str) -> seldinger_domain::Patient {
    db.store
        .patient_by_mrn(
            &SiteCode::parse("MAIN").expect("site"),
            &Mrn::parse(mrn).expect("mrn"),
        )
        .await
        .expect("read")
        .expect("registered")
}

async fn inbox_total(db: &TestDatabase) -> u64 {
    db.store
        .inbound_messages_page(&InboxFilter::default(), None)
        .await
        .expect("inbox")
        .total
}

/// A host that is not the PAS sends the PAS's next message (an A08 that would empty a contrast
/// allergy): refused without naming where the PAS may send from, kept out of the inbox (so the
/// PAS's own message with that control id is applied, not refused as a duplicate), and a
/// message an earlier version kept after refusing it for its sender is never replayed.
#[tokio::test]
async fn a_message_from_another_host_claims_nothing_and_is_never_replayed_as_its_sender() {
    for db in testing::engines().await {
        let engine = db.engine();
        let interface = interface(&db);
        let address = listen(interface.clone(), ListenerConfig::default()).await;
        let allergic = adt(
            "A04",
            "PAS-0100",
            "M9100",
            "AL1|1|DA|C-IOD^Iodinated contrast media^L|SV|Anaphylaxis\r",
        );
        let mut pas = connect_from(PAS, address).await;
        let (code, _, _) = common::exchange(&mut pas, allergic.as_bytes()).await;
        assert_eq!(code, "AA", "{engine:?}");
        let before = inbox_total(&db).await;

        // The laboratory's host speaks as the PAS, with the PAS's next control id.
        let forged = adt("A08", "PAS-0101", "M9100", "");
        let mut lab_host = connect_from(LAB_HOST, address).await;
        let (code, _, ack) = common::exchange(&mut lab_host, forged.as_bytes()).await;
        let ack = String::from_utf8_lossy(&ack).into_owned();
        assert_eq!(code, "AR", "{engine:?}: {ack}");
        assert!(ack.contains("may not send from this address"), "{ack}");
        assert!(
            !ack.contains("127.0.0.1"),
            "a refusal names no accepted address: {ack}"
        );
        assert_eq!(
            patient(&db, "M9100").await.details.allergies.len(),
            1,
            "{engine:?}: the allergy stands"
        );
        assert_eq!(inbox_total(&db).await, before, "{engine:?}: nothing kept");
        let refused = db.store.refused_arrivals(10).await.expect("refused");
        assert_eq!(refused.len(), 1, "{engine:?}: {refused:?}");
        assert_eq!(refused[0].latest.kind, "address");
        assert_eq!(refused[0].latest.peer_address, "127.0.0.2");
        assert!(
            refused[0].latest.reason.contains("127.0.0.1"),
            "the analyst is told"
        );

        // The PAS's own PAS-0101 (another message) is applied, not refused as a duplicate.
        let real = adt("A08", "PAS-0101", "M9100", "PV1|1|O|IRCLINIC^^^GENHOSP\r");
        let (code, control, _) = common::exchange(&mut pas, real.as_bytes()).await;
        assert_eq!(
            (code.as_str(), control.as_str()),
            ("AA", "PAS-0101"),
            "{engine:?}"
        );

        // Kept by an earlier version that refused senders into the inbox: never replayed.
        let stored = |id: &str, peer: &str, control: &str| NewInboundMessage {
            id: id.into(),
            sender: Some("PAS^GENHOSP".into()),
            control_id: Some(control.into()),
            received_at: testing::test_now(),
            peer: peer.into(),
            message_type: "ADT^A08^ADT_A01".into(),
            version: "2.5.1".into(),
            content_sha256: seldinger_hl7::inbound::content_digest(forged.as_bytes()),
            raw: adt("A08", control, "M9100", "").into_bytes(),
            patient_key: Some("MAIN/M9100".into()),
            peer_certificate: None,
        };
        let finish = |status: InboxStatus, location: &str, reason: &str| Finish {
            status,
            ack: "MSH|^~\\&|SELDINGER|IR|PAS|GENHOSP|20261201080000||ACK|X|P|2.5.1\rMSA|AR|X\r"
                .into(),
            error_code: Some("103".into()),
            error_location: Some(location.into()),
            error_reason: Some(reason.into()),
            at: testing::test_now(),
        };
        let old_refusal = stored(
            "00000000-0000-4000-8000-0000000000a1",
            "127.0.0.2:40000",
            "OLD-1",
        );
        db.store
            .record_message(
                &old_refusal,
                &finish(
                    InboxStatus::Refused,
                    "MSH-3",
                    "sender PAS^GENHOSP may send only from [127.0.0.1]; this came from 127.0.0.2",
                ),
            )
            .await
            .expect("kept as an earlier version did");
        let message = db
            .store
            .inbound_message(&old_refusal.id)
            .await
            .expect("read")
            .expect("kept");
        let refused = interface.replay(&message, "admin").await.unwrap_err();
        assert!(
            refused.to_string().contains("never replayed"),
            "{engine:?}: {refused}"
        );
        // A failure from the PAS's address that is not its address now (or never was).
        let moved = stored(
            "00000000-0000-4000-8000-0000000000a2",
            "127.0.0.2:40001",
            "OLD-2",
        );
        db.store
            .record_message(
                &moved,
                &finish(InboxStatus::Failed, "PID-3.1", "patient not registered"),
            )
            .await
            .expect("kept");
        let message = db
            .store
            .inbound_message(&moved.id)
            .await
            .expect("read")
            .expect("kept");
        let refused = interface.replay(&message, "admin").await.unwrap_err();
        assert!(
            refused.to_string().contains("may send only from 127.0.0.1"),
            "{engine:?}: {refused}"
        );
        for id in [&old_refusal.id, &moved.id] {
            let after = db
                .store
                .inbound_message(id)
                .await
                .expect("read")
                .expect("kept");
            assert!(after.status.is_dead_letter(), "{engine:?}: unchanged");
            assert_eq!(after.attempts, 1, "{engine:?}: not even counted as tried");
        }
        assert_eq!(
            patient(&db, "M9100").await.details.allergies.len(),
            1,
            "{engine:?}: the allergy still stands"
        );
    }
}

/// The laboratory's feed sends a merge and an ADT, and order entry (which may send ADT) a merge
/// it is not trusted with: each refused (AR, kept as a refused dead letter whose replay is
/// refused again), and no patient is merged or changed.
#[tokio::test]
async fn each_sender_sends_only_its_own_message_types_and_merges_need_their_grant() {
    for db in testing::engines().await {
        let engine = db.engine();
        let interface = interface(&db);
        let address = listen(interface.clone(), ListenerConfig::default()).await;
        let mut pas = connect_from(PAS, address).await;
        for (control, mrn) in [("PAS-0200", "M9201"), ("PAS-0201", "M9202")] {
            let (code, _, _) =
                common::exchange(&mut pas, adt("A04", control, mrn, "").as_bytes()).await;
            assert_eq!(code, "AA", "{engine:?}");
        }
        let merge = |control: &str| {
            format!("MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261201100000||ADT^A40^ADT_A39|{control}|P|2.5.1\rEVN|A40|20261201100000\rPID|1||M9201^^^GENHOSP^MR||Trust^Tara||19700101|F\rMRG|M9202^^^GENHOSP^MR\r")
        };
        let mut lab = connect_from(LAB_HOST, address).await;
        let mut orders = connect_from(PAS, address).await;
        // (from the laboratory's host?, the message, its control id)
        let attempts = [
            (true, as_sender(&merge("LAB-0200"), "LAB"), "LAB-0200"),
            (
                true,
                as_sender(&adt("A08", "LAB-0201", "M9201", ""), "LAB"),
                "LAB-0201",
            ),
            (false, as_sender(&merge("ORD-0200"), "ORDERS"), "ORD-0200"),
        ];
        for (from_lab, message, control) in attempts {
            let connection = if from_lab { &mut lab } else { &mut orders };
            let (code, answered, ack) = common::exchange(connection, message.as_bytes()).await;
            let ack = String::from_utf8_lossy(&ack).into_owned();
            assert_eq!(
                (code.as_str(), answered.as_str()),
                ("AR", control),
                "{engine:?}: {ack}"
            );
            // (^ is escaped \S\ in the ACK's text)
            assert!(ack.contains("may not send ADT"), "{ack}");
            let kept = db
                .store
                .inbound_messages_page(
                    &InboxFilter {
                        statuses: Some(vec![InboxStatus::Refused]),
                        ..Default::default()
                    },
                    None,
                )
                .await
                .expect("inbox");
            let kept = kept
                .items
                .iter()
                .find(|m| m.arrived.control_id.as_deref() == Some(control))
                .expect("an established sender's refusal is a dead letter");
            let again = interface.replay(kept, "admin").await.expect("replayed");
            assert_eq!(again.status, InboxStatus::Refused, "{engine:?}");
        }
        for mrn in ["M9201", "M9202"] {
            let record = patient(&db, mrn).await;
            assert!(record.merged_into.is_none(), "{engine:?}: {mrn} not merged");
            assert_eq!(record.version, 1, "{engine:?}: {mrn} unchanged");
        }
        // The PAS, granted merges, merges.
        let (code, _, _) = common::exchange(&mut pas, merge("PAS-0202").as_bytes()).await;
        assert_eq!(code, "AA", "{engine:?}");
        assert!(patient(&db, "M9202").await.merged_into.is_some());
    }
}

/// A host no sender lists is closed as it connects; one address cannot hold more than its share
/// of connections; and a connection that sends nothing from an established sender is closed after
/// the short first-message timeout, while an established sender's connection stays open.
#[tokio::test]
async fn strangers_crowds_and_silent_connections_are_closed_while_senders_are_served() {
    let db = testing::sqlite().await;
    let interface = interface(&db);
    let config = ListenerConfig {
        max_connections_per_address: 3,
        first_message_timeout: Duration::from_millis(300),
        ..ListenerConfig::default()
    };
    let address = listen(interface, config).await;
    let long = Duration::from_secs(20);

    // No sender connects from 127.0.0.3: closed at accept, its message never read.
    let mut stranger = connect_from(STRANGER, address).await;
    let _ = stranger
        .get_mut()
        .write_all(
            b"\x0bMSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261201080000||ADT^A08|X-1|P|2.5.1\r\x1c\r",
        )
        .await;
    assert!(closed_without_answer(&mut stranger, long).await);

    // The laboratory's host may hold three connections; the fourth is closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(LAB_HOST, address).await);
    }
    let mut fourth = connect_from(LAB_HOST, address).await;
    assert!(closed_without_answer(&mut fourth, long).await);
    // The PAS is still served meanwhile.
    let mut pas = connect_from(PAS, address).await;
    let (code, _, _) =
        common::exchange(&mut pas, adt("A04", "PAS-0300", "M9300", "").as_bytes()).await;
    assert_eq!(code, "AA");

    // Silent, or sending only what establishes no sender: closed after the short timeout.
    for connection in held.iter_mut() {
        assert!(closed_without_answer(connection, long).await);
    }
    let mut pretender = connect_from(LAB_HOST, address).await;
    let (code, _, _) = common::exchange(
        &mut pretender,
        adt("A08", "PAS-0301", "M9300", "").as_bytes(),
    )
    .await;
    assert_eq!(code, "AR");
    assert!(closed_without_answer(&mut pretender, long).await);
    // An established sender's connection idles past it and is still served.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (code, _, _) =
        common::exchange(&mut pas, adt("A08", "PAS-0302", "M9300", "").as_bytes()).await;
    assert_eq!(code, "AA");
}

/// A change (XO) or cancellation (CA) acts only on an order of the patient the message names:
/// one naming another patient — a mistyped order number, a misrouted message — is refused (AE)
/// and the order's case stays as it was (a CA for one patient cancelled another's case once).
#[tokio::test]
async fn order_changes_and_cancellations_act_only_for_the_orders_own_patient() {
    for db in testing::engines().await {
        let engine = db.engine();
        let interface = interface(&db);
        let address = listen(interface.clone(), ListenerConfig::default()).await;
        let mut pas = connect_from(PAS, address).await;
        for (control, mrn) in [("PAS-0400", "M9401"), ("PAS-0401", "M9402")] {
            let (code, _, _) =
                common::exchange(&mut pas, adt("A04", control, mrn, "").as_bytes()).await;
            assert_eq!(code, "AA", "{engine:?}");
        }
        let order = |control: &str, mrn: &str, control_code: &str, rest: &str| {
            format!("MSH|^~\\&|ORDERS|GENHOSP|SELDINGER|IR|20261201090000||OMG^O19^OMG_O19|{control}|P|2.5.1\rPID|1||{mrn}^^^GENHOSP^MR||Trust^Tara||19700101|F\rORC|{control_code}|PO-9401^ORDERS||||||||||||||PTREF^Patient declined\r{rest}")
        };
        let request =
            "OBR|1|PO-9401^ORDERS||IR-NEPH^Nephrostomy left^L|||||||||Obstructed left kidney\r";
        let mut orders = connect_from(PAS, address).await;
        let (code, _, ack) = common::exchange(
            &mut orders,
            order("ORD-0400", "M9401", "NW", request).as_bytes(),
        )
        .await;
        assert_eq!(code, "AA", "{engine:?}: {}", String::from_utf8_lossy(&ack));
        let referral = db
            .store
            .referral_by_placer_order("ORDERS|PO-9401")
            .await
            .expect("read")
            .expect("filed");
        let case_before = db
            .store
            .case(referral.case_id)
            .await
            .expect("read")
            .expect("case");
        for (control, kind, rest) in [("ORD-0401", "XO", request), ("ORD-0402", "CA", "")] {
            let (code, _, ack) =
                common::exchange(&mut orders, order(control, "M9402", kind, rest).as_bytes()).await;
            let ack = String::from_utf8_lossy(&ack).into_owned();
            assert_eq!(code, "AE", "{engine:?}: {kind}: {ack}");
            assert!(ack.contains("not this patient"), "{ack}");
            assert!(
                !ack.contains("M9401"),
                "the other patient is not named: {ack}"
            );
        }
        let case_after = db
            .store
            .case(referral.case_id)
            .await
            .expect("read")
            .expect("case");
        assert_eq!(case_after.state, case_before.state, "{engine:?}");
        assert_eq!(
            case_after.version, case_before.version,
            "{engine:?}: unchanged"
        );
        // The order's own patient may cancel it.
        let (code, _, _) =
            common::exchange(&mut orders, order("ORD-0403", "M9401", "CA", "").as_bytes()).await;
        assert_eq!(code, "AA", "{engine:?}");
    }
}

/// People read the dead letters, not every message: the list refuses applied ones, and each
/// read is audited against the patient the message names when they are registered here.
#[tokio::test]
async fn the_inbox_lists_dead_letters_and_each_read_is_audited_against_its_patient() {
    for db in testing::engines().await {
        let engine = db.engine();
        let interface = interface(&db);
        let address = listen(interface.clone(), ListenerConfig::default()).await;
        let mut pas = connect_from(PAS, address).await;
        let (code, _, _) =
            common::exchange(&mut pas, adt("A04", "PAS-0500", "M9500", "").as_bytes()).await;
        assert_eq!(code, "AA", "{engine:?}");
        // A result in a unit no rule reads: a dead letter about a registered patient.
        let result = "MSH|^~\\&|LAB|GENHOSP|SELDINGER|IR|20261201100000||ORU^R01^ORU_R01|LAB-0500|P|2.5.1\rPID|1||M9500^^^GENHOSP^MR||Trust^Tara||19700101|F\rOBR|1|PL-1|FL-1|COAG|||20261201093000+0000\rOBX|1|NM|6301-6^INR^LN||1.2|furlongs|||||F\r";
        let mut lab = connect_from(LAB_HOST, address).await;
        let (code, _, ack) = common::exchange(&mut lab, result.as_bytes()).await;
        assert_eq!(code, "AE", "{engine:?}: {}", String::from_utf8_lossy(&ack));
        let app = common::app(db.store.clone());
        let admin = seldinger_app::Principal {
            username: "admin".into(),
            role: seldinger_domain::access::Role::Administrator,
            client_addr: "127.0.0.1".into(),
            break_glass_reason: None,
            via_message: None,
            via_claim: None,
        };
        let applied = InboxFilter {
            statuses: Some(vec![InboxStatus::Applied]),
            ..Default::default()
        };
        assert!(app.inbox_page(&admin, &applied, None).await.is_err());
        let page = app
            .inbox_page(&admin, &InboxFilter::default(), None)
            .await
            .expect("dead letters");
        assert_eq!(page.items.len(), 1, "{engine:?}: only the dead letter");
        let patient = patient(&db, "M9500").await;
        let trail = db
            .store
            .audit_page(
                &seldinger_store::AuditFilter {
                    username: Some("admin".into()),
                    ..Default::default()
                },
                None,
                20,
            )
            .await
            .expect("audit");
        assert!(
            trail.items.iter().any(|e| e.resource_type == "hl7_message"
                && e.patient_id.as_deref() == Some(patient.id.to_string().as_str())),
            "{engine:?}: {:?}",
            trail.items
        );
    }
}

//! The real server killed (-9) at random moments while a hospital system streams HL7 messages
//! and re-sends whatever was not acknowledged, as MLLP senders do: afterwards every message is
//! applied exactly once, on SQLite and on PostgreSQL.

mod common;

use common::{ack_code, free_port, kill9, received, receiver, Killed};
use rand::{Rng, SeedableRng};
use seldinger_domain::patient::{Mrn, SiteCode};
use seldinger_hl7::mllp::{self, Frame};
use seldinger_store::{AuditFilter, InboxFilter, InboxStatus, Store};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATIENTS: usize = 40;

/// Each patient: registered, weighed, an INR, weighed again — four messages, four events.
fn messages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for p in 0..PATIENTS {
        let pid = format!("PID|1||K{p:04}^^^GENHOSP^MR||Killed^Kim{p}||19700101|U");
        let adt = |n: usize, trigger: &str, weight: &str| {
            let id = format!("K{p}-{n}");
            let text = format!(
                "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^{trigger}|{id}|P|2.5.1\r{pid}\rOBX|1|NM|29463-7^Body weight^LN||{weight}|kg|||||F\r"
            );
            (id, text.into_bytes())
        };
        out.push(adt(0, "A04", "70"));
        out.push(adt(1, "A08", "71"));
        let id = format!("K{p}-2");
        out.push((
            id.clone(),
            format!(
                "MSH|^~\\&|LAB|GENHOSP|SELDINGER|IR|20261130100000||ORU^R01|{id}|P|2.5.1\r{pid}\rOBR|1|P{p}|F{p}|COAG|||202611300915+0000\rOBX|1|NM|6301-6^INR^LN||1.{p}|{{INR}}|||||F\r"
            )
            .into_bytes(),
        ));
        out.push(adt(3, "A08", "72"));
    }
    out
}

fn start(data_dir: &Path, database_url: Option<&str>, hl7_port: u16) -> Child {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../catalog/hl7-interface.toml"
    );
    let mut command = common::seldinger();
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--hl7-listen", &format!("127.0.0.1:{hl7_port}")])
        .args(["--hl7-config", config, "--data-dir"])
        .arg(data_dir)
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("SELDINGER_ADMIN_PASSWORD", "first-admin-password")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start seldinger")
}

/// What a sender saw: the ACK code of each message, and how many it had to send again.
struct Sent {
    codes: Vec<String>,
    resent: usize,
}

/// Sends every message in order over one connection, re-sending any not acknowledged (a dropped
/// connection is reopened once the server is back); `progress` counts the acknowledged.
async fn send_all(port: u16, messages: &[(String, Vec<u8>)], progress: Arc<AtomicUsize>) -> Sent {
    let mut codes = Vec::new();
    let mut resent = 0;
    let mut connection: Option<tokio::io::BufReader<tokio::net::TcpStream>> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut i = 0;
    while i < messages.len() {
        assert!(
            Instant::now() < deadline,
            "the sender gave up at message {i}"
        );
        if connection.is_none() {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(stream) => connection = Some(tokio::io::BufReader::new(stream)),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(stream) = connection.as_mut() else {
            continue;
        };
        let sent = mllp::write_frame(stream.get_mut(), &messages[i].1).await;
        let answer = match sent {
            Ok(()) => {
                mllp::read_frame(
                    stream,
                    1 << 20,
                    Duration::from_secs(20),
                    Duration::from_secs(20),
                )
                .await
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok(Frame::Message(ack)) => {
                let text = String::from_utf8_lossy(&ack).to_string();
                let code = ack_code(&text);
                if code == "AR" && text.contains("send it again") {
                    // The database was not there: retry, as a sender does.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                codes.push(code);
                i += 1;
                progress.store(i, Ordering::SeqCst);
            }
            // No answer: the server died; the message is sent again on a new connection.
            _ => {
                connection = None;
                resent += 1;
            }
        }
    }
    Sent { codes, resent }
}

async fn check_applied_once(store: &Store, messages: usize, label: &str) {
    let site = SiteCode::parse("MAIN").expect("site");
    for p in 0..PATIENTS {
        let patient = store
            .patient_by_mrn(&site, &Mrn::parse(&format!("K{p:04}")).expect("mrn"))
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{label}: patient {p} missing"));
        let kinds: Vec<String> = store
            .patient_history(patient.id)
            .await
            .expect("history")
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "registered",
                "details_updated",
                "lab_result_recorded",
                "details_updated"
            ],
            "{label}: patient {p}"
        );
        assert_eq!(patient.details.weight_kg.map(|w| w.kg()), Some(72.0));
    }
    let inbox = store
        .inbound_messages_page(
            &InboxFilter {
                limit: 1000,
                ..InboxFilter::default()
            },
            None,
        )
        .await
        .expect("inbox");
    assert_eq!(
        inbox.total as usize, messages,
        "{label}: one row per message"
    );
    assert!(
        inbox.items.iter().all(|m| m.status == InboxStatus::Applied),
        "{label}: every message applied"
    );
    let mut writes: HashMap<String, usize> = HashMap::new();
    for username in ["hl7:PAS^GENHOSP", "hl7:LAB^GENHOSP"] {
        let audit = store
            .audit_page(
                &AuditFilter {
                    username: Some(username.to_string()),
                    ..AuditFilter::default()
                },
                None,
                100_000,
            )
            .await
            .expect("audit");
        for entry in audit.items {
            if let Some(message) = entry.via_message {
                *writes.entry(message).or_default() += 1;
            }
        }
    }
    assert_eq!(writes.len(), messages, "{label}: every message wrote");
    assert!(writes.values().all(|&n| n == 1), "{label}: and wrote once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_while_messages_stream_every_message_is_applied_exactly_once() {
    let messages = messages();
    let mut databases = vec![None];
    let postgres = seldinger_store::testing::postgres().await;
    if let Some(db) = &postgres {
        databases.push(Some(db.url.clone()));
    }
    for database_url in databases {
        let label = if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port();
        let mut server = start(dir.path(), database_url.as_deref(), port);
        let progress = Arc::new(AtomicUsize::new(0));
        let sender = {
            let (messages, progress) = (messages.clone(), progress.clone());
            tokio::spawn(async move { send_all(port, &messages, progress).await })
        };
        // Three kills at random points of the stream, each a few milliseconds after a given
        // acknowledgement, so they land while messages are being received and applied.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261202);
        let total = messages.len();
        let mut kills = 0;
        for (from, to) in [
            (total / 10, total / 3),
            (total / 3, 2 * total / 3),
            (2 * total / 3, total - 5),
        ] {
            let target = rng.gen_range(from..to);
            while progress.load(Ordering::SeqCst) < target {
                assert!(!sender.is_finished(), "{label}: the sender stopped early");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_micros(rng.gen_range(0..4000))).await;
            kill9(&mut server);
            kills += 1;
            server = start(dir.path(), database_url.as_deref(), port);
        }
        let sent = sender.await.expect("sender");
        assert_eq!(kills, 3);
        assert!(
            sent.resent >= 3,
            "{label}: each kill cut a message short ({} resent)",
            sent.resent
        );
        assert!(
            sent.codes.iter().all(|c| c == "AA"),
            "{label}: {:?}",
            sent.codes
        );
        // The sender's whole queue once more, as after a sender-side restart: nothing changes.
        let again = send_all(port, &messages, Arc::new(AtomicUsize::new(0))).await;
        assert!(
            again.codes.iter().all(|c| c == "AA"),
            "{label}: {:?}",
            again.codes
        );
        eprintln!(
            "{label}: {total} messages, {kills} kills, {} sent again after a kill",
            sent.resent
        );
        kill9(&mut server);
        let store = match &database_url {
            Some(url) => Store::connect(url).await.expect("connect"),
            None => Store::open_data_dir(dir.path()).await.expect("open"),
        };
        check_applied_once(&store, messages.len(), label).await;
        store.close().await;
    }
}

/// A CA, a server certificate for 127.0.0.1, the PAS's client certificate and the
/// laboratory's, as PEM files.
fn certificates(dir: &Path) -> [std::path::PathBuf; 7] {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Synthetic hospital interface CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &ca, &ca_key).expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(
        vec!["pas.hospital.example".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let (lab_cert, lab_key) = leaf(
        vec!["lab.hospital.example".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    [
        ("ca.pem", ca.pem()),
        ("server.pem", server_cert),
        ("server.key", server_key),
        ("client.pem", client_cert),
        ("client.key", client_key),
        ("lab.pem", lab_cert),
        ("lab.key", lab_key),
    ]
    .map(|(name, pem)| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    })
}

/// An independent TLS client (Python's ssl module, on OpenSSL) sending one framed message;
/// what came back, or the error.
fn python_tls_send(port: u16, ca: &Path, client: Option<(&Path, &Path)>) -> String {
    let script = r#"
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)
if len(sys.argv) > 3:
    context.load_cert_chain(sys.argv[3], sys.argv[4])
message = b"MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A04|TLS-1|P|2.5.1\rPID|1||T0001^^^GENHOSP^MR||Tls^Terry||19700101|U\r"
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"\x0b" + message + b"\x1c\r")
            answer = tls.recv(65536)
            print(answer.decode("latin-1") if answer else "NO ANSWER")
except Exception as error:
    print("FAILED", type(error).__name__, error)
"#;
    let mut command = Command::new("python3");
    command.arg("-c").arg(script).arg(port.to_string()).arg(ca);
    if let Some((cert, key)) = client {
        command.arg(cert).arg(key);
    }
    let output = command.output().expect("python3 runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Mutual TLS: only a sender with a certificate of the hospital's CA is answered, and only as
/// the sender its certificate is bound to — the laboratory's certificate cannot speak as the
/// PAS. A listener asking for certificates does not start while any sender has none bound.
#[test]
fn mllp_over_mutual_tls_answers_only_senders_with_their_own_certificate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let [ca, server_cert, server_key, client_cert, client_key, lab_cert, lab_key] =
        certificates(dir.path());
    let port = free_port();
    let serve = |config: &Path| {
        let mut command = common::seldinger();
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--hl7-listen", &format!("127.0.0.1:{port}")])
            .arg("--hl7-config")
            .arg(config)
            .arg("--hl7-tls-cert")
            .arg(&server_cert)
            .arg("--hl7-tls-key")
            .arg(&server_key)
            .arg("--hl7-tls-client-ca")
            .arg(&ca)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
            .env("SELDINGER_ADMIN_PASSWORD", "first-admin-password")
            .env("RUST_LOG", "error");
        command
    };
    // The demo file binds no certificate to its senders: refused at start, naming them.
    let unbound = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../catalog/hl7-interface.toml"
    ));
    let refused = serve(unbound).output().expect("run");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("binds none to PAS^GENHOSP, LAB^GENHOSP, ORDERS^GENHOSP"),
        "{said}"
    );
    let bound = dir.path().join("interface.toml");
    let with_bindings = seldinger_hl7::DEMO_INTERFACE
        .replace(
            "merge = true\n",
            "merge = true\ncertificate = { dns_name = \"pas.hospital.example\" }\n",
        )
        .replace(
            "messages = [\"ORU^R01\"]\n",
            "messages = [\"ORU^R01\"]\ncertificate = { dns_name = \"lab.hospital.example\" }\n",
        )
        .replace(
            "messages = [\"ORM\", \"OMG\", \"OMI\"]\n",
            "messages = [\"ORM\", \"OMG\", \"OMI\"]\ncertificate = { dns_name = \"orders.hospital.example\" }\n",
        );
    std::fs::write(&bound, with_bindings).expect("write the interface file");
    let mut server = serve(&bound)
        .stdout(Stdio::null())
        .spawn()
        .expect("start seldinger");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the HL7 listener did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The laboratory's certificate speaking as the PAS, with the PAS's control id.
    let as_pas = python_tls_send(port, &ca, Some((&lab_cert, &lab_key)));
    assert!(as_pas.contains("MSA|AR|TLS-1"), "{as_pas}");
    assert!(
        as_pas.contains("must present its own certificate"),
        "{as_pas}"
    );
    // The PAS's own TLS-1 is then applied, not taken for a copy.
    let with_certificate = python_tls_send(port, &ca, Some((&client_cert, &client_key)));
    assert!(
        with_certificate.contains("MSA|AA|TLS-1"),
        "{with_certificate}"
    );
    let without = python_tls_send(port, &ca, None);
    assert!(
        without.contains("FAILED") || without.contains("NO ANSWER"),
        "a sender without a certificate was answered: {without}"
    );
    // Plain MLLP to the TLS port gets no acknowledgement.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    use std::io::{Read, Write};
    let _ = plain.write_all(b"\x0bMSH|^~\\&|PAS|GENHOSP|||1||ADT^A04|X|P|2.5.1\r\x1c\r");
    let mut answer = [0u8; 256];
    let n = plain.read(&mut answer).unwrap_or(0);
    assert!(!String::from_utf8_lossy(&answer[..n]).contains("MSA"));
    kill9(&mut server);
}

/// A demo user signed in: a client holding the session cookie, and the CSRF token for writes.
async fn sign_in(base: &str, name: &str) -> (::reqwest::Client, String) {
    let client = ::reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let session: serde_json::Value = client
        .post(format!("{base}/session"))
        .json(&serde_json::json!({"username": name, "password": "seldinger-demo"}))
        .send()
        .await
        .expect("sign in")
        .json()
        .await
        .expect("session");
    let csrf = session["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (client, csrf)
}

/// The dead-letter round trip through the real demo binary: a message whose identifier authority
/// is not mapped fails (AE); the administrator finds it in the inbox with the field marked, and a
/// replay while the cause stands fails again saying why; no other role may read the inbox.
#[tokio::test]
async fn a_dead_letter_is_listed_with_its_field_marked_and_only_administrators_see_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let hl7_port = free_port();
    let http_port = free_port();
    let mut server = common::seldinger()
        .args(["demo", "--listen", &format!("127.0.0.1:{http_port}")])
        .args(["--hl7-listen", &format!("127.0.0.1:{hl7_port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the demo");
    let base = format!("http://127.0.0.1:{http_port}/api/v1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !common::reqwest::blocking_get_ok(&format!("{base}/health")) {
        assert!(Instant::now() < deadline, "the demo did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let bad = b"MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261201120000||ADT^A08^ADT_A01|DEAD-1|P|2.5.1\rPID|1||Z1^^^ELSEWHERE^MR||Letter^Dee||19700101|F\r".to_vec();
    let stranger = b"MSH|^~\\&|PHARMACY|GENHOSP|SELDINGER|IR|20261201120000||ADT^A08^ADT_A01|RX-9|P|2.5.1\rPID|1||Z2^^^GENHOSP^MR||Rx^Ray||19700101|F\r".to_vec();
    let sent = send_all(
        hl7_port,
        &[("DEAD-1".into(), bad), ("RX-9".into(), stranger)],
        Arc::new(AtomicUsize::new(0)),
    )
    .await;
    assert_eq!(sent.codes, ["AE", "AR"]);

    let (admin, csrf) = sign_in(&base, "admin").await;
    let dead: serde_json::Value = admin
        .get(format!("{base}/hl7/messages?status=dead"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let letter = &dead[0];
    assert_eq!(letter["control_id"], "DEAD-1", "{dead}");
    assert_eq!(letter["status"], "failed");
    assert_eq!(letter["error_location"], "PID-3.4");
    let id = letter["id"].as_str().expect("id");
    let detail: serde_json::Value = admin
        .get(format!("{base}/hl7/messages/{id}"))
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("json");
    let text = detail["text"].as_str().expect("text");
    let (start, end) = (
        detail["marked"]["start"].as_u64().expect("start") as usize,
        detail["marked"]["end"].as_u64().expect("end") as usize,
    );
    assert_eq!(
        &text[start..end],
        "ELSEWHERE",
        "the offending field is marked"
    );
    let page = admin
        .get(format!("http://127.0.0.1:{http_port}/interfaces/hl7/{id}"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("<mark title=\"PID-3.4\">ELSEWHERE</mark>"),
        "{page}"
    );
    // The inbox holds the listed sender's dead letter; the pharmacy, not a listed sender, is
    // only counted below it, by address, with what it claimed.
    let inbox = admin
        .get(format!("http://127.0.0.1:{http_port}/interfaces/hl7"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert_eq!(dead.as_array().map(Vec::len), Some(1), "{dead}");
    let strangers = inbox.split("id=\"strangers\"").nth(1).unwrap_or_default();
    assert!(
        strangers.contains("sender not listed") && strangers.contains("PHARMACY^GENHOSP"),
        "{inbox}"
    );
    // Replay: still unmapped, so it fails again and says why; an applied message is not replayed.
    let replayed: serde_json::Value = admin
        .post(format!("{base}/hl7/messages/{id}/replay"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("replay")
        .json()
        .await
        .expect("json");
    assert_eq!(replayed["status"], "failed", "{replayed}");
    assert!(replayed["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("ELSEWHERE"));
    // The list is the dead letters: what was applied is read one at a time, by id.
    let applied = admin
        .get(format!("{base}/hl7/messages?status=applied"))
        .send()
        .await
        .expect("list");
    assert_eq!(applied.status(), 422);
    // Nobody else reads the inbox: it holds the hospital's words as sent.
    for name in ["dr.okafor", "nurse.lindqvist", "qa.singh", "dr.anand"] {
        let (user, _) = sign_in(&base, name).await;
        let status = user
            .get(format!("{base}/hl7/messages"))
            .send()
            .await
            .expect("list")
            .status();
        assert_eq!(status, 403, "{name}");
    }
    kill9(&mut server);
}

async fn json(request: ::reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("request");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Bookings, a rebooking, a cancellation and a procedure report go out to an independent MLLP
/// receiver (python-hl7, which parses each) in three styles — SIU to a scheduling system, OMI^O23
/// (IHE RAD-4/13) to a PACS, ORR^O02 and ORU^R01 to the order placer — each destination in the
/// order the changes were made, with the study identity given at booking. A booking made while
/// the receiver is down waits in the outbox through a kill -9 and goes once it is back; the
/// receiver's refusals are kept as rejected and sent again on request with a new control id.
#[tokio::test]
async fn bookings_and_reports_reach_an_independent_receiver_in_order_through_its_absence_and_a_restart(
) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = dir.path().join("received.jsonl");
    let rx = free_port();
    let interface = dir.path().join("interface.toml");
    std::fs::write(
        &interface,
        format!(
            "{}\n{}",
            seldinger_hl7::DEMO_INTERFACE,
            r#"
[[destinations]]
name = "ris"
style = "siu"
application = "RIS"

[[destinations]]
name = "pacs"
style = "omi"
application = "PACS"

[[destinations]]
name = "archive"
style = "orm"
application = "ARCHIVE"

[[destinations]]
name = "orders"
style = "order_status"
application = "ORDERS"
facility = "GENHOSP"
"#
        ),
    )
    .expect("interface file");
    let http_port = free_port();
    // The demo builds its department afresh; the restart serves the same database as it was.
    let start = |mode: &str| {
        let mut command = common::seldinger();
        command
            .args([mode, "--listen", &format!("127.0.0.1:{http_port}")])
            .args(["--hl7-listen", "127.0.0.1:0", "--hl7-config"])
            .arg(&interface)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for name in ["ris", "pacs", "archive", "orders"] {
            command.args(["--hl7-destination", &format!("{name}=127.0.0.1:{rx}")]);
        }
        let child = command.spawn().expect("start the demo");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !common::reqwest::blocking_get_ok(&format!(
            "http://127.0.0.1:{http_port}/api/v1/health"
        )) {
            assert!(Instant::now() < deadline, "the demo did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        child
    };
    let base = format!("http://127.0.0.1:{http_port}/api/v1");
    let mut server = Killed(start("demo"));
    let (scheduler, scheduler_csrf) = sign_in(&base, "sched.moreau").await;
    let (admin, _) = sign_in(&base, "admin").await;
    let vetted = json(scheduler.get(format!("{base}/cases?state=vetted&limit=1"))).await;
    let case_id = vetted[0]["id"].as_str().expect("a vetted case").to_string();
    let transition =
        |client: ::reqwest::Client, csrf: String, case: String, body: serde_json::Value| {
            let base = base.clone();
            async move {
                json(
                    client
                        .post(format!("{base}/cases/{case}/transitions"))
                        .header("x-csrf-token", csrf)
                        .json(&body),
                )
                .await
            }
        };
    // Booked while no receiver listens: owed, tried, waiting.
    let booked = transition(
        scheduler.clone(),
        scheduler_csrf.clone(),
        case_id.clone(),
        serde_json::json!({"expected_version": vetted[0]["version"],
            "event": {"type": "schedule", "room": "angio-1", "start": "2026-12-09T09:00:00Z"}}),
    )
    .await;
    let accession = booked["accession_number"]
        .as_str()
        .expect("accession")
        .to_string();
    let study = booked["study_instance_uid"]
        .as_str()
        .expect("study")
        .to_string();
    assert!(study.starts_with("2.25."), "{booked}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let owed = json(admin.get(format!("{base}/hl7/outbox?case={case_id}"))).await;
        let rows = owed.as_array().expect("rows");
        if rows.len() == 4
            && rows
                .iter()
                .all(|r| r["status"] == "pending" && r["attempts"].as_i64() >= Some(1))
        {
            assert!(
                rows[0]["last_error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("connecting"),
                "{owed}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the booking was not owed and tried: {owed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Killed with the messages unsent; the receiver comes up (refusing PACS's OMI), then Seldinger.
    kill9(&mut server.0);
    let _peer = Killed(receiver(rx, &log, &["--refuse", "O23"]));
    let mut server = Killed(start("serve"));
    let (scheduler, scheduler_csrf) = sign_in(&base, "sched.moreau").await;
    let (physician, physician_csrf) = sign_in(&base, "dr.okafor").await;
    let (admin, admin_csrf) = sign_in(&base, "admin").await;
    let moved = transition(
        scheduler.clone(),
        scheduler_csrf.clone(),
        case_id.clone(),
        serde_json::json!({"expected_version": booked["version"], "reason": "list moved",
            "event": {"type": "schedule", "room": "angio-2", "start": "2026-12-09T13:00:00Z"}}),
    )
    .await;
    assert_eq!(
        moved["accession_number"],
        accession.as_str(),
        "the study is kept"
    );
    transition(
        scheduler.clone(),
        scheduler_csrf.clone(),
        case_id.clone(),
        serde_json::json!({"expected_version": moved["version"], "reason": "patient unwell | febrile",
            "event": {"type": "cancel"}}),
    )
    .await;
    // A case in the room: its procedure recorded, then complete — the report.
    let in_room = json(physician.get(format!("{base}/cases?state=in_room&limit=1"))).await;
    let reported = in_room[0]["id"]
        .as_str()
        .expect("a case in the room")
        .to_string();
    let recorded = transition(
        physician.clone(),
        physician_csrf.clone(),
        reported.clone(),
        serde_json::json!({"expected_version": in_room[0]["version"],
            "event": {"type": "record_procedure", "details": {
                "operators": [{"name": "Dr O. Okafor", "role": "primary"}],
                "guidance": "fluoroscopy", "access_site": "right common femoral artery",
                "findings": "Target vessel occluded; recanalised", "technical_success": true}}}),
    )
    .await;
    transition(
        physician.clone(),
        physician_csrf.clone(),
        reported.clone(),
        serde_json::json!({"expected_version": recorded["version"], "event": {"type": "complete_procedure"}}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = json(admin.get(format!("{base}/hl7/outbox?status=pending"))).await;
        if pending.as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "still pending: {pending}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = received(&log);
    let to =
        |who: &str| -> Vec<&serde_json::Value> { got.iter().filter(|m| m["to"] == who).collect() };
    let kinds = |who: &str| -> Vec<String> {
        to(who)
            .iter()
            .map(|m| m["type"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        kinds("RIS"),
        ["SIU^S12^SIU_S12", "SIU^S13^SIU_S12", "SIU^S15^SIU_S12"],
        "{got:#?}"
    );
    for m in to("RIS") {
        assert_eq!(m["sch2"], format!("{accession}^SELDINGER"));
        assert_eq!(m["sch27"], format!("{case_id}^SELDINGER"));
        assert_eq!(m["zds1"], format!("{study}^SELDINGER^Application^DICOM"));
        assert!(
            m["pid3"]
                .as_str()
                .unwrap_or_default()
                .ends_with("^^^GENHOSP^MR"),
            "{m}"
        );
    }
    assert_eq!(
        to("RIS")[0]["ail3"],
        "IR^angio-1^^^^^^^Angio suite 1 (biplane)"
    );
    assert_eq!(to("RIS")[1]["ail3"], "IR^angio-2^^^^^^^Angio suite 2");
    assert_eq!(to("RIS")[2]["sch25"], "Cancelled");
    assert_eq!(
        to("RIS")[2]["sch6"],
        "^patient unwell \\F\\ febrile",
        "escaped as sent"
    );
    let pacs = to("PACS");
    let controls: Vec<&str> = pacs
        .iter()
        .map(|m| m["orc1"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(controls, ["NW", "XO", "CA"], "{got:#?}");
    for m in &pacs {
        assert_eq!(m["type"], "OMI^O23^OMI_O23");
        assert_eq!(m["ipc1"], format!("{accession}^SELDINGER"));
        assert_eq!(m["ipc3"], format!("{study}^SELDINGER^Application^DICOM"));
        assert_eq!(m["answered"], "AE");
    }
    // The same to a v2.3.1 archive: ORM^O01, the Study Instance UID in ZDS-1 (IHE RAD-4).
    let archive = to("ARCHIVE");
    let controls: Vec<&str> = archive
        .iter()
        .map(|m| m["orc1"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(controls, ["NW", "XO", "CA"], "{got:#?}");
    for m in &archive {
        assert_eq!(m["type"], "ORM^O01^ORM_O01");
        assert_eq!(m["version"], "2.3.1");
        assert_eq!(m["obr18"], accession.as_str());
        assert_eq!(m["zds1"], format!("{study}^SELDINGER^Application^DICOM"));
        assert_eq!(m["answered"], "AA");
    }
    assert_eq!(
        kinds("ORDERS"),
        [
            "ORR^O02^ORR_O02",
            "ORR^O02^ORR_O02",
            "ORR^O02^ORR_O02",
            "ORU^R01^ORU_R01"
        ],
        "{got:#?}"
    );
    let orders = to("ORDERS");
    let statuses: Vec<(&str, &str)> = orders[..3]
        .iter()
        .map(|m| {
            (
                m["orc1"].as_str().unwrap_or_default(),
                m["orc5"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(statuses, [("SC", "SC"), ("SC", "SC"), ("OC", "CA")]);
    assert_eq!(orders[0]["orc3"], format!("{case_id}^SELDINGER"));
    assert_eq!(orders[0]["obr18"], accession.as_str());
    let report = orders[3];
    assert_eq!(report["orc3"], format!("{reported}^SELDINGER"));
    // Preliminary until the IR physician signs the structured report (then F).
    assert_eq!(report["obr25"], "P");
    let lines: Vec<&str> = report["obx5"]
        .as_array()
        .expect("OBX")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        lines.contains(&"Findings: Target vessel occluded; recanalised"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"Operators: Dr O. Okafor (primary)"),
        "{lines:?}"
    );
    // Each sent once: the restart resent nothing acknowledged.
    let mut ids: Vec<&str> = got
        .iter()
        .map(|m| m["control_id"].as_str().unwrap_or_default())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "{got:#?}");

    // PACS refused: kept as rejected with its answer; sent again, it is rendered anew.
    let rejected = json(admin.get(format!(
        "{base}/hl7/outbox?status=rejected&destination=pacs"
    )))
    .await;
    let rejected = rejected.as_array().expect("rows");
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    let first = &rejected[0];
    assert!(
        first["last_error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("AE"),
        "{first}"
    );
    let id = first["id"].as_str().expect("id");
    let again = json(
        admin
            .post(format!("{base}/hl7/outbox/{id}/send-again"))
            .header("x-csrf-token", &admin_csrf),
    )
    .await;
    assert_eq!(again["status"], "pending");
    let deadline = Instant::now() + Duration::from_secs(30);
    let resent = loop {
        let detail = json(admin.get(format!("{base}/hl7/outbox/{id}"))).await;
        if detail["status"] == "rejected" && detail["control_id"] != first["control_id"] {
            break detail;
        }
        assert!(Instant::now() < deadline, "not sent again: {detail}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        resent["ack"]
            .as_str()
            .unwrap_or_default()
            .contains("MSA|AE|"),
        "{resent}"
    );
    let page = admin
        .get(format!(
            "http://127.0.0.1:{http_port}/interfaces/hl7/outbox?show=all"
        ))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("<th scope=\"row\">pacs</th>"), "{page}");
    // The outbox holds what hospitals are told, names and all: administrators only.
    let status = scheduler
        .get(format!("{base}/hl7/outbox"))
        .send()
        .await
        .expect("list")
        .status();
    assert_eq!(status, 403);
    kill9(&mut server.0);
}

/// A child process killed when the test ends, passed or not.
/// A destination over mutual TLS (python-hl7's server on Python's ssl, requiring a client
/// certificate from the hospital CA) gets the booking; one without a client certificate is
/// refused at the handshake, and its message waits in the outbox with the reason.
#[tokio::test]
async fn bookings_go_over_mutual_tls_and_not_to_a_destination_without_its_certificate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let [ca, server_cert, server_key, client_cert, client_key, _, _] = certificates(dir.path());
    let log = dir.path().join("received.jsonl");
    let rx = free_port();
    let path = |p: &Path| p.display().to_string();
    let _peer = Killed(receiver(
        rx,
        &log,
        &[
            "--tls",
            &path(&server_cert),
            &path(&server_key),
            "--client-ca",
            &path(&ca),
        ],
    ));
    let interface = dir.path().join("interface.toml");
    std::fs::write(
        &interface,
        format!(
            "{}\n[[destinations]]\nname = \"secure\"\napplication = \"SECURE\"\ntls_ca = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n[[destinations]]\nname = \"anonymous\"\napplication = \"ANON\"\ntls_ca = \"{}\"\n",
            seldinger_hl7::DEMO_INTERFACE,
            path(&ca),
            path(&client_cert),
            path(&client_key),
            path(&ca)
        ),
    )
    .expect("interface file");
    let http_port = free_port();
    let mut server = Killed(
        common::seldinger()
            .args(["demo", "--listen", &format!("127.0.0.1:{http_port}")])
            .args(["--hl7-listen", "127.0.0.1:0", "--hl7-config"])
            .arg(&interface)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--hl7-destination", &format!("secure=127.0.0.1:{rx}")])
            .args(["--hl7-destination", &format!("anonymous=127.0.0.1:{rx}")])
            .env_remove("DATABASE_URL")
            .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo"),
    );
    let base = format!("http://127.0.0.1:{http_port}/api/v1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !common::reqwest::blocking_get_ok(&format!("{base}/health")) {
        assert!(Instant::now() < deadline, "the demo did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (scheduler, csrf) = sign_in(&base, "sched.moreau").await;
    let (admin, _) = sign_in(&base, "admin").await;
    let vetted = json(scheduler.get(format!("{base}/cases?state=vetted&limit=1"))).await;
    let case_id = vetted[0]["id"].as_str().expect("a vetted case");
    json(
        scheduler
            .post(format!("{base}/cases/{case_id}/transitions"))
            .header("x-csrf-token", &csrf)
            .json(
                &serde_json::json!({"expected_version": vetted[0]["version"],
                "event": {"type": "schedule", "room": "angio-1", "start": "2026-12-09T09:00:00Z"}}),
            ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = received(&log);
        let anonymous = json(admin.get(format!("{base}/hl7/outbox?destination=anonymous"))).await;
        let tried = anonymous[0]["attempts"].as_i64().unwrap_or_default() >= 1;
        if got.len() == 1 && tried {
            assert_eq!(got[0]["to"], "SECURE", "{got:?}");
            assert_eq!(got[0]["type"], "SIU^S12^SIU_S12");
            assert_eq!(anonymous[0]["status"], "pending", "{anonymous}");
            assert!(
                !anonymous[0]["last_error"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty(),
                "{anonymous}"
            );
            break;
        }
        assert!(
            got.len() <= 1,
            "only the destination with a certificate is served: {got:?}"
        );
        assert!(Instant::now() < deadline, "{got:?} {anonymous}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kill9(&mut server.0);
}

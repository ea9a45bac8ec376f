//! Beyond one machine: `scripts/two-nodes` starts two Seldinger nodes behind nginx on one
//! PostgreSQL primary with a synchronous streaming replica, on loopback. Writes go through the
//! proxy from several clients at once; one node is killed (`kill -9`) while they run. Every write
//! the proxy acknowledged is then readable through the proxy (the other node), on each node
//! directly, and on the replica; none is there twice; a session signed in through one node is
//! good on the other, the board's tag from one is the other's too, and sign-in limits count
//! each client (named by the proxy's X-Forwarded-For) on both nodes together.

mod common;

use common::{free_port, received, receiver, send_hl7, signed_in, store_scu, Killed, BIN};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The arrangement, stopped when the test ends (passed or not).
struct Arrangement {
    dir: PathBuf,
    settings: BTreeMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/two-nodes")
}

impl Arrangement {
    /// Starts it with `node_args` given to both nodes' `serve`.
    fn start(dir: &Path, node_args: &str) -> Arrangement {
        let output = Command::new(script())
            .args(["start"])
            .arg(dir)
            .env("SELDINGER_BIN", BIN)
            .env("SELDINGER_CLOCK", common::test_now().to_rfc3339())
            .env("SELDINGER_NODE_ARGS", node_args)
            .env_remove("DATABASE_URL")
            .output()
            .expect("run scripts/two-nodes");
        let arrangement = Arrangement {
            dir: dir.to_path_buf(),
            settings: String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert!(
            output.status.success(),
            "scripts/two-nodes start: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        arrangement
    }

    fn get(&self, key: &str) -> &str {
        self.settings
            .get(key)
            .unwrap_or_else(|| panic!("scripts/two-nodes gave no {key}"))
    }
}

impl Drop for Arrangement {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn token(primary: &str, user: &str) -> String {
    let output = common::seldinger()
        .args(["token", "create", "--user", user])
        .env("DATABASE_URL", primary)
        .env("RUST_LOG", "warn")
        .output()
        .expect("seldinger token create");
    assert!(output.status.success(), "token create: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .expect("the token")
        .trim()
        .to_string()
}

/// The outbox sequence number in a control id Seldinger gave (`SD{seq}-…`).
fn outbox_seq(control_id: &str) -> i64 {
    control_id
        .strip_prefix("SD")
        .and_then(|rest| rest.split('-').next())
        .and_then(|seq| seq.parse().ok())
        .unwrap_or_else(|| panic!("{control_id} is not a control id Seldinger gives"))
}

/// Waits until the receiver has `count` messages (and a moment more, for any duplicate to
/// arrive), checks it has each once and in the order owed (outbox sequence), and returns them.
async fn received_once_in_order(log: &Path, count: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while received(log).len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "the receiver has {} of {count} messages",
            received(log).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = received(log);
    let order: Vec<i64> = got
        .iter()
        .map(|m| outbox_seq(m["control_id"].as_str().expect("control id")))
        .collect();
    assert_eq!(got.len(), count, "each message once: {order:?}");
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "in the order owed: {order:?}"
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_behind_a_proxy_keep_every_acknowledged_write_when_one_is_killed() {
    if std::env::var("SELDINGER_TEST_POSTGRES_URL").is_err()
        && std::env::var("SELDINGER_REQUIRE_POSTGRES").as_deref() != Ok("1")
    {
        eprintln!("two nodes: skipped (no PostgreSQL here; scripts/test sets it up)");
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    // Both nodes send bookings to one scheduling system: python-hl7's MLLP receiver.
    let log = dir.path().join("received.jsonl");
    let rx = free_port();
    let _receiver = Killed(receiver(rx, &log, &[]));
    let interface = dir.path().join("interface.toml");
    std::fs::write(
        &interface,
        format!(
            "{}\n[[destinations]]\nname = \"ris\"\nstyle = \"siu\"\napplication = \"RIS\"\n",
            seldinger_hl7::DEMO_INTERFACE
        ),
    )
    .expect("interface file");
    let node_args = format!(
        "--hl7-config {} --hl7-destination ris=127.0.0.1:{rx}",
        interface.display()
    );
    let arrangement = tokio::task::spawn_blocking({
        let dir = dir.path().join("two-nodes");
        move || Arrangement::start(&dir, &node_args)
    })
    .await
    .expect("started");
    let proxy = arrangement.get("PROXY_URL").to_string();
    let nodes = [
        arrangement.get("NODE_A_URL").to_string(),
        arrangement.get("NODE_B_URL").to_string(),
    ];
    let primary = arrangement.get("PRIMARY_URL").to_string();
    let bearer = tokio::task::spawn_blocking({
        let primary = primary.clone();
        move || token(&primary, "dr.okafor")
    })
    .await
    .expect("token");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");

    // A session signed in on one node is good on the other; the board's tag too.
    // Signed in on node A; the jar sends its cookie to node B too (same host, another port).
    let nurse = signed_in(&nodes[0], "nurse.lindqvist").await;
    let site = |base: &str| base.trim_end_matches("/api/v1").to_string();
    let board = nurse
        .get(format!("{}/board/lanes", site(&nodes[0])))
        .send()
        .await
        .expect("board on A");
    assert_eq!(board.status(), 200, "the board on node A");
    let tag = board
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("the board's tag")
        .to_string();
    let refresh = nurse
        .get(format!("{}/board/lanes", site(&nodes[1])))
        .header("if-none-match", &tag)
        .send()
        .await
        .expect("refresh on B");
    assert_eq!(
        refresh.status(),
        304,
        "node B knows node A's session and tag"
    );

    // Sign-in limits count each client, not the proxy, whichever node answers: a guesser at
    // 127.0.0.2 is slowed after five wrong passwords for one account (the default), while the
    // same account tried from 127.0.0.3 through the same proxy is not.
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    };
    let guess = |client: reqwest::Client| {
        let proxy = proxy.clone();
        async move {
            client
                .post(format!("{proxy}/session"))
                .json(&serde_json::json!({"username": "nurse.lindqvist", "password": "guess"}))
                .send()
                .await
                .expect("a guess")
                .status()
                .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(guess(from(2)).await);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "from 127.0.0.2");
    assert_eq!(guess(from(3)).await, 401, "127.0.0.3 is another client");

    // The listeners: one HL7 message sent to both nodes at once is applied once (the inbox
    // knows its control id whichever node stored it first); one dose report stored through
    // both nodes' DICOM listeners is kept once. Each sender hears it was taken.
    let adt = "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A04|TWO-ADT-1|P|2.5.1\r\
               PID|1||TWOHL7^^^GENHOSP^MR||Twonode^Hal||19700101|M\r";
    let (a, b) = tokio::join!(
        send_hl7(arrangement.get("NODE_A_HL7"), adt),
        send_hl7(arrangement.get("NODE_B_HL7"), adt)
    );
    assert_eq!(
        (a.0.as_str(), b.0.as_str()),
        ("AA", "AA"),
        "both nodes take it"
    );
    let rdsr = {
        use seldinger_dicom::fixtures::{plane, report, write};
        write(
            dir.path(),
            "two.dcm",
            report(
                "1.2.840.10008.5.1.4.1.1.88.67",
                "2.25.26001",
                vec![plane(("0.01", "Gy.m2"), ("0.2", "Gy"), ("100", "s"))],
            ),
        )
    };
    let stores = ["NODE_A_DICOM", "NODE_B_DICOM"].map(|node| {
        let (host, port) = arrangement
            .get(node)
            .split_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
            .expect("host:port");
        let rdsr = rdsr.clone();
        tokio::task::spawn_blocking(move || store_scu(&host, port, &rdsr))
    });
    for store in stores {
        let said = store.await.expect("storescu");
        assert!(said.contains("Received Store Response (Success)"), "{said}");
    }
    let primary_db = sqlx::PgPool::connect(&primary).await.expect("the primary");
    let count = |sql: &'static str| {
        let primary_db = primary_db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&primary_db)
                .await
                .expect(sql)
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM patients WHERE mrn = 'TWOHL7'").await,
        1,
        "the patient registered once"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM hl7_messages WHERE control_id = 'TWO-ADT-1'").await,
        1,
        "the message kept once"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM dose_reports WHERE sop_instance_uid = '2.25.26001'").await,
        1,
        "the dose report kept once"
    );

    // Bookings made on both nodes reach the scheduling system once each and in the order they
    // were made: only the sender holding the destination's lease sends.
    let scheduler = tokio::task::spawn_blocking({
        let primary = primary.clone();
        move || token(&primary, "sched.moreau")
    })
    .await
    .expect("token");
    // Vetted cases are booked, scheduled ones moved: each owes the scheduling system a message.
    let mut vetted = Vec::new();
    for state in ["vetted", "scheduled"] {
        let cases: serde_json::Value = http
            .get(format!("{}/cases?state={state}&limit=6", nodes[0]))
            .bearer_auth(&scheduler)
            .send()
            .await
            .expect("cases")
            .json()
            .await
            .expect("a list");
        vetted.extend(cases.as_array().expect("a list").iter().cloned());
    }
    assert!(
        vetted.len() >= 8,
        "the demo has cases to book: {}",
        vetted.len()
    );
    let (now_booked, after_kill) = vetted.split_at(vetted.len() - 2);
    let book = |base: String, case: serde_json::Value, hour: usize| {
        let (http, scheduler) = (http.clone(), scheduler.clone());
        async move {
            let answer = http
                .post(format!(
                    "{base}/cases/{}/transitions",
                    case["id"].as_str().expect("id")
                ))
                .bearer_auth(&scheduler)
                .json(&serde_json::json!({"expected_version": case["version"],
                    "reason": "list moved",
                    "event": {"type": "schedule", "room": "angio-1",
                        "start": format!("2027-01-05T{:02}:00:00Z", 7 + hour)}}))
                .send()
                .await
                .expect("book");
            let status = answer.status();
            assert_eq!(status, 200, "{}", answer.text().await.unwrap_or_default());
        }
    };
    // All at once, half through each node: both nodes' senders are woken together.
    let mut bookings = Vec::new();
    for (i, case) in now_booked.iter().enumerate() {
        bookings.push(tokio::spawn(book(nodes[i % 2].clone(), case.clone(), i)));
    }
    for booking in bookings {
        booking.await.expect("booked");
    }
    let got = received_once_in_order(&log, now_booked.len()).await;
    assert!(
        got.iter().all(|m| ["SIU^S12^", "SIU^S13^"]
            .iter()
            .any(|t| m["type"].as_str().unwrap_or_default().starts_with(t))),
        "{got:?}"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM hl7_outbox WHERE status = 'sent' AND attempts = 1").await,
        now_booked.len() as i64,
        "each sent by one try of one node"
    );

    // Four clients register patients through the proxy; node A is killed partway.
    let acknowledged = Arc::new(tokio::sync::Mutex::new(Vec::<(String, String)>::new()));
    let unknown = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..4 {
        let (http, proxy, bearer) = (http.clone(), proxy.clone(), bearer.clone());
        let (acknowledged, unknown, sent) = (acknowledged.clone(), unknown.clone(), sent.clone());
        clients.push(tokio::spawn(async move {
            for n in 0..25 {
                let mrn = format!("TWO-{client}-{n:02}");
                sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = http
                    .post(format!("{proxy}/patients"))
                    .bearer_auth(&bearer)
                    .json(&serde_json::json!({
                        "site": "MAIN",
                        "mrn": mrn,
                        "family_name": "Twonode",
                        "given_name": "Sam",
                        "birth_date": "1970-01-01",
                        "sex": "female",
                    }))
                    .send()
                    .await;
                match answer {
                    Ok(answer) if answer.status() == 201 => {
                        let body: serde_json::Value = answer.json().await.expect("patient");
                        let id = body["id"].as_str().expect("id").to_string();
                        acknowledged.lock().await.push((mrn, id));
                    }
                    // The node died with the write in hand: nginx does not resend a POST, so
                    // its outcome is unknown to the client (it may or may not have been kept).
                    Ok(answer) if answer.status() == 502 => unknown.lock().await.push(mrn),
                    Ok(answer) => panic!(
                        "{mrn}: {} {}",
                        answer.status(),
                        answer.text().await.unwrap_or_default()
                    ),
                    Err(e) => panic!("{mrn}: {e}"),
                }
            }
        }));
    }
    while sent.load(std::sync::atomic::Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let node_a: i32 = arrangement.get("NODE_A_PID").parse().expect("pid");
    let killed = Command::new("kill")
        .args(["-9", &node_a.to_string()])
        .status()
        .expect("kill -9");
    assert!(killed.success(), "node A killed");
    for client in clients {
        client.await.expect("client");
    }
    let acknowledged = acknowledged.lock().await.clone();
    let unknown = unknown.lock().await.clone();
    assert!(
        acknowledged.len() >= 100 - unknown.len() && unknown.len() <= 4,
        "{} acknowledged, {} lost with node A (at most one in flight per client)",
        acknowledged.len(),
        unknown.len()
    );

    // Every acknowledged write, through the proxy (node B now), once.
    for (mrn, id) in &acknowledged {
        let found = http
            .get(format!("{proxy}/patients?mrn={mrn}"))
            .bearer_auth(&bearer)
            .send()
            .await
            .expect("search");
        assert_eq!(found.status(), 200, "{mrn}");
        let found: serde_json::Value = found.json().await.expect("page");
        let ids: Vec<&str> = found["items"]
            .as_array()
            .or_else(|| found.as_array())
            .expect("a list")
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        assert_eq!(ids, vec![id.as_str()], "{mrn}: kept once");
    }
    // Node B answers directly; node A is gone.
    let health = http
        .get(format!("{}/health/ready", nodes[1]))
        .send()
        .await
        .expect("B");
    assert_eq!(health.status(), 200);
    assert!(http
        .get(format!("{}/health", nodes[0]))
        .send()
        .await
        .is_err());

    // Bookings made after node A died go out from node B (node A held no lease: it had
    // nothing to send when it was killed).
    for (i, case) in after_kill.iter().enumerate() {
        book(proxy.clone(), case.clone(), now_booked.len() + i).await;
    }
    received_once_in_order(&log, vetted.len()).await;
    primary_db.close().await;

    // And on the replica, which applied each write before the primary acknowledged it.
    let replica = sqlx::PgPool::connect(arrangement.get("REPLICA_URL"))
        .await
        .expect("the replica");
    let mrns: BTreeSet<String> =
        sqlx::query_scalar::<_, String>("SELECT mrn FROM patients WHERE mrn LIKE 'TWO-%'")
            .fetch_all(&replica)
            .await
            .expect("read the replica")
            .into_iter()
            .collect();
    for (mrn, _) in &acknowledged {
        assert!(mrns.contains(mrn), "{mrn} is on the replica");
    }
    let read_only: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&replica)
        .await
        .expect("recovery state");
    assert!(read_only, "the replica is a standby");
    replica.close().await;
    drop(arrangement);
}

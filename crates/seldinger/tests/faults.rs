//! The real server when its PostgreSQL goes away: the HTTP API answers 503, and the DICOM and HL7
//! listeners refuse what they cannot store (C-STORE "out of resources", HL7 AR "send it again")
//! rather than acknowledge it; when the database returns, the same sends are taken, once each,
//! without a restart.

mod common;

use common::{free_port, send_hl7, store_scu, Server};
use seldinger_domain::patient::{Mrn, SiteCode};
use seldinger_hl7::mllp::{self, Frame};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ADT: &str = "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A04|GONE-1|P|2.5.1\rPID|1||G0001^^^GENHOSP^MR||Gone^Gail||19700101|F\r";

fn status(base: &str, path: &str) -> u16 {
    let url = format!("{base}{path}");
    let Some(rest) = url.strip_prefix("http://") else {
        return 0;
    };
    let Some((host, path)) = rest.split_once('/') else {
        return 0;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return 0;
    };
    use std::io::{Read, Write};
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgresql_gone_the_listeners_refuse_rather_than_acknowledge_and_resume_after() {
    use seldinger_dicom::fixtures::{plane, report, write};
    let Some(db) = seldinger_store::testing::postgres().await else {
        return;
    };
    let (mut proxy, proxied) = seldinger_store::testing::CuttableProxy::before(&db).await;
    let dir = tempfile::tempdir().expect("data dir");
    // The administrator's monitoring token, for the metrics.
    let password = [("SELDINGER_NEW_PASSWORD", "a-long-test-password")];
    let (path, url) = (dir.path().to_path_buf(), proxied.clone());
    let token = tokio::task::spawn_blocking(move || {
        common::cli(
            &["user", "add", "monitor", "--role", "administrator"],
            &path,
            Some(&url),
            &password,
        );
        common::cli(
            &["token", "create", "--user", "monitor"],
            &path,
            Some(&url),
            &[],
        )
    })
    .await
    .expect("token");
    let token = token.lines().last().expect("token").trim().to_string();
    let (hl7, dicom) = (free_port(), free_port());
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../catalog/hl7-interface.toml"
    );
    let args = [
        "serve".to_string(),
        "--hl7-listen".into(),
        format!("127.0.0.1:{hl7}"),
        "--hl7-config".into(),
        config.into(),
        "--dicom-listen".into(),
        format!("127.0.0.1:{dicom}"),
    ];
    // Started off the runtime's threads: its wait for health is blocking, and the proxy it
    // reaches the database through runs on them.
    let server = tokio::task::spawn_blocking({
        let (path, url) = (dir.path().to_path_buf(), proxied.clone());
        move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Server::start_with_database(&args, &path, Some(&url))
        }
    });
    let server = server.await.expect("server started");
    let inbox = tempfile::tempdir().expect("inbox");
    let file = write(
        inbox.path(),
        "gone.dcm",
        report(
            "1.2.840.10008.5.1.4.1.1.88.67",
            "2.25.16001",
            vec![plane(("0.01", "Gy.m2"), ("0.2", "Gy"), ("100", "s"))],
        ),
    );

    proxy.cut();
    // The API: 503 for a readiness probe; alive for a supervisor.
    let base = server.base.clone();
    let (ready, live) = tokio::task::spawn_blocking(move || {
        (
            status(&base, "/health/ready"),
            status(&base, "/health/live"),
        )
    })
    .await
    .expect("probes");
    assert_eq!((ready, live), (503, 200));
    // HL7: refused with AR, to be sent again; nothing kept.
    let (code, text) = send_hl7(("127.0.0.1", hl7), ADT).await;
    assert_eq!(code, "AR", "{text}");
    assert!(text.contains("send it again"), "{text}");
    // DICOM: the C-STORE is answered with a failure, not success.
    let said = tokio::task::spawn_blocking({
        let file = file.clone();
        move || store_scu("127.0.0.1", dicom, &file)
    })
    .await
    .expect("storescu");
    assert!(
        !said.contains("Received Store Response (Success)"),
        "acknowledged with the database gone: {said}"
    );
    assert!(
        said.contains("Out of Resources") || said.contains("OutOfResources"),
        "{said}"
    );

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let base = server.base.clone();
        let ready = tokio::task::spawn_blocking(move || status(&base, "/health/ready"))
            .await
            .expect("probe");
        if ready == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "service never resumed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing of the refused sends was kept.
    let site = SiteCode::parse("MAIN").expect("site");
    let mrn = Mrn::parse("G0001").expect("mrn");
    assert!(db
        .store
        .patient_by_mrn(&site, &mrn)
        .await
        .expect("read")
        .is_none());
    assert!(db
        .store
        .dose_report("2.25.16001")
        .await
        .expect("read")
        .is_none());
    // The senders send again: taken now, once each.
    let (code, text) = send_hl7(("127.0.0.1", hl7), ADT).await;
    assert_eq!(code, "AA", "{text}");
    let said = tokio::task::spawn_blocking(move || store_scu("127.0.0.1", dicom, &file))
        .await
        .expect("storescu");
    assert!(said.contains("Received Store Response (Success)"), "{said}");
    assert!(db
        .store
        .patient_by_mrn(&site, &mrn)
        .await
        .expect("read")
        .is_some());
    assert!(db
        .store
        .dose_report("2.25.16001")
        .await
        .expect("read")
        .is_some());
    // The metrics name what happened: the refused and the taken sends, the 503s, by route.
    let metrics = reqwest::Client::new()
        .get(format!("{}/metrics", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.expect("text");
    for expected in [
        "seldinger_hl7_messages_total{ack=\"AR\"} 1",
        "seldinger_hl7_messages_total{ack=\"AA\"} 1",
        "seldinger_dicom_dose_reports_total{status=\"A700\"} 1",
        "seldinger_dicom_dose_reports_total{status=\"0000\"} 1",
        "seldinger_dicom_associations_total{outcome=\"completed\"} 2",
        "seldinger_hl7_dead_letters 0",
        "route=\"/api/v1/health/ready\",status=\"503\"",
        "seldinger_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/health/ready\"",
    ] {
        assert!(metrics.contains(expected), "{expected} not in:\n{metrics}");
    }
    tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("stopped");
}

/// What the writers were told was done (acknowledged), by kind.
#[derive(Default)]
struct Acknowledged {
    /// Registered through the API, then referred (the case id) and vetted (true once accepted).
    api: Vec<(String, Option<String>, bool)>,
    /// SOP instance UIDs a C-STORE answered with success.
    dose: Vec<String>,
    /// MRNs an HL7 A04 was acknowledged (AA) for.
    hl7: Vec<String>,
}

type Shared = std::sync::Arc<std::sync::Mutex<Acknowledged>>;

/// The server on fixed ports (so a restart is found where it was), started and answering.
fn start_on(dir: &Path, database_url: Option<&str>, ports: (u16, u16, u16)) -> std::process::Child {
    let (http, hl7, dicom) = ports;
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../catalog/hl7-interface.toml"
    );
    let mut command = common::seldinger();
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let child = command
        .args(["serve", "--listen", &format!("127.0.0.1:{http}")])
        .args(["--hl7-listen", &format!("127.0.0.1:{hl7}")])
        .args(["--hl7-config", config])
        .args(["--dicom-listen", &format!("127.0.0.1:{dicom}")])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start seldinger");
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&format!("http://127.0.0.1:{http}/api/v1"), "/health") != 200 {
        assert!(Instant::now() < deadline, "seldinger did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// One API call, retried until the server answers (it may be dead or restarting): the status
/// and body of the first answer.
async fn api(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    loop {
        let sent = client
            .request(method.clone(), url)
            .json(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        if let Ok(answer) = sent {
            let status = answer.status().as_u16();
            if status != 503 {
                let body = answer.json().await.unwrap_or_default();
                return (status, body);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers, refers and vets patients through the API, re-sending what got no answer; a
/// registration whose answer was lost is found by its MRN rather than made twice.
async fn api_writer(base: String, token: String, count: usize, acks: Shared) {
    let client = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("header"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("client");
    for i in 0..count {
        let mrn = format!("KA{i:04}");
        let body = serde_json::json!({"site": "MAIN", "mrn": mrn, "family_name": "Killed",
            "given_name": "Api", "birth_date": "1960-01-01", "sex": "female"});
        let (status, patient) = api(
            &client,
            reqwest::Method::POST,
            &format!("{base}/patients"),
            &body,
        )
        .await;
        let patient_id = match status {
            201 => patient["id"].as_str().expect("id").to_string(),
            409 => {
                // Stored before a kill took the answer: the same patient, not a second one.
                let (_, found) = api(
                    &client,
                    reqwest::Method::GET,
                    &format!("{base}/patients?mrn={mrn}"),
                    &serde_json::Value::Null,
                )
                .await;
                found[0]["id"].as_str().expect("found by MRN").to_string()
            }
            other => panic!("registering {mrn}: {other} {patient}"),
        };
        if status == 201 {
            acks.lock()
                .expect("acks")
                .api
                .push((mrn.clone(), None, false));
        }
        let referral = serde_json::json!({"patient_id": patient_id, "requesting_clinician": "Dr Kill",
            "requesting_service": "oncology", "indication": "liver lesion",
            "requested_procedure": "biopsy-liver", "urgency": "routine",
            "clinical_question": "histology"});
        let (status, referred) = api(
            &client,
            reqwest::Method::POST,
            &format!("{base}/referrals"),
            &referral,
        )
        .await;
        assert_eq!(status, 201, "{referred}");
        let case_id = referred["case"]["id"].as_str().expect("case").to_string();
        {
            let mut acks = acks.lock().expect("acks");
            match acks.api.iter_mut().find(|(m, _, _)| *m == mrn) {
                Some(entry) => entry.1 = Some(case_id.clone()),
                None => acks.api.push((mrn.clone(), Some(case_id.clone()), false)),
            }
        }
        let accept = serde_json::json!({"expected_version": 1, "event": {"type": "accept",
            "procedure_id": "biopsy-liver", "modality": "ultrasound", "sedation": "local",
            "priority": "routine"}});
        let (status, vetted) = api(
            &client,
            reqwest::Method::POST,
            &format!("{base}/cases/{case_id}/transitions"),
            &accept,
        )
        .await;
        match status {
            200 => {
                let mut acks = acks.lock().expect("acks");
                if let Some(entry) = acks.api.iter_mut().find(|(m, _, _)| *m == mrn) {
                    entry.2 = true;
                }
            }
            // Accepted before a kill took the answer: the version moved on.
            409 => {}
            other => panic!("vetting {case_id}: {other} {vetted}"),
        }
    }
}

/// Sends dose reports over C-STORE, each until a success answer.
async fn dicom_writer(port: u16, files: Vec<(String, std::path::PathBuf)>, acks: Shared) {
    for (sop, file) in files {
        loop {
            let said = tokio::task::spawn_blocking({
                let file = file.clone();
                move || store_scu("127.0.0.1", port, &file)
            })
            .await
            .expect("storescu");
            if said.contains("Received Store Response (Success)") {
                acks.lock().expect("acks").dose.push(sop.clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends HL7 registrations, each until acknowledged AA.
async fn hl7_writer(port: u16, count: usize, acks: Shared) {
    for i in 0..count {
        let mrn = format!("KH{i:04}");
        let message = format!(
            "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A04|KH-{i}|P|2.5.1\rPID|1||{mrn}^^^GENHOSP^MR||Killed^Hal||19700101|M\r"
        );
        loop {
            let answer = async {
                let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()?;
                let mut stream = tokio::io::BufReader::new(stream);
                mllp::write_frame(stream.get_mut(), message.as_bytes())
                    .await
                    .ok()?;
                match mllp::read_frame(
                    &mut stream,
                    1 << 20,
                    Duration::from_secs(30),
                    Duration::from_secs(30),
                )
                .await
                {
                    Ok(Frame::Message(ack)) => Some(String::from_utf8_lossy(&ack).to_string()),
                    _ => None,
                }
            }
            .await;
            if answer.as_deref().is_some_and(|a| a.contains("MSA|AA")) {
                acks.lock().expect("acks").hl7.push(mrn.clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_under_api_dicom_and_hl7_writes_every_acknowledged_write_is_kept_whole() {
    use rand::{Rng, SeedableRng};
    use seldinger_dicom::fixtures::{plane, report, write};
    const API: usize = 24;
    const DOSE: usize = 12;
    const HL7: usize = 24;
    let postgres = seldinger_store::testing::postgres().await;
    let mut engines = vec![None];
    if let Some(db) = &postgres {
        engines.push(Some(db.url.clone()));
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261203);
    for database_url in engines {
        let label = if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let dir = tempfile::tempdir().expect("data dir");
        let password = [("SELDINGER_NEW_PASSWORD", "a-long-test-password")];
        common::cli(
            &["user", "add", "dr1", "--role", "ir_physician"],
            dir.path(),
            database_url.as_deref(),
            &password,
        );
        let token = common::cli(
            &["token", "create", "--user", "dr1"],
            dir.path(),
            database_url.as_deref(),
            &[],
        );
        let token = token.lines().last().expect("token").trim().to_string();
        let inbox = tempfile::tempdir().expect("inbox");
        let files: Vec<(String, std::path::PathBuf)> = (0..DOSE)
            .map(|i| {
                let sop = format!("2.25.1603{i:03}");
                let file = write(
                    inbox.path(),
                    &format!("k{i}.dcm"),
                    report(
                        "1.2.840.10008.5.1.4.1.1.88.67",
                        &sop,
                        vec![plane(("0.01", "Gy.m2"), ("0.2", "Gy"), ("100", "s"))],
                    ),
                );
                (sop, file)
            })
            .collect();
        let ports = (free_port(), free_port(), free_port());
        let start = {
            let (dir, url) = (dir.path().to_path_buf(), database_url.clone());
            move || start_on(&dir, url.as_deref(), ports)
        };
        let mut server = tokio::task::spawn_blocking(start.clone())
            .await
            .expect("started");
        let acks: Shared = Default::default();
        let base = format!("http://127.0.0.1:{}/api/v1", ports.0);
        let writers = [
            tokio::spawn(api_writer(base, token, API, acks.clone())),
            tokio::spawn(dicom_writer(ports.2, files, acks.clone())),
            tokio::spawn(hl7_writer(ports.1, HL7, acks.clone())),
        ];
        let done = || {
            let acks = acks.lock().expect("acks");
            acks.api.iter().filter(|a| a.2).count() + acks.dose.len() + acks.hl7.len()
        };
        let total = API + DOSE + HL7;
        for (from, to) in [
            (total / 8, total / 3),
            (total / 3, 2 * total / 3),
            (2 * total / 3, total - 6),
        ] {
            let target = rng.gen_range(from..to);
            let deadline = Instant::now() + Duration::from_secs(300);
            while done() < target {
                assert!(
                    Instant::now() < deadline,
                    "{label}: the writers stalled at {}",
                    done()
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_micros(rng.gen_range(0..20_000))).await;
            common::kill9(&mut server);
            server = tokio::task::spawn_blocking(start.clone())
                .await
                .expect("restarted");
        }
        for writer in writers {
            tokio::time::timeout(Duration::from_secs(300), writer)
                .await
                .unwrap_or_else(|_| panic!("{label}: a writer never finished"))
                .expect("writer");
        }
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        let _ = server.wait();

        let store = match &database_url {
            Some(url) => seldinger_store::Store::connect(url).await.expect("connect"),
            None => seldinger_store::Store::connect(&format!(
                "sqlite://{}?mode=rw",
                dir.path().join("seldinger.db").display()
            ))
            .await
            .expect("open"),
        };
        let acks = std::mem::take(&mut *acks.lock().expect("acks"));
        let site = SiteCode::parse("MAIN").expect("site");
        for mrn in acks.api.iter().map(|a| &a.0).chain(&acks.hl7) {
            let found = store
                .patient_by_mrn(&site, &Mrn::parse(mrn).expect("mrn"))
                .await
                .expect("read");
            assert!(
                found.is_some(),
                "{label}: acknowledged patient {mrn} missing"
            );
        }
        for (mrn, case, vetted) in &acks.api {
            let Some(case) = case else { continue };
            let case = store
                .case(case.parse().expect("case id"))
                .await
                .expect("read")
                .unwrap_or_else(|| panic!("{label}: acknowledged case of {mrn} missing"));
            if *vetted {
                assert_ne!(
                    case.state.as_str(),
                    "referred",
                    "{label}: {mrn}'s acknowledged vetting lost"
                );
            }
        }
        for sop in &acks.dose {
            assert!(
                store.dose_report(sop).await.expect("read").is_some(),
                "{label}: dose report {sop} missing"
            );
        }
        assert_eq!(acks.dose.len(), DOSE, "{label}");
        assert_eq!(acks.hl7.len(), HL7, "{label}");
        let broken = seldinger_store::testing::projections_out_of_step(&store).await;
        assert!(broken.is_empty(), "{label}: half-written: {broken:?}");
        eprintln!(
            "{label}: 3 kills; acknowledged {} API registrations ({} vetted), {} C-STOREs, {} HL7 messages; all kept, none half-written",
            acks.api.len(), acks.api.iter().filter(|a| a.2).count(), acks.dose.len(), acks.hl7.len()
        );
    }
}

//! The real server when its PostgreSQL goes away: the HTTP API answers 503, and the DICOM and HL7
//! listeners refuse what they cannot store (C-STORE "out of resources", HL7 AR "send it again")
//! rather than acknowledge it; when the database returns, the same sends are taken, once each,
//! without a restart.

mod common;

use common::{free_port, Server};
use seldinger_domain::patient::{Mrn, SiteCode};
use seldinger_hl7::mllp::{self, Frame};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ADT: &str = "MSH|^~\\&|PAS|GENHOSP|SELDINGER|IR|20261130090000||ADT^A04|GONE-1|P|2.5.1\rPID|1||G0001^^^GENHOSP^MR||Gone^Gail||19700101|F\r";

/// The acknowledgement code (MSA-1) and text of one HL7 message sent over MLLP.
async fn send_hl7(port: u16, message: &str) -> (String, String) {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the HL7 listener");
    let mut stream = tokio::io::BufReader::new(stream);
    mllp::write_frame(stream.get_mut(), message.as_bytes())
        .await
        .expect("send");
    let answer = mllp::read_frame(
        &mut stream,
        1 << 20,
        Duration::from_secs(30),
        Duration::from_secs(30),
    )
    .await;
    let Ok(Frame::Message(ack)) = answer else {
        panic!("no acknowledgement");
    };
    let text = String::from_utf8_lossy(&ack).to_string();
    let code = text
        .split("MSA|")
        .nth(1)
        .map(|rest| rest.chars().take(2).collect::<String>())
        .unwrap_or_default();
    (code, text)
}

/// Sends one file with DCMTK's storescu (an independent SCU) and returns what it said.
fn store_scu(port: u16, file: &Path) -> String {
    let sent = Command::new("storescu")
        .args(["-v", "-aet", "ANGIO1", "-aec", "SELDINGER", "127.0.0.1"])
        .arg(port.to_string())
        .arg(file)
        .output()
        .expect("storescu (dcmtk; scripts/test installs it)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    )
}

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
        (status(&base, "/health/ready"), status(&base, "/health/live"))
    })
    .await
    .expect("probes");
    assert_eq!((ready, live), (503, 200));
    // HL7: refused with AR, to be sent again; nothing kept.
    let (code, text) = send_hl7(hl7, ADT).await;
    assert_eq!(code, "AR", "{text}");
    assert!(text.contains("send it again"), "{text}");
    // DICOM: the C-STORE is answered with a failure, not success.
    let said = tokio::task::spawn_blocking({
        let file = file.clone();
        move || store_scu(dicom, &file)
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
    let (code, text) = send_hl7(hl7, ADT).await;
    assert_eq!(code, "AA", "{text}");
    let said = tokio::task::spawn_blocking(move || store_scu(dicom, &file))
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
    tokio::task::spawn_blocking(move || server.terminate())
        .await
        .expect("stopped");
}

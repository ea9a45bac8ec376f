//! What the listener tests share: a room with an imaging system, the listener on a free port
//! serving an application in the department's time zone, and the Python peer's interpreter.
#![allow(dead_code)] // each test binary uses its own part

use seldinger_app::{App, SystemClock};
use seldinger_dicom::scp::{serve, ScpConfig};
use seldinger_domain::catalogue::GuidanceModality;
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::{AeTitle, DepartmentTime, DicomModality, Equipment, Room, RoomId, RoomKind};
use seldinger_store::testing::records;
use seldinger_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub const AE_TITLE: &str = "SELDINGER";

pub fn room(id: &str, ae_title: &str, modality: DicomModality) -> Room {
    Room {
        id: RoomId::parse(id).expect("room"),
        name: format!("Room {id}"),
        kind: RoomKind::AngioSuite,
        modalities: vec![GuidanceModality::Fluoroscopy],
        equipment: vec![Equipment {
            ae_title: AeTitle::parse(ae_title).expect("title"),
            modality,
        }],
    }
}

/// The application the listener serves: the shipped catalogue and safety reference, London time.
pub fn app(store: &Store) -> App {
    let reference = SafetyReference::parse(
        include_str!("../../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("reference");
    let mut app = App::new(
        store.clone(),
        records::catalogue(),
        reference,
        Arc::new(SystemClock),
    );
    app.time = DepartmentTime::parse("Europe/London").expect("zone");
    app
}

/// The listener for `store`'s department (London time) on a free loopback port; the port.
pub async fn listener(store: &Store) -> u16 {
    listener_with_timeout(store, Duration::from_secs(30)).await
}

/// As [`listener`], dropping an association idle for `read_timeout`.
pub async fn listener_with_timeout(store: &Store, read_timeout: Duration) -> u16 {
    let app = app(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(serve(
        listener,
        ScpConfig {
            ae_title: AE_TITLE.into(),
            allowed_callers: Vec::new(),
            tls: None,
            read_timeout,
        },
        app,
    ));
    port
}

/// pynetdicom's Python, when the suite has it (scripts/test installs it).
pub fn pynetdicom() -> Option<String> {
    match std::env::var("SELDINGER_PYNETDICOM_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ if std::env::var("SELDINGER_REQUIRE_DICOM_PEER").is_ok_and(|v| v == "1") => {
            panic!("SELDINGER_REQUIRE_DICOM_PEER=1 but SELDINGER_PYNETDICOM_PYTHON is not set")
        }
        _ => {
            eprintln!("skipped: SELDINGER_PYNETDICOM_PYTHON is not set (scripts/test sets it)");
            None
        }
    }
}

/// Runs a peer script from `tests/peers` with `args` after the port and AE titles; its JSON.
pub async fn peer(python: &str, script: &str, port: u16, args: &[&str]) -> serde_json::Value {
    let script = format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .args([AE_TITLE, "ANGIO1"])
            .args(args)
            .output(),
    )
    .await
    .expect("pynetdicom finished within a minute")
    .expect("pynetdicom ran");
    let out = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| {
        panic!(
            "pynetdicom printed no JSON ({e}): {out} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

//! What the listener tests share: a room with an imaging system, the listener on a free port
//! serving an application in the department's time zone, and the Python peer's interpreter.
#![allow(dead_code)] // each test binary uses its own part

use seldinger_app::{App, StartedClock};
use seldinger_dicom::scp::{serve, ScpConfig};
use seldinger_domain::catalogue::GuidanceModality;
use seldinger_domain::safety::SafetyReference;
use seldinger_domain::{AeTitle, DepartmentTime, DicomModality, Equipment, Room, RoomId, RoomKind};
use seldinger_store::testing::{self, records};
use seldinger_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub const AE_TITLE: &str = "SELDINGER";

/// A query key (or an item's attribute) with its value.
pub fn key(
    tag: dicom_core::Tag,
    vr: dicom_core::VR,
    value: &str,
) -> dicom_core::DataElement<dicom_object::InMemDicomObject> {
    dicom_core::DataElement::new(tag, vr, dicom_core::PrimitiveValue::from(value))
}

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
        Arc::new(StartedClock::new(testing::test_now())),
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
    peer_as(python, script, port, "ANGIO1", args).await
}

/// As [`peer`], calling as `calling`.
pub async fn peer_as(
    python: &str,
    script: &str,
    port: u16,
    calling: &str,
    args: &[&str],
) -> serde_json::Value {
    let script = format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .args([AE_TITLE, calling])
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

/// Every key the worklist holds, its step's limited to `station` on `date` when given: what
/// findscu asks to fetch Seldinger's items whole (dcmtk dump format).
pub fn all_keys_query(step: Option<(&str, &str)>) -> String {
    let step_keys = match step {
        None => String::new(),
        Some((station, date)) => format!(
            "(fffe,e000) -\n(0008,0060) CS []\n(0032,1070) LO []\n(0040,0001) AE [{station}]\n\
             (0040,0002) DA [{date}]\n(0040,0003) TM []\n(0040,0004) DA []\n(0040,0005) TM []\n\
             (0040,0006) PN []\n(0040,0007) LO []\n(0040,0008) SQ\n(fffe,e0dd) -\n\
             (0040,0009) SH []\n(0040,0010) SH []\n(0040,0011) SH []\n(0040,0012) LO []\n\
             (0040,0020) CS []\n(0040,0400) LT []\n(fffe,e00d) -\n"
        ),
    };
    format!(
        "(0008,0050) SH []\n(0010,0010) PN []\n(0010,0020) LO []\n(0010,0021) LO []\n\
         (0010,0030) DA []\n(0010,0040) CS []\n(0010,1030) DS []\n(0010,2000) LO []\n\
         (0010,2110) LO []\n(0010,21c0) US\n(0020,000d) UI []\n(0008,0090) PN []\n\
         (0032,1032) PN []\n(0040,1001) SH []\n(0032,1060) LO []\n(0032,1064) SQ\n(fffe,e0dd) -\n\
         (0040,1003) CS []\n(0008,1110) SQ\n(fffe,e0dd) -\n(0008,1120) SQ\n(fffe,e0dd) -\n\
         (0040,0100) SQ\n{step_keys}(fffe,e0dd) -\n"
    )
}

/// Runs a dcmtk tool to completion; panics naming it when it fails.
pub fn dcmtk(program: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (dcmtk: apt-get install dcmtk)"));
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Fetches the listener's items matching `step` (see [`all_keys_query`]) with findscu into
/// `work/fetched`; their files.
pub fn fetch_items(
    port: u16,
    work: &std::path::Path,
    step: Option<(&str, &str)>,
    stations: &[String],
) -> Vec<std::path::PathBuf> {
    let dump = work.join("all.dump");
    std::fs::write(&dump, all_keys_query(step)).expect("dump");
    let query = work.join("all.dcm");
    dcmtk("dump2dcm", &[dump.as_os_str(), query.as_os_str()]);
    let port = port.to_string();
    let mut items: Vec<std::path::PathBuf> = Vec::new();
    // Each station reads only its own steps: the whole list is every station's.
    for station in stations {
        let fetched = work.join("fetched").join(station);
        std::fs::create_dir_all(&fetched).expect("dir");
        dcmtk(
            "findscu",
            &[
                "-W".as_ref(),
                "-aet".as_ref(),
                station.as_ref(),
                "-aec".as_ref(),
                AE_TITLE.as_ref(),
                "-X".as_ref(),
                "-od".as_ref(),
                fetched.as_os_str(),
                "127.0.0.1".as_ref(),
                port.as_ref(),
                query.as_os_str(),
            ],
        );
        let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(&fetched)
            .expect("fetched")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        found.sort();
        items.extend(found);
    }
    items
}

/// dcmtk's file-based worklist server, serving `items` as AE title SELDINGER on a free port;
/// stopped when dropped.
pub struct Wlmscpfs {
    pub port: u16,
    child: std::process::Child,
}

impl Wlmscpfs {
    pub async fn serving(items: &[std::path::PathBuf], work: &std::path::Path) -> Wlmscpfs {
        let worklist = work.join("worklists").join(AE_TITLE);
        std::fs::create_dir_all(&worklist).expect("dir");
        std::fs::write(worklist.join("lockfile"), "").expect("lockfile");
        for (n, item) in items.iter().enumerate() {
            std::fs::copy(item, worklist.join(format!("item{n}.wl"))).expect("copy");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = std::process::Command::new("wlmscpfs")
            // dcmtk's own switch for Nagle's algorithm, as the listener sets it.
            .env("TCP_NODELAY", "1")
            .arg("-dfp")
            .arg(work.join("worklists"))
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("wlmscpfs started (dcmtk)");
        // Ready when it answers an echo.
        for _ in 0..50 {
            let echo = std::process::Command::new("echoscu")
                .args(["-aec", AE_TITLE, "127.0.0.1"])
                .arg(port.to_string())
                .output();
            if echo.is_ok_and(|o| o.status.success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Wlmscpfs { port, child }
    }
}

impl Drop for Wlmscpfs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

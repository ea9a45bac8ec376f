//! The `seldinger` binary as an operator meets it: real processes, real signals, real files.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{cli, free_port, Server};

/// Adds a nurse with the CLI and returns a bearer token made with `seldinger token create`.
fn nurse_token(data_dir: &Path, database_url: Option<&str>) -> String {
    let password = [("SELDINGER_NEW_PASSWORD", "a-long-test-password")];
    cli(
        &["user", "add", "nurse1", "--role", "ir_nurse"],
        data_dir,
        database_url,
        &password,
    );
    let out = cli(
        &["token", "create", "--user", "nurse1"],
        data_dir,
        database_url,
        &[],
    );
    out.lines().last().expect("token line").trim().to_string()
}

/// Starts `serve` with `flag FILE` for a department file written from `text`, expecting it to stop
/// at start; returns what it said.
fn refused_start(flag: &str, file_name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join(file_name);
    std::fs::write(&file, text).expect("write");
    let output = common::seldinger()
        // Each server's DICOM listener on a free port, so tests run side by side.
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
        .args(["serve", "--listen", "127.0.0.1:0", flag])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    assert!(
        !output.status.success(),
        "{flag} {file_name} must stop start-up"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn patient(mrn: &str) -> Value {
    json!({"site": "MAIN", "mrn": mrn, "family_name": "Shutdown", "given_name": "Kim", "birth_date": "1970-01-01", "sex": "other"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("dir");
    let token = nurse_token(dir.path(), None);
    let server = Server::start(&["serve"], dir.path());
    let client = ::reqwest::Client::new();
    let post = |i: usize| {
        let (client, url, token) = (
            client.clone(),
            format!("{}/patients", server.base),
            token.clone(),
        );
        async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&patient(&format!("SIG-{i}")))
                .send()
                .await;
            matches!(response, Ok(r) if r.status() == 201).then_some(i)
        }
    };
    let mut acknowledged: Vec<usize> = Vec::new();
    for i in 0..5 {
        acknowledged.extend(post(i).await);
    }
    // A burst of writes in flight when the signal arrives: each one answered 201 must survive.
    let burst: Vec<_> = (5..60).map(|i| tokio::spawn(post(i))).collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let pid = server.child.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    for w in burst {
        acknowledged.extend(w.await.expect("task"));
    }
    let status = server.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(acknowledged.len() >= 5);

    let restarted = Server::start(&["serve"], dir.path());
    for i in acknowledged {
        let url = format!("{}/patients?mrn=SIG-{i}", restarted.base);
        let found: Value = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            found.as_array().map(Vec::len),
            Some(1),
            "acknowledged SIG-{i} is stored"
        );
    }
}

#[tokio::test]
async fn the_demo_is_a_full_department_and_the_same_for_the_same_seed() {
    let mut lists = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("dir");
        let server = Server::start(&["demo", "--seed", "7"], dir.path());
        let client = ::reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let signed_in = client
            .post(format!("{}/session", server.base))
            .json(&json!({"username": "dr.okafor", "password": "seldinger-demo"}))
            .send()
            .await
            .expect("sign in");
        assert_eq!(signed_in.status(), 201, "the README's demo login works");
        let today = common::test_today();
        let get = |path: String| {
            let client = client.clone();
            async move {
                client
                    .get(path)
                    .send()
                    .await
                    .expect("get")
                    .json::<Value>()
                    .await
                    .expect("json")
            }
        };
        let day = get(format!("{}/cases?date={today}", server.base)).await;
        let all = get(format!("{}/cases", server.base)).await;
        let rooms = get(format!("{}/rooms", server.base)).await;
        let waiting = get(format!("{}/referrals?awaiting_vetting=true", server.base)).await;
        let day_len = day.as_array().map_or(0, Vec::len);
        assert!(
            (25..=35).contains(&day_len),
            "about 30 cases on today's list, got {day_len}"
        );
        assert_eq!(rooms.as_array().map(Vec::len), Some(4));
        assert!(
            waiting.as_array().map_or(0, Vec::len) >= 5,
            "referrals await vetting"
        );
        let states: std::collections::BTreeSet<&str> = all
            .as_array()
            .expect("cases")
            .iter()
            .filter_map(|c| c["state"].as_str())
            .collect();
        assert_eq!(
            states.len(),
            13,
            "every lifecycle state is shown: {states:?}"
        );
        let patient_id = day[0]["patient_id"].as_str().expect("patient");
        let patient = get(format!("{}/patients/{patient_id}", server.base)).await;
        assert!(
            patient["lab_results"]
                .as_array()
                .is_some_and(|l| !l.is_empty()),
            "demo patients have labs"
        );
        // Finished angio and CT cases have dose reports; one waits in the unmatched queue.
        let reports = get(format!("{}/dose/reports", server.base)).await;
        let queue = get(format!("{}/dose/reports?unmatched=true", server.base)).await;
        assert!(
            reports.as_array().map_or(0, Vec::len) >= 5,
            "demo dose reports: {reports}"
        );
        assert_eq!(queue.as_array().map(Vec::len), Some(1), "{queue}");
        // The web pages render the demo department: the board, and every case's page.
        let site = server.base.trim_end_matches("/api/v1").to_string();
        let page = |path: String| {
            let client = client.clone();
            async move {
                let response = client.get(&path).send().await.expect("get");
                (response.status(), response.text().await.expect("html"))
            }
        };
        let (status, board) = page(format!("{site}/board")).await;
        assert_eq!(status, 200, "{board}");
        assert!(board.contains("Angio suite 1"), "{board}");
        for case in all.as_array().expect("cases") {
            let id = case["id"].as_str().expect("id");
            let (status, html) = page(format!("{site}/cases/{id}")).await;
            assert_eq!(status, 200, "case {id} ({}): {html}", case["state"]);
        }
        for path in ["/vetting", "/recovery", "/follow-up?show=all", "/dose"] {
            let (status, html) = page(format!("{site}{path}")).await;
            assert_eq!(status, 200, "{path}: {html}");
        }
        lists.push(all);
        assert!(server.terminate().success());
    }
    assert_eq!(lists[0], lists[1], "same seed and day, same department");
}

#[test]
fn a_malformed_catalogue_stops_start_up_naming_file_entry_and_field() {
    let shipped = include_str!("../../../catalog/procedures.toml");
    let broken = shipped.replacen("bleeding_risk = \"low\"", "bleeding_risk = \"moderate\"", 1);
    let stderr = refused_start("--catalog", "procedures.toml", &broken);
    assert!(
        stderr.contains("entry 1 (id 'diagnostic-angiography'), field 'bleeding_risk': 'moderate' is not allowed; use one of: low, high"),
        "{stderr}"
    );
    assert!(stderr.contains("procedures.toml"), "{stderr}");
}

#[test]
fn dose_reference_levels_must_name_catalogue_procedures_and_a_source() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("drl.toml");
    for (row, says) in [
        (
            "procedure = \"tace-xl\"\nmeasure = \"kerma_area_product\"\nvalue = 250.0\nsource = \"physicist\"",
            "procedure 'tace-xl' is not in the catalogue",
        ),
        (
            "procedure = \"tace\"\nmeasure = \"kerma_area_product\"\nvalue = 250.0\nsource = \"\"",
            "level 1: name the source of the value",
        ),
    ] {
        std::fs::write(&file, format!("[[level]]\n{row}\n")).expect("write");
        let output = common::seldinger()
            .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
            .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
            .args(["serve", "--listen", "127.0.0.1:0", "--dose-reference-levels"])
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path())
            .env("RUST_LOG", "off")
            .output()
            .expect("run");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says) && stderr.contains("drl.toml"), "{stderr}");
    }
}

#[test]
fn migrate_creates_the_database_and_can_run_again() {
    let dir = tempfile::tempdir().expect("dir");
    for _ in 0..2 {
        let status = common::seldinger()
            // Each server's DICOM listener on a free port, so tests run side by side.
            .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
            .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
            .args(["migrate", "--data-dir"])
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "warn")
            .status()
            .expect("run");
        assert!(status.success());
    }
    assert!(dir.path().join("seldinger.db").exists());
}

#[tokio::test]
async fn backup_copies_the_serving_sqlite_database_into_a_checked_file_never_overwriting() {
    let dir = tempfile::tempdir().expect("dir");
    let token = nurse_token(dir.path(), None);
    let server = Server::start(&["serve"], dir.path());
    let client = ::reqwest::Client::new();
    let registered = client
        .post(format!("{}/patients", server.base))
        .bearer_auth(&token)
        .json(
            &serde_json::json!({"site": "MAIN", "mrn": "BACKUP-1", "family_name": "Copy",
            "given_name": "Kept", "birth_date": "1970-01-01", "sex": "male"}),
        )
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    // While the server runs.
    let out = dir.path().join("backups").join("seldinger-backup.db");
    std::fs::create_dir_all(out.parent().expect("folder")).expect("folder");
    let said = cli(
        &["backup", "--out", &out.display().to_string()],
        dir.path(),
        None,
        &[],
    );
    assert!(said.contains("integrity checked"), "{said}");
    let copy = seldinger_store::Store::connect(&format!("sqlite://{}?mode=rw", out.display()))
        .await
        .expect("the copy opens");
    let site = seldinger_domain::patient::SiteCode::parse("MAIN").expect("site");
    let mrn = seldinger_domain::patient::Mrn::parse("BACKUP-1").expect("mrn");
    assert!(copy
        .patient_by_mrn(&site, &mrn)
        .await
        .expect("read")
        .is_some());
    assert_eq!(copy.count_users().await.expect("users"), 1);
    // A second backup to the same file is refused, the first left as it was.
    let before = std::fs::metadata(&out).expect("file").len();
    let again = common::seldinger()
        .args(["backup", "--out"])
        .arg(&out)
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    assert_eq!(std::fs::metadata(&out).expect("file").len(), before);
    server.terminate();
}

#[tokio::test]
async fn serves_on_postgresql_when_database_url_is_set() {
    let Some(db) = seldinger_store::testing::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let token = nurse_token(dir.path(), Some(&db.url));
    let server = Server::start_with_database(&["serve"], dir.path(), Some(&db.url));
    let client = ::reqwest::Client::new();
    let health: Value = client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(health["database"], "postgres");
    let created = client
        .post(format!("{}/patients", server.base))
        .bearer_auth(&token)
        .json(&patient("PG-1"))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 201);
    assert!(server.terminate().success());
    assert_eq!(
        db.store
            .search_patients(
                &seldinger_store::RowScope::Department,
                Some("PG-1"),
                None,
                5
            )
            .await
            .expect("search")
            .len(),
        1
    );
    assert!(
        !dir.path().join("seldinger.db").exists(),
        "no SQLite file when DATABASE_URL is set"
    );
}

#[tokio::test]
async fn the_first_start_creates_an_administrator_from_the_environment() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // A department's own threshold table: loaded, and its use is on the audit trail.
    let thresholds = dir.path().join("department-thresholds.toml");
    let shipped = include_str!("../../../catalog/safety-thresholds.toml");
    // The department's own version, whatever the shipped one is.
    let own: String = shipped
        .lines()
        .map(|line| {
            if line.starts_with("version = ") {
                "version = \"dept-7\""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&thresholds, own).expect("write");
    let mut child = common::seldinger()
        // Each server's DICOM listener on a free port, so tests run side by side.
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
        .args(["serve", "--listen", &listen, "--safety-thresholds"])
        .arg(&thresholds)
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env("SELDINGER_ADMIN_PASSWORD", "first-admin-password")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start");
    let base = format!("http://{listen}/api/v1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !common::reqwest::blocking_get_ok(&format!("{base}/health")) {
        assert!(Instant::now() < deadline, "no answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    let client = ::reqwest::Client::new();
    let login = client
        .post(format!("{base}/session"))
        .json(&json!({"username": "admin", "password": "first-admin-password"}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(login.status(), 201);
    let session: Value = login.json().await.expect("json");
    assert_eq!(session["role"], "administrator");
    let csrf = session["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let cookie = login_cookie(&client, &base).await;
    let audit: Value = client
        .get(format!("{base}/audit?username=system"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    assert!(
        audit.as_array().is_some_and(|a| a
            .iter()
            .any(|e| e["action"] == "safety_thresholds_override version dept-7")),
        "{audit}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn plain_http_off_loopback_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let output = common::seldinger()
        // Each server's DICOM listener on a free port, so tests run side by side.
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env("SELDINGER_ADMIN_PASSWORD", "first-admin-password")
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing to serve plain HTTP"));
}

/// A DICOM listener on the network must tell who is calling (allowed AE titles or client
/// certificates), as HTTP must be encrypted: else it does not start.
#[test]
fn a_dicom_listener_off_loopback_with_no_way_to_tell_callers_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let start = |extra: &[&str]| {
        common::seldinger()
            .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--dicom-listen",
                "0.0.0.0:0",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .env("SELDINGER_ADMIN_PASSWORD", "first-admin-password")
            .env("RUST_LOG", "off")
            .output()
            .expect("run")
    };
    let refused = start(&[]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("refusing to start the DICOM listener")
            && said.contains("--dicom-allowed-callers"),
        "{said}"
    );
    // With the callers listed, it is not refused for that (the port is then the next check:
    // a malformed catalogue path stops it before it would serve).
    let listed = start(&[
        "--dicom-allowed-callers",
        "ANGIO1",
        "--catalog",
        "/nonexistent.toml",
    ]);
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(
        !said.contains("refusing to start the DICOM listener"),
        "{said}"
    );
}

#[test]
fn users_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let password = [("SELDINGER_NEW_PASSWORD", "a-long-test-password")];
    let added = cli(
        &[
            "user",
            "add",
            "sched2",
            "--role",
            "scheduler",
            "--display-name",
            "Sam Scheduler",
        ],
        dir.path(),
        None,
        &password,
    );
    assert!(added.contains("added sched2 (scheduler)"), "{added}");
    let listed = cli(&["user", "list"], dir.path(), None, &[]);
    assert!(
        listed.contains("sched2") && listed.contains("active"),
        "{listed}"
    );
    let reset = cli(&["user", "reset-password", "sched2"], dir.path(), None, &[]);
    assert!(
        reset.contains("password (shown once):"),
        "no password given: a random one is printed once: {reset}"
    );
    cli(&["user", "disable", "sched2"], dir.path(), None, &[]);
    assert!(cli(&["user", "list"], dir.path(), None, &[]).contains("disabled"));
    let bad = common::seldinger()
        // Each server's DICOM listener on a free port, so tests run side by side.
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
        .args(["user", "add", "x2", "--role", "surgeon", "--data-dir"])
        .arg(dir.path())
        .env("SELDINGER_NEW_PASSWORD", "a-long-test-password")
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'surgeon' is not a role"));
}

/// Signs in as the first administrator and returns the session cookie header value.
async fn login_cookie(client: &::reqwest::Client, base: &str) -> String {
    let response = client
        .post(format!("{base}/session"))
        .json(&json!({"username": "admin", "password": "first-admin-password"}))
        .send()
        .await
        .expect("sign in");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

#[test]
fn a_malformed_threshold_table_stops_start_up_naming_row_and_field() {
    let shipped = include_str!("../../../catalog/safety-thresholds.toml");
    let broken = shipped.replacen("value = 1.5", "value = -1.5", 1);
    let stderr = refused_start("--safety-thresholds", "thresholds.toml", &broken);
    assert!(
        stderr.contains("(id 'inr.high_risk.pass_max'): field 'value' must be a number ≥ 0"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_dose_unit_table_stops_start_up_naming_row_and_field() {
    let shipped = include_str!("../../../catalog/dose-units.toml");
    // A spelling mapped to something that is not a dose unit Seldinger converts.
    let broken = shipped.replacen("ucum = \"mGy.cm\"", "ucum = \"mGy.inch\"", 1);
    let stderr = refused_start("--dose-units", "dose-units.toml", &broken);
    assert!(
        stderr.contains("dose-units.toml: spelling 2 field 'ucum': 'mGy.inch' is not a unit"),
        "{stderr}"
    );
}

#[test]
fn dose_inspect_shows_the_extraction_and_the_substantial_dose_assessment() {
    use seldinger_dicom::fixtures::{plane, report, write};
    let dir = tempfile::tempdir().expect("dir");
    let file = write(
        dir.path(),
        "high.dcm",
        report(
            dicom_xray_rdsr(),
            "2.25.77",
            vec![plane(("0.02", "Gy.m2"), ("6000", "mGy"), ("1500", "s"))],
        ),
    );
    let output = common::seldinger()
        // Each server's DICOM listener on a free port, so tests run side by side.
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
        .args(["dose", "inspect", "--json"])
        .arg(&file)
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["totals"]["reference_air_kerma"], 6.0);
    assert_eq!(
        json["assessment"]["levels_reached"][0]["measure"],
        "reference_air_kerma"
    );
    assert_eq!(
        json["assessment"]["skin_check"]["from"], "2026-12-08T00:00:00Z",
        "14 days after the study date"
    );
    assert_eq!(json["report"]["accession_number"], "ACC0001");

    let junk = dir.path().join("junk.dcm");
    std::fs::write(&junk, b"not dicom").expect("write");
    let output = common::seldinger()
        // Each server's DICOM listener on a free port, so tests run side by side.
        .env("SELDINGER_DICOM_LISTEN", "127.0.0.1:0")
        .env("SELDINGER_HL7_LISTEN", "127.0.0.1:0")
        .args(["dose", "inspect"])
        .arg(&junk)
        .env("RUST_LOG", "off")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a readable DICOM file"));
}

fn dicom_xray_rdsr() -> &'static str {
    "1.2.840.10008.5.1.4.1.1.88.67"
}

#[test]
fn dose_import_stores_each_report_once_and_quarantines_the_rest() {
    use seldinger_dicom::fixtures::{plane, report, write};
    let data = tempfile::tempdir().expect("data dir");
    let inbox = tempfile::tempdir().expect("inbox");
    let nested = inbox.path().join("room-2");
    std::fs::create_dir_all(&nested).expect("dir");
    let a = write(
        inbox.path(),
        "a.dcm",
        report(
            dicom_xray_rdsr(),
            "2.25.901",
            vec![plane(("0.01", "Gy.m2"), ("0.2", "Gy"), ("100", "s"))],
        ),
    );
    write(
        &nested,
        "b.dcm",
        report(
            dicom_xray_rdsr(),
            "2.25.902",
            vec![plane(("0.02", "Gy.m2"), ("0.4", "Gy"), ("200", "s"))],
        ),
    );
    std::fs::copy(&a, nested.join("a-resent.dcm")).expect("copy");
    std::fs::write(nested.join("notes.txt"), b"not a dose report").expect("write");

    let first = cli(
        &["dose", "import", inbox.path().to_str().expect("path")],
        data.path(),
        None,
        &[],
    );
    assert!(
        first.contains("4 files: 2 stored (0 linked to a case, 2 waiting to be matched), 1 already stored, 1 quarantined"),
        "{first}"
    );
    let again = cli(
        &["dose", "import", inbox.path().to_str().expect("path")],
        data.path(),
        None,
        &[],
    );
    assert!(
        again.contains("4 files: 0 stored (0 linked to a case, 0 waiting to be matched), 3 already stored, 1 quarantined"),
        "re-sending duplicates nothing: {again}"
    );
}

/// The running server's DICOM listener takes a report from dcmtk's storescu, and the API shows
/// it: the wiring from `seldinger serve` to the store.
#[tokio::test]
async fn serve_accepts_dose_reports_over_dicom() {
    use seldinger_dicom::fixtures::{plane, report, write};
    let dir = tempfile::tempdir().expect("dir");
    let token = nurse_token(dir.path(), None);
    let dicom = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&["serve", "--dicom-listen", &dicom], dir.path());
    let inbox = tempfile::tempdir().expect("inbox");
    let file = write(
        inbox.path(),
        "r.dcm",
        report(
            dicom_xray_rdsr(),
            "2.25.5501",
            vec![plane(("0.01", "Gy.m2"), ("0.2", "Gy"), ("100", "s"))],
        ),
    );
    let port = dicom.rsplit(':').next().expect("port");
    let sent = Command::new("storescu")
        .args(["-aet", "ANGIO1", "-aec", "SELDINGER", "127.0.0.1", port])
        .arg(&file)
        .output()
        .expect("storescu (dcmtk; scripts/test installs it)");
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let reports: Value = ::reqwest::Client::new()
        .get(format!("{}/dose/reports", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(reports[0]["sop_instance_uid"], "2.25.5501", "{reports}");
    assert!(reports[0]["source"]
        .as_str()
        .is_some_and(|s| s.starts_with("C-STORE from ANGIO1")));
    server.terminate();
}

/// The days [`GENERATE_OLD_HISTORY`] generates, by the tests' clock.
fn history_window() -> impl Iterator<Item = chrono::NaiveDate> {
    let last = common::test_today() - chrono::Days::new(400);
    (0..3).rev().map(move |back| last - chrono::Days::new(back))
}

/// Three days of history, a little more than a year ago: old enough that a department has
/// settled its follow-up.
const GENERATE_OLD_HISTORY: [&str; 7] = [
    "generate",
    "--seed",
    "7",
    "--history-days",
    "3",
    "--history-ends-days-ago",
    "400",
];

/// `generate` on both engines: a short history through the same path as ten years — the same
/// department for the same seed, every record's projection in step with its events, the
/// history's cases over the procedure types and states, audit rows for them, and a database
/// that already holds patients refused.
#[tokio::test]
async fn generate_builds_the_same_whole_department_for_a_seed_on_both_engines() {
    let mut engines: Vec<Option<seldinger_store::testing::TestDatabase>> = vec![None];
    if let Some(db) = seldinger_store::testing::postgres().await {
        engines.push(Some(db));
    }
    // Each engine's cases, as (id, state, opened): the same seed must give the same department.
    let mut departments: Vec<Vec<String>> = Vec::new();
    for db in engines {
        let url = db.as_ref().map(|d| d.url.clone());
        let dir = tempfile::tempdir().expect("dir");
        let said = cli(&GENERATE_OLD_HISTORY, dir.path(), url.as_deref(), &[]);
        assert!(said.contains("generated"), "{said}");
        let store = match &db {
            Some(db) => db.store.clone(),
            None => seldinger_store::Store::connect(&format!(
                "sqlite://{}?mode=rw",
                dir.path().join("seldinger.db").display()
            ))
            .await
            .expect("open"),
        };
        let broken = seldinger_store::testing::projections_out_of_step(&store).await;
        assert!(broken.is_empty(), "{url:?}: {broken:?}");
        let cases = store
            .cases(
                &seldinger_domain::access::RowScope::Department,
                &seldinger_store::CaseFilter {
                    limit: 10_000,
                    ..Default::default()
                },
            )
            .await
            .expect("cases");
        // Three days of history beside the demo's own: 56 cases a weekday, 6 a weekend day, so
        // a window over a weekend holds fewer (the clock is the tests', not CI's day).
        let history_cases: usize = history_window()
            .map(|day| match chrono::Datelike::weekday(&day) {
                chrono::Weekday::Sat | chrono::Weekday::Sun => 6,
                _ => 56,
            })
            .sum();
        assert!(
            cases.len() >= history_cases + 100,
            "{} cases; the history alone holds {history_cases}",
            cases.len()
        );
        let mut department: Vec<String> = cases
            .iter()
            .map(|c| format!("{} {} {}", c.id, c.state.as_str(), c.opened_at.to_rfc3339()))
            .collect();
        department.sort();
        departments.push(department);
        let states: std::collections::BTreeSet<&str> =
            cases.iter().map(|c| c.state.as_str()).collect();
        for state in ["cancelled", "declined", "follow_up"] {
            assert!(states.contains(state), "{state} in {states:?}");
        }
        // The history's follow-up was done and its devices taken out, as a department does:
        // but for a few lost to follow-up, nothing of it is still open years later.
        let before_demo_year = common::test_now() - chrono::Duration::days(365);
        let history: Vec<_> = cases
            .iter()
            .filter(|c| c.opened_at < before_demo_year)
            .map(|c| c.id)
            .collect();
        let tasks = store
            .follow_up_tasks_of_cases(&history)
            .await
            .expect("tasks");
        let open = tasks
            .iter()
            .filter(|t| t.completed.is_none() && t.withdrawn.is_none())
            .count();
        assert!(
            !tasks.is_empty() && open * 10 < tasks.len(),
            "{open} of {} open",
            tasks.len()
        );
        let devices = store
            .devices(
                &seldinger_domain::access::RowScope::Department,
                &seldinger_store::DeviceFilter {
                    placed_before: Some(before_demo_year),
                    ..Default::default()
                },
                10_000,
            )
            .await
            .expect("devices");
        let in_place = devices.iter().filter(|d| d.in_place()).count();
        assert!(
            !devices.is_empty() && in_place * 10 < devices.len(),
            "{in_place} of {} in place",
            devices.len()
        );
        let audited = store
            .audit_page(
                &seldinger_store::AuditFilter {
                    username: Some("dr.okafor".into()),
                    ..Default::default()
                },
                None,
                10,
            )
            .await
            .expect("audit");
        // Each history case read by the physician, as the trail keeps it.
        assert!(
            audited.total >= history_cases as u64,
            "{} of {history_cases}",
            audited.total
        );
        // The same seed on the same day: the same department (SQLite, a second directory).
        if db.is_none() {
            let again = tempfile::tempdir().expect("dir");
            let said_again = cli(&GENERATE_OLD_HISTORY, again.path(), None, &[]);
            let counts = |s: &str| {
                let summary = s.lines().find(|l| l.starts_with("generated"));
                summary
                    .and_then(|l| l.split(" in ").next())
                    .map(str::to_string)
            };
            assert_eq!(counts(&said), counts(&said_again));
        }
        // A database with patients is not generated into.
        let mut refused = common::seldinger();
        refused
            .args(["generate", "--history-days", "1", "--data-dir"])
            .arg(dir.path());
        match &url {
            Some(url) => refused.env("DATABASE_URL", url),
            None => refused.env_remove("DATABASE_URL"),
        };
        let refused = refused.output().expect("run");
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("already holds patients"));
    }
    if let [sqlite, postgres] = departments.as_slice() {
        let differ: Vec<_> = sqlite
            .iter()
            .zip(postgres)
            .filter(|(a, b)| a != b)
            .take(3)
            .collect();
        assert!(
            sqlite.len() == postgres.len() && differ.is_empty(),
            "one seed, two departments: {} cases on SQLite, {} on PostgreSQL; first differences {differ:?}",
            sqlite.len(),
            postgres.len()
        );
    }
}

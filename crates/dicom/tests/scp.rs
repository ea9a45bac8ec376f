//! The C-STORE listener, driven by a real third-party sender: dcmtk's `storescu` (Debian package
//! dcmtk, installed by `scripts/test`). Runs on every engine.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{app, room};
use dicom_dictionary_std::uids;
use seldinger_dicom::fixtures::{container, ct_content, event, num, plane, report, write};
use seldinger_dicom::scp::{serve, ScpConfig};
use seldinger_domain::followup::FollowUpKind;
use seldinger_domain::DicomModality;
use seldinger_store::testing::{engines, records};
use seldinger_store::{DoseReportFilter, FollowUpFilter};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const AE_TITLE: &str = "SELDINGER";

fn storescu() -> &'static str {
    let found = std::process::Command::new("storescu")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "dcmtk's storescu is needed (apt-get install dcmtk; scripts/test installs it)"
    );
    "storescu"
}

/// Sends `files` in one association, calling `called_ae`, and returns storescu's output.
async fn send(port: u16, called_ae: &str, files: &[PathBuf]) -> Output {
    send_with(port, called_ae, &[], files).await
}

async fn send_with(port: u16, called_ae: &str, options: &[&str], files: &[PathBuf]) -> Output {
    send_as(port, "ANGIO1", called_ae, options, files).await
}

/// As [`send_with`], calling as `calling`.
async fn send_as(
    port: u16,
    calling: &str,
    called_ae: &str,
    options: &[&str],
    files: &[PathBuf],
) -> Output {
    let mut command = tokio::process::Command::new(storescu());
    command
        .args(["-aet", calling, "-aec", called_ae, "--no-halt", "-v"])
        .args(options)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(files);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("storescu finished within a minute")
        .expect("storescu ran")
}

/// As [`send`], proposing only implicit VR little endian, so the data sets arrive re-encoded.
async fn send_implicit(port: u16, files: &[PathBuf]) -> Output {
    send_with(port, AE_TITLE, &["--propose-implicit"], files).await
}

fn fixtures(dir: &Path) -> Vec<PathBuf> {
    let high_dose = write(
        dir,
        "single-plane-high.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.9001",
            vec![
                plane(("0.0123", "Gy.m2"), ("6.2", "Gy"), ("754", "s")),
                event(
                    "2.25.9001.1",
                    ("113622", "Single Plane"),
                    ("150", "dGy.cm2"),
                    ("12", "mGy"),
                ),
            ],
        ),
    );
    let biplane = write(
        dir,
        "biplane.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.9002",
            vec![
                plane(("0.004", "Gy.m2"), ("0.3", "Gy"), ("300", "s")),
                plane(("2500", "cGy.cm2"), ("210", "mGy"), ("4", "min")),
            ],
        ),
    );
    let ct = write(
        dir,
        "ct.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.9003",
            ct_content("812.5", &[("2.25.9003.1", "12.1", "406.2")]),
        ),
    );
    let missing_items = write(
        dir,
        "missing-items.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.9004",
            vec![container(
                "113702",
                "Accumulated X-Ray Dose Data",
                vec![num("113725", "Dose (RP) Total", "0.4", "Gy")],
            )],
        ),
    );
    // A structured report of an accepted class that carries no dose content.
    let not_dose = write(
        dir,
        "not-a-dose-report.dcm",
        report(uids::COMPREHENSIVE_SR_STORAGE, "2.25.9005", vec![]),
    );
    // A broken report: readable DICOM, but without the Study Instance UID a report needs.
    let mut broken = report(uids::X_RAY_RADIATION_DOSE_SR_STORAGE, "2.25.9006", vec![]);
    broken.remove_element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
    let broken = write(dir, "no-study-uid.dcm", broken);
    vec![high_dose, biplane, ct, missing_items, not_dose, broken]
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, hour, minute, 0)
        .single()
        .expect("valid")
}

#[tokio::test]
async fn storescu_reports_are_stored_once_linked_and_alerted_and_the_rest_quarantined() {
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        // The fixtures' patient, booked in the room when their study started (09:15).
        store
            .put_room(&room("angio-1", "ANGIO1", DicomModality::Xa), 0)
            .await
            .expect("room");
        let case = records::booked_case(store, "SDM100037", "angio-1", at(9, 0), 60).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(serve(
            listener,
            ScpConfig {
                ae_title: AE_TITLE.into(),
                allowed_callers: Vec::new(),
                tls: None,
                read_timeout: Duration::from_secs(30),
            },
            app(store),
        ));
        let dir = tempfile::tempdir().expect("dir");
        let files = fixtures(dir.path());

        let first = send(port, AE_TITLE, &files).await;
        let log = String::from_utf8_lossy(&first.stderr).to_string()
            + &String::from_utf8_lossy(&first.stdout);
        // storescu names each response status; the dose reports succeed, the SR without dose
        // content is answered with an error status.
        assert_eq!(
            log.matches("Received Store Response (Success)").count(),
            4,
            "{engine}: {log}"
        );
        assert!(
            log.contains("Error: DataSetDoesNotMatchSOPClass"),
            "{engine}: {log}"
        );
        assert!(log.contains("Error: CannotUnderstand"), "{engine}: {log}");

        let stored = store
            .dose_reports(
                &seldinger_store::RowScope::Department,
                &DoseReportFilter::default(),
            )
            .await
            .expect("list");
        assert_eq!(stored.len(), 4, "{engine}");
        // Each is linked: every fixture has the case's patient and study time.
        assert!(
            stored.iter().all(|r| r.case_id == Some(case.id)),
            "{engine}: {stored:?}"
        );
        let quarantine = store.dose_quarantine().await.expect("quarantine");
        assert_eq!(quarantine.len(), 2, "{engine}");
        assert!(
            quarantine[1].1.contains("no Study Instance UID"),
            "{quarantine:?}"
        );
        assert!(
            quarantine[0].0.starts_with("C-STORE from ANGIO1"),
            "{quarantine:?}"
        );
        assert!(
            quarantine[0].1.contains("not a radiation dose report"),
            "{quarantine:?}"
        );

        // The high-dose report passed a substantial radiation dose level: a skin check is owed.
        let tasks = store
            .follow_up_tasks(
                &seldinger_store::RowScope::Department,
                &FollowUpFilter {
                    case_id: Some(case.id),
                    ..Default::default()
                },
            )
            .await
            .expect("tasks");
        assert_eq!(
            tasks.iter().map(|t| t.kind).collect::<Vec<_>>(),
            [FollowUpKind::DoseSkinCheck],
            "{engine}"
        );

        // Re-sending everything, this time in implicit VR little endian, is acknowledged and
        // duplicates nothing.
        let again = send_implicit(port, &files[..4]).await;
        let log = String::from_utf8_lossy(&again.stderr).to_string()
            + &String::from_utf8_lossy(&again.stdout);
        assert_eq!(
            log.matches("Received Store Response (Success)").count(),
            4,
            "{log}"
        );
        let stored = store
            .dose_reports(
                &seldinger_store::RowScope::Department,
                &DoseReportFilter::default(),
            )
            .await
            .expect("list");
        assert_eq!(stored.len(), 4, "{engine}: re-sent, not duplicated");

        // An association called for another AE title is rejected; nothing is stored.
        let wrong = send(port, "SOMEONE_ELSE", &files[..1]).await;
        let log = String::from_utf8_lossy(&wrong.stderr).to_string()
            + &String::from_utf8_lossy(&wrong.stdout);
        assert!(!wrong.status.success(), "{engine}: {log}");
        assert!(log.contains("Association Rejected"), "{engine}: {log}");

        server.abort();
    }
}

/// A station speaks only for its own room: a dose report for the angio suite's case sent by the
/// CT's system is stored (the sender is told so) but waits for the physicist; and one from the
/// suite's second system that would replace what the first reported for the case (same study,
/// same device, a far lower dose: a forged copy) waits too. The case's dose stays as reported.
#[tokio::test]
async fn a_dose_report_from_a_station_not_of_the_cases_room_waits_for_the_physicist() {
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        let mut suite = room("angio-1", "ANGIO1", DicomModality::Xa);
        suite.equipment.push(seldinger_domain::Equipment {
            ae_title: seldinger_domain::AeTitle::parse("ANGIO1B").expect("title"),
            modality: DicomModality::Xa,
        });
        store.put_room(&suite, 0).await.expect("room");
        store
            .put_room(&room("ct-1", "CTIR1", DicomModality::Ct), 1)
            .await
            .expect("room");
        let case = records::booked_case(store, "SDM100037", "angio-1", at(9, 0), 60).await;
        let port = listener_for(store, &[], None).await;
        let dir = tempfile::tempdir().expect("dir");
        let real = fixtures(dir.path()).remove(0);
        let forged = |sop: &str| {
            write(
                dir.path(),
                &format!("{sop}.dcm"),
                report(
                    uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
                    sop,
                    vec![plane(("0.00001", "Gy.m2"), ("0.001", "Gy"), ("1", "s"))],
                ),
            )
        };
        let sent = send_as(port, "ANGIO1", AE_TITLE, &[], &[real]).await;
        assert!(sent.status.success(), "{engine}");
        for (calling, sop, why) in [
            ("CTIR1", "2.25.9101", "not an imaging system of"),
            ("ANGIO1B", "2.25.9102", "would replace the dose ANGIO1 sent"),
        ] {
            let file = forged(sop);
            let sent = send_as(port, calling, AE_TITLE, &[], &[file]).await;
            let log = String::from_utf8_lossy(&sent.stderr).to_string()
                + &String::from_utf8_lossy(&sent.stdout);
            assert!(
                log.contains("Received Store Response (Success)"),
                "{engine}: {log}"
            );
            let held = store.dose_report(sop).await.expect("read").expect("stored");
            assert_eq!(held.case_id, None, "{engine}: {calling}");
            let reason = held.unmatched_reason.unwrap_or_default();
            assert!(
                reason.contains(why) && reason.contains("held for the physicist"),
                "{engine}: {reason}"
            );
        }
        let counted = store.case_dose_reports(case.id).await.expect("reports");
        assert_eq!(counted.len(), 1, "{engine}");
        assert!(counted[0]
            .totals
            .reference_air_kerma
            .is_some_and(|g| (g.0 - 6.2).abs() < 1e-9));
    }
}

/// A listener for `allowed_callers` on a free port, over TLS when given; the port.
async fn listener_for(
    store: &seldinger_store::Store,
    allowed_callers: &[&str],
    tls: Option<seldinger_dicom::scp::TlsSettings>,
) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(serve(
        listener,
        ScpConfig {
            ae_title: AE_TITLE.into(),
            allowed_callers: allowed_callers.iter().map(|a| a.to_string()).collect(),
            tls,
            read_timeout: Duration::from_secs(30),
        },
        app(store),
    ));
    port
}

#[tokio::test]
async fn a_modality_not_on_the_department_list_is_rejected_before_it_can_send() {
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        let dir = tempfile::tempdir().expect("dir");
        let files = fixtures(dir.path());
        // storescu calls as ANGIO1.
        let port = listener_for(store, &["CT1", "ANGIO2"], None).await;
        let refused = send(port, AE_TITLE, &files[..1]).await;
        let log = String::from_utf8_lossy(&refused.stderr).to_string()
            + &String::from_utf8_lossy(&refused.stdout);
        assert!(!refused.status.success(), "{engine}: {log}");
        assert!(log.contains("Association Rejected"), "{engine}: {log}");
        assert!(
            log.contains("Calling AE Title Not Recognized"),
            "{engine}: {log}"
        );
        let stored = store
            .dose_reports(
                &seldinger_store::RowScope::Department,
                &DoseReportFilter::default(),
            )
            .await
            .expect("list");
        assert!(
            stored.is_empty(),
            "{engine}: nothing from an unlisted sender"
        );

        let port = listener_for(store, &["CT1", "ANGIO1"], None).await;
        let accepted = send(port, AE_TITLE, &files[..1]).await;
        let log = String::from_utf8_lossy(&accepted.stderr).to_string()
            + &String::from_utf8_lossy(&accepted.stdout);
        assert!(
            log.contains("Received Store Response (Success)"),
            "{engine}: {log}"
        );
    }
}

/// A department CA, the listener's certificate and a modality's, as PEM files in `dir`:
/// (ca, server cert, server key, client cert, client key).
fn certificates(dir: &Path) -> [PathBuf; 5] {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Synthetic IR department CA");
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
        vec!["angio1.ir.example".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let files = [
        ("ca.pem", ca.pem()),
        ("server.pem", server_cert),
        ("server.key", server_key),
        ("client.pem", client_cert),
        ("client.key", client_key),
    ];
    files.map(|(name, pem)| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    })
}

#[tokio::test]
async fn over_tls_only_a_modality_with_the_departments_certificate_is_heard() {
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        let dir = tempfile::tempdir().expect("dir");
        let files = fixtures(dir.path());
        let [ca, server_cert, server_key, client_cert, client_key] = certificates(dir.path());
        let tls = seldinger_dicom::scp::tls_config(&server_cert, &server_key, Some(&ca))
            .expect("tls settings");
        let port = listener_for(store, &[], Some(tls)).await;
        let path = |p: &PathBuf| p.display().to_string();
        let (ca, client_cert, client_key) = (path(&ca), path(&client_cert), path(&client_key));
        let log = |out: &Output| {
            String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout)
        };

        // Plain TCP, and TLS without a client certificate: no association, nothing stored.
        let plain = send(port, AE_TITLE, &files[..1]).await;
        assert!(!plain.status.success(), "{engine}: {}", log(&plain));
        let anonymous = send_with(port, AE_TITLE, &["+tla", "+cf", &ca], &files[..1]).await;
        assert!(!anonymous.status.success(), "{engine}: {}", log(&anonymous));
        let stored = store
            .dose_reports(
                &seldinger_store::RowScope::Department,
                &DoseReportFilter::default(),
            )
            .await
            .expect("list");
        assert!(stored.is_empty(), "{engine}: {stored:?}");

        // With the department's certificate, the report is stored and acknowledged.
        let secure = send_with(
            port,
            AE_TITLE,
            &["+tls", &client_key, &client_cert, "+cf", &ca],
            &files[..1],
        )
        .await;
        assert!(
            log(&secure).contains("Received Store Response (Success)"),
            "{engine}: {}",
            log(&secure)
        );
        let stored = store
            .dose_reports(
                &seldinger_store::RowScope::Department,
                &DoseReportFilter::default(),
            )
            .await
            .expect("list");
        assert_eq!(stored.len(), 1, "{engine}");
    }
}

#[test]
fn tls_settings_name_the_file_that_is_wrong() {
    let dir = tempfile::tempdir().expect("dir");
    let [ca, server_cert, _server_key, _client_cert, client_key] = certificates(dir.path());
    let missing = dir.path().join("missing.pem");
    let refused = seldinger_dicom::scp::tls_config(&missing, &client_key, None)
        .expect_err("no certificate file");
    assert!(refused.contains("missing.pem"), "{refused}");
    let mismatched = seldinger_dicom::scp::tls_config(&server_cert, &client_key, None)
        .expect_err("another certificate's key");
    assert!(mismatched.contains("do not go together"), "{mismatched}");
    let not_a_key = seldinger_dicom::scp::tls_config(&server_cert, &ca, None)
        .expect_err("a certificate is not a key");
    assert!(not_a_key.contains("no PEM private key"), "{not_a_key}");
}

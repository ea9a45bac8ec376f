//! The Modality Worklist on the real listener, queried by independent peers on both engines:
//! dcmtk's `findscu -W` (responses extracted to files and read back) and pynetdicom (a
//! scripted SCU, `peers/mwl_scu.py`, which also sends a C-CANCEL before reading anything).
//! Character sets (ISO_IR 100 asked, UTF-8 needed), malformed and hostile queries, and a SOP
//! class the listener does not serve are tried too.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{listener, pynetdicom, room, AE_TITLE};
use dicom_dictionary_std::tags;
use dicom_object::open_file;
use seldinger_domain::lifecycle::Case;
use seldinger_domain::DicomModality;
use seldinger_store::testing::{engines, records};
use seldinger_store::{AuditFilter, Store};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// 10 June 2031, in UTC: London is on summer time, an hour ahead.
fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 6, day, hour, minute, 0)
        .single()
        .expect("time")
}

/// The department's day: two cases in angio 1 (one patient's name fits Latin-1, one needs
/// UTF-8), one on the CT, one in angio 1 the next day.
async fn department(store: &Store) -> Vec<Case> {
    store
        .put_room(&room("angio-1", "ANGIO1", DicomModality::Xa), 0)
        .await
        .expect("room");
    store
        .put_room(&room("ct-1", "CTIR1", DicomModality::Ct), 1)
        .await
        .expect("room");
    let mut cases = Vec::new();
    for (mrn, family, room, start) in [
        ("WLA1", "Müller", "angio-1", at(10, 8, 0)),
        ("WLB2", "Łapiński", "angio-1", at(10, 11, 0)),
        ("WLC3", "Synthetic", "ct-1", at(10, 9, 0)),
        ("WLD4", "Synthetic", "angio-1", at(11, 8, 0)),
    ] {
        let patient = records::patient_named(store, mrn, family, start).await;
        cases.push(records::booked_case_for(store, patient, room, start, 60).await);
    }
    cases
}

/// Runs findscu with `args` (keys, options) against the listener as ANGIO1, extracting each
/// response to `dir`; its output, verbose.
async fn findscu(port: u16, dir: &Path, args: &[&str]) -> (Output, String) {
    findscu_files(port, dir, args, &[]).await
}

/// As [`findscu`], sending the queries in `files` (dcmtk reads them after the port).
async fn findscu_files(port: u16, dir: &Path, args: &[&str], files: &[String]) -> (Output, String) {
    findscu_as(port, "ANGIO1", dir, args, files).await
}

/// As [`findscu_files`], calling as `calling` (a station reads only its own steps).
async fn findscu_as(
    port: u16,
    calling: &str,
    dir: &Path,
    args: &[&str],
    files: &[String],
) -> (Output, String) {
    let mut command = tokio::process::Command::new("findscu");
    command
        .args(["-v", "-aet", calling, "-aec", AE_TITLE, "-X", "-od"])
        .arg(dir)
        .args(args)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .args(files);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("findscu finished within a minute")
        .expect("findscu ran (dcmtk: apt-get install dcmtk; scripts/test installs it)");
    let log = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    (output, log)
}

/// The responses findscu extracted, in order: (bytes, parsed).
fn responses(dir: &Path) -> Vec<(Vec<u8>, dicom_object::DefaultDicomObject)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            (
                std::fs::read(p).expect("read"),
                open_file(p).expect("findscu wrote DICOM"),
            )
        })
        .collect()
}

fn text(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches([' ', '\0']).to_string())
        .unwrap_or_default()
}

fn step(obj: &dicom_object::InMemDicomObject) -> dicom_object::InMemDicomObject {
    obj.get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first())
        .cloned()
        .expect("a scheduled step")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findscu_pulls_its_rooms_day_in_the_character_set_it_asks_for() {
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        let cases = department(store).await;
        let port = listener(store).await;

        // The room's day, asking for UTF-8.
        let dir = tempfile::tempdir().expect("dir");
        let (output, log) = findscu(
            port,
            dir.path(),
            &[
                "-W",
                "-k",
                "0008,0005=ISO_IR 192",
                "-k",
                "0010,0010",
                "-k",
                "0010,0020",
                "-k",
                "0010,0021",
                "-k",
                "0008,0050",
                "-k",
                "0020,000D",
                "-k",
                "0032,1032",
                "-k",
                "0010,2000",
                "-k",
                "0040,0100[0].0040,0001=ANGIO1",
                "-k",
                "0040,0100[0].0040,0002=20310610",
                "-k",
                "0040,0100[0].0040,0003",
                "-k",
                "0040,0100[0].0008,0060",
            ],
        )
        .await;
        assert!(output.status.success(), "{engine}: {log}");
        assert!(
            log.contains("Received Final Find Response (Success)"),
            "{engine}: {log}"
        );
        let found = responses(dir.path());
        assert_eq!(found.len(), 2, "{engine}: {log}");
        let first = &found[0].1;
        assert_eq!(text(first, tags::PATIENT_NAME), "Müller^Sam", "{engine}");
        assert_eq!(text(first, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
        assert_eq!(text(first, tags::PATIENT_ID), "WLA1");
        assert_eq!(text(first, tags::ISSUER_OF_PATIENT_ID), "MAIN");
        assert_eq!(text(first, tags::REQUESTING_PHYSICIAN), "Dr Ward");
        // Medical alerts: the case's checklist items that block the start or need an action
        // (none for this one: its gaps are missing data, which the checklist shows, not alerts).
        let checklist = common::app(store)
            .checklist_of(&cases[0])
            .await
            .expect("checklist");
        let expected: Vec<String> = checklist
            .items
            .iter()
            .filter_map(|i| match i.status {
                seldinger_domain::safety::ItemStatus::Block => {
                    Some(format!("Blocks the start: {}", i.title))
                }
                seldinger_domain::safety::ItemStatus::ActionNeeded => {
                    Some(format!("Action needed: {}", i.title))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            text(first, tags::MEDICAL_ALERTS),
            expected.join("\\"),
            "{engine}"
        );
        // The study the modality will report back with, assigned once at booking.
        let accession = cases[0].accession_number.clone().expect("assigned");
        assert_eq!(text(first, tags::ACCESSION_NUMBER), accession);
        assert_eq!(
            text(first, tags::STUDY_INSTANCE_UID),
            cases[0].study_instance_uid.clone().expect("assigned")
        );
        let first_step = step(first);
        // 08:00 UTC is 09:00 in London in June.
        assert_eq!(
            text(&first_step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
            "090000"
        );
        assert_eq!(text(&first_step, tags::MODALITY), "XA");
        assert_eq!(text(&found[1].1, tags::PATIENT_NAME), "Łapiński^Sam");

        // What was shown is audited, for the asking modality: the two cases, not the others.
        let audit = store
            .audit_page(
                &AuditFilter {
                    username: Some("dicom:ANGIO1".into()),
                    ..Default::default()
                },
                None,
                50,
            )
            .await
            .expect("audit");
        let shown: Vec<_> = audit
            .items
            .iter()
            .filter(|e| e.resource_type == "worklist")
            .collect();
        assert_eq!(shown.len(), 2, "{engine}: {shown:?}");

        // A radiographer's name search in Latin-1, the character set the answer then uses.
        let dir = tempfile::tempdir().expect("dir");
        let (_, log) = findscu(
            port,
            dir.path(),
            &[
                "-W",
                "-k",
                "0008,0005=ISO_IR 100",
                "-k",
                "0010,0010=m*",
                "-k",
                "0040,0100[0].0040,0001",
            ],
        )
        .await;
        let found = responses(dir.path());
        assert_eq!(found.len(), 1, "{engine}: {log}");
        assert_eq!(
            text(&found[0].1, tags::SPECIFIC_CHARACTER_SET),
            "ISO_IR 100"
        );
        assert_eq!(text(&found[0].1, tags::PATIENT_NAME), "Müller^Sam");
        assert!(
            found[0].0.windows(6).any(|w| w == b"M\xFCller"),
            "{engine}: the name travels in Latin-1"
        );

        // Any station, any date: a station reads its room's booked cases, each once, and no
        // other room's; an AE title no room lists reads none (AE EVIL read every scheduled
        // patient once).
        let keys = ["-W", "-k", "0010,0020", "-k", "0040,0100[0].0040,0001"];
        for (calling, booked) in [("ANGIO1", 3), ("CTIR1", 1), ("EVIL", 0)] {
            let dir = tempfile::tempdir().expect("dir");
            let (_, log) = findscu_as(port, calling, dir.path(), &keys, &[]).await;
            assert_eq!(
                responses(dir.path()).len(),
                booked,
                "{engine}: {calling}: {log}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_hostile_and_foreign_queries_are_refused_with_the_reason() {
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        department(store).await;
        let port = listener(store).await;
        let dir = tempfile::tempdir().expect("dir");

        // A date written as people write it, not as DICOM does.
        let (_, log) = findscu(
            port,
            dir.path(),
            &[
                "-W",
                "-k",
                "0010,0010",
                "-k",
                "0040,0100[0].0040,0002=2031-06-10",
            ],
        )
        .await;
        assert!(
            log.contains("Received Final Find Response (Error: DataSetDoesNotMatchSOPClass)"),
            "{engine}: {log}"
        );
        assert!(responses(dir.path()).is_empty());

        // Two items in the step sequence: a query holds one.
        let two = dir.path().join("two.dump");
        std::fs::write(
            &two,
            "(0010,0010) PN []\n(0040,0100) SQ\n(fffe,e000) -\n(0040,0001) AE [ANGIO1]\n(fffe,e00d) -\n(fffe,e000) -\n(0040,0001) AE [CTIR1]\n(fffe,e00d) -\n(fffe,e0dd) -\n",
        )
        .expect("dump");
        let (_, log) = findscu_files(port, dir.path(), &["-W"], &[dump2dcm(&two)]).await;
        assert!(
            log.contains("Error: DataSetDoesNotMatchSOPClass"),
            "{engine}: {log}"
        );

        // Sequences nested twenty deep: refused before dicom-rs reads them.
        let deep = dir.path().join("deep.dump");
        let mut dump = String::from("(0010,0010) PN []\n");
        for _ in 0..20 {
            dump.push_str("(0040,0100) SQ\n(fffe,e000) -\n");
        }
        for _ in 0..20 {
            dump.push_str("(fffe,e00d) -\n(fffe,e0dd) -\n");
        }
        std::fs::write(&deep, dump).expect("dump");
        let (_, log) = findscu_files(port, dir.path(), &["-W"], &[dump2dcm(&deep)]).await;
        assert!(
            log.contains("Received Final Find Response (Failed: UnableToProcess)")
                || log.contains("Error: UnableToProcess"),
            "{engine}: {log}"
        );

        // A query model the listener does not serve: no presentation context for it.
        let (output, log) = findscu(
            port,
            dir.path(),
            &["-P", "-k", "0008,0052=PATIENT", "-k", "0010,0010"],
        )
        .await;
        assert!(!output.status.success(), "{engine}: {log}");
        assert!(
            log.contains("No Acceptable Presentation Contexts"),
            "{engine}: {log}"
        );

        // The listener still answers after all that.
        let (_, log) = findscu(
            port,
            dir.path(),
            &["-W", "-k", "0040,0100[0].0040,0001=CTIR1"],
        )
        .await;
        assert!(
            log.contains("Received Final Find Response (Success)"),
            "{engine}: {log}"
        );
    }
}

/// Converts a dcmtk dump to a DICOM file beside it; the file's path.
fn dump2dcm(dump: &Path) -> String {
    let file = dump.with_extension("query");
    let status = std::process::Command::new("dump2dcm")
        .arg(dump)
        .arg(&file)
        .status()
        .expect("dump2dcm ran");
    assert!(status.success(), "dump2dcm {}", dump.display());
    file.display().to_string()
}

async fn mwl_scu(python: &str, port: u16, args: &[&str]) -> serde_json::Value {
    common::peer(python, "mwl_scu.py", port, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynetdicom_reads_the_same_worklist_and_its_cancel_is_honoured() {
    let Some(python) = pynetdicom() else {
        return;
    };
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        let cases = department(store).await;
        let port = listener(store).await;

        let answer = mwl_scu(&python, port, &["query", "ANGIO1", "20310610-20310611"]).await;
        assert_eq!(answer["final"], 0, "{engine}: {answer}");
        let matches = answer["matches"].as_array().expect("matches");
        let names: Vec<&str> = matches.iter().filter_map(|m| m["name"].as_str()).collect();
        assert_eq!(
            names,
            ["Müller^Sam", "Łapiński^Sam", "Synthetic^Sam"],
            "{engine}"
        );
        assert_eq!(
            matches[2]["accession"].as_str(),
            cases[3].accession_number.as_deref()
        );
        assert_eq!(matches[2]["date"], "20310611");
        assert_eq!(matches[0]["time"], "090000");
        // Every key asked is one the worklist holds: plain pending, no warning.
        assert!(matches.iter().all(|m| m["status"] == 0xFF00));

        // A cancel sent straight after the query: no match sent after it, status Cancel.
        let cancelled = mwl_scu(&python, port, &["cancel"]).await;
        assert_eq!(cancelled["final"], 0xFE00, "{engine}: {cancelled}");
        assert!(
            cancelled["pending"].as_u64().is_some_and(|n| n < 4),
            "{engine}: {cancelled}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_or_half_open_caller_is_dropped_and_others_are_still_answered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        department(store).await;
        let port = common::listener_with_timeout(store, Duration::from_secs(1)).await;
        // One connects and says nothing; one sends half an association request and stops.
        let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut half = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        half.write_all(&[0x01, 0x00, 0x00, 0x00, 0x00, 0xCD, 0x00, 0x01])
            .await
            .expect("write");
        // Meanwhile a modality is answered.
        let dir = tempfile::tempdir().expect("dir");
        let (_, log) = findscu(
            port,
            dir.path(),
            &["-W", "-k", "0040,0100[0].0040,0001=ANGIO1"],
        )
        .await;
        assert!(
            log.contains("Received Final Find Response (Success)"),
            "{engine}: {log}"
        );
        // Both are closed by the listener once idle past its timeout.
        for stream in [&mut silent, &mut half] {
            let mut buffer = [0u8; 64];
            let closed = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => continue,
                    }
                }
            })
            .await;
            assert!(closed.is_ok(), "{engine}: an idle caller is dropped");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_query_is_refused_before_it_is_read() {
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        department(store).await;
        let port = listener(store).await;
        let dir = tempfile::tempdir().expect("dir");
        // 300 kB of comments in the step: more than any worklist query.
        let dump = dir.path().join("huge.dump");
        std::fs::write(
            &dump,
            format!(
                "(0010,0010) PN []\n(0040,0100) SQ\n(fffe,e000) -\n(0040,0400) LT [{}]\n(fffe,e00d) -\n(fffe,e0dd) -\n",
                "x".repeat(300_000)
            ),
        )
        .expect("dump");
        let query = dir.path().join("huge.query");
        let converted = std::process::Command::new("dump2dcm")
            .args(["+l", "400000"])
            .arg(&dump)
            .arg(&query)
            .status()
            .expect("dump2dcm ran");
        assert!(converted.success());
        let (_, log) =
            findscu_files(port, dir.path(), &["-W"], &[query.display().to_string()]).await;
        assert!(log.contains("OutOfResources"), "{engine}: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_case_moves_on_the_list_keeping_its_study_and_a_cancelled_one_leaves_it() {
    use seldinger_domain::lifecycle::CaseEvent;
    use seldinger_domain::RoomId;
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        let cases = department(store).await;
        let port = listener(store).await;
        let day = |dir: &Path, station: &'static str| {
            let dir = dir.to_path_buf();
            async move {
                std::fs::create_dir_all(&dir).expect("dir");
                let (_, log) = findscu_as(
                    port,
                    station,
                    &dir,
                    &[
                        "-W",
                        "-k",
                        "0010,0020",
                        "-k",
                        "0020,000D",
                        "-k",
                        &format!("0040,0100[0].0040,0001={station}"),
                        "-k",
                        "0040,0100[0].0040,0002=20310610",
                    ],
                    &[],
                )
                .await;
                let ids: Vec<(String, String)> = responses(&dir)
                    .iter()
                    .map(|(_, r)| (text(r, tags::PATIENT_ID), text(r, tags::STUDY_INSTANCE_UID)))
                    .collect();
                (ids, log)
            }
        };
        // Müller's case moves from angio 1 to the CT, later the same day.
        let moved = records::step(
            store,
            &cases[0],
            CaseEvent::Schedule {
                room: RoomId::parse("ct-1").expect("room"),
                start: at(10, 15, 0),
                duration_minutes: Some(30),
                study: None,
                performing_physician: None,
            },
            at(9, 0, 0),
        )
        .await
        .expect("moved");
        // Łapiński's is cancelled.
        records::step(store, &cases[1], CaseEvent::Cancel, at(9, 0, 0))
            .await
            .expect("cancelled");
        let work = tempfile::tempdir().expect("dir");
        let (angio, log) = day(&work.path().join("angio"), "ANGIO1").await;
        assert!(angio.is_empty(), "{engine}: {angio:?} {log}");
        let (ct, log) = day(&work.path().join("ct"), "CTIR1").await;
        let ids: Vec<&str> = ct.iter().map(|(id, _)| id.as_str()).collect();
        assert!(ids.contains(&"WLA1"), "{engine}: {ct:?} {log}");
        let study = ct
            .iter()
            .find(|(id, _)| id == "WLA1")
            .map(|(_, s)| s.clone());
        assert_eq!(study, moved.study_instance_uid, "{engine}: the study stays");
    }
}

//! Parity with dcmtk's own worklist server, `wlmscpfs`, on both engines: Seldinger's worklist
//! items (as findscu fetches them from the listener) are loaded into `wlmscpfs`, and the same
//! queries — dcmtk's example queries (`wlistqry*.dump`, shipped with the dcmtk package) and the
//! ones a department's modalities send (a room's day, date and time ranges, wild-card names,
//! a patient, an accession number, a study, a modality) — go to both servers. Each must return
//! the same matches with the same values.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::{listener, room, AE_TITLE};
use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::{open_file, InMemDicomObject};
use seldinger_domain::DicomModality;
use seldinger_store::testing::{engines, records};
use seldinger_store::Store;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 6, day, hour, minute, 0)
        .single()
        .expect("time")
}

/// Two days of three rooms; names ASCII (character sets are tested against the listener alone).
async fn department(store: &Store) {
    for (n, (id, title, modality)) in [
        ("angio-1", "ANGIO1", DicomModality::Xa),
        ("ct-1", "CTIR1", DicomModality::Ct),
        ("us-1", "USIR1", DicomModality::Us),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .put_room(&room(id, title, modality), n as i64)
            .await
            .expect("room");
    }
    for (mrn, family, room, start) in [
        ("PAR1", "Vivaldi", "angio-1", at(10, 7, 30)),
        ("PAR2", "Haydn", "angio-1", at(10, 10, 15)),
        ("PAR3", "Mozart", "ct-1", at(10, 12, 0)),
        ("PAR4", "Beethoven", "us-1", at(10, 14, 45)),
        ("PAR5", "Vivaldi", "angio-1", at(11, 8, 0)),
        ("PAR6", "Schubert", "ct-1", at(11, 16, 30)),
    ] {
        let patient = records::patient_named(store, mrn, family, start).await;
        records::booked_case_for(store, patient, room, start, 45).await;
    }
}

fn dcmtk_examples() -> PathBuf {
    let dir = std::env::var("SELDINGER_DCMTK_EXAMPLES")
        .unwrap_or_else(|_| "/usr/share/doc/dcmtk/examples".into());
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("wlistqry").is_dir(),
        "dcmtk's example worklist queries are needed in {} (the dcmtk package ships them; scripts/test fetches them when a minimal system left them out)",
        dir.display()
    );
    dir
}

fn dump2dcm(dump: &Path, file: &Path) {
    let status = std::process::Command::new("dump2dcm")
        .arg("-q")
        .arg(dump)
        .arg(file)
        .status()
        .expect("dump2dcm ran");
    assert!(status.success(), "dump2dcm {}", dump.display());
}

/// findscu -W against `port` with the query file, extracting responses to `out`.
async fn findscu(port: u16, called: &str, query: &Path, out: &Path) -> String {
    std::fs::create_dir_all(out).expect("dir");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("findscu")
            .args(["-W", "-aet", "ANGIO1", "-aec", called, "-X", "-od"])
            .arg(out)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(query)
            .output(),
    )
    .await
    .expect("findscu finished within a minute")
    .expect("findscu ran");
    String::from_utf8_lossy(&output.stderr).to_string() + &String::from_utf8_lossy(&output.stdout)
}

fn response_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A response as comparable text: every attribute (nested ones indented), values trimmed of
/// padding; the character set and file meta left out.
fn canonical(obj: &InMemDicomObject, depth: usize, out: &mut String) {
    for element in obj.iter() {
        let tag = element.tag();
        if tag == tags::SPECIFIC_CHARACTER_SET || tag.group() == 0x0002 || tag.element() == 0 {
            continue;
        }
        let indent = "  ".repeat(depth);
        match element.value() {
            Value::Sequence(sequence) => {
                out.push_str(&format!(
                    "{indent}({:04X},{:04X}) SQ\n",
                    tag.group(),
                    tag.element()
                ));
                for item in sequence.items() {
                    out.push_str(&format!("{indent}  item\n"));
                    canonical(item, depth + 2, out);
                }
            }
            _ => {
                let text = element
                    .to_str()
                    .map(|s| s.trim_matches([' ', '\0']).to_string())
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{indent}({:04X},{:04X}) {}\n",
                    tag.group(),
                    tag.element(),
                    text
                ));
            }
        }
    }
}

fn answers(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = response_files(dir)
        .iter()
        .map(|p| {
            let file = open_file(p).expect("a DICOM response");
            let mut text = String::new();
            canonical(&file, 0, &mut text);
            text
        })
        .collect();
    all.sort();
    all
}

/// The queries a department's modalities send, beyond dcmtk's examples.
const DEPARTMENT_QUERIES: &[(&str, &str)] = &[
    (
        "room-day",
        "(0010,0010) PN []\n(0010,0020) LO []\n(0008,0050) SH []\n(0020,000d) UI []\n(0040,0100) SQ\n(fffe,e000) -\n(0040,0001) AE [ANGIO1]\n(0040,0002) DA [20310610]\n(0040,0003) TM []\n(0008,0060) CS []\n(fffe,e00d) -\n(fffe,e0dd) -\n",
    ),
    (
        "date-range-and-time-range",
        "(0010,0010) PN []\n(0040,0100) SQ\n(fffe,e000) -\n(0040,0002) DA [20310610-20310611]\n(0040,0003) TM [0800-1300]\n(0040,0001) AE []\n(fffe,e00d) -\n(fffe,e0dd) -\n",
    ),
    (
        "open-date-range",
        "(0010,0020) LO []\n(0040,0100) SQ\n(fffe,e000) -\n(0040,0002) DA [20310611-]\n(fffe,e00d) -\n(fffe,e0dd) -\n",
    ),
    (
        "wild-card-name",
        "(0010,0010) PN [Viv*]\n(0010,0030) DA []\n(0040,0100) SQ\n(fffe,e000) -\n(0040,0002) DA []\n(fffe,e00d) -\n(fffe,e0dd) -\n",
    ),
    (
        "single-character-wild-card",
        "(0010,0010) PN [H?ydn*]\n(0010,0020) LO []\n",
    ),
    ("patient", "(0010,0020) LO [PAR3]\n(0010,0010) PN []\n(0040,1001) SH []\n"),
    (
        "modality",
        "(0010,0010) PN []\n(0040,0100) SQ\n(fffe,e000) -\n(0008,0060) CS [CT]\n(0040,0009) SH []\n(fffe,e00d) -\n(fffe,e0dd) -\n",
    ),
    ("nothing-matches", "(0010,0010) PN [Bach*]\n(0010,0020) LO []\n"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seldinger_and_wlmscpfs_answer_the_same_queries_alike() {
    let examples = dcmtk_examples();
    for db in engines().await {
        let store = &db.store;
        let engine = format!("{:?}", db.engine());
        department(store).await;
        let port = listener(store).await;
        let work = tempfile::tempdir().expect("dir");

        // Seldinger's items, fetched whole by findscu, become wlmscpfs's worklist files.
        let items = common::fetch_items(port, work.path(), None);
        assert_eq!(items.len(), 6, "{engine}");
        let reference = common::Wlmscpfs::serving(&items, work.path()).await;
        let reference_port = reference.port;

        let mut queries: Vec<(String, PathBuf)> = Vec::new();
        let mut offis: Vec<PathBuf> = std::fs::read_dir(examples.join("wlistqry"))
            .expect("examples")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "dump"))
            .collect();
        offis.sort();
        for dump in offis {
            let name = dump
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let file = work.path().join(format!("{name}.dcm"));
            dump2dcm(&dump, &file);
            queries.push((name, file));
        }
        for (name, text) in DEPARTMENT_QUERIES {
            let dump = work.path().join(format!("{name}.dump"));
            std::fs::write(&dump, text).expect("dump");
            let file = work.path().join(format!("{name}.dcm"));
            dump2dcm(&dump, &file);
            queries.push((name.to_string(), file));
        }
        let mut matched = 0;
        for (name, query) in &queries {
            let ours = work.path().join("ours").join(name);
            let theirs = work.path().join("theirs").join(name);
            let our_log = findscu(port, AE_TITLE, query, &ours).await;
            let their_log = findscu(reference_port, AE_TITLE, query, &theirs).await;
            let (ours, theirs) = (answers(&ours), answers(&theirs));
            assert_eq!(
                ours, theirs,
                "{engine}: query {name}: Seldinger (left) and wlmscpfs (right) differ\nSeldinger: {our_log}\nwlmscpfs: {their_log}"
            );
            matched += ours.len();
        }
        assert!(
            matched > 20,
            "{engine}: the queries matched {matched} items in all"
        );
    }
}

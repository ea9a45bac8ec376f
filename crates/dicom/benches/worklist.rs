//! Modality Worklist C-FIND latency, beside dcmtk's `wlmscpfs` in the same run.
//!
//! `cargo bench -p seldinger-dicom --bench worklist [-- CASES [QUERIES]]` books CASES cases
//! (default 3,000: ten a day over 300 days in three rooms; 150,000 is a 10-year department's)
//! on SQLite — and on PostgreSQL too when `SELDINGER_TEST_POSTGRES_URL` is set — starts the
//! listener, fetches one room's day from it with findscu and serves those same items from
//! `wlmscpfs`, then sends the room's day query QUERIES times (default 300) to each, one
//! association per query as a modality does, from one Rust client (dicom-ul). Prints p50 and
//! p99 per server and the ratio.

use chrono::{Duration as Days, TimeZone, Utc};
use dicom_core::value::DataSetSequence;
use dicom_core::{dicom_value, DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::Pdu;
use seldinger_domain::DicomModality;
use seldinger_store::testing::{self, records};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::{key, room, AE_TITLE};

/// What an angio system asks every morning: its day, with what it shows the radiographer.
fn room_day_query() -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        key(tags::ACCESSION_NUMBER, VR::SH, ""),
        key(tags::PATIENT_NAME, VR::PN, ""),
        key(tags::PATIENT_ID, VR::LO, ""),
        key(tags::PATIENT_BIRTH_DATE, VR::DA, ""),
        key(tags::PATIENT_SEX, VR::CS, ""),
        // Angio systems show these to the radiographer: each costs reads per case.
        key(tags::MEDICAL_ALERTS, VR::LO, ""),
        key(tags::REQUESTING_PHYSICIAN, VR::PN, ""),
        key(tags::STUDY_INSTANCE_UID, VR::UI, ""),
        key(tags::REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, ""),
        key(tags::REQUESTED_PROCEDURE_ID, VR::SH, ""),
        DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![InMemDicomObject::from_element_iter([
                key(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, "ANGIO1"),
                key(
                    tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
                    VR::DA,
                    "20310610",
                ),
                key(tags::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, ""),
                key(tags::MODALITY, VR::CS, ""),
                key(tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, ""),
                key(tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, VR::LO, ""),
            ])]),
        ),
    ])
}

/// One query on its own association; the number of matches.
async fn find(port: u16, query: &InMemDicomObject) -> usize {
    let ts = dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let command_ts = dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut association = ClientAssociationOptions::new()
        .with_presentation_context(
            uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND,
            vec![uids::EXPLICIT_VR_LITTLE_ENDIAN],
        )
        .calling_ae_title("ANGIO1")
        .called_ae_title(AE_TITLE)
        .establish_async(("127.0.0.1", port))
        .await
        .expect("association");
    let context = association.presentation_contexts()[0].id;
    let command = InMemDicomObject::command_from_element_iter([
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            dicom_value!(Str, uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, dicom_value!(U16, [0x0020])),
        DataElement::new(tags::MESSAGE_ID, VR::US, dicom_value!(U16, [1])),
        DataElement::new(tags::PRIORITY, VR::US, dicom_value!(U16, [0])),
        DataElement::new(tags::COMMAND_DATA_SET_TYPE, VR::US, dicom_value!(U16, [1])),
    ]);
    let (mut command_bytes, mut data) = (Vec::new(), Vec::new());
    command
        .write_dataset_with_ts(&mut command_bytes, &command_ts)
        .expect("command");
    query.write_dataset_with_ts(&mut data, &ts).expect("query");
    association
        .send(&Pdu::PData {
            data: vec![
                PDataValue {
                    presentation_context_id: context,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: command_bytes,
                },
                PDataValue {
                    presentation_context_id: context,
                    value_type: PDataValueType::Data,
                    is_last: true,
                    data,
                },
            ],
        })
        .await
        .expect("send");
    let mut matches = 0;
    loop {
        let Pdu::PData { data } = association.receive().await.expect("response") else {
            panic!("not a P-DATA");
        };
        for value in data {
            if value.value_type != PDataValueType::Command {
                continue;
            }
            let rsp = InMemDicomObject::read_dataset_with_ts(&value.data[..], &command_ts)
                .expect("response command");
            let status = rsp
                .element(tags::STATUS)
                .ok()
                .and_then(|e| e.uint16().ok())
                .expect("status");
            match status {
                0xFF00 | 0xFF01 => matches += 1,
                0x0000 => {
                    let _ = association.release().await;
                    return matches;
                }
                other => panic!("status {other:04X}"),
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

async fn timings(port: u16, queries: usize) -> (Duration, Duration, usize) {
    let query = room_day_query();
    let matches = find(port, &query).await; // warm
    let mut took = Vec::with_capacity(queries);
    for _ in 0..queries {
        let start = Instant::now();
        let found = find(port, &query).await;
        took.push(start.elapsed());
        assert_eq!(found, matches, "the same answer each time");
    }
    took.sort();
    (percentile(&took, 0.5), percentile(&took, 0.99), matches)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(db: testing::TestDatabase, cases: usize, queries: usize) {
    let store = &db.store;
    let engine = format!("{:?}", db.engine());
    for (n, (id, title)) in [
        ("angio-1", "ANGIO1"),
        ("angio-2", "ANGIO2"),
        ("ct-1", "CTIR1"),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .put_room(&room(id, title, DicomModality::Xa), n as i64)
            .await
            .expect("room");
    }
    let first = Utc
        .with_ymd_and_hms(2031, 6, 10, 7, 0, 0)
        .single()
        .expect("time")
        - Days::days((cases / 10 / 2) as i64);
    let booking = Instant::now();
    let rooms = ["angio-1", "angio-2", "ct-1"];
    // The same writes as the application's, committed a thousand cases at a time: a 10-year
    // department's bookings load in minutes.
    for chunk in (0..cases).collect::<Vec<_>>().chunks(1000) {
        let batch = store.begin_batch().await.expect("batch");
        for &i in chunk {
            let (day, slot) = (i / 10, i % 10);
            let start = first + Days::days(day as i64) + Days::minutes(50 * slot as i64);
            let patient =
                records::patient_named(batch.store(), &format!("B{i:07}"), "Bench", start).await;
            records::booked_case_for(batch.store(), patient, rooms[i % 3], start, 45).await;
        }
        batch.commit().await.expect("committed");
    }
    println!(
        "{engine}: {cases} cases booked in {:.0} s",
        booking.elapsed().as_secs_f64()
    );
    let port = common::listener(store).await;
    // The same day's items for wlmscpfs, as findscu fetches them whole from Seldinger.
    let work = tempfile::tempdir().expect("dir");
    let items = common::fetch_items(
        port,
        work.path(),
        Some(("ANGIO1", "20310610")),
        &["ANGIO1".to_string()],
    );
    let reference = common::Wlmscpfs::serving(&items, work.path()).await;

    let (p50, p99, matches) = timings(port, queries).await;
    let (ref_p50, ref_p99, ref_matches) = timings(reference.port, queries).await;
    drop(reference);
    println!(
        "{engine}: a room's day ({matches} steps; wlmscpfs {ref_matches}) over {cases} booked cases, {queries} queries each, one association per query"
    );
    println!(
        "  Seldinger  p50 {:6.2} ms  p99 {:6.2} ms",
        ms(p50),
        ms(p99)
    );
    println!(
        "  wlmscpfs   p50 {:6.2} ms  p99 {:6.2} ms   (Seldinger/wlmscpfs: p50 {:.2}, p99 {:.2})",
        ms(ref_p50),
        ms(ref_p99),
        ms(p50) / ms(ref_p50),
        ms(p99) / ms(ref_p99)
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cases = args.first().copied().unwrap_or(3_000);
    let queries = args.get(1).copied().unwrap_or(300);
    run(testing::sqlite().await, cases, queries).await;
    if let Some(db) = testing::postgres().await {
        run(db, cases, queries).await;
    }
}

//! Dose report ingest throughput, beside pydicom in the same run.
//!
//! `cargo bench -p seldinger-dicom --bench ingest [-- FILES [EVENTS]]` writes FILES synthetic
//! RDSRs (default 400, mixed single-plane, biplane and CT, with about EVENTS irradiation events
//! each, default 150) to a temporary folder, then times on the same files:
//! - Seldinger parsing only (header check + dicom-rs + the TID 10001/10011 reading);
//! - Seldinger's whole ingest into a fresh SQLite store (parse, store, link, assess);
//! - pydicom 3 `dcmread` + a walk of the content tree reading every numeric value
//!   (`pip install pydicom`), timed inside Python.
//!
//! Prints files/s and MB/s for each and the ratios. Each is run three times; the best is kept,
//! as this machine is shared and noisy.

use chrono::{TimeZone, Utc};
use dicom_dictionary_std::uids;
use seldinger_dicom::fixtures::{ct_content, event, plane, report, write};
use seldinger_dicom::ingest::{Ingest, Ingested};
use seldinger_domain::safety::SafetyReference;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn make_files(dir: &Path, count: usize, events: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let sop = format!("2.25.{}", 100_000 + i);
            let name = format!("{i:05}.dcm");
            let obj = match i % 4 {
                // CT reports carry fewer, larger acquisitions.
                3 => {
                    let acquisitions: Vec<(String, String, String)> = (0..events / 10 + 1)
                        .map(|a| (format!("{sop}.{a}"), "12.5".into(), "410.2".into()))
                        .collect();
                    let refs: Vec<(&str, &str, &str)> = acquisitions
                        .iter()
                        .map(|(u, c, d)| (u.as_str(), c.as_str(), d.as_str()))
                        .collect();
                    report(
                        uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
                        &sop,
                        ct_content("812.5", &refs),
                    )
                }
                n => {
                    let mut content =
                        vec![plane(("0.0123", "Gy.m2"), ("0.81", "Gy"), ("754", "s"))];
                    if n == 1 {
                        content.push(plane(("2500", "cGy.cm2"), ("210", "mGy"), ("4", "min")));
                    }
                    for e in 0..events {
                        let plane = if n == 1 && e % 2 == 1 {
                            ("113621", "Plane B")
                        } else {
                            ("113620", "Plane A")
                        };
                        content.push(event(
                            &format!("{sop}.{e}"),
                            plane,
                            ("150", "dGy.cm2"),
                            ("12", "mGy"),
                        ));
                    }
                    report(uids::X_RAY_RADIATION_DOSE_SR_STORAGE, &sop, content)
                }
            };
            write(dir, &name, obj)
        })
        .collect()
}

struct Run {
    seconds: f64,
    files: usize,
    bytes: u64,
}

impl Run {
    fn line(&self, what: &str) -> String {
        format!(
            "{what:<44} {:>9.1} files/s {:>8.2} MB/s  ({} files, {:.3} s)",
            self.files as f64 / self.seconds,
            self.bytes as f64 / 1e6 / self.seconds,
            self.files,
            self.seconds
        )
    }
}

fn best(runs: impl Iterator<Item = Run>) -> Run {
    runs.min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .expect("at least one run")
}

fn parse_only(files: &[PathBuf], bytes: u64) -> Run {
    let start = Instant::now();
    for f in files {
        let data = std::fs::read(f).expect("read");
        seldinger_dicom::parse_bytes(&data).expect("synthetic report parses");
    }
    Run {
        seconds: start.elapsed().as_secs_f64(),
        files: files.len(),
        bytes,
    }
}

async fn ingest_all(files: &[PathBuf], bytes: u64, reference: &SafetyReference) -> Run {
    let db = seldinger_store::testing::sqlite().await;
    let ingest = Ingest {
        store: &db.store,
        reference,
        station: None,
    };
    let now = Utc
        .with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("valid");
    let start = Instant::now();
    for f in files {
        let data = std::fs::read(f).expect("read");
        let outcome = ingest
            .file_bytes(&data, &f.display().to_string(), now)
            .await
            .expect("stored");
        assert!(matches!(outcome, Ingested::Stored { .. }), "{outcome:?}");
    }
    Run {
        seconds: start.elapsed().as_secs_f64(),
        files: files.len(),
        bytes,
    }
}

fn pydicom(files: &[PathBuf]) -> Option<Run> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/pydicom_walk.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .args(files)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "pydicom peer did not run (pip install pydicom): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    Some(Run {
        seconds: result["seconds"].as_f64()?,
        files: result["files"].as_u64()? as usize,
        bytes: result["bytes"].as_u64()?,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes --bench; numbers are the only arguments read.
    let numbers: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let count = numbers.first().copied().unwrap_or(400);
    let events = numbers.get(1).copied().unwrap_or(150);
    let dir = tempfile::tempdir().expect("dir");
    let files = make_files(dir.path(), count, events);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let reference = SafetyReference::parse(
        include_str!("../../../catalog/safety-thresholds.toml"),
        "safety-thresholds.toml",
    )
    .expect("reference");
    println!(
        "{count} synthetic RDSRs, ~{events} events each, {:.1} MB in all (mean {:.0} kB)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e3 / count as f64
    );
    let parse = best((0..3).map(|_| parse_only(&files, bytes)));
    let mut ingest = Vec::new();
    for _ in 0..3 {
        ingest.push(ingest_all(&files, bytes, &reference).await);
    }
    let ingest = best(ingest.into_iter());
    let peer = (0..3)
        .filter_map(|_| pydicom(&files))
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds));
    println!(
        "{}",
        parse.line("seldinger: parse (guard + dicom-rs + TID read)")
    );
    println!(
        "{}",
        ingest.line("seldinger: ingest into SQLite (+ link, assess)")
    );
    match peer {
        Some(peer) => {
            println!("{}", peer.line("pydicom 3: dcmread + walk content tree"));
            println!(
                "ratio (files/s, higher is faster than pydicom): parse {:.2}x, ingest {:.2}x",
                peer.seconds / parse.seconds,
                peer.seconds / ingest.seconds
            );
        }
        None => println!("pydicom: not available (pip install pydicom), no ratio"),
    }
}

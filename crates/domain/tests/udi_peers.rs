//! Device labels read as a ward's scanner reads them: zint (an independent barcode encoder) draws
//! each label as a real GS1-128 or HIBC Code 128 symbol — computing GS1's and HIBC's check
//! characters itself — and zbar (an independent barcode reader) reads the image back; Seldinger
//! parses what the reader sent. The GS1 labels are also parsed by biip (an independent GS1
//! parser, PyPI), field by field. Peers are installed by scripts/test; with
//! SELDINGER_REQUIRE_UDI_PEERS=1 their absence fails the test.

use chrono::NaiveDate;
use seldinger_domain::udi::{self, Issuer};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn required() -> bool {
    std::env::var("SELDINGER_REQUIRE_UDI_PEERS").is_ok_and(|v| v == "1")
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Draws `data` as a `symbology` barcode with zint and reads it back with zbar: what a scanner sends.
fn scanned(symbology: &str, data: &str, dir: &Path, n: usize) -> String {
    let image = dir.join(format!("label-{n}.png"));
    let mut zint = Command::new("zint");
    zint.arg("-b").arg(symbology);
    if symbology == "GS1_128" {
        zint.arg("--gs1");
    }
    let drawn = zint
        .arg("-d")
        .arg(data)
        .arg("-o")
        .arg(&image)
        .output()
        .expect("run zint");
    // zint checks GS1's check digits and HIBC's data itself: a warning means a bad fixture.
    let said = String::from_utf8_lossy(&drawn.stderr);
    assert!(
        drawn.status.success() && !said.contains("Warning"),
        "zint refused {data}: {said}"
    );
    let read = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&image)
        .output()
        .expect("run zbarimg");
    assert!(read.status.success(), "zbar could not read {data}");
    String::from_utf8(read.stdout)
        .expect("text")
        .trim_end_matches('\n')
        .to_string()
}

fn biip(labels: &[String]) -> Option<Vec<serde_json::Value>> {
    let python = std::env::var("SELDINGER_UDI_PYTHON").ok()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/udi_biip.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run biip");
    let mut input = child.stdin.take().expect("stdin");
    for label in labels {
        writeln!(input, "{}", serde_json::Value::from(label.as_str())).expect("write");
    }
    drop(input);
    let output = child.wait_with_output().expect("biip output");
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect(),
    )
}

#[test]
fn labels_drawn_by_zint_and_read_by_zbar_are_read_alike_by_seldinger_and_biip() {
    if !have("zint") || !have("zbarimg") {
        assert!(
            !required(),
            "zint and zbarimg are required (scripts/test installs them)"
        );
        eprintln!("skipped: zint or zbarimg missing");
        return;
    }
    // Near enough to any real today for these labels' years to fall in one century either way.
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
    let dir = std::env::temp_dir().join(format!("seldinger-udi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);

    // GS1: zint's bracketed input; each label as an IVC filter, a port or a drain might carry it.
    let gs1 = [
        "[01]00884838079489[17]290630[10]LOT-4471[21]SN000123",
        "[01]04035479123451[11]250101[17]300100[10]A1B2C3",
        "[01]00380652012348[21]99887766",
        "[01]10614141543219[17]281231[10]x/y.z-1[240]REF-7F-2",
        "[01]00850006200016[10]2025-07A[17]270415",
    ];
    let mut read_gs1 = Vec::new();
    for (n, data) in gs1.iter().enumerate() {
        let text = scanned("GS1_128", data, &dir, n);
        assert!(
            !text.starts_with('('),
            "a scanner sends the raw element string: {text}"
        );
        let ours = udi::parse(&text, today).unwrap_or_else(|e| panic!("{data}: {e}"));
        assert_eq!(ours.issuer, Issuer::Gs1);
        assert_eq!(
            ours.carrier,
            data.replace('[', "(").replace(']', ")"),
            "the label's human-readable form"
        );
        assert_eq!(
            udi::parse(&ours.carrier, today).as_ref(),
            Ok(&ours),
            "HRI reads alike"
        );
        read_gs1.push((text, ours));
    }
    let texts: Vec<String> = read_gs1.iter().map(|(t, _)| t.clone()).collect();
    match biip(&texts) {
        Some(answers) => {
            assert_eq!(answers.len(), read_gs1.len());
            for ((text, ours), theirs) in read_gs1.iter().zip(&answers) {
                assert!(
                    theirs.get("error").is_none(),
                    "biip refused {text:?}: {theirs}"
                );
                assert_eq!(theirs["hri"], ours.carrier.as_str(), "{text:?}");
                assert_eq!(theirs["gtin"], ours.device_identifier.as_str());
                assert_eq!(theirs["lot"].as_str(), ours.lot.as_deref(), "{text:?}");
                assert_eq!(
                    theirs["serial"].as_str(),
                    ours.serial.as_deref(),
                    "{text:?}"
                );
                let date = |d: Option<NaiveDate>| d.map(|d| d.to_string());
                assert_eq!(theirs["expiry"].as_str(), date(ours.expiry).as_deref());
                assert_eq!(
                    theirs["manufactured"].as_str(),
                    date(ours.manufactured).as_deref()
                );
            }
        }
        None => assert!(!required(), "SELDINGER_UDI_PYTHON (biip) is not set"),
    }
    // Day 00 is the month's last day, as biip also reads it.
    assert_eq!(read_gs1[1].1.expiry, day(2030, 1, 31));

    // HIBC: zint adds the leading + and the modulo-43 check character.
    let hibc = [
        ("A123BJC5D6E71", "A123BJC5D6E71", None, None, None),
        (
            "A99912345B1/$$3290615LOT42",
            "A99912345B1",
            Some("LOT42"),
            None,
            day(2029, 6, 15),
        ),
        (
            "H123ABC01230/$$+0728SN0099",
            "H123ABC01230",
            None,
            Some("SN0099"),
            day(2028, 7, 31),
        ),
        (
            "E0121CAT7734/$27180X3H",
            "E0121CAT7734",
            Some("27180X3H"),
            None,
            None,
        ),
        (
            "M8761015300/$$8053280101QX12",
            "M8761015300",
            Some("QX12"),
            None,
            day(2028, 1, 1),
        ),
        (
            "B7770IVCF09A1/$$+529045SF02/16D20250110",
            "B7770IVCF09A1",
            None,
            Some("SF02"),
            day(2029, 2, 14),
        ),
    ];
    for (n, (data, device, lot, serial, expiry)) in hibc.iter().enumerate() {
        let text = scanned("HIBC_128", data, &dir, 100 + n);
        let ours = udi::parse(&text, today).unwrap_or_else(|e| panic!("{data} ({text}): {e}"));
        assert_eq!(ours.issuer, Issuer::Hibcc);
        assert_eq!(&ours.device_identifier, device, "{text}");
        assert_eq!(ours.lot.as_deref(), *lot, "{text}");
        assert_eq!(ours.serial.as_deref(), *serial, "{text}");
        assert_eq!(ours.expiry, *expiry, "{text}");
        // One character misread is caught by the check character zint computed.
        let mut misread: Vec<char> = text.chars().collect();
        misread[3] = if misread[3] == '9' { '8' } else { '9' };
        let misread: String = misread.into_iter().collect();
        let refused = udi::parse(&misread, today).expect_err("a misread label");
        assert!(refused.contains("check character"), "{misread}: {refused}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

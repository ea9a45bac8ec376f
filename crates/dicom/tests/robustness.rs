//! Property test in place of a fuzzer (cargo-fuzz needs a nightly toolchain; this runs on stable
//! in every CI run): whatever bytes arrive, reading returns a report or an error, never a panic.

use dicom_dictionary_std::uids;
use proptest::prelude::*;
use seldinger_dicom::fixtures::{event, plane, report, write};
use seldinger_dicom::parse_file;

fn valid_report_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("dir");
    let path = write(
        dir.path(),
        "seed.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.42",
            vec![
                plane(("0.0123", "Gy.m2"), ("0.812", "Gy"), ("754", "s")),
                event(
                    "2.25.42.1",
                    ("113620", "Plane A"),
                    ("150", "dGy.cm2"),
                    ("12", "mGy"),
                ),
            ],
        ),
    );
    std::fs::read(path).expect("read seed")
}

fn read_bytes(bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("case.dcm");
    std::fs::write(&path, bytes).expect("write");
    let _ = parse_file(&path);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_bytes(&bytes);
    }

}

proptest! {
    // Rejection is cheap since the header walk in `guard` (docs/dose-plan.md, "robustness").
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn corrupted_reports_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16), cut in any::<prop::sample::Index>()) {
        let mut bytes = valid_report_bytes();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep.max(132));
        read_bytes(&bytes);
    }
}

/// A length forged to 4 GiB is refused by the header walk, naming the element, before dicom-rs
/// would zero-fill a buffer that size.
#[test]
fn a_forged_length_is_refused_with_the_element_named() {
    let mut bytes = valid_report_bytes();
    // The first data set element after the meta group: (0008,0016) UI with a 2-byte length.
    let meta_len = u32::from_le_bytes([bytes[140], bytes[141], bytes[142], bytes[143]]) as usize;
    let first = 144 + meta_len;
    assert_eq!(&bytes[first + 4..first + 6], b"UI");
    // Turn it into an OB header claiming 0xFFFFFFF0 bytes.
    bytes.splice(
        first + 4..first + 8,
        [b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF],
    );
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("forged.dcm");
    std::fs::write(&path, &bytes).expect("write");
    let error = parse_file(&path).expect_err("refused").to_string();
    assert!(
        error.contains("(0008,0016) claims 4294967280 bytes"),
        "{error}"
    );
}

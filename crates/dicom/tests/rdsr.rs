//! RDSR reading, against files written by the fixtures module with dicom-rs (synthetic; no real patient data).

use dicom_dictionary_std::uids;
use seldinger_dicom::fixtures::{container, num, plane, report, write};
use seldinger_dicom::{parse_file, RdsrError};
use seldinger_domain::dose::{Gray, GrayMetreSquared, Seconds};

#[test]
fn reads_a_single_plane_report_in_si_units() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write(
        dir.path(),
        "single.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.1",
            vec![plane(("0.0123", "Gy.m2"), ("0.812", "Gy"), ("754", "s"))],
        ),
    );
    let r = parse_file(&path).expect("parsed");
    assert_eq!(r.accession_number.as_deref(), Some("ACC0001"));
    assert_eq!(r.manufacturer.as_deref(), Some("Synthetic Angio Co"));
    assert_eq!(r.planes.len(), 1);
    assert_eq!(
        r.planes[0].dose_area_product_total,
        Some(GrayMetreSquared(0.0123))
    );
    assert_eq!(r.planes[0].total_radiographic_frames, Some(120));
    let totals = r.totals();
    assert_eq!(totals.reference_air_kerma, Some(Gray(0.812)));
    assert_eq!(totals.fluoroscopy_time, Some(Seconds(754.0)));
    assert!(r.missing.is_empty(), "{:?}", r.missing);
}

#[test]
fn sums_biplane_totals_and_converts_vendor_units() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write(
        dir.path(),
        "biplane.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.2",
            vec![
                plane(("3000", "Gy.cm2"), ("2500", "mGy"), ("30", "min")),
                plane(("2000", "Gy.cm2"), ("1.5", "Gy"), ("600", "s")),
            ],
        ),
    );
    let r = parse_file(&path).expect("parsed");
    assert_eq!(r.planes.len(), 2);
    assert_eq!(
        r.planes[0].units_in_file[0],
        ("113722".to_string(), "Gy.cm2".to_string()),
        "the file's unit is kept"
    );
    let totals = r.totals();
    assert_eq!(
        totals.kerma_area_product,
        Some(GrayMetreSquared(0.5)),
        "5000 Gy·cm² = 0.5 Gy·m²"
    );
    assert_eq!(totals.reference_air_kerma, Some(Gray(4.0)));
    assert_eq!(totals.fluoroscopy_time, Some(Seconds(2400.0)));
}

#[test]
fn records_what_is_missing_or_unreadable_without_guessing() {
    let dir = tempfile::tempdir().expect("dir");
    let odd = container(
        "113702",
        "Accumulated X-Ray Dose Data",
        vec![
            num("113722", "Dose Area Product Total", "12", "furlong"),
            num("113730", "Total Fluoro Time", "60", "s"),
        ],
    );
    let path = write(
        dir.path(),
        "odd.dcm",
        report(uids::X_RAY_RADIATION_DOSE_SR_STORAGE, "2.25.3", vec![odd]),
    );
    let r = parse_file(&path).expect("parsed");
    assert_eq!(r.planes[0].dose_area_product_total, None);
    assert!(
        r.missing
            .contains(&"plane 1: 113722 unit 'furlong' not understood".to_string()),
        "{:?}",
        r.missing
    );
    assert!(
        r.missing
            .contains(&"plane 1: 113725 not reported".to_string()),
        "{:?}",
        r.missing
    );
    assert_eq!(
        r.totals().reference_air_kerma,
        None,
        "no guess for what was not given"
    );

    let empty = write(
        dir.path(),
        "empty.dcm",
        report(uids::X_RAY_RADIATION_DOSE_SR_STORAGE, "2.25.4", vec![]),
    );
    let r = parse_file(&empty).expect("parsed");
    assert_eq!(r.missing, ["Accumulated X-Ray Dose Data (113702)"]);
}

#[test]
fn refuses_what_is_not_a_dose_report() {
    let dir = tempfile::tempdir().expect("dir");
    let other_sr = write(
        dir.path(),
        "other.dcm",
        report(uids::COMPREHENSIVE_SR_STORAGE, "2.25.5", vec![]),
    );
    assert!(matches!(
        parse_file(&other_sr),
        Err(RdsrError::NotDoseReport(_))
    ));
    let enhanced = write(
        dir.path(),
        "enhanced.dcm",
        report(
            uids::ENHANCED_SR_STORAGE,
            "2.25.6",
            vec![plane(("0.01", "Gy.m2"), ("0.1", "Gy"), ("10", "s"))],
        ),
    );
    assert_eq!(
        parse_file(&enhanced)
            .expect("enhanced SR with dose content")
            .planes
            .len(),
        1
    );
    let broken = dir.path().join("broken.dcm");
    std::fs::write(&broken, b"this is not DICOM").expect("write");
    assert!(matches!(parse_file(&broken), Err(RdsrError::NotDicom(_))));
    let truncated = dir.path().join("truncated.dcm");
    let bytes = std::fs::read(&enhanced).expect("read");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    assert!(
        parse_file(&truncated).is_err(),
        "a truncated file is an error, not a panic"
    );
}

#[test]
fn reads_events_with_their_plane_and_units() {
    use seldinger_dicom::fixtures::event;
    let dir = tempfile::tempdir().expect("dir");
    let path = write(
        dir.path(),
        "events.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.8",
            vec![
                plane(("0.0123", "Gy.m2"), ("0.812", "Gy"), ("754", "s")),
                event(
                    "2.25.8.1",
                    ("113620", "Plane A"),
                    ("150", "dGy.cm2"),
                    ("12", "mGy"),
                ),
                event(
                    "2.25.8.2",
                    ("113621", "Plane B"),
                    ("0.0005", "Gy.m2"),
                    ("0.004", "Gy"),
                ),
            ],
        ),
    );
    let r = parse_file(&path).expect("parsed");
    assert_eq!(r.events.len(), 2);
    let a = &r.events[0];
    assert_eq!(a.uid.as_deref(), Some("2.25.8.1"));
    assert_eq!(a.plane, Some(("113620".to_string(), "Plane A".to_string())));
    assert_eq!(a.event_type.as_ref().map(|t| t.0.as_str()), Some("113611"));
    assert_eq!(
        a.dose_area_product,
        Some(GrayMetreSquared(150.0 * 1e-5)),
        "150 dGy·cm² in Gy·m²"
    );
    assert_eq!(a.dose_rp, Some(Gray(0.012)));
    assert!(
        a.exposure_time
            .is_some_and(|t| (t.0 - 0.0065).abs() < 1e-12),
        "6.5 ms: {:?}",
        a.exposure_time
    );
    assert_eq!(
        (a.kvp, a.tube_current_ma, a.pulses),
        (Some(78.0), Some(412.0), Some(30))
    );
    assert!(!r.totals_from_events, "accumulated data was given");
    assert_eq!(
        r.totals().reference_air_kerma,
        Some(Gray(0.812)),
        "totals come from TID 10002, not events"
    );
}

#[test]
fn derives_totals_from_events_when_only_events_are_given_and_says_so() {
    use seldinger_dicom::fixtures::event;
    let dir = tempfile::tempdir().expect("dir");
    let path = write(
        dir.path(),
        "events-only.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.9",
            vec![
                event(
                    "2.25.9.1",
                    ("113622", "Single Plane"),
                    ("0.25", "Gy.m2"),
                    ("1", "Gy"),
                ),
                event(
                    "2.25.9.2",
                    ("113622", "Single Plane"),
                    ("0.25", "Gy.m2"),
                    ("2", "Gy"),
                ),
            ],
        ),
    );
    let r = parse_file(&path).expect("parsed");
    assert!(r.totals_from_events);
    assert_eq!(r.missing, ["Accumulated X-Ray Dose Data (113702)"]);
    let totals = r.totals();
    assert_eq!(totals.kerma_area_product, Some(GrayMetreSquared(0.5)));
    assert_eq!(totals.reference_air_kerma, Some(Gray(3.0)));
    assert_eq!(
        totals.fluoroscopy_time, None,
        "not derivable from these events"
    );
}

#[test]
fn reads_a_ct_dose_report() {
    use seldinger_dicom::fixtures::ct_content;
    use seldinger_domain::dose::GrayMetre;
    let dir = tempfile::tempdir().expect("dir");
    let path = write(
        dir.path(),
        "ct.dcm",
        report(
            uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
            "2.25.10",
            ct_content(
                "812.5",
                &[("2.25.10.1", "12.3", "400"), ("2.25.10.2", "10", "412.5")],
            ),
        ),
    );
    let r = parse_file(&path).expect("parsed");
    let ct = r.ct.as_ref().expect("CT content");
    assert_eq!(
        ct.dlp_total
            .map(GrayMetre::milligray_centimetres)
            .map(|v| (v * 1000.0).round() / 1000.0),
        Some(812.5)
    );
    assert_eq!(ct.acquisitions.len(), 2);
    assert_eq!(ct.acquisitions[0].uid.as_deref(), Some("2.25.10.1"));
    assert!(ct.acquisitions[0]
        .mean_ctdivol
        .is_some_and(|g| (g.0 - 0.0123).abs() < 1e-12));
    assert!(ct.acquisitions[1]
        .dlp
        .is_some_and(|d| (d.milligray_centimetres() - 412.5).abs() < 1e-9));
    assert!(
        r.planes.is_empty() && r.missing.is_empty(),
        "{:?}",
        r.missing
    );
}

#[test]
fn names_the_operator_who_authorized_the_irradiation() {
    use seldinger_dicom::fixtures::{container, person};
    let dir = tempfile::tempdir().expect("dir");
    let event = container(
        "113706",
        "Irradiation Event X-Ray Data",
        vec![
            person("Radiographer^Rita", ("113851", "Irradiation Administering")),
            person("Physician^Paul", ("113850", "Irradiation Authorizing")),
        ],
    );
    let path = write(
        dir.path(),
        "people.dcm",
        report(
            "1.2.840.10008.5.1.4.1.1.88.67",
            "2.25.77",
            vec![
                plane(("0.001", "Gy.m2"), ("0.1", "Gy"), ("60", "s")),
                event.clone(),
                event,
            ],
        ),
    );
    let report = seldinger_dicom::parse_file(&path).expect("parsed");
    assert_eq!(report.participants.len(), 2, "each person once");
    assert_eq!(report.operator(), Some("Physician Paul"));
}

#[test]
fn reads_total_acquisition_time_in_the_unit_given() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write(
        dir.path(),
        "acq.dcm",
        report(
            "1.2.840.10008.5.1.4.1.1.88.67",
            "2.25.78",
            vec![container(
                "113702",
                "Accumulated X-Ray Dose Data",
                vec![
                    num("113725", "Dose (RP) Total", "0.4", "Gy"),
                    num("113855", "Total Acquisition Time", "1.5", "min"),
                ],
            )],
        ),
    );
    let report = seldinger_dicom::parse_file(&path).expect("parsed");
    let acquisition = report.planes[0].total_acquisition_time.expect("read");
    assert!((acquisition.0 - 90.0).abs() < 1e-9, "{acquisition:?}");
}

#[test]
fn private_elements_are_carried_without_harm() {
    use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
    let dir = tempfile::tempdir().expect("dir");
    let mut obj = report(
        "1.2.840.10008.5.1.4.1.1.88.67",
        "2.25.79",
        vec![plane(("0.001", "Gy.m2"), ("0.1", "Gy"), ("60", "s"))],
    );
    // A vendor's private block: creator, then opaque bytes (as angio systems add).
    obj.put(DataElement::new(
        Tag(0x0019, 0x0010),
        VR::LO,
        "SYNTH VENDOR 1.0",
    ));
    obj.put(DataElement::new(
        Tag(0x0019, 0x1001),
        VR::OB,
        PrimitiveValue::from(vec![0xde_u8, 0xad, 0xbe, 0xef]),
    ));
    let path = write(dir.path(), "private.dcm", obj);
    let report = seldinger_dicom::parse_file(&path).expect("parsed");
    assert_eq!(report.totals().reference_air_kerma.map(|g| g.0), Some(0.1));
}

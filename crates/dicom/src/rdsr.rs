//! Reads an X-Ray Radiation Dose SR (PS3.3 A.35.8; TID 10001/10002) into a [`DoseReport`].
//!
//! Only concept codes checked against PS3.16 are read (see docs/dose-plan.md). Values are
//! converted to SI units (Gy, Gy·m², s) from whatever UCUM unit the file used — or a vendor
//! spelling of one listed in the unit table ([`crate::units`]) — and the file's unit is kept as
//! written; a value whose unit is not understood is dropped and reported in `missing`, never
//! guessed. Vendors differ: every item is optional, and what was absent is listed.

use crate::guard;
use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::mem::InMemDicomObject;
use seldinger_domain::dose::{DoseTotals, Gray, GrayMetre, GrayMetreSquared, Seconds};
use serde::Serialize;
use std::path::Path;

/// DCM concept codes read here, each verified against PS3.16 or the HL7 dose IG (CID 10050).
pub mod codes {
    pub const ACCUMULATED_XRAY_DOSE_DATA: &str = "113702";
    pub const DOSE_AREA_PRODUCT_TOTAL: &str = "113722";
    pub const FLUORO_DOSE_AREA_PRODUCT_TOTAL: &str = "113726";
    pub const ACQUISITION_DOSE_AREA_PRODUCT_TOTAL: &str = "113727";
    pub const DOSE_RP_TOTAL: &str = "113725";
    pub const FLUORO_DOSE_RP_TOTAL: &str = "113728";
    pub const ACQUISITION_DOSE_RP_TOTAL: &str = "113729";
    pub const TOTAL_FLUORO_TIME: &str = "113730";
    pub const TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES: &str = "113731";
    pub const TOTAL_ACQUISITION_TIME: &str = "113855";
    // Checked in pydicom's concept dictionary, generated from PS3.16 (docs/dose-plan.md).
    pub const IRRADIATION_EVENT_XRAY_DATA: &str = "113706";
    pub const IRRADIATION_EVENT_UID: &str = "113769";
    pub const IRRADIATION_EVENT_TYPE: &str = "113721";
    pub const ACQUISITION_PLANE: &str = "113764";
    pub const DOSE_AREA_PRODUCT: &str = "122130";
    pub const DOSE_RP: &str = "113738";
    pub const KVP: &str = "113733";
    pub const XRAY_TUBE_CURRENT: &str = "113734";
    pub const EXPOSURE_TIME: &str = "113824";
    pub const NUMBER_OF_PULSES: &str = "113768";
    pub const IRRADIATION_DURATION: &str = "113742";
    pub const POSITIONER_PRIMARY_ANGLE: &str = "112011";
    pub const POSITIONER_SECONDARY_ANGLE: &str = "112012";
    pub const CT_ACCUMULATED_DOSE_DATA: &str = "113811";
    pub const CT_DOSE_LENGTH_PRODUCT_TOTAL: &str = "113813";
    pub const CT_ACQUISITION: &str = "113819";
    pub const CT_ACQUISITION_TYPE: &str = "113820";
    pub const MEAN_CTDIVOL: &str = "113830";
    // Person participants of irradiation events (pydicom's PS3.16 dictionary).
    pub const PERSON_NAME: &str = "113870";
    pub const PERSON_ROLE_IN_PROCEDURE: &str = "113875";
    pub const IRRADIATION_AUTHORIZING: &str = "113850";
    pub const IRRADIATION_ADMINISTERING: &str = "113851";
    pub const DLP: &str = "113838";
}

/// SR storage classes that may carry a dose report: the dedicated RDSR class, and Enhanced and
/// Comprehensive SR, which some systems use for the same template.
const SR_CLASSES: &[&str] = &[
    uids::X_RAY_RADIATION_DOSE_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
];

#[derive(Debug, thiserror::Error)]
pub enum RdsrError {
    #[error("not a readable DICOM file: {0}")]
    NotDicom(String),
    #[error("not a radiation dose report: SOP class {0}")]
    NotDoseReport(String),
    #[error("the dose report has no {0}")]
    MissingIdentifier(&'static str),
}

/// One acquisition plane's accumulated dose (TID 10002); biplane systems report two.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccumulatedProjection {
    pub dose_area_product_total: Option<GrayMetreSquared>,
    pub fluoro_dose_area_product_total: Option<GrayMetreSquared>,
    pub acquisition_dose_area_product_total: Option<GrayMetreSquared>,
    pub dose_rp_total: Option<Gray>,
    pub fluoro_dose_rp_total: Option<Gray>,
    pub acquisition_dose_rp_total: Option<Gray>,
    pub total_fluoro_time: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_acquisition_time: Option<Seconds>,
    pub total_radiographic_frames: Option<u32>,
    /// The plane this accumulation belongs to (code value, meaning), when the report says.
    pub plane: Option<(String, String)>,
    /// (concept code, unit as written in the file) for each value read.
    pub units_in_file: Vec<(String, String)>,
}

/// One irradiation event (TID 10003): a single continuous actuation of the exposure switch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IrradiationEvent {
    pub uid: Option<String>,
    /// Code value of the event type (e.g. 113611 stationary acquisition) and its meaning.
    pub event_type: Option<(String, String)>,
    /// Code value of the plane (113620 Plane A, 113621 Plane B, 113622 Single Plane) and meaning.
    pub plane: Option<(String, String)>,
    pub dose_area_product: Option<GrayMetreSquared>,
    pub dose_rp: Option<Gray>,
    pub kvp: Option<f64>,
    /// Milliamperes.
    pub tube_current_ma: Option<f64>,
    pub exposure_time: Option<Seconds>,
    pub irradiation_duration: Option<Seconds>,
    pub pulses: Option<u32>,
    /// Degrees.
    pub primary_angle: Option<f64>,
    pub secondary_angle: Option<f64>,
}

/// One CT acquisition (TID 10013).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CtAcquisition {
    pub uid: Option<String>,
    pub acquisition_type: Option<(String, String)>,
    pub mean_ctdivol: Option<Gray>,
    pub dlp: Option<GrayMetre>,
}

/// A CT radiation dose report's content (TID 10011).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CtDose {
    pub dlp_total: Option<GrayMetre>,
    pub acquisitions: Vec<CtAcquisition>,
    /// (concept code, unit as written in the file), once each: the spelling beside the SI value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units_in_file: Vec<(String, String)>,
}

impl CtDose {
    fn unit_seen(&mut self, concept: &str, unit: &str) {
        let seen = (concept.to_string(), unit.to_string());
        if !self.units_in_file.contains(&seen) {
            self.units_in_file.push(seen);
        }
    }
}

/// A person named in the report, with the role code (113850 authorizing, 113851 administering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Participant {
    pub name: String,
    pub role: Option<(String, String)>,
}

/// What one dose report says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoseReport {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub study_instance_uid: String,
    pub accession_number: Option<String>,
    pub patient_id: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub station_name: Option<String>,
    pub planes: Vec<AccumulatedProjection>,
    pub events: Vec<IrradiationEvent>,
    /// Present for CT dose reports.
    pub ct: Option<CtDose>,
    /// People named in the report (Person Name, 113870), each once, with their role when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<Participant>,
    /// True when the report gave no accumulated totals and they were summed from its events.
    pub totals_from_events: bool,
    /// What the report did not give, or gave in a form that could not be read.
    pub missing: Vec<String>,
}

impl DoseReport {
    /// The operator for statistics: the person who authorized the irradiation (the physician),
    /// else the one who administered it.
    pub fn operator(&self) -> Option<&str> {
        let with_role = |code: &str| {
            self.participants
                .iter()
                .find(|p| p.role.as_ref().is_some_and(|(c, _)| c == code))
        };
        with_role(codes::IRRADIATION_AUTHORIZING)
            .or_else(|| with_role(codes::IRRADIATION_ADMINISTERING))
            .map(|p| p.name.as_str())
    }

    /// Totals over all planes, for the §5 assessment. A measure is present only if every plane
    /// reported it (a partial sum would understate the dose).
    pub fn totals(&self) -> DoseTotals {
        fn sum<T: Copy>(
            planes: &[AccumulatedProjection],
            get: impl Fn(&AccumulatedProjection) -> Option<T>,
            value: impl Fn(T) -> f64,
        ) -> Option<f64> {
            if planes.is_empty() {
                return None;
            }
            planes.iter().map(|p| get(p).map(&value)).sum()
        }
        DoseTotals {
            reference_air_kerma: sum(&self.planes, |p| p.dose_rp_total, |g| g.0).map(Gray),
            peak_skin_dose: None,
            kerma_area_product: sum(&self.planes, |p| p.dose_area_product_total, |k| k.0)
                .map(GrayMetreSquared),
            fluoroscopy_time: sum(&self.planes, |p| p.total_fluoro_time, |s| s.0).map(Seconds),
            ct_dose_length_product: self.ct.as_ref().and_then(|ct| ct.dlp_total),
            fluoro_kerma_area_product: sum(
                &self.planes,
                |p| p.fluoro_dose_area_product_total,
                |k| k.0,
            )
            .map(GrayMetreSquared),
            acquisition_kerma_area_product: sum(
                &self.planes,
                |p| p.acquisition_dose_area_product_total,
                |k| k.0,
            )
            .map(GrayMetreSquared),
            radiographic_frames: sum(&self.planes, |p| p.total_radiographic_frames, f64::from)
                .map(|n| n.round() as u32),
        }
    }
}

pub fn parse_file(path: &Path) -> Result<DoseReport, RdsrError> {
    let size = std::fs::metadata(path)
        .map_err(|e| RdsrError::NotDicom(e.to_string()))?
        .len();
    if size > guard::MAX_REPORT_BYTES as u64 {
        return Err(RdsrError::NotDicom(format!(
            "{size} bytes is larger than any dose report (limit {} bytes)",
            guard::MAX_REPORT_BYTES
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| RdsrError::NotDicom(e.to_string()))?;
    parse_bytes(&bytes)
}

/// Reads a dose report from the bytes of a DICOM file (preamble, meta group, data set).
pub fn parse_bytes(bytes: &[u8]) -> Result<DoseReport, RdsrError> {
    guard::check_file(bytes).map_err(RdsrError::NotDicom)?;
    let file = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .from_reader(bytes)
        .map_err(|e| RdsrError::NotDicom(e.to_string()))?;
    parse_object(&file)
}

/// Reads a dose report from a bare data set in the given transfer syntax, as a C-STORE
/// delivers it (no preamble, no meta group).
pub fn parse_dataset(bytes: &[u8], transfer_syntax_uid: &str) -> Result<DoseReport, RdsrError> {
    guard::check_dataset(
        bytes,
        guard::Encoding::of_transfer_syntax(transfer_syntax_uid),
    )
    .map_err(RdsrError::NotDicom)?;
    let uid = transfer_syntax_uid.trim_end_matches(['\0', ' ']);
    let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| RdsrError::NotDicom(format!("unknown transfer syntax {uid}")))?;
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| RdsrError::NotDicom(e.to_string()))?;
    parse_object(&obj)
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn code_value(item: &InMemDicomObject, sequence: Tag) -> Option<String> {
    item.get(sequence)
        .and_then(|e| e.items())
        .and_then(|items| items.first())
        .and_then(|code| text(code, tags::CODE_VALUE))
}

fn children(item: &InMemDicomObject) -> &[InMemDicomObject] {
    item.get(tags::CONTENT_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or(&[])
}

/// Reads a dose report from a parsed DICOM object.
pub fn parse_object(obj: &InMemDicomObject) -> Result<DoseReport, RdsrError> {
    let sop_class_uid =
        text(obj, tags::SOP_CLASS_UID).ok_or(RdsrError::MissingIdentifier("SOP Class UID"))?;
    if !SR_CLASSES.contains(&sop_class_uid.as_str()) {
        return Err(RdsrError::NotDoseReport(sop_class_uid));
    }
    let mut planes = Vec::new();
    let mut events = Vec::new();
    let mut missing = Vec::new();
    collect(children(obj), &mut planes, &mut events, &mut missing);
    let mut ct = CtDose::default();
    let mut is_ct = false;
    collect_ct(children(obj), &mut ct, &mut is_ct, &mut missing);
    let ct = is_ct.then_some(ct);
    if let Some(ct) = &ct {
        if ct.dlp_total.is_none() {
            missing.push("CT Dose Length Product Total (113813)".into());
        }
    }
    let mut totals_from_events = false;
    if planes.is_empty() && ct.is_none() {
        if events.is_empty() && sop_class_uid != uids::X_RAY_RADIATION_DOSE_SR_STORAGE {
            // A generic SR class without dose content is some other report.
            return Err(RdsrError::NotDoseReport(sop_class_uid));
        }
        missing.push("Accumulated X-Ray Dose Data (113702)".into());
        if !events.is_empty() {
            // Some systems report only events: sum them, and say so.
            planes.push(sum_events(&events));
            totals_from_events = true;
        }
    }
    Ok(DoseReport {
        sop_instance_uid: text(obj, tags::SOP_INSTANCE_UID)
            .ok_or(RdsrError::MissingIdentifier("SOP Instance UID"))?,
        study_instance_uid: text(obj, tags::STUDY_INSTANCE_UID)
            .ok_or(RdsrError::MissingIdentifier("Study Instance UID"))?,
        sop_class_uid,
        accession_number: text(obj, tags::ACCESSION_NUMBER),
        patient_id: text(obj, tags::PATIENT_ID),
        study_date: text(obj, tags::STUDY_DATE),
        study_time: text(obj, tags::STUDY_TIME),
        manufacturer: text(obj, tags::MANUFACTURER),
        model: text(obj, tags::MANUFACTURER_MODEL_NAME),
        station_name: text(obj, tags::STATION_NAME),
        participants: participants(obj),
        planes,
        events,
        ct,
        totals_from_events,
        missing,
    })
}

/// Every Person Name item in the tree, each (name, role) once, in order of appearance.
fn participants(obj: &InMemDicomObject) -> Vec<Participant> {
    fn walk(items: &[InMemDicomObject], out: &mut Vec<Participant>) {
        for item in items {
            let is_person = text(item, tags::VALUE_TYPE).as_deref() == Some("PNAME")
                && code_value(item, tags::CONCEPT_NAME_CODE_SEQUENCE).as_deref()
                    == Some(codes::PERSON_NAME);
            if let (true, Some(name)) = (is_person, text(item, tags::PERSON_NAME)) {
                let role = children(item)
                    .iter()
                    .find(|c| {
                        code_value(c, tags::CONCEPT_NAME_CODE_SEQUENCE).as_deref()
                            == Some(codes::PERSON_ROLE_IN_PROCEDURE)
                    })
                    .and_then(coded);
                let person = Participant {
                    name: name.replace('^', " ").trim().to_string(),
                    role,
                };
                if !out.contains(&person) {
                    out.push(person);
                }
            }
            walk(children(item), out);
        }
    }
    let mut out = Vec::new();
    walk(children(obj), &mut out);
    out
}

/// Finds every accumulated-dose and irradiation-event container, at any depth.
fn collect(
    items: &[InMemDicomObject],
    planes: &mut Vec<AccumulatedProjection>,
    events: &mut Vec<IrradiationEvent>,
    missing: &mut Vec<String>,
) {
    for item in items {
        let is_container = text(item, tags::VALUE_TYPE).as_deref() == Some("CONTAINER");
        let concept = code_value(item, tags::CONCEPT_NAME_CODE_SEQUENCE);
        match (is_container, concept.as_deref()) {
            (true, Some(codes::ACCUMULATED_XRAY_DOSE_DATA)) => {
                planes.push(read_plane(children(item), planes.len() + 1, missing))
            }
            (true, Some(codes::IRRADIATION_EVENT_XRAY_DATA)) => {
                events.push(read_event(children(item), events.len() + 1, missing))
            }
            _ => collect(children(item), planes, events, missing),
        }
    }
}

/// Finds CT accumulated data and acquisitions (TID 10011/10013), at any depth.
fn collect_ct(
    items: &[InMemDicomObject],
    ct: &mut CtDose,
    is_ct: &mut bool,
    missing: &mut Vec<String>,
) {
    for item in items {
        let is_container = text(item, tags::VALUE_TYPE).as_deref() == Some("CONTAINER");
        match (
            is_container,
            code_value(item, tags::CONCEPT_NAME_CODE_SEQUENCE).as_deref(),
        ) {
            (true, Some(codes::CT_ACCUMULATED_DOSE_DATA)) => {
                *is_ct = true;
                let mut found = Vec::new();
                descendants_num(
                    children(item),
                    codes::CT_DOSE_LENGTH_PRODUCT_TOTAL,
                    &mut found,
                );
                if let Some((v, unit)) = found.first() {
                    ct.unit_seen(codes::CT_DOSE_LENGTH_PRODUCT_TOTAL, unit);
                    ct.dlp_total = to_gray_metres(*v, unit);
                    if ct.dlp_total.is_none() {
                        missing.push(format!("113813 unit '{unit}' not understood"));
                    }
                }
            }
            (true, Some(codes::CT_ACQUISITION)) => {
                *is_ct = true;
                let number = ct.acquisitions.len() + 1;
                let mut a = CtAcquisition::default();
                for child in children(item) {
                    match (
                        text(child, tags::VALUE_TYPE).as_deref(),
                        code_value(child, tags::CONCEPT_NAME_CODE_SEQUENCE).as_deref(),
                    ) {
                        (Some("UIDREF"), Some(codes::IRRADIATION_EVENT_UID)) => {
                            a.uid = text(child, tags::UID)
                        }
                        (Some("CODE"), Some(codes::CT_ACQUISITION_TYPE)) => {
                            a.acquisition_type = coded(child)
                        }
                        _ => {}
                    }
                }
                // CTDIvol and DLP sit in a nested CT Dose container (113829).
                let mut found = Vec::new();
                descendants_num(children(item), codes::MEAN_CTDIVOL, &mut found);
                if let Some((v, unit)) = found.first() {
                    ct.unit_seen(codes::MEAN_CTDIVOL, unit);
                    a.mean_ctdivol = to_gray(*v, unit).map(Gray);
                    if a.mean_ctdivol.is_none() {
                        missing.push(format!(
                            "CT acquisition {number}: 113830 unit '{unit}' not understood"
                        ));
                    }
                }
                let mut found = Vec::new();
                descendants_num(children(item), codes::DLP, &mut found);
                if let Some((v, unit)) = found.first() {
                    ct.unit_seen(codes::DLP, unit);
                    a.dlp = to_gray_metres(*v, unit);
                    if a.dlp.is_none() {
                        missing.push(format!(
                            "CT acquisition {number}: 113838 unit '{unit}' not understood"
                        ));
                    }
                }
                ct.acquisitions.push(a);
            }
            _ => collect_ct(children(item), ct, is_ct, missing),
        }
    }
}

/// Every NUM item with `concept` below `items`, as (value, unit).
fn descendants_num(items: &[InMemDicomObject], concept: &str, found: &mut Vec<(f64, String)>) {
    for item in items {
        if text(item, tags::VALUE_TYPE).as_deref() == Some("NUM")
            && code_value(item, tags::CONCEPT_NAME_CODE_SEQUENCE).as_deref() == Some(concept)
        {
            if let Ok(v) = numeric(item) {
                found.push(v);
            }
        }
        descendants_num(children(item), concept, found);
    }
}

/// Dose-length product units to Gy·m.
fn to_gray_metres(value: f64, unit: &str) -> Option<GrayMetre> {
    let factor = match crate::units::in_use().ucum(unit) {
        "mGy.cm" => 1e-5,
        "Gy.cm" => 1e-2,
        "mGy.m" => 1e-3,
        "Gy.m" => 1.0,
        _ => return None,
    };
    Some(GrayMetre(value * factor))
}

/// A NUM item's value in its file unit, or why it could not be read.
fn numeric(item: &InMemDicomObject) -> Result<(f64, String), &'static str> {
    let measured = item
        .get(tags::MEASURED_VALUE_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|m| m.first())
        .ok_or("has no measured value")?;
    let value = measured
        .get(tags::NUMERIC_VALUE)
        .and_then(|e| e.to_float64().ok())
        .filter(|v| v.is_finite());
    let unit = code_value(measured, tags::MEASUREMENT_UNITS_CODE_SEQUENCE).unwrap_or_default();
    value.map(|v| (v, unit)).ok_or("value is not a number")
}

/// A CODE item's value (code value, meaning).
fn coded(item: &InMemDicomObject) -> Option<(String, String)> {
    let code = item
        .get(tags::CONCEPT_CODE_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|c| c.first())?;
    Some((
        text(code, tags::CODE_VALUE)?,
        text(code, tags::CODE_MEANING).unwrap_or_default(),
    ))
}

fn read_event(
    items: &[InMemDicomObject],
    number: usize,
    missing: &mut Vec<String>,
) -> IrradiationEvent {
    let mut e = IrradiationEvent::default();
    for item in items {
        let Some(concept) = code_value(item, tags::CONCEPT_NAME_CODE_SEQUENCE) else {
            continue;
        };
        match text(item, tags::VALUE_TYPE).as_deref() {
            Some("UIDREF") if concept == codes::IRRADIATION_EVENT_UID => {
                e.uid = text(item, tags::UID)
            }
            Some("CODE") if concept == codes::IRRADIATION_EVENT_TYPE => e.event_type = coded(item),
            Some("CODE") if concept == codes::ACQUISITION_PLANE => e.plane = coded(item),
            Some("NUM") => {
                let (value, unit) = match numeric(item) {
                    Ok(v) => v,
                    Err(why) => {
                        missing.push(format!("event {number}: {concept} {why}"));
                        continue;
                    }
                };
                let unreadable = |missing: &mut Vec<String>| {
                    missing.push(format!(
                        "event {number}: {concept} unit '{unit}' not understood"
                    ))
                };
                match concept.as_str() {
                    codes::DOSE_AREA_PRODUCT => match to_gray_square_metres(value, &unit) {
                        Some(v) => e.dose_area_product = Some(GrayMetreSquared(v)),
                        None => unreadable(missing),
                    },
                    codes::DOSE_RP => match to_gray(value, &unit) {
                        Some(v) => e.dose_rp = Some(Gray(v)),
                        None => unreadable(missing),
                    },
                    codes::EXPOSURE_TIME => match to_seconds(value, &unit) {
                        Some(v) => e.exposure_time = Some(Seconds(v)),
                        None => unreadable(missing),
                    },
                    codes::IRRADIATION_DURATION => match to_seconds(value, &unit) {
                        Some(v) => e.irradiation_duration = Some(Seconds(v)),
                        None => unreadable(missing),
                    },
                    codes::KVP => e.kvp = Some(value),
                    codes::XRAY_TUBE_CURRENT => e.tube_current_ma = Some(value),
                    codes::NUMBER_OF_PULSES => e.pulses = Some(value.max(0.0).round() as u32),
                    codes::POSITIONER_PRIMARY_ANGLE => e.primary_angle = Some(value),
                    codes::POSITIONER_SECONDARY_ANGLE => e.secondary_angle = Some(value),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    e
}

/// Accumulated totals summed from events (used only when the report has no TID 10002 data).
fn sum_events(events: &[IrradiationEvent]) -> AccumulatedProjection {
    let all = |get: &dyn Fn(&IrradiationEvent) -> Option<f64>| -> Option<f64> {
        events.iter().map(get).sum()
    };
    AccumulatedProjection {
        dose_area_product_total: all(&|e| e.dose_area_product.map(|k| k.0)).map(GrayMetreSquared),
        dose_rp_total: all(&|e| e.dose_rp.map(|g| g.0)).map(Gray),
        ..Default::default()
    }
}

fn read_plane(
    items: &[InMemDicomObject],
    plane: usize,
    missing: &mut Vec<String>,
) -> AccumulatedProjection {
    let mut p = AccumulatedProjection::default();
    for item in items {
        if text(item, tags::VALUE_TYPE).as_deref() == Some("CODE")
            && code_value(item, tags::CONCEPT_NAME_CODE_SEQUENCE).as_deref()
                == Some(codes::ACQUISITION_PLANE)
        {
            p.plane = coded(item);
            continue;
        }
        if text(item, tags::VALUE_TYPE).as_deref() != Some("NUM") {
            continue;
        }
        let Some(concept) = code_value(item, tags::CONCEPT_NAME_CODE_SEQUENCE) else {
            continue;
        };
        let Some(measured) = item
            .get(tags::MEASURED_VALUE_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|m| m.first())
        else {
            missing.push(format!("plane {plane}: {concept} has no measured value"));
            continue;
        };
        let value = measured
            .get(tags::NUMERIC_VALUE)
            .and_then(|e| e.to_float64().ok());
        let unit = code_value(measured, tags::MEASUREMENT_UNITS_CODE_SEQUENCE).unwrap_or_default();
        let Some(value) = value.filter(|v| v.is_finite() && *v >= 0.0) else {
            missing.push(format!(
                "plane {plane}: {concept} value is not a number ≥ 0"
            ));
            continue;
        };
        let mut unreadable = || {
            missing.push(format!(
                "plane {plane}: {concept} unit '{unit}' not understood"
            ))
        };
        match concept.as_str() {
            codes::DOSE_AREA_PRODUCT_TOTAL
            | codes::FLUORO_DOSE_AREA_PRODUCT_TOTAL
            | codes::ACQUISITION_DOSE_AREA_PRODUCT_TOTAL => {
                let Some(kap) = to_gray_square_metres(value, &unit) else {
                    unreadable();
                    continue;
                };
                let slot = match concept.as_str() {
                    codes::DOSE_AREA_PRODUCT_TOTAL => &mut p.dose_area_product_total,
                    codes::FLUORO_DOSE_AREA_PRODUCT_TOTAL => &mut p.fluoro_dose_area_product_total,
                    _ => &mut p.acquisition_dose_area_product_total,
                };
                *slot = Some(GrayMetreSquared(kap));
            }
            codes::DOSE_RP_TOTAL
            | codes::FLUORO_DOSE_RP_TOTAL
            | codes::ACQUISITION_DOSE_RP_TOTAL => {
                let Some(gray) = to_gray(value, &unit) else {
                    unreadable();
                    continue;
                };
                let slot = match concept.as_str() {
                    codes::DOSE_RP_TOTAL => &mut p.dose_rp_total,
                    codes::FLUORO_DOSE_RP_TOTAL => &mut p.fluoro_dose_rp_total,
                    _ => &mut p.acquisition_dose_rp_total,
                };
                *slot = Some(Gray(gray));
            }
            codes::TOTAL_FLUORO_TIME | codes::TOTAL_ACQUISITION_TIME => {
                let Some(s) = to_seconds(value, &unit) else {
                    unreadable();
                    continue;
                };
                let slot = if concept == codes::TOTAL_FLUORO_TIME {
                    &mut p.total_fluoro_time
                } else {
                    &mut p.total_acquisition_time
                };
                *slot = Some(Seconds(s));
            }
            codes::TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES => {
                p.total_radiographic_frames = Some(value.round() as u32)
            }
            _ => continue,
        }
        p.units_in_file.push((concept, unit));
    }
    for (code, present) in [
        (
            codes::DOSE_AREA_PRODUCT_TOTAL,
            p.dose_area_product_total.is_some(),
        ),
        (codes::DOSE_RP_TOTAL, p.dose_rp_total.is_some()),
        (codes::TOTAL_FLUORO_TIME, p.total_fluoro_time.is_some()),
    ] {
        if !present
            && !missing
                .iter()
                .any(|m| m.starts_with(&format!("plane {plane}: {code}")))
        {
            missing.push(format!("plane {plane}: {code} not reported"));
        }
    }
    p
}

/// UCUM units seen for kerma-area product, to Gy·m² (1 Gy·m² = 10 000 Gy·cm²).
fn to_gray_square_metres(value: f64, unit: &str) -> Option<f64> {
    let factor = match crate::units::in_use().ucum(unit) {
        "Gy.m2" => 1.0,
        "dGy.m2" => 1e-1,
        "cGy.m2" => 1e-2,
        "mGy.m2" => 1e-3,
        "uGy.m2" => 1e-6,
        "Gy.cm2" => 1e-4,
        "dGy.cm2" => 1e-5,
        "cGy.cm2" => 1e-6,
        "mGy.cm2" => 1e-7,
        "uGy.cm2" => 1e-10,
        _ => return None,
    };
    Some(value * factor)
}

fn to_gray(value: f64, unit: &str) -> Option<f64> {
    let factor = match crate::units::in_use().ucum(unit) {
        "Gy" => 1.0,
        "dGy" => 1e-1,
        "cGy" => 1e-2,
        "mGy" => 1e-3,
        "uGy" => 1e-6,
        _ => return None,
    };
    Some(value * factor)
}

fn to_seconds(value: f64, unit: &str) -> Option<f64> {
    let factor = match crate::units::in_use().ucum(unit) {
        "s" => 1.0,
        "ms" => 1e-3,
        "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(value * factor)
}

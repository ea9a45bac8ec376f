//! Synthetic RDSR files built with dicom-rs, for tests in this and other crates. No real
//! patient data: identifiers are invented.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::mem::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use std::path::{Path, PathBuf};

pub fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, value),
        DataElement::new(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme),
        DataElement::new(tags::CODE_MEANING, VR::LO, meaning),
    ])
}

pub fn seq(tag: dicom_core::Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

pub fn num(concept: &str, meaning: &str, value: &str, unit: &str) -> InMemDicomObject {
    let measured = InMemDicomObject::from_element_iter([
        DataElement::new(tags::NUMERIC_VALUE, VR::DS, value),
        seq(
            tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
            vec![code(unit, "UCUM", unit)],
        ),
    ]);
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
        DataElement::new(tags::VALUE_TYPE, VR::CS, "NUM"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code(concept, "DCM", meaning)],
        ),
        seq(tags::MEASURED_VALUE_SEQUENCE, vec![measured]),
    ])
}

pub fn container(
    concept: &str,
    meaning: &str,
    children: Vec<InMemDicomObject>,
) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
        DataElement::new(tags::VALUE_TYPE, VR::CS, "CONTAINER"),
        DataElement::new(tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code(concept, "DCM", meaning)],
        ),
        seq(tags::CONTENT_SEQUENCE, children),
    ])
}

/// A projection dose report with the given accumulated-dose containers.
pub fn report(sop_class: &str, instance: &str, content: Vec<InMemDicomObject>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, sop_class),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, instance),
        DataElement::new(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.1111"),
        DataElement::new(tags::ACCESSION_NUMBER, VR::SH, "ACC0001"),
        DataElement::new(tags::PATIENT_ID, VR::LO, "SDM100037"),
        DataElement::new(tags::STUDY_DATE, VR::DA, "20261124"),
        DataElement::new(tags::STUDY_TIME, VR::TM, "091500"),
        DataElement::new(tags::MODALITY, VR::CS, "SR"),
        DataElement::new(tags::MANUFACTURER, VR::LO, "Synthetic Angio Co"),
        DataElement::new(tags::MANUFACTURER_MODEL_NAME, VR::LO, "Biplane 9000"),
        DataElement::new(tags::VALUE_TYPE, VR::CS, "CONTAINER"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code("113701", "DCM", "X-Ray Radiation Dose Report")],
        ),
        seq(tags::CONTENT_SEQUENCE, content),
    ])
}

pub fn plane(dap: (&str, &str), rp: (&str, &str), fluoro: (&str, &str)) -> InMemDicomObject {
    container(
        "113702",
        "Accumulated X-Ray Dose Data",
        vec![
            num("113722", "Dose Area Product Total", dap.0, dap.1),
            num("113725", "Dose (RP) Total", rp.0, rp.1),
            num("113730", "Total Fluoro Time", fluoro.0, fluoro.1),
            num(
                "113731",
                "Total Number of Radiographic Frames",
                "120",
                "{frames}",
            ),
        ],
    )
}

pub fn write(dir: &Path, name: &str, obj: InMemDicomObject) -> PathBuf {
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .expect("file meta for a synthetic report");
    let path = dir.join(name);
    file.write_to_file(&path)
        .expect("writing a synthetic report");
    path
}

/// A CODE content item: `concept` has the value `value`.
pub fn coded(concept: (&str, &str), value: (&str, &str, &str)) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
        DataElement::new(tags::VALUE_TYPE, VR::CS, "CODE"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code(concept.0, "DCM", concept.1)],
        ),
        seq(
            tags::CONCEPT_CODE_SEQUENCE,
            vec![code(value.0, value.1, value.2)],
        ),
    ])
}

/// A UIDREF content item.
pub fn uidref(concept: (&str, &str), uid: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
        DataElement::new(tags::VALUE_TYPE, VR::CS, "UIDREF"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code(concept.0, "DCM", concept.1)],
        ),
        DataElement::new(tags::UID, VR::UI, uid),
    ])
}

/// An irradiation event (TID 10003) on a plane, with its DAP and Dose (RP) in the given units.
pub fn event(
    uid: &str,
    plane: (&str, &str),
    dap: (&str, &str),
    rp: (&str, &str),
) -> InMemDicomObject {
    container(
        "113706",
        "Irradiation Event X-Ray Data",
        vec![
            uidref(("113769", "Irradiation Event UID"), uid),
            coded(
                ("113721", "Irradiation Event Type"),
                ("113611", "DCM", "Stationary Acquisition"),
            ),
            coded(("113764", "Acquisition Plane"), (plane.0, "DCM", plane.1)),
            num("122130", "Dose Area Product", dap.0, dap.1),
            num("113738", "Dose (RP)", rp.0, rp.1),
            num("113733", "KVP", "78", "kV"),
            num("113734", "X-Ray Tube Current", "412", "mA"),
            num("113824", "Exposure Time", "6.5", "ms"),
            num("113768", "Number of Pulses", "30", "{pulses}"),
        ],
    )
}

/// A CT dose report body (TID 10011): accumulated DLP and acquisitions with CTDIvol and DLP in
/// a nested CT Dose container, in mGy and mGy·cm as scanners report them.
pub fn ct_content(dlp_total: &str, acquisitions: &[(&str, &str, &str)]) -> Vec<InMemDicomObject> {
    let mut content = vec![container(
        "113811",
        "CT Accumulated Dose Data",
        vec![num(
            "113813",
            "CT Dose Length Product Total",
            dlp_total,
            "mGy.cm",
        )],
    )];
    for (uid, ctdivol, dlp) in acquisitions {
        content.push(container(
            "113819",
            "CT Acquisition",
            vec![
                uidref(("113769", "Irradiation Event UID"), uid),
                coded(
                    ("113820", "CT Acquisition Type"),
                    ("113804", "DCM", "Sequenced Acquisition"),
                ),
                container(
                    "113829",
                    "CT Dose",
                    vec![
                        num("113830", "Mean CTDIvol", ctdivol, "mGy"),
                        num("113838", "DLP", dlp, "mGy.cm"),
                    ],
                ),
            ],
        ));
    }
    content
}

/// A PNAME content item (Person Name, 113870) with the person's role in the procedure.
pub fn person(name: &str, role: (&str, &str)) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS"),
        DataElement::new(tags::VALUE_TYPE, VR::CS, "PNAME"),
        seq(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code("113870", "DCM", "Person Name")],
        ),
        DataElement::new(tags::PERSON_NAME, VR::PN, name),
        seq(
            tags::CONTENT_SEQUENCE,
            vec![coded(
                ("113875", "Person Role in Procedure"),
                (role.0, "DCM", role.1),
            )],
        ),
    ])
}

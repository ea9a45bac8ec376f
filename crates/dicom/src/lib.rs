//! Seldinger's DICOM edge. Today: reading radiation dose structured reports (RDSR) with dicom-rs
//! into the domain's typed dose quantities. Networking (C-STORE) and storage come next
//! (docs/dose-plan.md).

#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod guard;
pub mod rdsr;

pub use rdsr::{
    parse_bytes, parse_dataset, parse_file, parse_object, AccumulatedProjection, DoseReport,
    IrradiationEvent, RdsrError,
};

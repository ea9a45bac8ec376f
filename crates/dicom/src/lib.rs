//! Seldinger's DICOM edge: radiation dose structured reports (RDSR) read with dicom-rs into the
//! domain's typed dose quantities (`rdsr`, behind the header check in `guard`), stored, linked to
//! their case and alerted on (`ingest`), from files or a C-STORE listener (`scp`); vendor unit
//! spellings are read through the table in `units`. The same listener is the department's
//! Modality Worklist: booked cases as scheduled steps (`worklist`), matched as the standard says
//! (`matching`), answered to C-FIND (`find`) over DIMSE messages (`dimse`); and it hears what the rooms'
//! systems performed (`mpps`).

pub mod dimse;
pub mod find;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod guard;
pub mod ingest;
pub mod matching;
pub mod mpps;
pub mod rdsr;
pub mod scp;
pub mod units;
pub mod worklist;

pub use rdsr::{
    parse_bytes, parse_dataset, parse_file, parse_object, AccumulatedProjection, DoseReport,
    IrradiationEvent, RdsrError,
};

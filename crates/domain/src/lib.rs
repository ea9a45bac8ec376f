//! Seldinger's domain core: the IR case record and the rules about it.
//!
//! Pure by design: nothing here reads a clock, a file, a socket or a database. Time arrives as a
//! parameter, data files arrive as strings, and ids are handed in by the caller. Storage, HTTP,
//! DICOM and HL7 crates depend on this one, never the reverse.

pub mod access;
pub mod adverse_event;
pub mod assessment;
pub mod catalogue;
pub mod clinical;
pub mod csv;
pub mod department;
pub mod department_time;
pub mod device_registry;
pub mod discharge;
pub mod dose;
pub mod dose_link;
pub mod dose_stats;
pub mod event;
pub mod followup;
pub mod ids;
pub mod lifecycle;
pub mod mm;
pub mod patient;
pub mod performed_step;
pub mod procedure_record;
pub mod quality;
pub mod referral;
pub mod registry;
pub mod registry_bundle;
pub mod report;
pub mod safety;
pub mod smart;
pub mod udi;
pub mod validation;

pub use catalogue::{
    BleedingRisk, GuidanceModality, Procedure, ProcedureCatalogue, ProcedureId, Sedation,
};
pub use department::{station_outside_room, AeTitle, DicomModality, Equipment, Room, RoomKind};
pub use department_time::DepartmentTime;
pub use event::{Actor, EventMeta};
pub use ids::{CaseId, PatientId, ReferralId, RoomId};
pub use lifecycle::{Case, CaseCommand, CaseEvent, CaseState, TransitionError};
pub use patient::{NewPatient, Patient};
pub use referral::{NewReferral, Referral, Urgency};
pub use validation::{FieldError, ValidationErrors};

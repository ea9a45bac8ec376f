//! The pre-procedure safety engine: every vetted case checked against clinical-rules.md days
//! before the procedure, not on the table. Pure: the planned time and "now" are parameters; every
//! threshold comes from [`SafetyReference`], cited and marked V/U/D.

pub mod checklist;
pub mod engine;
pub mod for_case;
pub mod hypothetical;
pub mod input;
pub mod reference;

pub use checklist::{Action, Checklist, ChecklistItem, ItemStatus};
pub use engine::{cockcroft_gault, evaluate};
pub use for_case::{case_checklist, PatientFacts};
pub use hypothetical::HypotheticalCase;
pub use input::{CareSetting, ClinicalFlags, ConsentRecord, DrugUse, FastingRecord, SafetyInput};
pub use reference::{DoseIntent, DrugClass, Evidence, SafetyReference, ThresholdId};

#[cfg(test)]
mod tests;

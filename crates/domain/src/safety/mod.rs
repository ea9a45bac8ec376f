//! The pre-procedure safety engine: every vetted case checked against clinical-rules.md days
//! before the procedure, not on the table. Pure: the planned time and "now" are parameters.

pub mod reference;

pub use reference::{DrugClass, Evidence, SafetyReference, ThresholdId};

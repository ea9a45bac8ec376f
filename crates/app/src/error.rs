//! What a use case can answer instead of doing it, in the user's words. Each adapter maps these
//! to its own form in one place (problem+json, an HL7 ACK code, a FHIR OperationOutcome).

use seldinger_domain::access::{Permission, Role};
use seldinger_domain::lifecycle::TransitionError;
use seldinger_domain::ValidationErrors;
use seldinger_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Absent, or outside the caller's scope: the two read alike, so a refusal never says whether
    /// a record exists.
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("the {role} role does not hold {} (see docs/roles.md)", permission.as_str())]
    Forbidden { role: Role, permission: Permission },
    /// One field of the request was malformed (not a valid id, a blank note).
    #[error("{field}: {detail}")]
    BadRequest { field: String, detail: String },
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    pub fn bad_request(field: impl Into<String>, detail: impl Into<String>) -> Self {
        AppError::BadRequest {
            field: field.into(),
            detail: detail.into(),
        }
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        AppError::Invalid(ValidationErrors::single(field, detail))
    }

    /// A write based on a version the record has moved past.
    pub fn stale(what: String, expected: u64, current: u64) -> Self {
        AppError::Store(StoreError::Conflict {
            what,
            expected,
            current,
        })
    }
}

impl From<ValidationErrors> for AppError {
    fn from(errors: ValidationErrors) -> Self {
        AppError::Invalid(errors)
    }
}

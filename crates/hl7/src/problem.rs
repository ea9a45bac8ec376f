//! Why a message was not applied, in HL7's words (table 0357 codes, an error location) and in
//! the integration engineer's (a sentence naming the field and what is allowed).

use crate::message::Location;

/// HL7 table 0357, message error condition codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    SegmentSequenceError,
    RequiredFieldMissing,
    DataTypeError,
    TableValueNotFound,
    UnsupportedMessageType,
    UnsupportedEventCode,
    UnsupportedProcessingId,
    UnsupportedVersionId,
    UnknownKeyIdentifier,
    DuplicateKeyIdentifier,
    ApplicationRecordLocked,
    ApplicationInternalError,
}

impl ErrorCode {
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequenceError => "100",
            ErrorCode::RequiredFieldMissing => "101",
            ErrorCode::DataTypeError => "102",
            ErrorCode::TableValueNotFound => "103",
            ErrorCode::UnsupportedMessageType => "200",
            ErrorCode::UnsupportedEventCode => "201",
            ErrorCode::UnsupportedProcessingId => "202",
            ErrorCode::UnsupportedVersionId => "203",
            ErrorCode::UnknownKeyIdentifier => "204",
            ErrorCode::DuplicateKeyIdentifier => "205",
            ErrorCode::ApplicationRecordLocked => "206",
            ErrorCode::ApplicationInternalError => "207",
        }
    }

    /// The table's own wording (ERR-3.2).
    pub fn text(self) -> &'static str {
        match self {
            ErrorCode::SegmentSequenceError => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataTypeError => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEventCode => "Unsupported event code",
            ErrorCode::UnsupportedProcessingId => "Unsupported processing id",
            ErrorCode::UnsupportedVersionId => "Unsupported version id",
            ErrorCode::UnknownKeyIdentifier => "Unknown key identifier",
            ErrorCode::DuplicateKeyIdentifier => "Duplicate key identifier",
            ErrorCode::ApplicationRecordLocked => "Application record locked",
            ErrorCode::ApplicationInternalError => "Application internal error",
        }
    }
}

/// What is wrong with a message and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: ErrorCode,
    pub location: Option<Location>,
    pub reason: String,
}

impl Problem {
    pub fn new(code: ErrorCode, location: Option<Location>, reason: impl Into<String>) -> Problem {
        Problem {
            code,
            location,
            reason: reason.into(),
        }
    }

    /// A value that is there but wrong: its place and what is allowed.
    pub fn invalid(location: Location, reason: impl Into<String>) -> Problem {
        Problem::new(ErrorCode::DataTypeError, Some(location), reason)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(at) => write!(f, "{}: {}", at.path(), self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// How a message ended, as its acknowledgement code says (HL7 table 0008, original mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// AA: applied and committed.
    Accepted,
    /// AE: read, but its content is wrong; a dead letter until fixed and replayed.
    Error(Problem),
    /// AR: refused before its content was read (sender, type, version, unreadable), or the
    /// database could not take it (the sender should send it again).
    Rejected(Problem),
}

impl Disposition {
    pub fn code(&self) -> &'static str {
        match self {
            Disposition::Accepted => "AA",
            Disposition::Error(_) => "AE",
            Disposition::Rejected(_) => "AR",
        }
    }

    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Disposition::Accepted => None,
            Disposition::Error(p) | Disposition::Rejected(p) => Some(p),
        }
    }
}

//! Identifiers. Ids are chosen by the caller (random in production, seeded in the demo), never
//! generated here, so the domain stays deterministic.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Uuid::parse_str(s).map($name).map_err(|_| format!("'{s}' is not a valid id (a UUID)"))
            }
        }
    };
}

uuid_id!(
    /// A patient's internal id (not the MRN, which is the hospital's).
    PatientId
);
uuid_id!(
    /// A referral's id.
    ReferralId
);
uuid_id!(
    /// An IR case: one procedure episode for one patient.
    CaseId
);

/// A procedure room, by the department's short code (e.g. `angio-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct RoomId(String);

impl TryFrom<String> for RoomId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        RoomId::parse(&value)
    }
}

impl From<RoomId> for String {
    fn from(id: RoomId) -> String {
        id.0
    }
}

impl RoomId {
    /// What [`RoomId::parse`] takes, as an ECMA-262 pattern (for the OpenAPI document).
    pub const PATTERN: &'static str = "^[a-z0-9-]{1,32}$";

    pub fn parse(code: &str) -> Result<Self, String> {
        let ok = !code.is_empty()
            && code.len() <= 32
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(RoomId(code.to_string()))
        } else {
            Err(format!(
                "'{code}' is not a room code: use 1-32 characters a-z, 0-9 and '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

//! Who did a change, when, and why: the envelope every recorded change carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The person or system that made a change, by username. Authentication (issue 3) decides who
/// this is; the domain only requires that it is never blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            Err("actor must be 1-64 printable characters".into())
        } else {
            Ok(Actor(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The metadata recorded with every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventMeta {
    pub actor: Actor,
    pub at: DateTime<Utc>,
    /// Why the change was made; required by some events (decline, cancel, reschedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

//! The department's rooms: where cases are booked.

use crate::catalogue::GuidanceModality;
use crate::ids::RoomId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    AngioSuite,
    Ct,
    Ultrasound,
    Mri,
    Procedure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    /// Guidance the room's equipment provides.
    pub modalities: Vec<GuidanceModality>,
}

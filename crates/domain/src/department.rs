//! The department's rooms: where cases are booked, and the imaging systems in them that take
//! the worklist and report what they did (by their DICOM AE titles).

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
    /// The imaging systems that take this room's worklist (none: the room has no worklist).
    #[serde(default)]
    pub equipment: Vec<Equipment>,
}

impl Room {
    /// Whether the imaging system with this AE title stands in this room.
    pub fn has_station(&self, ae_title: &str) -> bool {
        self.equipment
            .iter()
            .any(|e| e.ae_title.as_str() == ae_title.trim())
    }
}

/// Why what an imaging system sent about `case` may not change it: the system is not one of the
/// room the case is booked in (of `rooms`), or the case is booked in none. A station speaks only
/// for its own room.
pub fn station_outside_room(
    case: &crate::lifecycle::Case,
    rooms: &[Room],
    station: &str,
) -> Option<String> {
    let room = case
        .booking
        .as_ref()
        .and_then(|b| rooms.iter().find(|r| r.id == b.room));
    match room {
        Some(room) if room.has_station(station) => None,
        Some(room) => Some(format!(
            "sent by {station}, which is not an imaging system of {} where the case is booked: the case was not changed",
            room.name
        )),
        None => Some(format!(
            "sent by {station} for a case not booked in a room: the case was not changed"
        )),
    }
}

/// One imaging system in a room, as DICOM knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Equipment {
    /// The system's AE title: its worklist queries and procedure-step reports come from it.
    pub ae_title: AeTitle,
    /// What its scheduled steps are for (Modality (0008,0060) on the worklist).
    pub modality: DicomModality,
}

/// The DICOM modality codes of IR's imaging systems (PS3.3 C.7.3.1.1.1 defined terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DicomModality {
    /// X-ray angiography: the angio suite's C-arm, and its cone-beam CT.
    #[serde(rename = "XA")]
    Xa,
    /// Radiofluoroscopy.
    #[serde(rename = "RF")]
    Rf,
    #[serde(rename = "CT")]
    Ct,
    #[serde(rename = "US")]
    Us,
    #[serde(rename = "MR")]
    Mr,
    /// Radiography (computed or digital) beside the rooms: tube and line position checks.
    #[serde(rename = "CR")]
    Cr,
    #[serde(rename = "DX")]
    Dx,
    /// Nuclear medicine: the work-up scans of radioembolization.
    #[serde(rename = "NM")]
    Nm,
}

impl DicomModality {
    pub const ALL: [DicomModality; 8] = [
        DicomModality::Xa,
        DicomModality::Rf,
        DicomModality::Ct,
        DicomModality::Us,
        DicomModality::Mr,
        DicomModality::Cr,
        DicomModality::Dx,
        DicomModality::Nm,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DicomModality::Xa => "XA",
            DicomModality::Rf => "RF",
            DicomModality::Ct => "CT",
            DicomModality::Us => "US",
            DicomModality::Mr => "MR",
            DicomModality::Cr => "CR",
            DicomModality::Dx => "DX",
            DicomModality::Nm => "NM",
        }
    }

    pub fn parse(code: &str) -> Result<DicomModality, String> {
        DicomModality::ALL
            .into_iter()
            .find(|m| m.code() == code.trim())
            .ok_or_else(|| {
                format!(
                    "'{code}' is not a modality of IR's imaging systems: use one of {}",
                    DicomModality::ALL.map(DicomModality::code).join(", ")
                )
            })
    }
}

/// A DICOM Application Entity title (PS3.5 AE): 1–16 characters of printable ASCII other than
/// `\`, not only spaces; leading and trailing spaces are not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct AeTitle(String);

impl AeTitle {
    pub fn parse(title: &str) -> Result<AeTitle, String> {
        let trimmed = title.trim_matches(' ');
        let ok = !trimmed.is_empty()
            && trimmed.len() <= 16
            && trimmed
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'\\');
        if ok {
            Ok(AeTitle(trimmed.to_string()))
        } else {
            Err(format!(
                "'{title}' is not an AE title: 1-16 printable ASCII characters, no backslash, not only spaces"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AeTitle {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        AeTitle::parse(&value)
    }
}

impl From<AeTitle> for String {
    fn from(title: AeTitle) -> String {
        title.0
    }
}

impl Room {
    /// The room whose equipment has this AE title, among `rooms`.
    pub fn of_station<'a>(rooms: &'a [Room], ae_title: &str) -> Option<(&'a Room, &'a Equipment)> {
        let wanted = ae_title.trim_matches(' ');
        rooms.iter().find_map(|room| {
            room.equipment
                .iter()
                .find(|e| e.ae_title.as_str() == wanted)
                .map(|e| (room, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ae_titles_are_checked_as_dicom_says() {
        assert_eq!(AeTitle::parse(" ANGIO1 ").map(|t| t.0), Ok("ANGIO1".into()));
        for bad in ["", "    ", "A\\B", "SEVENTEEN-CHARS-X", "tab\there"] {
            assert!(AeTitle::parse(bad).is_err(), "{bad}");
        }
        assert!(DicomModality::parse("XA").is_ok());
        assert!(DicomModality::parse("DX").is_ok());
        assert!(DicomModality::parse("SR")
            .unwrap_err()
            .contains("XA, RF, CT, US, MR, CR, DX, NM"));
    }

    #[test]
    fn a_room_is_found_by_its_equipment_and_old_rooms_have_none() {
        let stored = r#"{"id":"angio-1","name":"Angio 1","kind":"angio_suite","modalities":["fluoroscopy"]}"#;
        let mut room: Room = serde_json::from_str(stored).expect("a room stored before equipment");
        assert!(room.equipment.is_empty());
        room.equipment.push(Equipment {
            ae_title: AeTitle::parse("ANGIO1").expect("title"),
            modality: DicomModality::Xa,
        });
        let rooms = [room];
        let (found, equipment) = Room::of_station(&rooms, "ANGIO1  ").expect("found");
        assert_eq!(
            (found.id.as_str(), equipment.modality.code()),
            ("angio-1", "XA")
        );
        assert!(Room::of_station(&rooms, "CT1").is_none());
    }
}

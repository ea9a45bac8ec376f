//! Modality Worklist items and how a C-FIND query is answered from them (PS3.4 Annex K). A
//! booked case becomes one [`ScheduledStep`] (the application fills it); [`answer`] matches a
//! query's identifier against a step's item and returns the requested keys with the step's
//! values — empty when the department does not hold one. Pure: no listener, no database.

use crate::matching::{matches, matches_date_and_time, BadKey, Vr};
use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use seldinger_app::WorklistEntry;
use seldinger_domain::patient::{Pregnancy, Sex};
use seldinger_domain::referral::Urgency;
use seldinger_domain::DepartmentTime;

/// A coded entry (Code Value, Coding Scheme Designator, Code Meaning).
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    pub value: String,
    pub scheme: String,
    pub meaning: String,
}

/// One scheduled procedure step as the worklist shows it: a booked case in a room, for one of
/// the room's systems. Text is as DICOM writes it (names `FAMILY^GIVEN`, dates `YYYYMMDD`,
/// times `HHMMSS`, in the department's time zone); empty when unknown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScheduledStep {
    pub patient_name: String,
    pub patient_id: String,
    /// Who issued the patient id: the department's site code.
    pub issuer_of_patient_id: String,
    pub birth_date: String,
    /// M, F, O, or empty.
    pub sex: String,
    /// Kilograms, as a decimal string.
    pub weight_kg: String,
    /// (0010,2110): contrast, latex, drugs.
    pub allergies: Vec<String>,
    /// (0010,21C0): 1 not pregnant, 2 possibly, 3 definitely, 4 unknown.
    pub pregnancy_status: Option<u16>,
    /// (0010,2000): what the team must know before starting.
    pub medical_alerts: Vec<String>,
    pub accession_number: String,
    pub study_instance_uid: String,
    /// The referral's requesting clinician: Referring Physician's Name (0008,0090) and
    /// Requesting Physician (0032,1032).
    pub referring_physician: String,
    pub requested_procedure_id: String,
    pub requested_procedure_description: String,
    pub requested_procedure_code: Option<Code>,
    /// STAT, HIGH, ROUTINE, MEDIUM or LOW.
    pub requested_procedure_priority: String,
    /// The room's systems of the step's modality: any of them may perform it (multi-valued).
    pub station_ae_titles: Vec<String>,
    pub station_name: String,
    /// The room, as people name it.
    pub location: String,
    pub modality: String,
    pub start_date: String,
    pub start_time: String,
    /// The booking's end: Scheduled Procedure Step End Date and Time (0040,0004), (0040,0005).
    pub end_date: String,
    pub end_time: String,
    /// (0032,1070): named when the vetting plans iodinated contrast (type 2C).
    pub contrast_agent: String,
    pub performing_physician: String,
    pub step_id: String,
    pub step_description: String,
}

impl ScheduledStep {
    /// The step for a worklist entry: its patient, study and booking as DICOM writes them, the
    /// start in the department's time zone.
    pub fn of(entry: &WorklistEntry, time: &DepartmentTime) -> ScheduledStep {
        let details = &entry.patient.details;
        let case = &entry.case;
        let start = case.booking.as_ref().map(|b| b.start);
        let end = case.booking.as_ref().map(|b| b.end);
        let accession = case.accession_number.clone().unwrap_or_default();
        let procedure_name = entry
            .procedure
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        ScheduledStep {
            patient_name: person_name(&details.name),
            patient_id: details.mrn.as_str().to_string(),
            issuer_of_patient_id: details.site.as_str().to_string(),
            birth_date: details.birth_date.format("%Y%m%d").to_string(),
            sex: match details.sex {
                Sex::Female => "F",
                Sex::Male => "M",
                Sex::Other => "O",
                Sex::Unknown => "",
            }
            .to_string(),
            weight_kg: details
                .weight_kg
                .map(|w| format!("{:.1}", w.kg()))
                .unwrap_or_default(),
            allergies: details
                .allergies
                .iter()
                .map(|a| a.substance.chars().take(64).collect())
                .collect(),
            // (0010,21C0): 1 not pregnant, 2 possibly, 3 definitely, 4 unknown.
            pregnancy_status: details.pregnancy.as_ref().map(|p| match p.status {
                Pregnancy::NotPregnant | Pregnancy::NotApplicable => 1,
                Pregnancy::PossiblyPregnant => 2,
                Pregnancy::Pregnant => 3,
                Pregnancy::Unknown => 4,
            }),
            medical_alerts: entry
                .alerts
                .iter()
                .map(|a| a.chars().take(64).collect())
                .collect(),
            accession_number: accession.clone(),
            study_instance_uid: case.study_instance_uid.clone().unwrap_or_default(),
            referring_physician: entry
                .requesting_clinician
                .as_deref()
                .map(free_text_name)
                .unwrap_or_default(),
            requested_procedure_id: accession,
            requested_procedure_description: procedure_name.chars().take(64).collect(),
            requested_procedure_code: entry.procedure.as_ref().map(|p| Code {
                value: code_value(p.id.as_str()),
                scheme: "99SELDINGER".into(),
                meaning: p.name.chars().take(64).collect(),
            }),
            requested_procedure_priority: match case.urgency {
                Urgency::Emergent => "STAT",
                Urgency::Urgent => "HIGH",
                Urgency::Routine => "ROUTINE",
            }
            .to_string(),
            station_ae_titles: entry
                .systems
                .iter()
                .map(|e| e.ae_title.as_str().to_string())
                .collect(),
            station_name: String::new(),
            // SH holds 16 characters: the room's name when it fits, else its short id.
            location: if entry.room.name.chars().count() <= 16 {
                entry.room.name.clone()
            } else {
                entry.room.id.as_str().chars().take(16).collect()
            },
            modality: entry.modality.code().to_string(),
            start_date: start.map(|s| time.format(s, "%Y%m%d")).unwrap_or_default(),
            start_time: start.map(|s| time.format(s, "%H%M%S")).unwrap_or_default(),
            end_date: end.map(|e| time.format(e, "%Y%m%d")).unwrap_or_default(),
            end_time: end.map(|e| time.format(e, "%H%M%S")).unwrap_or_default(),
            contrast_agent: if case.vetting.as_ref().is_some_and(|v| v.iodinated_contrast) {
                "Iodinated contrast medium".into()
            } else {
                String::new()
            },
            performing_physician: case
                .booking
                .as_ref()
                .and_then(|b| b.performing_physician.as_deref())
                .map(free_text_name)
                .unwrap_or_default(),
            // SH: 16 characters. One step per case and modality of its room (a room with an
            // angio system and an ultrasound has two), each for all its systems.
            step_id: format!(
                "{}{}",
                &case.id.0.simple().to_string()[..14].to_uppercase(),
                entry.modality.code()
            ),
            step_description: procedure_name.chars().take(64).collect(),
        }
    }
}

/// A name as a DICOM PN: `FAMILY^GIVEN^MIDDLE`, without trailing empty components (PS3.5
/// 6.2.1.1).
fn person_name(name: &seldinger_domain::patient::PersonName) -> String {
    let parts = [&name.family, &name.given, &name.middle];
    let used = parts
        .iter()
        .rposition(|p| !p.is_empty())
        .map_or(0, |i| i + 1);
    parts[..used]
        .iter()
        .map(|p| p.replace(['^', '\\', '='], " "))
        .collect::<Vec<_>>()
        .join("^")
}

/// A name as people wrote it ("Dr A. Okafor") as a PN of one component: separators read as
/// spaces, 64 characters at most.
fn free_text_name(name: &str) -> String {
    name.replace(['^', '\\', '='], " ")
        .chars()
        .take(64)
        .collect()
}

/// A catalogue id as a Code Value (SH, 16 characters): itself when it fits, else a stable short
/// form — its first characters and a hash of the whole id. Why not Long Code Value (0008,0119),
/// made for longer codes: systems older than it (dcmtk 3.6.7's worklist server among them)
/// take a code without a Code Value as incomplete. The code's meaning names the procedure.
pub fn code_value(id: &str) -> String {
    if id.chars().count() <= 16 {
        return id.to_string();
    }
    // FNV-1a (32 bits): stable across versions and platforms, unlike the standard hasher.
    let hash = id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let prefix: String = id.chars().take(7).collect();
    format!("{}-{hash:08x}", prefix.trim_end_matches('-'))
}

/// The keys of the Scheduled Procedure Step Sequence (0040,0100) this worklist holds.
const STEP_KEYS: &[Tag] = &[
    tags::SCHEDULED_STATION_AE_TITLE,
    tags::SCHEDULED_STATION_NAME,
    tags::SCHEDULED_PROCEDURE_STEP_LOCATION,
    tags::MODALITY,
    tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
    tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
    tags::SCHEDULED_PROCEDURE_STEP_END_DATE,
    tags::SCHEDULED_PROCEDURE_STEP_END_TIME,
    tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
    tags::SCHEDULED_PROCEDURE_STEP_ID,
    tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
    tags::SCHEDULED_PROCEDURE_STEP_STATUS,
    tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE,
    tags::REQUESTED_CONTRAST_AGENT,
    tags::PRE_MEDICATION,
    tags::COMMENTS_ON_THE_SCHEDULED_PROCEDURE_STEP,
];

/// The top-level keys this worklist holds (besides the step sequence).
const TOP_KEYS: &[Tag] = &[
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::ISSUER_OF_PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::PATIENT_WEIGHT,
    tags::ALLERGIES,
    tags::PREGNANCY_STATUS,
    tags::MEDICAL_ALERTS,
    tags::ACCESSION_NUMBER,
    tags::STUDY_INSTANCE_UID,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::REQUESTING_PHYSICIAN,
    tags::REQUESTED_PROCEDURE_ID,
    tags::REQUESTED_PROCEDURE_DESCRIPTION,
    tags::REQUESTED_PROCEDURE_CODE_SEQUENCE,
    tags::REQUESTED_PROCEDURE_PRIORITY,
    tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
    // Type 2 in Annex K's table: present, empty here (no referenced study or patient SOP).
    tags::REFERENCED_STUDY_SEQUENCE,
    tags::REFERENCED_PATIENT_SEQUENCE,
];

// Every attribute the worklist holds is in an item, empty when unknown (type 2): a query for a
// whole sequence gets them all, and dcmtk's worklist server takes the item as complete.
fn text(tag: Tag, vr: VR, value: &str) -> Option<DataElement<InMemDicomObject>> {
    Some(DataElement::new(tag, vr, PrimitiveValue::from(value)))
}

fn texts(tag: Tag, vr: VR, values: &[String]) -> Option<DataElement<InMemDicomObject>> {
    Some(match values {
        [] => DataElement::new(tag, vr, PrimitiveValue::Empty),
        _ => DataElement::new(
            tag,
            vr,
            PrimitiveValue::Strs(values.iter().cloned().collect()),
        ),
    })
}

impl ScheduledStep {
    /// The step as a worklist item: what a query is matched against and answered from.
    pub fn item(&self) -> InMemDicomObject {
        // The procedure's code, as requested and as the step's protocol (type 1C, beside the
        // step's description).
        let coded = |sequence| {
            self.requested_procedure_code.as_ref().map(|code| {
                DataElement::new(
                    sequence,
                    VR::SQ,
                    DataSetSequence::from(vec![InMemDicomObject::from_element_iter(
                        [
                            text(tags::CODE_VALUE, VR::SH, &code.value),
                            text(tags::CODING_SCHEME_DESIGNATOR, VR::SH, &code.scheme),
                            // A local scheme has one version: none named.
                            text(tags::CODING_SCHEME_VERSION, VR::SH, ""),
                            text(tags::CODE_MEANING, VR::LO, &code.meaning),
                        ]
                        .into_iter()
                        .flatten(),
                    )]),
                )
            })
        };
        let step = InMemDicomObject::from_element_iter(
            [
                texts(
                    tags::SCHEDULED_STATION_AE_TITLE,
                    VR::AE,
                    &self.station_ae_titles,
                ),
                text(tags::SCHEDULED_STATION_NAME, VR::SH, &self.station_name),
                text(
                    tags::SCHEDULED_PROCEDURE_STEP_LOCATION,
                    VR::SH,
                    &self.location,
                ),
                text(tags::MODALITY, VR::CS, &self.modality),
                text(
                    tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
                    VR::DA,
                    &self.start_date,
                ),
                text(
                    tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
                    VR::TM,
                    &self.start_time,
                ),
                text(
                    tags::SCHEDULED_PROCEDURE_STEP_END_DATE,
                    VR::DA,
                    &self.end_date,
                ),
                text(
                    tags::SCHEDULED_PROCEDURE_STEP_END_TIME,
                    VR::TM,
                    &self.end_time,
                ),
                text(tags::REQUESTED_CONTRAST_AGENT, VR::LO, &self.contrast_agent),
                // Pre-medication and comments: none recorded for the modality.
                text(tags::PRE_MEDICATION, VR::LO, ""),
                text(tags::COMMENTS_ON_THE_SCHEDULED_PROCEDURE_STEP, VR::LT, ""),
                text(
                    tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
                    VR::PN,
                    &self.performing_physician,
                ),
                text(tags::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, &self.step_id),
                text(
                    tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
                    VR::LO,
                    &self.step_description,
                ),
                text(tags::SCHEDULED_PROCEDURE_STEP_STATUS, VR::CS, "SCHEDULED"),
                coded(tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE),
            ]
            .into_iter()
            .flatten(),
        );
        let code = coded(tags::REQUESTED_PROCEDURE_CODE_SEQUENCE);
        InMemDicomObject::from_element_iter(
            [
                text(tags::PATIENT_NAME, VR::PN, &self.patient_name),
                text(tags::PATIENT_ID, VR::LO, &self.patient_id),
                text(
                    tags::ISSUER_OF_PATIENT_ID,
                    VR::LO,
                    &self.issuer_of_patient_id,
                ),
                text(tags::PATIENT_BIRTH_DATE, VR::DA, &self.birth_date),
                text(tags::PATIENT_SEX, VR::CS, &self.sex),
                text(tags::PATIENT_WEIGHT, VR::DS, &self.weight_kg),
                texts(tags::ALLERGIES, VR::LO, &self.allergies),
                Some(DataElement::new(
                    tags::PREGNANCY_STATUS,
                    VR::US,
                    self.pregnancy_status
                        .map_or(PrimitiveValue::Empty, PrimitiveValue::from),
                )),
                texts(tags::MEDICAL_ALERTS, VR::LO, &self.medical_alerts),
                text(tags::ACCESSION_NUMBER, VR::SH, &self.accession_number),
                text(tags::STUDY_INSTANCE_UID, VR::UI, &self.study_instance_uid),
                text(
                    tags::REFERRING_PHYSICIAN_NAME,
                    VR::PN,
                    &self.referring_physician,
                ),
                text(
                    tags::REQUESTING_PHYSICIAN,
                    VR::PN,
                    &self.referring_physician,
                ),
                text(
                    tags::REQUESTED_PROCEDURE_ID,
                    VR::SH,
                    &self.requested_procedure_id,
                ),
                text(
                    tags::REQUESTED_PROCEDURE_DESCRIPTION,
                    VR::LO,
                    &self.requested_procedure_description,
                ),
                code,
                text(
                    tags::REQUESTED_PROCEDURE_PRIORITY,
                    VR::CS,
                    &self.requested_procedure_priority,
                ),
                Some(DataElement::new(
                    tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
                    VR::SQ,
                    DataSetSequence::from(vec![step]),
                )),
                Some(DataElement::new(
                    tags::REFERENCED_STUDY_SEQUENCE,
                    VR::SQ,
                    DataSetSequence::from(Vec::<InMemDicomObject>::new()),
                )),
                Some(DataElement::new(
                    tags::REFERENCED_PATIENT_SEQUENCE,
                    VR::SQ,
                    DataSetSequence::from(Vec::<InMemDicomObject>::new()),
                )),
            ]
            .into_iter()
            .flatten(),
        )
    }
}

/// How a key's value is matched, by the VR the query gives it.
fn vr_of(vr: VR) -> Vr {
    match vr {
        VR::PN => Vr::PersonName,
        VR::DA => Vr::Date,
        VR::TM => Vr::Time,
        VR::DT => Vr::DateTime,
        VR::UI => Vr::Uid,
        _ => Vr::Text,
    }
}

fn stored_text(item: &InMemDicomObject, tag: Tag) -> String {
    item.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn tag_name(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.group(), tag.element())
}

/// Matches a query's identifier against a worklist item; `Some(identifier)` to return when it
/// matches: every key asked for, with the item's value or empty. Keys this worklist does not
/// hold are not matched on (an SCP need not support every optional key) and come back empty.
/// `Err` names a key the standard does not allow (a malformed date, a wild card in a UID, a
/// sequence key with more than one item).
pub fn answer(
    query: &InMemDicomObject,
    item: &InMemDicomObject,
) -> Result<Option<InMemDicomObject>, BadKey> {
    answer_level(query, item, TOP_KEYS)
}

fn answer_level(
    query: &InMemDicomObject,
    item: &InMemDicomObject,
    held: &[Tag],
) -> Result<Option<InMemDicomObject>, BadKey> {
    let mut response = InMemDicomObject::new_empty();
    let asked_text = |tag| {
        query
            .get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_matches([' ', '\0']).to_string())
            .filter(|s| !s.is_empty())
    };
    let start_asked = asked_text(tags::SCHEDULED_PROCEDURE_STEP_START_DATE)
        .zip(asked_text(tags::SCHEDULED_PROCEDURE_STEP_START_TIME));
    for key in query.iter() {
        let tag = key.tag();
        if !is_key(tag) {
            continue;
        }
        if !held.contains(&tag) {
            response.put(DataElement::new(tag, key.vr(), PrimitiveValue::Empty));
            continue;
        }
        if key.vr() == VR::SQ {
            let asked = key.items().unwrap_or(&[]);
            let stored = item.get(tag).and_then(|e| e.items()).unwrap_or(&[]);
            let returned = match asked {
                // Universal: no item, or one with no keys (PS3.4 C.2.2.2.6): the whole
                // sequence as held.
                [] => stored.to_vec(),
                [keys] if !keys.iter().any(|k| is_key(k.tag())) => stored.to_vec(),
                [keys] => {
                    let mut matched = None;
                    for candidate in stored {
                        if let Some(found) = answer_level(keys, candidate, nested_keys(tag))? {
                            matched = Some(found);
                            break;
                        }
                    }
                    match matched {
                        Some(found) => vec![found],
                        // An item of keys that none of the stored items matches.
                        None if has_matching_key(keys) => return Ok(None),
                        None => Vec::new(),
                    }
                }
                more => return Err(items_in_key(tag, more.len())),
            };
            response.put(DataElement::new(
                tag,
                VR::SQ,
                DataSetSequence::from(returned),
            ));
            continue;
        }
        let asked = key.to_str().map(|s| s.to_string()).unwrap_or_default();
        let stored = stored_text(item, tag);
        let matched = match &start_asked {
            // The scheduled start's date and time, both asked: one date-time range.
            Some((date, time)) if tag == tags::SCHEDULED_PROCEDURE_STEP_START_DATE => {
                matches_date_and_time(
                    date,
                    time,
                    &stored,
                    &stored_text(item, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
                )
            }
            Some(_) if tag == tags::SCHEDULED_PROCEDURE_STEP_START_TIME => Ok(true),
            _ => matches(vr_of(key.vr()), &asked, &stored),
        }
        .map_err(|BadKey(why)| BadKey(format!("{}: {why}", tag_name(tag))))?;
        if !matched {
            return Ok(None);
        }
        match item.get(tag) {
            Some(element) => response.put(element.clone()),
            None => response.put(DataElement::new(tag, key.vr(), PrimitiveValue::Empty)),
        };
    }
    Ok(Some(response))
}

/// The keys this worklist holds inside a sequence.
fn nested_keys(sequence: Tag) -> &'static [Tag] {
    if sequence == tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE {
        STEP_KEYS
    } else if sequence == tags::REFERENCED_STUDY_SEQUENCE
        || sequence == tags::REFERENCED_PATIENT_SEQUENCE
    {
        &[
            tags::REFERENCED_SOP_CLASS_UID,
            tags::REFERENCED_SOP_INSTANCE_UID,
        ]
    } else {
        &[
            tags::CODE_VALUE,
            tags::CODING_SCHEME_DESIGNATOR,
            tags::CODING_SCHEME_VERSION,
            tags::CODE_MEANING,
        ]
    }
}

fn items_in_key(sequence: Tag, items: usize) -> BadKey {
    BadKey(format!(
        "the sequence {} in a query holds one item of keys, not {items}",
        tag_name(sequence)
    ))
}

/// Whether a key is a key: group lengths and the character set belong to the message.
fn is_key(tag: Tag) -> bool {
    tag.element() != 0 && tag != tags::SPECIFIC_CHARACTER_SET
}

/// Checks a whole query before anything is read, so that a malformed key is refused even when
/// nothing is booked: each value as the standard allows it for its VR, each sequence with at
/// most one item of keys. `Ok` lists the keys this worklist does not hold (returned empty and
/// not matched on; the pending responses then carry the warning status).
pub fn check_query(query: &InMemDicomObject) -> Result<Vec<Tag>, BadKey> {
    fn level(
        query: &InMemDicomObject,
        held: &[Tag],
        unsupported: &mut Vec<Tag>,
    ) -> Result<(), BadKey> {
        for key in query.iter() {
            let tag = key.tag();
            if !is_key(tag) {
                continue;
            }
            if !held.contains(&tag) {
                unsupported.push(tag);
            } else if key.vr() == VR::SQ {
                match key.items().unwrap_or(&[]) {
                    [] => {}
                    [keys] => level(keys, nested_keys(tag), unsupported)?,
                    more => return Err(items_in_key(tag, more.len())),
                }
            } else {
                let asked = key.to_str().map(|s| s.to_string()).unwrap_or_default();
                matches(vr_of(key.vr()), &asked, "")
                    .map_err(|BadKey(why)| BadKey(format!("{}: {why}", tag_name(tag))))?;
            }
        }
        Ok(())
    }
    let mut unsupported = Vec::new();
    level(query, TOP_KEYS, &mut unsupported)?;
    Ok(unsupported)
}

/// Whether an item of keys asks for anything but universal matching.
fn has_matching_key(keys: &InMemDicomObject) -> bool {
    keys.iter().any(|key| {
        key.vr() != VR::SQ
            && key
                .to_str()
                .is_ok_and(|v| !v.trim_matches([' ', '\0', '*']).is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_a_pn_of_three_components_without_trailing_empty_ones() {
        let name = |family: &str, given: &str, middle: &str| {
            person_name(&seldinger_domain::patient::PersonName {
                family: family.into(),
                given: given.into(),
                middle: middle.into(),
            })
        };
        assert_eq!(
            name("Mozart", "Wolfgang", "Amadeus"),
            "Mozart^Wolfgang^Amadeus"
        );
        assert_eq!(name("Doe", "Jane", ""), "Doe^Jane");
        assert_eq!(name("Doe", "", ""), "Doe");
        assert_eq!(name("Doe", "", "Q"), "Doe^^Q");
        // A separator inside a part would split it: read as a space.
        assert_eq!(name("Doe^Smith", "A=B", ""), "Doe Smith^A B");
    }

    fn step() -> ScheduledStep {
        ScheduledStep {
            patient_name: "Synthetic^Sam".into(),
            patient_id: "SDM100037".into(),
            issuer_of_patient_id: "MAIN".into(),
            birth_date: "19550302".into(),
            sex: "M".into(),
            weight_kg: "82.5".into(),
            allergies: vec!["Iodinated contrast".into(), "Latex".into()],
            pregnancy_status: Some(4),
            accession_number: "261202AB12CD34EF".into(),
            study_instance_uid: "2.25.123456789".into(),
            requested_procedure_id: "261202AB12CD34EF".into(),
            requested_procedure_description: "Liver biopsy".into(),
            requested_procedure_code: Some(Code {
                value: "biopsy-liver".into(),
                scheme: "99SELDINGER".into(),
                meaning: "Liver biopsy".into(),
            }),
            station_ae_titles: vec!["ANGIO1".into()],
            location: "Angio suite 1".into(),
            modality: "XA".into(),
            start_date: "20261202".into(),
            start_time: "093000".into(),
            performing_physician: "Interventional^Iris".into(),
            step_id: "SPS1".into(),
            ..Default::default()
        }
    }

    fn key(tag: Tag, vr: VR, value: &str) -> DataElement<InMemDicomObject> {
        DataElement::new(tag, vr, PrimitiveValue::from(value))
    }

    /// A query as a modality sends it: the step keys in one item, the patient keys beside it.
    fn query(
        step_keys: Vec<DataElement<InMemDicomObject>>,
        top: Vec<DataElement<InMemDicomObject>>,
    ) -> InMemDicomObject {
        let mut all = top;
        all.push(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![InMemDicomObject::from_element_iter(step_keys)]),
        ));
        InMemDicomObject::from_element_iter(all)
    }

    fn found(query: &InMemDicomObject) -> Option<InMemDicomObject> {
        answer(query, &step().item()).expect("a valid query")
    }

    #[test]
    fn a_rooms_day_query_finds_its_step_and_returns_what_was_asked() {
        let asked = query(
            vec![
                key(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, "ANGIO1"),
                key(
                    tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
                    VR::DA,
                    "20261202",
                ),
                key(tags::MODALITY, VR::CS, ""),
                key(tags::SCHEDULED_PROCEDURE_STEP_START_TIME, VR::TM, ""),
            ],
            vec![
                key(tags::PATIENT_NAME, VR::PN, ""),
                key(tags::PATIENT_ID, VR::LO, ""),
                key(tags::ACCESSION_NUMBER, VR::SH, ""),
                key(tags::ALLERGIES, VR::LO, ""),
                key(tags::PATIENT_WEIGHT, VR::DS, ""),
                // Not held here: returned empty, not matched on.
                key(tags::ADMISSION_ID, VR::LO, "ADM1"),
            ],
        );
        let got = found(&asked).expect("matches");
        let text = |tag| stored_text(&got, tag);
        assert_eq!(text(tags::PATIENT_NAME), "Synthetic^Sam");
        assert_eq!(text(tags::ACCESSION_NUMBER), "261202AB12CD34EF");
        assert_eq!(text(tags::ALLERGIES), "Iodinated contrast\\Latex");
        assert_eq!(text(tags::ADMISSION_ID), "");
        assert!(
            got.get(tags::STUDY_INSTANCE_UID).is_none(),
            "only what was asked"
        );
        let steps = got
            .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .and_then(|e| e.items())
            .expect("the step");
        assert_eq!(stored_text(&steps[0], tags::MODALITY), "XA");
        assert_eq!(
            stored_text(&steps[0], tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
            "093000"
        );
        assert!(steps[0].get(tags::SCHEDULED_STATION_NAME).is_none());
    }

    #[test]
    fn another_room_another_day_or_another_patient_finds_nothing() {
        for (step_keys, top) in [
            (
                vec![key(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, "CTIR1")],
                vec![],
            ),
            (
                vec![key(
                    tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
                    VR::DA,
                    "20261203-",
                )],
                vec![],
            ),
            (vec![], vec![key(tags::PATIENT_NAME, VR::PN, "other*")]),
            (vec![key(tags::MODALITY, VR::CS, "CT")], vec![]),
        ] {
            assert!(found(&query(step_keys, top)).is_none());
        }
    }

    #[test]
    fn names_wild_cards_ranges_and_empty_sequences_match_as_the_standard_says() {
        let asked = query(
            vec![key(
                tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
                VR::TM,
                "0800-1000",
            )],
            vec![key(tags::PATIENT_NAME, VR::PN, "synth*^s?m")],
        );
        assert!(found(&asked).is_some());
        // An empty sequence asks for the whole step.
        let whole = InMemDicomObject::from_element_iter([DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(Vec::<InMemDicomObject>::new()),
        )]);
        let got = found(&whole).expect("matches");
        let steps = got
            .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .and_then(|e| e.items())
            .expect("the step");
        assert_eq!(
            stored_text(&steps[0], tags::SCHEDULED_STATION_AE_TITLE),
            "ANGIO1"
        );
        // A key the department holds no value for matches only universally.
        let mut unknown = step();
        unknown.weight_kg.clear();
        let by_weight =
            InMemDicomObject::from_element_iter([key(tags::PATIENT_WEIGHT, VR::DS, "82.5")]);
        assert!(answer(&by_weight, &unknown.item())
            .expect("valid")
            .is_none());
        assert!(answer(&by_weight, &step().item()).expect("valid").is_some());
    }

    #[test]
    fn catalogue_ids_become_code_values_of_at_most_sixteen_characters() {
        assert_eq!(code_value("liver-biopsy"), "liver-biopsy");
        let long = code_value("haemorrhage-embolization");
        assert!(long.len() <= 16 && long.starts_with("haemorr-"), "{long}");
        assert_eq!(long, code_value("haemorrhage-embolization"), "stable");
        assert_ne!(long, code_value("haemorrhage-embolisation"));
    }

    #[test]
    fn a_malformed_key_is_refused_naming_it() {
        let asked = query(
            vec![key(
                tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
                VR::DA,
                "2026-12-02",
            )],
            vec![],
        );
        let refused = answer(&asked, &step().item()).expect_err("a bad date");
        assert!(refused.0.contains("(0040,0002)"), "{refused}");
        let two_items = InMemDicomObject::from_element_iter([DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![
                InMemDicomObject::new_empty(),
                InMemDicomObject::new_empty(),
            ]),
        )]);
        let refused = answer(&two_items, &step().item()).expect_err("two items");
        assert!(refused.0.contains("(0040,0100)"), "{refused}");
    }
}

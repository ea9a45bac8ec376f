//! The Modality Worklist's C-FIND service (PS3.4 Annex K, C.4.1): a query is checked, the
//! booked cases it can concern are read through the application (the caller's scope, the audit),
//! each is matched as [`worklist::answer`] says, and the matches go back as pending responses in
//! the character set the text needs. The association loop in `scp` sends them and honours a
//! C-CANCEL between them.

use crate::matching::BadKey;
use crate::worklist::{self, ScheduledStep};
use chrono::{DateTime, NaiveDate, Utc};
use dicom_core::value::Value;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use seldinger_app::{App, AppError, Principal, WorklistRead};
use seldinger_domain::DepartmentTime;

// C-FIND statuses (PS3.4 C.4.1.1.4).
pub const PENDING: u16 = 0xFF00;
/// Pending, warning that one or more optional keys were not supported for matching.
pub const PENDING_UNSUPPORTED_KEYS: u16 = 0xFF01;
pub const SUCCESS: u16 = 0x0000;
pub const CANCELLED: u16 = 0xFE00;
pub const OUT_OF_RESOURCES: u16 = 0xA700;
pub const IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
pub const UNABLE_TO_PROCESS: u16 = 0xC000;

/// What a query found: the identifiers to return, one pending response each.
#[derive(Debug)]
pub struct Found {
    pub identifiers: Vec<InMemDicomObject>,
    /// The pending status: warns when the query held keys this worklist does not.
    pub pending_status: u16,
}

/// Why a query was not answered: its failure status and what to tell the caller.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub comment: String,
    pub offending: Vec<Tag>,
}

/// Answers a worklist query for `who`, the calling modality whose AE title is `calling`: only
/// the steps it may perform (its room's, of its modality) are read.
pub async fn find(
    app: &App,
    who: &Principal,
    calling: &str,
    query: &InMemDicomObject,
) -> Result<Found, Refused> {
    let unsupported = worklist::check_query(query).map_err(|BadKey(why)| Refused {
        status: IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
        offending: offending_tag(&why).into_iter().collect(),
        comment: why,
    })?;
    let time = app.time;
    let step_keys = step_keys(query);
    let stations = step_keys.and_then(single_station);
    let charset = Charset::asked(query);
    // Only what the query asks for is looked up (alerts and the requester cost reads).
    let asks =
        |tag| query.get(tag).is_some() || step_keys.is_some_and(|keys| keys.get(tag).is_some());
    let read = WorklistRead {
        between: window(step_keys, &time),
        stations: stations.as_deref(),
        alerts: asks(tags::MEDICAL_ALERTS),
        requester: asks(tags::REFERRING_PHYSICIAN_NAME) || asks(tags::REQUESTING_PHYSICIAN),
        asking_station: Some(calling),
    };
    let identifiers = app
        .worklist(who, &read, |entry| {
            let item = ScheduledStep::of(entry, &time).item();
            // `check_query` refused every key `answer` could.
            worklist::answer(query, &item).ok().flatten()
        })
        .await
        .map_err(|error| match error {
            AppError::Store(error) => {
                tracing::error!(%error, "worklist not read");
                Refused {
                    status: OUT_OF_RESOURCES,
                    comment: "the worklist could not be read; try again".into(),
                    offending: Vec::new(),
                }
            }
            other => Refused {
                status: UNABLE_TO_PROCESS,
                comment: other.to_string(),
                offending: Vec::new(),
            },
        })?
        .into_iter()
        .map(|identifier| charset.apply(identifier))
        .collect();
    Ok(Found {
        identifiers,
        pending_status: if unsupported.is_empty() {
            PENDING
        } else {
            PENDING_UNSUPPORTED_KEYS
        },
    })
}

/// The tag a refusal names first, "(gggg,eeee)", for the response's Offending Element.
fn offending_tag(why: &str) -> Option<Tag> {
    let open = why.find('(')?;
    let tag = why.get(open + 1..open + 10)?;
    let (group, element) = tag.split_once(',')?;
    Some(Tag(
        u16::from_str_radix(group, 16).ok()?,
        u16::from_str_radix(element, 16).ok()?,
    ))
}

/// The query's item of Scheduled Procedure Step keys, if it has one.
fn step_keys(query: &InMemDicomObject) -> Option<&InMemDicomObject> {
    query
        .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .and_then(|e| e.items())
        .and_then(|items| items.first())
}

fn key_text(keys: &InMemDicomObject, tag: Tag) -> String {
    keys.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_matches([' ', '\0']).to_string())
        .unwrap_or_default()
}

/// A station named exactly (no wild card, one value) narrows the read to that system.
fn single_station(keys: &InMemDicomObject) -> Option<Vec<String>> {
    let title = key_text(keys, tags::SCHEDULED_STATION_AE_TITLE);
    (!title.is_empty() && !title.contains(['*', '?', '\\'])).then(|| vec![title])
}

/// The span of start times the query's date key allows, in the department's days: a day, a
/// range of days, open at either end, or (no date asked) all time.
fn window(
    step_keys: Option<&InMemDicomObject>,
    time: &DepartmentTime,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let all_time = (
        NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2200, 1, 1).unwrap_or_default(),
    );
    let asked = step_keys
        .map(|keys| key_text(keys, tags::SCHEDULED_PROCEDURE_STEP_START_DATE))
        .unwrap_or_default();
    let date = |text: &str| NaiveDate::parse_from_str(text.trim(), "%Y%m%d").ok();
    let (first, last) = match asked.split_once('-') {
        None => match date(&asked) {
            Some(day) => (day, day),
            None => (all_time.0, all_time.1),
        },
        Some((from, to)) => (
            date(from).unwrap_or(all_time.0),
            date(to).unwrap_or(all_time.1),
        ),
    };
    let end = last.succ_opt().unwrap_or(last);
    (time.start_of(first), time.start_of(end))
}

/// The character set a response's text goes out in (PS3.4 C.4.1.1.3.2): none named when it is
/// all ASCII; the query's ISO_IR 100 (Latin-1) when it asked for that and the text fits;
/// otherwise UTF-8, ISO_IR 192, which holds every name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Charset {
    Latin1Asked,
    Other,
}

impl Charset {
    fn asked(query: &InMemDicomObject) -> Charset {
        let asked = query
            .get(tags::SPECIFIC_CHARACTER_SET)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if asked == "ISO_IR 100" {
            Charset::Latin1Asked
        } else {
            Charset::Other
        }
    }

    fn apply(self, mut identifier: InMemDicomObject) -> InMemDicomObject {
        let mut widest = 0u32;
        widest_char(&identifier, &mut widest);
        let named = match widest {
            0..=0x7F => None,
            0x80..=0xFF if self == Charset::Latin1Asked => Some("ISO_IR 100"),
            _ => Some("ISO_IR 192"),
        };
        identifier.remove_element(tags::SPECIFIC_CHARACTER_SET);
        if let Some(named) = named {
            identifier.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from(named),
            ));
        }
        identifier
    }
}

/// The highest code point in any text value of `object`, nested items included.
fn widest_char(object: &InMemDicomObject, widest: &mut u32) {
    for element in object.iter() {
        match element.value() {
            Value::Sequence(sequence) => {
                for item in sequence.items() {
                    widest_char(item, widest);
                }
            }
            Value::Primitive(PrimitiveValue::Str(text)) => {
                *widest = text.chars().map(u32::from).fold(*widest, u32::max)
            }
            Value::Primitive(PrimitiveValue::Strs(texts)) => {
                for text in texts {
                    *widest = text.chars().map(u32::from).fold(*widest, u32::max);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;

    fn with_date(date: &str) -> InMemDicomObject {
        InMemDicomObject::from_element_iter([DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
            VR::DA,
            PrimitiveValue::from(date),
        )])
    }

    #[test]
    fn the_date_key_bounds_the_read_in_department_days() {
        let time = DepartmentTime::parse("Europe/Paris").expect("zone");
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).expect("date");
        assert_eq!(
            window(Some(&with_date("20261202")), &time),
            time.day(day(2))
        );
        let (from, to) = window(Some(&with_date("20261202-20261204")), &time);
        assert_eq!((from, to), (time.start_of(day(2)), time.start_of(day(5))));
        let (from, to) = window(Some(&with_date("20261202-")), &time);
        assert_eq!(from, time.start_of(day(2)));
        assert_eq!(to.format("%Y").to_string(), "2200");
        let (from, to) = window(None, &time);
        assert!(from < time.start_of(day(1)) - chrono::Duration::days(365 * 100));
        assert!(to > time.start_of(day(2)));
    }

    #[test]
    fn text_goes_out_ascii_latin1_as_asked_or_utf8() {
        let name = |n: &str| {
            InMemDicomObject::from_element_iter([DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![InMemDicomObject::from_element_iter([
                    DataElement::new(
                        tags::SCHEDULED_PERFORMING_PHYSICIAN_NAME,
                        VR::PN,
                        PrimitiveValue::from(n),
                    ),
                ])]),
            )])
        };
        let charset = |c: Charset, n: &str| {
            c.apply(name(n))
                .get(tags::SPECIFIC_CHARACTER_SET)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.to_string())
        };
        assert_eq!(charset(Charset::Latin1Asked, "Smith^Ann"), None);
        assert_eq!(
            charset(Charset::Latin1Asked, "Müller^Jörg").as_deref(),
            Some("ISO_IR 100")
        );
        assert_eq!(
            charset(Charset::Other, "Müller^Jörg").as_deref(),
            Some("ISO_IR 192")
        );
        assert_eq!(
            charset(Charset::Latin1Asked, "Łukasz^Wójcik").as_deref(),
            Some("ISO_IR 192")
        );
    }

    #[test]
    fn a_refusal_names_the_key_it_refused() {
        assert_eq!(
            offending_tag("(0040,0002): '2026-12-02' is not a date"),
            Some(tags::SCHEDULED_PROCEDURE_STEP_START_DATE)
        );
        assert_eq!(offending_tag("no tag here"), None);
    }
}

//! Reading the data types several messages share: times (TS/DTM), the patient's identifier
//! (PID-3, CX) and name (XPN).

use crate::config::InterfaceConfig;
use crate::message::{Location, Received, Seg, Value};
use crate::problem::{ErrorCode, Problem};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use seldinger_domain::patient::{Mrn, PersonName, SiteCode};
use seldinger_domain::DepartmentTime;

/// A date (DT, or the date of a TS): at least YYYYMMDD.
pub fn date(text: &str, at: &Location) -> Result<NaiveDate, Problem> {
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits
        .get(..8)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        .ok_or_else(|| {
            Problem::invalid(
                at.clone(),
                format!("'{text}' is not a full date: use YYYYMMDD"),
            )
        })
}

/// An instant (TS/DTM: YYYYMMDDHHMM[SS[.S…]][+/-ZZZZ]), at least to the minute. Without an
/// offset it is the department's wall clock.
pub fn instant(text: &str, at: &Location, time: &DepartmentTime) -> Result<DateTime<Utc>, Problem> {
    let wrong = |why: &str| {
        Problem::invalid(
            at.clone(),
            format!("'{text}' is not a time {why}: use YYYYMMDDHHMM[SS][+ZZZZ]"),
        )
    };
    let text = text.trim();
    let (body, offset) = match text.find(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let (whole, _fraction) = body.split_once('.').unwrap_or((body, ""));
    if !whole.bytes().all(|b| b.is_ascii_digit()) || whole.len() < 12 {
        return Err(wrong("to the minute"));
    }
    let padded = match whole.len() {
        12 => format!("{whole}00"),
        14 => whole.to_string(),
        _ => return Err(wrong("of a known length")),
    };
    let local =
        NaiveDateTime::parse_from_str(&padded, "%Y%m%d%H%M%S").map_err(|_| wrong("that exists"))?;
    match offset {
        None => time
            .instant(local)
            .map_err(|e| Problem::invalid(at.clone(), e)),
        Some(offset) => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let digits = &offset[1..];
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(wrong("with a valid offset (+HHMM)"));
            }
            let hours: i32 = digits[..2]
                .parse()
                .map_err(|_| wrong("with a valid offset"))?;
            let minutes: i32 = digits[2..]
                .parse()
                .map_err(|_| wrong("with a valid offset"))?;
            let seconds = sign * (hours * 3600 + minutes * 60);
            let zone = chrono::FixedOffset::east_opt(seconds)
                .ok_or_else(|| wrong("with a valid offset"))?;
            local
                .and_local_timezone(zone)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| wrong("that exists"))
        }
    }
}

/// The patient a message is about: the first PID-3 identifier whose assigning authority the
/// interface file maps to a site.
pub fn patient_identity(
    received: &Received,
    config: &InterfaceConfig,
) -> Result<(SiteCode, Mrn), Problem> {
    let pid = received.segment("PID").ok_or_else(|| {
        Problem::new(
            ErrorCode::SegmentSequenceError,
            None,
            "the message has no PID segment: it must name its patient",
        )
    })?;
    identity_in(&pid, 3, config)
}

/// The first identifier of a CX list (`field` of `segment`: PID-3, MRG-1) whose assigning
/// authority the interface file maps to a site.
pub fn identity_in(
    segment: &Seg<'_>,
    field: usize,
    config: &InterfaceConfig,
) -> Result<(SiteCode, Mrn), Problem> {
    let name = segment.name().to_ascii_uppercase();
    let count = segment.repetitions(field);
    let mut seen = Vec::new();
    for repetition in 1..=count {
        let authority = authority_of(segment, field, repetition);
        let Some(site) = config.site_of(&authority) else {
            if !authority.is_empty() {
                seen.push(authority);
            }
            continue;
        };
        let mut at = segment.at(field).component(1);
        at.repetition = repetition;
        let id = match segment.get_in(field, repetition, 1) {
            Value::Text(t) => t,
            _ => {
                return Err(Problem::new(
                    ErrorCode::RequiredFieldMissing,
                    Some(at),
                    "the identifier is empty",
                ))
            }
        };
        let mrn = Mrn::parse(&id).map_err(|e| Problem::invalid(at, e))?;
        return Ok((site.clone(), mrn));
    }
    let mapped: Vec<String> = config
        .authorities()
        .map(|(a, s)| format!("{a} → {}", s.as_str()))
        .collect();
    Err(Problem::new(
        ErrorCode::UnknownKeyIdentifier,
        Some(segment.at(field).component(4)),
        if count == 0 {
            format!("{name}-{field} holds no patient identifier")
        } else {
            format!(
                "no {name}-{field} identifier comes from an assigning authority the interface file maps \
                 to a site (sent: {}; mapped: {}); add the authority under [identifiers]",
                if seen.is_empty() { "none named".to_string() } else { seen.join(", ") },
                if mapped.is_empty() { "none".to_string() } else { mapped.join(", ") }
            )
        },
    ))
}

/// CX-4.1 of a repetition of a CX field (the namespace of the assigning authority).
fn authority_of(segment: &Seg<'_>, field: usize, repetition: usize) -> String {
    match segment.get_sub(field, repetition, 4, 1) {
        Value::Text(t) => t.trim().to_string(),
        _ => String::new(),
    }
}

/// The patient's name (PID-5): the legal name (XPN-7 `L`) if sent, else the first. `None` when
/// not sent; a `""` is refused (a patient cannot lose their name).
pub fn person_name(pid: &Seg<'_>) -> Result<Option<PersonName>, Problem> {
    let count = pid.repetitions(5);
    if count == 0 {
        return match pid.get(5, 1) {
            Value::Delete => Err(Problem::invalid(
                pid.at(5),
                "a patient's name cannot be deleted (\"\")",
            )),
            _ => Ok(None),
        };
    }
    let legal = (1..=count)
        .find(|&r| pid.get_in(5, r, 7).text() == Some("L"))
        .unwrap_or(1);
    // XPN-1 is FN from v2.3 on: its first subcomponent is the surname.
    let family = match pid.get_sub(5, legal, 1, 1) {
        Value::Text(t) => t.trim().to_string(),
        _ => String::new(),
    };
    let given = pid
        .get_in(5, legal, 2)
        .text()
        .unwrap_or("")
        .trim()
        .to_string();
    // XPN-3: second and further given names.
    let middle = pid
        .get_in(5, legal, 3)
        .text()
        .unwrap_or("")
        .trim()
        .to_string();
    let mut at = pid.at(5).component(1);
    at.repetition = legal;
    if family.is_empty() {
        return Err(Problem::new(
            ErrorCode::RequiredFieldMissing,
            Some(at),
            "the family name is empty",
        ));
    }
    let limit = seldinger_domain::validation::SHORT_TEXT;
    if [&family, &given, &middle]
        .iter()
        .any(|part| part.chars().count() > limit)
    {
        return Err(Problem::invalid(
            at,
            format!("a name part is longer than {limit} characters"),
        ));
    }
    Ok(Some(PersonName {
        family,
        given,
        middle,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_with_or_without_an_offset_and_partial_ones_are_refused() {
        let at = Location::new("OBR", 7);
        let london = DepartmentTime::parse("Europe/London").unwrap();
        let t = instant("202612011030+0100", &at, &london).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T09:30:00+00:00");
        let t = instant("20260701103015.123", &at, &london).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-07-01T09:30:15+00:00");
        assert!(instant("20261201", &at, &london).is_err());
        assert!(instant("2026120110301", &at, &london).is_err());
        assert!(instant("202613011030", &at, &london).is_err());
        assert!(instant("202612011030+01", &at, &london).is_err());
        assert_eq!(date("19700101", &at).unwrap().to_string(), "1970-01-01");
        assert!(date("1970", &at).is_err());
    }
}

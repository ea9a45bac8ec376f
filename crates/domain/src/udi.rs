//! Unique Device Identification: what a scanned device label says, read from either issuing
//! agency's carrier that IR devices wear — GS1 (GS1-128, GS1 DataMatrix: Application Identifiers,
//! GS1 General Specifications §3 and §7.8) or HIBCC (ANSI/HIBC 2.6: a `+` then the labeler's code,
//! product, unit of measure, and lot, expiry or serial, with a modulo-43 check character).
//!
//! A label is either read whole or refused with the reason (which element, what was wrong):
//! a half-read UDI would put a wrong lot or expiry on a patient's record. `today` is a parameter:
//! GS1's two-digit years are placed in the century nearest to it (GS1 General Specifications
//! §7.12), and nothing here reads a clock.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Which issuing agency's rules the label follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Issuer {
    Gs1,
    Hibcc,
}

impl Issuer {
    /// The issuer's OID-based URI, as FHIR's `Device.udiCarrier.issuer` names it.
    pub fn uri(self) -> &'static str {
        match self {
            Issuer::Gs1 => "http://hl7.org/fhir/NamingSystem/gs1-di",
            Issuer::Hibcc => "http://hl7.org/fhir/NamingSystem/hibcc-dI",
        }
    }
}

/// A device label, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Udi {
    pub issuer: Issuer,
    /// The device identifier (UDI-DI): a GTIN-14, or HIBCC's labeler code, product and unit.
    pub device_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufactured: Option<NaiveDate>,
    /// The whole label in its human-readable form (GS1 with AIs in brackets), as kept.
    pub carrier: String,
}

impl Udi {
    /// One line for a page or a history: the device identifier, then what else the label holds.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("UDI-DI {}", self.device_identifier)];
        if let Some(lot) = &self.lot {
            parts.push(format!("lot {lot}"));
        }
        if let Some(serial) = &self.serial {
            parts.push(format!("serial {serial}"));
        }
        if let Some(expiry) = self.expiry {
            parts.push(format!("expires {expiry}"));
        }
        parts.join(", ")
    }
}

/// Reads a scanned or typed label: GS1 with or without brackets around the AIs, with the group
/// separator (ASCII 29) a scanner sends for FNC1, with or without an AIM symbology identifier
/// (`]d2`, `]C1`, `]Q3`, `]e0`); or HIBCC (`+…`, optionally within Code 39's `*` or as two symbols,
/// primary then secondary, separated by a space).
pub fn parse(scanned: &str, today: NaiveDate) -> Result<Udi, String> {
    let text = scanned.trim_matches(|c: char| c.is_whitespace() && c != '\u{1d}');
    let text = strip_symbology(text);
    if text.is_empty() {
        return Err("the label is empty: scan the device's UDI barcode".into());
    }
    if text.len() > 200 {
        return Err("longer than any UDI (200 characters at most)".into());
    }
    let hibcc = text.trim_matches('*');
    if hibcc.starts_with('+') {
        return parse_hibcc(hibcc, today);
    }
    if text.starts_with('(')
        || text.starts_with('\u{1d}')
        || text.starts_with(|c: char| c.is_ascii_digit())
    {
        return parse_gs1(text, today);
    }
    Err("neither a GS1 label (digits, or (01)…) nor an HIBCC one (+…)".into())
}

fn strip_symbology(text: &str) -> &str {
    match text.as_bytes() {
        [b']', letter, digit, ..] if letter.is_ascii_alphabetic() && digit.is_ascii_digit() => {
            &text[3..]
        }
        _ => text,
    }
}

// ---- GS1 ----

const GS: char = '\u{1d}';

#[derive(Clone, Copy)]
enum Content {
    /// Digits only.
    Numeric,
    /// GS1's 82 characters (General Specifications figure 7.11-1).
    Alphanumeric,
}

/// An Application Identifier a device label may carry: its length (fixed, or at most) and content.
struct Ai {
    code: &'static str,
    title: &'static str,
    fixed: bool,
    length: usize,
    content: Content,
}

const fn ai(
    code: &'static str,
    title: &'static str,
    fixed: bool,
    length: usize,
    content: Content,
) -> Ai {
    Ai {
        code,
        title,
        fixed,
        length,
        content,
    }
}

/// The AIs found on device labels (GS1 General Specifications figure 3.2-1).
#[rustfmt::skip]
const AIS: &[Ai] = &[
    ai("01", "GTIN", true, 14, Content::Numeric),
    ai("02", "GTIN of contained items", true, 14, Content::Numeric),
    ai("10", "batch/lot", false, 20, Content::Alphanumeric),
    ai("11", "production date", true, 6, Content::Numeric),
    ai("13", "packaging date", true, 6, Content::Numeric),
    ai("15", "best before date", true, 6, Content::Numeric),
    ai("16", "sell by date", true, 6, Content::Numeric),
    ai("17", "expiry date", true, 6, Content::Numeric),
    ai("20", "internal product variant", true, 2, Content::Numeric),
    ai("21", "serial number", false, 20, Content::Alphanumeric),
    ai("22", "consumer product variant", false, 20, Content::Alphanumeric),
    ai("30", "count of items", false, 8, Content::Numeric),
    ai("37", "count of trade items", false, 8, Content::Numeric),
    ai("235", "third-party serialised extension", false, 28, Content::Alphanumeric),
    ai("240", "additional product identification", false, 30, Content::Alphanumeric),
    ai("241", "customer part number", false, 30, Content::Alphanumeric),
    ai("250", "secondary serial number", false, 30, Content::Alphanumeric),
    ai("251", "reference to source entity", false, 30, Content::Alphanumeric),
    ai("7003", "expiry date and time", true, 10, Content::Numeric),
    ai("8012", "software version", false, 20, Content::Alphanumeric),
];

fn known_ai(digits: &str) -> Option<&'static Ai> {
    AIS.iter().find(|a| digits.starts_with(a.code))
}

fn gs1_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(c)
}

/// The elements of a GS1 label, each (AI, value), in order.
fn gs1_elements(text: &str) -> Result<Vec<(&'static Ai, String)>, String> {
    let mut elements = Vec::new();
    if let Some(bracketed) = text.strip_prefix('(') {
        // (AI)value(AI)value: a value runs to the next "(" that opens a known AI.
        let mut rest = bracketed;
        loop {
            let (code, after) = rest
                .split_once(')')
                .ok_or_else(|| format!("'({rest}' opens an AI that is never closed"))?;
            let ai = AIS
                .iter()
                .find(|a| a.code == code)
                .ok_or_else(|| unknown_ai(code))?;
            let mut end = after.len();
            let mut search = 0;
            while let Some(at) = after[search..].find('(') {
                let at = search + at;
                let closes = after[at + 1..]
                    .find(')')
                    .map(|c| &after[at + 1..at + 1 + c]);
                let digits = |c: &str| c.len() <= 4 && c.chars().all(|d| d.is_ascii_digit());
                let unclosed = closes.is_none() && digits(&after[at + 1..]);
                if unclosed || closes.is_some_and(|c| c.len() >= 2 && digits(c)) {
                    end = at;
                    break;
                }
                search = at + 1;
            }
            elements.push((ai, after[..end].to_string()));
            if end == after.len() {
                break;
            }
            rest = &after[end + 1..];
        }
        return Ok(elements);
    }
    let mut rest = text.trim_start_matches(GS);
    while !rest.is_empty() {
        let ai =
            known_ai(rest).ok_or_else(|| unknown_ai(&rest.chars().take(4).collect::<String>()))?;
        let data = &rest[ai.code.len()..];
        let (value, next) = if ai.fixed {
            let take = data
                .char_indices()
                .nth(ai.length)
                .map(|(i, _)| i)
                .unwrap_or(data.len());
            (&data[..take], &data[take..])
        } else {
            match data.find(GS) {
                Some(at) => (&data[..at], &data[at..]),
                None => (data, ""),
            }
        };
        elements.push((ai, value.to_string()));
        // A scanner may send a separator after a fixed-length element too; it means nothing.
        rest = next.trim_start_matches(GS);
    }
    Ok(elements)
}

fn unknown_ai(code: &str) -> String {
    let known: Vec<&str> = AIS.iter().map(|a| a.code).collect();
    format!(
        "'{code}' is not a GS1 Application Identifier a device label carries; known: {}",
        known.join(", ")
    )
}

fn parse_gs1(text: &str, today: NaiveDate) -> Result<Udi, String> {
    let elements = gs1_elements(text)?;
    let mut udi = Udi {
        issuer: Issuer::Gs1,
        device_identifier: String::new(),
        lot: None,
        serial: None,
        expiry: None,
        manufactured: None,
        carrier: String::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for (ai, value) in &elements {
        let name = format!("({}) {}", ai.code, ai.title);
        if seen.contains(&ai.code) {
            return Err(format!("{name} is given twice"));
        }
        seen.push(ai.code);
        let length = value.chars().count();
        if length == 0 {
            return Err(format!("{name} is empty"));
        }
        if ai.fixed && length != ai.length {
            return Err(format!("{name} must be {} digits, not {length}", ai.length));
        }
        if !ai.fixed && length > ai.length {
            return Err(format!(
                "{name} is at most {} characters, not {length}",
                ai.length
            ));
        }
        match ai.content {
            Content::Numeric if !value.chars().all(|c| c.is_ascii_digit()) => {
                return Err(format!("{name} must be digits only: '{value}'"))
            }
            Content::Alphanumeric => {
                if let Some(c) = value.chars().find(|c| !gs1_character(*c)) {
                    return Err(format!(
                        "{name} holds '{c}', which GS1 does not allow in it"
                    ));
                }
            }
            _ => {}
        }
        match ai.code {
            "01" => {
                if !gs1_check_digit_holds(value) {
                    return Err(format!(
                        "{name} '{value}': its check digit is wrong (a misread or mistyped label)"
                    ));
                }
                udi.device_identifier = value.clone();
            }
            "10" => udi.lot = Some(value.clone()),
            "21" => udi.serial = Some(value.clone()),
            "17" => udi.expiry = Some(gs1_date(&name, value, today)?),
            "7003" => udi.expiry = Some(gs1_date(&name, &value[..6], today)?),
            "11" => udi.manufactured = Some(gs1_date(&name, value, today)?),
            _ => {}
        }
    }
    if udi.device_identifier.is_empty() {
        return Err("no (01) GTIN: a UDI's device identifier is missing".into());
    }
    udi.carrier = elements
        .iter()
        .map(|(ai, value)| format!("({}){value}", ai.code))
        .collect();
    Ok(udi)
}

/// GS1's modulo-10 check digit (General Specifications §7.9): weights 3 and 1 from the right.
fn gs1_check_digit_holds(digits: &str) -> bool {
    let values: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    let Some((check, body)) = values.split_last() else {
        return false;
    };
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d * 3 } else { *d })
        .sum();
    (10 - sum % 10) % 10 == *check
}

/// YYMMDD; a day of 00 means the month's last day (§3.4.5); the century is the one that puts
/// the year nearest today (§7.12: up to 49 years ahead, 50 behind).
fn gs1_date(name: &str, value: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let field = |range: std::ops::Range<usize>| value[range].parse::<u32>().unwrap_or(99);
    let (yy, month, day) = (field(0..2) as i32, field(2..4), field(4..6));
    let this = today.year();
    let mut year = this - this.rem_euclid(100) + yy;
    let difference = yy - this.rem_euclid(100);
    if difference >= 51 {
        year -= 100;
    } else if difference <= -50 {
        year += 100;
    }
    let date = if day == 0 {
        NaiveDate::from_ymd_opt(year, month, 1).and_then(last_of_month)
    } else {
        NaiveDate::from_ymd_opt(year, month, day)
    };
    date.ok_or_else(|| format!("{name} '{value}' is not a date (YYMMDD)"))
}

fn last_of_month(first: NaiveDate) -> Option<NaiveDate> {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.and_then(|n| n.pred_opt())
}

// ---- HIBCC ----

const HIBC_CHARACTERS: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%";

/// The modulo-43 check character of `data` (ANSI/HIBC 2.6 appendix B).
pub fn hibc_check_character(data: &str) -> Option<char> {
    let mut sum = 0;
    for c in data.chars() {
        sum += HIBC_CHARACTERS.find(c)?;
    }
    HIBC_CHARACTERS.chars().nth(sum % 43)
}

fn parse_hibcc(text: &str, today: NaiveDate) -> Result<Udi, String> {
    // Two symbols (primary, then secondary with its link character), or one.
    let symbols: Vec<&str> = text.split_whitespace().collect();
    for symbol in &symbols {
        if !symbol.starts_with('+') {
            return Err(format!("'{symbol}': every HIBC symbol begins with '+'"));
        }
        if let Some(c) = symbol.chars().find(|c| !HIBC_CHARACTERS.contains(*c)) {
            return Err(format!(
                "'{c}' is not an HIBC character (0-9, A-Z, - . space $ / + %)"
            ));
        }
        let (data, check) = symbol.split_at(symbol.len() - 1);
        let expected = hibc_check_character(data).unwrap_or('?');
        if !check.starts_with(expected) {
            return Err(format!(
                "the check character of '{symbol}' is '{check}', but the data make it '{expected}' (a misread or mistyped label)"
            ));
        }
    }
    let (primary, secondary) = match symbols.as_slice() {
        [one] => {
            let data = &one[1..one.len() - 1];
            match data.split_once('/') {
                Some((primary, secondary)) => (primary, Some(secondary.to_string())),
                None => (data, None),
            }
        }
        [first, second] => {
            let primary = &first[1..first.len() - 1];
            let primary_check = &first[first.len() - 1..];
            let data = &second[1..second.len() - 1];
            // The secondary's last data character links it to its primary's check character.
            let (secondary, link) = data.split_at(data.len().saturating_sub(1));
            if link != primary_check {
                return Err(format!(
                    "the secondary symbol's link character '{link}' is not the primary's check character '{primary_check}': they are not one device's"
                ));
            }
            (primary, Some(secondary.to_string()))
        }
        _ => return Err("an HIBCC label is one symbol, or a primary and a secondary".into()),
    };
    let device_identifier = hibcc_primary(primary)?;
    let mut udi = Udi {
        issuer: Issuer::Hibcc,
        device_identifier,
        lot: None,
        serial: None,
        expiry: None,
        manufactured: None,
        carrier: symbols.join(" "),
    };
    if let Some(secondary) = secondary {
        hibcc_secondary(&secondary, &mut udi, today)?;
    }
    Ok(udi)
}

/// Labeler code (4: a letter, then letters or digits), product (1-18), unit of measure (a digit).
fn hibcc_primary(primary: &str) -> Result<String, String> {
    let alnum = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    if primary.len() < 6 || primary.len() > 23 || !alnum(primary) {
        return Err(format!(
            "the primary data '{primary}' must be a labeler code (4), a product number (1-18) and a unit of measure (1 digit), letters and digits only"
        ));
    }
    if !primary.starts_with(|c: char| c.is_ascii_uppercase()) {
        return Err(format!(
            "the labeler code of '{primary}' must begin with a letter"
        ));
    }
    if !primary.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "'{primary}' must end with its unit of measure, a digit"
        ));
    }
    Ok(primary.to_string())
}

/// The secondary data: quantity, a date in one of the flagged formats, lot or serial, and
/// supplemental fields (`/S` serial, `/14D` expiry, `/16D` manufacture, as YYYYMMDD).
fn hibcc_secondary(secondary: &str, udi: &mut Udi, today: NaiveDate) -> Result<(), String> {
    let mut fields = secondary.split('/');
    let first = fields.next().unwrap_or_default();
    let (serial, rest) = if let Some(rest) = first.strip_prefix("$$+") {
        (true, flagged_date(rest, udi, today)?)
    } else if let Some(rest) = first.strip_prefix("$$") {
        (false, flagged_date(rest, udi, today)?)
    } else if let Some(rest) = first.strip_prefix("$+") {
        (true, rest)
    } else if let Some(rest) = first.strip_prefix('$') {
        (false, rest)
    } else if first.len() >= 5 && first[..5].chars().all(|c| c.is_ascii_digit()) {
        // The oldest form: a Julian expiry date (YYJJJ), then the lot.
        udi.expiry = Some(julian(&first[..5], today)?);
        (false, &first[5..])
    } else {
        return Err(format!(
            "the secondary data '{first}' does not begin as HIBC has it ($, $$, $+, $$+ or a YYJJJ date)"
        ));
    };
    if rest.len() > 18 {
        return Err(format!(
            "'{rest}': a lot or serial number is at most 18 characters"
        ));
    }
    if !rest.is_empty() {
        if serial {
            udi.serial = Some(rest.to_string());
        } else {
            udi.lot = Some(rest.to_string());
        }
    }
    for field in fields {
        if let Some(serial) = field.strip_prefix('S') {
            udi.serial = Some(serial.to_string());
        } else if let Some(date) = field.strip_prefix("14D") {
            udi.expiry = Some(yyyymmdd(date, "/14D expiry")?);
        } else if let Some(date) = field.strip_prefix("16D") {
            udi.manufactured = Some(yyyymmdd(date, "/16D manufacture date")?);
        } else {
            return Err(format!(
                "'/{field}' is not a supplemental field read here (/S serial, /14D expiry, /16D manufacture)"
            ));
        }
    }
    Ok(())
}

/// After `$$`: an optional quantity (flag 8: two digits, 9: five), then the date by its flag.
fn flagged_date<'a>(text: &'a str, udi: &mut Udi, today: NaiveDate) -> Result<&'a str, String> {
    let mut rest = text;
    match rest.chars().next() {
        Some('8') => {
            rest = rest
                .get(3..)
                .ok_or("a quantity (flag 8) needs two digits")?
        }
        Some('9') => {
            rest = rest
                .get(6..)
                .ok_or("a quantity (flag 9) needs five digits")?
        }
        _ => {}
    }
    let flag = rest.chars().next().ok_or("the date is missing after $$")?;
    let digits = |from: usize, n: usize| -> Result<&str, String> {
        rest.get(from..from + n)
            .filter(|d| d.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| format!("'{rest}': the date (flag {flag}) needs {n} digits"))
    };
    let century = |yy: &str| -> Result<i32, String> {
        let yy: i32 = yy.parse().map_err(|_| "a year is two digits".to_string())?;
        Ok(today.year() - today.year().rem_euclid(100) + yy)
    };
    let date = |y: i32, m: &str, d: &str| {
        NaiveDate::from_ymd_opt(y, m.parse().unwrap_or(0), d.parse().unwrap_or(0))
            .ok_or_else(|| format!("'{rest}' holds no real date"))
    };
    let (expiry, used) = match flag {
        '0' | '1' => {
            let d = digits(0, 4)?;
            let first = NaiveDate::from_ymd_opt(century(&d[2..4])?, d[..2].parse().unwrap_or(0), 1);
            (first.and_then(last_of_month).ok_or_else(|| format!("'{d}' is not MMYY"))?, 4)
        }
        '2' => {
            let d = digits(1, 6)?;
            (date(century(&d[4..6])?, &d[..2], &d[2..4])?, 7)
        }
        '3' => {
            let d = digits(1, 6)?;
            (date(century(&d[..2])?, &d[2..4], &d[4..6])?, 7)
        }
        '4' => {
            let d = digits(1, 8)?;
            (date(century(&d[..2])?, &d[2..4], &d[4..6])?, 9)
        }
        '5' => (julian(digits(1, 5)?, today)?, 6),
        '6' => (julian(&digits(1, 7)?[..5], today)?, 8),
        '7' => return Ok(&rest[1..]),
        other => {
            return Err(format!(
                "'{other}' is not an HIBC date format flag (0-1 MMYY, 2 MMDDYY, 3 YYMMDD, 4 YYMMDDHH, 5 YYJJJ, 6 YYJJJHH, 7 none)"
            ))
        }
    };
    udi.expiry = Some(expiry);
    Ok(&rest[used..])
}

fn julian(yyjjj: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let yy: i32 = yyjjj[..2]
        .parse()
        .map_err(|_| "a year is two digits".to_string())?;
    let day: u32 = yyjjj[2..]
        .parse()
        .map_err(|_| "a day of the year is three digits".to_string())?;
    NaiveDate::from_yo_opt(today.year() - today.year().rem_euclid(100) + yy, day)
        .ok_or_else(|| format!("'{yyjjj}' is not a year and day of the year (YYJJJ)"))
}

fn yyyymmdd(value: &str, what: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(value, "%Y%m%d")
        .map_err(|_| format!("{what} '{value}' is not a date (YYYYMMDD)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Whatever a scanner or a keyboard sends: an answer, never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in "\\PC{0,80}") {
            let _ = parse(&text, today());
        }

        #[test]
        fn label_shaped_text_is_read_or_refused(
            text in "(\\]d2)?[0-9()\u{1d}A-Z+$/%. -]{0,60}"
        ) {
            let _ = parse(&text, today());
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).expect("date")
    }

    fn day(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn a_gs1_label_reads_alike_bracketed_scanned_and_with_its_symbology() {
        let forms = [
            "(01)00884838079489(17)280100(10)ABC123(21)S1",
            "010088483807948917280100",
            "]d2010088483807948917280100",
        ];
        let full = parse(forms[0], today()).expect("bracketed");
        assert_eq!(full.device_identifier, "00884838079489");
        assert_eq!(full.expiry, day(2028, 1, 31), "day 00: the month's last");
        assert_eq!(full.lot.as_deref(), Some("ABC123"));
        assert_eq!(full.serial.as_deref(), Some("S1"));
        assert_eq!(full.carrier, forms[0]);
        let scanned = parse(
            "]d2010088483807948917280100\u{1d}10ABC123\u{1d}21S1",
            today(),
        )
        .expect("scanned");
        assert_eq!(scanned, full);
        for form in &forms[1..] {
            let short = parse(form, today()).expect(form);
            assert_eq!(short.expiry, full.expiry);
            assert_eq!(short.lot, None);
        }
    }

    #[test]
    fn gs1_years_fall_in_the_century_nearest_today() {
        let read = |yy: &str| {
            parse(&format!("(01)00884838079489(17){yy}0615"), today())
                .expect("label")
                .expiry
        };
        assert_eq!(read("75"), day(2075, 6, 15));
        assert_eq!(read("77"), day(1977, 6, 15));
        assert_eq!(read("99"), day(1999, 6, 15));
    }

    #[test]
    fn a_malformed_gs1_label_is_refused_with_its_reason() {
        for (label, reason) in [
            ("(01)00884838079487", "check digit is wrong"),
            ("(01)0088483807948", "must be 14 digits"),
            ("(01)00884838079489(17)281301", "is not a date"),
            (
                "(01)00884838079489(99)X",
                "not a GS1 Application Identifier",
            ),
            ("(17)280100(10)A", "no (01) GTIN"),
            ("(01)00884838079489(10)A(10)B", "given twice"),
            ("(01)00884838079489(10)ABCDEFGHIJKLMNOPQRSTU", "at most 20"),
            ("(01)00884838079489(10)A#B", "GS1 does not allow"),
            ("(01)00884838079489(10", "never closed"),
            ("", "empty"),
            ("hello", "neither a GS1 label"),
        ] {
            let refused = parse(label, today()).expect_err(label);
            assert!(refused.contains(reason), "{label}: {refused}");
        }
    }

    #[test]
    fn hibcc_labels_read_with_their_check_characters() {
        let primary = "+A99912345B1";
        let check = hibc_check_character(primary).expect("check");
        let one = parse(&format!("*{primary}{check}*"), today()).expect("primary");
        assert_eq!(one.issuer, Issuer::Hibcc);
        assert_eq!(one.device_identifier, "A99912345B1");
        let combined = format!("{primary}/$$3280615LOT42");
        let combined = format!("{combined}{}", hibc_check_character(&combined).expect("c"));
        let read = parse(&combined, today()).expect("combined");
        assert_eq!(read.expiry, day(2028, 6, 15));
        assert_eq!(read.lot.as_deref(), Some("LOT42"));
        let secondary = format!("+$$+0728SN1{check}");
        let secondary = format!(
            "{secondary}{}",
            hibc_check_character(&secondary).expect("c")
        );
        let two = parse(&format!("{primary}{check} {secondary}"), today()).expect("two symbols");
        assert_eq!(two.expiry, day(2028, 7, 31), "MMYY: the month's last day");
        assert_eq!(two.serial.as_deref(), Some("SN1"));
        let bad_check = format!("{primary}{}", if check == 'A' { 'B' } else { 'A' });
        assert!(parse(&bad_check, today())
            .expect_err("check")
            .contains("check character"));
        let other = "+$$+0728SN1Z".to_string();
        let other = format!("{other}{}", hibc_check_character(&other).expect("c"));
        let unlinked = parse(&format!("{primary}{check} {other}"), today());
        if check != 'Z' {
            assert!(unlinked.expect_err("link").contains("link character"));
        }
    }
}

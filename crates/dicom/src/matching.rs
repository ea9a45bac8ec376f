//! Attribute matching for C-FIND queries, as PS3.4 C.2.2.2 defines it: universal, single value,
//! wild card, range (dates, times, date-times), list of UIDs; sequence matching is the caller's
//! (an item matches when every key in the query's item matches). Pure: a query's value and a
//! stored value in, whether they match out — or, for a query the standard does not allow, why.
//!
//! Choices the standard leaves to the implementation, made as a department would expect:
//! person names match regardless of case (C.2.2.2.1 allows it; a radiographer types "smith*"),
//! other text exactly; leading and trailing spaces are padding, not content; a stored value with
//! several values (`\`) matches when any one does; times of lower precision in a range cover
//! their whole hour or minute at the upper end ("0800-10" reaches 10:59:59).

/// How an attribute's value is matched (the value representations C-FIND keys use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vr {
    /// AE, CS, LO, LT, SH, ST, UC, UT: exact, or wild card.
    Text,
    /// PN: as text, but regardless of case.
    PersonName,
    /// DA: a date, or a range of dates.
    Date,
    /// TM: a time, or a range of times.
    Time,
    /// DT: a date-time, or a range of them.
    DateTime,
    /// UI: one UID, or a list of them (`\`).
    Uid,
}

/// A query value the standard does not allow for its attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadKey(pub String);

impl std::fmt::Display for BadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `stored` matches the query value `query` for an attribute of `vr`. An empty query
/// (or `*` for text) is universal matching: everything matches, even an empty stored value.
/// Otherwise an empty stored value matches nothing.
pub fn matches(vr: Vr, query: &str, stored: &str) -> Result<bool, BadKey> {
    let query = trim(query);
    if query.is_empty() {
        return Ok(true);
    }
    let values: Vec<&str> = stored.split('\\').map(trim).collect();
    match vr {
        Vr::Text | Vr::PersonName => {
            let fold = vr == Vr::PersonName;
            if query.chars().all(|c| c == '*') {
                return Ok(true);
            }
            Ok(values
                .iter()
                .any(|value| !value.is_empty() && wild_card(query, value, fold)))
        }
        Vr::Uid => {
            let wanted: Vec<&str> = query.split('\\').map(trim).collect();
            if let Some(bad) = wanted.iter().find(|uid| !is_uid(uid)) {
                return Err(BadKey(format!(
                    "'{bad}' is not a UID (digits and dots, at most 64 characters); wild cards are not allowed in UIDs"
                )));
            }
            Ok(values.iter().any(|value| wanted.contains(value)))
        }
        Vr::Date | Vr::Time | Vr::DateTime => {
            let bounds: Bounds = match vr {
                Vr::Date => date_bounds,
                Vr::Time => time_bounds,
                _ => date_time_bounds,
            };
            let range = Range::read(query, bounds)?;
            Ok(values
                .iter()
                .any(|value| bounds(value).is_ok_and(|(low, _)| range.contains(&low))))
        }
    }
}

/// Padding is spaces (and, in UIDs, a NUL); both ends, as most text value representations say.
fn trim(value: &str) -> &str {
    value.trim_matches(|c| c == ' ' || c == '\0')
}

/// `*` any run of characters (also none), `?` any one character (C.2.2.2.4); no wild card is
/// single value matching.
fn wild_card(pattern: &str, value: &str, fold: bool) -> bool {
    let fold_chars = |s: &str| -> Vec<char> {
        if fold {
            s.chars().flat_map(char::to_lowercase).collect()
        } else {
            s.chars().collect()
        }
    };
    let (pattern, value) = (fold_chars(pattern), fold_chars(value));
    // Iterative matching with one backtrack point: linear in practice, no recursion on input.
    let (mut p, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, v));
                p += 1;
            }
            Some(&c) if c == '?' || c == value[v] => {
                p += 1;
                v += 1;
            }
            _ => match star {
                Some((star_p, star_v)) => {
                    p = star_p + 1;
                    v = star_v + 1;
                    star = Some((star_p, star_v + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// `&ZZXX`: a sign, hours up to 14, minutes.
fn is_offset(value: &str) -> bool {
    let digits = &value[1..];
    digits.len() == 4
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits[..2].parse::<u32>().is_ok_and(|h| h <= 14)
        && digits[2..].parse::<u32>().is_ok_and(|m| m <= 59)
}

fn is_uid(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_digit() || c == '.')
        && !value.starts_with('.')
        && !value.ends_with('.')
        && !value.contains("..")
}

/// A date key and a time key matched as one date-time range (PS3.4 C.2.2.2.5.1), as the
/// worklist's scheduled start is: dates "20310610-20310611" with times "0800-1300" run from
/// 08:00 on the 10th to 13:00 on the 11th, not 08:00–13:00 on each day. An open end of either
/// stays open; a single date with a time range is that day's range, as matched alone.
pub fn matches_date_and_time(
    date_query: &str,
    time_query: &str,
    stored_date: &str,
    stored_time: &str,
) -> Result<bool, BadKey> {
    let dates = Range::read(trim(date_query), date_bounds)?;
    let times = Range::read(trim(time_query), time_bounds)?;
    let range = Range {
        low: dates
            .low
            .map(|d| format!("{d}{}", times.low.as_deref().unwrap_or("000000.000000"))),
        high: dates
            .high
            .map(|d| format!("{d}{}", times.high.as_deref().unwrap_or("235960.999999"))),
    };
    let Ok((date, _)) = date_bounds(trim(stored_date)) else {
        return Ok(false);
    };
    let time = time_bounds(trim(stored_time))
        .map(|(low, _)| low)
        .unwrap_or_else(|_| "000000.000000".into());
    Ok(range.contains(&format!("{date}{time}")))
}

/// A single value, `low-high`, `-high` or `low-` (C.2.2.2.5); bounds as comparable keys.
struct Range {
    low: Option<String>,
    high: Option<String>,
}

type Bounds = fn(&str) -> Result<(String, String), BadKey>;

impl Range {
    fn read(query: &str, bounds: Bounds) -> Result<Range, BadKey> {
        // A date-time's offset (`-0500`) has a hyphen too: what reads as one value is one.
        if let Ok((low, high)) = bounds(query) {
            return Ok(Range {
                low: Some(low),
                high: Some(high),
            });
        }
        match query.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (trim(low), trim(high));
                if low.is_empty() && high.is_empty() {
                    return Err(BadKey("'-' alone is not a range".into()));
                }
                // Name the whole value: "2026-12-02" is a malformed date, not a range.
                let whole = |BadKey(why): BadKey| BadKey(format!("in '{query}', {why}"));
                let low = (!low.is_empty())
                    .then(|| bounds(low).map(|b| b.0))
                    .transpose()
                    .map_err(whole)?;
                let high = (!high.is_empty())
                    .then(|| bounds(high).map(|b| b.1))
                    .transpose()
                    .map_err(whole)?;
                if let (Some(l), Some(h)) = (&low, &high) {
                    if l > h {
                        return Err(BadKey(format!("the range '{query}' ends before it starts")));
                    }
                }
                Ok(Range { low, high })
            }
            None => bounds(query).map(|(low, high)| Range {
                low: Some(low),
                high: Some(high),
            }),
        }
    }

    fn contains(&self, value: &String) -> bool {
        self.low.as_ref().is_none_or(|low| value >= low)
            && self.high.as_ref().is_none_or(|high| value <= high)
    }
}

/// `YYYYMMDD` as itself, both ends.
fn date_bounds(value: &str) -> Result<(String, String), BadKey> {
    let valid = value.len() == 8
        && value.bytes().all(|b| b.is_ascii_digit())
        && chrono::NaiveDate::parse_from_str(value, "%Y%m%d").is_ok();
    if valid {
        Ok((value.to_string(), value.to_string()))
    } else {
        Err(BadKey(format!(
            "'{value}' is not a date: dates are YYYYMMDD, ranges YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-"
        )))
    }
}

/// `HH`, `HHMM`, `HHMMSS` or `HHMMSS.F…` (up to six fractional digits) as the first and last
/// instants it covers, `HHMMSS.FFFFFF`.
fn time_bounds(value: &str) -> Result<(String, String), BadKey> {
    let bad = || {
        BadKey(format!(
            "'{value}' is not a time: times are HH, HHMM, HHMMSS or HHMMSS.FFFFFF, ranges with '-'"
        ))
    };
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (value, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || ![2, 4, 6].contains(&whole.len()) {
        return Err(bad());
    }
    if let Some(fraction) = fraction {
        if whole.len() != 6 || fraction.is_empty() || fraction.len() > 6 || !digits(fraction) {
            return Err(bad());
        }
    }
    let part = |at: usize| whole.get(at..at + 2).and_then(|p| p.parse::<u32>().ok());
    let limits = [(0, 23), (2, 59), (4, 60)]; // 60: a leap second is a valid TM
    for (at, max) in limits {
        if let Some(n) = part(at) {
            if n > max {
                return Err(bad());
            }
        }
    }
    let fraction = fraction.unwrap_or("");
    let low = format!("{whole:0<6}.{fraction:0<6}");
    // The last instant it covers: the hour's (`HH`), the minute's (`HHMM`), the second's.
    let high = match whole.len() {
        2 => format!("{whole}5959.999999"),
        4 => format!("{whole}59.999999"),
        _ => format!("{whole}.{fraction:9<6}"),
    };
    Ok((low, high))
}

/// `YYYY[MM[DD[HH[MM[SS[.F…]]]]]][&ZZXX]` as the first and last instants it covers (the offset
/// is not compared: the department's stored times and its modalities' queries share one zone).
fn date_time_bounds(value: &str) -> Result<(String, String), BadKey> {
    let bad = || {
        BadKey(format!(
            "'{value}' is not a date-time: YYYYMMDDHHMMSS.FFFFFF (shorter from the right), ranges with '-'"
        ))
    };
    let body = match value.find(['+', '-']) {
        Some(at) if at >= 4 && is_offset(&value[at..]) => &value[..at],
        Some(_) => return Err(bad()),
        None => value,
    };
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (body, ""),
    };
    if !whole.bytes().all(|b| b.is_ascii_digit())
        || ![4, 6, 8, 10, 12, 14].contains(&whole.len())
        || (!fraction.is_empty() && (whole.len() != 14 || fraction.len() > 6))
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    const FIRST: &str = "00000101000000";
    const LAST: &str = "99991231235959";
    let low = format!("{whole}{}.{fraction:0<6}", &FIRST[whole.len()..]);
    let high_tail = match whole.len() {
        // A month's last day: 31 is enough for ordering (no stored day exceeds its month's).
        6 => "31235959".to_string(),
        n => LAST[n..].to_string(),
    };
    let high = if fraction.is_empty() {
        format!("{whole}{high_tail}.999999")
    } else {
        format!("{whole}.{fraction:9<6}")
    };
    Ok((low, high))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_date_range_with_a_time_range_is_one_date_time_range() {
        let m = |d, t, sd, st| matches_date_and_time(d, t, sd, st).expect("valid");
        // 15:45 on the first day lies between 08:00 on the 10th and 13:00 on the 11th.
        assert!(m("20310610-20310611", "0800-1300", "20310610", "154500"));
        assert!(!m("20310610-20310611", "0800-1300", "20310610", "075900"));
        assert!(!m("20310610-20310611", "0800-1300", "20310611", "130100"));
        assert!(m("20310610-", "0800-", "20320101", "000000"));
        assert!(m("20310610", "0800-1300", "20310610", "1000"));
        assert!(!m("20310610", "0800-1300", "20310610", "1400"));
        assert!(matches_date_and_time("2031-06-10", "0800", "20310610", "0800").is_err());
    }

    use super::*;

    fn m(vr: Vr, query: &str, stored: &str) -> bool {
        matches(vr, query, stored).expect("a valid query")
    }

    #[test]
    fn universal_matching_takes_everything_even_empty() {
        for vr in [Vr::Text, Vr::PersonName, Vr::Date, Vr::Time, Vr::Uid] {
            assert!(m(vr, "", ""));
            assert!(m(vr, "", "anything"));
        }
        assert!(m(Vr::Text, "*", ""));
        assert!(m(Vr::PersonName, "**", "DOE^JANE"));
    }

    #[test]
    fn single_values_match_exactly_and_names_regardless_of_case() {
        assert!(m(Vr::Text, "XA", "XA"));
        assert!(!m(Vr::Text, "xa", "XA"), "text is case-sensitive");
        assert!(m(Vr::Text, "ANGIO1 ", "ANGIO1"), "padding is not content");
        assert!(!m(Vr::Text, "ANGIO", "ANGIO1"));
        assert!(m(Vr::PersonName, "doe^jane", "DOE^JANE"));
        assert!(m(Vr::PersonName, "MÜLLER^ZOË", "Müller^Zoë"));
        assert!(
            !m(Vr::Text, "XA", ""),
            "an empty stored value matches only universally"
        );
        assert!(m(Vr::Text, "RF", "XA\\RF"), "any of several values");
    }

    #[test]
    fn wild_cards_match_runs_and_single_characters() {
        assert!(m(Vr::PersonName, "DOE*", "DOE^JANE"));
        assert!(m(Vr::PersonName, "*jane", "DOE^JANE"));
        assert!(m(Vr::PersonName, "D?E^*", "DOE^JANE"));
        assert!(!m(Vr::PersonName, "D?E", "DOE^JANE"));
        assert!(m(Vr::Text, "A*G*1", "ANGIO1"));
        assert!(!m(Vr::Text, "A*G*2", "ANGIO1"));
        assert!(m(Vr::Text, "????????", "ACC12345"));
        assert!(!m(Vr::Text, "???????", "ACC12345"));
        assert!(m(Vr::Text, "*1*", "1"));
        // A long pattern against a long value ends quickly (no exponential backtracking).
        let value = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!m(Vr::Text, &pattern, &value));
    }

    #[test]
    fn dates_match_singly_and_in_ranges() {
        assert!(m(Vr::Date, "20261202", "20261202"));
        assert!(!m(Vr::Date, "20261202", "20261203"));
        assert!(m(Vr::Date, "20261201-20261203", "20261203"));
        assert!(!m(Vr::Date, "20261201-20261203", "20261204"));
        assert!(m(Vr::Date, "-20261203", "19991231"));
        assert!(m(Vr::Date, "20261201-", "20270101"));
        assert!(!m(Vr::Date, "20261201-", "20261130"));
        assert!(
            !m(Vr::Date, "20261201-", ""),
            "no date stored: only universal matches"
        );
    }

    #[test]
    fn times_of_lower_precision_cover_their_hour_or_minute() {
        assert!(m(Vr::Time, "0800-1000", "0930"));
        assert!(m(Vr::Time, "0800-1000", "100000"));
        assert!(m(Vr::Time, "0800-10", "105959"), "to the end of hour 10");
        assert!(!m(Vr::Time, "0800-1000", "100100"));
        assert!(m(Vr::Time, "-0800", "0745"));
        assert!(m(Vr::Time, "1330-", "133000.000001"));
        assert!(!m(Vr::Time, "1330-", "1329"));
        assert!(
            m(Vr::Time, "0930", "093000"),
            "a single time is its minute's start"
        );
    }

    #[test]
    fn date_times_match_in_ranges_at_any_precision() {
        assert!(m(Vr::DateTime, "20261202-20261202", "20261202093000"));
        assert!(m(
            Vr::DateTime,
            "202612020800-202612021000",
            "20261202093000.5"
        ));
        assert!(!m(
            Vr::DateTime,
            "202612020800-202612021000",
            "20261202100100"
        ));
        assert!(m(Vr::DateTime, "2026-", "20270101"));
        assert!(m(Vr::DateTime, "20261202080000+0100-", "20261202090000"));
        assert!(
            m(Vr::DateTime, "20261202090000-0500", "20261202090000"),
            "an offset, not a range"
        );
    }

    #[test]
    fn uids_match_one_of_a_list() {
        assert!(m(Vr::Uid, "1.2.3", "1.2.3"));
        assert!(m(Vr::Uid, "1.2.4\\1.2.3", "1.2.3\0"));
        assert!(!m(Vr::Uid, "1.2.4", "1.2.3"));
    }

    #[test]
    fn keys_the_standard_does_not_allow_are_refused_with_the_reason() {
        for (vr, query) in [
            (Vr::Date, "2026-12-02"),
            (Vr::Date, "20261332"),
            (Vr::Date, "2026120*"),
            (Vr::Date, "20261203-20261201"),
            (Vr::Date, "-"),
            (Vr::Time, "2500"),
            (Vr::Time, "0860"),
            (Vr::Time, "093"),
            (Vr::Time, "0930.5"),
            (Vr::DateTime, "2026120"),
            (Vr::Uid, "1.2.*"),
            (Vr::Uid, "1..2"),
        ] {
            let refused = matches(vr, query, "").expect_err(query);
            assert!(!refused.0.is_empty());
        }
        let refused = matches(Vr::Date, "2026-12-02", "").expect_err("ISO date");
        assert!(refused.0.contains("YYYYMMDD"), "{refused}");
    }
}

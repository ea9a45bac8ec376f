//! Search parameters as FHIR R4 defines them (§3.1.1 search): the common ones (`_count`,
//! `_total`, `_lastUpdated`, `_id`, `_format`), each resource's own, date prefixes (eq, ge, gt,
//! le, lt at year, month, day or instant precision), tokens (`system|code`) and references
//! (`Patient/id`). Strict by default: an unknown or malformed parameter is refused with its name,
//! since silently ignoring a typo would widen a search of patient records; `Prefer:
//! handling=lenient` ignores unknown ones (the Bundle's self link shows what was applied).

use crate::error::FhirError;
use axum::http::HeaderMap;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use seldinger_store::Cursor;

/// A search parameter's type, as the CapabilityStatement names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Token,
    String,
    Date,
    Reference,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Token => "token",
            Kind::String => "string",
            Kind::Date => "date",
            Kind::Reference => "reference",
        }
    }
}

/// A search parameter a resource supports: its name, type and what it matches.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub documentation: &'static str,
}

/// Parameters every search takes besides the resource's own.
pub const COMMON: &[Param] = &[
    Param {
        name: "_id",
        kind: Kind::Token,
        documentation: "the resource's id (comma-separated: any of them)",
    },
    Param {
        name: "_lastUpdated",
        kind: Kind::Date,
        documentation: "when the record last changed (its latest event)",
    },
];

/// Result control parameters, not filters.
const CONTROL: &[&str] = &["_count", "_total", "_cursor", "_format"];

pub const COUNT_DEFAULT: u32 = 50;
pub const COUNT_MAX: u32 = 500;

/// A parsed search: its filters, page size, whether to count, where to continue.
#[derive(Debug)]
pub struct Search {
    filters: Vec<(String, Option<String>, String)>,
    /// Page size; 0 asks only for the total.
    pub count: u32,
    /// `_total=none`: no total asked for.
    pub total: bool,
    pub cursor: Option<Cursor>,
    /// The applied parameters (without `_cursor`), for the Bundle's links.
    pub applied: Vec<(String, String)>,
    /// `_include`s asked for (each one the resource offers).
    pub includes: Vec<String>,
}

impl Search {
    /// Reads the query's pairs for a resource that supports `params` (and [`COMMON`]).
    pub fn parse(
        pairs: Vec<(String, String)>,
        params: &[Param],
        includes: &[String],
        headers: &HeaderMap,
    ) -> Result<Search, FhirError> {
        let lenient = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split([',', ';']))
            .any(|p| p.trim().eq_ignore_ascii_case("handling=lenient"));
        let mut search = Search {
            filters: Vec::new(),
            count: COUNT_DEFAULT,
            total: true,
            cursor: None,
            applied: Vec::new(),
            includes: Vec::new(),
        };
        for (key, value) in pairs {
            if value.chars().any(char::is_control) {
                return Err(FhirError::invalid(
                    key,
                    "must not contain control characters",
                ));
            }
            let (name, modifier) = match key.split_once(':') {
                Some((name, modifier)) => (name.to_string(), Some(modifier.to_string())),
                None => (key.clone(), None),
            };
            if name == "_include" {
                if modifier.is_some() {
                    return Err(FhirError::invalid(
                        key,
                        "includes are not iterated here: give _include without a modifier",
                    ));
                }
                let value = value.trim().to_string();
                if !includes.contains(&value) {
                    return Err(FhirError::invalid(
                        "_include",
                        if includes.is_empty() {
                            "this resource offers no _include here".to_string()
                        } else {
                            format!(
                                "'{value}' is not offered here; give {}",
                                includes.join(" or ")
                            )
                        },
                    ));
                }
                search.applied.push((key, value.clone()));
                search.includes.push(value);
                continue;
            }
            if CONTROL.contains(&name.as_str()) {
                if modifier.is_some() {
                    return Err(FhirError::invalid(key, "takes no modifier"));
                }
                match name.as_str() {
                    "_count" => {
                        search.count = value
                            .trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|n| *n <= COUNT_MAX)
                            .ok_or_else(|| {
                                FhirError::invalid(
                                    "_count",
                                    format!(
                                        "give a whole number 0-{COUNT_MAX} (0: only the total)"
                                    ),
                                )
                            })?;
                    }
                    "_total" => {
                        search.total =
                            match value.trim() {
                                "none" => false,
                                "estimate" | "accurate" => true,
                                _ => return Err(FhirError::invalid(
                                    "_total",
                                    "give none, estimate or accurate (the total is always exact)",
                                )),
                            }
                    }
                    "_cursor" => {
                        search.cursor = Some(
                            Cursor::parse(value.trim())
                                .map_err(|e| FhirError::invalid("_cursor", e))?,
                        );
                        continue;
                    }
                    _ => continue, // _format: negotiated before the search runs
                }
                search.applied.push((key, value));
                continue;
            }
            let Some(param) = params.iter().chain(COMMON).find(|p| p.name == name) else {
                if lenient {
                    continue;
                }
                let known: Vec<&str> = params.iter().chain(COMMON).map(|p| p.name).collect();
                return Err(FhirError::invalid(
                    key,
                    format!(
                        "not a search parameter of this resource here; it takes: {} (and _count, _total, _include)",
                        known.join(", ")
                    ),
                ));
            };
            if value.trim().is_empty() {
                return Err(FhirError::invalid(
                    key,
                    "is blank: give a value or leave the parameter out",
                ));
            }
            if let Some(modifier) = &modifier {
                let allowed: &[&str] = match param.kind {
                    Kind::String => &["contains"],
                    Kind::Token | Kind::Date | Kind::Reference => &[],
                };
                if !allowed.contains(&modifier.as_str()) {
                    return Err(FhirError::invalid(
                        key.clone(),
                        if allowed.is_empty() {
                            format!(
                                "the {} parameter takes no modifier here",
                                param.kind.as_str()
                            )
                        } else {
                            format!(
                                "unknown modifier; this parameter takes :{}",
                                allowed.join(", :")
                            )
                        },
                    ));
                }
            }
            search.applied.push((key, value.clone()));
            search.filters.push((name, modifier, value));
        }
        Ok(search)
    }

    /// Every value given for `name` (repeats are AND), with its modifier.
    pub fn values<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (Option<&'a str>, &'a str)> + 'a {
        self.filters
            .iter()
            .filter(move |(n, _, _)| n == name)
            .map(|(_, m, v)| (m.as_deref(), v.as_str()))
    }

    /// The one value of a parameter that takes one (no repeats, no comma-separated choice).
    pub fn single<'a>(
        &'a self,
        name: &'a str,
    ) -> Result<Option<(Option<&'a str>, &'a str)>, FhirError> {
        let mut values = self.values(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(FhirError::invalid(name, "give it once"));
        }
        Ok(first)
    }

    /// The codes of a token parameter given once with a comma-separated choice (any of them); a
    /// code in a system other than `system` (when one is kept) matches nothing, so reads as "".
    pub fn codes(&self, name: &str, system: Option<&str>) -> Result<Vec<String>, FhirError> {
        Ok(match self.single(name)? {
            Some((_, value)) => value
                .split(',')
                .map(|v| {
                    let t = token(v.trim());
                    match (t.system, system) {
                        (Some(given), Some(kept)) if given != kept => String::new(),
                        _ => t.code.unwrap_or_default().to_string(),
                    }
                })
                .collect(),
            None => Vec::new(),
        })
    }

    /// The `_id` values (any of them), if given.
    pub fn ids(&self) -> Result<Option<Vec<String>>, FhirError> {
        Ok(self
            .single("_id")?
            .map(|(_, v)| v.split(',').map(|id| id.trim().to_string()).collect()))
    }

    /// `_lastUpdated` as a span of instants.
    pub fn last_updated(&self) -> Result<Span<DateTime<Utc>>, FhirError> {
        self.instants("_lastUpdated", |day| {
            day.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
        })
    }

    /// A date parameter over instants; a day-precision value starts at `midnight` of that day.
    pub fn instants(
        &self,
        name: &str,
        midnight: impl Fn(NaiveDate) -> Option<DateTime<Utc>>,
    ) -> Result<Span<DateTime<Utc>>, FhirError> {
        let mut span = Span::default();
        for (_, value) in self.values(name) {
            let (prefix, moment) = parse_date(name, value)?;
            let (start, end) = match moment {
                Moment::Days(start, end) => (
                    midnight(start).ok_or_else(|| FhirError::invalid(name, "date out of range"))?,
                    midnight(end).ok_or_else(|| FhirError::invalid(name, "date out of range"))?,
                ),
                Moment::Instant(start, end) => (start, end),
            };
            span.narrow(prefix, start, end);
        }
        Ok(span)
    }

    /// A date parameter over calendar days (birth dates): instants are refused.
    pub fn days(&self, name: &str) -> Result<Span<NaiveDate>, FhirError> {
        let mut span = Span::default();
        for (_, value) in self.values(name) {
            match parse_date(name, value)? {
                (prefix, Moment::Days(start, end)) => span.narrow(prefix, start, end),
                (_, Moment::Instant(..)) => return Err(FhirError::invalid(
                    name,
                    "is a date: give YYYY, YYYY-MM or YYYY-MM-DD, with a prefix if wanted (ge1950)",
                )),
            }
        }
        Ok(span)
    }
}

/// A half-open span [from, before): either end open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<T> {
    pub from: Option<T>,
    pub before: Option<T>,
}

impl<T> Default for Span<T> {
    fn default() -> Self {
        Span {
            from: None,
            before: None,
        }
    }
}

impl<T: Ord + Copy> Span<T> {
    /// Narrows to what also matches `prefix` against the value's own span [start, end).
    fn narrow(&mut self, prefix: Prefix, start: T, end: T) {
        let (from, before) = match prefix {
            Prefix::Eq => (Some(start), Some(end)),
            Prefix::Ge => (Some(start), None),
            Prefix::Gt => (Some(end), None),
            Prefix::Le => (None, Some(end)),
            Prefix::Lt => (None, Some(start)),
        };
        if let Some(from) = from {
            self.from = Some(self.from.map_or(from, |f| f.max(from)));
        }
        if let Some(before) = before {
            self.before = Some(self.before.map_or(before, |b| b.min(before)));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// What a date value names: whole days [start, end), or instants [start, end).
enum Moment {
    Days(NaiveDate, NaiveDate),
    Instant(DateTime<Utc>, DateTime<Utc>),
}

fn parse_date(name: &str, raw: &str) -> Result<(Prefix, Moment), FhirError> {
    let raw = raw.trim();
    if raw.contains(',') {
        return Err(FhirError::invalid(
            name,
            "one date per parameter: repeat the parameter to bound both ends (ge2020&…=lt2021)",
        ));
    }
    let (prefix, value) = match raw.get(..2) {
        Some("eq") => (Prefix::Eq, &raw[2..]),
        Some("ge") => (Prefix::Ge, &raw[2..]),
        Some("gt") => (Prefix::Gt, &raw[2..]),
        Some("le") => (Prefix::Le, &raw[2..]),
        Some("lt") => (Prefix::Lt, &raw[2..]),
        Some(p) if p.chars().all(|c| c.is_ascii_lowercase()) => {
            return Err(FhirError::invalid(
                name,
                format!("prefix {p} is not supported here: use eq, ge, gt, le or lt"),
            ))
        }
        _ => (Prefix::Eq, raw),
    };
    let refuse = || {
        FhirError::invalid(
            name,
            format!(
                "{value:?} is not a FHIR date: give YYYY, YYYY-MM, YYYY-MM-DD or \
                 YYYY-MM-DDThh:mm:ss with a time zone (Z or ±hh:mm)"
            ),
        )
    };
    let moment = match value.len() {
        4 => {
            let year: i32 = value.parse().map_err(|_| refuse())?;
            let start = NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(refuse)?;
            let end = NaiveDate::from_ymd_opt(year + 1, 1, 1).ok_or_else(refuse)?;
            Moment::Days(start, end)
        }
        7 => {
            let start = NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d")
                .map_err(|_| refuse())?;
            let end = if start.month() == 12 {
                NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
            }
            .ok_or_else(refuse)?;
            Moment::Days(start, end)
        }
        10 => {
            let start = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| refuse())?;
            Moment::Days(start, start.succ_opt().ok_or_else(refuse)?)
        }
        _ => {
            // Without a zone an instant means nothing exact; refused rather than guessed.
            let at = DateTime::parse_from_rfc3339(value)
                .map_err(|_| {
                    if NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").is_ok()
                        || NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M").is_ok()
                    {
                        FhirError::invalid(name, "a time needs its zone: add Z or ±hh:mm")
                    } else {
                        refuse()
                    }
                })?
                .with_timezone(&Utc);
            Moment::Instant(at, at + Duration::seconds(1))
        }
    };
    Ok((prefix, moment))
}

/// A token `system|code`, `|code` (no system), `code` (any system) or `system|` (any code).
pub struct Token<'a> {
    pub system: Option<&'a str>,
    pub code: Option<&'a str>,
}

pub fn token(value: &str) -> Token<'_> {
    match value.split_once('|') {
        Some((system, code)) => Token {
            system: Some(system),
            code: (!code.is_empty()).then_some(code),
        },
        None => Token {
            system: None,
            code: Some(value),
        },
    }
}

/// The id a reference parameter names: `Type/id`, a bare `id`, or an absolute URL ending so.
pub fn reference_id<'a>(name: &str, value: &'a str, of: &str) -> Result<&'a str, FhirError> {
    let value = value.trim();
    let tail = match value.rsplit_once('/') {
        None => return Ok(value),
        Some((head, id)) => {
            let kind = head.rsplit('/').next().unwrap_or(head);
            if kind != of {
                return Err(FhirError::invalid(
                    name,
                    format!("refers to {of} resources: give {of}/id or the id"),
                ));
            }
            id
        }
    };
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(query: &[(&str, &str)]) -> Result<Search, FhirError> {
        let params = [Param {
            name: "birthdate",
            kind: Kind::Date,
            documentation: "",
        }];
        Search::parse(
            query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            &params,
            &["Observation:patient".to_string()],
            &HeaderMap::new(),
        )
    }

    #[test]
    fn date_prefixes_bound_a_half_open_span() {
        let s = search(&[("birthdate", "ge1950"), ("birthdate", "lt1960-07")]).unwrap();
        let span = s.days("birthdate").unwrap();
        assert_eq!(span.from, NaiveDate::from_ymd_opt(1950, 1, 1));
        assert_eq!(span.before, NaiveDate::from_ymd_opt(1960, 7, 1));
        let s = search(&[("birthdate", "1970-02-03")]).unwrap();
        let span = s.days("birthdate").unwrap();
        assert_eq!(span.from, NaiveDate::from_ymd_opt(1970, 2, 3));
        assert_eq!(span.before, NaiveDate::from_ymd_opt(1970, 2, 4));
        let s = search(&[("birthdate", "gt1970-12")]).unwrap();
        assert_eq!(
            s.days("birthdate").unwrap().from,
            NaiveDate::from_ymd_opt(1971, 1, 1)
        );
    }

    #[test]
    fn malformed_parameters_are_refused_by_name() {
        for (key, value) in [
            ("birthdate", "sa1950"),
            ("birthdate", "1950-13"),
            ("birthdate", "2020-01-01T10:00:00"),
            ("birthdate", "1950,1960"),
            ("_count", "-1"),
            ("_count", "501"),
            ("_total", "maybe"),
            ("_cursor", "zz"),
            ("brithdate", "1950"),
            ("birthdate:contains", "1950"),
        ] {
            let error = search(&[(key, value)])
                .and_then(|s| s.days("birthdate").map(|_| ()))
                .expect_err(&format!("{key}={value} is refused"));
            assert_eq!(error.status, 400, "{key}={value}");
            assert_eq!(
                error.issues[0].expression.as_deref(),
                Some(key),
                "{key}={value}"
            );
        }
    }

    #[test]
    fn references_name_their_type() {
        assert_eq!(
            reference_id("patient", "Patient/abc", "Patient").unwrap(),
            "abc"
        );
        assert_eq!(reference_id("patient", "abc", "Patient").unwrap(), "abc");
        assert_eq!(
            reference_id("patient", "http://x/fhir/r4/Patient/abc", "Patient").unwrap(),
            "abc"
        );
        assert!(reference_id("patient", "Practitioner/abc", "Patient").is_err());
    }
}

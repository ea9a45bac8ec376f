//! The department's wall clock. Storage and the APIs keep UTC instants; the day a board shows and
//! every time a person reads or types on a page are in the department's time zone, with daylight
//! saving handled by the IANA database (chrono-tz), never by a fixed offset.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepartmentTime {
    zone: Tz,
}

impl Default for DepartmentTime {
    fn default() -> Self {
        DepartmentTime { zone: Tz::UTC }
    }
}

impl DepartmentTime {
    /// An IANA zone name, e.g. `Europe/London`.
    pub fn parse(name: &str) -> Result<Self, String> {
        name.trim()
            .parse::<Tz>()
            .map(|zone| DepartmentTime { zone })
            .map_err(|_| {
                format!("'{name}' is not an IANA time zone name (e.g. Europe/London, America/New_York, UTC)")
            })
    }

    pub fn name(&self) -> &'static str {
        self.zone.name()
    }

    /// The department's calendar date at an instant.
    pub fn date_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone).date_naive()
    }

    /// The instant a local calendar day starts. Where midnight does not exist (a zone that
    /// springs forward at midnight) the day starts at the first wall time that does.
    pub fn start_of(&self, date: NaiveDate) -> DateTime<Utc> {
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        (0..=4)
            .find_map(|hours| {
                self.zone
                    .from_local_datetime(&(midnight + Duration::hours(hours)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| midnight.and_utc())
    }

    /// A local calendar day as instants: from its start, up to the next day's start (23, 24 or
    /// 25 hours).
    pub fn day(&self, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
        let next = date.succ_opt().unwrap_or(date);
        (self.start_of(date), self.start_of(next))
    }

    /// An instant as the department's wall clock shows it, in a strftime pattern.
    pub fn format(&self, at: DateTime<Utc>, pattern: &str) -> String {
        at.with_timezone(&self.zone).format(pattern).to_string()
    }

    /// A wall clock time typed by a person, as an instant. A time the clocks skip, or one they
    /// pass twice, is refused with the reason rather than guessed: clinical times decide holds.
    pub fn instant(&self, local: NaiveDateTime) -> Result<DateTime<Utc>, String> {
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            LocalResult::None => Err(format!(
                "{} does not exist in {} (the clocks go forward then); check the time",
                local.format("%Y-%m-%d %H:%M"),
                self.name()
            )),
            LocalResult::Ambiguous(first, second) => Err(format!(
                "{} happens twice in {} (the clocks go back then): at {} or at {}; enter the \
                 time in UTC through the API, or a time outside that hour",
                local.format("%Y-%m-%d %H:%M"),
                self.name(),
                first.format("%H:%M %Z"),
                second.format("%H:%M %Z")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("valid")
    }

    #[test]
    fn a_local_day_is_its_own_span_of_instants_across_daylight_saving() {
        let london = DepartmentTime::parse("Europe/London").expect("zone");
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(
            london.day(date("2026-07-01")),
            (utc("2026-06-30T23:00:00Z"), utc("2026-07-01T23:00:00Z")),
            "summer time: the day starts at 23:00 UTC the day before"
        );
        let (start, end) = london.day(date("2026-10-25"));
        assert_eq!(end - start, Duration::hours(25), "clocks go back");
        let (start, end) = london.day(date("2026-03-29"));
        assert_eq!(end - start, Duration::hours(23), "clocks go forward");
        let auckland = DepartmentTime::parse("Pacific/Auckland").expect("zone");
        assert_eq!(
            auckland.date_of(utc("2026-11-24T20:00:00Z")),
            date("2026-11-25")
        );
        assert_eq!(DepartmentTime::default().name(), "UTC");
        let refused = DepartmentTime::parse("Europe/Londres").expect_err("unknown");
        assert!(refused.contains("IANA"), "{refused}");
        // The calendar's ends give a span, not a panic.
        for date in [NaiveDate::MIN, NaiveDate::MAX] {
            let (start, end) = auckland.day(date);
            assert!(start <= end, "{date}");
        }
    }

    #[test]
    fn typed_times_are_read_on_the_wall_clock_and_impossible_ones_refused() {
        let london = DepartmentTime::parse("Europe/London").expect("zone");
        assert_eq!(
            london.instant(wall("2026-07-01 07:00")),
            Ok(utc("2026-07-01T06:00:00Z"))
        );
        assert_eq!(london.format(utc("2026-07-01T06:00:00Z"), "%H:%M"), "07:00");
        let skipped = london
            .instant(wall("2026-03-29 01:30"))
            .expect_err("skipped");
        assert!(skipped.contains("does not exist"), "{skipped}");
        let twice = london
            .instant(wall("2026-10-25 01:30"))
            .expect_err("ambiguous");
        assert!(
            twice.contains("happens twice") && twice.contains("BST") && twice.contains("GMT"),
            "{twice}"
        );
    }
}

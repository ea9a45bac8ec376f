//! The binary's one clock: the machine's, or one started at `--clock` (demos and tests that must
//! give the same answer on any day). Chosen once at start; everything the binary runs reads it.

use chrono::{DateTime, Utc};
use seldinger_app::{Clock, StartedClock, SystemClock};
use std::sync::{Arc, OnceLock};

static CLOCK: OnceLock<Arc<dyn Clock>> = OnceLock::new();

/// Sets the process's clock; the first call wins (main calls it once, before anything reads it).
pub fn start(at: Option<DateTime<Utc>>) {
    let clock: Arc<dyn Clock> = match at {
        Some(at) => {
            tracing::warn!(%at, "the clock is set by --clock (SELDINGER_CLOCK): times recorded follow it, not the machine's clock; for demos and tests only");
            Arc::new(StartedClock::new(at))
        }
        None => Arc::new(SystemClock),
    };
    let _ = CLOCK.set(clock);
}

/// The process's clock, for the application and its adapters.
pub fn shared() -> Arc<dyn Clock> {
    CLOCK.get_or_init(|| Arc::new(SystemClock)).clone()
}

pub fn now() -> DateTime<Utc> {
    shared().now()
}

/// `--clock`'s value: an RFC 3339 instant with its offset (`2026-12-05T23:50:00Z`).
pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("'{text}' is not an RFC 3339 instant with an offset, such as 2026-12-05T23:50:00Z ({e})")
        })
}

//! The run date every worker is invoked for, and the time bounds derived from it.
//!
//! Time is injected: logic never reads the clock. A run date `D` covers data created before
//! `D + 1 day 00:00:00 UTC` (the exclusive end of the run date).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::error::CoreError;

/// Microseconds in a day: every time in the lake is µs since the epoch, UTC.
pub const DAY_US: i64 = 86_400_000_000;

/// `us` (µs since the epoch) as `YYYY-MM-DD HH:MM:SS UTC`, for manifests and model cards.
pub fn format_micros(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{us} µs"))
}

/// The day a run is for (`YYYY-MM-DD`, UTC): every worker's unit of work and idempotence, and the
/// only notion of "now" the logic sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunDate(NaiveDate);

impl RunDate {
    /// The run date of a calendar date.
    pub fn new(date: NaiveDate) -> Self {
        RunDate(date)
    }

    /// The calendar date.
    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// Exclusive end of the run date: the first instant that does not belong to it.
    pub fn end_exclusive(self) -> DateTime<Utc> {
        (self.0 + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
    }

    /// [`RunDate::end_exclusive`] in µs since the epoch.
    pub fn end_exclusive_micros(self) -> i64 {
        self.end_exclusive().timestamp_micros()
    }

    /// The date `days` later (earlier when negative).
    pub fn plus_days(self, days: i64) -> RunDate {
        RunDate(self.0 + Duration::days(days))
    }
}

impl FromStr for RunDate {
    type Err = CoreError;

    /// Accepts exactly `YYYY-MM-DD`: anything else (times, whitespace, SQL) is refused so a run date
    /// can be embedded in paths and queries as a validated value.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CoreError::InvalidRunDate {
            value: s.to_string(),
        };
        let bytes = s.as_bytes();
        let shape_ok = bytes.len() == 10
            && bytes.iter().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    *b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !shape_ok {
            return Err(bad());
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(RunDate)
            .map_err(|_| bad())
    }
}

impl TryFrom<String> for RunDate {
    type Error = CoreError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<RunDate> for String {
    fn from(value: RunDate) -> Self {
        value.to_string()
    }
}

impl fmt::Display for RunDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_bounds() {
        let d: RunDate = "2024-02-28".parse().unwrap();
        assert_eq!(d.to_string(), "2024-02-28");
        assert_eq!(d.end_exclusive().to_rfc3339(), "2024-02-29T00:00:00+00:00");
    }

    #[test]
    fn refuses_anything_but_a_date() {
        for bad in [
            "2024-2-28",
            "2024-02-30",
            "2024-02-28'; DROP TABLE x; --",
            " 2024-02-28",
            "20240228",
            "",
        ] {
            assert!(bad.parse::<RunDate>().is_err(), "{bad:?} accepted");
        }
    }
}

//! Business dates: the day a sale or a tap is settled under, which is its local date in the
//! configured time zone, shifted by the configured day close.

use std::fmt;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::money::truncate;

/// A settlement day, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BusinessDate(NaiveDate);

impl BusinessDate {
    pub fn parse(text: &str) -> Result<BusinessDate, InvalidInput> {
        Self::parse_as("business_date", text)
    }

    pub fn parse_as(field: &'static str, text: &str) -> Result<BusinessDate, InvalidInput> {
        // Only the strict ISO form: chrono alone would also take "2026-1-5".
        let ok_shape = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !ok_shape {
            return Err(InvalidInput::new(
                field,
                format!("{:?} is not a date in the form YYYY-MM-DD", truncate(text)),
            ));
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(BusinessDate)
            .map_err(|_| InvalidInput::new(field, format!("{text:?} is not a calendar date")))
    }

    pub fn from_naive(date: NaiveDate) -> BusinessDate {
        BusinessDate(date)
    }

    pub fn naive(&self) -> NaiveDate {
        self.0
    }

    pub fn succ(&self) -> BusinessDate {
        BusinessDate(self.0 + Days::new(1))
    }

    pub fn pred(&self) -> BusinessDate {
        BusinessDate(self.0 - Days::new(1))
    }

    /// `YYYYMMDD`, as in operator file names.
    pub fn compact(&self) -> String {
        self.0.format("%Y%m%d").to_string()
    }
}

impl fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// Turns instants into business dates.
///
/// Business date D runs from the day close of D−1 (exclusive) to the day close of D
/// (inclusive of everything before it). With the default close of `24:00` that is the plain
/// local date; with `23:00`, a sale at 23:30 local belongs to the next date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessCalendar {
    time_zone: Tz,
    /// Minutes after local midnight at which the business day closes, 1..=1440.
    day_close_minutes: u32,
}

impl Default for BusinessCalendar {
    fn default() -> Self {
        BusinessCalendar {
            time_zone: chrono_tz::America::Bogota,
            day_close_minutes: 24 * 60,
        }
    }
}

impl BusinessCalendar {
    /// `time_zone` is an IANA name (`America/Bogota`); `day_close` is `HH:MM`, from `00:01`
    /// to `24:00`.
    pub fn new(time_zone: &str, day_close: &str) -> Result<BusinessCalendar, InvalidInput> {
        let tz: Tz = time_zone.parse().map_err(|_| {
            InvalidInput::new(
                "timezone",
                format!("{:?} is not an IANA time zone name", truncate(time_zone)),
            )
        })?;
        let minutes = parse_day_close(day_close)?;
        Ok(BusinessCalendar {
            time_zone: tz,
            day_close_minutes: minutes,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// The business date of an instant.
    pub fn business_date(&self, at: DateTime<Utc>) -> BusinessDate {
        let local = at.with_timezone(&self.time_zone).naive_local();
        let shift = chrono::Duration::minutes(i64::from(24 * 60 - self.day_close_minutes));
        BusinessDate((local + shift).date())
    }

    /// The first instant that belongs to `date`.
    pub fn opens_at(&self, date: BusinessDate) -> DateTime<Utc> {
        let shift = chrono::Duration::minutes(i64::from(24 * 60 - self.day_close_minutes));
        let local_start = date.0.and_time(NaiveTime::MIN) - shift;
        // A DST gap at the close is resolved to the earliest valid instant after it.
        self.time_zone
            .from_local_datetime(&local_start)
            .earliest()
            .unwrap_or_else(|| {
                self.time_zone
                    .from_local_datetime(&(local_start + chrono::Duration::hours(1)))
                    .earliest()
                    .expect("a one-hour DST gap")
            })
            .with_timezone(&Utc)
    }
}

/// The configured holidays (`holidays`) as business dates.
pub fn holidays(calendar: &settings::CalendarSettings) -> Vec<BusinessDate> {
    calendar
        .holidays
        .iter()
        .copied()
        .map(BusinessDate::from_naive)
        .collect()
}

fn parse_day_close(text: &str) -> Result<u32, InvalidInput> {
    let bad = || {
        InvalidInput::new(
            "day_close",
            format!(
                "{:?} is not a time from 00:01 to 24:00 (HH:MM)",
                truncate(text)
            ),
        )
    };
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    let minutes = h * 60 + m;
    if m >= 60 || minutes == 0 || minutes > 24 * 60 {
        return Err(bad());
    }
    Ok(minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn default_is_the_local_date_in_bogota() {
        let cal = BusinessCalendar::default();
        // 23:30 in Bogotá is 04:30 UTC the next day.
        assert_eq!(
            cal.business_date(at("2026-11-27T04:30:00Z")).to_string(),
            "2026-11-26"
        );
        assert_eq!(
            cal.business_date(at("2026-11-27T05:00:00Z")).to_string(),
            "2026-11-27"
        );
    }

    #[test]
    fn an_early_close_moves_late_sales_to_the_next_date() {
        let cal = BusinessCalendar::new("America/Bogota", "23:00").unwrap();
        assert_eq!(
            cal.business_date(at("2026-11-26T23:30:00-05:00"))
                .to_string(),
            "2026-11-27"
        );
        assert_eq!(
            cal.business_date(at("2026-11-26T22:59:59-05:00"))
                .to_string(),
            "2026-11-26"
        );
        let d = BusinessDate::parse("2026-11-27").unwrap();
        assert_eq!(cal.opens_at(d), at("2026-11-26T23:00:00-05:00"));
    }

    #[test]
    fn bad_settings_and_dates_name_the_field() {
        assert_eq!(
            BusinessCalendar::new("Mars/Base", "24:00")
                .unwrap_err()
                .field,
            "timezone"
        );
        for close in ["00:00", "24:01", "7:00", "12:60", "noon"] {
            assert_eq!(
                BusinessCalendar::new("UTC", close).unwrap_err().field,
                "day_close",
                "{close}"
            );
        }
        for d in [
            "2026-02-30",
            "2026-1-05",
            "26-11-2026",
            "",
            "2026-11-26T00:00",
        ] {
            assert!(BusinessDate::parse(d).is_err(), "{d}");
        }
    }
}

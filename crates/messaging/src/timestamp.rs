//! The one timestamp format of the table.
//!
//! `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`: UTC, always six fraction digits, so that byte order
//! equals time order (sort keys are compared as strings by DynamoDB) and values match what
//! Python's `datetime.now(timezone.utc).isoformat()` writes for the original system.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an RFC 3339 timestamp: {0:?}")]
pub struct TimestampError(String);

/// A UTC instant with microsecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Truncates to microseconds: the stored format has no room for more, and a value that
    /// round-trips through the table must compare equal to itself.
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(UtcOffset::UTC);
        let micros = at.microsecond();
        Self(
            at.replace_microsecond(micros)
                .expect("microsecond taken from a valid instant"),
        )
    }

    /// Parses any RFC 3339 value (any offset, any number of fraction digits, none included),
    /// which covers what the original system wrote when the microseconds happened to be 0.
    pub fn parse(value: &str) -> Result<Self, TimestampError> {
        OffsetDateTime::parse(value, &Rfc3339)
            .map(Self::from_datetime)
            .map_err(|_| TimestampError(value.to_owned()))
    }

    /// The next representable instant. Used to give a message a distinct sort key when
    /// another message of the same conversation already holds this exact microsecond.
    pub fn next_micro(self) -> Self {
        Self(self.0 + Duration::microseconds(1))
    }

    pub fn as_datetime(self) -> OffsetDateTime {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.format(FORMAT).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_with_six_fraction_digits_and_utc_offset() {
        let at = Timestamp::from_datetime(datetime!(2023-03-14 09:05:07 UTC));
        assert_eq!(at.to_string(), "2023-03-14T09:05:07.000000+00:00");
        let at = Timestamp::from_datetime(datetime!(2023-03-14 09:05:07.1234567 UTC));
        assert_eq!(at.to_string(), "2023-03-14T09:05:07.123456+00:00");
    }

    #[test]
    fn converts_other_offsets_to_utc() {
        let at = Timestamp::from_datetime(datetime!(2024-01-01 01:30:00 +02:00));
        assert_eq!(at.to_string(), "2023-12-31T23:30:00.000000+00:00");
    }

    #[test]
    fn parses_what_python_isoformat_writes_with_and_without_fraction() {
        let full = Timestamp::parse("2023-03-14T09:05:07.123456+00:00").unwrap();
        assert_eq!(full.to_string(), "2023-03-14T09:05:07.123456+00:00");
        let bare = Timestamp::parse("2023-03-14T09:05:07+00:00").unwrap();
        assert_eq!(bare.to_string(), "2023-03-14T09:05:07.000000+00:00");
        assert!(Timestamp::parse("2023-03-14 09:05:07").is_err());
        assert!(Timestamp::parse("not a time").is_err());
    }

    #[test]
    fn string_order_equals_time_order_across_a_year_boundary() {
        let instants = [
            datetime!(2023-12-31 23:59:59.999999 UTC),
            datetime!(2024-01-01 00:00:00 UTC),
            datetime!(2024-01-01 00:00:00.000001 UTC),
            datetime!(2024-02-29 12:00:00 UTC),
            datetime!(2024-10-01 00:00:00 UTC),
        ];
        let texts: Vec<String> = instants
            .iter()
            .map(|at| Timestamp::from_datetime(*at).to_string())
            .collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
        assert!(texts.iter().all(|t| t.len() == texts[0].len()));
    }

    #[test]
    fn next_micro_is_the_smallest_later_value() {
        let at = Timestamp::parse("2023-12-31T23:59:59.999999+00:00").unwrap();
        assert_eq!(
            at.next_micro().to_string(),
            "2024-01-01T00:00:00.000000+00:00"
        );
        assert!(at.next_micro() > at);
    }

    #[test]
    fn now_round_trips_through_its_text() {
        let now = Timestamp::now();
        assert_eq!(Timestamp::parse(&now.to_string()).unwrap(), now);
    }
}

//! RFC 3339 timestamps at the edge, with the `time` crate: the engine keeps
//! integer milliseconds ([`Timestamp`]) and knows no calendar.
//!
//! Output is always UTC with milliseconds, `2026-12-01T11:00:00.000Z`; input
//! is any RFC 3339 timestamp (`Z` or `±hh:mm`, optional fraction, digits past
//! the millisecond dropped) from 1970 on. Fields use the serde helpers
//! [`rfc3339`] and [`rfc3339_opt`] (`#[serde(with = "…")]`).

use boxoffice_engine::Timestamp;
use std::num::NonZeroU8;
use time::format_description::well_known::iso8601::{Config, EncodedConfig, TimePrecision};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::OffsetDateTime;

/// What the API says when a timestamp cannot be read.
pub const EXPECTED: &str = "expected an RFC 3339 timestamp like 2026-12-01T11:00:00Z";

/// A timestamp past what RFC 3339 can write (year 9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} ms after the Unix epoch is past the year 9999, which RFC 3339 cannot write", .0.as_millis())]
pub struct OutOfRange(pub Timestamp);

const FORMAT: EncodedConfig = Config::DEFAULT
    .set_time_precision(TimePrecision::Second {
        decimal_digits: NonZeroU8::new(3),
    })
    .encode();

/// `t` as RFC 3339 UTC with milliseconds: `2026-12-01T11:00:00.000Z`.
pub fn format(t: Timestamp) -> Result<String, OutOfRange> {
    let mut buf = [0u8; TEXT_LEN];
    format_to(t, &mut buf).map(str::to_string)
}

/// The length of every timestamp [`format`] writes.
const TEXT_LEN: usize = "2026-12-01T11:00:00.000Z".len();

/// [`format`] into `buf` (no allocation: the serialisers' path).
pub fn format_to(t: Timestamp, buf: &mut [u8; TEXT_LEN]) -> Result<&str, OutOfRange> {
    let nanos = i128::from(t.as_millis()) * 1_000_000;
    let dt = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| OutOfRange(t))?;
    let mut w = std::io::Cursor::new(&mut buf[..]);
    let n = dt
        .format_into(&mut w, &Iso8601::<FORMAT>)
        .map_err(|_| OutOfRange(t))?;
    buf.get(..n)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or(OutOfRange(t))
}

/// The last instant RFC 3339 can write: 9999-12-31T23:59:59.999Z.
pub const MAX_MS: u64 = 253_402_300_799_999;

/// Parses an RFC 3339 timestamp; `None` for anything else, for instants
/// before 1970 (the engine's clock starts there), and for instants past
/// year 9999 in UTC (`9999-12-31T23:59:59-01:00` is such an input: accepted,
/// it could never be written back, and every answer naming it would fail).
pub fn parse(s: &str) -> Option<Timestamp> {
    // The crate takes any byte between date and time; RFC 3339 names `T`
    // (any case) and allows a space, and so did this API before.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let ms = dt.unix_timestamp_nanos().div_euclid(1_000_000);
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms <= MAX_MS)
        .map(Timestamp::from_millis)
}

/// `#[serde(with = "rfc3339")]` for a [`Timestamp`] field.
pub mod rfc3339 {
    use super::*;
    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; TEXT_LEN];
        let text = format_to(*t, &mut buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        // Owned: a timestamp is short, and this reads any deserializer.
        let s = String::deserialize(d).map_err(|_| de::Error::custom(EXPECTED))?;
        parse(&s).ok_or_else(|| de::Error::custom(EXPECTED))
    }
}

/// `#[serde(default, with = "rfc3339_opt")]` for an `Option<Timestamp>`
/// field (`null` and absent are `None`; `None` is written as `null`).
pub mod rfc3339_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(transparent)]
    struct Wire(#[serde(with = "super::rfc3339")] Timestamp);

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Ok(Option::<Wire>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    fn fmt(t: Timestamp) -> String {
        format(t).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn formats_and_parses_round_trip() {
        let t = ts("2026-12-01T11:00:00.000Z");
        assert_eq!(fmt(t), "2026-12-01T11:00:00.000Z");
        assert_eq!(parse("2026-12-01T11:00:00Z"), Some(t));
        assert_eq!(parse("2026-12-01t11:00:00z"), Some(t));
        assert_eq!(parse("2026-12-01 11:00:00Z"), Some(t));
        assert_eq!(parse("2026-12-01T20:00:00+09:00"), Some(t));
        assert_eq!(parse("2026-12-01T06:30:00-04:30"), Some(t));
        assert_eq!(parse("2026-12-01T11:00:00.5Z"), Some(t.plus_ms(500)));
        assert_eq!(parse("2026-12-01T11:00:00.123999Z"), Some(t.plus_ms(123)));
        assert_eq!(fmt(Timestamp(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(Timestamp(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            fmt(Timestamp(1_764_586_800_007)),
            "2025-12-01T11:00:00.007Z"
        );
        // A leap second is the last millisecond before it; only where one can be.
        assert_eq!(
            parse("2016-12-31T23:59:60Z"),
            Some(ts("2016-12-31T23:59:59.999Z"))
        );
        assert_eq!(parse("2026-12-01T11:00:60Z"), None);
        let last = ts("9999-12-31T23:59:59.999Z");
        assert_eq!(last.as_millis(), MAX_MS);
        assert_eq!(parse("9999-12-31T23:59:59.999+00:00"), Some(last));
        assert_eq!(fmt(last), "9999-12-31T23:59:59.999Z");
        assert_eq!(format(last.plus_ms(1)), Err(OutOfRange(last.plus_ms(1))));
        assert!(format(Timestamp(u64::MAX)).is_err());
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "tomorrow",
            "2026-13-01T11:00:00Z",
            "2026-02-30T11:00:00Z",
            "2026-12-01 11:00:00",
            "2026-12-01X11:00:00Z",
            "1969-12-31T23:59:59Z",
            "2026-12-01T11:00:00.Z",
            "2026-12-01T11:00:00+9:00",
            "2026-12-01T11:00:00+24:00",
            "2026-12-01T24:00:00Z",
            "2026-12-01T11:00Z",
            "２026-12-01T11:00:00Z",
            "2026-12-01T11:00:00Zjunk",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:00:00.000-23:59",
            "0000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse(s), None, "{s}");
        }
    }
}

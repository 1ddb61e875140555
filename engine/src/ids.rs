//! Identifiers: validated newtypes, so a value that exists is a valid value.
//!
//! Validation happens once, at construction (the edge); the rest of the engine
//! trusts these types.
//!
//! Invariants: none of its own; every id a module receives is valid, the
//! precondition I1-I8 are stated over (identity in I8 starts here).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must match ^[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}$")]
    BadName { kind: &'static str },
    #[error("user ids are 1 to 128 bytes of UTF-8 without control characters")]
    BadUser,
    #[error("seat ids look like <section>-<row>-<number>, e.g. A-1-12")]
    BadSeat,
    #[error("idempotency keys are 1 to 128 printable ASCII characters")]
    BadIdempotencyKey,
    #[error("malformed {kind} id")]
    Malformed { kind: &'static str },
}

fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

macro_rules! name_id {
    ($(#[$m:meta])* $name:ident, $kind:literal) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(s: &str) -> Result<Self, IdError> {
                if valid_name(s) {
                    Ok(Self(Arc::from(s)))
                } else {
                    Err(IdError::BadName { kind: $kind })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Whether [`Self::new`] accepts `s` (checked without allocating).
            pub fn is_valid(s: &str) -> bool {
                valid_name(s)
            }
        }
        /// Maps keyed by the id can be read with a `&str` (it hashes and
        /// compares as its text).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.to_string()
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
    };
}

name_id!(
    /// An event id: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`.
    EventId,
    "event id"
);
name_id!(
    /// A coupon id: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`.
    CouponId,
    "coupon id"
);

/// A user id: 1–128 bytes of UTF-8, no control characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(Arc<str>);

impl UserId {
    pub const MAX_LEN: usize = 128;

    pub fn new(s: &str) -> Result<Self, IdError> {
        if !Self::is_valid(s) {
            return Err(IdError::BadUser);
        }
        Ok(Self(Arc::from(s)))
    }

    /// Whether [`UserId::new`] accepts `s` (checked without allocating).
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty() && s.len() <= Self::MAX_LEN && !s.chars().any(char::is_control)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for UserId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(&s)
    }
}
impl From<UserId> for String {
    fn from(v: UserId) -> String {
        v.0.to_string()
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", &*self.0)
    }
}

/// Section and row names inside seat ids: 1–16 ASCII letters or digits (no `-`,
/// so `A-1-12` splits one way only).
pub fn valid_seat_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= 16 && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// A seat as named by clients: `<section>-<row>-<number>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeatId {
    pub section: Box<str>,
    pub row: Box<str>,
    pub number: u32,
}

impl SeatId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let mut parts = s.split('-');
        let (Some(section), Some(row), Some(num), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdError::BadSeat);
        };
        if !valid_seat_part(section)
            || !valid_seat_part(row)
            || num.is_empty()
            || num.len() > 9
            || !num.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(IdError::BadSeat);
        }
        let number = num.parse().map_err(|_| IdError::BadSeat)?;
        Ok(SeatId {
            section: section.into(),
            row: row.into(),
            number,
        })
    }
}
impl FromStr for SeatId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}
impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.section, self.row, self.number)
    }
}
impl fmt::Debug for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeatId({self})")
    }
}

/// Most base-36 digits a `u64` takes (`u64::MAX` is `3w5e11264sgsf`).
const EPOCH_DIGITS: usize = 13;

/// Writes `n` in lowercase base 36 (compact: a unix-ms epoch is 8 digits).
fn write_base36(f: &mut fmt::Formatter<'_>, mut n: u64) -> fmt::Result {
    let mut buf = [0u8; EPOCH_DIGITS];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits and letters were written.
    f.write_str(std::str::from_utf8(&buf[i..]).map_err(|_| fmt::Error)?)
}

/// The canonical base-36 form only: 1-13 of `[0-9a-z]`, no leading zero
/// (so one epoch has one spelling), within `u64`.
fn parse_base36(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let canonical = !b.is_empty()
        && b.len() <= EPOCH_DIGITS
        && (b.len() == 1 || b[0] != b'0')
        && b.iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase());
    if !canonical {
        return None;
    }
    u64::from_str_radix(s, 36).ok()
}

/// 1-10 ASCII digits within `u32`.
fn parse_u32(s: &str) -> Option<u32> {
    let ok = !s.is_empty() && s.len() <= 10 && s.bytes().all(|c| c.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

/// A hold: a slot index plus the slot's generation, and the writer epoch it
/// was issued under. A slot is reused only with a new generation, so an old
/// id never reaches a newer hold (I4); a hold lost with its writer (an async
/// crash) may have its slot and generation issued again by the next writer,
/// but under a newer epoch, so the lost id names nothing (I8).
///
/// Wire form: `h<index>g<generation>-<epoch in base 36>`, e.g. `h12g0-mhz1k2a0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HoldId {
    pub index: u32,
    pub generation: u32,
    pub epoch: u64,
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}g{}-", self.index, self.generation)?;
        write_base36(f, self.epoch)
    }
}
impl FromStr for HoldId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let parse = || {
            let rest = s.strip_prefix('h')?;
            let (slot, epoch) = rest.split_once('-')?;
            let (i, g) = slot.split_once('g')?;
            Some(HoldId {
                index: parse_u32(i)?,
                generation: parse_u32(g)?,
                epoch: parse_base36(epoch)?,
            })
        };
        parse().ok_or(IdError::Malformed { kind: "hold" })
    }
}

/// A coupon claim: its index in the coupon's ledger, and the writer epoch it
/// was issued under (a claim lost with its writer names nothing afterwards,
/// though the next writer reuses its index).
///
/// Wire form: `k<index>-<epoch in base 36>`, e.g. `k7-mhz1k2a0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClaimId {
    pub index: u32,
    pub epoch: u64,
}

impl fmt::Display for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k{}-", self.index)?;
        write_base36(f, self.epoch)
    }
}
impl FromStr for ClaimId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let parse = || {
            let (n, epoch) = s.strip_prefix('k')?.split_once('-')?;
            Some(ClaimId {
                index: parse_u32(n)?,
                epoch: parse_base36(epoch)?,
            })
        };
        parse().ok_or(IdError::Malformed { kind: "claim" })
    }
}

/// An `Idempotency-Key`: 1–128 printable ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    pub fn new(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|c| (0x21..=0x7e).contains(&c)) {
            return Err(IdError::BadIdempotencyKey);
        }
        Ok(Self(Arc::from(s)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for IdempotencyKey {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(&s)
    }
}
impl From<IdempotencyKey> for String {
    fn from(v: IdempotencyKey) -> String {
        v.0.to_string()
    }
}
impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(EventId::new("e1").is_ok());
        assert!(EventId::new("IU-2026_seoul.n1").is_ok());
        assert!(EventId::new(&"a".repeat(64)).is_ok());
        for bad in ["", "-a", "a b", "é", "a/b", &"a".repeat(65)] {
            assert!(EventId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn users() {
        assert!(UserId::new("u-1").is_ok());
        assert!(UserId::new("사용자").is_ok());
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new(&"x".repeat(129)).is_err());
    }

    #[test]
    fn seats_round_trip() {
        let s = SeatId::parse("A-1-12").expect("valid");
        assert_eq!(s.to_string(), "A-1-12");
        for bad in [
            "A-1",
            "A-1-",
            "A--1",
            "A-1-x",
            "A-1-2-3",
            "A-1-99999999999",
            "Ä-1-1",
        ] {
            assert!(SeatId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hold_and_claim_ids_round_trip() {
        let h = HoldId {
            index: 7,
            generation: 3,
            epoch: 1_764_633_600_000,
        };
        assert_eq!(h.to_string(), "h7g3-minta800");
        assert_eq!(h.to_string().parse::<HoldId>(), Ok(h));
        for epoch in [0, 1, 35, 36, u64::MAX] {
            let h = HoldId { epoch, ..h };
            assert_eq!(h.to_string().parse::<HoldId>(), Ok(h), "{h}");
            let c = ClaimId { index: 42, epoch };
            assert_eq!(c.to_string().parse::<ClaimId>(), Ok(c), "{c}");
        }
        assert_eq!(
            "k42-1z".parse::<ClaimId>(),
            Ok(ClaimId {
                index: 42,
                epoch: 71
            })
        );
        assert_eq!(
            HoldId {
                epoch: u64::MAX,
                ..h
            }
            .to_string(),
            "h7g3-3w5e11264sgsf"
        );
        for bad in [
            "h7",
            "h7g3",
            "h7g3-",
            "h7g3-A",
            "h7g3-01",
            "h7g3-+1",
            "h7g3-1-1",
            "h7g3-3w5e11264sgsg",
            "h7g3-00000000000000",
            "h99999999999g1-1",
            "h4294967296g1-1",
            "h-1g0-1",
            "hg0-1",
            "h7g-1",
            "H7g3-1",
            "h7g3-\u{e9}",
        ] {
            assert!(bad.parse::<HoldId>().is_err(), "{bad}");
        }
        for bad in [
            "k",
            "k42",
            "k42-",
            "k-1",
            "k42-Z",
            "k42-0a",
            "k1-1-1",
            "k99999999999-1",
        ] {
            assert!(bad.parse::<ClaimId>().is_err(), "{bad}");
        }
    }
}

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
        if s.is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return Err(IdError::BadUser);
        }
        Ok(Self(Arc::from(s)))
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

/// A hold: a slot index plus the slot's generation. A slot is reused only with
/// a new generation, so an old id never reaches a newer hold (I4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HoldId {
    pub index: u32,
    pub generation: u32,
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}g{}", self.index, self.generation)
    }
}
impl FromStr for HoldId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = IdError::Malformed { kind: "hold" };
        let rest = s.strip_prefix('h').ok_or(bad.clone())?;
        let (i, g) = rest.split_once('g').ok_or(bad.clone())?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 10 && p.bytes().all(|c| c.is_ascii_digit());
        if !digits(i) || !digits(g) {
            return Err(bad);
        }
        Ok(HoldId {
            index: i.parse().map_err(|_| bad.clone())?,
            generation: g.parse().map_err(|_| bad)?,
        })
    }
}

/// A coupon claim: its index in the coupon's ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClaimId(pub u32);

impl fmt::Display for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k{}", self.0)
    }
}
impl FromStr for ClaimId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = IdError::Malformed { kind: "claim" };
        let n = s.strip_prefix('k').ok_or(bad.clone())?;
        if n.is_empty() || n.len() > 10 || !n.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad);
        }
        n.parse().map(ClaimId).map_err(|_| bad)
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
        };
        assert_eq!(h.to_string().parse::<HoldId>(), Ok(h));
        assert!("h7".parse::<HoldId>().is_err());
        assert!("h99999999999g1".parse::<HoldId>().is_err());
        assert_eq!("k42".parse::<ClaimId>(), Ok(ClaimId(42)));
        assert!("k".parse::<ClaimId>().is_err());
    }
}

//! Integers of request documents: JSON numbers that fit, or a refusal
//! saying which integers fit (serde's own messages name Rust types).

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use std::fmt;
use std::num::NonZeroU32;

/// An integer from 1 to `u32::MAX`: a count, a rate, seconds. Zero is a
/// refusal with the field's path, never a silent minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Positive(pub NonZeroU32);

/// An integer from 0 to `u32::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Natural(pub u32);

impl Positive {
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

struct U32Visitor {
    min: u32,
}

impl Visitor<'_> for U32Visitor {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an integer from {} to {}", self.min, u32::MAX)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        u32::try_from(v)
            .ok()
            .filter(|n| *n >= self.min)
            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_u64(U32Visitor { min: 1 })?;
        NonZeroU32::new(n).map(Positive).ok_or_else(|| {
            de::Error::invalid_value(Unexpected::Unsigned(0), &U32Visitor { min: 1 })
        })
    }
}

impl<'de> Deserialize<'de> for Natural {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_u64(U32Visitor { min: 0 }).map(Natural)
    }
}

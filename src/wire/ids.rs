//! Identifiers in request documents, converted to the engine's id types
//! (whose constructors hold the rules; their messages are the refusals).

use boxoffice_engine::{SeatId, UserId};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A user id: 1–128 bytes of UTF-8 without control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User(pub UserId);

/// A seat id: `<section>-<row>-<number>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat(pub SeatId);

/// Reads a string through `convert`, whose error is the refusal.
pub(super) struct StrVisitor<F> {
    pub expecting: &'static str,
    pub convert: F,
}

impl<T, E: fmt::Display, F: FnOnce(&str) -> Result<T, E>> Visitor<'_> for StrVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<Er: de::Error>(self, v: &str) -> Result<T, Er> {
        (self.convert)(v).map_err(Er::custom)
    }
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor {
            expecting: "a user id (a string)",
            convert: UserId::new,
        })
        .map(User)
    }
}

impl<'de> Deserialize<'de> for Seat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor {
            expecting: "a seat id like A-1-12",
            convert: SeatId::parse,
        })
        .map(Seat)
    }
}

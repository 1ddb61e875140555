//! Wire formats: the JSON documents of the v1 API as types.
//!
//! Requests are `#[derive(Deserialize)]` types that only convert (JSON to
//! engine types: ids, non-zero counts, timestamps); ranges and layout rules
//! are checked once, by the engine's `validate`. Responses are
//! `#[derive(Serialize)]` documents borrowed from the engine's views.
//!
//! A refusal names the field path (`queue.capacity: …`, `seats[2].first: …`),
//! found by `serde_path_to_error`. Unknown fields are ignored and `null`
//! counts as absent (docs/api.md), so a required field that is `null` is
//! "required" like a missing one. Nothing here panics on any input.

pub mod coupons;
pub mod events;
pub mod ids;
pub mod num;
pub mod ops;
pub mod queue;
pub mod seats;
pub mod time;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A request body this API cannot read, with the field at fault if there is
/// one. The HTTP layer answers it as `400 bad_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// The field path (`queue.capacity`, `seats[0]`), when one field is at fault.
    pub field: Option<String>,
    /// The whole message, starting with the field path when there is one.
    pub message: String,
}

impl WireError {
    /// A refusal of the whole body.
    pub fn body(message: impl Into<String>) -> Self {
        WireError {
            field: None,
            message: message.into(),
        }
    }

    /// A refusal of one field: `"{field}: {reason}"`.
    pub fn field(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        WireError {
            message: format!("{field}: {reason}"),
            field: Some(field),
        }
    }
}

/// `#[serde(serialize_with = "display")]`: a field written as its
/// `Display` text, straight into the output (no `String` on the way).
pub fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// [`display`] for each item of a list.
pub fn display_all<T: std::fmt::Display, S: serde::Serializer>(
    v: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    struct Shown<'a, T>(&'a T);
    impl<T: std::fmt::Display> serde::Serialize for Shown<'_, T> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self.0)
        }
    }
    s.collect_seq(v.iter().map(Shown))
}

/// Parses a body as JSON (the parser's recursion limit bounds nesting).
pub fn parse_json(body: &[u8]) -> Result<Value, WireError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_eof() {
            "the JSON body is truncated"
        } else if e.is_syntax() {
            "the body is not valid JSON"
        } else {
            "the body could not be read as JSON"
        };
        WireError::body(format!("{what}: {e}"))
    })
}

/// Reads a request document from a body: JSON, an object, then the type.
///
/// An object that reads as `T` is read straight into it (no `Value` built
/// on the way: the write paths' common case); anything else goes the way
/// that names the field at fault, so refusals read the same either way.
/// serde_json skips an ignored (unknown) field without checking its UTF-8
/// or its `\u` escapes, which the `Value` path refuses: a body that is not
/// UTF-8 or has a `\u` escape takes the `Value` path, so both accept
/// exactly the same bodies.
pub fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let direct = body.trim_ascii_start().first() == Some(&b'{')
        && std::str::from_utf8(body).is_ok()
        && !body.windows(2).any(|w| w == b"\\u");
    if direct {
        if let Ok(v) = serde_json::from_slice(body) {
            return Ok(v);
        }
    }
    by_value(body)
}

/// [`from_body`] through a parsed `Value` (the refusal path).
fn by_value<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    from_value(parse_json(body)?)
}

/// Reads a request document from parsed JSON (which must be an object).
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, WireError> {
    if !v.is_object() {
        return Err(WireError::body("the body must be a JSON object"));
    }
    // From a `Value`, serde_json's messages carry no line and column: the
    // path says where.
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        refusal(&path, &reason)
    })
}

/// The message for a field refused at `path` ("." is the document itself).
fn refusal(path: &str, reason: &str) -> WireError {
    let join = |name: &str| {
        if path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    // serde reports a missing field at the object that lacks it.
    if let Some(name) = reason
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return WireError::field(join(name), "required");
    }
    if path == "." {
        return WireError::body(reason);
    }
    // `null` counts as absent, so a required field that is null is missing.
    if reason.starts_with("invalid type: null") {
        return WireError::field(path, "required");
    }
    WireError::field(path, reason)
}

/// A string of `1..=max` bytes without control characters.
pub(crate) fn text(field: &str, s: String, max: usize) -> Result<String, WireError> {
    if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
        return Err(WireError::field(
            field,
            format_args!("expected 1 to {max} bytes without control characters"),
        ));
    }
    Ok(s)
}

/// `n` within `min..=max`, for request fields the engine does not validate.
pub(crate) fn within(field: &str, n: u32, min: u32, max: u32) -> Result<u32, WireError> {
    if !(min..=max).contains(&n) {
        return Err(WireError::field(
            field,
            format_args!("expected an integer from {min} to {max}"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        c: num::Positive,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        a: num::Positive,
        q: Option<Inner>,
        list: Option<Vec<Inner>>,
    }

    fn refuse(body: &str) -> WireError {
        match from_body::<Doc>(body.as_bytes()) {
            Ok(d) => panic!("accepted {body}: {d:?}"),
            Err(e) => e,
        }
    }

    /// The direct path accepts exactly what the `Value` path accepts, with
    /// the same result (duplicate keys: the last one wins on both).
    #[test]
    fn the_direct_path_agrees_with_the_value_path() {
        let bodies = [
            r#"{"a": 5}"#,
            r#"  {"a": 5, "q": {"c": 2}, "list": [{"c": 1}]}  "#,
            r#"{"a": 5, "z": [1, {"x": null}], "q": null}"#,
            r#"{"a": 0, "a": 5}"#,
            r#"{"a": 5, "a": 0}"#,
            r#"{"a": 5.0}"#,
            r#"{"a": "5"}"#,
            r#"{"a": 18446744073709551616}"#,
            r#"{"a": 5} x"#,
            r#"{"a": 5"#,
            r#"[5]"#,
            r#"5"#,
            r#""#,
            r#"{"q": {"c": 1}}"#,
            r#"{"a": 1, "list": [{"c": 0}]}"#,
            r#"{"a": 1, "list": {"c": 1}}"#,
            "{\"a\": 1, \"z\": \"\\ud800\"}",
        ];
        let mut bodies: Vec<Vec<u8>> = bodies.iter().map(|b| b.as_bytes().to_vec()).collect();
        // Not UTF-8, in an ignored field and in a read one.
        bodies.push(b"{\"a\": 1, \"z\": \"\xff\"}".to_vec());
        bodies.push(b"{\"a\": 1, \"q\": {\"c\": 1, \"\xc3\": 2}}".to_vec());
        for b in &bodies {
            let fast = format!("{:?}", from_body::<Doc>(b));
            let slow = format!("{:?}", by_value::<Doc>(b));
            assert_eq!(fast, slow, "{}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn refusals_name_the_field_path() {
        assert!(from_body::<Doc>(br#"{"a": 5, "z": 1, "q": null}"#).is_ok());
        let e = refuse(r#"{"q": {"c": 1}}"#);
        assert_eq!(e.message, "a: required");
        assert_eq!(e.field.as_deref(), Some("a"));
        assert_eq!(refuse(r#"{"a": null}"#).message, "a: required");
        assert_eq!(refuse(r#"{"a": 1, "q": {}}"#).message, "q.c: required");
        let e = refuse(r#"{"a": 1, "q": {"c": 0}}"#);
        assert_eq!(e.field.as_deref(), Some("q.c"));
        assert!(e.message.starts_with("q.c: invalid value"), "{}", e.message);
        let e = refuse(r#"{"a": 1, "list": [{"c": 1}, {"c": "x"}]}"#);
        assert_eq!(e.field.as_deref(), Some("list[1].c"));
        for bad in ["-1", "1.5", "1e20", "4294967296", "\"1\"", "true"] {
            let e = refuse(&format!(r#"{{"a": {bad}}}"#));
            assert_eq!(e.field.as_deref(), Some("a"), "{bad}");
        }
        assert_eq!(refuse("[1]").message, "the body must be a JSON object");
        assert_eq!(refuse("[1]").field, None);
    }

    #[test]
    fn parse_errors() {
        for bad in [
            &b"{"[..],
            b"",
            b"{\"a\":}",
            b"\xff\xfe",
            b"{\"a\":\"\xff\"}",
        ] {
            assert!(parse_json(bad).is_err());
        }
        let deep = "[".repeat(10_000);
        assert!(parse_json(deep.as_bytes()).is_err());
    }
}

//! Reading request JSON field by field.
//!
//! Unknown fields are accepted (clients may send more), but every known field
//! is checked for type and range, and a refusal names the field
//! (`queue.capacity: expected an integer from 1 to 10000000`). `null` counts
//! as absent. Nothing here panics on any input.

use super::errors::ApiError;
use boxoffice_engine::{Timestamp, UserId};
use serde_json::{Map, Value};

/// Parses a body as JSON (the parser's recursion limit bounds nesting).
pub fn parse(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_eof() {
            "the JSON body is truncated"
        } else if e.is_syntax() {
            "the body is not valid JSON"
        } else {
            "the body could not be read as JSON"
        };
        ApiError::bad_request(format!("{what}: {e}"))
    })
}

/// A JSON object being read, with the path of its fields for messages.
#[derive(Debug, Clone)]
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

fn err(field: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!("{field}: expected {expected}")).with("field", field)
}

/// The body as an object.
pub fn object(v: &Value) -> Result<Obj<'_>, ApiError> {
    match v {
        Value::Object(map) => Ok(Obj {
            map,
            prefix: String::new(),
        }),
        _ => Err(ApiError::bad_request("the body must be a JSON object")),
    }
}

impl<'a> Obj<'a> {
    pub fn name(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn required(&self, field: &str) -> Result<&'a Value, ApiError> {
        self.get(field).ok_or_else(|| {
            let name = self.name(field);
            ApiError::bad_request(format!("{name}: required")).with("field", name)
        })
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(err(&self.name(field), "a string")),
        }
    }

    pub fn str(&self, field: &str) -> Result<&'a str, ApiError> {
        match self.required(field)? {
            Value::String(s) => Ok(s),
            _ => Err(err(&self.name(field), "a string")),
        }
    }

    /// A string of `1..=max` bytes without control characters.
    pub fn text(&self, field: &str, max: usize) -> Result<&'a str, ApiError> {
        let s = self.str(field)?;
        if s.is_empty() || s.len() > max || s.chars().any(char::is_control) {
            return Err(err(
                &self.name(field),
                &format!("1 to {max} bytes without control characters"),
            ));
        }
        Ok(s)
    }

    pub fn user(&self, field: &str) -> Result<UserId, ApiError> {
        let s = self.str(field)?;
        UserId::new(s).map_err(|e| {
            let name = self.name(field);
            ApiError::bad_request(format!("{name}: {e}")).with("field", name)
        })
    }

    pub fn opt_u32(&self, field: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| {
                err(
                    &self.name(field),
                    &format!("an integer from {min} to {max}"),
                )
            })
    }

    pub fn u32(&self, field: &str, min: u32, max: u32) -> Result<u32, ApiError> {
        self.required(field)?;
        self.opt_u32(field, min, max)?.ok_or_else(|| {
            err(
                &self.name(field),
                &format!("an integer from {min} to {max}"),
            )
        })
    }

    pub fn opt_timestamp(&self, field: &str) -> Result<Option<Timestamp>, ApiError> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) => Timestamp::parse_rfc3339(s).map(Some).ok_or_else(|| {
                err(
                    &self.name(field),
                    "an RFC 3339 timestamp like 2026-12-01T11:00:00Z",
                )
            }),
        }
    }

    pub fn opt_object(&self, field: &str) -> Result<Option<Obj<'a>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj {
                map,
                prefix: self.name(field),
            })),
            Some(_) => Err(err(&self.name(field), "an object")),
        }
    }

    pub fn opt_array(&self, field: &str) -> Result<Option<&'a [Value]>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(err(&self.name(field), "an array")),
        }
    }

    pub fn array(&self, field: &str) -> Result<&'a [Value], ApiError> {
        self.required(field)?;
        self.opt_array(field)?
            .ok_or_else(|| err(&self.name(field), "an array"))
    }

    /// Element `i` of an array field, as an object.
    pub fn element(&self, field: &str, i: usize, v: &'a Value) -> Result<Obj<'a>, ApiError> {
        let name = format!("{}[{i}]", self.name(field));
        match v {
            Value::Object(map) => Ok(Obj { map, prefix: name }),
            _ => Err(err(&name, "an object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_checked_and_named() {
        let v =
            json!({"a": 5, "b": "x", "n": -1, "big": 1e30, "f": 1.5, "q": {"c": "no"}, "z": null});
        let o = object(&v).expect("object");
        assert_eq!(o.u32("a", 1, 10).ok(), Some(5));
        assert!(o.u32("a", 6, 10).is_err());
        assert!(o.u32("n", 0, 10).is_err());
        assert!(o.u32("big", 0, u32::MAX).is_err());
        assert!(o.u32("f", 0, 10).is_err());
        assert!(o.u32("b", 0, 10).is_err());
        assert_eq!(o.opt_u32("z", 0, 1).ok(), Some(None));
        let e = o.u32("missing", 0, 1).err().map(|e| e.message);
        assert_eq!(e.as_deref(), Some("missing: required"));
        let q = o.opt_object("q").ok().flatten().expect("q");
        let e = q
            .u32("c", 1, 2)
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(e.starts_with("q.c: expected"), "{e}");
        assert!(object(&json!([1])).is_err());
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
            assert!(parse(bad).is_err());
        }
        let deep = "[".repeat(10_000);
        assert!(parse(deep.as_bytes()).is_err());
    }
}

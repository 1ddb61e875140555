//! JSON errors: `{"error": {"code", "message", ...detail}}` with the status
//! the contract fixes for each code, and the mapping from engine rejections.

use super::auth::AuthError;
use super::limits::RateLimited;
use super::{json_response, Body};
use crate::durability::NotDurable;
use crate::wire::{self, WireError};
use boxoffice_engine::{PassInvalid, Rejection};
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    detail: Map<String, Value>,
    retry_after_s: Option<u64>,
    allow: Option<String>,
    challenge: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: Map::new(),
            retry_after_s: None,
            allow: None,
            challenge: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        e.challenge = true;
        e
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such path")
    }

    pub fn method_not_allowed(allow: String) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this path accepts {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    pub fn payload_too_large(max: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {max} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON with Content-Type: application/json",
        )
    }

    pub fn too_many_requests(retry_after_s: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "too many requests from this address; retry later",
        )
        .retry_after(retry_after_s)
    }

    pub fn unavailable(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            .retry_after(retry_after_s)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed on this request (a bug); state is unchanged or the request may be retried",
        )
    }

    pub fn retry_after(mut self, s: u64) -> Self {
        self.retry_after_s = Some(s.max(1));
        self
    }

    /// The seconds a client is told to wait (`Retry-After`), if any.
    pub fn retry_after_s(&self) -> Option<u64> {
        self.retry_after_s
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut err = Map::new();
        err.insert("code".into(), Value::from(self.code));
        err.insert("message".into(), Value::from(self.message));
        err.extend(self.detail);
        let mut resp = json_response(self.status, &json!({ "error": err }));
        let h = resp.headers_mut();
        if let Some(s) = self.retry_after_s {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            h.insert(header::ALLOW, allow);
        }
        if self.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid => ApiError::unauthorized(e.to_string()),
            AuthError::OtherRealm { .. } => ApiError::forbidden(e.to_string()),
        }
    }
}

impl From<RateLimited> for ApiError {
    fn from(e: RateLimited) -> Self {
        ApiError::too_many_requests(e.retry_after_s)
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        let field = e.field;
        let err = ApiError::bad_request(e.message);
        match field {
            Some(f) => err.with("field", f),
            None => err,
        }
    }
}

impl From<NotDurable> for ApiError {
    fn from(e: NotDurable) -> Self {
        ApiError::unavailable(e.to_string(), e.retry_after_s)
    }
}

fn pass_reason(p: PassInvalid) -> &'static str {
    use boxoffice_engine::PassError;
    match p {
        PassInvalid::Token(PassError::Malformed) => "malformed",
        PassInvalid::Token(PassError::UnknownKey) => "unknown_key",
        PassInvalid::Token(PassError::BadSignature) => "bad_signature",
        PassInvalid::Token(PassError::Expired) => "expired",
        PassInvalid::OtherEvent => "other_event",
        PassInvalid::OtherUser => "other_user",
        PassInvalid::SessionEnded => "session_ended",
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        use StatusCode as S;
        let msg = r.to_string();
        let e = |status, code| ApiError::new(status, code, msg.clone());
        match r {
            Rejection::EventNotFound => e(S::NOT_FOUND, "event_not_found"),
            Rejection::NoQueue => e(S::NOT_FOUND, "no_queue"),
            // Joining again later may work once people are admitted.
            Rejection::QueueFull => e(S::SERVICE_UNAVAILABLE, "queue_full").retry_after(30),
            Rejection::EventClosed => e(S::GONE, "event_closed"),
            Rejection::TicketNotFound => e(S::NOT_FOUND, "ticket_not_found"),
            Rejection::NotAdmitted => e(S::CONFLICT, "not_admitted"),
            Rejection::EventInUse => e(S::CONFLICT, "event_in_use"),
            Rejection::InvalidConfig(c) => {
                ApiError::bad_request(c.to_string()).with("field", c.field)
            }
            Rejection::SeatsUnavailable { seats } => {
                e(S::CONFLICT, "seats_unavailable").with("seats", seats)
            }
            Rejection::UnknownSeat { seats } => {
                e(S::UNPROCESSABLE_ENTITY, "unknown_seat").with("seats", seats)
            }
            Rejection::UnknownCategory => e(S::UNPROCESSABLE_ENTITY, "unknown_category"),
            Rejection::NoAdjacent { count } => e(S::CONFLICT, "seats_unavailable")
                .with("seats", Vec::<String>::new())
                .with("count", count),
            Rejection::LimitExceeded {
                limit,
                current,
                requested,
            } => e(S::UNPROCESSABLE_ENTITY, "limit_exceeded")
                .with("limit", limit)
                .with("current", current)
                .with("requested", requested),
            Rejection::InvalidRequest(m) => ApiError::bad_request(m),
            Rejection::SectionNotFound => e(S::NOT_FOUND, "section_not_found"),
            Rejection::HoldNotFound => e(S::NOT_FOUND, "hold_not_found"),
            Rejection::HoldExpired => e(S::GONE, "hold_expired"),
            // The engine writes instants as milliseconds, the API as RFC 3339
            // (one past year 9999 is a bug, not the client's).
            Rejection::TtlTooLong { max_expires_at } => match wire::time::format(max_expires_at) {
                Ok(at) => ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    "ttl_too_long",
                    format!("a hold may not live past {at}"),
                )
                .with("max_expires_at", at),
                Err(_) => ApiError::internal(),
            },
            Rejection::HoldSold => e(S::CONFLICT, "hold_sold"),
            Rejection::CouponNotFound => e(S::NOT_FOUND, "coupon_not_found"),
            Rejection::AlreadyClaimed => e(S::CONFLICT, "already_claimed"),
            Rejection::SoldOut => e(S::GONE, "sold_out"),
            Rejection::NotOpen => e(S::FORBIDDEN, "not_open"),
            Rejection::ClaimNotFound => e(S::NOT_FOUND, "claim_not_found"),
            Rejection::StockBelowIssued { issued } => {
                e(S::CONFLICT, "stock_below_issued").with("issued", issued)
            }
            Rejection::IdempotencyKeyReused => e(S::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            Rejection::PassRequired => e(S::FORBIDDEN, "pass_required"),
            Rejection::PassInvalid(p) => {
                e(S::FORBIDDEN, "pass_invalid").with("reason", pass_reason(p))
            }
            Rejection::UserTokenRequired => e(S::UNAUTHORIZED, "user_token_required"),
            Rejection::UserTokenInvalid(t) => {
                e(S::FORBIDDEN, "user_token_invalid").with("reason", t.reason())
            }
        }
    }
}

impl From<ApiError> for Response<Body> {
    fn from(e: ApiError) -> Self {
        e.into_response()
    }
}

//! User tokens: who may stand in line as whom (docs/passes.md, "User tokens").
//!
//! The booking backend mints one for a signed-in user; the browser sends it
//! with a public join of an event whose `queue.identity` is `signed`. Without
//! it, anyone who knows a user id (an e-mail, a member number) could "rejoin"
//! as that user and get their ticket and, once admitted, their pass.
//!
//! Format: `u1.<kid>.<payload>.<sig>` where `payload` is base64url (no
//! padding) of the JSON object `{"e": event, "u": user, "exp": unix_seconds}`
//! and `sig` is base64url (no padding) of
//! HMAC-SHA256(key of `kid`, "u1.<kid>.<payload>"). The key of a kid is the
//! one passes are signed with ([`PassKeys`]: current and previous), so a
//! backend needs only the secret. The prefix differs from a pass's `v1`, and
//! the signed bytes start with it, so a pass never verifies as a user token.

use crate::ids::{EventId, UserId};
use crate::passes::{PassKey, PassKeys};
use crate::time::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The version prefix of a user token.
pub const PREFIX: &str = "u1";

/// Longest user token accepted (bytes); anything longer is malformed. A user
/// id of 128 bytes escaped as `\uXXXX` by a backend's JSON encoder still fits.
pub const MAX_USER_TOKEN_LEN: usize = 2048;

/// What a user token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserToken {
    /// The event id.
    #[serde(rename = "e")]
    pub event: String,
    /// The user id.
    #[serde(rename = "u")]
    pub user: String,
    /// Expiry, Unix seconds (valid while `now < exp`).
    pub exp: u64,
}

/// Why a user token does not let its bearer join as the user it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserTokenError {
    #[error("the user token is not a well-formed u1 token")]
    Malformed,
    #[error("a pass was sent where a user token is needed")]
    PassNotUserToken,
    #[error("the user token was signed with a key this server does not know")]
    UnknownKey,
    #[error("the user token signature does not verify")]
    BadSignature,
    #[error("the user token has expired")]
    Expired,
    #[error("the user token is for another event")]
    OtherEvent,
    #[error("the user token is for another user")]
    OtherUser,
}

impl UserTokenError {
    /// The snake_case `reason` of a refusal in the HTTP API.
    pub fn reason(self) -> &'static str {
        match self {
            UserTokenError::Malformed => "malformed",
            UserTokenError::PassNotUserToken => "pass_not_user_token",
            UserTokenError::UnknownKey => "unknown_key",
            UserTokenError::BadSignature => "bad_signature",
            UserTokenError::Expired => "expired",
            UserTokenError::OtherEvent => "other_event",
            UserTokenError::OtherUser => "other_user",
        }
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= 16 && kid.bytes().all(|c| c.is_ascii_alphanumeric())
}

impl UserToken {
    /// A token for `user` in `event`, valid until `exp` (Unix seconds).
    pub fn new(event: &EventId, user: &UserId, exp: u64) -> Self {
        UserToken {
            event: event.to_string(),
            user: user.to_string(),
            exp,
        }
    }

    /// The signed token string, with `key` (normally `PassKeys::current`).
    pub fn mint(&self, key: &PassKey) -> String {
        // Strings and an integer always serialise to JSON; a token with an
        // empty payload would be worse than a panic.
        let json = serde_json::to_vec(self).expect("UserToken (strings, integer) serialises");
        let mut token = format!("{PREFIX}.{}.{}", key.id(), B64.encode(json));
        let sig = key.sign_bytes(token.as_bytes());
        token.push('.');
        token.push_str(&B64.encode(sig));
        token
    }

    /// Checks `token` for a join of `user` to `event` at `now`: shape,
    /// signature under a known kid (constant-time compare), expiry, event and
    /// user, in that order. Never panics, whatever the input.
    pub fn verify(
        token: &str,
        keys: &PassKeys,
        event: &EventId,
        user: &UserId,
        now: Timestamp,
    ) -> Result<UserToken, UserTokenError> {
        if token.len() > MAX_USER_TOKEN_LEN {
            return Err(UserTokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(prefix), Some(kid), Some(payload), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(UserTokenError::Malformed);
        };
        if prefix != PREFIX {
            return Err(if prefix == "v1" {
                UserTokenError::PassNotUserToken
            } else {
                UserTokenError::Malformed
            });
        }
        if !valid_kid(kid) || payload.is_empty() {
            return Err(UserTokenError::Malformed);
        }
        // The strict decoder refuses padding and non-canonical trailing bits.
        let sig = B64.decode(sig).map_err(|_| UserTokenError::Malformed)?;
        if sig.len() != 32 {
            return Err(UserTokenError::Malformed);
        }
        let key = keys.by_id(kid).ok_or(UserTokenError::UnknownKey)?;
        let signed = &token[..PREFIX.len() + 1 + kid.len() + 1 + payload.len()];
        if !key.verify_bytes(signed.as_bytes(), &sig) {
            return Err(UserTokenError::BadSignature);
        }
        let json = B64.decode(payload).map_err(|_| UserTokenError::Malformed)?;
        let claims: UserToken =
            serde_json::from_slice(&json).map_err(|_| UserTokenError::Malformed)?;
        if now.as_millis() / 1000 >= claims.exp {
            return Err(UserTokenError::Expired);
        }
        if claims.event != event.as_str() {
            return Err(UserTokenError::OtherEvent);
        }
        if claims.user != user.as_str() {
            return Err(UserTokenError::OtherUser);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::{self, PassClaims};

    const SECRET: &[u8] = b"boxoffice-test-vector-secret";

    fn keys() -> PassKeys {
        PassKeys::new(PassKey::new("k1", SECRET).expect("key"))
    }
    fn ev(s: &str) -> EventId {
        EventId::new(s).expect("event id")
    }
    fn us(s: &str) -> UserId {
        UserId::new(s).expect("user id")
    }
    /// 2026-12-01T11:00:00Z.
    const NOW: Timestamp = Timestamp(1_796_122_800_000);

    fn token(event: &str, user: &str, exp: u64) -> String {
        UserToken::new(&ev(event), &us(user), exp).mint(&keys().current)
    }

    #[test]
    fn mints_and_verifies() {
        let t = token("e1", "u-1", 1_796_126_400);
        let ok = UserToken::verify(&t, &keys(), &ev("e1"), &us("u-1"), NOW);
        assert_eq!(ok.map(|c| c.exp), Ok(1_796_126_400));
    }

    #[test]
    fn refusals_are_typed() {
        let k = keys();
        let v = |t: &str, e: &str, u: &str, now| UserToken::verify(t, &k, &ev(e), &us(u), now);
        let t = token("e1", "u-1", 1_796_126_400);
        assert_eq!(
            v(&t, "e1", "u-1", Timestamp(1_796_126_400_000)),
            Err(UserTokenError::Expired)
        );
        assert!(v(&t, "e1", "u-1", Timestamp(1_796_126_399_999)).is_ok());
        assert_eq!(v(&t, "e2", "u-1", NOW), Err(UserTokenError::OtherEvent));
        assert_eq!(v(&t, "e1", "u-2", NOW), Err(UserTokenError::OtherUser));

        // Forged: the payload changed under the old signature, or signed
        // with another secret under the same kid.
        let other = B64.encode(br#"{"e":"e1","u":"u-2","exp":1796126400}"#);
        let sig = t.rsplit('.').next().unwrap_or_default();
        let forged = format!("u1.k1.{other}.{sig}");
        assert_eq!(
            v(&forged, "e1", "u-2", NOW),
            Err(UserTokenError::BadSignature)
        );
        let wrong = UserToken::new(&ev("e1"), &us("u-1"), 1_796_126_400)
            .mint(&PassKey::new("k1", b"not-the-same-secret!").expect("key"));
        assert_eq!(
            v(&wrong, "e1", "u-1", NOW),
            Err(UserTokenError::BadSignature)
        );
        let unknown = UserToken::new(&ev("e1"), &us("u-1"), 1_796_126_400)
            .mint(&PassKey::new("k9", SECRET).expect("key"));
        assert_eq!(
            v(&unknown, "e1", "u-1", NOW),
            Err(UserTokenError::UnknownKey)
        );

        // A genuine pass of the same user and event is never a user token.
        let pass = passes::sign(
            &PassClaims {
                event: "e1".into(),
                user: "u-1".into(),
                ticket: "AQAAAAAAAAAAAAAAAAAAAA".into(),
                issued_ms: 1_796_122_800_000,
                expires_ms: 1_796_123_400_000,
            },
            &k.current,
        );
        assert_eq!(
            v(&pass, "e1", "u-1", NOW),
            Err(UserTokenError::PassNotUserToken)
        );
        // Re-prefixing the pass breaks its signature.
        let reprefixed = format!("u1{}", &pass[2..]);
        assert_eq!(
            v(&reprefixed, "e1", "u-1", NOW),
            Err(UserTokenError::BadSignature)
        );
    }

    #[test]
    fn rotation_keeps_previous_valid() {
        let old = PassKey::new("k0", b"the-old-secret-of-the-server").expect("key");
        let t = UserToken::new(&ev("e1"), &us("u-1"), 1_796_126_400).mint(&old);
        let mut k = keys();
        let v = |k: &PassKeys| UserToken::verify(&t, k, &ev("e1"), &us("u-1"), NOW);
        assert_eq!(v(&k), Err(UserTokenError::UnknownKey));
        k.previous = Some(old.clone());
        assert!(v(&k).is_ok());
    }

    #[test]
    fn strict_parsing_never_panics() {
        let k = keys();
        let good = token("e1", "u-1", 1_796_126_400);
        let signed_json = |json: &[u8]| {
            let mut t = format!("u1.k1.{}", B64.encode(json));
            let sig = k.current.sign_bytes(t.as_bytes());
            t.push('.');
            t.push_str(&B64.encode(sig));
            t
        };
        let long = "a".repeat(5000);
        let cases: Vec<String> = vec![
            String::new(),
            "u1".into(),
            "u1...".into(),
            "u1.k1.x.y".into(),
            "u1.k1..".into(),
            format!("{good}."),
            format!(".{good}"),
            format!("{good}="),
            good.replacen("u1.k1", "u1.k 1", 1),
            good.replacen("u1.k1", "u1.", 1),
            good.replacen("u1.k1", "u1.k1234567890abcdefg", 1),
            "u2.k1.e30.AAAA".into(),
            "é.ü.ö.ä".into(),
            long.clone(),
            format!("u1.k1.{long}.{long}"),
            // Signed, but not the documented object.
            signed_json(b"{}"),
            signed_json(b"[]"),
            signed_json(b"not json"),
            signed_json(br#"{"e":"e1","u":"u-1","exp":-1}"#),
            signed_json(br#"{"e":"e1","u":"u-1","exp":"9999999999"}"#),
            signed_json(br#"{"e":"e1","u":"u-1","exp":9999999999,"x":1}"#),
            signed_json(br#"{"e":"e1","u":"u-1","u":"u-1","exp":9999999999}"#),
        ];
        for c in &cases {
            assert_eq!(
                UserToken::verify(c, &k, &ev("e1"), &us("u-1"), NOW),
                Err(UserTokenError::Malformed),
                "{c:.80}"
            );
        }
        // Any single-character change of a good token is refused.
        for i in 0..good.len() {
            let mut b = good.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            if let Ok(t) = String::from_utf8(b) {
                assert!(UserToken::verify(&t, &k, &ev("e1"), &us("u-1"), NOW).is_err());
            }
        }
        // A signed object in another key order or with escapes still verifies
        // (the signature covers the payload bytes, not a canonical form).
        let t = signed_json(br#"{"exp":1796126400,"u":"u\u002d1","e":"e1"}"#);
        assert!(UserToken::verify(&t, &k, &ev("e1"), &us("u-1"), NOW).is_ok());
    }

    /// The vector printed in docs/passes.md ("User tokens").
    #[test]
    fn test_vector() {
        // The kid the server gives this secret (docs/passes.md: "k" and the
        // first 4 bytes of SHA-256("boxoffice kid v1\0" || secret), in hex).
        let keys = PassKeys::new(PassKey::new("k03f9cc91", SECRET).expect("key"));
        let t = UserToken::new(&ev("e1"), &us("u-1"), 1_796_126_400).mint(&keys.current);
        assert_eq!(t, TEST_VECTOR);
        assert!(UserToken::verify(TEST_VECTOR, &keys, &ev("e1"), &us("u-1"), NOW).is_ok());
    }

    const TEST_VECTOR: &str = "u1.k03f9cc91.eyJlIjoiZTEiLCJ1IjoidS0xIiwiZXhwIjoxNzk2MTI2NDAwfQ.Hx_rql8oOcwNh7WaL6DKbyBwYqqJ03LejmCeKIajozA";
}

//! Signed passes: the proof an admitted user carries to the booking backend
//! (owns the pass half of I4: a pass past `expires_at` is refused).
//!
//! Format (docs/passes.md): `v1.<kid>.<payload>.<sig>` where `payload` is
//! base64url (no padding) of the JSON object
//! `{"e": event, "u": user, "t": ticket, "iat": issued_ms, "exp": expires_ms}`
//! and `sig` is base64url of HMAC-SHA256(secret of `kid`, "v1.<kid>.<payload>").
//! Anyone holding the secret verifies a pass offline. Two keys (current and
//! previous) let the secret rotate without logging anyone out.

use crate::time::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest pass accepted for verification (bytes); anything longer is malformed.
pub const MAX_PASS_LEN: usize = 2048;

/// One signing key.
#[derive(Clone)]
pub struct PassKey {
    id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for PassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassKeyError {
    #[error("key id must be 1-16 ASCII letters or digits")]
    BadId,
    #[error("pass secret must be at least 16 bytes")]
    ShortSecret,
}

impl PassKey {
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, PassKeyError> {
        if id.is_empty() || id.len() > 16 || !id.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(PassKeyError::BadId);
        }
        if secret.len() < 16 {
            return Err(PassKeyError::ShortSecret);
        }
        Ok(PassKey {
            id: id.to_string(),
            secret: secret.to_vec(),
        })
    }
    pub fn id(&self) -> &str {
        &self.id
    }
    /// HMAC-SHA256 of `msg` under this key (user tokens share the keys).
    pub(crate) fn sign_bytes(&self, msg: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }
    /// Whether `sig` is the HMAC of `msg`, compared in constant time.
    pub(crate) fn verify_bytes(&self, msg: &[u8], sig: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(msg);
        mac.verify_slice(sig).is_ok()
    }
    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }
}

/// The current key (signs) and optionally the previous one (still verifies).
#[derive(Clone, Debug)]
pub struct PassKeys {
    pub current: PassKey,
    pub previous: Option<PassKey>,
}

impl PassKeys {
    pub fn new(current: PassKey) -> Self {
        PassKeys {
            current,
            previous: None,
        }
    }
    pub(crate) fn by_id(&self, kid: &str) -> Option<&PassKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == kid)
    }
}

/// What a pass says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassClaims {
    #[serde(rename = "e")]
    pub event: String,
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "t")]
    pub ticket: String,
    #[serde(rename = "iat")]
    pub issued_ms: u64,
    #[serde(rename = "exp")]
    pub expires_ms: u64,
}

impl PassClaims {
    pub fn issued_at(&self) -> Timestamp {
        Timestamp(self.issued_ms)
    }
    pub fn expires_at(&self) -> Timestamp {
        Timestamp(self.expires_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error("the pass is not a well-formed v1 pass")]
    Malformed,
    #[error("the pass was signed with a key this server does not know")]
    UnknownKey,
    #[error("the pass signature does not verify")]
    BadSignature,
    #[error("the pass has expired")]
    Expired,
}

/// Signs `claims` with `key`.
pub fn sign(claims: &PassClaims, key: &PassKey) -> String {
    // Serialising plain strings and integers to JSON cannot fail; an empty
    // payload signed as a pass would be worse than a panic.
    let json =
        serde_json::to_vec(claims).expect("PassClaims (strings, integers) serialise to JSON");
    let mut token = format!("v1.{}.{}", key.id, B64.encode(json));
    let mut mac = key.mac();
    mac.update(token.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    token.push('.');
    token.push_str(&sig);
    token
}

/// Verifies signature and expiry (`now >= exp` is expired). Checking that the
/// pass names the right event and user is the caller's job.
pub fn verify(token: &str, keys: &PassKeys, now: Timestamp) -> Result<PassClaims, PassError> {
    if token.len() > MAX_PASS_LEN {
        return Err(PassError::Malformed);
    }
    let (signed, sig) = token.rsplit_once('.').ok_or(PassError::Malformed)?;
    let mut parts = signed.split('.');
    let (Some("v1"), Some(kid), Some(payload), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(PassError::Malformed);
    };
    let sig = B64.decode(sig).map_err(|_| PassError::Malformed)?;
    let key = keys.by_id(kid).ok_or(PassError::UnknownKey)?;
    let mut mac = key.mac();
    mac.update(signed.as_bytes());
    mac.verify_slice(&sig)
        .map_err(|_| PassError::BadSignature)?;
    let json = B64.decode(payload).map_err(|_| PassError::Malformed)?;
    let claims: PassClaims = serde_json::from_slice(&json).map_err(|_| PassError::Malformed)?;
    if now.as_millis() >= claims.expires_ms {
        return Err(PassError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> PassKey {
        PassKey::new(id, b"0123456789abcdef-secret").expect("valid key")
    }

    fn claims() -> PassClaims {
        PassClaims {
            event: "e1".into(),
            user: "u-1".into(),
            ticket: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            issued_ms: 1_000,
            expires_ms: 601_000,
        }
    }

    #[test]
    fn signs_and_verifies() {
        let keys = PassKeys::new(key("k1"));
        let t = sign(&claims(), &keys.current);
        assert_eq!(verify(&t, &keys, Timestamp(1_000)), Ok(claims()));
        assert_eq!(
            verify(&t, &keys, Timestamp(601_000)),
            Err(PassError::Expired)
        );
    }

    #[test]
    fn rotation_keeps_previous_valid() {
        let old = key("k1");
        let t = sign(&claims(), &old);
        let mut keys = PassKeys::new(PassKey::new("k2", b"another-secret-of-16b").expect("key"));
        assert_eq!(verify(&t, &keys, Timestamp(1)), Err(PassError::UnknownKey));
        keys.previous = Some(old);
        assert!(verify(&t, &keys, Timestamp(1)).is_ok());
    }

    #[test]
    fn tampering_is_detected() {
        let keys = PassKeys::new(key("k1"));
        let t = sign(&claims(), &keys.current);
        let mut other = claims();
        other.user = "u-2".into();
        let forged_payload = B64.encode(serde_json::to_vec(&other).expect("json"));
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!("v1.k1.{forged_payload}.{}", parts[3]);
        assert_eq!(
            verify(&forged, &keys, Timestamp(1)),
            Err(PassError::BadSignature)
        );
        let wrong_key = sign(
            &claims(),
            &PassKey::new("k1", b"not-the-same-secret!").expect("key"),
        );
        assert_eq!(
            verify(&wrong_key, &keys, Timestamp(1)),
            Err(PassError::BadSignature)
        );
        for junk in [
            "",
            "v1",
            "v1.k1.x.y",
            "v2.k1.a.b",
            "v1.k1..",
            &"a".repeat(5000),
        ] {
            assert!(verify(junk, &keys, Timestamp(1)).is_err(), "{junk}");
        }
    }

    /// The vector printed in docs/passes.md.
    #[test]
    fn test_vector() {
        let k = PassKey::new("k1", b"boxoffice-test-vector-secret").expect("key");
        let c = PassClaims {
            event: "e1".into(),
            user: "u-1".into(),
            ticket: "AQAAAAAAAAAAAAAAAAAAAA".into(),
            issued_ms: 1_796_122_800_000,
            expires_ms: 1_796_123_400_000,
        };
        let t = sign(&c, &k);
        assert_eq!(t, TEST_VECTOR);
    }

    const TEST_VECTOR: &str = "v1.k1.eyJlIjoiZTEiLCJ1IjoidS0xIiwidCI6IkFRQUFBQUFBQUFBQUFBQUFBQUFBQUEiLCJpYXQiOjE3OTYxMjI4MDAwMDAsImV4cCI6MTc5NjEyMzQwMDAwMH0.CCthq0ffErZGLyNJt2_aa4nZM3ammcfSJoP0BH0_hfs";
}

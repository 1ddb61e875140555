//! Bearer-token realms. Tokens are compared in constant time as 128-bit
//! SipHash-2-4 tags under a key drawn at random when the server starts, so
//! neither content nor length leaks through timing: an attacker who cannot
//! compute the tags learns nothing from how long a comparison takes (a keyed
//! PRF is all the comparison needs; it was SHA-256, a hash function built for
//! far more, on every service and admin request). A missing or wrong token is
//! 401; a valid token of the other realm is 403 (the mapping to statuses is in
//! [`errors`](super::errors)).

use super::router::Realm;
use http::{header, HeaderMap};
use siphasher::sip128::SipHasher24;
use subtle::ConstantTimeEq;

pub struct Auth {
    key: SipHasher24,
    admin: u128,
    service: u128,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { .. }")
    }
}

/// Why a request's credentials do not admit it to a realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No usable `Authorization: Bearer` header.
    #[error("an Authorization: Bearer token is required")]
    Missing,
    /// A token that is neither realm's.
    #[error("the bearer token is not valid")]
    Invalid,
    /// A valid token of the other realm.
    #[error("this endpoint needs the {needed} token, not the {given} token")]
    OtherRealm { needed: Realm, given: Realm },
}

/// The tag as one integer: `subtle` compares a `u128` with one masked
/// fold, a byte slice with a barrier per byte (0.7 % of a hold's CPU).
fn tag(key: &SipHasher24, token: &[u8]) -> u128 {
    key.hash(token).as_u128()
}

impl Auth {
    /// The realms of the two tokens; `key` is fresh randomness (16 bytes,
    /// never stored or sent anywhere).
    pub fn new(admin: &str, service: &str, key: [u8; 16]) -> Self {
        let key = SipHasher24::new_with_key(&key);
        Auth {
            admin: tag(&key, admin.as_bytes()),
            service: tag(&key, service.as_bytes()),
            key,
        }
    }

    /// Checks the request's credentials for `realm`.
    pub fn check(&self, headers: &HeaderMap, realm: Realm) -> Result<(), AuthError> {
        match realm {
            Realm::Public => return Ok(()),
            Realm::PublicOrService => return self.public_or_service(headers).map(|_| ()),
            Realm::Service | Realm::Admin => {}
        }
        let token = bearer(headers).ok_or(AuthError::Missing)?;
        let d = tag(&self.key, token);
        let is_admin: bool = d.ct_eq(&self.admin).into();
        let is_service: bool = d.ct_eq(&self.service).into();
        match (realm, is_admin, is_service) {
            (Realm::Admin, true, _) | (Realm::Service, _, true) => Ok(()),
            (Realm::Admin, false, true) => Err(AuthError::OtherRealm {
                needed: Realm::Admin,
                given: Realm::Service,
            }),
            (Realm::Service, true, false) => Err(AuthError::OtherRealm {
                needed: Realm::Service,
                given: Realm::Admin,
            }),
            _ => Err(AuthError::Invalid),
        }
    }

    /// Which realm a [`Realm::PublicOrService`] request is in: public
    /// without an `Authorization` header, service with the service token.
    /// Any other header (a wrong or malformed token, the admin token) is
    /// refused: a backend with a stale token must hear 401, not be served as
    /// an anonymous browser.
    pub fn public_or_service(&self, headers: &HeaderMap) -> Result<Realm, AuthError> {
        if !headers.contains_key(header::AUTHORIZATION) {
            return Ok(Realm::Public);
        }
        self.check(headers, Realm::Service).map(|()| Realm::Service)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = (v.get(..7)?, v.get(7..)?);
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::errors::ApiError;
    use http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn realms() {
        let a = Auth::new("admin-token", "service-token", [9; 16]);
        let code = |h: &str, r| {
            a.check(&headers(h), r)
                .err()
                .map(|e| ApiError::from(e).status.as_u16())
        };
        assert_eq!(code("Bearer admin-token", Realm::Admin), None);
        assert_eq!(code("bearer service-token", Realm::Service), None);
        assert_eq!(code("Bearer service-token", Realm::Admin), Some(403));
        assert_eq!(code("Bearer admin-token", Realm::Service), Some(403));
        assert_eq!(code("Bearer nope", Realm::Admin), Some(401));
        // One byte off at either end, or one byte longer, is another tag.
        assert_eq!(code("Bearer admin-tokeN", Realm::Admin), Some(401));
        assert_eq!(code("Bearer Admin-token", Realm::Admin), Some(401));
        assert_eq!(code("Bearer admin-token2", Realm::Admin), Some(401));
        assert_eq!(code("", Realm::Admin), Some(401));
        assert_eq!(code("Basic admin-token", Realm::Admin), Some(401));
        assert_eq!(code("Bearer ", Realm::Admin), Some(401));
        assert_eq!(code("", Realm::Public), None);
        let either = Realm::PublicOrService;
        assert_eq!(code("Bearer service-token", either), None);
        assert_eq!(code("Bearer nope", either), Some(401));
        assert_eq!(code("Basic service-token", either), Some(401));
        assert_eq!(code("Bearer ", either), Some(401));
        assert_eq!(code("Bearer admin-token", either), Some(403));
        assert_eq!(a.public_or_service(&HeaderMap::new()), Ok(Realm::Public));
        assert_eq!(
            a.public_or_service(&headers("Bearer service-token")),
            Ok(Realm::Service)
        );
        let e = a
            .check(&headers("Bearer service-token"), Realm::Admin)
            .err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("this endpoint needs the admin token, not the service token")
        );
    }
}

//! The gate's cookies: `bo_ticket` (the visitor's place in line), `bo_pass`
//! (the signed pass once admitted) and `bo_lang` (the page language).
//!
//! The ticket and the pass are bearer credentials, so both are HttpOnly (no
//! script on the page can read them), SameSite=Lax (a cross-site form post
//! does not carry them, so another site cannot make an admitted visitor act
//! on the backend), and Secure whenever the visitor came over TLS. They
//! carry no signature of their own: the ticket and the pass sign
//! themselves, and the engine checks both on every use.

use cookie::{Cookie, SameSite};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

pub const TICKET: &str = "bo_ticket";
pub const PASS: &str = "bo_pass";
pub const LANG: &str = "bo_lang";
/// Cookies the gate owns: never forwarded to the backend.
pub const OWN: &[&str] = &[TICKET, PASS, LANG];

/// How long the ticket cookie outlives a closed browser. The place itself
/// lasts only while the visitor is present (`idle_timeout_s`); this only
/// has to cover a browser restart during a sale.
const TICKET_MAX_AGE_S: i64 = 24 * 3600;
/// A sane bound on a cookie value we read (tickets and passes are far
/// shorter); longer values are ignored, not parsed.
const MAX_VALUE: usize = 1024;

/// The first cookie named `name` in the request's `Cookie` headers
/// (parsed by the `cookie` crate; malformed pairs are skipped).
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .filter_map(|c| c.value_raw())
        .map(|v| v.trim_matches('"'))
        .find(|v| !v.is_empty() && v.len() <= MAX_VALUE)
}

/// Cookie attributes for one response.
#[derive(Clone, Copy, Debug)]
pub struct Jar {
    /// The visitor came over TLS: every cookie gets `Secure`.
    pub secure: bool,
}

impl Jar {
    fn base<'c>(&self, name: &'c str, value: String) -> cookie::CookieBuilder<'c> {
        Cookie::build((name, value))
            .path("/")
            .same_site(SameSite::Lax)
            .secure(self.secure)
    }

    fn append(headers: &mut HeaderMap, c: Cookie<'_>) {
        // Values are tickets, passes and language codes: URL-safe ASCII, so
        // the header is always valid; anything else is skipped, not sent.
        if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
            headers.append(SET_COOKIE, v);
        }
    }

    pub fn set_ticket(&self, headers: &mut HeaderMap, ticket: &str) {
        let c = self
            .base(TICKET, ticket.to_string())
            .http_only(true)
            .max_age(cookie::time::Duration::seconds(TICKET_MAX_AGE_S))
            .build();
        Self::append(headers, c);
    }

    /// The pass, kept until it expires (`max_age_s`, at least 1 s).
    pub fn set_pass(&self, headers: &mut HeaderMap, pass: &str, max_age_s: u64) {
        let age = i64::try_from(max_age_s.max(1)).unwrap_or(i64::MAX);
        let c = self
            .base(PASS, pass.to_string())
            .http_only(true)
            .max_age(cookie::time::Duration::seconds(age))
            .build();
        Self::append(headers, c);
    }

    pub fn set_lang(&self, headers: &mut HeaderMap, lang: &str) {
        let c = self
            .base(LANG, lang.to_string())
            .max_age(cookie::time::Duration::days(365))
            .build();
        Self::append(headers, c);
    }

    /// Tells the browser to drop cookie `name`.
    pub fn clear(&self, headers: &mut HeaderMap, name: &'static str) {
        let c = self
            .base(name, String::new())
            .http_only(true)
            .max_age(cookie::time::Duration::ZERO)
            .build();
        Self::append(headers, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookies(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).expect("ascii"));
        }
        h
    }

    #[test]
    fn reads_the_named_cookie_from_any_cookie_header() {
        let h = with_cookies(&["a=1; bo_ticket=t-1", "bo_pass=p.q.r"]);
        assert_eq!(get(&h, TICKET), Some("t-1"));
        assert_eq!(get(&h, PASS), Some("p.q.r"));
        assert_eq!(get(&h, LANG), None);
        // A prefix of another name is not the name.
        let h = with_cookies(&["xbo_ticket=no; bo_ticketx=no"]);
        assert_eq!(get(&h, TICKET), None);
        // Empty and oversized values are absent.
        let long = format!("bo_ticket={}", "x".repeat(MAX_VALUE + 1));
        assert_eq!(get(&with_cookies(&["bo_ticket="]), TICKET), None);
        assert_eq!(get(&with_cookies(&[&long]), TICKET), None);
    }

    #[test]
    fn credentials_are_http_only_lax_and_secure_over_tls() {
        let mut h = HeaderMap::new();
        Jar { secure: true }.set_pass(&mut h, "p1", 600);
        Jar { secure: false }.set_ticket(&mut h, "t1");
        let all: Vec<_> = h
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].starts_with("bo_pass=p1"), "{}", all[0]);
        for want in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=600",
        ] {
            assert!(all[0].contains(want), "{want} in {}", all[0]);
        }
        assert!(all[1].contains("HttpOnly") && !all[1].contains("Secure"));
    }

    #[test]
    fn clearing_expires_the_cookie() {
        let mut h = HeaderMap::new();
        Jar { secure: false }.clear(&mut h, PASS);
        let v = h
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(v.starts_with("bo_pass=;") && v.contains("Max-Age=0"), "{v}");
    }
}

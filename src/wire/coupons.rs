//! Coupons: the stock a `PUT` sends, claims, and their documents.

use super::ids::User;
use super::num::{Natural, Positive};
use super::time::rfc3339_opt;
use boxoffice_engine::coupons::CouponCounts;
use boxoffice_engine::{ClaimId, ClaimReply, CouponConfig, CouponId, Timestamp};
use serde::{Deserialize, Serialize};

/// `PUT /v1/coupons/{coupon}`. Converted, not validated: the engine checks
/// ranges and the window once (`CouponConfig::validate`).
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct CouponRequest {
    stock: Natural,
    per_user: Option<Positive>,
    #[serde(default, with = "rfc3339_opt")]
    opens_at: Option<Timestamp>,
    #[serde(default, with = "rfc3339_opt")]
    closes_at: Option<Timestamp>,
}

impl From<CouponRequest> for CouponConfig {
    fn from(r: CouponRequest) -> Self {
        CouponConfig {
            stock: r.stock.0,
            per_user: r.per_user.map_or(CouponConfig::DEFAULT_PER_USER, |p| p.0),
            opens_at: r.opens_at,
            closes_at: r.closes_at,
        }
    }
}

/// `POST /v1/coupons/{coupon}/claims`.
#[derive(Debug, Deserialize)]
#[serde(expecting = "an object")]
pub struct ClaimRequest {
    pub user: User,
}

/// The coupon document.
#[derive(Debug, Serialize)]
pub struct CouponDoc<'a> {
    coupon: &'a str,
    stock: u32,
    issued: u32,
    remaining: u32,
    per_user: u32,
    #[serde(with = "rfc3339_opt")]
    opens_at: Option<Timestamp>,
    #[serde(with = "rfc3339_opt")]
    closes_at: Option<Timestamp>,
}

impl<'a> CouponDoc<'a> {
    pub fn new(id: &'a CouponId, cfg: &CouponConfig, n: &CouponCounts) -> Self {
        CouponDoc {
            coupon: id.as_str(),
            stock: n.stock,
            issued: n.issued,
            remaining: n.remaining,
            per_user: cfg.per_user.get(),
            opens_at: cfg.opens_at,
            closes_at: cfg.closes_at,
        }
    }
}

/// The claim document.
#[derive(Debug, Serialize)]
pub struct ClaimDoc<'a> {
    #[serde(serialize_with = "super::display")]
    claim: &'a ClaimId,
    coupon: &'a str,
    user: &'a str,
    remaining: u32,
}

impl<'a> ClaimDoc<'a> {
    pub fn new(r: &'a ClaimReply) -> Self {
        ClaimDoc {
            claim: &r.claim,
            coupon: r.coupon.as_str(),
            user: r.user.as_str(),
            remaining: r.remaining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::from_body;

    #[test]
    fn coupon_requests() {
        let c: CouponConfig = from_body::<CouponRequest>(br#"{"stock": 0, "opens_at": null}"#)
            .map(Into::into)
            .expect("valid");
        assert_eq!(
            (c.stock, c.per_user, c.opens_at),
            (0, CouponConfig::DEFAULT_PER_USER, None)
        );
        let e = from_body::<CouponRequest>(br#"{"stock": 5, "per_user": 0}"#).err();
        assert_eq!(e.and_then(|e| e.field).as_deref(), Some("per_user"));
    }
}

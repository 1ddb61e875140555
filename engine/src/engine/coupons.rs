//! Coupons through the engine: stock, counts, claims and give-backs.
//!
//! Invariant: I2 (stock = issued + remaining, never more issued than stock)
//! lives in [`crate::coupons`]; here a retried claim with the same
//! idempotency key returns the first claim (I5).

use super::{Engine, Keyed, PutOutcome, Receipt, Rejection};
use crate::config::CouponConfig;
use crate::coupons::{Claimed, CouponCounts};
use crate::idempotency::{IdemOutcome, IdemScope};
use crate::ids::{ClaimId, CouponId, IdempotencyKey, UserId};
use crate::journal::Change;
use crate::shard::Shard;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimReply {
    pub claim: ClaimId,
    pub coupon: CouponId,
    pub user: UserId,
    pub remaining: u32,
    pub replayed: bool,
}

impl Engine {
    /// Every coupon with its counts, sorted by id.
    pub fn coupons(&self) -> Vec<(CouponId, CouponCounts)> {
        let mut all: Vec<(CouponId, CouponCounts)> = self
            .shards
            .iter()
            .flat_map(|s| {
                let s = s.read();
                s.coupons
                    .values()
                    .map(|c| (c.id().clone(), c.counts()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn put_coupon(
        &self,
        id: &CouponId,
        config: CouponConfig,
        now: Timestamp,
    ) -> Result<Receipt<(PutOutcome, CouponCounts)>, Rejection> {
        config.validate().map_err(Rejection::InvalidConfig)?;
        let mut shard = self.coupon_shard(id).write();
        let now = shard.advance(now);
        match shard.coupons.get_mut(id) {
            None => {
                shard.commit(now, Shard::put_coupon_change(id, config));
                let counts = shard.coupons.get(id).map(|c| c.counts());
                let counts = counts.ok_or(Rejection::CouponNotFound)?;
                Ok(Receipt::new(&shard, (PutOutcome::Created, counts)))
            }
            Some(c) => {
                let mut out = Vec::new();
                let r = c.configure(config, now, &mut out);
                let counts = c.counts();
                shard.record_all(now, out, |change| Change::Coupon {
                    coupon: id.clone(),
                    change,
                });
                r?;
                Ok(Receipt::new(&shard, (PutOutcome::Replaced, counts)))
            }
        }
    }

    pub fn coupon(&self, id: &CouponId) -> Result<(CouponConfig, CouponCounts), Rejection> {
        let shard = self.coupon_shard(id).read();
        let c = shard.coupons.get(id).ok_or(Rejection::CouponNotFound)?;
        Ok((*c.config(), c.counts()))
    }

    pub fn claim(
        &self,
        id: &CouponId,
        user: &UserId,
        key: Option<&IdempotencyKey>,
        now: Timestamp,
    ) -> Result<Receipt<ClaimReply>, Rejection> {
        let mut shard = self.coupon_shard(id).write();
        let now = shard.advance(now);
        let reply = |claim, remaining, replayed| ClaimReply {
            claim,
            coupon: id.clone(),
            user: user.clone(),
            remaining,
            replayed,
        };
        let keyed = Keyed::new(IdemScope::Claim(id.clone()), key, user);
        if let Some(keyed) = &keyed {
            match keyed.lookup(&shard, now)? {
                None => {}
                Some(IdemOutcome::Claim(claim)) => {
                    let c = shard.coupons.get(id).ok_or(Rejection::CouponNotFound)?;
                    let replayed = reply(claim, c.counts().remaining, true);
                    return Ok(Receipt::new(&shard, replayed));
                }
                Some(_) => return Err(Rejection::IdempotencyKeyReused),
            }
        }
        let c = shard.coupons.get_mut(id).ok_or(Rejection::CouponNotFound)?;
        let mut out = Vec::new();
        let outcome = c.claim(user, self.writer_epoch(), now, &mut out);
        shard.record_all(now, out, |change| Change::Coupon {
            coupon: id.clone(),
            change,
        });
        let Claimed { claim, remaining } = outcome?;
        if let Some(keyed) = keyed {
            keyed.remember(&mut shard, IdemOutcome::Claim(claim), now);
        }
        Ok(Receipt::new(&shard, reply(claim, remaining, false)))
    }

    /// Gives a claimed unit back to stock; returning twice is a no-op.
    pub fn return_claim(
        &self,
        id: &CouponId,
        claim: ClaimId,
        now: Timestamp,
    ) -> Result<Receipt<()>, Rejection> {
        let mut shard = self.coupon_shard(id).write();
        let now = shard.advance(now);
        let c = shard.coupons.get_mut(id).ok_or(Rejection::CouponNotFound)?;
        let mut out = Vec::new();
        let r = c.return_claim(claim, now, &mut out);
        shard.record_all(now, out, |change| Change::Coupon {
            coupon: id.clone(),
            change,
        });
        r?;
        Ok(Receipt::new(&shard, ()))
    }
}

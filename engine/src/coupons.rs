//! Limited coupons: first-come-first-served stock with per-user limits
//! (owns I2: `issued + remaining == stock` after every operation, exactly
//! `stock` claims succeed, no user passes `per_user`).
//!
//! Same contract as the other domain modules: state changes only in
//! [`Coupon::apply`], each change pushed to `out` for the journal.

use crate::chunked::Chunked;
use crate::config::CouponConfig;
use crate::ids::{ClaimId, CouponId, UserId};
use crate::time::Timestamp;
use crate::user_counts::UserCounts;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponCounts {
    pub stock: u32,
    pub issued: u32,
    pub remaining: u32,
}

/// A successful claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub claim: ClaimId,
    pub remaining: u32,
}

/// A give-back that went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    Now,
    /// Returned before: nothing changes (idempotent).
    Before,
}

/// Why a coupon operation was turned down (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponRefusal {
    /// This user already holds `per_user` claims.
    AlreadyClaimed,
    SoldOut,
    /// Before `opens_at` or from `closes_at` on.
    NotOpen,
    /// No such claim.
    ClaimNotFound,
    /// The new stock is below what is already issued.
    StockBelowIssued {
        issued: u32,
    },
}

/// A journaled change to a coupon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouponChange {
    Configured {
        config: CouponConfig,
    },
    Claimed {
        claim: ClaimId,
        user: UserId,
    },
    /// `user` (the claim's) is not needed to replay; it is carried so the
    /// outcome published on the events-out stream is a pure function of the
    /// entry.
    Returned {
        claim: ClaimId,
        user: UserId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ClaimRecord {
    /// Writer epoch of the claim's id; the id resolves only with it.
    epoch: u64,
    user: UserId,
    returned: bool,
}

/// One coupon's stock and ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    id: CouponId,
    config: CouponConfig,
    issued: u32,
    /// Every claim ever made; index = `ClaimId::index`. In chunks, and the
    /// per-user counts in a split table, so that neither stalls a claim
    /// behind the coupon's lock to grow, however large the stock.
    ledger: Chunked<ClaimRecord>,
    /// Live claims per user.
    #[serde(skip)]
    per_user: UserCounts,
}

impl Coupon {
    pub fn new(id: CouponId, config: CouponConfig) -> Self {
        Coupon {
            id,
            config,
            issued: 0,
            ledger: Chunked::default(),
            per_user: UserCounts::default(),
        }
    }

    pub fn id(&self) -> &CouponId {
        &self.id
    }

    pub fn config(&self) -> &CouponConfig {
        &self.config
    }

    pub fn counts(&self) -> CouponCounts {
        CouponCounts {
            stock: self.config.stock,
            issued: self.issued,
            remaining: self.config.stock - self.issued,
        }
    }

    pub fn is_open(&self, now: Timestamp) -> bool {
        self.config.opens_at.is_none_or(|o| now >= o)
            && self.config.closes_at.is_none_or(|c| now < c)
    }

    pub fn apply(&mut self, change: &CouponChange, _at: Timestamp) {
        match change {
            CouponChange::Configured { config } => {
                self.config = *config;
                // A replayed journal never lowers stock below issued; guard anyway.
                self.config.stock = self.config.stock.max(self.issued);
            }
            CouponChange::Claimed { claim, user } => {
                debug_assert_eq!(claim.index as usize, self.ledger.len());
                self.ledger.push(ClaimRecord {
                    epoch: claim.epoch,
                    user: user.clone(),
                    returned: false,
                });
                self.issued += 1;
                self.per_user.add(user, 1);
            }
            CouponChange::Returned { claim, .. } => {
                let rec = self
                    .ledger
                    .get_mut(claim.index as usize)
                    .filter(|r| r.epoch == claim.epoch);
                if let Some(rec) = rec {
                    if !rec.returned {
                        rec.returned = true;
                        self.issued -= 1;
                        self.per_user.sub(&rec.user, 1);
                    }
                }
            }
        }
    }

    fn commit(&mut self, change: CouponChange, now: Timestamp, out: &mut Vec<CouponChange>) {
        self.apply(&change, now);
        out.push(change);
    }

    pub fn configure(
        &mut self,
        config: CouponConfig,
        now: Timestamp,
        out: &mut Vec<CouponChange>,
    ) -> Result<(), CouponRefusal> {
        if config.stock < self.issued {
            return Err(CouponRefusal::StockBelowIssued {
                issued: self.issued,
            });
        }
        self.commit(CouponChange::Configured { config }, now, out);
        Ok(())
    }

    /// Claims one unit for `user`; the claim's id carries `epoch`, the
    /// writer epoch of the caller.
    pub fn claim(
        &mut self,
        user: &UserId,
        epoch: u64,
        now: Timestamp,
        out: &mut Vec<CouponChange>,
    ) -> Result<Claimed, CouponRefusal> {
        if !self.is_open(now) {
            return Err(CouponRefusal::NotOpen);
        }
        if self.per_user.get(user) >= self.config.per_user.get() {
            return Err(CouponRefusal::AlreadyClaimed);
        }
        if self.issued >= self.config.stock {
            return Err(CouponRefusal::SoldOut);
        }
        let Ok(index) = u32::try_from(self.ledger.len()) else {
            return Err(CouponRefusal::SoldOut);
        };
        let claim = ClaimId { index, epoch };
        self.commit(
            CouponChange::Claimed {
                claim,
                user: user.clone(),
            },
            now,
            out,
        );
        Ok(Claimed {
            claim,
            remaining: self.counts().remaining,
        })
    }

    /// Who made a claim and whether it was returned.
    pub fn claim_info(&self, claim: ClaimId) -> Option<(&UserId, bool)> {
        self.record(claim).map(|r| (&r.user, r.returned))
    }

    /// The claim `claim` names: its index and the epoch it was issued under
    /// (a lost claim's id names no later claim at the same index).
    fn record(&self, claim: ClaimId) -> Option<&ClaimRecord> {
        self.ledger
            .get(claim.index as usize)
            .filter(|r| r.epoch == claim.epoch)
    }

    pub fn return_claim(
        &mut self,
        claim: ClaimId,
        now: Timestamp,
        out: &mut Vec<CouponChange>,
    ) -> Result<Returned, CouponRefusal> {
        match self.record(claim) {
            None => Err(CouponRefusal::ClaimNotFound),
            Some(r) if r.returned => Ok(Returned::Before),
            Some(r) => {
                let user = r.user.clone();
                self.commit(CouponChange::Returned { claim, user }, now, out);
                Ok(Returned::Now)
            }
        }
    }

    /// Rebuilds derived indexes after deserialising.
    pub(crate) fn rebuild(&mut self) {
        self.per_user.clear();
        for r in self.ledger.iter().filter(|r| !r.returned) {
            self.per_user.add(&r.user, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::nz;

    fn coupon(stock: u32, per_user: u32) -> Coupon {
        Coupon::new(
            CouponId::new("c1").expect("id"),
            CouponConfig {
                stock,
                per_user: nz(per_user),
                opens_at: Some(Timestamp(100)),
                closes_at: Some(Timestamp(200)),
            },
        )
    }

    /// The writer epoch of these tests.
    const E: u64 = 5;

    fn user(n: u32) -> UserId {
        UserId::new(&format!("u{n}")).expect("id")
    }

    #[test]
    fn conservation_and_limits() {
        let mut c = coupon(3, 2);
        let mut out = vec![];
        let now = Timestamp(150);
        assert_eq!(
            c.claim(&user(1), E, Timestamp(99), &mut out),
            Err(CouponRefusal::NotOpen)
        );
        assert_eq!(
            c.claim(&user(1), E, Timestamp(200), &mut out),
            Err(CouponRefusal::NotOpen)
        );
        assert!(matches!(
            c.claim(&user(1), E, now, &mut out),
            Ok(Claimed { remaining: 2, .. })
        ));
        assert!(matches!(
            c.claim(&user(1), E, now, &mut out),
            Ok(Claimed { remaining: 1, .. })
        ));
        assert_eq!(
            c.claim(&user(1), E, now, &mut out),
            Err(CouponRefusal::AlreadyClaimed)
        );
        assert!(matches!(
            c.claim(&user(2), E, now, &mut out),
            Ok(Claimed { remaining: 0, .. })
        ));
        assert_eq!(
            c.claim(&user(3), E, now, &mut out),
            Err(CouponRefusal::SoldOut)
        );
        assert_eq!(
            c.return_claim(ClaimId { index: 0, epoch: E }, now, &mut out),
            Ok(Returned::Now)
        );
        assert_eq!(
            c.return_claim(ClaimId { index: 0, epoch: E }, now, &mut out),
            Ok(Returned::Before)
        );
        assert_eq!(
            c.return_claim(ClaimId { index: 9, epoch: E }, now, &mut out),
            Err(CouponRefusal::ClaimNotFound)
        );
        let k = c.counts();
        assert_eq!((k.issued, k.remaining), (2, 1));
        assert!(matches!(
            c.claim(&user(1), E, now, &mut out),
            Ok(Claimed { .. })
        ));
        assert_eq!(
            c.configure(
                CouponConfig {
                    stock: 2,
                    ..*c.config()
                },
                now,
                &mut out
            ),
            Err(CouponRefusal::StockBelowIssued { issued: 3 })
        );
        // Replaying the journal rebuilds the same coupon.
        let mut replay = coupon(3, 2);
        for ch in &out {
            replay.apply(ch, now);
        }
        assert_eq!(replay, c);
    }

    #[test]
    fn a_claim_id_of_another_epoch_names_nothing() {
        let mut c = coupon(3, 1);
        let mut out = vec![];
        let now = Timestamp(150);
        let Ok(mine) = c.claim(&user(1), E, now, &mut out) else {
            panic!("claim");
        };
        // Same index, the epoch of a writer whose claim was lost.
        let lost = ClaimId {
            index: mine.claim.index,
            epoch: E - 1,
        };
        assert_eq!(c.claim_info(lost), None);
        assert_eq!(
            c.return_claim(lost, now, &mut out),
            Err(CouponRefusal::ClaimNotFound)
        );
        assert_eq!(c.counts().issued, 1, "nothing given back");
        assert_eq!(c.claim_info(mine.claim), Some((&user(1), false)));
        // A journaled give-back of an id that does not fit changes nothing.
        c.apply(
            &CouponChange::Returned {
                claim: lost,
                user: user(1),
            },
            now,
        );
        assert_eq!(c.counts().issued, 1);
    }
}

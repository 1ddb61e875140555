//! The one commit path (I6: acknowledged = durable).
//!
//! Every engine write returns a [`Receipt`]: its value, its shard and the
//! journal `seq` it must be durable up to. A handler gets the value only from
//! [`AppState::commit`], which counts the write, marks its live line and
//! waits until [`Durability`](crate::durability::Durability) has stored
//! exactly that `seq`. `Receipt::into_value` is a disallowed method in this
//! crate (clippy.toml) except here, so a handler cannot answer a write
//! without going through this path, and it never needs to know how events
//! and coupons map to shards.

use crate::durability::NotDurable;
use crate::metrics::{ClaimOutcome, HoldOutcome, HoldStep};
use crate::state::AppState;
use boxoffice_engine::coupons::CouponCounts;
use boxoffice_engine::seats::HoldInfo;
use boxoffice_engine::{
    ClaimReply, CouponId, EventId, EventInfo, HoldReply, Joined, PutOutcome, Receipt,
};

/// Which write a receipt is for: the metric it counts and the live line it
/// moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write<'a> {
    /// Event created, replaced, deleted, paused or resumed: its line moved.
    Event(&'a EventId),
    Join(&'a EventId),
    Leave(&'a EventId),
    Complete(&'a EventId),
    Hold(&'a EventId),
    /// Confirm, extend or release of a hold (the step names the metric).
    HoldStep(&'a EventId, HoldStep),
    /// Coupon stock put (no metric, no line).
    Coupon(&'a CouponId),
    Claim(&'a CouponId),
    ClaimReturned(&'a CouponId),
}

/// What a committed value says about itself for the metrics.
pub trait Outcome {
    /// False for an idempotent replay or a join that found its ticket.
    fn fresh(&self) -> bool {
        true
    }
}

impl Outcome for () {}
impl Outcome for HoldInfo {}
impl Outcome for EventInfo {}
impl Outcome for (PutOutcome, EventInfo) {}
impl Outcome for (PutOutcome, CouponCounts) {}

impl Outcome for Joined {
    fn fresh(&self) -> bool {
        self.created && !self.replayed
    }
}

impl Outcome for HoldReply {
    fn fresh(&self) -> bool {
        !self.replayed
    }
}

impl Outcome for ClaimReply {
    fn fresh(&self) -> bool {
        !self.replayed
    }
}

impl AppState {
    /// Counts the write, marks its line, and waits until its journal is
    /// durable up to the receipt's `seq`; then (and only then) hands out the
    /// value to answer with. A 503 (`NotDurable`) means the change was applied
    /// but may not survive a crash: the client retries (with its
    /// idempotency key).
    pub async fn commit<T: Outcome>(
        &self,
        receipt: Receipt<T>,
        write: Write<'_>,
    ) -> Result<T, NotDurable> {
        let (shard, seq) = (receipt.shard(), receipt.seq());
        // The one place a write's value leaves its receipt (see the module doc).
        #[allow(clippy::disallowed_methods)]
        let value = receipt.into_value();
        let fresh = value.fresh();
        let m = &self.metrics;
        match write {
            Write::Event(id) => self.lines.touch(id),
            Write::Join(id) => {
                m.join(id, fresh);
                self.lines.touch(id);
            }
            Write::Leave(id) => {
                m.leave(id);
                self.lines.touch(id);
            }
            Write::Complete(id) => {
                m.complete(id);
                self.lines.touch(id);
            }
            Write::Hold(id) => m.hold(
                id,
                if fresh {
                    HoldOutcome::Held
                } else {
                    HoldOutcome::Replayed
                },
            ),
            Write::HoldStep(id, step) => m.hold_step(id, step),
            Write::Coupon(_) => {}
            Write::Claim(id) => m.claim(
                id,
                if fresh {
                    ClaimOutcome::Claimed
                } else {
                    ClaimOutcome::Replayed
                },
            ),
            Write::ClaimReturned(id) => m.claim_returned(id),
        }
        self.durability.wait(shard, seq).await?;
        Ok(value)
    }
}

//! A count per user (seats held and sold, live coupon claims), for the
//! per-user limits.
//!
//! Kept in a [`SplitTable`] so that the table growing with a sale never
//! stalls the shard, with a keyed 32-bit hash of the user id stored beside
//! each count so that growth moves entries without re-reading and re-hashing
//! the user ids (24 bytes an entry, the same as a map of `UserId` to `u32`).
//! The hash is SipHash-1-3 with a random key per table (`RandomState`): user
//! ids come from clients, and a fixed hash would let a client pick ids that
//! all land in one bucket.
//!
//! Invariants: a user absent from the table has count 0; no entry holds 0.

use crate::ids::UserId;
use crate::split_table::SplitTable;
use hashbrown::hash_table::Entry;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

#[derive(Clone)]
struct Count {
    user: UserId,
    n: u32,
    hash: u32,
}

/// Spread a 32-bit hash over 64 bits: the low bits (the bucket index) stay a
/// bijection of the hash's low bits, the higher ones (the part, the tag) mix
/// all of them.
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[derive(Clone, Default)]
pub(crate) struct UserCounts {
    table: SplitTable<Count>,
    hasher: RandomState,
}

impl UserCounts {
    #[inline]
    fn hash(&self, user: &UserId) -> u32 {
        self.hasher.hash_one(user.as_str()) as u32
    }

    /// The count of `user` (0 if absent).
    pub(crate) fn get(&self, user: &UserId) -> u32 {
        let h = self.hash(user);
        self.table
            .find(spread(h), |c| c.hash == h && c.user == *user)
            .map_or(0, |c| c.n)
    }

    /// Adds `n` (saturating); the user id is cloned only for a new user.
    pub(crate) fn add(&mut self, user: &UserId, n: u32) {
        if n == 0 {
            return;
        }
        let h = self.hash(user);
        match self.table.entry(
            spread(h),
            |c| c.hash == h && c.user == *user,
            |c| spread(c.hash),
        ) {
            Entry::Occupied(mut o) => {
                let c = o.get_mut();
                c.n = c.n.saturating_add(n);
            }
            Entry::Vacant(v) => {
                v.insert(Count {
                    user: user.clone(),
                    n,
                    hash: h,
                });
            }
        }
    }

    /// Takes `n` away (saturating); a count that reaches 0 is removed.
    pub(crate) fn sub(&mut self, user: &UserId, n: u32) {
        let h = self.hash(user);
        if let Ok(mut o) = self
            .table
            .find_entry(spread(h), |c| c.hash == h && c.user == *user)
        {
            let c = o.get_mut();
            c.n = c.n.saturating_sub(n);
            if c.n == 0 {
                o.remove();
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }

    /// Users with a count.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// Same users with the same counts (the hash keys may differ).
impl PartialEq for UserCounts {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.table.iter().all(|c| other.get(&c.user) == c.n)
    }
}

impl Eq for UserCounts {}

impl fmt::Debug for UserCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCounts")
            .field("users", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::new(s).expect("valid user id")
    }

    #[test]
    fn add_sub_get_and_removal_at_zero() {
        let mut c = UserCounts::default();
        let (a, b) = (user("a"), user("b"));
        assert_eq!(c.get(&a), 0);
        c.add(&a, 2);
        c.add(&a, 1);
        c.add(&b, 0);
        assert_eq!((c.get(&a), c.get(&b), c.len()), (3, 0, 1));
        c.sub(&a, 1);
        assert_eq!(c.get(&a), 2);
        c.sub(&b, 5);
        assert_eq!(c.len(), 1, "taking from an absent user adds nothing");
        c.sub(&a, 7);
        assert_eq!(
            (c.get(&a), c.len()),
            (0, 0),
            "saturates and is removed at 0"
        );
        c.add(&a, u32::MAX);
        c.add(&a, 1);
        assert_eq!(c.get(&a), u32::MAX);
        c.clear();
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn many_users_through_growth_and_equality_across_keys() {
        let mut x = UserCounts::default();
        let mut y = UserCounts::default();
        let users: Vec<UserId> = (0..100_000).map(|i| user(&format!("user-{i}"))).collect();
        for (i, u) in users.iter().enumerate() {
            x.add(u, (i % 4 + 1) as u32);
        }
        for (i, u) in users.iter().enumerate().rev() {
            y.add(u, (i % 4 + 1) as u32);
        }
        assert_eq!(x.len(), users.len());
        assert!(users
            .iter()
            .enumerate()
            .all(|(i, u)| x.get(u) == (i % 4 + 1) as u32));
        assert_eq!(x, y, "equal counts under different hash keys");
        y.sub(&users[9], 1);
        assert_ne!(x, y);
        x.sub(&users[9], 1);
        assert_eq!(x, y);
        y.add(&user("someone-else"), 1);
        assert_ne!(x, y);
    }
}

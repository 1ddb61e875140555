//! Per-ticket storage, sized for tens of millions of tickets (≤ 64 bytes per
//! waiting user; see the module docs for the budget).
//!
//! Everything is indexed by `uid`, the room's join sequence number, in chunks
//! of 65 536 uids so growth never doubles a large allocation. Each uid has one
//! 32-byte record, aligned so it never straddles a cache line: the presence
//! deadline (ms since the epoch by which the user must be heard from again,
//! an `AtomicU64` so `status` records presence under a shared lock), the state byte, and the user id itself when it fits in 22 bytes (else
//! an offset into the chunk's overflow arena). A `status` thus reads one cache
//! line for everything it needs about the ticket.
//!
//! A hash table maps user id → latest uid, storing a 32-bit keyed SipHash-1-3
//! of the user id beside the uid, so a resize never rehashes strings (8 bytes
//! a slot plus a control byte). It is a [`SplitTable`], so the index growing
//! with the line never stalls the shard for more than a 256th of its entries.
//!
//! Invariants: none of its own; it stores the per-ticket state the room
//! uses for I3 (a rejoin finds the same ticket) and I8 (user → ticket).

use crate::split_table::SplitTable;
use hashbrown::hash_table;
use siphasher::sip::SipHasher13;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) const CHUNK_BITS: u32 = 16;
pub(crate) const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: u32 = (1 << CHUNK_BITS) - 1;
/// User ids up to this length live inside the record.
const INLINE: usize = 22;

/// Ticket states as stored (one byte per uid).
pub(crate) mod st {
    pub(crate) const PREQUEUE: u8 = 0;
    pub(crate) const WAITING: u8 = 1;
    pub(crate) const ADMITTED: u8 = 2;
    /// Left the line or gave up an admitted session.
    pub(crate) const LEFT: u8 = 3;
    /// The purchase completed.
    pub(crate) const COMPLETED: u8 = 4;
    /// Dropped for idleness.
    pub(crate) const IDLE: u8 = 5;
    /// The admitted session ran out.
    pub(crate) const SESSION_END: u8 = 6;
    pub(crate) const MAX: u8 = SESSION_END;
}

#[repr(C, align(32))]
struct Rec {
    due: AtomicU64,
    state: u8,
    len: u8,
    /// The user id if `len <= INLINE`, else its offset (u32 LE) in `overflow`.
    data: [u8; INLINE],
}

#[derive(Default)]
struct Chunk {
    recs: Vec<Rec>,
    overflow: Vec<u8>,
}

impl Chunk {
    fn bytes(&self, i: usize) -> Option<&[u8]> {
        let r = self.recs.get(i)?;
        let len = usize::from(r.len);
        if len <= INLINE {
            r.data.get(..len)
        } else {
            let off = u32::from_le_bytes([r.data[0], r.data[1], r.data[2], r.data[3]]) as usize;
            self.overflow.get(off..off + len)
        }
    }
}

#[derive(Clone, Copy)]
struct Slot {
    uid: u32,
    hash: u32,
}

/// Spread a 32-bit hash over 64 bits: the low bits (bucket index) stay a
/// bijection of the hash's low bits, the top 7 (hashbrown's tag) mix all.
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

pub(crate) struct Users {
    chunks: Vec<Chunk>,
    len: u32,
    index: SplitTable<Slot>,
    hasher: SipHasher13,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("tickets", &self.len)
            .field("distinct_users", &self.index.len())
            .finish()
    }
}

#[inline]
fn loc(uid: u32) -> (usize, usize) {
    ((uid >> CHUNK_BITS) as usize, (uid & CHUNK_MASK) as usize)
}

impl Users {
    pub(crate) fn new(key: [u8; 16]) -> Self {
        Users {
            chunks: Vec::new(),
            len: 0,
            index: SplitTable::default(),
            hasher: SipHasher13::new_with_key(&key),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    fn bytes_in(chunks: &[Chunk], uid: u32) -> Option<&[u8]> {
        let (c, i) = loc(uid);
        chunks.get(c)?.bytes(i)
    }

    /// The user id bytes of `uid`.
    pub(crate) fn bytes(&self, uid: u32) -> Option<&[u8]> {
        Self::bytes_in(&self.chunks, uid)
    }

    #[inline]
    pub(crate) fn state(&self, uid: u32) -> Option<u8> {
        let (c, i) = loc(uid);
        self.chunks.get(c)?.recs.get(i).map(|r| r.state)
    }

    pub(crate) fn set_state(&mut self, uid: u32, s: u8) {
        let (c, i) = loc(uid);
        if let Some(r) = self.chunks.get_mut(c).and_then(|ch| ch.recs.get_mut(i)) {
            r.state = s;
        }
    }

    /// Presence deadline (ms) of this uid: idle from then on.
    #[inline]
    pub(crate) fn due(&self, uid: u32) -> u64 {
        let (c, i) = loc(uid);
        self.chunks
            .get(c)
            .and_then(|ch| ch.recs.get(i))
            .map_or(0, |r| r.due.load(Relaxed))
    }

    /// Record presence: the deadline becomes `due_ms` unless it is already
    /// later (never moves backwards, give or take a race between two
    /// concurrent polls of one ticket, which is harmless: both deadlines
    /// are ones the user was given).
    #[inline]
    pub(crate) fn touch(&self, uid: u32, due_ms: u64) {
        let (c, i) = loc(uid);
        if let Some(a) = self
            .chunks
            .get(c)
            .and_then(|ch| ch.recs.get(i))
            .map(|r| &r.due)
        {
            // A plain load/store: no locked RMW, and no write when unchanged.
            if a.load(Relaxed) < due_ms {
                a.store(due_ms, Relaxed);
            }
        }
    }

    /// Set the presence deadline of every uid to `ms` (restore).
    pub(crate) fn set_all_due(&mut self, ms: u64) {
        for ch in &mut self.chunks {
            for r in &mut ch.recs {
                *r.due.get_mut() = ms;
            }
        }
    }

    /// Keyed hash of a user id (the index key).
    #[inline]
    pub(crate) fn hash(&self, user: &[u8]) -> u32 {
        self.hasher.hash(user) as u32
    }

    /// The latest uid of this user (`h` = [`Users::hash`] of `user`).
    pub(crate) fn find(&self, user: &[u8], h: u32) -> Option<u32> {
        let chunks = &self.chunks;
        self.index
            .find(spread(h), |e| {
                e.hash == h && Self::bytes_in(chunks, e.uid) == Some(user)
            })
            .map(|e| e.uid)
    }

    /// Append a new uid for `user` and make it the user's latest uid (`hash`
    /// = [`Users::hash`] of `user`; `None` leaves the uid unfindable by id,
    /// for unreadable entries of a damaged snapshot). `None` when the uid
    /// space is exhausted.
    pub(crate) fn push(
        &mut self,
        user: &[u8],
        hash: Option<u32>,
        state: u8,
        due_ms: u64,
    ) -> Option<u32> {
        let uid = self.len;
        if uid == u32::MAX {
            return None;
        }
        let (c, _) = loc(uid);
        if c == self.chunks.len() {
            self.chunks.push(Chunk::default());
        }
        let chunk = self.chunks.get_mut(c)?;
        let len = u8::try_from(user.len()).ok()?;
        let mut data = [0u8; INLINE];
        if user.len() <= INLINE {
            data[..user.len()].copy_from_slice(user);
        } else {
            let off = u32::try_from(chunk.overflow.len()).ok()?;
            data[..4].copy_from_slice(&off.to_le_bytes());
            chunk.overflow.extend_from_slice(user);
        }
        chunk.recs.push(Rec {
            due: AtomicU64::new(due_ms),
            state,
            len,
            data,
        });
        if chunk.recs.len() == CHUNK_LEN {
            // Full: give back the doubling slack of the overflow arena.
            chunk.overflow.shrink_to_fit();
        }
        self.len += 1;
        if let Some(h) = hash {
            let chunks = &self.chunks;
            match self.index.entry(
                spread(h),
                |e| e.hash == h && Self::bytes_in(chunks, e.uid) == Some(user),
                |e| spread(e.hash),
            ) {
                hash_table::Entry::Occupied(mut o) => o.get_mut().uid = uid,
                hash_table::Entry::Vacant(v) => {
                    v.insert(Slot { uid, hash: h });
                }
            }
        }
        Some(uid)
    }

    /// Bytes held (for memory accounting in tests and benchmarks).
    pub(crate) fn heap_bytes(&self) -> usize {
        let chunks: usize = self
            .chunks
            .iter()
            .map(|c| c.recs.capacity() * std::mem::size_of::<Rec>() + c.overflow.capacity())
            .sum();
        chunks
            + self.index.allocation_size()
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_find_and_rejoin() {
        let mut u = Users::new([3; 16]);
        let n = CHUNK_LEN as u32 + 100;
        for i in 0..n {
            let id = format!("user-{i}");
            let h = u.hash(id.as_bytes());
            assert_eq!(
                u.push(id.as_bytes(), Some(h), st::WAITING, u64::from(i)),
                Some(i)
            );
        }
        for i in (0..n).step_by(997) {
            let id = format!("user-{i}");
            assert_eq!(u.find(id.as_bytes(), u.hash(id.as_bytes())), Some(i));
            assert_eq!(u.bytes(i), Some(id.as_bytes()));
            assert_eq!(u.due(i), u64::from(i));
        }
        let find = |u: &Users, id: &[u8]| u.find(id, u.hash(id));
        assert_eq!(find(&u, b"nobody"), None);
        // A rejoin gets a new uid; the index follows it.
        let h = u.hash(b"user-5");
        assert_eq!(u.push(b"user-5", Some(h), st::WAITING, 0), Some(n));
        assert_eq!(find(&u, b"user-5"), Some(n));
        assert_eq!(u.bytes(5), Some(&b"user-5"[..]));
        u.touch(5, 10);
        assert_eq!(u.due(5), 10);
        u.touch(5, 3);
        assert_eq!(u.due(5), 10);
        assert_eq!(u.state(n + 1), None);
        // Ids too long for the record go to the overflow arena.
        let long = "L".repeat(128);
        let uid = u.push(
            long.as_bytes(),
            Some(u.hash(long.as_bytes())),
            st::PREQUEUE,
            0,
        );
        assert_eq!(uid.and_then(|u2| u.bytes(u2)), Some(long.as_bytes()));
        assert_eq!(find(&u, long.as_bytes()), uid);
        assert_eq!(u.push(&[b'x'; 300], Some(0), st::PREQUEUE, 0), None);
        assert_eq!(std::mem::size_of::<Rec>(), 32);
        assert_eq!(u.bytes(n + 2), None);
    }
}

//! Per-ticket storage, sized for tens of millions of tickets (≤ 64 bytes per
//! waiting user; see the module docs for the budget).
//!
//! Everything is indexed by `uid`, the room's join sequence number, and kept
//! in chunks of 65 536 uids so growth never doubles a large allocation:
//! - the user id bytes, back to back, with a `u32` end offset per uid;
//! - one state byte per uid;
//! - `last_seen` (ms since the epoch) per uid in an `AtomicU64`, so `status`
//!   can record presence under a shared lock;
//! - a `hashbrown::HashTable` from user id to its latest uid, storing a 32-bit
//!   keyed SipHash-1-3 of the user id beside the uid so a resize never
//!   rehashes strings (8 bytes a slot plus a control byte).

use hashbrown::HashTable;
use siphasher::sip::SipHasher13;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) const CHUNK_BITS: u32 = 16;
pub(crate) const CHUNK_LEN: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: u32 = (1 << CHUNK_BITS) - 1;

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

#[derive(Default)]
struct Chunk {
    ends: Vec<u32>,
    bytes: Vec<u8>,
    state: Vec<u8>,
    seen: Vec<AtomicU64>,
}

#[derive(Clone, Copy)]
struct Entry {
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
    index: HashTable<Entry>,
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
            index: HashTable::new(),
            hasher: SipHasher13::new_with_key(&key),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    fn bytes_in(chunks: &[Chunk], uid: u32) -> Option<&[u8]> {
        let (c, i) = loc(uid);
        let chunk = chunks.get(c)?;
        let end = *chunk.ends.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => *chunk.ends.get(i - 1)? as usize,
        };
        chunk.bytes.get(start..end)
    }

    /// The user id bytes of `uid`.
    pub(crate) fn bytes(&self, uid: u32) -> Option<&[u8]> {
        Self::bytes_in(&self.chunks, uid)
    }

    #[inline]
    pub(crate) fn state(&self, uid: u32) -> Option<u8> {
        let (c, i) = loc(uid);
        self.chunks.get(c)?.state.get(i).copied()
    }

    pub(crate) fn set_state(&mut self, uid: u32, s: u8) {
        let (c, i) = loc(uid);
        if let Some(v) = self.chunks.get_mut(c).and_then(|ch| ch.state.get_mut(i)) {
            *v = s;
        }
    }

    /// Last time (ms) this uid was heard from.
    #[inline]
    pub(crate) fn seen(&self, uid: u32) -> u64 {
        let (c, i) = loc(uid);
        self.chunks
            .get(c)
            .and_then(|ch| ch.seen.get(i))
            .map_or(0, |a| a.load(Relaxed))
    }

    /// Record presence at `now_ms` (never moves backwards, give or take a
    /// race between two concurrent polls of one ticket, which is harmless).
    #[inline]
    pub(crate) fn touch(&self, uid: u32, now_ms: u64) {
        let (c, i) = loc(uid);
        if let Some(a) = self.chunks.get(c).and_then(|ch| ch.seen.get(i)) {
            // A plain load/store: no locked RMW, and no write when unchanged.
            if a.load(Relaxed) < now_ms {
                a.store(now_ms, Relaxed);
            }
        }
    }

    /// Set presence of every uid to `ms` (restore).
    pub(crate) fn set_all_seen(&mut self, ms: u64) {
        for ch in &mut self.chunks {
            for a in &mut ch.seen {
                *a.get_mut() = ms;
            }
        }
    }

    #[inline]
    fn hash32(&self, user: &[u8]) -> u32 {
        self.hasher.hash(user) as u32
    }

    /// The latest uid of this user.
    pub(crate) fn find(&self, user: &[u8]) -> Option<u32> {
        let h = self.hash32(user);
        let chunks = &self.chunks;
        self.index
            .find(spread(h), |e| {
                e.hash == h && Self::bytes_in(chunks, e.uid) == Some(user)
            })
            .map(|e| e.uid)
    }

    /// Append a new uid for `user` and make it the user's latest uid. `None`
    /// when the uid space is exhausted. With `index == false` the user is not
    /// findable by id (used for unreadable entries of a damaged snapshot).
    pub(crate) fn push(&mut self, user: &[u8], state: u8, seen_ms: u64, index: bool) -> Option<u32> {
        let uid = self.len;
        if uid == u32::MAX {
            return None;
        }
        let (c, _) = loc(uid);
        if c == self.chunks.len() {
            self.chunks.push(Chunk::default());
        }
        let chunk = self.chunks.get_mut(c)?;
        chunk.bytes.extend_from_slice(user);
        chunk.ends.push(chunk.bytes.len() as u32);
        chunk.state.push(state);
        chunk.seen.push(AtomicU64::new(seen_ms));
        if chunk.ends.len() == CHUNK_LEN {
            // Full: give back the doubling slack of the byte arena.
            chunk.bytes.shrink_to_fit();
        }
        self.len += 1;
        if index {
            let h = self.hash32(user);
            let chunks = &self.chunks;
            match self.index.find_mut(spread(h), |e| {
                e.hash == h && Self::bytes_in(chunks, e.uid) == Some(user)
            }) {
                Some(e) => e.uid = uid,
                None => {
                    self.index
                        .insert_unique(spread(h), Entry { uid, hash: h }, |e| spread(e.hash));
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
            .map(|c| c.ends.capacity() * 4 + c.bytes.capacity() + c.state.capacity() + c.seen.capacity() * 8)
            .sum();
        chunks + self.index.allocation_size() + self.chunks.capacity() * std::mem::size_of::<Chunk>()
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
            assert_eq!(u.push(id.as_bytes(), st::WAITING, u64::from(i), true), Some(i));
        }
        for i in (0..n).step_by(997) {
            let id = format!("user-{i}");
            assert_eq!(u.find(id.as_bytes()), Some(i));
            assert_eq!(u.bytes(i), Some(id.as_bytes()));
            assert_eq!(u.seen(i), u64::from(i));
        }
        assert_eq!(u.find(b"nobody"), None);
        // A rejoin gets a new uid; the index follows it.
        assert_eq!(u.push(b"user-5", st::WAITING, 0, true), Some(n));
        assert_eq!(u.find(b"user-5"), Some(n));
        assert_eq!(u.bytes(5), Some(&b"user-5"[..]));
        u.touch(5, 10);
        assert_eq!(u.seen(5), 10);
        u.touch(5, 3);
        assert_eq!(u.seen(5), 10);
        assert_eq!(u.state(n + 1), None);
        assert_eq!(u.bytes(n + 1), None);
    }
}

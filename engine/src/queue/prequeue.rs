//! The verifiable pre-queue draw (the opening half of I3).
//!
//! Users who join before `opens_at` have no order until the room opens. At
//! opening, with `prequeue: random`, they are placed in ascending order of
//!
//! ```text
//! key(ticket) = SHA-256( seed (32 bytes) ‖ ticket (its 22 ASCII bytes) )
//! ```
//!
//! compared as 32-byte big-endian unsigned numbers (plain byte-wise
//! lexicographic order); equal keys, which would need a SHA-256 collision,
//! fall back to join order. `SHA-256(seed)` is published before opening and
//! the seed after, so anyone holding the seed and the tickets recomputes the
//! draw with [`prequeue_order_key`]. With `prequeue: fifo` the order is join
//! order. Users who joined after opening follow in join order.

use super::ticket::TicketCodec;
use sha2::{Digest, Sha256};

/// The sort key of a pre-queue ticket: `SHA-256(seed ‖ ticket bytes)`. At
/// opening, pre-queue users are placed in ascending order of this key.
pub fn prequeue_order_key(seed: &[u8; 32], ticket: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(ticket.as_bytes());
    h.finalize().into()
}

/// Slot → uid for the first `n` uids under the random draw.
///
/// Sorting keeps 16 bytes per user (an 8-byte key prefix and the uid) and
/// settles equal prefixes on the full key, so the result is exactly the
/// documented order.
pub(crate) fn random_order(seed: &[u8; 32], codec: &TicketCodec, n: u32) -> Vec<u32> {
    let key = |uid: u32| {
        let t = codec.encode(uid);
        let mut h = Sha256::new();
        h.update(seed);
        h.update(t);
        let k: [u8; 32] = h.finalize().into();
        k
    };
    let mut v: Vec<(u64, u32)> = (0..n)
        .map(|uid| {
            let k = key(uid);
            let prefix = u64::from_be_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]]);
            (prefix, uid)
        })
        .collect();
    v.sort_unstable();
    let mut i = 0;
    while i < v.len() {
        let mut j = i + 1;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        if j - i > 1 {
            v[i..j].sort_by_cached_key(|&(_, uid)| (key(uid), uid));
        }
        i = j;
    }
    v.into_iter().map(|(_, uid)| uid).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_ascending_full_keys() {
        let codec = TicketCodec::new(&[9; 16]);
        let seed = [4u8; 32];
        let order = random_order(&seed, &codec, 500);
        let mut sorted: Vec<u32> = (0..500).collect();
        sorted.sort_by_key(|&u| prequeue_order_key(&seed, &codec.encode_string(u)));
        assert_eq!(order, sorted);
    }

    #[test]
    fn key_is_sha256_of_seed_and_ticket() {
        // SHA-256 of 32 zero bytes followed by "AAAAAAAAAAAAAAAAAAAAAA".
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update(b"AAAAAAAAAAAAAAAAAAAAAA");
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(prequeue_order_key(&[0; 32], "AAAAAAAAAAAAAAAAAAAAAA"), want);
    }
}

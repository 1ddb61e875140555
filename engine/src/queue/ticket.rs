//! Tickets: unguessable, unforgeable names for a place in line that cost no
//! memory (part of I3: only the holder of a ticket can see or give up a place).
//!
//! ```text
//! ticket = base64url-no-pad( uid as u32 LE (4 bytes)
//!                            ‖ first 12 bytes of SipHash-2-4-128(ticket_key, uid LE) )
//! ```
//! 16 bytes, so always 22 characters. `uid` is the room's join sequence
//! number. Decoding is strict (alphabet `A–Z a–z 0–9 - _`, exactly 22
//! characters, zero padding bits), so every ticket has exactly one spelling,
//! and the MAC is compared in constant time.

use siphasher::sip128::SipHasher24;

/// Length of every ticket string.
pub const TICKET_LEN: usize = 22;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const INVALID: u8 = 0xFF;

const fn decode_table() -> [u8; 256] {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
}

static DECODE: [u8; 256] = decode_table();

/// Mints and verifies the tickets of one room.
#[derive(Clone, Debug)]
pub(crate) struct TicketCodec {
    mac: SipHasher24,
}

impl TicketCodec {
    pub(crate) fn new(key: &[u8; 16]) -> Self {
        TicketCodec {
            mac: SipHasher24::new_with_key(key),
        }
    }

    fn tag(&self, uid: u32) -> [u8; 16] {
        self.mac.hash(&uid.to_le_bytes()).as_bytes()
    }

    /// The ticket of `uid`, as ASCII bytes.
    pub(crate) fn encode(&self, uid: u32) -> [u8; TICKET_LEN] {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&uid.to_le_bytes());
        raw[4..].copy_from_slice(&self.tag(uid)[..12]);
        b64_encode(&raw)
    }

    pub(crate) fn encode_string(&self, uid: u32) -> String {
        // The alphabet is ASCII: each byte is its own char.
        self.encode(uid).iter().copied().map(char::from).collect()
    }

    /// The uid a ticket names, if `s` is a ticket this codec minted.
    pub(crate) fn decode(&self, s: &str) -> Option<u32> {
        let raw = b64_decode(s.as_bytes())?;
        let uid = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let tag = self.tag(uid);
        let mut diff = 0u8;
        for (a, b) in raw[4..].iter().zip(&tag[..12]) {
            diff |= a ^ b;
        }
        // Constant-time over the 12 MAC bytes; black_box keeps the fold from
        // being turned into an early-exit comparison.
        (std::hint::black_box(diff) == 0).then_some(uid)
    }
}

fn b64_encode(raw: &[u8; 16]) -> [u8; TICKET_LEN] {
    let mut out = [0u8; TICKET_LEN];
    let mut o = 0;
    for g in raw[..15].chunks_exact(3) {
        let n = u32::from(g[0]) << 16 | u32::from(g[1]) << 8 | u32::from(g[2]);
        out[o] = ALPHABET[(n >> 18) as usize & 63];
        out[o + 1] = ALPHABET[(n >> 12) as usize & 63];
        out[o + 2] = ALPHABET[(n >> 6) as usize & 63];
        out[o + 3] = ALPHABET[n as usize & 63];
        o += 4;
    }
    let last = raw[15];
    out[20] = ALPHABET[usize::from(last >> 2)];
    out[21] = ALPHABET[usize::from(last & 3) << 4];
    out
}

fn b64_decode(s: &[u8]) -> Option<[u8; 16]> {
    if s.len() != TICKET_LEN {
        return None;
    }
    let mut v = [0u8; TICKET_LEN];
    let mut bad = 0u8;
    for (d, &c) in v.iter_mut().zip(s) {
        *d = DECODE[usize::from(c)];
        bad |= *d & 0xC0;
    }
    // The last character carries 2 data bits; its 4 padding bits must be zero
    // so that each ticket has exactly one spelling.
    if bad != 0 || v[21] & 0x0F != 0 {
        return None;
    }
    let mut raw = [0u8; 16];
    for (i, q) in v[..20].chunks_exact(4).enumerate() {
        let n =
            u32::from(q[0]) << 18 | u32::from(q[1]) << 12 | u32::from(q[2]) << 6 | u32::from(q[3]);
        raw[i * 3] = (n >> 16) as u8;
        raw[i * 3 + 1] = (n >> 8) as u8;
        raw[i * 3 + 2] = n as u8;
    }
    raw[15] = v[20] << 2 | v[21] >> 4;
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn matches_base64_crate_and_round_trips() {
        let codec = TicketCodec::new(&[7; 16]);
        for uid in [0u32, 1, 2, 63, 64, 65_535, 65_536, 1 << 31, u32::MAX] {
            let t = codec.encode_string(uid);
            assert_eq!(t.len(), TICKET_LEN);
            let mut raw = uid.to_le_bytes().to_vec();
            raw.extend_from_slice(
                &SipHasher24::new_with_key(&[7; 16])
                    .hash(&uid.to_le_bytes())
                    .as_bytes()[..12],
            );
            assert_eq!(
                t,
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw)
            );
            assert_eq!(codec.decode(&t), Some(uid));
        }
    }

    #[test]
    fn rejects_garbage_and_other_keys() {
        let a = TicketCodec::new(&[1; 16]);
        let b = TicketCodec::new(&[2; 16]);
        let t = a.encode_string(42);
        assert_eq!(b.decode(&t), None);
        for s in [
            "",
            "x",
            "AAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAA=",
            &t[..21],
            &format!("{t}A"),
        ] {
            assert_eq!(a.decode(s), None, "{s:?}");
        }
        // Non-canonical spelling of the same bytes (padding bits set).
        let mut bytes = t.clone().into_bytes();
        let last = DECODE[usize::from(bytes[21])];
        bytes[21] = ALPHABET[usize::from(last | 1)];
        assert_eq!(a.decode(std::str::from_utf8(&bytes).unwrap_or("")), None);
        // Multi-byte UTF-8 of the right byte length.
        assert_eq!(a.decode("ééééééééééé"), None);
    }
}

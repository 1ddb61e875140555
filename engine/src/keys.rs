//! The key schedule: every key boxoffice derives comes from one labelled
//! HMAC-SHA256, [`derive()`], with every label listed in [`label`] (owns the
//! key half of I8: tickets and passes of one event, incarnation or server
//! never validate for another). docs/passes.md describes the schedule.
//!
//! `derive(root, label, context) = HMAC-SHA256(key = root, message =
//! len(label) as one byte || label || context)`. The length prefix keeps
//! labels from running into contexts; a derived key is an HMAC output, so it
//! never equals its root (the configured secret) but by a 2^-256 accident.
//! Pass signing is not derived: pass keys are the configured secrets as
//! they are, so a verifier elsewhere needs only the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Every label of the schedule, one place.
pub mod label {
    /// Server: the ticket root (the engine's `EngineConfig::secret`) from the
    /// configured secret; context empty.
    pub const TICKET_ROOT: &str = "boxoffice/v1/ticket-root";
    /// Engine: one event incarnation's ticket MAC key from the ticket root;
    /// context = event id bytes || incarnation (u64, little-endian) || the
    /// event's random creation seed (32 bytes), so a re-created event never
    /// gets an old key, even after a restart resets incarnations.
    pub const TICKET_KEY: &str = "boxoffice/v1/ticket-key";
    /// Engine: the waiting room's user-id hash index key from the event's
    /// ticket key; context = the event seed (32 bytes).
    pub const USER_INDEX: &str = "boxoffice/v1/queue-user-index";
}

/// `HMAC-SHA256(root, len(label) || label || context)`.
pub fn derive(root: &[u8], label: &str, context: &[u8]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(root) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    // Labels are short constants; the assertion keeps the prefix honest.
    debug_assert!(label.len() <= usize::from(u8::MAX));
    mac.update(&[label.len() as u8]);
    mac.update(label.as_bytes());
    mac.update(context);
    mac.finalize().into_bytes().into()
}

/// The first 16 bytes of a derived key (for 128-bit MAC keys).
pub fn derive16(root: &[u8], label: &str, context: &[u8]) -> [u8; 16] {
    let full = derive(root, label, context);
    let mut k = [0u8; 16];
    k.copy_from_slice(&full[..16]);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_separate_keys_and_keys_differ_from_the_root() {
        let root = [7u8; 32];
        let a = derive(&root, label::TICKET_ROOT, b"");
        let b = derive(&root, label::TICKET_KEY, b"");
        let c = derive(&root, label::USER_INDEX, b"");
        assert_ne!(a, b);
        assert_ne!(b, c);
        assert_ne!(a, root);
        // The length prefix: moving bytes between label and context changes the key.
        assert_ne!(derive(&root, "ab", b"c"), derive(&root, "a", b"bc"));
        assert_eq!(
            derive16(&root, "x", b"y")[..],
            derive(&root, "x", b"y")[..16]
        );
    }
}

//! I3, order: nobody overtaken, and the pre-queue drawn as published.
//!
//! The expected admission order is join order (the ticket's join number),
//! except with `prequeue: random`, where the users who joined before opening
//! come first in ascending `SHA-256(seed ‖ ticket)` (ties by join order;
//! engine/src/queue/prequeue.rs) and the later joins follow in join order.
//! `fifo` compares that with the actual admission order (the out record's
//! `queue.admitted` order, exact; or the passes' `iat`, whole ms, ties
//! allowed) over every admitted user it can place: an **overtake** is a
//! pair expected `a` before `b` with `b` admitted strictly before `a`, and
//! the truth holds iff there are none (users who left or went idle are not
//! admitted and so not compared; a subsequence of a correct order is
//! correct). Kendall's τ-b over the same pairs is the measure (1.0 when
//! nothing is overtaken and no admission instants tie).
//!
//! Who joined before opening: joins answered before `opens_at` did, joins
//! sent at or after it did not, and since join numbers are handed out in
//! sequence, every join number at or below the highest of the former did
//! and every one at or above the lowest of the latter did not. A join in
//! between (in flight at the opening) is left out of the comparison and
//! counted. With `random`, `SHA-256(seed)` must equal the digest the event
//! published before opening (the seed is the commitment's preimage).
//!
//! `positions_never_rose` adds what each waiting user saw: a later status
//! never showed a higher position than the one before.

use super::kendall::{kendall_tau_b, Kendall};
use super::{finish, out_of, Source, Truth};
use crate::model::{RunData, VuRecord};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The admission order, compared with the expected one.
#[derive(Clone, Debug)]
pub(crate) struct OrderAnalysis {
    pub source: Source,
    pub random: bool,
    /// Admitted users placed in the expected order and compared.
    pub compared: u64,
    /// Of those, pre-queue users placed by the draw.
    pub drawn: u64,
    /// Admitted users that could not be placed (no join number, joined while
    /// the room opened, or no ticket/seed to recompute the draw).
    pub unplaced: u64,
    pub kendall: Kendall,
    /// What is wrong with the published seed, if anything.
    pub seed_problem: Option<String>,
}

impl OrderAnalysis {
    pub(crate) fn overtakes(&self) -> u64 {
        self.kendall.discordant
    }

    pub(crate) fn truth(&self) -> Truth {
        let mode = if self.random {
            "random pre-queue"
        } else {
            "fifo"
        };
        let tau = self
            .kendall
            .tau_b
            .map_or("undefined".to_owned(), |t| format!("{t:.6}"));
        let mut detail = format!(
            "{} admissions compared in {mode} order ({}): {} overtakes, Kendall τ-b {tau}",
            self.compared,
            self.source.label(),
            self.overtakes()
        );
        if let Some(t) = self.kendall.tau_ordered() {
            detail.push_str(&format!(
                " (τ {t:.6} over the {} pairs admitted in distinct milliseconds; {} pairs share one)",
                self.kendall.concordant + self.kendall.discordant,
                self.kendall.ties_y.saturating_sub(self.kendall.ties_xy)
            ));
        }
        if self.random {
            detail.push_str(&format!(", {} placed by the published draw", self.drawn));
        }
        if self.unplaced > 0 {
            detail.push_str(&format!(", {} not placeable", self.unplaced));
        }
        let mut problems = Vec::new();
        if self.overtakes() > 0 {
            problems.push(format!("{} users overtaken", self.overtakes()));
        }
        problems.extend(self.seed_problem.clone());
        finish("fifo", detail, problems)
    }
}

/// Expected order key: (joined after opening, draw key, join number).
type Expected = (bool, [u8; 32], u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Pre,
    Post,
    Unknown,
}

/// Which join numbers were taken before the room opened.
struct Split {
    opens_at: Option<u64>,
    /// Highest join number answered before `opens_at`, lowest sent after.
    last_pre: Option<u32>,
    first_post: Option<u32>,
}

impl Split {
    fn new(run: &RunData) -> Split {
        let opens_at = run.setup.opens_at_ms;
        let (mut last_pre, mut first_post) = (None::<u32>, None::<u32>);
        if let Some(open) = opens_at {
            for v in &run.vus {
                let Some(j) = v.join_no else { continue };
                if v.join_ack_ms.is_some_and(|t| t < open) {
                    last_pre = Some(last_pre.map_or(j, |p| p.max(j)));
                }
                if v.join_sent_ms.is_some_and(|t| t >= open) {
                    first_post = Some(first_post.map_or(j, |p| p.min(j)));
                }
            }
        }
        Split {
            opens_at,
            last_pre,
            first_post,
        }
    }

    fn phase(&self, join: u32) -> Phase {
        if self.opens_at.is_none() {
            Phase::Post
        } else if self.last_pre.is_some_and(|p| join <= p) {
            Phase::Pre
        } else if self.first_post.is_some_and(|p| join >= p) {
            Phase::Post
        } else {
            Phase::Unknown
        }
    }
}

/// The draw key of a pre-queue ticket: `SHA-256(seed ‖ ticket)`, recomputed
/// here independently of the engine.
pub(crate) fn draw_key(seed: &[u8; 32], ticket: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed);
    h.update(ticket.as_bytes());
    h.finalize().into()
}

fn parse_seed(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| char::from(c).to_digit(16);
    let mut seed = [0u8; 32];
    for (i, out) in seed.iter_mut().enumerate() {
        let hi = nib(b[2 * i])?;
        let lo = nib(b[2 * i + 1])?;
        *out = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(seed)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The seed, checked against its published digest; `Err` says what is wrong.
fn checked_seed(run: &RunData) -> Result<Option<[u8; 32]>, String> {
    let Some(text) = run.readback.prequeue_seed.as_deref() else {
        return Ok(None);
    };
    let seed =
        parse_seed(text).ok_or_else(|| format!("prequeue_seed {text:?} is not 32 bytes of hex"))?;
    let digest = hex(&Sha256::digest(seed));
    match run.readback.prequeue_seed_sha256.as_deref() {
        Some(published) if published.eq_ignore_ascii_case(&digest) => Ok(Some(seed)),
        Some(published) => Err(format!(
            "SHA-256(prequeue_seed) is {digest}, the event published {published}"
        )),
        None => Err("the seed's SHA-256 was not published".to_owned()),
    }
}

pub(crate) fn analyse(run: &RunData) -> OrderAnalysis {
    let random = run.setup.prequeue == "random";
    let by_join: HashMap<u32, &VuRecord> = run
        .vus
        .iter()
        .filter_map(|v| Some((v.join_no?, v)))
        .collect();
    // (join number, admission order key): the stream position, or the iat.
    let (admitted, source): (Vec<(Option<u32>, u64)>, Source) = if run.out.is_some() {
        let v = out_of(run, "queue.admitted")
            .enumerate()
            .map(|(i, e)| (e.join, i as u64))
            .collect();
        (v, Source::Out)
    } else {
        let v = run
            .vus
            .iter()
            .filter_map(|v| Some((v.join_no, v.admitted?.iat_ms)))
            .collect();
        (v, Source::Client)
    };
    let split = Split::new(run);
    let (seed, mut seed_problem) = if random {
        match checked_seed(run) {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let mut keyed: Vec<(Expected, u64)> = Vec::with_capacity(admitted.len());
    let (mut unplaced, mut drawn, mut undrawable) = (0u64, 0u64, 0u64);
    for (join, at) in admitted {
        let Some(join) = join else {
            unplaced += 1;
            continue;
        };
        let key = if !random {
            (false, [0; 32], join)
        } else {
            match split.phase(join) {
                Phase::Post => (true, [0; 32], join),
                Phase::Unknown => {
                    unplaced += 1;
                    continue;
                }
                Phase::Pre => {
                    let ticket = by_join.get(&join).and_then(|v| v.ticket.as_deref());
                    match (seed, ticket) {
                        (Some(seed), Some(t)) => {
                            drawn += 1;
                            (false, draw_key(&seed, t), join)
                        }
                        _ => {
                            undrawable += 1;
                            unplaced += 1;
                            continue;
                        }
                    }
                }
            }
        };
        keyed.push((key, at));
    }
    if random && seed.is_none() && seed_problem.is_none() && undrawable > 0 {
        seed_problem = Some(format!(
            "the seed was not read back: the draw of {undrawable} pre-queue users is unchecked"
        ));
    }
    keyed.sort_unstable();
    let pairs: Vec<(u64, u64)> = keyed
        .iter()
        .enumerate()
        .map(|(rank, &(_, at))| (rank as u64, at))
        .collect();
    OrderAnalysis {
        source,
        random,
        compared: pairs.len() as u64,
        drawn,
        unplaced,
        kendall: kendall_tau_b(&pairs),
        seed_problem,
    }
}

pub(super) fn positions_never_rose(run: &RunData) -> Truth {
    let rises: u64 = run.vus.iter().map(|v| u64::from(v.position_rises)).sum();
    let who = run.vus.iter().filter(|v| v.position_rises > 0).count();
    let reads: u64 = run.vus.iter().map(|v| u64::from(v.reads_in_line)).sum();
    let detail = format!("{rises} position rises seen by {who} VUs over {reads} reads in line");
    let problems = if rises > 0 {
        vec![format!("{who} VUs saw their position rise")]
    } else {
        Vec::new()
    };
    finish("positions_never_rose", detail, problems)
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::model::AdmittedRecord;

    fn admit_at(v: &mut VuRecord, iat_ms: u64) {
        v.admitted = Some(AdmittedRecord {
            iat_ms,
            exp_ms: iat_ms + 60_000,
            seen_ms: iat_ms + 5,
        });
    }

    #[test]
    fn join_order_passes_with_tau_one() {
        for run in [fixture::run(12), fixture::with_out(fixture::run(12))] {
            let a = analyse(&run);
            assert_eq!((a.compared, a.overtakes(), a.unplaced), (12, 0, 0));
            assert_eq!(a.kendall.tau_b, Some(1.0));
            assert!(a.truth().passed, "{}", a.truth().detail);
        }
    }

    #[test]
    fn one_overtake_fails() {
        let mut run = fixture::run(12);
        // VU 4 admitted just before VU 3, everyone else in order.
        let t3 = run.vus[3].admitted.expect("admitted").iat_ms;
        admit_at(&mut run.vus[3], t3 + 200);
        admit_at(&mut run.vus[4], t3);
        let a = analyse(&run);
        assert_eq!(a.overtakes(), 1);
        assert!(a.kendall.tau_b.expect("defined") < 1.0);
        let t = a.truth();
        assert!(!t.passed);
        assert!(t.detail.starts_with("1 users overtaken"), "{}", t.detail);
    }

    #[test]
    fn one_overtake_in_out_order_fails() {
        let mut run = fixture::with_out(fixture::run(6));
        let out = run.out.as_mut().expect("out");
        let i = out
            .iter()
            .position(|e| e.kind == "queue.admitted" && e.join == Some(2));
        let j = out
            .iter()
            .position(|e| e.kind == "queue.admitted" && e.join == Some(3));
        out.swap(i.expect("2"), j.expect("3"));
        assert_eq!(analyse(&run).overtakes(), 1);
    }

    #[test]
    fn admissions_in_the_same_millisecond_are_no_overtake() {
        let mut run = fixture::run(6);
        let t = fixture::T0 + 10_000;
        admit_at(&mut run.vus[1], t);
        admit_at(&mut run.vus[2], t);
        let a = analyse(&run);
        assert_eq!(a.overtakes(), 0);
        assert!(a.truth().passed);
        assert!(a.kendall.tau_b.expect("defined") < 1.0);
    }

    #[test]
    fn users_not_admitted_are_not_compared() {
        let mut run = fixture::run(6);
        run.vus[2].admitted = None;
        run.vus[5].join_no = None;
        let a = analyse(&run);
        assert_eq!((a.compared, a.unplaced, a.overtakes()), (4, 1, 0));
    }

    const OPENS: u64 = fixture::T0 + 5_000;

    /// 8 pre-queue joins admitted in draw order, then 3 later joins in join
    /// order; `draw_order == false` admits the pre-queue in join order.
    fn random_run(draw_order: bool) -> RunData {
        let mut run = fixture::run(11);
        run.setup.prequeue = "random".into();
        run.setup.opens_at_ms = Some(OPENS);
        let seed = [7u8; 32];
        run.readback.prequeue_seed = Some(hex(&seed));
        run.readback.prequeue_seed_sha256 = Some(hex(&Sha256::digest(seed)));
        for v in run.vus.iter_mut().skip(8) {
            v.join_sent_ms = Some(OPENS + u64::from(v.id));
            v.join_ack_ms = Some(OPENS + u64::from(v.id) + 1);
        }
        let mut pre: Vec<u32> = (0..8).collect();
        if draw_order {
            pre.sort_by_key(|&j| draw_key(&seed, &fixture::ticket(j)));
        }
        let order: Vec<u32> = pre.into_iter().chain(8..11).collect();
        for (slot, j) in order.into_iter().enumerate() {
            admit_at(
                &mut run.vus[j as usize],
                fixture::T0 + 10_000 + 200 * slot as u64,
            );
        }
        run
    }

    #[test]
    fn the_published_draw_passes() {
        let run = random_run(true);
        let a = analyse(&run);
        assert_eq!((a.compared, a.drawn, a.unplaced), (11, 8, 0));
        assert!(a.truth().passed, "{}", a.truth().detail);
        assert_eq!(a.kendall.tau_b, Some(1.0));
    }

    #[test]
    fn a_random_prequeue_admitted_out_of_draw_order_fails() {
        let run = random_run(false);
        let a = analyse(&run);
        assert!(a.overtakes() > 0);
        assert!(!a.truth().passed);
    }

    #[test]
    fn the_draw_is_checked_on_the_out_record_too() {
        let a = analyse(&fixture::with_out(random_run(true)));
        assert_eq!((a.source, a.compared, a.drawn), (Source::Out, 11, 8));
        assert!(a.truth().passed, "{}", a.truth().detail);
        let a = analyse(&fixture::with_out(random_run(false)));
        assert!(a.overtakes() > 0);
        assert!(!a.truth().passed);
    }

    #[test]
    fn a_seed_that_does_not_match_its_digest_fails() {
        let mut run = random_run(true);
        run.readback.prequeue_seed_sha256 = Some(hex(&[0u8; 32]));
        let t = analyse(&run).truth();
        assert!(!t.passed);
        assert!(t.detail.contains("SHA-256(prequeue_seed)"), "{}", t.detail);
        let mut run = random_run(true);
        run.readback.prequeue_seed = None;
        let t = analyse(&run).truth();
        assert!(!t.passed);
        assert!(t.detail.contains("not read back"), "{}", t.detail);
        let mut run = random_run(true);
        run.readback.prequeue_seed = Some("xyz".into());
        assert!(!analyse(&run).truth().passed);
    }

    #[test]
    fn a_join_in_flight_at_the_opening_is_left_out() {
        let mut run = random_run(true);
        // Sent before opening, answered after: either side of it.
        run.vus[7].join_ack_ms = Some(OPENS + 3);
        run.vus[6].join_ack_ms = Some(OPENS + 2);
        let a = analyse(&run);
        assert_eq!((a.compared, a.unplaced), (9, 2));
        assert!(a.truth().passed, "{}", a.truth().detail);
    }

    #[test]
    fn the_draw_key_is_the_engines() {
        let seed = [42u8; 32];
        for j in 0..20 {
            let t = fixture::ticket(j);
            assert_eq!(
                draw_key(&seed, &t),
                boxoffice_engine::queue::prequeue_order_key(&seed, &t)
            );
        }
        assert_eq!(parse_seed(&hex(&seed)), Some(seed));
        assert_eq!(parse_seed(&"G".repeat(64)), None);
        assert_eq!(parse_seed("é"), None);
    }

    #[test]
    fn a_rising_position_fails() {
        let mut run = fixture::run(3);
        assert!(positions_never_rose(&run).passed);
        run.vus[1].position_rises = 2;
        let t = positions_never_rose(&run);
        assert!(!t.passed);
        assert!(t.detail.contains("2 position rises"), "{}", t.detail);
    }
}

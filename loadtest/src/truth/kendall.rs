//! Kendall's τ-b between two rankings in O(n log n) (Knight's algorithm),
//! with ties allowed on both sides.
//!
//! Sort the pairs by `(x, y)`; a bottom-up merge sort on `y` then counts the
//! swaps it makes, and every swap is exactly one discordant pair (`x_i < x_j`
//! and `y_i > y_j`): pairs tied in `x` are already in `y` order and never
//! swapped, and pairs tied in `y` are merged left first. The tie counts come
//! from runs of equal values before and after the sort. With `n0 = n(n-1)/2`,
//! `n1`/`n2` the pairs tied in `x`/`y` and `n3` those tied in both:
//!
//! ```text
//! concordant + discordant = n0 - n1 - n2 + n3
//! τ_b = (concordant - discordant) / sqrt((n0 - n1) (n0 - n2))
//! ```
//!
//! τ_b is undefined (`None`) when either side is constant (fewer than two
//! items, or all tied).

use serde::{Deserialize, Serialize};

/// The pair counts behind τ-b.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Kendall {
    pub n: u64,
    pub concordant: u64,
    /// Pairs in opposite order: `x_i < x_j` and `y_i > y_j` (strictly).
    pub discordant: u64,
    /// Pairs tied in `x`, in `y`, and in both.
    pub ties_x: u64,
    pub ties_y: u64,
    pub ties_xy: u64,
    pub tau_b: Option<f64>,
}

fn tied_pairs(run_lengths: impl Iterator<Item = u64>) -> u64 {
    run_lengths.map(|t| t * t.saturating_sub(1) / 2).sum()
}

/// Lengths of the runs of equal consecutive values.
fn runs<T: PartialEq>(v: &[T]) -> impl Iterator<Item = u64> + '_ {
    v.chunk_by(|a, b| a == b).map(|c| c.len() as u64)
}

impl Kendall {
    /// `(C − D) / (C + D)` over the pairs ordered on both sides (Goodman and
    /// Kruskal's γ): 1.0 exactly when no pair is in opposite order, whatever
    /// the ties. τ-b stays below 1 whenever one side has ties (admissions
    /// in the same millisecond, whose order a client cannot see).
    pub fn tau_ordered(&self) -> Option<f64> {
        let d = self.concordant + self.discordant;
        (d > 0).then(|| (self.concordant as f64 - self.discordant as f64) / d as f64)
    }
}

/// τ-b of `(x, y)` pairs.
pub fn kendall_tau_b(pairs: &[(u64, u64)]) -> Kendall {
    let n = pairs.len() as u64;
    let mut sorted = pairs.to_vec();
    sorted.sort_unstable();
    let ties_x = tied_pairs(runs(&sorted.iter().map(|p| p.0).collect::<Vec<_>>()));
    let ties_xy = tied_pairs(runs(&sorted));
    let mut ys: Vec<u64> = sorted.iter().map(|p| p.1).collect();
    let discordant = sort_counting_swaps(&mut ys);
    let ties_y = tied_pairs(runs(&ys));
    let n0 = n * n.saturating_sub(1) / 2;
    // Every pair is tied in x, tied in y, concordant or discordant; the
    // jointly tied ones are counted in both tie counts.
    let untied = (n0 + ties_xy).saturating_sub(ties_x + ties_y);
    let concordant = untied.saturating_sub(discordant);
    let denom = ((n0 - ties_x) as f64) * ((n0 - ties_y) as f64);
    let tau_b = (denom > 0.0).then(|| (concordant as f64 - discordant as f64) / denom.sqrt());
    Kendall {
        n,
        concordant,
        discordant,
        ties_x,
        ties_y,
        ties_xy,
        tau_b,
    }
}

/// Sorts `v` (stable bottom-up merge sort) and returns the number of
/// inversions, i.e. pairs `i < j` with `v[i] > v[j]`.
fn sort_counting_swaps(v: &mut Vec<u64>) -> u64 {
    let n = v.len();
    let mut buf = vec![0u64; n];
    let mut swaps = 0u64;
    let mut width = 1;
    while width < n {
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut i, mut j, mut k) = (lo, mid, lo);
            while i < mid && j < hi {
                if v[j] < v[i] {
                    // v[j] jumps over every element left in the left half.
                    swaps += (mid - i) as u64;
                    buf[k] = v[j];
                    j += 1;
                } else {
                    buf[k] = v[i];
                    i += 1;
                }
                k += 1;
            }
            buf[k..k + (mid - i)].copy_from_slice(&v[i..mid]);
            k += mid - i;
            buf[k..k + (hi - j)].copy_from_slice(&v[j..hi]);
            lo = hi;
        }
        std::mem::swap(v, &mut buf);
        width *= 2;
    }
    swaps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, pair by pair.
    fn brute(pairs: &[(u64, u64)]) -> Kendall {
        let mut k = Kendall {
            n: pairs.len() as u64,
            ..Kendall::default()
        };
        for i in 0..pairs.len() {
            for j in i + 1..pairs.len() {
                let (a, b) = (pairs[i], pairs[j]);
                let tx = a.0 == b.0;
                let ty = a.1 == b.1;
                match (tx, ty) {
                    (true, true) => {
                        k.ties_x += 1;
                        k.ties_y += 1;
                        k.ties_xy += 1;
                    }
                    (true, false) => k.ties_x += 1,
                    (false, true) => k.ties_y += 1,
                    (false, false) => {
                        if (a.0 < b.0) == (a.1 < b.1) {
                            k.concordant += 1;
                        } else {
                            k.discordant += 1;
                        }
                    }
                }
            }
        }
        let n0 = k.n * k.n.saturating_sub(1) / 2;
        let denom = ((n0 - k.ties_x) as f64) * ((n0 - k.ties_y) as f64);
        k.tau_b = (denom > 0.0).then(|| (k.concordant as f64 - k.discordant as f64) / denom.sqrt());
        k
    }

    #[test]
    fn matches_the_definition_on_random_inputs() {
        let mut g = super::super::fixture::Gen(12);
        for case in 0..600 {
            let n = g.below(40) as usize;
            // Small value ranges make ties on either side common.
            let rx = 1 + g.below(if case % 3 == 0 { 4 } else { 60 });
            let ry = 1 + g.below(if case % 5 == 0 { 3 } else { 60 });
            let pairs: Vec<(u64, u64)> = (0..n).map(|_| (g.below(rx), g.below(ry))).collect();
            let fast = kendall_tau_b(&pairs);
            let slow = brute(&pairs);
            assert_eq!(
                (fast.n, fast.concordant, fast.discordant),
                (slow.n, slow.concordant, slow.discordant),
                "{pairs:?}"
            );
            assert_eq!(
                (fast.ties_x, fast.ties_y, fast.ties_xy),
                (slow.ties_x, slow.ties_y, slow.ties_xy),
                "{pairs:?}"
            );
            match (fast.tau_b, slow.tau_b) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "{a} {b} {pairs:?}"),
                (a, b) => assert_eq!(a, b, "{pairs:?}"),
            }
        }
    }

    #[test]
    fn known_values() {
        let same: Vec<(u64, u64)> = (0..100).map(|i| (i, i * 3)).collect();
        assert_eq!(kendall_tau_b(&same).tau_b, Some(1.0));
        let reversed: Vec<(u64, u64)> = (0..100).map(|i| (i, 1000 - i)).collect();
        let k = kendall_tau_b(&reversed);
        assert_eq!(k.tau_b, Some(-1.0));
        assert_eq!(k.discordant, 4950);
        // One adjacent swap among 4: 5 concordant, 1 discordant.
        let k = kendall_tau_b(&[(0, 0), (1, 2), (2, 1), (3, 3)]);
        assert_eq!((k.concordant, k.discordant), (5, 1));
        assert!((k.tau_b.expect("defined") - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(kendall_tau_b(&[]).tau_b, None);
        assert_eq!(kendall_tau_b(&[(1, 1)]).tau_b, None);
        assert_eq!(kendall_tau_b(&[(1, 1), (2, 1)]).tau_b, None);
    }
}

//! A fixed-size bit set over dense seat indexes (bit set = seat free), so
//! best-available finds runs of free seats 64 at a time.
//!
//! Invariants: none of its own; the free bits mirror the seat states that
//! I1 is stated over, and are rebuilt from them on restore.

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    /// `len` bits, all set.
    pub fn ones(len: usize) -> Self {
        let mut words = vec![u64::MAX; len.div_ceil(64)];
        if let Some(last) = words.last_mut() {
            let tail = len % 64;
            if tail != 0 {
                *last = (1u64 << tail) - 1;
            }
        }
        Bits { words, len }
    }

    #[cfg(test)]
    pub fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    pub fn set(&mut self, i: usize, on: bool) {
        if let Some(w) = self.words.get_mut(i / 64) {
            let m = 1u64 << (i % 64);
            if on {
                *w |= m;
            } else {
                *w &= !m;
            }
        }
    }

    /// First index in `from..end` whose bit equals `want`, else `end`.
    pub fn next(&self, from: usize, end: usize, want: bool) -> usize {
        let end = end.min(self.len);
        let mut i = from;
        while i < end {
            let w = self.words[i / 64];
            let w = if want { w } else { !w };
            let w = w >> (i % 64);
            if w != 0 {
                return (i + w.trailing_zeros() as usize).min(end);
            }
            i = (i / 64 + 1) * 64;
        }
        end
    }

    /// Maximal runs of set bits in `from..end`, as `(start, len)`.
    pub fn runs(&self, from: usize, end: usize) -> Runs<'_> {
        Runs {
            bits: self,
            at: from,
            end: end.min(self.len),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Runs<'a> {
    bits: &'a Bits,
    at: usize,
    end: usize,
}

impl Iterator for Runs<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let start = self.bits.next(self.at, self.end, true);
        if start >= self.end {
            self.at = self.end;
            return None;
        }
        let stop = self.bits.next(start, self.end, false);
        self.at = stop;
        Some((start, stop - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_match_naive() {
        for len in [0usize, 1, 63, 64, 65, 130, 200] {
            let mut b = Bits::ones(len);
            let mut naive = vec![true; len];
            for i in (0..len).filter(|i| i % 7 == 3 || i % 11 == 0 || (64..70).contains(i)) {
                b.set(i, false);
                naive[i] = false;
            }
            for (from, end) in [(0, len), (1, len), (len / 3, len / 2), (5, 300)] {
                let from = from.min(len);
                let got: Vec<_> = b.runs(from, end).collect();
                let mut want = Vec::new();
                let mut i = from;
                let end = end.min(len);
                while i < end {
                    if naive[i] {
                        let s = i;
                        while i < end && naive[i] {
                            i += 1;
                        }
                        want.push((s, i - s));
                    } else {
                        i += 1;
                    }
                }
                assert_eq!(got, want, "len {len} from {from} end {end}");
            }
            for (i, &v) in naive.iter().enumerate() {
                assert_eq!(b.get(i), v);
            }
            assert!(!b.get(len));
        }
    }
}

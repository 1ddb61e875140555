//! The venue as built from row ranges: sections → rows → numbered seats, each
//! seat with a dense index (`0..seats`) in layout order.
//!
//! Layout order is quality order: an earlier range is a better one, which is
//! what best-available relies on. A `SeatId` resolves with one hash lookup of
//! its (section, row) and a binary search over that row's few ranges.
//!
//! Invariants: none of its own; a fixed map between seat ids and indexes
//! that the journal (I6) and I1 rely on being the same on replay.

use crate::config::{limits, RowRange};
use crate::ids::SeatId;
use hashbrown::{Equivalent, HashMap};
use siphasher::sip::SipHasher13;
use std::hash::{Hash, Hasher};

/// One run of numbered seats of one category; its seats are the dense
/// indexes `base..base + len`.
#[derive(Clone, Debug)]
pub(crate) struct RangeInfo {
    pub section: u32,
    pub row: Box<str>,
    pub first: u32,
    pub category: u32,
    /// Position among the category's ranges (quality order).
    pub rank: u32,
    pub base: u32,
    pub len: u32,
}

impl RangeInfo {
    pub fn end(&self) -> u32 {
        self.base + self.len
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub name: Box<str>,
    /// Range indexes in layout order.
    pub ranges: Vec<u32>,
}

#[derive(Clone, Debug)]
pub(crate) struct Category {
    pub name: Box<str>,
    /// Range indexes in layout (= quality) order.
    pub ranges: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RowKey {
    section: Box<str>,
    row: Box<str>,
}

/// Borrowed form of [`RowKey`]: hashes identically (`Box<str>` hashes as `str`),
/// so a lookup by a client's `SeatId` allocates nothing.
#[derive(Hash)]
struct RowKeyRef<'a> {
    section: &'a str,
    row: &'a str,
}

impl Equivalent<RowKey> for RowKeyRef<'_> {
    fn equivalent(&self, key: &RowKey) -> bool {
        *self.section == *key.section && *self.row == *key.row
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub ranges: Vec<RangeInfo>,
    pub sections: Vec<Section>,
    pub categories: Vec<Category>,
    /// Range of each seat, by dense index.
    pub seat_range: Vec<u32>,
    /// Hash of the layout, so a snapshot is not restored onto another venue.
    pub fingerprint: u64,
    section_index: HashMap<Box<str>, u32>,
    category_index: HashMap<Box<str>, u32>,
    /// (section, row) → its ranges sorted by `first`.
    rows: HashMap<RowKey, Vec<u32>>,
}

impl Layout {
    /// Builds the layout. The config is validated at the edge; should an
    /// unvalidated one arrive anyway, ranges with `first == 0`, `first > last`
    /// or past [`limits::MAX_SEATS`] seats in total are ignored rather than
    /// panicking, and overlaps resolve to one of the ranges.
    pub fn new(layout: &[RowRange]) -> Self {
        let mut out = Layout {
            ranges: Vec::with_capacity(layout.len()),
            sections: Vec::new(),
            categories: Vec::new(),
            seat_range: Vec::new(),
            fingerprint: 0,
            section_index: HashMap::new(),
            category_index: HashMap::new(),
            rows: HashMap::new(),
        };
        // Fixed key: the fingerprint must be the same in every process.
        let mut fp = SipHasher13::new_with_keys(0x626f_786f_6666_6963, 0x7365_6174_735f_7631);
        let mut total: u64 = 0;
        for r in layout {
            if r.first == 0 || r.first > r.last {
                continue;
            }
            let len = u64::from(r.last - r.first) + 1;
            if total + len > limits::MAX_SEATS {
                continue;
            }
            let Ok(index) = u32::try_from(out.ranges.len()) else {
                break;
            };
            (&r.section, &r.row, r.first, r.last, &r.category).hash(&mut fp);
            let section = out.section_id(&r.section);
            let category = out.category_id(&r.category);
            out.sections[section as usize].ranges.push(index);
            let cat_ranges = &mut out.categories[category as usize].ranges;
            let rank = cat_ranges.len() as u32;
            cat_ranges.push(index);
            out.rows
                .entry(RowKey {
                    section: r.section.as_str().into(),
                    row: r.row.as_str().into(),
                })
                .or_default()
                .push(index);
            // total + len <= MAX_SEATS (1 M), so both fit a u32.
            let (base, len) = (total as u32, len as u32);
            out.ranges.push(RangeInfo {
                section,
                row: r.row.as_str().into(),
                first: r.first,
                category,
                rank,
                base,
                len,
            });
            out.seat_range
                .resize(out.seat_range.len() + len as usize, index);
            total += u64::from(len);
        }
        let ranges = &out.ranges;
        for list in out.rows.values_mut() {
            list.sort_by_key(|&i| ranges[i as usize].first);
        }
        out.fingerprint = fp.finish();
        out
    }

    fn section_id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.section_index.get(name) {
            return i;
        }
        let i = self.sections.len() as u32;
        self.sections.push(Section {
            name: name.into(),
            ranges: Vec::new(),
        });
        self.section_index.insert(name.into(), i);
        i
    }

    fn category_id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.category_index.get(name) {
            return i;
        }
        let i = self.categories.len() as u32;
        self.categories.push(Category {
            name: name.into(),
            ranges: Vec::new(),
        });
        self.category_index.insert(name.into(), i);
        i
    }

    /// Number of seats.
    pub fn seats(&self) -> usize {
        self.seat_range.len()
    }

    /// Dense index of a seat, `None` if the layout has no such seat.
    pub fn resolve(&self, seat: &SeatId) -> Option<u32> {
        let key = RowKeyRef {
            section: &seat.section,
            row: &seat.row,
        };
        let list = self.rows.get(&key)?;
        // The last range starting at or before the number.
        let pos = list.partition_point(|&i| self.ranges[i as usize].first <= seat.number);
        let r = &self.ranges[*list.get(pos.checked_sub(1)?)? as usize];
        let off = seat.number - r.first;
        (off < r.len).then(|| r.base + off)
    }

    /// The seat at a dense index (`index < seats()`).
    pub fn seat_id(&self, index: u32) -> Option<SeatId> {
        let r = &self.ranges[*self.seat_range.get(index as usize)? as usize];
        Some(SeatId {
            section: self.sections[r.section as usize].name.clone(),
            row: r.row.clone(),
            number: r.first + (index - r.base),
        })
    }

    pub fn category(&self, name: &str) -> Option<u32> {
        self.category_index.get(name).copied()
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        let i = *self.section_index.get(name)?;
        self.sections.get(i as usize)
    }

    /// Category of a seat (`index < seats()`).
    pub fn seat_category(&self, index: u32) -> u32 {
        self.ranges[self.seat_range[index as usize] as usize].category
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seats::tests::rr;

    fn seat(s: &str) -> SeatId {
        SeatId::parse(s).expect("test seat")
    }

    #[test]
    fn dense_indexes_and_lookup() {
        let l = Layout::new(&[
            rr("A", "1", 1, 10, "VIP"),
            rr("A", "1", 21, 25, "R"),
            rr("A", "1", 11, 20, "R"),
            rr("B", "2", 5, 6, "VIP"),
        ]);
        assert_eq!(l.seats(), 27);
        assert_eq!(l.resolve(&seat("A-1-1")), Some(0));
        assert_eq!(l.resolve(&seat("A-1-10")), Some(9));
        assert_eq!(l.resolve(&seat("A-1-21")), Some(10));
        assert_eq!(l.resolve(&seat("A-1-25")), Some(14));
        assert_eq!(l.resolve(&seat("A-1-11")), Some(15));
        assert_eq!(l.resolve(&seat("B-2-6")), Some(26));
        for bad in [
            "A-1-0", "A-1-26", "B-2-4", "B-2-7", "B-1-5", "C-1-1", "A-2-1",
        ] {
            assert_eq!(l.resolve(&seat(bad)), None, "{bad}");
        }
        for i in 0..27 {
            let id = l.seat_id(i).expect("in range");
            assert_eq!(l.resolve(&id), Some(i));
        }
        assert_eq!(l.seat_id(27), None);
        assert_eq!(l.category("VIP"), Some(0));
        assert_eq!(l.category("R"), Some(1));
        assert_eq!(l.category("X"), None);
        assert_eq!(l.categories[0].ranges, vec![0, 3]);
        assert_eq!(
            l.section("A").map(|s| s.ranges.clone()),
            Some(vec![0, 1, 2])
        );
    }

    #[test]
    fn gaps_between_ranges_are_not_seats() {
        let l = Layout::new(&[rr("A", "1", 1, 5, "R"), rr("A", "1", 10, 12, "R")]);
        for n in 6..10 {
            assert_eq!(
                l.resolve(&SeatId {
                    section: "A".into(),
                    row: "1".into(),
                    number: n
                }),
                None
            );
        }
        assert_eq!(l.resolve(&seat("A-1-999999999")), None);
    }

    #[test]
    fn unvalidated_layouts_do_not_panic() {
        let l = Layout::new(&[
            rr("A", "1", 0, 5, "R"),
            rr("A", "1", 5, 2, "R"),
            rr("A", "1", 1, 100_000, "R"),
            rr("A", "2", 1, 100_000, "R"),
            rr("A", "1", 50, 60, "R"),
        ]);
        assert_eq!(l.seats(), 200_011);
        assert!(l.resolve(&seat("A-1-55")).is_some());
        let huge: Vec<_> = (0..12)
            .map(|r| rr("A", &r.to_string(), 1, 100_000, "R"))
            .collect();
        assert_eq!(Layout::new(&huge).seats() as u64, limits::MAX_SEATS);
    }

    #[test]
    fn fingerprint_depends_on_layout() {
        let a = Layout::new(&[rr("A", "1", 1, 10, "R")]);
        let b = Layout::new(&[rr("A", "1", 1, 11, "R")]);
        assert_eq!(
            a.fingerprint,
            Layout::new(&[rr("A", "1", 1, 10, "R")]).fingerprint
        );
        assert_ne!(a.fingerprint, b.fingerprint);
    }
}

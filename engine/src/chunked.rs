//! An append-only list stored in fixed chunks of [`CHUNK_LEN`] items, so
//! that growing it never copies what is already in it.
//!
//! A `Vec` that doubles copies every item once it is past what the allocator
//! can remap: a coupon's claim ledger of a million entries (32 MB) took one
//! claim of 17 ms to grow, behind the shard's lock
//! (`cargo run --release -p boxoffice-bench --bin stalls`). Here the
//! growth is one new chunk and a push onto a short list of chunk pointers.
//! Serialised as a plain sequence, the same bytes as the `Vec` it replaces.
//!
//! Invariants: every chunk but the last is full.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const CHUNK_BITS: u32 = 16;
pub(crate) const CHUNK_LEN: usize = 1 << CHUNK_BITS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK_LEN => last.push(item),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK_LEN);
                chunk.push(item);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & (CHUNK_LEN - 1))
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(i >> CHUNK_BITS)?
            .get_mut(i & (CHUNK_LEN - 1))
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_ {
        Iter {
            inner: self.chunks.iter().flatten(),
            left: self.len,
        }
    }
}

/// `Flatten` does not know its length; serde's sequences want it.
struct Iter<I> {
    inner: I,
    left: usize,
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> Iterator for Iter<I> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        let item = self.inner.next()?;
        self.left = self.left.saturating_sub(1);
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a, T: 'a, I: Iterator<Item = &'a T>> ExactSizeIterator for Iter<I> {}

impl<T: Serialize> Serialize for Chunked<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Chunked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(d)?;
        let mut c = Chunked::default();
        for item in items {
            c.push(item);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_iter_across_chunks() {
        let mut c = Chunked::default();
        let n = CHUNK_LEN * 2 + 5;
        for i in 0..n {
            c.push(i);
        }
        assert_eq!(c.len(), n);
        assert_eq!(c.chunks.len(), 3);
        assert!(c.chunks[..2].iter().all(|ch| ch.len() == CHUNK_LEN));
        assert_eq!(c.get(CHUNK_LEN), Some(&CHUNK_LEN));
        assert_eq!(c.get(n - 1), Some(&(n - 1)));
        assert_eq!(c.get(n), None);
        if let Some(x) = c.get_mut(CHUNK_LEN + 1) {
            *x = 7;
        }
        assert_eq!(c.get(CHUNK_LEN + 1), Some(&7));
        assert_eq!(c.iter().len(), n);
        assert_eq!(c.iter().filter(|&&x| x == 7).count(), 2);
    }

    #[test]
    fn serialises_as_the_vec_it_replaces() {
        let items: Vec<u32> = (0..(CHUNK_LEN as u32 + 3)).collect();
        let mut c = Chunked::default();
        for &i in &items {
            c.push(i);
        }
        let bytes = postcard::to_allocvec(&c).expect("serialise");
        assert_eq!(bytes, postcard::to_allocvec(&items).expect("serialise"));
        let back: Chunked<u32> = postcard::from_bytes(&bytes).expect("deserialise");
        assert_eq!(back, c);
        let empty: Chunked<u32> = postcard::from_bytes(&[0]).expect("deserialise");
        assert_eq!(empty.len(), 0);
    }
}

//! The per-worker Crypto-PAn pseudonym cache: a set-associative table.
//!
//! Addresses are hashed to one of `sets` sets of [`WAYS`] entries each; within
//! a set the least recently used entry is replaced. Compared with a linked LRU
//! of a million entries this keeps a lookup to about two cache lines (the set
//! header, then the matching entry), allocates only when it grows, and frees in
//! one call.
//!
//! The table starts small and doubles whenever it is half full, up to the
//! configured number of entries: memory follows the addresses actually seen,
//! not the configured ceiling. A doubling moves every entry into the new
//! table (keeping each set's recency order) and frees the old one, so for a
//! moment both exist: 1.5 times the new table, and for the last doubling,
//! whose new table is the configured size, less than twice that size.
//!
//! # Layout
//!
//! One `u64` slice, aligned by hand to 64 bytes, holds two regions:
//!
//! * set headers, 2 words (16 bytes) per set, four per cache line:
//!   - word 0: eight one-byte tags, way `i` in byte `i`; 0 = empty way;
//!   - word 1: low 32 bits, the recency order XOR `ORDER_EMPTY` (eight
//!     nibbles of way numbers, most recent first), so an all-zero header is an
//!     empty set; high 32 bits, one nibble of metadata per way (key length,
//!     pseudonym kind);
//! * entries, 4 words (32 bytes) per way, two per cache line: the key's 16
//!   bytes, then the pseudonym's.
//!
//! Stale entry words are never read without a matching non-zero tag. The
//! table is allocated zeroed, which the allocator can hand out as untouched
//! pages: memory is committed as sets are used. Headers are read only in
//! blocks already written ([`WrittenBlocks`]): an unwritten block reads as
//! empty and is zeroed on its first write, so no page is read before it is
//! written (see that module for why), and clearing is resetting the bitmap.

use crate::cryptopan::Pseudonym;
use crate::keyed_hash::{folded_multiply, random_seed};
use crate::written_blocks::WrittenBlocks;

/// Entries per set.
pub const WAYS: usize = 8;

/// Words per set header.
const HEADER_WORDS: usize = 2;
/// Words per entry: key (2) and pseudonym (2).
const ENTRY_WORDS: usize = 4;
/// Words per 64-byte cache line.
const LINE_WORDS: usize = 8;
/// Header words per block of the written-blocks bitmap (4 KiB).
const BLOCK_WORDS: usize = 512;
/// The recency order of an empty set: position `p` holds way `p`, so empty
/// ways are filled from way 7 down.
const ORDER_EMPTY: u32 = 0x7654_3210;
/// Larger requests are clamped so the size arithmetic cannot overflow (the
/// allocation would fail long before).
const MAX_ENTRIES: usize = usize::MAX / 64;
/// Sets a new table starts with (64 Ki entries, 2.1 MB) before it grows.
pub const INITIAL_SETS: usize = 8 * 1024;

const LO_BYTES: u64 = 0x0101_0101_0101_0101;
const HI7_BYTES: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const LO3_NIBBLES: u32 = 0x7777_7777;
const NIBBLE_ONES: u32 = 0x1111_1111;

/// Metadata nibble: the key is 16 bytes long (else 4).
const META_KEY16: u32 = 1;
/// Metadata nibble, bits 1..3: the pseudonym's kind.
const META_KIND_SHIFT: usize = 1;
const KIND_V4: u32 = 0;
const KIND_V6: u32 = 1;
const KIND_INVALID: u32 = 2;

/// Cache key: the raw address bytes as received, 4 or 16 bytes. A 4-byte
/// address and its IPv4-mapped 16-byte form are different keys, as in the
/// reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey {
    len: u8,
    bytes: [u8; 16],
}

impl AddrKey {
    /// The key of a 4- or 16-byte address; `None` for any other length.
    pub fn new(addr: &[u8]) -> Option<Self> {
        if addr.len() != 4 && addr.len() != 16 {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..addr.len()].copy_from_slice(addr);
        Some(Self {
            len: addr.len() as u8,
            bytes,
        })
    }

    /// The address bytes (4 or 16).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The address as two words (little-endian halves); a 4-byte address
    /// leaves the rest zero.
    fn words(&self) -> (u64, u64) {
        let x = u128::from_le_bytes(self.bytes);
        (x as u64, (x >> 64) as u64)
    }

    fn is_16(&self) -> bool {
        self.len == 16
    }
}

/// A set-associative Crypto-PAn pseudonym cache with LRU replacement within
/// each set of [`WAYS`] entries, growing up to its configured size.
pub struct AddrCache {
    /// Headers from `headers`, entries from `entries` (word indices).
    words: Box<[u64]>,
    headers: usize,
    entries: usize,
    sets: usize,
    /// The most sets the table may grow to (the configured size).
    max_sets: usize,
    /// Blocks of [`BLOCK_WORDS`] header words written since the last clear.
    written: WrittenBlocks,
    len: usize,
    seed: [u64; 2],
}

impl std::fmt::Debug for AddrCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddrCache")
            .field("len", &self.len)
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// One-bits in the high bit of every zero byte of `x` (exact: no borrow
/// between bytes).
fn zero_bytes(x: u64) -> u64 {
    !(((x & HI7_BYTES).wrapping_add(HI7_BYTES)) | x | HI7_BYTES)
}

/// One-bits in the high bit of every zero nibble of `x` (exact).
fn zero_nibbles(x: u32) -> u32 {
    !(((x & LO3_NIBBLES).wrapping_add(LO3_NIBBLES)) | x | LO3_NIBBLES)
}

/// `order` with `way` moved to the front (most recent).
fn touch(order: u32, way: usize) -> u32 {
    let found = zero_nibbles(order ^ (way as u32).wrapping_mul(NIBBLE_ONES));
    // The order is a permutation of 0..8, so exactly one nibble matches.
    let pos = found.trailing_zeros() / 4;
    let o = u64::from(order);
    let below = o & ((1u64 << (4 * pos)) - 1);
    let above = o & !((1u64 << (4 * (pos + 1))) - 1);
    (above | (below << 4) | way as u64) as u32
}

fn encode(value: Pseudonym) -> (u32, u64, u64) {
    match value {
        Pseudonym::V4(b) => (KIND_V4, u64::from(u32::from_le_bytes(b)), 0),
        Pseudonym::V6(b) => {
            let x = u128::from_le_bytes(b);
            (KIND_V6, x as u64, (x >> 64) as u64)
        }
        Pseudonym::Invalid(n) => (KIND_INVALID, n as u64, 0),
    }
}

fn decode(kind: u32, lo: u64, hi: u64) -> Pseudonym {
    match kind {
        KIND_V4 => Pseudonym::V4((lo as u32).to_le_bytes()),
        KIND_V6 => Pseudonym::V6((u128::from(lo) | (u128::from(hi) << 64)).to_le_bytes()),
        _ => Pseudonym::Invalid(lo as usize),
    }
}

/// Where a key lives: its set and its tag.
struct Slot {
    set: usize,
    tag: u8,
}

impl AddrCache {
    /// A cache of up to `entries` rounded up to a whole set ([`WAYS`]);
    /// `None` for 0 (the cache is disabled).
    ///
    /// The table starts at [`INITIAL_SETS`] sets (or the whole size if that
    /// is smaller) and doubles when it is half full, up to the configured
    /// size, so its memory follows the addresses actually seen (a resolver
    /// with 100 k clients needs a quarter of a 1 M-entry table) and a short
    /// run does not pay for zeroing pages it will never use. Each growth
    /// allocates the larger table, moves the entries over and frees the old
    /// one; the cache allocates nothing once it has reached its size.
    pub fn new(entries: usize) -> Option<Self> {
        if entries == 0 {
            return None;
        }
        let max_sets = entries.min(MAX_ENTRIES).div_ceil(WAYS);
        Some(Self::with_sets(
            max_sets.min(INITIAL_SETS),
            max_sets,
            random_seed(),
        ))
    }

    /// An empty table of `sets` sets, allocated zeroed.
    fn with_sets(sets: usize, max_sets: usize, seed: [u64; 2]) -> Self {
        let header_words = (sets * HEADER_WORDS).next_multiple_of(LINE_WORDS);
        let words = vec![0u64; LINE_WORDS - 1 + header_words + sets * WAYS * ENTRY_WORDS]
            .into_boxed_slice();
        // Up to 64 MiB (a 1 M-entry cache is 34 MB) on 2 MiB pages: see
        // `mem_hints` for why, and why not larger ones.
        crate::mem_hints::huge_pages(&words);
        // A u64 slice is 8-aligned: skip to the first 64-byte boundary.
        let misalign = (words.as_ptr() as usize / 8) % LINE_WORDS;
        let headers = (LINE_WORDS - misalign) % LINE_WORDS;
        Self {
            words,
            headers,
            entries: headers + header_words,
            sets,
            max_sets,
            written: WrittenBlocks::new(header_words, BLOCK_WORDS),
            len: 0,
            // Keyed per cache so addresses chosen to collide in one set
            // cannot be prepared in advance.
            seed,
        }
    }

    /// Double the table (up to `max_sets`), moving every entry over: each
    /// set's ways from least to most recent, so the recency order within
    /// a set carries over.
    fn grow(&mut self) {
        let mut next =
            Self::with_sets((self.sets * 2).min(self.max_sets), self.max_sets, self.seed);
        for set in 0..self.sets {
            let (tags, state) = self.header(set);
            if tags == 0 {
                continue;
            }
            let meta = (state >> 32) as u32;
            let order = state as u32 ^ ORDER_EMPTY;
            for pos in (0..WAYS).rev() {
                let way = ((order >> (4 * pos)) & 0xf) as usize;
                if (tags >> (8 * way)) as u8 == 0 {
                    continue;
                }
                let i = self.entry_index(set, way);
                let Some(&[lo, hi, v0, v1]) = self.words.get(i..i + ENTRY_WORDS) else {
                    continue;
                };
                let nibble = (meta >> (4 * way)) & 0xf;
                let key16 = nibble & META_KEY16 != 0;
                next.put(lo, hi, key16, nibble, v0, v1);
            }
        }
        *self = next;
    }

    /// Entries it can hold now: a multiple of [`WAYS`], growing up to the
    /// configured size.
    pub fn capacity(&self) -> usize {
        self.sets * WAYS
    }

    /// The most entries it can grow to: `entries` rounded up to a multiple
    /// of [`WAYS`].
    pub fn max_capacity(&self) -> usize {
        self.max_sets * WAYS
    }

    /// Entries it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forget every entry (on a key change): every header block reads as
    /// empty again (and is zeroed when next written), so it costs a bitmap
    /// clear; the old entries can no longer be found.
    pub fn clear(&mut self) {
        self.written.clear();
        self.len = 0;
    }

    fn slot(&self, lo: u64, hi: u64, key16: bool) -> Slot {
        let a = folded_multiply(
            lo ^ self.seed[0],
            hi ^ self.seed[1] ^ (u64::from(key16) << 63),
        );
        let h = folded_multiply(a ^ self.seed[1], 0x9e37_79b9_7f4a_7c15);
        // Fastrange: the high bits pick the set, the low byte is the tag.
        let set = ((u128::from(h) * self.sets as u128) >> 64) as usize;
        Slot {
            set,
            tag: (h as u8).max(1),
        }
    }

    fn header(&self, set: usize) -> (u64, u64) {
        if !self.written.is_written(set * HEADER_WORDS) {
            return (0, 0);
        }
        let i = self.headers + set * HEADER_WORDS;
        match self.words.get(i..i + HEADER_WORDS) {
            Some(&[tags, state]) => (tags, state),
            _ => (0, 0),
        }
    }

    fn set_header(&mut self, set: usize, tags: u64, state: u64) {
        if let Some(headers) = self.words.get_mut(self.headers..self.entries) {
            self.written.prepare(headers, set * HEADER_WORDS, 0);
        }
        let i = self.headers + set * HEADER_WORDS;
        if let Some(h) = self.words.get_mut(i..i + HEADER_WORDS) {
            h.copy_from_slice(&[tags, state]);
        }
    }

    fn entry_index(&self, set: usize, way: usize) -> usize {
        self.entries + (set * WAYS + way) * ENTRY_WORDS
    }

    /// The way of `set` holding the key, if any.
    fn find(
        &self,
        set: usize,
        tag: u8,
        tags: u64,
        meta: u32,
        key: (u64, u64, bool),
    ) -> Option<usize> {
        let mut candidates = zero_bytes(tags ^ u64::from(tag).wrapping_mul(LO_BYTES));
        while candidates != 0 {
            let way = (candidates.trailing_zeros() / 8) as usize;
            candidates &= candidates - 1;
            let i = self.entry_index(set, way);
            let key16 = (meta >> (4 * way)) & META_KEY16 != 0;
            if key16 == key.2
                && self
                    .words
                    .get(i..i + 2)
                    .is_some_and(|k| k == [key.0, key.1])
            {
                return Some(way);
            }
        }
        None
    }

    /// Start loading what a [`AddrCache::get`] of `key` will read: the set
    /// header and the entry of way 7, the first a set takes (most sets hold
    /// one address). Called well before the lookup, the lookup then finds
    /// both in the CPU caches instead of waiting for memory.
    pub fn prefetch(&self, key: &AddrKey) {
        let (lo, hi) = key.words();
        let Slot { set, .. } = self.slot(lo, hi, key.is_16());
        let words = self.words.as_ptr();
        crate::mem_hints::prefetch(words.wrapping_add(self.headers + set * HEADER_WORDS));
        crate::mem_hints::prefetch(words.wrapping_add(self.entry_index(set, WAYS - 1)));
    }

    /// The pseudonym cached for `key`, which becomes the most recently used
    /// entry of its set.
    pub fn get(&mut self, key: &AddrKey) -> Option<Pseudonym> {
        let (lo, hi) = key.words();
        let Slot { set, tag } = self.slot(lo, hi, key.is_16());
        // The first entry a set takes is way 7, and most sets hold one
        // address: fetch that entry's line while the header is read, instead
        // of after it.
        crate::mem_hints::prefetch(
            self.words
                .as_ptr()
                .wrapping_add(self.entry_index(set, WAYS - 1)),
        );
        let (tags, state) = self.header(set);
        let meta = (state >> 32) as u32;
        let way = self.find(set, tag, tags, meta, (lo, hi, key.is_16()))?;
        let order = touch(state as u32 ^ ORDER_EMPTY, way) ^ ORDER_EMPTY;
        self.set_header(set, tags, (state & !0xffff_ffff) | u64::from(order));
        let i = self.entry_index(set, way);
        let value = self.words.get(i + 2..i + 4)?;
        let kind = (meta >> (4 * way + META_KIND_SHIFT)) & 0b111;
        Some(decode(kind, value[0], value[1]))
    }

    /// Cache `value` for `key` as the most recently used entry of its set,
    /// replacing the set's least recently used entry if it is full. Returns
    /// true when a different valid entry was evicted (false when the set had
    /// room or the key was already cached and its value is replaced).
    pub fn insert(&mut self, key: AddrKey, value: Pseudonym) -> bool {
        if self.len >= self.capacity() / 2 && self.sets < self.max_sets {
            self.grow();
        }
        let (lo, hi) = key.words();
        let key16 = key.is_16();
        let (kind, v0, v1) = encode(value);
        let nibble = (u32::from(key16) * META_KEY16) | (kind << META_KIND_SHIFT);
        self.put(lo, hi, key16, nibble, v0, v1)
    }

    /// [`AddrCache::insert`] of an encoded key and value (`nibble`: the
    /// entry's metadata).
    fn put(&mut self, lo: u64, hi: u64, key16: bool, nibble: u32, v0: u64, v1: u64) -> bool {
        let Slot { set, tag } = self.slot(lo, hi, key16);
        let (mut tags, state) = self.header(set);
        let mut meta = (state >> 32) as u32;
        let order = state as u32 ^ ORDER_EMPTY;
        let (way, evicted) = match self.find(set, tag, tags, meta, (lo, hi, key16)) {
            Some(way) => (way, false),
            None => {
                // The last position is the least recent way; empty ways are
                // never touched, so they are always the last ones.
                let way = (order >> 28) as usize;
                let evicted = (tags >> (8 * way)) as u8 != 0;
                if !evicted {
                    self.len += 1;
                }
                tags = (tags & !(0xff << (8 * way))) | (u64::from(tag) << (8 * way));
                (way, evicted)
            }
        };
        meta = (meta & !(0xf << (4 * way))) | (nibble << (4 * way));
        let order = touch(order, way) ^ ORDER_EMPTY;
        self.set_header(set, tags, (u64::from(meta) << 32) | u64::from(order));
        let i = self.entry_index(set, way);
        if let Some(e) = self.words.get_mut(i..i + ENTRY_WORDS) {
            e.copy_from_slice(&[lo, hi, v0, v1]);
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn v4(n: u32) -> AddrKey {
        AddrKey::new(&n.to_be_bytes()).unwrap()
    }

    fn v6(n: u128) -> AddrKey {
        AddrKey::new(&n.to_be_bytes()).unwrap()
    }

    fn p(n: u32) -> Pseudonym {
        Pseudonym::V4(n.to_be_bytes())
    }

    #[test]
    fn key_lengths() {
        assert!(AddrKey::new(&[1, 2, 3]).is_none());
        assert!(AddrKey::new(&[]).is_none());
        assert!(AddrKey::new(&[0; 17]).is_none());
        assert_eq!(v4(0x0a00_0001).as_bytes(), &[10, 0, 0, 1]);
        assert_eq!(v6(1).as_bytes().len(), 16);
    }

    #[test]
    fn hit_after_insert() {
        let mut c = AddrCache::new(1000).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.get(&v4(1)), None);
        assert!(!c.insert(v4(1), p(11)));
        assert_eq!(c.get(&v4(1)), Some(p(11)));
        let six = Pseudonym::V6(*b"0123456789abcdef");
        assert!(!c.insert(v6(2), six));
        assert_eq!(c.get(&v6(2)), Some(six));
        assert!(!c.insert(v4(3), Pseudonym::Invalid(7)));
        assert_eq!(c.get(&v4(3)), Some(Pseudonym::Invalid(7)));
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&v4(4)), None);
    }

    #[test]
    fn v4_and_mapped_v6_are_distinct() {
        let mut c = AddrCache::new(1000).unwrap();
        let plain = v4(0xc000_0201);
        let mapped = v6(0xffff_c000_0201);
        // Also the same bytes zero-padded, which shares the key words of `plain`.
        let padded = AddrKey::new(&[192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_ne!(plain, mapped);
        c.insert(plain, p(1));
        assert_eq!(c.get(&mapped), None);
        assert_eq!(c.get(&padded), None);
        c.insert(mapped, p(2));
        c.insert(padded, p(3));
        assert_eq!(c.get(&plain), Some(p(1)));
        assert_eq!(c.get(&mapped), Some(p(2)));
        assert_eq!(c.get(&padded), Some(p(3)));
        assert_eq!(c.len(), 3);
        // The same in a single set, where they necessarily meet.
        let mut c = AddrCache::new(WAYS).unwrap();
        c.insert(plain, p(1));
        c.insert(padded, p(3));
        assert_eq!(c.get(&plain), Some(p(1)));
        assert_eq!(c.get(&padded), Some(p(3)));
        assert_eq!(c.get(&mapped), None);
    }

    #[test]
    fn capacity_rounds_up_to_a_set() {
        assert!(AddrCache::new(0).is_none());
        assert_eq!(AddrCache::new(1).unwrap().capacity(), WAYS);
        assert_eq!(AddrCache::new(WAYS).unwrap().capacity(), WAYS);
        assert_eq!(AddrCache::new(1000).unwrap().capacity(), 1000);
        assert_eq!(AddrCache::new(1001).unwrap().capacity(), 1008);
        assert_eq!(AddrCache::new(1_000_000).unwrap().max_capacity(), 1_000_000);
        // A large cache starts small.
        assert_eq!(
            AddrCache::new(1_000_000).unwrap().capacity(),
            INITIAL_SETS * WAYS
        );
        assert_eq!(AddrCache::new(1000).unwrap().max_capacity(), 1000);
    }

    #[test]
    fn grows_when_half_full_up_to_its_size() {
        let mut c = AddrCache::new(1_000_000).unwrap();
        let start = c.capacity();
        // Distinct keys, both lengths, all three value kinds.
        let key = |n: u32| {
            if n.is_multiple_of(3) {
                v6(u128::from(n) << 64 | 7)
            } else {
                v4(n)
            }
        };
        let value = |n: u32| match n % 5 {
            0 => Pseudonym::V6((u128::from(n) << 32).to_le_bytes()),
            1 => Pseudonym::Invalid(n as usize),
            _ => p(n),
        };
        let mut evicted = 0usize;
        for n in 0..100_000u32 {
            evicted += usize::from(c.insert(key(n), value(n)));
            assert!(c.len() <= c.capacity() / 2 + 1, "{n}");
        }
        // 100 000 keys: grown twice, to 262 144, not to the million.
        assert_eq!(c.capacity(), 4 * start);
        // Only sets that overflowed before a doubling lost entries (a small
        // share), and every entry held kept its own value across the moves.
        assert!(evicted < 2_000, "{evicted}");
        let held = (0..100_000u32)
            .filter(|&n| match c.get(&key(n)) {
                Some(v) => {
                    assert_eq!(v, value(n), "{n}");
                    true
                }
                None => false,
            })
            .count();
        assert_eq!(held, c.len());
        assert!(held + evicted >= 100_000, "{held} + {evicted}");

        // It never grows past its configured size.
        let mut c = AddrCache::new(100_000).unwrap();
        for n in 0..1_000_000u32 {
            c.insert(v4(n), p(n));
        }
        assert_eq!(c.capacity(), 100_000);
        assert!(c.len() <= 100_000 && c.len() > 80_000, "{}", c.len());
        assert_eq!(c.get(&v4(999_999)), Some(p(999_999)));
    }

    /// The key words of `set`'s entries, most recent first.
    fn recency(c: &AddrCache, set: usize) -> Vec<u64> {
        let (tags, state) = c.header(set);
        let order = state as u32 ^ ORDER_EMPTY;
        (0..WAYS)
            .map(|pos| ((order >> (4 * pos)) & 0xf) as usize)
            .filter(|&way| (tags >> (8 * way)) as u8 != 0)
            .map(|way| c.words[c.entry_index(set, way)])
            .collect()
    }

    /// A doubling keeps each set's recency order: every new set lists its
    /// entries in the order they had in the old one.
    #[test]
    fn growth_keeps_recency() {
        // One full set (not allowed to grow while it fills), then allowed
        // to grow to four sets.
        let mut c = AddrCache::with_sets(1, 1, [0x9e37_79b9_7f4a_7c15, 0x2545_f491_4f6c_dd1d]);
        for n in 0..WAYS as u32 {
            c.insert(v4(n), p(n));
        }
        c.max_sets = 4;
        for n in [5, 2, 6] {
            assert_eq!(c.get(&v4(n)), Some(p(n)));
        }
        let before = recency(&c, 0);
        assert_eq!(before.len(), WAYS);
        c.grow();
        assert_eq!((c.capacity(), c.len()), (2 * WAYS, WAYS));
        let mut seen = 0;
        for set in 0..2 {
            let after = recency(&c, set);
            // `after` is `before` with the other set's keys left out.
            let mut rest = before.iter();
            assert!(
                after.iter().all(|k| rest.any(|b| b == k)),
                "set {set}: {after:x?} not in the order of {before:x?}"
            );
            // The keys split between the two sets (so both are checked).
            assert!(!after.is_empty(), "set {set} is empty");
            seen += after.len();
        }
        assert_eq!(seen, WAYS);
        for n in 0..WAYS as u32 {
            assert_eq!(c.get(&v4(n)), Some(p(n)));
        }
        // The next doubling is the last one.
        c.grow();
        assert_eq!(c.capacity(), 4 * WAYS);
        assert!(!c.insert(v4(100), p(100)));
        assert_eq!(c.capacity(), 4 * WAYS);
    }

    #[test]
    fn one_entry_cache_holds_one_entry() {
        let mut c = AddrCache::new(1).unwrap();
        assert!(!c.insert(v4(9), p(9)));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&v4(9)), Some(p(9)));
    }

    #[test]
    fn len_never_exceeds_capacity() {
        let mut c = AddrCache::new(1000).unwrap();
        let cap = c.capacity();
        let mut evicted = 0;
        for n in 0..10 * cap as u32 {
            if c.insert(v4(n), p(n)) {
                evicted += 1;
            }
            assert!(c.len() <= cap, "len {} after {} inserts", c.len(), n + 1);
        }
        // Every distinct insert either took a free way or evicted one.
        assert_eq!(c.len() + evicted, 10 * cap);
        // 125 sets, 10 000 keys: every set filled up.
        assert_eq!(c.len(), cap);
        // The most recent insert is always still there.
        assert_eq!(
            c.get(&v4(10 * cap as u32 - 1)),
            Some(p(10 * cap as u32 - 1))
        );
        let hits = (0..10 * cap as u32)
            .filter(|&n| c.get(&v4(n)).is_some())
            .count();
        assert_eq!(hits, cap);
    }

    #[test]
    fn reinsert_same_key_does_not_evict() {
        let mut c = AddrCache::new(WAYS).unwrap();
        for n in 0..WAYS as u32 {
            assert!(!c.insert(v4(n), p(n)));
        }
        // Full set: re-inserting a cached key replaces its value in place.
        assert!(!c.insert(v4(3), p(33)));
        assert_eq!(c.len(), WAYS);
        assert_eq!(c.get(&v4(3)), Some(p(33)));
        for n in (0..WAYS as u32).filter(|&n| n != 3) {
            assert_eq!(c.get(&v4(n)), Some(p(n)));
        }
        // A new key in the full set evicts a different, valid entry.
        assert!(c.insert(v4(100), p(100)));
        assert_eq!(c.len(), WAYS);
    }

    #[test]
    fn least_recently_used_of_the_set_is_evicted() {
        let mut c = AddrCache::new(WAYS).unwrap();
        for n in 0..WAYS as u32 {
            c.insert(v4(n), p(n));
        }
        // Recency now 7 6 5 4 3 2 1 0; using 0 and 1 leaves 2 the oldest.
        assert!(c.get(&v4(0)).is_some());
        assert!(c.get(&v4(1)).is_some());
        assert!(c.insert(v4(100), p(100)));
        assert_eq!(c.get(&v4(2)), None);
        // Then 3 (a re-insert counts as a use).
        c.insert(v4(4), p(4));
        assert!(c.insert(v4(101), p(101)));
        assert_eq!(c.get(&v4(3)), None);
        assert_eq!(c.get(&v4(4)), Some(p(4)));
        // Then 5.
        assert!(c.insert(v4(102), p(102)));
        assert_eq!(c.get(&v4(5)), None);
        for n in [0, 1, 4, 6, 7, 100, 101, 102] {
            assert_eq!(c.get(&v4(n)), Some(p(n)), "{n}");
        }
    }

    /// A single set behaves exactly like an 8-entry LRU.
    #[test]
    fn single_set_matches_an_lru_model() {
        let mut c = AddrCache::new(WAYS).unwrap();
        let mut model: VecDeque<(AddrKey, Pseudonym)> = VecDeque::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 13) as u32;
            let key = if x & 0x100 == 0 {
                v4(n)
            } else {
                v6(0xffff_0000_0000 | u128::from(n))
            };
            let pos = model.iter().position(|(k, _)| *k == key);
            if x & 0x200 == 0 {
                let expect = pos.map(|i| {
                    let e = model.remove(i).unwrap();
                    model.push_front(e);
                    e.1
                });
                assert_eq!(c.get(&key), expect, "step {step}");
            } else {
                let value = if x & 0x400 == 0 {
                    p(step)
                } else {
                    Pseudonym::V6(u128::from(step).to_le_bytes())
                };
                if let Some(i) = pos {
                    model.remove(i);
                }
                model.push_front((key, value));
                let expect_evict = model.len() > WAYS;
                model.truncate(WAYS);
                assert_eq!(c.insert(key, value), expect_evict, "step {step}");
            }
            assert_eq!(c.len(), model.len());
        }
    }

    #[test]
    fn clear_forgets_everything() {
        let mut c = AddrCache::new(WAYS).unwrap();
        for n in 0..WAYS as u32 {
            c.insert(v4(n), p(n));
        }
        c.clear();
        assert!(c.is_empty());
        for n in 0..WAYS as u32 {
            assert_eq!(c.get(&v4(n)), None);
        }
        // Refilling after a clear evicts nothing until the set is full again.
        for n in 0..WAYS as u32 {
            assert!(!c.insert(v4(n + 50), p(n)));
        }
        assert!(c.insert(v4(99), p(99)));

        let mut c = AddrCache::new(100_000).unwrap();
        for n in 0..50_000 {
            c.insert(v4(n), p(n));
            c.insert(v6(u128::from(n)), p(n));
        }
        // At a load of one key per slot, some sets overflow (about 14 %
        // of the slots stay free); everything held can be found.
        assert!(c.len() > 80_000, "{}", c.len());
        let held = (0..50_000)
            .map(|n| {
                usize::from(c.get(&v4(n)).is_some())
                    + usize::from(c.get(&v6(u128::from(n))).is_some())
            })
            .sum::<usize>();
        assert_eq!(held, c.len());
        c.clear();
        assert_eq!(c.len(), 0);
        assert!(
            (0..50_000).all(|n| c.get(&v4(n)).is_none() && c.get(&v6(u128::from(n))).is_none())
        );
        // Writing again zeroes each header block first: the stale headers
        // beside a new entry match nothing.
        for n in (0..50_000).step_by(97) {
            c.insert(v4(n), p(n + 1));
        }
        for n in 0..50_000 {
            let want = (n % 97 == 0).then(|| p(n + 1));
            assert_eq!(c.get(&v4(n)), want, "{n}");
            assert_eq!(c.get(&v6(u128::from(n))), None, "{n}");
        }
        c.clear();
        assert!(c.is_empty());
    }

    #[test]
    fn touch_moves_a_way_to_the_front() {
        assert_eq!(touch(ORDER_EMPTY, 0), ORDER_EMPTY);
        assert_eq!(touch(ORDER_EMPTY, 7), 0x6543_2107);
        assert_eq!(touch(ORDER_EMPTY, 3), 0x7654_2103);
        assert_eq!(touch(0x6543_2107, 7), 0x6543_2107);
    }
}

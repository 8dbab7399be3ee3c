//! A set of 128-bit fingerprints in one flat table (open addressing, linear
//! probing, at most half full): the seen store's in-memory part.
//!
//! A general hash set keeps its control bytes and its keys apart, so adding
//! a name to a table larger than the CPU caches waits for memory twice; here
//! the probe reads the key's own slot, one cache line, and a [`SharedHint`]
//! lets a caller fetch that line ahead, even without holding the table's
//! lock (a prefetch of a stale address is harmless).
//!
//! Fingerprints are XXH3 hashes of names anyone can send, so the slot is
//! chosen by a hash keyed per table ([`crate::keyed_hash`]): names cannot be
//! prepared to collide.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::keyed_hash::{folded_multiply, random_seed};

/// Where a table's slots are, read by other threads without the table's
/// lock (to prefetch only): the owner publishes the place after the table
/// grows.
#[derive(Debug)]
pub struct SharedHint {
    base: AtomicUsize,
    mask: AtomicUsize,
    seed: [u64; 2],
}

impl SharedHint {
    /// The hint of `table` as it is now.
    pub fn new(table: &FpTable) -> Self {
        Self {
            base: AtomicUsize::new(table.slots.as_ptr() as usize),
            mask: AtomicUsize::new(table.mask),
            seed: table.seed,
        }
    }

    /// Publish where `table` (the one this hint was made from) is now.
    pub fn update(&self, table: &FpTable) {
        let base = table.slots.as_ptr() as usize;
        if self.base.load(Relaxed) != base {
            self.base.store(base, Relaxed);
            self.mask.store(table.mask, Relaxed);
        }
    }

    /// The address of `fp`'s first slot, as last published (a torn or stale
    /// read only makes a useless prefetch).
    pub fn addr(&self, fp: u128) -> *const u128 {
        let i = home(self.seed, self.mask.load(Relaxed), fp);
        (self.base.load(Relaxed) as *const u128).wrapping_add(i)
    }
}

fn home(seed: [u64; 2], mask: usize, fp: u128) -> usize {
    let h = folded_multiply((fp as u64) ^ seed[0], ((fp >> 64) as u64) ^ seed[1]);
    h as usize & mask
}

/// A growable set of fingerprints. Slot value 0 means empty; the
/// fingerprint 0 itself is kept in a flag.
pub struct FpTable {
    slots: Box<[u128]>,
    mask: usize,
    /// Fingerprints in `slots` (the zero flag not counted).
    in_slots: usize,
    has_zero: bool,
    seed: [u64; 2],
}

impl std::fmt::Debug for FpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpTable")
            .field("len", &self.len())
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl FpTable {
    /// A table for `n` fingerprints before it grows. Allocated zeroed: the
    /// OS commits its pages as they are written.
    pub fn with_capacity(n: usize) -> Self {
        let slots = n.saturating_mul(2).next_power_of_two().max(16);
        Self {
            slots: vec![0; slots].into_boxed_slice(),
            mask: slots - 1,
            in_slots: 0,
            has_zero: false,
            seed: random_seed(),
        }
    }

    /// Fingerprints held.
    pub fn len(&self) -> usize {
        self.in_slots + usize::from(self.has_zero)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot holding `fp`, or the empty slot where it would go.
    fn find(&self, fp: u128) -> (usize, bool) {
        let mut i = home(self.seed, self.mask, fp);
        loop {
            match self.slots.get(i).copied() {
                Some(0) | None => return (i, false),
                Some(k) if k == fp => return (i, true),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
    }

    /// Whether `fp` is held.
    pub fn contains(&self, fp: u128) -> bool {
        if fp == 0 {
            return self.has_zero;
        }
        self.find(fp).1
    }

    /// Add `fp`; false when it was held already.
    pub fn insert(&mut self, fp: u128) -> bool {
        if fp == 0 {
            return !std::mem::replace(&mut self.has_zero, true);
        }
        let (i, found) = self.find(fp);
        if found {
            return false;
        }
        if (self.in_slots + 1) * 2 > self.slots.len() {
            self.grow();
            return self.insert(fp);
        }
        if let Some(s) = self.slots.get_mut(i) {
            *s = fp;
        }
        self.in_slots += 1;
        true
    }

    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![0; slots].into_boxed_slice());
        self.mask = slots - 1;
        for fp in old.iter().copied().filter(|&k| k != 0) {
            let (i, _) = self.find(fp);
            if let Some(s) = self.slots.get_mut(i) {
                *s = fp;
            }
        }
    }

    /// Every fingerprint held, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.has_zero
            .then_some(0)
            .into_iter()
            .chain(self.slots.iter().copied().filter(|&k| k != 0))
    }

    /// Forget every fingerprint (the table keeps its size).
    pub fn clear(&mut self) {
        self.slots.fill(0);
        self.in_slots = 0;
        self.has_zero = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_grow_iterate_clear() {
        let mut t = FpTable::with_capacity(4);
        let keys: Vec<u128> = (0..1000u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        assert_eq!(keys[0], 0, "the zero fingerprint is among them");
        for (n, &k) in keys.iter().enumerate() {
            assert!(!t.contains(k));
            assert!(t.insert(k));
            assert!(!t.insert(k), "second insert");
            assert_eq!(t.len(), n + 1);
        }
        assert!(keys.iter().all(|&k| t.contains(k)));
        assert!(!t.contains(12345));
        assert!(t.slots.len() >= 2 * keys.len(), "at most half full");
        let mut all: Vec<u128> = t.iter().collect();
        all.sort_unstable();
        let mut want = keys.clone();
        want.sort_unstable();
        assert_eq!(all, want);
        t.clear();
        assert!(t.is_empty());
        assert!(keys.iter().all(|&k| !t.contains(k)));
        assert_eq!(t.iter().count(), 0);
    }

    #[test]
    fn keys_sharing_low_bits_do_not_pile_up() {
        // Fingerprints equal in their low 64 bits (or high) still spread: a
        // hash blind to one half would put 4096 of them in one run. The
        // seed is random, and with keys this regular the longest run at
        // this load (one half) depends on it: over 300 seeds, median 24,
        // 99th percentile 90, highest 162 slots (random keys: at most ~55).
        // The bound sits between that and a pile-up; at 64 it failed now
        // and then.
        let mut t = FpTable::with_capacity(1 << 12);
        for i in 1..=(1u128 << 12) {
            t.insert(i << 64);
            t.insert(i);
        }
        let longest = (0..t.slots.len())
            .map(|s| {
                (0..t.slots.len())
                    .take_while(|j| t.slots[(s + j) & t.mask] != 0)
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert!(longest < 1024, "longest run of full slots {longest}");
    }

    #[test]
    fn hint_points_at_the_home_slot() {
        let mut t = FpTable::with_capacity(16);
        let fp = 0xdead_beef_u128 << 70 | 77;
        t.insert(fp);
        let addr = SharedHint::new(&t).addr(fp) as usize;
        let (i, found) = t.find(fp);
        assert!(found);
        // Linear probing: the key is at its home slot or a little after.
        let home = (addr - t.slots.as_ptr() as usize) / 16;
        assert!(i >= home && i - home < 8, "{home} {i}");
    }
}

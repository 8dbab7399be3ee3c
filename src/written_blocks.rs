//! Which blocks of a large zero-allocated table have been written.
//!
//! The per-worker Crypto-PAn cache and the seen-qname cache are allocated
//! zeroed, so the OS commits their memory only as it is used. But the first
//! *read* of an untouched page maps the shared zero page, and the first write
//! after it is a copy-on-write fault whose TLB flush interrupts every other
//! CPU running the process (an IPI, and a VM exit on a virtual machine): about
//! 4 % of edm's CPU time in a 1 M-frame run went to these faults. A table that
//! consults this bitmap never reads a block before writing it: an unwritten
//! block reads as empty, and its first write zeroes the whole block. Memory is
//! still committed block by block, and forgetting every entry is clearing the
//! bitmap (the blocks are zeroed again when next written).

/// One bit per block of `block_len` items of a table: set once the block
/// has been zeroed for writing since the last [`WrittenBlocks::clear`].
#[derive(Debug, Clone)]
pub struct WrittenBlocks {
    bits: Box<[u64]>,
    block_len: usize,
}

impl WrittenBlocks {
    /// A bitmap for a table of `len` items in blocks of `block_len` (at
    /// least 1), none written.
    pub fn new(len: usize, block_len: usize) -> Self {
        let block_len = block_len.max(1);
        Self {
            bits: vec![0u64; len.div_ceil(block_len).div_ceil(64)].into_boxed_slice(),
            block_len,
        }
    }

    /// Whether item `i` may be read: its block has been written since the
    /// last clear (an unwritten block reads as empty).
    #[inline]
    pub fn is_written(&self, i: usize) -> bool {
        let b = i / self.block_len;
        self.bits
            .get(b / 64)
            .is_some_and(|w| w & (1u64 << (b % 64)) != 0)
    }

    /// Make item `i` of `items` (the table this bitmap describes) ready to
    /// be written: the first time since the last clear, its whole block is
    /// set to `zero` (the table's empty value) and marked written.
    #[inline]
    pub fn prepare<T: Copy>(&mut self, items: &mut [T], i: usize, zero: T) {
        let b = i / self.block_len;
        let Some(w) = self.bits.get_mut(b / 64) else {
            return;
        };
        if *w & (1u64 << (b % 64)) != 0 {
            return;
        }
        *w |= 1u64 << (b % 64);
        let start = b * self.block_len;
        let end = (start + self.block_len).min(items.len());
        if let Some(block) = items.get_mut(start..end) {
            block.fill(zero);
        }
    }

    /// The bitmap's words (tests).
    #[cfg(test)]
    pub fn bits(&self) -> &[u64] {
        &self.bits
    }

    /// Forget every block.
    pub fn clear(&mut self) {
        self.bits.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepares_whole_blocks_once_and_clears() {
        let mut items = vec![7u8; 130];
        let mut w = WrittenBlocks::new(items.len(), 64);
        assert!(!w.is_written(0) && !w.is_written(129));
        w.prepare(&mut items, 129, 0);
        // The last, partial block (128..130) is zeroed; the others are not.
        assert!(w.is_written(128) && w.is_written(129) && !w.is_written(127));
        assert_eq!((items[127], items[128], items[129]), (7, 0, 0));
        items[129] = 5;
        w.prepare(&mut items, 128, 0);
        assert_eq!(items[129], 5, "a written block is not zeroed again");
        w.prepare(&mut items, 3, 0);
        assert!(items[..64].iter().all(|&x| x == 0) && items[64..128].iter().all(|&x| x == 7));
        w.clear();
        assert!(!w.is_written(0) && !w.is_written(129));
        // Out of range: never written, nothing touched.
        w.prepare(&mut items, 10_000, 0);
        assert!(!w.is_written(10_000));
    }
}

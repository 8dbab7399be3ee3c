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

/// One bit per block of a table: set once the block has been written (and
/// zeroed) since the last [`WrittenBlocks::clear`].
#[derive(Debug, Clone)]
pub struct WrittenBlocks {
    bits: Box<[u64]>,
}

impl WrittenBlocks {
    /// A bitmap for `blocks` blocks, none written.
    pub fn new(blocks: usize) -> Self {
        Self {
            bits: vec![0u64; blocks.div_ceil(64)].into_boxed_slice(),
        }
    }

    /// Whether block `b` has been written since the last clear.
    #[inline]
    pub fn is_written(&self, b: usize) -> bool {
        self.bits
            .get(b / 64)
            .is_some_and(|w| w & (1u64 << (b % 64)) != 0)
    }

    /// Mark block `b` written; true if it was not (the caller zeroes it).
    #[inline]
    pub fn mark(&mut self, b: usize) -> bool {
        match self.bits.get_mut(b / 64) {
            Some(w) if *w & (1u64 << (b % 64)) == 0 => {
                *w |= 1u64 << (b % 64);
                true
            }
            _ => false,
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
    fn marks_and_clears() {
        let mut w = WrittenBlocks::new(130);
        assert!(!w.is_written(0) && !w.is_written(129));
        assert!(w.mark(129));
        assert!(!w.mark(129));
        assert!(w.is_written(129) && !w.is_written(128));
        assert!(w.mark(0));
        w.clear();
        assert!(!w.is_written(0) && !w.is_written(129));
        // Out of range: never written, never marked.
        assert!(!w.mark(1000) && !w.is_written(1000));
    }
}

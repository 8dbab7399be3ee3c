//! A cache-line prefetch hint, the one `unsafe` call in edm.
//!
//! The large per-worker tables (the Crypto-PAn cache, the seen-qname cache)
//! are far bigger than the CPU caches, so a lookup usually waits for memory.
//! Asking for a line early lets that wait overlap other work. Untouched
//! pages stay untouched: a prefetch never faults, so it neither commits
//! memory nor maps the shared zero page ([`crate::written_blocks`]).

/// Ask the CPU to start loading the cache line holding `p` into its caches.
/// Any address is fine, valid or not: the instruction is only a hint, has no
/// architectural effect and never faults. A no-op on targets other than
/// x86-64.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: PREFETCHT0 reads no memory the program can observe and raises
    // no fault for any address (Intel SDM vol. 2, PREFETCHh); SSE, which it
    // needs, is part of the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

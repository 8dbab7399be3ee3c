//! Hints to the CPU and the kernel for the large tables (the per-worker
//! Crypto-PAn caches, the seen-qname cache and store): the only `unsafe`
//! calls in edm, each a hint that changes no value the program can read.
//!
//! - [`prefetch`]: the tables are far bigger than the CPU caches, so a lookup
//!   usually waits for memory. Asking for a line early lets that wait
//!   overlap other work. Untouched pages stay untouched: a prefetch never
//!   faults, so it neither commits memory nor maps the shared zero page
//!   ([`crate::written_blocks`]).
//! - [`huge_pages`]: with 4 KiB pages a random lookup in a 34 MB table also
//!   misses the TLB, and once the line itself is prefetched that page walk
//!   is what the lookup waits for. 2 MiB pages leave a few dozen entries to
//!   cover a Crypto-PAn cache. Only those tables are advised: the
//!   allocator's other memory keeps 4 KiB pages (mimalloc is built with
//!   `no_thp`, because zeroing a 2 MiB page for every fresh allocation cost
//!   more than it gave; see BENCHMARKS.md). The price is memory: one lookup
//!   commits a whole 2 MiB page, so a sparsely used table is committed in
//!   full at once instead of as it fills. Tables above
//!   [`HUGE_PAGES_MAX_TABLE`] (the default 10 M-entry caches, 340 MB each)
//!   therefore keep 4 KiB pages, and the seen cache's shards are not advised
//!   (at the default size, 64 shards of 2.5 MB would commit 128 MB within the
//!   first few thousand names).

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

/// Tables larger than this keep 4 KiB pages ([`huge_pages`]): the memory a
/// sparsely used table would commit at once stays bounded by it.
pub const HUGE_PAGES_MAX_TABLE: usize = 64 << 20;

/// Ask the kernel to back the 2 MiB-aligned part of `table` with transparent
/// huge pages. Returns the bytes advised (0 for a table larger than
/// [`HUGE_PAGES_MAX_TABLE`] or holding no whole huge page, on other systems,
/// or when the kernel refuses: the table then simply keeps 4 KiB pages).
///
/// The first call also lets this process use huge pages where it asks for
/// them (`PR_SET_THP_DISABLE` with `PR_THP_DISABLE_EXCEPT_ADVISED`, Linux ≥
/// 6.18): mimalloc turned them off for the whole process at startup.
pub fn huge_pages<T>(table: &[T]) -> usize {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if std::mem::size_of_val(table) > HUGE_PAGES_MAX_TABLE {
            return 0;
        }
        const PR_THP_DISABLE_EXCEPT_ADVISED: libc::c_ulong = 1 << 1;
        static EXCEPT_ADVISED: std::sync::Once = std::sync::Once::new();
        EXCEPT_ADVISED.call_once(|| {
            #[allow(unsafe_code)]
            // SAFETY: this prctl only sets the process's THP policy flag; it
            // reads or writes no memory of the program.
            let r = unsafe {
                libc::prctl(
                    libc::PR_SET_THP_DISABLE,
                    1 as libc::c_ulong,
                    PR_THP_DISABLE_EXCEPT_ADVISED,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if r != 0 {
                tracing::debug!(error = %std::io::Error::last_os_error(),
                    "the kernel keeps huge pages off (needs Linux 6.18)");
            }
        });
        let start = (table.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (table.as_ptr() as usize + std::mem::size_of_val(table)) & !(HUGE - 1);
        if end <= start {
            return 0;
        }
        #[allow(unsafe_code)]
        // SAFETY: the range lies inside `table`, memory this process owns;
        // MADV_HUGEPAGE changes only the size of the pages behind it, never
        // its contents (untouched memory still reads as zero).
        let r =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        if r == 0 { end - start } else { 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = table;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_tables_are_not_advised() {
        // Allocated zeroed: never touched, so never committed.
        let large = vec![0u8; HUGE_PAGES_MAX_TABLE + 4096];
        assert_eq!(huge_pages(&large), 0);
        let small = vec![0u8; 1 << 20];
        assert_eq!(huge_pages(&small), 0, "no whole 2 MiB page in 1 MiB");
        let medium = vec![0u64; 8 << 20 >> 3];
        assert!(huge_pages(&medium) <= 8 << 20);
        // A prefetch of any address is harmless.
        prefetch(std::ptr::null::<u8>());
        prefetch(usize::MAX as *const u64);
    }
}

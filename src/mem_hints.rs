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
//!   cover the tables. Only these tables are advised: the allocator's other
//!   memory keeps 4 KiB pages (mimalloc is built with `no_thp`, because
//!   zeroing a 2 MiB page for every fresh allocation cost more than it gave;
//!   see BENCHMARKS.md).

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

/// Ask the kernel to back the 2 MiB-aligned part of `table` with transparent
/// huge pages. Returns the bytes advised (0 where the table holds no whole
/// huge page, on other systems, or when the kernel refuses: the table then
/// simply keeps 4 KiB pages).
///
/// The first call also lets this process use huge pages where it asks for
/// them (`PR_SET_THP_DISABLE` with `PR_THP_DISABLE_EXCEPT_ADVISED`, Linux ≥
/// 6.18): mimalloc turned them off for the whole process at startup.
pub fn huge_pages<T>(table: &[T]) -> usize {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
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

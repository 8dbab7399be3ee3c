//! The seen-qname check (reference §8, decisions.md "Seen-qname store").
//!
//! Keys are lowercased question names in presentation format. A bounded
//! cache (`qname-seen-entries` names in 64 LRU shards, each behind its own
//! mutex) answers repeated names without touching the store. On a miss the
//! persistent store is read with the name's shard still locked; a name found
//! there is seen, otherwise it is recorded in the cache and the store and is
//! [`Seen::New`]. A concurrent caller with the same name waits for that shard
//! and then finds the name cached, so exactly one caller reports it new. No
//! lock is shared by all workers (two workers meet only on the same shard),
//! and the store (`fjall`, an LSM tree) takes concurrent readers and writers.
//! Each worker also keeps a [`SeenFront`] set, so a repeated name usually
//! touches no shared state at all.
//!
//! Why fjall: a maintained, pure-Rust embedded store built for write-heavy
//! workloads (every new name is an insert; nothing is ever updated), with
//! concurrent writers and an append-only journal, so recording a name does not
//! serialise workers behind a single-writer transaction as a B-tree store
//! (redb, sled's successor designs) would.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Cache shards: enough that workers rarely meet on one.
const SHARDS: usize = 64;

/// One shard of the cache: an LRU of names.
struct Shard {
    lru: lru::LruCache<Box<str>, (), foldhash::fast::RandomState>,
}

impl Shard {
    fn new(cap: usize) -> Self {
        let cap = std::num::NonZeroUsize::new(cap).unwrap_or(std::num::NonZeroUsize::MIN);
        Self {
            lru: lru::LruCache::with_hasher(cap, Default::default()),
        }
    }
}

/// The answer for one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First sighting by this instance: raise an event.
    New,
    /// Seen before (or being recorded by a concurrent caller).
    Seen,
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the seen-qname store {path}")]
pub struct OpenError {
    /// The store directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: fjall::Error,
}

/// Counters of the seen check (exported by the metrics module).
#[derive(Debug, Default)]
pub struct SeenCounters {
    /// Cache evictions (`edm_seen_qname_lru_evicted_total`).
    pub evicted: AtomicU64,
    /// Store read or write errors.
    pub store_errors: AtomicU64,
}

/// Check-and-record of question names.
pub struct SeenQnames {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::FixedState,
    keyspace: fjall::Keyspace,
    names: fjall::PartitionHandle,
    sync: AtomicBool,
    counters: Arc<SeenCounters>,
    /// Unix seconds of the last logged store error.
    last_error_log: AtomicU64,
    #[cfg(test)]
    fail: FailPoints,
}

/// Injected store failures (tests of the reference's error scenarios).
#[cfg(test)]
#[derive(Debug, Default)]
struct FailPoints {
    lookup: AtomicBool,
    insert: AtomicBool,
}

impl std::fmt::Debug for SeenQnames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenQnames")
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl SeenQnames {
    /// Open (or create) the store in `dir`, with a cache of `entries` names.
    /// `sync` fsyncs every recorded name (`pebble-sync`).
    ///
    /// # Errors
    /// [`OpenError`] naming the directory.
    pub fn open(dir: &Path, entries: u64, sync: bool) -> Result<Self, OpenError> {
        let err = |source| OpenError {
            path: dir.to_path_buf(),
            source,
        };
        let keyspace = fjall::Config::new(dir).open().map_err(err)?;
        let names = keyspace
            .open_partition(
                "qnames",
                // Journal writes reach the OS once per worker batch
                // (`flush_batch`), not once per name; a smaller memtable keeps
                // lookups of new names shallow.
                fjall::PartitionCreateOptions::default()
                    .manual_journal_persist(true)
                    .max_memtable_size(8 * 1024 * 1024),
            )
            .map_err(err)?;
        let counters = Arc::new(SeenCounters::default());
        // Small caches get fewer shards, so the bound is exact (an LRU of 1
        // holds one name, as in the reference).
        let n = usize::try_from(entries)
            .unwrap_or(usize::MAX)
            .clamp(1, SHARDS);
        let per_shard = usize::try_from(entries)
            .unwrap_or(usize::MAX)
            .div_ceil(n)
            .max(1);
        let shards = (0..n).map(|_| Mutex::new(Shard::new(per_shard))).collect();
        Ok(Self {
            shards,
            hasher: foldhash::fast::FixedState::with_seed(0x5EE4),
            keyspace,
            names,
            sync: AtomicBool::new(sync),
            counters,
            last_error_log: AtomicU64::new(0),
            #[cfg(test)]
            fail: FailPoints::default(),
        })
    }

    /// Fsync every recorded name from now on (`pebble-sync`, reloadable).
    pub fn set_sync(&self, sync: bool) {
        self.sync.store(sync, Relaxed);
    }

    /// The counters.
    pub fn counters(&self) -> Arc<SeenCounters> {
        self.counters.clone()
    }

    /// Check `name` (already lowercased) and record it if new.
    pub fn check(&self, name: &str) -> Seen {
        use std::hash::BuildHasher as _;
        let shard = (self.hasher.hash_one(name) >> 32) as usize % self.shards.len();
        let mut cache = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        if cache.lru.get(name).is_some() {
            return Seen::Seen;
        }
        // The shard stays locked until the name is recorded: a concurrent
        // caller with the same name waits here and then finds it cached.
        // Other names (other shards) are not held up.
        // Reference §8: the name enters the cache before the store is asked.
        if let Some((old, ())) = cache.lru.push(name.into(), ()) {
            if &*old != name {
                self.counters.evicted.fetch_add(1, Relaxed);
            }
        }
        match self.lookup(name) {
            Ok(true) => return Seen::Seen,
            Ok(false) => {}
            // Reference: a lookup error counts as new and is not recorded.
            Err(e) => {
                self.store_error("seen-qname store lookup failed", &e);
                return Seen::New;
            }
        }
        // Reference: an insert error is only logged; the name is still new.
        if let Err(e) = self.record(name) {
            self.store_error("cannot record a new qname in the store", &e);
        } else if self.sync.load(Relaxed) {
            if let Err(e) = self.keyspace.persist(fjall::PersistMode::SyncAll) {
                self.store_error("cannot sync the seen-qname store", &e);
            }
        }
        Seen::New
    }

    fn lookup(&self, name: &str) -> Result<bool, fjall::Error> {
        #[cfg(test)]
        if self.fail.lookup.load(Relaxed) {
            return Err(fjall::Error::Io(std::io::Error::other("injected")));
        }
        self.names.contains_key(name)
    }

    fn record(&self, name: &str) -> Result<(), fjall::Error> {
        #[cfg(test)]
        if self.fail.insert.load(Relaxed) {
            return Err(fjall::Error::Io(std::io::Error::other("injected")));
        }
        self.names.insert(name, [])
    }

    /// Count a store error; log it at most once per 10 s (a failing disk
    /// would otherwise log once per frame).
    fn store_error(&self, what: &str, e: &fjall::Error) {
        let n = self.counters.store_errors.fetch_add(1, Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_error_log.load(Relaxed);
        if (n == 0 || now >= last + 10)
            && self
                .last_error_log
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %e, errors_so_far = n + 1, "{what}");
        }
    }

    /// Hand the names recorded so far to the OS (a worker calls this after a
    /// batch in which it recorded names), so a crash of the process loses
    /// none of them; `pebble-sync` additionally fsyncs each one.
    pub fn flush_batch(&self) {
        if let Err(e) = self.keyspace.persist(fjall::PersistMode::Buffer) {
            self.counters.store_errors.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, "cannot write the seen-qname journal");
        }
    }

    /// Flush the store's journal to disk (at shutdown).
    ///
    /// # Errors
    /// The store's error.
    pub fn persist(&self) -> Result<(), fjall::Error> {
        self.keyspace.persist(fjall::PersistMode::SyncAll)
    }
}

/// A worker's own memory of names it knows are seen, in front of the shared
/// [`SeenQnames`]: a repeated name costs one hash lookup, no shared state
/// touched. Names only ever go from new to seen, so a name that passed the
/// shared check once is seen for good and this set can never be wrong; it only
/// saves work. Bounded: two generations of at most `cap` names each; when the
/// current one is full it becomes the old one (names in use move back), so
/// memory stays at most `2 × cap` names.
#[derive(Debug)]
pub struct SeenFront {
    current: std::collections::HashSet<Box<str>, foldhash::fast::RandomState>,
    old: std::collections::HashSet<Box<str>, foldhash::fast::RandomState>,
    cap: usize,
}

impl SeenFront {
    /// A front set of at most `2 × cap` names.
    pub fn new(cap: usize) -> Self {
        Self {
            current: Default::default(),
            old: Default::default(),
            cap: cap.max(1),
        }
    }

    /// Check `name` (lowercased): the front set first, then `shared`.
    pub fn check(&mut self, shared: &SeenQnames, name: &str) -> Seen {
        if self.current.contains(name) {
            return Seen::Seen;
        }
        if let Some(k) = self.old.take(name) {
            self.remember(k);
            return Seen::Seen;
        }
        let answer = shared.check(name);
        self.remember(name.into());
        answer
    }

    fn remember(&mut self, name: Box<str>) {
        if self.current.len() >= self.cap {
            self.old = std::mem::take(&mut self.current);
        }
        self.current.insert(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_then_seen_and_persisted_across_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SeenQnames::open(dir.path(), 100, false).unwrap();
            assert_eq!(s.check("example.com."), Seen::New);
            assert_eq!(s.check("example.com."), Seen::Seen);
            s.persist().unwrap();
        }
        // A fresh cache: the store still knows the name.
        let s = SeenQnames::open(dir.path(), 100, false).unwrap();
        assert_eq!(s.check("example.com."), Seen::Seen);
        assert_eq!(s.check("other.example."), Seen::New);
    }

    #[test]
    fn sixty_four_concurrent_callers_one_new() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeenQnames::open(dir.path(), 1000, false).unwrap();
        for round in 0..20 {
            let name = format!("n{round}.example.");
            let barrier = std::sync::Barrier::new(64);
            let news = AtomicU64::new(0);
            std::thread::scope(|scope| {
                for _ in 0..64 {
                    scope.spawn(|| {
                        barrier.wait();
                        if s.check(&name) == Seen::New {
                            news.fetch_add(1, Relaxed);
                        }
                    });
                }
            });
            assert_eq!(news.load(Relaxed), 1, "{name}");
        }
    }

    #[test]
    fn small_cache_evicts_and_store_still_answers() {
        let dir = tempfile::tempdir().unwrap();
        // One name per shard at most: 200 names must evict.
        let s = SeenQnames::open(dir.path(), 1, false).unwrap();
        let names: Vec<String> = (0..200).map(|i| format!("n{i}.")).collect();
        for n in &names {
            assert_eq!(s.check(n), Seen::New);
        }
        let evicted = s.counters().evicted.load(Relaxed);
        assert_eq!(evicted, 199, "one name held");
        for n in &names {
            assert_eq!(s.check(n), Seen::Seen, "{n} from the store");
        }
    }

    #[test]
    fn front_sets_answer_repeats_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeenQnames::open(dir.path(), 1000, false).unwrap();
        let mut f = SeenFront::new(4);
        let mut g = SeenFront::new(4);
        assert_eq!(f.check(&s, "a."), Seen::New);
        assert_eq!(f.check(&s, "a."), Seen::Seen);
        // Another worker learns it from the shared check.
        assert_eq!(g.check(&s, "a."), Seen::Seen);
        for i in 0..100 {
            let n = format!("n{i}.");
            assert_eq!(f.check(&s, &n), Seen::New, "{n}");
            assert_eq!(g.check(&s, &n), Seen::Seen, "{n}");
            assert!(f.current.len() + f.old.len() <= 8);
        }
        // Evicted from the front set: the shared check still answers.
        assert_eq!(f.check(&s, "a."), Seen::Seen);
    }

    #[test]
    fn sixty_four_workers_with_front_sets_one_new() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeenQnames::open(dir.path(), 1000, false).unwrap();
        let barrier = std::sync::Barrier::new(64);
        let news = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..64 {
                scope.spawn(|| {
                    let mut front = SeenFront::new(16);
                    barrier.wait();
                    for round in 0..50 {
                        for _ in 0..3 {
                            if front.check(&s, &format!("w{round}.example.")) == Seen::New {
                                news.fetch_add(1, Relaxed);
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(news.load(Relaxed), 50, "one New per name over 64 workers");
    }

    #[test]
    fn lru_of_one_evicts_the_previous_name() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeenQnames::open(dir.path(), 1, false).unwrap();
        assert_eq!(s.check("a."), Seen::New);
        assert_eq!(s.counters().evicted.load(Relaxed), 0);
        assert_eq!(s.check("b."), Seen::New);
        assert_eq!(s.counters().evicted.load(Relaxed), 1, "b. evicts a.");
        // a. comes from the store, and now evicts b.
        assert_eq!(s.check("a."), Seen::Seen);
        assert_eq!(s.counters().evicted.load(Relaxed), 2);
    }

    #[test]
    fn store_errors_as_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SeenQnames::open(dir.path(), 100, false).unwrap();
            // Lookup error → new, not recorded in the store (the cache has it).
            s.fail.lookup.store(true, Relaxed);
            assert_eq!(s.check("lookup-fails."), Seen::New);
            s.fail.lookup.store(false, Relaxed);
            assert_eq!(s.check("lookup-fails."), Seen::Seen, "cached");
            // Insert error → new (only logged).
            s.fail.insert.store(true, Relaxed);
            assert_eq!(s.check("insert-fails."), Seen::New);
            s.fail.insert.store(false, Relaxed);
            assert_eq!(s.check("insert-fails."), Seen::Seen, "cached");
            assert_eq!(s.counters().store_errors.load(Relaxed), 2);
            assert_eq!(s.check("stored."), Seen::New);
            s.persist().unwrap();
        }
        // A fresh cache: neither failed name reached the store.
        let s = SeenQnames::open(dir.path(), 100, false).unwrap();
        assert_eq!(s.check("lookup-fails."), Seen::New);
        assert_eq!(s.check("insert-fails."), Seen::New);
        assert_eq!(s.check("stored."), Seen::Seen);
    }

    #[test]
    fn mixed_case_is_one_name_once_lowercased() {
        // The worker lowercases before the check (reference §8); the scenario
        // `Example.COM.` → new, then seen, and seen again with a fresh cache.
        let dir = tempfile::tempdir().unwrap();
        let lower = "Example.COM.".to_ascii_lowercase();
        {
            let s = SeenQnames::open(dir.path(), 100, false).unwrap();
            assert_eq!(s.check(&lower), Seen::New);
            assert_eq!(s.check(&"EXAMPLE.com.".to_ascii_lowercase()), Seen::Seen);
            s.persist().unwrap();
        }
        let s = SeenQnames::open(dir.path(), 100, false).unwrap();
        assert_eq!(s.check(&lower), Seen::Seen);
    }
}

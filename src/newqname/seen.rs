//! The seen-qname check (reference §8, decisions.md "Seen-qname store").
//!
//! Keys are lowercased question names in presentation format. A bounded
//! concurrent cache (`moka`, `qname-seen-entries`) answers repeated names
//! without touching the store. On a miss the persistent store is read; a name
//! found there is seen. Otherwise the cache's per-key atomic entry decides
//! which caller records the name: exactly one gets [`Seen::New`] and writes
//! it to the store, every concurrent caller gets [`Seen::Seen`]. No lock is
//! shared by all workers: the cache is sharded internally and the store
//! (`fjall`, an LSM tree) takes concurrent readers and writers.
//!
//! Why fjall: a maintained, pure-Rust embedded store built for write-heavy
//! workloads (every new name is an insert; nothing is ever updated), with
//! concurrent writers and an append-only journal, so recording a name does not
//! serialise workers behind a single-writer transaction as a B-tree store
//! (redb, sled's successor designs) would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

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
    cache: moka::sync::Cache<Box<str>, ()>,
    keyspace: fjall::Keyspace,
    names: fjall::PartitionHandle,
    sync: AtomicBool,
    counters: Arc<SeenCounters>,
}

impl std::fmt::Debug for SeenQnames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenQnames")
            .field("cached", &self.cache.entry_count())
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
            .open_partition("qnames", fjall::PartitionCreateOptions::default())
            .map_err(err)?;
        let counters = Arc::new(SeenCounters::default());
        let c = counters.clone();
        let cache = moka::sync::Cache::builder()
            .max_capacity(entries)
            .eviction_listener(move |_, _, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    c.evicted.fetch_add(1, Relaxed);
                }
            })
            .build();
        Ok(Self {
            cache,
            keyspace,
            names,
            sync: AtomicBool::new(sync),
            counters,
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
        if self.cache.contains_key(name) {
            return Seen::Seen;
        }
        match self.names.get(name) {
            Ok(Some(_)) => {
                self.cache.insert(name.into(), ());
                return Seen::Seen;
            }
            Ok(None) => {}
            // Reference: a lookup error counts as new (and is not recorded).
            Err(e) => {
                self.counters.store_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "seen-qname store lookup failed");
            }
        }
        let entry = self.cache.entry(name.into()).or_insert_with(|| ());
        if !entry.is_fresh() {
            return Seen::Seen;
        }
        if let Err(e) = self.names.insert(name, []) {
            self.counters.store_errors.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, "cannot record a new qname in the store");
        } else if self.sync.load(Relaxed) {
            if let Err(e) = self.keyspace.persist(fjall::PersistMode::SyncAll) {
                self.counters.store_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "cannot sync the seen-qname store");
            }
        }
        Seen::New
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
        let s = SeenQnames::open(dir.path(), 1, false).unwrap();
        assert_eq!(s.check("a."), Seen::New);
        assert_eq!(s.check("b."), Seen::New);
        s.cache.run_pending_tasks();
        assert!(s.counters().evicted.load(Relaxed) >= 1);
        assert_eq!(s.check("a."), Seen::Seen);
        assert_eq!(s.check("b."), Seen::Seen);
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
}

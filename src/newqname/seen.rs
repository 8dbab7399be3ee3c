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
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    sync: bool,
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
            sync,
            counters,
        })
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
        } else if self.sync {
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
}

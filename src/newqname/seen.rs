//! The seen-qname check (reference §8, decisions.md "Seen-qname store").
//!
//! Names are lowercased question names in presentation format, handled as
//! their 128-bit fingerprint ([`store::fingerprint`]). A bounded cache
//! (`qname-seen-entries` fingerprints in up to 64 shards, each behind its own
//! mutex; within a shard a set-associative LRU, 8 names per set) answers
//! repeated names without touching the store. On a miss the
//! persistent store ([`store::FpStore`], under `<data-dir>/seen`) is asked
//! with the name's cache shard still locked; a name found there is seen,
//! otherwise it is recorded in the cache and the store and is [`Seen::New`]. A
//! concurrent caller with the same name waits for that shard and then finds
//! the name cached, so exactly one caller reports it new. No lock is shared by
//! all workers (two workers meet only on the same shard). Each worker also
//! keeps a [`SeenFront`] set, so a repeated name usually touches no shared
//! state at all.
//!
//! Why an own store: the check needs one operation — "present? if not, add" —
//! at the rate of new names (hundreds of thousands per second). A general
//! LSM store (fjall, used before) spent ~4 µs per new name in memtable skip
//! lists and key comparisons; the fingerprint store answers a new name with a
//! hash-set probe and one Bloom probe per run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use super::store::{self, FpBuild, FpStore};
use crate::written_blocks::WrittenBlocks;

/// Cache shards: enough that workers rarely meet on one.
const SHARDS: usize = 64;

/// Ways per set of the cache.
const WAYS: usize = 8;

/// Sets per block of a shard's written-blocks bitmap (4 KiB).
const BLOCK_SETS: usize = 32;

/// The set of a shard with `sets` sets that `fp` belongs to.
fn set_index(fp: u128, sets: usize) -> usize {
    ((((fp >> 64) as u64) as u128 * sets as u128) >> 64) as usize
}

/// Where a shard's sets are (they never move): lets a worker fetch a name's
/// set into the CPU caches before it has the shard's lock.
#[derive(Debug, Clone, Copy)]
struct SetsPlace {
    base: usize,
    sets: usize,
}

impl SetsPlace {
    /// Start loading `fp`'s set (both of its lines).
    fn prefetch(&self, fp: u128) {
        let set = (self.base as *const [u128; WAYS]).wrapping_add(set_index(fp.max(1), self.sets));
        crate::mem_hints::prefetch(set);
        crate::mem_hints::prefetch(set.cast::<u8>().wrapping_add(64));
    }
}

/// A shard and its lock on cache lines of their own, so a worker locking
/// one shard does not take the line of its neighbour from the other worker.
#[repr(align(128))]
struct PaddedShard(Mutex<Shard>);

/// One shard of the cache: a set-associative LRU of fingerprints (at most
/// [`WAYS`] per set, least recently used evicted within the set). One
/// allocation, no pointers: a lookup reads one 128-byte set. Allocated
/// zeroed and committed as it is used; a set is read only in a block
/// already written ([`WrittenBlocks`]).
struct Shard {
    /// Keys of each set, most recently used first; 0 = empty.
    sets: Box<[[u128; WAYS]]>,
    ways: usize,
    written: WrittenBlocks,
}

impl Shard {
    /// At most `cap` names (at least 1; at most 7 fewer than `cap`).
    fn new(cap: usize) -> Self {
        let ways = cap.clamp(1, WAYS);
        let sets = (cap / ways).max(1);
        Self {
            sets: vec![[0; WAYS]; sets].into_boxed_slice(),
            ways,
            written: WrittenBlocks::new(sets, BLOCK_SETS),
        }
    }

    fn index(&self, fp: u128) -> usize {
        set_index(fp, self.sets.len())
    }

    /// Where its sets are, for prefetching without the lock.
    fn place(&self) -> SetsPlace {
        SetsPlace {
            base: self.sets.as_ptr() as usize,
            sets: self.sets.len(),
        }
    }

    /// The set of `fp`, for writing: its block is zeroed first if unwritten.
    fn set(&mut self, fp: u128) -> &mut [u128] {
        let i = self.index(fp);
        self.written.prepare(&mut self.sets, i, [0; WAYS]);
        &mut self.sets[i][..self.ways]
    }

    /// Is `fp` cached? A hit becomes the most recently used of its set.
    fn get(&mut self, fp: u128) -> bool {
        let key = fp.max(1);
        if !self.written.is_written(self.index(key)) {
            return false;
        }
        let set = self.set(key);
        match set.iter().position(|&k| k == key) {
            Some(i) => {
                set[..=i].rotate_right(1);
                true
            }
            None => false,
        }
    }

    /// Cache `fp` (not cached) as the most recently used; true when another
    /// name was evicted.
    fn push(&mut self, fp: u128) -> bool {
        let set = self.set(fp.max(1));
        let evicted = set[set.len() - 1] != 0;
        set.rotate_right(1);
        set[0] = fp.max(1);
        evicted
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
pub enum OpenError {
    /// The store itself.
    #[error("cannot open the seen-qname store: {0}")]
    Store(#[from] store::StoreError),
    /// A store left by an earlier version could not be imported.
    #[error("cannot import the earlier seen-qname store {path}")]
    Import {
        /// Its directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: fjall::Error,
    },
}

/// Counters of the seen check (exported by the metrics module).
#[derive(Debug, Default)]
pub struct SeenCounters {
    /// Cache evictions (`edm_seen_qname_lru_evicted_total`).
    pub evicted: AtomicU64,
    /// Store read or write errors.
    pub store_errors: Arc<AtomicU64>,
}

/// Check-and-record of question names.
pub struct SeenQnames {
    shards: Box<[PaddedShard]>,
    /// Where each shard's sets are.
    places: Box<[SetsPlace]>,
    store: FpStore,
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
            .field("store", &self.store)
            .finish()
    }
}

impl SeenQnames {
    /// Open (or create) the store in `dir`, with a cache of `entries` names.
    /// `sync` fsyncs every recorded name (`pebble-sync`).
    ///
    /// # Errors
    /// [`OpenError`] naming the file or directory.
    pub fn open(
        dir: &Path,
        entries: u64,
        sync: bool,
        index_bytes: usize,
    ) -> Result<Self, OpenError> {
        let counters = Arc::new(SeenCounters::default());
        let store = FpStore::open(dir, counters.store_errors.clone(), index_bytes)?;
        // Small caches get fewer shards, so the bound is exact (an LRU of 1
        // holds one name, as in the reference).
        let n = usize::try_from(entries)
            .unwrap_or(usize::MAX)
            .clamp(1, SHARDS);
        let per_shard = usize::try_from(entries)
            .unwrap_or(usize::MAX)
            .div_ceil(n)
            .max(1);
        let shards: Box<[PaddedShard]> = (0..n)
            .map(|_| PaddedShard(Mutex::new(Shard::new(per_shard))))
            .collect();
        let places = shards
            .iter()
            .map(|s| {
                s.0.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .place()
            })
            .collect();
        Ok(Self {
            shards,
            places,
            store,
            sync: AtomicBool::new(sync),
            counters,
            last_error_log: AtomicU64::new(0),
            #[cfg(test)]
            fail: FailPoints::default(),
        })
    }

    /// Import the names of a store written by an earlier edm version (a
    /// `fjall` keyspace, partition `qnames`) and delete it, so an upgrade
    /// reports no name twice. Returns the number of names imported.
    ///
    /// # Errors
    /// [`OpenError::Import`]; the old store is then left in place.
    pub fn import_fjall(&self, old: &Path) -> Result<u64, OpenError> {
        let err = |source| OpenError::Import {
            path: old.to_path_buf(),
            source,
        };
        let n = {
            let keyspace = fjall::Config::new(old).open().map_err(err)?;
            let names = keyspace
                .open_partition("qnames", fjall::PartitionCreateOptions::default())
                .map_err(err)?;
            let mut n = 0;
            for kv in names.keys() {
                let key = kv.map_err(err)?;
                self.store
                    .insert(store::fingerprint(&key), false)
                    .map_err(|e| err(fjall::Error::Io(e)))?;
                n += 1;
            }
            // Durable before the old store goes: logs, and runs cut meanwhile.
            self.store
                .sync_all()
                .map_err(|e| err(fjall::Error::Io(e)))?;
            n
        };
        std::fs::remove_dir_all(old).map_err(|e| err(fjall::Error::Io(e)))?;
        Ok(n)
    }

    /// Fsync every recorded name from now on (`pebble-sync`, reloadable).
    pub fn set_sync(&self, sync: bool) {
        self.sync.store(sync, Relaxed);
    }

    /// The persistent store behind the caches.
    pub fn store(&self) -> &FpStore {
        &self.store
    }

    /// The check's counters (shared with metrics).
    pub fn counters(&self) -> Arc<SeenCounters> {
        self.counters.clone()
    }

    /// Check `name` (already lowercased) and record it if new.
    pub fn check(&self, name: &str) -> Seen {
        self.check_fp(store::fingerprint(name.as_bytes()))
    }

    /// Check a name by its fingerprint and record it if new.
    pub fn check_fp(&self, fp: u128) -> Seen {
        let mut cache = self.lock_shard(self.shard_of(fp));
        self.check_locked(&mut cache, fp)
    }

    fn shard_of(&self, fp: u128) -> usize {
        (fp as u64 % self.shards.len() as u64) as usize
    }

    fn lock_shard(&self, shard: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[shard]
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Check every name of `batch` and record the new ones; the answers are
    /// then in [`CheckBatch::answers`], in the order the names were pushed.
    ///
    /// The same as calling [`SeenQnames::check_fp`] for each name in turn,
    /// with the same answers, but cheaper: the names are taken shard by
    /// shard, each shard locked once for all of its names, and each name's
    /// cache set is fetched from memory while the names before it are
    /// checked. Names of one shard are checked in the order they were pushed,
    /// so of two equal names the first is the new one.
    pub fn check_batch(&self, batch: &mut CheckBatch) {
        let CheckBatch {
            fps,
            order,
            busy,
            answers,
        } = batch;
        answers.clear();
        answers.resize(fps.len(), Seen::Seen);
        // (shard, position) in one word: sorting the words groups the names
        // by shard and keeps their order within each. Each name's cache set,
        // and its slot in the store (where a name the cache does not hold
        // goes on), load while the batch is sorted and the names before it
        // are checked.
        order.clear();
        order.extend(fps.iter().enumerate().map(|(i, &fp)| {
            let shard = self.shard_of(fp);
            self.places[shard].prefetch(fp);
            self.store.prefetch(fp);
            ((shard as u64) << 32) | i as u64
        }));
        order.sort_unstable();
        // A shard another worker holds is left for the end, so two workers
        // going through their batches in the same shard order do not queue
        // behind each other shard after shard.
        busy.clear();
        let mut at = 0;
        while let Some(&first) = order.get(at) {
            let shard = (first >> 32) as usize;
            let len = order[at..].partition_point(|&k| (k >> 32) as usize == shard);
            let group = &order[at..at + len];
            match self.shards[shard].0.try_lock() {
                Ok(mut cache) => self.check_group(&mut cache, group, fps, answers),
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    self.check_group(&mut p.into_inner(), group, fps, answers);
                }
                Err(std::sync::TryLockError::WouldBlock) => busy.push(at..at + len),
            }
            at += len;
        }
        for range in busy.iter() {
            let group = &order[range.clone()];
            if let Some(&first) = group.first() {
                let mut cache = self.lock_shard((first >> 32) as usize);
                self.check_group(&mut cache, group, fps, answers);
            }
        }
    }

    /// Check one shard's names of a batch, the shard locked by the caller.
    fn check_group(&self, cache: &mut Shard, group: &[u64], fps: &[u128], answers: &mut [Seen]) {
        for &k in group {
            let i = (k & 0xffff_ffff) as usize;
            answers[i] = self.check_locked(cache, fps[i]);
        }
    }

    /// [`SeenQnames::check_fp`] with `fp`'s shard locked by the caller.
    fn check_locked(&self, cache: &mut Shard, fp: u128) -> Seen {
        if cache.get(fp) {
            return Seen::Seen;
        }
        // The shard stays locked until the name is recorded: a concurrent
        // caller with the same name waits here and then finds it cached.
        // Other names (other shards) are not held up.
        // Reference §8: the name enters the cache before the store is asked.
        if cache.push(fp) {
            self.counters.evicted.fetch_add(1, Relaxed);
        }
        match self.lookup_or_record(fp) {
            Ok(true) => Seen::Seen,
            Ok(false) => Seen::New,
            // Reference: a lookup error counts as new and is not recorded.
            Err(store::CheckError::Lookup(e)) => {
                self.store_error("seen-qname store lookup failed", &e);
                Seen::New
            }
            // Reference: an insert error is only logged; the name is still new.
            Err(store::CheckError::Record(e)) => {
                self.store_error("cannot record a new qname in the store", &e);
                Seen::New
            }
        }
    }

    /// The store's answer, and the name recorded if it was absent (one lock).
    fn lookup_or_record(&self, fp: u128) -> Result<bool, store::CheckError> {
        #[cfg(test)]
        {
            let injected = || std::io::Error::other("injected");
            if self.fail.lookup.load(Relaxed) {
                return Err(store::CheckError::Lookup(injected()));
            }
            if self.fail.insert.load(Relaxed) {
                return match self.store.contains(fp) {
                    Ok(true) => Ok(true),
                    Ok(false) => Err(store::CheckError::Record(injected())),
                    Err(e) => Err(store::CheckError::Lookup(e)),
                };
            }
        }
        self.store.contains_or_insert(fp, self.sync.load(Relaxed))
    }

    /// Count a store error; log it at most once per 10 s (a failing disk
    /// would otherwise log once per frame).
    fn store_error(&self, what: &str, e: &std::io::Error) {
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
    /// batch in which it recorded names, before its rows and events go on),
    /// so a crash of the process loses none of them; `pebble-sync`
    /// additionally fsyncs each one.
    pub fn flush_batch(&self) {
        if let Err(e) = self.store.flush(false) {
            self.store_error("cannot write the seen-qname log", &e);
        }
    }

    /// Write and fsync the store's logs and stop its background thread (at
    /// shutdown).
    ///
    /// # Errors
    /// The store's error.
    pub fn persist(&self) -> std::io::Result<()> {
        self.store.close()
    }
}

/// Names checked together by [`SeenQnames::check_batch`] (a worker's batch
/// of frames), with the buffers reused from batch to batch.
#[derive(Debug, Default)]
pub struct CheckBatch {
    fps: Vec<u128>,
    /// (shard << 32 | position) of each name, sorted.
    order: Vec<u64>,
    /// Ranges of `order` whose shard was busy at the first try.
    busy: Vec<std::ops::Range<usize>>,
    answers: Vec<Seen>,
}

impl CheckBatch {
    /// Add a name by its fingerprint; its answer will be at this position.
    pub fn push(&mut self, fp: u128) {
        self.fps.push(fp);
    }

    /// Names pushed since the last clear.
    pub fn len(&self) -> usize {
        self.fps.len()
    }

    /// Whether no name was pushed since the last clear.
    pub fn is_empty(&self) -> bool {
        self.fps.is_empty()
    }

    /// Each name pushed, with its answer from the last
    /// [`SeenQnames::check_batch`].
    pub fn answers(&self) -> impl Iterator<Item = (u128, Seen)> + '_ {
        self.fps.iter().copied().zip(self.answers.iter().copied())
    }

    /// Forget the names (the buffers are kept).
    pub fn clear(&mut self) {
        self.fps.clear();
        self.answers.clear();
    }
}

/// A worker's own memory of names it knows are seen, in front of the shared
/// [`SeenQnames`]: a repeated name costs one hash lookup, no shared state
/// touched. Names only ever go from new to seen, so a name that passed the
/// shared check once is seen for good and this set can never be wrong; it only
/// saves work. It takes a name when the shared check answers seen (a name's
/// second sighting), not at its first: new names do not crowd out the
/// repeated ones. Bounded: two generations of at most `cap` names each; when the
/// current one is full it becomes the old one (names in use move back), so
/// memory stays at most `2 × cap` names.
#[derive(Debug)]
pub struct SeenFront {
    current: std::collections::HashSet<u128, FpBuild>,
    old: std::collections::HashSet<u128, FpBuild>,
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
        self.check_fp(shared, store::fingerprint(name.as_bytes()))
    }

    /// Check a name by its fingerprint: the front set first, then `shared`.
    pub fn check_fp(&mut self, shared: &SeenQnames, fp: u128) -> Seen {
        if self.knows(fp) {
            return Seen::Seen;
        }
        let answer = shared.check_fp(fp);
        self.learn(fp, answer);
        answer
    }

    /// Whether the set knows `fp` as seen (then the shared check is not
    /// needed); touches nothing shared.
    pub fn knows(&mut self, fp: u128) -> bool {
        if self.current.contains(&fp) {
            return true;
        }
        if self.old.remove(&fp) {
            self.remember(fp);
            return true;
        }
        false
    }

    /// Take the shared check's answer for a name the set did not know.
    pub fn learn(&mut self, fp: u128, answer: Seen) {
        // Only a name met again is remembered: a name seen once (most new
        // names are never asked for again) would push the repeated ones out.
        if answer == Seen::Seen {
            self.remember(fp);
        }
    }

    fn remember(&mut self, fp: u128) {
        if self.current.len() >= self.cap {
            // The old generation's table is reused (cleared, capacity kept):
            // no allocation, no regrowing by doubling, no memory handed back
            // to the OS and faulted in again at every turn.
            std::mem::swap(&mut self.old, &mut self.current);
            self.current.clear();
        }
        self.current.insert(fp);
    }
}

#[cfg(test)]
mod tests {
    use super::store::DEFAULT_FILTER_BYTES;
    use super::*;

    #[test]
    fn new_then_seen_and_persisted_across_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SeenQnames::open(dir.path(), 100, false, DEFAULT_FILTER_BYTES).unwrap();
            assert_eq!(s.check("example.com."), Seen::New);
            assert_eq!(s.check("example.com."), Seen::Seen);
            s.persist().unwrap();
        }
        // A fresh cache: the store still knows the name.
        let s = SeenQnames::open(dir.path(), 100, false, DEFAULT_FILTER_BYTES).unwrap();
        assert_eq!(s.check("example.com."), Seen::Seen);
        assert_eq!(s.check("other.example."), Seen::New);
    }

    #[test]
    fn sixty_four_concurrent_callers_one_new() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeenQnames::open(dir.path(), 1000, false, DEFAULT_FILTER_BYTES).unwrap();
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
    fn batch_answers_as_one_by_one() {
        // Two stores fed the same names, one name at a time and in batches
        // (duplicates inside a batch, names already seen, names evicted from
        // a small cache), give the same answers and the same evictions.
        for entries in [1, 100, 100_000] {
            let one = tempfile::tempdir().unwrap();
            let many = tempfile::tempdir().unwrap();
            let a = SeenQnames::open(one.path(), entries, false, DEFAULT_FILTER_BYTES).unwrap();
            let b = SeenQnames::open(many.path(), entries, false, DEFAULT_FILTER_BYTES).unwrap();
            let mut batch = CheckBatch::default();
            let mut news = 0;
            for round in 0..20u64 {
                let names: Vec<String> = (0..300u64)
                    .map(|i| format!("n{}.example.", (i * 7 + round * 101) % 997))
                    .collect();
                batch.clear();
                for n in &names {
                    batch.push(store::fingerprint(n.as_bytes()));
                }
                b.check_batch(&mut batch);
                assert_eq!(batch.len(), names.len());
                for (n, (fp, answer)) in names.iter().zip(batch.answers()) {
                    assert_eq!(fp, store::fingerprint(n.as_bytes()));
                    assert_eq!(
                        answer,
                        a.check(n),
                        "{n} in round {round}, {entries} entries"
                    );
                    news += usize::from(answer == Seen::New);
                }
            }
            assert_eq!(news, 997, "each name new exactly once");
            assert_eq!(
                a.counters().evicted.load(Relaxed),
                b.counters().evicted.load(Relaxed)
            );
        }
    }

    #[test]
    fn concurrent_batches_report_each_name_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeenQnames::open(dir.path(), 10_000, false, DEFAULT_FILTER_BYTES).unwrap();
        let news = AtomicU64::new(0);
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let (s, news, barrier) = (&s, &news, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let mut batch = CheckBatch::default();
                    for round in 0..50u64 {
                        batch.clear();
                        // Thread 0 asks for each of names 0..10_000 once, the
                        // others for some of the same names in other orders.
                        for i in 0..200u64 {
                            let n = (i * (2 * t + 1) + round * 200) % 10_000;
                            batch.push(store::fingerprint(format!("c{n}.").as_bytes()));
                        }
                        s.check_batch(&mut batch);
                        let new = batch.answers().filter(|&(_, a)| a == Seen::New).count();
                        news.fetch_add(new as u64, Relaxed);
                    }
                });
            }
        });
        // Each of the 10_000 names is new exactly once.
        assert_eq!(news.load(Relaxed), 10_000);
    }

    #[test]
    fn small_cache_evicts_and_store_still_answers() {
        let dir = tempfile::tempdir().unwrap();
        // One name per shard at most: 200 names must evict.
        let s = SeenQnames::open(dir.path(), 1, false, DEFAULT_FILTER_BYTES).unwrap();
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
        let s = SeenQnames::open(dir.path(), 1000, false, DEFAULT_FILTER_BYTES).unwrap();
        let mut f = SeenFront::new(4);
        let mut g = SeenFront::new(4);
        let a = store::fingerprint(b"a.");
        assert_eq!(f.check(&s, "a."), Seen::New);
        // A name met once is not taken into the front set...
        assert!(!f.current.contains(&a) && !f.old.contains(&a));
        assert_eq!(f.check(&s, "a."), Seen::Seen);
        // ...a name met again is.
        assert!(f.current.contains(&a));
        assert_eq!(f.check(&s, "a."), Seen::Seen);
        // Another worker learns it from the shared check.
        assert_eq!(g.check(&s, "a."), Seen::Seen);
        assert!(g.current.contains(&a));
        for i in 0..100 {
            let n = format!("n{i}.");
            assert_eq!(f.check(&s, &n), Seen::New, "{n}");
            assert_eq!(g.check(&s, &n), Seen::Seen, "{n}");
            assert_eq!(f.check(&s, &n), Seen::Seen, "{n}");
            assert!(f.current.len() + f.old.len() <= 8);
            assert!(g.current.len() + g.old.len() <= 8);
        }
        // Evicted from the front set: the shared check still answers.
        assert_eq!(f.check(&s, "a."), Seen::Seen);
    }

    #[test]
    fn sixty_four_workers_with_front_sets_one_new() {
        let dir = tempfile::tempdir().unwrap();
        let s = SeenQnames::open(dir.path(), 1000, false, DEFAULT_FILTER_BYTES).unwrap();
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
        let s = SeenQnames::open(dir.path(), 1, false, DEFAULT_FILTER_BYTES).unwrap();
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
            let s = SeenQnames::open(dir.path(), 100, false, DEFAULT_FILTER_BYTES).unwrap();
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
        let s = SeenQnames::open(dir.path(), 100, false, DEFAULT_FILTER_BYTES).unwrap();
        assert_eq!(s.check("lookup-fails."), Seen::New);
        assert_eq!(s.check("insert-fails."), Seen::New);
        assert_eq!(s.check("stored."), Seen::Seen);
    }

    #[test]
    fn earlier_fjall_store_is_imported_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let old = root.path().join("seen-qnames");
        {
            let ks = fjall::Config::new(&old).open().unwrap();
            let p = ks
                .open_partition("qnames", fjall::PartitionCreateOptions::default())
                .unwrap();
            p.insert("old.example.", []).unwrap();
            p.insert("older.example.", []).unwrap();
            ks.persist(fjall::PersistMode::SyncAll).unwrap();
        }
        let s =
            SeenQnames::open(&root.path().join("seen"), 100, false, DEFAULT_FILTER_BYTES).unwrap();
        assert_eq!(s.import_fjall(&old).unwrap(), 2);
        assert!(!old.exists());
        assert_eq!(s.check("old.example."), Seen::Seen);
        assert_eq!(s.check("older.example."), Seen::Seen);
        assert_eq!(s.check("new.example."), Seen::New);
    }

    #[test]
    fn shard_reads_no_block_before_writing_it() {
        let mut s = Shard::new(100_000);
        let fps: Vec<u128> = (1..5_000u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        assert!(fps.iter().all(|&f| !s.get(f)));
        assert!(s.written.bits().iter().all(|&w| w == 0));
        for &f in &fps[..100] {
            s.push(f);
        }
        assert!(fps[..100].iter().all(|&f| s.get(f)));
        assert!(fps[100..].iter().all(|&f| !s.get(f)));
    }

    #[test]
    fn cache_set_evicts_its_least_recently_used_name() {
        let mut c = Shard::new(WAYS);
        assert_eq!(c.sets.len(), 1);
        let fp = |i: u128| (i << 64) | i;
        for i in 1..=8 {
            assert!(!c.push(fp(i)), "room for {i}");
        }
        assert!(c.get(fp(1)), "1 is now the most recent");
        assert!(c.push(fp(9)), "a full set evicts");
        assert!(!c.get(fp(2)), "2 was the least recently used");
        assert!(c.get(fp(1)) && c.get(fp(9)) && c.get(fp(8)));
        // The bound never exceeds the configured size.
        for cap in [1, 7, 8, 20, 1000] {
            let c = Shard::new(cap);
            assert!(
                c.sets.len() * c.ways <= cap && c.sets.len() * c.ways + WAYS > cap,
                "{cap}"
            );
        }
        // Fingerprint 0 is a valid key, not the empty slot.
        let mut c = Shard::new(1);
        assert!(!c.get(0));
        c.push(0);
        assert!(c.get(0));
    }

    #[test]
    fn mixed_case_is_one_name_once_lowercased() {
        // The worker lowercases before the check (reference §8); the scenario
        // `Example.COM.` → new, then seen, and seen again with a fresh cache.
        let dir = tempfile::tempdir().unwrap();
        let lower = "Example.COM.".to_ascii_lowercase();
        {
            let s = SeenQnames::open(dir.path(), 100, false, DEFAULT_FILTER_BYTES).unwrap();
            assert_eq!(s.check(&lower), Seen::New);
            assert_eq!(s.check(&"EXAMPLE.com.".to_ascii_lowercase()), Seen::Seen);
            s.persist().unwrap();
        }
        let s = SeenQnames::open(dir.path(), 100, false, DEFAULT_FILTER_BYTES).unwrap();
        assert_eq!(s.check(&lower), Seen::Seen);
    }
}

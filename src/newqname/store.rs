//! The persistent set behind the seen-qname check: every name this instance
//! has recorded, as a 128-bit fingerprint (XXH3-128 of the lowercased name),
//! under `<data-dir>/seen`.
//!
//! A small log-structured set, built for the one thing the check does — "is
//! this fingerprint there? if not, add it" — at the rate of new names:
//!
//! - **16 shards** by the fingerprint's top bits, each behind its own mutex,
//!   in its own directory `shard-NN`, so workers meet only on the same shard.
//! - **Active set**: an in-memory hash set of the shard's latest fingerprints
//!   plus a write-ahead log (`<seq>.wal`, 16 bytes per name, appended once per
//!   worker batch, or per name with `pebble-sync`). At 65,536 names it is
//!   sorted into a run file and a new log is started.
//! - **Runs** (`<seq>-L<level>.run`): sorted fingerprints with a checksum,
//!   read with `pread`; in memory each run keeps a blocked Bloom filter
//!   (~10 bits per name, < 1 % false positives) and one fence key per 4 KiB
//!   block, so a new name costs a hash-set probe plus one Bloom probe per run,
//!   and a stored name one 4 KiB read at most.
//! - A **background thread** (`edm-seen-store`) fsyncs new runs before it
//!   deletes their logs, and merges runs (4 of a level into one of the next),
//!   so a shard holds O(log n) runs. Lookups never wait for it.
//!
//! Crash safety: a name is in a log before its batch is handed on; a log is
//! deleted only after its run is on disk (fsync'd); a merged run is fsync'd
//! and renamed into place before its inputs are deleted. At startup leftover
//! logs become runs, temporary files are removed, and a run that fails its
//! checksum is set aside (`.corrupt`) with a warning — the store stays usable
//! and those names are reported new once more. Duplicates across runs (after
//! a crash between steps) are harmless and vanish in the next merge.
//!
//! Two different names share a fingerprint with probability ~2⁻¹²⁸ per pair:
//! one in 10¹⁹ after a billion names.

use std::collections::BinaryHeap;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::fp_table::{FpTable, SharedHint};

/// Shards (a power of two; the fingerprint's top bits pick one).
pub const SHARDS: usize = 16;
/// Names in a shard's active set before it becomes a run.
const ACTIVE_MAX: usize = 1 << 16;
/// Runs of one level merged into one run of the next.
const FANOUT: usize = 4;
/// Fingerprints per fence block (4 KiB).
const BLOCK: usize = 256;
/// Run files start with this.
const MAGIC: &[u8; 8] = b"EDMSEEN1";
/// Default memory for the runs' Bloom filters (`qname-seen-index-mb`): about
/// 50 million names at ~1.25 bytes each.
pub const DEFAULT_FILTER_BYTES: usize = 64 << 20;
/// Bloom probes per key (9 bits of the fingerprint each).
const PROBES: u32 = 6;

/// The fingerprint of a (lowercased) name.
pub fn fingerprint(name: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(name)
}

/// A hasher for fingerprints, which are already uniformly random.
#[derive(Debug, Default, Clone, Copy)]
pub struct FpHasher(u64);

impl Hasher for FpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

/// `BuildHasher` for fingerprint keys.
pub type FpBuild = BuildHasherDefault<FpHasher>;

/// Which step of [`FpStore::contains_or_insert`] failed.
#[derive(Debug)]
pub enum CheckError {
    /// The lookup (nothing was recorded).
    Lookup(io::Error),
    /// Recording the absent name.
    Record(io::Error),
}

/// The store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}")]
pub struct StoreError {
    /// What failed.
    pub what: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

fn ctx<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A blocked Bloom filter: one 512-bit block per key.
struct Bloom {
    blocks: Vec<[u64; 8]>,
}

impl Bloom {
    /// Bytes of a filter for `n` keys.
    fn bytes_for(n: usize) -> usize {
        (n.max(1) * 10).div_ceil(512) * 64
    }

    fn with_keys(n: usize) -> Self {
        Self {
            blocks: vec![[0; 8]; Self::bytes_for(n) / 64],
        }
    }

    /// Bytes this filter holds.
    fn bytes(&self) -> usize {
        self.blocks.len() * 64
    }

    fn locate(&self, fp: u128) -> (usize, u64) {
        let block = ((u128::from(fp as u64) * self.blocks.len() as u128) >> 64) as usize;
        (block, (fp >> 64) as u64)
    }

    fn insert(&mut self, fp: u128) {
        let (b, mut h) = self.locate(fp);
        for _ in 0..PROBES {
            let bit = (h & 511) as usize;
            self.blocks[b][bit >> 6] |= 1 << (bit & 63);
            h >>= 9;
        }
    }

    fn may_contain(&self, fp: u128) -> bool {
        let (b, mut h) = self.locate(fp);
        let block = &self.blocks[b];
        for _ in 0..PROBES {
            let bit = (h & 511) as usize;
            if block[bit >> 6] & (1 << (bit & 63)) == 0 {
                return false;
            }
            h >>= 9;
        }
        true
    }
}

/// The memory all runs' Bloom filters may take together. A run whose filter
/// does not fit gets none: a lookup in it reads its fence block from disk
/// (one `pread`, usually from the page cache) instead, so memory stays bounded
/// however many names the store holds and only lookups in the oldest, largest
/// runs get slower. Each shard gets an equal part (`FilterBudget::split`),
/// so no shard starves the others; within a shard small new runs get filters
/// first, because merging frees the filters of its inputs, and at startup
/// runs are loaded from the lowest level up.
#[derive(Debug)]
pub struct FilterBudget {
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
    /// Runs without a filter, now.
    unfiltered: std::sync::atomic::AtomicUsize,
    /// The whole store's budget, which a shard's part also counts in.
    parent: Option<Arc<FilterBudget>>,
}

impl FilterBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: 0.into(),
            unfiltered: 0.into(),
            parent: None,
        })
    }

    /// `parts` equal parts of this budget, each counted in it too.
    fn split(self: &Arc<Self>, parts: usize) -> Vec<Arc<Self>> {
        (0..parts)
            .map(|_| {
                Arc::new(Self {
                    limit: self.limit / parts.max(1),
                    used: 0.into(),
                    unfiltered: 0.into(),
                    parent: Some(self.clone()),
                })
            })
            .collect()
    }

    /// Take `bytes` if they fit.
    fn reserve(&self, bytes: usize) -> bool {
        let ok = self
            .used
            .fetch_update(Relaxed, Relaxed, |u| {
                u.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .is_ok();
        if ok && let Some(p) = &self.parent {
            p.used.fetch_add(bytes, Relaxed);
        }
        ok
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Relaxed);
        if let Some(p) = &self.parent {
            p.used.fetch_sub(bytes, Relaxed);
        }
    }

    fn count_unfiltered(&self, up: bool) {
        for b in std::iter::once(self).chain(self.parent.as_deref()) {
            if up {
                b.unfiltered.fetch_add(1, Relaxed);
            } else {
                b.unfiltered.fetch_sub(1, Relaxed);
            }
        }
    }

    /// Bytes of filters held now.
    pub fn used(&self) -> usize {
        self.used.load(Relaxed)
    }

    /// Runs held now without a filter.
    pub fn unfiltered(&self) -> usize {
        self.unfiltered.load(Relaxed)
    }
}

/// A run's Bloom filter, or none when the [`FilterBudget`] had no room;
/// its bytes go back to the budget when it is dropped.
struct Filter {
    bloom: Option<Bloom>,
    budget: Arc<FilterBudget>,
}

impl Filter {
    fn new(expected: usize, budget: &Arc<FilterBudget>) -> Self {
        let bloom = if budget.reserve(Bloom::bytes_for(expected)) {
            Some(Bloom::with_keys(expected))
        } else {
            budget.count_unfiltered(true);
            None
        };
        Self {
            bloom,
            budget: budget.clone(),
        }
    }

    fn insert(&mut self, fp: u128) {
        if let Some(b) = &mut self.bloom {
            b.insert(fp);
        }
    }

    /// False only if `fp` is certainly not in the run.
    fn may_contain(&self, fp: u128) -> bool {
        self.bloom.as_ref().is_none_or(|b| b.may_contain(fp))
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        match &self.bloom {
            Some(b) => self.budget.release(b.bytes()),
            None => self.budget.count_unfiltered(false),
        }
    }
}

/// One sorted run file.
struct Run {
    path: PathBuf,
    file: File,
    seq: u64,
    level: u32,
    len: usize,
    filter: Filter,
    /// The first key of every block of [`BLOCK`] keys.
    fences: Vec<u128>,
}

/// Builds a run's in-memory index while its keys stream past.
struct Index {
    filter: Filter,
    fences: Vec<u128>,
    len: usize,
    hash: xxhash_rust::xxh3::Xxh3,
}

impl Index {
    /// An index for about `expected` keys, with a filter if `budget` has room.
    fn new(expected: usize, budget: &Arc<FilterBudget>) -> Self {
        Self {
            filter: Filter::new(expected, budget),
            fences: Vec::with_capacity(expected.div_ceil(BLOCK)),
            len: 0,
            hash: xxhash_rust::xxh3::Xxh3::new(),
        }
    }

    fn add(&mut self, fp: u128) -> [u8; 16] {
        if self.len.is_multiple_of(BLOCK) {
            self.fences.push(fp);
        }
        self.filter.insert(fp);
        self.len += 1;
        let b = fp.to_le_bytes();
        self.hash.update(&b);
        b
    }
}

fn run_name(seq: u64, level: u32) -> String {
    format!("{seq:016x}-L{level}.run")
}

fn wal_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

impl Run {
    fn contains(&self, fp: u128) -> io::Result<bool> {
        if !self.filter.may_contain(fp) {
            return Ok(false);
        }
        let b = self.fences.partition_point(|&f| f <= fp);
        if b == 0 {
            return Ok(false);
        }
        let start = (b - 1) * BLOCK;
        let n = BLOCK.min(self.len - start);
        let mut buf = [0u8; BLOCK * 16];
        let bytes = &mut buf[..n * 16];
        self.file
            .read_exact_at(bytes, (MAGIC.len() + start * 16) as u64)?;
        let key = |i: usize| {
            let mut k = [0u8; 16];
            k.copy_from_slice(&bytes[i * 16..i * 16 + 16]);
            u128::from_le_bytes(k)
        };
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match key(mid).cmp(&fp) {
                std::cmp::Ordering::Equal => return Ok(true),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(false)
    }

    /// Write strictly increasing `keys` (about `expected` of them) as a run;
    /// `sync` fsyncs it before it is renamed into place.
    fn write(
        dir: &Path,
        seq: u64,
        level: u32,
        expected: usize,
        keys: impl Iterator<Item = io::Result<u128>>,
        sync: bool,
        budget: &Arc<FilterBudget>,
    ) -> io::Result<Self> {
        let path = dir.join(run_name(seq, level));
        let tmp = path.with_extension("run.tmp");
        let result = (|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            w.write_all(MAGIC)?;
            let mut index = Index::new(expected, budget);
            for k in keys {
                w.write_all(&index.add(k?))?;
            }
            w.write_all(&(index.len as u64).to_le_bytes())?;
            w.write_all(&index.hash.digest().to_le_bytes())?;
            let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
            if sync {
                file.sync_all()?;
            }
            fs::rename(&tmp, &path)?;
            Ok(Self {
                path: path.clone(),
                file,
                seq,
                level,
                len: index.len,
                filter: index.filter,
                fences: index.fences,
            })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Load a run, checking its order and checksum.
    fn load(path: &Path, seq: u64, level: u32, budget: &Arc<FilterBudget>) -> io::Result<Self> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
        let body = size
            .checked_sub(MAGIC.len() as u64 + 16)
            .filter(|b| b % 16 == 0)
            .ok_or_else(|| bad("truncated run file"))?;
        let n = usize::try_from(body / 16).map_err(|_| bad("run file too large"))?;
        let mut r = BufReader::with_capacity(1 << 20, &file);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(bad("not a seen-store run file"));
        }
        let mut index = Index::new(n, budget);
        let mut last = None;
        let mut k = [0u8; 16];
        for _ in 0..n {
            r.read_exact(&mut k)?;
            let fp = u128::from_le_bytes(k);
            if last.is_some_and(|l| l >= fp) {
                return Err(bad("run file out of order"));
            }
            last = Some(fp);
            index.add(fp);
        }
        let mut footer = [0u8; 16];
        r.read_exact(&mut footer)?;
        let count = u64::from_le_bytes(footer[..8].try_into().unwrap_or_default());
        let sum = u64::from_le_bytes(footer[8..].try_into().unwrap_or_default());
        if count != n as u64 || sum != index.hash.digest() {
            return Err(bad("run file checksum mismatch"));
        }
        drop(r);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            seq,
            level,
            len: n,
            filter: index.filter,
            fences: index.fences,
        })
    }

    /// Stream the keys (for merging).
    fn reader(self: &Arc<Self>) -> RunReader {
        RunReader {
            run: self.clone(),
            next: 0,
            buf: Vec::new(),
            at: 0,
        }
    }
}

/// Sequential reader of a run's keys.
struct RunReader {
    run: Arc<Run>,
    next: usize,
    buf: Vec<u8>,
    at: usize,
}

impl RunReader {
    fn next_key(&mut self) -> io::Result<Option<u128>> {
        if self.at == self.buf.len() {
            let n = (self.run.len - self.next).min(4096);
            if n == 0 {
                return Ok(None);
            }
            self.buf.resize(n * 16, 0);
            self.run
                .file
                .read_exact_at(&mut self.buf, (MAGIC.len() + self.next * 16) as u64)?;
            self.next += n;
            self.at = 0;
        }
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.buf[self.at..self.at + 16]);
        self.at += 16;
        Ok(Some(u128::from_le_bytes(k)))
    }
}

/// Merge sorted runs into one strictly increasing stream.
fn merged(runs: &[Arc<Run>]) -> impl Iterator<Item = io::Result<u128>> {
    let mut readers: Vec<RunReader> = runs.iter().map(Run::reader).collect();
    let mut heap = BinaryHeap::new();
    let mut failed = None;
    for (i, r) in readers.iter_mut().enumerate() {
        match r.next_key() {
            Ok(Some(k)) => heap.push(std::cmp::Reverse((k, i))),
            Ok(None) => {}
            Err(e) => failed = Some(e),
        }
    }
    let mut last = None;
    std::iter::from_fn(move || {
        if let Some(e) = failed.take() {
            return Some(Err(e));
        }
        loop {
            let std::cmp::Reverse((k, i)) = heap.pop()?;
            match readers[i].next_key() {
                Ok(Some(n)) => heap.push(std::cmp::Reverse((n, i))),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if last != Some(k) {
                last = Some(k);
                return Some(Ok(k));
            }
        }
    })
}

/// One shard: active set, its logs, and the runs.
struct Shard {
    dir: PathBuf,
    active: FpTable,
    /// The open log (the last of `wals`).
    wal: File,
    /// Bytes of whole records in the open log.
    wal_len: u64,
    /// The open log's directory entry has been fsynced.
    wal_entry_synced: bool,
    /// Every log holding names of the active set (a failed write starts a
    /// new one, so a torn record is always a log's last bytes).
    wals: Vec<PathBuf>,
    wal_buf: Vec<u8>,
    runs: Vec<Arc<Run>>,
    next_seq: u64,
    /// Runs written from the active set whose logs are still on disk: they
    /// are fsynced (by the background thread, or [`FpStore::sync_all`]),
    /// then the logs are deleted.
    unsynced: Vec<(Arc<Run>, Vec<PathBuf>)>,
    /// Retry a failed run write only after this many active names.
    flush_at: usize,
    /// Names in the active set before it becomes a run.
    active_max: usize,
    /// This shard's part of the store's filter budget.
    budget: Arc<FilterBudget>,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create a new, empty log. Its directory entry is fsynced before the first
/// fsync of its records ([`Shard::write_wal`]); until then nothing in it is
/// promised to survive a power loss anyway.
fn open_wal(dir: &Path, seq: u64) -> io::Result<(File, PathBuf)> {
    let path = dir.join(wal_name(seq));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    Ok((file, path))
}

/// Sequence numbers at or above this are not edm's (a crafted or foreign
/// file name); such files are left alone.
const MAX_SEQ: u64 = 1 << 60;

/// The sequence number a store file name starts with.
fn seq_of(name: &str) -> Option<u64> {
    u64::from_str_radix(name.get(..16)?, 16).ok()
}

impl Shard {
    /// Open a shard directory: load runs, turn leftover logs into runs.
    fn open(
        dir: PathBuf,
        active_max: usize,
        budget: Arc<FilterBudget>,
    ) -> Result<Self, StoreError> {
        fs::create_dir_all(&dir).map_err(ctx("cannot create the seen-store directory", &dir))?;
        let mut runs = Vec::new();
        let mut found = Vec::new();
        let mut wals = Vec::new();
        let mut max_seq = 0;
        let entries =
            fs::read_dir(&dir).map_err(ctx("cannot read the seen-store directory", &dir))?;
        for e in entries {
            let e = e.map_err(ctx("cannot read the seen-store directory", &dir))?;
            let path = e.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(seq) = seq_of(name).filter(|s| *s < MAX_SEQ) else {
                continue;
            };
            // Every file counts, `.corrupt` ones too: a number is never reused.
            max_seq = max_seq.max(seq);
            if name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(ctx("cannot remove a temporary file", &path))?;
            } else if name.strip_suffix(".wal").and_then(seq_of).is_some() {
                wals.push((seq, path));
            } else if let Some((seq, level)) = name
                .strip_suffix(".run")
                .and_then(|s| s.split_once("-L"))
                .and_then(|(s, l)| Some((u64::from_str_radix(s, 16).ok()?, l.parse::<u32>().ok()?)))
                .filter(|(_, l)| *l < 64)
            {
                found.push((level, std::cmp::Reverse(seq), path));
            }
        }
        // Small, new runs first: they get filters before the budget runs out.
        found.sort_unstable();
        for (level, std::cmp::Reverse(seq), path) in found {
            match Run::load(&path, seq, level, &budget) {
                Ok(run) => runs.push(Arc::new(run)),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    let aside = path.with_extension("run.corrupt");
                    tracing::warn!(file = %path.display(), error = %e,
                        "seen-store run file is damaged; set aside, its names will be reported new again");
                    fs::rename(&path, &aside)
                        .map_err(ctx("cannot set aside a damaged run", &path))?;
                }
                Err(e) => return Err(ctx("cannot read the seen-store run", &path)(e)),
            }
        }
        // Every leftover log is replayed into one new run, even when a run
        // was cut from it already (that run may not be durable yet; the
        // duplicates vanish in the next merge). A torn last record (crash
        // mid-write) is ignored.
        let mut next_seq = max_seq + 1;
        if !wals.is_empty() {
            let mut keys = Vec::new();
            for (_, path) in &wals {
                let mut data = Vec::new();
                File::open(path)
                    .and_then(|mut f| f.read_to_end(&mut data))
                    .map_err(ctx("cannot read the seen-store log", path))?;
                keys.extend(
                    data.chunks_exact(16)
                        .map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default())),
                );
            }
            keys.sort_unstable();
            keys.dedup();
            if !keys.is_empty() {
                let run = Run::write(
                    &dir,
                    next_seq,
                    0,
                    keys.len(),
                    keys.into_iter().map(Ok),
                    true,
                    &budget,
                )
                .and_then(|r| sync_dir(&dir).map(|()| r))
                .map_err(ctx("cannot write a seen-store run", &dir))?;
                next_seq += 1;
                runs.push(Arc::new(run));
            }
            for (_, path) in &wals {
                fs::remove_file(path).map_err(ctx("cannot remove the seen-store log", path))?;
            }
        }
        let (wal, wal_path) =
            open_wal(&dir, next_seq).map_err(ctx("cannot create the seen-store log", &dir))?;
        next_seq += 1;
        runs.sort_by_key(|r| r.seq);
        Ok(Self {
            dir,
            active: FpTable::with_capacity(active_max),
            wal,
            wal_len: 0,
            wal_entry_synced: false,
            wals: vec![wal_path],
            wal_buf: Vec::with_capacity(64 * 1024),
            runs,
            next_seq,
            unsynced: Vec::new(),
            flush_at: active_max,
            active_max,
            budget,
        })
    }

    fn contains(&self, fp: u128) -> io::Result<bool> {
        if self.active.contains(fp) {
            return Ok(true);
        }
        for r in self.runs.iter().rev() {
            if r.contains(fp)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Record `fp`; true when a run was cut (background work to do).
    fn insert(&mut self, fp: u128, sync: bool) -> io::Result<bool> {
        if !self.active.insert(fp) {
            return Ok(false);
        }
        self.log_added(fp, sync)
    }

    /// Look `fp` up and record it if absent (the insert's probe finds the
    /// lookup's slot in the CPU cache): `Ok(None)` when it was stored
    /// already, else whether a run was cut.
    fn contains_or_insert(&mut self, fp: u128, sync: bool) -> Result<Option<bool>, CheckError> {
        if self.active.contains(fp) {
            return Ok(None);
        }
        for r in self.runs.iter().rev() {
            if r.contains(fp).map_err(CheckError::Lookup)? {
                return Ok(None);
            }
        }
        // The slot was just read: this second probe finds it in the CPU cache.
        self.active.insert(fp);
        self.log_added(fp, sync)
            .map(Some)
            .map_err(CheckError::Record)
    }

    /// Log `fp`, just added to the active set; true when a run was cut.
    fn log_added(&mut self, fp: u128, sync: bool) -> io::Result<bool> {
        self.wal_buf.extend_from_slice(&fp.to_le_bytes());
        if sync {
            self.write_wal(true)?;
        }
        if self.active.len() >= self.flush_at {
            return self.cut().map(|()| true);
        }
        Ok(false)
    }

    /// Hand buffered log records to the OS; `sync` also fsyncs the log.
    fn write_wal(&mut self, sync: bool) -> io::Result<()> {
        if !self.wal_buf.is_empty() {
            let r = self.wal.write_all(&self.wal_buf);
            let n = self.wal_buf.len() as u64;
            // Names that did not reach the log stay in memory for this run.
            self.wal_buf.clear();
            match r {
                Ok(()) => self.wal_len += n,
                Err(e) => {
                    // Cut off a partly written record, or go on in a new log,
                    // so later records stay aligned.
                    if self.wal.set_len(self.wal_len).is_err()
                        && let Ok((wal, path)) = open_wal(&self.dir, self.next_seq)
                    {
                        self.next_seq += 1;
                        self.wal = wal;
                        self.wal_len = 0;
                        self.wal_entry_synced = false;
                        self.wals.push(path);
                    }
                    return Err(e);
                }
            }
        }
        if sync {
            if !self.wal_entry_synced {
                sync_dir(&self.dir)?;
                self.wal_entry_synced = true;
            }
            self.wal.sync_data()?;
        }
        Ok(())
    }

    /// Turn the active set into a run and start a new log.
    fn cut(&mut self) -> io::Result<()> {
        let result = (|| {
            self.write_wal(false)?;
            // The new log first: if it cannot be made, nothing changes.
            let (wal, wal_path) = open_wal(&self.dir, self.next_seq)?;
            let seq = self.next_seq + 1;
            let mut keys: Vec<u128> = self.active.iter().collect();
            keys.sort_unstable();
            let run = match Run::write(
                &self.dir,
                seq,
                0,
                keys.len(),
                keys.into_iter().map(Ok),
                false,
                &self.budget,
            ) {
                Ok(r) => Arc::new(r),
                Err(e) => {
                    drop(wal);
                    let _ = fs::remove_file(&wal_path);
                    return Err(e);
                }
            };
            self.next_seq += 2;
            let old = std::mem::replace(&mut self.wals, vec![wal_path]);
            self.wal = wal;
            self.wal_len = 0;
            self.wal_entry_synced = false;
            self.runs.push(run.clone());
            self.unsynced.push((run, old));
            self.active.clear();
            Ok(())
        })();
        self.flush_at = if result.is_ok() {
            self.active_max
        } else {
            self.active.len() + self.active_max
        };
        result
    }

    /// Make cut runs durable and delete their logs.
    fn sync_cut_runs(
        unsynced: Vec<(Arc<Run>, Vec<PathBuf>)>,
        dir: &Path,
        fail: &mut dyn FnMut(&str, &Path, io::Error),
    ) {
        for (run, wals) in unsynced {
            // The logs go only once their run is on disk.
            match run.file.sync_all().and_then(|()| sync_dir(dir)) {
                Ok(()) => {
                    for wal in wals {
                        if let Err(e) = fs::remove_file(&wal) {
                            fail("cannot remove a log", &wal, e);
                        }
                    }
                }
                Err(e) => fail("cannot sync a run (its logs are kept)", &run.path, e),
            }
        }
    }

    /// Runs to merge: every run of the lowest level that has [`FANOUT`].
    fn merge_candidates(&self) -> Option<(u32, Vec<Arc<Run>>)> {
        let mut levels: Vec<u32> = self.runs.iter().map(|r| r.level).collect();
        levels.sort_unstable();
        levels.dedup();
        levels.into_iter().find_map(|l| {
            let runs: Vec<Arc<Run>> = self.runs.iter().filter(|r| r.level == l).cloned().collect();
            (runs.len() >= FANOUT).then_some((l, runs))
        })
    }
}

fn lock(m: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The persistent fingerprint set.
pub struct FpStore {
    dir: PathBuf,
    budget: Arc<FilterBudget>,
    shards: Arc<[Mutex<Shard>]>,
    /// Where each shard's active set is, for [`FpStore::prefetch`].
    hints: Box<[SharedHint]>,
    work: Mutex<Option<crossbeam_channel::Sender<usize>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    errors: Arc<AtomicU64>,
}

impl std::fmt::Debug for FpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpStore").field("dir", &self.dir).finish()
    }
}

impl FpStore {
    /// Open (or create) the store in `dir`. Errors of the background thread
    /// are counted in `errors` (and logged). The runs' Bloom filters take at
    /// most `filter_bytes` of memory together (see [`FilterBudget`]).
    ///
    /// # Errors
    /// A [`StoreError`] naming the file or directory.
    pub fn open(
        dir: &Path,
        errors: Arc<AtomicU64>,
        filter_bytes: usize,
    ) -> Result<Self, StoreError> {
        Self::open_with(dir, errors, ACTIVE_MAX, FilterBudget::new(filter_bytes))
    }

    /// [`FpStore::open`] with runs cut every `active_max` names per shard.
    ///
    /// # Errors
    /// A [`StoreError`] naming the file or directory.
    pub fn open_with(
        dir: &Path,
        errors: Arc<AtomicU64>,
        active_max: usize,
        budget: Arc<FilterBudget>,
    ) -> Result<Self, StoreError> {
        let active_max = active_max.max(1);
        let shards: Vec<Mutex<Shard>> = budget
            .split(SHARDS)
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                Shard::open(dir.join(format!("shard-{i:02}")), active_max, part).map(Mutex::new)
            })
            .collect::<Result<_, _>>()?;
        let hints = shards
            .iter()
            .map(|s| SharedHint::new(&lock(s).active))
            .collect();
        let shards: Arc<[Mutex<Shard>]> = shards.into();
        let (tx, rx) = crossbeam_channel::unbounded::<usize>();
        let bg = shards.clone();
        let bg_errors = errors.clone();
        let thread = std::thread::Builder::new()
            .name("edm-seen-store".into())
            .spawn(move || {
                for s in &rx {
                    background(&bg[s], &bg_errors);
                }
            })
            .map_err(ctx("cannot start the seen-store thread", dir))?;
        // Merge what an earlier run left unmerged.
        for s in 0..SHARDS {
            let _ = tx.send(s);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            budget,
            shards,
            hints,
            work: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            errors,
        })
    }

    /// The filter memory budget (for metrics).
    pub fn budget(&self) -> &Arc<FilterBudget> {
        &self.budget
    }

    fn shard_of(fp: u128) -> usize {
        (fp >> (128 - SHARDS.trailing_zeros())) as usize
    }

    /// Start loading the slot of the active set a check of `fp` reads first
    /// (without taking the shard's lock).
    pub fn prefetch(&self, fp: u128) {
        crate::mem_hints::prefetch(self.hints[Self::shard_of(fp)].addr(fp));
    }

    /// Is `fp` in the store?
    ///
    /// # Errors
    /// Reading a run failed.
    pub fn contains(&self, fp: u128) -> io::Result<bool> {
        lock(&self.shards[Self::shard_of(fp)]).contains(fp)
    }

    /// Record `fp`. It is in the shard's log buffer; [`FpStore::flush`]
    /// hands it to the OS (`sync`: written and fsynced now).
    ///
    /// # Errors
    /// Writing the log or a run failed (the name stays known to this process).
    pub fn insert(&self, fp: u128, sync: bool) -> io::Result<()> {
        let s = Self::shard_of(fp);
        let mut shard = lock(&self.shards[s]);
        let cut = shard.insert(fp, sync);
        self.hints[s].update(&shard.active);
        drop(shard);
        if cut? {
            self.cut_in(s);
        }
        Ok(())
    }

    /// [`FpStore::contains`], then [`FpStore::insert`] if absent, under one
    /// lock of the shard: `Ok(true)` when `fp` was stored already.
    ///
    /// # Errors
    /// Which of the two steps failed: after a failed lookup nothing is
    /// recorded.
    pub fn contains_or_insert(&self, fp: u128, sync: bool) -> Result<bool, CheckError> {
        let s = Self::shard_of(fp);
        let mut shard = lock(&self.shards[s]);
        let added = shard.contains_or_insert(fp, sync);
        self.hints[s].update(&shard.active);
        drop(shard);
        let added = added?;
        if added == Some(true) {
            self.cut_in(s);
        }
        Ok(added.is_none())
    }

    /// Shard `s` cut a run: wake the background thread.
    fn cut_in(&self, s: usize) {
        if let Some(tx) = &*self
            .work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            let _ = tx.send(s);
        }
    }

    /// Hand every buffered log record to the OS; `sync` also fsyncs.
    ///
    /// # Errors
    /// The first write error (every shard is still tried).
    pub fn flush(&self, sync: bool) -> io::Result<()> {
        let mut first = Ok(());
        for s in self.shards.iter() {
            let mut s = lock(s);
            if s.wal_buf.is_empty() && !sync {
                continue;
            }
            if let Err(e) = s.write_wal(sync)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// Make everything recorded so far durable now: logs written and
    /// fsynced, cut runs fsynced and their logs deleted.
    ///
    /// # Errors
    /// The first write or sync error (every shard is still tried).
    pub fn sync_all(&self) -> io::Result<()> {
        // The shards are separate files and directories: their fsyncs wait
        // for the disk side by side (one after another they took ~13 ms of
        // every shutdown). A shard whose thread cannot start is synced here.
        let results: Vec<io::Result<()>> = std::thread::scope(|scope| {
            let running: Vec<_> = self
                .shards
                .iter()
                .map(|s| {
                    std::thread::Builder::new()
                        .name("edm-seen-sync".into())
                        .spawn_scoped(scope, move || Self::sync_shard(s))
                        .map_err(|_| s)
                })
                .collect();
            running
                .into_iter()
                .map(|r| match r {
                    Ok(t) => t.join().unwrap_or_else(|_| {
                        Err(io::Error::other("seen-store sync thread panicked"))
                    }),
                    Err(s) => Self::sync_shard(s),
                })
                .collect()
        });
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }

    /// [`FpStore::sync_all`] of one shard.
    fn sync_shard(s: &Mutex<Shard>) -> io::Result<()> {
        let mut s = lock(s);
        let r = s.write_wal(true);
        let unsynced = std::mem::take(&mut s.unsynced);
        let dir = s.dir.clone();
        drop(s);
        let mut err = None;
        Shard::sync_cut_runs(unsynced, &dir, &mut |_, _, e| {
            err.get_or_insert(e);
        });
        r.err().or(err).map_or(Ok(()), Err)
    }

    /// Make everything durable ([`FpStore::sync_all`]) and stop the
    /// background thread (at shutdown). Later calls do nothing.
    ///
    /// # Errors
    /// Writing or syncing failed.
    pub fn close(&self) -> io::Result<()> {
        let Some(work) = self
            .work
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            // Closed already (at shutdown, then again on drop).
            return Ok(());
        };
        let r = self.sync_all();
        drop(work);
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = t.join();
        }
        r
    }

    /// Number of run files (for tests and diagnostics).
    pub fn runs(&self) -> usize {
        self.shards.iter().map(|s| lock(s).runs.len()).sum()
    }

    /// Errors counted by the background thread so far.
    pub fn background_errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }
}

impl Drop for FpStore {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot sync the seen-qname store");
        }
    }
}

/// Background work on one shard: make cut runs durable, then merge.
fn background(shard: &Mutex<Shard>, errors: &AtomicU64) {
    let fail = |what: &str, path: &Path, e: io::Error| {
        errors.fetch_add(1, Relaxed);
        tracing::warn!(file = %path.display(), error = %e, "seen store: {what}");
    };
    let (dir, unsynced) = {
        let mut s = lock(shard);
        (s.dir.clone(), std::mem::take(&mut s.unsynced))
    };
    Shard::sync_cut_runs(unsynced, &dir, &mut |what, path, e| fail(what, path, e));
    loop {
        let (level, inputs, seq, budget) = {
            let mut s = lock(shard);
            let Some((level, inputs)) = s.merge_candidates() else {
                return;
            };
            let seq = s.next_seq;
            s.next_seq += 1;
            (level.saturating_add(1), inputs, seq, s.budget.clone())
        };
        let expected = inputs.iter().map(|r| r.len).sum();
        let run = match Run::write(&dir, seq, level, expected, merged(&inputs), true, &budget)
            .and_then(|r| sync_dir(&dir).map(|()| r))
        {
            Ok(r) => Arc::new(r),
            Err(e) => {
                fail("cannot merge runs", &dir, e);
                return;
            }
        };
        {
            let mut s = lock(shard);
            s.runs.retain(|r| !inputs.iter().any(|i| Arc::ptr_eq(i, r)));
            s.runs.push(run);
            s.runs.sort_by_key(|r| r.seq);
        }
        for r in &inputs {
            if let Err(e) = fs::remove_file(&r.path) {
                fail("cannot remove a merged run", &r.path, e);
            }
        }
    }
}

#[cfg(test)]
mod tests;

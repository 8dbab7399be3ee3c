//! The collector: one thread that receives session rows and histogram updates
//! from every worker and gathers histogram counts in a map. Session rows
//! come column by column ([`session_file::SessionChunk`]); a worker's chunk
//! of half a page (4 Ki rows) or more goes to the writer thread as it is,
//! smaller ones (a light load) are merged into a page-sized chunk first. The
//! writer encodes it into the interval's session file
//! ([`session_file::SessionFile`]), so memory holds a row group of encoded
//! pages and a few chunks however many rows a minute brings. At each
//! wall-clock minute (or on a manual rotation request) the session file is
//! published under its interval name, and the histogram writer thread writes
//! the histogram file ([`parquet_file::write_parquet_atomic`]) beside it,
//! both durably (tmp, fsync, rename).
//!
//! The first interval starts when the collector starts; each later one starts
//! where the previous one stopped. An interval without data writes no file.
//! When every worker has gone (all senders dropped), the collector flushes
//! the partial interval, stops both writers and waits for them: everything
//! that reached the collector is on disk before [`Collector::join`] returns.

pub mod parquet_file;
pub mod session;
pub mod session_file;
mod thrift;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arrow_array::RecordBatch;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use time::OffsetDateTime;

use crate::histogram::parquet::{histogram_batch, histogram_schema};
use crate::histogram::{DomainCounts, HistogramUpdate};
use crate::metrics::Metrics;
use crate::minimiser::WellKnown;
use session_file::{ChunkPool, PAGE_ROWS, SessionChunk, SessionFile};

/// File name prefix of session files.
pub const SESSION_PREFIX: &str = "dns_session_block";
/// File name prefix of histogram files.
pub const HISTOGRAM_PREFIX: &str = "dns_histogram";

/// Reply to a rotation request: `Err` carries the error text.
pub type RotateReply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Messages to the collector.
#[derive(Debug)]
pub enum CollectorMsg {
    /// Session rows from one worker, in arrival order: up to a page
    /// ([`SessionChunk::is_full`]), from one batch or several.
    Sessions(Box<SessionChunk>),
    /// Histogram updates from one worker batch.
    Histogram(Vec<HistogramUpdate>),
    /// A new well-known list; sent before it is published to workers, so the
    /// collector always knows the list of every update it receives.
    WellKnown(Arc<WellKnown>),
    /// Rotate now, at `at`, after taking in everything already queued.
    Rotate {
        /// The rotation time (interval stop).
        at: SystemTime,
        /// Where to report the outcome.
        reply: RotateReply,
    },
}

/// Collector configuration.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// `<data-dir>/parquet/sessions`.
    pub session_dir: PathBuf,
    /// `<data-dir>/parquet/histograms/outbox`.
    pub histogram_dir: PathBuf,
    /// HLL explicit threshold for new rows.
    pub hll_threshold: u32,
    /// The well-known list in force at startup.
    pub well_known: Option<Arc<WellKnown>>,
}

/// Handle to the collector and writer threads.
#[derive(Debug)]
pub struct Collector {
    collector: JoinHandle<()>,
    writer: JoinHandle<()>,
    histogram_writer: JoinHandle<()>,
    chunks: ChunkPool,
}

/// Emptied chunks kept for reuse: the writer gives them back once encoded,
/// the collector once merged. About as many as can be in use at once.
const CHUNK_POOL: usize = 16;
/// Rows from which a worker's chunk is written as a page of its own rather
/// than merged (as is a chunk full of large values,
/// [`SessionChunk::is_full`]).
const OWN_PAGE_ROWS: usize = PAGE_ROWS / 2;

/// A whole histogram file, for the histogram writer thread: written beside
/// the session file (at shutdown the two are finished at the same time).
struct HistogramJob {
    dir: PathBuf,
    name: String,
    batch: RecordBatch,
}

/// Work for the session writer thread, in order.
enum WriteJob {
    /// Rows of the open session interval, streamed into its file; the first
    /// batch of an interval creates `<dir>/<tmp_name>.tmp`.
    SessionRows {
        dir: PathBuf,
        tmp_name: String,
        chunk: Box<SessionChunk>,
    },
    /// The session interval is closed: publish its file as `name`.
    SessionClose { name: String },
}

impl Collector {
    /// Start the collector; it runs until every clone of the returned sender is dropped.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn spawn(
        config: CollectorConfig,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Self, Sender<CollectorMsg>)> {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let (wtx, wrx) = crossbeam_channel::bounded::<WriteJob>(4);
        let wmetrics = metrics.clone();
        let chunks = ChunkPool::new(CHUNK_POOL);
        let written = chunks.clone();
        let writer = std::thread::Builder::new()
            .name("edm-writer".into())
            .spawn(move || run_writer(&wrx, &wmetrics, &written))?;
        let merged = chunks.clone();
        let (htx, hrx) = crossbeam_channel::bounded::<HistogramJob>(2);
        let hmetrics = metrics.clone();
        let histogram_writer = std::thread::Builder::new()
            .name("edm-hist-writer".into())
            .spawn(move || run_histogram_writer(&hrx, &hmetrics))?;
        let qrx = rx.clone();
        metrics.register_gauge(
            "edm_collector_queue_depth",
            "messages (session chunks, histogram updates) queued for the collector",
            move || qrx.len() as u64,
        );
        let collector = std::thread::Builder::new()
            .name("edm-collector".into())
            .spawn(move || State::new(config, wtx, htx, metrics, merged).run(&rx))?;
        Ok((
            Self {
                collector,
                writer,
                histogram_writer,
                chunks,
            },
            tx,
        ))
    }

    /// The pool workers take their session chunks from
    /// ([`CollectorMsg::Sessions`]); the writer and the collector refill it.
    pub fn chunks(&self) -> ChunkPool {
        self.chunks.clone()
    }

    /// Wait until the final interval is flushed and every file is written.
    pub fn join(self) {
        if self.collector.join().is_err() {
            tracing::error!("collector thread panicked");
        }
        if self.writer.join().is_err() {
            tracing::error!("writer thread panicked");
        }
        if self.histogram_writer.join().is_err() {
            tracing::error!("histogram writer thread panicked");
        }
    }
}

/// Time until the next wall-clock minute boundary; never zero (exactly on a
/// boundary it is a full minute), as in the reference.
pub fn until_next_minute(now: SystemTime) -> Duration {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let into = Duration::from_nanos((since.as_nanos() % 60_000_000_000) as u64);
    Duration::from_secs(60) - into
}

struct State {
    config: CollectorConfig,
    writer: Sender<WriteJob>,
    histogram_writer: Sender<HistogramJob>,
    metrics: Arc<Metrics>,
    // sessions
    session_start: OffsetDateTime,
    /// Small worker chunks merged into a page.
    chunk: Box<SessionChunk>,
    /// Emptied chunks, shared with the workers and the writer.
    chunks: ChunkPool,
    session_rows: u64,
    // histograms
    histogram_start: OffsetDateTime,
    /// By (list generation, index in the list): keys from edm's own lists,
    /// so a fast hash (foldhash) rather than SipHash.
    counts: HashMap<(u64, u32), DomainCounts, foldhash::fast::RandomState>,
    lists: HashMap<u64, Arc<WellKnown>>,
    /// Generations to drop at the next rotation (see [`State::retire_lists`]).
    retired: Vec<u64>,
    updates: u64,
}

impl State {
    fn new(
        mut config: CollectorConfig,
        writer: Sender<WriteJob>,
        histogram_writer: Sender<HistogramJob>,
        metrics: Arc<Metrics>,
        chunks: ChunkPool,
    ) -> Self {
        let now = OffsetDateTime::now_utc();
        // The collector's only reference to a list is in `lists` (see `retire_lists`).
        let lists = config
            .well_known
            .take()
            .into_iter()
            .map(|w| (w.generation, w.clone()))
            .collect();
        Self {
            config,
            writer,
            histogram_writer,
            metrics,
            session_start: now,
            chunk: chunks.take(PAGE_ROWS),
            chunks,
            session_rows: 0,
            histogram_start: now,
            counts: HashMap::default(),
            lists,
            retired: Vec::new(),
            updates: 0,
        }
    }

    fn run(mut self, rx: &Receiver<CollectorMsg>) {
        let mut deadline = std::time::Instant::now() + until_next_minute(SystemTime::now());
        loop {
            match rx.recv_deadline(deadline) {
                Ok(CollectorMsg::Rotate { at, reply }) => {
                    // Take in everything already queued first, then rotate at the request time.
                    let mut pending = Vec::new();
                    while let Ok(m) = rx.try_recv() {
                        match m {
                            CollectorMsg::Rotate { at, reply } => pending.push((at, reply)),
                            other => self.handle(other),
                        }
                    }
                    let _ = reply.send(self.rotate(OffsetDateTime::from(at)));
                    for (at, reply) in pending {
                        let _ = reply.send(self.rotate(OffsetDateTime::from(at)));
                    }
                }
                Ok(m) => self.handle(m),
                Err(RecvTimeoutError::Timeout) => {
                    let now = SystemTime::now();
                    if let Err(e) = self.rotate(OffsetDateTime::from(now)) {
                        tracing::error!(error = %e, "rotation failed");
                    }
                    deadline = std::time::Instant::now() + until_next_minute(now);
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Err(e) = self.rotate(OffsetDateTime::now_utc()) {
            tracing::error!(error = %e, "final rotation failed");
        }
    }

    fn handle(&mut self, m: CollectorMsg) {
        match m {
            CollectorMsg::Sessions(rows) => {
                self.session_rows += rows.len() as u64;
                if rows.len() >= OWN_PAGE_ROWS || rows.is_full() {
                    self.send_page(rows);
                } else {
                    self.chunk.extend_from(&rows);
                    self.chunks.give(rows);
                    if self.chunk.is_full() {
                        self.stream_sessions();
                    }
                }
            }
            CollectorMsg::Histogram(updates) => {
                let threshold = self.config.hll_threshold;
                for u in &updates {
                    let row = match self.counts.entry((u.generation, u.index)) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            match DomainCounts::new(u.suffix, threshold) {
                                Ok(c) => e.insert(c),
                                Err(err) => {
                                    tracing::error!(error = %err, "cannot create histogram row");
                                    continue;
                                }
                            }
                        }
                    };
                    row.add(u);
                }
                self.updates += updates.len() as u64;
            }
            CollectorMsg::WellKnown(w) => {
                self.lists.insert(w.generation, w);
            }
            CollectorMsg::Rotate { at, reply } => {
                let _ = reply.send(self.rotate(OffsetDateTime::from(at)));
            }
        }
    }

    /// Forget superseded well-known lists once no update can name them.
    ///
    /// A list is retired when only the collector holds it: no snapshot a
    /// worker could load refers to it, so every update naming it was already
    /// sent. Those may still be queued behind this rotation, so a retired list
    /// is kept until the next rotation has named them, then dropped.
    fn retire_lists(&mut self) {
        let newest = self.lists.keys().max().copied();
        let retired = std::mem::take(&mut self.retired);
        self.lists.retain(|g, _| !retired.contains(g));
        for (g, l) in &self.lists {
            if Some(*g) != newest && Arc::strong_count(l) == 1 {
                self.retired.push(*g);
            }
        }
    }

    /// Close both intervals at `stop` and queue their files.
    fn rotate(&mut self, stop: OffsetDateTime) -> Result<(), String> {
        self.rotate_sessions(stop);
        self.rotate_histogram(stop)
    }

    /// Hand the merged rows to the writer, which appends them to the
    /// interval's file: memory holds a few pages per stage, however many
    /// rows a minute brings.
    fn stream_sessions(&mut self) {
        let chunk = std::mem::replace(&mut self.chunk, self.chunks.take(PAGE_ROWS));
        self.send_page(chunk);
    }

    /// Queue `chunk` for the writer: one data page per column.
    fn send_page(&mut self, chunk: Box<SessionChunk>) {
        let rows = chunk.len() as u64;
        let job = WriteJob::SessionRows {
            dir: self.config.session_dir.clone(),
            tmp_name: format!(
                "{SESSION_PREFIX}-{}.parquet",
                parquet_file::format_file_time(self.session_start)
            ),
            chunk,
        };
        if self.writer.send(job).is_err() {
            tracing::error!(rows, "writer thread is gone; session rows lost");
            self.metrics
                .session_rows_write_failed
                .fetch_add(rows, Relaxed);
        }
    }

    fn rotate_sessions(&mut self, stop: OffsetDateTime) {
        if !self.chunk.is_empty() {
            self.stream_sessions();
        }
        let start = std::mem::replace(&mut self.session_start, stop);
        let rows = std::mem::take(&mut self.session_rows);
        if rows > 0 {
            let name = parquet_file::file_name(SESSION_PREFIX, start, stop);
            if self.writer.send(WriteJob::SessionClose { name }).is_err() {
                tracing::error!("writer thread is gone; session file not published");
                self.metrics.parquet_write_errors.fetch_add(1, Relaxed);
            }
        }
    }

    fn rotate_histogram(&mut self, stop: OffsetDateTime) -> Result<(), String> {
        let start = std::mem::replace(&mut self.histogram_start, stop);
        let counts = std::mem::take(&mut self.counts);
        self.updates = 0;
        // Name every row from the list it was looked up in; merge rows of the same
        // name across list generations (counters add, sketches union).
        let mut by_name: HashMap<String, DomainCounts, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(counts.len(), Default::default());
        let mut unnamed = 0u64;
        for ((generation, index), c) in counts {
            let Some(name) = self
                .lists
                .get(&generation)
                .and_then(|l| l.list.name_at(index))
            else {
                unnamed += 1;
                continue;
            };
            match by_name.entry(name.to_string()) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&c),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(c);
                }
            }
        }
        self.retire_lists();
        if unnamed > 0 {
            return Err(format!(
                "{unnamed} histogram rows refer to an unknown well-known list"
            ));
        }
        if by_name.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<(String, DomainCounts)> = by_name.into_iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let start_us = (start.unix_timestamp_nanos() / 1000) as i64;
        let batch = histogram_batch(start_us, &rows).map_err(|e| e.to_string())?;
        let job = HistogramJob {
            dir: self.config.histogram_dir.clone(),
            name: parquet_file::file_name(HISTOGRAM_PREFIX, start, stop),
            batch,
        };
        if self.histogram_writer.send(job).is_err() {
            tracing::error!(
                rows = rows.len(),
                "histogram writer thread is gone; histogram file lost"
            );
            self.metrics.parquet_write_errors.fetch_add(1, Relaxed);
        }
        Ok(())
    }
}

fn run_writer(rx: &Receiver<WriteJob>, metrics: &Metrics, chunks: &ChunkPool) {
    let mut session = SessionWriter::default();
    for job in rx {
        match job {
            WriteJob::SessionRows {
                dir,
                tmp_name,
                chunk,
            } => {
                session.write(&dir, &tmp_name, &chunk, metrics);
                chunks.give(chunk);
            }
            WriteJob::SessionClose { name } => session.close(&name, metrics),
        }
    }
    // The collector always closes its last interval; anything else is an
    // interval that can no longer be named.
    if let Some(f) = session.open.take() {
        tracing::error!(rows = f.rows(), "session file left unpublished at shutdown");
        metrics
            .session_rows_write_failed
            .fetch_add(f.rows(), Relaxed);
        f.abort();
    }
}

fn run_histogram_writer(rx: &Receiver<HistogramJob>, metrics: &Metrics) {
    for HistogramJob { dir, name, batch } in rx {
        let rows = batch.num_rows() as u64;
        let result = parquet_file::write_parquet_atomic(&dir, &name, histogram_schema(), &[batch]);
        record_file(
            result,
            rows,
            &metrics.histogram_rows_written,
            &metrics.histogram_rows_write_failed,
            metrics,
        );
    }
}

/// The writer's open session file and the fate of its interval.
#[derive(Default)]
struct SessionWriter {
    open: Option<SessionFile>,
    /// Set once the interval's file failed: the rows lost with it so far.
    failed_rows: Option<u64>,
}

impl SessionWriter {
    fn write(
        &mut self,
        dir: &std::path::Path,
        tmp_name: &str,
        chunk: &SessionChunk,
        metrics: &Metrics,
    ) {
        let n = chunk.len() as u64;
        if let Some(lost) = &mut self.failed_rows {
            *lost += n;
            return;
        }
        if self.open.is_none() {
            match SessionFile::create(dir, tmp_name) {
                Ok(f) => self.open = Some(f),
                Err(e) => return self.fail(&e, n, metrics),
            }
        }
        if let Some(f) = &mut self.open
            && let Err(e) = f.write(chunk)
        {
            let rows = f.rows() + n;
            if let Some(f) = self.open.take() {
                f.abort();
            }
            self.fail(&e, rows, metrics);
        }
    }

    fn fail(&mut self, e: &parquet_file::WriteError, rows: u64, metrics: &Metrics) {
        tracing::error!(error = %crate::error::Chain(e), "session file write failed; the rest of its interval is lost");
        metrics.parquet_write_errors.fetch_add(1, Relaxed);
        self.failed_rows = Some(rows);
    }

    fn close(&mut self, name: &str, metrics: &Metrics) {
        if let Some(f) = self.open.take() {
            let rows = f.rows();
            record_file(
                f.finish(name),
                rows,
                &metrics.session_rows_written,
                &metrics.session_rows_write_failed,
                metrics,
            );
        }
        if let Some(lost) = self.failed_rows.take() {
            tracing::error!(rows = lost, "session rows lost with their file");
            metrics.session_rows_write_failed.fetch_add(lost, Relaxed);
        }
    }
}

/// Count and log the outcome of one Parquet file of `rows` rows.
fn record_file(
    result: Result<parquet_file::WrittenFile, parquet_file::WriteError>,
    rows: u64,
    written_rows: &AtomicU64,
    failed_rows: &AtomicU64,
    metrics: &Metrics,
) {
    match result {
        Ok(written) => {
            metrics.parquet_files_written.fetch_add(1, Relaxed);
            metrics
                .parquet_bytes_written
                .fetch_add(written.bytes, Relaxed);
            written_rows.fetch_add(rows, Relaxed);
            tracing::info!(file = %written.path.display(), rows, bytes = written.bytes, "wrote parquet file");
        }
        Err(e) => {
            metrics.parquet_write_errors.fetch_add(1, Relaxed);
            failed_rows.fetch_add(rows, Relaxed);
            tracing::error!(error = %crate::error::Chain(&e), rows, "parquet file write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::session::{AddrColumns, Labels, SessionRow};

    /// Worker chunks of a page's worth go to the writer as they are, smaller
    /// ones are merged into pages first: either way every row reaches the
    /// interval's file exactly once.
    #[test]
    fn page_sized_and_small_chunks_all_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = CollectorConfig {
            session_dir: dir.path().join("sessions"),
            histogram_dir: dir.path().join("histograms"),
            hll_threshold: 0,
            well_known: None,
        };
        let metrics = Arc::new(Metrics::default());
        let (collector, tx) = Collector::spawn(config, 4, metrics.clone()).unwrap();
        let pool = collector.chunks();
        let sizes = [
            PAGE_ROWS,
            3,
            OWN_PAGE_ROWS,
            100,
            OWN_PAGE_ROWS - 1,
            PAGE_ROWS + 10,
            1,
        ];
        let mut n = 0i64;
        for size in sizes {
            let mut chunk = pool.take(size);
            for _ in 0..size {
                chunk.append(&SessionRow {
                    response_time_us: n,
                    source: AddrColumns::V4(n as u32),
                    source_port: None,
                    dest: AddrColumns::Null,
                    dest_port: None,
                    dns_protocol: None,
                    server_id: None,
                    qname: ".",
                    labels: Labels::default(),
                    response_message: b"wire",
                });
                n += 1;
            }
            tx.send(CollectorMsg::Sessions(chunk)).unwrap();
        }
        drop(tx);
        collector.join();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("sessions"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        // A wall-clock minute may pass during the test and cut a second file.
        let mut times: Vec<Option<u64>> = files
            .iter()
            .flat_map(|f| {
                session_file::tests::ints(&session_file::tests::read_all(f), "response_time")
            })
            .collect();
        times.sort_unstable();
        assert_eq!(times, (0..n as u64).map(Some).collect::<Vec<_>>());
        assert_eq!(metrics.session_rows_written.load(Relaxed), n as u64);
        if files.len() == 1 {
            // Pages as the chunks went: the three of half a page or more as
            // they were, the four small ones merged into one (written last,
            // when the interval closed).
            use parquet::column::page::Page;
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let reader =
                SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap();
            let pages: Vec<usize> = (0..reader.metadata().num_row_groups())
                .flat_map(|g| session_file::tests::pages(&reader, g, 0))
                .filter(|page| !matches!(page, Page::DictionaryPage { .. }))
                .map(|page| page.num_values() as usize)
                .collect();
            assert_eq!(
                pages,
                [
                    PAGE_ROWS,
                    OWN_PAGE_ROWS,
                    PAGE_ROWS + 10,
                    3 + 100 + OWN_PAGE_ROWS - 1 + 1
                ]
            );
        }
    }

    #[test]
    fn next_minute_delay_matches_reference() {
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_040_000 + ms);
        // 1_700_000_040 is a minute boundary.
        assert_eq!(until_next_minute(at(0)), Duration::from_secs(60));
        assert_eq!(until_next_minute(at(500)), Duration::from_millis(59_500));
        assert_eq!(until_next_minute(at(59_999)), Duration::from_millis(1));
    }
}

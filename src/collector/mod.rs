//! The collector: one thread that receives session rows and histogram updates
//! from every worker, buffers rows in Arrow builders and histogram counts in
//! a map, and at each wall-clock minute (or on a manual rotation request)
//! hands the interval's data to the writer thread, which writes the Parquet
//! files durably ([`parquet_file::write_parquet_atomic`]).
//!
//! The first interval starts when the collector starts; each later one starts
//! where the previous one stopped. An interval without data writes no file.
//! When every worker has gone (all senders dropped), the collector flushes
//! the partial interval, stops the writer and waits for it: everything that
//! reached the collector is on disk before [`Collector::join`] returns.

pub mod parquet_file;
pub mod session;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use time::OffsetDateTime;

use crate::histogram::parquet::{histogram_batch, histogram_schema};
use crate::histogram::{DomainCounts, HistogramUpdate};
use crate::metrics::Metrics;
use crate::minimiser::WellKnown;
use session::{SessionBatchBuilder, SessionRow, session_schema};

/// File name prefix of session files.
pub const SESSION_PREFIX: &str = "dns_session_block";
/// File name prefix of histogram files.
pub const HISTOGRAM_PREFIX: &str = "dns_histogram";

/// Rows buffered per Arrow batch before it is cut (bounds builder memory).
const ROWS_PER_BATCH: usize = 64 * 1024;

/// Reply to a rotation request: `Err` carries the error text.
pub type RotateReply = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Messages to the collector.
#[derive(Debug)]
pub enum CollectorMsg {
    /// Session rows from one worker batch, in arrival order.
    Sessions(Vec<SessionRow>),
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Session,
    Histogram,
}

struct WriteJob {
    kind: Kind,
    dir: PathBuf,
    schema: SchemaRef,
    name: String,
    batches: Vec<RecordBatch>,
    rows: u64,
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
        let writer = std::thread::Builder::new()
            .name("edm-writer".into())
            .spawn(move || run_writer(&wrx, &wmetrics))?;
        let qrx = rx.clone();
        metrics.register_gauge(
            "edm_collector_queue_depth",
            "batches queued for the collector",
            move || qrx.len() as u64,
        );
        let collector = std::thread::Builder::new()
            .name("edm-collector".into())
            .spawn(move || State::new(config, wtx, metrics).run(&rx))?;
        Ok((Self { collector, writer }, tx))
    }

    /// Wait until the final interval is flushed and every file is written.
    pub fn join(self) {
        if self.collector.join().is_err() {
            tracing::error!("collector thread panicked");
        }
        if self.writer.join().is_err() {
            tracing::error!("writer thread panicked");
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
    metrics: Arc<Metrics>,
    // sessions
    session_start: OffsetDateTime,
    builder: SessionBatchBuilder,
    batches: Vec<RecordBatch>,
    session_rows: u64,
    // histograms
    histogram_start: OffsetDateTime,
    counts: HashMap<(u64, u32), DomainCounts>,
    lists: HashMap<u64, Arc<WellKnown>>,
    /// Generations to drop at the next rotation (see [`State::retire_lists`]).
    retired: Vec<u64>,
    updates: u64,
}

impl State {
    fn new(mut config: CollectorConfig, writer: Sender<WriteJob>, metrics: Arc<Metrics>) -> Self {
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
            metrics,
            session_start: now,
            builder: SessionBatchBuilder::new(1024),
            batches: Vec::new(),
            session_rows: 0,
            histogram_start: now,
            counts: HashMap::new(),
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
                for row in &rows {
                    self.builder.append(row);
                    if self.builder.len() >= ROWS_PER_BATCH {
                        self.batches.push(self.builder.finish());
                    }
                }
                self.session_rows += rows.len() as u64;
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

    fn rotate_sessions(&mut self, stop: OffsetDateTime) {
        if !self.builder.is_empty() {
            self.batches.push(self.builder.finish());
        }
        let start = std::mem::replace(&mut self.session_start, stop);
        let rows = std::mem::take(&mut self.session_rows);
        let batches = std::mem::take(&mut self.batches);
        if rows > 0 {
            self.queue(WriteJob {
                kind: Kind::Session,
                dir: self.config.session_dir.clone(),
                schema: session_schema(),
                name: parquet_file::file_name(SESSION_PREFIX, start, stop),
                batches,
                rows,
            });
        }
    }

    fn rotate_histogram(&mut self, stop: OffsetDateTime) -> Result<(), String> {
        let start = std::mem::replace(&mut self.histogram_start, stop);
        let counts = std::mem::take(&mut self.counts);
        self.updates = 0;
        // Name every row from the list it was looked up in; merge rows of the same
        // name across list generations (counters add, sketches union).
        let mut by_name: HashMap<String, DomainCounts> = HashMap::with_capacity(counts.len());
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
        self.queue(WriteJob {
            kind: Kind::Histogram,
            dir: self.config.histogram_dir.clone(),
            schema: histogram_schema(),
            name: parquet_file::file_name(HISTOGRAM_PREFIX, start, stop),
            batches: vec![batch],
            rows: rows.len() as u64,
        });
        Ok(())
    }

    fn queue(&self, job: WriteJob) {
        let (kind, rows) = (job.kind, job.rows);
        if self.writer.send(job).is_err() {
            tracing::error!(?kind, rows, "writer thread is gone; file lost");
            self.metrics.parquet_write_errors.fetch_add(1, Relaxed);
        }
    }
}

fn run_writer(rx: &Receiver<WriteJob>, metrics: &Metrics) {
    for job in rx {
        let (written_rows, failed_rows): (&AtomicU64, &AtomicU64) = match job.kind {
            Kind::Session => (
                &metrics.session_rows_written,
                &metrics.session_rows_write_failed,
            ),
            Kind::Histogram => (
                &metrics.histogram_rows_written,
                &metrics.histogram_rows_write_failed,
            ),
        };
        match parquet_file::write_parquet_atomic(
            &job.dir,
            &job.name,
            job.schema.clone(),
            &job.batches,
        ) {
            Ok(written) => {
                metrics.parquet_files_written.fetch_add(1, Relaxed);
                metrics
                    .parquet_bytes_written
                    .fetch_add(written.bytes, Relaxed);
                written_rows.fetch_add(job.rows, Relaxed);
                tracing::info!(file = %written.path.display(), rows = job.rows, bytes = written.bytes, "wrote parquet file");
            }
            Err(e) => {
                metrics.parquet_write_errors.fetch_add(1, Relaxed);
                failed_rows.fetch_add(job.rows, Relaxed);
                tracing::error!(error = %crate::error::Chain(&e), rows = job.rows, "parquet file write failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_minute_delay_matches_reference() {
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_040_000 + ms);
        // 1_700_000_040 is a minute boundary.
        assert_eq!(until_next_minute(at(0)), Duration::from_secs(60));
        assert_eq!(until_next_minute(at(500)), Duration::from_millis(59_500));
        assert_eq!(until_next_minute(at(59_999)), Duration::from_millis(1));
    }
}

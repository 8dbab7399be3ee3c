//! Minimiser workers: OS threads that take batches of frames from the input
//! queue, minimise each frame with [`core::minimise`] and hand the collector
//! their session rows column by column ([`SessionChunk`]), a data page's
//! worth at a time ([`PAGE_ROWS`] rows, fewer when responses are large): the
//! collector passes such a chunk to the writer as it is, without copying it.
//! A worker keeps rows back only while it already holds its next batch, and
//! from at most [`ROWS_MAX_BATCHES`] batches, so under a light load each
//! batch's rows go out at once (and the collector gathers them into pages),
//! and under an overload none are held long.
//!
//! Each worker owns its Crypto-PAn cache ([`core::WorkerState`]) and local
//! counters; shared, reloadable state is read through `ArcSwap` snapshots once
//! per batch, so no lock is taken per frame.

pub mod addr_cache;
pub mod core;

use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::collector::CollectorMsg;
use crate::collector::session_file::{ChunkPool, PAGE_ROWS, SessionChunk};
use crate::cryptopan::CryptoPan;
use crate::lists::clients::ClientSet;
use crate::lists::names::NameList;
use crate::metrics::{Metrics, WorkerCounters};
use crate::newqname::seen::{CheckBatch, Seen, SeenFront};

/// A batch of Frame Streams data-frame payloads, as read from one connection.
pub type Batch = Vec<Bytes>;

/// The Crypto-PAn instance with the generation it was built in. Workers purge
/// their cache when the generation they see changes.
#[derive(Debug)]
pub struct PanSnapshot {
    /// Bumped on every key change.
    pub generation: u64,
    /// The pseudonymiser.
    pub pan: CryptoPan,
}

/// Reloadable worker settings.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// `disable-session-files`.
    pub disable_session_files: bool,
    /// Most batches a worker gathers session rows from while it has more
    /// batches in hand (see the module doc); [`ROWS_MAX_BATCHES`] unless a
    /// test says otherwise.
    pub rows_max_batches: usize,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            disable_session_files: false,
            rows_max_batches: ROWS_MAX_BATCHES,
        }
    }
}

/// A well-known list with the generation it was loaded in. Histogram updates
/// carry the generation so the collector names rows from the right list.
#[derive(Debug)]
pub struct WellKnown {
    /// Bumped on every reload of the list.
    pub generation: u64,
    /// The list.
    pub list: NameList,
}

/// The name and client lists, swapped as one snapshot. Each list is shared,
/// so a reload that changes one list reuses the others.
#[derive(Debug, Default)]
pub struct ListsSnapshot {
    /// `ignored-client-ips-file`; `None` = disabled.
    pub ignored_clients: Option<Arc<ClientSet>>,
    /// `ignored-question-names-file`; `None` = disabled.
    pub ignored_names: Option<Arc<NameList>>,
    /// `well-known-domains-file`; `None` only when none is configured.
    pub well_known: Option<Arc<WellKnown>>,
}

/// State shared by all workers, each part swapped atomically on reload.
#[derive(Debug)]
pub struct Shared {
    /// Current Crypto-PAn snapshot.
    pub cryptopan: ArcSwap<PanSnapshot>,
    /// Current reloadable settings.
    pub settings: ArcSwap<WorkerSettings>,
    /// Current lists.
    pub lists: ArcSwap<ListsSnapshot>,
    /// The seen-qname check (`None` in tests and tools that do not need it).
    pub seen: Option<Arc<crate::newqname::seen::SeenQnames>>,
    /// The publisher queue for new_qname events (`None` when MQTT is off).
    pub events: Option<flume::Sender<crate::newqname::event::NewQname>>,
}

/// Names each worker remembers as seen in front of the shared check (per
/// generation; at most twice this many).
const SEEN_FRONT_ENTRIES: usize = 1 << 16;

/// A worker's seen checks of one batch (reference §1 step 14): names its
/// front set does not know wait here and are checked together at the end of
/// the batch ([`SeenQnames::check_batch`](crate::newqname::seen::SeenQnames::check_batch)), which locks each cache shard
/// once and overlaps the names' memory reads.
#[derive(Debug, Default)]
struct SeenWork {
    batch: CheckBatch,
    /// Per waiting name, what its event needs (only when events are on).
    events: Vec<PendingEvent>,
    /// The waiting names' `qname`s, end to end.
    names: String,
}

/// What a `new_qname` event needs of a name waiting for its check.
#[derive(Debug)]
struct PendingEvent {
    name: std::ops::Range<usize>,
    qtype: u16,
    qclass: u16,
    flags: u16,
    time_secs: i64,
}

impl SeenWork {
    /// The check of a response that is neither ignored nor well-known.
    fn add(&mut self, shared: &Shared, candidate: &core::Candidate, front: &mut SeenFront) {
        if shared.seen.is_none() {
            return;
        }
        let fp = crate::newqname::store::fingerprint(candidate.qname_lower.as_bytes());
        if front.knows(fp) {
            return;
        }
        self.batch.push(fp);
        if shared.events.is_some() {
            let start = self.names.len();
            self.names.push_str(&candidate.qname);
            self.events.push(PendingEvent {
                name: start..self.names.len(),
                qtype: candidate.qtype,
                qclass: candidate.qclass,
                flags: candidate.flags,
                time_secs: candidate.time_secs,
            });
        }
    }

    /// Check the waiting names, count and queue the new ones, and hand the
    /// names recorded to the OS before the batch's rows go on.
    fn finish(&mut self, shared: &Shared, front: &mut SeenFront, counters: &mut WorkerCounters) {
        let Some(seen) = &shared.seen else { return };
        if self.batch.is_empty() {
            return;
        }
        seen.check_batch(&mut self.batch);
        // The new names reach the OS before their events and rows go on.
        if self.batch.answers().any(|(_, a)| a == Seen::New) {
            seen.flush_batch();
        }
        for (i, (fp, answer)) in self.batch.answers().enumerate() {
            front.learn(fp, answer);
            if answer != Seen::New {
                continue;
            }
            counters.new_qnames += 1;
            let (Some(events), Some(e)) = (&shared.events, self.events.get(i)) else {
                continue;
            };
            let event = crate::newqname::event::NewQname {
                flags: e.flags,
                question: Some((
                    self.names
                        .get(e.name.clone())
                        .unwrap_or_default()
                        .to_owned(),
                    e.qtype,
                    e.qclass,
                )),
                time_secs: e.time_secs,
            };
            // Never wait: a full queue drops the event, counted.
            if events.try_send(event).is_ok() {
                counters.new_qname_queued += 1;
            } else {
                counters.new_qname_discarded += 1;
            }
        }
        self.batch.clear();
        self.events.clear();
        self.names.clear();
    }
}

/// Start `n` workers. They exit when every sender of `input` is gone and the
/// queue is empty, so dropping the senders drains the queue completely.
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn_workers(
    n: usize,
    cache_entries: usize,
    input: flume::Receiver<Batch>,
    output: crossbeam_channel::Sender<CollectorMsg>,
    chunks: ChunkPool,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..n)
        .map(|i| {
            let input = input.clone();
            let output = output.clone();
            let chunks = chunks.clone();
            let shared = shared.clone();
            let metrics = metrics.clone();
            std::thread::Builder::new()
                .name(format!("edm-worker-{i}"))
                .spawn(move || {
                    run_worker(cache_entries, &input, &output, &chunks, &shared, &metrics);
                })
        })
        .collect()
}

fn run_worker(
    cache_entries: usize,
    input: &flume::Receiver<Batch>,
    output: &crossbeam_channel::Sender<CollectorMsg>,
    chunks: &ChunkPool,
    shared: &Shared,
    metrics: &Metrics,
) {
    let mut state = core::WorkerState::new(cache_entries);
    let mut counters = WorkerCounters::default();
    let mut front = SeenFront::new(SEEN_FRONT_ENTRIES);
    let mut seen = SeenWork::default();
    // Session rows, column by column, gathered across batches into a page
    // (see the module doc).
    let mut rows: Option<Box<SessionChunk>> = None;
    // Batches whose rows are held.
    let mut held_batches = 0;
    let mut next = input.recv().ok();
    while let Some(batch) = next {
        let pan = shared.cryptopan.load();
        let settings = shared.settings.load();
        let lists = shared.lists.load();
        state.sync_generation(pan.generation);
        let mut updates = Vec::new();
        for frame in &batch {
            let outcome = core::minimise(
                frame,
                &mut state,
                &pan.pan,
                &settings,
                &lists,
                &mut counters,
            );
            // Every kept non-well-known response is checked, rows written or not.
            match outcome {
                core::Outcome::Session(row, candidate) => {
                    seen.add(shared, candidate, &mut front);
                    rows.get_or_insert_with(|| chunks.take(PAGE_ROWS))
                        .append(&row);
                }
                core::Outcome::SessionDisabled(candidate) => {
                    seen.add(shared, candidate, &mut front);
                }
                core::Outcome::Histogram(u) => updates.push(u),
                core::Outcome::Dropped => {}
            }
        }
        // The frames' buffers go back to the input before the hand-off.
        drop(batch);
        seen.finish(shared, &mut front, &mut counters);
        // The collector only goes away after every worker has exited.
        if !updates.is_empty() && output.send(CollectorMsg::Histogram(updates)).is_err() {
            tracing::error!("collector stopped before the workers; histogram updates lost");
        }
        // Rows wait only while the next batch is already in hand, and not
        // for long: a worker that always has one (an overload) and makes few
        // rows must not carry them across a rotation.
        next = input.try_recv().ok();
        if let Some(held) = &rows {
            held_batches += 1;
            if next.is_none() || held.is_full() || held_batches >= settings.rows_max_batches {
                send_rows(output, &mut rows);
                held_batches = 0;
            }
        }
        metrics.add_worker(&mut counters);
        if next.is_none() {
            next = input.recv().ok();
        }
    }
}

/// Most batches a worker holds session rows from while it has more batches
/// in hand (see the module doc): tens of milliseconds of work (64 full
/// batches are 32 Ki frames), a fraction of what a full input queue delays
/// them. A page's rows usually come first: at full speed from some 20
/// batches.
pub const ROWS_MAX_BATCHES: usize = 64;

/// Hand the gathered session rows, if any, to the collector.
fn send_rows(
    output: &crossbeam_channel::Sender<CollectorMsg>,
    rows: &mut Option<Box<SessionChunk>>,
) {
    if let Some(rows) = rows.take()
        && output.send(CollectorMsg::Sessions(rows)).is_err()
    {
        tracing::error!("collector stopped before the workers; session rows lost");
    }
}

#[cfg(test)]
mod tests;

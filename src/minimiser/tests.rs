use std::sync::atomic::Ordering::Relaxed;

use prost::Message as _;

use super::*;
use crate::dnstap::{Dnstap, Message};
use crate::newqname::seen::SeenQnames;

/// A response frame for `name` from client 198.51.100.`client`.
fn response(name: &str, client: u8) -> Bytes {
    let mut wire = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.extend_from_slice(&[0, 0, 1, 0, 1]);
    let msg = Message {
        r#type: Some(6),
        socket_family: Some(1),
        query_address: Some(Bytes::copy_from_slice(&[198, 51, 100, client])),
        response_address: Some(Bytes::from_static(&[192, 0, 2, 53])),
        response_message: Some(Bytes::from(wire)),
        ..Default::default()
    };
    Bytes::from(
        Dnstap {
            message: Some(msg),
            r#type: Some(1),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

/// One worker over a fresh seen store: its input, what it sends the
/// collector, its new-name events and its metrics.
struct OneWorker {
    input: Option<flume::Sender<Batch>>,
    batches: Option<flume::Receiver<Batch>>,
    collected: crossbeam_channel::Receiver<CollectorMsg>,
    new_qnames: flume::Receiver<crate::newqname::event::NewQname>,
    metrics: Arc<Metrics>,
    shared: Arc<Shared>,
    output: crossbeam_channel::Sender<CollectorMsg>,
    _dir: tempfile::TempDir,
}

impl OneWorker {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let seen = SeenQnames::open(dir.path(), 1000, false, 1 << 20).unwrap();
        let (events, new_qnames) = flume::unbounded();
        let shared = Arc::new(Shared {
            cryptopan: ArcSwap::from_pointee(PanSnapshot {
                generation: 1,
                pan: CryptoPan::new(&[7u8; 32]),
            }),
            settings: ArcSwap::from_pointee(WorkerSettings::default()),
            lists: ArcSwap::from_pointee(ListsSnapshot::default()),
            seen: Some(Arc::new(seen)),
            events: Some(events),
        });
        let (input, batches) = flume::unbounded();
        let (output, collected) = crossbeam_channel::unbounded();
        Self {
            input: Some(input),
            batches: Some(batches),
            collected,
            new_qnames,
            metrics: Arc::new(Metrics::default()),
            shared,
            output,
            _dir: dir,
        }
    }

    /// Start the worker (batches already sent are waiting for it).
    fn start(&mut self) -> Vec<JoinHandle<()>> {
        spawn_workers(
            1,
            1000,
            self.batches.take().unwrap(),
            self.output.clone(),
            ChunkPool::new(4),
            self.shared.clone(),
            self.metrics.clone(),
        )
        .unwrap()
    }

    fn send(&self, batch: Batch) {
        self.input.as_ref().unwrap().send(batch).unwrap();
    }

    /// Close the input and wait for the worker to drain it and exit.
    fn finish(&mut self, workers: Vec<JoinHandle<()>>) {
        self.input = None;
        for h in workers {
            h.join().unwrap();
        }
    }

    /// Rows per session chunk received so far.
    fn chunks(&self) -> Vec<usize> {
        self.collected
            .try_iter()
            .filter_map(|m| match m {
                CollectorMsg::Sessions(c) => Some(c.len()),
                _ => None,
            })
            .collect()
    }
}

/// Batches of any size, with undecodable frames among them, give one
/// outcome per frame, in order; the rows of batches waiting together go to
/// the collector as one chunk, and the new names' events in frame order.
#[test]
fn batches_of_any_size_are_minimised_once_in_order() {
    let mut w = OneWorker::new();
    let (mut expected, mut frames, mut garbage) = (vec![], 0, 0);
    for size in [0, 1, 2, 3, 4, 7, 16] {
        let mut batch = Vec::new();
        for k in 0..size {
            frames += 1;
            if k % 3 == 1 {
                batch.push(Bytes::from_static(b"\xff\xff not dnstap"));
                garbage += 1;
                continue;
            }
            let name = format!("n{}.example.", expected.len());
            batch.push(response(&name, expected.len() as u8));
            expected.push(name);
        }
        w.send(batch);
    }
    let workers = w.start();
    w.finish(workers);
    assert_eq!(w.chunks(), vec![expected.len()]);
    let names: Vec<String> = w
        .new_qnames
        .try_iter()
        .filter_map(|e| Some(e.question?.0))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(w.metrics.processed_dnstap.load(Relaxed), frames);
    assert_eq!(w.metrics.dnstap_decode_error.load(Relaxed), garbage);
    assert_eq!(w.metrics.session_rows.load(Relaxed), expected.len() as u64);
}

/// A worker with no further batch in hand sends its rows at once: they do
/// not wait for more traffic (the input stays open here).
#[test]
fn rows_go_out_when_no_batch_waits() {
    let mut w = OneWorker::new();
    let workers = w.start();
    for i in 0..3u8 {
        w.send(vec![response(&format!("lone{i}.example."), i)]);
        match w.collected.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(CollectorMsg::Sessions(c)) => assert_eq!(c.len(), 1),
            other => panic!("expected one session row, got {other:?}"),
        }
    }
    w.finish(workers);
    assert!(w.chunks().is_empty());
}

/// Rows of waiting batches are gathered up to a page ([`PAGE_ROWS`]): a
/// chunk goes out once it holds a page's worth, the rest when the input
/// runs dry.
#[test]
fn rows_are_gathered_up_to_a_page() {
    let mut w = OneWorker::new();
    let per_batch = 500;
    let batches = 20;
    for b in 0..batches {
        let batch = (0..per_batch)
            .map(|i| response(&format!("p{b}-{i}.example."), (i % 200) as u8))
            .collect();
        w.send(batch);
    }
    let workers = w.start();
    w.finish(workers);
    // 17 batches make the first page (8,500 rows >= 8,192), 3 the rest.
    let first = PAGE_ROWS.div_ceil(per_batch) * per_batch;
    assert_eq!(w.chunks(), vec![first, batches * per_batch - first]);
}

/// Rows are not held back from more batches than the settings allow, even
/// while more batches wait (a worker that is always behind): at two, the
/// rows of batches 1+2 and 3+4 go out together, then those of batch 5.
#[test]
fn rows_are_held_from_a_few_batches_at_most() {
    let mut w = OneWorker::new();
    w.shared.settings.store(Arc::new(WorkerSettings {
        rows_max_batches: 2,
        ..WorkerSettings::default()
    }));
    for (b, rows) in [3usize, 2, 1, 4, 5].into_iter().enumerate() {
        let batch = (0..rows)
            .map(|i| response(&format!("w{b}-{i}.example."), i as u8))
            .collect();
        w.send(batch);
    }
    let workers = w.start();
    w.finish(workers);
    assert_eq!(w.chunks(), vec![5, 5, 5]);
}

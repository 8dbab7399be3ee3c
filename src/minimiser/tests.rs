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

/// Batches of any size, with undecodable frames among them, give one
/// outcome per frame, in order: one session chunk per batch with rows, and
/// the new names' events in frame order.
#[test]
fn batches_of_any_size_are_minimised_once_in_order() {
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
    let metrics = Arc::new(Metrics::default());
    let workers = spawn_workers(
        1,
        1000,
        batches,
        output,
        ChunkPool::new(4),
        shared,
        metrics.clone(),
    )
    .unwrap();
    let (mut expected, mut rows_per_batch, mut frames, mut garbage) = (vec![], vec![], 0, 0);
    for size in [0, 1, 2, 3, 4, 7, 16] {
        let mut batch = Vec::new();
        let mut rows = 0;
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
            rows += 1;
        }
        if rows > 0 {
            rows_per_batch.push(rows);
        }
        input.send(batch).unwrap();
    }
    drop(input);
    for w in workers {
        w.join().unwrap();
    }
    let chunks: Vec<usize> = collected
        .try_iter()
        .filter_map(|m| match m {
            CollectorMsg::Sessions(c) => Some(c.len()),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, rows_per_batch);
    let names: Vec<String> = new_qnames
        .try_iter()
        .filter_map(|e| Some(e.question?.0))
        .collect();
    assert_eq!(names, expected);
    assert_eq!(metrics.processed_dnstap.load(Relaxed), frames);
    assert_eq!(metrics.dnstap_decode_error.load(Relaxed), garbage);
    assert_eq!(metrics.session_rows.load(Relaxed), expected.len() as u64);
}

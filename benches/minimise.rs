//! End-to-end cost of the pure minimiser on real frames from the bundled
//! capture: protobuf decode, DNS parse, name checks, Crypto-PAn (cached and
//! uncached) and session-row construction.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::cryptopan::CryptoPan;
use edm::metrics::WorkerCounters;
use edm::minimiser::core::{WorkerState, minimise};
use edm::minimiser::{ListsSnapshot, WorkerSettings};

fn bench(c: &mut Criterion) {
    let frames = common::capture_frames();
    let pan = CryptoPan::new(&[7u8; 32]);
    let settings = WorkerSettings::default();
    let lists = ListsSnapshot::default();
    let mut g = c.benchmark_group("minimise");
    g.throughput(Throughput::Elements(frames.len() as u64));
    for (name, cache) in [("cached", 1 << 20), ("uncached", 0)] {
        g.bench_function(format!("sample_5000_frames_{name}"), |b| {
            let mut state = WorkerState::new(cache);
            state.sync_generation(1);
            let mut counters = WorkerCounters::default();
            b.iter(|| {
                for f in &frames {
                    black_box(minimise(
                        f,
                        &mut state,
                        &pan,
                        &settings,
                        &lists,
                        &mut counters,
                    ));
                }
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

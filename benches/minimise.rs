//! End-to-end cost of the pure minimiser on real frames from the bundled
//! capture: protobuf decode, DNS parse, name checks, Crypto-PAn (cached and
//! uncached) and session-row construction.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::cryptopan::CryptoPan;
use edm::input::framestream::FileReader;
use edm::metrics::WorkerCounters;
use edm::minimiser::core::{WorkerState, minimise};
use edm::minimiser::{ListsSnapshot, WorkerSettings};

fn frames() -> Vec<bytes::Bytes> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample.fstrm");
    let file = std::fs::File::open(path).expect("testdata/sample.fstrm");
    FileReader::new(std::io::BufReader::new(file), 1 << 20)
        .expect("capture")
        .collect::<Result<Vec<_>, _>>()
        .expect("frames")
}

fn bench(c: &mut Criterion) {
    let frames = frames();
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
                        f.clone(),
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

//! dnstap protobuf decode alone, on the frames of the bundled capture
//! (Unbound) and of the load tool's synthetic workload: the in-place decoder
//! the minimiser uses (`DnstapRef::decode_frame`) and prost's
//! (`Dnstap::decode_frame`) for comparison.
//!
//! `cargo bench --bench dnstap`

mod common;

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::dnstap::{Dnstap, DnstapRef};

fn synthetic(n: usize) -> Vec<Bytes> {
    edm::loadgen::workload::generate(&edm::loadgen::workload::Spec {
        frames: n,
        ..Default::default()
    })
    .frames()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dnstap_decode");
    for (name, frames) in [
        ("unbound_capture", common::capture_frames()),
        ("synthetic", synthetic(10_000)),
    ] {
        let bytes: usize = frames.iter().map(Bytes::len).sum();
        g.throughput(Throughput::Elements(frames.len() as u64));
        let label = format!(
            "{name}_{}_frames_avg_{}B",
            frames.len(),
            bytes / frames.len().max(1)
        );
        g.bench_function(format!("in_place/{label}"), |b| {
            b.iter(|| {
                for f in &frames {
                    let _ = black_box(DnstapRef::decode_frame(f));
                }
            })
        });
        g.bench_function(format!("prost/{label}"), |b| {
            b.iter(|| {
                for f in &frames {
                    let _ = black_box(Dnstap::decode_frame(f.clone()));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

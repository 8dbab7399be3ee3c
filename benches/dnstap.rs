//! dnstap protobuf decode alone, on the frames of the bundled capture
//! (Unbound) and of the load tool's synthetic workload: the in-place decoder
//! the minimiser uses (`DnstapRef::decode_frame`) and prost's
//! (`Dnstap::decode_frame`) for comparison.
//!
//! `cargo bench --bench dnstap`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::dnstap::{Dnstap, DnstapRef};
use edm::input::framestream::FileReader;

fn capture() -> Vec<Bytes> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sample.fstrm");
    let file = std::fs::File::open(path).expect("testdata/sample.fstrm");
    FileReader::new(std::io::BufReader::new(file), 1 << 20)
        .expect("capture")
        .collect::<Result<Vec<_>, _>>()
        .expect("frames")
}

/// The workload's data frames (4-byte big-endian length, payload).
fn synthetic(n: usize) -> Vec<Bytes> {
    let w = edm::loadgen::workload::generate(&edm::loadgen::workload::Spec {
        frames: n,
        ..Default::default()
    });
    let data = Bytes::from(w.data);
    let mut frames = Vec::with_capacity(n);
    let mut at = 0;
    while at + 4 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        frames.push(data.slice(at + 4..at + 4 + len));
        at += 4 + len;
    }
    frames
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dnstap_decode");
    for (name, frames) in [
        ("unbound_capture", capture()),
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

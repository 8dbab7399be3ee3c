//! HyperLogLog and MurmurHash3 micro-benchmarks (reference §6).
//!
//! `add_hash` into a sketch that is already dense, and into one that stays
//! sparse (about 150 set registers); murmur3 of a 4-byte (IPv4) and a 16-byte
//! (IPv6) client address. One element per iteration.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::histogram::hll::{Hll, Storage, murmur3_sum64};

/// A cheap stream of well-mixed 64-bit hashes (splitmix64).
fn next_hash(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn bench_hll(c: &mut Criterion) {
    let mut g = c.benchmark_group("hll");
    g.throughput(Throughput::Elements(1));

    let mut dense = Hll::new(20).expect("threshold");
    let mut state = 1;
    for _ in 0..10_000 {
        dense.add_hash(next_hash(&mut state));
    }
    assert_eq!(dense.storage(), Storage::Dense);
    g.bench_function("add_hash_dense", |b| {
        b.iter(|| dense.add_hash(black_box(next_hash(&mut state))))
    });

    // 160 distinct hashes set ~150 registers; re-adding the same pool keeps
    // the sketch sparse while exercising the lookup/update path.
    let mut pool_state = 7;
    let pool: Vec<u64> = (0..160).map(|_| next_hash(&mut pool_state)).collect();
    let mut sparse = Hll::new(20).expect("threshold");
    for &h in &pool {
        sparse.add_hash(h);
    }
    assert_eq!(sparse.storage(), Storage::Sparse);
    let mut i = 0usize;
    g.bench_function("add_hash_sparse", |b| {
        b.iter(|| {
            i = (i + 1) % pool.len();
            sparse.add_hash(black_box(pool[i]));
        })
    });
    assert_eq!(sparse.storage(), Storage::Sparse);

    let v4 = [192u8, 0, 2, 1];
    g.bench_function("murmur3_v4", |b| b.iter(|| murmur3_sum64(black_box(&v4))));
    let v6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    g.bench_function("murmur3_v6", |b| b.iter(|| murmur3_sum64(black_box(&v6))));
    g.finish();
}

criterion_group!(benches, bench_hll);
criterion_main!(benches);

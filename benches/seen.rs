//! Seen-qname check cost per frame (issue 5): a hit in the worker's own front
//! set (the common case for a repeated name), a hit in the shared cache, a
//! store hit after the cache forgot the name, and a miss (a new name: cache
//! entry + store lookup + store insert).
//!
//! `cargo bench --bench seen`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::newqname::seen::{Seen, SeenFront, SeenQnames};
use edm::newqname::store::DEFAULT_FILTER_BYTES;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let seen = SeenQnames::open(dir.path(), 100_000, false, DEFAULT_FILTER_BYTES).expect("open");
    let names: Vec<String> = (0..50_000)
        .map(|i| format!("host{i}.example.com."))
        .collect();
    for n in &names {
        seen.check(n);
    }
    let mut g = c.benchmark_group("seen_qname");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            i = (i + 1) % names.len();
            black_box(seen.check(black_box(&names[i])))
        })
    });
    let mut front = SeenFront::new(1 << 16);
    for n in &names {
        front.check(&seen, n);
    }
    let mut i = 0;
    g.bench_function("front_hit", |b| {
        b.iter(|| {
            i = (i + 1) % names.len();
            black_box(front.check(&seen, black_box(&names[i])))
        })
    });
    let mut n = 0u64;
    g.bench_function("miss_new_name", |b| {
        b.iter(|| {
            n += 1;
            let name = format!("new{n}.example.net.");
            let r = seen.check(black_box(&name));
            debug_assert_eq!(r, Seen::New);
            black_box(r)
        })
    });
    g.finish();

    // Store hits: a tiny cache in front of names already stored.
    let small = tempfile::tempdir().expect("tempdir");
    let store = SeenQnames::open(small.path(), 10, false, DEFAULT_FILTER_BYTES).expect("open");
    for n in &names {
        store.check(n);
    }
    let mut g = c.benchmark_group("seen_qname");
    let mut i = 0;
    g.bench_function("store_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % names.len();
            black_box(store.check(black_box(&names[i])))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

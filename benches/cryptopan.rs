//! Crypto-PAn micro-benchmarks (reference §3): one uncached address per
//! iteration (IPv4: 32 AES blocks, IPv6: 128, batched), the IPv4-mapped path,
//! and the argon2id key derivation a key change costs.
//!
//! `cargo bench --bench cryptopan`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::cryptopan::{CryptoPan, derive_key};

fn bench(c: &mut Criterion) {
    let pan =
        CryptoPan::from_passphrase("edm-example-key-change-me", "edm-kdf-salt-val").expect("kdf");
    let mut g = c.benchmark_group("cryptopan");
    g.throughput(Throughput::Elements(1));
    let mut v4 = 0x0a00_0001u32;
    g.bench_function("ipv4", |b| {
        b.iter(|| {
            v4 = v4.wrapping_add(0x0101_0101);
            black_box(pan.anonymise_v4(black_box(v4)))
        })
    });
    let mut v6 = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
    g.bench_function("ipv6", |b| {
        b.iter(|| {
            v6 = v6.wrapping_add(0x0001_0001_0001_0001_0001_0001_0001_0001);
            black_box(pan.anonymise_v6(black_box(v6)))
        })
    });
    let mut mapped = [0u8; 16];
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    let mut n = 0u32;
    g.bench_function("ipv4_mapped_bytes", |b| {
        b.iter(|| {
            n = n.wrapping_add(0x0101_0101);
            mapped[12..].copy_from_slice(&n.to_be_bytes());
            black_box(pan.anonymise_bytes(black_box(&mapped)))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("cryptopan_kdf");
    g.sample_size(10);
    g.bench_function("argon2id_64mib", |b| {
        b.iter(|| {
            black_box(derive_key(
                black_box("edm-example-key-change-me"),
                "edm-kdf-salt-val",
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

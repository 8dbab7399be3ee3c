//! Crypto-PAn micro-benchmarks (reference §3): one uncached address per
//! iteration (IPv4: 32 AES blocks, IPv6: 128, batched), the IPv4-mapped path,
//! the argon2id key derivation a key change costs, and the per-worker
//! pseudonym cache (`cryptopan_cached`): the set-associative `AddrCache`
//! against the linked `lru::LruCache` it replaced (labelled `lru_baseline`),
//! both with 1,000,000 entries.
//!
//! `cargo bench --bench cryptopan` (only the cache: `-- cached`)

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::cryptopan::{CryptoPan, Pseudonym, derive_key};
use edm::minimiser::addr_cache::{AddrCache, AddrKey};

/// Entries per cache, as `cryptopan-address-entries` in `edm.toml`.
const CACHE_ENTRIES: usize = 1_000_000;
/// Distinct addresses of each family in the cache.
const DISTINCT: usize = 100_000;
/// Length of the pseudo-random lookup sequence (a power of two).
const SEQUENCE: usize = 1 << 20;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// `n` distinct IPv4 and `n` distinct IPv6 keys.
fn distinct_keys(n: usize) -> (Vec<AddrKey>, Vec<AddrKey>) {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut seen = std::collections::HashSet::new();
    let mut v4 = Vec::with_capacity(n);
    while v4.len() < n {
        let a = (xorshift(&mut x) as u32).to_be_bytes();
        if seen.insert(a.to_vec()) {
            v4.extend(AddrKey::new(&a));
        }
    }
    let mut v6 = Vec::with_capacity(n);
    while v6.len() < n {
        let a = ((u128::from(xorshift(&mut x)) << 64) | u128::from(xorshift(&mut x))).to_be_bytes();
        if seen.insert(a.to_vec()) {
            v6.extend(AddrKey::new(&a));
        }
    }
    (v4, v6)
}

/// A pseudo-random sequence of `SEQUENCE` picks from `keys`.
fn sequence(keys: &[AddrKey], seed: u64) -> Vec<AddrKey> {
    let mut x = seed;
    (0..SEQUENCE)
        .map(|_| keys[(xorshift(&mut x) % keys.len() as u64) as usize])
        .collect()
}

/// A fresh key per call: IPv6 addresses outside the random ones' range.
fn fresh_key(n: &mut u64) -> AddrKey {
    *n += 1;
    let a = (0x3fff_u128 << 112) | u128::from(*n);
    AddrKey::new(&a.to_be_bytes()).unwrap_or_else(|| unreachable!())
}

fn bench_cached(c: &mut Criterion, pan: &CryptoPan) {
    let (v4, v6) = distinct_keys(DISTINCT);
    let filled: Vec<(AddrKey, Pseudonym)> = v4
        .iter()
        .chain(&v6)
        .map(|k| (*k, pan.anonymise_bytes(k.as_bytes())))
        .collect();
    let seq_v4 = sequence(&v4, 1);
    let seq_v6 = sequence(&v6, 2);
    let fixed = Pseudonym::V6([7; 16]);

    let mut g = c.benchmark_group("cryptopan_cached");
    g.throughput(Throughput::Elements(1));

    let mut cache = AddrCache::new(CACHE_ENTRIES).expect("non-zero");
    for (k, p) in &filled {
        cache.insert(*k, *p);
    }
    // At a fifth of capacity a handful of sets overflow (about 7 keys of
    // 200,000 expected); the linked LRU keeps them all.
    eprintln!(
        "addr_cache: {} of {} pre-filled keys held",
        cache.len(),
        filled.len()
    );
    assert!(cache.len() * 1000 >= filled.len() * 999);
    for (name, seq) in [
        ("addr_cache/hit_v4", &seq_v4),
        ("addr_cache/hit_v6", &seq_v6),
    ] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & (SEQUENCE - 1);
                black_box(cache.get(black_box(&seq[i])))
            })
        });
    }
    // A miss, then the insert that follows it; the cache fills up and then
    // evicts on every insert.
    let mut n = 0;
    g.bench_function("addr_cache/miss_insert", |b| {
        b.iter(|| {
            let k = fresh_key(&mut n);
            if cache.get(black_box(&k)).is_none() {
                black_box(cache.insert(k, fixed));
            }
        })
    });
    drop(cache);

    // The linked LRU this replaced, used exactly as the worker used it.
    let cap = NonZeroUsize::new(CACHE_ENTRIES).expect("non-zero");
    let mut lru = lru::LruCache::<AddrKey, Pseudonym>::new(cap);
    for (k, p) in &filled {
        lru.push(*k, *p);
    }
    for (name, seq) in [
        ("lru_baseline/hit_v4", &seq_v4),
        ("lru_baseline/hit_v6", &seq_v6),
    ] {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) & (SEQUENCE - 1);
                black_box(lru.get(black_box(&seq[i])).copied())
            })
        });
    }
    let mut n = 0;
    g.bench_function("lru_baseline/miss_insert", |b| {
        b.iter(|| {
            let k = fresh_key(&mut n);
            if lru.get(black_box(&k)).is_none() {
                black_box(lru.push(k, fixed).is_some_and(|(old, _)| old != k));
            }
        })
    });
    g.finish();
}

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

    bench_cached(c, &pan);

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

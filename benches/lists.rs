//! Name and client list micro-benchmarks (issue 3): `fst` exact and suffix
//! lookups in a 1,000,000-name list, loading that list from text and from a
//! compiled `.fst`, and CIDR membership with 100,000 prefixes.
//!
//! `cargo bench --bench lists`

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use edm::lists::clients::ClientSet;
use edm::lists::names::{NameList, compile};

const NAMES: usize = 1_000_000;
const PREFIXES: usize = 100_000;

/// splitmix64: deterministic, well mixed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const TLDS: [&str; 8] = ["com", "net", "org", "de", "se", "cz", "co.uk", "io"];

/// The i-th name of the synthetic list: 90 % exact names, 10 % `.suffix` entries.
fn name(i: usize) -> String {
    let tld = TLDS[i % TLDS.len()];
    if i.is_multiple_of(10) {
        format!(".cdn{i:07}.example.{tld}")
    } else if i.is_multiple_of(3) {
        format!("www.site{i:07}.{tld}")
    } else {
        format!("site{i:07}.{tld}")
    }
}

fn list_text() -> String {
    let mut t = String::with_capacity(NAMES * 24);
    t.push_str("# synthetic 1M-name list\n");
    for i in 0..NAMES {
        t.push_str(&name(i));
        t.push('\n');
    }
    t
}

fn bench_names(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let txt = dir.path().join("list.txt");
    let fst = dir.path().join("list.fst");
    std::fs::write(&txt, list_text()).expect("write list");
    compile(&txt, &fst).expect("compile");
    let list = NameList::load(&fst).expect("load");
    assert_eq!(list.len(), NAMES);

    // Queries as the minimiser passes them: presentation format, fully qualified, any case.
    let mut s = 7;
    let mut pick = |f: &dyn Fn(usize) -> String| -> Vec<String> {
        (0..1024)
            .map(|_| f((next(&mut s) % NAMES as u64) as usize))
            .collect()
    };
    let exact = pick(&|i| {
        let i = if i % 10 == 0 { i + 1 } else { i };
        format!("{}.", name(i).to_uppercase())
    });
    let suffix = pick(&|i| {
        format!(
            "a.b.img{}.cdn{:07}.example.{}.",
            i,
            i / 10 * 10,
            TLDS[(i / 10 * 10) % TLDS.len()]
        )
    });
    let miss = pick(&|i| format!("www.nosuch{i:07}.example.com."));
    for q in exact.iter() {
        assert!(list.lookup(q).is_some_and(|m| !m.suffix), "{q}");
    }
    for q in suffix.iter() {
        assert!(list.lookup(q).is_some_and(|m| m.suffix), "{q}");
    }
    for q in miss.iter() {
        assert!(list.lookup(q).is_none(), "{q}");
    }

    let mut g = c.benchmark_group("names_1m");
    g.throughput(Throughput::Elements(1));
    for (label, qs) in [
        ("exact_hit", &exact),
        ("suffix_hit", &suffix),
        ("miss", &miss),
    ] {
        let mut i = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                black_box(list.lookup(black_box(&qs[i])))
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("names_1m_load");
    g.sample_size(10);
    g.bench_function("from_text", |b| {
        b.iter(|| black_box(NameList::load(&txt).expect("load").len()))
    });
    g.bench_function("from_fst", |b| {
        b.iter(|| black_box(NameList::load(&fst).expect("load").len()))
    });
    g.finish();
}

fn random_ip(s: &mut u64, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from((u128::from(next(s)) << 64 | u128::from(next(s))).to_be_bytes())
    } else {
        IpAddr::from((next(s) as u32).to_be_bytes())
    }
}

fn bench_clients(c: &mut Criterion) {
    let mut s = 11;
    let mut text = String::new();
    let mut members = Vec::new();
    for i in 0..PREFIXES {
        let v6 = i % 10 >= 7; // 70 % IPv4, 30 % IPv6
        let ip = random_ip(&mut s, v6);
        let len = if v6 {
            32 + next(&mut s) % 33
        } else {
            16 + next(&mut s) % 17
        };
        text.push_str(&format!("{ip}/{len}\n"));
        members.push(ip);
    }
    let set = ClientSet::from_text(&text, Path::new("bench"))
        .expect("parse")
        .expect("non-empty");
    let hits: Vec<IpAddr> = members.iter().step_by(97).copied().take(1024).collect();
    let misses: Vec<IpAddr> = (0..1024)
        .map(|i| random_ip(&mut s, i % 10 >= 7))
        .filter(|ip| set.check_ip(*ip) == edm::lists::clients::ClientMatch::NotIgnored)
        .collect();
    let to_bytes = |ips: &[IpAddr]| -> Vec<Vec<u8>> {
        ips.iter()
            .map(|ip| match ip {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            })
            .collect()
    };
    let (hits, misses) = (to_bytes(&hits), to_bytes(&misses));
    let mut g = c.benchmark_group("clients_100k");
    g.throughput(Throughput::Elements(1));
    for (label, qs) in [("hit", &hits), ("miss", &misses)] {
        let n = qs.len();
        let mut i = 0;
        g.bench_function(label, |b| {
            b.iter(|| {
                i = (i + 1) % n;
                black_box(set.check(black_box(&qs[i])))
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("clients_100k_load");
    g.sample_size(10);
    g.bench_function("from_text", |b| {
        b.iter_batched(
            || text.clone(),
            |t| black_box(ClientSet::from_text(&t, Path::new("bench")).map(|s| s.map(|s| s.len()))),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_names, bench_clients);
criterion_main!(benches);

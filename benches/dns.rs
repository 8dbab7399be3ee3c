//! Benchmarks for `edm::dns`: parsing a typical response, and the per-question
//! work the minimiser does on it (presentation name, validity, label split).
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::dns::{LABEL_COLUMNS, Message, is_domain_name, split_labels, write_name};

/// A typical recursive-resolver response of about 100 bytes: one question,
/// a CNAME and an A answer (both compressed), and an OPT record carrying a
/// DNS cookie.
fn typical_response() -> Vec<u8> {
    let mut m = Vec::new();
    // Header: id, flags QR RD RA, QD 1, AN 2, NS 0, AR 1.
    m.extend_from_slice(&[0x4a, 0x1f, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1]);
    // Question: www.example.com. A IN (offset 12).
    m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
    // www.example.com. CNAME cdn.example.com. (target compressed against example.com at 16).
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10, 0, 6]);
    m.extend_from_slice(b"\x03cdn\xc0\x10");
    // cdn.example.com. A 192.0.2.10 (owner points at the CNAME target, offset 45).
    m.extend_from_slice(&[0xc0, 45, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 10]);
    // OPT: root owner, UDP 1232, DO, COOKIE option (8-byte client + 16-byte server).
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 28, 0, 10, 0, 24]);
    m.extend((0u8..24).map(|i| i.wrapping_mul(37)));
    m
}

fn bench(c: &mut Criterion) {
    let wire = typical_response();
    assert!(Message::parse(&wire).is_ok());

    let mut g = c.benchmark_group("dns");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function(format!("parse_{}B_response_with_edns", wire.len()), |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&wire)).unwrap();
            black_box((m.rcode, m.question_count()))
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("qname_write_validate_split", |b| {
        let m = Message::parse(&wire).unwrap();
        let q = m.questions().next().unwrap();
        let mut name = String::new();
        let mut ranges = [None; LABEL_COLUMNS];
        b.iter(|| {
            write_name(black_box(&wire), q.name_offset, &mut name).unwrap();
            let ok = is_domain_name(&name);
            let split = split_labels(&name, &mut ranges);
            black_box((ok, split.count))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

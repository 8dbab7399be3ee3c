//! Cost of turning session rows into a durable Parquet file: appending
//! 100 000 realistic rows to worker-batch chunks and merging those into
//! page-sized chunks (the workers' and the collector's part), and that plus
//! encoding and writing one Snappy file (tmp, fsync, rename, directory fsync)
//! to a temporary directory (the writer's part).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edm::collector::parquet_file::{WrittenFile, file_name};
use edm::collector::session::{AddrColumns, Labels, OwnedRow, SessionRow};
use edm::collector::session_file::{SessionChunk, SessionFile};

const ROWS: usize = 100_000;

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Label ranges of a name without escapes, label0 = TLD.
fn labels(qname: &str) -> Labels {
    let mut out = Labels::default();
    let body = qname.strip_suffix('.').unwrap_or(qname);
    let mut ranges = Vec::new();
    let mut start = 0u16;
    for part in body.split('.') {
        let end = start + part.len() as u16;
        ranges.push((start, end));
        start = end + 1;
    }
    for (slot, r) in out.parts.iter_mut().zip(ranges.into_iter().rev()) {
        *slot = Some(r);
    }
    out
}

/// Session rows of one worker batch: 512 frames, three quarters of them
/// session rows.
const WORKER_ROWS: usize = 384;

/// Rows shaped like resolver traffic: 3–4 label names over a few thousand
/// domains, 60–250 byte responses, mostly IPv4 clients, UDP with some TCP.
fn rows() -> Vec<OwnedRow> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let tlds = ["com", "net", "org", "se", "nu", "io"];
    let hosts = ["www", "mail", "api", "cdn", "login", "static"];
    (0..ROWS)
        .map(|i| {
            let r = rng.next();
            let domain = format!("Example{}", r % 5000);
            let tld = tlds[(r >> 16) as usize % tlds.len()];
            let qname = if r & 1 == 0 {
                format!(
                    "{}.{domain}.{tld}.",
                    hosts[(r >> 24) as usize % hosts.len()]
                )
            } else {
                format!(
                    "a{}.{}.{domain}.{tld}.",
                    r >> 40,
                    hosts[(r >> 24) as usize % hosts.len()]
                )
            };
            let len = 60 + (r >> 32) as usize % 190;
            let message: Vec<u8> = (0..len).map(|j| (r >> (j % 56)) as u8 ^ j as u8).collect();
            let v6 = r.is_multiple_of(5);
            let addr = |x: u64| {
                if v6 {
                    AddrColumns::V6 {
                        network: 0x2001_0db8_0000_0000 | (x >> 48),
                        host: x,
                    }
                } else {
                    AddrColumns::V4(x as u32)
                }
            };
            let fixed = SessionRow {
                response_time_us: 1_700_000_000_000_000 + i as i64 * 600,
                source: addr(rng.next()),
                source_port: Some(1024 + (r >> 8) as u16 % 60_000),
                dest: addr(0xc000_0201),
                dest_port: Some(53),
                dns_protocol: Some(if r.is_multiple_of(10) { 2 } else { 1 }),
                server_id: None,
                labels: labels(&qname),
                qname: "",
                response_message: &[],
            };
            OwnedRow {
                qname,
                server_id: Some(b"resolver-1.example.net".to_vec()),
                response_message: message,
                fixed,
            }
        })
        .collect()
}

/// The rows in page chunks, as the pipeline builds them: each worker batch's
/// rows appended to a chunk of their own, merged by the collector.
fn append_all(rows: &[OwnedRow]) -> Vec<SessionChunk> {
    let mut chunk = SessionChunk::new();
    let mut chunks = Vec::new();
    for batch in rows.chunks(WORKER_ROWS) {
        let mut worker = SessionChunk::with_rows(batch.len());
        for row in batch {
            worker.append(&row.row());
        }
        chunk.extend_from(&worker);
        if chunk.is_full() {
            chunks.push(std::mem::take(&mut chunk));
        }
    }
    chunks.push(chunk);
    chunks
}

fn write_file(dir: &std::path::Path, name: &str, chunks: &[SessionChunk]) -> WrittenFile {
    let mut f = SessionFile::create(dir, name).expect("create");
    for c in chunks {
        f.write(c).expect("write");
    }
    f.finish(name).expect("finish")
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    // On tmpfs when there is one, so that fsync (disk latency) does not
    // drown the encoding cost.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("tempdir");
    let start = time::OffsetDateTime::from_unix_timestamp(1_700_000_040).expect("time");
    let name = file_name("dns_session_block", start, start + time::Duration::MINUTE);
    let mut g = c.benchmark_group("session_parquet");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.bench_function("append_100k", |b| b.iter(|| black_box(append_all(&rows))));
    g.bench_function("append_and_write_100k", |b| {
        b.iter(|| {
            let written = write_file(dir.path(), &name, &append_all(&rows));
            // Files are never replaced: free the name for the next iteration.
            std::fs::remove_file(&written.path).expect("remove");
            black_box(written)
        });
    });
    g.finish();
    let written = write_file(dir.path(), &name, &append_all(&rows));
    eprintln!("file size for {ROWS} rows: {} bytes", written.bytes);
}

criterion_group!(benches, bench);
criterion_main!(benches);

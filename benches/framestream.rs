//! Frame Streams decode throughput: a buffer of START, 1000 data frames of
//! about 180 bytes (the size of a typical dnstap response message) and STOP,
//! decoded whole, with and without the receiver session on top.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use edm::input::framestream::{
    Action, CONTENT_TYPE_DNSTAP, DEFAULT_MAX_FRAME_LEN, Decoder, ReceiverSession, encode_data,
    encode_file_start, encode_file_stop,
};

const FRAMES: usize = 1000;

/// START, 1000 data frames of 170..=190 bytes, STOP.
fn stream() -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_file_start(&mut out);
    for i in 0..FRAMES {
        let len = 170 + (i * 7) % 21;
        let payload: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
        encode_data(&payload, &mut out);
    }
    encode_file_stop(&mut out);
    out.to_vec()
}

fn bench(c: &mut Criterion) {
    let wire = stream();
    let mut g = c.benchmark_group("framestream");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("decode_1000x180", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| {
                let mut decoder = Decoder::new(DEFAULT_MAX_FRAME_LEN);
                let mut n = 0usize;
                while let Ok(Some(frame)) = decoder.decode(buf) {
                    black_box(&frame);
                    n += 1;
                }
                assert_eq!(n, FRAMES + 2);
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("decode_session_1000x180", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&wire[..]),
            |buf| {
                let mut decoder = Decoder::new(DEFAULT_MAX_FRAME_LEN);
                let mut session = ReceiverSession::new(CONTENT_TYPE_DNSTAP);
                let mut bytes = 0usize;
                while let Ok(Some(frame)) = decoder.decode(buf) {
                    match session.on_frame(frame) {
                        Ok(Action::Data(d)) => bytes += black_box(d).len(),
                        Ok(Action::Finish(_)) => break,
                        Ok(_) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                black_box(bytes);
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

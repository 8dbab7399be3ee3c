//! End-to-end tests of the running service: Frame Streams over unix and TCP,
//! both handshakes, malformed input, and SIGTERM without loss.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// The sample capture's data frames (read by the test's own reader).
fn sample() -> &'static Vec<Vec<u8>> {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| read_capture(&testdata("sample.fstrm")))
}

/// The outcome of processing the sample capture once, in input-file mode.
fn sample_once() -> Summary {
    static S: OnceLock<Summary> = OnceLock::new();
    *S.get_or_init(|| {
        let dir = tempdir("once");
        let cfg = config_text(
            dir.path(),
            &format!(
                "input-file = \"{}\"",
                testdata("sample.fstrm").to_string_lossy()
            ),
            "",
        );
        let f = run_to_end(dir.path(), &cfg, &[]);
        assert!(f.status.success(), "{}", f.stderr.join("\n"));
        f.summary()
    })
}

#[test]
fn input_file_accounts_for_every_frame() {
    let s = sample_once();
    assert_eq!(s.frames, sample().len() as u64);
    assert_eq!(s.frames, 5000);
    s.assert_accounted();
    assert!(s.rows > 3000, "{s:?}");
    assert!(s.histogram_updates > 0 && s.histogram_rows > 0, "{s:?}");
    assert_eq!(s.files, 2, "one session and one histogram file: {s:?}");
}

#[test]
fn unix_and_tcp_unidirectional_and_bidirectional_at_once() {
    let dir = tempdir("uni-bi");
    let sock = dir.path().join("edm.sock");
    let cfg = config_text(
        dir.path(),
        &format!(
            "input-unix = \"{}\"\ninput-tcp = \"127.0.0.1:0\"",
            sock.display()
        ),
        "minimiser-workers = 2",
    );
    let edm = Edm::start(dir.path(), &cfg, 2);
    let tcp = edm.tcp.expect("tcp listener");
    let frames = sample();
    std::thread::scope(|s| {
        s.spawn(|| send_session(connect_unix(&sock), frames, true));
        s.spawn(|| send_session(connect_unix(&sock), frames, false));
        s.spawn(|| send_session(connect_tcp(tcp), frames, true));
        s.spawn(|| send_session(connect_tcp(tcp), frames, false));
    });
    let n = 4 * frames.len() as u64;
    edm.wait_metric("edm_processed_dnstap_total", n, WAIT);
    assert_eq!(edm.metric("edm_input_connections_total"), 4);
    assert_eq!(edm.metric("edm_input_connection_errors_total"), 0);
    let f = edm.stop();
    let s = f.summary();
    s.assert_accounted();
    let once = sample_once();
    assert_eq!(s.frames, n);
    assert_eq!(s.rows, 4 * once.rows, "{s:?} vs 4 × {once:?}");
    assert_eq!(s.histogram_updates, 4 * once.histogram_updates);
    assert_eq!(s.dropped, 4 * once.dropped);
    assert!(!sock.exists(), "the socket file is removed at exit");
}

#[test]
fn stale_socket_is_replaced_and_mode_applied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("stale");
    let sock = dir.path().join("edm.sock");
    // A socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let cfg = config_text(
        dir.path(),
        &format!(
            "input-unix = \"{}\"\ninput-unix-mode = \"0600\"",
            sock.display()
        ),
        "",
    );
    let edm = Edm::start(dir.path(), &cfg, 1);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    send_session(connect_unix(&sock), &sample()[..100], false);
    edm.wait_metric("edm_processed_dnstap_total", 100, WAIT);
    edm.stop().summary().assert_accounted();
}

/// Frames are handed to the workers in batches; a partial batch must not wait
/// for more frames, nor for its connection to end.
#[test]
fn frames_of_an_open_quiet_connection_are_processed() {
    let dir = tempdir("quiet");
    let sock = dir.path().join("edm.sock");
    let cfg = config_text(
        dir.path(),
        &format!("input-unix = \"{}\"", sock.display()),
        "",
    );
    let edm = Edm::start(dir.path(), &cfg, 1);
    let mut c = connect_unix(&sock);
    c.write_all(&control_frame(START, Some(CONTENT_TYPE)))
        .unwrap();
    for f in &sample()[..3] {
        // One frame per write, like fstrm_replay.
        c.write_all(&data_frame(f)).unwrap();
    }
    edm.wait_metric("edm_processed_dnstap_total", 3, WAIT);
    // The connection is still open; more frames later are processed too.
    std::thread::sleep(Duration::from_millis(50));
    c.write_all(&data_frame(&sample()[3])).unwrap();
    edm.wait_metric("edm_processed_dnstap_total", 4, WAIT);
    c.write_all(&control_frame(STOP, None)).unwrap();
    drop(c);
    let s = edm.stop().summary();
    s.assert_accounted();
    assert_eq!(s.frames, 4);
}

/// One malformed connection, then a good frame on a fresh connection.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// The connection must be closed by edm (else: frames are counted drops).
    closes: bool,
}

fn malformed_cases(max_frame: usize) -> Vec<Case> {
    let start = control_frame(START, Some(CONTENT_TYPE));
    let mut truncated = start.clone();
    truncated.extend_from_slice(&200u32.to_be_bytes());
    truncated.extend_from_slice(&[7u8; 20]);
    let mut oversized = start.clone();
    oversized.extend_from_slice(&((max_frame + 1) as u32).to_be_bytes());
    oversized.extend_from_slice(&vec![0u8; 1024]);
    let with = |payload: Vec<u8>| {
        let mut v = start.clone();
        v.extend_from_slice(&data_frame(&payload));
        v.extend_from_slice(&control_frame(STOP, None));
        v
    };
    let mut bad_control = start.clone();
    bad_control.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 0]); // control frame shorter than its type
    vec![
        Case {
            name: "garbage bytes",
            bytes: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01garbage".to_vec(),
            closes: true,
        },
        Case {
            name: "truncated frame",
            bytes: truncated,
            closes: false,
        },
        Case {
            name: "oversized frame",
            bytes: oversized,
            closes: true,
        },
        Case {
            name: "wrong content type (unidirectional)",
            bytes: control_frame(START, Some(b"protobuf:other.Thing")),
            closes: true,
        },
        Case {
            name: "wrong content type (bidirectional)",
            bytes: control_frame(READY, Some(b"protobuf:other.Thing")),
            closes: true,
        },
        Case {
            name: "data before START",
            bytes: data_frame(b"hello"),
            closes: true,
        },
        Case {
            name: "invalid control frame",
            bytes: bad_control,
            closes: true,
        },
        Case {
            name: "not protobuf",
            bytes: with(b"\xff\xff\xff\xff not a protobuf".to_vec()),
            closes: false,
        },
        Case {
            name: "dnstap frame with no message",
            bytes: with(dnstap_without_message()),
            closes: false,
        },
        Case {
            name: "undecodable DNS",
            bytes: with(dnstap_client_response([198, 51, 100, 7], b"\x12\x34\x81")),
            closes: false,
        },
        Case {
            name: "DNS with a truncated question",
            bytes: with(dnstap_client_response(
                [198, 51, 100, 7],
                &dns_response(1)[..20],
            )),
            closes: false,
        },
    ]
}

#[test]
fn malformed_input_is_dropped_or_closed_and_service_continues() {
    let dir = tempdir("malformed");
    let sock = dir.path().join("edm.sock");
    let max_frame = 4096;
    let cfg = config_text(
        dir.path(),
        &format!("input-unix = \"{}\"", sock.display()),
        &format!("max-frame-length = {max_frame}\nminimiser-workers = 1"),
    );
    let edm = Edm::start(dir.path(), &cfg, 1);
    let good = dnstap_client_response([198, 51, 100, 7], &dns_response(7));
    let mut processed = 0;
    let mut errors = 0;
    for case in malformed_cases(max_frame) {
        let frames_before = edm.metric("edm_input_frames_total");
        let mut c = connect_unix(&sock);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.write_all(&case.bytes);
        if case.closes {
            assert!(
                closed_by_peer(&mut c),
                "{}: edm kept the connection",
                case.name
            );
            errors += 1;
            edm.wait_metric("edm_input_connection_errors_total", errors, WAIT);
        } else {
            drop(c);
        }
        let frames_after_bad = if case.closes {
            frames_before
        } else if case.name == "truncated frame" {
            edm.wait_metric("edm_input_truncated_bytes_total", 20, WAIT);
            frames_before
        } else {
            frames_before + 1
        };
        // The next good frame, on a new connection, is processed.
        send_session(connect_unix(&sock), std::slice::from_ref(&good), true);
        processed = frames_after_bad + 1;
        edm.wait_metric("edm_processed_dnstap_total", processed, WAIT);
        assert_eq!(
            edm.metric("edm_input_frames_total"),
            processed,
            "{}: frame count",
            case.name
        );
    }
    assert_eq!(edm.metric("edm_dnstap_decode_error_total"), 1);
    assert_eq!(edm.metric("edm_ignored_dns_parse_error_total"), 3);
    let f = edm.stop();
    let s = f.summary();
    s.assert_accounted();
    assert_eq!(s.frames, processed);
    assert_eq!(s.dropped, 4, "{s:?}");
    assert_eq!(s.rows, processed - 4, "{s:?}");
    // Every bad connection is logged with a reason, and none of it panicked.
    let log = f.stderr.join("\n");
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("closing connection"), "{log}");
    assert!(log.contains("partial frame discarded"), "{log}");
}

#[test]
fn sigterm_during_a_stream_loses_nothing() {
    let dir = tempdir("sigterm");
    let sock = dir.path().join("edm.sock");
    let cfg = config_text(
        dir.path(),
        &format!("input-unix = \"{}\"", sock.display()),
        "shutdown-drain-ms = 20000\nminimiser-workers = 2",
    );
    let edm = Edm::start(dir.path(), &cfg, 1);
    let frames = sample();
    // 250,000 frames per connection, paced (a round every 10 ms) so the signal
    // lands mid-stream; the pauses stay well under edm's 200 ms drain idle time.
    let rounds = 50;
    let sent = Arc::new(AtomicU64::new(0));
    let signalled_at = Arc::new(AtomicU64::new(u64::MAX));
    std::thread::scope(|s| {
        for bidirectional in [true, false] {
            let sent = sent.clone();
            let sock = sock.clone();
            s.spawn(move || {
                let mut c = connect_unix(&sock);
                if bidirectional {
                    c.write_all(&control_frame(READY, Some(CONTENT_TYPE)))
                        .unwrap();
                    assert_eq!(read_control(&mut c).unwrap(), ACCEPT);
                }
                c.write_all(&control_frame(START, Some(CONTENT_TYPE)))
                    .unwrap();
                for _ in 0..rounds {
                    let mut buf = Vec::new();
                    for f in frames {
                        buf.extend_from_slice(&data_frame(f));
                    }
                    c.write_all(&buf).expect("edm keeps reading while draining");
                    sent.fetch_add(frames.len() as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
                c.write_all(&control_frame(STOP, None)).unwrap();
                if bidirectional {
                    assert_eq!(read_control(&mut c).unwrap(), FINISH);
                }
            });
        }
        // Signal once some, but not all, frames have been sent.
        let total = 2 * rounds * frames.len() as u64;
        while sent.load(Ordering::Relaxed) < total / 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        signalled_at.store(sent.load(Ordering::Relaxed), Ordering::Relaxed);
        edm.signal_term();
    });
    let total = 2 * rounds * frames.len() as u64;
    assert_eq!(sent.load(Ordering::Relaxed), total);
    let at = signalled_at.load(Ordering::Relaxed);
    assert!(at < total, "the signal came after everything was sent");
    let f = edm.wait();
    assert!(f.status.success(), "{}", f.stderr.join("\n"));
    let s = f.summary();
    s.assert_accounted();
    assert_eq!(s.frames, total, "frames sent = frames read: {s:?}");
    let once = sample_once();
    assert_eq!(s.rows, 2 * rounds * once.rows);
    assert_eq!(s.dropped, 2 * rounds * once.dropped);
    eprintln!("signal after {at} of {total} frames sent; {s:?}");
}

//! Interop: real Frame Streams senders against a running edm.
//!
//! * `fstrm_replay` (C, libfstrm; Debian `fstrm-bin`) over unix and TCP;
//! * the Go `dnstap` tool (golang-dnstap; Debian
//!   `golang-github-dnstap-golang-dnstap-cli`) over unix and TCP.
//!
//! Both speak the bidirectional handshake; the unidirectional one is covered
//! in `tests/ingest.rs`. Each test checks frames in = rows + histogram
//! updates + counted drops, exactly, and the same split as input-file mode.
//! Without the programs the tests print SKIPPED, except under CI where
//! `.ci/run` installs them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

/// Processing the sample once in input-file mode: the reference split.
fn expected() -> Summary {
    let dir = tempdir("interop-ref");
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
}

enum Via {
    Unix,
    Tcp,
}

fn replay(test: &str, program: &str, via: Via, args: impl Fn(&Edm) -> Vec<String>) {
    let Some(bin) = require_program(program, test) else {
        return;
    };
    let dir = tempdir(test);
    let input = match via {
        Via::Unix => format!("input-unix = \"{}\"", dir.path().join("edm.sock").display()),
        Via::Tcp => "input-tcp = \"127.0.0.1:0\"".to_owned(),
    };
    let cfg = config_text(dir.path(), &input, "");
    let edm = Edm::start(dir.path(), &cfg, 1);
    let out = Command::new(&bin)
        .args(args(&edm))
        .output()
        .expect("run sender");
    assert!(
        out.status.success(),
        "{program} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let want = expected();
    edm.wait_metric(
        "edm_processed_dnstap_total",
        want.frames,
        Duration::from_secs(60),
    );
    assert_eq!(edm.metric("edm_input_connection_errors_total"), 0);
    let f = edm.stop();
    let s = f.summary();
    s.assert_accounted();
    assert_eq!(s.frames, 5000);
    assert_eq!(
        (s.frames, s.rows, s.histogram_updates, s.dropped),
        (want.frames, want.rows, want.histogram_updates, want.dropped),
        "{program}: same split as input-file mode"
    );
    eprintln!("{test}: {s:?}");
}

fn sample() -> String {
    testdata("sample.fstrm").to_string_lossy().into_owned()
}

#[test]
fn fstrm_replay_unix() {
    replay("fstrm_replay_unix", "fstrm_replay", Via::Unix, |edm| {
        vec![
            "-t".into(),
            "protobuf:dnstap.Dnstap".into(),
            "-r".into(),
            sample(),
            "-u".into(),
            edm.unix.as_ref().unwrap().to_string_lossy().into_owned(),
        ]
    });
}

#[test]
fn fstrm_replay_tcp() {
    replay("fstrm_replay_tcp", "fstrm_replay", Via::Tcp, |edm| {
        let a = edm.tcp.unwrap();
        vec![
            "-t".into(),
            "protobuf:dnstap.Dnstap".into(),
            "-r".into(),
            sample(),
            "-a".into(),
            a.ip().to_string(),
            "-p".into(),
            a.port().to_string(),
        ]
    });
}

#[test]
fn golang_dnstap_unix() {
    replay("golang_dnstap_unix", "dnstap", Via::Unix, |edm| {
        vec![
            "-r".into(),
            sample(),
            "-U".into(),
            edm.unix.as_ref().unwrap().to_string_lossy().into_owned(),
        ]
    });
}

#[test]
fn golang_dnstap_tcp() {
    replay("golang_dnstap_tcp", "dnstap", Via::Tcp, |edm| {
        vec![
            "-r".into(),
            sample(),
            "-T".into(),
            edm.tcp.unwrap().to_string(),
        ]
    });
}

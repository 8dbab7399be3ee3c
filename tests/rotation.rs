//! `POST /debug/rotate-parquet` against the running service: both files are
//! cut at the request time, an empty interval writes nothing, the next
//! interval starts where the last one stopped, and the route is absent
//! unless enabled. (Status codes 500/503/504 are unit tests in `src/http.rs`.)

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

/// (start, stop) from `<prefix>-<start>_<stop>.parquet`.
fn interval(p: &Path) -> (String, String) {
    let name = p.file_stem().unwrap().to_string_lossy().into_owned();
    let (_, times) = name.split_once('-').unwrap();
    let (a, b) = times.split_once('_').unwrap();
    (a.to_owned(), b.to_owned())
}

fn wait_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let f = parquet_files(dir);
        if f.len() >= n {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "{n} files expected in {dir:?}: {f:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `2026-11-24T04-11-32Z` for a Unix time.
fn stamp(secs: u64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H-%M-%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn manual_rotation_cuts_both_files_at_the_request_time() {
    avoid_minute_boundary();
    let dir = tempdir("rotate");
    let sock = dir.path().join("edm.sock");
    let cfg = config_text(
        dir.path(),
        &format!("input-unix = \"{}\"", sock.display()),
        "enable-manual-parquet-rotation = true",
    );
    let edm = Edm::start(dir.path(), &cfg, 1);
    let sessions = dir.path().join("data/parquet/sessions");
    let histograms = dir.path().join("data/parquet/histograms/outbox");
    let frames = read_capture(&testdata("sample.fstrm"));

    send_session(connect_unix(&sock), &frames, true);
    edm.wait_metric("edm_processed_dnstap_total", 5000, Duration::from_secs(60));
    let before = now();
    let (status, _, body) = http(edm.metrics, "POST", "/debug/rotate-parquet");
    let after = now();
    assert_eq!((status, body.as_str()), (202, "rotation requested\n"));
    let s1 = wait_files(&sessions, 1);
    let h1 = wait_files(&histograms, 1);
    let (_, stop) = interval(&s1[0]);
    assert_eq!(
        interval(&h1[0]).1,
        stop,
        "both files share the request time"
    );
    assert!(
        (before..=after).map(stamp).any(|t| t == stop),
        "stop {stop} is the request time ({before}..={after})"
    );
    assert_eq!(edm.metric("edm_session_rows_written_total"), 3511);
    assert_eq!(edm.metric("edm_histogram_rows_written_total"), 13);

    // An empty interval: 202, no file.
    let (status, _, _) = http(edm.metrics, "POST", "/debug/rotate-parquet");
    assert_eq!(status, 202);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(parquet_files(&sessions).len(), 1);
    assert_eq!(parquet_files(&histograms).len(), 1);

    // The next interval starts where the last one stopped (or at the empty rotation).
    std::thread::sleep(Duration::from_millis(1100));
    send_session(connect_unix(&sock), &frames[..1000], false);
    edm.wait_metric("edm_processed_dnstap_total", 6000, Duration::from_secs(60));
    assert_eq!(http(edm.metrics, "POST", "/debug/rotate-parquet").0, 202);
    let s2 = wait_files(&sessions, 2);
    let (start2, stop2) = interval(&s2[1]);
    assert!(start2 >= stop && stop2 > stop, "{s2:?}");

    let f = edm.stop();
    f.summary().assert_accounted();
    // Nothing was left for the final flush.
    assert_eq!(parquet_files(&sessions).len(), 2);
}

#[test]
fn rotation_route_is_absent_unless_enabled() {
    let dir = tempdir("norotate");
    let cfg = config_text(
        dir.path(),
        &format!("input-unix = \"{}\"", dir.path().join("edm.sock").display()),
        "enable-manual-parquet-rotation = false",
    );
    let edm = Edm::start(dir.path(), &cfg, 1);
    assert_eq!(http(edm.metrics, "POST", "/debug/rotate-parquet").0, 404);
    let (status, head, _) = {
        let cfg2 = config_text(
            &dir.path().join("b"),
            &format!("input-unix = \"{}\"", dir.path().join("b.sock").display()),
            "enable-manual-parquet-rotation = true",
        );
        let other = Edm::start(&dir.path().join("b"), &cfg2, 1);
        let r = http(other.metrics, "GET", "/debug/rotate-parquet");
        other.stop();
        r
    };
    assert_eq!(status, 405);
    assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");
    edm.stop();
}

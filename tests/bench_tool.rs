//! `edm bench` end to end: it starts a real `edm run`, sends its workload and
//! reports one JSON line whose counts match what edm wrote.

mod common;

use std::process::Command;

use common::*;

#[test]
fn bench_reports_one_json_line_with_every_frame_accounted_for() {
    let dir = tempdir("bench");
    let out = Command::new(edm_bin())
        .args([
            "bench",
            "--frames",
            "20000",
            "--runs",
            "2",
            "--workers",
            "2",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("run edm bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["frames"], 20000);
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    for r in v["runs"].as_array().unwrap() {
        assert!(r["frames_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["cpu_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 0.0, "{r}");
    }
    // Every frame is a kept response: session rows + histogram updates.
    let summary = v["summary"].as_str().unwrap();
    let n = |after: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|p| p.strip_suffix(after))
            .and_then(|p| p.trim_start_matches("edm: ").parse().ok())
            .unwrap_or_else(|| panic!("{after} in {summary}"))
    };
    let rows = n(" session rows written");
    assert!(summary.starts_with("edm: 20000 frames"), "{summary}");
    assert!(summary.contains(" 0 dropped"), "{summary}");
    let updates: u64 = summary
        .split(", ")
        .find_map(|p| {
            p.split(" histogram updates")
                .next()
                .filter(|_| p.contains("histogram updates"))
        })
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert_eq!(rows + updates, 20000, "{summary}");
    // Run directories are removed unless --keep.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // --write-capture: a Frame Streams file edm itself reads back.
    let cap = dir.path().join("w.fstrm");
    let st = Command::new(edm_bin())
        .args(["bench", "--frames", "5000", "--write-capture"])
        .arg(&cap)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(read_capture(&cap).len(), 5000);
    assert!(dir.path().join("w.fstrm.well-known.txt").exists());
}

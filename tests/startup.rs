//! Startup errors: edm exits non-zero with exactly one clear line on stderr
//! naming the problem, and starts nothing.

mod common;

use common::*;

/// Run `edm run` with `config` (plus flags) and return its single stderr line.
fn fails_with_one_line(dir: &std::path::Path, config: &str, args: &[&str]) -> String {
    let f = run_to_end(dir, config, args);
    assert!(!f.status.success(), "edm should fail; stdout: {}", f.stdout);
    assert_eq!(f.status.code(), Some(1));
    assert_eq!(
        f.stderr.len(),
        1,
        "exactly one line on stderr, got:\n{}",
        f.stderr.join("\n")
    );
    assert!(f.stdout.is_empty(), "nothing on stdout: {}", f.stdout);
    let line = f.stderr[0].clone();
    assert!(line.starts_with("edm: "), "{line}");
    line
}

fn unix_input(dir: &std::path::Path) -> String {
    format!("input-unix = \"{}\"", dir.join("edm.sock").display())
}

#[test]
fn missing_key() {
    let dir = tempdir("nokey");
    let cfg = config_text(dir.path(), &unix_input(dir.path()), "")
        .replace("cryptopan-key = \"edm-example-key-change-me\"\n", "");
    let line = fails_with_one_line(dir.path(), &cfg, &[]);
    assert!(line.contains("cryptopan-key: required"), "{line}");
    assert!(line.contains("edm.toml"), "names the file: {line}");
}

#[test]
fn unknown_key_names_key_and_line() {
    let dir = tempdir("unknown");
    let cfg = format!(
        "# comment\n\nbogus-option = 3\n{}",
        config_text(dir.path(), &unix_input(dir.path()), "")
    );
    let line = fails_with_one_line(dir.path(), &cfg, &[]);
    assert!(line.contains("line 3: bogus-option: unknown key"), "{line}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempdir("many");
    let cfg = config_text(
        dir.path(),
        &unix_input(dir.path()),
        "minimiser-workers = \"four\"\nhistogram-hll-explicit-threshold = 0\nmystery = true",
    )
    .replace(
        "metrics-address = \"127.0.0.1:0\"",
        "metrics-address = \"nope\"",
    );
    let line = fails_with_one_line(dir.path(), &cfg, &["--max-frame-length", "2"]);
    for want in [
        "line 3: metrics-address",
        "minimiser-workers: expected an integer",
        "histogram-hll-explicit-threshold: must be between 1 and 131072",
        "mystery: unknown key",
        "max-frame-length: must be between",
    ] {
        assert!(line.contains(want), "missing {want:?} in {line}");
    }
}

#[test]
fn missing_config_file() {
    let dir = tempdir("nocfg");
    let f = std::process::Command::new(edm_bin())
        .args(["run", "--config"])
        .arg(dir.path().join("absent.toml"))
        .output()
        .unwrap();
    assert_eq!(f.status.code(), Some(1));
    let err = String::from_utf8_lossy(&f.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot read config file") && err.contains("absent.toml"));
}

#[test]
fn bad_data_dir() {
    let dir = tempdir("baddata");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let cfg = config_text(dir.path(), &unix_input(dir.path()), "");
    let line = fails_with_one_line(
        dir.path(),
        &cfg,
        &["--data-dir", &file.join("sub").to_string_lossy()],
    );
    assert!(
        line.contains("cannot create data directory") && line.contains("a-file/sub"),
        "{line}"
    );
}

#[test]
fn missing_list_file() {
    let dir = tempdir("nolist");
    let cfg = config_text(dir.path(), &unix_input(dir.path()), "");
    let missing = dir.path().join("absent-list.txt");
    let line = fails_with_one_line(
        dir.path(),
        &cfg,
        &["--ignored-client-ips-file", &missing.to_string_lossy()],
    );
    assert!(
        line.contains("ignored-client-ips-file") && line.contains("absent-list.txt"),
        "{line}"
    );
}

#[test]
fn bad_list_line_names_file_and_line() {
    let dir = tempdir("badlist");
    let list = dir.path().join("clients.txt");
    std::fs::write(&list, "# ok\n10.0.0.0/8\nnot-a-cidr\n").unwrap();
    let cfg = config_text(dir.path(), &unix_input(dir.path()), "");
    let line = fails_with_one_line(
        dir.path(),
        &cfg,
        &["--ignored-client-ips-file", &list.to_string_lossy()],
    );
    assert!(
        line.contains("clients.txt") && line.contains("line 3"),
        "{line}"
    );
}

#[test]
fn missing_input_file() {
    let dir = tempdir("noinput");
    let missing = dir.path().join("absent.fstrm");
    let cfg = config_text(
        dir.path(),
        &format!("input-file = \"{}\"", missing.display()),
        "",
    );
    let line = fails_with_one_line(dir.path(), &cfg, &[]);
    assert!(
        line.contains("cannot open capture file") && line.contains("absent.fstrm"),
        "{line}"
    );
}

#[test]
fn socket_in_use() {
    let dir = tempdir("inuse");
    let cfg = config_text(dir.path(), &unix_input(dir.path()), "");
    let first = Edm::start(&dir.path().join("first"), &cfg, 1);
    let line = fails_with_one_line(&dir.path().join("second"), &cfg, &[]);
    assert!(line.contains("edm.sock is in use"), "{line}");
    // The first instance is unharmed.
    send_session(
        connect_unix(&dir.path().join("edm.sock")),
        &read_capture(&testdata("sample.fstrm"))[..10],
        true,
    );
    first.wait_metric(
        "edm_processed_dnstap_total",
        10,
        std::time::Duration::from_secs(30),
    );
    first.stop().summary().assert_accounted();
}

#[test]
fn tcp_address_in_use() {
    let dir = tempdir("tcpinuse");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = config_text(dir.path(), &format!("input-tcp = \"{addr}\""), "");
    let line = fails_with_one_line(dir.path(), &cfg, &[]);
    assert!(line.contains(&addr.to_string()), "{line}");
}

//! Whole-output comparison with an independent model of edm
//! (`testdata/expected/gen_expected.py`: miekg-faithful DNS parsing, list
//! rules, Crypto-PAn and HLL from the shared oracles; provenance in
//! `testdata/expected/README.md`). For three corpora — synthetic, an Unbound
//! capture and a hand-made edge-case corpus (unknown socket family, mapped
//! clients, bad addresses, empty questions, …) — edm's Parquet files are read
//! by pyarrow (`tests/py/compare_expected.py`) and every session row and
//! histogram row must equal the model's, with the schema checked too.

mod common;

use std::process::Command;

use common::*;

fn check(name: &str, capture: &str, lists: [&str; 3], extra: &str, workers: u32) {
    let Some(python) = python_with_pyarrow() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "pyarrow is required under CI"
        );
        eprintln!("SKIPPED expected_model {name}: no python with pyarrow");
        return;
    };
    let dir = tempdir(&format!("model-{name}"));
    let cfg = format!(
        "input-file = \"{}\"\ndata-dir = \"{}\"\nmetrics-address = \"\"\n\
         cryptopan-key = \"edm-example-key-change-me\"\ncryptopan-key-salt = \"edm-kdf-salt-val\"\n\
         well-known-domains-file = \"{}\"\nignored-question-names-file = \"{}\"\nignored-client-ips-file = \"{}\"\n\
         disable-mqtt = true\nminimiser-workers = {workers}\n{extra}\n",
        testdata(capture).display(),
        dir.path().join("data").display(),
        testdata(lists[0]).display(),
        testdata(lists[1]).display(),
        testdata(lists[2]).display(),
    );
    let f = run_to_end(dir.path(), &cfg, &[]);
    assert!(f.status.success(), "{}", f.stderr.join("\n"));
    f.summary().assert_accounted();
    let out = Command::new(&python)
        .arg(manifest().join("tests/py/compare_expected.py"))
        .arg(testdata(&format!("expected/{name}.expected.json")))
        .arg(dir.path().join("data"))
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name}: {text}");
    eprintln!("{name}: {}", text.trim());
}

#[test]
fn synthetic_corpus_equals_the_model() {
    check(
        "sample",
        "sample.fstrm",
        [
            "well-known-domains.txt",
            "ignored-question-names.txt",
            "ignored-client-ips.txt",
        ],
        "",
        2,
    );
}

#[test]
fn unbound_capture_equals_the_model() {
    check(
        "unbound",
        "unbound.fstrm",
        [
            "expected/unbound-well-known.txt",
            "expected/unbound-ignored-names.txt",
            "expected/unbound-ignored-clients.txt",
        ],
        "",
        2,
    );
}

#[test]
fn edge_cases_equal_the_model() {
    check(
        "edge",
        "expected/edge.fstrm",
        [
            "expected/edge-well-known.txt",
            "expected/edge-ignored-names.txt",
            "expected/edge-ignored-clients.txt",
        ],
        "histogram-hll-explicit-threshold = 1",
        1,
    );
}

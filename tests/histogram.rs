//! Histograms end to end: edm's histogram files and drop counters for a
//! synthetic corpus and an Unbound capture, against expectations computed
//! independently (`testdata/histogram/gen_expected.py`: python protobuf +
//! dnspython for decoding, python-hll + mmh3 for the sketches, list rules
//! re-implemented from the spec).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use arrow_array::{Array, BinaryArray, StringArray, UInt64Array};
use common::*;

const COUNTERS: [&str; 13] = [
    "a_count",
    "aaaa_count",
    "mx_count",
    "ns_count",
    "other_type_count",
    "non_in_count",
    "ok_count",
    "nx_count",
    "fail_count",
    "other_rcode_count",
    "edm_status_bits",
    "v4client_count",
    "v6client_count",
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every histogram row in `dir` as JSON-like maps keyed by column.
fn read_rows(dir: &Path) -> Vec<HashMap<String, serde_json::Value>> {
    let mut out = Vec::new();
    for f in parquet_files(dir) {
        let file = std::fs::File::open(&f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            for i in 0..batch.num_rows() {
                let mut row = HashMap::new();
                let labels: Vec<serde_json::Value> = (0..10)
                    .map(|l| {
                        let c = batch.column_by_name(&format!("label{l}")).unwrap();
                        let c = c.as_any().downcast_ref::<StringArray>().unwrap();
                        if c.is_valid(i) {
                            c.value(i).into()
                        } else {
                            serde_json::Value::Null
                        }
                    })
                    .collect();
                row.insert("labels".to_owned(), labels.into());
                for name in COUNTERS {
                    let c = batch.column_by_name(name).unwrap();
                    let c = c.as_any().downcast_ref::<UInt64Array>().unwrap();
                    row.insert(name.to_owned(), c.value(i).into());
                }
                for name in ["v4client_count_hll", "v6client_count_hll"] {
                    let c = batch.column_by_name(name).unwrap();
                    let c = c.as_any().downcast_ref::<BinaryArray>().unwrap();
                    let v = if c.is_valid(i) {
                        hex(c.value(i)).into()
                    } else {
                        serde_json::Value::Null
                    };
                    row.insert(name.to_owned(), v);
                }
                out.push(row);
            }
        }
    }
    out
}

fn check(capture: &str, well_known: &Path, clients: &Path, expected: &str) {
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata(expected)).unwrap()).unwrap();
    let dir = tempdir("histogram");
    let sock = dir.path().join("edm.sock");
    let cfg = config_text(
        dir.path(),
        &format!("input-unix = \"{}\"", sock.display()),
        "",
    )
    .lines()
    .map(|l| {
        if l.starts_with("well-known-domains-file") {
            format!("well-known-domains-file = \"{}\"", well_known.display())
        } else if l.starts_with("ignored-client-ips-file") {
            format!("ignored-client-ips-file = \"{}\"", clients.display())
        } else {
            l.to_owned()
        }
    })
    .collect::<Vec<_>>()
    .join("\n");
    let edm = Edm::start(dir.path(), &cfg, 1);
    let frames = read_capture(&testdata(capture));
    send_session(connect_unix(&sock), &frames, true);
    edm.wait_metric(
        "edm_processed_dnstap_total",
        frames.len() as u64,
        Duration::from_secs(60),
    );
    let c = &expected["counts"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(frames.len() as u64, n("frames"));
    assert_eq!(
        edm.metric("edm_dnstap_decode_error_total"),
        n("undecodable")
    );
    assert_eq!(edm.metric("edm_dnstap_query_skipped_total"), n("queries"));
    assert_eq!(
        edm.metric("edm_ignored_client_ip_total") + edm.metric("edm_ignored_client_ip_error_total"),
        n("ignored_client")
    );
    assert_eq!(
        edm.metric("edm_ignored_dns_parse_error_total"),
        n("parse_error")
    );
    assert_eq!(
        edm.metric("edm_ignored_question_name_total"),
        n("ignored_name")
    );
    assert_eq!(edm.metric("edm_histogram_updates_total"), n("histogram"));
    assert_eq!(edm.metric("edm_session_rows_total"), n("session"));
    let f = edm.stop();
    let s = f.summary();
    s.assert_accounted();
    assert_eq!(s.rows, n("session"));

    // Histogram rows: every counter, client count and sketch byte.
    let got = read_rows(&dir.path().join("data/parquet/histograms/outbox"));
    let want = expected["rows"].as_array().unwrap();
    assert_eq!(got.len(), want.len(), "one row per well-known entry hit");
    let key = |labels: &serde_json::Value| labels.to_string();
    let by_labels: HashMap<String, &HashMap<String, serde_json::Value>> =
        got.iter().map(|r| (key(&r["labels"]), r)).collect();
    for w in want {
        let entry = w["entry"].as_str().unwrap();
        let g = by_labels
            .get(&key(&w["labels"]))
            .unwrap_or_else(|| panic!("no row for {entry}"));
        for col in COUNTERS
            .iter()
            .copied()
            .chain(["v4client_count_hll", "v6client_count_hll"])
        {
            assert_eq!(g[col], w[col], "{entry}: {col}");
        }
    }

    // No session row comes from an ignored client.
    let nets: Vec<ipnet::IpNet> = std::fs::read_to_string(clients)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.parse().unwrap())
        .collect();
    let raw = raw_addresses(&frames);
    let rows = read_sessions(&dir.path().join("data/parquet/sessions"));
    assert_eq!(rows.len() as u64, n("session"));
    for r in &rows {
        let (client, _) = raw[&(
            r.response_time.unwrap(),
            r.response_message.clone().unwrap(),
        )];
        let client = client.unwrap();
        assert!(
            !nets.iter().any(|n| n.contains(&client)),
            "ignored client in a session row"
        );
    }
    eprintln!(
        "{capture}: {} histogram rows and {} session rows as expected; {c}",
        got.len(),
        rows.len()
    );
}

#[test]
fn synthetic_corpus_matches_independent_counts_and_sketches() {
    check(
        "sample.fstrm",
        &testdata("well-known-domains.txt"),
        &testdata("histogram/sample-ignored-clients.txt"),
        "histogram/sample.expected.json",
    );
}

#[test]
fn unbound_capture_matches_independent_counts_and_sketches() {
    check(
        "unbound.fstrm",
        &testdata("histogram/unbound-well-known.txt"),
        &testdata("histogram/unbound-ignored-clients.txt"),
        "histogram/unbound.expected.json",
    );
}

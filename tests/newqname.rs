//! New-qname detection against the running service: every distinct name of
//! the responses that become session rows is new exactly once, and a restart
//! on the same data directory announces none of them again (the seen store
//! persists). The MQTT publisher is issue 5's next step.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

/// question[0] of a DNS message, lowercased, dotted (uncompressed names only,
/// which is what the question of a response is).
fn first_qname(msg: &[u8]) -> String {
    let mut i = 12;
    let mut out = String::new();
    while let Some(&len) = msg.get(i) {
        if len == 0 {
            break;
        }
        let label = &msg[i + 1..i + 1 + len as usize];
        out.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        out.push('.');
        i += 1 + len as usize;
    }
    out
}

#[test]
fn every_name_is_new_once_and_stays_seen_across_restart() {
    let dir = tempdir("newqname");
    let sock = dir.path().join("edm.sock");
    let cfg = config_text(
        dir.path(),
        &format!("input-unix = \"{}\"", sock.display()),
        "minimiser-workers = 2\nqname-seen-entries = 1000",
    );
    let frames = read_capture(&testdata("sample.fstrm"));

    let edm = Edm::start(dir.path(), &cfg, 1);
    send_session(connect_unix(&sock), &frames, true);
    send_session(connect_unix(&sock), &frames, false);
    edm.wait_metric(
        "edm_processed_dnstap_total",
        10_000,
        Duration::from_secs(60),
    );
    let new = edm.metric("edm_seen_qname_new_total");
    assert_eq!(edm.metric("edm_seen_qname_store_errors_total"), 0);
    edm.stop();

    let rows = read_sessions(&dir.path().join("data/parquet/sessions"));
    let names: HashSet<String> = rows
        .iter()
        .map(|r| first_qname(r.response_message.as_deref().unwrap()))
        .collect();
    assert_eq!(rows.len(), 2 * 3511);
    assert_eq!(new, names.len() as u64, "one new per distinct name");

    // Restart on the same data dir: nothing is new.
    let edm = Edm::start(dir.path(), &cfg, 1);
    send_session(connect_unix(&sock), &frames, true);
    edm.wait_metric("edm_processed_dnstap_total", 5000, Duration::from_secs(60));
    assert_eq!(edm.metric("edm_seen_qname_new_total"), 0);
    edm.stop();
    eprintln!("{new} distinct new names of {} session rows", rows.len());
}

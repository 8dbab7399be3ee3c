use bytes::Bytes;
use prost::Message as _;

use super::*;
use crate::collector::session::OwnedRow;
use crate::dnstap::{Dnstap, Message};

/// A response for `name` (dotted, no trailing dot needed) with one question.
fn dns_response(name: &str, qtype: u16, rcode: u8) -> Vec<u8> {
    let mut w = vec![0x12, 0x34, 0x81, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w.extend_from_slice(&qtype.to_be_bytes());
    w.extend_from_slice(&1u16.to_be_bytes());
    w
}

fn response_msg(wire: Vec<u8>) -> Message {
    Message {
        r#type: Some(6),
        socket_family: Some(1),
        socket_protocol: Some(1),
        query_address: Some(Bytes::from_static(&[198, 51, 100, 20])),
        response_address: Some(Bytes::from_static(&[192, 0, 2, 53])),
        query_port: Some(53000),
        response_port: Some(53),
        response_time_sec: Some(1_700_000_001),
        response_time_nsec: Some(456),
        response_message: Some(Bytes::from(wire)),
    }
}

fn frame(msg: Option<Message>) -> Bytes {
    Bytes::from(
        Dnstap {
            identity: Some(Bytes::from_static(b"resolver-1")),
            version: None,
            message: msg,
            r#type: Some(1),
        }
        .encode_to_vec(),
    )
}

struct Harness {
    /// The frame being minimised (outcomes borrow from it).
    frame: Bytes,
    state: WorkerState,
    pan: CryptoPan,
    settings: WorkerSettings,
    lists: ListsSnapshot,
    c: WorkerCounters,
}

impl Harness {
    fn new() -> Self {
        let mut state = WorkerState::new(16);
        state.sync_generation(1);
        Self {
            frame: Bytes::new(),
            state,
            pan: CryptoPan::new(&[7u8; 32]),
            settings: WorkerSettings::default(),
            lists: ListsSnapshot::default(),
            c: WorkerCounters::default(),
        }
    }

    fn run(&mut self, f: Bytes) -> Outcome<'_> {
        self.frame = f;
        minimise(
            &self.frame,
            &mut self.state,
            &self.pan,
            &self.settings,
            &self.lists,
            &mut self.c,
        )
    }

    /// The session row of `msg`, checking that its seen-check candidate is
    /// its question.
    fn row(&mut self, msg: Message) -> OwnedRow {
        match self.run(frame(Some(msg))) {
            Outcome::Session(r, cand) => {
                assert_eq!(cand.qname, r.qname);
                OwnedRow::from(&r)
            }
            other => panic!("expected a session row, got {other:?}"),
        }
    }
}

#[test]
fn response_becomes_a_pseudonymised_session_row() {
    let mut h = Harness::new();
    let row = h.row(response_msg(dns_response("www.Example.com", 1, 0)));
    let src = u32::from_be_bytes(match h.pan.anonymise_bytes(&[198, 51, 100, 20]) {
        Pseudonym::V4(b) => b,
        p => panic!("{p:?}"),
    });
    assert_eq!(row.fixed.source, AddrColumns::V4(src));
    assert_ne!(
        row.fixed.source,
        AddrColumns::V4(u32::from_be_bytes([198, 51, 100, 20]))
    );
    assert!(matches!(row.fixed.dest, AddrColumns::V4(_)));
    assert_eq!(row.fixed.source_port, Some(53000));
    assert_eq!(row.fixed.dest_port, Some(53));
    assert_eq!(row.fixed.dns_protocol, Some(1));
    assert_eq!(row.server_id.as_deref(), Some(&b"resolver-1"[..]));
    assert_eq!(row.fixed.response_time_us, 1_700_000_001_000_000);
    assert_eq!(row.qname, "www.Example.com.");
    assert_eq!(row.fixed.labels.get(&row.qname, 0), Some("com"));
    assert_eq!(row.fixed.labels.get(&row.qname, 1), Some("Example"));
    assert_eq!(row.fixed.labels.get(&row.qname, 2), Some("www"));
    assert_eq!(row.fixed.labels.get(&row.qname, 3), None);
    assert_eq!(h.c.session_rows, 1);
    assert_eq!(h.c.processed, 1);
}

#[test]
fn reference_minimiser_drops_are_each_counted_once() {
    let mut h = Harness::new();
    // Garbage, an envelope without a message, and a message without a type.
    assert!(matches!(
        h.run(Bytes::from_static(b"\x01\x02garbage")),
        Outcome::Dropped
    ));
    assert!(matches!(h.run(frame(None)), Outcome::Dropped));
    let mut untyped = response_msg(dns_response("a.example", 1, 0));
    untyped.r#type = None;
    assert!(matches!(h.run(frame(Some(untyped))), Outcome::Dropped));
    assert_eq!(h.c.parse_error, 1, "{:?}", h.c);
    assert_eq!(h.c.decode_error, 2, "{:?}", h.c);
    // The next valid frame is still processed.
    h.row(response_msg(dns_response("a.example", 1, 0)));

    let mut query = response_msg(dns_response("a.example", 1, 0));
    query.r#type = Some(5); // CLIENT_QUERY
    assert!(matches!(h.run(frame(Some(query))), Outcome::Dropped));
    assert_eq!(h.c.query_skipped, 1);

    let mut no_wire = response_msg(vec![]);
    no_wire.response_message = None;
    assert!(matches!(h.run(frame(Some(no_wire))), Outcome::Dropped));
    assert!(matches!(
        h.run(frame(Some(response_msg(vec![0, 1, 2])))),
        Outcome::Dropped
    ));
    assert_eq!(h.c.parse_error, 3);

    let header_only = vec![0x12, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        h.run(frame(Some(response_msg(header_only)))),
        Outcome::Dropped
    ));
    assert_eq!(h.c.empty_question, 1);

    let long_label = format!("{}.example", "a".repeat(63));
    h.row(response_msg(dns_response(&long_label, 1, 0)));
    assert_eq!(h.c.processed, 9);
    let c = &h.c;
    assert_eq!(
        c.processed,
        c.session_rows
            + c.decode_error
            + c.parse_error
            + c.query_skipped
            + c.empty_question
            + c.invalid_name
    );
}

#[test]
fn disabled_sessions_are_counted_not_built() {
    let mut h = Harness::new();
    h.settings.disable_session_files = true;
    assert!(matches!(
        h.run(frame(Some(response_msg(dns_response("a.example", 1, 0))))),
        Outcome::SessionDisabled(c) if c.qname == "a.example." && c.qtype == 1
    ));
    assert_eq!(h.c.session_disabled, 1);
}

#[test]
fn response_time_edge_cases() {
    assert_eq!(response_time_us(None, Some(5)), 0);
    assert_eq!(response_time_us(Some(u64::MAX), None), 0);
    assert_eq!(
        response_time_us(Some(1_700_000_001), Some(456_789)),
        1_700_000_001_000_456
    );
}

#[test]
fn address_forms_follow_the_reference() {
    let mut h = Harness::new();
    // IPv4-mapped client under INET6: pseudonymised as IPv4, stored as ::ffff:x.
    let mut m = response_msg(dns_response("a.example", 1, 0));
    m.socket_family = Some(2);
    let mut mapped = [0u8; 16];
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped[12..].copy_from_slice(&[198, 51, 100, 20]);
    m.query_address = Some(Bytes::copy_from_slice(&mapped));
    m.response_address = Some(Bytes::from_static(&[
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]));
    let row = h.row(m);
    let Pseudonym::V4(p) = h.pan.anonymise_bytes(&[198, 51, 100, 20]) else {
        panic!()
    };
    assert_eq!(
        row.fixed.source,
        AddrColumns::V6 {
            network: 0,
            host: 0x0000_ffff_0000_0000 | u64::from(u32::from_be_bytes(p))
        }
    );
    assert!(matches!(row.fixed.dest, AddrColumns::V6 { .. }));

    // 16 bytes under INET, or an invalid length: NULL columns, counted.
    let mut m = response_msg(dns_response("a.example", 1, 0));
    m.query_address = Some(Bytes::from_static(&[
        0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ]));
    m.response_address = Some(Bytes::from_static(&[1, 2, 3]));
    m.query_port = Some(70_000);
    m.socket_protocol = Some(42);
    let row = h.row(m);
    assert_eq!(row.fixed.source, AddrColumns::Null);
    assert_eq!(row.fixed.dest, AddrColumns::Null);
    assert_eq!(row.fixed.source_port, Some(0));
    assert_eq!(row.fixed.dns_protocol, None);
    assert_eq!(h.c.invalid_address, 1);
}

#[test]
fn cache_hits_and_generation_purge() {
    let mut h = Harness::new();
    h.row(response_msg(dns_response("a.example", 1, 0)));
    h.row(response_msg(dns_response("b.example", 1, 0)));
    assert_eq!(h.c.lru_hit, 2); // source and dest both hit the second time
    h.state.sync_generation(2);
    h.row(response_msg(dns_response("c.example", 1, 0)));
    assert_eq!(
        h.c.lru_hit, 2,
        "a new generation starts with an empty cache"
    );
}

/// A response with several questions (reference §13: a multi-question message
/// is ignored if any question matches, in either position).
fn multi_question(names: &[&str]) -> Vec<u8> {
    let mut w = vec![
        0x12,
        0x34,
        0x81,
        0x80,
        0,
        names.len() as u8,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    for name in names {
        for label in name.split('.').filter(|l| !l.is_empty()) {
            w.push(label.len() as u8);
            w.extend_from_slice(label.as_bytes());
        }
        w.extend_from_slice(&[0, 0, 1, 0, 1]);
    }
    w
}

#[test]
fn ignored_names_and_well_known_follow_reference_scenarios() {
    let mut h = Harness::new();
    h.lists.ignored_names = Some(std::sync::Arc::new(
        crate::lists::names::NameList::from_names(["example.com.", ".example.net."]).unwrap(),
    ));
    // Any question matching, in either position, drops the message once.
    for names in [
        &["www.example.net", "other.org"][..],
        &["other.org", "eXample.COM"][..],
    ] {
        let before = h.c.ignored_question_name;
        assert!(matches!(
            h.run(frame(Some(response_msg(multi_question(names))))),
            Outcome::Dropped
        ));
        assert_eq!(h.c.ignored_question_name, before + 1, "{names:?}");
    }
    // Not matching: example.net itself, www.example.com.
    for name in ["example.net", "www.example.com"] {
        h.row(response_msg(multi_question(&[name])));
    }
    // Well-known: question[0] only; exact → suffix flag false, wildcard → true.
    h.lists.ignored_names = None;
    h.lists.well_known = Some(std::sync::Arc::new(crate::minimiser::WellKnown {
        generation: 3,
        list: crate::lists::names::NameList::from_names(["example.com.", ".example.net."]).unwrap(),
    }));
    match h.run(frame(Some(response_msg(dns_response(
        "Example.com",
        15,
        3,
    ))))) {
        Outcome::Histogram(u) => assert!(!u.suffix && u.generation == 3),
        other => panic!("{other:?}"),
    }
    match h.run(frame(Some(response_msg(dns_response(
        "a.b.example.net",
        1,
        0,
    ))))) {
        Outcome::Histogram(u) => assert!(u.suffix),
        other => panic!("{other:?}"),
    }
    // A well-known name in the second position only is not a hit.
    h.row(response_msg(multi_question(&["other.org", "example.com"])));
}

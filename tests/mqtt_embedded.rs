//! new_qname events against an MQTT v5 broker embedded in the test
//! (`rumqttd`), so this runs with plain `cargo test` on any machine:
//!
//! 1. the broker is down: events are signed and kept in the on-disk queue
//!    (`edm_mqtt_filequeue_messages`), nothing is discarded, nothing stalls;
//! 2. the broker comes up and edm restarts: the queue survived, every queued
//!    event arrives exactly once, signed, with the reference JSON;
//! 3. the same traffic again announces nothing (the seen store persisted);
//!    new traffic is announced exactly once.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mqtt::*;
use common::*;

/// Start a `rumqttd` broker on `port` (MQTT v5) in its own thread, and a
/// subscriber to `events/up/#` (an MQTT client over TCP, as a consumer would
/// be) whose messages arrive on the returned channel. The broker lives until
/// the test process ends.
fn start_broker(port: u16) -> mpsc::Receiver<(String, Vec<u8>)> {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = ServerSettings {
        name: "v5-test".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 1000,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 10_000,
            max_segment_size: 64 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v5: Some(HashMap::from([("1".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = Broker::new(config);
    std::thread::spawn(move || {
        let _ = broker.start();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(Instant::now() < deadline, "rumqttd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    subscribe(port)
}

fn wait_queue(edm: &Edm, want: u64) {
    edm.wait_metric("edm_mqtt_filequeue_messages", want, Duration::from_secs(30));
}

fn send_and_wait(edm: &Edm, sock: &Path, frames: &[Vec<u8>], total: u64) {
    send_session(connect_unix(sock), frames, true);
    edm.wait_metric("edm_processed_dnstap_total", total, Duration::from_secs(60));
}

#[test]
fn queued_while_down_delivered_once_after_restart_and_never_reannounced() {
    let dir = tempdir("mqtt-embedded");
    let sock = dir.path().join("edm.sock");
    let port = free_port();
    let cfg = edm_config(dir.path(), &sock, port);
    let sample = read_capture(&testdata("sample.fstrm"));

    // 1. No broker: every new name is signed and queued on disk.
    let edm = Edm::start(dir.path(), &cfg, 1);
    send_and_wait(&edm, &sock, &sample, 5000);
    let new = edm.metric("edm_seen_qname_new_total");
    assert!(new > 1000, "{new}");
    wait_queue(&edm, new);
    assert_eq!(edm.metric("edm_new_qname_queued_total"), new);
    assert_eq!(edm.metric("edm_new_qname_discarded_total"), 0);
    assert_eq!(edm.metric("edm_mqtt_connected"), 0);
    edm.stop();

    // 2. The broker comes up (with the subscriber ready before edm can
    //    publish: QoS 0 is not kept for late subscribers), then edm restarts:
    //    the queue survived and all of it arrives.
    let rx = start_broker(port);
    let edm = Edm::start(dir.path(), &cfg, 1);
    wait_connected(&edm);
    let got = collect(&rx, new as usize, Duration::from_secs(10));
    let names = check_events(&got);
    assert_eq!(got.len() as u64, new, "every queued event arrives");
    assert_eq!(names.len() as u64, new, "no name twice");
    wait_queue(&edm, 0);
    assert_eq!(edm.metric("edm_mqtt_published_total"), new);

    // 3. Known names are not announced again; new ones exactly once.
    send_and_wait(&edm, &sock, &sample, 5000);
    assert_eq!(edm.metric("edm_seen_qname_new_total"), 0);
    assert!(collect(&rx, 1, Duration::from_millis(500)).is_empty());
    let unbound = read_capture(&testdata("unbound.fstrm"));
    send_and_wait(&edm, &sock, &unbound, 5000 + unbound.len() as u64);
    let new2 = edm.metric("edm_seen_qname_new_total");
    assert!(new2 > 0);
    let got2 = collect(&rx, new2 as usize, Duration::from_secs(10));
    let names2 = check_events(&got2);
    assert_eq!(got2.len() as u64, new2);
    assert_eq!(names2.len() as u64, new2);
    assert!(
        names2.keys().all(|n| !names.contains_key(n)),
        "an old name came back"
    );
    assert!(
        collect(&rx, 1, Duration::from_millis(300)).is_empty(),
        "nothing extra"
    );
    edm.stop();
    eprintln!(
        "rumqttd: {new} events queued on disk while the broker was down, all delivered once after a restart; {new2} more live"
    );
}

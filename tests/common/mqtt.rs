//! MQTT helpers shared by the broker tests: free ports, message collection,
//! JWS verification with the test key, edm configuration.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::*;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Collect messages until `n` arrived or `quiet` passed without one.
pub fn collect(
    rx: &mpsc::Receiver<(String, Vec<u8>)>,
    n: usize,
    quiet: Duration,
) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    while v.len() < n {
        match rx.recv_timeout(quiet) {
            Ok(m) => v.push(m),
            Err(_) => break,
        }
    }
    v
}

/// Verify a flattened JWS with the test key; returns the payload JSON.
pub fn verify(jws: &[u8]) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(jws).expect("JWS JSON");
    let key = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(testdata("mqtt/signing-key.jwk")).unwrap(),
    )
    .unwrap();
    let x: [u8; 32] = B64
        .decode(key["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let (p, pl, sig) = (
        v["protected"].as_str().unwrap(),
        v["payload"].as_str().unwrap(),
        v["signature"].as_str().unwrap(),
    );
    assert_eq!(
        B64.decode(p).unwrap(),
        br#"{"alg":"EdDSA","kid":"edm-test"}"#
    );
    let sig = ed25519_dalek::Signature::from_slice(&B64.decode(sig).unwrap()).unwrap();
    public
        .verify_strict(format!("{p}.{pl}").as_bytes(), &sig)
        .expect("signature verifies");
    serde_json::from_slice(&B64.decode(pl).unwrap()).unwrap()
}

pub fn edm_config(dir: &Path, sock: &Path, port: u16) -> String {
    config_text(dir, &format!("input-unix = \"{}\"", sock.display()), "")
        .replace("disable-mqtt = true", "disable-mqtt = false")
        + &format!(
            "mqtt-server = \"mqtt://127.0.0.1:{port}\"\nmqtt-signing-key-file = \"{}\"\nnewqname-buffer = 100000\n",
            testdata("mqtt/signing-key.jwk").display()
        )
}

pub fn wait_connected(edm: &Edm) {
    edm.wait_metric("edm_mqtt_connected", 1, Duration::from_secs(30));
}

/// Check every message as the reference specifies (topic, signature, JSON
/// fields) and return how often each lowercased name was announced.
pub fn check_events(got: &[(String, Vec<u8>)]) -> std::collections::HashMap<String, usize> {
    let mut names = std::collections::HashMap::new();
    for (topic, payload) in got {
        assert_eq!(topic, "events/up/edm-test/new_qname");
        let e = verify(payload);
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "flags",
                "qclass",
                "qname",
                "qtype",
                "timestamp",
                "type",
                "version"
            ],
            "{e}"
        );
        assert_eq!(e["type"], "new_qname");
        assert_eq!(e["version"], 0);
        assert!(e["flags"].as_u64().unwrap() & 0x8000 != 0, "QR set: {e}");
        assert!(e["flags"].as_u64().unwrap() <= 0xFFFF, "{e}");
        assert!(e["qtype"].as_u64().is_some() && e["qclass"].as_u64().is_some());
        let ts = e["timestamp"].as_str().unwrap();
        assert!(ts.ends_with(":00Z") && ts.len() == 20, "{ts}");
        *names
            .entry(e["qname"].as_str().unwrap().to_ascii_lowercase())
            .or_default() += 1;
    }
    names
}

/// Subscribe to `events/up/#`; payloads arrive on the returned channel.
pub fn subscribe(port: u16) -> mpsc::Receiver<(String, Vec<u8>)> {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{Client, Event, MqttOptions};
    let (tx, rx) = mpsc::channel();
    let mut opts = MqttOptions::new(format!("test-sub-{port}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = Client::new(opts, 4096);
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe("events/up/#", QoS::AtMostOnce).unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    if tx.send((topic, p.payload.to_vec())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    rx
}

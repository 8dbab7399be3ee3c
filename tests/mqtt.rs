//! new_qname events over MQTT against a real Mosquitto broker (started by the
//! test on a free loopback port; `.ci/run` installs `mosquitto`): every new
//! name arrives exactly once, signed (verified with the public key), with the
//! reference JSON; a restart does not re-announce; with the broker down events
//! are counted as discarded and nothing stalls; delivery resumes when the
//! broker returns.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::*;

struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start(bin: &Path, dir: &Path, port: u16) -> Mosquitto {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n"
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto { child, port }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Subscribe to `events/up/#`; payloads arrive on the returned channel.
fn subscribe(port: u16) -> mpsc::Receiver<(String, Vec<u8>)> {
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

/// Collect messages until `n` arrived or `quiet` passed without one.
fn collect(
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
fn verify(jws: &[u8]) -> serde_json::Value {
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

fn edm_config(dir: &Path, sock: &Path, port: u16) -> String {
    config_text(dir, &format!("input-unix = \"{}\"", sock.display()), "")
        .replace("disable-mqtt = true", "disable-mqtt = false")
        + &format!(
            "mqtt-server = \"mqtt://127.0.0.1:{port}\"\nmqtt-signing-key-file = \"{}\"\nnewqname-buffer = 100000\n",
            testdata("mqtt/signing-key.jwk").display()
        )
}

fn wait_connected(edm: &Edm) {
    edm.wait_metric("edm_mqtt_connected", 1, Duration::from_secs(30));
}

#[test]
fn new_qnames_are_published_once_signed_and_survive_restart_and_outage() {
    let Some(bin) = require_program("mosquitto", "mqtt") else {
        return;
    };
    let dir = tempdir("mqtt");
    let sock: PathBuf = dir.path().join("edm.sock");
    let port = free_port();
    let broker = Mosquitto::start(&bin, dir.path(), port);
    let rx = subscribe(broker.port);
    let frames = read_capture(&testdata("sample.fstrm"));

    // 1. Every new name exactly once, signed, reference JSON.
    let cfg = edm_config(dir.path(), &sock, port);
    let edm = Edm::start(dir.path(), &cfg, 1);
    wait_connected(&edm);
    send_session(connect_unix(&sock), &frames, true);
    edm.wait_metric("edm_processed_dnstap_total", 5000, Duration::from_secs(60));
    let new = edm.metric("edm_seen_qname_new_total");
    assert!(new > 1000);
    let got = collect(&rx, new as usize, Duration::from_secs(5));
    assert_eq!(edm.metric("edm_new_qname_queued_total"), new);
    assert_eq!(edm.metric("edm_new_qname_discarded_total"), 0);
    assert_eq!(got.len() as u64, new, "every event arrives");
    let mut names: HashMap<String, usize> = HashMap::new();
    for (topic, payload) in &got {
        assert_eq!(topic, "events/up/edm-test/new_qname");
        let e = verify(payload);
        assert_eq!(e["type"], "new_qname");
        assert_eq!(e["version"], 0);
        assert!(e["flags"].as_u64().unwrap() & 0x8000 != 0, "QR set: {e}");
        assert!(e["qtype"].as_u64().is_some() && e["qclass"].as_u64().is_some());
        let ts = e["timestamp"].as_str().unwrap();
        assert!(ts.ends_with(":00Z") && ts.len() == 20, "{ts}");
        *names
            .entry(e["qname"].as_str().unwrap().to_ascii_lowercase())
            .or_default() += 1;
    }
    assert_eq!(names.len() as u64, new, "no name twice");
    edm.stop();

    // 2. A restart announces nothing known.
    let edm = Edm::start(dir.path(), &cfg, 1);
    wait_connected(&edm);
    send_session(connect_unix(&sock), &frames, true);
    edm.wait_metric("edm_processed_dnstap_total", 5000, Duration::from_secs(60));
    assert_eq!(edm.metric("edm_seen_qname_new_total"), 0);
    assert!(collect(&rx, 1, Duration::from_millis(500)).is_empty());
    edm.stop();

    // 3. Broker down: counted as discarded, no stall; back up: delivery resumes.
    drop(rx);
    drop(broker);
    let dir2 = tempdir("mqtt-down");
    let sock2 = dir2.path().join("edm.sock");
    let cfg2 = edm_config(dir2.path(), &sock2, port);
    let edm = Edm::start(dir2.path(), &cfg2, 1);
    send_session(connect_unix(&sock2), &frames, true);
    edm.wait_metric("edm_processed_dnstap_total", 5000, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(10);
    while edm.metric("edm_new_qname_discarded_total") < new {
        assert!(Instant::now() < deadline, "events not counted as discarded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let broker = Mosquitto::start(&bin, dir2.path(), port);
    let rx = subscribe(broker.port);
    wait_connected(&edm);
    let unbound = read_capture(&testdata("unbound.fstrm"));
    send_session(connect_unix(&sock2), &unbound, true);
    edm.wait_metric(
        "edm_processed_dnstap_total",
        5000 + unbound.len() as u64,
        Duration::from_secs(60),
    );
    let new2 = edm.metric("edm_seen_qname_new_total") - new;
    assert!(new2 > 0);
    let got = collect(&rx, new2 as usize, Duration::from_secs(5));
    assert_eq!(got.len() as u64, new2, "delivery resumed");
    for (_, p) in &got {
        verify(p);
    }
    edm.stop();
    eprintln!(
        "{new} events delivered and verified; {new} discarded while the broker was down; {new2} after it returned"
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made
/// with the `openssl` command.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=edm-test-ca",
        ],
    ]
    .concat());
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN=edm-test-{name}"),
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

#[test]
fn mtls_client_certificate_is_required_and_used() {
    let Some(bin) = require_program("mosquitto", "mqtt_mtls") else {
        return;
    };
    if require_program("openssl", "mqtt_mtls").is_none() {
        return;
    }
    let dir = tempdir("mqtt-tls");
    let d = dir.path();
    make_certs(d);
    let (plain, tls) = (free_port(), free_port());
    let conf = d.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings true\npersistence false\nmax_queued_messages 0\nuser root\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n\
             listener {tls} 127.0.0.1\nallow_anonymous true\ncafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\nrequire_certificate true\ntls_version tlsv1.3\n",
            d = d.display()
        ),
    )
    .unwrap();
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tls)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let broker = Mosquitto { child, port: plain };
    let rx = subscribe(broker.port);
    let frames = read_capture(&testdata("sample.fstrm"));
    let base = |dir: &Path| {
        let sock = dir.join("edm.sock");
        edm_config(dir, &sock, tls).replace(
            &format!("mqtt://127.0.0.1:{tls}"),
            &format!("tls://127.0.0.1:{tls}"),
        ) + &format!("mqtt-ca-file = \"{}/ca.crt\"\n", d.display())
    };

    // Without a client certificate the broker refuses the connection.
    let a = d.join("no-cert");
    let cfg = base(&a) + "mqtt-client-cert-file = \"\"\nmqtt-client-key-file = \"\"\n";
    let edm = Edm::start(&a, &cfg, 1);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        edm.metric("edm_mqtt_connected"),
        0,
        "connected without a client certificate"
    );
    edm.stop();

    // With it: connected over TLS 1.3, events arrive and verify.
    let b = d.join("cert");
    let cfg = base(&b)
        + &format!(
            "mqtt-client-cert-file = \"{d}/client.crt\"\nmqtt-client-key-file = \"{d}/client.key\"\n",
            d = d.display()
        );
    let edm = Edm::start(&b, &cfg, 1);
    wait_connected(&edm);
    send_session(connect_unix(&b.join("edm.sock")), &frames, true);
    edm.wait_metric("edm_processed_dnstap_total", 5000, Duration::from_secs(60));
    let new = edm.metric("edm_seen_qname_new_total");
    let got = collect(&rx, new as usize, Duration::from_secs(5));
    assert_eq!(got.len() as u64, new);
    for (_, p) in &got {
        verify(p);
    }
    // A reload re-reads the client certificate.
    Command::new("kill")
        .args(["-HUP", &edm.pid().to_string()])
        .status()
        .unwrap();
    edm.wait_metric("edm_reloads_total", 1, Duration::from_secs(30));
    edm.stop();
    drop(broker);
    eprintln!("mTLS: refused without a client certificate; {new} events over TLS 1.3 with it");
}

//! new_qname events over MQTT against a real Mosquitto broker (started by the
//! test on a free loopback port; `.ci/run` installs `mosquitto`): every new
//! name arrives exactly once, signed (verified with the public key), with the
//! reference JSON; a restart does not re-announce; with the broker down events
//! are counted as discarded and nothing stalls; delivery resumes when the
//! broker returns.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::mqtt::*;
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
    let names = check_events(&got);
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

    // 3. Without the file queue, broker down: counted as discarded, no
    //    stall; back up: delivery resumes.
    drop(rx);
    drop(broker);
    let dir2 = tempdir("mqtt-down");
    let sock2 = dir2.path().join("edm.sock");
    let cfg2 = edm_config(dir2.path(), &sock2, port) + "disable-mqtt-filequeue = true\n";
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
    assert_eq!(check_events(&got).len() as u64, new2);
    edm.stop();
    drop(rx);
    drop(broker);

    // 4. With the file queue (the default), broker down: queued on disk, none
    //    discarded. The broker returns with a subscriber (QoS 0 is not kept
    //    for late subscribers, so it subscribes before edm can publish) and
    //    edm restarts: every queued event arrives once.
    let dir3 = tempdir("mqtt-queue");
    let sock3 = dir3.path().join("edm.sock");
    let cfg3 = edm_config(dir3.path(), &sock3, port);
    let edm = Edm::start(dir3.path(), &cfg3, 1);
    send_session(connect_unix(&sock3), &frames, true);
    edm.wait_metric("edm_processed_dnstap_total", 5000, Duration::from_secs(60));
    edm.wait_metric("edm_mqtt_filequeue_messages", new, Duration::from_secs(30));
    assert_eq!(edm.metric("edm_new_qname_discarded_total"), 0);
    edm.stop();
    let broker = Mosquitto::start(&bin, dir3.path(), port);
    let rx = subscribe(broker.port);
    let edm = Edm::start(dir3.path(), &cfg3, 1);
    wait_connected(&edm);
    let got = collect(&rx, new as usize, Duration::from_secs(10));
    assert_eq!(got.len() as u64, new, "every queued event arrives");
    assert_eq!(check_events(&got).len() as u64, new, "no name twice");
    edm.wait_metric("edm_mqtt_filequeue_messages", 0, Duration::from_secs(10));
    edm.stop();
    eprintln!(
        "{new} events delivered and verified; {new} discarded while the broker was down (no file queue), {new2} after it returned; {new} queued on disk while it was down and delivered once when it returned (after a restart)"
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

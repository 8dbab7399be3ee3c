//! The new_qname publisher (reference §8): events from the workers arrive on
//! a bounded queue (`newqname-buffer`; a full queue drops the event and
//! counts it in `edm_new_qname_discarded_total`, the worker never waits), are
//! serialised, signed (flattened JWS, EdDSA) and published with MQTT v5,
//! QoS 0, to `events/up/<kid>/new_qname`, client id `<kid>-edm`.
//!
//! The connection is driven by its own task and re-established with
//! exponential backoff (0.5 s … 30 s). While the broker is unreachable events
//! are counted as discarded, so nothing stalls and memory stays bounded.
//!
//! TLS (1.3 only, optional client certificate from a reloadable store) is in
//! [`super::tls`]. The on-disk queue is not implemented yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio_util::sync::CancellationToken;

use super::event::NewQname;
use super::jws::JwsSigner;
use crate::metrics::Metrics;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS (`tls://`, `ssl://`, `mqtts://`, … or a bare `host:port`).
    pub tls: bool,
}

/// Parse `mqtt-server` with the reference's rules: a bare `host:port` gets
/// `tls://`; schemes mqtt, tcp (plain) and ssl, tls, mqtts, mqtt+ssl, tcps
/// (TLS); ws and wss are accepted by the reference but not by edm.
///
/// # Errors
/// A description of what is wrong.
pub fn parse_server(url: &str) -> Result<Broker, String> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("tls".to_owned(), url),
    };
    let tls = match scheme.as_str() {
        "mqtt" | "tcp" => false,
        "ssl" | "tls" | "mqtts" | "mqtt+ssl" | "tcps" => true,
        "ws" | "wss" => return Err(format!("scheme {scheme}:// (websocket) is not supported")),
        _ => return Err(format!("unknown scheme {scheme}://")),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']'),
            p.parse::<u16>()
                .map_err(|_| format!("bad port in {url:?}"))?,
        ),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok(Broker {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// The publisher's settings.
#[derive(Debug)]
pub struct PublisherConfig {
    /// The broker.
    pub broker: Broker,
    /// Keepalive, seconds.
    pub keepalive: u64,
    /// The signing key (its `kid` names the topic and client id).
    pub signer: JwsSigner,
    /// TLS settings when the broker URL asks for TLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Run the publisher until `shutdown`, taking events from `events`.
pub async fn run(
    config: PublisherConfig,
    events: flume::Receiver<NewQname>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let kid = config.signer.kid().to_owned();
    let topic = format!("events/up/{kid}/new_qname");
    let mut opts = MqttOptions::new(
        format!("{kid}-edm"),
        config.broker.host.clone(),
        config.broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(config.keepalive.max(5)));
    opts.set_clean_start(true);
    if let Some(tls) = &config.tls {
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let connected = Arc::new(AtomicBool::new(false));

    let conn = connected.clone();
    let m = metrics.clone();
    let stop = shutdown.clone();
    let broker = format!("{}:{}", config.broker.host, config.broker.port);
    let mut driver = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(500);
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => break,
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(_))) => {
                    tracing::info!(%broker, "connected to the MQTT broker");
                    conn.store(true, Relaxed);
                    m.mqtt_connected.store(1, Relaxed);
                    backoff = Duration::from_millis(500);
                }
                // Requests are sent in order: everything published before went out.
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => {
                    if conn.swap(false, Relaxed) {
                        tracing::warn!(%broker, error = %e, "lost the MQTT connection; reconnecting");
                    } else {
                        tracing::debug!(%broker, error = %e, "cannot connect to the MQTT broker");
                    }
                    m.mqtt_connected.store(0, Relaxed);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });

    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = events.recv_async() => match e { Ok(e) => e, Err(_) => break },
        };
        if !connected.load(Relaxed) {
            metrics.new_qname_discarded.fetch_add(1, Relaxed);
            continue;
        }
        let signed = config.signer.sign(event.to_json().as_bytes());
        // Waits while the connection's request queue is full: back-pressure
        // goes to the bounded event queue, whose overflow is counted.
        let sent = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = client.publish(topic.clone(), QoS::AtMostOnce, false, signed) => r,
        };
        match sent {
            Ok(()) => {
                metrics.mqtt_published.fetch_add(1, Relaxed);
            }
            Err(e) => {
                metrics.mqtt_publish_failures.fetch_add(1, Relaxed);
                tracing::debug!(error = %e, "cannot publish a new_qname event");
            }
        }
    }
    // Flush what was handed to the connection, then say goodbye.
    if connected.load(Relaxed) && client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut driver).await;
    }
    driver.abort();
    let _ = driver.await;
    metrics.mqtt_connected.store(0, Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_url_rules() {
        let b = |u: &str| parse_server(u);
        assert_eq!(
            b("broker.example:8883").unwrap(),
            Broker {
                host: "broker.example".into(),
                port: 8883,
                tls: true
            }
        );
        assert!(!b("mqtt://127.0.0.1:1883").unwrap().tls);
        assert!(!b("tcp://h:1").unwrap().tls);
        for s in ["ssl", "tls", "mqtts", "mqtt+ssl", "tcps"] {
            assert!(b(&format!("{s}://h:1")).unwrap().tls, "{s}");
        }
        assert_eq!(b("mqtt://[::1]:1884").unwrap().host, "::1");
        assert!(b("ws://h:1").unwrap_err().contains("websocket"));
        assert!(b("gopher://h:1").is_err());
        assert!(b("mqtt://:1883").unwrap_err().contains("no host"));
        assert!(b("mqtt://h:x").unwrap_err().contains("bad port"));
    }
}

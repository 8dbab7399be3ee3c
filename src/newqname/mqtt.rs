//! The new_qname publisher (reference §8): events from the workers arrive on
//! a bounded queue (`newqname-buffer`; a full queue drops the event and
//! counts it in `edm_new_qname_discarded_total`, the worker never waits), are
//! serialised, signed (flattened JWS, EdDSA) and published with MQTT v5,
//! QoS 0, to `events/up/<kid>/new_qname`, client id `<kid>-edm`.
//!
//! The connection is driven by its own task and re-established with
//! exponential backoff (0.5 s … 30 s). By default every signed event is first
//! appended to the on-disk queue ([`super::filequeue`], bounded), which a
//! sender drains oldest first while connected: an outage or a restart loses
//! nothing queued. With `disable-mqtt-filequeue` events are published
//! directly and, while the broker is unreachable, counted as discarded. Either
//! way nothing stalls the workers and memory stays bounded.
//!
//! TLS (1.3 only, optional client certificate from a reloadable store) is in
//! [`super::tls`].

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio_util::sync::CancellationToken;

use super::event::NewQname;
use super::filequeue::FileQueue;
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
    /// The on-disk queue (`None` with `disable-mqtt-filequeue`).
    pub queue: Option<Arc<FileQueue>>,
}

/// Run the publisher until `shutdown`, taking events from `events`. Returns
/// once `events` is closed and drained (or at `shutdown`).
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
    let (client, eventloop) = AsyncClient::new(opts, 1024);
    let (conn_tx, connected) = tokio::sync::watch::channel(false);
    let broker = format!("{}:{}", config.broker.host, config.broker.port);
    let driver_stop = CancellationToken::new();
    let mut driver = tokio::spawn(drive(
        eventloop,
        conn_tx,
        metrics.clone(),
        broker,
        driver_stop.clone(),
    ));

    match &config.queue {
        None => {
            direct(
                &config, &topic, &client, &connected, &events, &metrics, &shutdown,
            )
            .await
        }
        Some(queue) => {
            let pushed = Arc::new(tokio::sync::Notify::new());
            let sender_stop = CancellationToken::new();
            let mut sender = tokio::spawn(send_queued(
                queue.clone(),
                client.clone(),
                topic.clone(),
                connected.clone(),
                pushed.clone(),
                metrics.clone(),
                sender_stop.clone(),
            ));
            intake(&config, queue, &events, &pushed, &metrics, &shutdown).await;
            // Everything is on disk; give the sender a moment to hand over
            // what it can, the rest waits for the next start.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while !queue.is_empty()
                && *connected.borrow()
                && !shutdown.is_cancelled()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            sender_stop.cancel();
            if tokio::time::timeout(Duration::from_secs(1), &mut sender)
                .await
                .is_err()
            {
                sender.abort();
            }
            if let Err(e) = queue.persist() {
                tracing::error!(error = %e, "cannot sync the MQTT file queue");
            }
        }
    }
    if *connected.borrow() && client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut driver).await;
    }
    driver_stop.cancel();
    let _ = driver.await;
    metrics.mqtt_connected.store(0, Relaxed);
}

/// Drive the connection: reconnect with backoff, publish the state.
async fn drive(
    mut eventloop: rumqttc::v5::EventLoop,
    connected: tokio::sync::watch::Sender<bool>,
    m: Arc<Metrics>,
    broker: String,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(_))) => {
                tracing::info!(%broker, "connected to the MQTT broker");
                connected.send_replace(true);
                m.mqtt_connected.store(1, Relaxed);
                backoff = Duration::from_millis(500);
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                if connected.send_replace(false) {
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
    connected.send_replace(false);
}

/// Without the file queue: publish directly while connected; while the
/// broker is unreachable events are counted as discarded.
async fn direct(
    config: &PublisherConfig,
    topic: &str,
    client: &AsyncClient,
    connected: &tokio::sync::watch::Receiver<bool>,
    events: &flume::Receiver<NewQname>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = events.recv_async() => match e { Ok(e) => e, Err(_) => break },
        };
        if !*connected.borrow() {
            metrics.new_qname_discarded.fetch_add(1, Relaxed);
            continue;
        }
        let signed = config.signer.sign(event.to_json().as_bytes());
        let sent = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = client.publish(topic, QoS::AtMostOnce, false, signed) => r,
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
}

/// With the file queue: sign every event and append it to the queue, whether
/// or not the broker is reachable. Drains `events` until it is closed.
async fn intake(
    config: &PublisherConfig,
    queue: &FileQueue,
    events: &flume::Receiver<NewQname>,
    pushed: &tokio::sync::Notify,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    let mut full_logged = false;
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = events.recv_async() => match e { Ok(e) => e, Err(_) => break },
        };
        let signed = config.signer.sign(event.to_json().as_bytes());
        match queue.push(signed.as_bytes()) {
            Ok(true) => {
                full_logged = false;
                pushed.notify_one();
            }
            Ok(false) => {
                metrics.new_qname_discarded.fetch_add(1, Relaxed);
                if !full_logged {
                    full_logged = true;
                    tracing::warn!(
                        messages = queue.len(),
                        "the MQTT file queue is full; new_qname events are discarded until the broker takes some"
                    );
                }
            }
            Err(e) => {
                metrics.new_qname_discarded.fetch_add(1, Relaxed);
                metrics.mqtt_filequeue_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "cannot append to the MQTT file queue; event discarded");
            }
        }
    }
}

/// Hand queued messages to the broker, oldest first, while connected; a
/// message leaves the queue once the client has taken it.
async fn send_queued(
    queue: Arc<FileQueue>,
    client: AsyncClient,
    topic: String,
    mut connected: tokio::sync::watch::Receiver<bool>,
    pushed: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = connected.wait_for(|c| *c) => if r.is_err() { return },
        }
        let front = match queue.front() {
            Ok(f) => f,
            Err(e) => {
                metrics.mqtt_filequeue_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "cannot read the MQTT file queue");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let Some((seq, msg)) = front else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = pushed.notified() => continue,
                // A lost wake-up costs at most this long.
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
            }
        };
        let sent = tokio::select! {
            _ = stop.cancelled() => return,
            r = client.publish(topic.as_str(), QoS::AtMostOnce, false, msg.to_vec()) => r,
        };
        match sent {
            Ok(()) => {
                metrics.mqtt_published.fetch_add(1, Relaxed);
                if let Err(e) = queue.remove(seq) {
                    metrics.mqtt_filequeue_errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "cannot remove a sent message from the MQTT file queue");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            Err(e) => {
                metrics.mqtt_publish_failures.fetch_add(1, Relaxed);
                tracing::debug!(error = %e, "cannot publish a queued new_qname event");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
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

//! Every metric edm exports, declared in one place, and the Prometheus text
//! rendering served at `/metrics`.
//!
//! Counters are plain atomics. The hot path never touches them per frame:
//! workers add up [`WorkerCounters`] locally and fold them in once per batch
//! ([`Metrics::add_worker`]). Names of the reference's metrics are kept exactly
//! (reference §11); the others are edm's own per-stage counters.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! metrics {
    ($( $(#[$doc:meta])* $field:ident : $kind:literal, $name:literal, $help:literal; )*) => {
        /// Process-wide metric values.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $( $(#[$doc])* pub $field: AtomicU64, )*
            /// Failed reloads per part, in [`RELOAD_PARTS`] order.
            pub reload_failures: [AtomicU64; 6],
            gauges: Mutex<Vec<Gauge>>,
        }

        impl Metrics {
            fn render_fixed(&self, out: &mut String) {
                $(
                    let _ = writeln!(out, "# HELP {} {}", $name, $help);
                    let _ = writeln!(out, "# TYPE {} {}", $name, $kind);
                    let _ = writeln!(out, "{} {}", $name, self.$field.load(Relaxed));
                )*
            }

            /// Value of a metric by its exported name (tests and the shutdown summary).
            pub fn get(&self, name: &str) -> Option<u64> {
                match name {
                    $( $name => Some(self.$field.load(Relaxed)), )*
                    _ => None,
                }
            }
        }
    };
}

metrics! {
    /// Frames taken by minimiser workers.
    processed_dnstap: "counter", "edm_processed_dnstap_total", "dnstap frames taken from the input queue by a minimiser worker";
    /// Crypto-PAn cache hits.
    cryptopan_lru_hit: "counter", "edm_cryptopan_lru_hit_total", "Crypto-PAn cache hits, summed over workers";
    /// Crypto-PAn cache evictions.
    cryptopan_lru_evicted: "counter", "edm_cryptopan_lru_evicted_total", "Crypto-PAn cache evictions, summed over workers";
    /// Client ignore-list drops.
    ignored_client_ip: "counter", "edm_ignored_client_ip_total", "responses dropped because the client is on the ignored-client list";
    /// Unparsable client with an active client list.
    ignored_client_ip_error: "counter", "edm_ignored_client_ip_error_total", "responses dropped because the client address is unparsable while a client list is active";
    /// Question ignore-list drops.
    ignored_question_name: "counter", "edm_ignored_question_name_total", "responses dropped because a question name is on the ignored-name list";
    /// Missing message or DNS unpack failure.
    ignored_dns_parse_error: "counter", "edm_ignored_dns_parse_error_total", "frames dropped because the dnstap message is missing or the DNS response does not parse";
    /// QDCOUNT = 0.
    ignored_empty_question: "counter", "edm_ignored_empty_question_section_total", "responses dropped because the question section is empty";
    /// Invalid question name.
    ignored_invalid_question_name: "counter", "edm_ignored_invalid_question_name_total", "responses dropped because a question name is not a valid domain name";
    /// Protobuf decode failures (no counter in the reference).
    dnstap_decode_error: "counter", "edm_dnstap_decode_error_total", "frames dropped because they are not a valid dnstap protobuf";
    /// Query-type messages skipped.
    dnstap_query_skipped: "counter", "edm_dnstap_query_skipped_total", "dnstap messages skipped because they are queries (only *_RESPONSE is kept)";
    /// Invalid address lengths replaced by zeros.
    cryptopan_invalid_address: "counter", "edm_cryptopan_invalid_address_total", "query or response addresses of invalid length, pseudonymised as zero bytes";
    /// Well-known hits sent to the histogram.
    histogram_updates: "counter", "edm_histogram_updates_total", "well-known responses counted in the histogram instead of a session row";
    /// Session rows handed to the collector.
    session_rows: "counter", "edm_session_rows_total", "session rows handed to the collector";
    /// Session rows not built because session files are disabled.
    session_rows_disabled: "counter", "edm_session_rows_disabled_total", "responses that produced no session row because disable-session-files is set";
    /// Session rows in written files.
    session_rows_written: "counter", "edm_session_rows_written_total", "session rows written to Parquet files";
    /// Session rows lost to a failed file write.
    session_rows_write_failed: "counter", "edm_session_rows_write_failed_total", "session rows lost because their Parquet file could not be written";
    /// Histogram rows in written files.
    histogram_rows_written: "counter", "edm_histogram_rows_written_total", "histogram rows (one per well-known domain and interval) written to Parquet files";
    /// Histogram rows lost to a failed file write.
    histogram_rows_write_failed: "counter", "edm_histogram_rows_write_failed_total", "histogram rows lost because their Parquet file could not be written";
    /// Parquet files written.
    parquet_files_written: "counter", "edm_parquet_files_written_total", "Parquet files written (tmp, fsync, rename)";
    /// Parquet bytes written.
    parquet_bytes_written: "counter", "edm_parquet_bytes_written_total", "bytes of Parquet files written";
    /// Parquet write errors.
    parquet_write_errors: "counter", "edm_parquet_write_errors_total", "Parquet files that failed to write";
    /// Data frames read from inputs.
    input_frames: "counter", "edm_input_frames_total", "dnstap data frames read from all inputs";
    /// Payload bytes read from inputs.
    input_bytes: "counter", "edm_input_bytes_total", "dnstap data frame payload bytes read from all inputs";
    /// Connections accepted.
    input_connections: "counter", "edm_input_connections_total", "Frame Streams connections accepted";
    /// Connections open now.
    input_connections_open: "gauge", "edm_input_connections_open", "Frame Streams connections open now";
    /// Connections closed on a protocol or I/O error.
    input_connection_errors: "counter", "edm_input_connection_errors_total", "Frame Streams connections closed because of a protocol or I/O error";
    /// Bytes of incomplete frames discarded when a connection ended.
    input_truncated_bytes: "counter", "edm_input_truncated_bytes_total", "bytes of incomplete frames discarded when a connection ended";
    /// Mid-stream control frames ignored.
    input_control_ignored: "counter", "edm_input_control_frames_ignored_total", "mid-stream Frame Streams control frames ignored";
    /// Names never seen before by this instance.
    new_qnames: "counter", "edm_seen_qname_new_total", "question names seen for the first time by this instance (new_qname candidates)";
    /// new_qname events handed to the publisher queue.
    new_qname_queued: "counter", "edm_new_qname_queued_total", "new_qname events queued for the MQTT publisher";
    /// new_qname events dropped (queue full or broker unreachable).
    new_qname_discarded: "counter", "edm_new_qname_discarded_total", "new_qname events dropped: publisher channel or file queue full, or (without the file queue) broker unreachable";
    /// Events published.
    mqtt_published: "counter", "edm_mqtt_published_total", "signed new_qname events handed to the MQTT connection";
    /// Events that could not be published.
    mqtt_publish_failures: "counter", "edm_mqtt_publish_failures_total", "new_qname events the MQTT client refused";
    /// File queue read or write errors.
    mqtt_filequeue_errors: "counter", "edm_mqtt_filequeue_errors_total", "MQTT file queue read or write errors";
    /// 1 while connected to the broker.
    mqtt_connected: "gauge", "edm_mqtt_connected", "1 while connected to the MQTT broker";
    /// Reloads that completed with every part loaded.
    reloads: "counter", "edm_reloads_total", "reloads (SIGHUP or file change) that completed with every part loaded";
    /// Unix time of the last fully successful reload (or of startup).
    reload_last_success: "gauge", "edm_reload_last_success_timestamp_seconds", "Unix time of the last fully successful reload, or of startup";
}

/// Parts of a reload that can fail on their own (`edm_reload_failures_total{part}`).
pub const RELOAD_PARTS: [&str; 6] = [
    "config",
    "cryptopan",
    "well-known-domains",
    "ignored-question-names",
    "ignored-client-ips",
    "mqtt-client-cert",
];

/// A gauge sampled at render time, e.g. a queue depth.
struct Gauge {
    kind: &'static str,
    name: &'static str,
    help: &'static str,
    value: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge").field("name", &self.name).finish()
    }
}

impl Metrics {
    /// Register a gauge whose value is read when `/metrics` is scraped.
    pub fn register_gauge(
        &self,
        name: &'static str,
        help: &'static str,
        value: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.register_sampled("gauge", name, help, value);
    }

    /// Register a counter kept elsewhere (e.g. by a store), read at scrape time.
    pub fn register_counter(
        &self,
        name: &'static str,
        help: &'static str,
        value: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.register_sampled("counter", name, help, value);
    }

    fn register_sampled(
        &self,
        kind: &'static str,
        name: &'static str,
        help: &'static str,
        value: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        if let Ok(mut g) = self.gauges.lock() {
            g.retain(|g| g.name != name);
            g.push(Gauge {
                kind,
                name,
                help,
                value: Box::new(value),
            });
        }
    }

    /// Count a failed reload of `part` (one of [`RELOAD_PARTS`]).
    pub fn reload_failed(&self, part: &str) {
        if let Some(i) = RELOAD_PARTS.iter().position(|p| *p == part) {
            self.reload_failures[i].fetch_add(1, Relaxed);
        }
    }

    /// Fold one worker's local counters in and reset them.
    pub fn add_worker(&self, c: &mut WorkerCounters) {
        let pairs = [
            (&self.processed_dnstap, c.processed),
            (&self.cryptopan_lru_hit, c.lru_hit),
            (&self.cryptopan_lru_evicted, c.lru_evicted),
            (&self.ignored_client_ip, c.ignored_client_ip),
            (&self.ignored_client_ip_error, c.ignored_client_ip_error),
            (&self.ignored_question_name, c.ignored_question_name),
            (&self.ignored_dns_parse_error, c.parse_error),
            (&self.ignored_empty_question, c.empty_question),
            (&self.ignored_invalid_question_name, c.invalid_name),
            (&self.dnstap_decode_error, c.decode_error),
            (&self.dnstap_query_skipped, c.query_skipped),
            (&self.cryptopan_invalid_address, c.invalid_address),
            (&self.session_rows, c.session_rows),
            (&self.histogram_updates, c.histogram_updates),
            (&self.session_rows_disabled, c.session_disabled),
            (&self.new_qnames, c.new_qnames),
            (&self.new_qname_queued, c.new_qname_queued),
            (&self.new_qname_discarded, c.new_qname_discarded),
        ];
        for (m, v) in pairs {
            if v != 0 {
                m.fetch_add(v, Relaxed);
            }
        }
        *c = WorkerCounters::default();
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let _ = writeln!(out, "# HELP edm_build_info edm build information");
        let _ = writeln!(out, "# TYPE edm_build_info gauge");
        let _ = writeln!(
            out,
            "edm_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        self.render_fixed(&mut out);
        let _ = writeln!(
            out,
            "# HELP edm_reload_failures_total reloads in which a part failed to load (the previous one stays in force)"
        );
        let _ = writeln!(out, "# TYPE edm_reload_failures_total counter");
        for (part, n) in RELOAD_PARTS.iter().zip(&self.reload_failures) {
            let _ = writeln!(
                out,
                "edm_reload_failures_total{{part=\"{part}\"}} {}",
                n.load(Relaxed)
            );
        }
        if let Ok(g) = self.gauges.lock() {
            for g in g.iter() {
                let _ = writeln!(out, "# HELP {} {}", g.name, g.help);
                let _ = writeln!(out, "# TYPE {} {}", g.name, g.kind);
                let _ = writeln!(out, "{} {}", g.name, (g.value)());
            }
        }
        render_process(&mut out);
        out
    }

    /// Sum of every counter that ends a frame's life in a worker without a
    /// session row: the accounting identity is
    /// `processed = session_rows + session_disabled + worker_drops()`.
    pub fn worker_drops(&self) -> u64 {
        [
            &self.ignored_client_ip,
            &self.ignored_client_ip_error,
            &self.ignored_question_name,
            &self.ignored_dns_parse_error,
            &self.ignored_empty_question,
            &self.ignored_invalid_question_name,
            &self.dnstap_decode_error,
            &self.dnstap_query_skipped,
        ]
        .iter()
        .map(|c| c.load(Relaxed))
        .sum()
    }
}

/// Per-worker counters, plain integers owned by one thread.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct WorkerCounters {
    pub processed: u64,
    pub lru_hit: u64,
    pub lru_evicted: u64,
    pub ignored_client_ip: u64,
    pub ignored_client_ip_error: u64,
    pub ignored_question_name: u64,
    pub parse_error: u64,
    pub empty_question: u64,
    pub invalid_name: u64,
    pub decode_error: u64,
    pub query_skipped: u64,
    pub invalid_address: u64,
    pub session_rows: u64,
    pub session_disabled: u64,
    pub histogram_updates: u64,
    pub new_qnames: u64,
    pub new_qname_queued: u64,
    pub new_qname_discarded: u64,
}

/// `process_*` metrics from `/proc/self` (Linux only; silently absent elsewhere).
fn render_process(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY-free: sysconf is not needed; Linux USER_HZ is 100 on every supported arch.
    let ticks = 100.0;
    let cpu = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu_s = (cpu(11) + cpu(12)) / ticks;
    let rss_pages = f.get(21).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let _ = writeln!(
        out,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds."
    );
    let _ = writeln!(out, "# TYPE process_cpu_seconds_total counter");
    let _ = writeln!(out, "process_cpu_seconds_total {cpu_s}");
    let _ = writeln!(
        out,
        "# HELP process_resident_memory_bytes Resident memory size in bytes."
    );
    let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
    let _ = writeln!(out, "process_resident_memory_bytes {}", rss_pages * 4096);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_reference_names_and_gauges() {
        let m = Metrics::default();
        let mut c = WorkerCounters {
            processed: 3,
            parse_error: 1,
            session_rows: 2,
            ..Default::default()
        };
        m.add_worker(&mut c);
        assert_eq!(c, WorkerCounters::default());
        m.register_gauge("edm_input_queue_depth", "frames queued", || 7);
        let text = m.render();
        assert!(text.contains("\nedm_processed_dnstap_total 3\n"));
        assert!(text.contains("\nedm_ignored_dns_parse_error_total 1\n"));
        assert!(text.contains("# TYPE edm_input_connections_open gauge"));
        assert!(text.contains("\nedm_input_queue_depth 7\n"));
        assert_eq!(m.get("edm_session_rows_total"), Some(2));
        assert_eq!(m.worker_drops(), 1);
    }
}

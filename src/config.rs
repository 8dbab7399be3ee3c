//! Configuration: the reference's TOML keys and defaults (reference §10), plus
//! edm's own keys, with flags overriding the file.
//!
//! One table ([`KEYS`]) drives everything: TOML parsing, the `run` flags, the
//! `--help` text and validation. Loading happens in two stages, as in
//! hickory-dns and ripgrep: [`Config::from_toml`] collects *every* problem
//! (unknown keys with their line, type mismatches, TOML syntax) and
//! [`Config::validate`] checks values and rules between keys, again reporting
//! all violations at once in one [`ConfigError`].

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Reference default for `cryptopan-key-salt`.
pub const DEFAULT_CRYPTOPAN_SALT: &str = "edm-kdf-salt-val";
/// Reference default for `data-dir`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/dnstapir/edm";
/// Default `metrics-address` (the reference's fixed address).
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:2112";
/// Default maximum data frame payload, as in the reference (96 KiB).
pub const DEFAULT_MAX_FRAME_LENGTH: i64 = 96 * 1024;
/// Default input queue capacity, in batches of frames: full batches (a
/// sender writing in bulk) make ~16 MB and ~130 k frames; the collector's
/// and the writer's queues buffer another ~160 k rows behind the workers.
pub const DEFAULT_INPUT_QUEUE: i64 = 256;
/// Default cap on concurrent Frame Streams connections.
pub const DEFAULT_MAX_CONNECTIONS: i64 = 1024;
/// Default time given to open connections to deliver what they already sent at shutdown.
pub const DEFAULT_SHUTDOWN_DRAIN_MS: i64 = 2000;

/// The type of a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// TOML string.
    Str,
    /// TOML boolean.
    Bool,
    /// TOML integer.
    Int,
}

/// A typed configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// String value.
    Str(String),
    /// Boolean value.
    Bool(bool),
    /// Integer value.
    Int(i64),
}

/// One configuration key.
#[derive(Debug)]
pub struct KeySpec {
    /// TOML key and flag name.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Whether a change takes effect on reload (reference §10).
    pub reloadable: bool,
    /// Whether this version of edm acts on the key (others are accepted for
    /// compatibility with an existing `dnstapir-edm.toml`).
    pub implemented: bool,
    /// Help text shown by `edm run --help`.
    pub help: &'static str,
}

const fn k(
    name: &'static str,
    kind: Kind,
    reloadable: bool,
    implemented: bool,
    help: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        kind,
        reloadable,
        implemented,
        help,
    }
}

use Kind::{Bool, Int, Str};

/// Every key edm accepts, in `--help` order.
pub const KEYS: &[KeySpec] = &[
    k(
        "input-unix",
        Str,
        false,
        true,
        "Frame Streams unix socket path to listen on",
    ),
    k(
        "input-unix-mode",
        Str,
        false,
        true,
        "file mode of the unix socket, octal (default: from umask)",
    ),
    k(
        "input-tcp",
        Str,
        false,
        true,
        "Frame Streams TCP address to listen on (host:port)",
    ),
    k(
        "input-tls",
        Str,
        false,
        false,
        "Frame Streams TLS address (not yet supported)",
    ),
    k(
        "input-tls-cert-file",
        Str,
        false,
        false,
        "TLS server certificate (PEM)",
    ),
    k(
        "input-tls-key-file",
        Str,
        false,
        false,
        "TLS server key (PEM)",
    ),
    k(
        "input-tls-client-ca-file",
        Str,
        false,
        false,
        "CA bundle for TLS client certificates",
    ),
    k(
        "input-file",
        Str,
        false,
        true,
        "read a .fstrm capture file instead of listening, then exit",
    ),
    k(
        "input-max-connections",
        Int,
        false,
        true,
        "maximum concurrent Frame Streams connections (default 1024)",
    ),
    k(
        "max-frame-length",
        Int,
        false,
        true,
        "maximum data frame payload in bytes (default 98304)",
    ),
    k(
        "input-queue-size",
        Int,
        false,
        true,
        "input queue capacity, in batches of frames (default 256)",
    ),
    k(
        "shutdown-drain-ms",
        Int,
        false,
        true,
        "at shutdown, how long open connections may deliver already-sent frames (default 2000)",
    ),
    k(
        "cryptopan-key",
        Str,
        true,
        true,
        "Crypto-PAn passphrase (argon2id-derived key); required",
    ),
    k(
        "cryptopan-key-salt",
        Str,
        true,
        true,
        "argon2id salt for the Crypto-PAn key (default edm-kdf-salt-val)",
    ),
    k(
        "cryptopan-address-entries",
        Int,
        false,
        true,
        "Crypto-PAn cache entries per worker; 0 disables (default 10000000)",
    ),
    k(
        "data-dir",
        Str,
        false,
        true,
        "directory for Parquet output and state (default /var/lib/dnstapir/edm)",
    ),
    k(
        "disable-session-files",
        Bool,
        true,
        true,
        "do not write session Parquet files",
    ),
    k(
        "minimiser-workers",
        Int,
        false,
        true,
        "minimiser worker threads; 0 or less = number of CPUs (default 1)",
    ),
    k(
        "metrics-address",
        Str,
        false,
        true,
        "Prometheus /metrics listen address (default 127.0.0.1:2112); empty disables",
    ),
    k(
        "well-known-domains-file",
        Str,
        true,
        true,
        "well-known domains list",
    ),
    k(
        "ignored-client-ips-file",
        Str,
        true,
        true,
        "ignored client CIDR list",
    ),
    k(
        "ignored-question-names-file",
        Str,
        true,
        true,
        "ignored question name list",
    ),
    k(
        "histogram-hll-explicit-threshold",
        Int,
        false,
        true,
        "HLL explicit threshold (default 20)",
    ),
    k(
        "enable-manual-parquet-rotation",
        Bool,
        false,
        true,
        "enable POST /debug/rotate-parquet",
    ),
    k(
        "disable-histogram-sender",
        Bool,
        true,
        false,
        "do not upload histogram files",
    ),
    k(
        "disable-mqtt",
        Bool,
        false,
        true,
        "do not publish new_qname events",
    ),
    k(
        "disable-mqtt-filequeue",
        Bool,
        false,
        true,
        "do not queue MQTT messages on disk",
    ),
    k(
        "pebble-sync",
        Bool,
        true,
        true,
        "fsync the seen-qname store on insert",
    ),
    k(
        "qname-seen-entries",
        Int,
        false,
        true,
        "seen-qname cache entries (default 10000000)",
    ),
    k(
        "qname-seen-index-mb",
        Int,
        false,
        true,
        "memory for the seen-qname store's Bloom filters, in MiB (default 64); older runs beyond it are read from disk",
    ),
    k(
        "mqtt-filequeue-max-messages",
        Int,
        false,
        true,
        "most messages the MQTT file queue holds; more are discarded (default 1000000)",
    ),
    k(
        "newqname-buffer",
        Int,
        false,
        true,
        "new_qname event queue capacity (default 1000)",
    ),
    k(
        "mqtt-signing-key-file",
        Str,
        false,
        true,
        "JWK for signing new_qname events",
    ),
    k(
        "mqtt-client-key-file",
        Str,
        true,
        true,
        "MQTT client key (PEM)",
    ),
    k(
        "mqtt-client-cert-file",
        Str,
        true,
        true,
        "MQTT client certificate (PEM)",
    ),
    k(
        "mqtt-server",
        Str,
        false,
        true,
        "MQTT broker URL (default 127.0.0.1:8883)",
    ),
    k("mqtt-ca-file", Str, false, true, "MQTT broker CA bundle"),
    k(
        "mqtt-keepalive",
        Int,
        false,
        true,
        "MQTT keepalive seconds (default 30)",
    ),
    k(
        "mqtt-sign-workers",
        Int,
        false,
        false,
        "signing workers (TOML only in the reference)",
    ),
    k(
        "http-ca-file",
        Str,
        false,
        false,
        "histogram sender CA bundle",
    ),
    k(
        "http-signing-key-file",
        Str,
        false,
        false,
        "JWK for signing histogram uploads",
    ),
    k(
        "http-client-key-file",
        Str,
        true,
        false,
        "histogram sender client key",
    ),
    k(
        "http-client-cert-file",
        Str,
        true,
        false,
        "histogram sender client certificate",
    ),
    k("http-url", Str, false, false, "histogram receiver base URL"),
    k("debug", Bool, false, true, "debug logging"),
    k(
        "debug-dnstap-filename",
        Str,
        false,
        false,
        "append raw frames to this file (sensitive)",
    ),
    k(
        "debug-enable-blockprofiling",
        Bool,
        false,
        false,
        "Go runtime profiling (ignored)",
    ),
    k(
        "debug-enable-mutexprofiling",
        Bool,
        false,
        false,
        "Go runtime profiling (ignored)",
    ),
    k(
        "config-file",
        Str,
        false,
        true,
        "accepted in the file for compatibility; overwritten with the real path",
    ),
];

/// Look up a key's spec.
pub fn key_spec(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.name == name)
}

/// One problem found while loading or validating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key concerned, if any.
    pub key: Option<String>,
    /// 1-based line in the file, if known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// One or more problems, all reported together.
    #[error("invalid configuration{}: {}", origin.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default(), join(problems))]
    Invalid {
        /// The file, when the problems come from one.
        origin: Option<PathBuf>,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn join(p: &[Problem]) -> String {
    p.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A leniently parsed file: the config, its problems, and each key's line.
type Parsed = (Config, Vec<Problem>, Vec<(String, usize)>);

/// Validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // each field is the key of the same name in [`KEYS`]
pub struct Config {
    pub config_file: Option<PathBuf>,
    pub input_unix: String,
    pub input_unix_mode: String,
    pub input_tcp: String,
    pub input_tls: String,
    pub input_tls_cert_file: String,
    pub input_tls_key_file: String,
    pub input_tls_client_ca_file: String,
    pub input_file: String,
    pub input_max_connections: i64,
    pub max_frame_length: i64,
    pub input_queue_size: i64,
    pub shutdown_drain_ms: i64,
    pub cryptopan_key: String,
    pub cryptopan_key_salt: String,
    pub cryptopan_address_entries: i64,
    pub data_dir: String,
    pub disable_session_files: bool,
    pub minimiser_workers: i64,
    pub metrics_address: String,
    pub well_known_domains_file: String,
    pub ignored_client_ips_file: String,
    pub ignored_question_names_file: String,
    pub histogram_hll_explicit_threshold: i64,
    pub enable_manual_parquet_rotation: bool,
    pub disable_histogram_sender: bool,
    pub disable_mqtt: bool,
    pub disable_mqtt_filequeue: bool,
    pub pebble_sync: bool,
    pub qname_seen_entries: i64,
    /// `qname-seen-index-mb`.
    pub qname_seen_index_mb: i64,
    pub newqname_buffer: i64,
    /// `mqtt-filequeue-max-messages`.
    pub mqtt_filequeue_max_messages: i64,
    pub mqtt_signing_key_file: String,
    pub mqtt_client_key_file: String,
    pub mqtt_client_cert_file: String,
    pub mqtt_server: String,
    pub mqtt_ca_file: String,
    pub mqtt_keepalive: i64,
    pub mqtt_sign_workers: i64,
    pub http_ca_file: String,
    pub http_signing_key_file: String,
    pub http_client_key_file: String,
    pub http_client_cert_file: String,
    pub http_url: String,
    pub debug: bool,
    pub debug_dnstap_filename: String,
    pub debug_enable_blockprofiling: bool,
    pub debug_enable_mutexprofiling: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            config_file: None,
            input_unix: String::new(),
            input_unix_mode: String::new(),
            input_tcp: String::new(),
            input_tls: String::new(),
            input_tls_cert_file: String::new(),
            input_tls_key_file: String::new(),
            input_tls_client_ca_file: String::new(),
            input_file: String::new(),
            input_max_connections: DEFAULT_MAX_CONNECTIONS,
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            input_queue_size: DEFAULT_INPUT_QUEUE,
            shutdown_drain_ms: DEFAULT_SHUTDOWN_DRAIN_MS,
            cryptopan_key: String::new(),
            cryptopan_key_salt: DEFAULT_CRYPTOPAN_SALT.into(),
            cryptopan_address_entries: 10_000_000,
            data_dir: DEFAULT_DATA_DIR.into(),
            disable_session_files: false,
            minimiser_workers: 1,
            metrics_address: DEFAULT_METRICS_ADDRESS.into(),
            well_known_domains_file: "well-known-domains.dawg".into(),
            ignored_client_ips_file: String::new(),
            ignored_question_names_file: String::new(),
            histogram_hll_explicit_threshold: 20,
            enable_manual_parquet_rotation: false,
            disable_histogram_sender: false,
            disable_mqtt: false,
            disable_mqtt_filequeue: false,
            pebble_sync: false,
            qname_seen_entries: 10_000_000,
            qname_seen_index_mb: 64,
            newqname_buffer: 1000,
            mqtt_filequeue_max_messages: 1_000_000,
            mqtt_signing_key_file: "edm-mqtt-signer-key.pem".into(),
            mqtt_client_key_file: "edm-mqtt-client-key.pem".into(),
            mqtt_client_cert_file: "edm-mqtt-client.pem".into(),
            mqtt_server: "127.0.0.1:8883".into(),
            mqtt_ca_file: String::new(),
            mqtt_keepalive: 30,
            mqtt_sign_workers: 0,
            http_ca_file: String::new(),
            http_signing_key_file: "edm-http-signer-key.pem".into(),
            http_client_key_file: "edm-http-client-key.pem".into(),
            http_client_cert_file: "edm-http-client.pem".into(),
            http_url: "https://127.0.0.1:8443".into(),
            debug: false,
            debug_dnstap_filename: String::new(),
            debug_enable_blockprofiling: false,
            debug_enable_mutexprofiling: false,
        }
    }
}

macro_rules! field_access {
    ($( $key:literal => $field:ident : $kind:ident ),* $(,)?) => {
        impl Config {
            /// Set one key. The caller has checked the key exists; a type mismatch is an error.
            fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
                match (key, value) {
                    $( ($key, field_access!(@pat $kind v)) => { self.$field = field_access!(@conv $kind v); Ok(()) } )*
                    ("config-file", Value::Str(_)) => Ok(()),
                    (key, v) => Err(match key_spec(key) {
                        Some(spec) => format!("expected {}, found {}", kind_name(spec.kind), value_kind(&v)),
                        None => "unknown key".into(),
                    }),
                }
            }

            /// The current value of a key, for change detection and diagnostics.
            pub fn get(&self, key: &str) -> Option<Value> {
                match key {
                    $( $key => Some(field_access!(@get $kind self.$field)), )*
                    _ => None,
                }
            }
        }
    };
    (@pat Str $v:ident) => { Value::Str($v) };
    (@pat Bool $v:ident) => { Value::Bool($v) };
    (@pat Int $v:ident) => { Value::Int($v) };
    (@conv $k:ident $v:ident) => { $v };
    (@get Str $e:expr) => { Value::Str($e.clone()) };
    (@get Bool $e:expr) => { Value::Bool($e) };
    (@get Int $e:expr) => { Value::Int($e) };
}

field_access! {
    "input-unix" => input_unix: Str,
    "input-unix-mode" => input_unix_mode: Str,
    "input-tcp" => input_tcp: Str,
    "input-tls" => input_tls: Str,
    "input-tls-cert-file" => input_tls_cert_file: Str,
    "input-tls-key-file" => input_tls_key_file: Str,
    "input-tls-client-ca-file" => input_tls_client_ca_file: Str,
    "input-file" => input_file: Str,
    "input-max-connections" => input_max_connections: Int,
    "max-frame-length" => max_frame_length: Int,
    "input-queue-size" => input_queue_size: Int,
    "shutdown-drain-ms" => shutdown_drain_ms: Int,
    "cryptopan-key" => cryptopan_key: Str,
    "cryptopan-key-salt" => cryptopan_key_salt: Str,
    "cryptopan-address-entries" => cryptopan_address_entries: Int,
    "data-dir" => data_dir: Str,
    "disable-session-files" => disable_session_files: Bool,
    "minimiser-workers" => minimiser_workers: Int,
    "metrics-address" => metrics_address: Str,
    "well-known-domains-file" => well_known_domains_file: Str,
    "ignored-client-ips-file" => ignored_client_ips_file: Str,
    "ignored-question-names-file" => ignored_question_names_file: Str,
    "histogram-hll-explicit-threshold" => histogram_hll_explicit_threshold: Int,
    "enable-manual-parquet-rotation" => enable_manual_parquet_rotation: Bool,
    "disable-histogram-sender" => disable_histogram_sender: Bool,
    "disable-mqtt" => disable_mqtt: Bool,
    "disable-mqtt-filequeue" => disable_mqtt_filequeue: Bool,
    "pebble-sync" => pebble_sync: Bool,
    "qname-seen-entries" => qname_seen_entries: Int,
    "qname-seen-index-mb" => qname_seen_index_mb: Int,
    "newqname-buffer" => newqname_buffer: Int,
    "mqtt-filequeue-max-messages" => mqtt_filequeue_max_messages: Int,
    "mqtt-signing-key-file" => mqtt_signing_key_file: Str,
    "mqtt-client-key-file" => mqtt_client_key_file: Str,
    "mqtt-client-cert-file" => mqtt_client_cert_file: Str,
    "mqtt-server" => mqtt_server: Str,
    "mqtt-ca-file" => mqtt_ca_file: Str,
    "mqtt-keepalive" => mqtt_keepalive: Int,
    "mqtt-sign-workers" => mqtt_sign_workers: Int,
    "http-ca-file" => http_ca_file: Str,
    "http-signing-key-file" => http_signing_key_file: Str,
    "http-client-key-file" => http_client_key_file: Str,
    "http-client-cert-file" => http_client_cert_file: Str,
    "http-url" => http_url: Str,
    "debug" => debug: Bool,
    "debug-dnstap-filename" => debug_dnstap_filename: Str,
    "debug-enable-blockprofiling" => debug_enable_blockprofiling: Bool,
    "debug-enable-mutexprofiling" => debug_enable_mutexprofiling: Bool,
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Str => "a string",
        Bool => "a boolean",
        Int => "an integer",
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "a string",
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "an integer",
    }
}

/// Input keys: a command-line override of any of them replaces all of them.
pub const INPUT_KEYS: &[&str] = &["input-unix", "input-tcp", "input-tls", "input-file"];

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Config {
    /// Parse a TOML document over the defaults. Reports every unknown key
    /// (with its line), every type mismatch and any syntax error together.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] listing every problem.
    pub fn from_toml(text: &str, origin: Option<&Path>) -> Result<Self, ConfigError> {
        let (cfg, problems, _) = Self::parse_lenient(text, origin)?;
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.map(Path::to_path_buf),
                problems,
            })
        }
    }

    /// Parse over the defaults, keeping going past bad keys: returns the
    /// config (bad keys left at their defaults), every problem, and the line
    /// of each key. Only a TOML syntax error stops parsing.
    fn parse_lenient(text: &str, origin: Option<&Path>) -> Result<Parsed, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            origin: origin.map(Path::to_path_buf),
            problems,
        };
        let doc = toml_edit::Document::parse(text).map_err(|e| {
            invalid(vec![Problem {
                key: None,
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().trim().to_string(),
            }])
        })?;
        let mut cfg = Self::default();
        let mut problems = Vec::new();
        let mut lines = Vec::new();
        for (name, item) in doc.iter() {
            let line = doc
                .get_key_value(name)
                .and_then(|(k, _)| k.span())
                .map(|s| line_of(text, s.start));
            if let Some(l) = line {
                lines.push((name.to_string(), l));
            }
            let problem = |message: String| Problem {
                key: Some(name.to_string()),
                line,
                message,
            };
            let Some(spec) = key_spec(name) else {
                problems.push(problem("unknown key".into()));
                continue;
            };
            let value = match item.as_value() {
                Some(toml_edit::Value::String(s)) => Value::Str(s.value().clone()),
                Some(toml_edit::Value::Boolean(b)) => Value::Bool(*b.value()),
                Some(toml_edit::Value::Integer(i)) => Value::Int(*i.value()),
                _ => {
                    problems.push(problem(format!(
                        "expected {}, found {}",
                        kind_name(spec.kind),
                        item.type_name()
                    )));
                    continue;
                }
            };
            if let Err(e) = cfg.set(name, value) {
                problems.push(problem(e));
            }
        }
        cfg.config_file = origin.map(Path::to_path_buf);
        Ok((cfg, problems, lines))
    }

    /// Everything `edm run` does to get its configuration: read the file
    /// (if any), apply the command-line overrides, validate. Every problem
    /// — unknown keys, bad values, broken rules between keys — is reported
    /// in one error, with the line of the key in the file where there is one.
    ///
    /// # Errors
    /// [`ConfigError::Read`] naming the file, or [`ConfigError::Invalid`].
    pub fn resolve(
        path: Option<&Path>,
        overrides: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let (mut cfg, mut problems, lines) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Self::parse_lenient(&text, Some(p))?
            }
            None => (Self::default(), Vec::new(), Vec::new()),
        };
        let overridden = |k: &str| overrides.iter().any(|(o, _)| o == k);
        // A flag replaces the file's value, and with it the file's problem.
        problems.retain(|p| p.key.as_deref().is_none_or(|k| !overridden(k)));
        if let Err(ConfigError::Invalid { problems: p, .. }) = cfg.apply_overrides(overrides) {
            problems.extend(p);
        }
        let already: Vec<String> = problems.iter().filter_map(|p| p.key.clone()).collect();
        for mut p in cfg.problems() {
            let key = p.key.clone().unwrap_or_default();
            if already.contains(&key) || already.contains(&format!("--{key}")) {
                continue;
            }
            if !overridden(&key) {
                p.line = lines.iter().find(|(k, _)| *k == key).map(|(_, l)| *l);
            }
            problems.push(p);
        }
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                origin: path.map(Path::to_path_buf),
                problems,
            })
        }
    }

    /// Read and parse a config file (not yet validated).
    ///
    /// # Errors
    /// [`ConfigError::Read`] naming the file, or [`ConfigError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, Some(path))
    }

    /// Apply command-line overrides (`key`, raw text). Setting any input key
    /// clears the file's input keys first, so `--input-file x` replaces a
    /// configured socket.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] listing every unknown key or unparsable value.
    pub fn apply_overrides(&mut self, overrides: &[(String, String)]) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if overrides
            .iter()
            .any(|(k, _)| INPUT_KEYS.contains(&k.as_str()))
        {
            for key in INPUT_KEYS {
                let _ = self.set(key, Value::Str(String::new()));
            }
        }
        for (key, raw) in overrides {
            let problem = |message: String| Problem {
                key: Some(format!("--{key}")),
                line: None,
                message,
            };
            let Some(spec) = key_spec(key) else {
                problems.push(problem("unknown option".into()));
                continue;
            };
            let value = match spec.kind {
                Str => Ok(Value::Str(raw.clone())),
                Bool => match raw.as_str() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
                    _ => Err(format!("invalid boolean {raw:?}")),
                },
                Int => raw
                    .parse()
                    .map(Value::Int)
                    .map_err(|_| format!("invalid integer {raw:?}")),
            };
            match value.and_then(|v| self.set(key, v)) {
                Ok(()) => {}
                Err(e) => problems.push(problem(e)),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                origin: None,
                problems,
            })
        }
    }

    /// Check values and rules between keys; every violation is reported.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] listing every violation.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                origin: self.config_file.clone(),
                problems,
            })
        }
    }

    /// Every rule [`Config::validate`] checks that this config breaks.
    fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, message: String| {
            problems.push(Problem {
                key: Some(key.to_string()),
                line: None,
                message,
            })
        };
        let sockets = [
            ("input-unix", &self.input_unix),
            ("input-tcp", &self.input_tcp),
            ("input-tls", &self.input_tls),
        ];
        let n_sockets = sockets.iter().filter(|(_, v)| !v.is_empty()).count();
        if n_sockets == 0 && self.input_file.is_empty() {
            bad(
                "input-unix",
                "no input: set input-unix, input-tcp or input-file".into(),
            );
        }
        if n_sockets > 0 && !self.input_file.is_empty() {
            bad(
                "input-file",
                "input-file cannot be combined with a listening input".into(),
            );
        }
        if !self.input_tls.is_empty() {
            bad(
                "input-tls",
                "TLS input is not supported yet by this version of edm".into(),
            );
        }
        if !self.input_tcp.is_empty() && self.input_tcp.parse::<SocketAddr>().is_err() {
            bad(
                "input-tcp",
                format!(
                    "{:?} is not an address of the form host:port",
                    self.input_tcp
                ),
            );
        }
        if !self.input_unix_mode.is_empty() && self.unix_mode().is_none() {
            bad(
                "input-unix-mode",
                format!(
                    "{:?} is not an octal file mode such as 0660",
                    self.input_unix_mode
                ),
            );
        }
        if self.cryptopan_key.is_empty() {
            bad("cryptopan-key", "required".into());
        }
        if self.cryptopan_key_salt.len() < 8 {
            bad(
                "cryptopan-key-salt",
                "must be at least 8 bytes (argon2id)".into(),
            );
        }
        if self.cryptopan_address_entries < 0 {
            bad("cryptopan-address-entries", "must be >= 0".into());
        }
        if self.data_dir.is_empty() {
            bad("data-dir", "required".into());
        }
        if !(4..=(16 << 20)).contains(&self.max_frame_length) {
            bad("max-frame-length", "must be between 4 and 16777216".into());
        }
        if self.input_queue_size < 1 {
            bad("input-queue-size", "must be >= 1".into());
        }
        if self.input_max_connections < 1 {
            bad("input-max-connections", "must be >= 1".into());
        }
        if self.shutdown_drain_ms < 0 {
            bad("shutdown-drain-ms", "must be >= 0".into());
        }
        if !self.metrics_address.is_empty() && self.metrics_address.parse::<SocketAddr>().is_err() {
            bad(
                "metrics-address",
                format!(
                    "{:?} is not an address of the form host:port",
                    self.metrics_address
                ),
            );
        }
        if !(1..=131_072).contains(&self.histogram_hll_explicit_threshold) {
            bad(
                "histogram-hll-explicit-threshold",
                "must be between 1 and 131072".into(),
            );
        }
        if self.well_known_domains_file.is_empty() {
            bad("well-known-domains-file", "required".into());
        }
        if !self.disable_mqtt {
            if self.mqtt_signing_key_file.is_empty() {
                bad(
                    "mqtt-signing-key-file",
                    "required unless disable-mqtt is set".into(),
                );
            }
            if let Err(e) = crate::newqname::mqtt::parse_server(&self.mqtt_server) {
                bad("mqtt-server", e);
            }
        }
        if self.newqname_buffer < 1 {
            bad("newqname-buffer", "must be >= 1".into());
        }
        if self.mqtt_filequeue_max_messages < 1 {
            bad("mqtt-filequeue-max-messages", "must be >= 1".into());
        }
        if self.qname_seen_entries < 1 {
            bad("qname-seen-entries", "must be >= 1".into());
        }
        if !(0..=1 << 20).contains(&self.qname_seen_index_mb) {
            bad(
                "qname-seen-index-mb",
                "must be between 0 and 1048576".into(),
            );
        }
        if !(0..=65535).contains(&self.mqtt_keepalive) {
            bad("mqtt-keepalive", "must be between 0 and 65535".into());
        }
        problems
    }

    /// Keys set to a non-default value that this version does not act on yet.
    pub fn unimplemented_keys_in_use(&self) -> Vec<&'static str> {
        let defaults = Self::default();
        KEYS.iter()
            .filter(|k| !k.implemented)
            .filter(|k| self.get(k.name) != defaults.get(k.name))
            .filter(|k| self.get(k.name) != Some(Value::Str(String::new())))
            .filter(|k| {
                self.get(k.name) != Some(Value::Bool(true)) || !k.name.starts_with("disable-")
            })
            .map(|k| k.name)
            .collect()
    }

    /// The unix socket mode, if configured and valid.
    pub fn unix_mode(&self) -> Option<u32> {
        if self.input_unix_mode.is_empty() {
            return None;
        }
        u32::from_str_radix(self.input_unix_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o7777)
    }

    /// Number of minimiser workers (0 or less means the CPU count).
    pub fn workers(&self) -> usize {
        if self.minimiser_workers > 0 {
            self.minimiser_workers as usize
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("edm.toml");
        let cfg = Config::load(&path).expect("edm.toml parses");
        cfg.validate().expect("edm.toml validates");
        assert!(!cfg.cryptopan_key.is_empty());
    }

    #[test]
    fn unknown_keys_and_type_errors_are_all_reported_with_lines() {
        let text = "cryptopan-key = \"k\"\nbogus = 1\ndata-dir = 5\n\nalso-bogus = true\n";
        let err = Config::from_toml(text, Some(Path::new("x.toml"))).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert_eq!(problems[0].key.as_deref(), Some("bogus"));
        assert_eq!(problems[0].line, Some(2));
        assert_eq!(problems[1].key.as_deref(), Some("data-dir"));
        assert_eq!(problems[1].line, Some(3));
        assert_eq!(problems[2].line, Some(5));
        let text = err.to_string();
        assert!(text.contains("x.toml"), "{text}");
        assert!(text.contains("line 2: bogus: unknown key"), "{text}");
    }

    #[test]
    fn syntax_error_names_line() {
        let err = Config::from_toml("a = 1\nb = = 2\n", None).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn validation_reports_everything_at_once() {
        let cfg = Config {
            cryptopan_address_entries: -1,
            ..Config::default()
        };
        let err = cfg.validate().unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!()
        };
        let keys: Vec<_> = problems.iter().filter_map(|p| p.key.as_deref()).collect();
        assert!(keys.contains(&"input-unix"), "{keys:?}");
        assert!(keys.contains(&"cryptopan-key"), "{keys:?}");
        assert!(keys.contains(&"cryptopan-address-entries"), "{keys:?}");
    }

    #[test]
    fn flags_override_file_and_replace_inputs() {
        let mut cfg =
            Config::from_toml("input-unix = \"/tmp/s\"\ncryptopan-key = \"k\"\n", None).unwrap();
        // MQTT is on by default (as in the reference); this test is about inputs.
        cfg.apply_overrides(&[("disable-mqtt".into(), "true".into())])
            .unwrap();
        cfg.apply_overrides(&[
            ("input-file".into(), "x.fstrm".into()),
            ("disable-session-files".into(), "true".into()),
            ("minimiser-workers".into(), "3".into()),
        ])
        .unwrap();
        assert_eq!(cfg.input_unix, "");
        assert_eq!(cfg.input_file, "x.fstrm");
        assert!(cfg.disable_session_files);
        assert_eq!(cfg.workers(), 3);
        cfg.validate().unwrap();
        assert!(
            cfg.apply_overrides(&[("minimiser-workers".into(), "x".into())])
                .is_err()
        );
    }

    #[test]
    fn reference_defaults() {
        let c = Config::default();
        assert_eq!(c.cryptopan_key_salt, "edm-kdf-salt-val");
        assert_eq!(c.data_dir, "/var/lib/dnstapir/edm");
        assert_eq!(c.cryptopan_address_entries, 10_000_000);
        assert_eq!(c.minimiser_workers, 1);
        assert_eq!(c.metrics_address, "127.0.0.1:2112");
        for spec in KEYS {
            assert!(
                c.get(spec.name).is_some() || spec.name == "config-file",
                "{}",
                spec.name
            );
        }
    }
}

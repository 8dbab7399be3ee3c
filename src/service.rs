//! Wiring: builds every stage from a validated [`Config`], runs until the
//! shutdown token is cancelled (or an input file is exhausted), then shuts
//! down in pipeline order so nothing is lost:
//!
//! 1. inputs stop accepting; open connections deliver what their peers
//!    already sent (bounded by `shutdown-drain-ms`);
//! 2. the input queue's last sender is dropped, so workers finish the queue
//!    and exit;
//! 3. the collector sees its last sender go, flushes the partial interval and
//!    waits for both writers (session and histogram files) to finish every
//!    file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::collector::{Collector, CollectorConfig, parquet_file};
use crate::config::Config;
use crate::cryptopan::{CryptoPan, KdfError};
use crate::http::HttpState;
use crate::input::{self, InputContext, InputError};
use crate::metrics::Metrics;
use crate::minimiser::{self, ListsSnapshot, PanSnapshot, Shared, WorkerSettings};
use crate::reload::{self, Reloader};

/// Frames per batch when reading a capture file.
const FILE_BATCH: usize = 256;

/// Messages the collector queue holds: a worker's session rows (up to a
/// page, 8 Ki rows, a few MB) or a batch's histogram updates. A full queue
/// holds the workers back.
const COLLECTOR_QUEUE: usize = 16;

/// Errors that stop edm from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The Crypto-PAn key could not be derived.
    #[error("cannot derive the Crypto-PAn key (cryptopan-key, cryptopan-key-salt)")]
    Kdf(#[source] KdfError),
    /// A data directory could not be created.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A list file could not be loaded.
    #[error(transparent)]
    List(#[from] reload::LoadError),
    /// An input failed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The metrics address could not be bound.
    #[error("cannot listen for metrics on {addr}")]
    Metrics {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The seen-qname store could not be opened.
    #[error(transparent)]
    Seen(#[from] crate::newqname::seen::OpenError),
    /// The MQTT file queue could not be opened.
    #[error(transparent)]
    FileQueue(#[from] crate::newqname::filequeue::OpenError),
    /// The new_qname signing key could not be loaded.
    #[error(transparent)]
    SigningKey(#[from] crate::newqname::jws::KeyError),
    /// The MQTT settings are unusable (broker URL, TLS files).
    #[error("MQTT: {0}")]
    Mqtt(String),
    /// A thread could not be started.
    #[error("cannot start thread")]
    Thread(#[source] std::io::Error),
}

/// What a run did, from the metrics at exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Data frames read from inputs.
    pub frames: u64,
    /// Frames processed by workers.
    pub processed: u64,
    /// Session rows written to files.
    pub rows_written: u64,
    /// Well-known responses counted in histograms.
    pub histogram_updates: u64,
    /// Histogram rows written to files.
    pub histogram_rows_written: u64,
    /// Frames dropped (all counted reasons).
    pub dropped: u64,
    /// Responses kept without a row because session files are disabled.
    pub session_disabled: u64,
    /// Parquet files written.
    pub files: u64,
    /// Parquet files that failed.
    pub write_errors: u64,
    /// Where session files go.
    pub session_dir: PathBuf,
}

/// Where session files go: `<data-dir>/parquet/sessions`.
pub fn session_dir(config: &Config) -> PathBuf {
    PathBuf::from(&config.data_dir)
        .join("parquet")
        .join("sessions")
}

/// Where histogram files go: `<data-dir>/parquet/histograms/outbox`.
pub fn histogram_dir(config: &Config) -> PathBuf {
    PathBuf::from(&config.data_dir)
        .join("parquet")
        .join("histograms")
        .join("outbox")
}

/// Load the three lists named in `config` (blocking: a large list takes a
/// while). `generation` is the well-known list's generation.
///
/// # Errors
/// [`ServiceError::List`] naming the key; the source names file and line.
pub fn load_lists(config: &Config, generation: u64) -> Result<ListsSnapshot, ServiceError> {
    Ok(ListsSnapshot {
        well_known: reload::load_well_known(&config.well_known_domains_file, generation)?,
        ignored_names: reload::load_ignored_names(&config.ignored_question_names_file)?,
        ignored_clients: reload::load_ignored_clients(&config.ignored_client_ips_file)?,
    })
}

/// Run edm until `shutdown` is cancelled, or until the input file is read.
///
/// # Errors
/// [`ServiceError`] for anything that prevents starting; an input file that
/// fails part-way is reported after everything read so far was written.
pub async fn run(
    config: Config,
    overrides: Vec<(String, String)>,
    shutdown: CancellationToken,
) -> Result<RunSummary, ServiceError> {
    run_with_metrics(config, overrides, shutdown, Arc::new(Metrics::default())).await
}

/// [`run`] with a caller-provided metrics registry (tests read it).
/// `overrides` are the command-line settings, re-applied over the config
/// file (`config.config_file`) at every reload.
///
/// # Errors
/// As [`run`].
pub async fn run_with_metrics(
    config: Config,
    overrides: Vec<(String, String)>,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
) -> Result<RunSummary, ServiceError> {
    for k in config.unimplemented_keys_in_use() {
        tracing::warn!(
            config_key = k,
            "configuration key is accepted but not acted on by this version of edm"
        );
    }
    let session_dir = session_dir(&config);
    let histogram_dir = histogram_dir(&config);
    for dir in [&session_dir, &histogram_dir] {
        std::fs::create_dir_all(dir).map_err(|source| ServiceError::DataDir {
            path: dir.clone(),
            source,
        })?;
        if let Ok(left) = parquet_file::leftover_tmp_files(dir) {
            for f in left {
                tracing::warn!(file = %f.display(), "leftover temporary file from an earlier run; inspect and remove it");
            }
        }
    }
    let lists_config = config.clone();
    let lists = tokio::task::spawn_blocking(move || load_lists(&lists_config, 1))
        .await
        .map_err(|e| ServiceError::Thread(std::io::Error::other(e)))??;
    let well_known = lists.well_known.clone();

    let (key, salt) = (
        config.cryptopan_key.clone(),
        config.cryptopan_key_salt.clone(),
    );
    let pan = tokio::task::spawn_blocking(move || CryptoPan::from_passphrase(&key, &salt))
        .await
        .map_err(|e| ServiceError::Thread(std::io::Error::other(e)))?
        .map_err(ServiceError::Kdf)?;
    // Open and bind everything before starting threads, so startup errors are immediate.
    if !config.input_file.is_empty() {
        std::fs::File::open(&config.input_file).map_err(|source| {
            ServiceError::Input(input::InputError::Open {
                path: PathBuf::from(&config.input_file),
                source,
            })
        })?;
    }
    let mut listeners = Vec::new();
    if !config.input_unix.is_empty() {
        listeners.push(input::bind_unix(
            config.input_unix.as_ref(),
            config.unix_mode(),
        )?);
    }
    if !config.input_tcp.is_empty() {
        listeners.push(input::bind_tcp(&config.input_tcp).await?);
    }
    let http_listener = if config.metrics_address.is_empty() {
        None
    } else {
        Some(
            tokio::net::TcpListener::bind(&config.metrics_address)
                .await
                .map_err(|source| ServiceError::Metrics {
                    addr: config.metrics_address.clone(),
                    source,
                })?,
        )
    };

    // The seen-qname store (reference §8): after binding, so a second
    // instance on the same data dir fails on its socket, not on the store.
    let seen_dir = PathBuf::from(&config.data_dir).join("seen");
    let old_dir = PathBuf::from(&config.data_dir).join("seen-qnames");
    let entries = config.qname_seen_entries as u64;
    let sync = config.pebble_sync;
    let index_bytes = usize::try_from(config.qname_seen_index_mb)
        .unwrap_or(0)
        .saturating_mul(1 << 20);
    let seen = tokio::task::spawn_blocking(move || {
        let seen =
            crate::newqname::seen::SeenQnames::open(&seen_dir, entries, sync, index_bytes)?;
        // The store of edm 0.1 before the fingerprint store.
        if old_dir.is_dir() {
            let n = seen.import_fjall(&old_dir)?;
            tracing::info!(names = n, from = %old_dir.display(), "imported the earlier seen-qname store");
        }
        Ok::<_, crate::newqname::seen::OpenError>(seen)
    })
    .await
    .map_err(|e| ServiceError::Thread(std::io::Error::other(e)))??;
    let seen = Arc::new(seen);
    let sc = seen.counters();
    metrics.register_counter(
        "edm_seen_qname_lru_evicted_total",
        "names evicted from the seen-qname cache",
        move || sc.evicted.load(std::sync::atomic::Ordering::Relaxed),
    );
    let sc = seen.counters();
    metrics.register_counter(
        "edm_seen_qname_store_errors_total",
        "seen-qname store read or write errors",
        move || sc.store_errors.load(std::sync::atomic::Ordering::Relaxed),
    );
    let budget = seen.store().budget().clone();
    metrics.register_gauge(
        "edm_seen_qname_index_bytes",
        "memory held by the seen-qname store's Bloom filters (bounded by qname-seen-index-mb)",
        move || budget.used() as u64,
    );
    let budget = seen.store().budget().clone();
    metrics.register_gauge(
        "edm_seen_qname_unfiltered_runs",
        "seen-qname store runs without a Bloom filter (looked up on disk)",
        move || budget.unfiltered() as u64,
    );
    // The new_qname publisher (reference §8), when MQTT is on.
    let mut cert_store = None;
    let (events, publisher) = if config.disable_mqtt {
        (None, None)
    } else {
        let signer = crate::newqname::jws::JwsSigner::load(config.mqtt_signing_key_file.as_ref())?;
        let broker =
            crate::newqname::mqtt::parse_server(&config.mqtt_server).map_err(ServiceError::Mqtt)?;
        let tls = if broker.tls {
            let (tls, store) = crate::newqname::tls::client_config(
                &config.mqtt_ca_file,
                &config.mqtt_client_cert_file,
                &config.mqtt_client_key_file,
            )
            .map_err(ServiceError::Mqtt)?;
            cert_store = store;
            Some(tls)
        } else {
            None
        };
        let queue = if config.disable_mqtt_filequeue {
            None
        } else {
            let dir = PathBuf::from(&config.data_dir).join("mqtt").join("queue");
            let max = config.mqtt_filequeue_max_messages as u64;
            let queue = tokio::task::spawn_blocking(move || {
                crate::newqname::filequeue::FileQueue::open(&dir, max)
            })
            .await
            .map_err(|e| ServiceError::Thread(std::io::Error::other(e)))??;
            let queue = Arc::new(queue);
            if !queue.is_empty() {
                tracing::info!(
                    messages = queue.len(),
                    "MQTT file queue holds messages from an earlier run"
                );
            }
            let q = queue.clone();
            metrics.register_gauge(
                "edm_mqtt_filequeue_messages",
                "signed new_qname events waiting in the MQTT file queue",
                move || q.len(),
            );
            Some(queue)
        };
        let (tx, rx) = flume::bounded(config.newqname_buffer as usize);
        let qrx = rx.clone();
        metrics.register_gauge(
            "edm_new_qname_ch_len",
            "new_qname events waiting for the publisher",
            move || qrx.len() as u64,
        );
        let token = CancellationToken::new();
        let task = tokio::spawn(crate::newqname::mqtt::run(
            crate::newqname::mqtt::PublisherConfig {
                broker,
                keepalive: config.mqtt_keepalive as u64,
                signer,
                tls,
                queue,
            },
            rx,
            metrics.clone(),
            token.clone(),
        ));
        (Some(tx), Some((task, token)))
    };
    let shared = Arc::new(Shared {
        cryptopan: ArcSwap::from_pointee(PanSnapshot { generation: 1, pan }),
        settings: ArcSwap::from_pointee(WorkerSettings {
            disable_session_files: config.disable_session_files,
            ..WorkerSettings::default()
        }),
        lists: ArcSwap::from_pointee(lists),
        seen: Some(seen.clone()),
        events,
    });

    let (collector, to_collector) = Collector::spawn(
        CollectorConfig {
            session_dir: session_dir.clone(),
            histogram_dir,
            hll_threshold: config.histogram_hll_explicit_threshold as u32,
            well_known,
        },
        COLLECTOR_QUEUE,
        metrics.clone(),
    )
    .map_err(ServiceError::Thread)?;
    let http_state = Arc::new(HttpState {
        metrics: metrics.clone(),
        rotate: std::sync::Mutex::new(
            config
                .enable_manual_parquet_rotation
                .then(|| to_collector.clone()),
        ),
        rotation_enabled: config.enable_manual_parquet_rotation,
        rotate_timeout: crate::http::ROTATE_TIMEOUT,
    });
    let http_server = http_listener.map(|l| {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "serving metrics");
        }
        let token = CancellationToken::new();
        let h = tokio::spawn(crate::http::serve(l, http_state.clone(), token.clone()));
        (h, token)
    });
    let to_collector_reload = to_collector.clone();
    let (tx, rx) = flume::bounded(config.input_queue_size as usize);
    let qrx = rx.clone();
    metrics.register_gauge(
        "edm_input_queue_depth",
        "frame batches waiting in the input queue",
        move || qrx.len() as u64,
    );
    let workers = minimiser::spawn_workers(
        config.workers(),
        config.cryptopan_address_entries as usize,
        rx,
        to_collector,
        collector.chunks(),
        shared.clone(),
        metrics.clone(),
    )
    .map_err(ServiceError::Thread)?;

    // Reload triggers (SIGHUP, file changes) while listening; not for a capture file.
    let reload_task = config.input_file.is_empty().then(|| {
        let mut reloader = Reloader::new(
            config.clone(),
            config.config_file.clone(),
            overrides,
            shared.clone(),
            to_collector_reload,
            metrics.clone(),
        );
        reloader.set_mqtt_cert_store(cert_store.clone());
        let token = CancellationToken::new();
        (tokio::spawn(reload::watch(reloader, token.clone())), token)
    });

    let ctx = InputContext {
        tx,
        metrics: metrics.clone(),
        max_frame_len: config.max_frame_length as usize,
        drain: Duration::from_millis(config.shutdown_drain_ms as u64),
        connections: Arc::new(Semaphore::new(config.input_max_connections as usize)),
    };
    let mut input_result = Ok(());
    if config.input_file.is_empty() {
        let mut tasks = tokio::task::JoinSet::new();
        for l in listeners {
            tracing::info!(listener = %l.describe(), "listening for dnstap");
            tasks.spawn(l.serve(ctx.clone(), shutdown.clone()));
        }
        drop(ctx);
        while tasks.join_next().await.is_some() {}
    } else {
        let path = PathBuf::from(&config.input_file);
        tracing::info!(file = %path.display(), "reading dnstap capture");
        let r = tokio::task::spawn_blocking(move || input::read_file(&path, &ctx, FILE_BATCH))
            .await
            .map_err(|e| ServiceError::Thread(std::io::Error::other(e)))?;
        match r {
            Ok(n) => tracing::info!(frames = n, "capture file read"),
            Err(e) => input_result = Err(ServiceError::Input(e)),
        }
    }

    // Every input sender is gone: workers drain the queue and exit, then the collector flushes.
    // The reloader holds a collector sender too: stop it first (after any reload in progress).
    if let Some((task, token)) = reload_task {
        token.cancel();
        let _ = task.await;
    }
    http_state.close_rotation();
    let persist_seen = seen.clone();
    let persisted = tokio::task::spawn_blocking(move || {
        for w in workers {
            if w.join().is_err() {
                tracing::error!("minimiser worker panicked");
            }
        }
        // The workers are gone, so every name is recorded: the seen store is
        // made durable while the collector writes its last files.
        std::thread::scope(|scope| {
            let persisting = std::thread::Builder::new()
                .name("edm-seen-persist".into())
                .spawn_scoped(scope, || persist_seen.persist());
            collector.join();
            match persisting {
                Ok(t) => t
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("seen-store persist panicked"))),
                Err(_) => persist_seen.persist(),
            }
        })
    })
    .await
    .map_err(|e| ServiceError::Thread(std::io::Error::other(e)))?;
    if let Err(e) = persisted {
        tracing::error!(error = %e, "cannot sync the seen-qname store");
    }

    // Workers are gone: nothing more can be queued; let the publisher drain briefly.
    drop(shared);
    if let Some((mut task, token)) = publisher {
        // The queue's senders are gone: the publisher ends once it is drained.
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            token.cancel();
            let _ = task.await;
        }
    }
    if let Some((h, token)) = http_server {
        token.cancel();
        let _ = h.await;
    }
    input_result?;
    Ok(summary(&metrics, session_dir))
}

fn summary(m: &Metrics, session_dir: PathBuf) -> RunSummary {
    use std::sync::atomic::Ordering::Relaxed;
    RunSummary {
        frames: m.input_frames.load(Relaxed),
        processed: m.processed_dnstap.load(Relaxed),
        rows_written: m.session_rows_written.load(Relaxed),
        histogram_updates: m.histogram_updates.load(Relaxed),
        histogram_rows_written: m.histogram_rows_written.load(Relaxed),
        dropped: m.worker_drops(),
        session_disabled: m.session_rows_disabled.load(Relaxed),
        files: m.parquet_files_written.load(Relaxed),
        write_errors: m.parquet_write_errors.load(Relaxed),
        session_dir,
    }
}

//! Hot reload: one path for SIGHUP and file changes.
//!
//! [`Reloader::reload`] re-reads and validates the whole configuration, warns
//! once per changed key that needs a restart, and rebuilds only the parts
//! whose inputs changed — the Crypto-PAn instance (key or salt), each list
//! (path or file contents), the worker settings. Each part is built off the
//! hot path, then published with one `ArcSwap` store. A part that fails to
//! load keeps its previous snapshot; the failure is logged with the file and
//! reason and counted in `edm_reload_failures_total{part}`.
//!
//! A new well-known list is sent to the collector *before* it is published
//! to the workers, so every histogram update the collector receives carries
//! the generation of a list it already knows.
//!
//! [`watch`] drives reloads: SIGHUP, and `notify` events on the parent
//! directories of the config file and every list file (so editors' atomic
//! renames and `mv` replacements are seen), debounced; triggers that arrive
//! during a reload are coalesced into one more reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::Sender;
use tokio_util::sync::CancellationToken;

use crate::collector::CollectorMsg;
use crate::config::{Config, KEYS, Value};
use crate::cryptopan::CryptoPan;
use crate::error::Chain;
use crate::lists::clients::ClientSet;
use crate::lists::names::{ListError, NameList};
use crate::metrics::Metrics;
use crate::minimiser::{ListsSnapshot, PanSnapshot, Shared, WellKnown, WorkerSettings};

/// Quiet time after a file event before reloading (editors write in bursts).
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Why a list could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read or parsed.
    #[error("cannot load {key}")]
    List {
        /// The configuration key naming the file.
        key: &'static str,
        /// Why (names the file and line).
        #[source]
        source: ListError,
    },
    /// The well-known list has no names.
    #[error("well-known-domains-file {0} contains no names")]
    EmptyWellKnown(PathBuf),
}

/// Load the well-known list at `path` (`""` = none) as generation `generation`.
///
/// # Errors
/// [`LoadError`] naming the key; the source names file and line.
pub fn load_well_known(path: &str, generation: u64) -> Result<Option<Arc<WellKnown>>, LoadError> {
    if path.is_empty() {
        return Ok(None);
    }
    let list = NameList::load(Path::new(path)).map_err(|source| LoadError::List {
        key: "well-known-domains-file",
        source,
    })?;
    if list.is_empty() {
        return Err(LoadError::EmptyWellKnown(PathBuf::from(path)));
    }
    Ok(Some(Arc::new(WellKnown { generation, list })))
}

/// Load the ignored-question list at `path` (`""` or no names = disabled).
///
/// # Errors
/// [`LoadError`] naming the key; the source names file and line.
pub fn load_ignored_names(path: &str) -> Result<Option<Arc<NameList>>, LoadError> {
    if path.is_empty() {
        return Ok(None);
    }
    let list = NameList::load(Path::new(path)).map_err(|source| LoadError::List {
        key: "ignored-question-names-file",
        source,
    })?;
    Ok((!list.is_empty()).then(|| Arc::new(list)))
}

/// Load the ignored-client list at `path` (`""` or no CIDRs = disabled).
///
/// # Errors
/// [`LoadError`] naming the key; the source names file and line.
pub fn load_ignored_clients(path: &str) -> Result<Option<Arc<ClientSet>>, LoadError> {
    if path.is_empty() {
        return Ok(None);
    }
    ClientSet::load(Path::new(path))
        .map(|s| s.map(Arc::new))
        .map_err(|source| LoadError::List {
            key: "ignored-client-ips-file",
            source,
        })
}

/// Identity of a file's contents as far as the filesystem tells: a rename
/// over it changes the inode, an in-place write the size or mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    path: String,
    meta: Option<(u64, u64, u64, SystemTime)>,
}

fn stamp(path: &str) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = if path.is_empty() {
        None
    } else {
        std::fs::metadata(path).ok().map(|m| {
            (
                m.dev(),
                m.ino(),
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            )
        })
    };
    Stamp {
        path: path.to_owned(),
        meta,
    }
}

/// What one reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Parts rebuilt and published (e.g. `cryptopan`, `well-known-domains`).
    pub changed: Vec<&'static str>,
    /// Parts that failed (their previous snapshot stays), with the reason.
    pub failed: Vec<(&'static str, String)>,
    /// Wall time of the reload.
    pub took: Duration,
}

/// Rebuilds and publishes snapshots; owned by the reload task.
#[derive(Debug)]
pub struct Reloader {
    config_path: Option<PathBuf>,
    overrides: Vec<(String, String)>,
    /// The configuration the process started with (keys needing a restart).
    startup: Config,
    /// The configuration in force for reloadable parts.
    current: Config,
    shared: Arc<Shared>,
    collector: Sender<CollectorMsg>,
    metrics: Arc<Metrics>,
    stamps: HashMap<&'static str, Stamp>,
    /// Restart-only keys already warned about, with the value warned for.
    warned: HashMap<&'static str, Option<Value>>,
    /// The instance replaced by the last key change, with its (key, salt).
    previous_pan: Option<((String, String), CryptoPan)>,
    /// The MQTT client certificate, re-read on every reload (reference §8).
    mqtt_certs: Option<Arc<crate::newqname::tls::ClientCertStore>>,
}

const WELL_KNOWN: &str = "well-known-domains-file";
const IGNORED_NAMES: &str = "ignored-question-names-file";
const IGNORED_CLIENTS: &str = "ignored-client-ips-file";

fn list_path<'a>(c: &'a Config, key: &str) -> &'a str {
    match key {
        WELL_KNOWN => &c.well_known_domains_file,
        IGNORED_NAMES => &c.ignored_question_names_file,
        _ => &c.ignored_client_ips_file,
    }
}

impl Reloader {
    /// A reloader for a service started with `config` (read from
    /// `config_path` with `overrides` applied), publishing into `shared`.
    /// Call right after the initial snapshots were loaded from `config`.
    pub fn new(
        config: Config,
        config_path: Option<PathBuf>,
        overrides: Vec<(String, String)>,
        shared: Arc<Shared>,
        collector: Sender<CollectorMsg>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let stamps = [WELL_KNOWN, IGNORED_NAMES, IGNORED_CLIENTS]
            .into_iter()
            .map(|k| (k, stamp(list_path(&config, k))))
            .collect();
        metrics.reload_last_success.store(unix_now(), Relaxed);
        Self {
            config_path,
            overrides,
            startup: config.clone(),
            current: config,
            shared,
            collector,
            metrics,
            stamps,
            warned: HashMap::new(),
            previous_pan: None,
            mqtt_certs: None,
        }
    }

    /// Re-read the MQTT client certificate and key at every reload.
    pub fn set_mqtt_cert_store(
        &mut self,
        store: Option<Arc<crate::newqname::tls::ClientCertStore>>,
    ) {
        self.mqtt_certs = store;
    }

    /// The files whose changes trigger a reload: the config file and every
    /// list in force.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.config_path.iter().cloned().collect();
        for k in [WELL_KNOWN, IGNORED_NAMES, IGNORED_CLIENTS] {
            let p = list_path(&self.current, k);
            if !p.is_empty() {
                v.push(PathBuf::from(p));
            }
        }
        v
    }

    /// Reload now (blocking: list loads and the KDF take a while).
    pub fn reload(&mut self) -> ReloadReport {
        let started = Instant::now();
        let mut report = ReloadReport::default();
        let new = match Config::resolve(self.config_path.as_deref(), &self.overrides) {
            Ok(c) => c,
            Err(e) => {
                let reason = Chain(&e).to_string();
                tracing::error!(error = %reason, "reload: configuration rejected; keeping the one in force");
                self.metrics.reload_failed("config");
                report.failed.push(("config", reason));
                report.took = started.elapsed();
                return report;
            }
        };
        self.warn_restart_keys(&new);

        // Crypto-PAn: only when the key or salt changed (the KDF is slow on purpose).
        if new.cryptopan_key != self.current.cryptopan_key
            || new.cryptopan_key_salt != self.current.cryptopan_key_salt
        {
            // Switching back to the previous key needs no second KDF run.
            let wanted = (new.cryptopan_key.clone(), new.cryptopan_key_salt.clone());
            let derived = match self.previous_pan.take() {
                Some((k, pan)) if k == wanted => Ok(pan),
                _ => CryptoPan::from_passphrase(&wanted.0, &wanted.1),
            };
            match derived {
                Ok(pan) => {
                    let old = self.shared.cryptopan.load_full();
                    self.previous_pan = Some((
                        (
                            self.current.cryptopan_key.clone(),
                            self.current.cryptopan_key_salt.clone(),
                        ),
                        old.pan.clone(),
                    ));
                    let generation = old.generation + 1;
                    self.shared
                        .cryptopan
                        .store(Arc::new(PanSnapshot { generation, pan }));
                    self.current.cryptopan_key = new.cryptopan_key.clone();
                    self.current.cryptopan_key_salt = new.cryptopan_key_salt.clone();
                    report.changed.push("cryptopan");
                }
                Err(e) => {
                    let reason = Chain(&e).to_string();
                    tracing::error!(error = %reason, "reload: cannot derive the new Crypto-PAn key; keeping the old one");
                    self.metrics.reload_failed("cryptopan");
                    report.failed.push(("cryptopan", reason));
                }
            }
        }

        // Lists: each one that changed (path or contents) is rebuilt on its own.
        let old = self.shared.lists.load_full();
        let mut lists = ListsSnapshot {
            ignored_clients: old.ignored_clients.clone(),
            ignored_names: old.ignored_names.clone(),
            well_known: old.well_known.clone(),
        };
        let mut lists_changed = false;
        for key in [WELL_KNOWN, IGNORED_NAMES, IGNORED_CLIENTS] {
            let path = list_path(&new, key).to_owned();
            let st = stamp(&path);
            if self.stamps.get(key) == Some(&st) {
                continue;
            }
            let part = key.trim_end_matches("-file");
            let loaded = match key {
                WELL_KNOWN => {
                    let generation = old.well_known.as_ref().map_or(0, |w| w.generation) + 1;
                    load_well_known(&path, generation).map(|wk| {
                        if let Some(wk) = &wk {
                            // The collector learns the list before any update can name it.
                            let _ = self.collector.send(CollectorMsg::WellKnown(wk.clone()));
                        }
                        lists.well_known = wk;
                    })
                }
                IGNORED_NAMES => load_ignored_names(&path).map(|l| lists.ignored_names = l),
                _ => load_ignored_clients(&path).map(|l| lists.ignored_clients = l),
            };
            match loaded {
                Ok(()) => {
                    self.stamps.insert(key, st);
                    set_list_path(&mut self.current, key, path);
                    lists_changed = true;
                    report.changed.push(part_name(key));
                }
                Err(e) => {
                    let reason = Chain(&e).to_string();
                    tracing::error!(error = %reason, "reload: keeping the previous {part} list");
                    self.metrics.reload_failed(part_name(key));
                    report.failed.push((part_name(key), reason));
                }
            }
        }
        if lists_changed {
            self.shared.lists.store(Arc::new(lists));
        }

        if let Some(store) = &self.mqtt_certs {
            match store.reload() {
                Ok(()) => report.changed.push("mqtt-client-cert"),
                Err(reason) => {
                    tracing::error!(error = %reason, "reload: keeping the previous MQTT client certificate");
                    self.metrics.reload_failed("mqtt-client-cert");
                    report.failed.push(("mqtt-client-cert", reason));
                }
            }
        }
        if new.disable_session_files != self.current.disable_session_files {
            self.shared.settings.store(Arc::new(WorkerSettings {
                disable_session_files: new.disable_session_files,
                ..(**self.shared.settings.load()).clone()
            }));
            self.current.disable_session_files = new.disable_session_files;
            report.changed.push("settings");
        }
        if new.pebble_sync != self.current.pebble_sync {
            if let Some(seen) = &self.shared.seen {
                seen.set_sync(new.pebble_sync);
            }
            self.current.pebble_sync = new.pebble_sync;
            report.changed.push("pebble-sync");
        }

        report.took = started.elapsed();
        if report.failed.is_empty() {
            self.metrics.reloads.fetch_add(1, Relaxed);
            self.metrics.reload_last_success.store(unix_now(), Relaxed);
            tracing::info!(changed = ?report.changed, took_ms = report.took.as_millis() as u64, "reload complete");
        } else {
            tracing::warn!(changed = ?report.changed, failed = report.failed.len(), took_ms = report.took.as_millis() as u64, "reload completed with failures");
        }
        report
    }

    /// Warn once per changed key that only takes effect at restart.
    fn warn_restart_keys(&mut self, new: &Config) {
        for k in KEYS.iter().filter(|k| !k.reloadable) {
            let (was, now) = (self.startup.get(k.name), new.get(k.name));
            if was == now {
                self.warned.remove(k.name);
                continue;
            }
            if self.warned.get(k.name) != Some(&now) {
                tracing::warn!(
                    config_key = k.name,
                    "changed configuration key needs a restart to take effect"
                );
                self.warned.insert(k.name, now);
            }
        }
    }
}

fn part_name(key: &str) -> &'static str {
    match key {
        WELL_KNOWN => "well-known-domains",
        IGNORED_NAMES => "ignored-question-names",
        _ => "ignored-client-ips",
    }
}

fn set_list_path(c: &mut Config, key: &str, path: String) {
    match key {
        WELL_KNOWN => c.well_known_domains_file = path,
        IGNORED_NAMES => c.ignored_question_names_file = path,
        _ => c.ignored_client_ips_file = path,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The directories to watch for `files`, and the files' absolute paths.
fn watch_set(files: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut dirs = Vec::new();
    let mut abs = Vec::new();
    for f in files {
        let f = std::path::absolute(f).unwrap_or_else(|_| f.clone());
        let dir = f
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
        abs.push(f);
    }
    (dirs, abs)
}

/// Run reload triggers until `shutdown`: SIGHUP and changes of the watched
/// files. Returns when cancelled (after any reload in progress).
pub async fn watch(mut reloader: Reloader, shutdown: CancellationToken) {
    use notify::Watcher;
    use tokio::signal::unix::{SignalKind, signal};

    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot install the SIGHUP handler; reload on SIGHUP is off");
            None
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let files = Arc::new(arc_swap::ArcSwap::from_pointee(Vec::<PathBuf>::new()));
    let handler_files = files.clone();
    let event_tx = tx.clone();
    let mut watcher = match notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        if ev.kind.is_access() {
            return;
        }
        let watched = handler_files.load();
        if ev.paths.iter().any(|p| watched.contains(p)) {
            let _ = event_tx.try_send(());
        }
    }) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(error = %e, "cannot watch files; reload on file change is off (SIGHUP still works)");
            None
        }
    };
    let mut watched_dirs: Vec<PathBuf> = Vec::new();
    let mut rewatch = |reloader: &Reloader, watcher: &mut Option<notify::RecommendedWatcher>| {
        let (dirs, abs) = watch_set(&reloader.watched_files());
        files.store(Arc::new(abs));
        let Some(w) = watcher.as_mut() else { return };
        for d in watched_dirs.iter().filter(|d| !dirs.contains(d)) {
            let _ = w.unwatch(d);
        }
        for d in dirs.iter().filter(|d| !watched_dirs.contains(d)) {
            if let Err(e) = w.watch(d, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %d.display(), error = %e, "cannot watch directory for changes");
            }
        }
        watched_dirs = dirs;
    };
    rewatch(&reloader, &mut watcher);

    loop {
        let from_file = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => false,
            Some(()) = rx.recv() => true,
        };
        if from_file {
            // Let a burst of writes settle; a SIGHUP meanwhile means "now".
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(DEBOUNCE) => {}
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {}
            }
        }
        while rx.try_recv().is_ok() {}
        tracing::info!(
            trigger = if from_file { "file change" } else { "SIGHUP" },
            "reloading"
        );
        let r = tokio::task::spawn_blocking(move || {
            reloader.reload();
            reloader
        })
        .await;
        reloader = match r {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reload task failed; reloading is off");
                return;
            }
        };
        rewatch(&reloader, &mut watcher);
    }
    drop(tx);
}

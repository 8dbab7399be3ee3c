//! `edm bench`: end-to-end throughput of a real `edm run` process.
//!
//! For each run: a fresh data directory and config (unix socket input, the
//! workload's well-known list, MQTT off, seen check on, sessions and
//! histograms on), the `edm` binary started as a child, the pre-built
//! workload sent over one Frame Streams connection as fast as the socket
//! takes it, then SIGTERM. The clock runs from the first byte sent to the
//! child's exit, i.e. past the last Parquet file flushed and renamed
//! (`stopped_s` in the results marks that moment: the child's "edm stopped"
//! line; the rest is the process handing its memory back). CPU
//! time and peak RSS are the child's own (`/proc/self`, reported in its
//! "edm stopped" log line). Every frame must be accounted for: the child's
//! frame count must equal what was sent, or the run fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::workload::{Spec, Workload, generate};
use crate::input::framestream::{
    CONTENT_TYPE_DNSTAP, ControlType, encode_control, encode_file_stop,
};

/// Why a bench run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// File or socket I/O.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The child did not behave.
    #[error("edm run: {0}")]
    Child(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workload.
    pub spec: Spec,
    /// Measured runs (the median is reported).
    pub runs: usize,
    /// `minimiser-workers` for the child (0 = number of CPUs).
    pub workers: i64,
    /// `cryptopan-address-entries` and `qname-seen-entries`.
    pub cache_entries: i64,
    /// Where run directories go (a temporary directory when `None`).
    pub dir: Option<PathBuf>,
    /// Keep the run directories (Parquet output) afterwards.
    pub keep: bool,
    /// Write the workload as a Frame Streams file here instead of running.
    pub write_capture: Option<PathBuf>,
    /// The `edm` binary to start.
    pub edm: PathBuf,
    /// Soak mode: one run that keeps sending fresh chunks of `spec.frames`
    /// frames for this long, sampling the child's RSS.
    pub duration: Option<Duration>,
}

/// Write `w` as a Frame Streams file (START, data frames, STOP), as
/// `fstrm_replay` and `edm run --input-file` read it, and its well-known list
/// next to it (`<path>.well-known.txt`).
///
/// # Errors
/// The file could not be written (named in the error).
pub fn write_capture(w: &Workload, path: &Path) -> Result<(), BenchError> {
    let mut head = BytesMut::new();
    crate::input::framestream::encode_file_start(&mut head);
    let mut tail = BytesMut::new();
    encode_file_stop(&mut tail);
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(io(format!("create {}", path.display())))?,
    );
    f.write_all(&head)
        .and_then(|()| f.write_all(&w.data))
        .and_then(|()| f.write_all(&tail))
        .and_then(|()| f.flush())
        .map_err(io(format!("write {}", path.display())))?;
    let mut list = path.as_os_str().to_owned();
    list.push(".well-known.txt");
    let list = PathBuf::from(list);
    std::fs::write(&list, &w.well_known_list).map_err(io(format!("write {}", list.display())))
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Frames sent (and counted by the child).
    pub frames: u64,
    /// First byte sent → child exited.
    pub elapsed_s: f64,
    /// First byte sent → the child logged that it stopped: every file
    /// flushed, fsynced and published; what follows is the process's exit
    /// (its memory handed back to the kernel).
    pub stopped_s: f64,
    /// Sending alone (first byte → last byte written).
    pub send_s: f64,
    /// frames / elapsed.
    pub frames_per_sec: f64,
    /// Child CPU seconds (user + system).
    pub cpu_s: f64,
    /// Child peak RSS, bytes.
    pub peak_rss_bytes: u64,
    /// The child's summary line.
    pub summary: String,
    /// Soak mode: (seconds since the first frame, child RSS bytes).
    pub rss_samples: Vec<(f64, u64)>,
}

/// All runs.
#[derive(Debug, Clone)]
pub struct Report {
    /// The options' workload.
    pub spec: Spec,
    /// Workers used.
    pub workers: i64,
    /// Cache sizes used.
    pub cache_entries: i64,
    /// Bytes of Frame Streams data per run.
    pub bytes: usize,
    /// Per run.
    pub runs: Vec<RunResult>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Report {
    /// Median frames/s over the runs.
    pub fn median_frames_per_sec(&self) -> f64 {
        median(self.runs.iter().map(|r| r.frames_per_sec).collect())
    }

    /// The one JSON line of results.
    pub fn to_json(&self) -> String {
        let runs: Vec<serde_json::Value> = self
            .runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "frames_per_sec": r.frames_per_sec.round(),
                    "elapsed_s": (r.elapsed_s * 1000.0).round() / 1000.0,
                    "stopped_s": (r.stopped_s * 1000.0).round() / 1000.0,
                    "send_s": (r.send_s * 1000.0).round() / 1000.0,
                    "cpu_s": (r.cpu_s * 100.0).round() / 100.0,
                    "peak_rss_mb": (r.peak_rss_bytes as f64 / 1048576.0).round(),
                    "rss_mb_samples": r.rss_samples.iter().map(|(t, b)| {
                        serde_json::json!([t.round(), (*b as f64 / 1048576.0).round()])
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "tool": "edm bench",
            "version": env!("CARGO_PKG_VERSION"),
            "frames": self.spec.frames,
            "bytes": self.bytes,
            "seed": self.spec.seed,
            "clients": self.spec.clients,
            "workers": self.workers,
            "cache_entries": self.cache_entries,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "median_frames_per_sec": self.median_frames_per_sec().round(),
            "median_cpu_s": (median(self.runs.iter().map(|r| r.cpu_s).collect()) * 100.0).round() / 100.0,
            "max_peak_rss_mb": (self.runs.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0) as f64 / 1048576.0).round(),
            "runs": runs,
            "summary": self.runs.first().map(|r| r.summary.clone()).unwrap_or_default(),
        })
        .to_string()
    }
}

/// Generate the workload once, then do `opts.runs` runs.
///
/// # Errors
/// [`BenchError`] for the first run that fails.
pub fn run(opts: &Options) -> Result<Report, BenchError> {
    if let Some(d) = opts.duration {
        return soak(opts, d);
    }
    let workload = generate(&opts.spec);
    let base = base_dir(opts);
    std::fs::create_dir_all(&base).map_err(io(format!("create {}", base.display())))?;
    let mut runs = Vec::new();
    for i in 0..opts.runs.max(1) {
        let dir = base.join(format!("run-{i}"));
        let r = one_run(opts, &workload, &dir);
        if !opts.keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let r = r?;
        eprintln!(
            "edm bench: run {}/{}: {:.0} frames/s ({} frames in {:.3} s), {:.2} CPU s, peak RSS {:.0} MB",
            i + 1,
            opts.runs.max(1),
            r.frames_per_sec,
            r.frames,
            r.elapsed_s,
            r.cpu_s,
            r.peak_rss_bytes as f64 / 1048576.0
        );
        runs.push(r);
    }
    if !opts.keep && opts.dir.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(Report {
        spec: opts.spec.clone(),
        workers: opts.workers,
        cache_entries: opts.cache_entries,
        bytes: workload.data.len(),
        runs,
    })
}

/// A started child `edm run` and what reads its log.
struct Child {
    process: std::process::Child,
    /// The child's "edm stopped" line and when it was read.
    log: std::thread::JoinHandle<(String, Option<Instant>)>,
    sock: PathBuf,
}

fn start_child(opts: &Options, well_known_list: &str, dir: &Path) -> Result<Child, BenchError> {
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let sock = dir.join("edm.sock");
    let wk = dir.join("well-known.txt");
    std::fs::write(&wk, well_known_list).map_err(io(format!("write {}", wk.display())))?;
    let config = dir.join("edm.toml");
    let text = format!(
        "input-unix = \"{sock}\"\n\
         data-dir = \"{data}\"\n\
         cryptopan-key = \"edm-bench\"\n\
         well-known-domains-file = \"{wk}\"\n\
         minimiser-workers = {workers}\n\
         cryptopan-address-entries = {cache}\n\
         qname-seen-entries = {cache}\n\
         metrics-address = \"\"\n\
         disable-mqtt = true\n\
         disable-histogram-sender = true\n",
        sock = sock.display(),
        data = dir.join("data").display(),
        wk = wk.display(),
        workers = opts.workers,
        cache = opts.cache_entries,
    );
    std::fs::write(&config, text).map_err(io(format!("write {}", config.display())))?;

    let mut process = Command::new(&opts.edm)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("start {}", opts.edm.display())))?;
    let stderr = process.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let log = std::thread::spawn(move || {
        let mut stopped = (String::new(), None);
        if let Some(e) = stderr {
            for line in BufReader::new(e).lines().map_while(Result::ok) {
                if line.contains("listening for dnstap") {
                    let _ = tx.send(line.clone());
                }
                if line.contains("edm stopped") {
                    stopped = (line, Some(Instant::now()));
                } else if line.contains("ERROR") || line.starts_with("edm:") {
                    eprintln!("edm bench: child: {line}");
                }
            }
        }
        stopped
    });
    let mut child = Child { process, log, sock };
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        child.kill();
        return Err(BenchError::Child(
            "did not start listening within 60 s".into(),
        ));
    }
    Ok(child)
}

impl Child {
    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    fn connect(&mut self) -> Result<std::os::unix::net::UnixStream, BenchError> {
        let mut conn = std::os::unix::net::UnixStream::connect(&self.sock)
            .map_err(io(format!("connect {}", self.sock.display())))?;
        let mut start = BytesMut::new();
        encode_control(ControlType::Start, Some(CONTENT_TYPE_DNSTAP), &mut start);
        conn.write_all(&start)
            .map_err(io(format!("send to {}", self.sock.display())))?;
        Ok(conn)
    }

    fn rss_bytes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.process.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024)
    }

    /// Close the stream, SIGTERM, wait; check the frame count.
    fn finish(
        mut self,
        mut conn: std::os::unix::net::UnixStream,
        frames: u64,
        t0: Instant,
        send_s: f64,
    ) -> Result<RunResult, BenchError> {
        let mut stop = BytesMut::new();
        encode_file_stop(&mut stop);
        if let Err(e) = conn
            .write_all(&stop)
            .and_then(|()| conn.shutdown(std::net::Shutdown::Write))
        {
            self.kill();
            return Err(BenchError::Io {
                what: format!("send to {}", self.sock.display()),
                source: e,
            });
        }
        drop(conn);
        // The connection is closed; SIGTERM drains the queue and flushes files.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.process.id().to_string())
            .status();
        let mut stdout = String::new();
        if let Some(mut o) = self.process.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut stdout);
        }
        let status = self.process.wait().map_err(io("wait for edm"))?;
        let elapsed_s = t0.elapsed().as_secs_f64();
        let (stopped, stopped_at) = self.log.join().unwrap_or_default();
        let stopped_s = stopped_at.map_or(elapsed_s, |t| t.duration_since(t0).as_secs_f64());
        if !status.success() {
            return Err(BenchError::Child(format!("exited with {status}")));
        }
        let field = |k: &str| -> Option<f64> {
            stopped
                .split_whitespace()
                .find_map(|t| t.strip_prefix(k)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        };
        let counted = field("frames").unwrap_or(0.0) as u64;
        if counted != frames {
            return Err(BenchError::Child(format!(
                "counted {counted} frames, {frames} were sent"
            )));
        }
        Ok(RunResult {
            frames,
            elapsed_s,
            stopped_s,
            send_s,
            frames_per_sec: frames as f64 / elapsed_s,
            cpu_s: field("cpu_s").unwrap_or(0.0),
            peak_rss_bytes: field("peak_rss_bytes").unwrap_or(0.0) as u64,
            summary: stdout.trim().to_owned(),
            rss_samples: Vec::new(),
        })
    }
}

/// Where run directories go: `--dir`, or a per-process temporary directory.
fn base_dir(opts: &Options) -> PathBuf {
    match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("edm-bench-{}", std::process::id())),
    }
}

fn one_run(opts: &Options, w: &Workload, dir: &Path) -> Result<RunResult, BenchError> {
    let mut child = start_child(opts, &w.well_known_list, dir)?;
    let mut conn = child.connect()?;
    let t0 = Instant::now();
    let sent = w
        .data
        .chunks(1 << 20)
        .try_for_each(|chunk| conn.write_all(chunk));
    let send_s = t0.elapsed().as_secs_f64();
    if let Err(e) = sent {
        child.kill();
        return Err(BenchError::Io {
            what: format!("send to {}", child.sock.display()),
            source: e,
        });
    }
    child.finish(conn, w.frames as u64, t0, send_s)
}

/// Soak mode: one child, fresh chunks of `opts.spec.frames` frames (same
/// lists, new random frames and never-seen names) sent back to back for
/// `duration`; the child's RSS is sampled every 10 s.
fn soak(opts: &Options, duration: Duration) -> Result<Report, BenchError> {
    let base = base_dir(opts);
    let dir = base.join("soak");
    let first = generate(&opts.spec);
    let mut child = start_child(opts, &first.well_known_list, &dir)?;
    let mut conn = child.connect()?;
    // Chunks are generated on another thread while the previous one is sent.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Workload>(1);
    let spec = opts.spec.clone();
    // It stops when the receiver is dropped.
    let generator = std::thread::spawn(move || {
        for k in 1u64.. {
            let w = generate(&Spec {
                first_frame: k * spec.frames as u64,
                ..spec.clone()
            });
            if tx.send(w).is_err() {
                break;
            }
        }
    });
    let bytes = first.data.len();
    let t0 = Instant::now();
    let mut frames = 0u64;
    let mut samples = vec![(0.0, child.rss_bytes())];
    let mut next_sample = 10.0;
    let mut chunk = first;
    let result = loop {
        if let Err(e) = chunk
            .data
            .chunks(1 << 20)
            .try_for_each(|c| conn.write_all(c))
        {
            break Err(BenchError::Io {
                what: format!("send to {}", child.sock.display()),
                source: e,
            });
        }
        frames += chunk.frames as u64;
        let t = t0.elapsed().as_secs_f64();
        if t >= next_sample {
            samples.push((t, child.rss_bytes()));
            eprintln!(
                "edm bench: soak {t:.0} s: {frames} frames, RSS {:.0} MB",
                samples.last().map_or(0, |s| s.1) as f64 / 1048576.0
            );
            next_sample += 10.0;
        }
        if t >= duration.as_secs_f64() {
            break Ok(());
        }
        match rx.recv() {
            Ok(w) => chunk = w,
            Err(_) => break Err(BenchError::Child("workload generator stopped".into())),
        }
    };
    drop(rx);
    let _ = generator.join();
    if let Err(e) = result {
        child.kill();
        return Err(e);
    }
    let send_s = t0.elapsed().as_secs_f64();
    let mut r = child.finish(conn, frames, t0, send_s)?;
    r.rss_samples = samples;
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
        if opts.dir.is_none() {
            let _ = std::fs::remove_dir_all(&base);
        }
    }
    Ok(Report {
        spec: opts.spec.clone(),
        workers: opts.workers,
        cache_entries: opts.cache_entries,
        bytes,
        runs: vec![r],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}

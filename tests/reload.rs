//! Hot reload against the running service: SIGHUP, file replacement by
//! atomic rename without a signal, broken files, key rotation checked against
//! the Crypto-PAn oracle, a well-known swap in the middle of an interval, and
//! a stress run with more than a thousand reloads under load.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(60);

fn sample() -> Vec<Vec<u8>> {
    read_capture(&testdata("sample.fstrm"))
}

/// Write `text` to `path` by atomic rename, as editors and deploy tools do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("incoming");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn reload_failures(edm: &Edm, part: &str) -> u64 {
    edm.metric(&format!("edm_reload_failures_total{{part=\"{part}\"}}"))
}

/// Reloads finished so far (successful or not).
fn reloads_done(edm: &Edm) -> u64 {
    edm.scrape()
        .iter()
        .filter(|(k, _)| k == "edm_reloads_total" || k.starts_with("edm_reload_failures_total"))
        .map(|(_, v)| *v as u64)
        .sum()
}

fn sighup(edm: &Edm) {
    let st = std::process::Command::new("kill")
        .args(["-HUP", &edm.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn rotate(edm: &Edm) {
    let (status, _, body) = http(edm.metrics, "POST", "/debug/rotate-parquet");
    assert_eq!(status, 202, "{body}");
}

fn wait_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + WAIT;
    loop {
        let f = parquet_files(dir);
        if f.len() >= n {
            return f;
        }
        assert!(Instant::now() < deadline, "{n} files expected in {dir:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sessions_dir(dir: &Path) -> PathBuf {
    dir.join("data/parquet/sessions")
}

fn histograms_dir(dir: &Path) -> PathBuf {
    dir.join("data/parquet/histograms/outbox")
}

/// A config with its own copies of the lists (so the test can replace them).
struct Setup {
    dir: tempfile::TempDir,
    sock: PathBuf,
    config: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let dir = tempdir(name);
        let sock = dir.path().join("edm.sock");
        for f in ["well-known-domains.txt", "ignored-question-names.txt"] {
            std::fs::copy(testdata(f), dir.path().join(f)).unwrap();
        }
        std::fs::write(dir.path().join("clients.txt"), "# nobody yet\n").unwrap();
        let config = dir.path().join("edm.toml");
        Setup { dir, sock, config }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn text(&self, key: &str, well_known: &str, clients: &str) -> String {
        let d = self.dir.path();
        format!(
            "input-unix = \"{sock}\"\n\
             data-dir = \"{data}\"\n\
             metrics-address = \"127.0.0.1:0\"\n\
             cryptopan-key = \"{key}\"\n\
             cryptopan-key-salt = \"edm-kdf-salt-val\"\n\
             well-known-domains-file = \"{wk}\"\n\
             ignored-question-names-file = \"{names}\"\n\
             ignored-client-ips-file = \"{clients}\"\n\
             enable-manual-parquet-rotation = true\n\
             disable-mqtt = true\n\
             minimiser-workers = 2\n",
            sock = self.sock.display(),
            data = d.join("data").display(),
            wk = d.join(well_known).display(),
            names = d.join("ignored-question-names.txt").display(),
            clients = d.join(clients).display(),
        )
    }

    fn start(&self, key: &str, well_known: &str, clients: &str) -> Edm {
        Edm::start(self.dir.path(), &self.text(key, well_known, clients), 1)
    }

    /// Rewrite the config file (atomically).
    fn rewrite(&self, key: &str, well_known: &str, clients: &str) {
        replace(&self.config, &self.text(key, well_known, clients));
    }
}

/// Send the sample once and wait until edm has processed `total` frames.
fn send_sample(edm: &Edm, sock: &Path, frames: &[Vec<u8>], total: u64) {
    send_session(connect_unix(sock), frames, true);
    edm.wait_metric("edm_processed_dnstap_total", total, WAIT);
}

#[test]
fn sighup_reloads_and_counts() {
    let s = Setup::new("hup");
    let edm = s.start(KEY_A, "well-known-domains.txt", "clients.txt");
    assert_eq!(edm.metric("edm_reloads_total"), 0);
    assert!(edm.metric("edm_reload_last_success_timestamp_seconds") > 0);
    sighup(&edm);
    edm.wait_metric("edm_reloads_total", 1, WAIT);
    sighup(&edm);
    edm.wait_metric("edm_reloads_total", 2, WAIT);

    // A reloadable key takes effect; a restart-only key is warned about once.
    let frames = sample();
    let base = s.text(KEY_A, "well-known-domains.txt", "clients.txt");
    let changed = base.replace("minimiser-workers = 2", "minimiser-workers = 3")
        + "disable-session-files = true\n";
    replace(&s.config, &changed);
    sighup(&edm);
    edm.wait_metric("edm_reloads_total", 3, WAIT);
    send_sample(&edm, &s.sock, &frames, 5000);
    assert_eq!(edm.metric("edm_session_rows_total"), 0);
    assert_eq!(edm.metric("edm_session_rows_disabled_total"), 3511);
    let reloads = edm.metric("edm_reloads_total");
    sighup(&edm);
    edm.wait_metric("edm_reloads_total", reloads + 1, WAIT);
    replace(&s.config, &base);
    sighup(&edm);
    edm.wait_metric("edm_reloads_total", reloads + 2, WAIT);
    // Settle: the file event of the last rewrite may reload once more.
    std::thread::sleep(Duration::from_millis(400));
    send_sample(&edm, &s.sock, &frames, 10_000);
    assert_eq!(edm.metric("edm_session_rows_total"), 3511);
    let f = edm.stop();
    let warnings: Vec<&String> = f
        .stderr
        .iter()
        .filter(|l| l.contains("needs a restart"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("minimiser-workers"), "{warnings:?}");
}

#[test]
fn client_list_replaced_by_rename_is_in_force_within_two_seconds() {
    avoid_minute_boundary();
    let s = Setup::new("watch");
    let frames = sample();
    let edm = s.start(KEY_A, "well-known-domains.txt", "clients.txt");
    let raw = raw_addresses(&frames);
    let nets: Vec<ipnet::IpNet> = ["14.0.0.0/8", "42.0.0.0/8", "52.0.0.0/8", "29b2::/16"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    let listed = |ip: Option<IpAddr>| ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)));

    // Pass 1: no client list.
    send_sample(&edm, &s.sock, &frames, 5000);
    assert_eq!(edm.metric("edm_ignored_client_ip_total"), 0);
    rotate(&edm);
    let f1 = wait_files(&sessions_dir(s.dir.path()), 1);

    // Replace the list by rename, no signal: in force within 2 s.
    let t0 = Instant::now();
    replace(
        &s.path("clients.txt"),
        &nets.iter().map(|n| format!("{n}\n")).collect::<String>(),
    );
    edm.wait_metric("edm_reloads_total", 1, Duration::from_secs(2));
    let took = t0.elapsed();
    send_sample(&edm, &s.sock, &frames, 10_000);
    let ignored = edm.metric("edm_ignored_client_ip_total");
    assert!(ignored > 0);

    // A broken replacement: counted, and the previous list stays in force.
    replace(&s.path("clients.txt"), "10.0.0.0/8\nnot-a-cidr\n");
    let deadline = Instant::now() + Duration::from_secs(2);
    while reload_failures(&edm, "ignored-client-ips") == 0 {
        assert!(Instant::now() < deadline, "broken list not noticed in 2 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    send_sample(&edm, &s.sock, &frames, 15_000);
    assert_eq!(edm.metric("edm_ignored_client_ip_total"), 2 * ignored);
    rotate(&edm);
    let files = wait_files(&sessions_dir(s.dir.path()), 2);
    let f = edm.stop();
    assert!(
        f.stderr
            .iter()
            .any(|l| l.contains("clients.txt") && l.contains("line 2")),
        "the failure names file and line"
    );
    f.summary().assert_accounted();

    // Output: listed clients appear before the switch and never after it.
    let rows_of = |p: &Path| {
        let d = tempdir("one");
        std::fs::copy(p, d.path().join(p.file_name().unwrap())).unwrap();
        read_sessions(d.path())
    };
    let client = |r: &Row| {
        raw[&(
            r.response_time.unwrap(),
            r.response_message.clone().unwrap(),
        )]
            .0
    };
    let first = rows_of(&f1[0]);
    let later = rows_of(&files[1]);
    let listed_before = first.iter().filter(|r| listed(client(r))).count();
    assert!(listed_before > 0);
    assert_eq!(later.iter().filter(|r| listed(client(r))).count(), 0);
    assert_eq!(later.len(), 2 * (first.len() - listed_before));
    eprintln!(
        "list in force {took:?} after the rename; {ignored} responses ignored per pass, {listed_before} rows before"
    );
}

/// Every row's addresses must be the oracle's pseudonyms of its raw
/// addresses under `key` (0 = A, 1 = B); returns the number of rows.
fn check_key(rows: &[Row], raw: &RawAddresses, key: usize) -> usize {
    let oracle = oracle();
    let pseudo = |ip: IpAddr| {
        let (a, b) = oracle[&ip];
        if key == 0 { a } else { b }
    };
    for r in rows {
        let (q, s) = raw[&(
            r.response_time.unwrap(),
            r.response_message.clone().unwrap(),
        )];
        assert_eq!(r.source, q.map(pseudo), "source of {r:?}");
        assert_eq!(r.dest, s.map(pseudo), "dest of {r:?}");
    }
    rows.len()
}

#[test]
fn key_change_applies_to_every_row_after_the_reload() {
    avoid_minute_boundary();
    let s = Setup::new("key");
    let frames = sample();
    let raw = raw_addresses(&frames);
    let edm = s.start(KEY_A, "well-known-domains.txt", "clients.txt");
    send_sample(&edm, &s.sock, &frames, 5000);
    rotate(&edm);
    wait_files(&sessions_dir(s.dir.path()), 1);

    s.rewrite(KEY_B, "well-known-domains.txt", "clients.txt");
    sighup(&edm);
    let deadline = Instant::now() + WAIT;
    while !edm
        .log()
        .iter()
        .any(|l| l.contains("reload complete") && l.contains("cryptopan"))
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    send_sample(&edm, &s.sock, &frames, 10_000);
    rotate(&edm);
    let files = wait_files(&sessions_dir(s.dir.path()), 2);
    edm.stop();
    let one = |p: &Path| {
        let d = tempdir("one");
        std::fs::copy(p, d.path().join(p.file_name().unwrap())).unwrap();
        read_sessions(d.path())
    };
    assert_eq!(check_key(&one(&files[0]), &raw, 0), 3511);
    assert_eq!(check_key(&one(&files[1]), &raw, 1), 3511);
}

/// Histogram rows of every file in `dir`: domain labels → (counters, v4, v6 counts).
fn read_histograms(dir: &Path) -> HashMap<Vec<Option<String>>, Vec<u64>> {
    use arrow_array::{Array, StringArray, UInt64Array};
    let mut out: HashMap<Vec<Option<String>>, Vec<u64>> = HashMap::new();
    for f in parquet_files(dir) {
        let file = std::fs::File::open(&f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            for i in 0..batch.num_rows() {
                let labels: Vec<Option<String>> = (0..10)
                    .map(|l| {
                        let c = batch.column_by_name(&format!("label{l}")).unwrap();
                        let c = c.as_any().downcast_ref::<StringArray>().unwrap();
                        c.is_valid(i).then(|| c.value(i).to_owned())
                    })
                    .collect();
                let nums: Vec<u64> = batch
                    .schema()
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.name().ends_with("_count"))
                    .map(|(j, _)| {
                        let c = batch.column(j);
                        c.as_any().downcast_ref::<UInt64Array>().unwrap().value(i)
                    })
                    .collect();
                let e = out.entry(labels).or_insert_with(|| vec![0; nums.len()]);
                for (a, b) in e.iter_mut().zip(nums) {
                    *a += b;
                }
            }
        }
    }
    out
}

const WK2: &str = "google.com\n.github.com\napple.com\n.apple.com\nnetflix.com\n.cloudfront.net\n";

#[test]
fn well_known_swap_mid_interval_names_every_row_correctly() {
    avoid_minute_boundary();
    let frames = sample();
    // What one pass gives with each list alone (input-file mode).
    let alone = |list: &Path| {
        let d = tempdir("wk-alone");
        let cfg = config_text(
            d.path(),
            &format!("input-file = \"{}\"", testdata("sample.fstrm").display()),
            "",
        )
        .replace(
            &format!(
                "{}/well-known-domains.txt",
                testdata("").display().to_string().trim_end_matches('/')
            ),
            &list.display().to_string(),
        );
        let f = run_to_end(d.path(), &cfg, &[]);
        assert!(f.status.success(), "{}", f.stderr.join("\n"));
        (read_histograms(&histograms_dir(d.path())), f.summary())
    };
    let s = Setup::new("wkswap");
    std::fs::write(s.path("wk2.txt"), WK2).unwrap();
    let (h1, sum1) = alone(&testdata("well-known-domains.txt"));
    let (h2, sum2) = alone(&s.path("wk2.txt"));

    let edm = s.start(KEY_A, "well-known-domains.txt", "clients.txt");
    send_sample(&edm, &s.sock, &frames, 5000);
    replace(&s.path("well-known-domains.txt"), WK2);
    edm.wait_metric("edm_reloads_total", 1, Duration::from_secs(2));
    send_sample(&edm, &s.sock, &frames, 10_000);
    rotate(&edm);
    wait_files(&histograms_dir(s.dir.path()), 1);
    let f = edm.stop();
    let sum = f.summary();
    sum.assert_accounted();
    assert_eq!(
        sum.histogram_updates,
        sum1.histogram_updates + sum2.histogram_updates
    );
    assert_eq!(sum.rows, sum1.rows + sum2.rows);

    let got = read_histograms(&histograms_dir(s.dir.path()));
    assert_eq!(
        parquet_files(&histograms_dir(s.dir.path())).len(),
        1,
        "one interval, one file"
    );
    let mut want = h1.clone();
    for (k, v) in &h2 {
        let e = want.entry(k.clone()).or_insert_with(|| vec![0; v.len()]);
        // Counters add; client counts of a domain in both lists are the
        // union of the same clients (the same sample twice), so they stay.
        let n = v.len();
        for (j, (a, b)) in e.iter_mut().zip(v).enumerate() {
            if j + 2 < n {
                *a += b;
            } else {
                *a = (*a).max(*b);
            }
        }
    }
    assert_eq!(got.len(), want.len(), "rows for both lists' domains");
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "row {k:?}");
    }
}

#[test]
fn stress_a_thousand_reloads_under_load() {
    let s = Setup::new("stress");
    std::fs::write(s.path("wk2.txt"), WK2).unwrap();
    std::fs::write(s.path("clients2.txt"), "14.0.0.0/8\n29b2::/16\n").unwrap();
    std::fs::write(s.path("broken.txt"), "14.0.0.0/8\nnot-a-cidr\n").unwrap();
    let frames = sample();
    let raw = raw_addresses(&frames);
    let edm = s.start(KEY_A, "well-known-domains.txt", "clients.txt");
    let connections = 4;
    let passes = 50; // 4 × 50 × 5000 = 1,000,000 frames
    let total = (connections * passes * frames.len()) as u64;
    let reloads = 1000;
    let started = Instant::now();
    let mut broken = 0;
    std::thread::scope(|scope| {
        for c in 0..connections {
            let frames = &frames;
            let sock = &s.sock;
            scope.spawn(move || {
                let all: Vec<Vec<u8>> = (0..passes).flat_map(|_| frames.iter().cloned()).collect();
                send_session(connect_unix(sock), &all, c % 2 == 0);
            });
        }
        for i in 0..reloads {
            let key = if i % 2 == 0 { KEY_B } else { KEY_A };
            let wk = if i % 3 == 0 {
                "wk2.txt"
            } else {
                "well-known-domains.txt"
            };
            let clients = match i % 10 {
                9 => {
                    broken += 1;
                    "broken.txt"
                }
                0..=4 => "clients.txt",
                _ => "clients2.txt",
            };
            let done = reloads_done(&edm);
            s.rewrite(key, wk, clients);
            sighup(&edm);
            let deadline = Instant::now() + WAIT;
            while reloads_done(&edm) <= done {
                assert!(Instant::now() < deadline, "reload {i} did not finish");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    edm.wait_metric("edm_processed_dnstap_total", total, WAIT);
    let mid = Instant::now();
    // The last reload: key B, and wait until it is in force. Let reloads
    // still triggered by the churn (file events are debounced) finish first,
    // so the next completed reload is one that read this config.
    std::thread::sleep(Duration::from_secs(1));
    let done = reloads_done(&edm);
    s.rewrite(KEY_B, "well-known-domains.txt", "clients.txt");
    sighup(&edm);
    while reloads_done(&edm) <= done {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Cut the interval and wait until every row so far is in a file (a timer
    // rotation may have cut it already), then one more pass: its rows are in
    // the files that appear after that point.
    rotate(&edm);
    let all_written = |edm: &Edm| {
        let deadline = Instant::now() + WAIT;
        while edm.metric("edm_session_rows_written_total") < edm.metric("edm_session_rows_total") {
            assert!(Instant::now() < deadline, "rows not written");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    all_written(&edm);
    let before: Vec<PathBuf> = parquet_files(&sessions_dir(s.dir.path()));
    send_sample(&edm, &s.sock, &frames, total + 5000);
    rotate(&edm);
    all_written(&edm);
    let files: Vec<PathBuf> = parquet_files(&sessions_dir(s.dir.path()))
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    let failures = reload_failures(&edm, "ignored-client-ips");
    let ok = edm.metric("edm_reloads_total");
    let f = edm.stop();
    let sum = f.summary();
    sum.assert_accounted();
    assert_eq!(sum.frames, total + 5000);
    assert!(ok + failures > reloads as u64, "{ok} + {failures}");
    assert!(
        failures >= broken,
        "{failures} failures for {broken} broken lists"
    );
    assert!(
        !f.stderr
            .iter()
            .any(|l| l.contains("panicked") || l.contains("unknown well-known"))
    );

    // Every row is consistent: both addresses under one of the two keys.
    let oracle = oracle();
    let all = read_sessions(&sessions_dir(s.dir.path()));
    assert_eq!(all.len() as u64, sum.rows);
    for r in &all {
        let (q, a) = raw[&(
            r.response_time.unwrap(),
            r.response_message.clone().unwrap(),
        )];
        let under = |k: usize| {
            let p = |ip: IpAddr| if k == 0 { oracle[&ip].0 } else { oracle[&ip].1 };
            r.source == q.map(p) && r.dest == a.map(p)
        };
        assert!(under(0) || under(1), "row under neither key: {r:?}");
    }
    // After the last reload completed, only key B.
    let last = {
        let d = tempdir("last");
        for p in &files {
            std::fs::copy(p, d.path().join(p.file_name().unwrap())).unwrap();
        }
        read_sessions(d.path())
    };
    assert_eq!(check_key(&last, &raw, 1), 3511);
    eprintln!(
        "{} frames, {ok} reloads ok, {failures} failed, {} rows; load+reloads {:?}, total {:?}",
        sum.frames,
        sum.rows,
        mid - started,
        started.elapsed()
    );
}

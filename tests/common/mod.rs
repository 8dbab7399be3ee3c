//! Shared harness for the integration tests: start the real `edm` binary,
//! scrape its metrics, stop it with SIGTERM, and speak Frame Streams to it.
//!
//! The Frame Streams encoder and the capture-file reader here are written
//! independently of edm's own (`src/input/framestream.rs`) so the tests do not
//! check edm against itself.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

/// Frame Streams control frame types.
pub const ACCEPT: u32 = 1;
pub const START: u32 = 2;
pub const STOP: u32 = 3;
pub const READY: u32 = 4;
pub const FINISH: u32 = 5;

pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn testdata(name: &str) -> PathBuf {
    manifest().join("testdata").join(name)
}

pub fn edm_bin() -> &'static str {
    env!("CARGO_BIN_EXE_edm")
}

/// A config file body with the bundled lists and key, writing under `dir`.
/// `extra` is appended (later keys must not repeat earlier ones).
pub fn config_text(dir: &Path, inputs: &str, extra: &str) -> String {
    let td = manifest().join("testdata");
    format!(
        "{inputs}\n\
         data-dir = \"{data}\"\n\
         metrics-address = \"127.0.0.1:0\"\n\
         cryptopan-key = \"edm-example-key-change-me\"\n\
         cryptopan-key-salt = \"edm-kdf-salt-val\"\n\
         well-known-domains-file = \"{td}/well-known-domains.txt\"\n\
         ignored-question-names-file = \"{td}/ignored-question-names.txt\"\n\
         ignored-client-ips-file = \"{td}/ignored-client-ips.txt\"\n\
         disable-mqtt = true\n\
         disable-histogram-sender = true\n\
         {extra}\n",
        data = dir.join("data").display(),
        td = td.display(),
    )
}

/// The counts `edm` prints on its summary line at exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub frames: u64,
    pub rows: u64,
    pub histogram_updates: u64,
    pub histogram_rows: u64,
    pub dropped: u64,
    pub files: u64,
}

impl Summary {
    /// Parse `edm: F frames, R session rows written, H histogram updates (N rows), D dropped, X files in DIR`.
    pub fn parse(stdout: &str) -> Option<Summary> {
        let line = stdout.lines().find(|l| l.starts_with("edm: "))?;
        let nums: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        if !line.contains(" frames, ") || nums.len() < 6 {
            return None;
        }
        Some(Summary {
            frames: nums[0],
            rows: nums[1],
            histogram_updates: nums[2],
            histogram_rows: nums[3],
            dropped: nums[4],
            files: nums[5],
        })
    }

    /// Every frame is a session row, a histogram update or a counted drop.
    pub fn assert_accounted(&self) {
        assert_eq!(
            self.rows + self.histogram_updates + self.dropped,
            self.frames,
            "frames not accounted for: {self:?}"
        );
    }
}

/// What a finished `edm` left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: Vec<String>,
}

impl Finished {
    pub fn summary(&self) -> Summary {
        Summary::parse(&self.stdout).unwrap_or_else(|| {
            panic!(
                "no summary line; stdout: {}\nstderr:\n{}",
                self.stdout,
                self.stderr.join("\n")
            )
        })
    }
}

/// A running `edm run`.
pub struct Edm {
    child: Option<Child>,
    pub dir: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    stderr_thread: Option<JoinHandle<()>>,
    stdout_thread: Option<JoinHandle<String>>,
    pub metrics: SocketAddr,
    pub tcp: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
}

/// Run `edm run --config <dir>/edm.toml` to completion (for input-file and startup-error tests).
pub fn run_to_end(dir: &Path, config: &str, args: &[&str]) -> Finished {
    std::fs::create_dir_all(dir).expect("test dir");
    let cfg = dir.join("edm.toml");
    std::fs::write(&cfg, config).expect("write config");
    let out = Command::new(edm_bin())
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .args(args)
        .env_remove("EDM_LOG")
        .output()
        .expect("spawn edm");
    Finished {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_owned)
            .collect(),
    }
}

impl Edm {
    /// Start edm with a config written to `<dir>/edm.toml`; wait until its
    /// metrics endpoint and `listeners` dnstap listeners are up.
    pub fn start(dir: &Path, config: &str, listeners: usize) -> Edm {
        std::fs::create_dir_all(dir).expect("test dir");
        let cfg = dir.join("edm.toml");
        std::fs::write(&cfg, config).expect("write config");
        let mut child = Command::new(edm_bin())
            .arg("run")
            .arg("--config")
            .arg(&cfg)
            .env_remove("EDM_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edm");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let l2 = lines.clone();
        let stderr_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("EDM_TEST_VERBOSE").is_some() {
                    eprintln!("[edm] {line}");
                }
                l2.lock().unwrap().push(line);
            }
        });
        let mut stdout = child.stdout.take().expect("stdout");
        let stdout_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let mut edm = Edm {
            child: Some(child),
            dir: dir.to_path_buf(),
            lines,
            stderr_thread: Some(stderr_thread),
            stdout_thread: Some(stdout_thread),
            metrics: "0.0.0.0:0".parse().unwrap(),
            tcp: None,
            unix: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (metrics, tcp, unix, n) = {
                let lines = edm.lines.lock().unwrap();
                let mut metrics = None;
                let (mut tcp, mut unix, mut n) = (None, None, 0);
                for l in lines.iter() {
                    if l.contains("serving metrics") {
                        metrics = field(l, "addr=").and_then(|a| a.parse().ok());
                    }
                    if l.contains("listening for dnstap") {
                        n += 1;
                        if let Some(v) = field(l, "listener=") {
                            if let Some(a) = v.strip_prefix("tcp:") {
                                tcp = a.parse().ok();
                            } else if let Some(p) = v.strip_prefix("unix:") {
                                unix = Some(PathBuf::from(p));
                            }
                        }
                    }
                }
                (metrics, tcp, unix, n)
            };
            if let Some(m) = metrics
                && n >= listeners
            {
                edm.metrics = m;
                edm.tcp = tcp;
                edm.unix = unix;
                return edm;
            }
            if let Some(status) = edm.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "edm exited early ({status}):\n{}",
                    edm.lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "edm did not come up:\n{}",
                edm.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Scrape `/metrics`: metric (with labels, as printed) → value.
    pub fn scrape(&self) -> Vec<(String, f64)> {
        let body = http(self.metrics, "GET", "/metrics").2;
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    /// One metric's value (0 if absent).
    pub fn metric(&self, name: &str) -> u64 {
        self.scrape()
            .into_iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, v)| v as u64)
    }

    /// Poll until `name` reaches at least `want`.
    pub fn wait_metric(&self, name: &str, want: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metric(name);
            if v >= want {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{name} = {v}, wanted {want}; log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send SIGTERM (without waiting).
    pub fn signal_term(&self) {
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Wait for the process to exit (after a signal or on its own).
    pub fn wait(mut self) -> Finished {
        let mut child = self.child.take().expect("child");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "edm did not exit; log:\n{}",
                    self.lines.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        let stdout = self
            .stdout_thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        Finished {
            status,
            stdout,
            stderr: self.lines.lock().unwrap().clone(),
        }
    }

    /// SIGTERM, wait, and check a clean exit.
    pub fn stop(self) -> Finished {
        self.signal_term();
        let f = self.wait();
        assert!(
            f.status.success(),
            "edm exited with {}; stderr:\n{}",
            f.status,
            f.stderr.join("\n")
        );
        f
    }
}

impl Drop for Edm {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `key=value` from a tracing log line (value ends at a space).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(key)? + key.len();
    let rest = &line[i..];
    Some(rest.split(' ').next().unwrap_or(rest))
}

/// Minimal HTTP/1.1 request; returns (status, head, body).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

// ---- Frame Streams, written from the protocol description -------------------

/// A data frame: big-endian length, payload.
pub fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + payload.len());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A control frame: escape 0, length, type, optional content-type field.
pub fn control_frame(kind: u32, content_type: Option<&[u8]>) -> Vec<u8> {
    let mut body = kind.to_be_bytes().to_vec();
    if let Some(ct) = content_type {
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&(ct.len() as u32).to_be_bytes());
        body.extend_from_slice(ct);
    }
    let mut v = 0u32.to_be_bytes().to_vec();
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

/// Read one control frame; returns its type.
pub fn read_control(r: &mut impl Read) -> std::io::Result<u32> {
    let mut h = [0u8; 8];
    r.read_exact(&mut h)?;
    if h[0..4] != [0, 0, 0, 0] {
        return Err(std::io::Error::other("expected a control frame"));
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    if len < 4 {
        return Err(std::io::Error::other("short control frame"));
    }
    Ok(u32::from_be_bytes([body[0], body[1], body[2], body[3]]))
}

/// The data frames of a Frame Streams capture file.
pub fn read_capture(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).expect("read capture");
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= b.len() {
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        i += 4;
        if len == 0 {
            let clen = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
            i += 4 + clen;
        } else {
            out.push(b[i..i + len].to_vec());
            i += len;
        }
    }
    out
}

/// Any stream edm accepts.
pub trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

pub fn connect_unix(path: &Path) -> std::os::unix::net::UnixStream {
    let s = std::os::unix::net::UnixStream::connect(path).expect("connect unix");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

pub fn connect_tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect tcp");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Send `frames` as a complete Frame Streams session. Bidirectional:
/// READY → ACCEPT, START, data, STOP → FINISH. Unidirectional: START, data, STOP.
pub fn send_session<C: Conn>(mut c: C, frames: &[Vec<u8>], bidirectional: bool) {
    let mut buf = Vec::new();
    if bidirectional {
        c.write_all(&control_frame(READY, Some(CONTENT_TYPE)))
            .unwrap();
        assert_eq!(read_control(&mut c).expect("ACCEPT"), ACCEPT);
    }
    buf.extend_from_slice(&control_frame(START, Some(CONTENT_TYPE)));
    for f in frames {
        buf.extend_from_slice(&data_frame(f));
        if buf.len() > 64 * 1024 {
            c.write_all(&buf).unwrap();
            buf.clear();
        }
    }
    buf.extend_from_slice(&control_frame(STOP, None));
    c.write_all(&buf).unwrap();
    c.flush().unwrap();
    if bidirectional {
        assert_eq!(read_control(&mut c).expect("FINISH"), FINISH);
    }
}

/// True when the peer closed the connection (EOF or reset) within `timeout`.
pub fn closed_by_peer<C: Read>(c: &mut C) -> bool {
    let mut b = [0u8; 64];
    loop {
        match c.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

// ---- hand-encoded dnstap protobuf, for malformed-input tests -----------------

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(field: u32, b: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// `Dnstap{type: MESSAGE}` with no `message`.
pub fn dnstap_without_message() -> Vec<u8> {
    vec![15 << 3, 1]
}

/// `Dnstap{type: MESSAGE, message: {type: CLIENT_RESPONSE, family INET, UDP,
/// query_address, response_message}}`.
pub fn dnstap_client_response(query_address: [u8; 4], response_message: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&[1 << 3, 6]); // type = CLIENT_RESPONSE
    m.extend_from_slice(&[2 << 3, 1]); // socket_family = INET
    m.extend_from_slice(&[3 << 3, 1]); // socket_protocol = UDP
    bytes_field(4, &query_address, &mut m);
    bytes_field(14, response_message, &mut m);
    let mut d = Vec::new();
    bytes_field(14, &m, &mut d);
    d.extend_from_slice(&[15 << 3, 1]);
    d
}

/// A DNS response for `example.org. IN A`, NOERROR, no answers.
pub fn dns_response(id: u16) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
    v
}

/// Python with pyarrow for the independent-reader tests: `EDM_TEST_PYTHON`,
/// else `python3` if it can import pyarrow. `None` → the caller skips (or
/// fails under CI).
pub fn python_with_pyarrow() -> Option<String> {
    let candidates = std::env::var("EDM_TEST_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_owned()]);
    for p in candidates {
        let ok = Command::new(&p)
            .args(["-c", "import pyarrow.parquet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(p);
        }
    }
    None
}

/// Find an external program; under CI a missing one is a failure, otherwise
/// the test prints SKIPPED and returns `None`.
pub fn require_program(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: `{name}` is required under CI (installed by .ci/run)"
        );
        eprintln!("SKIPPED {test}: `{name}` not installed");
    }
    found
}

/// Parquet files under a directory, in the order they were written: by name,
/// and `<stem>.N.parquet` (a second file for the same interval) after `<stem>.parquet`.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|p| {
        let stem = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match stem.rsplit_once('.') {
            Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) => {
                (base.to_owned(), n.parse::<u32>().unwrap_or(0))
            }
            _ => (stem, 0),
        }
    });
    v
}

/// Raw (query, response) addresses by (response time µs, response message).
pub type RawAddresses =
    std::collections::HashMap<(i64, Vec<u8>), (Option<std::net::IpAddr>, Option<std::net::IpAddr>)>;

/// A fresh temporary directory kept for inspection when `EDM_TEST_KEEP` is set.
pub fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("edm-{name}-"))
        .tempdir()
        .expect("tempdir")
}

// ---- reading session files back (for the reload tests) ----------------------

/// One session row, with the pseudonymised addresses put back into `IpAddr`s.
#[derive(Debug, Clone)]
pub struct Row {
    pub source: Option<std::net::IpAddr>,
    pub dest: Option<std::net::IpAddr>,
    pub response_time: Option<i64>,
    pub response_message: Option<Vec<u8>>,
}

fn ip_of(batch: &arrow_array::RecordBatch, prefix: &str, i: usize) -> Option<std::net::IpAddr> {
    use arrow_array::{Array, UInt32Array, UInt64Array};
    let col = |n: &str| batch.column_by_name(&format!("{prefix}_{n}")).cloned();
    let v4 = col("ipv4")?;
    let v4 = v4.as_any().downcast_ref::<UInt32Array>()?;
    if v4.is_valid(i) {
        return Some(std::net::Ipv4Addr::from(v4.value(i)).into());
    }
    let (net, host) = (col("ipv6_network")?, col("ipv6_host")?);
    let net = net.as_any().downcast_ref::<UInt64Array>()?;
    let host = host.as_any().downcast_ref::<UInt64Array>()?;
    if !net.is_valid(i) {
        return None;
    }
    let v = (u128::from(net.value(i)) << 64) | u128::from(host.value(i));
    Some(std::net::Ipv6Addr::from(v).into())
}

/// Every row of every session file in `dir` (file name order).
pub fn read_sessions(dir: &Path) -> Vec<Row> {
    use arrow_array::{Array, BinaryArray, TimestampMicrosecondArray};
    let mut rows = Vec::new();
    for f in parquet_files(dir) {
        let file = std::fs::File::open(&f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let t = batch.column_by_name("response_time").unwrap();
            let t = t
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .unwrap();
            let m = batch.column_by_name("response_message").unwrap();
            let m = m.as_any().downcast_ref::<BinaryArray>().unwrap();
            for i in 0..batch.num_rows() {
                rows.push(Row {
                    source: ip_of(&batch, "source", i),
                    dest: ip_of(&batch, "dest", i),
                    response_time: t.is_valid(i).then(|| t.value(i)),
                    response_message: m.is_valid(i).then(|| m.value(i).to_vec()),
                });
            }
        }
    }
    rows
}

/// Raw (query, response) addresses of every response frame in a capture,
/// keyed by (response time in µs, response message).
pub fn raw_addresses(frames: &[Vec<u8>]) -> RawAddresses {
    let ip = |b: Option<&bytes::Bytes>| -> Option<std::net::IpAddr> {
        let b = b?;
        match b.len() {
            4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(&b[..]).ok()?).into()),
            16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&b[..]).ok()?).into()),
            _ => None,
        }
    };
    let mut map = std::collections::HashMap::new();
    for f in frames {
        let Ok(d) = edm::dnstap::Dnstap::decode_frame(bytes::Bytes::from(f.clone())) else {
            continue;
        };
        let Some(m) = d.message else { continue };
        let Some(msg) = m.response_message.clone() else {
            continue;
        };
        let t = m.response_time_sec.unwrap_or(0) as i64 * 1_000_000
            + i64::from(m.response_time_nsec.unwrap_or(0) / 1000);
        map.insert(
            (t, msg.to_vec()),
            (
                ip(m.query_address.as_ref()),
                ip(m.response_address.as_ref()),
            ),
        );
    }
    map
}

/// `testdata/cryptopan/sample-oracle.tsv`: address → (pseudonym under key A, under key B).
pub fn oracle() -> std::collections::HashMap<std::net::IpAddr, (std::net::IpAddr, std::net::IpAddr)>
{
    let text = std::fs::read_to_string(testdata("cryptopan/sample-oracle.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            )
        })
        .collect()
}

/// Key A and key B of the oracle fixture.
pub const KEY_A: &str = "edm-example-key-change-me";
pub const KEY_B: &str = "edm-second-key-for-tests";

/// Keep clear of the minute timer's rotation: start early in a minute.
pub fn avoid_minute_boundary() {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into > 45_000 {
        std::thread::sleep(Duration::from_millis((61_000 - into) as u64));
    }
}
pub mod mqtt;

//! Inputs: Frame Streams listeners (unix socket, TCP) and the `.fstrm` file
//! reader. Listeners accept on the async runtime; each connection is then
//! served on its own thread with blocking reads and its own span. It decodes
//! frames with [`framestream::Decoder`], drives the handshake with
//! [`framestream::ReceiverSession`] and sends the data payloads, in batches,
//! into the bounded input queue. The send waits when the queue is full, so a
//! slow pipeline pushes back on the sender instead of losing frames.
//!
//! Senders that write one frame per syscall would otherwise wake the reader
//! for every frame: after a short read the reader pauses briefly so frames
//! gather in the socket buffer, and reads them in one go.
//!
//! A protocol error closes only that connection. At shutdown the listeners
//! stop accepting and every open connection keeps reading what its peer has
//! already sent until the socket is idle or the drain deadline passes.

pub mod framestream;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use std::io::{Read, Write};
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::minimiser::Batch;
use framestream::{Action, CONTENT_TYPE_DNSTAP, Decoder, ReceiverSession};

/// How long a handshake step (READY, START, writing ACCEPT/FINISH) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// During the shutdown drain, a connection that has been silent this long is done.
const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Largest socket read.
const READ_CHUNK: usize = 64 * 1024;
/// Smallest socket read. The room for a read is zeroed first (safe code
/// cannot read into uninitialised memory), so the room follows the sender's
/// pace between this and [`READ_CHUNK`] instead of zeroing 64 KiB to read a
/// few frames.
const READ_MIN: usize = 4 * 1024;
/// Frames a connection gathers from small reads before it hands a batch to
/// the workers (a read of half a chunk or more is handed on at once).
const BATCH_FRAMES: usize = 512;
/// How long a partial batch may wait for more frames. Senders such as
/// `fstrm_replay` write one frame per syscall; without this, every read of a
/// few frames would be its own batch, waking a worker each time.
const BATCH_DELAY: Duration = Duration::from_millis(1);
/// A read shorter than this makes the reader pause for [`COALESCE`] before it
/// reads again.
const COALESCE_BELOW: usize = 16 * 1024;
/// The pause after a short read. A sender writing one frame per syscall
/// (`fstrm_replay`: ~1.3 µs a frame) fills its socket buffer, which holds
/// about 270 frames of 130 bytes (the kernel counts ~600 bytes of overhead a
/// frame against it), in ~350 µs; this pause, plus the kernel's default
/// 50 µs timer slack, stays below that, so the sender never waits for room.
/// It turns a wake-up per frame into one per ~150 frames. Measured with
/// `fstrm_replay` (1 M frames, 4 rounds): 50 µs 2.32 s, 100 µs 2.25 s,
/// 200 µs 2.16 s, 250 µs 2.09 s, 400 µs 2.46 s (the buffer fills).
const COALESCE: Duration = Duration::from_micros(200);
/// How often a silent connection wakes to notice shutdown.
const IDLE_TICK: Duration = Duration::from_millis(100);

/// Errors setting up an input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Binding the socket failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address or path.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A live server already listens on the unix socket.
    #[error("unix socket {0} is in use by another process")]
    InUse(PathBuf),
    /// The unix socket path exists and is not a socket.
    #[error("{0} exists and is not a socket; refusing to remove it")]
    NotASocket(PathBuf),
    /// Removing a stale socket or setting its mode failed.
    #[error("cannot prepare unix socket {path}")]
    Prepare {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Opening or reading the capture file failed.
    #[error("cannot read capture file {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: framestream::FileError,
    },
    /// Opening the capture file failed.
    #[error("cannot open capture file {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// What every connection needs.
#[derive(Debug, Clone)]
pub struct InputContext {
    /// The input queue.
    pub tx: flume::Sender<Batch>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Maximum data frame payload.
    pub max_frame_len: usize,
    /// Shutdown drain deadline per connection.
    pub drain: Duration,
    /// Caps concurrent connections.
    pub connections: Arc<Semaphore>,
}

/// A bound listener, ready to serve.
#[derive(Debug)]
pub enum Listener {
    /// Unix socket (its path is removed when serving ends).
    Unix(UnixListener, PathBuf),
    /// TCP socket.
    Tcp(TcpListener),
}

/// Bind a unix socket: a stale socket file (nothing accepts on it) is
/// removed; a live one is an error, and so is a non-socket file.
///
/// # Errors
/// [`InputError`] naming the path.
pub fn bind_unix(path: &Path, mode: Option<u32>) -> Result<Listener, InputError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(InputError::NotASocket(path.to_path_buf()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(InputError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(|source| InputError::Prepare {
            path: path.to_path_buf(),
            source,
        })?;
        tracing::info!(path = %path.display(), "removed stale unix socket");
    }
    let l = UnixListener::bind(path).map_err(|source| InputError::Bind {
        addr: path.display().to_string(),
        source,
    })?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
            |source| InputError::Prepare {
                path: path.to_path_buf(),
                source,
            },
        )?;
    }
    Ok(Listener::Unix(l, path.to_path_buf()))
}

/// Bind a TCP listener.
///
/// # Errors
/// [`InputError::Bind`] naming the address.
pub async fn bind_tcp(addr: &str) -> Result<Listener, InputError> {
    TcpListener::bind(addr)
        .await
        .map(Listener::Tcp)
        .map_err(|source| InputError::Bind {
            addr: addr.to_string(),
            source,
        })
}

impl Listener {
    /// The bound address, for logs.
    pub fn describe(&self) -> String {
        match self {
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp:?".into(), |a| format!("tcp:{a}")),
        }
    }

    /// Accept connections until `shutdown`, then wait for every connection to
    /// drain and end. Transient accept errors are logged and retried with backoff.
    pub async fn serve(self, ctx: InputContext, shutdown: CancellationToken) {
        // Each connection thread holds a clone of `alive`; once every clone
        // is dropped, `ended.recv()` returns and serving is over.
        let (alive, mut ended) = tokio::sync::mpsc::channel::<()>(1);
        let mut backoff = Duration::from_millis(5);
        let name = self.describe();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = ctx.connections.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = self.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    let (conn_ctx, shutdown, alive) =
                        (ctx.clone(), shutdown.clone(), alive.clone());
                    // A thread of its own, not the runtime's blocking pool:
                    // blocking reads let frames gather in the socket between
                    // reads (see `COALESCE`), and the pool's thread cap must
                    // neither hold back connections below
                    // `input-max-connections` nor starve other blocking work.
                    let spawned =
                        std::thread::Builder::new()
                            .name("edm-conn".into())
                            .spawn(move || {
                                let _permit = permit;
                                let _alive = alive;
                                serve_connection(stream, &peer, &conn_ctx, &shutdown);
                            });
                    // On failure the stream and its permit are dropped with
                    // the closure: the connection is closed and counted.
                    if let Err(e) = spawned {
                        ctx.metrics.input_connection_errors.fetch_add(1, Relaxed);
                        tracing::warn!(listener = %name, error = %e,
                            "cannot start a thread for a connection; closing it");
                    }
                }
                Err(e) => {
                    tracing::warn!(listener = %name, error = %e, "accept failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        self.close();
        drop(alive);
        let _ = ended.recv().await;
    }

    async fn accept(&self) -> std::io::Result<(Stream, String)> {
        match self {
            Listener::Unix(l, p) => {
                let (s, _) = l.accept().await?;
                Ok((Stream::from_unix(s)?, format!("unix:{}", p.display())))
            }
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                // The peer is a DNS server, not a DNS client: its address is not private data.
                Ok((Stream::from_tcp(s)?, format!("tcp:{a}")))
            }
        }
    }

    /// Stop listening; a unix socket's file is removed.
    fn close(self) {
        if let Listener::Unix(l, p) = self {
            drop(l);
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::warn!(path = %p.display(), error = %e, "cannot remove unix socket");
            }
        }
    }
}

/// An accepted connection, in blocking mode, served on its own thread.
#[derive(Debug)]
pub enum Stream {
    /// Unix stream.
    Unix(std::os::unix::net::UnixStream),
    /// TCP stream.
    Tcp(std::net::TcpStream),
}

impl Stream {
    /// Take a connection out of the async runtime, in blocking mode.
    fn from_unix(s: tokio::net::UnixStream) -> std::io::Result<Self> {
        let s = s.into_std()?;
        s.set_nonblocking(false)?;
        Ok(Self::Unix(s))
    }

    fn from_tcp(s: tokio::net::TcpStream) -> std::io::Result<Self> {
        let s = s.into_std()?;
        s.set_nonblocking(false)?;
        Ok(Self::Tcp(s))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Conn for Stream {
    fn set_read_timeout(&mut self, t: Duration) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(t)),
            Stream::Tcp(s) => s.set_read_timeout(Some(t)),
        }
    }

    fn set_write_timeout(&mut self, t: Duration) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(Some(t)),
            Stream::Tcp(s) => s.set_write_timeout(Some(t)),
        }
    }

    fn shutdown_write(&mut self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }
}

/// A blocking byte stream with read and write timeouts: what a connection
/// reader needs of its socket.
pub trait Conn: Read + Write {
    /// Reads that wait longer than `t` fail with `WouldBlock` or `TimedOut`.
    ///
    /// # Errors
    /// As the socket option call.
    fn set_read_timeout(&mut self, t: Duration) -> std::io::Result<()>;
    /// Writes that wait longer than `t` fail with `WouldBlock` or `TimedOut`.
    ///
    /// # Errors
    /// As the socket option call.
    fn set_write_timeout(&mut self, t: Duration) -> std::io::Result<()>;
    /// Tell the peer we are done (best effort).
    fn shutdown_write(&mut self);
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnEnd {
    #[error("protocol error")]
    Protocol(#[from] framestream::FrameError),
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    #[error("handshake timed out")]
    Timeout,
    #[error("input queue closed")]
    QueueClosed,
}

/// Serve one Frame Streams connection to its end, blocking the calling
/// thread (one thread per connection); never panics, logs once.
pub fn serve_connection<C: Conn>(
    mut conn: C,
    peer: &str,
    ctx: &InputContext,
    shutdown: &CancellationToken,
) {
    let m = &ctx.metrics;
    m.input_connections.fetch_add(1, Relaxed);
    m.input_connections_open.fetch_add(1, Relaxed);
    let span = tracing::info_span!("conn", peer);
    let _g = span.enter();
    tracing::debug!("connection opened");
    let mut frames = 0u64;
    let result = run_connection(&mut conn, ctx, shutdown, &mut frames);
    match &result {
        Ok(pending) if *pending == 0 => tracing::debug!(frames, "connection closed"),
        Ok(pending) => {
            m.input_truncated_bytes.fetch_add(*pending as u64, Relaxed);
            tracing::warn!(
                frames,
                pending_bytes = pending,
                "connection ended inside a frame; partial frame discarded"
            );
        }
        Err(e) => {
            m.input_connection_errors.fetch_add(1, Relaxed);
            tracing::warn!(frames, error = %crate::error::Chain(e), "closing connection");
        }
    }
    conn.shutdown_write();
    m.input_connections_open.fetch_sub(1, Relaxed);
}

/// Returns the number of bytes of an incomplete trailing frame.
fn run_connection<C: Conn>(
    conn: &mut C,
    ctx: &InputContext,
    shutdown: &CancellationToken,
    frames: &mut u64,
) -> Result<usize, ConnEnd> {
    let mut pending = Pending::default();
    let result = read_frames(conn, ctx, shutdown, &mut pending, frames);
    // However the connection ended, frames received intact are delivered.
    let flushed = pending.flush(ctx, frames);
    let rest = result?;
    flushed?;
    Ok(rest)
}

/// The socket read timeout in force: short while a partial batch waits to be
/// handed on, long otherwise (the reader still wakes to notice shutdown).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tick {
    Batch,
    Idle,
}

impl Tick {
    const fn duration(self) -> Duration {
        match self {
            Tick::Batch => BATCH_DELAY,
            Tick::Idle => IDLE_TICK,
        }
    }
}

/// Read and decode frames into `pending`, handing full batches (and partial
/// ones after [`BATCH_DELAY`]) to the workers. Returns the number of bytes of
/// an incomplete trailing frame.
fn read_frames<C: Conn>(
    conn: &mut C,
    ctx: &InputContext,
    shutdown: &CancellationToken,
    pending: &mut Pending,
    frames: &mut u64,
) -> Result<usize, ConnEnd> {
    let mut decoder = Decoder::new(ctx.max_frame_len);
    let mut session = ReceiverSession::new(CONTENT_TYPE_DNSTAP);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut room = READ_MIN;
    conn.set_write_timeout(HANDSHAKE_TIMEOUT)?;
    let mut tick = Tick::Idle;
    conn.set_read_timeout(tick.duration())?;
    // Last time bytes arrived: bounds the handshake and ends the drain.
    let mut last_data = Instant::now();
    let mut draining: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if pending.flush_at.is_some_and(|at| at <= now) {
            pending.flush(ctx, frames)?;
        }
        if shutdown.is_cancelled() {
            if !session.started() {
                return Ok(buf.len());
            }
            let deadline = *draining.get_or_insert_with(|| {
                last_data = now;
                now + ctx.drain
            });
            if now >= deadline || now.duration_since(last_data) >= DRAIN_IDLE {
                return Ok(buf.len());
            }
        } else if !session.started() && now.duration_since(last_data) >= HANDSHAKE_TIMEOUT {
            return Err(ConnEnd::Timeout);
        }
        let want = if pending.flush_at.is_some() {
            Tick::Batch
        } else {
            Tick::Idle
        };
        if want != tick {
            tick = want;
            conn.set_read_timeout(tick.duration())?;
        }
        let len = buf.len();
        buf.resize(len + room, 0);
        let read = conn.read(&mut buf[len..]);
        let n = *read.as_ref().unwrap_or(&0);
        buf.truncate(len + n);
        match read {
            Ok(0) => return Ok(buf.len()),
            Ok(_) => last_data = Instant::now(),
            Err(e) if is_timeout(&e) || e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        if n == room {
            room = (room * 2).min(READ_CHUNK);
        } else if n < room / 4 {
            room = (room / 2).max(READ_MIN);
        }
        while let Some(frame) = decoder.decode(&mut buf)? {
            match session.on_frame(frame)? {
                Action::Data(d) => {
                    pending.bytes += d.len() as u64;
                    pending.batch.push(d);
                }
                Action::Reply(r) => write_reply(conn, &r)?,
                Action::Started => {}
                Action::Ignored => {
                    ctx.metrics.input_control_ignored.fetch_add(1, Relaxed);
                }
                Action::Finish(reply) => {
                    if let Some(r) = reply {
                        let _ = write_reply(conn, &r);
                    }
                    return Ok(0);
                }
            }
        }
        // A large read means the sender writes in bulk: no need to wait, and
        // a batch spanning several large reads would hold their buffers.
        if pending.batch.len() >= BATCH_FRAMES || n >= READ_CHUNK / 2 {
            pending.flush(ctx, frames)?;
        } else if !pending.batch.is_empty() && pending.flush_at.is_none() {
            pending.flush_at = Some(Instant::now() + BATCH_DELAY);
        }
        // A short read means the sender writes a frame or a few at a time
        // (`fstrm_replay`, most resolvers): let frames gather in the socket
        // for a moment instead of waking for each write.
        if n < COALESCE_BELOW && session.started() && draining.is_none() {
            std::thread::sleep(COALESCE);
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Write a handshake reply; the socket's write timeout bounds it.
fn write_reply<C: Conn>(conn: &mut C, reply: &[u8]) -> Result<(), ConnEnd> {
    conn.write_all(reply).map_err(|e| {
        if is_timeout(&e) {
            ConnEnd::Timeout
        } else {
            ConnEnd::Io(e)
        }
    })
}

/// Data frames of a connection not yet handed to the workers.
#[derive(Default)]
struct Pending {
    batch: Batch,
    bytes: u64,
    /// When the partial batch goes out even if it is not full.
    flush_at: Option<Instant>,
}

impl Pending {
    /// Hand the frames gathered so far to the workers (waiting for room).
    fn flush(&mut self, ctx: &InputContext, frames: &mut u64) -> Result<(), ConnEnd> {
        self.flush_at = None;
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_FRAMES));
        let n = batch.len() as u64;
        *frames += n;
        ctx.metrics.input_frames.fetch_add(n, Relaxed);
        ctx.metrics
            .input_bytes
            .fetch_add(std::mem::take(&mut self.bytes), Relaxed);
        ctx.tx.send(batch).map_err(|_| ConnEnd::QueueClosed)
    }
}

/// Read a `.fstrm` capture file into the input queue (blocking; run it on a
/// blocking thread). Returns the number of data frames read.
///
/// # Errors
/// [`InputError`] naming the file and, for a bad frame, its byte offset.
pub fn read_file(path: &Path, ctx: &InputContext, batch_size: usize) -> Result<u64, InputError> {
    let file = std::fs::File::open(path).map_err(|source| InputError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // No BufReader: the frame reader reads 64 KiB at a time into its own
    // buffer, and a second buffer in front of it only copied every byte once
    // more.
    let reader = framestream::FileReader::new(file, ctx.max_frame_len).map_err(|source| {
        InputError::File {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let mut total = 0u64;
    let mut batch = Vec::with_capacity(batch_size);
    let mut bytes = 0u64;
    let flush = |batch: &mut Batch, bytes: &mut u64| {
        ctx.metrics
            .input_frames
            .fetch_add(batch.len() as u64, Relaxed);
        ctx.metrics.input_bytes.fetch_add(*bytes, Relaxed);
        *bytes = 0;
        ctx.tx
            .send(std::mem::replace(batch, Vec::with_capacity(batch_size)))
            .is_ok()
    };
    let mut result = Ok(());
    for frame in reader {
        match frame {
            Ok(f) => {
                bytes += f.len() as u64;
                batch.push(f);
                total += 1;
                if batch.len() >= batch_size && !flush(&mut batch, &mut bytes) {
                    break;
                }
            }
            Err(source) => {
                result = Err(InputError::File {
                    path: path.to_path_buf(),
                    source,
                });
                break;
            }
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut bytes);
    }
    result.map(|()| total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use framestream::{ControlType, encode_control, encode_data};
    use std::os::unix::net::UnixStream;

    fn context(queue: usize) -> (InputContext, flume::Receiver<Batch>) {
        let (tx, rx) = flume::bounded(queue);
        let ctx = InputContext {
            tx,
            metrics: Arc::new(Metrics::default()),
            max_frame_len: 1 << 16,
            drain: Duration::from_secs(2),
            connections: Arc::new(Semaphore::new(1)),
        };
        (ctx, rx)
    }

    /// Serve `ours` on a thread; the receiver yields once it has ended.
    fn serve(
        ours: UnixStream,
        ctx: &InputContext,
        shutdown: &CancellationToken,
    ) -> std::sync::mpsc::Receiver<()> {
        let (done_tx, done) = std::sync::mpsc::channel();
        let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
        std::thread::spawn(move || {
            serve_connection(Stream::Unix(ours), "test", &ctx, &shutdown);
            let _ = done_tx.send(());
        });
        done
    }

    fn start() -> BytesMut {
        let mut out = BytesMut::new();
        encode_control(ControlType::Start, Some(CONTENT_TYPE_DNSTAP), &mut out);
        out
    }

    fn payload(i: usize) -> Vec<u8> {
        format!("frame {i} {}", "x".repeat(i % 300)).into_bytes()
    }

    #[test]
    fn frames_written_one_by_one_all_arrive_in_order() {
        let (ctx, rx) = context(10_000);
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let done = serve(ours, &ctx, &CancellationToken::new());
        peer.write_all(&start()).unwrap();
        let n = 3000;
        for i in 0..n {
            let mut out = BytesMut::new();
            encode_data(&payload(i), &mut out);
            peer.write_all(&out).unwrap();
        }
        let mut out = BytesMut::new();
        encode_control(ControlType::Stop, None, &mut out);
        peer.write_all(&out).unwrap();
        done.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(ctx.tx);
        let got: Vec<Bytes> = rx.iter().flatten().collect();
        assert_eq!(got.len(), n);
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f[..], payload(i)[..]);
        }
        assert_eq!(ctx.metrics.input_frames.load(Relaxed), n as u64);
        assert_eq!(ctx.metrics.input_connection_errors.load(Relaxed), 0);
        assert_eq!(ctx.metrics.input_connections_open.load(Relaxed), 0);
    }

    #[test]
    fn shutdown_before_the_handshake_ends_the_connection_at_once() {
        let (ctx, _rx) = context(1);
        let (ours, _peer) = UnixStream::pair().unwrap();
        let shutdown = CancellationToken::new();
        let done = serve(ours, &ctx, &shutdown);
        std::thread::sleep(Duration::from_millis(50));
        shutdown.cancel();
        done.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(ctx.metrics.input_connection_errors.load(Relaxed), 0);
    }

    #[test]
    fn shutdown_drains_an_open_idle_connection() {
        let (ctx, rx) = context(100);
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let shutdown = CancellationToken::new();
        let done = serve(ours, &ctx, &shutdown);
        let mut out = start();
        for i in 0..10 {
            encode_data(&payload(i), &mut out);
        }
        peer.write_all(&out).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        shutdown.cancel();
        // The peer stays open and silent: the drain ends it after DRAIN_IDLE.
        done.recv_timeout(Duration::from_secs(3)).unwrap();
        drop(ctx.tx);
        assert_eq!(rx.iter().flatten().count(), 10);
        assert_eq!(ctx.metrics.input_truncated_bytes.load(Relaxed), 0);
    }

    #[test]
    fn a_peer_that_never_starts_times_out() {
        let (ctx, _rx) = context(1);
        let (ours, _peer) = UnixStream::pair().unwrap();
        let mut ours = Stream::Unix(ours);
        let mut frames = 0;
        let t0 = Instant::now();
        let r = run_connection(&mut ours, &ctx, &CancellationToken::new(), &mut frames);
        assert!(matches!(r, Err(ConnEnd::Timeout)), "{r:?}");
        assert!(t0.elapsed() >= HANDSHAKE_TIMEOUT);
    }

    /// Connections are not served from the runtime's blocking pool: with a
    /// pool of one thread, several connections open at once are all read.
    #[test]
    fn concurrent_connections_are_not_capped_by_the_blocking_pool() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.sock");
        let (mut ctx, rx) = context(10_000);
        ctx.connections = Arc::new(Semaphore::new(8));
        let shutdown = CancellationToken::new();
        let listener = rt.block_on(async { bind_unix(&path, None) }).unwrap();
        let serving = {
            let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
            std::thread::spawn(move || rt.block_on(listener.serve(ctx, shutdown)))
        };
        let (conns, per_conn) = (4, 50);
        let mut peers = Vec::new();
        for c in 0..conns {
            let mut peer = UnixStream::connect(&path).unwrap();
            let mut out = start();
            for i in 0..per_conn {
                encode_data(&payload(c * 1000 + i), &mut out);
            }
            peer.write_all(&out).unwrap();
            peers.push(peer);
        }
        // Every connection stays open; all their frames must still arrive.
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < conns * per_conn && Instant::now() < deadline {
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
                got += b.len();
            }
        }
        assert_eq!(got, conns * per_conn);
        assert_eq!(
            ctx.metrics.input_connections_open.load(Relaxed),
            conns as u64
        );
        shutdown.cancel();
        serving.join().unwrap();
        assert_eq!(ctx.metrics.input_connections_open.load(Relaxed), 0);
        drop(peers);
    }
}

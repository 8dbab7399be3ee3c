//! Inputs: Frame Streams listeners (unix socket, TCP) and the `.fstrm` file
//! reader. Each connection runs in its own task with its own span; it decodes
//! frames with [`framestream::Decoder`], drives the handshake with
//! [`framestream::ReceiverSession`] and sends the data payloads, one batch per
//! socket read, into the bounded input queue. The send waits when the queue is
//! full, so a slow pipeline pushes back on the sender instead of losing frames.
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

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::minimiser::Batch;
use framestream::{Action, CONTENT_TYPE_DNSTAP, Decoder, ReceiverSession};

/// How long a handshake step (READY, START, writing ACCEPT/FINISH) may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// During the shutdown drain, a connection that has been silent this long is done.
const DRAIN_IDLE: Duration = Duration::from_millis(200);
/// Socket read buffer size.
const READ_CHUNK: usize = 64 * 1024;
/// Frames a connection gathers from small reads before it hands a batch to
/// the workers (a read of half a chunk or more is handed on at once).
const BATCH_FRAMES: usize = 512;
/// How long a partial batch may wait for more frames. Senders such as
/// `fstrm_replay` write one frame per syscall; without this, every read of a
/// few frames would be its own batch, waking a worker each time.
const BATCH_DELAY: Duration = Duration::from_millis(1);

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
        let mut conns = JoinSet::new();
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
                    let ctx = ctx.clone();
                    let shutdown = shutdown.clone();
                    conns.spawn(async move {
                        let _permit = permit;
                        serve_stream(stream, peer, ctx, shutdown).await;
                    });
                }
                Err(e) => {
                    tracing::warn!(listener = %name, error = %e, "accept failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
            while conns.try_join_next().is_some() {}
        }
        self.close();
        while conns.join_next().await.is_some() {}
    }

    async fn accept(&self) -> std::io::Result<(Stream, String)> {
        match self {
            Listener::Unix(l, p) => {
                let (s, _) = l.accept().await?;
                Ok((Stream::Unix(s), format!("unix:{}", p.display())))
            }
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                // The peer is a DNS server, not a DNS client: its address is not private data.
                Ok((Stream::Tcp(s), format!("tcp:{a}")))
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

/// An accepted connection.
#[derive(Debug)]
pub enum Stream {
    /// Unix stream.
    Unix(tokio::net::UnixStream),
    /// TCP stream.
    Tcp(tokio::net::TcpStream),
}

async fn serve_stream(
    stream: Stream,
    peer: String,
    ctx: InputContext,
    shutdown: CancellationToken,
) {
    match stream {
        Stream::Unix(s) => serve_connection(s, &peer, &ctx, &shutdown).await,
        Stream::Tcp(s) => serve_connection(s, &peer, &ctx, &shutdown).await,
    }
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

/// Serve one Frame Streams connection to its end; never panics, logs once.
pub async fn serve_connection<S>(
    mut stream: S,
    peer: &str,
    ctx: &InputContext,
    shutdown: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let m = &ctx.metrics;
    m.input_connections.fetch_add(1, Relaxed);
    m.input_connections_open.fetch_add(1, Relaxed);
    let span = tracing::info_span!("conn", peer);
    let _g = span.enter();
    tracing::debug!("connection opened");
    let mut frames = 0u64;
    let result = run_connection(&mut stream, ctx, shutdown, &mut frames).await;
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
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.shutdown()).await;
    m.input_connections_open.fetch_sub(1, Relaxed);
}

/// Returns the number of bytes of an incomplete trailing frame.
async fn run_connection<S>(
    stream: &mut S,
    ctx: &InputContext,
    shutdown: &CancellationToken,
    frames: &mut u64,
) -> Result<usize, ConnEnd>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pending = Pending::default();
    let result = read_frames(stream, ctx, shutdown, &mut pending, frames).await;
    // However the connection ended, frames received intact are delivered.
    let flushed = pending.flush(ctx, frames).await;
    let rest = result?;
    flushed?;
    Ok(rest)
}

/// Read and decode frames into `pending`, handing full batches (and partial
/// ones after [`BATCH_DELAY`]) to the workers. Returns the number of bytes of
/// an incomplete trailing frame.
async fn read_frames<S>(
    stream: &mut S,
    ctx: &InputContext,
    shutdown: &CancellationToken,
    pending: &mut Pending,
    frames: &mut u64,
) -> Result<usize, ConnEnd>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut decoder = Decoder::new(ctx.max_frame_len);
    let mut session = ReceiverSession::new(CONTENT_TYPE_DNSTAP);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut draining: Option<tokio::time::Instant> = None;
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(READ_CHUNK);
        }
        // `None`: the partial batch's time is up before more data came.
        let read = if let Some(deadline) = draining {
            let quiet = (tokio::time::Instant::now() + DRAIN_IDLE).min(deadline);
            let until = pending.flush_at.map_or(quiet, |f| f.min(quiet));
            match tokio::time::timeout_at(until, stream.read_buf(&mut buf)).await {
                Ok(r) => Some(r?),
                Err(_) if until < quiet => None,
                Err(_) => return Ok(buf.len()),
            }
        } else if !session.started() {
            tokio::select! {
                r = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_buf(&mut buf)) => Some(r.map_err(|_| ConnEnd::Timeout)??),
                _ = shutdown.cancelled() => return Ok(buf.len()),
            }
        } else if let Some(flush_at) = pending.flush_at {
            tokio::select! {
                r = tokio::time::timeout_at(flush_at, stream.read_buf(&mut buf)) => r.ok().transpose()?,
                _ = shutdown.cancelled() => {
                    draining = Some(tokio::time::Instant::now() + ctx.drain);
                    continue;
                }
            }
        } else {
            tokio::select! {
                r = stream.read_buf(&mut buf) => Some(r?),
                _ = shutdown.cancelled() => {
                    draining = Some(tokio::time::Instant::now() + ctx.drain);
                    continue;
                }
            }
        };
        let Some(n) = read else {
            pending.flush(ctx, frames).await?;
            continue;
        };
        if n == 0 {
            return Ok(buf.len());
        }
        loop {
            let frame = match decoder.decode(&mut buf)? {
                Some(f) => f,
                None => break,
            };
            match session.on_frame(frame)? {
                Action::Data(d) => {
                    pending.bytes += d.len() as u64;
                    pending.batch.push(d);
                }
                Action::Reply(r) => {
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&r))
                        .await
                        .map_err(|_| ConnEnd::Timeout)??;
                }
                Action::Started => {}
                Action::Ignored => {
                    ctx.metrics.input_control_ignored.fetch_add(1, Relaxed);
                }
                Action::Finish(reply) => {
                    if let Some(r) = reply {
                        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(&r)).await;
                    }
                    return Ok(0);
                }
            }
        }
        // A large read means the sender writes in bulk: no need to wait, and
        // a batch spanning several large reads would hold their buffers.
        if pending.batch.len() >= BATCH_FRAMES || n >= READ_CHUNK / 2 {
            pending.flush(ctx, frames).await?;
        } else if !pending.batch.is_empty() && pending.flush_at.is_none() {
            pending.flush_at = Some(tokio::time::Instant::now() + BATCH_DELAY);
        }
    }
}

/// Data frames of a connection not yet handed to the workers.
#[derive(Default)]
struct Pending {
    batch: Batch,
    bytes: u64,
    /// When the partial batch goes out even if it is not full.
    flush_at: Option<tokio::time::Instant>,
}

impl Pending {
    /// Hand the frames gathered so far to the workers (waiting for room).
    async fn flush(&mut self, ctx: &InputContext, frames: &mut u64) -> Result<(), ConnEnd> {
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
        ctx.tx
            .send_async(batch)
            .await
            .map_err(|_| ConnEnd::QueueClosed)
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

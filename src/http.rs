//! The HTTP endpoint: Prometheus text at `GET /metrics`, and
//! `/debug/rotate-parquet` when manual rotation is enabled (reference §11).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use crossbeam_channel::Sender;
use tokio_util::sync::CancellationToken;

use crate::collector::CollectorMsg;
use crate::metrics::Metrics;

/// How long a rotation request may take before the client gets 504.
pub const ROTATE_TIMEOUT: Duration = Duration::from_secs(9);

/// Shared state of the HTTP handlers.
#[derive(Debug)]
pub struct HttpState {
    /// Metrics to render.
    pub metrics: Arc<Metrics>,
    /// The collector, while it accepts rotation requests; `None` when manual
    /// rotation is disabled or edm is shutting down.
    pub rotate: Mutex<Option<Sender<CollectorMsg>>>,
    /// Whether the rotation route exists.
    pub rotation_enabled: bool,
    /// How long a rotation may take before 504 ([`ROTATE_TIMEOUT`]).
    pub rotate_timeout: Duration,
}

impl HttpState {
    /// Stop taking rotation requests (shutdown); later requests get 503.
    pub fn close_rotation(&self) {
        if let Ok(mut g) = self.rotate.lock() {
            g.take();
        }
    }
}

async fn metrics(State(s): State<Arc<HttpState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn rotate(State(s): State<Arc<HttpState>>, method: Method) -> Response {
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "method not allowed\n",
        )
            .into_response();
    }
    let tx = s.rotate.lock().ok().and_then(|g| g.clone());
    let Some(tx) = tx else {
        return (StatusCode::SERVICE_UNAVAILABLE, "edm is shutting down\n").into_response();
    };
    let timeout = s.rotate_timeout;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let msg = CollectorMsg::Rotate {
        at: SystemTime::now(),
        reply,
    };
    let sent = tokio::task::spawn_blocking(move || tx.send_timeout(msg, timeout)).await;
    if !matches!(sent, Ok(Ok(()))) {
        return (
            StatusCode::GATEWAY_TIMEOUT,
            "timed out waiting for parquet rotation\n",
        )
            .into_response();
    }
    match tokio::time::timeout(timeout, answer).await {
        Ok(Ok(Ok(()))) => (StatusCode::ACCEPTED, "rotation requested\n").into_response(),
        Ok(Ok(Err(e))) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Ok(Err(_)) => (StatusCode::SERVICE_UNAVAILABLE, "edm is shutting down\n").into_response(),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "timed out waiting for parquet rotation\n",
        )
            .into_response(),
    }
}

/// The routes.
pub fn router(state: Arc<HttpState>) -> Router {
    let mut r = Router::new().route("/metrics", get(metrics));
    if state.rotation_enabled {
        r = r.route("/debug/rotate-parquet", any(rotate));
    }
    r.with_state(state)
}

/// Serve on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<HttpState>,
    shutdown: CancellationToken,
) {
    if let Err(e) = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "metrics server failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serve `state`; returns the address.
    async fn start(state: HttpState) -> (std::net::SocketAddr, CancellationToken) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let token = CancellationToken::new();
        tokio::spawn(serve(l, Arc::new(state), token.clone()));
        (addr, token)
    }

    async fn request(addr: std::net::SocketAddr, method: &str) -> (u16, String, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} /debug/rotate-parquet HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    fn state(tx: Option<Sender<CollectorMsg>>, enabled: bool) -> HttpState {
        HttpState {
            metrics: Arc::new(Metrics::default()),
            rotate: Mutex::new(tx),
            rotation_enabled: enabled,
            rotate_timeout: Duration::from_millis(300),
        }
    }

    /// A fake collector answering every rotation with `answer`.
    fn collector(answer: Option<Result<(), String>>) -> Sender<CollectorMsg> {
        let (tx, rx) = crossbeam_channel::bounded::<CollectorMsg>(1);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok(m) = rx.recv() {
                if let CollectorMsg::Rotate { reply, at } = m {
                    assert!(at <= SystemTime::now());
                    match &answer {
                        Some(a) => {
                            let _ = reply.send(a.clone());
                        }
                        // Never answers: the client must get 504.
                        None => held.push(reply),
                    }
                }
            }
        });
        tx
    }

    #[tokio::test]
    async fn rotation_endpoint_status_codes() {
        // Success → 202 "rotation requested".
        let (addr, _t) = start(state(Some(collector(Some(Ok(())))), true)).await;
        let (status, _, body) = request(addr, "POST").await;
        assert_eq!((status, body.as_str()), (202, "rotation requested\n"));
        // Any other method → 405 with Allow: POST.
        let (status, head, _) = request(addr, "GET").await;
        assert_eq!(status, 405);
        assert!(head.contains("allow: post"), "{head}");
        assert_eq!(request(addr, "PUT").await.0, 405);

        // Rotation error → 500 with the error text.
        let (addr, _t) = start(state(Some(collector(Some(Err("disk full".into())))), true)).await;
        let (status, _, body) = request(addr, "POST").await;
        assert_eq!((status, body.as_str()), (500, "disk full\n"));

        // No answer in time → 504.
        let (addr, _t) = start(state(Some(collector(None)), true)).await;
        let (status, _, body) = request(addr, "POST").await;
        assert_eq!(
            (status, body.as_str()),
            (504, "timed out waiting for parquet rotation\n")
        );

        // Shutting down (rotation closed) → 503.
        let st = state(Some(collector(Some(Ok(())))), true);
        st.close_rotation();
        let (addr, _t) = start(st).await;
        let (status, _, body) = request(addr, "POST").await;
        assert_eq!((status, body.as_str()), (503, "edm is shutting down\n"));

        // The collector goes away while a request waits → 503.
        let (tx, rx) = crossbeam_channel::bounded::<CollectorMsg>(1);
        std::thread::spawn(move || drop(rx.recv()));
        let (addr, _t) = start(state(Some(tx), true)).await;
        assert_eq!(request(addr, "POST").await.0, 503);

        // Disabled → the route does not exist.
        let (addr, _t) = start(state(None, false)).await;
        assert_eq!(request(addr, "POST").await.0, 404);
        assert_eq!(request(addr, "GET").await.0, 404);
    }
}

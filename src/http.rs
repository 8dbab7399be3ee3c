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
const ROTATE_TIMEOUT: Duration = Duration::from_secs(9);

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
    let (reply, answer) = tokio::sync::oneshot::channel();
    let msg = CollectorMsg::Rotate {
        at: SystemTime::now(),
        reply,
    };
    let sent = tokio::task::spawn_blocking(move || tx.send_timeout(msg, ROTATE_TIMEOUT)).await;
    if !matches!(sent, Ok(Ok(()))) {
        return (
            StatusCode::GATEWAY_TIMEOUT,
            "timed out waiting for parquet rotation\n",
        )
            .into_response();
    }
    match tokio::time::timeout(ROTATE_TIMEOUT, answer).await {
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

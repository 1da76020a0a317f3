//! The public listener: hyper's HTTP/1 connection settings (header-read timeout, read-buffer
//! cap), a cap on open connections, and tower-http's body limit and body-read timeout around
//! the routes. The per-request limits (requests in flight, whole-request timeout) are layers of
//! the router, see [`crate::app::router`].
//!
//! Everything here bounds what one client can hold: a connection that trickles its headers is
//! closed after `header_read_timeout`, a body that trickles is answered 408 after
//! `body_read_timeout`, a body over the largest configured `max_body_bytes` is refused while it
//! is read, and past `max_connections` a new connection is answered 503 with `Retry-After` and
//! closed (past twice that it is closed at once), so memory stays bounded under attack.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Read buffer of one connection: headers larger than this are refused (hyper answers 431).
const MAX_READ_BUFFER: usize = 64 * 1024;

/// How long a refused connection (over `max_connections`) may take to send its headers.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long shutdown waits for the connections in flight.
const CONNECTION_GRACE: Duration = Duration::from_secs(5);

/// Seconds a client is told to wait (`Retry-After`) when the server sheds load.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Timeouts and caps of the public listener (`[server]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Longest time a client may take to send a request's headers; the connection is closed.
    pub header_read_timeout: Duration,
    /// Longest time a client may take to send a request's body; answered 408.
    pub body_read_timeout: Duration,
    /// Longest time from a request's headers to its answer (webhooks, `/readyz`, `/metrics`;
    /// not `/sync`, which runs as long as its reconcile); answered 408.
    pub request_timeout: Duration,
    /// Most open connections; more are answered 503 with `Retry-After` and closed.
    pub max_connections: usize,
    /// Most requests handled at once; more are answered 503 with `Retry-After` before their
    /// body is read.
    pub max_requests_in_flight: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_connections: 4_096,
            max_requests_in_flight: 512,
        }
    }
}

/// The answer when the server sheds load: 503 with `Retry-After`.
pub fn overloaded_response() -> Response<Body> {
    let mut response = Response::new(Body::from(
        "{\"error\":\"the server is at its limit of connections or requests in flight; retry after the Retry-After delay\"}",
    ));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Binds the listening socket with an accept backlog as deep as the connection cap (the kernel
/// caps it at `net.core.somaxconn`): under a connection flood a shallow backlog drops the SYN of
/// a legitimate sender, who then waits a second for the retransmission.
pub(crate) fn bind(address: std::net::SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(u32::try_from(max_connections.clamp(1_024, 65_535)).unwrap_or(4_096))
}

/// Serves `router` on `listener` until `shutdown` turns true, then waits (boundedly) for the
/// connections in flight. `max_body_bytes` is the largest body any route accepts.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    max_body_bytes: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
        .service(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_READ_BUFFER);
    let mut refusing = hyper::server::conn::http1::Builder::new();
    refusing
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_HEADER_TIMEOUT)
        .max_buf_size(8 * 1024)
        .keep_alive(false);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        if let Ok(permit) = Arc::clone(&connections).try_acquire_owned() {
            let connection = graceful.watch(http.serve_connection(io, TowerToHyperService::new(service.clone())));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection closed with an error");
                }
                drop(permit);
            });
        } else if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
            tracing::debug!(
                max_connections = limits.max_connections,
                "connection refused with 503: at the connection limit"
            );
            let refuse =
                hyper::service::service_fn(|_: Request<hyper::body::Incoming>| async { Ok::<_, Infallible>(overloaded_response()) });
            let connection = graceful.watch(refusing.serve_connection(io, refuse));
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        } else {
            drop(io);
        }
    }
    drop(listener);
    if tokio::time::timeout(CONNECTION_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the grace period; closing them");
    }
}

//! `syncline-bench bare`: the ceiling. The same HTTP stack as `syncline serve` (axum on tokio,
//! HTTP/1.1 keep-alive), a handler that reads the whole body and answers 200 with a small JSON
//! body, and nothing else: no verification, no parsing, no durable write.

use std::net::SocketAddr;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Arguments of `syncline-bench bare`.
#[derive(Debug, clap::Args)]
pub struct BareArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(args: BareArgs) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/webhooks/{source}", post(receive_webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}; pass another --listen address", args.listen))?;
    eprintln!("bare webhook server listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the bare server failed")?;
    Ok(())
}

/// Reads the body (the extractor buffers it whole) and acknowledges it.
async fn receive_webhook(Path(_source): Path<String>, body: Bytes) -> Json<Value> {
    Json(json!({ "stored": 1, "duplicates": 0, "ignored": 0, "bytes": body.len() }))
}

async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

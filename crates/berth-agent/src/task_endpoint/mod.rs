//! The task endpoint, as the ECS agent serves it at 169.254.170.2: each
//! task's role credentials (`/v2/credentials/{id}`, what the AWS SDKs read
//! through `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) and the task metadata
//! endpoint v4 (and v3) with Docker-shaped statistics.
//!
//! The agent listens on a host address (127.0.0.1:51679 by default) and
//! berth-net redirects containers' TCP to 169.254.170.2:80 there, keeping
//! the source address, so every request says which task sent it:
//! - [`registry`]: what is served — workers publish metadata, every poll
//!   answer replaces the credentials;
//! - [`handler`]: one request → one reply, pure over a registry view;
//! - [`metadata`], [`stats`]: the JSON shapes;
//! - [`env`]: the variables every container gets;
//! - [`serve`]: the HTTP/1.1 listener.
//!
//! Isolation: a bridge or awsvpc task is answered only from its own
//! address (ECS answers anyone holding the id). A `host`-mode task shares
//! the host's addresses, so for it only the unguessable id protects, as in
//! ECS.

pub mod env;
pub mod handler;
pub mod metadata;
pub mod registry;
pub mod stats;

pub use registry::{EndpointRegistry, HostInfo};
pub use stats::{CgroupV1Stats, StatsSource};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The ECS agent's credentials port, where `berth agent` listens by default.
pub const DEFAULT_PORT: u16 = 51679;

/// How long a connection may take to send a request's head (idle
/// keep-alive connections included).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh unguessable id (122 random bits in the UUID v4 layout, as the
/// ECS agent's ids look).
pub fn new_id() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let v = format!("4{}", &hex[13..16]);
    let variant = format!("{:x}{}", 0x8 | (b[8] >> 4 & 0x3), &hex[17..20]);
    format!("{}-{}-{v}-{variant}-{}", &hex[0..8], &hex[8..12], &hex[20..32])
}

/// Serves the endpoint on `listener` until the task is aborted (the
/// engine's shutdown). Never logs a request's credentials.
pub async fn serve(listener: TcpListener, registry: Arc<EndpointRegistry>, stats: Arc<dyn StatsSource>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!(error = %e, "task endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let registry = registry.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let reply = {
                    let view = registry.view();
                    handler::handle(&view, stats.as_ref(), peer.ip().to_canonical(), req.method().as_str(), req.uri().path())
                };
                if reply.status >= 400 {
                    // Not the path: a credentials id is all that guards a
                    // host-mode task's credentials.
                    tracing::debug!(%peer, status = reply.status, "task endpoint: refused a request");
                }
                let body = serde_json::to_vec(&reply.body).unwrap_or_default();
                let resp = hyper::Response::builder()
                    .status(reply.status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(body)));
                async move {
                    Ok::<_, Infallible>(resp.unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new()))))
                }
            });
            // A container that opens connections and sends nothing must not
            // hold the agent's descriptors forever.
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "task endpoint: connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests;

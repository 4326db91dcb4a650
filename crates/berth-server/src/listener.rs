//! The accept loop: TCP_NODELAY on every connection (boto3 otherwise stalls
//! ~40 ms per call on delayed ACKs), HTTP/1.1 keep-alive, a panic in a
//! handler answered as a 500 instead of a dropped connection, and graceful
//! shutdown.

use crate::front_door::{self, FrontDoor};
use crate::panic_guard::CatchUnwind;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serve until `shutdown` resolves, then let in-flight requests finish (up
/// to 10 s).
pub async fn serve(listener: TcpListener, door: Arc<FrontDoor>, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, %peer, "could not set TCP_NODELAY");
                }
                let door = door.clone();
                let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let door = door.clone();
                    // `aws:SourceIp` for IAM conditions.
                    req.extensions_mut().insert(front_door::PeerAddr(peer));
                    async move {
                        let json_protocol = req.headers().contains_key("x-amz-target");
                        let handled = CatchUnwind::new(door.handle(req)).await;
                        Ok::<_, std::convert::Infallible>(handled.unwrap_or_else(|()| {
                            tracing::error!("request handler panicked");
                            front_door::internal_error(json_protocol)
                        }))
                    }
                });
                let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("in-flight requests did not finish within 10 s of shutdown");
        }
    }
}

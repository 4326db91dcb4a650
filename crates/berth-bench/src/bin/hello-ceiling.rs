//! `hello-ceiling`: the bare hyper 1 HTTP/1.1 server that bench/api.sh uses
//! as the ceiling. It does no parsing, no auth and no storage: every request
//! (any method, any path) gets the same small ECS-shaped JSON body. Same
//! stack as Berth's listener: tokio multi-thread runtime, TCP_NODELAY,
//! HTTP/1.1 keep-alive.
//!
//!   hello-ceiling [--listen 127.0.0.1:0]    # prints `ready 127.0.0.1:PORT`

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

const BODY: &[u8] = br#"{"clusters":[{"clusterName":"bench","status":"ACTIVE"}],"failures":[]}"#;

fn parse_args() -> Result<SocketAddr, String> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("default address");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--listen" => args.next().ok_or("--listen needs an address")?,
            s if s.starts_with("--listen=") => s["--listen=".len()..].to_string(),
            "-h" | "--help" => {
                println!(
                    "usage: hello-ceiling [--listen ADDR]   (default 127.0.0.1:0; prints `ready ADDR`)"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        };
        listen = value
            .parse()
            .map_err(|e| format!("bad --listen {value:?}: {e}"))?;
    }
    Ok(listen)
}

async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body so the connection stays reusable, as a real server would.
    let _ = req.into_body().collect().await;
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    Ok(resp)
}

fn main() {
    let listen = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hello-ceiling: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let (listener, addr) = berth_bench::bind_or_exit("hello-ceiling", listen).await;
        berth_bench::print_ready(addr);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service_fn(hello))
                    .await;
            });
        }
    });
}

//! The supervisor against a MemoryStore changed through the ELBv2 API:
//! listeners open and close real ports on 127.0.0.1, routing changes keep
//! connections, a busy port does not block the others, metrics land in the
//! store.

mod common;

use berth_lb::DataPlane;
use berth_lb::snapshot::{NoInstances, Snapshot};
use berth_lb::supervisor::{self, LbOptions};
use berth_store::Store;
use common::{WAIT, eventually, free_port, local, read_head, serve_each, tcp_echo};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The records, changed through the ELBv2 API, and a supervisor serving
/// them.
struct Env {
    elbv2: common::Env,
    _certs: tempfile::TempDir,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::ops::Deref for Env {
    type Target = common::Env;
    fn deref(&self) -> &common::Env {
        &self.elbv2
    }
}

impl Env {
    /// A store and a supervisor serving it on 127.0.0.1.
    fn start() -> Env {
        let elbv2 = common::Env::new();
        let certs = tempfile::tempdir().unwrap();
        let options = LbOptions {
            bind: Ipv4Addr::LOCALHOST.into(),
            cert_dir: certs.path().to_path_buf(),
            rebuild_interval: Duration::from_millis(500),
            metrics_interval: Duration::from_millis(300),
        };
        let (stop, rx) = watch::channel(false);
        let dyn_store: Arc<dyn Store> = elbv2.store.clone();
        let task = tokio::spawn(supervisor::run(
            dyn_store,
            DataPlane::new(Snapshot::default()),
            Arc::new(NoInstances),
            options,
            rx,
        ));
        Env {
            elbv2,
            _certs: certs,
            stop,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        self.stop.send(true).unwrap();
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .expect("supervisor did not stop")
            .unwrap();
    }
}

/// Whether `msg` comes back through `port`.
async fn echoes(port: u16, msg: &[u8]) -> bool {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(local(port))).await
    else {
        return false;
    };
    if s.write_all(msg).await.is_err() {
        return false;
    }
    let mut back = vec![0u8; msg.len()];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back)).await,
        Ok(Ok(_))
    ) && back == msg
}

/// An HTTP backend answering `200 {name}`; a path starting with `/slow`
/// is answered after `slow`.
async fn http_backend(name: &'static str, slow: Duration) -> (u16, tokio::task::JoinHandle<()>) {
    serve_each(move |mut s| async move {
        while let Some(got) = read_head(&mut s).await {
            let head = String::from_utf8_lossy(&got).to_string();
            if head
                .split_whitespace()
                .nth(1)
                .is_some_and(|p| p.starts_with("/slow"))
            {
                tokio::time::sleep(slow).await;
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{name}",
                name.len()
            );
            if s.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// `GET path` through `port`; (status, body) or `None` if nothing answered.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let attempt = async {
        let mut s = TcpStream::connect(local(port)).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut all = Vec::new();
        s.read_to_end(&mut all).await.ok()?;
        let text = String::from_utf8_lossy(&all).to_string();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(WAIT, attempt).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_open_and_close_ports() {
    let env = Env::start();
    let (echo_port, _, echo) = tcp_echo().await;
    let (http_port, web) = http_backend("web", Duration::ZERO).await;

    let nlb = env.lb("nlb", "network").await;
    let tcp_group = env.ip_group("tcp", "TCP", &[echo_port]).await;
    let tcp_port = free_port().await;
    let tcp_listener = env.listener(&nlb, "TCP", tcp_port, &tcp_group).await;
    eventually("the TCP listener to forward", || echoes(tcp_port, b"hello")).await;

    let alb = env.lb("alb", "application").await;
    let web_group = env.ip_group("web", "HTTP", &[http_port]).await;
    let alb_port = free_port().await;
    env.listener(&alb, "HTTP", alb_port, &web_group).await;
    eventually("the HTTP listener to answer", || async {
        get(alb_port, "/")
            .await
            .is_some_and(|(s, b)| s == 200 && b.contains("web"))
    })
    .await;

    env.call("DeleteListener", &[("ListenerArn", &tcp_listener)])
        .await;
    eventually("the TCP port to close", || async {
        TcpStream::connect(local(tcp_port)).await.is_err()
    })
    .await;
    // The other listener is untouched.
    assert!(get(alb_port, "/").await.is_some_and(|(s, _)| s == 200));

    env.stop().await;
    // Every port closes on shutdown.
    assert!(TcpStream::connect(local(alb_port)).await.is_err());
    echo.abort();
    web.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_rule_reroutes_without_dropping_a_request_in_flight() {
    let env = Env::start();
    let (port_a, a) = http_backend("backend-a", Duration::from_secs(3)).await;
    let (port_b, b) = http_backend("backend-b", Duration::ZERO).await;
    let alb = env.lb("alb", "application").await;
    let group_a = env.ip_group("ga", "HTTP", &[port_a]).await;
    let group_b = env.ip_group("gb", "HTTP", &[port_b]).await;
    let port = free_port().await;
    let listener = env.listener(&alb, "HTTP", port, &group_a).await;
    eventually("the listener to answer", || async {
        get(port, "/b/x")
            .await
            .is_some_and(|(_, body)| body.contains("backend-a"))
    })
    .await;

    // A slow request is in flight while the rule lands.
    let slow = tokio::spawn(get(port, "/slow"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.call(
        "CreateRule",
        &[
            ("ListenerArn", &listener),
            ("Priority", "10"),
            ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", "/b/*"),
            ("Actions.member.1.Type", "forward"),
            ("Actions.member.1.TargetGroupArn", &group_b),
        ],
    )
    .await;
    eventually("the rule to route /b/ to b", || async {
        get(port, "/b/x")
            .await
            .is_some_and(|(_, body)| body.contains("backend-b"))
    })
    .await;
    assert!(
        get(port, "/other")
            .await
            .is_some_and(|(_, body)| body.contains("backend-a"))
    );
    let answered = slow.await.unwrap();
    assert!(
        answered
            .as_ref()
            .is_some_and(|(s, body)| *s == 200 && body.contains("backend-a")),
        "the request in flight was dropped: {answered:?}"
    );

    env.stop().await;
    a.abort();
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_does_not_stop_other_listeners() {
    let env = Env::start();
    let (echo_port, _, echo) = tcp_echo().await;
    let squatter = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy_port = squatter.local_addr().unwrap().port();
    let free = free_port().await;

    let nlb = env.lb("nlb", "network").await;
    let group = env.ip_group("tcp", "TCP", &[echo_port]).await;
    env.listener(&nlb, "TCP", busy_port, &group).await;
    env.listener(&nlb, "TCP", free, &group).await;
    eventually("the free port to forward", || echoes(free, b"free")).await;

    // Once the port is released, a later rebuild binds it.
    drop(squatter);
    eventually("the busy port to be taken over", || {
        echoes(busy_port, b"busy")
    })
    .await;

    env.stop().await;
    echo.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_are_persisted() {
    let env = Env::start();
    let (echo_port, _, echo) = tcp_echo().await;
    let nlb = env.lb("nlb", "network").await;
    let group = env.ip_group("tcp", "TCP", &[echo_port]).await;
    let port = free_port().await;
    env.listener(&nlb, "TCP", port, &group).await;
    eventually("the listener to forward", || echoes(port, b"one")).await;
    for _ in 0..4 {
        assert!(echoes(port, b"more").await);
    }
    let key = format!("elbv2/{}/{}/metrics", env.account, env.region);
    let target = format!("127.0.0.1:{echo_port}");
    eventually("the metrics record", || async {
        let Some(v) = env.store.get(&key).await.unwrap() else {
            return false;
        };
        let m: serde_json::Value = serde_json::from_slice(&v.value).unwrap();
        let g = &m["targetGroups"][group.as_str()];
        m["updatedMs"].as_u64().is_some_and(|t| t > 0)
            && g["requestCount"].as_u64().is_some_and(|n| n >= 5)
            && g["targets"][target.as_str()].as_u64() == g["requestCount"].as_u64()
    })
    .await;

    // Unchanged counts are not written again.
    let rev = env.store.get(&key).await.unwrap().unwrap().mod_revision;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        env.store.get(&key).await.unwrap().unwrap().mod_revision,
        rev
    );

    env.stop().await;
    echo.abort();
}

//! The supervisor against a MemoryStore changed through the ELBv2 API:
//! listeners open and close real ports on 127.0.0.1, routing changes keep
//! connections, a busy port does not block the others, metrics land in the
//! store.

use berth_arn::{AccountId, Region};
use berth_elbv2::{Elbv2Request, handle};
use berth_lb::DataPlane;
use berth_lb::snapshot::{NoInstances, Snapshot};
use berth_lb::supervisor::{self, LbOptions};
use berth_store::Store;
use berth_store::memory::MemoryStore;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Generous: the suite runs in parallel on two cores.
const WAIT: Duration = Duration::from_secs(30);

struct Env {
    store: Arc<MemoryStore>,
    account: AccountId,
    region: Region,
    _certs: tempfile::TempDir,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// A store and a supervisor serving it on 127.0.0.1.
    fn start() -> Env {
        let store = Arc::new(MemoryStore::new());
        let certs = tempfile::tempdir().unwrap();
        let options = LbOptions {
            bind: Ipv4Addr::LOCALHOST.into(),
            cert_dir: certs.path().to_path_buf(),
            rebuild_interval: Duration::from_millis(500),
            metrics_interval: Duration::from_millis(300),
        };
        let (stop, rx) = watch::channel(false);
        let dyn_store: Arc<dyn Store> = store.clone();
        let task = tokio::spawn(supervisor::run(
            dyn_store,
            DataPlane::new(Snapshot::default()),
            Arc::new(NoInstances),
            options,
            rx,
        ));
        Env {
            store,
            account: "123456789012".parse().unwrap(),
            region: "us-east-1".parse().unwrap(),
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

    async fn call(&self, action: &str, params: &[(&str, &str)]) -> String {
        let mut p: Vec<(String, String)> = vec![
            ("Action".into(), action.into()),
            ("Version".into(), "2015-12-01".into()),
        ];
        p.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let req = Elbv2Request {
            account: &self.account,
            region: &self.region,
            now: SystemTime::now(),
            params: &p,
            request_id: "test",
        };
        match handle(self.store.as_ref(), &req).await {
            Ok(x) => x,
            Err(e) => panic!("{action}: {e:?}"),
        }
    }

    async fn lb(&self, name: &str, kind: &str) -> String {
        let params: Vec<(&str, &str)> = if kind == "network" {
            vec![
                ("Name", name),
                ("Type", "network"),
                ("Subnets.member.1", "subnet-a"),
            ]
        } else {
            vec![
                ("Name", name),
                ("Subnets.member.1", "subnet-a"),
                ("Subnets.member.2", "subnet-b"),
            ]
        };
        text(
            &self.call("CreateLoadBalancer", &params).await,
            "LoadBalancerArn",
        )
    }

    /// An `ip` group of `protocol` with the 127.0.0.1 `ports` registered.
    async fn group(&self, name: &str, protocol: &str, ports: &[u16]) -> String {
        let tg = text(
            &self
                .call(
                    "CreateTargetGroup",
                    &[
                        ("Name", name),
                        ("Protocol", protocol),
                        ("Port", "80"),
                        ("VpcId", "vpc-1"),
                        ("TargetType", "ip"),
                    ],
                )
                .await,
            "TargetGroupArn",
        );
        for port in ports {
            let port = port.to_string();
            self.call(
                "RegisterTargets",
                &[
                    ("TargetGroupArn", &tg),
                    ("Targets.member.1.Id", "127.0.0.1"),
                    ("Targets.member.1.Port", &port),
                ],
            )
            .await;
        }
        tg
    }

    async fn listener(&self, lb: &str, protocol: &str, port: u16, tg: &str) -> String {
        let port = port.to_string();
        text(
            &self
                .call(
                    "CreateListener",
                    &[
                        ("LoadBalancerArn", lb),
                        ("Protocol", protocol),
                        ("Port", &port),
                        ("DefaultActions.member.1.Type", "forward"),
                        ("DefaultActions.member.1.TargetGroupArn", tg),
                    ],
                )
                .await,
            "ListenerArn",
        )
    }
}

fn text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

/// A port free right now (bound, then released).
async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP echo backend.
async fn tcp_echo() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (port, task)
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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
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
            });
        }
    });
    (port, task)
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
    let (echo_port, echo) = tcp_echo().await;
    let (http_port, web) = http_backend("web", Duration::ZERO).await;

    let nlb = env.lb("nlb", "network").await;
    let tcp_group = env.group("tcp", "TCP", &[echo_port]).await;
    let tcp_port = free_port().await;
    let tcp_listener = env.listener(&nlb, "TCP", tcp_port, &tcp_group).await;
    eventually("the TCP listener to forward", || echoes(tcp_port, b"hello")).await;

    let alb = env.lb("alb", "application").await;
    let web_group = env.group("web", "HTTP", &[http_port]).await;
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
    let group_a = env.group("ga", "HTTP", &[port_a]).await;
    let group_b = env.group("gb", "HTTP", &[port_b]).await;
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
    let (echo_port, echo) = tcp_echo().await;
    let squatter = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let busy_port = squatter.local_addr().unwrap().port();
    let free = free_port().await;

    let nlb = env.lb("nlb", "network").await;
    let group = env.group("tcp", "TCP", &[echo_port]).await;
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
    let (echo_port, echo) = tcp_echo().await;
    let nlb = env.lb("nlb", "network").await;
    let group = env.group("tcp", "TCP", &[echo_port]).await;
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

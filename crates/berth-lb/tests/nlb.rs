//! Network listeners forwarding TCP and UDP to real backends on 127.0.0.1,
//! over records made through the ELBv2 API in a MemoryStore.

mod common;

use berth_elbv2::model::HealthCheck;
use berth_lb::nlb::{self, choose};
use berth_lb::snapshot::{
    ActionConfig, Algorithm, LbKind, ListenerConfig, ListenerProtocol, RuleConfig, Snapshot,
    TargetConfig, TargetGroupConfig, TargetStickiness,
};
use berth_lb::{DataPlane, TargetKey, TargetState};
use common::{Env, WAIT, acm, key, make_cert, tcp_echo, tls_connect};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

impl Env {
    /// A network load balancer whose `protocol` listener forwards to a new
    /// `ip` group with `targets` (127.0.0.1 ports); (group, listener) ARNs.
    async fn nlb(&self, protocol: &str, targets: &[u16]) -> (String, String) {
        let lb = self.lb("nlb", "network").await;
        let tg = self.ip_group("tg", protocol, targets).await;
        let listener = self.listener(&lb, protocol, 7000, &tg).await;
        (tg, listener)
    }
}

/// A UDP echo server counting its datagrams.
async fn udp_echo() -> (u16, Arc<AtomicUsize>, JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (port, count, task)
}

/// Serves `listener_arn` over TCP on a new 127.0.0.1 port: its address, the
/// stop signal and the serving task.
async fn serve_tcp(
    listener_arn: String,
    plane: &Arc<DataPlane>,
) -> (SocketAddr, watch::Sender<bool>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let serving = tokio::spawn(nlb::serve_tcp(
        listener,
        listener_arn,
        plane.clone(),
        stop_rx,
    ));
    (addr, stop, serving)
}

async fn echo_once(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    stream.write_all(msg).await?;
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut back))
        .await
        .map_err(|_| std::io::Error::other("echo timed out"))??;
    assert_eq!(back, msg);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_through_listener_uses_both_targets() {
    let env = Env::new();
    let (port_a, count_a, a) = tcp_echo().await;
    let (port_b, count_b, b) = tcp_echo().await;
    let (tg, listener_arn) = env.nlb("TCP", &[port_a, port_b]).await;
    let plane = DataPlane::new(env.snapshot().await);
    let (addr, stop, serving) = serve_tcp(listener_arn, &plane).await;

    // No health checker runs: every target is initial, so NLB fails open to
    // all of them. 24 flows with distinct source ports land on both.
    for i in 0..24 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        echo_once(&mut s, format!("hello {i}").as_bytes())
            .await
            .unwrap();
        echo_once(&mut s, b"again").await.unwrap();
    }
    assert_eq!(
        count_a.load(Ordering::SeqCst) + count_b.load(Ordering::SeqCst),
        24
    );
    assert!(
        count_a.load(Ordering::SeqCst) > 0 && count_b.load(Ordering::SeqCst) > 0,
        "one target unused"
    );
    let counted: u64 = plane
        .stats
        .totals()
        .iter()
        .filter(|(k, _, _)| k.target_group_arn == tg)
        .map(|(_, n, _)| n)
        .sum();
    assert_eq!(counted, 24);

    // Healthy targets are preferred: mark b unhealthy, a healthy.
    let now = std::time::Instant::now();
    plane
        .health
        .set(key(&tg, port_a), TargetState::Healthy, now);
    plane
        .health
        .set(key(&tg, port_b), TargetState::Unhealthy, now);
    let before_b = count_b.load(Ordering::SeqCst);
    for _ in 0..8 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        echo_once(&mut s, b"healthy only").await.unwrap();
    }
    assert_eq!(
        count_b.load(Ordering::SeqCst),
        before_b,
        "an unhealthy target got a flow"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, serving).await.unwrap().unwrap();
    // The listening socket is closed.
    assert!(TcpStream::connect(addr).await.is_err());
    a.abort();
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_replies_reach_the_client_that_asked() {
    let env = Env::new();
    let (port_a, count_a, a) = udp_echo().await;
    let (port_b, count_b, b) = udp_echo().await;
    let (_tg, listener_arn) = env.nlb("UDP", &[port_a, port_b]).await;
    let plane = DataPlane::new(env.snapshot().await);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let serving = tokio::spawn(nlb::serve_udp(socket, listener_arn, plane.clone(), stop_rx));

    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    for round in 0..3 {
        for (i, c) in clients.iter().enumerate() {
            c.send_to(format!("client {i} round {round}").as_bytes(), addr)
                .await
                .unwrap();
        }
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 256];
            let (n, from) = tokio::time::timeout(WAIT, c.recv_from(&mut buf))
                .await
                .expect("no reply")
                .unwrap();
            assert_eq!(
                from, addr,
                "the reply must come from the listener's address"
            );
            assert_eq!(&buf[..n], format!("client {i} round {round}").as_bytes());
        }
    }
    assert_eq!(
        count_a.load(Ordering::SeqCst) + count_b.load(Ordering::SeqCst),
        24
    );
    assert!(
        count_a.load(Ordering::SeqCst) > 0 && count_b.load(Ordering::SeqCst) > 0,
        "one target unused"
    );
    // One flow per client.
    let flows: u64 = plane.stats.totals().iter().map(|(_, n, _)| n).sum();
    assert_eq!(flows, 8);

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, serving).await.unwrap().unwrap();
    a.abort();
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_closes_a_connection_only_after_the_delay() {
    let env = Env::new();
    let (port, _count, backend) = tcp_echo().await;
    let (tg, listener_arn) = env.nlb("TCP", &[port]).await;
    env.call(
        "ModifyTargetGroupAttributes",
        &[
            ("TargetGroupArn", &tg),
            (
                "Attributes.member.1.Key",
                "deregistration_delay.timeout_seconds",
            ),
            ("Attributes.member.1.Value", "3"),
        ],
    )
    .await;
    let plane = DataPlane::new(env.snapshot().await);
    let (addr, stop, serving) = serve_tcp(listener_arn, &plane).await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    echo_once(&mut s, b"before").await.unwrap();

    let deregistered = Instant::now();
    env.deregister(&tg, port).await;
    plane.install(env.snapshot().await);
    assert!(
        plane.snapshot().target_group(&tg).unwrap().targets[0]
            .draining_since_ms
            .is_some()
    );

    // The flow in flight keeps working while the target drains...
    echo_once(&mut s, b"while draining").await.unwrap();
    // ...and a new connection finds no target.
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(WAIT, fresh.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "a new flow reached a draining target");

    // Then the connection is closed, not before the delay has passed.
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            if echo_once(&mut s, b"ping").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the draining connection was never closed");
    assert!(
        deregistered.elapsed() >= Duration::from_secs(3),
        "closed before the deregistration delay"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, serving).await.unwrap().unwrap();
    backend.abort();
}

fn group(arn: &str, ports: &[u16], stickiness: Option<TargetStickiness>) -> TargetGroupConfig {
    TargetGroupConfig {
        arn: arn.into(),
        protocol: "TCP".into(),
        port: 80,
        target_type: "ip".into(),
        health_check: HealthCheck::defaults("TCP"),
        targets: ports
            .iter()
            .map(|p| TargetConfig {
                id: "127.0.0.1".into(),
                port: *p,
                addr: Some(SocketAddr::from(([127, 0, 0, 1], *p))),
                draining_since_ms: None,
            })
            .collect(),
        deregistration_delay: Duration::from_secs(300),
        slow_start: Duration::ZERO,
        algorithm: Algorithm::RoundRobin,
        stickiness,
    }
}

fn listener(groups: &[(&str, u32)]) -> ListenerConfig {
    ListenerConfig {
        arn: "l".into(),
        lb_arn: "lb".into(),
        lb_kind: LbKind::Network,
        protocol: ListenerProtocol::Tcp,
        port: 7000,
        certificates: Vec::new(),
        idle_timeout: Duration::from_secs(350),
        http2: false,
        rules: vec![RuleConfig {
            arn: "r".into(),
            priority: None,
            conditions: Vec::new(),
            action: ActionConfig::Forward {
                groups: groups.iter().map(|(a, w)| (a.to_string(), *w)).collect(),
                group_stickiness: None,
            },
        }],
    }
}

fn snapshot(groups: Vec<TargetGroupConfig>, l: ListenerConfig) -> Snapshot {
    Snapshot {
        listeners: vec![Arc::new(l)],
        target_groups: groups
            .into_iter()
            .map(|g| (g.arn.clone(), Arc::new(g)))
            .collect::<HashMap<_, _>>(),
    }
}

/// The target `snap`'s listener picks for a flow from `client` on each of
/// the source `ports`.
fn chosen(
    plane: &DataPlane,
    snap: &Snapshot,
    client: [u8; 4],
    ports: std::ops::Range<u16>,
) -> Vec<TargetKey> {
    ports
        .map(|p| {
            choose(
                plane,
                snap,
                &snap.listeners[0],
                SocketAddr::from((client, p)),
            )
            .unwrap()
            .key
        })
        .collect()
}

#[test]
fn weighted_groups_skip_zero_weight_and_source_ip_sticks() {
    let snap = snapshot(
        vec![group("g1", &[1, 2, 3], None), group("g2", &[10], None)],
        listener(&[("g1", 1), ("g2", 0)]),
    );
    let plane = DataPlane::new(Snapshot::default());
    let l = &snap.listeners[0];
    let mut used = HashSet::new();
    for port in 1000..1200u16 {
        let c = choose(&plane, &snap, l, SocketAddr::from(([10, 0, 0, 1], port))).unwrap();
        assert_eq!(
            c.key.target_group_arn, "g1",
            "a zero-weight group got a flow"
        );
        // One flow always lands on one target.
        let again = choose(&plane, &snap, l, SocketAddr::from(([10, 0, 0, 1], port))).unwrap();
        assert_eq!(c.key, again.key);
        used.insert(c.key.port);
    }
    assert_eq!(used.len(), 3, "flows should spread over every target");

    // Weights split flows between groups.
    let split = snapshot(
        vec![group("g1", &[1], None), group("g2", &[10], None)],
        listener(&[("g1", 1), ("g2", 1)]),
    );
    let groups: HashSet<String> = chosen(&plane, &split, [10, 0, 0, 1], 1000..1100)
        .into_iter()
        .map(|k| k.target_group_arn)
        .collect();
    assert_eq!(groups.len(), 2);

    // source_ip stickiness: every port of one client lands on one target.
    let sticky = snapshot(
        vec![group("g1", &[1, 2, 3], Some(TargetStickiness::SourceIp))],
        listener(&[("g1", 1)]),
    );
    let targets: HashSet<u16> = chosen(&plane, &sticky, [10, 0, 0, 7], 1000..1100)
        .into_iter()
        .map(|k| k.port)
        .collect();
    assert_eq!(targets.len(), 1);

    // No group weight at all: nowhere to go.
    let none = snapshot(vec![group("g1", &[1], None)], listener(&[("g1", 0)]));
    assert!(
        choose(
            &plane,
            &none,
            &none.listeners[0],
            SocketAddr::from(([10, 0, 0, 1], 1))
        )
        .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_terminates_and_forwards_plain_tcp() {
    let env = Env::new();
    let (port, count, backend) = tcp_echo().await;
    let (_tg, listener_arn) = env.nlb("TCP", &[port]).await;
    let plane = DataPlane::new(env.snapshot().await);
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path(), "nlb.test", "nlb.test");
    let acceptor = berth_lb::tls::acceptor(dir.path(), &[acm("nlb.test")]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let serving = tokio::spawn(nlb::serve_tls(
        listener,
        listener_arn,
        plane,
        acceptor,
        stop_rx,
    ));

    let (_, mut tls) = tokio::time::timeout(WAIT, tls_connect(addr, "nlb.test", &[cert], &[]))
        .await
        .unwrap()
        .unwrap();
    tls.write_all(b"over tls").await.unwrap();
    let mut back = [0u8; 8];
    tokio::time::timeout(WAIT, tls.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"over tls");
    // The backend saw one plain connection (an echo of TLS records would
    // not have decrypted to the message).
    assert_eq!(count.load(Ordering::SeqCst), 1);
    drop(tls);

    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, serving).await.unwrap().unwrap();
    backend.abort();
}

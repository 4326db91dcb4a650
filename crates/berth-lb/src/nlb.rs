//! Network Load Balancer forwarding: TCP streams (optionally TLS-terminated)
//! and UDP flows.
//!
//! A network listener has no rules: its default action forwards to one
//! target group, or to several by weight. Each new connection or flow reads
//! the snapshot once, picks a group and a target by a hash of the flow
//! (client address and port; client address only with `source_ip`
//! stickiness), so one flow always lands on one target, and keeps that
//! target until either side closes, the flow idles out, or the target has
//! been draining for the group's deregistration delay.
//!
//! Targets are chosen among the non-draining ones with an address that are
//! healthy (or whose group has checks disabled); when none is, NLB fails
//! open and uses every non-draining target.

use crate::health::stopped;
use crate::snapshot::{
    ActionConfig, ListenerConfig, Snapshot, TargetGroupConfig, TargetStickiness,
};
use crate::{DataPlane, TargetKey, TargetState};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// NLB's fixed idle timeout for TCP flows.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(350);

/// NLB's idle timeout for UDP flows.
pub const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a connection to a target may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take over the TLS handshake of a TLS listener.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After shutdown, how long TCP flows in flight may go on before they are
/// closed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often a flow looks at the snapshot to learn that its target started
/// draining (or left the group).
const DRAIN_POLL: Duration = Duration::from_secs(1);

const RELAY_BUFFER: usize = 16 * 1024;

/// The target one flow goes to.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub key: TargetKey,
    pub addr: SocketAddr,
}

fn flow_hash(salt: &str, ip: IpAddr, port: Option<u16>) -> u64 {
    // DefaultHasher::new() has fixed keys: the same flow hashes the same way
    // for the life of the process, which is all stickiness needs.
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
    ip.hash(&mut h);
    port.hash(&mut h);
    h.finish()
}

/// Pick the target of a new flow from `client` on `listener`: a group by
/// weight, then a routable target of it by flow hash. `None` when the
/// listener forwards nowhere or the group has no target with an address.
pub fn choose(
    plane: &DataPlane,
    snap: &Snapshot,
    listener: &ListenerConfig,
    client: SocketAddr,
) -> Option<Chosen> {
    // NLB listeners have only the default action (the last rule).
    let ActionConfig::Forward { groups, .. } = &listener.rules.last()?.action else {
        return None;
    };
    let total: u64 = groups.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut pick = flow_hash("group", client.ip(), Some(client.port())) % total;
    let mut group_arn = None;
    for (arn, weight) in groups {
        let w = u64::from(*weight);
        if pick < w {
            group_arn = Some(arn);
            break;
        }
        pick -= w;
    }
    let group = snap.target_group(group_arn?)?;
    choose_in_group(plane, group, client)
}

fn choose_in_group(
    plane: &DataPlane,
    group: &TargetGroupConfig,
    client: SocketAddr,
) -> Option<Chosen> {
    let live: Vec<_> = group
        .targets
        .iter()
        .filter(|t| t.draining_since_ms.is_none() && t.addr.is_some())
        .collect();
    let routable: Vec<_> = live
        .iter()
        .copied()
        .filter(|t| {
            matches!(
                plane.health.state(&group.key(t)),
                TargetState::Healthy | TargetState::Unavailable
            )
        })
        .collect();
    let candidates = if routable.is_empty() { live } else { routable };
    if candidates.is_empty() {
        return None;
    }
    let port = match group.stickiness {
        Some(TargetStickiness::SourceIp) => None,
        _ => Some(client.port()),
    };
    let target =
        candidates[(flow_hash("target", client.ip(), port) % candidates.len() as u64) as usize];
    Some(Chosen {
        key: group.key(target),
        addr: target.addr?,
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Resolves when the flow to `key` must end: the target has been draining
/// for its group's deregistration delay, or it (or its group) is gone.
async fn until_drained(plane: Arc<DataPlane>, key: TargetKey) {
    let mut tick = tokio::time::interval(DRAIN_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snap = plane.snapshot();
        let Some(group) = snap.target_group(&key.target_group_arn) else {
            return;
        };
        let Some(target) = group
            .targets
            .iter()
            .find(|t| t.id == key.id && t.port == key.port)
        else {
            return;
        };
        if let Some(since) = target.draining_since_ms {
            let deadline = since.saturating_add(group.deregistration_delay.as_millis() as u64);
            if now_ms() >= deadline {
                tracing::debug!(target_group = %key.target_group_arn, id = %key.id, port = key.port, "closing a flow to a drained target");
                return;
            }
        }
    }
}

/// Keeps a target's in-flight count up while a flow lives.
struct InFlight(Arc<crate::stats::TargetCounters>);

impl InFlight {
    fn start(plane: &DataPlane, key: &TargetKey) -> InFlight {
        let c = plane.stats.target(key);
        c.connections.fetch_add(1, Ordering::Relaxed);
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(c)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Milliseconds since `origin`, for an idle clock shared by two directions.
fn elapsed_ms(origin: Instant) -> u64 {
    origin.elapsed().as_millis() as u64
}

/// One direction of a relay; touches `last` on every chunk. A clean EOF
/// half-closes the other side; an error ends the whole relay.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    origin: Instant,
    last: &AtomicU64,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
        last.store(elapsed_ms(origin), Ordering::Relaxed);
    }
}

/// Copy both ways until both sides closed, one failed, nothing moved for
/// `idle`, or `stop` resolves.
async fn relay<C>(
    client: C,
    upstream: TcpStream,
    idle: Duration,
    stop: impl std::future::Future<Output = ()>,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let origin = Instant::now();
    let last = AtomicU64::new(0);
    let (cr, cw) = tokio::io::split(client);
    let (ur, uw) = upstream.into_split();
    let both = async { tokio::try_join!(pump(cr, uw, origin, &last), pump(ur, cw, origin, &last)) };
    let idle_out = async {
        loop {
            let quiet = Duration::from_millis(
                elapsed_ms(origin).saturating_sub(last.load(Ordering::Relaxed)),
            );
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    };
    tokio::select! {
        _ = both => {}
        _ = idle_out => tracing::debug!("closing an idle flow"),
        _ = stop => {}
    }
}

async fn handle_stream<C>(client: C, peer: SocketAddr, listener_arn: &str, plane: Arc<DataPlane>)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let chosen = {
        let snap = plane.snapshot();
        let Some(listener) = snap.listeners.iter().find(|l| l.arn == listener_arn) else {
            return;
        };
        choose(&plane, &snap, listener, peer)
    };
    let Some(chosen) = chosen else {
        tracing::debug!(listener = %listener_arn, %peer, "no target for a new connection");
        return;
    };
    let _flight = InFlight::start(&plane, &chosen.key);
    let upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(chosen.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(target = %chosen.addr, error = %e, "connecting to a target");
                return;
            }
            Err(_) => {
                tracing::debug!(target = %chosen.addr, "connecting to a target timed out");
                return;
            }
        };
    let _ = upstream.set_nodelay(true);
    relay(
        client,
        upstream,
        TCP_IDLE_TIMEOUT,
        until_drained(plane.clone(), chosen.key.clone()),
    )
    .await;
}

/// Serve a TCP listener until `shutdown`: each connection is relayed to a
/// target of the listener's group. On shutdown the socket closes at once
/// and flows in flight get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve_tcp(
    listener: TcpListener,
    listener_arn: String,
    plane: Arc<DataPlane>,
    shutdown: watch::Receiver<bool>,
) {
    serve_stream(listener, listener_arn, plane, None, shutdown).await;
}

/// Serve a TLS listener: the TLS session ends here (with the listener's
/// certificates in `acceptor`) and the plain stream goes to the target,
/// as NLB does for a TLS listener with a TCP target group.
pub async fn serve_tls(
    listener: TcpListener,
    listener_arn: String,
    plane: Arc<DataPlane>,
    acceptor: tokio_rustls::TlsAcceptor,
    shutdown: watch::Receiver<bool>,
) {
    serve_stream(listener, listener_arn, plane, Some(acceptor), shutdown).await;
}

async fn serve_stream(
    listener: TcpListener,
    listener_arn: String,
    plane: Arc<DataPlane>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let arn: Arc<str> = Arc::from(listener_arn);
    let mut flows = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (arn, plane, tls) = (arn.clone(), plane.clone(), tls.clone());
                    flows.spawn(async move {
                        match tls {
                            None => handle_stream(stream, peer, &arn, plane).await,
                            Some(acceptor) => {
                                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                    Ok(Ok(s)) => handle_stream(s, peer, &arn, plane).await,
                                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %arn, error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = flows.join_next(), if !flows.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while flows.join_next().await.is_some() {}
    })
    .await;
    flows.shutdown().await;
}

/// One client's UDP flow: its own connected socket to the target.
struct Flow {
    id: u64,
    upstream: Arc<UdpSocket>,
    /// Milliseconds since the flow table's origin of the last datagram
    /// either way.
    last: Arc<AtomicU64>,
}

type FlowTable = Arc<Mutex<HashMap<SocketAddr, Flow>>>;

fn lock(flows: &FlowTable) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Flow>> {
    // Inserts and removes are whole; a poisoned table is still consistent.
    flows.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serve a UDP listener until `shutdown`: each client address is a flow
/// with its own connected socket to one target; the target's replies go
/// back to the client from the listener's socket. A flow ends after
/// [`UDP_IDLE_TIMEOUT`] without datagrams or when its target has drained.
pub async fn serve_udp(
    socket: UdpSocket,
    listener_arn: String,
    plane: Arc<DataPlane>,
    mut shutdown: watch::Receiver<bool>,
) {
    let socket = Arc::new(socket);
    let flows: FlowTable = Arc::new(Mutex::new(HashMap::new()));
    let origin = Instant::now();
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            received = socket.recv_from(&mut buf) => {
                let (n, client) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(listener = %listener_arn, error = %e, "receiving a datagram");
                        continue;
                    }
                };
                let existing = lock(&flows).get(&client).map(|f| (f.upstream.clone(), f.last.clone()));
                if let Some((upstream, last)) = existing {
                    last.store(elapsed_ms(origin), Ordering::Relaxed);
                    let _ = upstream.send(&buf[..n]).await;
                    continue;
                }
                let chosen = {
                    let snap = plane.snapshot();
                    snap.listeners.iter().find(|l| l.arn == listener_arn).and_then(|l| choose(&plane, &snap, l, client))
                };
                let Some(chosen) = chosen else {
                    tracing::debug!(listener = %listener_arn, %client, "no target for a new flow");
                    continue;
                };
                let local: SocketAddr = match chosen.addr {
                    SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
                    SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
                };
                let upstream = match UdpSocket::bind(local).await {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::warn!(error = %e, "binding a UDP flow socket");
                        continue;
                    }
                };
                if let Err(e) = upstream.connect(chosen.addr).await {
                    tracing::debug!(target = %chosen.addr, error = %e, "connecting a UDP flow");
                    continue;
                }
                let upstream = Arc::new(upstream);
                let last = Arc::new(AtomicU64::new(elapsed_ms(origin)));
                next_id += 1;
                lock(&flows).insert(client, Flow { id: next_id, upstream: upstream.clone(), last: last.clone() });
                let _ = upstream.send(&buf[..n]).await;
                let flight = InFlight::start(&plane, &chosen.key);
                let reply = UdpReply { socket: socket.clone(), upstream, client, last, origin, flows: flows.clone(), id: next_id };
                let drained = until_drained(plane.clone(), chosen.key);
                tasks.spawn(async move {
                    let _flight = flight;
                    reply.run(drained).await;
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
    lock(&flows).clear();
}

/// The return path of one UDP flow.
struct UdpReply {
    socket: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    last: Arc<AtomicU64>,
    origin: Instant,
    flows: FlowTable,
    id: u64,
}

impl UdpReply {
    async fn run(self, drained: impl std::future::Future<Output = ()>) {
        tokio::pin!(drained);
        let mut buf = vec![0u8; 65_536];
        loop {
            let quiet = Duration::from_millis(
                elapsed_ms(self.origin).saturating_sub(self.last.load(Ordering::Relaxed)),
            );
            if quiet >= UDP_IDLE_TIMEOUT {
                break;
            }
            tokio::select! {
                received = self.upstream.recv(&mut buf) => match received {
                    Ok(n) => {
                        self.last.store(elapsed_ms(self.origin), Ordering::Relaxed);
                        let _ = self.socket.send_to(&buf[..n], self.client).await;
                    }
                    // An ICMP error from the target (port unreachable)
                    // surfaces once on the connected socket; the flow stays.
                    Err(e) => tracing::debug!(client = %self.client, error = %e, "UDP flow"),
                },
                _ = tokio::time::sleep(UDP_IDLE_TIMEOUT - quiet) => {}
                _ = &mut drained => break,
            }
        }
        let mut flows = lock(&self.flows);
        if flows.get(&self.client).is_some_and(|f| f.id == self.id) {
            flows.remove(&self.client);
        }
    }
}

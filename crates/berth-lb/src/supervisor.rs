//! The shell that makes the ELBv2 records real.
//!
//! [`run`] watches the store under `elbv2/`, and on every change of a state
//! record (and every [`LbOptions::rebuild_interval`], so instance addresses
//! and draining expiries are picked up) loads every
//! `elbv2/{account}/{region}/state`, builds one [`Snapshot`] and installs it
//! if it differs from the one in force. Then it reconciles sockets: each
//! (port, transport) of the snapshot's listeners gets a socket bound on
//! [`LbOptions::bind`] and a task serving it; a listener that went away or
//! changed its protocol or certificates has its task told to stop (requests
//! and connections in flight finish) and, if still wanted, a new one bound.
//! Rule and target changes only swap the snapshot: sockets stay, nothing is
//! dropped. A port that cannot be bound (in use, no permission) is logged
//! and retried on every rebuild without holding up the other listeners.
//!
//! Beside it run the health checker ([`crate::health::run`]) and the
//! metrics writer, which persists request counts per target group and
//! target into `elbv2/{account}/{region}/metrics` whenever they changed.

use crate::health::{account_region, stopped};
use crate::snapshot::{AddressResolver, ListenerProtocol, Snapshot};
use crate::{DataPlane, alb, health, nlb, tls};
use berth_elbv2::model::State;
use berth_store::{Store, StoreError, Txn, TxnOutcome, WatchEventKind};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where and how the data plane serves.
#[derive(Debug, Clone)]
pub struct LbOptions {
    /// The address every listener binds (ELB's load balancers all share
    /// this host's address; the listener port tells them apart).
    pub bind: IpAddr,
    /// Where HTTPS and TLS listeners find `NAME.pem` for the certificate
    /// `arn:aws:acm:...:certificate/NAME`.
    pub cert_dir: PathBuf,
    /// How often the snapshot is rebuilt without a store change, and a
    /// failed bind retried.
    pub rebuild_interval: Duration,
    /// How often request counts are persisted (when they changed).
    pub metrics_interval: Duration,
}

impl Default for LbOptions {
    fn default() -> Self {
        LbOptions {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            cert_dir: PathBuf::from("certificates"),
            rebuild_interval: Duration::from_secs(2),
            metrics_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("metrics record {0} kept changing under us")]
    Conflict(String),
}

const MAX_CONFLICT_RETRIES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Transport {
    Tcp,
    Udp,
}

/// What one bound socket serves. A change restarts its task.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Serving {
    Http,
    /// Certificates, and whether ALPN offers h2 (`routing.http2.enabled`);
    /// a change of either rebinds.
    Https(Vec<String>, bool),
    Tcp,
    Tls(Vec<String>),
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    listener_arn: String,
    serving: Serving,
}

struct Running {
    wanted: Wanted,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The sockets each (port, transport) of `snap` needs. Two load balancers
/// may both listen on one port in ELB (each has its own address); here they
/// share one address, so the first listener (by port, then protocol) wins
/// and the others are logged.
fn wanted_sockets(snap: &Snapshot) -> BTreeMap<(u16, Transport), Wanted> {
    let mut out = BTreeMap::new();
    for l in &snap.listeners {
        let mut add = |transport, serving| {
            let key = (l.port, transport);
            if let Some(w) = out.get(&key) {
                let w: &Wanted = w;
                if w.listener_arn != l.arn {
                    tracing::warn!(port = l.port, listener = %l.arn, holder = %w.listener_arn, "port already served by another listener; ignoring this one");
                }
                return;
            }
            out.insert(
                key,
                Wanted {
                    listener_arn: l.arn.clone(),
                    serving,
                },
            );
        };
        match l.protocol {
            ListenerProtocol::Http => add(Transport::Tcp, Serving::Http),
            ListenerProtocol::Https => add(Transport::Tcp, Serving::Https(l.certificates.clone(), l.http2)),
            ListenerProtocol::Tcp => add(Transport::Tcp, Serving::Tcp),
            ListenerProtocol::Tls => add(Transport::Tcp, Serving::Tls(l.certificates.clone())),
            ListenerProtocol::Udp => add(Transport::Udp, Serving::Udp),
            ListenerProtocol::TcpUdp => {
                add(Transport::Tcp, Serving::Tcp);
                add(Transport::Udp, Serving::Udp);
            }
        }
    }
    out
}

fn same_snapshot(a: &Snapshot, b: &Snapshot) -> bool {
    a.listeners == b.listeners && a.target_groups == b.target_groups
}

/// `elbv2/{account}/{region}/state` → (account, region).
fn state_key_parts(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("elbv2/")?.strip_suffix("/state")?;
    let (account, region) = rest.split_once('/')?;
    (!region.contains('/')).then_some((account, region))
}

struct Supervisor {
    store: Arc<dyn Store>,
    plane: Arc<DataPlane>,
    resolver: Arc<dyn AddressResolver>,
    options: LbOptions,
    /// Decoded state records by key, with the revision they were read at.
    states: BTreeMap<String, (u64, State)>,
    running: HashMap<(u16, Transport), Running>,
    /// Tasks told to stop that may still be finishing requests.
    stopping: Vec<JoinHandle<()>>,
    /// The last bind error per socket, so a retry that fails the same way
    /// is not logged again every rebuild.
    bind_errors: HashMap<(u16, Transport), String>,
}

impl Supervisor {
    /// Re-read every state record (decoding only those that changed).
    async fn load_states(&mut self) -> Result<(), StoreError> {
        let items = berth_store::list_all(self.store.as_ref(), "elbv2/").await?;
        let mut next = BTreeMap::new();
        for (key, v) in items {
            if state_key_parts(&key).is_none() {
                continue;
            }
            if let Some((rev, state)) = self
                .states
                .remove(&key)
                .filter(|(rev, _)| *rev == v.mod_revision)
            {
                next.insert(key, (rev, state));
                continue;
            }
            match serde_json::from_slice::<State>(&v.value) {
                Ok(state) => {
                    next.insert(key, (v.mod_revision, state));
                }
                Err(e) => {
                    tracing::warn!(%key, error = %e, "undecodable ELBv2 state record; skipped")
                }
            }
        }
        self.states = next;
        Ok(())
    }

    async fn rebuild(&mut self) {
        if let Err(e) = self.load_states().await {
            // Keep serving the configuration in force; the next rebuild retries.
            tracing::warn!(error = %e, "reading the ELBv2 records");
        }
        let snap = Snapshot::build(self.states.values().map(|(_, s)| s), self.resolver.as_ref());
        if !same_snapshot(&snap, &self.plane.snapshot()) {
            tracing::debug!(
                listeners = snap.listeners.len(),
                target_groups = snap.target_groups.len(),
                "installing a new load balancer configuration"
            );
            self.plane.stats.retain(|k| {
                snap.target_group(&k.target_group_arn)
                    .is_some_and(|g| g.targets.iter().any(|t| t.id == k.id && t.port == k.port))
            });
            self.plane.install(snap);
        }
        self.reconcile_sockets().await;
    }

    async fn reconcile_sockets(&mut self) {
        let snap = self.plane.snapshot();
        let wanted = wanted_sockets(&snap);
        let stale: Vec<(u16, Transport)> = self
            .running
            .iter()
            .filter(|(k, r)| wanted.get(k) != Some(&r.wanted) || r.task.is_finished())
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            if let Some(r) = self.running.remove(&key) {
                tracing::info!(port = key.0, transport = ?key.1, listener = %r.wanted.listener_arn, "closing listener socket");
                let _ = r.stop.send(true);
                self.stopping.push(r.task);
            }
        }
        self.stopping.retain(|t| !t.is_finished());
        self.bind_errors.retain(|k, _| wanted.contains_key(k));
        for (key, w) in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            match self.start(key, &w).await {
                Ok(running) => {
                    tracing::info!(port = key.0, transport = ?key.1, listener = %w.listener_arn, "listening");
                    self.bind_errors.remove(&key);
                    self.running.insert(key, running);
                }
                Err(e) => {
                    if self.bind_errors.get(&key) != Some(&e) {
                        tracing::warn!(port = key.0, transport = ?key.1, listener = %w.listener_arn, error = %e, "cannot serve listener; retrying");
                    }
                    self.bind_errors.insert(key, e);
                }
            }
        }
    }

    /// Bind the socket of one listener and start serving it.
    async fn start(
        &self,
        (port, transport): (u16, Transport),
        w: &Wanted,
    ) -> Result<Running, String> {
        let addr = SocketAddr::new(self.options.bind, port);
        let (stop, stop_rx) = watch::channel(false);
        let plane = self.plane.clone();
        let arn = w.listener_arn.clone();
        let task = match (&w.serving, transport) {
            (Serving::Udp, _) => {
                let socket = tokio::net::UdpSocket::bind(addr)
                    .await
                    .map_err(|e| format!("binding udp {addr}: {e}"))?;
                tokio::spawn(nlb::serve_udp(socket, arn, plane, stop_rx))
            }
            (serving, _) => {
                let tls = match serving {
                    Serving::Https(certs, http2) => Some(
                        tls::acceptor_with(&self.options.cert_dir, certs, *http2)
                            .map_err(|e| format!("certificates: {e}"))?,
                    ),
                    Serving::Tls(certs) => Some(
                        tls::acceptor(&self.options.cert_dir, certs)
                            .map_err(|e| format!("certificates: {e}"))?,
                    ),
                    _ => None,
                };
                let listener = bind_tcp(addr).map_err(|e| format!("binding tcp {addr}: {e}"))?;
                match (serving, tls) {
                    (Serving::Http | Serving::Https(..), tls) => {
                        tokio::spawn(alb::serve(listener, arn, plane, tls, stop_rx))
                    }
                    (_, Some(acceptor)) => {
                        tokio::spawn(nlb::serve_tls(listener, arn, plane, acceptor, stop_rx))
                    }
                    (_, None) => tokio::spawn(nlb::serve_tcp(listener, arn, plane, stop_rx)),
                }
            }
        };
        Ok(Running {
            wanted: w.clone(),
            stop,
            task,
        })
    }

    async fn shutdown(mut self) {
        for (_, r) in self.running.drain() {
            let _ = r.stop.send(true);
            self.stopping.push(r.task);
        }
        for task in self.stopping {
            let _ = task.await;
        }
    }
}

/// A listening TCP socket with SO_REUSEADDR, so a port whose previous
/// listener left connections in TIME_WAIT can be bound again at once (a
/// port with a live listener still fails).
fn bind_tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Run the data plane until `shutdown`: follow the ELBv2 records, serve
/// their listeners, check target health, persist request counts. Returns
/// once every listener task has finished.
pub async fn run(
    store: Arc<dyn Store>,
    plane: Arc<DataPlane>,
    resolver: Arc<dyn AddressResolver>,
    options: LbOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    // Watch before the first read, so no change falls in between.
    let mut watch = Some(store.watch("elbv2/"));
    let health = tokio::spawn(health::run(store.clone(), plane.clone(), shutdown.clone()));
    let metrics = tokio::spawn(metrics_loop(
        store.clone(),
        plane.clone(),
        options.metrics_interval,
        shutdown.clone(),
    ));
    let rebuild_interval = options.rebuild_interval.max(Duration::from_millis(10));
    let mut sup = Supervisor {
        store,
        plane,
        resolver,
        options,
        states: BTreeMap::new(),
        running: HashMap::new(),
        stopping: Vec::new(),
        bind_errors: HashMap::new(),
    };
    sup.rebuild().await;
    let mut tick = tokio::time::interval(rebuild_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    loop {
        let next_event = async {
            match watch.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            _ = tick.tick() => sup.rebuild().await,
            ev = next_event => match ev {
                None => {
                    tracing::warn!("the store closed its watch; following ELBv2 changes by polling only");
                    watch = None;
                }
                // Health and metrics records change often and mean nothing here.
                Some(ev) if ev.kind != WatchEventKind::Lagged && state_key_parts(&ev.key).is_none() => {}
                Some(_) => {
                    sup.rebuild().await;
                    tick.reset();
                }
            },
        }
    }
    sup.shutdown().await;
    let _ = health.await;
    let _ = metrics.await;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

type RegionKey = (String, String);

/// Per target group: (requests, requests per `id:port`).
type GroupCounts = BTreeMap<String, (u64, BTreeMap<String, u64>)>;

/// `targetGroups` of each region's metrics record, from the counters.
fn metrics_by_region(plane: &DataPlane) -> BTreeMap<RegionKey, serde_json::Value> {
    let mut by_region: BTreeMap<RegionKey, GroupCounts> = BTreeMap::new();
    for (key, requests, _) in plane.stats.totals() {
        let Some(region) = account_region(&key.target_group_arn) else {
            continue;
        };
        let group = by_region
            .entry(region)
            .or_default()
            .entry(key.target_group_arn.clone())
            .or_default();
        group.0 += requests;
        *group
            .1
            .entry(format!("{}:{}", key.id, key.port))
            .or_default() += requests;
    }
    by_region
        .into_iter()
        .map(|(region, groups)| {
            let groups: serde_json::Map<String, serde_json::Value> = groups
                .into_iter()
                .map(|(arn, (total, targets))| {
                    (
                        arn,
                        serde_json::json!({ "requestCount": total, "targets": targets }),
                    )
                })
                .collect();
            (region, serde_json::Value::Object(groups))
        })
        .collect()
}

async fn write_metrics(
    store: &dyn Store,
    region: &RegionKey,
    groups: &serde_json::Value,
) -> Result<(), SupervisorError> {
    let key = format!("elbv2/{}/{}/metrics", region.0, region.1);
    let value = serde_json::json!({ "targetGroups": groups, "updatedMs": now_ms() });
    // A JSON value always serializes.
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    for _ in 0..MAX_CONFLICT_RETRIES {
        let rev = store.get(&key).await?.map(|v| v.mod_revision);
        if let TxnOutcome::Committed { .. } = store
            .txn(Txn::new().require(&key, rev).put(&key, bytes.clone()))
            .await?
        {
            return Ok(());
        }
    }
    Err(SupervisorError::Conflict(key))
}

/// Persist request counts every `every`, for the regions whose counts
/// changed since the last write.
async fn metrics_loop(
    store: Arc<dyn Store>,
    plane: Arc<DataPlane>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut written: BTreeMap<RegionKey, serde_json::Value> = BTreeMap::new();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        let mut current = metrics_by_region(&plane);
        // A region whose counters all went away is written once, empty.
        for region in written.keys() {
            current
                .entry(region.clone())
                .or_insert_with(|| serde_json::json!({}));
        }
        for (region, groups) in current {
            if written.get(&region) == Some(&groups) {
                continue;
            }
            match write_metrics(store.as_ref(), &region, &groups).await {
                Ok(()) => {
                    written.insert(region, groups);
                }
                Err(e) => {
                    tracing::warn!(account = %region.0, region = %region.1, error = %e, "writing load balancer metrics")
                }
            }
        }
    }
}

//! The Application Load Balancer's HTTP data plane: one accept loop per
//! listener, each connection served as HTTP/1.1 or HTTP/2 (h2c with prior
//! knowledge, h2 by ALPN over TLS), each request routed by the listener's
//! rules and answered by its action.
//!
//! Every request reads the snapshot once, so a configuration change never
//! splits a request. Forwarded requests go over one pooled keep-alive
//! HTTP/1.1 client per listener with bodies streamed both ways; the
//! request/response headers are rewritten as ALB does (hop-by-hop headers
//! removed, `X-Forwarded-*` and `X-Amzn-Trace-Id` added). Failures are
//! answered with ALB's own status codes and HTML pages, so clients and
//! monitoring see what they would see on AWS.

use crate::balance::{self, Balancer};
use crate::routing::{self, RequestFacts};
use crate::snapshot::{
    ActionConfig, ListenerConfig, Snapshot, TargetGroupConfig, TargetStickiness,
};
use crate::stats::TargetCounters;
use crate::{DataPlane, TargetKey};
use arc_swap::ArcSwap;
use berth_elbv2::model::Redirect;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the listener answers with.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// ELB gives up on a target connection after 10 s (then answers 504).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS client that does not finish its handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream keep-alive connections idle this long are closed by us first.
const POOL_IDLE: Duration = Duration::from_secs(50);
/// ELB's default `idle_timeout.timeout_seconds`.
const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// The listener's idle timeout within ELB's range (1 to 4000 s), so no
/// deadline computed from it can overflow.
fn idle_timeout(l: &ListenerConfig) -> Duration {
    l.idle_timeout
        .clamp(Duration::from_secs(1), Duration::from_secs(4000))
}

/// `now + d` for a cookie's Expires; an absurd duration saturates instead
/// of overflowing.
fn expiry(now: SystemTime, d: Duration) -> SystemTime {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(10 * 365 * 86_400)))
        .unwrap_or(now)
}
/// Bound on how long shutdown waits for requests in flight, so a stuck
/// stream cannot keep a removed listener alive forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(300);

/// One listener's shared state.
struct Shared {
    plane: Arc<DataPlane>,
    listener_arn: String,
    https: bool,
    pool: Arc<Pool>,
    balancer: Arc<Balancer>,
    /// The listener's configuration prepared for the request path, rebuilt
    /// when the snapshot changes.
    prepared: ArcSwap<Prepared>,
}

/// What one request needs from the configuration, computed once per
/// snapshot instead of once per request: the listener, each forward
/// action's target groups with their targets' health keys, counters,
/// cookie values and round-robin rotations.
struct Prepared {
    snap: Arc<Snapshot>,
    listener: Option<Arc<ListenerConfig>>,
    /// Per rule of `listener` (same index): a forward action's groups and
    /// weights (`None` for a group missing from the snapshot); empty for
    /// other actions.
    rules: Vec<Vec<(Option<Arc<PreparedGroup>>, u32)>>,
    /// `X-Forwarded-Port`.
    port: HeaderValue,
}

struct PreparedGroup {
    config: Arc<TargetGroupConfig>,
    /// The `AWSALBTG` value naming this group.
    cookie: String,
    rotation: Arc<AtomicUsize>,
    /// Same order as `config.targets`.
    targets: Vec<PreparedTarget>,
}

struct PreparedTarget {
    key: TargetKey,
    counters: Arc<TargetCounters>,
    /// The `AWSALB` / `AWSALBAPP-0` value naming this target.
    cookie: String,
}

impl Prepared {
    fn build(shared_arn: &str, plane: &DataPlane, balancer: &Balancer) -> Prepared {
        let snap = plane.snapshot();
        let listener = snap.listeners.iter().find(|l| l.arn == shared_arn).cloned();
        let mut groups: HashMap<&str, Arc<PreparedGroup>> = HashMap::new();
        let mut rules = Vec::new();
        for rule in listener.iter().flat_map(|l| &l.rules) {
            let ActionConfig::Forward { groups: wanted, .. } = &rule.action else {
                rules.push(Vec::new());
                continue;
            };
            let prepared = wanted
                .iter()
                .map(|(arn, weight)| {
                    let g = snap.target_group(arn).map(|config| {
                        groups
                            .entry(config.arn.as_str())
                            .or_insert_with(|| Arc::new(prepare_group(config, plane, balancer)))
                            .clone()
                    });
                    (g, *weight)
                })
                .collect();
            rules.push(prepared);
        }
        let port = listener.as_ref().map_or(0, |l| l.port);
        Prepared {
            port: HeaderValue::from(port),
            snap,
            listener,
            rules,
        }
    }
}

fn prepare_group(
    config: &Arc<TargetGroupConfig>,
    plane: &DataPlane,
    balancer: &Balancer,
) -> PreparedGroup {
    PreparedGroup {
        cookie: balance::group_cookie_value(&config.arn),
        rotation: balancer.rotation(&config.arn),
        targets: config
            .targets
            .iter()
            .map(|t| {
                let key = config.key(t);
                PreparedTarget {
                    counters: plane.stats.target(&key),
                    cookie: balance::target_cookie_value(&key),
                    key,
                }
            })
            .collect(),
        config: config.clone(),
    }
}

impl Shared {
    /// The prepared configuration in force now.
    fn prepared(&self) -> Arc<Prepared> {
        let current = self.prepared.load_full();
        if self.plane.is_current(&current.snap) {
            return current;
        }
        let next = Arc::new(Prepared::build(
            &self.listener_arn,
            &self.plane,
            &self.balancer,
        ));
        self.prepared.store(next.clone());
        next
    }
}

/// The load balancer's own threads: one current-thread runtime per core
/// (`BERTH_LB_THREADS` overrides the count), started on first use and
/// shared by every listener. A client connection lives on one of them with
/// that thread's pool of target connections: the model of HAProxy and
/// nginx, without work stealing or hand-offs between threads on the
/// request path.
fn lb_runtimes() -> &'static [tokio::runtime::Handle] {
    static RUNTIMES: OnceLock<Vec<tokio::runtime::Handle>> = OnceLock::new();
    RUNTIMES.get_or_init(|| {
        let n = std::env::var("BERTH_LB_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        (0..n)
            .filter_map(|i| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                let handle = rt.handle().clone();
                std::thread::Builder::new()
                    .name(format!("berth-lb-{i}"))
                    .spawn(move || rt.block_on(std::future::pending::<()>()))
                    .ok()?;
                Some(handle)
            })
            .collect()
    })
}

/// Serve `listener` until `*shutdown` becomes true (or its sender is
/// dropped, which means nobody can stop this listener any more): then stop
/// accepting, let requests in flight finish, and return. Connections are
/// accepted here and dealt round robin to the load balancer threads
/// ([`lb_runtimes`]), each with its own pool of target connections.
pub async fn serve(
    listener: TcpListener,
    listener_arn: String,
    plane: Arc<DataPlane>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let balancer = Arc::new(Balancer::default());
    let https = tls.is_some();
    let new_shared = || {
        Arc::new(Shared {
            prepared: ArcSwap::from_pointee(Prepared::build(&listener_arn, &plane, &balancer)),
            plane: plane.clone(),
            listener_arn: listener_arn.clone(),
            https,
            pool: Arc::new(Pool::default()),
            balancer: balancer.clone(),
        })
    };
    // (runtime, its share of the listener); `None`: the caller's runtime.
    let workers: Vec<(Option<tokio::runtime::Handle>, Arc<Shared>)> = match lb_runtimes() {
        [] => vec![(None, new_shared())],
        rts => rts
            .iter()
            .map(|rt| (Some(rt.clone()), new_shared()))
            .collect(),
    };
    let graceful = GracefulShutdown::new();
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    let mut prune = tokio::time::interval(POOL_PRUNE);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = 0usize;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = prune.tick() => for (_, shared) in &workers {
                shared.pool.prune();
            },
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (rt, shared) = &workers[next % workers.len()];
                    next = next.wrapping_add(1);
                    let conn_shared = shared.clone();
                    let (tls, watcher) = (tls.clone(), graceful.watcher());
                    match rt {
                        // The stream moves to the thread that serves it.
                        Some(rt) => match stream.into_std() {
                            Ok(std_stream) => {
                                rt.spawn(async move {
                                    if let Ok(stream) = TcpStream::from_std(std_stream) {
                                        connection(conn_shared, stream, peer, tls, watcher).await;
                                    }
                                });
                            }
                            Err(e) => tracing::debug!(%peer, error = %e, "accepted connection lost"),
                        },
                        None => {
                            tokio::spawn(connection(conn_shared, stream, peer, tls, watcher));
                        }
                    }
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of
                    // spinning.
                    tracing::warn!(listener = %listener_arn, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = %listener_arn, "requests still in flight after the shutdown grace period");
    }
    for (_, shared) in &workers {
        shared.pool.clear();
    }
}

/// One client connection: optional TLS, then HTTP/1.1 or HTTP/2.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    let (http2_allowed, idle) = {
        let prepared = shared.prepared();
        let l = prepared.listener.as_deref();
        (
            l.is_none_or(|l| l.http2),
            l.map_or(DEFAULT_IDLE, idle_timeout),
        )
    };
    // The client's address as X-Forwarded-For carries it, formatted once
    // per connection.
    let client = Arc::new(Client {
        peer,
        ip: HeaderValue::try_from(peer.ip().to_canonical().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("")),
    });
    let svc_shared = shared.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        let client = client.clone();
        async move { Ok::<_, Infallible>(handle(&shared, &client, req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's header read timeout also runs while a keep-alive connection
    // waits for its next request: ALB's client idle timeout.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle);
    builder.http2().timer(TokioTimer::new());
    let result = match tls {
        None => {
            let builder = if http2_allowed {
                builder
            } else {
                builder.http1_only()
            };
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned(),
                )
                .await
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            // ALPN decided the protocol; serve exactly that one.
            let builder = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => builder.http2_only(),
                Some(_) => builder.http1_only(),
                None if !http2_allowed => builder.http1_only(),
                None => builder,
            };
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned(),
                )
                .await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "client connection ended with an error");
    }
}

/// The client end of a connection.
struct Client {
    peer: SocketAddr,
    /// `peer`'s address, IPv4-mapped addresses as IPv4, as a header value.
    ip: HeaderValue,
}

/// One request, start to end. Never fails: every problem is an ALB page.
async fn handle(shared: &Shared, client: &Client, req: Request<Incoming>) -> Response<ProxyBody> {
    let prepared = shared.prepared();
    let Some(listener) = prepared.listener.as_deref() else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let rule = {
        let facts = RequestFacts {
            method: req.method().as_str(),
            host: request_host(&req),
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers(),
            source_ip: client.peer.ip(),
        };
        routing::select_rule_index(listener, &facts)
    };
    let Some((index, rule)) = rule.and_then(|i| Some((i, listener.rules.get(i)?))) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    match &rule.action {
        ActionConfig::FixedResponse {
            status,
            content_type,
            body,
        } => fixed_response(*status, content_type.as_deref(), body.as_deref()),
        ActionConfig::Redirect(r) => {
            let location = redirect_location(
                r,
                shared.https,
                request_host(&req),
                listener.port,
                req.uri(),
            );
            redirect_response(&r.status_code, &location)
        }
        ActionConfig::Forward {
            group_stickiness, ..
        } => {
            let groups = prepared.rules.get(index).map_or(&[][..], Vec::as_slice);
            forward(
                shared,
                &prepared,
                listener,
                groups,
                *group_stickiness,
                client,
                req,
            )
            .await
        }
    }
}

/// The Host header, or the authority of the URI (HTTP/2's `:authority`).
fn request_host(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
}

/// Decrements a target's in-flight count when the request is over however
/// it ends (answered, failed, or the client went away mid-stream).
struct InFlight(Arc<TargetCounters>);

impl InFlight {
    fn start(counters: Arc<TargetCounters>) -> Self {
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        counters.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(counters)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn forward(
    shared: &Shared,
    prepared: &Prepared,
    listener: &ListenerConfig,
    groups: &[(Option<Arc<PreparedGroup>>, u32)],
    group_stickiness: Option<Duration>,
    client: &Client,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let group_gi = match groups {
        // One group: nothing to draw (a weight of 0 still means none).
        [(_, w)] => (*w > 0).then_some(0),
        _ => {
            let cookies = request_cookies(req.headers());
            let sticky = group_stickiness.and(cookie(&cookies, "AWSALBTG"));
            let arns: Vec<(String, u32)> = groups
                .iter()
                .map(|(g, w)| {
                    (
                        g.as_ref()
                            .map_or_else(String::new, |g| g.config.arn.clone()),
                        *w,
                    )
                })
                .collect();
            balance::choose_group(&arns, sticky, rand::random::<f64>()).map(|(gi, _)| gi)
        }
    };
    let Some(pg) = group_gi.and_then(|gi| groups.get(gi)?.0.as_ref()) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let group = &*pg.config;
    // Cookies are read only when some stickiness can use them.
    let cookies = if group_stickiness.is_some()
        || matches!(
            group.stickiness,
            Some(TargetStickiness::LbCookie { .. } | TargetStickiness::AppCookie { .. })
        ) {
        request_cookies(req.headers())
    } else {
        Vec::new()
    };
    let sticky_target = match &group.stickiness {
        Some(TargetStickiness::LbCookie { .. }) => cookie(&cookies, "AWSALB"),
        Some(TargetStickiness::AppCookie { .. }) => cookie(&cookies, "AWSALBAPP-0"),
        _ => None,
    };
    let carried_app_cookie = cookie(&cookies, "AWSALBAPP-0").is_some();
    let is_sticky = |i: usize| pg.targets.get(i).map(|t| t.cookie.as_str()) == sticky_target;
    let health = &shared.plane.health;
    let Some((ti, sticky_hit)) = balance::choose_index(
        group,
        |i| health.get(&pg.targets[i].key),
        |i| pg.targets[i].counters.in_flight.load(Ordering::Relaxed),
        &pg.rotation,
        sticky_target
            .is_some()
            .then_some(&is_sticky as &dyn Fn(usize) -> bool),
    ) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let (Some(target), Some(addr)) = (
        pg.targets.get(ti),
        group.targets.get(ti).and_then(|t| t.addr),
    ) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let request = upstream_request(req, addr, client, &prepared.port, shared.https);
    let guard = InFlight::start(target.counters.clone());
    let idle = idle_timeout(listener);
    let (resp, upstream) =
        match tokio::time::timeout(idle, send(&shared.pool, addr, &target.counters, request)).await
        {
            Err(_) | Ok(Err(UpstreamError::ConnectTimeout)) => {
                return error_page(StatusCode::GATEWAY_TIMEOUT);
            }
            Ok(Err(e)) => {
                tracing::debug!(target = %addr, error = %e, "target request failed");
                return error_page(StatusCode::BAD_GATEWAY);
            }
            Ok(Ok(r)) => r,
        };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if group_stickiness.is_some() || group.stickiness.is_some() {
        let now = SystemTime::now();
        if let Some(d) = group_stickiness {
            add_sticky_cookie(
                &mut parts.headers,
                "AWSALBTG",
                &pg.cookie,
                expiry(now, d),
                shared.https,
            );
        }
        match &group.stickiness {
            Some(TargetStickiness::LbCookie { duration }) => {
                add_sticky_cookie(
                    &mut parts.headers,
                    "AWSALB",
                    &target.cookie,
                    expiry(now, *duration),
                    shared.https,
                );
            }
            Some(TargetStickiness::AppCookie {
                cookie_name,
                duration,
            }) => {
                let app_sets_cookie = parts
                    .headers
                    .get_all(header::SET_COOKIE)
                    .iter()
                    .any(|v| set_cookie_name(v.as_bytes()) == Some(cookie_name.as_bytes()));
                if app_sets_cookie || (carried_app_cookie && !sticky_hit) {
                    let v = format!(
                        "AWSALBAPP-0={}; Expires={}; Path=/",
                        target.cookie,
                        http_date(expiry(now, *duration))
                    );
                    append_header(&mut parts.headers, header::SET_COOKIE, &v);
                }
            }
            _ => {}
        }
    }
    let body = UpstreamBody {
        inner: body,
        guard: Some(guard),
        idle,
        timer: None,
        armed: false,
        upstream: Some((upstream, shared.pool.clone(), addr)),
    };
    Response::from_parts(parts, body.boxed_unsync())
}

fn cookie<'c>(cookies: &'c [(String, String)], name: &str) -> Option<&'c str> {
    cookies
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------- upstream

/// Idle keep-alive connections to targets, by address, most recently used
/// last. A connection is driven by whichever request uses it, in that
/// request's own task (no task per connection, no hand-off between tasks
/// per request); an idle one is driven by nobody, so a target's close is
/// noticed when the connection is next taken (or pruned).
#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<UpConn>>>,
}

/// One HTTP/1.1 connection to a target.
struct UpConn {
    sender: SendRequest<Incoming>,
    conn: http1::Connection<TokioIo<TcpStream>, Incoming>,
    /// The connection future finished: closed, or failed.
    done: bool,
    /// When it went back to the pool.
    since: Instant,
}

impl UpConn {
    /// Let the connection do whatever I/O it can (write the request and
    /// its body, read the response).
    fn drive(&mut self, cx: &mut Context<'_>) {
        if self.done {
            return;
        }
        if let Poll::Ready(r) = Pin::new(&mut self.conn).poll(cx) {
            self.done = true;
            if let Err(e) = r {
                tracing::debug!(error = %e, "target connection ended with an error");
            }
        }
    }

    fn reusable(&self) -> bool {
        !self.done && !self.sender.is_closed() && self.since.elapsed() < POOL_IDLE
    }
}

/// Idle connections kept per target beyond which the oldest is closed.
const POOL_MAX_IDLE: usize = 512;
/// How often idle connections past [`POOL_IDLE`] or closed by their target
/// are dropped.
const POOL_PRUNE: Duration = Duration::from_secs(10);

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<UpConn>>> {
        // Poisoning cannot leave the map inconsistent: pushes and pops are
        // whole.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, addr: SocketAddr) -> Option<UpConn> {
        let mut map = self.lock();
        let list = map.get_mut(&addr)?;
        while let Some(c) = list.pop() {
            if c.reusable() {
                return Some(c);
            }
        }
        None
    }

    fn put(&self, addr: SocketAddr, mut conn: UpConn) {
        conn.since = Instant::now();
        if !conn.reusable() {
            return;
        }
        let mut map = self.lock();
        let list = map.entry(addr).or_default();
        if list.len() >= POOL_MAX_IDLE {
            list.remove(0);
        }
        list.push(conn);
    }

    /// Drop connections idle for longer than [`POOL_IDLE`] and those their
    /// target closed (noticed by driving each once, with nobody to wake).
    fn prune(&self) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut map = self.lock();
        map.retain(|_, list| {
            list.retain_mut(|c| {
                c.drive(&mut cx);
                c.reusable()
            });
            !list.is_empty()
        });
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("connecting timed out")]
    ConnectTimeout,
    #[error("connecting failed: {0}")]
    Connect(std::io::Error),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

/// A new connection to `addr`, counted in the target's `connections`.
async fn connect(addr: SocketAddr, counters: &TargetCounters) -> Result<UpConn, UpstreamError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Err(_) => return Err(UpstreamError::ConnectTimeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            return Err(UpstreamError::ConnectTimeout);
        }
        Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    counters.connections.fetch_add(1, Ordering::Relaxed);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await?;
    Ok(UpConn {
        sender,
        conn,
        done: false,
        since: Instant::now(),
    })
}

/// Send `req` to `addr` over an idle pooled connection, or a new one. A
/// request a pooled connection could not take (the target closed it
/// meanwhile) is retried on the next; one never written is never lost.
async fn send(
    pool: &Pool,
    addr: SocketAddr,
    counters: &TargetCounters,
    mut req: Request<Incoming>,
) -> Result<(Response<Incoming>, UpConn), UpstreamError> {
    loop {
        let (mut up, fresh) = match pool.take(addr) {
            Some(c) => (c, false),
            None => (connect(addr, counters).await?, true),
        };
        let ready = std::future::poll_fn(|cx| {
            up.drive(cx);
            up.sender.poll_ready(cx)
        })
        .await;
        if let Err(e) = ready {
            if fresh {
                return Err(e.into());
            }
            continue;
        }
        let mut response = std::pin::pin!(up.sender.try_send_request(req));
        let result = std::future::poll_fn(|cx| {
            up.drive(cx);
            response.as_mut().poll(cx)
        })
        .await;
        match result {
            Ok(resp) => return Ok((resp, up)),
            Err(mut e) => match e.take_message() {
                Some(r) if !fresh => req = r,
                _ => return Err(e.into_error().into()),
            },
        }
    }
}

/// The request as the target sees it: same method, path, query, Host and
/// headers, minus hop-by-hop headers, plus ALB's `X-Forwarded-*` and trace
/// id; HTTP/1.1 in origin form whatever the client spoke.
fn upstream_request(
    req: Request<Incoming>,
    addr: SocketAddr,
    client: &Client,
    port: &HeaderValue,
    https: bool,
) -> Request<Incoming> {
    let (mut parts, body) = req.into_parts();
    let h = &mut parts.headers;
    strip_hop_by_hop(h);
    if !h.contains_key(header::HOST) {
        // HTTP/2's :authority, else (an HTTP/1.0 client) the target.
        let host = match parts.uri.authority() {
            Some(a) => HeaderValue::from_str(a.as_str()).ok(),
            None => HeaderValue::try_from(addr.to_string()).ok(),
        };
        if let Some(v) = host {
            h.insert(header::HOST, v);
        }
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = Uri::from(pq);
    }
    parts.version = Version::HTTP_11;
    // HTTP/2 may split Cookie; HTTP/1.1 wants one header.
    if h.get_all(header::COOKIE).iter().nth(1).is_some() {
        let joined: Vec<&[u8]> = h
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if let Ok(v) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
            h.insert(header::COOKIE, v);
        }
    }
    match h.entry(X_FORWARDED_FOR) {
        header::Entry::Vacant(e) => {
            e.insert(client.ip.clone());
        }
        header::Entry::Occupied(mut e) => {
            let mut xff = Vec::with_capacity(64);
            for v in e.iter() {
                if !xff.is_empty() {
                    xff.extend_from_slice(b", ");
                }
                xff.extend_from_slice(v.as_bytes());
            }
            xff.extend_from_slice(b", ");
            xff.extend_from_slice(client.ip.as_bytes());
            if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(xff)) {
                e.insert_mult(v).for_each(drop);
            }
        }
    }
    h.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    h.insert(X_FORWARDED_PORT, port.clone());
    if !h.contains_key(X_AMZN_TRACE_ID) {
        h.insert(X_AMZN_TRACE_ID, trace_id());
    }
    Request::from_parts(parts, body)
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// `Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`, X-Ray's form.
fn trace_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as u32;
    let r: u128 = rand::random::<u128>() & ((1u128 << 96) - 1);
    let mut buf = *b"Root=1-00000000-000000000000000000000000";
    for i in 0..8 {
        buf[7 + i] = HEX[(secs >> (28 - 4 * i) & 0xf) as usize];
    }
    for i in 0..24 {
        buf[16 + i] = HEX[(r >> (92 - 4 * i) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("Root=1-0-0"))
}

fn append_header(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::try_from(value) {
        h.append(name, v);
    }
}

fn is_hop_by_hop(n: &HeaderName) -> bool {
    *n == header::CONNECTION
        || *n == header::TE
        || *n == header::TRAILER
        || *n == header::TRANSFER_ENCODING
        || *n == header::UPGRADE
        || *n == KEEP_ALIVE
        || *n == HTTP2_SETTINGS
        || n.as_str().starts_with("proxy-")
}

/// Removes the headers that describe one connection, not the message: the
/// fixed list (and HTTP/2's upgrade settings) and whatever `Connection`
/// names. Most messages carry none, so look before changing anything.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    if !h.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    let fixed: Vec<HeaderName> = h.keys().filter(|k| is_hop_by_hop(k)).cloned().collect();
    for n in fixed {
        h.remove(n);
    }
}

/// Every `name=value` of the request's Cookie headers.
fn request_cookies(h: &HeaderMap) -> Vec<(String, String)> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .map(|(n, v)| (n.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// The cookie name a Set-Cookie value sets.
fn set_cookie_name(v: &[u8]) -> Option<&[u8]> {
    let end = v.iter().position(|&b| b == b'=')?;
    Some(v[..end].trim_ascii())
}

/// ELB's stickiness cookie, and on HTTPS its `…CORS` twin that browsers
/// also send on cross-site requests.
fn add_sticky_cookie(h: &mut HeaderMap, name: &str, value: &str, expires: SystemTime, https: bool) {
    let date = http_date(expires);
    append_header(
        h,
        header::SET_COOKIE,
        &format!("{name}={value}; Expires={date}; Path=/"),
    );
    if https {
        append_header(
            h,
            header::SET_COOKIE,
            &format!("{name}CORS={value}; Expires={date}; Path=/; SameSite=None; Secure"),
        );
    }
}

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = berth_clock::civil::civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A target's response body, streamed, holding the in-flight count until
/// it ends, and cut off if the target goes silent for the idle timeout.
/// Once it has been read to the end its connection goes back to the pool.
struct UpstreamBody {
    inner: Incoming,
    guard: Option<InFlight>,
    idle: Duration,
    /// Made the first time the target keeps us waiting.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The timer runs only while we wait on the target (not while the
    /// client is slow to take data).
    armed: bool,
    /// The connection the body arrives on, driven by polling the body;
    /// back to the pool once the body is read to the end.
    upstream: Option<(UpConn, Arc<Pool>, SocketAddr)>,
}

impl UpstreamBody {
    fn release(&mut self) {
        if let Some((conn, pool, addr)) = self.upstream.take() {
            pool.put(addr, conn);
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // An empty body hyper never polled is complete all the same; one
        // dropped part way leaves its connection unusable (it closes).
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some((conn, _, _)) = &mut this.upstream {
            conn.drive(cx);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                match &frame {
                    None => {
                        this.guard = None;
                        this.release();
                    }
                    Some(Err(_)) => {
                        this.guard = None;
                        this.upstream = None;
                    }
                    Some(Ok(_)) => {}
                }
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + this.idle;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !this.armed {
                    this.armed = true;
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.guard = None;
                        this.upstream = None;
                        Poll::Ready(Some(Err(
                            "target idle for longer than the idle timeout".into()
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn full(body: impl Into<Bytes>) -> ProxyBody {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// ALB's reason phrases where they differ from the standard ones.
fn reason(status: StatusCode) -> &'static str {
    match status.as_u16() {
        503 => "Service Temporarily Unavailable",
        504 => "Gateway Time-out",
        _ => status.canonical_reason().unwrap_or(""),
    }
}

fn html_page(status: StatusCode) -> String {
    let title = format!("{} {}", status.as_u16(), reason(status));
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
}

fn lb_response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    if let Ok(ct) = HeaderValue::try_from(content_type) {
        h.insert(header::CONTENT_TYPE, ct);
    }
    resp
}

/// An error answered by the load balancer itself, in ALB's HTML.
pub fn error_page(status: StatusCode) -> Response<ProxyBody> {
    lb_response(status, "text/html", html_page(status))
}

fn fixed_response(
    status: u16,
    content_type: Option<&str>,
    body: Option<&str>,
) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    lb_response(
        status,
        content_type.unwrap_or("text/plain"),
        Bytes::from(body.unwrap_or_default().to_string()),
    )
}

fn redirect_response(status_code: &str, location: &str) -> Response<ProxyBody> {
    let status = if status_code == "HTTP_301" {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::FOUND
    };
    let mut resp = lb_response(status, "text/html", html_page(status));
    append_header(resp.headers_mut(), header::LOCATION, location);
    resp
}

/// The Location of a redirect action, built as ALB does: each component
/// (default: the request's own) with `#{protocol}`, `#{host}`, `#{port}`,
/// `#{path}` (the path without its leading slash) and `#{query}`
/// substituted; the port always written out; no `?` for an empty query.
pub fn redirect_location(
    r: &Redirect,
    https: bool,
    host: Option<&str>,
    port: u16,
    uri: &Uri,
) -> String {
    let protocol = if https { "HTTPS" } else { "HTTP" };
    let host = host.map(strip_port).unwrap_or_default();
    let port = port.to_string();
    let path = uri.path().strip_prefix('/').unwrap_or(uri.path());
    let query = uri.query().unwrap_or_default();
    let sub = |template: Option<&str>, default: &str| {
        template
            .unwrap_or(default)
            .replace("#{protocol}", protocol)
            .replace("#{host}", host)
            .replace("#{port}", &port)
            .replace("#{path}", path)
            .replace("#{query}", query)
    };
    let scheme = sub(r.protocol.as_deref(), "#{protocol}").to_ascii_lowercase();
    let new_host = sub(r.host.as_deref(), "#{host}");
    let new_port = sub(r.port.as_deref(), "#{port}");
    let mut new_path = sub(r.path.as_deref(), "/#{path}");
    if !new_path.starts_with('/') {
        new_path.insert(0, '/');
    }
    let new_query = sub(r.query.as_deref(), "#{query}");
    let mut loc = format!("{scheme}://{new_host}:{new_port}{new_path}");
    if !new_query.is_empty() {
        loc.push('?');
        loc.push_str(&new_query);
    }
    loc
}

/// `host[:port]` without the port (`[v6]:port` keeps its brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(
        protocol: Option<&str>,
        port: Option<&str>,
        host: Option<&str>,
        path: Option<&str>,
        query: Option<&str>,
    ) -> Redirect {
        Redirect {
            protocol: protocol.map(Into::into),
            port: port.map(Into::into),
            host: host.map(Into::into),
            path: path.map(Into::into),
            query: query.map(Into::into),
            status_code: "HTTP_301".into(),
        }
    }

    #[test]
    fn redirect_locations() {
        let uri: Uri = "/a/b?x=1".parse().unwrap();
        let r = redirect(Some("HTTPS"), Some("443"), None, None, None);
        assert_eq!(
            redirect_location(&r, false, Some("example.com:8080"), 80, &uri),
            "https://example.com:443/a/b?x=1"
        );
        let r = redirect(
            None,
            None,
            Some("new.#{host}"),
            Some("/v2/#{path}"),
            Some("#{query}&y=2"),
        );
        assert_eq!(
            redirect_location(&r, false, Some("example.com"), 80, &uri),
            "http://new.example.com:80/v2/a/b?x=1&y=2"
        );
        let r = redirect(None, None, None, Some("/"), None);
        assert_eq!(
            redirect_location(&r, true, Some("h"), 443, &"/p".parse().unwrap()),
            "https://h:443/"
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }

    #[test]
    fn hop_by_hop_removed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "close, x-custom"),
            ("x-custom", "1"),
            ("keep-alive", "5"),
            ("proxy-authorization", "x"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-keep", "1"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-keep"]);
    }

    #[test]
    fn cookies_parsed() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; AWSALB=xyz"));
        h.append(header::COOKIE, HeaderValue::from_static("b=\"2\""));
        assert_eq!(
            request_cookies(&h),
            [
                ("a".into(), "1".into()),
                ("AWSALB".into(), "xyz".into()),
                ("b".into(), "2".into())
            ]
        );
        assert_eq!(
            set_cookie_name(b"SESSION=abc; Path=/"),
            Some(&b"SESSION"[..])
        );
        assert_eq!(set_cookie_name(b"junk"), None);
    }

    #[test]
    fn pages_and_trace_ids() {
        assert!(
            html_page(StatusCode::BAD_GATEWAY)
                .starts_with("<html>\r\n<head><title>502 Bad Gateway</title></head>")
        );
        assert!(html_page(StatusCode::GATEWAY_TIMEOUT).contains("504 Gateway Time-out"));
        let t = trace_id();
        let t = t.to_str().unwrap();
        let parts: Vec<&str> = t.split('-').collect();
        assert_eq!(parts[0], "Root=1");
        assert_eq!((parts[1].len(), parts[2].len()), (8, 24));
    }
}

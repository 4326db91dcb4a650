//! The ALB data plane over real sockets on 127.0.0.1: tiny hyper backends,
//! a listener served by `alb::serve`, and hyper clients. No timing is
//! asserted as performance; every wait has a generous bound.

mod common;

use berth_lb::snapshot::{
    ActionConfig, Algorithm, LbKind, ListenerConfig, ListenerProtocol, RuleConfig, Snapshot,
    TargetConfig, TargetGroupConfig, TargetStickiness,
};
use berth_lb::{DataPlane, TargetKey, TargetState, alb};
use bytes::Bytes;
use common::{WAIT, acm, make_cert, tls_connect};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/test/0123456789abcdef/0123456789abcdef";

fn tg_arn(name: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/0123456789abcdef"
    )
}

// ---------------------------------------------------------------- backends

type BackendBody = UnsyncBoxBody<Bytes, Infallible>;

/// A response body fed through a channel, so a test decides when each
/// chunk is sent.
struct ChanBody(mpsc::Receiver<Bytes>);

impl Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A tiny HTTP/1.1 server. Paths: `/hold` waits until released, `/slow/MS`
/// sleeps, `/stream` sends `first` then (once released) `last`,
/// `/setcookie` sets `SESSION`; anything else answers at once. Every answer
/// is a JSON echo of what the backend saw.
struct Backend {
    name: String,
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    held: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
}

impl Backend {
    async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(AtomicUsize::new(0));
        let (release, release_rx) = watch::channel(false);
        let (n, h, rel) = (name.to_string(), hits.clone(), release_rx);
        let held2 = held.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (n, h, held, rel) = (n.clone(), h.clone(), held2.clone(), rel.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (n, h, held, rel) = (n.clone(), h.clone(), held.clone(), rel.clone());
                        async move { Ok::<_, Infallible>(backend_answer(&n, &h, &held, rel, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            name: name.to_string(),
            addr,
            hits,
            held,
            release,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn release(&self) {
        let _ = self.release.send(true);
    }

    fn target(&self) -> TargetConfig {
        TargetConfig {
            id: "127.0.0.1".into(),
            port: self.addr.port(),
            addr: Some(self.addr),
            draining_since_ms: None,
        }
    }
}

async fn backend_answer(
    name: &str,
    hits: &AtomicUsize,
    held: &AtomicUsize,
    mut release: watch::Receiver<bool>,
    req: Request<Incoming>,
) -> Response<BackendBody> {
    hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let mut headers = serde_json::Map::new();
    for k in req.headers().keys() {
        let vals: Vec<String> = req
            .headers()
            .get_all(k)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        headers.insert(k.as_str().to_string(), vals.join(", ").into());
    }
    let echo = serde_json::json!({ "backend": name, "method": req.method().as_str(), "uri": req.uri().to_string(), "headers": headers }).to_string();
    let mut resp = Response::builder().header("x-backend", name);
    if path == "/hold" {
        held.fetch_add(1, Ordering::SeqCst);
        let _ = release.wait_for(|r| *r).await;
    } else if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    } else if path == "/stream" {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"first;")).await;
            let _ = release.wait_for(|r| *r).await;
            let _ = tx.send(Bytes::from_static(b"last")).await;
        });
        return resp.body(ChanBody(rx).boxed_unsync()).unwrap();
    } else if path == "/firstchunk" {
        // Answer with the first chunk of the request body, before the
        // client has sent the rest.
        let mut body = req.into_body();
        let first = loop {
            match body.frame().await {
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) if !d.is_empty() => break d,
                    _ => continue,
                },
                _ => break Bytes::new(),
            }
        };
        return resp.body(Full::new(first).boxed_unsync()).unwrap();
    } else if path == "/setcookie" {
        resp = resp.header("set-cookie", "SESSION=abc; Path=/");
    }
    resp.header("content-type", "application/json")
        .body(Full::new(Bytes::from(echo)).boxed_unsync())
        .unwrap()
}

// ---------------------------------------------------------------- config

fn group(name: &str, backends: &[&Backend]) -> TargetGroupConfig {
    TargetGroupConfig {
        arn: tg_arn(name),
        protocol: "HTTP".into(),
        port: 80,
        target_type: "ip".into(),
        health_check: berth_elbv2::model::HealthCheck::defaults("HTTP"),
        targets: backends.iter().map(|b| b.target()).collect(),
        deregistration_delay: Duration::from_secs(300),
        slow_start: Duration::ZERO,
        algorithm: Algorithm::RoundRobin,
        stickiness: None,
    }
}

fn forward(groups: &[(&TargetGroupConfig, u32)]) -> ActionConfig {
    ActionConfig::Forward {
        groups: groups.iter().map(|(g, w)| (g.arn.clone(), *w)).collect(),
        group_stickiness: None,
    }
}

fn cond(field: &str, values: &[&str]) -> berth_elbv2::model::Condition {
    berth_elbv2::model::Condition {
        field: field.into(),
        values: values.iter().map(|s| s.to_string()).collect(),
        header_name: None,
        query: vec![],
    }
}

fn rule(
    priority: u32,
    conditions: Vec<berth_elbv2::model::Condition>,
    action: ActionConfig,
) -> RuleConfig {
    RuleConfig {
        arn: format!("{LISTENER}-rule-{priority}"),
        priority: Some(priority),
        conditions,
        action,
    }
}

fn default_rule(action: ActionConfig) -> RuleConfig {
    RuleConfig {
        arn: format!("{LISTENER}-default"),
        priority: None,
        conditions: vec![],
        action,
    }
}

fn fixed(status: u16, body: &str) -> ActionConfig {
    ActionConfig::FixedResponse {
        status,
        content_type: None,
        body: Some(body.into()),
    }
}

fn listener(port: u16, protocol: ListenerProtocol, rules: Vec<RuleConfig>) -> ListenerConfig {
    ListenerConfig {
        arn: LISTENER.into(),
        lb_arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/test/0123456789abcdef".into(),
        lb_kind: LbKind::Application,
        protocol,
        port,
        certificates: vec![],
        idle_timeout: Duration::from_secs(60),
        http2: true,
        rules,
    }
}

fn snapshot(l: ListenerConfig, groups: &[&TargetGroupConfig]) -> Snapshot {
    Snapshot {
        listeners: vec![Arc::new(l)],
        target_groups: groups
            .iter()
            .map(|g| (g.arn.clone(), Arc::new((*g).clone())))
            .collect(),
    }
}

/// A listener on `port` whose default rule forwards to `g`.
fn forward_to(port: u16, protocol: ListenerProtocol, g: &TargetGroupConfig) -> Snapshot {
    snapshot(
        listener(port, protocol, vec![default_rule(forward(&[(g, 1)]))]),
        &[g],
    )
}

/// `b` as a target of `g`.
fn target_key(g: &TargetGroupConfig, b: &Backend) -> TargetKey {
    TargetKey {
        target_group_arn: g.arn.clone(),
        id: "127.0.0.1".into(),
        port: b.addr.port(),
    }
}

fn set_health(plane: &DataPlane, g: &TargetGroupConfig, b: &Backend, state: TargetState) {
    plane.health.set(target_key(g, b), state, Instant::now());
}

fn all_healthy(plane: &DataPlane, groups: &[&TargetGroupConfig]) {
    for g in groups {
        for t in &g.targets {
            plane
                .health
                .set(g.key(t), TargetState::Healthy, Instant::now());
        }
    }
}

// ---------------------------------------------------------------- the LB

struct Lb {
    addr: SocketAddr,
    plane: Arc<DataPlane>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Lb {
    /// Binds port 0, then builds the configuration for the port it got.
    async fn start(
        build: impl FnOnce(u16) -> Snapshot,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Lb {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let plane = DataPlane::new(build(addr.port()));
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(alb::serve(l, LISTENER.to_string(), plane.clone(), tls, rx));
        Lb {
            addr,
            plane,
            stop,
            task,
        }
    }

    /// An HTTP listener forwarding to `g`.
    async fn forwarding(g: &TargetGroupConfig) -> Lb {
        Lb::start(|port| forward_to(port, ListenerProtocol::Http, g), None).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until no request to `key` is in flight.
    async fn no_longer_in_flight(&self, key: &TargetKey) {
        wait_until("in-flight count back to zero", || {
            self.plane
                .stats
                .target(key)
                .in_flight
                .load(Ordering::SeqCst)
                == 0
        })
        .await;
    }

    /// Sends `/hold` and waits until it reaches `a` or `b`: the request
    /// and (the backend holding it, the other one).
    async fn hold_one<'b>(
        &self,
        c: &HttpClient,
        a: &'b Backend,
        b: &'b Backend,
    ) -> (tokio::task::JoinHandle<Answer>, (&'b Backend, &'b Backend)) {
        let held = tokio::spawn({
            let (c, url) = (c.clone(), self.url("/hold"));
            async move { get(&c, &url).await }
        });
        wait_until("the slow request reaches a backend", || {
            a.held.load(Ordering::SeqCst) + b.held.load(Ordering::SeqCst) == 1
        })
        .await;
        let holding = if a.held.load(Ordering::SeqCst) == 1 {
            (a, b)
        } else {
            (b, a)
        };
        (held, holding)
    }

    /// GETs `/stream` and reads its first chunk, `first;`: the status and
    /// the rest of the body.
    async fn first_chunk(&self, c: &HttpClient) -> (StatusCode, Incoming) {
        let resp = tokio::time::timeout(
            WAIT,
            c.request(
                Request::get(self.url("/stream"))
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            ),
        )
        .await
        .unwrap()
        .unwrap();
        let status = resp.status();
        let mut body = resp.into_body();
        let first = tokio::time::timeout(WAIT, body.frame())
            .await
            .expect("first chunk before the backend finished")
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), "first;");
        (status, body)
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    version: Version,
}

impl Answer {
    fn backend(&self) -> String {
        self.headers
            .get("x-backend")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn seen_header(&self, name: &str) -> Option<String> {
        self.json()["headers"][name].as_str().map(str::to_string)
    }

    /// Value of `name` among the response's Set-Cookie headers.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

async fn send(c: &HttpClient, url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(WAIT, c.request(req.body(Full::new(Bytes::new())).unwrap()))
        .await
        .expect("timed out")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("body timed out")
        .expect("body failed")
        .to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        version: parts.version,
    }
}

async fn get(c: &HttpClient, url: &str) -> Answer {
    send(c, url, &[]).await
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `name=value` from a Set-Cookie header, for sending back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

// ---------------------------------------------------------------- routing

/// Built through `Snapshot::build` from an ELBv2 state record, as the
/// supervisor does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_routing_to_two_groups_and_default_rule() {
    use berth_elbv2::model::{Action, Listener, LoadBalancer, Rule, State, Target, TargetGroup};
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let lb_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/test/0123456789abcdef".to_string();
    let tg = |name: &str, backend: &Backend| TargetGroup {
        arn: tg_arn(name),
        name: name.into(),
        protocol: "HTTP".into(),
        port: 80,
        vpc_id: "vpc-1".into(),
        target_type: "ip".into(),
        health: group("x", &[]).health_check,
        attributes: Default::default(),
        tags: vec![],
        targets: vec![Target {
            id: "127.0.0.1".into(),
            port: backend.addr.port(),
            availability_zone: None,
            draining_since_ms: None,
        }],
    };
    let fwd = |name: &str| Action {
        kind: "forward".into(),
        order: Some(1),
        target_group_arn: Some(tg_arn(name)),
        forward: None,
        fixed: None,
        redirect: None,
    };
    let lb = Lb::start(
        |port| {
            let state = State {
                load_balancers: vec![LoadBalancer {
                    arn: lb_arn.clone(),
                    name: "test".into(),
                    kind: "application".into(),
                    scheme: "internet-facing".into(),
                    dns_name: "test.local".into(),
                    created: "2024-01-01T00:00:00Z".into(),
                    vpc_id: "vpc-1".into(),
                    subnets: vec![],
                    security_groups: vec![],
                    ip_address_type: "ipv4".into(),
                    attributes: Default::default(),
                    tags: vec![],
                }],
                target_groups: vec![tg("a", &a), tg("b", &b)],
                listeners: vec![Listener {
                    arn: LISTENER.into(),
                    lb_arn: lb_arn.clone(),
                    port,
                    protocol: "HTTP".into(),
                    default_actions: vec![Action {
                        kind: "fixed-response".into(),
                        order: None,
                        target_group_arn: None,
                        forward: None,
                        fixed: Some(berth_elbv2::model::FixedResponse {
                            status_code: "404".into(),
                            content_type: Some("text/plain".into()),
                            message_body: Some("no route".into()),
                        }),
                        redirect: None,
                    }],
                    certificates: vec![],
                    ssl_policy: None,
                }],
                rules: vec![
                    Rule {
                        arn: "r-b".into(),
                        listener_arn: LISTENER.into(),
                        priority: 20,
                        conditions: vec![cond("path-pattern", &["/b/*"])],
                        actions: vec![fwd("b")],
                        tags: vec![],
                    },
                    Rule {
                        arn: "r-a".into(),
                        listener_arn: LISTENER.into(),
                        priority: 10,
                        conditions: vec![cond("path-pattern", &["/a/*", "/both/*"])],
                        actions: vec![fwd("a")],
                        tags: vec![],
                    },
                    Rule {
                        arn: "r-both".into(),
                        listener_arn: LISTENER.into(),
                        priority: 15,
                        conditions: vec![cond("path-pattern", &["/both/*"])],
                        actions: vec![fwd("b")],
                        tags: vec![],
                    },
                ],
            };
            Snapshot::build([&state], &berth_lb::snapshot::NoInstances)
        },
        None,
    )
    .await;
    let c = client();
    assert_eq!(get(&c, &lb.url("/a/x?q=/b/")).await.backend(), "a");
    assert_eq!(get(&c, &lb.url("/b/y")).await.backend(), "b");
    assert_eq!(
        get(&c, &lb.url("/both/z")).await.backend(),
        "a",
        "lower priority number wins"
    );
    let d = get(&c, &lb.url("/c")).await;
    assert_eq!(
        (d.status, d.body.as_str()),
        (StatusCode::NOT_FOUND, "no route")
    );
    assert_eq!(d.headers["content-type"], "text/plain");
    assert_eq!(d.headers["server"], "awselb/2.0");
    assert_eq!(
        get(&c, &lb.url("/a/x")).await.json()["uri"],
        "/a/x",
        "path preserved"
    );
    assert_eq!(
        get(&c, &lb.url("/a/x?k=v&w")).await.json()["uri"],
        "/a/x?k=v&w",
        "query preserved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_routing() {
    let (a, b, d) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("d").await,
    );
    let (ga, gb, gd) = (group("a", &[&a]), group("b", &[&b]), group("d", &[&d]));
    let lb = Lb::start(
        |port| {
            let rules = vec![
                rule(
                    1,
                    vec![cond("host-header", &["api.example.com"])],
                    forward(&[(&ga, 1)]),
                ),
                rule(
                    2,
                    vec![cond("host-header", &["*.example.org"])],
                    forward(&[(&gb, 1)]),
                ),
                default_rule(forward(&[(&gd, 1)])),
            ];
            snapshot(
                listener(port, ListenerProtocol::Http, rules),
                &[&ga, &gb, &gd],
            )
        },
        None,
    )
    .await;
    let c = client();
    let via = |host: &'static str| {
        let c = c.clone();
        let url = lb.url("/");
        async move { send(&c, &url, &[("host", host)]).await }
    };
    assert_eq!(via("API.Example.com:8080").await.backend(), "a");
    let r = via("www.example.org").await;
    assert_eq!(r.backend(), "b");
    assert_eq!(
        r.seen_header("host").as_deref(),
        Some("www.example.org"),
        "Host preserved"
    );
    assert_eq!(via("example.org").await.backend(), "d");
    assert_eq!(via("other").await.backend(), "d");
}

// ---------------------------------------------------------------- balancing

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_forward_three_to_one() {
    let (a, b, z) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("z").await,
    );
    let (ga, gb, gz) = (group("a", &[&a]), group("b", &[&b]), group("z", &[&z]));
    let lb = Lb::start(
        |port| {
            snapshot(
                listener(
                    port,
                    ListenerProtocol::Http,
                    vec![default_rule(forward(&[(&ga, 3), (&gb, 1), (&gz, 0)]))],
                ),
                &[&ga, &gb, &gz],
            )
        },
        None,
    )
    .await;
    all_healthy(&lb.plane, &[&ga, &gb, &gz]);
    let c = client();
    for _ in 0..400 {
        assert_eq!(get(&c, &lb.url("/")).await.status, StatusCode::OK);
    }
    assert_eq!(a.hits() + b.hits(), 400);
    assert!(
        (240..=360).contains(&a.hits()),
        "a got {} of 400 at weight 3:1",
        a.hits()
    );
    assert_eq!(z.hits(), 0, "weight 0 is never chosen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_and_fail_open_when_all_unhealthy() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let g = group("g", &[&a, &b]);
    let lb = Lb::forwarding(&g).await;
    all_healthy(&lb.plane, &[&g]);
    let c = client();
    for _ in 0..10 {
        get(&c, &lb.url("/")).await;
    }
    assert_eq!((a.hits(), b.hits()), (5, 5), "round robin");
    set_health(&lb.plane, &g, &a, TargetState::Unhealthy);
    for _ in 0..10 {
        assert_eq!(get(&c, &lb.url("/")).await.backend(), "b");
    }
    set_health(&lb.plane, &g, &b, TargetState::Unhealthy);
    for _ in 0..10 {
        assert_eq!(get(&c, &lb.url("/")).await.status, StatusCode::OK);
    }
    assert_eq!(
        (a.hits(), b.hits()),
        (10, 20),
        "all unhealthy: fail open to both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_stickiness_keeps_a_client_on_one_group() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (ga, gb) = (group("a", &[&a]), group("b", &[&b]));
    let lb = Lb::start(
        |port| {
            let action = ActionConfig::Forward {
                groups: vec![(ga.arn.clone(), 1), (gb.arn.clone(), 1)],
                group_stickiness: Some(Duration::from_secs(600)),
            };
            snapshot(
                listener(port, ListenerProtocol::Http, vec![default_rule(action)]),
                &[&ga, &gb],
            )
        },
        None,
    )
    .await;
    let c = client();
    let first = get(&c, &lb.url("/")).await;
    let tg_cookie = first.set_cookie("AWSALBTG").expect("AWSALBTG set");
    assert!(
        tg_cookie.contains("Expires=") && tg_cookie.contains("Path=/"),
        "{tg_cookie}"
    );
    assert!(
        first.set_cookie("AWSALBTGCORS").is_none(),
        "CORS twin only on HTTPS"
    );
    let pair = cookie_pair(&tg_cookie);
    for _ in 0..20 {
        let r = send(&c, &lb.url("/"), &[("cookie", &format!("x=1; {pair}"))]).await;
        assert_eq!(r.backend(), first.backend());
    }
    let before = (a.hits(), b.hits());
    for _ in 0..40 {
        get(&c, &lb.url("/")).await;
    }
    assert!(
        a.hits() > before.0 && b.hits() > before.1,
        "without the cookie both groups serve"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lb_cookie_stickiness_and_replacement_of_an_unhealthy_target() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let mut g = group("g", &[&backends[0], &backends[1], &backends[2]]);
    g.stickiness = Some(TargetStickiness::LbCookie {
        duration: Duration::from_secs(600),
    });
    let lb = Lb::forwarding(&g).await;
    all_healthy(&lb.plane, &[&g]);
    let c = client();
    let first = get(&c, &lb.url("/")).await;
    let pair = cookie_pair(&first.set_cookie("AWSALB").expect("AWSALB set"));
    for _ in 0..15 {
        let r = send(&c, &lb.url("/"), &[("cookie", &pair)]).await;
        assert_eq!(r.backend(), first.backend());
        assert_eq!(
            r.set_cookie("AWSALB").map(|c| cookie_pair(&c)),
            Some(pair.clone()),
            "cookie refreshed"
        );
    }
    let sticky = backends.iter().find(|b| b.name == first.backend()).unwrap();
    set_health(&lb.plane, &g, sticky, TargetState::Unhealthy);
    let moved = send(&c, &lb.url("/"), &[("cookie", &pair)]).await;
    assert_ne!(moved.backend(), sticky.name);
    let new_pair = cookie_pair(&moved.set_cookie("AWSALB").unwrap());
    assert_ne!(new_pair, pair, "cookie rewritten");
    for _ in 0..5 {
        assert_eq!(
            send(&c, &lb.url("/"), &[("cookie", &new_pair)])
                .await
                .backend(),
            moved.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_cookie_stickiness() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let mut g = group("g", &[&a, &b]);
    g.stickiness = Some(TargetStickiness::AppCookie {
        cookie_name: "SESSION".into(),
        duration: Duration::from_secs(600),
    });
    let lb = Lb::forwarding(&g).await;
    all_healthy(&lb.plane, &[&g]);
    let c = client();
    assert!(
        get(&c, &lb.url("/"))
            .await
            .set_cookie("AWSALBAPP-0")
            .is_none(),
        "only when the app sets its cookie"
    );
    let first = get(&c, &lb.url("/setcookie")).await;
    let pair = cookie_pair(&first.set_cookie("AWSALBAPP-0").expect("AWSALBAPP-0 set"));
    assert!(
        first.set_cookie("SESSION").is_some(),
        "the app's own cookie passes through"
    );
    for _ in 0..10 {
        assert_eq!(
            send(
                &c,
                &lb.url("/"),
                &[("cookie", &format!("SESSION=abc; {pair}"))]
            )
            .await
            .backend(),
            first.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_requests_avoids_the_busy_target() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let mut g = group("g", &[&a, &b]);
    g.algorithm = Algorithm::LeastOutstandingRequests;
    let lb = Lb::forwarding(&g).await;
    all_healthy(&lb.plane, &[&g]);
    let c = client();
    let (slow, (busy, idle)) = lb.hold_one(&c, &a, &b).await;
    for _ in 0..10 {
        assert_eq!(get(&c, &lb.url("/")).await.backend(), idle.name);
    }
    busy.release();
    let r = tokio::time::timeout(WAIT, slow).await.unwrap().unwrap();
    assert_eq!((r.status, r.backend()), (StatusCode::OK, busy.name.clone()));
    let key = target_key(&g, busy);
    lb.no_longer_in_flight(&key).await;
    assert_eq!(
        lb.plane.stats.target(&key).requests.load(Ordering::SeqCst),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_target_finishes_in_flight_but_gets_no_new_requests() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let g = group("g", &[&a, &b]);
    let lb = Lb::forwarding(&g).await;
    all_healthy(&lb.plane, &[&g]);
    let c = client();
    let (slow, (draining, other)) = lb.hold_one(&c, &a, &b).await;
    // Deregistered: the next snapshot marks it draining.
    let mut next = g.clone();
    next.targets
        .iter_mut()
        .filter(|t| t.port == draining.addr.port())
        .for_each(|t| t.draining_since_ms = Some(1));
    lb.plane
        .install(forward_to(lb.addr.port(), ListenerProtocol::Http, &next));
    let before = draining.hits();
    for _ in 0..10 {
        assert_eq!(get(&c, &lb.url("/")).await.backend(), other.name);
    }
    assert_eq!(draining.hits(), before);
    draining.release();
    let r = tokio::time::timeout(WAIT, slow).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.backend()),
        (StatusCode::OK, draining.name.clone()),
        "in-flight request completes"
    );
    // The health table's Draining state excludes a target the same way.
    set_health(&lb.plane, &g, other, TargetState::Draining);
    lb.plane
        .install(forward_to(lb.addr.port(), ListenerProtocol::Http, &g));
    for _ in 0..5 {
        assert_eq!(get(&c, &lb.url("/")).await.backend(), draining.name);
    }
}

// ---------------------------------------------------------------- proxying

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_seen_by_the_backend() {
    let a = Backend::start("a").await;
    let g = group("g", &[&a]);
    let lb = Lb::forwarding(&g).await;
    let c = client();
    let r = send(
        &c,
        &lb.url("/p?x=1"),
        &[
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("x-keep", "2"),
            ("host", "app.test"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(
        r.seen_header("x-forwarded-port"),
        Some(lb.addr.port().to_string())
    );
    assert_eq!(r.seen_header("host").as_deref(), Some("app.test"));
    assert_eq!(r.seen_header("x-keep").as_deref(), Some("2"));
    assert_eq!(
        r.seen_header("x-hop"),
        None,
        "named by Connection: hop-by-hop"
    );
    let trace = r.seen_header("x-amzn-trace-id").unwrap();
    let parts: Vec<&str> = trace.split('-').collect();
    assert!(
        parts.len() == 3 && parts[0] == "Root=1" && parts[1].len() == 8 && parts[2].len() == 24,
        "{trace}"
    );
    assert!(
        parts[1..]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit())),
        "{trace}"
    );
    let r = send(
        &c,
        &lb.url("/"),
        &[
            ("x-forwarded-for", "203.0.113.9"),
            (
                "x-amzn-trace-id",
                "Root=1-00000000-000000000000000000000001",
            ),
        ],
    )
    .await;
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(
        r.seen_header("x-amzn-trace-id").as_deref(),
        Some("Root=1-00000000-000000000000000000000001")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge() {
    let a = Backend::start("a").await;
    let g = group("g", &[&a]);
    let lb = Lb::forwarding(&g).await;
    let h2: HttpClient = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let r = get(&h2, &lb.url("/h2?x=1")).await;
    assert_eq!((r.status, r.version), (StatusCode::OK, Version::HTTP_2));
    assert_eq!(r.backend(), "a");
    assert_eq!(r.json()["uri"], "/h2?x=1");
    assert_eq!(
        r.seen_header("host"),
        Some(lb.addr.to_string()),
        ":authority becomes Host"
    );
    let r = get(&h2, &lb.url("/nowhere")).await;
    assert_eq!(r.version, Version::HTTP_2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_is_streamed() {
    let a = Backend::start("a").await;
    let g = group("g", &[&a]);
    let lb = Lb::forwarding(&g).await;
    let c = client();
    let (_, body) = lb.first_chunk(&c).await;
    a.release();
    let rest = tokio::time::timeout(WAIT, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(rest, "last");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_is_streamed() {
    let a = Backend::start("a").await;
    let g = group("g", &[&a]);
    let lb = Lb::forwarding(&g).await;
    let c: Client<HttpConnector, ChanBody> = Client::builder(TokioExecutor::new()).build_http();
    let (tx, rx) = mpsc::channel(4);
    tx.send(Bytes::from_static(b"hello")).await.unwrap();
    let req = Request::post(lb.url("/firstchunk"))
        .body(ChanBody(rx))
        .unwrap();
    // The answer arrives while the request body is still open (tx alive).
    let resp = tokio::time::timeout(WAIT, c.request(req))
        .await
        .expect("answered before the body ended")
        .unwrap();
    let body = tokio::time::timeout(WAIT, resp.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(body, "hello");
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_cut_off_when_the_target_stalls_past_the_idle_timeout() {
    let a = Backend::start("a").await;
    let g = group("g", &[&a]);
    let lb = Lb::start(
        |port| {
            let mut l = listener(
                port,
                ListenerProtocol::Http,
                vec![default_rule(forward(&[(&g, 1)]))],
            );
            l.idle_timeout = Duration::from_secs(1);
            snapshot(l, &[&g])
        },
        None,
    )
    .await;
    let c = client();
    let (status, body) = lb.first_chunk(&c).await;
    assert_eq!(status, StatusCode::OK);
    // The backend never sends the rest: the stream is aborted, not hung.
    let rest = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("stalled stream cut off");
    assert!(
        rest.is_err(),
        "a truncated response is an error for the client"
    );
    let key = target_key(&g, &a);
    lb.no_longer_in_flight(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_502_503_504_as_alb_answers_them() {
    let slow = Backend::start("slow").await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let refused = TargetGroupConfig {
        targets: vec![TargetConfig {
            id: "127.0.0.1".into(),
            port: closed.port(),
            addr: Some(closed),
            draining_since_ms: None,
        }],
        ..group("refused", &[])
    };
    let empty = group("empty", &[]);
    let gslow = group("slow", &[&slow]);
    let missing = group("missing", &[]);
    let lb = Lb::start(
        |port| {
            let mut l = listener(
                port,
                ListenerProtocol::Http,
                vec![
                    rule(
                        1,
                        vec![cond("path-pattern", &["/refused"])],
                        forward(&[(&refused, 1)]),
                    ),
                    rule(
                        2,
                        vec![cond("path-pattern", &["/empty"])],
                        forward(&[(&empty, 1)]),
                    ),
                    rule(
                        3,
                        vec![cond("path-pattern", &["/missing"])],
                        forward(&[(&missing, 1)]),
                    ),
                    default_rule(forward(&[(&gslow, 1)])),
                ],
            );
            l.idle_timeout = Duration::from_secs(1);
            snapshot(l, &[&refused, &empty, &gslow])
        },
        None,
    )
    .await;
    let c = client();
    let r = get(&c, &lb.url("/refused")).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.body
            .starts_with("<html>\r\n<head><title>502 Bad Gateway</title></head>"),
        "{}",
        r.body
    );
    assert_eq!(r.headers["server"], "awselb/2.0");
    assert_eq!(r.headers["content-type"], "text/html");
    let r = get(&c, &lb.url("/empty")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.body.contains("503 Service Temporarily Unavailable"),
        "{}",
        r.body
    );
    assert_eq!(
        get(&c, &lb.url("/missing")).await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "group not in the snapshot"
    );
    let r = get(&c, &lb.url("/slow/8000")).await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(r.body.contains("504 Gateway Time-out"), "{}", r.body);
    assert_eq!(
        get(&c, &lb.url("/slow/0")).await.status,
        StatusCode::OK,
        "a prompt answer is fine"
    );
    // The listener removed from the configuration: 503.
    lb.plane.install(Snapshot::default());
    assert_eq!(
        get(&c, &lb.url("/")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_response_and_redirect() {
    let lb = Lb::start(
        |port| {
            let redirect = berth_elbv2::model::Redirect {
                protocol: Some("HTTPS".into()),
                port: Some("443".into()),
                host: None,
                path: Some("/new/#{path}".into()),
                query: None,
                status_code: "HTTP_301".into(),
            };
            let temp = berth_elbv2::model::Redirect {
                protocol: None,
                port: None,
                host: Some("other.test".into()),
                path: None,
                query: Some("from=#{host}".into()),
                status_code: "HTTP_302".into(),
            };
            let rules = vec![
                rule(
                    1,
                    vec![cond("path-pattern", &["/old/*"])],
                    ActionConfig::Redirect(redirect),
                ),
                rule(
                    2,
                    vec![cond("path-pattern", &["/temp"])],
                    ActionConfig::Redirect(temp),
                ),
                rule(
                    3,
                    vec![
                        cond("http-request-method", &["GET"]),
                        cond("path-pattern", &["/json"]),
                    ],
                    ActionConfig::FixedResponse {
                        status: 418,
                        content_type: Some("application/json".into()),
                        body: Some("{\"ok\":true}".into()),
                    },
                ),
                default_rule(fixed(404, "nothing here")),
            ];
            snapshot(listener(port, ListenerProtocol::Http, rules), &[])
        },
        None,
    )
    .await;
    let c = client();
    let r = send(&c, &lb.url("/old/page?q=1"), &[("host", "example.com")]).await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        r.headers["location"],
        "https://example.com:443/new/old/page?q=1"
    );
    let r = send(&c, &lb.url("/temp"), &[("host", "example.com:8080")]).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.headers["location"],
        format!("http://other.test:{}/temp?from=example.com", lb.addr.port())
    );
    let r = get(&c, &lb.url("/json")).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (418, "{\"ok\":true}"));
    assert_eq!(r.headers["content-type"], "application/json");
    let r = get(&c, &lb.url("/else")).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::NOT_FOUND, "nothing here")
    );
    assert_eq!(r.headers["content-type"], "text/plain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_connection_closed_after_the_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lb = Lb::start(
        |port| {
            let mut l = listener(
                port,
                ListenerProtocol::Http,
                vec![default_rule(fixed(200, "ok"))],
            );
            l.idle_timeout = Duration::from_secs(1);
            snapshot(l, &[])
        },
        None,
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(lb.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    // Keep-alive: the response arrives, then the idle connection is closed
    // by the load balancer (EOF) rather than held forever.
    tokio::time::timeout(WAIT, s.read_to_end(&mut got))
        .await
        .expect("idle connection closed")
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200 OK") && text.ends_with("ok"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let a = Backend::start("a").await;
    let g = group("g", &[&a]);
    let lb = Lb::forwarding(&g).await;
    let c = client();
    let held = tokio::spawn({
        let (c, url) = (c.clone(), lb.url("/hold"));
        async move { get(&c, &url).await }
    });
    wait_until("the request is in flight", || {
        a.held.load(Ordering::SeqCst) == 1
    })
    .await;
    lb.stop.send(true).unwrap();
    // New connections are refused once the accept loop has stopped.
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(lb.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!lb.task.is_finished(), "waits for the request in flight");
    a.release();
    let r = tokio::time::timeout(WAIT, held).await.unwrap().unwrap();
    assert_eq!((r.status, r.backend()), (StatusCode::OK, "a".to_string()));
    tokio::time::timeout(WAIT, lb.task)
        .await
        .expect("serve returns after the last request")
        .unwrap();
}

// ---------------------------------------------------------------- TLS

/// `GET path` with `host` over HTTP/1.1 on `stream`.
async fn http1_get(
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    path: &str,
    host: &str,
) -> Response<Incoming> {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send.send_request(
        Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_with_sni_and_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let site_a = make_cert(dir.path(), "site-a", "a.test");
    let site_b = make_cert(dir.path(), "site-b", "b.test");
    let acceptor = berth_lb::tls::acceptor(dir.path(), &[acm("site-a"), acm("site-b")]).unwrap();
    let backend = Backend::start("a").await;
    let mut g = group("g", &[&backend]);
    g.stickiness = Some(TargetStickiness::LbCookie {
        duration: Duration::from_secs(60),
    });
    let lb = Lb::start(
        |port| forward_to(port, ListenerProtocol::Https, &g),
        Some(acceptor),
    )
    .await;
    let roots = [site_a.clone(), site_b.clone()];

    // HTTP/1.1 by ALPN, certificate for a.test.
    let (alpn, stream) = tls_connect(lb.addr, "a.test", &roots, &[b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let resp = http1_get(stream, "/tls", "a.test").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("AWSALBCORS=") && c.contains("SameSite=None; Secure")),
        "{cookies:?}"
    );
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // HTTP/2 by ALPN, and SNI picks the second certificate (the handshake
    // would fail verification for b.test with a.test's certificate).
    let (alpn, stream) = tls_connect(lb.addr, "b.test", &roots, &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    let (mut send2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = send2
        .send_request(
            Request::get(format!("https://b.test:{}/h2", lb.addr.port()))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        (resp.status(), resp.version()),
        (StatusCode::OK, Version::HTTP_2)
    );

    // Trusting only a.test's certificate tells which one was served: a.test's
    // fails only on the name, b.test's already on the issuer.
    let served = |name: &'static str| {
        let roots = [site_a.clone()];
        async move {
            match tls_connect(lb.addr, name, &roots, &[b"h2"]).await {
                Ok(_) => "a.test (valid)".to_string(),
                Err(e) if e.to_string().contains("UnknownIssuer") => "b.test".to_string(),
                Err(e) if e.to_string().contains("not valid for name") => "a.test".to_string(),
                Err(e) => format!("other: {e}"),
            }
        }
    };
    assert_eq!(
        served("b.test").await,
        "b.test",
        "SNI picks b.test's certificate"
    );
    assert_eq!(
        served("unknown.test").await,
        "a.test",
        "an unknown name gets the default"
    );
    let (_, _) = tls_connect(lb.addr, "a.test", &[site_a], &[])
        .await
        .expect("default certificate");

    // A missing file is named in the error.
    let Err(e) = berth_lb::tls::acceptor(dir.path(), &[acm("nope")]) else {
        panic!("loaded a missing file")
    };
    assert!(e.to_string().contains("nope.pem"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_without_http2_offers_only_http11() {
    let dir = tempfile::tempdir().unwrap();
    let site = make_cert(dir.path(), "site-a", "a.test");
    let acceptor = berth_lb::tls::acceptor_with(dir.path(), &[acm("site-a")], false).unwrap();
    let backend = Backend::start("a").await;
    let g = group("g", &[&backend]);
    let lb = Lb::start(
        |port| {
            let mut l = listener(
                port,
                ListenerProtocol::Https,
                vec![default_rule(forward(&[(&g, 1)]))],
            );
            l.http2 = false;
            snapshot(l, &[&g])
        },
        Some(acceptor),
    )
    .await;
    all_healthy(&lb.plane, &[&g]);
    // A client preferring h2 is answered over HTTP/1.1.
    let (alpn, stream) = tls_connect(lb.addr, "a.test", &[site], &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    let resp = http1_get(stream, "/h1", "a.test").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_pooled_and_counted() {
    let backend = Backend::start("a").await;
    let g = group("g", &[&backend]);
    let lb = Lb::forwarding(&g).await;
    all_healthy(&lb.plane, &[&g]);
    let c = client();
    for _ in 0..20 {
        assert_eq!(get(&c, &lb.url("/")).await.status, StatusCode::OK);
    }
    let counters = lb.plane.stats.target(&g.key(&g.targets[0]));
    assert_eq!(counters.requests.load(Ordering::SeqCst), 20);
    // Sequential requests reuse one keep-alive connection (a second may be
    // opened while the first is being returned to the pool).
    let opened = counters.connections.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&opened),
        "{opened} connections for 20 requests"
    );
    assert_eq!(backend.hits(), 20);
}

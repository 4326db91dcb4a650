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

use crate::DataPlane;
use crate::balance::{self, Balancer};
use crate::routing::{self, RequestFacts};
use crate::snapshot::{ActionConfig, ListenerConfig, Snapshot, TargetStickiness};
use crate::stats::TargetCounters;
use berth_elbv2::model::Redirect;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
    client: Client<HttpConnector, Incoming>,
    balancer: Balancer,
}

/// Serve `listener` until `*shutdown` becomes true (or its sender is
/// dropped, which means nobody can stop this listener any more): then stop
/// accepting, let requests in flight finish, and return.
pub async fn serve(
    listener: TcpListener,
    listener_arn: String,
    plane: Arc<DataPlane>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .build(connector);
    let shared = Arc::new(Shared {
        plane,
        listener_arn,
        https: tls.is_some(),
        client,
        balancer: Balancer::default(),
    });
    let graceful = GracefulShutdown::new();
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(connection(shared.clone(), stream, peer, tls.clone(), graceful.watcher()));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of
                    // spinning.
                    tracing::warn!(listener = %shared.listener_arn, error = %e, "accept failed");
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
        tracing::warn!(listener = %shared.listener_arn, "requests still in flight after the shutdown grace period");
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
        let snap = shared.plane.snapshot();
        let l = snap.listeners.iter().find(|l| l.arn == shared.listener_arn);
        (
            l.is_none_or(|l| l.http2),
            l.map_or(DEFAULT_IDLE, |l| idle_timeout(l)),
        )
    };
    let svc_shared = shared.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(handle(&shared, peer, req).await) }
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

/// One request, start to end. Never fails: every problem is an ALB page.
async fn handle(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Response<ProxyBody> {
    let snap = shared.plane.snapshot();
    let Some(listener) = snap.listeners.iter().find(|l| l.arn == shared.listener_arn) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let host = request_host(&req);
    let rule = {
        let facts = RequestFacts {
            method: req.method().as_str(),
            host: host.as_deref(),
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers(),
            source_ip: peer.ip(),
        };
        routing::select_rule(listener, &facts)
    };
    let Some(rule) = rule else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    match &rule.action {
        ActionConfig::FixedResponse {
            status,
            content_type,
            body,
        } => fixed_response(*status, content_type.as_deref(), body.as_deref()),
        ActionConfig::Redirect(r) => {
            let location =
                redirect_location(r, shared.https, host.as_deref(), listener.port, req.uri());
            redirect_response(&r.status_code, &location)
        }
        ActionConfig::Forward {
            groups,
            group_stickiness,
        } => {
            forward(
                shared,
                &snap,
                listener,
                groups,
                *group_stickiness,
                peer,
                host,
                req,
            )
            .await
        }
    }
}

/// The Host header, or the authority of the URI (HTTP/2's `:authority`).
fn request_host(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
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

#[allow(clippy::too_many_arguments)] // One request's context, used once.
async fn forward(
    shared: &Shared,
    snap: &Snapshot,
    listener: &ListenerConfig,
    groups: &[(String, u32)],
    group_stickiness: Option<Duration>,
    peer: SocketAddr,
    host: Option<String>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let cookies = request_cookies(req.headers());
    let cookie = |name: &str| {
        cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let sticky_group = group_stickiness.and(cookie("AWSALBTG"));
    let Some((gi, _)) = balance::choose_group(groups, sticky_group, rand::random::<f64>()) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let Some((group_arn, _)) = groups.get(gi) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let Some(group) = snap.target_group(group_arn) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let sticky_target = match &group.stickiness {
        Some(TargetStickiness::LbCookie { .. }) => cookie("AWSALB"),
        Some(TargetStickiness::AppCookie { .. }) => cookie("AWSALBAPP-0"),
        _ => None,
    };
    let carried_app_cookie = cookie("AWSALBAPP-0").is_some();
    let Some(choice) = shared.balancer.choose(
        group,
        &shared.plane.health,
        &shared.plane.stats,
        sticky_target,
    ) else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let Some(addr) = choice.target.addr else {
        return error_page(StatusCode::SERVICE_UNAVAILABLE);
    };
    let Some(upstream) = upstream_request(req, addr, peer, host, listener.port, shared.https)
    else {
        return error_page(StatusCode::BAD_REQUEST);
    };
    let guard = InFlight::start(shared.plane.stats.target(&choice.key));
    let resp =
        match tokio::time::timeout(idle_timeout(listener), shared.client.request(upstream)).await {
            Err(_) => return error_page(StatusCode::GATEWAY_TIMEOUT),
            Ok(Err(e)) if e.is_connect() && is_timeout(&e) => {
                return error_page(StatusCode::GATEWAY_TIMEOUT);
            }
            Ok(Err(e)) => {
                tracing::debug!(target = %addr, error = %e, "target request failed");
                return error_page(StatusCode::BAD_GATEWAY);
            }
            Ok(Ok(resp)) => resp,
        };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let expires = SystemTime::now();
    if let Some(d) = group_stickiness {
        add_sticky_cookie(
            &mut parts.headers,
            "AWSALBTG",
            &balance::group_cookie_value(group_arn),
            expiry(expires, d),
            shared.https,
        );
    }
    let target_value = balance::target_cookie_value(&choice.key);
    match &group.stickiness {
        Some(TargetStickiness::LbCookie { duration }) => {
            add_sticky_cookie(
                &mut parts.headers,
                "AWSALB",
                &target_value,
                expiry(expires, *duration),
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
            if app_sets_cookie || (carried_app_cookie && !choice.sticky_hit) {
                let v = format!(
                    "AWSALBAPP-0={target_value}; Expires={}; Path=/",
                    http_date(expiry(expires, *duration))
                );
                append_header(&mut parts.headers, header::SET_COOKIE, &v);
            }
        }
        _ => {}
    }
    let body = UpstreamBody {
        inner: body,
        guard: Some(guard),
        idle: idle_timeout(listener),
        timer: Box::pin(tokio::time::sleep(idle_timeout(listener))),
        armed: false,
    };
    Response::from_parts(parts, body.boxed_unsync())
}

/// Whether a client error is (caused by) a timeout.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The request as the target sees it: same method, path, query, Host and
/// headers, minus hop-by-hop headers, plus ALB's `X-Forwarded-*` and trace
/// id; HTTP/1.1 whatever the client spoke. `None` if the path cannot form
/// a URI (it came from a URI, so it always can).
fn upstream_request(
    req: Request<Incoming>,
    addr: SocketAddr,
    peer: SocketAddr,
    host: Option<String>,
    port: u16,
    https: bool,
) -> Option<Request<Incoming>> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = Uri::try_from(format!("http://{addr}{path}")).ok()?;
    parts.version = Version::HTTP_11;
    let h = &mut parts.headers;
    strip_hop_by_hop(h);
    h.remove(HeaderName::from_static("http2-settings"));
    if !h.contains_key(header::HOST)
        && let Some(v) = host.and_then(|s| HeaderValue::try_from(s).ok())
    {
        h.insert(header::HOST, v);
    }
    // HTTP/2 may split Cookie; HTTP/1.1 wants one header.
    if h.get_all(header::COOKIE).iter().count() > 1 {
        let joined: Vec<&[u8]> = h
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if let Ok(v) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
            h.insert(header::COOKIE, v);
        }
    }
    let client_ip = peer.ip().to_canonical().to_string();
    let xff: Vec<&[u8]> = h
        .get_all("x-forwarded-for")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let xff = if xff.is_empty() {
        client_ip
    } else {
        format!(
            "{}, {client_ip}",
            String::from_utf8_lossy(&xff.join(&b", "[..]))
        )
    };
    set_header(h, "x-forwarded-for", &xff);
    set_header(h, "x-forwarded-proto", if https { "https" } else { "http" });
    set_header(h, "x-forwarded-port", &port.to_string());
    if !h.contains_key("x-amzn-trace-id") {
        set_header(h, "x-amzn-trace-id", &trace_id());
    }
    Some(Request::from_parts(parts, body))
}

/// `Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`, X-Ray's form.
fn trace_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let r: u128 = rand::random();
    format!(
        "Root=1-{:08x}-{:024x}",
        secs as u32,
        r & ((1u128 << 96) - 1)
    )
}

fn set_header(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::try_from(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn append_header(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::try_from(value) {
        h.append(name, v);
    }
}

/// Removes the headers that describe one connection, not the message: the
/// fixed list and whatever `Connection` names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
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
    for n in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        h.remove(n);
    }
    h.remove("keep-alive");
    let proxy: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for n in proxy {
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
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
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
struct UpstreamBody {
    inner: Incoming,
    guard: Option<InFlight>,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The timer runs only while we wait on the target (not while the
    /// client is slow to take data).
    armed: bool,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                if frame.is_none() {
                    this.guard = None;
                }
                Poll::Ready(frame.map(|f| f.map_err(BoxError::from)))
            }
            Poll::Pending => {
                if !this.armed {
                    this.armed = true;
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.timer.as_mut().reset(deadline);
                }
                match this.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.guard = None;
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
        let parts: Vec<&str> = t.split('-').collect();
        assert_eq!(parts[0], "Root=1");
        assert_eq!((parts[1].len(), parts[2].len()), (8, 24));
    }
}

//! What the integration tests share: ELBv2 records made through the API in
//! a MemoryStore, backends and ports on 127.0.0.1, certificates made by the
//! openssl CLI, and a TLS client.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use berth_arn::{AccountId, Region};
use berth_elbv2::model;
use berth_elbv2::{Elbv2Request, handle};
use berth_lb::TargetKey;
use berth_lb::snapshot::{NoInstances, Snapshot};
use berth_store::memory::MemoryStore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Generous: the suite runs in parallel on two cores.
pub const WAIT: Duration = Duration::from_secs(30);

/// A MemoryStore changed through the ELBv2 API, as one account in one
/// region.
pub struct Env {
    pub store: Arc<MemoryStore>,
    pub account: AccountId,
    pub region: Region,
}

impl Env {
    pub fn new() -> Env {
        Env {
            store: Arc::new(MemoryStore::new()),
            account: "123456789012".parse().unwrap(),
            region: "us-east-1".parse().unwrap(),
        }
    }

    /// One ELBv2 action; panics with the action's name on an error.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> String {
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

    /// The key of the account's ELBv2 state record.
    pub fn state_key(&self) -> String {
        model::state_key(self.account.as_str(), self.region.as_str())
    }

    /// The data plane's configuration from the stored records.
    pub async fn snapshot(&self) -> Snapshot {
        let (state, _) = model::load(self.store.as_ref(), &self.state_key())
            .await
            .unwrap();
        Snapshot::build([&state], &NoInstances)
    }

    /// A load balancer of `kind` (`network`, or else an application one on
    /// two subnets); its ARN.
    pub async fn lb(&self, name: &str, kind: &str) -> String {
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
    pub async fn ip_group(&self, name: &str, protocol: &str, ports: &[u16]) -> String {
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
            self.register(&tg, *port).await;
        }
        tg
    }

    /// Registers 127.0.0.1:`port` in `tg`.
    pub async fn register(&self, tg: &str, port: u16) {
        self.targets("RegisterTargets", tg, port).await;
    }

    /// Deregisters 127.0.0.1:`port` from `tg`.
    pub async fn deregister(&self, tg: &str, port: u16) {
        self.targets("DeregisterTargets", tg, port).await;
    }

    async fn targets(&self, action: &str, tg: &str, port: u16) {
        let port = port.to_string();
        self.call(
            action,
            &[
                ("TargetGroupArn", tg),
                ("Targets.member.1.Id", "127.0.0.1"),
                ("Targets.member.1.Port", &port),
            ],
        )
        .await;
    }

    /// A listener of `lb` on `port` forwarding to `tg`; its ARN.
    pub async fn listener(&self, lb: &str, protocol: &str, port: u16, tg: &str) -> String {
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

/// The text of the first `<tag>` in `xml`.
pub fn text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

/// The health table's key for 127.0.0.1:`port` in `tg`.
pub fn key(tg: &str, port: u16) -> TargetKey {
    TargetKey {
        target_group_arn: tg.to_string(),
        id: "127.0.0.1".to_string(),
        port,
    }
}

/// Polls `check` until it holds; fails after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port free right now, that nobody listens on (bound, then released).
pub async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A backend on a new 127.0.0.1 port running `serve` in a task of its own
/// for every connection accepted; stops accepting on the first error.
pub async fn serve_each<F, Fut>(serve: F) -> (u16, JoinHandle<()>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve(s));
        }
    });
    (port, task)
}

/// A TCP echo backend counting its connections.
pub async fn tcp_echo() -> (u16, Arc<AtomicUsize>, JoinHandle<()>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let (port, task) = serve_each(move |mut s| {
        c.fetch_add(1, Ordering::SeqCst);
        async move {
            let (mut r, mut w) = s.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
        }
    })
    .await;
    (port, count, task)
}

/// Reads up to the end of a request's head (`\r\n\r\n`); `None` when the
/// peer closes or fails first.
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    Some(got)
}

/// A self-signed certificate for `name`, written with its key to
/// `{dir}/{file}.pem` (as the data plane's certificate directory holds
/// them) by the openssl CLI. Returns the certificate's DER for a client to
/// trust.
pub fn make_cert(
    dir: &std::path::Path,
    file: &str,
    name: &str,
) -> rustls_pki_types::CertificateDer<'static> {
    use rustls_pki_types::pem::PemObject;
    let (cert, key) = (
        dir.join(format!("{file}.crt")),
        dir.join(format!("{file}.key")),
    );
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ])
        .args([
            "-addext",
            &format!("subjectAltName=DNS:{name}"),
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let pem = [std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()].concat();
    std::fs::write(dir.join(format!("{file}.pem")), pem).unwrap();
    rustls_pki_types::CertificateDer::from_pem_file(&cert).unwrap()
}

/// The ACM ARN of the certificate in `{dir}/{name}.pem`.
pub fn acm(name: &str) -> String {
    format!("arn:aws:acm:us-east-1:123456789012:certificate/{name}")
}

/// Opens a TLS connection for `server_name` trusting `roots`, offering
/// `alpn`; returns the negotiated ALPN protocol and the stream.
pub async fn tls_connect(
    addr: SocketAddr,
    server_name: &str,
    roots: &[rustls_pki_types::CertificateDer<'static>],
    alpn: &[&[u8]],
) -> std::io::Result<(Option<Vec<u8>>, tokio_rustls::client::TlsStream<TcpStream>)> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok((alpn, stream))
}

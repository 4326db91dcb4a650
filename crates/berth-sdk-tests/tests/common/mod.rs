//! The harness every test uses: a real `berth server` process on
//! 127.0.0.1 (port 0) with its own temporary data dir and its own random
//! root credentials, plus AWS SDK clients pointed at it over plain HTTP, and
//! a tiny hand-written HTTP/1.1 client for requests no SDK would send.
//!
//! The process is killed (SIGKILL, then reaped) when the [`BerthServer`] is
//! dropped, including when the test panics.

#![allow(dead_code)] // each test binary uses a different part of the harness

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

pub const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// How long a starting server may take to print `ready` (a cold debug binary
/// on a loaded 2-core machine can be slow; this is a hang guard, not a
/// performance assertion).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Root credentials of one test's server.
#[derive(Clone, Debug)]
pub struct RootCreds {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
}

impl RootCreds {
    /// Fresh random credentials (std's per-process random hasher keys are
    /// the entropy source, so no rand crate is needed).
    pub fn random() -> RootCreds {
        RootCreds {
            access_key_id: format!("AKIA{}", random_string(16, UPPER_ALNUM)),
            secret_access_key: random_string(40, ALNUM),
            account_id: random_string(12, DIGITS),
        }
    }
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const DIGITS: &[u8] = b"0123456789";

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(len);
    let mut bits = random_u64();
    let mut left = 8;
    for _ in 0..len {
        if left == 0 {
            bits = random_u64();
            left = 8;
        }
        out.push(alphabet[(bits & 0xff) as usize % alphabet.len()] as char);
        bits >>= 8;
        left -= 1;
    }
    out
}

/// A short random suffix for resource names.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        random_string(8, b"abcdefghijklmnopqrstuvwxyz0123456789")
    )
}

/// The `berth` binary: `$BERTH_BIN`, else `target/<profile>/berth` next to
/// this test executable (`target/<profile>/deps/<test>-<hash>`).
pub fn berth_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable is in target/<profile>/deps");
    let bin = profile_dir.join(format!("berth{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p berth` first (or set BERTH_BIN)",
        bin.display()
    );
    bin
}

/// One running `berth server`.
pub struct BerthServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub creds: RootCreds,
    subcommand: &'static str,
    extra: Vec<String>,
    /// The address it listens on (port 0 → [`BerthServer::port`]).
    pub ip: String,
}

impl BerthServer {
    /// Start a server on a fresh data dir with fresh random credentials.
    pub fn start() -> BerthServer {
        let dir = tempfile::Builder::new()
            .prefix("berth-sdk-test-")
            .tempdir()
            .expect("tempdir");
        let creds = RootCreds::random();
        let (child, port) = spawn(dir.path(), &creds);
        BerthServer {
            child: Some(child),
            port,
            dir,
            creds,
            subcommand: "server",
            extra: Vec::new(),
            ip: "127.0.0.1".into(),
        }
    }

    /// `berth server` listening on `ip` (an address a test's network
    /// namespaces can reach), on a fresh data dir.
    pub fn start_on(ip: &str) -> BerthServer {
        let dir = tempfile::Builder::new().prefix("berth-sdk-test-").tempdir().expect("tempdir");
        let creds = RootCreds::random();
        let extra = vec!["--listen".to_string(), format!("{ip}:0")];
        let (child, port) = spawn_with(dir.path(), &creds, "server", &extra);
        BerthServer {
            child: Some(child),
            port,
            dir,
            creds,
            subcommand: "server",
            extra,
            ip: ip.to_string(),
        }
    }

    /// `berth up` (server and agent in one process) on a fresh data dir,
    /// with `extra` arguments.
    pub fn start_up(dir: tempfile::TempDir, extra: Vec<String>) -> BerthServer {
        let creds = RootCreds::random();
        let (child, port) = spawn_with(dir.path(), &creds, "up", &extra);
        BerthServer {
            child: Some(child),
            port,
            dir,
            creds,
            subcommand: "up",
            extra,
            ip: "127.0.0.1".into(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }

    /// SIGKILL the server and reap it: nothing gets a chance to flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain syscall on the pid of a child we have not reaped
            // yet, so the pid cannot have been reused.
            let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            assert_eq!(
                rc,
                0,
                "kill(SIGKILL) failed: {}",
                std::io::Error::last_os_error()
            );
            let status = child.wait().expect("waiting for the killed server");
            assert!(
                !status.success(),
                "a SIGKILLed server cannot exit successfully: {status:?}"
            );
        }
    }

    /// Stop gracefully with SIGTERM and wait for the exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: as in kill9.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Start the server again on the same data dir and credentials (after
    /// [`kill9`](Self::kill9) or [`terminate`](Self::terminate); a running
    /// server is killed first). It listens on a new port: clients must be
    /// built again.
    pub fn restart(&mut self) {
        self.kill9();
        let (child, port) = spawn_with(self.dir.path(), &self.creds, self.subcommand, &self.extra);
        self.child = Some(child);
        self.port = port;
    }

    pub fn ecs_client(&self) -> aws_sdk_ecs::Client {
        self.ecs_client_with(
            &self.creds.access_key_id,
            &self.creds.secret_access_key,
            "us-east-1",
        )
    }

    pub fn ecs_client_in(&self, region: &str) -> aws_sdk_ecs::Client {
        self.ecs_client_with(
            &self.creds.access_key_id,
            &self.creds.secret_access_key,
            region,
        )
    }

    pub fn ecs_client_with(
        &self,
        access_key_id: &str,
        secret: &str,
        region: &str,
    ) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::from_conf(self.ecs_config(access_key_id, secret, region).build())
    }

    /// The client configuration, to adjust (retries, timeouts) before build.
    pub fn ecs_config(
        &self,
        access_key_id: &str,
        secret: &str,
        region: &str,
    ) -> aws_sdk_ecs::config::Builder {
        aws_sdk_ecs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new(region.to_string()))
            .credentials_provider(Credentials::new(
                access_key_id,
                secret,
                None,
                None,
                "berth-sdk-tests",
            ))
            .http_client(plain_http_client())
    }

    pub fn sts_client(&self) -> aws_sdk_sts::Client {
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                &self.creds.access_key_id,
                &self.creds.secret_access_key,
                None,
                None,
                "berth-sdk-tests",
            ))
            .http_client(plain_http_client())
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }

    /// A SigV4-signed ECS JSON request sent by hand (body as given, even
    /// when it is not valid JSON).
    pub fn signed_ecs_request(&self, operation_target: &str, body: &[u8]) -> RawResponse {
        self.signed_json_request(operation_target, body, "us-east-1", "ecs")
    }

    pub fn signed_json_request(
        &self,
        target: &str,
        body: &[u8],
        region: &str,
        service: &str,
    ) -> RawResponse {
        let host = format!("{}:{}", self.ip, self.port);
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), host.clone()),
            ("content-type".into(), JSON_1_1.into()),
            ("x-amz-target".into(), target.into()),
        ];
        let signing = sign(
            "POST",
            &format!("http://{host}/"),
            &headers,
            body,
            &self.creds.access_key_id,
            &self.creds.secret_access_key,
            region,
            service,
        );
        headers.extend(signing);
        raw_request(self.port, "POST", "/", &headers, body)
    }
}

impl Drop for BerthServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The SDK's hyper 1.x client without any TLS provider: plain HTTP only,
/// so neither rustls nor aws-lc-rs is compiled.
pub fn plain_http_client() -> aws_sdk_ecs::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

fn spawn(dir: &Path, creds: &RootCreds) -> (Child, u16) {
    spawn_with(dir, creds, "server", &[])
}

/// `berth SUBCOMMAND --listen 127.0.0.1:0 --data-dir DIR EXTRA...`, waiting
/// for its `ready ADDR` line.
pub fn spawn_with(dir: &Path, creds: &RootCreds, subcommand: &str, extra: &[String]) -> (Child, u16) {
    let mut command = Command::new(berth_bin());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // If the test process dies without running Drop (a runner's timeout
        // kill, an abort), the kernel kills the server too. PDEATHSIG fires
        // when the spawning *thread* exits, so servers are only ever started
        // from the test's own thread, which outlives them.
        // SAFETY: prctl is async-signal-safe and touches no Rust state.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command
        .arg(subcommand)
        .args(if extra.iter().any(|a| a == "--listen") { &[][..] } else { &["--listen", "127.0.0.1:0"][..] })
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env("BERTH_ROOT_ACCESS_KEY_ID", &creds.access_key_id)
        .env("BERTH_ROOT_SECRET_ACCESS_KEY", &creds.secret_access_key)
        .env("BERTH_ACCOUNT_ID", &creds.account_id)
        .env(
            "BERTH_LOG",
            std::env::var("BERTH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", berth_bin().display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    // Read until `ready ADDR`, then keep draining so the server never blocks
    // on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("ready ") {
                // Once the receiver is gone this fails harmlessly.
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = match rx.recv_timeout(START_TIMEOUT) {
        Ok(a) => a,
        Err(e) => {
            let _ = child.kill();
            let status = child.wait();
            panic!("berth server did not print `ready` ({e}); exit status {status:?}");
        }
    };
    let port = addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("unexpected ready line address {addr:?}"));
    (child, port)
}

/// SigV4 headers (`authorization`, `x-amz-date`, ...) for a request, computed
/// by aws-sigv4 independently of Berth's own verifier.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = Credentials::new(access_key_id, secret, None, None, "berth-sdk-tests").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _signature) = sign(signable, &params).expect("signing").into_parts();
    instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A response read by [`raw_request`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `__type` of a JSON error body.
    pub fn error_type(&self) -> String {
        self.json()["__type"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection, written by hand, with
/// `connection: close`. The body is written from a second thread while this
/// one reads, so a server that answers before reading the whole body (413)
/// is still heard even if it then resets the connection.
pub fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("host") {
        head.push_str(&format!("host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream
        .write_all(head.as_bytes())
        .expect("write request head");
    let mut writer = stream.try_clone().expect("clone stream");
    let body = body.to_vec();
    let write_thread = std::thread::spawn(move || {
        // The server may answer and close before taking all of it.
        let _ = writer.write_all(&body);
        let _ = writer.flush();
    });
    let resp = read_response(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = write_thread.join();
    resp
}

fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed before a full response head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "reading the response head: {e} (got {:?})",
                String::from_utf8_lossy(&buf)
            ),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[header_end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match length {
        Some(n) => {
            while body.len() < n {
                match stream.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(k) => body.extend_from_slice(&chunk[..k]),
                    Err(e) => panic!("reading the response body: {e}"),
                }
            }
            body.truncate(n);
        }
        None => {
            // No length: read to close (tolerating a reset at the end).
            while let Ok(k) = stream.read(&mut chunk) {
                if k == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..k]);
            }
        }
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The ECS `X-Amz-Target` of an operation.
pub fn ecs_target(operation: &str) -> String {
    format!("{ECS_TARGET_PREFIX}.{operation}")
}

/// The AWS error code of any SDK error (`ProvideErrorMetadata::code`).
pub fn error_code<E, R>(err: &aws_sdk_ecs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata,
{
    use aws_sdk_ecs::error::ProvideErrorMetadata;
    err.code().unwrap_or("<no code>").to_string()
}

/// The HTTP status of an SDK error's raw response.
pub fn error_status<E>(
    err: &aws_sdk_ecs::error::SdkError<E, aws_sdk_ecs::config::http::HttpResponse>,
) -> u16 {
    err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0)
}

//! Health checks as ELB does them.
//!
//! Every registered, non-draining target with an address, of every target
//! group at least one listener forwards to, is probed every `interval` with
//! `timeout`: an HTTP(S) `GET path` whose status must match the group's
//! matcher, or a TCP connect. Each target walks ELB's state machine
//! ([`Tracker`]): `initial` until `healthy` consecutive successes (or
//! `unhealthy` consecutive failures), then `healthy` / `unhealthy`, flipping
//! after the same thresholds. Results go at once into the data plane's
//! [`HealthTable`](crate::HealthTable) (traffic reads it) and, coalesced,
//! into the store's health record of the target's (account, region), which
//! DescribeTargetHealth and the ECS service controller read.
//!
//! The checker follows [`DataPlane::snapshot`]: each new snapshot is diffed
//! against the running checks, so a target whose check did not change keeps
//! its task, its counters and its state; only added, removed or changed
//! checks start or stop.

use crate::snapshot::{ActionConfig, Snapshot, TargetConfig, TargetGroupConfig};
use crate::{DataPlane, TargetKey, TargetState};
use berth_elbv2::model::{self, HealthRecord, TargetHealth};
use berth_store::{Store, StoreError, Txn, TxnOutcome};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How often the checker looks for a new snapshot. Snapshots are swapped
/// without a notification, so this bounds how late a new target's first
/// check starts.
pub const SNAPSHOT_POLL: Duration = Duration::from_millis(200);

/// How long the store writer waits after a change before writing, so that
/// the flips of many targets in one round become one write.
const STORE_COALESCE: Duration = Duration::from_millis(100);

/// How long the store writer waits before retrying after a store failure.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Compare-on-revision attempts per write before giving up until the next
/// change (nobody else writes the health record, so a conflict is rare).
const MAX_CONFLICT_RETRIES: usize = 8;

/// The largest response head read to find the status line.
const MAX_STATUS_LINE: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("undecodable health record {key}: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    #[error("health record {0} kept changing under us")]
    Conflict(String),
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Success,
    /// An HTTP answer whose status the matcher rejects.
    CodeMismatch(u16),
    /// No connection or no answer within the timeout.
    Timeout,
    /// Connection refused or reset, TLS failure, an unreadable answer.
    Failed,
}

impl Probe {
    /// ELB's reason code and description for a target failing this way.
    pub fn reason(&self) -> Option<(&'static str, String)> {
        match self {
            Probe::Success => None,
            Probe::CodeMismatch(code) => Some((
                "Target.ResponseCodeMismatch",
                format!("Health checks failed with these codes: [{code}]"),
            )),
            Probe::Timeout => Some(("Target.Timeout", "Request timed out".to_string())),
            Probe::Failed => Some((
                "Target.FailedHealthChecks",
                "Health checks failed".to_string(),
            )),
        }
    }
}

/// Whether `code` satisfies an ELB matcher: `"200"`, `"200-399"`,
/// `"200,202"` or a mix; `None` (or nothing parsable) means `"200"`.
pub fn matcher_accepts(matcher: Option<&str>, code: u16) -> bool {
    let mut any = false;
    for part in matcher.unwrap_or("200").split(',').map(str::trim) {
        let range = match part.split_once('-') {
            Some((lo, hi)) => lo
                .trim()
                .parse::<u16>()
                .ok()
                .zip(hi.trim().parse::<u16>().ok()),
            None => part.parse::<u16>().ok().map(|n| (n, n)),
        };
        if let Some((lo, hi)) = range {
            any = true;
            if (lo..=hi).contains(&code) {
                return true;
            }
        }
    }
    !any && code == 200
}

/// How one target is probed. A change of any field restarts the target's
/// check (its state carries over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// The target's address with the health-check port.
    pub addr: SocketAddr,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy: u32,
    pub unhealthy: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    Tcp,
    Http {
        path: String,
        matcher: Option<String>,
        tls: bool,
    },
}

impl CheckSpec {
    /// The check of `target` in `group`, or `None` when it is not probed:
    /// draining, checks disabled, or no address.
    pub fn of(group: &TargetGroupConfig, target: &TargetConfig) -> Option<CheckSpec> {
        let hc = &group.health_check;
        if !hc.enabled || target.draining_since_ms.is_some() {
            return None;
        }
        let addr = target.addr?;
        let port = if hc.port == "traffic-port" {
            target.port
        } else {
            hc.port.parse().unwrap_or(target.port)
        };
        let kind = match hc.protocol.as_str() {
            "HTTP" | "HTTPS" => CheckKind::Http {
                path: hc.path.clone().unwrap_or_else(|| "/".to_string()),
                matcher: hc.matcher.clone(),
                tls: hc.protocol == "HTTPS",
            },
            _ => CheckKind::Tcp,
        };
        // Records come from the API (interval >= 5 s, timeout >= 2 s), but
        // hand-made configurations may say 0; a zero period would spin.
        Some(CheckSpec {
            addr: SocketAddr::new(addr.ip(), port),
            kind,
            interval: Duration::from_secs(u64::from(hc.interval.max(1))),
            timeout: Duration::from_secs(u64::from(hc.timeout.max(1))),
            healthy: hc.healthy.max(1),
            unhealthy: hc.unhealthy.max(1),
        })
    }
}

/// Probe once, within the spec's timeout.
pub async fn probe(spec: &CheckSpec) -> Probe {
    let attempt = async {
        let stream = match TcpStream::connect(spec.addr).await {
            Ok(s) => s,
            Err(_) => return Probe::Failed,
        };
        match &spec.kind {
            CheckKind::Tcp => Probe::Success,
            CheckKind::Http { path, matcher, tls } => {
                let status = if *tls {
                    let Some(connector) = tls_connector() else {
                        return Probe::Failed;
                    };
                    let name = rustls_pki_types::ServerName::IpAddress(spec.addr.ip().into());
                    match connector.connect(name, stream).await {
                        Ok(s) => http_status(s, spec.addr, path).await,
                        Err(_) => None,
                    }
                } else {
                    http_status(stream, spec.addr, path).await
                };
                match status {
                    Some(code) if matcher_accepts(matcher.as_deref(), code) => Probe::Success,
                    Some(code) => Probe::CodeMismatch(code),
                    None => Probe::Failed,
                }
            }
        }
    };
    tokio::time::timeout(spec.timeout, attempt)
        .await
        .unwrap_or(Probe::Timeout)
}

/// Send `GET path` and read the status code of the answer, as ELB's checker
/// does: `Host` is the target's address and port, the connection closes
/// after one exchange.
async fn http_status<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: SocketAddr,
    path: &str,
) -> Option<u16> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ELB-HealthChecker/2.0\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head.windows(2).position(|w| w == b"\r\n") {
            let line = std::str::from_utf8(&head[..end]).ok()?;
            let mut parts = line.split_ascii_whitespace();
            let version = parts.next()?;
            if !version.starts_with("HTTP/") {
                return None;
            }
            return parts.next()?.parse().ok();
        }
        if head.len() > MAX_STATUS_LINE {
            return None;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
}

/// ELB does not validate a target's certificate: HTTPS checks accept any.
fn tls_connector() -> Option<&'static tokio_rustls::TlsConnector> {
    static CONNECTOR: OnceLock<Option<tokio_rustls::TlsConnector>> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| tracing::warn!(error = %e, "HTTPS health checks unavailable"))
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
        .as_ref()
}

/// Accepts any server certificate but still checks the handshake
/// signatures, so the session itself is sound.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// ELB's health state machine for one target. Pure.
#[derive(Debug, Clone)]
pub struct Tracker {
    state: TargetState,
    successes: u32,
    failures: u32,
    last_failure: Option<Probe>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::starting_at(TargetState::Initial)
    }
}

impl Tracker {
    /// A tracker continuing from `state` (a restarted check keeps the
    /// target's state; only `Healthy` and `Unhealthy` carry over).
    pub fn starting_at(state: TargetState) -> Tracker {
        let state = match state {
            TargetState::Healthy | TargetState::Unhealthy => state,
            _ => TargetState::Initial,
        };
        Tracker {
            state,
            successes: 0,
            failures: 0,
            last_failure: None,
        }
    }

    pub fn state(&self) -> TargetState {
        self.state
    }

    /// Count one probe; returns the (possibly new) state.
    pub fn record(&mut self, probe: &Probe, healthy: u32, unhealthy: u32) -> TargetState {
        if *probe == Probe::Success {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            if self.state != TargetState::Healthy && self.successes >= healthy {
                self.state = TargetState::Healthy;
                self.last_failure = None;
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            self.last_failure = Some(probe.clone());
            if self.state != TargetState::Unhealthy && self.failures >= unhealthy {
                self.state = TargetState::Unhealthy;
            }
        }
        self.state
    }

    /// The state as the store records it (`since_ms` left 0 for the caller).
    pub fn stored(&self) -> TargetHealth {
        match self.state {
            TargetState::Healthy => stored("healthy", None),
            TargetState::Unhealthy => {
                let (reason, description) = self
                    .last_failure
                    .as_ref()
                    .and_then(Probe::reason)
                    .unwrap_or((
                        "Target.FailedHealthChecks",
                        "Health checks failed".to_string(),
                    ));
                stored("unhealthy", Some((reason, description)))
            }
            _ => initial(),
        }
    }
}

fn stored(state: &str, reason: Option<(&str, String)>) -> TargetHealth {
    let (reason, description) = match reason {
        Some((r, d)) => (Some(r.to_string()), Some(d)),
        None => (None, None),
    };
    TargetHealth {
        state: state.to_string(),
        reason,
        description,
        since_ms: 0,
    }
}

fn initial() -> TargetHealth {
    stored(
        "initial",
        Some((
            "Elb.InitialHealthChecking",
            "Initial health checking in progress".to_string(),
        )),
    )
}

fn unavailable() -> TargetHealth {
    stored(
        "unavailable",
        Some((
            "Target.HealthCheckDisabled",
            "Health checks are disabled".to_string(),
        )),
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// (account, region) of an ELBv2 ARN
/// (`arn:aws:elasticloadbalancing:REGION:ACCOUNT:...`).
pub fn account_region(arn: &str) -> Option<(String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region, account) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (!region.is_empty() && !account.is_empty()).then(|| (account.to_string(), region.to_string()))
}

/// Every target group a listener of `snap` forwards to.
pub fn groups_in_use(snap: &Snapshot) -> BTreeSet<&str> {
    snap.listeners
        .iter()
        .flat_map(|l| l.rules.iter())
        .filter_map(|r| match &r.action {
            ActionConfig::Forward { groups, .. } => {
                Some(groups.iter().map(|(arn, _)| arn.as_str()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

type RegionKey = (String, String);

/// What the checks know, shared by the check tasks and the store writer.
#[derive(Default)]
struct Known {
    /// The store's view of every checked target and every target of a group
    /// with checks disabled.
    health: HashMap<TargetKey, TargetHealth>,
    /// Draining targets: their store entries are kept as they are
    /// (DescribeTargetHealth derives `draining` from the state record).
    draining: HashSet<TargetKey>,
    /// Every region whose record this checker is responsible for.
    regions: BTreeSet<RegionKey>,
    /// Regions whose record may differ from `health`.
    dirty: BTreeSet<RegionKey>,
}

struct Shared {
    plane: Arc<DataPlane>,
    known: Mutex<Known>,
    wake_writer: Notify,
}

impl Shared {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        // Every update of `Known` is a handful of whole inserts; a panic
        // between them leaves nothing half-written worth refusing.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record `health` for `key`; `since_ms` moves only when the state does.
    fn report(&self, key: &TargetKey, state: TargetState, mut health: TargetHealth) {
        self.plane.health.set(key.clone(), state, Instant::now());
        let mut known = self.known();
        let changed = match known.health.get(key) {
            Some(old) if old.state == health.state => {
                health.since_ms = old.since_ms;
                old.reason != health.reason || old.description != health.description
            }
            _ => {
                health.since_ms = now_ms();
                true
            }
        };
        if changed {
            if let Some(region) = account_region(&key.target_group_arn) {
                known.dirty.insert(region);
            }
            known.health.insert(key.clone(), health);
            drop(known);
            self.wake_writer.notify_one();
        }
    }
}

struct RunningCheck {
    spec: CheckSpec,
    task: JoinHandle<()>,
}

/// The set of running checks, diffed against each new snapshot.
struct Checker {
    shared: Arc<Shared>,
    running: HashMap<TargetKey, RunningCheck>,
}

impl Checker {
    fn reconcile(&mut self, snap: &Snapshot) {
        let used = groups_in_use(snap);
        let mut wanted: HashMap<TargetKey, CheckSpec> = HashMap::new();
        let mut disabled: HashSet<TargetKey> = HashSet::new();
        let mut draining: HashSet<TargetKey> = HashSet::new();
        let mut regions: BTreeSet<RegionKey> = BTreeSet::new();
        for arn in &used {
            let Some(group) = snap.target_group(arn) else {
                continue;
            };
            regions.extend(account_region(arn));
            for target in &group.targets {
                let key = group.key(target);
                if target.draining_since_ms.is_some() {
                    draining.insert(key);
                } else if !group.health_check.enabled {
                    disabled.insert(key);
                } else if let Some(spec) = CheckSpec::of(group, target) {
                    wanted.insert(key, spec);
                }
            }
        }
        // Stop checks no longer wanted or changed.
        self.running.retain(|key, check| {
            let keep = wanted.get(key) == Some(&check.spec);
            if !keep {
                check.task.abort();
            }
            keep
        });
        let now = Instant::now();
        let plane = &self.shared.plane;
        plane
            .health
            .retain(|k| wanted.contains_key(k) || draining.contains(k) || disabled.contains(k));
        for key in &draining {
            plane.health.set(key.clone(), TargetState::Draining, now);
        }
        {
            let mut known = self.shared.known();
            known
                .health
                .retain(|k, _| wanted.contains_key(k) || disabled.contains(k));
            for key in &disabled {
                if known
                    .health
                    .get(key)
                    .is_none_or(|h| h.state != "unavailable")
                {
                    known.health.insert(
                        key.clone(),
                        TargetHealth {
                            since_ms: now_ms(),
                            ..unavailable()
                        },
                    );
                }
            }
            known.draining = draining;
            known.regions.extend(regions);
            let all = known.regions.clone();
            known.dirty.extend(all);
        }
        for key in &disabled {
            plane.health.set(key.clone(), TargetState::Unavailable, now);
        }
        // Start the new ones, continuing from the state a restarted check had.
        for (key, spec) in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            let tracker = Tracker::starting_at(plane.health.state(&key));
            self.shared.report(&key, tracker.state(), tracker.stored());
            let task = tokio::spawn(check_loop(
                self.shared.clone(),
                key.clone(),
                spec.clone(),
                tracker,
            ));
            self.running.insert(key, RunningCheck { spec, task });
        }
        self.shared.wake_writer.notify_one();
    }

    fn stop(&mut self) {
        for (_, check) in self.running.drain() {
            check.task.abort();
        }
    }
}

/// One target's checks: the first at once, then every interval.
async fn check_loop(shared: Arc<Shared>, key: TargetKey, spec: CheckSpec, mut tracker: Tracker) {
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = probe(&spec).await;
        let before = tracker.state();
        let state = tracker.record(&result, spec.healthy, spec.unhealthy);
        if state != before {
            tracing::info!(target_group = %key.target_group_arn, id = %key.id, port = key.port, ?state, probe = ?result, "target health changed");
        }
        shared.report(&key, state, tracker.stored());
    }
}

/// Write what `known` says about `region` into its health record, if the
/// record says otherwise.
async fn write_region(
    store: &dyn Store,
    shared: &Shared,
    region: &RegionKey,
) -> Result<(), HealthError> {
    let key = model::health_key(&region.0, &region.1);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let current = store.get(&key).await?;
        let (old, rev) = match &current {
            None => (HealthRecord::default(), None),
            Some(v) => (
                serde_json::from_slice::<HealthRecord>(&v.value).map_err(|source| {
                    HealthError::Decode {
                        key: key.clone(),
                        source,
                    }
                })?,
                Some(v.mod_revision),
            ),
        };
        let mut next = HealthRecord::default();
        {
            let known = shared.known();
            for (k, h) in &known.health {
                if account_region(&k.target_group_arn).as_ref() == Some(region) {
                    next.targets.insert(
                        model::health_entry_key(&k.target_group_arn, &k.id, k.port),
                        h.clone(),
                    );
                }
            }
            for k in &known.draining {
                let entry = model::health_entry_key(&k.target_group_arn, &k.id, k.port);
                if let Some(h) = old.targets.get(&entry) {
                    next.targets.insert(entry, h.clone());
                }
            }
        }
        if next == old {
            return Ok(());
        }
        // Serializing a map of strings and integers cannot fail.
        let bytes = serde_json::to_vec(&next).unwrap_or_default();
        if let TxnOutcome::Committed { .. } = store
            .txn(Txn::new().require(&key, rev).put(&key, bytes))
            .await?
        {
            return Ok(());
        }
    }
    Err(HealthError::Conflict(key))
}

async fn write_loop(store: Arc<dyn Store>, shared: Arc<Shared>) {
    loop {
        shared.wake_writer.notified().await;
        tokio::time::sleep(STORE_COALESCE).await;
        let dirty = std::mem::take(&mut shared.known().dirty);
        let mut failed = false;
        for region in dirty {
            if let Err(e) = write_region(store.as_ref(), &shared, &region).await {
                tracing::warn!(error = %e, account = %region.0, region = %region.1, "writing target health");
                shared.known().dirty.insert(region);
                failed = true;
            }
        }
        if failed {
            tokio::time::sleep(STORE_RETRY).await;
            shared.wake_writer.notify_one();
        }
    }
}

/// Resolves once `shutdown` says stop (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Check the targets of the plane's current snapshot until `shutdown`,
/// following each new snapshot. Results go to `plane.health` and to the
/// health records in `store`.
pub async fn run(
    store: Arc<dyn Store>,
    plane: Arc<DataPlane>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        plane: plane.clone(),
        known: Mutex::new(Known::default()),
        wake_writer: Notify::new(),
    });
    let writer = tokio::spawn(write_loop(store, shared.clone()));
    let mut checker = Checker {
        shared: shared.clone(),
        running: HashMap::new(),
    };
    let mut last: Option<Arc<Snapshot>> = None;
    let mut poll = tokio::time::interval(SNAPSHOT_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            _ = poll.tick() => {
                let snap = plane.snapshot();
                if last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &snap)) {
                    checker.reconcile(&snap);
                    last = Some(snap);
                }
            }
        }
    }
    checker.stop();
    // Let a pending write land; the process is stopping, so do not wait long.
    let _ = tokio::time::timeout(STORE_COALESCE * 5, async {
        while !shared.known().dirty.is_empty() {
            tokio::time::sleep(STORE_COALESCE).await;
        }
    })
    .await;
    writer.abort();
}

//! The stored records and how they are read and written.
//!
//! All of one (account, region)'s ELBv2 resources live in one JSON record,
//! `elbv2/{account}/{region}/state`, written with compare-on-revision. The
//! API's invariants cross resources (a listener port is unique per load
//! balancer, a rule priority per listener, a target group in use cannot be
//! deleted), and one record makes each check-and-write atomic without a
//! lock. The cost is that writes in a region serialize and the record grows
//! with the resource count; splitting it per resource with a generation key
//! is the later step once the data plane needs to watch individual records.

use crate::Elbv2Error;
use berth_store::{Store, Txn, TxnOutcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How often a read-modify-write is retried when another writer got there first.
pub const MAX_CONFLICT_RETRIES: usize = 32;

pub type Tags = Vec<(String, String)>;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub load_balancers: Vec<LoadBalancer>,
    pub target_groups: Vec<TargetGroup>,
    pub listeners: Vec<Listener>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    /// `application` or `network`.
    pub kind: String,
    pub scheme: String,
    pub dns_name: String,
    pub created: String,
    pub vpc_id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub ip_address_type: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub port: u16,
    pub vpc_id: String,
    pub target_type: String,
    pub health: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub tags: Tags,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: String,
    pub port: String,
    pub path: Option<String>,
    pub interval: u32,
    pub timeout: u32,
    pub healthy: u32,
    pub unhealthy: u32,
    pub matcher: Option<String>,
}

impl HealthCheck {
    /// ELB's defaults for a target group of `protocol`: HTTP(S) groups
    /// check `GET /` expecting 200, every other protocol a TCP connect.
    pub fn defaults(protocol: &str) -> HealthCheck {
        let http = protocol == "HTTP" || protocol == "HTTPS";
        HealthCheck {
            enabled: true,
            protocol: if http { protocol.to_string() } else { "TCP".to_string() },
            port: "traffic-port".to_string(),
            path: http.then(|| "/".to_string()),
            interval: 30,
            timeout: if http { 5 } else { 10 },
            healthy: 5,
            unhealthy: 2,
            matcher: http.then(|| "200".to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub port: u16,
    pub availability_zone: Option<String>,
    /// Set by DeregisterTargets when the group's
    /// `deregistration_delay.timeout_seconds` is above zero: the target
    /// takes no new requests, connections in flight may finish, and the
    /// target leaves the group once the delay has passed (milliseconds
    /// since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining_since_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listener {
    pub arn: String,
    pub lb_arn: String,
    pub port: u16,
    pub protocol: String,
    pub default_actions: Vec<Action>,
    /// HTTPS/TLS listeners: the certificate ARNs, the first the default.
    /// Berth resolves `arn:aws:acm:REGION:ACCOUNT:certificate/NAME` to the
    /// PEM file `NAME.pem` (chain and private key) in the data plane's
    /// certificate directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_policy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub arn: String,
    pub listener_arn: String,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// `forward`, `fixed-response` or `redirect`.
    pub kind: String,
    pub order: Option<u32>,
    pub target_group_arn: Option<String>,
    pub forward: Option<Forward>,
    pub fixed: Option<FixedResponse>,
    pub redirect: Option<Redirect>,
}

impl Action {
    /// Every target group this action sends traffic to.
    pub fn target_groups(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.target_group_arn.iter().map(String::as_str).collect();
        if let Some(f) = &self.forward {
            out.extend(f.target_groups.iter().map(|w| w.arn.as_str()));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forward {
    pub target_groups: Vec<WeightedGroup>,
    pub stickiness: Option<Stickiness>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedGroup {
    pub arn: String,
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stickiness {
    pub enabled: bool,
    pub duration_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FixedResponse {
    pub status_code: String,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redirect {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub status_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub values: Vec<String>,
    pub header_name: Option<String>,
    /// query-string pairs; a missing key matches any key.
    pub query: Vec<(Option<String>, String)>,
}

pub fn state_key(account: &str, region: &str) -> String {
    format!("elbv2/{account}/{region}/state")
}

/// What the data plane's health checks last found for every target of one
/// (account, region): written by berth-lb when a target's state changes,
/// read by DescribeTargetHealth and by the ECS service controller. Kept
/// apart from the state record so health flips never conflict with API
/// writes.
pub fn health_key(account: &str, region: &str) -> String {
    format!("elbv2/{account}/{region}/health")
}

/// Key of one target in [`HealthRecord::targets`].
pub fn health_entry_key(target_group_arn: &str, id: &str, port: u16) -> String {
    format!("{target_group_arn}|{id}|{port}")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// By [`health_entry_key`]. A registered target without an entry has
    /// not been checked yet (`initial`).
    pub targets: BTreeMap<String, TargetHealth>,
}

/// One target's health as ELB reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetHealth {
    /// `initial`, `healthy` or `unhealthy` (`draining` and `unused` are
    /// derived from the state record, not checked).
    pub state: String,
    /// ELB's reason code, e.g. `Target.ResponseCodeMismatch`,
    /// `Target.Timeout`, `Target.FailedHealthChecks`,
    /// `Elb.RegistrationInProgress`, `Elb.InitialHealthChecking`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the target entered this state (ms since the Unix epoch); slow
    /// start counts from the moment a target became healthy.
    pub since_ms: u64,
}

fn internal(msg: impl std::fmt::Display) -> Elbv2Error {
    Elbv2Error::Internal(msg.to_string())
}

pub async fn load(store: &dyn Store, key: &str) -> Result<(State, Option<u64>), Elbv2Error> {
    match store.get(key).await.map_err(internal)? {
        None => Ok((State::default(), None)),
        Some(v) => {
            let state = serde_json::from_slice(&v.value)
                .map_err(|e| internal(format!("undecodable record {key}: {e}")))?;
            Ok((state, Some(v.mod_revision)))
        }
    }
}

/// Read the state, let `change` decide (and fail), write it back if nobody
/// else wrote in between; rerun `change` on a conflict.
pub async fn update<T>(
    store: &dyn Store,
    key: &str,
    mut change: impl FnMut(&mut State) -> Result<T, Elbv2Error>,
) -> Result<T, Elbv2Error> {
    for _ in 0..MAX_CONFLICT_RETRIES {
        let (mut state, rev) = load(store, key).await?;
        let out = change(&mut state)?;
        let bytes = serde_json::to_vec(&state).map_err(internal)?;
        let txn = Txn::new().require(key, rev).put(key, bytes);
        if let TxnOutcome::Committed { .. } = store.txn(txn).await.map_err(internal)? {
            return Ok(out);
        }
    }
    Err(internal(
        "The resource is being modified concurrently. Try again.",
    ))
}

// ---- targets: draining and health, shared by the API, the data plane and
// the ECS service controller ----

/// Milliseconds since the Unix epoch; times before it read as 0.
pub fn epoch_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The group's `deregistration_delay.timeout_seconds` in milliseconds
/// (ELB's default is 300 s when the attribute is absent or unreadable).
pub fn deregistration_delay_ms(tg: &TargetGroup) -> u64 {
    tg.attributes
        .get("deregistration_delay.timeout_seconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(300)
        .saturating_mul(1000)
}

/// A listener's default actions or a rule forward to the group.
pub fn in_use(s: &State, tg_arn: &str) -> bool {
    s.listeners
        .iter()
        .flat_map(|l| &l.default_actions)
        .chain(s.rules.iter().flat_map(|r| &r.actions))
        .any(|a| a.target_groups().contains(&tg_arn))
}

/// A draining target whose deregistration delay has passed: it has left
/// the group, whether or not a write has purged it from the record yet.
/// Every reader treats such a target as absent.
pub fn is_expired(target: &Target, tg: &TargetGroup, now_ms: u64) -> bool {
    expired_after(target, deregistration_delay_ms(tg), now_ms)
}

/// [`is_expired`] with the group's delay already read (for loops over a
/// group's targets while it is borrowed mutably).
pub fn expired_after(target: &Target, delay_ms: u64, now_ms: u64) -> bool {
    target
        .draining_since_ms
        .is_some_and(|since| now_ms >= since.saturating_add(delay_ms))
}

/// When the target's draining ends (ms since the epoch), if it drains.
pub fn draining_until_ms(target: &Target, tg: &TargetGroup) -> Option<u64> {
    target
        .draining_since_ms
        .map(|since| since.saturating_add(deregistration_delay_ms(tg)))
}

/// Drops every expired draining target; true when anything was dropped.
pub fn purge_expired(s: &mut State, now_ms: u64) -> bool {
    let mut purged = false;
    for tg in &mut s.target_groups {
        let before = tg.targets.len();
        let delay = deregistration_delay_ms(tg);
        tg.targets.retain(|t| !expired_after(t, delay, now_ms));
        purged |= tg.targets.len() != before;
    }
    purged
}

/// The registered (not expired) target `id:port` of `tg`, draining or not.
pub fn registered<'a>(tg: &'a TargetGroup, id: &str, port: u16, now_ms: u64) -> Option<&'a Target> {
    tg.targets
        .iter()
        .find(|t| t.id == id && t.port == port && !is_expired(t, tg, now_ms))
}

/// [`update`] at `now_ms`: draining targets whose delay has passed are
/// purged before `change` runs, so the record does not keep them forever.
pub async fn update_at<T>(
    store: &dyn Store,
    key: &str,
    now_ms: u64,
    mut change: impl FnMut(&mut State) -> Result<T, Elbv2Error>,
) -> Result<T, Elbv2Error> {
    update(store, key, |s| {
        purge_expired(s, now_ms);
        change(s)
    })
    .await
}

/// The health record of one (account, region); empty when the data plane
/// has written none yet.
pub async fn load_health(store: &dyn Store, account: &str, region: &str) -> Result<HealthRecord, Elbv2Error> {
    let key = health_key(account, region);
    match store.get(&key).await.map_err(internal)? {
        None => Ok(HealthRecord::default()),
        Some(v) => serde_json::from_slice(&v.value)
            .map_err(|e| internal(format!("undecodable record {key}: {e}"))),
    }
}

/// What DescribeTargetHealth reports for one target: ELB's state, reason
/// code and description (a `healthy` target has neither reason nor
/// description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealthView {
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

impl TargetHealthView {
    fn new(state: &str, reason: &str, description: &str) -> Self {
        TargetHealthView {
            state: state.to_string(),
            reason: Some(reason.to_string()),
            description: Some(description.to_string()),
        }
    }
}

/// The health of target `id:port` of `tg` as ELB reports it, from the
/// state record (registration, draining, use, health checks enabled) and
/// the data plane's health record. Pure, so the API and the ECS service
/// controller agree.
pub fn target_health(
    s: &State,
    health: &HealthRecord,
    tg: &TargetGroup,
    id: &str,
    port: u16,
    now_ms: u64,
) -> TargetHealthView {
    let Some(target) = registered(tg, id, port, now_ms) else {
        return TargetHealthView::new(
            "unused",
            "Target.NotRegistered",
            "Target is not registered to the target group",
        );
    };
    if target.draining_since_ms.is_some() {
        return TargetHealthView::new(
            "draining",
            "Target.DeregistrationInProgress",
            "Target deregistration is in progress",
        );
    }
    if !in_use(s, &tg.arn) {
        return TargetHealthView::new(
            "unused",
            "Target.NotInUse",
            "Target group is not configured to receive traffic from the load balancer",
        );
    }
    if !tg.health.enabled {
        return TargetHealthView::new(
            "unavailable",
            "Target.HealthCheckDisabled",
            "Health checks are disabled",
        );
    }
    match health.targets.get(&health_entry_key(&tg.arn, id, port)) {
        Some(h) if h.state == "healthy" => TargetHealthView {
            state: h.state.clone(),
            reason: None,
            description: None,
        },
        Some(h) => TargetHealthView {
            state: h.state.clone(),
            reason: h.reason.clone(),
            description: h.description.clone(),
        },
        None => TargetHealthView::new(
            "initial",
            "Elb.RegistrationInProgress",
            "Target registration is in progress",
        ),
    }
}

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

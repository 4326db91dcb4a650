//! Container instances: RegisterContainerInstance (agent-facing),
//! DeregisterContainerInstance, DescribeContainerInstances,
//! ListContainerInstances, UpdateContainerInstancesState.
//!
//! Each instance is one record at `Keys::container_instance(cluster, id)`
//! (a JSON object with a top-level `status`, which cluster counts, tags and
//! attributes read). What the instance has left is never stored: it is
//! derived from its registered resources and the per-instance task index
//! (`Keys::instance_tasks`), which holds one small entry per task that still
//! holds resources there. A deregistered instance keeps its record with
//! status INACTIVE (describable, not listed by default), as in ECS.
//!
//! Agent liveness (`agentConnected`) is in memory, see [`Liveness`].

use crate::attributes::{self, StoredAttribute, TARGET_TYPE};
use crate::clusters;
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::repo::{self, MAX_CONFLICT_RETRIES};
use crate::tags::{self, Tag};
use berth_placement::{ContainerInstanceId, InstanceArn, InstanceStatus, InstanceView, Resources, TaskArn, TaskSummary};
use berth_store::{Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

pub use berth_agent_protocol::DISCONNECT_AFTER_SECS;

// ---------------------------------------------------------------------------
// Liveness

/// When each instance's agent was last heard from, in this process only.
///
/// Every poll (and every registration and state report) refreshes the
/// entry at the request's `now`; an agent counts as connected while its
/// last contact is within [`DISCONNECT_AFTER_SECS`]. Nothing here is
/// durable: after a server restart every agent is disconnected until its
/// next poll, which a live agent sends within `POLL_HOLD_SECS`, so the
/// window in which placement skips healthy hosts is a few seconds. With
/// several server replicas each would keep its own map; a replicated
/// deployment must route an agent's polls to one replica or share this.
#[derive(Debug)]
pub struct Liveness {
    seen: Mutex<HashMap<String, SystemTime>>,
    disconnect_after: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness::new(Duration::from_secs(DISCONNECT_AFTER_SECS))
    }
}

impl Liveness {
    pub fn new(disconnect_after: Duration) -> Liveness {
        Liveness { seen: Mutex::new(HashMap::new()), disconnect_after }
    }

    /// Record contact from the instance (by ARN) at `now`.
    pub fn touch(&self, instance_arn: &str, now: SystemTime) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let entry = seen.entry(instance_arn.to_string()).or_insert(now);
        if *entry < now {
            *entry = now;
        }
    }

    pub fn forget(&self, instance_arn: &str) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).remove(instance_arn);
    }

    pub fn last_seen(&self, instance_arn: &str) -> Option<SystemTime> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(instance_arn).copied()
    }

    /// How long the instance's agent has been silent at `now`, counting
    /// from `since` at the earliest (a restarted server has heard from
    /// nobody yet: silence starts when it started listening).
    pub fn silent_for(&self, instance_arn: &str, now: SystemTime, since: SystemTime) -> Duration {
        let last = self.last_seen(instance_arn).map_or(since, |t| t.max(since));
        now.duration_since(last).unwrap_or(Duration::ZERO)
    }

    /// Every instance heard from, with when it was last heard from.
    pub fn snapshot(&self) -> Vec<(String, SystemTime)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn disconnect_after(&self) -> Duration {
        self.disconnect_after
    }

    pub fn connected(&self, instance_arn: &str, now: SystemTime) -> bool {
        match self.last_seen(instance_arn) {
            None => false,
            Some(t) => now.duration_since(t).map(|d| d <= self.disconnect_after).unwrap_or(true),
        }
    }
}

// ---------------------------------------------------------------------------
// Ids

static ID_COUNTER: AtomicU64 = AtomicU64::new(0);
static ID_SEED: std::sync::LazyLock<std::collections::hash_map::RandomState> =
    std::sync::LazyLock::new(std::collections::hash_map::RandomState::new);

/// A fresh 128-bit id as 32 lowercase hex digits (ECS's form for task and
/// container instance ids). Ids are opaque: they come from a per-process
/// random seed and a counter, never from the clock, and every record
/// created with one is written with a compare-on-absent, so even a
/// collision could not overwrite anything.
pub fn new_hex_id() -> String {
    let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut a = ID_SEED.build_hasher();
    a.write_u64(n);
    a.write_u8(1);
    let mut b = ID_SEED.build_hasher();
    b.write_u64(n);
    b.write_u8(2);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

/// A fresh UUID-shaped id (attachment and container ids).
pub fn new_uuid() -> String {
    let h = new_hex_id();
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

fn stable_hex(text: &str, digits: usize) -> String {
    // FNV-1a, 64 bits, twice with different offsets: stable across builds.
    let mut out = String::new();
    let mut salt = 0u64;
    while out.len() < digits {
        let mut h: u64 = 0xcbf29ce484222325 ^ salt;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        out.push_str(&format!("{h:016x}"));
        salt += 1;
    }
    out.truncate(digits);
    out
}

// ---------------------------------------------------------------------------
// Records

/// A resource the agent registered, kept as given for rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub double_value: f64,
    #[serde(default)]
    pub long_value: i64,
    #[serde(default)]
    pub integer_value: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    pub id: String,
    pub cluster: String,
    pub container_instance_arn: String,
    pub ec2_instance_id: String,
    /// ECS's `version`: bumped by every change of the record.
    pub version: u64,
    #[serde(default)]
    pub version_info: Value,
    pub registered_resources: Vec<ResourceRecord>,
    /// The `ecs.*` (and any other) attributes the agent registered.
    #[serde(default)]
    pub attributes: Vec<StoredAttribute>,
    pub registered_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_devices: Option<Value>,
    /// The agent principal that registered the instance: only it may poll
    /// the instance's desired state (with its tasks' role credentials) or
    /// report for it. None when an administrator registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The role agents' instance credentials are sessions of.
pub const AGENT_ROLE_NAME: &str = "BerthInstanceRole";

/// Whether `principal_arn` is an agent's instance credentials.
pub fn is_agent(principal_arn: &str) -> bool {
    principal_arn.contains(&format!(":assumed-role/{AGENT_ROLE_NAME}/"))
}

/// An agent may act only for the instances it registered; anyone else
/// allowed the action (an administrator) may act for any.
pub fn check_agent_owns(ctx: &RequestContext, owner: Option<&str>, action: &str, instance_arn: &str) -> EcsResult<()> {
    match owner {
        Some(owner) if is_agent(&ctx.principal_arn) && owner != ctx.principal_arn => Err(EcsError::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} on resource: {instance_arn} because the container instance belongs to another agent",
            ctx.principal_arn
        ))),
        _ => Ok(()),
    }
}

impl InstanceRecord {
    fn integer(&self, name: &str) -> i64 {
        self.registered_resources.iter().find(|r| r.name == name).map(|r| r.integer_value).unwrap_or(0)
    }

    fn port_set(&self, name: &str) -> BTreeSet<u16> {
        self.registered_resources
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.string_set_value.as_ref())
            .map(|s| s.iter().filter_map(|p| p.trim().parse::<u16>().ok()).collect())
            .unwrap_or_default()
    }

    pub fn registered(&self) -> Resources {
        Resources {
            cpu: clamp_u32(self.integer("CPU")),
            memory: clamp_u32(self.integer("MEMORY")),
            ports_tcp: self.port_set("PORTS"),
            ports_udp: self.port_set("PORTS_UDP"),
        }
    }

    pub fn status_enum(&self) -> InstanceStatus {
        match self.status.as_str() {
            "ACTIVE" => InstanceStatus::Active,
            "DRAINING" => InstanceStatus::Draining,
            "REGISTERING" => InstanceStatus::Registering,
            "DEREGISTERING" => InstanceStatus::Deregistering,
            "REGISTRATION_FAILED" => InstanceStatus::RegistrationFailed,
            _ => InstanceStatus::Inactive,
        }
    }

    pub fn agent_version(&self) -> Option<String> {
        self.version_info.get("agentVersion").and_then(Value::as_str).map(str::to_string)
    }
}

fn clamp_u32(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

/// One task holding resources on an instance: the value of its entry in
/// `Keys::instance_tasks`. Rewritten when the task's lastStatus changes,
/// deleted when it reaches STOPPED.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceTaskEntry {
    pub task_arn: String,
    pub family: String,
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub cpu: u32,
    pub memory: u32,
    #[serde(default)]
    pub ports_tcp: Vec<u16>,
    #[serde(default)]
    pub ports_udp: Vec<u16>,
    pub last_status: String,
}

/// Pending as ECS counts it for instances and clusters.
pub fn is_pending(last_status: &str) -> bool {
    matches!(last_status, "PROVISIONING" | "PENDING" | "ACTIVATING")
}

// ---------------------------------------------------------------------------
// Instance views (shared with placement and the agent session)

/// An instance with what it has left and the tasks on it.
pub struct InstanceState {
    pub record: InstanceRecord,
    pub mod_revision: u64,
    pub tasks: Vec<InstanceTaskEntry>,
    pub custom: Vec<StoredAttribute>,
}

impl InstanceState {
    pub fn remaining(&self) -> Resources {
        let mut r = self.record.registered();
        for t in &self.tasks {
            r.cpu = r.cpu.saturating_sub(t.cpu);
            r.memory = r.memory.saturating_sub(t.memory);
            r.ports_tcp.extend(t.ports_tcp.iter().copied());
            r.ports_udp.extend(t.ports_udp.iter().copied());
        }
        r
    }

    pub fn running_count(&self) -> usize {
        self.tasks.iter().filter(|t| t.last_status == "RUNNING").count()
    }

    pub fn pending_count(&self) -> usize {
        self.tasks.iter().filter(|t| is_pending(&t.last_status)).count()
    }

    /// Built-in attributes then custom ones (a custom attribute of the same
    /// name wins).
    pub fn all_attributes(&self) -> Vec<StoredAttribute> {
        let mut out: Vec<StoredAttribute> =
            self.record.attributes.iter().filter(|a| !self.custom.iter().any(|c| c.name == a.name)).cloned().collect();
        out.extend(self.custom.iter().cloned());
        out
    }

    pub fn view(&self, connected: bool) -> InstanceView {
        let mut attributes = BTreeMap::new();
        for a in self.all_attributes() {
            attributes.insert(a.name, a.value);
        }
        let dynamic_port_range = attributes
            .get(DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE)
            .and_then(|v| v.as_deref())
            .and_then(parse_port_range);
        InstanceView {
            id: ContainerInstanceId::new(self.record.id.clone()),
            arn: InstanceArn::new(self.record.container_instance_arn.clone()),
            ec2_instance_id: Some(self.record.ec2_instance_id.clone()),
            agent_version: self.record.agent_version(),
            status: self.record.status_enum(),
            agent_connected: connected,
            registered: self.record.registered(),
            remaining: self.remaining(),
            attributes,
            running_tasks: self
                .tasks
                .iter()
                .map(|t| TaskSummary {
                    task_definition_family: t.family.clone(),
                    group: t.group.clone(),
                    started_by: t.started_by.clone(),
                    task_arn: TaskArn::new(t.task_arn.clone()),
                })
                .collect(),
            dynamic_port_range,
        }
    }
}

fn id_of_key(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Every instance record of a cluster with its task entries and custom
/// attributes: three prefix reads.
pub async fn load_states(store: &dyn Store, keys: &Keys, cluster: &str) -> EcsResult<Vec<InstanceState>> {
    load_states_with(store, keys, cluster, true).await
}

/// Every instance record of a cluster with its custom attributes but not
/// its task entries (`tasks` is empty): for deciding, not for placing.
pub async fn load_states_without_tasks(store: &dyn Store, keys: &Keys, cluster: &str) -> EcsResult<Vec<InstanceState>> {
    load_states_with(store, keys, cluster, false).await
}

async fn load_states_with(store: &dyn Store, keys: &Keys, cluster: &str, with_tasks: bool) -> EcsResult<Vec<InstanceState>> {
    let records = berth_store::list_all(store, &keys.container_instances_of(cluster)).await?;
    let entries = if with_tasks {
        repo::load_all::<InstanceTaskEntry>(store, &keys.instance_tasks_of(cluster)).await?
    } else {
        Vec::new()
    };
    let attrs_prefix = format!("{}{TARGET_TYPE}/", keys.attributes_of(cluster));
    let customs = repo::load_all::<Vec<StoredAttribute>>(store, &attrs_prefix).await?;
    let mut tasks_by: HashMap<String, Vec<InstanceTaskEntry>> = HashMap::new();
    let prefix = keys.instance_tasks_of(cluster);
    for (k, e) in entries {
        let rest = k.strip_prefix(&prefix).unwrap_or(&k);
        if let Some((instance, _)) = rest.split_once('/') {
            tasks_by.entry(instance.to_string()).or_default().push(e);
        }
    }
    let mut custom_by: HashMap<String, Vec<StoredAttribute>> =
        customs.into_iter().map(|(k, v)| (id_of_key(&k).to_string(), v)).collect();
    let mut out = Vec::with_capacity(records.len());
    for (key, v) in records {
        let record: InstanceRecord = match serde_json::from_slice(&v.value) {
            Ok(r) => r,
            // Records written by other code paths (tests) without the full
            // shape are not instances an agent registered.
            Err(_) => continue,
        };
        let id = id_of_key(&key).to_string();
        out.push(InstanceState {
            tasks: tasks_by.remove(&id).unwrap_or_default(),
            custom: custom_by.remove(&id).unwrap_or_default(),
            record,
            mod_revision: v.mod_revision,
        });
    }
    Ok(out)
}

/// One instance's state.
pub async fn load_state(store: &dyn Store, keys: &Keys, cluster: &str, id: &str) -> EcsResult<Option<InstanceState>> {
    let Some(loaded) = repo::load::<InstanceRecord>(store, &keys.container_instance(cluster, id)).await? else {
        return Ok(None);
    };
    let tasks = repo::load_all::<InstanceTaskEntry>(store, &keys.instance_tasks(cluster, id))
        .await?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let custom = attributes::custom_attributes(store, keys, cluster, id).await?;
    Ok(Some(InstanceState { record: loaded.record, mod_revision: loaded.mod_revision, tasks, custom }))
}

/// The instance id a `containerInstance` reference names within `cluster`:
/// a bare id or an ARN (`container-instance/CLUSTER/ID` or the old
/// `container-instance/ID`). `None` when it cannot name one here.
pub fn instance_id_from_reference(ctx: &RequestContext, cluster: &str, reference: &str) -> Option<String> {
    ctx.cluster_scoped_id("container-instance", cluster, reference)
}

// ---------------------------------------------------------------------------
// Rendering

fn resource_json(r: &ResourceRecord) -> Value {
    let mut v = json!({
        "name": r.name,
        "type": r.kind,
        "doubleValue": r.double_value,
        "longValue": r.long_value,
        "integerValue": r.integer_value,
    });
    if let Some(s) = &r.string_set_value {
        v["stringSetValue"] = json!(s);
    }
    v
}

fn ports_strings(set: &BTreeSet<u16>) -> Vec<String> {
    set.iter().map(u16::to_string).collect()
}

/// `remainingResources`: the registered list with CPU, MEMORY, PORTS and
/// PORTS_UDP replaced by what is left (ports: taken ones, ECS's convention).
fn remaining_json(state: &InstanceState) -> Value {
    let rem = state.remaining();
    let mut out: Vec<Value> = Vec::new();
    for r in &state.record.registered_resources {
        let mut r = r.clone();
        match r.name.as_str() {
            "CPU" => r.integer_value = i64::from(rem.cpu),
            "MEMORY" => r.integer_value = i64::from(rem.memory),
            "PORTS" => r.string_set_value = Some(ports_strings(&rem.ports_tcp)),
            "PORTS_UDP" => r.string_set_value = Some(ports_strings(&rem.ports_udp)),
            _ => {}
        }
        out.push(resource_json(&r));
    }
    Value::Array(out)
}

fn attribute_json(a: &StoredAttribute) -> Value {
    match &a.value {
        Some(v) => json!({"name": a.name, "value": v}),
        None => json!({"name": a.name}),
    }
}

/// The `ContainerInstance` shape.
pub fn render(state: &InstanceState, connected: bool, with_health: bool, tags: Option<&[Tag]>) -> Value {
    let r = &state.record;
    let mut out = Map::new();
    out.insert("containerInstanceArn".into(), json!(r.container_instance_arn));
    out.insert("ec2InstanceId".into(), json!(r.ec2_instance_id));
    out.insert("version".into(), json!(r.version));
    if !r.version_info.is_null() {
        out.insert("versionInfo".into(), r.version_info.clone());
    }
    out.insert("remainingResources".into(), remaining_json(state));
    out.insert(
        "registeredResources".into(),
        Value::Array(r.registered_resources.iter().map(resource_json).collect()),
    );
    out.insert("status".into(), json!(r.status));
    out.insert("agentConnected".into(), json!(connected));
    out.insert("runningTasksCount".into(), json!(state.running_count()));
    out.insert("pendingTasksCount".into(), json!(state.pending_count()));
    out.insert("attributes".into(), Value::Array(state.all_attributes().iter().map(attribute_json).collect()));
    out.insert("registeredAt".into(), json!(r.registered_at));
    out.insert("attachments".into(), json!([]));
    if let Some(tags) = tags {
        out.insert("tags".into(), tags::to_json(tags));
    }
    if with_health {
        let status = if connected { "OK" } else { "IMPAIRED" };
        out.insert(
            "healthStatus".into(),
            json!({
                "overallStatus": status,
                "details": [{"type": "CONTAINER_RUNTIME", "status": status}],
            }),
        );
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------
// Register

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterInput {
    cluster: Option<String>,
    instance_identity_document: Option<String>,
    total_resources: Option<Vec<ResourceInput>>,
    version_info: Option<Value>,
    container_instance_arn: Option<String>,
    attributes: Option<Vec<AttributeIn>>,
    platform_devices: Option<Value>,
    tags: Option<Vec<Tag>>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ResourceInput {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    double_value: Option<f64>,
    long_value: Option<i64>,
    integer_value: Option<i64>,
    string_set_value: Option<Vec<String>>,
}

#[derive(Deserialize, Clone)]
struct AttributeIn {
    name: Option<String>,
    value: Option<String>,
}

fn resources_from_input(input: Option<Vec<ResourceInput>>) -> EcsResult<Vec<ResourceRecord>> {
    let mut out: Vec<ResourceRecord> = Vec::new();
    for r in input.unwrap_or_default() {
        let name = match r.name {
            Some(n) if !n.is_empty() => n,
            _ => return Err(EcsError::invalid("Resource name can not be blank.")),
        };
        let kind = r.kind.unwrap_or_else(|| if r.string_set_value.is_some() { "STRINGSET" } else { "INTEGER" }.into());
        if !["INTEGER", "LONG", "DOUBLE", "STRINGSET"].contains(&kind.as_str()) {
            return Err(EcsError::invalid(format!("Invalid resource type {kind} for resource {name}.")));
        }
        if matches!(name.as_str(), "CPU" | "MEMORY") && r.integer_value.is_some_and(|v| v < 0) {
            return Err(EcsError::invalid(format!("Resource {name} can not be negative.")));
        }
        if matches!(name.as_str(), "PORTS" | "PORTS_UDP") {
            for p in r.string_set_value.iter().flatten() {
                if p.trim().parse::<u16>().is_err() {
                    return Err(EcsError::invalid(format!("Invalid port {p} in resource {name}.")));
                }
            }
        }
        let rec = ResourceRecord {
            name: name.clone(),
            kind: kind.clone(),
            double_value: r.double_value.unwrap_or(0.0),
            long_value: r.long_value.unwrap_or(0),
            integer_value: r.integer_value.unwrap_or(0),
            string_set_value: if kind == "STRINGSET" { Some(r.string_set_value.unwrap_or_default()) } else { None },
        };
        out.retain(|o| o.name != name);
        out.push(rec);
    }
    // ECS always reports the four standard resources.
    for (name, kind) in [("CPU", "INTEGER"), ("MEMORY", "INTEGER"), ("PORTS", "STRINGSET"), ("PORTS_UDP", "STRINGSET")] {
        if !out.iter().any(|r| r.name == name) {
            out.push(ResourceRecord {
                name: name.into(),
                kind: kind.into(),
                double_value: 0.0,
                long_value: 0,
                integer_value: 0,
                string_set_value: (kind == "STRINGSET").then(Vec::new),
            });
        }
    }
    let order = |n: &str| match n {
        "CPU" => 0,
        "MEMORY" => 1,
        "PORTS" => 2,
        "PORTS_UDP" => 3,
        _ => 4,
    };
    out.sort_by_key(|r| order(&r.name));
    Ok(out)
}

/// The host's instance id: the identity document's `instanceId` when it
/// is JSON with one (as on EC2), else `i-` and 17 hex digits derived from
/// the document's text, or from the `ecs.hostname` attribute, or from the
/// container instance id.
fn ec2_instance_id(document: Option<&str>, attributes: &[StoredAttribute], instance_id: &str) -> String {
    if let Some(doc) = document
        && let Ok(v) = serde_json::from_str::<Value>(doc)
        && let Some(id) = v.get("instanceId").and_then(Value::as_str)
        && !id.is_empty()
    {
        return id.to_string();
    }
    let hostname = attributes.iter().find(|a| a.name == "ecs.hostname").and_then(|a| a.value.clone());
    let seed = document.filter(|d| !d.is_empty()).map(str::to_string).or(hostname).unwrap_or_else(|| instance_id.to_string());
    format!("i-{}", stable_hex(&seed, 17))
}

pub async fn register(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: RegisterInput = input::parse(body)?;
    let resources = resources_from_input(req.total_resources)?;
    let mut attrs: Vec<StoredAttribute> = Vec::new();
    for a in req.attributes.unwrap_or_default() {
        let name = match a.name {
            Some(n) if !n.is_empty() => n,
            _ => return Err(EcsError::invalid("Attribute name can not be blank.")),
        };
        attrs.retain(|x| x.name != name);
        attrs.push(StoredAttribute { name, value: a.value });
    }
    let new_tags = req.tags.unwrap_or_default();
    tags::validate(&new_tags)?;
    let keys = Keys::for_request(ctx);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
        // Re-registration keeps the instance's identity: by ARN, else by
        // host instance id among live instances.
        let mut existing: Option<(InstanceRecord, u64)> = None;
        if let Some(arn) = req.container_instance_arn.as_deref().filter(|a| !a.is_empty()) {
            let id = instance_id_from_reference(ctx, &cluster, arn)
                .ok_or_else(|| EcsError::invalid(format!("Invalid containerInstanceArn: {arn}")))?;
            if let Some(l) = repo::load::<InstanceRecord>(store, &keys.container_instance(&cluster, &id)).await? {
                existing = Some((l.record, l.mod_revision));
            } else {
                return Err(EcsError::invalid(format!(
                    "The referenced container instance {arn} was not found in cluster {cluster}."
                )));
            }
        } else if let Some(doc) = req.instance_identity_document.as_deref() {
            let wanted = ec2_instance_id(Some(doc), &attrs, "");
            for (_, v) in berth_store::list_all(store, &keys.container_instances_of(&cluster)).await? {
                if let Ok(r) = serde_json::from_slice::<InstanceRecord>(&v.value)
                    && r.ec2_instance_id == wanted
                    && r.status != "INACTIVE"
                {
                    existing = Some((r, v.mod_revision));
                    break;
                }
            }
        }
        let (record, expected) = match existing {
            Some((mut r, rev)) => {
                check_agent_owns(ctx, r.agent.as_deref(), "ecs:RegisterContainerInstance", &r.container_instance_arn)?;
                r.registered_resources = resources.clone();
                r.attributes = attrs.clone();
                if let Some(vi) = &req.version_info {
                    r.version_info = vi.clone();
                }
                if req.platform_devices.is_some() {
                    r.platform_devices = req.platform_devices.clone();
                }
                if r.status == "INACTIVE" {
                    r.status = "ACTIVE".into();
                }
                r.version += 1;
                (r, Some(rev))
            }
            None => {
                let id = new_hex_id();
                let arn = ctx.arn(format!("container-instance/{cluster}/{id}"));
                let ec2 = ec2_instance_id(req.instance_identity_document.as_deref(), &attrs, &id);
                (
                    InstanceRecord {
                        status: "ACTIVE".into(),
                        id,
                        cluster: cluster.clone(),
                        container_instance_arn: arn,
                        ec2_instance_id: ec2,
                        version: 1,
                        version_info: req.version_info.clone().unwrap_or_else(|| json!({})),
                        registered_resources: resources.clone(),
                        attributes: attrs.clone(),
                        registered_at: berth_clock::epoch_seconds(ctx.now),
                        platform_devices: req.platform_devices.clone(),
                        agent: is_agent(&ctx.principal_arn).then(|| ctx.principal_arn.clone()),
                    },
                    None,
                )
            }
        };
        let key = keys.container_instance(&cluster, &record.id);
        let mut txn = Txn::new()
            .require(key.clone(), expected)
            .put(key, repo::encode(&record)?)
            .put(keys.instance_epoch(&cluster, &record.id), b"{}".to_vec());
        if expected.is_none() || !new_tags.is_empty() {
            let mut merged = if expected.is_some() {
                tags::load(store, &keys, &record.container_instance_arn).await?
            } else {
                Vec::new()
            };
            tags::merge(&mut merged, new_tags.clone());
            txn = tags::put_new(txn, &keys, &record.container_instance_arn, &merged)?;
        }
        if repo::commit(store, txn).await? {
            liveness.touch(&record.container_instance_arn, ctx.now);
            let state = load_state(store, &keys, &cluster, &record.id).await?.ok_or_else(repo::too_much_contention)?;
            let tags = tags::load(store, &keys, &record.container_instance_arn).await?;
            return Ok(json!({ "containerInstance": render(&state, true, false, Some(&tags)) }));
        }
    }
    Err(repo::too_much_contention())
}

// ---------------------------------------------------------------------------
// Describe

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInput {
    cluster: Option<String>,
    container_instances: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

pub async fn describe(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: DescribeInput = input::parse(body)?;
    let refs = req.container_instances.unwrap_or_default();
    if refs.is_empty() {
        return Err(EcsError::invalid("containerInstances can not be empty."));
    }
    if refs.len() > 100 {
        return Err(EcsError::invalid(format!(
            "containerInstances can have at most 100 items, but {} were provided.",
            refs.len()
        )));
    }
    let (mut with_tags, mut with_health) = (false, false);
    for i in req.include.iter().flatten() {
        match i.as_str() {
            "TAGS" => with_tags = true,
            "CONTAINER_INSTANCE_HEALTH" => with_health = true,
            other => {
                return Err(EcsError::invalid(format!(
                    "Invalid include value {other}. Valid values are: TAGS, CONTAINER_INSTANCE_HEALTH"
                )));
            }
        }
    }
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for r in &refs {
        let state = match instance_id_from_reference(ctx, &cluster, r) {
            Some(id) => load_state(store, &keys, &cluster, &id).await?,
            None => None,
        };
        match state {
            Some(s) => {
                let connected = liveness.connected(&s.record.container_instance_arn, ctx.now);
                let tags = if with_tags { Some(tags::load(store, &keys, &s.record.container_instance_arn).await?) } else { None };
                found.push(render(&s, connected, with_health, tags.as_deref()));
            }
            None => failures.push(json!({"arn": full_arn(ctx, &cluster, r), "reason": "MISSING"})),
        }
    }
    Ok(json!({ "containerInstances": found, "failures": failures }))
}

/// The ARN ECS echoes in a MISSING failure: the reference as given when it
/// is an ARN, else the ARN it would have in this cluster.
fn full_arn(ctx: &RequestContext, cluster: &str, reference: &str) -> String {
    if reference.starts_with("arn:") {
        reference.to_string()
    } else {
        ctx.arn(format!("container-instance/{cluster}/{reference}"))
    }
}

// ---------------------------------------------------------------------------
// List

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    cluster: Option<String>,
    filter: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    status: Option<String>,
}

const STATUSES: &[&str] = &["ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"];

pub async fn list(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let limit = input::max_results(req.max_results, 100)?;
    if let Some(s) = &req.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(EcsError::invalid(format!(
            "Invalid status {s}. Valid values are: {}",
            STATUSES.join(", ")
        )));
    }
    let filter = match req.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(berth_placement::query::parse(f).map_err(|e| EcsError::invalid(e.to_string()))?),
        None => None,
    };
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let states = load_states(store, &keys, &cluster).await?;
    let items: Vec<(String, String)> = states
        .iter()
        .filter(|s| match &req.status {
            Some(want) => &s.record.status == want,
            // ECS lists every status but INACTIVE when no status is given.
            None => s.record.status != "INACTIVE",
        })
        .filter(|s| match &filter {
            None => true,
            Some(expr) => {
                let connected = liveness.connected(&s.record.container_instance_arn, ctx.now);
                expr.evaluate(&s.view(connected))
            }
        })
        .map(|s| (s.record.id.clone(), s.record.container_instance_arn.clone()))
        .collect();
    let (page, token) =
        paging::page("ListContainerInstances", items, |(id, _)| id.clone(), req.next_token.as_deref(), limit)?;
    let mut out = json!({ "containerInstanceArns": page.into_iter().map(|(_, a)| a).collect::<Vec<_>>() });
    if let Some(t) = token {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// UpdateContainerInstancesState

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStateInput {
    cluster: Option<String>,
    container_instances: Option<Vec<String>>,
    status: Option<String>,
}

pub async fn update_state(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: UpdateStateInput = input::parse(body)?;
    let status = input::required(&req.status, "status")?.to_string();
    if !["ACTIVE", "DRAINING"].contains(&status.as_str()) {
        return Err(EcsError::invalid(format!(
            "Container instances status can only be updated to ACTIVE or DRAINING. Invalid status: {status}"
        )));
    }
    let refs = req.container_instances.unwrap_or_default();
    if refs.is_empty() {
        return Err(EcsError::invalid("containerInstances can not be empty."));
    }
    if refs.len() > 10 {
        return Err(EcsError::invalid(format!(
            "containerInstances can have at most 10 items, but {} were provided.",
            refs.len()
        )));
    }
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for r in &refs {
        let Some(id) = instance_id_from_reference(ctx, &cluster, r) else {
            failures.push(json!({"arn": full_arn(ctx, &cluster, r), "reason": "MISSING"}));
            continue;
        };
        let key = keys.container_instance(&cluster, &id);
        let mut done = false;
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some(loaded) = repo::load::<InstanceRecord>(store, &key).await? else { break };
            let mut record = loaded.record;
            if record.status == "INACTIVE" {
                break;
            }
            if record.status != status {
                record.status = status.clone();
                record.version += 1;
                let txn = Txn::new()
                    .require(key.clone(), Some(loaded.mod_revision))
                    .put(key.clone(), repo::encode(&record)?)
                    .put(keys.instance_epoch(&cluster, &id), b"{}".to_vec());
                if !repo::commit(store, txn).await? {
                    continue;
                }
            }
            done = true;
            break;
        }
        match (done, load_state(store, &keys, &cluster, &id).await?) {
            (true, Some(state)) => {
                let connected = liveness.connected(&state.record.container_instance_arn, ctx.now);
                out.push(render(&state, connected, false, None));
            }
            _ => failures.push(json!({"arn": full_arn(ctx, &cluster, r), "reason": "MISSING"})),
        }
    }
    Ok(json!({ "containerInstances": out, "failures": failures }))
}

// ---------------------------------------------------------------------------
// Deregister

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeregisterInput {
    cluster: Option<String>,
    container_instance: Option<String>,
    force: Option<bool>,
}

pub async fn deregister(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: DeregisterInput = input::parse(body)?;
    let reference = input::required(&req.container_instance, "containerInstance")?.to_string();
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let not_found = || EcsError::invalid(format!("The referenced container instance {reference} was not found."));
    let id = instance_id_from_reference(ctx, &cluster, &reference).ok_or_else(not_found)?;
    let force = req.force.unwrap_or(false);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let state = load_state(store, &keys, &cluster, &id).await?.ok_or_else(not_found)?;
        if state.record.status == "INACTIVE" {
            return Err(not_found());
        }
        let live: Vec<&InstanceTaskEntry> = state.tasks.iter().collect();
        if !live.is_empty() && !force {
            return Err(EcsError::invalid("Found running tasks on the instance."));
        }
        let mut record = state.record.clone();
        record.status = "INACTIVE".into();
        record.version += 1;
        let key = keys.container_instance(&cluster, &id);
        let mut txn = Txn::new()
            .require(key.clone(), Some(state.mod_revision))
            .put(key, repo::encode(&record)?)
            .put(keys.instance_epoch(&cluster, &id), b"{}".to_vec());
        // Its tasks are to stop: the agent, if it comes back, sees them
        // desired STOPPED.
        for entry in &live {
            let task_id = id_of_key(&entry.task_arn).to_string();
            txn = crate::tasks::stop_in_txn(
                store,
                ctx,
                &keys,
                &cluster,
                &task_id,
                "Container instance deregistered",
                "TaskFailedToStart",
                txn,
            )
            .await?;
        }
        if repo::commit(store, txn).await? {
            let state = load_state(store, &keys, &cluster, &id).await?.ok_or_else(repo::too_much_contention)?;
            let connected = liveness.connected(&record.container_instance_arn, ctx.now);
            return Ok(json!({ "containerInstance": render(&state, connected, false, None) }));
        }
    }
    Err(repo::too_much_contention())
}

/// The container-instance attribute an agent registers with the IPv4
/// address load balancers reach its published ports at.
pub const HOST_ADDRESS_ATTRIBUTE: &str = "berth.host-address";

/// The container-instance attribute an agent registers with its dynamic
/// host-port range, `LO-HI` (its `ECS_DYNAMIC_HOST_PORT_RANGE`): placement
/// picks the host ports of `hostPort` 0 mappings on that instance from it.
/// Absent (or not a valid range): the default range.
pub const DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE: &str = "berth.dynamic-host-port-range";

/// `LO-HI` with `1 <= LO <= HI <= 65535`.
pub fn parse_port_range(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (lo, hi) = s.trim().split_once('-')?;
    let (lo, hi): (u16, u16) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
    (lo >= 1 && lo <= hi).then_some(lo..=hi)
}

/// The host address of every registered (ACTIVE or DRAINING) container
/// instance of one account and region, all clusters, by EC2 instance id:
/// how load balancers resolve targets of type `instance`. Instances whose
/// agent registered no (valid) `berth.host-address` are left out.
pub async fn host_addresses(
    store: &dyn Store,
    account: &str,
    region: &str,
) -> EcsResult<HashMap<String, std::net::IpAddr>> {
    let records = berth_store::list_all(store, &format!("ecs/{account}/{region}/container-instances/")).await?;
    // A PutAttributes of the same name overrides what the agent registered,
    // as it does for placement.
    let customs = repo::load_all::<Vec<StoredAttribute>>(store, &format!("ecs/{account}/{region}/attributes/")).await?;
    let custom_by: HashMap<String, String> = customs
        .into_iter()
        .filter(|(k, _)| k.contains(&format!("/{TARGET_TYPE}/")))
        .filter_map(|(k, attrs)| {
            let v = attrs.into_iter().find(|a| a.name == HOST_ADDRESS_ATTRIBUTE)?.value?;
            Some((id_of_key(&k).to_string(), v))
        })
        .collect();
    let mut out = HashMap::new();
    for (_, v) in records {
        let Ok(record) = serde_json::from_slice::<InstanceRecord>(&v.value) else { continue };
        if !matches!(record.status.as_str(), "ACTIVE" | "DRAINING") {
            continue;
        }
        let value = custom_by.get(&record.id).cloned().or_else(|| {
            record.attributes.iter().find(|a| a.name == HOST_ADDRESS_ATTRIBUTE).and_then(|a| a.value.clone())
        });
        if let Some(ip) = value.and_then(|v| v.parse::<std::net::IpAddr>().ok()) {
            out.insert(record.ec2_instance_id.clone(), ip);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "container_instances_tests.rs"]
pub(crate) mod tests;

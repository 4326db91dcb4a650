//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks and the
//! agent-facing SubmitTaskStateChange, SubmitContainerStateChange and
//! SubmitAttachmentStateChanges.
//!
//! Records: one per task at `Keys::task(cluster, id)` (a JSON object with a
//! top-level `lastStatus`, which cluster counts read), plus an entry in the
//! instance's task index (`Keys::instance_task`) while the task holds
//! resources there (until it is reported STOPPED). Every transaction that
//! changes what an instance should run rewrites the instance's epoch key
//! (`Keys::instance_epoch`): placements compare it, so two RunTasks that
//! saw the same free resources cannot both commit, and its revision is the
//! agent session's version.
//!
//! Retention: stopped tasks stay describable. ECS forgets them about an
//! hour after they stop; Berth keeps them until a later reaper (not yet
//! written) removes them, so DescribeTasks and ListTasks(desiredStatus
//! STOPPED) keep showing them.

use crate::clusters;
use crate::container_instances::{self, InstanceRecord, InstanceTaskEntry, Liveness, new_hex_id, new_uuid};
use crate::context::RequestContext;
use crate::error::{EcsError, EcsResult};
use crate::input;
use crate::keys::Keys;
use crate::paging;
use crate::repo::{self, MAX_CONFLICT_RETRIES};
use crate::tags::{self, Tag};
use crate::task_definitions::{self, Status as TdStatus, TaskDefinitionRecord};
use berth_agent_protocol::AssignedPort;
use berth_placement::{
    ClusterSnapshot, Constraint, FailureReason, PlacementRequest, PortNeed, Protocol, Strategy, cpu_reservation,
    memory_reservation,
};
use berth_store::{Store, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// How long a RunTask `clientToken` is remembered.
pub const CLIENT_TOKEN_TTL_SECS: f64 = 3600.0;

// ---------------------------------------------------------------------------
// Records

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    pub container_arn: String,
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<Value>,
    #[serde(default)]
    pub network_interfaces: Vec<Value>,
    /// HEALTHY, UNHEALTHY or UNKNOWN, as the agent last reported it.
    pub health_status: String,
    /// The container's definition has a `healthCheck`: only such
    /// (essential) containers decide the task's health.
    #[serde(default)]
    pub has_health_check: bool,
    pub cpu: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    pub essential: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub task_arn: String,
    pub id: String,
    pub cluster: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub family: String,
    pub revision: u32,
    pub container_instance_id: String,
    pub container_instance_arn: String,
    pub overrides: Value,
    pub last_status: String,
    pub desired_status: String,
    pub cpu: String,
    pub memory: String,
    pub reserved_cpu: u32,
    pub reserved_memory: u32,
    pub containers: Vec<ContainerRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity_at: Option<f64>,
    pub created_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<f64>,
    pub group: String,
    pub launch_type: String,
    #[serde(default)]
    pub attachments: Vec<Value>,
    #[serde(default)]
    pub attributes: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    pub network_mode: String,
    /// Host ports chosen at placement (what the agent binds).
    #[serde(default)]
    pub host_ports: Vec<AssignedPort>,
    /// Bumped whenever something the agent must act on changes.
    pub generation: u64,
    #[serde(default)]
    pub enable_execute_command: bool,
    /// Marked STOPPED by the service controller because its host's agent
    /// went silent; cleared when the agent reports the task STOPPED. Until
    /// then the task may still run there, so it keeps its place in the
    /// instance's task index (and the agent, when it returns, is told to
    /// stop it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_lost: bool,
}

impl TaskRecord {
    fn entry(&self) -> InstanceTaskEntry {
        let ports = |p: &str| {
            self.host_ports.iter().filter(|h| h.protocol == p).map(|h| h.host_port).collect::<Vec<_>>()
        };
        InstanceTaskEntry {
            task_arn: self.task_arn.clone(),
            family: self.family.clone(),
            group: self.group.clone(),
            started_by: self.started_by.clone(),
            cpu: self.reserved_cpu,
            memory: self.reserved_memory,
            ports_tcp: ports("tcp"),
            ports_udp: ports("udp"),
            last_status: self.last_status.clone(),
        }
    }
}

const ORDER: &[&str] =
    &["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"];

fn rank(status: &str) -> Option<usize> {
    ORDER.iter().position(|s| *s == status)
}

/// The container health values ECS knows.
const HEALTH_STATUSES: &[&str] = &["HEALTHY", "UNHEALTHY", "UNKNOWN"];

/// A task's `healthStatus`, as ECS derives it: only essential containers
/// with a health check count; any of them UNHEALTHY makes the task
/// UNHEALTHY, all of them HEALTHY makes it HEALTHY, and anything else (none
/// has a check, or one is still UNKNOWN) is UNKNOWN.
pub fn task_health(containers: &[ContainerRecord]) -> &'static str {
    let mut checked = containers.iter().filter(|c| c.essential && c.has_health_check).peekable();
    if checked.peek().is_none() {
        return "UNKNOWN";
    }
    let mut all_healthy = true;
    for c in checked {
        match c.health_status.as_str() {
            "UNHEALTHY" => return "UNHEALTHY",
            "HEALTHY" => {}
            _ => all_healthy = false,
        }
    }
    if all_healthy { "HEALTHY" } else { "UNKNOWN" }
}

fn container_rank(status: &str) -> usize {
    match status {
        "PENDING" => 0,
        "RUNNING" => 1,
        "STOPPED" => 2,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------
// Rendering

fn opt(out: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        out.insert(key.into(), v);
    }
}

fn render_container(task: &TaskRecord, c: &ContainerRecord) -> Value {
    let mut out = Map::new();
    out.insert("containerArn".into(), json!(c.container_arn));
    out.insert("taskArn".into(), json!(task.task_arn));
    out.insert("name".into(), json!(c.name));
    out.insert("image".into(), json!(c.image));
    opt(&mut out, "imageDigest", c.image_digest.as_ref().map(|v| json!(v)));
    opt(&mut out, "runtimeId", c.runtime_id.as_ref().map(|v| json!(v)));
    out.insert("lastStatus".into(), json!(c.last_status));
    opt(&mut out, "exitCode", c.exit_code.map(|v| json!(v)));
    opt(&mut out, "reason", c.reason.as_ref().map(|v| json!(v)));
    out.insert("networkBindings".into(), json!(c.network_bindings));
    out.insert("networkInterfaces".into(), json!(c.network_interfaces));
    out.insert("healthStatus".into(), json!(c.health_status));
    out.insert("cpu".into(), json!(c.cpu));
    opt(&mut out, "memory", c.memory.as_ref().map(|v| json!(v)));
    opt(&mut out, "memoryReservation", c.memory_reservation.as_ref().map(|v| json!(v)));
    Value::Object(out)
}

/// The `Task` shape.
pub fn render(t: &TaskRecord, tags: Option<&[Tag]>) -> Value {
    let mut out = Map::new();
    out.insert("attachments".into(), json!(t.attachments));
    out.insert("attributes".into(), json!(t.attributes));
    opt(&mut out, "availabilityZone", t.availability_zone.as_ref().map(|v| json!(v)));
    out.insert("clusterArn".into(), json!(t.cluster_arn));
    opt(&mut out, "connectivity", t.connectivity.as_ref().map(|v| json!(v)));
    opt(&mut out, "connectivityAt", t.connectivity_at.map(|v| json!(v)));
    out.insert("containerInstanceArn".into(), json!(t.container_instance_arn));
    out.insert("containers".into(), Value::Array(t.containers.iter().map(|c| render_container(t, c)).collect()));
    out.insert("cpu".into(), json!(t.cpu));
    out.insert("createdAt".into(), json!(t.created_at));
    out.insert("desiredStatus".into(), json!(t.desired_status));
    out.insert("enableExecuteCommand".into(), json!(t.enable_execute_command));
    opt(&mut out, "executionStoppedAt", t.execution_stopped_at.map(|v| json!(v)));
    out.insert("group".into(), json!(t.group));
    out.insert("healthStatus".into(), json!(task_health(&t.containers)));
    out.insert("lastStatus".into(), json!(t.last_status));
    out.insert("launchType".into(), json!(t.launch_type));
    out.insert("memory".into(), json!(t.memory));
    out.insert("overrides".into(), t.overrides.clone());
    opt(&mut out, "pullStartedAt", t.pull_started_at.map(|v| json!(v)));
    opt(&mut out, "pullStoppedAt", t.pull_stopped_at.map(|v| json!(v)));
    opt(&mut out, "startedAt", t.started_at.map(|v| json!(v)));
    opt(&mut out, "startedBy", t.started_by.as_ref().map(|v| json!(v)));
    opt(&mut out, "stopCode", t.stop_code.as_ref().map(|v| json!(v)));
    opt(&mut out, "stoppedAt", t.stopped_at.map(|v| json!(v)));
    opt(&mut out, "stoppedReason", t.stopped_reason.as_ref().map(|v| json!(v)));
    opt(&mut out, "stoppingAt", t.stopping_at.map(|v| json!(v)));
    if let Some(tags) = tags {
        out.insert("tags".into(), tags::to_json(tags));
    }
    out.insert("taskArn".into(), json!(t.task_arn));
    out.insert("taskDefinitionArn".into(), json!(t.task_definition_arn));
    out.insert("version".into(), json!(t.version));
    Value::Object(out)
}

// ---------------------------------------------------------------------------
// Input

#[derive(Deserialize, Clone, Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ContainerOverride {
    name: Option<String>,
    command: Option<Vec<String>>,
    environment: Option<Vec<Value>>,
    environment_files: Option<Vec<Value>>,
    cpu: Option<i64>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
    resource_requirements: Option<Vec<Value>>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
struct TaskOverride {
    container_overrides: Option<Vec<ContainerOverride>>,
    cpu: Option<String>,
    memory: Option<String>,
    task_role_arn: Option<String>,
    execution_role_arn: Option<String>,
    inference_accelerator_overrides: Option<Vec<Value>>,
    ephemeral_storage: Option<Value>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct WireConstraint {
    #[serde(rename = "type")]
    kind: Option<String>,
    expression: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct WireStrategy {
    #[serde(rename = "type")]
    kind: Option<String>,
    field: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct RunInput {
    cluster: Option<String>,
    task_definition: Option<String>,
    count: Option<i64>,
    launch_type: Option<String>,
    capacity_provider_strategy: Option<Vec<Value>>,
    overrides: Option<Value>,
    started_by: Option<String>,
    group: Option<String>,
    tags: Option<Vec<Tag>>,
    propagate_tags: Option<String>,
    placement_constraints: Option<Vec<WireConstraint>>,
    placement_strategy: Option<Vec<WireStrategy>>,
    network_configuration: Option<Value>,
    enable_ecs_managed_tags: Option<bool>,
    enable_execute_command: Option<bool>,
    client_token: Option<String>,
    container_instances: Option<Vec<String>>,
    /// Set only by the service controller: a service keeps running (and
    /// replacing) tasks of a task definition deregistered after it was
    /// deployed, as ECS does.
    #[serde(skip)]
    allow_inactive_task_definition: bool,
}

/// Everything about the tasks to create that does not depend on where
/// they go.
pub(crate) struct Prepared {
    cluster: String,
    td: TaskDefinitionRecord,
    overrides: Value,
    override_in: TaskOverride,
    pub(crate) request: PlacementRequest,
    port_owners: Vec<(String, u16)>,
    network_mode: String,
    subnets: Vec<String>,
    tags: Vec<Tag>,
    launch_type: String,
    started_by: Option<String>,
    group: String,
    enable_execute_command: bool,
}

fn parse_u32(text: &str) -> Option<u32> {
    text.trim().parse::<u32>().ok()
}

fn container_defs(td: &TaskDefinitionRecord) -> Vec<&Map<String, Value>> {
    td.container_definitions().iter().filter_map(Value::as_object).collect()
}

fn u32_field(c: &Map<String, Value>, key: &str) -> Option<u32> {
    c.get(key).and_then(Value::as_u64).map(|v| v.min(u64::from(u32::MAX)) as u32)
}

/// [`prepare`] for a request body shaped like RunTask's (the service
/// controller runs a deployment's tasks as RunTask would).
pub(crate) async fn prepare_run(
    store: &dyn Store,
    ctx: &RequestContext,
    body: Map<String, Value>,
    count: u32,
) -> EcsResult<Prepared> {
    let mut req: RunInput = input::parse(body)?;
    req.allow_inactive_task_definition = true;
    prepare(store, ctx, &req, count).await
}

async fn prepare(store: &dyn Store, ctx: &RequestContext, req: &RunInput, count: u32) -> EcsResult<Prepared> {
    let td_text = input::required(&req.task_definition, "taskDefinition")?;
    if req.launch_type.is_some() && req.capacity_provider_strategy.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(EcsError::invalid(
            "Specifying both a launchType and capacityProviderStrategy is not supported. Remove one and try again.",
        ));
    }
    let launch_type = match req.launch_type.as_deref() {
        None | Some("EC2") => "EC2".to_string(),
        Some("EXTERNAL") => "EXTERNAL".to_string(),
        Some("FARGATE") => {
            return Err(EcsError::UnsupportedFeature(
                "The FARGATE launch type is not supported by Berth yet: run tasks on container instances (EC2).".into(),
            ));
        }
        Some(other) => {
            return Err(EcsError::invalid(format!(
                "Invalid launchType {other}. Valid values are: EC2, FARGATE, EXTERNAL"
            )));
        }
    };
    if let Some(p) = &req.propagate_tags
        && !["TASK_DEFINITION", "SERVICE", "NONE"].contains(&p.as_str())
    {
        return Err(EcsError::invalid(format!(
            "Invalid propagateTags {p}. Valid values are: TASK_DEFINITION, SERVICE, NONE"
        )));
    }
    if req.started_by.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(EcsError::invalid("startedBy can have at most 128 characters."));
    }
    if req.group.as_ref().is_some_and(|g| g.len() > 255) {
        return Err(EcsError::invalid("group can have at most 255 characters."));
    }
    let mut own_tags = req.tags.clone().unwrap_or_default();
    tags::validate(&own_tags)?;

    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let td = task_definitions::resolve(store, ctx, td_text).await?.record;
    if td.status != TdStatus::Active && !req.allow_inactive_task_definition {
        return Err(EcsError::client("TaskDefinition is inactive"));
    }
    let override_in: TaskOverride = match &req.overrides {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| EcsError::Serialization(format!("Request could not be deserialized: {e}")))?,
        None => TaskOverride::default(),
    };
    let defs = container_defs(&td);
    let mut by_name: HashMap<String, ContainerOverride> = HashMap::new();
    for o in override_in.container_overrides.iter().flatten() {
        let name = o.name.clone().unwrap_or_default();
        if !defs.iter().any(|c| c.get("name").and_then(Value::as_str) == Some(name.as_str())) {
            return Err(EcsError::invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
        by_name.insert(name, o.clone());
    }

    let network_mode = td.definition.get("networkMode").and_then(Value::as_str).unwrap_or("bridge").to_string();
    let subnets: Vec<String> = req
        .network_configuration
        .as_ref()
        .and_then(|n| n.get("awsvpcConfiguration"))
        .and_then(|a| a.get("subnets"))
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if network_mode == "awsvpc" && subnets.is_empty() {
        return Err(EcsError::invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified."));
    }
    if network_mode != "awsvpc" && req.network_configuration.as_ref().is_some_and(|n| n.get("awsvpcConfiguration").is_some()) {
        return Err(EcsError::invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        ));
    }

    // Reservations, with container and task overrides applied.
    let task_cpu = override_in.cpu.as_deref().and_then(parse_u32).or_else(|| td.definition.get("cpu").and_then(Value::as_str).and_then(parse_u32));
    let task_mem = override_in
        .memory
        .as_deref()
        .and_then(parse_u32)
        .or_else(|| td.definition.get("memory").and_then(Value::as_str).and_then(parse_u32));
    let mut cpus = Vec::new();
    let mut mems = Vec::new();
    let mut ports = Vec::new();
    let mut port_owners = Vec::new();
    for c in &defs {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let o = by_name.get(&name);
        let cpu = o.and_then(|o| o.cpu).map(|v| v.clamp(0, i64::from(u32::MAX)) as u32).or(u32_field(c, "cpu"));
        let mem = o.and_then(|o| o.memory).map(|v| v.clamp(0, i64::from(u32::MAX)) as u32).or(u32_field(c, "memory"));
        let res = o
            .and_then(|o| o.memory_reservation)
            .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32)
            .or(u32_field(c, "memoryReservation"));
        cpus.push(cpu);
        mems.push((mem, res));
        if network_mode == "bridge" || network_mode == "host" {
            for pm in c.get("portMappings").and_then(Value::as_array).into_iter().flatten() {
                let Some(container_port) = pm.get("containerPort").and_then(Value::as_u64) else { continue };
                let container_port = container_port.min(65535) as u16;
                let protocol = match pm.get("protocol").and_then(Value::as_str) {
                    Some("udp") => Protocol::Udp,
                    _ => Protocol::Tcp,
                };
                let host = pm.get("hostPort").and_then(Value::as_u64).map(|p| p.min(65535) as u16);
                let need = if network_mode == "host" {
                    PortNeed::fixed(host.filter(|p| *p != 0).unwrap_or(container_port), protocol)
                } else {
                    match host {
                        Some(p) if p != 0 => PortNeed::fixed(p, protocol),
                        _ => PortNeed::dynamic(protocol),
                    }
                };
                ports.push(need);
                port_owners.push((name.clone(), container_port));
            }
        }
    }
    let cpu = cpu_reservation(task_cpu, cpus);
    let memory = memory_reservation(task_mem, mems);

    let mut constraints = Vec::new();
    for c in req.placement_constraints.iter().flatten() {
        let kind = c.kind.as_deref().unwrap_or_default();
        constraints.push(
            Constraint::from_ecs(kind, c.expression.as_deref().filter(|e| !e.is_empty()))
                .map_err(|e| EcsError::invalid(e.to_string()))?,
        );
    }
    // The task definition's own memberOf constraints apply too.
    for c in td.definition.get("placementConstraints").and_then(Value::as_array).into_iter().flatten() {
        if c.get("type").and_then(Value::as_str) == Some("memberOf")
            && let Some(e) = c.get("expression").and_then(Value::as_str)
        {
            constraints.push(Constraint::member_of(e).map_err(|e| EcsError::invalid(e.to_string()))?);
        }
    }
    let mut strategy = Vec::new();
    for s in req.placement_strategy.iter().flatten() {
        strategy.push(
            Strategy::from_ecs(s.kind.as_deref().unwrap_or_default(), s.field.as_deref())
                .map_err(|e| EcsError::invalid(e.to_string()))?,
        );
    }
    let group = req.group.clone().filter(|g| !g.is_empty()).unwrap_or_else(|| format!("family:{}", td.family));
    let request = PlacementRequest {
        count,
        cpu,
        memory,
        ports,
        constraints,
        strategy,
        group: Some(group.clone()),
        task_definition_family: td.family.clone(),
    };
    request.validate().map_err(|e| EcsError::invalid(e.to_string()))?;

    // overrides as ECS describes them: one entry per container.
    let mut container_overrides = Vec::new();
    for c in &defs {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let mut v = match by_name.get(name) {
            Some(o) => serde_json::to_value(o).unwrap_or_else(|_| json!({})),
            None => json!({}),
        };
        if let Some(m) = v.as_object_mut() {
            m.retain(|_, x| !x.is_null());
            m.insert("name".into(), json!(name));
        }
        container_overrides.push(v);
    }
    let mut overrides = json!({
        "containerOverrides": container_overrides,
        "inferenceAcceleratorOverrides": override_in.inference_accelerator_overrides.clone().unwrap_or_default(),
    });
    for (k, v) in [
        ("cpu", override_in.cpu.clone()),
        ("memory", override_in.memory.clone()),
        ("taskRoleArn", override_in.task_role_arn.clone()),
        ("executionRoleArn", override_in.execution_role_arn.clone()),
    ] {
        if let Some(v) = v {
            overrides[k] = json!(v);
        }
    }
    if let Some(e) = &override_in.ephemeral_storage {
        overrides["ephemeralStorage"] = e.clone();
    }

    // Tags: own tags, plus the task definition's when propagated, plus the
    // managed ones.
    let keys = Keys::for_request(ctx);
    if req.propagate_tags.as_deref() == Some("TASK_DEFINITION") {
        let td_tags = tags::load(store, &keys, &ctx.arn(format!("task-definition/{}:{}", td.family, td.revision))).await?;
        let mut merged = td_tags;
        tags::merge(&mut merged, own_tags);
        own_tags = merged;
    }
    if req.enable_ecs_managed_tags == Some(true) {
        // ECS adds aws:ecs:clusterName (and serviceName for service tasks).
        own_tags.push(Tag { key: "aws:ecs:clusterName".into(), value: cluster.clone() });
    }
    Ok(Prepared {
        cluster,
        td,
        overrides,
        override_in,
        request,
        port_owners,
        network_mode,
        subnets,
        tags: own_tags,
        launch_type,
        started_by: req.started_by.clone(),
        group,
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
    })
}

fn new_task(
    ctx: &RequestContext,
    p: &Prepared,
    state: &container_instances::InstanceState,
    host_ports: &[berth_placement::PortBinding],
) -> TaskRecord {
    let id = new_hex_id();
    let cluster = &p.cluster;
    let task_arn = ctx.arn(format!("task/{cluster}/{id}"));
    let now = berth_clock::epoch_seconds(ctx.now);
    let by_name: HashMap<String, ContainerOverride> = p
        .override_in
        .container_overrides
        .iter()
        .flatten()
        .map(|o| (o.name.clone().unwrap_or_default(), o.clone()))
        .collect();
    let containers = container_defs(&p.td)
        .into_iter()
        .map(|c| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            let o = by_name.get(&name);
            let cpu = o.and_then(|o| o.cpu).or_else(|| c.get("cpu").and_then(Value::as_i64)).unwrap_or(0);
            let memory = o.and_then(|o| o.memory).or_else(|| c.get("memory").and_then(Value::as_i64));
            let res = o.and_then(|o| o.memory_reservation).or_else(|| c.get("memoryReservation").and_then(Value::as_i64));
            ContainerRecord {
                container_arn: ctx.arn(format!("container/{cluster}/{id}/{}", new_uuid())),
                name,
                image: c.get("image").and_then(Value::as_str).unwrap_or_default().to_string(),
                image_digest: None,
                runtime_id: None,
                last_status: "PENDING".into(),
                exit_code: None,
                reason: None,
                network_bindings: Vec::new(),
                network_interfaces: Vec::new(),
                health_status: "UNKNOWN".into(),
                has_health_check: c.get("healthCheck").is_some_and(|h| !h.is_null()),
                cpu: cpu.to_string(),
                memory: memory.map(|m| m.to_string()),
                memory_reservation: res.map(|m| m.to_string()),
                essential: c.get("essential").and_then(Value::as_bool).unwrap_or(true),
            }
        })
        .collect();
    let assigned = p
        .port_owners
        .iter()
        .zip(host_ports)
        .map(|((name, cport), b)| AssignedPort {
            container_name: name.clone(),
            container_port: *cport,
            host_port: b.host_port,
            protocol: match b.protocol {
                Protocol::Tcp => "tcp".into(),
                Protocol::Udp => "udp".into(),
            },
        })
        .collect();
    let attr = |name: &str| state.all_attributes().into_iter().find(|a| a.name == name).and_then(|a| a.value);
    let mut attachments = Vec::new();
    if p.network_mode == "awsvpc" {
        attachments.push(json!({
            "id": new_uuid(),
            "type": "ElasticNetworkInterface",
            "status": "PRECREATED",
            "details": [{"name": "subnetId", "value": p.subnets[0]}],
        }));
    }
    let attributes = match attr("ecs.cpu-architecture") {
        Some(a) => vec![json!({"name": "ecs.cpu-architecture", "value": a})],
        None => Vec::new(),
    };
    let task_cpu = p.override_in.cpu.clone().or_else(|| p.td.definition.get("cpu").and_then(Value::as_str).map(str::to_string));
    let task_mem =
        p.override_in.memory.clone().or_else(|| p.td.definition.get("memory").and_then(Value::as_str).map(str::to_string));
    TaskRecord {
        task_arn,
        id: id.clone(),
        cluster: cluster.clone(),
        cluster_arn: ctx.arn(format!("cluster/{cluster}")),
        task_definition_arn: ctx.arn(format!("task-definition/{}:{}", p.td.family, p.td.revision)),
        family: p.td.family.clone(),
        revision: p.td.revision,
        container_instance_id: state.record.id.clone(),
        container_instance_arn: state.record.container_instance_arn.clone(),
        overrides: p.overrides.clone(),
        last_status: if p.network_mode == "awsvpc" { "PROVISIONING" } else { "PENDING" }.into(),
        desired_status: "RUNNING".into(),
        cpu: task_cpu.unwrap_or_else(|| p.request.cpu.to_string()),
        memory: task_mem.unwrap_or_else(|| p.request.memory.to_string()),
        reserved_cpu: p.request.cpu,
        reserved_memory: p.request.memory,
        containers,
        started_by: p.started_by.clone(),
        version: 1,
        stopped_reason: None,
        stop_code: None,
        connectivity: None,
        connectivity_at: None,
        created_at: now,
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
        execution_stopped_at: None,
        group: p.group.clone(),
        launch_type: p.launch_type.clone(),
        attachments,
        attributes,
        availability_zone: attr("ecs.availability-zone"),
        network_mode: p.network_mode.clone(),
        host_ports: assigned,
        generation: 1,
        enable_execute_command: p.enable_execute_command,
        host_lost: false,
    }
}

// ---------------------------------------------------------------------------
// RunTask / StartTask

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRecord {
    fingerprint: u64,
    created_at: f64,
    task_ids: Vec<String>,
    failures: Vec<Value>,
}

fn fingerprint(body: &Map<String, Value>) -> u64 {
    let mut b = body.clone();
    b.remove("clientToken");
    let mut h = DefaultHasher::new();
    // serde_json maps are ordered (BTreeMap) here, so the text is canonical.
    Value::Object(b).to_string().hash(&mut h);
    h.finish()
}

pub(crate) fn seed_for(ctx: &RequestContext, attempt: usize) -> u64 {
    let mut h = DefaultHasher::new();
    ctx.now.hash(&mut h);
    attempt.hash(&mut h);
    new_hex_id().hash(&mut h);
    h.finish()
}

pub async fn run_task(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let fp = fingerprint(&body);
    let req: RunInput = input::parse(body)?;
    let count = match req.count {
        None => 1,
        Some(n) if (1..=10).contains(&n) => n as u32,
        Some(_) => return Err(EcsError::invalid("Count must be between 1 and 10.")),
    };
    if let Some(t) = &req.client_token
        && (t.is_empty() || t.len() > 64)
    {
        return Err(EcsError::invalid("clientToken must be between 1 and 64 characters."));
    }
    let p = prepare(store, ctx, &req, count).await?;
    let keys = Keys::for_request(ctx);
    let now = berth_clock::epoch_seconds(ctx.now);
    let token_key = req.client_token.as_ref().map(|t| keys.run_task_token(&p.cluster, t));
    if let Some(k) = &token_key
        && let Some(prior) = replay(store, ctx, &keys, &p.cluster, k, fp, now).await?
    {
        return Ok(prior);
    }
    place_and_write(store, liveness, ctx, &keys, &p, None, token_key.map(|k| (k, fp))).await
}

async fn replay(
    store: &dyn Store,
    ctx: &RequestContext,
    keys: &Keys,
    cluster: &str,
    token_key: &str,
    fp: u64,
    now: f64,
) -> EcsResult<Option<Value>> {
    let Some(l) = repo::load::<TokenRecord>(store, token_key).await? else { return Ok(None) };
    if now - l.record.created_at > CLIENT_TOKEN_TTL_SECS {
        return Ok(None);
    }
    if l.record.fingerprint != fp {
        return Err(EcsError::invalid(
            "The clientToken was already used with different parameters within the last hour.",
        ));
    }
    let mut tasks = Vec::new();
    for id in &l.record.task_ids {
        if let Some(t) = repo::load::<TaskRecord>(store, &keys.task(cluster, id)).await? {
            tasks.push(render(&t.record, Some(&tags::load(store, keys, &t.record.task_arn).await?)));
        }
    }
    let _ = ctx;
    Ok(Some(json!({"tasks": tasks, "failures": l.record.failures})))
}

/// Place `p.request` (on `only` instances when StartTask names them) and
/// write every placed task in one transaction that compares the epochs and
/// records of the instances it placed on; on conflict, re-read and re-place.
async fn place_and_write(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    keys: &Keys,
    p: &Prepared,
    only: Option<&[String]>,
    token: Option<(String, u64)>,
) -> EcsResult<Value> {
    let cluster = &p.cluster;
    // One placer per cluster at a time in this process: correctness comes
    // from the epoch compares, this only avoids burning retries.
    let _queued = repo::local_write_lock(&keys.instance_epochs_lock(cluster)).await;
    for attempt in 0..MAX_CONFLICT_RETRIES {
        let world = PlacementWorld::load(store, keys, cluster).await?;
        let connected = |arn: &str| liveness.connected(arn, ctx.now);
        let mut placed = PlacedTasks::default();
        let txn = world.place_into(ctx, keys, p, only, &connected, seed_for(ctx, attempt), Txn::new(), &mut placed)?;
        if placed.tasks.is_empty() && placed.failures.iter().any(|f| f.reason == FailureReason::NoContainerInstances) {
            return Err(EcsError::invalid(FailureReason::NoContainerInstances.as_str()));
        }
        let failures = placed.failures_json();
        let mut txn = txn;
        if let Some((k, fp)) = &token {
            let rec = TokenRecord {
                fingerprint: *fp,
                created_at: berth_clock::epoch_seconds(ctx.now),
                task_ids: placed.tasks.iter().map(|t| t.id.clone()).collect(),
                failures: failures.clone(),
            };
            txn = txn.put(k.clone(), repo::encode(&rec)?);
        }
        if repo::commit(store, txn).await? {
            let rendered: Vec<Value> =
                placed.tasks.iter().map(|t| render(t, Some(&dedup_tags(&p.tags)))).collect();
            return Ok(json!({"tasks": rendered, "failures": failures}));
        }
    }
    Err(repo::too_much_contention())
}

/// What placement reads about a cluster: its instances with the tasks on
/// them, and each instance's epoch revision (read first, so that a
/// placement committed after these reads changes an epoch the writer
/// compares: what was read can never be staler than what is compared).
pub(crate) struct PlacementWorld {
    pub epochs: HashMap<String, u64>,
    pub states: Vec<container_instances::InstanceState>,
}

/// Tasks placed into a transaction, and why the rest did not fit.
#[derive(Default)]
pub(crate) struct PlacedTasks {
    pub tasks: Vec<TaskRecord>,
    pub failures: Vec<berth_placement::Failure>,
    /// Instances whose record and epoch the transaction already compares.
    compared: std::collections::HashSet<String>,
}

impl PlacedTasks {
    fn failures_json(&self) -> Vec<Value> {
        self.failures
            .iter()
            .map(|f| match &f.arn {
                Some(a) => json!({"arn": a.as_str(), "reason": f.reason.as_str()}),
                None => json!({"reason": f.reason.as_str()}),
            })
            .collect()
    }
}

impl PlacementWorld {
    pub async fn load(store: &dyn Store, keys: &Keys, cluster: &str) -> EcsResult<PlacementWorld> {
        let epochs: HashMap<String, u64> = berth_store::list_all(store, &keys.instance_epochs_of(cluster))
            .await?
            .into_iter()
            .map(|(k, v)| (k.rsplit('/').next().unwrap_or_default().to_string(), v.mod_revision))
            .collect();
        let states = container_instances::load_states(store, keys, cluster).await?;
        Ok(PlacementWorld { epochs, states })
    }

    /// Places `p.request` over this world (only on `only` instances when
    /// given) and adds every placed task to `txn`: the task record, its
    /// instance index entry and tags, with compares on each chosen
    /// instance's record and epoch (and a bump of the epoch). Placed tasks
    /// and failures are appended to `placed`; instances already compared
    /// by an earlier call with the same `placed` are not compared twice.
    #[allow(clippy::too_many_arguments)]
    pub fn place_into(
        &self,
        ctx: &RequestContext,
        keys: &Keys,
        p: &Prepared,
        only: Option<&[String]>,
        connected: &dyn Fn(&str) -> bool,
        seed: u64,
        mut txn: Txn,
        placed: &mut PlacedTasks,
    ) -> EcsResult<Txn> {
        let cluster = &p.cluster;
        let chosen: Vec<&container_instances::InstanceState> = self
            .states
            .iter()
            .filter(|s| only.is_none_or(|ids| ids.contains(&s.record.id)))
            .collect();
        let views = chosen.iter().map(|s| s.view(connected(&s.record.container_instance_arn))).collect();
        let snapshot = ClusterSnapshot::new(views);
        let plan = berth_placement::place(&snapshot, &p.request, seed);
        let by_id: HashMap<&str, &container_instances::InstanceState> =
            chosen.iter().map(|s| (s.record.id.as_str(), *s)).collect();
        for pl in &plan.placements {
            let Some(state) = by_id.get(pl.instance_id.as_str()) else { continue };
            let iid = state.record.id.clone();
            if placed.compared.insert(iid.clone()) {
                txn = txn
                    .require(keys.container_instance(cluster, &iid), Some(state.mod_revision))
                    .require(keys.instance_epoch(cluster, &iid), self.epochs.get(&iid).copied())
                    .put(keys.instance_epoch(cluster, &iid), b"{}".to_vec());
            }
            let task = new_task(ctx, p, state, &pl.host_ports);
            let tkey = keys.task(cluster, &task.id);
            txn = txn
                .require(tkey.clone(), None)
                .put(tkey, repo::encode(&task)?)
                .put(keys.instance_task(cluster, &iid, &task.id), repo::encode(&task.entry())?);
            if !p.tags.is_empty() {
                txn = tags::put_new(txn, keys, &task.task_arn, &p.tags)?;
            }
            placed.tasks.push(task);
        }
        placed.failures.extend(plan.failures);
        Ok(txn)
    }
}

fn dedup_tags(t: &[Tag]) -> Vec<Tag> {
    let mut out = Vec::new();
    tags::merge(&mut out, t.to_vec());
    out
}

pub async fn start_task(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: RunInput = input::parse(body)?;
    let refs = req.container_instances.clone().unwrap_or_default();
    if refs.is_empty() {
        return Err(EcsError::invalid("containerInstances can not be empty."));
    }
    if refs.len() > 10 {
        return Err(EcsError::invalid(format!(
            "containerInstances can have at most 10 items, but {} were provided.",
            refs.len()
        )));
    }
    let p = prepare(store, ctx, &RunInput { placement_constraints: None, placement_strategy: None, ..req }, 1).await?;
    let keys = Keys::for_request(ctx);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for r in &refs {
        let id = container_instances::instance_id_from_reference(ctx, &p.cluster, r);
        let exists = match &id {
            Some(id) => repo::load::<container_instances::InstanceRecord>(store, &keys.container_instance(&p.cluster, id))
                .await?
                .is_some_and(|l| l.record.status != "INACTIVE"),
            None => false,
        };
        let Some(id) = id.filter(|_| exists) else {
            let arn = if r.starts_with("arn:") { r.clone() } else { ctx.arn(format!("container-instance/{}/{r}", p.cluster)) };
            failures.push(json!({"arn": arn, "reason": "MISSING"}));
            continue;
        };
        let out = place_and_write(store, liveness, ctx, &keys, &p, Some(std::slice::from_ref(&id)), None).await?;
        tasks.extend(out["tasks"].as_array().cloned().unwrap_or_default());
        failures.extend(out["failures"].as_array().cloned().unwrap_or_default());
    }
    Ok(json!({"tasks": tasks, "failures": failures}))
}

// ---------------------------------------------------------------------------
// StopTask

/// The task id a `task` reference names within `cluster`.
pub fn task_id_from_reference(ctx: &RequestContext, cluster: &str, reference: &str) -> Option<String> {
    ctx.cluster_scoped_id("task", cluster, reference)
}

/// Adds to `txn` the stop of one task: desired STOPPED with its reason and
/// code (unless already stopping), compared on the task's revision, and a
/// bump of its instance's epoch.
#[allow(clippy::too_many_arguments)]
pub async fn stop_in_txn(
    store: &dyn Store,
    ctx: &RequestContext,
    keys: &Keys,
    cluster: &str,
    task_id: &str,
    reason: &str,
    code: &str,
    txn: Txn,
) -> EcsResult<Txn> {
    let key = keys.task(cluster, task_id);
    let Some(l) = repo::load::<TaskRecord>(store, &key).await? else { return Ok(txn) };
    let mut t = l.record;
    if t.desired_status == "STOPPED" {
        return Ok(txn.require(key, Some(l.mod_revision)));
    }
    mark_stopping(&mut t, ctx, reason, code);
    Ok(txn
        .require(key.clone(), Some(l.mod_revision))
        .put(key, repo::encode(&t)?)
        .put(keys.instance_epoch(cluster, &t.container_instance_id), b"{}".to_vec()))
}

pub(crate) fn mark_stopping(t: &mut TaskRecord, ctx: &RequestContext, reason: &str, code: &str) {
    t.desired_status = "STOPPED".into();
    t.stopped_reason = Some(reason.to_string());
    t.stop_code = Some(code.to_string());
    t.stopping_at.get_or_insert(berth_clock::epoch_seconds(ctx.now));
    t.version += 1;
    t.generation += 1;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopInput {
    cluster: Option<String>,
    task: Option<String>,
    reason: Option<String>,
}

pub async fn stop_task(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: StopInput = input::parse(body)?;
    let reference = input::required(&req.task, "task")?.to_string();
    if req.reason.as_ref().is_some_and(|r| r.len() > 1024) {
        return Err(EcsError::invalid("reason can have at most 1024 characters."));
    }
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let not_found = || EcsError::invalid("The referenced task was not found.");
    let id = task_id_from_reference(ctx, &cluster, &reference).ok_or_else(not_found)?;
    let key = keys.task(&cluster, &id);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let l = repo::load::<TaskRecord>(store, &key).await?.ok_or_else(not_found)?;
        let mut t = l.record;
        if t.desired_status == "STOPPED" {
            let tags = tags::load(store, &keys, &t.task_arn).await?;
            return Ok(json!({"task": render(&t, Some(&tags))}));
        }
        let reason = req.reason.clone().unwrap_or_else(|| "Task stopped by user".to_string());
        mark_stopping(&mut t, ctx, &reason, "UserInitiated");
        let txn = Txn::new()
            .require(key.clone(), Some(l.mod_revision))
            .put(key.clone(), repo::encode(&t)?)
            .put(keys.instance_epoch(&cluster, &t.container_instance_id), b"{}".to_vec());
        if repo::commit(store, txn).await? {
            let tags = tags::load(store, &keys, &t.task_arn).await?;
            return Ok(json!({"task": render(&t, Some(&tags))}));
        }
    }
    Err(repo::too_much_contention())
}

// ---------------------------------------------------------------------------
// DescribeTasks / ListTasks

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeInput {
    cluster: Option<String>,
    tasks: Option<Vec<String>>,
    include: Option<Vec<String>>,
}

pub async fn describe(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: DescribeInput = input::parse(body)?;
    let refs = req.tasks.unwrap_or_default();
    if refs.is_empty() {
        return Err(EcsError::invalid("Tasks cannot be empty."));
    }
    if refs.len() > 100 {
        return Err(EcsError::invalid(format!("tasks can have at most 100 items, but {} were provided.", refs.len())));
    }
    let mut with_tags = false;
    for i in req.include.iter().flatten() {
        if i != "TAGS" {
            return Err(EcsError::invalid(format!("Invalid include value {i}. Valid values are: TAGS")));
        }
        with_tags = true;
    }
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for r in &refs {
        let found = match task_id_from_reference(ctx, &cluster, r) {
            Some(id) => repo::load::<TaskRecord>(store, &keys.task(&cluster, &id)).await?,
            None => None,
        };
        match found {
            Some(l) => {
                let tags = if with_tags { Some(tags::load(store, &keys, &l.record.task_arn).await?) } else { None };
                out.push(render(&l.record, tags.as_deref()));
            }
            None => {
                let arn = if r.starts_with("arn:") { r.clone() } else { ctx.arn(format!("task/{cluster}/{r}")) };
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
            }
        }
    }
    Ok(json!({"tasks": out, "failures": failures}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<String>,
    launch_type: Option<String>,
}

pub async fn list(store: &dyn Store, ctx: &RequestContext, body: Map<String, Value>) -> EcsResult<Value> {
    let req: ListInput = input::parse(body)?;
    let limit = input::max_results(req.max_results, 100)?;
    let desired = req.desired_status.clone().unwrap_or_else(|| "RUNNING".into());
    if !["RUNNING", "PENDING", "STOPPED"].contains(&desired.as_str()) {
        return Err(EcsError::invalid(format!(
            "Invalid desiredStatus {desired}. Valid values are: RUNNING, PENDING, STOPPED"
        )));
    }
    if let Some(l) = &req.launch_type
        && !["EC2", "FARGATE", "EXTERNAL"].contains(&l.as_str())
    {
        return Err(EcsError::invalid(format!("Invalid launchType {l}. Valid values are: EC2, FARGATE, EXTERNAL")));
    }
    if req.family.is_some() && req.service_name.is_some() {
        return Err(EcsError::invalid("The family and serviceName parameters cannot be specified together."));
    }
    let cluster = clusters::resolve_active(store, ctx, req.cluster.as_deref()).await?.record.name;
    let keys = Keys::for_request(ctx);
    let instance = match req.container_instance.as_deref().filter(|c| !c.is_empty()) {
        Some(r) => Some(
            container_instances::instance_id_from_reference(ctx, &cluster, r)
                .ok_or_else(|| EcsError::invalid("The referenced container instance was not found."))?,
        ),
        None => None,
    };
    let family = match req.family.as_deref() {
        Some(f) if f.starts_with("arn:") => Some(f.rsplit('/').next().unwrap_or(f).split(':').next().unwrap_or(f).to_string()),
        Some(f) => Some(f.to_string()),
        None => None,
    };
    let service_group = req.service_name.as_deref().map(|s| {
        let name = if s.starts_with("arn:") { s.rsplit('/').next().unwrap_or(s) } else { s };
        format!("service:{name}")
    });
    let tasks = repo::load_all::<TaskRecord>(store, &keys.tasks_of(&cluster)).await?;
    let items: Vec<(String, String)> = tasks
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.desired_status == desired)
        .filter(|t| instance.as_ref().is_none_or(|i| &t.container_instance_id == i))
        .filter(|t| family.as_ref().is_none_or(|f| &t.family == f))
        .filter(|t| req.started_by.as_ref().is_none_or(|s| t.started_by.as_ref() == Some(s)))
        .filter(|t| service_group.as_ref().is_none_or(|g| &t.group == g))
        .filter(|t| req.launch_type.as_ref().is_none_or(|l| &t.launch_type == l))
        .map(|t| (t.id, t.task_arn))
        .collect();
    let (page, token) = paging::page("ListTasks", items, |(id, _)| id.clone(), req.next_token.as_deref(), limit)?;
    let mut out = json!({"taskArns": page.into_iter().map(|(_, a)| a).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["nextToken"] = json!(t);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Agent state changes

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ContainerChange {
    container_name: Option<String>,
    image_digest: Option<String>,
    runtime_id: Option<String>,
    exit_code: Option<i64>,
    network_bindings: Option<Vec<Value>>,
    reason: Option<String>,
    status: Option<String>,
    /// Berth extension: the container's health as the agent's health check
    /// last found it.
    health_status: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct AttachmentChange {
    attachment_arn: Option<String>,
    status: Option<String>,
    /// Berth extension: the ENI details the agent assigned
    /// (`privateIPv4Address`, `macAddress`, `networkInterfaceId`,
    /// `privateDnsName`), as a list of `{name, value}` or an object.
    details: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskChangeInput {
    cluster: Option<String>,
    task: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    containers: Option<Vec<ContainerChange>>,
    attachments: Option<Vec<AttachmentChange>>,
    pull_started_at: Option<f64>,
    pull_stopped_at: Option<f64>,
    execution_stopped_at: Option<f64>,
}

fn apply_container(t: &mut TaskRecord, ch: &ContainerChange) -> EcsResult<()> {
    if let Some(h) = ch.health_status.as_deref()
        && !HEALTH_STATUSES.contains(&h)
    {
        return Err(EcsError::invalid(format!(
            "Invalid healthStatus {h}. Valid values are: {}",
            HEALTH_STATUSES.join(", ")
        )));
    }
    let Some(name) = ch.container_name.as_deref() else { return Ok(()) };
    let host_ports: Vec<AssignedPort> = t.host_ports.iter().filter(|p| p.container_name == name).cloned().collect();
    let Some(c) = t.containers.iter_mut().find(|c| c.name == name) else {
        return Err(EcsError::invalid(format!("Container {name} is not part of task {}.", t.task_arn)));
    };
    if let Some(s) = ch.status.as_deref() {
        if !["PENDING", "RUNNING", "STOPPED"].contains(&s) {
            return Err(EcsError::invalid(format!("Invalid container status {s}.")));
        }
        if container_rank(s) >= container_rank(&c.last_status) {
            c.last_status = s.to_string();
        }
    }
    if let Some(v) = &ch.runtime_id {
        c.runtime_id = Some(v.clone());
    }
    if let Some(v) = &ch.image_digest {
        c.image_digest = Some(v.clone());
    }
    if ch.exit_code.is_some() {
        c.exit_code = ch.exit_code;
    }
    if let Some(v) = &ch.reason {
        c.reason = Some(v.clone());
    }
    if let Some(h) = &ch.health_status {
        c.health_status = h.clone();
    }
    match &ch.network_bindings {
        Some(b) if !b.is_empty() => c.network_bindings = b.clone(),
        _ => {
            if c.last_status == "RUNNING" && c.network_bindings.is_empty() {
                c.network_bindings = host_ports
                    .iter()
                    .map(|p| {
                        json!({"bindIP": "0.0.0.0", "containerPort": p.container_port, "hostPort": p.host_port, "protocol": p.protocol})
                    })
                    .collect();
            }
        }
    }
    Ok(())
}

fn detail_list(details: &Value) -> Vec<Value> {
    match details {
        Value::Array(a) => a.clone(),
        Value::Object(o) => o.iter().map(|(k, v)| json!({"name": k, "value": v})).collect(),
        _ => Vec::new(),
    }
}

fn apply_attachment(t: &mut TaskRecord, ch: &AttachmentChange) {
    let id = ch.attachment_arn.as_deref().map(|a| a.rsplit('/').next().unwrap_or(a).to_string());
    let target = t
        .attachments
        .iter_mut()
        .find(|a| id.is_none() || a.get("id").and_then(Value::as_str) == id.as_deref());
    let Some(a) = target else { return };
    if let Some(s) = &ch.status {
        a["status"] = json!(s);
    }
    if let Some(d) = &ch.details {
        let mut existing = a.get("details").and_then(Value::as_array).cloned().unwrap_or_default();
        for nd in detail_list(d) {
            let name = nd.get("name").cloned();
            existing.retain(|e| e.get("name") != name.as_ref());
            existing.push(nd);
        }
        a["details"] = Value::Array(existing);
    }
}

async fn modify_task(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    cluster_ref: Option<&str>,
    task_ref: Option<&str>,
    change: impl Fn(&mut TaskRecord) -> EcsResult<()>,
) -> EcsResult<Value> {
    let reference = match task_ref {
        Some(t) if !t.is_empty() => t,
        _ => return Err(EcsError::invalid("task can not be blank.")),
    };
    // An agent reports for its cluster even after the cluster was deleted.
    let cluster = clusters::name_from_reference(ctx, cluster_ref)?;
    let keys = Keys::for_request(ctx);
    let not_found = || EcsError::invalid("The referenced task was not found.");
    let id = task_id_from_reference(ctx, &cluster, reference).ok_or_else(not_found)?;
    let key = keys.task(&cluster, &id);
    for _ in 0..MAX_CONFLICT_RETRIES {
        let l = repo::load::<TaskRecord>(store, &key).await?.ok_or_else(not_found)?;
        if container_instances::is_agent(&ctx.principal_arn) {
            // An agent reports only for its own instance's tasks.
            let owner = repo::load::<InstanceRecord>(store, &keys.container_instance(&cluster, &l.record.container_instance_id)).await?;
            let owner = owner.and_then(|o| o.record.agent);
            container_instances::check_agent_owns(ctx, owner.as_deref(), "ecs:SubmitTaskStateChange", &l.record.container_instance_arn)?;
        }
        let before = l.record.clone();
        let mut t = l.record;
        change(&mut t)?;
        liveness.touch(&t.container_instance_arn, ctx.now);
        if t == before {
            return Ok(json!({"acknowledgment": "ACK"}));
        }
        t.version += 1;
        let entry_key = keys.instance_task(&cluster, &t.container_instance_id, &t.id);
        let mut txn = Txn::new().require(key.clone(), Some(l.mod_revision)).put(key.clone(), repo::encode(&t)?);
        if t.last_status == "STOPPED" {
            if before.last_status != "STOPPED" || (before.host_lost && !t.host_lost) {
                txn = txn
                    .delete(entry_key)
                    .put(keys.instance_epoch(&cluster, &t.container_instance_id), b"{}".to_vec());
            }
        } else if t.last_status != before.last_status {
            txn = txn.put(entry_key, repo::encode(&t.entry())?);
        }
        if t.desired_status != before.desired_status && t.last_status != "STOPPED" {
            txn = txn.put(keys.instance_epoch(&cluster, &t.container_instance_id), b"{}".to_vec());
        }
        if repo::commit(store, txn).await? {
            return Ok(json!({"acknowledgment": "ACK"}));
        }
    }
    Err(repo::too_much_contention())
}

pub async fn submit_task_state_change(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: TaskChangeInput = input::parse(body)?;
    if let Some(s) = req.status.as_deref()
        && rank(s).is_none()
    {
        return Err(EcsError::invalid(format!("Invalid task status {s}. Valid values are: {}", ORDER.join(", "))));
    }
    let now = berth_clock::epoch_seconds(ctx.now);
    modify_task(store, liveness, ctx, req.cluster.as_deref(), req.task.as_deref(), |t| {
        for c in req.containers.iter().flatten() {
            apply_container(t, c)?;
        }
        for a in req.attachments.iter().flatten() {
            apply_attachment(t, a);
        }
        if let Some(v) = req.pull_started_at {
            t.pull_started_at.get_or_insert(v);
        }
        if let Some(v) = req.pull_stopped_at {
            t.pull_stopped_at.get_or_insert(v);
        }
        let Some(status) = req.status.as_deref() else { return Ok(()) };
        if status == "STOPPED" && t.host_lost {
            // The agent of a lost host confirms the stop: the task no
            // longer holds anything there.
            t.host_lost = false;
        }
        let (Some(new), Some(old)) = (rank(status), rank(&t.last_status)) else { return Ok(()) };
        if new <= old {
            // Never backwards; a repeat is harmless.
            return Ok(());
        }
        t.last_status = status.to_string();
        let running = rank("RUNNING").unwrap_or(3);
        if new >= running && t.started_at.is_none() && status == "RUNNING" {
            t.started_at = Some(now);
            t.connectivity = Some("CONNECTED".into());
            t.connectivity_at = Some(now);
        }
        if new > running && t.stopping_at.is_none() {
            t.stopping_at = Some(now);
        }
        if status == "STOPPED" {
            t.stopped_at = Some(now);
            t.execution_stopped_at = Some(req.execution_stopped_at.unwrap_or(now));
            t.connectivity = Some("DISCONNECTED".into());
            for c in &mut t.containers {
                if c.last_status != "STOPPED" {
                    c.last_status = "STOPPED".into();
                }
            }
            if t.desired_status != "STOPPED" {
                t.desired_status = "STOPPED".into();
                t.generation += 1;
            }
            if t.stop_code.is_none() {
                let exited = t.containers.iter().find(|c| c.essential && c.exit_code.is_some());
                if t.started_at.is_none() {
                    t.stop_code = Some("TaskFailedToStart".into());
                } else {
                    t.stop_code = Some("EssentialContainerExited".into());
                }
                if t.stopped_reason.is_none() {
                    t.stopped_reason = Some(match (&req.reason, exited) {
                        (Some(r), _) if !r.is_empty() => r.clone(),
                        (_, Some(_)) => "Essential container in task exited".into(),
                        _ => "Task stopped".into(),
                    });
                }
            }
        }
        Ok(())
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerChangeInput {
    cluster: Option<String>,
    task: Option<String>,
    container_name: Option<String>,
    runtime_id: Option<String>,
    status: Option<String>,
    exit_code: Option<i64>,
    reason: Option<String>,
    network_bindings: Option<Vec<Value>>,
    health_status: Option<String>,
}

pub async fn submit_container_state_change(
    store: &dyn Store,
    liveness: &Liveness,
    ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: ContainerChangeInput = input::parse(body)?;
    let change = ContainerChange {
        container_name: req.container_name.clone(),
        image_digest: None,
        runtime_id: req.runtime_id.clone(),
        exit_code: req.exit_code,
        network_bindings: req.network_bindings.clone(),
        reason: req.reason.clone(),
        status: req.status.clone(),
        health_status: req.health_status.clone(),
    };
    if change.container_name.as_deref().is_none_or(str::is_empty) {
        return Err(EcsError::invalid("containerName can not be blank."));
    }
    modify_task(store, liveness, ctx, req.cluster.as_deref(), req.task.as_deref(), |t| apply_container(t, &change)).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentsInput {
    attachments: Option<Vec<AttachmentChange>>,
}

/// Acknowledged; ENI details travel with SubmitTaskStateChange in Berth.
pub async fn submit_attachment_state_changes(
    _store: &dyn Store,
    _ctx: &RequestContext,
    body: Map<String, Value>,
) -> EcsResult<Value> {
    let req: AttachmentsInput = input::parse(body)?;
    if req.attachments.as_ref().is_none_or(Vec::is_empty) {
        return Err(EcsError::invalid("attachments can not be empty."));
    }
    Ok(json!({"acknowledgment": "ACK"}))
}

#[cfg(test)]
#[path = "tasks_tests.rs"]
mod tests;

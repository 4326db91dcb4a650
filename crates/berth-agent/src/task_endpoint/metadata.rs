//! Task metadata: built from a worker's record (pure) and rendered in the
//! shapes of the ECS task metadata endpoint v4 (the field names of the
//! ECS agent's v2/v4 response types; v3 answers with the same shapes).

use super::registry::{ContainerMeta, HostInfo, TaskMeta};
use crate::plan::TaskPlan;
use crate::state::{ContainerPhase, Phase, TaskRecord};
use berth_net::{NetworkMode, TaskNetwork};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Docker's (and ECS's) floor for a container's CPU shares.
const MIN_CPU_UNITS: u64 = 2;

fn container_status(phase: ContainerPhase) -> &'static str {
    match phase {
        ContainerPhase::Pending => "PENDING",
        ContainerPhase::Running => "RUNNING",
        ContainerPhase::Stopped => "STOPPED",
    }
}

/// The logConfiguration of the definition's `index`-th container.
fn log_configuration(record: &TaskRecord, index: usize) -> (Option<String>, Vec<(String, String)>) {
    let lc = record.desired.task_definition.pointer(&format!("/containerDefinitions/{index}/logConfiguration"));
    let driver = lc.and_then(|l| l.get("logDriver")).and_then(Value::as_str).map(str::to_string);
    let options = lc
        .and_then(|l| l.get("options"))
        .and_then(Value::as_object)
        .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    (driver, options)
}

/// awsvpc tasks publish no host ports: their `portMappings` are reached at
/// the task's own address, so ECS shows hostPort = containerPort.
fn awsvpc_ports(record: &TaskRecord, index: usize) -> Vec<(u16, u16, String)> {
    record
        .desired
        .task_definition
        .pointer(&format!("/containerDefinitions/{index}/portMappings"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    let port = u16::try_from(m.get("containerPort")?.as_u64()?).ok()?;
                    let proto = m.get("protocol").and_then(Value::as_str).unwrap_or("tcp").to_string();
                    Some((port, port, proto))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What the endpoint shows of a task, from its worker's state. `pids` are
/// the running containers' init processes by name; `cgroup_path` gives a
/// container's cgroup from its runtime id.
pub fn task_meta(
    record: &TaskRecord,
    plan: Option<&TaskPlan>,
    net: Option<&TaskNetwork>,
    pids: &HashMap<String, u32>,
    cgroup_path: &dyn Fn(&str) -> String,
) -> TaskMeta {
    let td = &record.desired.task_definition;
    let network_mode = plan.map(|p| p.network_mode).unwrap_or(NetworkMode::Bridge);
    let containers = record
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let cp = plan.and_then(|p| p.container(&c.name));
            let index = plan.and_then(|p| p.containers.iter().position(|x| x.name == c.name)).unwrap_or(i);
            let (log_driver, log_options) = log_configuration(record, index);
            let ports = match network_mode {
                NetworkMode::Awsvpc => awsvpc_ports(record, index),
                _ if c.phase == ContainerPhase::Running => plan
                    .map(|p| p.host_ports.iter().filter(|h| h.container_name == c.name).map(|h| (h.container_port, h.host_port, h.protocol.clone())).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let running = c.phase == ContainerPhase::Running;
            ContainerMeta {
                endpoint_id: c.endpoint_id.clone(),
                name: c.name.clone(),
                runtime_id: c.runtime_id.clone(),
                image: cp.map(|p| p.image.clone()).unwrap_or_default(),
                image_digest: c.image_digest.clone(),
                desired_status: if record.desired.desired_status == "STOPPED" || matches!(record.phase, Phase::Stopping | Phase::Deprovisioning | Phase::Stopped) { "STOPPED" } else { "RUNNING" }
                    .to_string(),
                known_status: container_status(c.phase).to_string(),
                exit_code: c.exit_code,
                cpu_units: cp.map(|p| p.cpu).unwrap_or(0),
                memory_mib: cp.and_then(|p| p.memory_mib),
                started_at: c.started_at,
                finished_at: if c.phase == ContainerPhase::Stopped { record.stopped_at.or(c.started_at) } else { None },
                ports,
                log_driver,
                log_options,
                health: cp.and_then(|p| p.health_check.as_ref()).map(|_| {
                    if running { c.health.status.as_ecs() } else { crate::health::HealthStatus::Unknown.as_ecs() }.to_string()
                }),
                pid: if running { pids.get(&c.name).copied() } else { None },
                cgroup_path: cgroup_path(&c.runtime_id),
            }
        })
        .collect();
    TaskMeta {
        task_arn: record.desired.task_arn.clone(),
        family: td.get("family").and_then(Value::as_str).unwrap_or_default().to_string(),
        revision: match td.get("revision") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        },
        desired_status: record.desired.desired_status.clone(),
        known_status: crate::worker::task_status(record).to_string(),
        cpu_units: plan.and_then(|p| p.cpu_units),
        memory_mib: plan.and_then(|p| p.memory_mib),
        pull_started_at: record.pull_started_at,
        pull_stopped_at: record.pull_stopped_at,
        execution_stopped_at: record.stopped_at,
        network_mode,
        ipv4: net.and_then(|n| n.ipv4),
        prefix_len: net.and_then(|n| n.prefix_len),
        gateway: net.and_then(|n| n.gateway),
        mac: net.and_then(|n| n.mac.clone()),
        containers,
    }
}

/// RFC 3339 in UTC with nanoseconds, as Go's `time.Time` marshals.
pub fn rfc3339(epoch_seconds: f64) -> String {
    let secs = epoch_seconds.floor() as i64;
    let nanos = ((epoch_seconds - secs as f64) * 1e9).round().clamp(0.0, 999_999_999.0) as u64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = berth_clock::civil::civil_from_days(days);
    let frac = if nanos == 0 { String::new() } else { format!(".{nanos:09}").trim_end_matches('0').to_string() };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `arn:aws:ecs:{region}:{account}:cluster/{name}` from one of its task ARNs.
fn cluster_arn(task_arn: &str, cluster: &str) -> String {
    match task_arn.split_once(":task/") {
        Some((prefix, _)) => format!("{prefix}:cluster/{cluster}"),
        None => cluster.to_string(),
    }
}

fn put_time(out: &mut Map<String, Value>, key: &str, t: Option<f64>) {
    if let Some(t) = t {
        out.insert(key.into(), json!(rfc3339(t)));
    }
}

fn networks(task: &TaskMeta) -> Value {
    let mut n = Map::new();
    n.insert("NetworkMode".into(), json!(task.network_mode.as_ecs()));
    if let Some(ip) = task.ipv4 {
        n.insert("IPv4Addresses".into(), json!([ip.to_string()]));
    }
    if task.network_mode == NetworkMode::Awsvpc {
        n.insert("AttachmentIndex".into(), json!(0));
        if let Some(mac) = &task.mac {
            n.insert("MACAddress".into(), json!(mac));
        }
        if let (Some(ip), Some(len)) = (task.ipv4, task.prefix_len) {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            let net = std::net::Ipv4Addr::from(u32::from(ip) & mask);
            n.insert("IPv4SubnetCIDRBlock".into(), json!(format!("{net}/{len}")));
            if let Some(gw) = task.gateway {
                n.insert("SubnetGatewayIpv4Address".into(), json!(format!("{gw}/{len}")));
            }
        }
    }
    json!([n])
}

/// A container's metadata (`/v4/{id}`, and each of a task's `Containers`).
pub fn container_json(host: &HostInfo, task: &TaskMeta, c: &ContainerMeta) -> Value {
    let mut out = Map::new();
    out.insert("DockerId".into(), json!(c.runtime_id));
    out.insert("Name".into(), json!(c.name));
    out.insert("DockerName".into(), json!(c.runtime_id));
    out.insert("Image".into(), json!(c.image));
    out.insert("ImageID".into(), json!(c.image_digest.clone().unwrap_or_default()));
    if !c.ports.is_empty() {
        let ports: Vec<Value> = c
            .ports
            .iter()
            .map(|(cp, hp, proto)| json!({"ContainerPort": cp, "Protocol": proto, "HostPort": hp, "HostIp": "0.0.0.0"}))
            .collect();
        out.insert("Ports".into(), json!(ports));
    }
    out.insert(
        "Labels".into(),
        json!({
            "com.amazonaws.ecs.cluster": cluster_arn(&task.task_arn, &host.cluster),
            "com.amazonaws.ecs.container-name": c.name,
            "com.amazonaws.ecs.task-arn": task.task_arn,
            "com.amazonaws.ecs.task-definition-family": task.family,
            "com.amazonaws.ecs.task-definition-version": task.revision,
        }),
    );
    out.insert("DesiredStatus".into(), json!(c.desired_status));
    out.insert("KnownStatus".into(), json!(c.known_status));
    if let Some(code) = c.exit_code {
        out.insert("ExitCode".into(), json!(code));
    }
    out.insert("Limits".into(), json!({"CPU": c.cpu_units.max(MIN_CPU_UNITS) as f64, "Memory": c.memory_mib.unwrap_or(0)}));
    // The container is created as it starts (the shim runs it at once).
    put_time(&mut out, "CreatedAt", c.started_at);
    put_time(&mut out, "StartedAt", c.started_at);
    put_time(&mut out, "FinishedAt", c.finished_at);
    out.insert("Type".into(), json!("NORMAL"));
    if let Some(h) = &c.health {
        out.insert("Health".into(), json!({"status": h}));
    }
    if let Some(d) = &c.log_driver {
        out.insert("LogDriver".into(), json!(d));
        let opts: Map<String, Value> = c.log_options.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        out.insert("LogOptions".into(), Value::Object(opts));
    }
    if let Some(id) = task.task_arn.rsplit('/').next() {
        let prefix = task.task_arn.split_once(":task/").map(|(p, _)| p).unwrap_or_default();
        out.insert("ContainerARN".into(), json!(format!("{prefix}:container/{}/{id}/{}", host.cluster, c.endpoint_id)));
    }
    out.insert("Networks".into(), networks(task));
    Value::Object(out)
}

/// A task's metadata (`/v4/{id}/task`).
pub fn task_json(host: &HostInfo, task: &TaskMeta) -> Value {
    let mut out = Map::new();
    out.insert("Cluster".into(), json!(cluster_arn(&task.task_arn, &host.cluster)));
    out.insert("TaskARN".into(), json!(task.task_arn));
    out.insert("Family".into(), json!(task.family));
    out.insert("Revision".into(), json!(task.revision));
    out.insert("DesiredStatus".into(), json!(task.desired_status));
    out.insert("KnownStatus".into(), json!(task.known_status));
    if task.cpu_units.is_some() || task.memory_mib.is_some() {
        let mut limits = Map::new();
        if let Some(cpu) = task.cpu_units {
            // ECS shows the task's CPU in vCPUs.
            limits.insert("CPU".into(), json!(cpu as f64 / 1024.0));
        }
        if let Some(m) = task.memory_mib {
            limits.insert("Memory".into(), json!(m));
        }
        out.insert("Limits".into(), Value::Object(limits));
    }
    put_time(&mut out, "PullStartedAt", task.pull_started_at);
    put_time(&mut out, "PullStoppedAt", task.pull_stopped_at);
    put_time(&mut out, "ExecutionStoppedAt", task.execution_stopped_at);
    out.insert("AvailabilityZone".into(), json!(host.availability_zone));
    out.insert("LaunchType".into(), json!("EC2"));
    let containers: Vec<Value> = task.containers.iter().map(|c| container_json(host, task, c)).collect();
    out.insert("Containers".into(), json!(containers));
    out.insert("FaultInjectionEnabled".into(), json!(false));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000.25), "2026-11-18T11:06:40.25Z");
    }

    #[test]
    fn cluster_arn_from_task_arn() {
        assert_eq!(cluster_arn("arn:aws:ecs:us-east-1:1:task/c/abc", "c"), "arn:aws:ecs:us-east-1:1:cluster/c");
    }
}

//! What a task asks of this host, read once from the desired state: the
//! task definition as the server rendered it, with RunTask's overrides
//! applied. Pure; everything after this works on typed values.

use berth_agent_protocol::{AssignedPort, DesiredTask};
use berth_net::NetworkMode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// ECS_CONTAINER_STOP_TIMEOUT's default: SIGTERM, then SIGKILL after this.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// ECS's cap on a container's `stopTimeout`.
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the task definition is missing or malformed: {0}")]
    Malformed(String),
    #[error("network mode {0:?} is not supported on this host")]
    NetworkMode(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskPlan {
    pub task_arn: String,
    pub task_id: String,
    pub network_mode: NetworkMode,
    /// Task-level `cpu` in CPU units, if set (a CFS quota for the task).
    pub cpu_units: Option<u64>,
    /// Task-level `memory` in MiB, if set (a hard limit for the task).
    pub memory_mib: Option<u64>,
    pub pid_mode_host: bool,
    pub ipc_mode_host: bool,
    pub containers: Vec<ContainerPlan>,
    pub host_ports: Vec<AssignedPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DependencyCondition {
    Start,
    Complete,
    Success,
    Healthy,
}

impl DependencyCondition {
    fn parse(s: &str) -> Option<DependencyCondition> {
        Some(match s {
            "START" => DependencyCondition::Start,
            "COMPLETE" => DependencyCondition::Complete,
            "SUCCESS" => DependencyCondition::Success,
            "HEALTHY" => DependencyCondition::Healthy,
            _ => return None,
        })
    }

    pub fn as_ecs(&self) -> &'static str {
        match self {
            DependencyCondition::Start => "START",
            DependencyCondition::Complete => "COMPLETE",
            DependencyCondition::Success => "SUCCESS",
            DependencyCondition::Healthy => "HEALTHY",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub container: String,
    pub condition: DependencyCondition,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// What to exec: `CMD-SHELL x` becomes `/bin/sh -c x`.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPlan {
    pub name: String,
    /// `{task id}-{index}`: the runtime's id for this container, unique on
    /// the host and stable across agent restarts.
    pub runtime_id: String,
    pub image: String,
    pub essential: bool,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// environmentFiles first, then environment (later wins), as ECS does.
    pub environment: Vec<(String, String)>,
    pub environment_files: Vec<String>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub depends_on: Vec<Dependency>,
    pub health_check: Option<HealthCheck>,
    pub stop_timeout: Duration,
    pub links: Vec<(String, String)>,
    pub hostname: Option<String>,
    pub extra_hosts: Vec<(String, String)>,
    pub ulimits: Vec<Ulimit>,
    pub readonly_root_filesystem: bool,
    pub privileged: bool,
    pub dns_servers: Vec<String>,
    pub dns_search_domains: Vec<String>,
    pub init_process_enabled: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub shared_memory_mib: Option<u64>,
    pub system_controls: Vec<(String, String)>,
    /// CPU units (cpu shares).
    pub cpu: u64,
    pub memory_mib: Option<u64>,
    pub memory_reservation_mib: Option<u64>,
}

impl TaskPlan {
    pub fn container(&self, name: &str) -> Option<&ContainerPlan> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// The last segment of a task ARN.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn name_values(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let name = e.get("name")?.as_str()?.to_string();
                    let value = e.get("value").and_then(Value::as_str).unwrap_or_default().to_string();
                    Some((name, value))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `environment` of the definition, then the override's (same name wins).
fn merge_env(base: Vec<(String, String)>, extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = base;
    for (k, v) in extra {
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

fn health_check(v: Option<&Value>) -> Option<HealthCheck> {
    let v = v?.as_object()?;
    let raw = strings(v.get("command"))?;
    let command = match raw.first().map(String::as_str) {
        Some("CMD-SHELL") => vec!["/bin/sh".to_string(), "-c".to_string(), raw[1..].join(" ")],
        Some("CMD") => raw[1..].to_vec(),
        Some("NONE") | None => return None,
        // ECS passes a bare command to Docker, which treats it as CMD.
        Some(_) => raw,
    };
    if command.is_empty() {
        return None;
    }
    let secs = |k: &str, d: u64| Duration::from_secs(u64_of(v.get(k)).unwrap_or(d));
    Some(HealthCheck {
        command,
        interval: secs("interval", 30),
        timeout: secs("timeout", 5),
        retries: u64_of(v.get("retries")).unwrap_or(3) as u32,
        start_period: secs("startPeriod", 0),
    })
}

/// `name:alias` (or `name`) links.
fn links(v: Option<&Value>) -> Vec<(String, String)> {
    strings(v)
        .unwrap_or_default()
        .into_iter()
        .map(|l| match l.split_once(':') {
            Some((n, a)) => (n.to_string(), a.to_string()),
            None => (l.clone(), l),
        })
        .collect()
}

/// The container's runtime id: `{task id}-{index}`. Names may be longer
/// than a runtime id may be, so the index, not the name, makes it unique.
pub fn runtime_id(task_id: &str, index: usize) -> String {
    format!("{task_id}-{index}")
}

fn override_for<'a>(overrides: Option<&'a Value>, name: &str) -> Option<&'a Map<String, Value>> {
    overrides?
        .get("containerOverrides")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
}

fn container_plan(task_id: &str, index: usize, c: &Map<String, Value>, ov: Option<&Map<String, Value>>) -> Result<ContainerPlan, PlanError> {
    let name = c.get("name").and_then(Value::as_str).ok_or_else(|| PlanError::Malformed("a container has no name".into()))?.to_string();
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .ok_or_else(|| PlanError::Malformed(format!("container {name} has no image")))?
        .to_string();
    let field = |k: &str| ov.and_then(|o| o.get(k)).or_else(|| c.get(k));
    let environment = merge_env(name_values(c.get("environment")), name_values(ov.and_then(|o| o.get("environment"))));
    let env_files = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|f| f.get("value").and_then(Value::as_str).map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let mut environment_files = env_files(c.get("environmentFiles"));
    environment_files.extend(env_files(ov.and_then(|o| o.get("environmentFiles"))));
    let linux = c.get("linuxParameters");
    let caps = linux.and_then(|l| l.get("capabilities"));
    let depends_on = c
        .get("dependsOn")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    Some(Dependency {
                        container: d.get("containerName")?.as_str()?.to_string(),
                        condition: DependencyCondition::parse(d.get("condition")?.as_str()?)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let stop_timeout = u64_of(c.get("stopTimeout")).map(Duration::from_secs).unwrap_or(DEFAULT_STOP_TIMEOUT).min(MAX_STOP_TIMEOUT);
    let extra_hosts = c
        .get("extraHosts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|h| Some((h.get("hostname")?.as_str()?.to_string(), h.get("ipAddress")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let ulimits = c
        .get("ulimits")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|u| {
                    Some(Ulimit {
                        name: u.get("name")?.as_str()?.to_string(),
                        soft: u64_of(u.get("softLimit"))?,
                        hard: u64_of(u.get("hardLimit"))?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let system_controls = c
        .get("systemControls")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| Some((s.get("namespace")?.as_str()?.to_string(), s.get("value")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok(ContainerPlan {
        runtime_id: runtime_id(task_id, index),
        image,
        essential: c.get("essential").and_then(Value::as_bool).unwrap_or(true),
        entry_point: strings(c.get("entryPoint")).filter(|v| !v.is_empty()),
        command: strings(field("command")).filter(|v| !v.is_empty()),
        environment,
        environment_files,
        working_directory: c.get("workingDirectory").and_then(Value::as_str).map(str::to_string),
        user: c.get("user").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string),
        depends_on,
        health_check: health_check(c.get("healthCheck")),
        stop_timeout,
        links: links(c.get("links")),
        hostname: c.get("hostname").and_then(Value::as_str).map(str::to_string),
        extra_hosts,
        ulimits,
        readonly_root_filesystem: c.get("readonlyRootFilesystem").and_then(Value::as_bool).unwrap_or(false),
        privileged: c.get("privileged").and_then(Value::as_bool).unwrap_or(false),
        dns_servers: strings(c.get("dnsServers")).unwrap_or_default(),
        dns_search_domains: strings(c.get("dnsSearchDomains")).unwrap_or_default(),
        init_process_enabled: linux.and_then(|l| l.get("initProcessEnabled")).and_then(Value::as_bool).unwrap_or(false),
        cap_add: strings(caps.and_then(|c| c.get("add"))).unwrap_or_default(),
        cap_drop: strings(caps.and_then(|c| c.get("drop"))).unwrap_or_default(),
        shared_memory_mib: u64_of(linux.and_then(|l| l.get("sharedMemorySize"))),
        system_controls,
        cpu: u64_of(field("cpu")).unwrap_or(0),
        memory_mib: u64_of(field("memory")),
        memory_reservation_mib: u64_of(field("memoryReservation")),
        name,
    })
}

/// Reads a desired task. Containers keep the definition's order, which
/// fixes their runtime ids.
pub fn plan(desired: &DesiredTask) -> Result<TaskPlan, PlanError> {
    let td = desired.task_definition.as_object().ok_or_else(|| PlanError::Malformed("no task definition".into()))?;
    let overrides = desired.overrides.as_ref();
    let mode_text = td.get("networkMode").and_then(Value::as_str);
    let network_mode = NetworkMode::from_ecs(mode_text).ok_or_else(|| PlanError::NetworkMode(mode_text.unwrap_or_default().to_string()))?;
    let task_id = task_id(&desired.task_arn).to_string();
    let defs = td
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| PlanError::Malformed("no container definitions".into()))?;
    let containers = defs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let c = c.as_object().ok_or_else(|| PlanError::Malformed("a container definition is not an object".into()))?;
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            container_plan(&task_id, i, c, override_for(overrides, name))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let task_level = |k: &str| overrides.and_then(|o| o.get(k)).or_else(|| td.get(k));
    Ok(TaskPlan {
        task_arn: desired.task_arn.clone(),
        task_id,
        network_mode,
        cpu_units: u64_of(task_level("cpu")),
        memory_mib: u64_of(task_level("memory")),
        pid_mode_host: td.get("pidMode").and_then(Value::as_str) == Some("host"),
        ipc_mode_host: td.get("ipcMode").and_then(Value::as_str) == Some("host"),
        containers,
        host_ports: desired.host_ports.clone(),
    })
}

/// A desired task as the server sends it, for tests.
#[cfg(test)]
pub(crate) fn desired_for_tests(task_arn: &str, task_definition: Value, overrides: Option<Value>) -> DesiredTask {
    DesiredTask {
        task_arn: task_arn.into(),
        desired_status: "RUNNING".into(),
        stop_code: None,
        stopped_reason: None,
        task_definition,
        overrides,
        host_ports: vec![],
        generation: 1,
        credentials: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired(td: Value, overrides: Option<Value>) -> DesiredTask {
        desired_for_tests("arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef", td, overrides)
    }

    #[test]
    fn reads_every_honoured_field_with_ecs_defaults() {
        let td = json!({
            "family": "web", "networkMode": "bridge", "cpu": "512", "memory": "256",
            "containerDefinitions": [{
                "name": "web", "image": "127.0.0.1:5000/demo/busybox:1",
                "command": ["httpd", "-f"], "entryPoint": ["/bin/sh", "-c"],
                "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "environmentFiles": [{"value": "/etc/berth/web.env", "type": "s3"}],
                "workingDirectory": "/srv", "user": "1000:1000",
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                "healthCheck": {"command": ["CMD-SHELL", "wget -q -O- localhost:8080", "||", "exit 1"], "interval": 5, "retries": 2},
                "stopTimeout": 500, "links": ["db:database", "cache"], "hostname": "web1",
                "extraHosts": [{"hostname": "svc", "ipAddress": "10.0.0.9"}],
                "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
                "readonlyRootFilesystem": true, "privileged": false, "dnsServers": ["10.0.0.2"],
                "linuxParameters": {"initProcessEnabled": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]}, "sharedMemorySize": 64},
                "cpu": 128, "memory": 64, "memoryReservation": 32
            }, {"name": "init", "image": "busybox", "essential": false}]
        });
        let p = plan(&desired(td, None)).unwrap();
        assert_eq!(p.task_id, "0123456789abcdef0123456789abcdef");
        assert_eq!(p.network_mode, NetworkMode::Bridge);
        assert_eq!((p.cpu_units, p.memory_mib), (Some(512), Some(256)));
        let c = &p.containers[0];
        assert_eq!(c.runtime_id, "0123456789abcdef0123456789abcdef-0");
        assert!(c.essential && !p.containers[1].essential);
        assert_eq!(c.environment, vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert_eq!(c.environment_files, vec!["/etc/berth/web.env".to_string()]);
        assert_eq!(c.depends_on, vec![Dependency { container: "init".into(), condition: DependencyCondition::Success }]);
        let hc = c.health_check.as_ref().unwrap();
        assert_eq!(hc.command, vec!["/bin/sh", "-c", "wget -q -O- localhost:8080 || exit 1"]);
        assert_eq!((hc.interval, hc.timeout, hc.retries), (Duration::from_secs(5), Duration::from_secs(5), 2));
        assert_eq!(c.stop_timeout, MAX_STOP_TIMEOUT, "stopTimeout is capped at 120 s");
        assert_eq!(c.links, vec![("db".into(), "database".into()), ("cache".into(), "cache".into())]);
        assert_eq!(c.ulimits, vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 }]);
        assert!(c.readonly_root_filesystem && c.init_process_enabled);
        assert_eq!((c.cpu, c.memory_mib, c.memory_reservation_mib, c.shared_memory_mib), (128, Some(64), Some(32), Some(64)));
        assert_eq!(p.containers[1].stop_timeout, DEFAULT_STOP_TIMEOUT);
    }

    #[test]
    fn overrides_replace_command_resources_and_merge_environment() {
        let td = json!({"networkMode": "awsvpc", "containerDefinitions": [
            {"name": "app", "image": "busybox", "command": ["a"], "environment": [{"name": "A", "value": "1"}], "memory": 64}
        ]});
        let ov = json!({"cpu": "1024", "containerOverrides": [{"name": "app", "command": ["b", "c"], "memory": 128,
            "environment": [{"name": "A", "value": "9"}, {"name": "Z", "value": "z"}]}]});
        let p = plan(&desired(td, Some(ov))).unwrap();
        let c = &p.containers[0];
        assert_eq!(c.command, Some(vec!["b".to_string(), "c".to_string()]));
        assert_eq!(c.memory_mib, Some(128));
        assert_eq!(c.environment, vec![("A".into(), "9".into()), ("Z".into(), "z".into())]);
        assert_eq!(p.cpu_units, Some(1024));
        assert_eq!(p.network_mode, NetworkMode::Awsvpc);
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        assert!(matches!(plan(&desired(json!(null), None)), Err(PlanError::Malformed(_))));
        let td = json!({"networkMode": "nat", "containerDefinitions": [{"name": "a", "image": "b"}]});
        assert_eq!(plan(&desired(td, None)), Err(PlanError::NetworkMode("nat".into())));
        let td = json!({"containerDefinitions": [{"name": "a"}]});
        assert!(matches!(plan(&desired(td, None)), Err(PlanError::Malformed(_))));
    }

    #[test]
    fn health_check_forms() {
        let hc = |cmd: Value| health_check(Some(&json!({"command": cmd})));
        assert_eq!(hc(json!(["CMD", "true"])).unwrap().command, vec!["true"]);
        assert!(hc(json!(["NONE"])).is_none());
        assert!(hc(json!(["CMD"])).is_none());
        assert_eq!(hc(json!(["CMD-SHELL", "exit 0"])).unwrap().interval, Duration::from_secs(30));
    }
}

//! The definition as stored and described: the caller's JSON, member for
//! member, plus the defaults ECS fills in when it describes a revision.
//!
//! Known members are laid out in the order ECS writes them; members this
//! version of Berth does not know follow in the caller's order, so a newer
//! client's fields still round-trip.

use super::units::TaskSize;
use crate::error::{EcsError, EcsResult};
use serde_json::{Map, Value, json};

/// Task-level members kept from the request (family and tags live
/// elsewhere; cpu and memory are replaced by their normalised form).
#[rustfmt::skip]
pub const TASK_MEMBERS: [&str; 16] = [
    "containerDefinitions", "taskRoleArn", "executionRoleArn", "networkMode", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "inferenceAccelerators",
    "pidMode", "ipcMode", "proxyConfiguration", "ephemeralStorage", "runtimePlatform",
    "enableFaultInjection",
];

#[rustfmt::skip]
const CONTAINER_MEMBERS: [&str; 42] = [
    "name", "image", "repositoryCredentials", "cpu", "memory", "memoryReservation", "links",
    "portMappings", "essential", "restartPolicy", "entryPoint", "command", "environment",
    "environmentFiles", "mountPoints", "volumesFrom", "linuxParameters", "secrets", "dependsOn",
    "startTimeout", "stopTimeout", "versionConsistency", "hostname", "user", "workingDirectory",
    "disableNetworking", "privileged", "readonlyRootFilesystem", "dnsServers", "dnsSearchDomains",
    "extraHosts", "dockerSecurityOptions", "interactive", "pseudoTerminal", "dockerLabels",
    "ulimits", "logConfiguration", "healthCheck", "systemControls", "resourceRequirements",
    "firelensConfiguration", "credentialSpecs",
];

#[rustfmt::skip]
const PORT_MAPPING_MEMBERS: [&str; 6] = [
    "containerPort", "hostPort", "protocol", "name", "appProtocol", "containerPortRange",
];

/// AWS's JSON protocol treats a null member as absent.
pub fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(strip_map(map)),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

pub fn strip_map(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k, strip_nulls(v)))
        .collect()
}

/// `source` laid out with `order` first, then anything else it holds.
fn ordered(mut source: Map<String, Value>, order: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in order {
        if let Some(v) = source.remove(*key) {
            out.insert((*key).to_string(), v);
        }
    }
    out.extend(source);
    out
}

fn object(value: Value, member: &str) -> EcsResult<Map<String, Value>> {
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(EcsError::Serialization(format!(
            "Request could not be deserialized: {member} must be a structure"
        ))),
    }
}

/// The stored definition: task-level members of `body` (already stripped
/// of nulls and type-checked) with ECS's defaults.
pub fn definition(body: &Map<String, Value>, size: &TaskSize) -> EcsResult<Map<String, Value>> {
    let network_mode = body.get("networkMode").and_then(Value::as_str);
    let mut out = Map::new();
    for key in TASK_MEMBERS {
        let value = match key {
            "cpu" => size.cpu.map(|c| Value::String(c.to_string())),
            "memory" => size.memory.map(|m| Value::String(m.to_string())),
            "volumes" | "placementConstraints" => {
                Some(body.get(key).cloned().unwrap_or_else(|| json!([])))
            }
            _ => body.get(key).cloned(),
        };
        if let Some(v) = value {
            out.insert(key.to_string(), v);
        }
    }
    let containers = match out.remove("containerDefinitions") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let containers = containers
        .into_iter()
        .map(|c| container(object(c, "containerDefinitions")?, network_mode).map(Value::Object))
        .collect::<EcsResult<Vec<_>>>()?;
    let mut with_containers = Map::new();
    with_containers.insert("containerDefinitions".into(), Value::Array(containers));
    with_containers.extend(out);
    Ok(with_containers)
}

fn container(
    mut c: Map<String, Value>,
    network_mode: Option<&str>,
) -> EcsResult<Map<String, Value>> {
    for (key, default) in [
        ("cpu", json!(0)),
        ("essential", json!(true)),
        ("portMappings", json!([])),
        ("environment", json!([])),
        ("mountPoints", json!([])),
        ("volumesFrom", json!([])),
        ("systemControls", json!([])),
    ] {
        c.entry(key).or_insert(default);
    }
    if let Some(Value::Array(mappings)) = c.remove("portMappings") {
        let mappings = mappings
            .into_iter()
            .map(|pm| port_mapping(object(pm, "portMappings")?, network_mode).map(Value::Object))
            .collect::<EcsResult<Vec<_>>>()?;
        c.insert("portMappings".into(), Value::Array(mappings));
    }
    Ok(ordered(c, &CONTAINER_MEMBERS))
}

/// ECS writes `protocol: tcp` when none is given. In `awsvpc` and `host`
/// mode the host port can only be the container port, and ECS describes it
/// so. In `bridge` mode an absent host port means "pick one at run time";
/// ECS describes the mapping as registered, without inventing a hostPort,
/// so Berth leaves it absent too.
fn port_mapping(
    mut pm: Map<String, Value>,
    network_mode: Option<&str>,
) -> EcsResult<Map<String, Value>> {
    if matches!(network_mode, Some("awsvpc" | "host"))
        && !pm.contains_key("hostPort")
        && let Some(port) = pm.get("containerPort").cloned()
    {
        pm.insert("hostPort".into(), port);
    }
    pm.entry("protocol").or_insert(json!("tcp"));
    Ok(ordered(pm, &PORT_MAPPING_MEMBERS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_absent() {
        let v = strip_nulls(json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]}));
        assert_eq!(v, json!({"b": {"d": 1}, "e": [{}]}));
    }

    #[test]
    fn unknown_members_follow_known_ones() {
        let m = ordered(
            json!({"zeta": 1, "image": "x", "name": "n"})
                .as_object()
                .cloned()
                .unwrap(),
            &CONTAINER_MEMBERS,
        );
        assert_eq!(m.keys().collect::<Vec<_>>(), ["name", "image", "zeta"]);
    }
}

//! What this host offers the cluster: resources, attributes and the
//! capabilities it really has, as RegisterContainerInstance takes them.

use serde_json::{Value, json};

/// Ports the ECS agent reserves by default (SSH, Docker, the agent's own).
pub const DEFAULT_RESERVED_PORTS: &[u16] = &[22, 2375, 2376, 51678, 51679];

/// What the task engine can really do here. Only these are advertised.
pub const CAPABILITIES: &[&str] = &[
    "com.amazonaws.ecs.capability.privileged-container",
    "com.amazonaws.ecs.capability.docker-remote-api.1.17",
    "com.amazonaws.ecs.capability.docker-remote-api.1.18",
    "com.amazonaws.ecs.capability.docker-remote-api.1.19",
    "com.amazonaws.ecs.capability.docker-remote-api.1.21",
    "com.amazonaws.ecs.capability.docker-remote-api.1.22",
    "com.amazonaws.ecs.capability.docker-remote-api.1.23",
    "com.amazonaws.ecs.capability.docker-remote-api.1.24",
    "com.amazonaws.ecs.capability.docker-remote-api.1.25",
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
    "ecs.capability.task-cpu-mem-limit",
    "ecs.capability.task-eni",
    "ecs.capability.pid-ipc-namespace-sharing",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostResources {
    /// 1024 per core.
    pub cpu_units: u64,
    pub memory_mib: u64,
}

impl HostResources {
    /// This machine's, less `reserved_memory_mib` for the host itself.
    pub fn detect(reserved_memory_mib: u64) -> HostResources {
        let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
        let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| mem_total_kib(&m)).unwrap_or(0) / 1024;
        HostResources { cpu_units: cores * 1024, memory_mib: total.saturating_sub(reserved_memory_mib) }
    }
}

/// `MemTotal` from /proc/meminfo, in KiB.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.split_whitespace().next()).and_then(|n| n.parse().ok())
}

/// Everything RegisterContainerInstance needs.
pub struct Registration<'a> {
    pub cluster: &'a str,
    pub resources: &'a HostResources,
    pub reserved_ports: &'a [u16],
    pub reserved_ports_udp: &'a [u16],
    pub instance_id: &'a str,
    pub instance_type: &'a str,
    pub availability_zone: &'a str,
    pub region: &'a str,
    pub hostname: &'a str,
    pub custom_attributes: &'a [(String, String)],
    /// Set on a re-registration, so the instance keeps its ARN.
    pub container_instance_arn: Option<&'a str>,
}

pub fn registration_body(r: &Registration<'_>) -> Value {
    let ports = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>();
    let mut attributes = vec![
        json!({"name": "ecs.os-type", "value": "linux"}),
        json!({"name": "ecs.os-family", "value": "LINUX"}),
        json!({"name": "ecs.cpu-architecture", "value": std::env::consts::ARCH}),
        json!({"name": "ecs.availability-zone", "value": r.availability_zone}),
        json!({"name": "ecs.instance-type", "value": r.instance_type}),
        json!({"name": "ecs.hostname", "value": r.hostname}),
    ];
    attributes.extend(CAPABILITIES.iter().map(|c| json!({"name": c})));
    attributes.extend(r.custom_attributes.iter().map(|(k, v)| json!({"name": k, "value": v})));
    let document = json!({
        "instanceId": r.instance_id,
        "instanceType": r.instance_type,
        "availabilityZone": r.availability_zone,
        "region": r.region,
    });
    let mut body = json!({
        "cluster": r.cluster,
        "instanceIdentityDocument": document.to_string(),
        "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": r.resources.cpu_units},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": r.resources.memory_mib},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ports(r.reserved_ports)},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": ports(r.reserved_ports_udp)},
        ],
        "versionInfo": {
            "agentVersion": env!("CARGO_PKG_VERSION"),
            "agentHash": "berth",
            "dockerVersion": "berth-runc",
        },
        "attributes": attributes,
    });
    if let Some(arn) = r.container_instance_arn {
        body["containerInstanceArn"] = json!(arn);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_registration_shape() {
        assert_eq!(mem_total_kib("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), Some(24576000));
        assert_eq!(mem_total_kib("nothing"), None);
        let res = HostResources { cpu_units: 2048, memory_mib: 3000 };
        let custom = vec![("stack".to_string(), "blue".to_string())];
        let body = registration_body(&Registration {
            cluster: "demo",
            resources: &res,
            reserved_ports: DEFAULT_RESERVED_PORTS,
            reserved_ports_udp: &[],
            instance_id: "i-0123456789abcdef0",
            instance_type: "berth.host",
            availability_zone: "us-east-1a",
            region: "us-east-1",
            hostname: "h1",
            custom_attributes: &custom,
            container_instance_arn: None,
        });
        assert_eq!(body["totalResources"][0]["integerValue"], 2048);
        assert_eq!(body["totalResources"][2]["stringSetValue"], json!(["22", "2375", "2376", "51678", "51679"]));
        let names: Vec<&str> = body["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"ecs.availability-zone") && names.contains(&"ecs.capability.task-eni") && names.contains(&"stack"));
        assert!(body.get("containerInstanceArn").is_none());
        let doc: Value = serde_json::from_str(body["instanceIdentityDocument"].as_str().unwrap()).unwrap();
        assert_eq!(doc["instanceId"], "i-0123456789abcdef0");
    }
}

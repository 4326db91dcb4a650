//! What this host offers the cluster: resources, attributes and the
//! capabilities it really has, as RegisterContainerInstance takes them.

use serde_json::{Value, json};
use std::net::Ipv4Addr;

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

/// The container-instance attribute naming the IPv4 address load
/// balancers use to reach this host's published ports (targets of type
/// `instance` resolve through it).
pub const HOST_ADDRESS_ATTRIBUTE: &str = "berth.host-address";

/// `attributes` with [`HOST_ADDRESS_ATTRIBUTE`] set to `address` (an
/// `--attribute` of the same name given by hand is replaced: the flag
/// that names it is `--advertise-address`).
pub fn with_host_address(mut attributes: Vec<(String, String)>, address: Ipv4Addr) -> Vec<(String, String)> {
    attributes.retain(|(k, _)| k != HOST_ADDRESS_ATTRIBUTE);
    attributes.push((HOST_ADDRESS_ATTRIBUTE.to_string(), address.to_string()));
    attributes
}

/// The container-instance attribute carrying this host's dynamic host-port
/// range, `LO-HI`: the server picks the host ports of `hostPort` 0
/// mappings on this instance from it (ECS's `ECS_DYNAMIC_HOST_PORT_RANGE`).
pub const DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE: &str = "berth.dynamic-host-port-range";

/// Parses a dynamic host-port range `LO-HI` (both in 1..=65535, LO <= HI),
/// the format of `ECS_DYNAMIC_HOST_PORT_RANGE`.
pub fn parse_dynamic_host_port_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s
        .trim()
        .split_once('-')
        .ok_or_else(|| format!("expected LO-HI (e.g. 50000-50255), got {s:?}"))?;
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{:?} is not a port in 1..=65535 (in {s:?})", p.trim())),
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo > hi {
        return Err(format!("the range's low end {lo} is above its high end {hi}"));
    }
    Ok((lo, hi))
}

/// `attributes` with [`DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE`] set to `range`
/// as `LO-HI` (replacing an `--attribute` of the same name: the flag that
/// names it is `--dynamic-host-port-range`); unchanged when `range` is
/// `None`, so the attribute is omitted unless the flag is given.
pub fn with_dynamic_host_port_range(mut attributes: Vec<(String, String)>, range: Option<(u16, u16)>) -> Vec<(String, String)> {
    if let Some((lo, hi)) = range {
        attributes.retain(|(k, _)| k != DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE);
        attributes.push((DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE.to_string(), format!("{lo}-{hi}")));
    }
    attributes
}

/// The address this host is reached at when none is configured: the
/// source address of the default route if there is one, else the first
/// non-loopback local IPv4 address, else 127.0.0.1.
pub fn detect_host_address() -> Ipv4Addr {
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    if let Some(gateway) = default_gateway(&route)
        && let Some(a) = source_address_towards(gateway)
    {
        return a;
    }
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    local_addresses(&trie).into_iter().find(|a| !a.is_loopback()).unwrap_or(Ipv4Addr::LOCALHOST)
}

/// The gateway of the best (lowest metric) default route in
/// `/proc/net/route`; 0.0.0.0 for a default route straight out of an
/// interface. None without a default route.
pub fn default_gateway(route: &str) -> Option<Ipv4Addr> {
    // The kernel prints each address as the raw 32-bit word in hex, so
    // its bytes in native order are the address's bytes.
    let addr = |h: &str| u32::from_str_radix(h, 16).ok().map(|v| Ipv4Addr::from(v.to_ne_bytes()));
    route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, gateway, flags, metric, mask) = (f.get(1)?, f.get(2)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let up = u32::from_str_radix(flags, 16).ok()? & 0x1 != 0;
            let default = addr(dest)?.is_unspecified() && addr(mask)?.is_unspecified();
            (up && default).then_some((metric.parse::<u32>().ok()?, addr(gateway)?))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gateway)| gateway)
}

/// The local address the kernel would send from towards `gateway`: a
/// connected UDP socket learns it without sending anything.
fn source_address_towards(gateway: Ipv4Addr) -> Option<Ipv4Addr> {
    // A default route without a gateway still routes any address; take
    // one from TEST-NET-1, which nothing answers.
    let to = if gateway.is_unspecified() { Ipv4Addr::new(192, 0, 2, 1) } else { gateway };
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((to, 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    }
}

/// The host's own IPv4 addresses in `/proc/net/fib_trie` (the `/32 host
/// LOCAL` leaves), in order, without repeats.
pub fn local_addresses(trie: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let t = line.trim_start_matches(|c: char| c.is_whitespace() || c == '|' || c == '+' || c == '-');
        if let Ok(a) = t.trim().parse::<Ipv4Addr>() {
            last = Some(a);
        } else if line.contains("/32 host LOCAL")
            && let Some(a) = last
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
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

    #[test]
    fn dynamic_host_port_range_parses_and_becomes_an_attribute() {
        assert_eq!(parse_dynamic_host_port_range("50000-50255"), Ok((50000, 50255)));
        assert_eq!(parse_dynamic_host_port_range("1-65535"), Ok((1, 65535)));
        assert_eq!(parse_dynamic_host_port_range("80-80"), Ok((80, 80)));
        for bad in ["", "50000", "0-10", "10-9", "1-65536", "a-b", "-5", "5-", "1-2-3"] {
            assert!(parse_dynamic_host_port_range(bad).is_err(), "{bad:?}");
        }
        assert!(parse_dynamic_host_port_range("10-9").unwrap_err().contains("above"));

        let attrs = vec![(DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE.to_string(), "1-2".to_string()), ("a".into(), "b".into())];
        assert_eq!(
            with_dynamic_host_port_range(attrs.clone(), Some((50000, 50255))),
            vec![("a".to_string(), "b".to_string()), ("berth.dynamic-host-port-range".to_string(), "50000-50255".to_string())]
        );
        assert_eq!(with_dynamic_host_port_range(vec![("a".into(), "b".into())], None), vec![("a".to_string(), "b".to_string())]);
        assert_eq!(with_dynamic_host_port_range(attrs.clone(), None), attrs);
        let body = registration_body(&Registration {
            cluster: "demo",
            resources: &HostResources { cpu_units: 1024, memory_mib: 1024 },
            reserved_ports: &[],
            reserved_ports_udp: &[],
            instance_id: "i-1",
            instance_type: "berth.host",
            availability_zone: "us-east-1a",
            region: "us-east-1",
            hostname: "h1",
            custom_attributes: &with_dynamic_host_port_range(Vec::new(), Some((50000, 50255))),
            container_instance_arn: None,
        });
        let attrs = body["attributes"].as_array().unwrap();
        assert!(attrs.contains(&json!({"name": "berth.dynamic-host-port-range", "value": "50000-50255"})));
    }

    #[test]
    fn default_route_and_local_addresses() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth1\t00000000\t0202A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n\
            eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        if cfg!(target_endian = "little") {
            assert_eq!(default_gateway(route), Some(Ipv4Addr::new(192, 168, 1, 1)));
        }
        assert_eq!(default_gateway("Iface\tDestination\n"), None);
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
            |-- 127.0.0.1\n           /32 host LOCAL\n     |-- 10.1.2.3\n        /32 host LOCAL\n\
            |-- 10.1.2.255\n        /32 link BROADCAST\nLocal:\n     |-- 10.1.2.3\n        /32 host LOCAL\n";
        assert_eq!(local_addresses(trie), vec![Ipv4Addr::LOCALHOST, Ipv4Addr::new(10, 1, 2, 3)]);
        let attrs = with_host_address(vec![("berth.host-address".into(), "1.1.1.1".into()), ("a".into(), "b".into())], Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(attrs, vec![("a".to_string(), "b".to_string()), ("berth.host-address".to_string(), "10.0.0.1".to_string())]);
        // Whatever this machine has, detection answers some IPv4 address.
        let _ = detect_host_address();
    }
}

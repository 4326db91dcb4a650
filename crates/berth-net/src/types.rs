//! The values callers exchange with a [`crate::Network`]: network modes,
//! port mappings, what a task's network looks like, and the ECS
//! `ElasticNetworkInterface` attachment an awsvpc task reports.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// ECS `networkMode` (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The Linux EC2 default: a veth on the Berth bridge; ports reach the
    /// task through published host ports.
    Bridge,
    /// The task has its own namespace and address, reported as an
    /// `ElasticNetworkInterface` attachment; reachable at that address.
    Awsvpc,
    /// The host's own network stack: no namespace, nothing to set up.
    Host,
    /// A namespace with only loopback.
    None,
}

impl NetworkMode {
    /// From ECS's `networkMode` string. ECS's default on Linux (the field
    /// left out) is `bridge`.
    pub fn from_ecs(mode: Option<&str>) -> Option<NetworkMode> {
        match mode {
            None | Some("bridge") => Some(NetworkMode::Bridge),
            Some("awsvpc") => Some(NetworkMode::Awsvpc),
            Some("host") => Some(NetworkMode::Host),
            Some("none") => Some(NetworkMode::None),
            Some(_) => None,
        }
    }

    pub fn as_ecs(&self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Awsvpc => "awsvpc",
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        }
    }

    /// Whether the task gets a namespace of its own.
    pub fn has_netns(&self) -> bool {
        !matches!(self, NetworkMode::Host)
    }

    /// Whether the task gets an interface and an address on the bridge.
    pub fn has_interface(&self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::Awsvpc)
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_ecs())
    }
}

/// ECS `portMappings[].protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One published port: `host_ip:host_port` on the host reaches
/// `container_port` at the task's address. The host port is already
/// chosen (static from the task definition, or dynamic by placement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Only this host address; `None` (or `0.0.0.0`) is every address of
    /// the host, 127.0.0.1 included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    pub fn tcp(host_port: u16, container_port: u16) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_port,
            container_port,
            protocol: Protocol::Tcp,
        }
    }

    pub fn udp(host_port: u16, container_port: u16) -> PortMapping {
        PortMapping {
            protocol: Protocol::Udp,
            ..PortMapping::tcp(host_port, container_port)
        }
    }

    /// The host address, `None` for every address (`0.0.0.0` folded in).
    pub fn specific_host_ip(&self) -> Option<Ipv4Addr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }

    /// ECS `networkBindings[].bindIP`.
    pub fn bind_ip(&self) -> Ipv4Addr {
        self.specific_host_ip().unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Whether two mappings claim the same host port: same protocol, same
    /// port, and addresses that overlap (either one is "every address", or
    /// both are the same).
    pub fn clashes_with(&self, other: &PortMapping) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && match (self.specific_host_ip(), other.specific_host_ip()) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.bind_ip(),
            self.host_port,
            self.container_port,
            self.protocol
        )
    }
}

/// A port published for a task, as [`crate::Network::published_ports`]
/// lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedPort {
    pub task_id: String,
    pub mapping: PortMapping,
}

/// A task's network as set up on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNetwork {
    pub task_id: String,
    pub mode: NetworkMode,
    /// The namespace every container of the task joins (OCI
    /// `linux.namespaces[{type: network, path}]`); `None` in host mode.
    pub netns_path: Option<PathBuf>,
    /// The task's address on eth0 (bridge and awsvpc).
    pub ipv4: Option<Ipv4Addr>,
    pub prefix_len: Option<u8>,
    /// The bridge's address: the task's default route.
    pub gateway: Option<Ipv4Addr>,
    /// eth0's MAC address.
    pub mac: Option<String>,
    /// The host end of the veth pair, a port of [`TaskNetwork::bridge`].
    pub veth_host_name: Option<String>,
    pub bridge: Option<String>,
}

impl TaskNetwork {
    /// A task network in host mode: nothing of its own.
    pub fn host(task_id: &str) -> TaskNetwork {
        TaskNetwork {
            task_id: task_id.to_string(),
            mode: NetworkMode::Host,
            netns_path: None,
            ipv4: None,
            prefix_len: None,
            gateway: None,
            mac: None,
            veth_host_name: None,
            bridge: None,
        }
    }

    /// The ECS attachment an awsvpc task reports (`attachments[]` of type
    /// `ElasticNetworkInterface`); `None` for other modes.
    pub fn eni_attachment(&self) -> Option<EniAttachment> {
        if self.mode != NetworkMode::Awsvpc {
            return None;
        }
        let ip = self.ipv4?;
        let prefix_len = self.prefix_len?;
        let subnet = crate::addr::Ipv4Net::containing(ip, prefix_len);
        Some(EniAttachment {
            network_interface_id: format!("eni-{:017x}", fnv1a(self.task_id.as_bytes()) >> 4),
            mac_address: self.mac.clone().unwrap_or_default(),
            private_ipv4_address: ip,
            private_dns_name: format!("ip-{}.berth.internal", ip.to_string().replace('.', "-")),
            subnet_id: format!("subnet-{:017x}", fnv1a(subnet.to_string().as_bytes()) >> 4),
            subnet_cidr: subnet.to_string(),
            gateway: self.gateway,
        })
    }
}

/// What ECS shows of an awsvpc task's network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EniAttachment {
    /// `eni-` and 17 hex digits, stable for the task id.
    pub network_interface_id: String,
    pub mac_address: String,
    pub private_ipv4_address: Ipv4Addr,
    pub private_dns_name: String,
    /// `subnet-` and 17 hex digits, stable for the subnet.
    pub subnet_id: String,
    pub subnet_cidr: String,
    pub gateway: Option<Ipv4Addr>,
}

impl EniAttachment {
    /// ECS `attachments[].details` (name/value pairs), in ECS's order.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        let mut d = vec![
            ("subnetId", self.subnet_id.clone()),
            ("networkInterfaceId", self.network_interface_id.clone()),
            ("macAddress", self.mac_address.clone()),
            ("privateDnsName", self.private_dns_name.clone()),
            ("privateIPv4Address", self.private_ipv4_address.to_string()),
        ];
        if let Some(gw) = self.gateway {
            d.push((
                "subnetGatewayIpv4Address",
                format!(
                    "{gw}/{}",
                    self.subnet_cidr.rsplit('/').next().unwrap_or("32")
                ),
            ));
        }
        d
    }
}

/// What [`crate::Network::recover`] found after an agent restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovered {
    /// Task networks that are still intact (ports re-published).
    pub tasks: Vec<TaskNetwork>,
    /// Tasks whose namespace or veth was gone (a reboot): their remnants
    /// were removed and their addresses freed.
    pub lost: Vec<String>,
    /// Berth-named namespaces and veths that no record claimed, removed.
    pub orphans_removed: Vec<String>,
}

/// Where containers' requests to 169.254.170.2:80 (the ECS credentials and
/// metadata endpoint) are sent on the host.
pub type CredentialsEndpoint = SocketAddrV4;

/// The address the AWS SDKs use for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const CREDENTIALS_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);

/// 64-bit FNV-1a: a stable, dependency-free hash for derived identifiers.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_ecs() {
        assert_eq!(NetworkMode::from_ecs(None), Some(NetworkMode::Bridge));
        for m in [
            NetworkMode::Bridge,
            NetworkMode::Awsvpc,
            NetworkMode::Host,
            NetworkMode::None,
        ] {
            assert_eq!(NetworkMode::from_ecs(Some(m.as_ecs())), Some(m));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(NetworkMode::from_ecs(Some("nat")), None);
    }

    #[test]
    fn clashes() {
        let any = PortMapping::tcp(8080, 80);
        let lo = PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            ..any
        };
        let other_ip = PortMapping {
            host_ip: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..any
        };
        let unspecified = PortMapping {
            host_ip: Some(Ipv4Addr::UNSPECIFIED),
            container_port: 81,
            ..any
        };
        assert!(any.clashes_with(&lo));
        assert!(lo.clashes_with(&any));
        assert!(!lo.clashes_with(&other_ip));
        assert!(unspecified.clashes_with(&other_ip));
        assert!(!any.clashes_with(&PortMapping::udp(8080, 80)));
        assert!(!any.clashes_with(&PortMapping::tcp(8081, 80)));
        assert_eq!(lo.to_string(), "127.0.0.1:8080->80/tcp");
        assert_eq!(
            serde_json::to_value(any).unwrap(),
            serde_json::json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})
        );
    }

    #[test]
    fn eni_attachment_details() {
        let t = TaskNetwork {
            task_id: "0123456789abcdef0123456789abcdef".into(),
            mode: NetworkMode::Awsvpc,
            netns_path: Some("/run/netns/berth-x".into()),
            ipv4: Some(Ipv4Addr::new(172, 29, 0, 5)),
            prefix_len: Some(16),
            gateway: Some(Ipv4Addr::new(172, 29, 0, 1)),
            mac: Some("0a:58:ac:1d:00:05".into()),
            veth_host_name: Some("vbac1d0005".into()),
            bridge: Some("berth0".into()),
        };
        let eni = t.eni_attachment().unwrap();
        assert!(eni.network_interface_id.starts_with("eni-"));
        assert_eq!(eni.network_interface_id.len(), 4 + 17);
        assert_eq!(eni.subnet_id.len(), 7 + 17);
        assert_eq!(eni.subnet_cidr, "172.29.0.0/16");
        let d = eni.details();
        assert_eq!(d[4], ("privateIPv4Address", "172.29.0.5".to_string()));
        assert_eq!(d[2], ("macAddress", "0a:58:ac:1d:00:05".to_string()));
        assert_eq!(d[3].1, "ip-172-29-0-5.berth.internal");
        assert_eq!(
            d[5],
            ("subnetGatewayIpv4Address", "172.29.0.1/16".to_string())
        );
        let bridge = TaskNetwork {
            mode: NetworkMode::Bridge,
            ..t
        };
        assert_eq!(bridge.eni_attachment(), None);
    }
}

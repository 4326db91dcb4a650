//! [`BridgeConfig`]: one Berth bridge, its subnet, and the names of
//! everything Berth creates for it.

use crate::addr::Ipv4Net;
use crate::error::NetError;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Where `ip netns add` puts named namespaces (iproute2's `NETNS_RUN_DIR`).
pub const NETNS_DIR: &str = "/run/netns";

/// The default subnet: inside 172.16.0.0/12 but away from Docker's
/// 172.17.0.0/16 and the 172.18–172.28 ranges its user networks take
/// first. [`crate::routes::overlapping_routes`] checks it against the
/// host's routes before the bridge is made.
pub const DEFAULT_SUBNET: &str = "172.29.0.0/16";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BridgeConfig {
    /// The bridge device, at most 15 bytes.
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The bridge's own address, the tasks' default route; the subnet's
    /// first host address when `None`.
    pub gateway: Option<Ipv4Addr>,
    /// MTU of the bridge and of both ends of every veth; the kernel's
    /// default (1500) when `None`.
    pub mtu: Option<u32>,
    /// The nftables table (family `ip`) Berth owns for this bridge. Berth
    /// replaces it whole, atomically, on every change.
    pub nft_table: String,
    /// Task namespaces are `/run/netns/{netns_prefix}{task_id}`.
    pub netns_prefix: String,
    /// Host ends of veths are `{veth_prefix}{address in hex}`; at most 7
    /// bytes.
    pub veth_prefix: String,
    /// Set `net.ipv4.ip_forward=1` so other hosts reach published ports and
    /// tasks reach other hosts. Without it only this host reaches tasks
    /// (the bridge still gets `forwarding=1` for tasks' replies).
    pub enable_ip_forward: bool,
    /// Masquerade tasks' traffic leaving through any other interface (the
    /// egress NAT of Docker's and ECS's bridge mode).
    pub masquerade_egress: bool,
}

impl Default for BridgeConfig {
    fn default() -> BridgeConfig {
        BridgeConfig {
            bridge: "berth0".into(),
            subnet: DEFAULT_SUBNET.parse().expect("valid default subnet"),
            gateway: None,
            mtu: None,
            nft_table: "berth".into(),
            netns_prefix: "berth-".into(),
            veth_prefix: "vb".into(),
            enable_ip_forward: true,
            masquerade_egress: true,
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

impl BridgeConfig {
    /// The bridge's address.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
            .or_else(|| self.subnet.first_host())
            .unwrap_or(self.subnet.network())
    }

    /// Where a task's namespace is bind-mounted.
    pub fn netns_path(&self, task_id: &str) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(self.netns_name(task_id))
    }

    /// The `ip netns` name of a task's namespace.
    pub fn netns_name(&self, task_id: &str) -> String {
        format!("{}{}", self.netns_prefix, task_id)
    }

    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |m: String| Err(NetError::InvalidConfig(m));
        if self.bridge.is_empty()
            || self.bridge.len() > 15
            || !self.bridge.bytes().all(is_name_byte)
            || self.bridge == "."
            || self.bridge == ".."
        {
            return bad(format!(
                "bridge name {:?}: 1 to 15 of A-Z a-z 0-9 _ . -",
                self.bridge
            ));
        }
        if self.subnet.prefix_len() > 30 {
            return bad(format!(
                "subnet {}: at most /30 (a gateway and one task)",
                self.subnet
            ));
        }
        let gw = self.gateway();
        if !self.subnet.contains(gw) || gw == self.subnet.network() || gw == self.subnet.broadcast()
        {
            return bad(format!(
                "gateway {gw} is not a host address of {}",
                self.subnet
            ));
        }
        if let Some(mtu) = self.mtu
            && !(576..=65535).contains(&mtu)
        {
            return bad(format!("mtu {mtu}: 576 to 65535"));
        }
        if self.nft_table.is_empty()
            || self.nft_table.len() > 64
            || !self
                .nft_table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || !self.nft_table.as_bytes()[0].is_ascii_alphabetic()
        {
            return bad(format!(
                "nftables table {:?}: a letter, then letters, digits or _ (at most 64)",
                self.nft_table
            ));
        }
        if self.netns_prefix.len() > 64
            || !self.netns_prefix.bytes().all(is_name_byte)
            || self.netns_prefix.starts_with('.')
        {
            return bad(format!(
                "netns prefix {:?}: A-Z a-z 0-9 _ . - (at most 64)",
                self.netns_prefix
            ));
        }
        if self.veth_prefix.is_empty()
            || self.veth_prefix.len() > 7
            || !self.veth_prefix.bytes().all(is_name_byte)
        {
            return bad(format!(
                "veth prefix {:?}: 1 to 7 of A-Z a-z 0-9 _ . -",
                self.veth_prefix
            ));
        }
        Ok(())
    }
}

/// Checks an ECS-style task id before it becomes part of a path or a name.
pub fn validate_task_id(task_id: &str) -> Result<(), NetError> {
    let ok = !task_id.is_empty()
        && task_id.len() <= 64
        && task_id.bytes().all(is_name_byte)
        && !task_id.starts_with('.')
        && !task_id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidTaskId(task_id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        let c = BridgeConfig::default();
        c.validate().unwrap();
        assert_eq!(c.gateway(), Ipv4Addr::new(172, 29, 0, 1));
        assert_eq!(c.netns_path("abc"), PathBuf::from("/run/netns/berth-abc"));
    }

    #[test]
    fn refuses_bad_names_and_sizes() {
        let base = BridgeConfig::default();
        let cases: Vec<BridgeConfig> = vec![
            BridgeConfig {
                bridge: "a-bridge-name-too-long".into(),
                ..base.clone()
            },
            BridgeConfig {
                bridge: "br 0".into(),
                ..base.clone()
            },
            BridgeConfig {
                bridge: "br/0".into(),
                ..base.clone()
            },
            BridgeConfig {
                subnet: "10.0.0.0/31".parse().unwrap(),
                ..base.clone()
            },
            BridgeConfig {
                gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
                ..base.clone()
            },
            BridgeConfig {
                gateway: Some(Ipv4Addr::new(172, 29, 255, 255)),
                ..base.clone()
            },
            BridgeConfig {
                mtu: Some(100),
                ..base.clone()
            },
            BridgeConfig {
                nft_table: "1abc".into(),
                ..base.clone()
            },
            BridgeConfig {
                nft_table: "a b".into(),
                ..base.clone()
            },
            BridgeConfig {
                netns_prefix: "a/b".into(),
                ..base.clone()
            },
            BridgeConfig {
                veth_prefix: "toolongx".into(),
                ..base.clone()
            },
            BridgeConfig {
                veth_prefix: "".into(),
                ..base.clone()
            },
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn task_ids() {
        for ok in ["0123456789abcdef0123456789abcdef", "t1", "a.b_c-d"] {
            validate_task_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(validate_task_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deserializes_with_defaults() {
        let c: BridgeConfig =
            serde_json::from_str(r#"{"bridge": "b1", "subnet": "10.5.0.0/24"}"#).unwrap();
        assert_eq!(c.bridge, "b1");
        assert_eq!(c.nft_table, "berth");
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 5, 0, 1));
    }
}

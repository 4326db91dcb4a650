//! [`NetState`]: the bookkeeping shared by the real network and the fake:
//! IPAM, one record per task, the published ports and the credentials
//! endpoint. Pure; [`NetState::load`] and [`NetState::save`] are the only
//! IO (a small JSON file, replaced atomically and fsynced).

use crate::addr::{mac_for, veth_name};
use crate::config::BridgeConfig;
use crate::error::NetError;
use crate::ipam::Ipam;
use crate::types::{CredentialsEndpoint, NetworkMode, PortMapping, PublishedPort, TaskNetwork};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const VERSION: u32 = 1;

/// One task's network and the ports published for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub network: TaskNetwork,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetState {
    version: u32,
    pub bridge: String,
    pub ipam: Ipam,
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskRecord>,
    #[serde(default)]
    pub credentials_endpoint: Option<CredentialsEndpoint>,
}

/// What [`NetState::begin_task`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// The task already has a record of this mode.
    Existing(TaskNetwork),
    /// A new record (address allocated); the kernel side is to be made.
    New(TaskNetwork),
}

impl NetState {
    pub fn new(cfg: &BridgeConfig) -> Result<NetState, NetError> {
        cfg.validate()?;
        Ok(NetState {
            version: VERSION,
            bridge: cfg.bridge.clone(),
            ipam: Ipam::new(cfg.subnet, [cfg.gateway()])?,
            tasks: BTreeMap::new(),
            credentials_endpoint: None,
        })
    }

    /// Reads the state file; a fresh state when there is none. Refuses a
    /// file written for another subnet or gateway while it still holds
    /// addresses (changing the subnet needs every task gone first).
    pub fn load(path: &Path, cfg: &BridgeConfig) -> Result<NetState, NetError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return NetState::new(cfg),
            Err(e) => return Err(NetError::io(format!("reading {}", path.display()), e)),
        };
        let state: NetState = serde_json::from_slice(&bytes).map_err(|e| NetError::State {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if state.version != VERSION {
            return Err(NetError::State {
                path: path.to_path_buf(),
                reason: format!("version {} (this agent reads {VERSION})", state.version),
            });
        }
        let same_net =
            state.ipam.subnet() == cfg.subnet && state.ipam.reserved().eq([cfg.gateway()]);
        if same_net && state.bridge == cfg.bridge {
            return Ok(state);
        }
        if state.tasks.is_empty() && state.ipam.is_empty() {
            let mut fresh = NetState::new(cfg)?;
            fresh.credentials_endpoint = state.credentials_endpoint;
            return Ok(fresh);
        }
        Err(NetError::InvalidConfig(format!(
            "{} was written for bridge {} on {} and still holds {} task networks; \
             destroy them before changing the bridge or subnet to {} on {}",
            path.display(),
            state.bridge,
            state.ipam.subnet(),
            state.tasks.len(),
            cfg.bridge,
            cfg.subnet
        )))
    }

    /// Writes the state file atomically: a temporary file, fsync, rename,
    /// fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), NetError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let io = |what: &str, e| NetError::io(format!("{what} {}", path.display()), e);
        std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("writing", e))?;
        f.write_all(&json).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io("replacing", e))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// What a task network of `mode` with address `ip` looks like.
    pub fn describe(
        cfg: &BridgeConfig,
        task_id: &str,
        mode: NetworkMode,
        ip: Option<std::net::Ipv4Addr>,
    ) -> TaskNetwork {
        let mut t = TaskNetwork::host(task_id);
        t.mode = mode;
        if mode.has_netns() {
            t.netns_path = Some(cfg.netns_path(task_id));
        }
        if let (true, Some(ip)) = (mode.has_interface(), ip) {
            t.ipv4 = Some(ip);
            t.prefix_len = Some(cfg.subnet.prefix_len());
            t.gateway = Some(cfg.gateway());
            t.mac = Some(mac_for(ip));
            t.veth_host_name = Some(veth_name(&cfg.veth_prefix, ip));
            t.bridge = Some(cfg.bridge.clone());
        }
        t
    }

    /// Records a task network, allocating its address; or finds the one
    /// there is.
    pub fn begin_task(
        &mut self,
        cfg: &BridgeConfig,
        task_id: &str,
        mode: NetworkMode,
    ) -> Result<Begin, NetError> {
        if let Some(rec) = self.tasks.get(task_id) {
            if rec.network.mode != mode {
                return Err(NetError::ModeConflict {
                    task_id: task_id.to_string(),
                    existing: rec.network.mode,
                    requested: mode,
                });
            }
            return Ok(Begin::Existing(rec.network.clone()));
        }
        let ip = if mode.has_interface() {
            Some(self.ipam.allocate(task_id)?)
        } else {
            None
        };
        let network = NetState::describe(cfg, task_id, mode, ip);
        self.tasks.insert(
            task_id.to_string(),
            TaskRecord {
                network: network.clone(),
                ports: Vec::new(),
            },
        );
        Ok(Begin::New(network))
    }

    /// Forgets a task and frees its address.
    pub fn remove_task(&mut self, task_id: &str) -> Option<TaskRecord> {
        self.ipam.release(task_id);
        self.tasks.remove(task_id)
    }

    /// Adds `mappings` to the task's published ports. Idempotent for
    /// mappings already there; refuses one whose host port another mapping
    /// (of any task) holds. Returns the task's ports before the change.
    pub fn publish(
        &mut self,
        task_id: &str,
        mappings: &[PortMapping],
    ) -> Result<Vec<PortMapping>, NetError> {
        let rec = self
            .tasks
            .get(task_id)
            .ok_or_else(|| NetError::UnknownTask(task_id.to_string()))?;
        if rec.network.mode == NetworkMode::Host {
            // The containers bind the host's ports themselves.
            return Ok(rec.ports.clone());
        }
        if !rec.network.mode.has_interface() {
            return Err(NetError::NotPublishable {
                task_id: task_id.to_string(),
                mode: rec.network.mode,
            });
        }
        let before = rec.ports.clone();
        let mut wanted = before.clone();
        for m in mappings {
            validate_mapping(m)?;
            if wanted.contains(m) {
                continue;
            }
            if wanted.iter().any(|p| p.clashes_with(m)) {
                return Err(NetError::PortInUse {
                    mapping: *m,
                    owner: task_id.to_string(),
                });
            }
            for (owner, other) in &self.tasks {
                if owner != task_id && other.ports.iter().any(|p| p.clashes_with(m)) {
                    return Err(NetError::PortInUse {
                        mapping: *m,
                        owner: owner.clone(),
                    });
                }
            }
            wanted.push(*m);
        }
        self.tasks.get_mut(task_id).expect("checked above").ports = wanted;
        Ok(before)
    }

    /// Takes every published port away from the task; returns them.
    pub fn unpublish(&mut self, task_id: &str) -> Result<Vec<PortMapping>, NetError> {
        let rec = self
            .tasks
            .get_mut(task_id)
            .ok_or_else(|| NetError::UnknownTask(task_id.to_string()))?;
        Ok(std::mem::take(&mut rec.ports))
    }

    pub fn set_ports(&mut self, task_id: &str, ports: Vec<PortMapping>) {
        if let Some(rec) = self.tasks.get_mut(task_id) {
            rec.ports = ports;
        }
    }

    pub fn published(&self) -> Vec<PublishedPort> {
        self.tasks
            .iter()
            .flat_map(|(id, rec)| {
                rec.ports.iter().map(|m| PublishedPort {
                    task_id: id.clone(),
                    mapping: *m,
                })
            })
            .collect()
    }

    /// `(task address, mapping)` for every published port, for rendering.
    pub fn dnat_targets(&self) -> Vec<(std::net::Ipv4Addr, PortMapping)> {
        let mut v: Vec<_> = self
            .tasks
            .values()
            .filter_map(|rec| rec.network.ipv4.map(|ip| (ip, &rec.ports)))
            .flat_map(|(ip, ports)| ports.iter().map(move |m| (ip, *m)))
            .collect();
        v.sort_by_key(|(ip, m)| (m.protocol, m.specific_host_ip(), m.host_port, *ip));
        v
    }
}

fn validate_mapping(m: &PortMapping) -> Result<(), NetError> {
    let bad = |reason| {
        Err(NetError::InvalidPortMapping {
            mapping: *m,
            reason,
        })
    };
    if m.host_port == 0 {
        return bad("hostPort 0: dynamic host ports are chosen by placement before publishing");
    }
    if m.container_port == 0 {
        return bad("containerPort 0");
    }
    if let Some(ip) = m.host_ip
        && (ip.is_multicast() || ip.is_broadcast())
    {
        return bad("hostIp must be a unicast address of the host");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn cfg() -> BridgeConfig {
        BridgeConfig {
            subnet: "10.50.0.0/24".parse().unwrap(),
            ..BridgeConfig::default()
        }
    }

    #[test]
    fn begin_allocates_once_and_checks_mode() {
        let cfg = cfg();
        let mut s = NetState::new(&cfg).unwrap();
        let Begin::New(a) = s.begin_task(&cfg, "a", NetworkMode::Bridge).unwrap() else {
            panic!()
        };
        assert_eq!(a.ipv4, Some(Ipv4Addr::new(10, 50, 0, 2)));
        assert_eq!(a.gateway, Some(Ipv4Addr::new(10, 50, 0, 1)));
        assert_eq!(a.veth_host_name.as_deref(), Some("vb0a320002"));
        assert_eq!(a.netns_path, Some("/run/netns/berth-a".into()));
        assert_eq!(
            s.begin_task(&cfg, "a", NetworkMode::Bridge).unwrap(),
            Begin::Existing(a)
        );
        assert!(matches!(
            s.begin_task(&cfg, "a", NetworkMode::Awsvpc),
            Err(NetError::ModeConflict { .. })
        ));
        let Begin::New(h) = s.begin_task(&cfg, "h", NetworkMode::Host).unwrap() else {
            panic!()
        };
        assert_eq!(h.netns_path, None);
        assert_eq!(h.ipv4, None);
        let Begin::New(n) = s.begin_task(&cfg, "n", NetworkMode::None).unwrap() else {
            panic!()
        };
        assert!(n.netns_path.is_some());
        assert_eq!(n.ipv4, None);
        assert_eq!(s.ipam.len(), 1);
        s.remove_task("a");
        assert_eq!(s.ipam.len(), 0);
    }

    #[test]
    fn publish_conflicts_and_idempotence() {
        let cfg = cfg();
        let mut s = NetState::new(&cfg).unwrap();
        s.begin_task(&cfg, "a", NetworkMode::Bridge).unwrap();
        s.begin_task(&cfg, "b", NetworkMode::Bridge).unwrap();
        s.begin_task(&cfg, "n", NetworkMode::None).unwrap();
        s.publish("a", &[PortMapping::tcp(8080, 80)]).unwrap();
        s.publish("a", &[PortMapping::tcp(8080, 80)]).unwrap();
        assert_eq!(s.published().len(), 1);
        // Another task, same port: refused; UDP on the same number is fine.
        let err = s.publish("b", &[PortMapping::tcp(8080, 80)]).unwrap_err();
        assert!(matches!(err, NetError::PortInUse { ref owner, .. } if owner == "a"));
        s.publish("b", &[PortMapping::udp(8080, 53)]).unwrap();
        // The same task retargeting a taken host port: refused.
        assert!(s.publish("a", &[PortMapping::tcp(8080, 81)]).is_err());
        // A refused batch changes nothing.
        assert!(
            s.publish(
                "b",
                &[PortMapping::tcp(9000, 90), PortMapping::tcp(8080, 80)]
            )
            .is_err()
        );
        assert_eq!(s.tasks["b"].ports, vec![PortMapping::udp(8080, 53)]);
        assert!(matches!(
            s.publish("n", &[PortMapping::tcp(1, 1)]),
            Err(NetError::NotPublishable { .. })
        ));
        assert!(matches!(
            s.publish("zz", &[PortMapping::tcp(1, 1)]),
            Err(NetError::UnknownTask(_))
        ));
        assert!(matches!(
            s.publish("a", &[PortMapping::tcp(0, 1)]),
            Err(NetError::InvalidPortMapping { .. })
        ));
        let targets = s.dnat_targets();
        assert_eq!(targets.len(), 2);
        assert_eq!(s.unpublish("a").unwrap(), vec![PortMapping::tcp(8080, 80)]);
        s.publish("b", &[PortMapping::tcp(8080, 80)]).unwrap();
    }

    #[test]
    fn save_load_round_trip_and_subnet_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.json");
        let cfg = cfg();
        let mut s = NetState::load(&path, &cfg).unwrap();
        s.begin_task(&cfg, "a", NetworkMode::Bridge).unwrap();
        s.publish("a", &[PortMapping::tcp(8080, 80)]).unwrap();
        s.credentials_endpoint = Some("127.0.0.1:51679".parse().unwrap());
        s.save(&path).unwrap();
        let back = NetState::load(&path, &cfg).unwrap();
        assert_eq!(back, s);
        let other = BridgeConfig {
            subnet: "10.51.0.0/24".parse().unwrap(),
            ..cfg.clone()
        };
        assert!(matches!(
            NetState::load(&path, &other),
            Err(NetError::InvalidConfig(_))
        ));
        // Once empty, a new subnet is taken.
        s.remove_task("a");
        s.save(&path).unwrap();
        let fresh = NetState::load(&path, &other).unwrap();
        assert_eq!(fresh.ipam.subnet(), other.subnet);
        assert_eq!(fresh.credentials_endpoint, s.credentials_endpoint);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            NetState::load(&path, &cfg),
            Err(NetError::State { .. })
        ));
    }
}

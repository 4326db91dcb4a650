//! Container statistics in Docker's stats JSON shape (what the ECS
//! metadata endpoint's `/stats` paths return), read from cgroup v1 files
//! and the container's `/proc/{pid}/net/dev`.

use super::metadata::rfc3339;
use super::registry::{ContainerMeta, TaskMeta};
use berth_clock::Clock;
use berth_net::NetworkMode;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where statistics come from: a side effect behind a trait, so the
/// handler is tested over a fake cgroup tree.
pub trait StatsSource: Send + Sync {
    /// Docker's stats JSON for one container of `task`; `None` when its
    /// cgroup is gone.
    fn container_stats(&self, task: &TaskMeta, c: &ContainerMeta) -> Option<Value>;
}

/// cgroup v1 hierarchies under `cgroup_root` (`/sys/fs/cgroup`) and the
/// process table under `proc_root` (`/proc`). Remembers each container's
/// previous sample for `precpu_stats`, as Docker's streaming stats do.
pub struct CgroupV1Stats {
    cgroup_root: PathBuf,
    proc_root: PathBuf,
    clock: Arc<dyn Clock>,
    previous: Mutex<HashMap<String, (String, Value)>>,
}

/// USER_HZ, the unit of `cpuacct.stat` and `/proc/stat`: 100 on every
/// Linux architecture Berth runs on.
const NANOS_PER_TICK: u64 = 10_000_000;
/// How many containers' previous samples are kept.
const MAX_REMEMBERED: usize = 1024;

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key value` lines (memory.stat, cpuacct.stat, cpu.stat).
fn read_kv(path: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_string(), v.trim().parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Interface counters from a `/proc/net/dev` text, loopback left out (as
/// Docker does).
pub fn parse_net_dev(text: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if f.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": f[0], "rx_packets": f[1], "rx_errors": f[2], "rx_dropped": f[3],
                "tx_bytes": f[8], "tx_packets": f[9], "tx_errors": f[10], "tx_dropped": f[11],
            }),
        );
    }
    out
}

impl CgroupV1Stats {
    pub fn new(cgroup_root: impl Into<PathBuf>, proc_root: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> CgroupV1Stats {
        CgroupV1Stats { cgroup_root: cgroup_root.into(), proc_root: proc_root.into(), clock, previous: Mutex::new(HashMap::new()) }
    }

    fn dir(&self, controller: &str, cgroup_path: &str) -> PathBuf {
        self.cgroup_root.join(controller).join(cgroup_path.trim_start_matches('/'))
    }

    /// cpuacct is mounted alone or co-mounted with cpu, depending on the
    /// distribution.
    fn cpuacct_dir(&self, cgroup_path: &str) -> PathBuf {
        let alone = self.dir("cpuacct", cgroup_path);
        if alone.exists() { alone } else { self.dir("cpu,cpuacct", cgroup_path) }
    }

    /// (system CPU time in ns, online CPUs) from `/proc/stat`.
    fn system_cpu(&self) -> (u64, usize) {
        let text = std::fs::read_to_string(self.proc_root.join("stat")).unwrap_or_default();
        let mut total = 0;
        let mut cpus = 0;
        for line in text.lines() {
            let mut f = line.split_whitespace();
            match f.next() {
                Some("cpu") => total = f.filter_map(|v| v.parse::<u64>().ok()).sum::<u64>() * NANOS_PER_TICK,
                Some(c) if c.starts_with("cpu") => cpus += 1,
                _ => {}
            }
        }
        (total, cpus)
    }

    fn cpu_stats(&self, cgroup_path: &str) -> Value {
        let acct = self.cpuacct_dir(cgroup_path);
        let percpu: Vec<u64> = std::fs::read_to_string(acct.join("cpuacct.usage_percpu"))
            .map(|t| t.split_whitespace().filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_default();
        let stat: HashMap<String, u64> = read_kv(&acct.join("cpuacct.stat")).into_iter().collect();
        let cpu_dir = if self.dir("cpu", cgroup_path).exists() { self.dir("cpu", cgroup_path) } else { acct.clone() };
        let throttle: HashMap<String, u64> = read_kv(&cpu_dir.join("cpu.stat")).into_iter().collect();
        let (system, online) = self.system_cpu();
        json!({
            "cpu_usage": {
                "total_usage": read_u64(&acct.join("cpuacct.usage")).unwrap_or(0),
                "percpu_usage": percpu,
                "usage_in_kernelmode": stat.get("system").copied().unwrap_or(0) * NANOS_PER_TICK,
                "usage_in_usermode": stat.get("user").copied().unwrap_or(0) * NANOS_PER_TICK,
            },
            "system_cpu_usage": system,
            "online_cpus": online,
            "throttling_data": {
                "periods": throttle.get("nr_periods").copied().unwrap_or(0),
                "throttled_periods": throttle.get("nr_throttled").copied().unwrap_or(0),
                "throttled_time": throttle.get("throttled_time").copied().unwrap_or(0),
            },
        })
    }
}

impl StatsSource for CgroupV1Stats {
    fn container_stats(&self, task: &TaskMeta, c: &ContainerMeta) -> Option<Value> {
        let mem = self.dir("memory", &c.cgroup_path);
        let usage = read_u64(&mem.join("memory.usage_in_bytes"))?;
        let stats: Map<String, Value> = read_kv(&mem.join("memory.stat")).into_iter().map(|(k, v)| (k, json!(v))).collect();
        let read = rfc3339(berth_clock::epoch_seconds(self.clock.now()));
        let cpu = self.cpu_stats(&c.cgroup_path);
        let (preread, precpu) = {
            let mut prev = self.previous.lock().unwrap_or_else(|p| p.into_inner());
            // Containers come and go; a bound keeps the map from growing
            // forever (losing a precpu sample only costs one rate).
            if prev.len() >= MAX_REMEMBERED && !prev.contains_key(&c.runtime_id) {
                prev.clear();
            }
            let before = prev.insert(c.runtime_id.clone(), (read.clone(), cpu.clone()));
            // Docker's first sample has a zero precpu and the zero time.
            before.unwrap_or_else(|| ("0001-01-01T00:00:00Z".to_string(), json!({"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})))
        };
        let mut out = json!({
            "read": read,
            "preread": preread,
            "pids_stats": {"current": read_u64(&self.dir("pids", &c.cgroup_path).join("pids.current")).unwrap_or(0)},
            "blkio_stats": {},
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu,
            "precpu_stats": precpu,
            "memory_stats": {
                "usage": usage,
                "max_usage": read_u64(&mem.join("memory.max_usage_in_bytes")).unwrap_or(0),
                "stats": stats,
                "limit": read_u64(&mem.join("memory.limit_in_bytes")).unwrap_or(0),
            },
            "name": format!("/{}", c.runtime_id),
            "id": c.runtime_id,
        });
        // A host-mode container's interfaces are the host's: Docker shows none.
        // The worker learns the pid only once the runtime says the
        // container started; a container asking at once is already in its
        // cgroup.
        let pid = c.pid.or_else(|| {
            let procs = std::fs::read_to_string(mem.join("cgroup.procs")).ok()?;
            procs.lines().find_map(|l| l.trim().parse::<u32>().ok())
        });
        if task.network_mode != NetworkMode::Host
            && let Some(pid) = pid
            && let Ok(text) = std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("net/dev"))
        {
            out["networks"] = Value::Object(parse_net_dev(&text));
        }
        Some(out)
    }
}

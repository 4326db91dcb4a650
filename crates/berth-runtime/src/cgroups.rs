//! Task-level cgroups (cgroup v1). A task gets `/<prefix>/<task-id>` in the
//! cpu, memory and pids hierarchies, carrying the task-level limits (ECS
//! task `cpu` as a CFS quota, task `memory` as a hard limit); runc creates
//! each container's cgroup beneath it from the spec's `cgroupsPath`, so the
//! kernel enforces both levels.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The CFS period used for task quotas (the kernel default).
pub const CFS_PERIOD_US: u64 = 100_000;
/// The kernel's smallest CFS quota.
pub const MIN_CFS_QUOTA_US: u64 = 1_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskLimits {
    /// ECS task `cpu` in CPU units (1024 = one vCPU): a CFS quota and shares.
    pub cpu_units: Option<u64>,
    /// ECS task `memory`, in bytes: a hard limit for all containers together.
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
}

/// The CFS quota that grants `cpu_units / 1024` CPUs per `period_us`.
pub fn cpu_quota_us(cpu_units: u64, period_us: u64) -> u64 {
    (cpu_units.saturating_mul(period_us) / 1024).max(MIN_CFS_QUOTA_US)
}

/// `memory.oom_control`, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OomControl {
    pub oom_kill_disable: bool,
    pub under_oom: bool,
    /// Processes the OOM killer has killed in this cgroup (kernel ≥ 4.13).
    pub oom_kill: u64,
}

pub fn parse_oom_control(text: &str) -> OomControl {
    let mut out = OomControl::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match k {
            "oom_kill_disable" => out.oom_kill_disable = v != 0,
            "under_oom" => out.under_oom = v != 0,
            "oom_kill" => out.oom_kill = v,
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub usage_bytes: u64,
    pub max_usage_bytes: u64,
    pub limit_bytes: u64,
    /// How often usage hit the limit.
    pub failcnt: u64,
    pub oom: OomControl,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroup name {0:?}")]
    InvalidName(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Cgroups as the agent needs them. Sync: each call is a handful of small
/// file operations on cgroupfs.
pub trait CgroupManager: Send + Sync {
    /// Create the task's cgroup with its limits (idempotent).
    fn create_task(&self, task_id: &str, limits: &TaskLimits) -> Result<(), CgroupError>;
    /// The task cgroup's path from the hierarchy root: `/<prefix>/<task>`.
    fn task_path(&self, task_id: &str) -> String;
    /// The `cgroupsPath` to give a container of the task.
    fn container_path(&self, task_id: &str, container_id: &str) -> String {
        format!("{}/{container_id}", self.task_path(task_id))
    }
    /// Memory figures of any cgroup (a task's or a container's) by path.
    fn memory_stats(&self, cgroup_path: &str) -> Result<MemoryStats, CgroupError>;
    /// Remove the task's cgroup, and anything runc left beneath it, in every
    /// hierarchy. Missing is fine.
    fn remove_task(&self, task_id: &str) -> Result<(), CgroupError>;
}

fn valid_name(name: &str) -> bool {
    crate::spec::valid_id(name)
}

/// The real thing, on cgroup v1 hierarchies mounted under `root`
/// (`/sys/fs/cgroup/<controller>`).
#[derive(Debug, Clone)]
pub struct V1Cgroups {
    root: PathBuf,
    prefix: String,
}

impl V1Cgroups {
    /// `prefix` is the top-level directory all of Berth's cgroups live
    /// under (`berth`).
    pub fn new(
        root: impl Into<PathBuf>,
        prefix: impl Into<String>,
    ) -> Result<V1Cgroups, CgroupError> {
        let prefix = prefix.into();
        if !valid_name(&prefix) {
            return Err(CgroupError::InvalidName(prefix));
        }
        Ok(V1Cgroups {
            root: root.into(),
            prefix,
        })
    }

    /// `/sys/fs/cgroup` and `berth`.
    pub fn system() -> V1Cgroups {
        V1Cgroups {
            root: PathBuf::from("/sys/fs/cgroup"),
            prefix: "berth".into(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `cgroup_path` in `controller`'s hierarchy.
    pub fn dir(&self, controller: &str, cgroup_path: &str) -> PathBuf {
        self.root
            .join(controller)
            .join(cgroup_path.trim_start_matches('/'))
    }

    fn write(dir: &Path, file: &str, value: impl std::fmt::Display) -> Result<(), CgroupError> {
        let path = dir.join(file);
        std::fs::write(&path, value.to_string()).map_err(io_err(&path))
    }

    fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        Ok(text.trim().parse().unwrap_or(0))
    }

    fn create_task_inner(&self, task_id: &str, limits: &TaskLimits) -> Result<(), CgroupError> {
        let path = self.task_path(task_id);
        let cpu = self.dir("cpu", &path);
        std::fs::create_dir_all(&cpu).map_err(io_err(&cpu))?;
        if let Some(units) = limits.cpu_units {
            Self::write(&cpu, "cpu.cfs_period_us", CFS_PERIOD_US)?;
            Self::write(&cpu, "cpu.cfs_quota_us", cpu_quota_us(units, CFS_PERIOD_US))?;
            Self::write(&cpu, "cpu.shares", units.max(2))?;
        }
        let memory = self.dir("memory", &path);
        std::fs::create_dir_all(&memory).map_err(io_err(&memory))?;
        if let Some(bytes) = limits.memory_bytes {
            Self::write(&memory, "memory.limit_in_bytes", bytes)?;
        }
        let pids = self.dir("pids", &path);
        std::fs::create_dir_all(&pids).map_err(io_err(&pids))?;
        if let Some(n) = limits.pids {
            Self::write(&pids, "pids.max", n)?;
        }
        Ok(())
    }
}

/// Remove a cgroup directory and its children, deepest first. A cgroup
/// whose last process is still exiting refuses for a moment (EBUSY), so
/// retry briefly.
fn remove_cgroup_tree(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    let mut delay = Duration::from_millis(5);
    for _ in 0..12 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
    std::fs::remove_dir(dir)
}

impl CgroupManager for V1Cgroups {
    fn create_task(&self, task_id: &str, limits: &TaskLimits) -> Result<(), CgroupError> {
        if !valid_name(task_id) {
            return Err(CgroupError::InvalidName(task_id.to_string()));
        }
        let result = self.create_task_inner(task_id, limits);
        if result.is_err() {
            let _ = self.remove_task(task_id);
        }
        result
    }

    fn task_path(&self, task_id: &str) -> String {
        format!("/{}/{task_id}", self.prefix)
    }

    fn memory_stats(&self, cgroup_path: &str) -> Result<MemoryStats, CgroupError> {
        let dir = self.dir("memory", cgroup_path);
        let oom_path = dir.join("memory.oom_control");
        let oom =
            parse_oom_control(&std::fs::read_to_string(&oom_path).map_err(io_err(&oom_path))?);
        Ok(MemoryStats {
            usage_bytes: Self::read_u64(&dir, "memory.usage_in_bytes")?,
            max_usage_bytes: Self::read_u64(&dir, "memory.max_usage_in_bytes")?,
            limit_bytes: Self::read_u64(&dir, "memory.limit_in_bytes")?,
            failcnt: Self::read_u64(&dir, "memory.failcnt")?,
            oom,
        })
    }

    fn remove_task(&self, task_id: &str) -> Result<(), CgroupError> {
        if !valid_name(task_id) {
            return Err(CgroupError::InvalidName(task_id.to_string()));
        }
        // runc creates the intermediate directories in every hierarchy it
        // manages (cpuset, devices, freezer, name=systemd, the v2 mount of a
        // hybrid host, ...), not only ours, so look in all of them.
        let hierarchies = std::fs::read_dir(&self.root).map_err(io_err(&self.root))?;
        let mut first_error = None;
        for h in hierarchies {
            let h = h.map_err(io_err(&self.root))?;
            // Skip the symlinks some distributions add (cpu -> cpu,cpuacct).
            if !h.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let dir = h.path().join(&self.prefix).join(task_id);
            if let Err(e) = remove_cgroup_tree(&dir) {
                first_error.get_or_insert(CgroupError::Io {
                    path: dir,
                    source: e,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// An in-memory stand-in that records what was asked.
#[derive(Debug, Default)]
pub struct FakeCgroups {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    tasks: BTreeMap<String, TaskLimits>,
    memory: BTreeMap<String, MemoryStats>,
    removed: Vec<String>,
}

impl FakeCgroups {
    pub fn new() -> FakeCgroups {
        FakeCgroups::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tasks that exist now, with their limits.
    pub fn tasks(&self) -> BTreeMap<String, TaskLimits> {
        self.lock().tasks.clone()
    }

    /// Tasks removed so far, in order.
    pub fn removed(&self) -> Vec<String> {
        self.lock().removed.clone()
    }

    /// What `memory_stats(path)` will answer.
    pub fn set_memory_stats(&self, cgroup_path: &str, stats: MemoryStats) {
        self.lock().memory.insert(cgroup_path.to_string(), stats);
    }
}

impl CgroupManager for FakeCgroups {
    fn create_task(&self, task_id: &str, limits: &TaskLimits) -> Result<(), CgroupError> {
        if !valid_name(task_id) {
            return Err(CgroupError::InvalidName(task_id.to_string()));
        }
        self.lock()
            .tasks
            .insert(task_id.to_string(), limits.clone());
        Ok(())
    }

    fn task_path(&self, task_id: &str) -> String {
        format!("/berth/{task_id}")
    }

    fn memory_stats(&self, cgroup_path: &str) -> Result<MemoryStats, CgroupError> {
        self.lock()
            .memory
            .get(cgroup_path)
            .copied()
            .ok_or_else(|| CgroupError::Io {
                path: PathBuf::from(cgroup_path),
                source: io::Error::from(io::ErrorKind::NotFound),
            })
    }

    fn remove_task(&self, task_id: &str) -> Result<(), CgroupError> {
        let mut s = self.lock();
        s.tasks.remove(task_id);
        s.removed.push(task_id.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_from_cpu_units() {
        assert_eq!(cpu_quota_us(1024, 100_000), 100_000);
        assert_eq!(cpu_quota_us(512, 100_000), 50_000);
        assert_eq!(cpu_quota_us(2048, 100_000), 200_000);
        assert_eq!(cpu_quota_us(1, 100_000), MIN_CFS_QUOTA_US);
    }

    #[test]
    fn parses_oom_control() {
        let oom = parse_oom_control("oom_kill_disable 0\nunder_oom 1\noom_kill 3\n");
        assert_eq!(
            oom,
            OomControl {
                oom_kill_disable: false,
                under_oom: true,
                oom_kill: 3
            }
        );
        assert_eq!(
            parse_oom_control("oom_kill_disable 0\nunder_oom 0\n").oom_kill,
            0
        );
    }

    #[test]
    fn fake_records_tasks() {
        let cg = FakeCgroups::new();
        let limits = TaskLimits {
            cpu_units: Some(256),
            memory_bytes: Some(512 << 20),
            pids: None,
        };
        cg.create_task("t1", &limits).unwrap();
        assert_eq!(cg.container_path("t1", "web"), "/berth/t1/web");
        assert_eq!(cg.tasks().get("t1"), Some(&limits));
        assert!(cg.create_task("../x", &limits).is_err());
        cg.remove_task("t1").unwrap();
        assert!(cg.tasks().is_empty());
        assert_eq!(cg.removed(), vec!["t1".to_string()]);
    }

    #[test]
    fn real_cgroups_outside_sysfs_write_the_limit_files() {
        // On a plain directory standing in for /sys/fs/cgroup the manager
        // writes the same files it would write on cgroupfs.
        let dir = tempfile::tempdir().unwrap();
        let cg = V1Cgroups::new(dir.path(), "berth-unit").unwrap();
        let limits = TaskLimits {
            cpu_units: Some(512),
            memory_bytes: Some(256 << 20),
            pids: Some(64),
        };
        cg.create_task("t1", &limits).unwrap();
        let read = |c: &str, f: &str| {
            std::fs::read_to_string(cg.dir(c, "/berth-unit/t1").join(f)).unwrap()
        };
        assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu", "cpu.shares"), "512");
        assert_eq!(
            read("memory", "memory.limit_in_bytes"),
            (256u64 << 20).to_string()
        );
        assert_eq!(read("pids", "pids.max"), "64");
    }
}

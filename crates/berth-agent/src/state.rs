//! What the agent remembers across restarts, one JSON file per task under
//! `{agent dir}/tasks/`, written atomically (temp file, fsync, rename)
//! before the step it describes is reported. Containers themselves outlive
//! the agent (berth-runtime's shims); these records let a new agent
//! re-adopt them and know which boot they belong to.

use crate::health::HealthState;
use berth_agent_protocol::DesiredTask;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// Network, cgroup, images, root filesystems; containers starting.
    Pending,
    /// Every container has started (some may have exited since).
    Running,
    /// Containers are being stopped.
    Stopping,
    /// Containers have stopped; an awsvpc task's network interface is
    /// being released (ECS's DEPROVISIONING).
    Deprovisioning,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerPhase {
    Pending,
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    pub name: String,
    pub runtime_id: String,
    pub phase: ContainerPhase,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub image_digest: Option<String>,
    #[serde(default)]
    pub health: HealthState,
    #[serde(default)]
    pub started_at: Option<f64>,
    /// It will never run: its image, its start or its dependencies failed.
    #[serde(default)]
    pub failed: bool,
    /// The unguessable id in the container's metadata URIs
    /// (`ECS_CONTAINER_METADATA_URI_V4`); kept for the container's life
    /// because it is baked into its environment. Empty in records of
    /// agents that predate the endpoint (filled in when read).
    #[serde(default)]
    pub endpoint_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub desired: DesiredTask,
    /// `/proc/sys/kernel/random/boot_id` when the task was set up: its
    /// containers cannot have survived a boot with another id.
    pub boot_id: String,
    pub phase: Phase,
    pub containers: Vec<ContainerRecord>,
    #[serde(default)]
    pub pull_started_at: Option<f64>,
    #[serde(default)]
    pub pull_stopped_at: Option<f64>,
    /// Why this host stopped the task on its own (an essential container
    /// exited, setup failed); `None` when the server asked.
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stopped_at: Option<f64>,
    /// ENI details for awsvpc tasks, as `name`/`value` pairs.
    #[serde(default)]
    pub eni_details: Vec<(String, String)>,
}

impl ContainerRecord {
    /// A container that has not started yet.
    pub fn pending(name: &str, runtime_id: &str) -> ContainerRecord {
        ContainerRecord {
            name: name.to_string(),
            runtime_id: runtime_id.to_string(),
            phase: ContainerPhase::Pending,
            exit_code: None,
            reason: None,
            image_digest: None,
            health: HealthState::default(),
            started_at: None,
            failed: false,
            endpoint_id: crate::task_endpoint::new_id(),
        }
    }
}

impl TaskRecord {
    pub fn task_id(&self) -> &str {
        crate::plan::task_id(&self.desired.task_arn)
    }

    pub fn container_mut(&mut self, name: &str) -> Option<&mut ContainerRecord> {
        self.containers.iter_mut().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct TaskFiles {
    dir: PathBuf,
}

impl TaskFiles {
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<TaskFiles> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(TaskFiles { dir })
    }

    pub fn path(&self, task_id: &str) -> PathBuf {
        self.dir.join(format!("{task_id}.json"))
    }

    pub fn save(&self, record: &TaskRecord) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        write_atomically(&self.path(record.task_id()), &bytes)
    }

    pub fn load(&self, task_id: &str) -> std::io::Result<Option<TaskRecord>> {
        match std::fs::read(self.path(task_id)) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every readable record; unreadable files are logged and skipped.
    pub fn load_all(&self) -> std::io::Result<Vec<TaskRecord>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path).map_err(std::io::Error::other).and_then(|b| serde_json::from_slice(&b).map_err(std::io::Error::other)) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable task record"),
            }
        }
        Ok(out)
    }

    pub fn remove(&self, task_id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(task_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Temp file, fsync, rename: a reader sees the old or the new content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// This boot's id (changes on every reboot).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_skip_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let files = TaskFiles::open(dir.path().join("tasks")).unwrap();
        let r = TaskRecord {
            desired: crate::plan::desired_for_tests("arn:aws:ecs:us-east-1:1:task/c/abc", serde_json::json!({}), None),
            boot_id: "b".into(),
            phase: Phase::Running,
            containers: vec![],
            pull_started_at: Some(1.0),
            pull_stopped_at: None,
            stop_reason: None,
            stopped_at: None,
            eni_details: vec![],
        };
        files.save(&r).unwrap();
        std::fs::write(dir.path().join("tasks/bad.json"), b"{").unwrap();
        assert_eq!(files.load("abc").unwrap(), Some(r.clone()));
        assert_eq!(files.load_all().unwrap(), vec![r]);
        files.remove("abc").unwrap();
        files.remove("abc").unwrap();
        assert_eq!(files.load("abc").unwrap(), None);
    }
}

//! What the task endpoint serves, in memory: each task's metadata (as its
//! worker last published it) and its role credentials (as the last poll
//! answer carried them). Two writers with different rhythms — workers on
//! every state change, the engine on every poll answer — so the two halves
//! are kept apart and joined only when a request is answered.

use berth_agent_protocol::{DesiredTask, RoleCredentials, TaskCredentials};
use berth_net::NetworkMode;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, MutexGuard};

/// One task as the metadata endpoint shows it. Built by the worker from
/// its record ([`super::metadata::task_meta`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMeta {
    pub task_arn: String,
    pub family: String,
    pub revision: String,
    pub desired_status: String,
    pub known_status: String,
    /// Task-level `cpu` (CPU units) and `memory` (MiB), if set.
    pub cpu_units: Option<u64>,
    pub memory_mib: Option<u64>,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub execution_stopped_at: Option<f64>,
    pub network_mode: NetworkMode,
    /// The task's own address (bridge and awsvpc), while its network
    /// exists: the only peer allowed to read this task's endpoints.
    pub ipv4: Option<Ipv4Addr>,
    pub prefix_len: Option<u8>,
    pub gateway: Option<Ipv4Addr>,
    pub mac: Option<String>,
    pub containers: Vec<ContainerMeta>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerMeta {
    /// The unguessable id in the container's metadata URIs.
    pub endpoint_id: String,
    pub name: String,
    pub runtime_id: String,
    pub image: String,
    pub image_digest: Option<String>,
    pub desired_status: String,
    pub known_status: String,
    pub exit_code: Option<i32>,
    pub cpu_units: u64,
    pub memory_mib: Option<u64>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    /// `(container port, host port, protocol)`.
    pub ports: Vec<(u16, u16, String)>,
    pub log_driver: Option<String>,
    pub log_options: Vec<(String, String)>,
    /// `HEALTHY`/`UNHEALTHY`/`UNKNOWN` when the container has a health check.
    pub health: Option<String>,
    /// The init process in the host's pid namespace, while it runs (its
    /// `/proc/{pid}/net/dev` holds the task's interface counters).
    pub pid: Option<u32>,
    /// The container's cgroup path (under each v1 hierarchy).
    pub cgroup_path: String,
}

/// The host-wide facts every answer carries.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    /// The cluster's name (its ARN is derived from a task ARN).
    pub cluster: String,
    pub availability_zone: String,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, TaskMeta>,
    credentials: HashMap<String, TaskCredentials>,
}

/// A read-only view while a request is answered.
pub struct View<'a> {
    pub host: &'a HostInfo,
    inner: MutexGuard<'a, Inner>,
}

/// Whether `peer` may read the endpoints of `task`. Bridge and awsvpc tasks
/// each have their own address and the redirect keeps the source address,
/// so only the task's own address is accepted (Berth is stricter than ECS
/// here). Tasks in `host` mode share the host's addresses, so for them
/// only the unguessable id in the URI protects; `none` tasks cannot reach
/// the endpoint at all.
pub fn peer_allowed(task: &TaskMeta, peer: IpAddr) -> bool {
    match task.network_mode {
        NetworkMode::Host => true,
        NetworkMode::None => false,
        NetworkMode::Bridge | NetworkMode::Awsvpc => match (task.ipv4, peer) {
            (Some(own), IpAddr::V4(p)) => own == p,
            (Some(own), IpAddr::V6(p)) => p.to_ipv4_mapped() == Some(own),
            (None, _) => false,
        },
    }
}

impl View<'_> {
    /// The task that owns `credentials_id` and its task role's session, if
    /// `peer` may have them.
    pub fn task_role(&self, credentials_id: &str, peer: IpAddr) -> Option<(&TaskMeta, &RoleCredentials)> {
        let (arn, creds) = self.inner.credentials.iter().find(|(_, c)| c.credentials_id == credentials_id)?;
        let role = creds.task_role.as_ref()?;
        let task = self.inner.tasks.get(arn)?;
        peer_allowed(task, peer).then_some((task, role))
    }

    /// The container whose metadata id is `endpoint_id`, with its task, if
    /// `peer` may read them.
    pub fn container(&self, endpoint_id: &str, peer: IpAddr) -> Option<(&TaskMeta, &ContainerMeta)> {
        let (task, c) = self
            .inner
            .tasks
            .values()
            .find_map(|t| t.containers.iter().find(|c| c.endpoint_id == endpoint_id).map(|c| (t, c)))?;
        peer_allowed(task, peer).then_some((task, c))
    }
}

pub struct EndpointRegistry {
    host: HostInfo,
    inner: Mutex<Inner>,
}

impl EndpointRegistry {
    pub fn new(host: HostInfo) -> EndpointRegistry {
        EndpointRegistry { host, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still
        // consistent enough to serve.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn host(&self) -> &HostInfo {
        &self.host
    }

    /// Replaces every task's credentials with those of a poll answer (the
    /// complete desired state): tasks no longer listed, or desired
    /// STOPPED, lose theirs.
    pub fn set_credentials(&self, desired: &[DesiredTask]) {
        let fresh: HashMap<String, TaskCredentials> = desired
            .iter()
            .filter(|t| t.desired_status != "STOPPED")
            .filter_map(|t| t.credentials.clone().map(|c| (t.task_arn.clone(), c)))
            .collect();
        self.lock().credentials = fresh;
    }

    /// The latest metadata of a task, from its worker.
    pub fn publish_task(&self, meta: TaskMeta) {
        let mut inner = self.lock();
        if inner.tasks.get(&meta.task_arn) != Some(&meta) {
            inner.tasks.insert(meta.task_arn.clone(), meta);
        }
    }

    /// Forgets a task whose containers were cleaned up.
    pub fn remove_task(&self, task_arn: &str) {
        let mut inner = self.lock();
        inner.tasks.remove(task_arn);
        inner.credentials.remove(task_arn);
    }

    /// The execution role's session for a task's private image pulls.
    pub fn execution_role(&self, task_arn: &str) -> Option<RoleCredentials> {
        self.lock().credentials.get(task_arn).and_then(|c| c.execution_role.clone())
    }

    pub fn view(&self) -> View<'_> {
        View { host: &self.host, inner: self.lock() }
    }
}

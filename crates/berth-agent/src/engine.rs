//! The agent's top level: register the host, recover what a previous agent
//! left, then follow the long poll. Each answer is the host's complete
//! desired state; [`Engine::apply`] reconciles local workers against it
//! without asking why it changed (level-triggered: a reconnect is a full
//! resync, and a task the server no longer lists is stopped — fencing).

use crate::control::{ControlError, ControlPlane};
use crate::host::{HostResources, Registration, registration_body};
use crate::state::{ContainerPhase, Phase, TaskRecord, write_atomically};
use crate::worker::{self, Host};
use berth_agent_protocol::{DesiredState, DesiredTask, PollRequest};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the agent stopped a task the server no longer lists for this host.
pub const FENCED_REASON: &str = "Task stopped by the agent: the control plane no longer assigns it to this container instance";
/// The stoppedReason of tasks whose containers did not survive a reboot.
pub const REBOOT_REASON: &str = "Host restarted: the task's containers did not survive a reboot of the container instance";

/// Who this host is in the cluster, kept across agent restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceIdentity {
    /// `i-` and 17 hex digits, generated once per host.
    pub instance_id: String,
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
}

pub struct EngineConfig {
    pub cluster: String,
    pub region: String,
    pub instance_type: String,
    pub availability_zone: String,
    pub hostname: String,
    pub resources: HostResources,
    pub reserved_ports: Vec<u16>,
    pub reserved_ports_udp: Vec<u16>,
    pub custom_attributes: Vec<(String, String)>,
    /// Where `instance.json` lives.
    pub state_dir: PathBuf,
    /// How long a stopped task's containers (and logs) are kept, as
    /// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION.
    pub task_cleanup_wait: Duration,
}

struct WorkerHandle {
    desired: watch::Sender<DesiredTask>,
    join: JoinHandle<TaskRecord>,
}

pub struct Engine {
    cfg: EngineConfig,
    host: Arc<Host>,
    control: Arc<dyn ControlPlane>,
    workers: HashMap<String, WorkerHandle>,
    /// Finished tasks, kept until their cleanup time.
    finished: HashMap<String, TaskRecord>,
    instance_arn: Option<String>,
    /// The task endpoint's server, when this agent runs one; ends with
    /// [`Engine::run`].
    task_endpoint: Option<JoinHandle<()>>,
}

impl Engine {
    pub fn new(cfg: EngineConfig, host: Arc<Host>, control: Arc<dyn ControlPlane>) -> Engine {
        Engine { cfg, host, control, workers: HashMap::new(), finished: HashMap::new(), instance_arn: None, task_endpoint: None }
    }

    /// Hands the engine the task endpoint's serving task, to stop with it.
    pub fn with_task_endpoint(mut self, server: JoinHandle<()>) -> Engine {
        self.task_endpoint = Some(server);
        self
    }

    pub fn container_instance_arn(&self) -> Option<&str> {
        self.instance_arn.as_deref()
    }

    fn identity_path(&self) -> PathBuf {
        self.cfg.state_dir.join("instance.json")
    }

    fn load_identity(&self) -> InstanceIdentity {
        std::fs::read(self.identity_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| InstanceIdentity { instance_id: new_instance_id(), cluster: None, container_instance_arn: None })
    }

    /// RegisterContainerInstance, re-using this host's ARN when it has one
    /// in the same cluster. Retries until the server answers.
    pub async fn register(&mut self) -> Result<String, ControlError> {
        let mut identity = self.load_identity();
        let previous = identity.container_instance_arn.clone().filter(|_| identity.cluster.as_deref() == Some(self.cfg.cluster.as_str()));
        let mut backoff = Duration::from_millis(200);
        let answer = loop {
            let body = registration_body(&Registration {
                cluster: &self.cfg.cluster,
                resources: &self.cfg.resources,
                reserved_ports: &self.cfg.reserved_ports,
                reserved_ports_udp: &self.cfg.reserved_ports_udp,
                instance_id: &identity.instance_id,
                instance_type: &self.cfg.instance_type,
                availability_zone: &self.cfg.availability_zone,
                region: &self.cfg.region,
                hostname: &self.cfg.hostname,
                custom_attributes: &self.cfg.custom_attributes,
                container_instance_arn: previous.as_deref(),
            });
            match self.control.call("RegisterContainerInstance", body).await {
                Ok(v) => break v,
                Err(ControlError::Unreachable(e)) => {
                    tracing::warn!(error = %e, "cannot register yet; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        };
        let arn = answer
            .pointer("/containerInstance/containerInstanceArn")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ControlError::Decode("RegisterContainerInstance answered without an ARN".into()))?
            .to_string();
        identity.cluster = Some(self.cfg.cluster.clone());
        identity.container_instance_arn = Some(arn.clone());
        if let Ok(bytes) = serde_json::to_vec_pretty(&identity)
            && let Err(e) = write_atomically(&self.identity_path(), &bytes)
        {
            tracing::error!(error = %e, "cannot save the instance identity");
        }
        tracing::info!(container_instance = %arn, cluster = %self.cfg.cluster, "registered");
        self.instance_arn = Some(arn.clone());
        Ok(arn)
    }

    /// Picks up the records a previous agent left: tasks of this boot get a
    /// worker (which re-adopts their containers); tasks of an earlier boot
    /// are reported STOPPED.
    pub async fn recover(&mut self) {
        if let Err(e) = self.host.network.recover().await {
            tracing::warn!(error = %e, "recovering task networks failed");
        }
        let records = match self.host.files.load_all() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read task records");
                return;
            }
        };
        for mut record in records {
            if record.boot_id != self.host.boot_id && record.phase != Phase::Stopped {
                for c in &mut record.containers {
                    if c.phase != ContainerPhase::Stopped {
                        c.phase = ContainerPhase::Stopped;
                        c.reason.get_or_insert_with(|| "Host restarted".to_string());
                    }
                }
                record.stop_reason.get_or_insert_with(|| REBOOT_REASON.to_string());
                record.boot_id = self.host.boot_id.clone();
                record.phase = Phase::Stopping;
            }
            tracing::info!(task = %record.desired.task_arn, phase = ?record.phase, "recovering task");
            self.spawn(record);
        }
    }

    fn spawn(&mut self, record: TaskRecord) {
        let arn = record.desired.task_arn.clone();
        let (tx, rx) = watch::channel(record.desired.clone());
        let join = tokio::spawn(worker::run(self.host.clone(), record, rx));
        self.workers.insert(arn, WorkerHandle { desired: tx, join });
    }

    /// Reconcile local workers against the complete desired state.
    pub fn apply(&mut self, desired: &DesiredState) {
        self.reap();
        // Every answer carries fresh sessions; they never reach a worker
        // (nor its record on disk), only the endpoint's memory.
        self.host.endpoints.set_credentials(&desired.tasks);
        let mut listed = std::collections::HashSet::new();
        for task in &desired.tasks {
            listed.insert(task.task_arn.clone());
            if let Some(w) = self.workers.get(&task.task_arn) {
                w.desired.send_if_modified(|cur| {
                    let changed = cur.desired_status != task.desired_status || cur.generation != task.generation;
                    if changed {
                        *cur = crate::task_endpoint::env::without_secrets(task);
                    }
                    changed
                });
            } else if let Some(done) = self.finished.get(&task.task_arn) {
                // The server has not taken our STOPPED yet: say it again.
                self.host.reporter.submit(&task.task_arn, worker::report_body(&self.cfg.cluster, done, crate::plan::plan(&done.desired).ok().as_ref()));
            } else {
                let record = worker::new_record(task.clone(), &self.host.boot_id);
                self.spawn(record);
            }
        }
        for (arn, w) in &self.workers {
            if !listed.contains(arn) {
                w.desired.send_if_modified(|cur| {
                    if cur.desired_status == "STOPPED" {
                        return false;
                    }
                    tracing::info!(task = %arn, "the control plane no longer lists this task; stopping it");
                    cur.desired_status = "STOPPED".into();
                    cur.stopped_reason = Some(FENCED_REASON.into());
                    true
                });
            }
        }
        let now = berth_clock::epoch_seconds(self.host.clock.now());
        let wait = self.cfg.task_cleanup_wait.as_secs_f64();
        let expired: Vec<String> = self
            .finished
            .iter()
            .filter(|(arn, r)| !listed.contains(*arn) && r.stopped_at.is_none_or(|t| now - t >= wait))
            .map(|(arn, _)| arn.clone())
            .collect();
        for arn in expired {
            if let Some(r) = self.finished.remove(&arn) {
                self.clean_up(r);
            }
        }
    }

    /// Moves finished workers to `finished`.
    fn reap(&mut self) {
        let done: Vec<String> = self.workers.iter().filter(|(_, w)| w.join.is_finished()).map(|(a, _)| a.clone()).collect();
        for arn in done {
            let Some(w) = self.workers.remove(&arn) else { continue };
            if let Some(Ok(record)) = futures_now(w.join) {
                self.finished.insert(arn, record);
            }
        }
    }

    /// Forgets a stopped task: its containers' state and logs, and its record.
    fn clean_up(&self, record: TaskRecord) {
        let host = self.host.clone();
        host.endpoints.remove_task(&record.desired.task_arn);
        tokio::spawn(async move {
            for c in &record.containers {
                if let Err(e) = host.runtime.delete(&c.runtime_id).await {
                    tracing::warn!(container = %c.runtime_id, error = %e, "cleaning up a container failed");
                }
            }
            if let Err(e) = host.files.remove(record.task_id()) {
                tracing::warn!(task = %record.desired.task_arn, error = %e, "removing a task record failed");
            }
        });
    }

    /// Runs the agent until `shutdown` resolves. Containers keep running
    /// after it returns; the next agent re-adopts them.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ControlError> {
        let reporter = self.host.reporter.clone();
        let reporting = tokio::spawn(reporter.clone().run(self.control.clone()));
        self.recover().await;
        let mut arn = self.register().await?;
        tokio::pin!(shutdown);
        let mut known_version = None;
        let mut backoff = Duration::from_millis(200);
        loop {
            let req = PollRequest { cluster: self.cfg.cluster.clone(), container_instance_arn: arn.clone(), known_version };
            let answer = tokio::select! {
                _ = &mut shutdown => break,
                a = self.control.poll(&req) => a,
            };
            match answer {
                Ok(resp) => {
                    backoff = Duration::from_millis(200);
                    self.apply(&resp.desired);
                    known_version = Some(resp.version);
                }
                Err(ControlError::Api { code, message }) if message.contains("container instance was not found") => {
                    tracing::warn!(%code, %message, "the server does not know this instance; registering again");
                    self.forget_registration();
                    arn = self.register().await?;
                    known_version = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "poll failed; reconnecting");
                    known_version = None;
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        reporter.flush(Duration::from_secs(5)).await;
        reporting.abort();
        for (_, w) in self.workers.drain() {
            w.join.abort();
        }
        if let Some(server) = self.task_endpoint.take() {
            server.abort();
        }
        Ok(())
    }

    fn forget_registration(&mut self) {
        let mut identity = self.load_identity();
        identity.container_instance_arn = None;
        if let Ok(bytes) = serde_json::to_vec_pretty(&identity) {
            let _ = write_atomically(&self.identity_path(), &bytes);
        }
    }
}

/// The output of a finished join handle without awaiting.
fn futures_now<T>(join: JoinHandle<T>) -> Option<Result<T, tokio::task::JoinError>> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut join = std::pin::pin!(join);
    match join.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

/// `i-` and 17 hex digits from the kernel's random source.
fn new_instance_id() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    let hex: String = raw.chars().filter(char::is_ascii_hexdigit).take(17).collect();
    format!("i-{hex:0>17}")
}

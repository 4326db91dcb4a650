//! One task's life on this host, from PENDING to STOPPED: the imperative
//! shell around the pure pieces (`plan`, `spec_build`, `depends`,
//! `health`). Every step is idempotent and re-checks what exists, so a
//! worker started for a record left by a previous agent (after a crash or
//! an upgrade) simply carries on: it adopts the containers the runtime
//! still has, learns how the others ended, and continues from there.
//!
//! The loop is level-triggered: whatever woke it (a container exit, a
//! health result, a new desired state, a timer), it looks at the whole
//! record and does what is due.

use crate::depends::{Progress, Readiness, readiness};
use crate::health::HealthStatus;
use crate::images::{Images, PullFailure, ReadyImage};
use crate::plan::{self, ContainerPlan, TaskPlan};
use crate::report::Reporter;
use crate::spec_build::{self, SpecInputs};
use crate::state::{ContainerPhase, ContainerRecord, Phase, TaskFiles, TaskRecord};
use crate::task_endpoint::{self, EndpointRegistry};
use berth_agent_protocol::DesiredTask;
use berth_clock::Clock;
use berth_image::PullPolicy;
use berth_net::{Network, NetworkMode, PortMapping, Protocol, TaskNetwork};
use berth_runtime::{CgroupManager, ContainerRuntime, ContainerSpec, ContainerState, ExitStatus, TaskLimits};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";

/// Everything a task worker acts through. Each side effect is a trait
/// with a fake.
pub struct Host {
    pub cluster: String,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub network: Arc<dyn Network>,
    pub cgroups: Arc<dyn CgroupManager>,
    pub images: Arc<dyn Images>,
    pub clock: Arc<dyn Clock>,
    pub reporter: Arc<Reporter>,
    pub files: TaskFiles,
    pub pull_policy: PullPolicy,
    pub boot_id: String,
    /// What the task endpoint serves; workers publish their tasks' metadata.
    pub endpoints: Arc<EndpointRegistry>,
}

impl Host {
    fn now(&self) -> f64 {
        berth_clock::epoch_seconds(self.clock.now())
    }
}

enum Event {
    Exited { name: String, status: ExitStatus },
    Lost { name: String, error: String },
    Health { name: String, passed: bool },
}

/// A fresh record for a task this host has not seen. Role sessions are
/// never kept in it (it is written to disk).
pub fn new_record(desired: DesiredTask, boot_id: &str) -> TaskRecord {
    let desired = task_endpoint::env::without_secrets(&desired);
    let containers = match plan::plan(&desired) {
        Ok(p) => p
            .containers
            .iter()
            .map(|c| ContainerRecord::pending(&c.name, &c.runtime_id))
            .collect(),
        Err(_) => Vec::new(),
    };
    TaskRecord {
        desired,
        boot_id: boot_id.to_string(),
        phase: Phase::Pending,
        containers,
        pull_started_at: None,
        pull_stopped_at: None,
        stop_reason: None,
        stopped_at: None,
        eni_details: Vec::new(),
    }
}

struct Worker {
    host: Arc<Host>,
    record: TaskRecord,
    plan: Option<TaskPlan>,
    desired: watch::Receiver<DesiredTask>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    waiters: JoinSet<()>,
    checks: JoinSet<()>,
    checking: HashSet<String>,
    next_check: HashMap<String, Instant>,
    specs: HashMap<String, ContainerSpec>,
    last_report: Option<Value>,
    /// Running containers' init processes, by name (for statistics).
    pids: HashMap<String, u32>,
}

/// Runs the task until it is STOPPED and reported; returns its final
/// record.
pub async fn run(host: Arc<Host>, record: TaskRecord, desired: watch::Receiver<DesiredTask>) -> TaskRecord {
    let (events_tx, events) = mpsc::unbounded_channel();
    let plan = plan::plan(&record.desired);
    let mut w = Worker {
        host,
        plan: plan.as_ref().ok().cloned(),
        record,
        desired,
        events_tx,
        events,
        waiters: JoinSet::new(),
        checks: JoinSet::new(),
        checking: HashSet::new(),
        next_check: HashMap::new(),
        specs: HashMap::new(),
        last_report: None,
        pids: HashMap::new(),
    };
    // Records of agents that predate the task endpoint.
    for c in &mut w.record.containers {
        if c.endpoint_id.is_empty() {
            c.endpoint_id = task_endpoint::new_id();
        }
    }
    if let Err(e) = plan {
        w.record.stop_reason.get_or_insert_with(|| format!("TaskFailedToStart: {e}"));
    }
    w.drive().await;
    w.record
}

impl Worker {
    fn plan(&self) -> Option<&TaskPlan> {
        self.plan.as_ref()
    }

    fn stop_wanted(&self) -> bool {
        self.desired.borrow().desired_status == "STOPPED" || self.record.stop_reason.is_some()
    }

    async fn drive(&mut self) {
        if self.record.phase == Phase::Stopped {
            self.publish();
            return;
        }
        self.adopt().await;
        if !matches!(self.record.phase, Phase::Stopping | Phase::Deprovisioning) && !self.stop_wanted() {
            if let Err(reason) = self.setup().await {
                self.record.stop_reason.get_or_insert(reason);
            } else {
                self.run_containers().await;
            }
        }
        self.teardown().await;
    }

    /// After a restart: containers the runtime still has are watched again;
    /// those that ended while the agent was away get their exit status.
    async fn adopt(&mut self) {
        let now = self.host.now();
        for i in 0..self.record.containers.len() {
            let (name, id, phase) = {
                let c = &self.record.containers[i];
                (c.name.clone(), c.runtime_id.clone(), c.phase)
            };
            if phase == ContainerPhase::Stopped {
                continue;
            }
            match self.host.runtime.state(&id).await {
                Ok(state @ (ContainerState::Running { .. } | ContainerState::Starting)) => {
                    if let ContainerState::Running { pid } = state {
                        self.pids.insert(name.clone(), pid);
                    }
                    let c = &mut self.record.containers[i];
                    c.phase = ContainerPhase::Running;
                    c.started_at.get_or_insert(now);
                    self.watch_exit(&name, &id);
                }
                Ok(ContainerState::Exited(status)) => {
                    let c = &mut self.record.containers[i];
                    c.started_at.get_or_insert(now);
                    apply_exit(c, &status);
                }
                Ok(ContainerState::NotFound) | Err(_) if phase == ContainerPhase::Running => {
                    let c = &mut self.record.containers[i];
                    c.phase = ContainerPhase::Stopped;
                    c.reason.get_or_insert_with(|| "InternalError: the container's state was lost".into());
                }
                _ => {}
            }
        }
    }

    fn watch_exit(&mut self, name: &str, id: &str) {
        let rt = self.host.runtime.clone();
        let tx = self.events_tx.clone();
        let (name, id) = (name.to_string(), id.to_string());
        self.waiters.spawn(async move {
            loop {
                match rt.wait(&id, Duration::from_secs(3600)).await {
                    Ok(Some(status)) => {
                        let _ = tx.send(Event::Exited { name, status });
                        return;
                    }
                    Ok(None) => continue,
                    Err(e) => {
                        let _ = tx.send(Event::Lost { name, error: e.to_string() });
                        return;
                    }
                }
            }
        });
    }

    /// Network, cgroup, images, root filesystems and container specs.
    /// `Err` is the task's stoppedReason.
    async fn setup(&mut self) -> Result<(), String> {
        let Some(plan) = self.plan().cloned() else {
            return Err("TaskFailedToStart: the task definition could not be read".into());
        };
        self.publish();
        let net = self
            .host
            .network
            .create_task_network(&plan.task_id, plan.network_mode)
            .await
            .map_err(|e| format!("ResourceInitializationError: unable to set up the task network: {e}"))?;
        if plan.network_mode == NetworkMode::Bridge && !plan.host_ports.is_empty() {
            let mappings: Vec<PortMapping> = plan
                .host_ports
                .iter()
                .map(|p| PortMapping {
                    host_ip: None,
                    host_port: p.host_port,
                    container_port: p.container_port,
                    protocol: if p.protocol == "udp" { Protocol::Udp } else { Protocol::Tcp },
                })
                .collect();
            self.host
                .network
                .publish_ports(&plan.task_id, &mappings)
                .await
                .map_err(|e| format!("ResourceInitializationError: unable to publish the task's ports: {e}"))?;
        }
        if let Some(eni) = net.eni_attachment() {
            self.record.eni_details = eni.details().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        }
        let limits = TaskLimits {
            cpu_units: plan.cpu_units,
            memory_bytes: plan.memory_mib.map(|m| m * 1024 * 1024),
            pids: None,
        };
        self.host
            .cgroups
            .create_task(&plan.task_id, &limits)
            .map_err(|e| format!("ResourceInitializationError: unable to create the task's cgroup: {e}"))?;

        let images = self.pull(&plan).await?;
        for c in &plan.containers {
            let pending = self.record.containers.iter().any(|r| r.name == c.name && r.phase == ContainerPhase::Pending);
            if !pending {
                continue;
            }
            let Some(image) = images.get(&c.image) else { continue };
            match self.prepare(&plan, c, image, &net) {
                Ok(spec) => {
                    self.specs.insert(c.name.clone(), spec);
                }
                Err(reason) => {
                    if let Some(r) = self.record.container_mut(&c.name) {
                        r.failed = true;
                        r.phase = ContainerPhase::Stopped;
                        r.reason = Some(reason.clone());
                    }
                    return Err(reason);
                }
            }
        }
        Ok(())
    }

    async fn pull(&mut self, plan: &TaskPlan) -> Result<HashMap<String, ReadyImage>, String> {
        let wanted: Vec<String> = {
            let mut v: Vec<String> = plan
                .containers
                .iter()
                .filter(|c| self.record.containers.iter().any(|r| r.name == c.name && r.phase == ContainerPhase::Pending))
                .map(|c| c.image.clone())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let now = self.host.now();
        self.record.pull_started_at.get_or_insert(now);
        self.publish();
        let mut pulls = JoinSet::new();
        // Fresh from the last poll answer: the execution role's session.
        let session = self.host.endpoints.execution_role(&self.record.desired.task_arn);
        for image in wanted {
            let images = self.host.images.clone();
            let policy = self.host.pull_policy;
            let session = session.clone();
            pulls.spawn(async move {
                let r = images.ensure(&image, policy, session.as_ref()).await;
                (image, r)
            });
        }
        let mut ready = HashMap::new();
        let mut failures: BTreeMap<String, PullFailure> = BTreeMap::new();
        while let Some(joined) = pulls.join_next().await {
            match joined {
                Ok((image, Ok(r))) => {
                    ready.insert(image, r);
                }
                Ok((image, Err(f))) => {
                    failures.insert(image, f);
                }
                Err(e) => return Err(format!("InternalError: an image pull panicked: {e}")),
            }
        }
        self.record.pull_stopped_at.get_or_insert(self.host.now());
        for c in &plan.containers {
            if let (Some(r), Some(img)) = (self.record.container_mut(&c.name), ready.get(&c.image)) {
                r.image_digest = Some(img.digest.clone());
            }
        }
        if let Some((_, first)) = failures.iter().next() {
            let first = first.reason.clone();
            for c in &plan.containers {
                if let (Some(f), Some(r)) = (failures.get(&c.image), self.record.container_mut(&c.name)) {
                    r.failed = true;
                    r.phase = ContainerPhase::Stopped;
                    r.reason = Some(f.reason.clone());
                }
            }
            // ECS stops the whole task when any of its images cannot be pulled.
            return Err(first);
        }
        Ok(ready)
    }

    fn prepare(&self, plan: &TaskPlan, c: &ContainerPlan, image: &ReadyImage, net: &TaskNetwork) -> Result<ContainerSpec, String> {
        let rootfs = self
            .host
            .images
            .prepare_rootfs(&c.runtime_id, &image.layers)
            .map_err(|e| format!("CannotCreateContainerError: preparing the root filesystem: {e}"))?;
        let user = berth_runtime::user::resolve_in_rootfs(c.user.as_deref(), &rootfs)
            .map_err(|e| format!("CannotCreateContainerError: {e}"))?;
        let mut env_file_vars = Vec::new();
        for f in &c.environment_files {
            let path = f.strip_prefix("file://").unwrap_or(f);
            if !path.starts_with('/') {
                return Err(format!(
                    "ResourceInitializationError: failed to download env files: {f}: Berth reads environment files from an absolute path on the host (S3 is not available)"
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("ResourceInitializationError: failed to read env file {path}: {e}"))?;
            env_file_vars.extend(spec_build::parse_env_file(&text));
        }
        let endpoint_id = self.record.containers.iter().find(|r| r.name == c.name).map(|r| r.endpoint_id.clone()).unwrap_or_default();
        let inputs = SpecInputs {
            image: &image.config,
            rootfs: &rootfs,
            network: net,
            user,
            env_file_vars,
            agent_env: task_endpoint::env::container_env(&self.record.desired, &endpoint_id),
            cgroups_path: self.host.cgroups.container_path(&plan.task_id, &c.runtime_id),
        };
        spec_build::build(plan, c, inputs).map_err(|e| format!("CannotCreateContainerError: {e}"))
    }

    fn progress(&self, name: &str) -> Option<Progress> {
        let c = self.record.containers.iter().find(|c| c.name == name)?;
        Some(match (c.phase, c.failed) {
            (_, true) => Progress::Failed,
            (ContainerPhase::Pending, _) => Progress::NotStarted,
            (ContainerPhase::Running, _) => Progress::Running(c.health.status),
            (ContainerPhase::Stopped, _) => Progress::Exited(c.exit_code),
        })
    }

    /// Starts every pending container whose dependencies hold.
    async fn start_ready(&mut self) {
        let Some(plan) = self.plan().cloned() else { return };
        // Starting one container may make another ready (START), so go
        // round until nothing changes.
        loop {
            let mut changed = false;
            for c in &plan.containers {
                let pending = self.record.containers.iter().any(|r| r.name == c.name && r.phase == ContainerPhase::Pending && !r.failed);
                if !pending {
                    continue;
                }
                match readiness(&c.depends_on, |n| self.progress(n)) {
                    Readiness::Wait => {}
                    Readiness::Never(why) => {
                        self.fail_container(c, format!("CannotStartContainerError: {why}"));
                        changed = true;
                    }
                    Readiness::Ready => {
                        self.start(c).await;
                        changed = true;
                    }
                }
            }
            if !changed || self.record.stop_reason.is_some() {
                return;
            }
        }
    }

    fn fail_container(&mut self, c: &ContainerPlan, reason: String) {
        if let Some(r) = self.record.container_mut(&c.name) {
            r.failed = true;
            r.phase = ContainerPhase::Stopped;
            r.reason = Some(reason.clone());
        }
        if c.essential {
            self.record.stop_reason.get_or_insert(reason);
        }
    }

    async fn start(&mut self, c: &ContainerPlan) {
        let Some(spec) = self.specs.get(&c.name).cloned() else {
            self.fail_container(c, "CannotStartContainerError: the container was never prepared".into());
            return;
        };
        match self.host.runtime.start(&spec).await {
            Ok(pid) => {
                self.pids.insert(c.name.clone(), pid);
                let now = self.host.now();
                if let Some(r) = self.record.container_mut(&c.name) {
                    r.phase = ContainerPhase::Running;
                    r.started_at = Some(now);
                }
                if let Some(hc) = &c.health_check {
                    self.next_check.insert(c.name.clone(), Instant::now() + hc.interval);
                }
                self.watch_exit(&c.name, &c.runtime_id);
            }
            Err(e) => self.fail_container(c, format!("CannotStartContainerError: {e}")),
        }
    }

    fn apply_event(&mut self, ev: Event) {
        match ev {
            Event::Exited { name, status } => {
                self.next_check.remove(&name);
                if let Some(c) = self.record.container_mut(&name) {
                    apply_exit(c, &status);
                }
            }
            Event::Lost { name, error } => {
                if let Some(c) = self.record.container_mut(&name) {
                    c.phase = ContainerPhase::Stopped;
                    c.reason.get_or_insert(format!("InternalError: {error}"));
                }
            }
            Event::Health { name, passed } => {
                self.checking.remove(&name);
                let now = self.host.now();
                let Some(hc) = self.plan().and_then(|p| p.container(&name)).and_then(|c| c.health_check.clone()) else { return };
                if let Some(c) = self.record.container_mut(&name)
                    && c.phase == ContainerPhase::Running
                {
                    let in_start_period = c.started_at.is_some_and(|s| now < s + hc.start_period.as_secs_f64());
                    c.health.record(passed, in_start_period, hc.retries);
                    self.next_check.insert(name, Instant::now() + hc.interval);
                }
            }
        }
    }

    /// Launches the health checks that are due.
    fn run_due_checks(&mut self) {
        let now = Instant::now();
        let due: Vec<String> =
            self.next_check.iter().filter(|(n, at)| **at <= now && !self.checking.contains(*n)).map(|(n, _)| n.clone()).collect();
        for name in due {
            let Some(c) = self.plan().and_then(|p| p.container(&name)).cloned() else { continue };
            let Some(hc) = c.health_check.clone() else { continue };
            self.next_check.remove(&name);
            self.checking.insert(name.clone());
            let rt = self.host.runtime.clone();
            let tx = self.events_tx.clone();
            self.checks.spawn(async move {
                let passed = matches!(rt.exec(&c.runtime_id, &hc.command, hc.timeout).await, Ok(Some(0)));
                let _ = tx.send(Event::Health { name, passed });
            });
        }
    }

    async fn run_containers(&mut self) {
        // Health checks of adopted containers restart their schedule.
        if let Some(plan) = self.plan().cloned() {
            for c in &plan.containers {
                if let (Some(hc), Some(r)) = (&c.health_check, self.record.containers.iter().find(|r| r.name == c.name))
                    && r.phase == ContainerPhase::Running
                {
                    self.next_check.entry(c.name.clone()).or_insert_with(|| Instant::now() + hc.interval);
                }
            }
        }
        loop {
            while let Ok(ev) = self.events.try_recv() {
                self.apply_event(ev);
            }
            if self.stop_wanted() {
                return;
            }
            self.start_ready().await;
            let essentials_exited = self.plan().is_some_and(|p| {
                p.containers.iter().any(|c| {
                    c.essential && self.record.containers.iter().any(|r| r.name == c.name && r.phase == ContainerPhase::Stopped)
                })
            });
            if essentials_exited {
                self.record.stop_reason.get_or_insert_with(|| ESSENTIAL_EXITED.to_string());
                return;
            }
            if self.record.phase == Phase::Pending && self.record.containers.iter().all(|c| c.phase != ContainerPhase::Pending) {
                self.record.phase = Phase::Running;
            }
            self.run_due_checks();
            self.publish();
            let next = self.next_check.values().min().copied().unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
            tokio::select! {
                Some(ev) = self.events.recv() => self.apply_event(ev),
                changed = self.desired.changed() => {
                    if changed.is_err() {
                        // The engine is gone (agent shutting down): leave
                        // the containers running for the next agent.
                        std::future::pending::<()>().await;
                    }
                }
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// Dependents before their dependencies: the reverse of a start order.
    fn stop_order(&self) -> Vec<String> {
        let Some(plan) = self.plan() else {
            return self.record.containers.iter().map(|c| c.name.clone()).collect();
        };
        let mut order: Vec<String> = Vec::new();
        let mut left: Vec<&ContainerPlan> = plan.containers.iter().collect();
        while !left.is_empty() {
            let before = left.len();
            left.retain(|c| {
                let ready = c.depends_on.iter().all(|d| order.contains(&d.container) || plan.container(&d.container).is_none());
                if ready {
                    order.push(c.name.clone());
                }
                !ready
            });
            if left.len() == before {
                // A cycle (registration forbids it): stop the rest in any order.
                order.extend(left.drain(..).map(|c| c.name.clone()));
            }
        }
        order.reverse();
        order
    }

    async fn teardown(&mut self) {
        self.checks.abort_all();
        self.record.phase = Phase::Stopping;
        self.publish();
        for name in self.stop_order() {
            let Some(c) = self.record.containers.iter().find(|c| c.name == name).cloned() else { continue };
            match c.phase {
                ContainerPhase::Pending => {
                    if let Some(r) = self.record.container_mut(&name) {
                        r.phase = ContainerPhase::Stopped;
                    }
                }
                ContainerPhase::Running => {
                    let timeout = self.plan().and_then(|p| p.container(&name)).map(|p| p.stop_timeout).unwrap_or(plan::DEFAULT_STOP_TIMEOUT);
                    let result = berth_runtime::stop(self.host.runtime.as_ref(), &c.runtime_id, timeout).await;
                    if let Some(r) = self.record.container_mut(&name) {
                        match result {
                            Ok(status) => apply_exit(r, &status),
                            Err(e) => {
                                tracing::warn!(container = %c.runtime_id, error = %e, "stopping a container failed");
                                r.phase = ContainerPhase::Stopped;
                                r.reason.get_or_insert(format!("InternalError: {e}"));
                            }
                        }
                    }
                }
                ContainerPhase::Stopped => {}
            }
            self.publish();
        }
        self.waiters.abort_all();
        let task_id = self.record.task_id().to_string();
        if !self.record.eni_details.is_empty() {
            self.record.phase = Phase::Deprovisioning;
            self.publish();
        }
        if let Err(e) = self.host.network.destroy_task_network(&task_id).await {
            tracing::warn!(task = %task_id, error = %e, "releasing the task network failed");
        }
        if let Err(e) = self.host.cgroups.remove_task(&task_id) {
            tracing::warn!(task = %task_id, error = %e, "removing the task cgroup failed");
        }
        for c in &self.record.containers {
            if let Err(e) = self.host.images.release_rootfs(&c.runtime_id) {
                tracing::warn!(container = %c.runtime_id, error = %e, "releasing a root filesystem failed");
            }
        }
        self.record.phase = Phase::Stopped;
        self.record.stopped_at.get_or_insert(self.host.now());
        self.publish();
    }

    /// Persists the record and queues its report when it changed, and
    /// shows the task's latest state on the task endpoint.
    fn publish(&mut self) {
        self.pids.retain(|name, _| self.record.containers.iter().any(|c| &c.name == name && c.phase == ContainerPhase::Running));
        let net = self.host.network.task_network(self.record.task_id());
        let task_id = self.record.task_id().to_string();
        let cgroups = self.host.cgroups.clone();
        let meta = task_endpoint::metadata::task_meta(&self.record, self.plan.as_ref(), net.as_ref(), &self.pids, &|id| {
            cgroups.container_path(&task_id, id)
        });
        self.host.endpoints.publish_task(meta);
        let body = report_body(&self.host.cluster, &self.record, self.plan());
        if self.last_report.as_ref() == Some(&body) {
            return;
        }
        if let Err(e) = self.host.files.save(&self.record) {
            tracing::error!(task = %self.record.desired.task_arn, error = %e, "cannot persist the task record");
        }
        self.host.reporter.submit(&self.record.desired.task_arn, body.clone());
        self.last_report = Some(body);
    }
}

fn apply_exit(c: &mut ContainerRecord, status: &ExitStatus) {
    c.phase = ContainerPhase::Stopped;
    if status.start_failed {
        c.failed = true;
    }
    if c.exit_code.is_none() {
        c.exit_code = status.exit_code;
    }
    if c.reason.is_none() {
        c.reason = status.reason();
    }
}

pub fn task_status(record: &TaskRecord) -> &'static str {
    let awsvpc = record.desired.task_definition.get("networkMode").and_then(Value::as_str) == Some("awsvpc");
    match record.phase {
        // ECS's PROVISIONING: the task's network interface is not there yet.
        Phase::Pending if awsvpc && record.eni_details.is_empty() => "PROVISIONING",
        Phase::Pending => "PENDING",
        Phase::Running => "RUNNING",
        Phase::Stopping => "STOPPING",
        Phase::Deprovisioning => "DEPROVISIONING",
        Phase::Stopped => "STOPPED",
    }
}

/// The SubmitTaskStateChange request describing `record` completely.
pub fn report_body(cluster: &str, record: &TaskRecord, plan: Option<&TaskPlan>) -> Value {
    let network_mode = plan.map(|p| p.network_mode);
    let containers: Vec<Value> = record
        .containers
        .iter()
        .map(|c| {
            let mut v = json!({
                "containerName": c.name,
                "runtimeId": c.runtime_id,
                "status": match c.phase {
                    ContainerPhase::Pending => "PENDING",
                    ContainerPhase::Running => "RUNNING",
                    ContainerPhase::Stopped => "STOPPED",
                },
            });
            if let Some(code) = c.exit_code {
                v["exitCode"] = json!(code);
            }
            if let Some(r) = &c.reason {
                v["reason"] = json!(truncate(r, 255));
            }
            if let Some(d) = &c.image_digest {
                v["imageDigest"] = json!(d);
            }
            let has_check = plan.and_then(|p| p.container(&c.name)).is_some_and(|p| p.health_check.is_some());
            if has_check {
                let status = if c.phase == ContainerPhase::Running { c.health.status } else { HealthStatus::Unknown };
                v["healthStatus"] = json!(status.as_ecs());
            }
            if matches!(network_mode, Some(NetworkMode::Bridge | NetworkMode::Host)) && c.phase == ContainerPhase::Running {
                let bindings: Vec<Value> = plan
                    .map(|p| p.host_ports.iter().filter(|h| h.container_name == c.name).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|h| json!({"bindIP": "0.0.0.0", "containerPort": h.container_port, "hostPort": h.host_port, "protocol": h.protocol}))
                    .collect();
                if !bindings.is_empty() {
                    v["networkBindings"] = json!(bindings);
                }
            }
            v
        })
        .collect();
    let mut body = json!({
        "cluster": cluster,
        "task": record.desired.task_arn,
        "status": task_status(record),
        "containers": containers,
    });
    if let Some(r) = &record.stop_reason {
        body["reason"] = json!(truncate(r, 255));
    }
    if let Some(t) = record.pull_started_at {
        body["pullStartedAt"] = json!(t);
    }
    if let Some(t) = record.pull_stopped_at {
        body["pullStoppedAt"] = json!(t);
    }
    if let Some(t) = record.stopped_at {
        body["executionStoppedAt"] = json!(t);
    }
    if !record.eni_details.is_empty() {
        let status = if record.phase == Phase::Stopped { "DELETED" } else { "ATTACHED" };
        let details: Vec<Value> = record.eni_details.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        body["attachments"] = json!([{ "status": status, "details": details }]);
    }
    body
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

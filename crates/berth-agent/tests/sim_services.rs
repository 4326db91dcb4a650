//! ECS services under faults, with simulated hosts: the real agent engine
//! (over fake runtime, network, cgroups and images) on each host, the real
//! ECS service and service controller in process, and a control plane each
//! host reaches through a [`FaultyControl`] that can be partitioned.
//!
//! Each agent runs on its own thread with its own tokio runtime, so a crash
//! is real: shutting the runtime down ends the engine, its workers and its
//! reporter at once, while the machine (its [`FakeRuntime`], network, task
//! records on disk) stays, and a restarted agent re-adopts what runs.
//!
//! What agents really run is read from the hosts' fake runtimes (containers
//! started and not exited), never from the server: the bound checked at
//! every step is `floor(desired × maximumPercent / 100)` over that count.

mod common;

use berth_agent::control::{ControlError, ControlPlane};
use berth_agent::engine::{Engine, EngineConfig};
use berth_agent::host::HostResources;
use berth_agent::images::FakeImages;
use berth_agent::report::Reporter;
use berth_agent::state::TaskFiles;
use berth_agent::worker::Host;
use berth_agent_protocol::{PollRequest, PollResponse};
use berth_ecs::Ecs;
use berth_ecs::container_instances::Liveness;
use berth_ecs::services::controller::{ControllerConfig, ControllerHandle, ServiceController};
use berth_image::{ImageConfig, PullPolicy};
use berth_net::{BridgeConfig, FakeNetwork};
use berth_runtime::{ContainerRuntime, ContainerState, FakeCgroups, FakeRuntime};
use berth_store::Store;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const CLUSTER: &str = "sim";
const SERVICE: &str = "web";
const LIVENESS: Duration = Duration::from_secs(1);
const HOST_LOST_AFTER: Duration = Duration::from_secs(1);
const POLL_HOLD: Duration = Duration::from_millis(200);
const SAMPLE: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// The server: an Ecs that can be taken down and replaced (a restart).

#[derive(Default)]
struct Server {
    ecs: RwLock<Option<Ecs>>,
}

impl Server {
    fn ecs(&self) -> Option<Ecs> {
        self.ecs.read().unwrap().clone()
    }

    fn set(&self, ecs: Option<Ecs>) {
        *self.ecs.write().unwrap() = ecs;
    }
}

/// One host's path to the server: fails as a broken network does while
/// the host is partitioned or the server is down.
struct FaultyControl {
    server: Arc<Server>,
    partitioned: Arc<AtomicBool>,
}

impl FaultyControl {
    async fn reachable(&self) -> Result<Ecs, ControlError> {
        if self.partitioned.load(Ordering::SeqCst) {
            // A connection attempt that times out, not an instant refusal.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(ControlError::Unreachable("simulated partition".into()));
        }
        match self.server.ecs() {
            Some(e) => Ok(e),
            None => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(ControlError::Unreachable("connection refused (server down)".into()))
            }
        }
    }

    /// An answer that arrives after the partition began is lost on the way.
    fn deliver<T>(&self, r: Result<T, ControlError>) -> Result<T, ControlError> {
        if self.partitioned.load(Ordering::SeqCst) {
            return Err(ControlError::Unreachable("simulated partition (answer lost)".into()));
        }
        r
    }
}

#[async_trait::async_trait]
impl ControlPlane for FaultyControl {
    async fn call(&self, operation: &str, body: Value) -> Result<Value, ControlError> {
        let ecs = self.reachable().await?;
        let r = common::call(&ecs, operation, body).await;
        self.deliver(r)
    }

    async fn poll(&self, req: &PollRequest) -> Result<PollResponse, ControlError> {
        let ecs = self.reachable().await?;
        let r = common::poll(&ecs, req).await;
        self.deliver(r)
    }
}

// ---------------------------------------------------------------------------
// Machines and their agents.

/// What survives an agent crash: the containers, the network, the disk.
struct Machine {
    index: usize,
    runtime: Arc<FakeRuntime>,
    network: Arc<FakeNetwork>,
    cgroups: Arc<FakeCgroups>,
    images: Arc<FakeImages>,
    state_dir: PathBuf,
    partitioned: Arc<AtomicBool>,
    agent: Option<Agent>,
    /// Set once the agent registered (the same ARN across restarts).
    instance_arn: Option<String>,
}

/// One agent process: a thread with its own runtime.
struct Agent {
    kill: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Machine {
    fn new(index: usize, root: &std::path::Path) -> Machine {
        let state_dir = root.join(format!("host-{index}"));
        let image = ImageConfig { cmd: vec!["sh".into()], env: vec!["PATH=/bin".into()], ..ImageConfig::default() };
        Machine {
            index,
            runtime: Arc::new(FakeRuntime::new()),
            network: Arc::new(FakeNetwork::new(BridgeConfig::default()).unwrap()),
            cgroups: Arc::new(FakeCgroups::new()),
            images: Arc::new(FakeImages::any(state_dir.join("rootfs"), image)),
            state_dir,
            partitioned: Arc::new(AtomicBool::new(false)),
            agent: None,
            instance_arn: None,
        }
    }

    fn start(&mut self, server: &Arc<Server>) {
        assert!(self.agent.is_none(), "host {} already runs an agent", self.index);
        let host = Arc::new(Host {
            cluster: CLUSTER.into(),
            runtime: self.runtime.clone(),
            network: self.network.clone(),
            cgroups: self.cgroups.clone(),
            images: self.images.clone(),
            clock: Arc::new(berth_clock::SystemClock),
            reporter: Reporter::new(),
            files: TaskFiles::open(self.state_dir.join("tasks")).unwrap(),
            pull_policy: PullPolicy::PreferCached,
            boot_id: "simulated".into(),
            endpoints: Arc::new(berth_agent::task_endpoint::EndpointRegistry::new(berth_agent::task_endpoint::HostInfo {
                cluster: CLUSTER.into(),
                availability_zone: "us-east-1a".into(),
            })),
        });
        let cfg = EngineConfig {
            cluster: CLUSTER.into(),
            region: "us-east-1".into(),
            instance_type: "sim.large".into(),
            availability_zone: format!("us-east-1{}", ["a", "b", "c"][self.index % 3]),
            hostname: format!("host-{}", self.index),
            resources: HostResources { cpu_units: 2048, memory_mib: 4096 },
            reserved_ports: vec![22],
            reserved_ports_udp: Vec::new(),
            custom_attributes: Vec::new(),
            state_dir: self.state_dir.clone(),
            task_cleanup_wait: Duration::from_secs(3600),
        };
        let control: Arc<dyn ControlPlane> = Arc::new(FaultyControl { server: server.clone(), partitioned: self.partitioned.clone() });
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("agent-{}", self.index))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let engine = Engine::new(cfg, host, control);
                    tokio::select! {
                        r = engine.run(std::future::pending::<()>()) => {
                            if let Err(e) = r { eprintln!("agent ended: {e}"); }
                        }
                        _ = killed => {}
                    }
                });
                // Every worker and the reporter die with the process.
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .unwrap();
        self.agent = Some(Agent { kill, thread });
    }

    /// The agent process dies at once (kill -9); containers keep running.
    fn crash(&mut self) {
        if let Some(a) = self.agent.take() {
            let _ = a.kill.send(());
            a.thread.join().unwrap();
        }
    }

    /// Task ids of containers that really run here (started, not exited).
    async fn running_tasks(&self) -> BTreeMap<String, u32> {
        let mut out = BTreeMap::new();
        for id in self.runtime.list().await.unwrap() {
            if let Ok(ContainerState::Running { .. }) = self.runtime.state(&id).await {
                let task = id.rsplit_once('-').map(|(t, _)| t.to_string()).unwrap_or(id.clone());
                let rev = self
                    .runtime
                    .spec(&id)
                    .and_then(|s| s.env.iter().find(|(k, _)| k == "REV").and_then(|(_, v)| v.parse().ok()))
                    .unwrap_or(0);
                out.insert(task, rev);
            }
        }
        out
    }

    /// Makes one running container exit with `code`; its task id.
    async fn exit_one(&self, pick: u64, code: i32) -> Option<String> {
        let mut ids = Vec::new();
        for id in self.runtime.list().await.unwrap() {
            if let Ok(ContainerState::Running { .. }) = self.runtime.state(&id).await {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return None;
        }
        let id = ids[(pick % ids.len() as u64) as usize].clone();
        self.runtime.exit(&id, code);
        Some(id)
    }
}

// ---------------------------------------------------------------------------
// The harness.

struct Harness {
    server: Arc<Server>,
    store: Option<Arc<dyn Store>>,
    controller: Option<ControllerHandle>,
    machines: Vec<Machine>,
    dir: tempfile::TempDir,
    started: Instant,
}

fn new_ecs(store: Arc<dyn Store>) -> Ecs {
    Ecs::new(store).with_liveness(Arc::new(Liveness::new(LIVENESS))).with_poll_hold(POLL_HOLD)
}

fn new_controller(store: Arc<dyn Store>, ecs: &Ecs, host_lost_after: Duration) -> ControllerHandle {
    ServiceController::new(
        store,
        ecs.liveness().clone(),
        Arc::new(berth_clock::SystemClock),
        ControllerConfig { host_lost_after, ..ControllerConfig::default() },
    )
    .spawn()
}

/// Per-host counts of what really runs.
#[derive(Debug, Default, Clone)]
struct Reality {
    /// Task id → (host, revision).
    tasks: BTreeMap<String, (usize, u32)>,
    /// Task ids running on more than one host.
    duplicated: BTreeSet<String>,
}

impl Reality {
    fn count(&self) -> usize {
        self.tasks.len()
    }
    fn on_host(&self, host: usize) -> usize {
        self.tasks.values().filter(|(h, _)| *h == host).count()
    }
    fn revisions(&self) -> BTreeMap<u32, usize> {
        let mut m = BTreeMap::new();
        for (_, r) in self.tasks.values() {
            *m.entry(*r).or_default() += 1;
        }
        m
    }
}

impl Harness {
    async fn new(hosts: usize, durable: bool) -> Harness {
        Harness::new_with(hosts, durable, HOST_LOST_AFTER).await
    }

    async fn new_with(hosts: usize, durable: bool, host_lost_after: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = if durable {
            Arc::new(berth_store::redb_backend::RedbStore::open(&dir.path().join("store.redb")).unwrap())
        } else {
            Arc::new(berth_store::memory::MemoryStore::new())
        };
        let ecs = new_ecs(store.clone());
        let controller = new_controller(store.clone(), &ecs, host_lost_after);
        let server = Arc::new(Server::default());
        server.set(Some(ecs));
        let machines = (0..hosts).map(|i| Machine::new(i, dir.path())).collect();
        let mut h = Harness { server, store: Some(store), controller: Some(controller), machines, dir, started: Instant::now() };
        h.call("CreateCluster", json!({"clusterName": CLUSTER})).await;
        for i in 0..hosts {
            h.machines[i].start(&h.server.clone());
        }
        h.wait_registered().await;
        h
    }

    fn t(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    async fn try_call(&self, op: &str, body: Value) -> Result<Value, ControlError> {
        let ecs = self.server.ecs().ok_or_else(|| ControlError::Unreachable("server down".into()))?;
        common::call(&ecs, op, body).await
    }

    async fn call(&self, op: &str, body: Value) -> Value {
        self.try_call(op, body).await.unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    /// Until every agent registered (its identity file names its ARN) and
    /// the server lists them all.
    async fn wait_registered(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for m in &mut self.machines {
                let identity = std::fs::read(m.state_dir.join("instance.json")).unwrap_or_default();
                let identity: Value = serde_json::from_slice(&identity).unwrap_or(Value::Null);
                m.instance_arn = identity["containerInstanceArn"].as_str().map(str::to_string);
            }
            let d = self.call("ListContainerInstances", json!({"cluster": CLUSTER})).await;
            let listed = d["containerInstanceArns"].as_array().unwrap().len();
            if listed == self.machines.len() && self.machines.iter().all(|m| m.instance_arn.is_some()) {
                return;
            }
            assert!(Instant::now() < deadline, "hosts never registered: {d}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn register_revision(&self, rev: u32) -> String {
        let d = self
            .call(
                "RegisterTaskDefinition",
                json!({"family": SERVICE, "containerDefinitions": [{
                    "name": "app", "image": "sim/app:1", "command": ["serve"], "memory": 64, "cpu": 16,
                    "environment": [{"name": "REV", "value": rev.to_string()}]
                }]}),
            )
            .await;
        d["taskDefinition"]["taskDefinitionArn"].as_str().unwrap().to_string()
    }

    async fn create_service(&self, desired: u32, max_percent: u32, min_healthy: u32) {
        self.call(
            "CreateService",
            json!({"cluster": CLUSTER, "serviceName": SERVICE, "taskDefinition": SERVICE, "desiredCount": desired,
                   "deploymentConfiguration": {"maximumPercent": max_percent, "minimumHealthyPercent": min_healthy}}),
        )
        .await;
    }

    async fn service(&self) -> Value {
        let d = self.call("DescribeServices", json!({"cluster": CLUSTER, "services": [SERVICE]})).await;
        d["services"][0].clone()
    }

    async fn reality(&self) -> Reality {
        let mut r = Reality::default();
        for m in &self.machines {
            for (task, rev) in m.running_tasks().await {
                if let Some((other, _)) = r.tasks.insert(task.clone(), (m.index, rev))
                    && other != m.index
                {
                    r.duplicated.insert(task);
                }
            }
        }
        r
    }

    async fn tasks(&self, desired_status: &str) -> Vec<Value> {
        let l = self.call("ListTasks", json!({"cluster": CLUSTER, "desiredStatus": desired_status})).await;
        let arns: Vec<Value> = l["taskArns"].as_array().unwrap().clone();
        let mut out = Vec::new();
        for chunk in arns.chunks(100) {
            let d = self.call("DescribeTasks", json!({"cluster": CLUSTER, "tasks": chunk})).await;
            out.extend(d["tasks"].as_array().unwrap().iter().cloned());
        }
        out
    }

    /// Steady: one PRIMARY deployment COMPLETED on `rev`, exactly `desired`
    /// tasks RUNNING by the server and really running on the hosts, all of
    /// `rev`. Returns a description of what is off, if anything.
    async fn steady(&self, desired: usize, rev: u32) -> Result<(), String> {
        let s = self.service().await;
        let deployments = s["deployments"].as_array().cloned().unwrap_or_default();
        let real = self.reality().await;
        let off = |why: &str| {
            Err(format!(
                "{why}: service running={} pending={} desired={} deployments={} | really running {} {:?}",
                s["runningCount"],
                s["pendingCount"],
                s["desiredCount"],
                Value::Array(
                    deployments
                        .iter()
                        .map(|d| json!([d["status"], d["taskDefinition"], d["rolloutState"], d["runningCount"], d["desiredCount"]]))
                        .collect()
                ),
                real.count(),
                real.revisions()
            ))
        };
        if deployments.len() != 1 || deployments[0]["status"] != "PRIMARY" || deployments[0]["rolloutState"] != "COMPLETED" {
            return off("deployment not completed");
        }
        if !deployments[0]["taskDefinition"].as_str().unwrap_or_default().ends_with(&format!(":{rev}")) {
            return off("primary is not the expected revision");
        }
        if s["runningCount"] != json!(desired) || s["pendingCount"] != json!(0) {
            return off("service counts");
        }
        if real.count() != desired || real.revisions().get(&rev).copied().unwrap_or(0) != desired {
            return off("hosts really run something else");
        }
        if !real.duplicated.is_empty() {
            return off("a task runs on two hosts");
        }
        let running = self.tasks("RUNNING").await;
        if running.len() != desired || running.iter().any(|t| t["lastStatus"] != "RUNNING") {
            return off(&format!("{} tasks desired RUNNING", running.len()));
        }
        Ok(())
    }

    async fn wait_steady(&self, desired: usize, rev: u32, within: Duration, bound: Option<usize>) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(b) = bound {
                let r = self.reality().await;
                assert!(r.count() <= b, "t={:.2}: {} service containers really run, above the bound {b}", self.t(), r.count());
                assert!(r.duplicated.is_empty(), "tasks on two hosts: {:?}", r.duplicated);
            }
            match self.steady(desired, rev).await {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("t={:.2}: never steady at {desired} × rev {rev}: {e}", self.t()),
                Err(_) => tokio::time::sleep(SAMPLE).await,
            }
        }
    }

    /// What the server says about each task that really runs: one line
    /// per task (host, revision, desiredStatus/lastStatus, stoppedReason).
    async fn explain(&self, r: &Reality) -> String {
        let ids: Vec<&String> = r.tasks.keys().collect();
        let d = self.call("DescribeTasks", json!({"cluster": CLUSTER, "tasks": ids})).await;
        let mut lines = Vec::new();
        for (id, (host, rev)) in &r.tasks {
            let t = d["tasks"].as_array().unwrap().iter().find(|t| t["taskArn"].as_str().unwrap_or_default().ends_with(id.as_str()));
            let (desired, last, reason) = t.map_or((Value::Null, Value::Null, Value::Null), |t| {
                (t["desiredStatus"].clone(), t["lastStatus"].clone(), t["stoppedReason"].clone())
            });
            lines.push(format!("{id} host {host} rev {rev}: desired {desired} last {last} reason {reason}"));
        }
        let s = self.service().await;
        for d in s["deployments"].as_array().cloned().unwrap_or_default() {
            lines.push(format!(
                "deployment {} {} {} running {} pending {} desired {}",
                d["status"], d["taskDefinition"], d["rolloutState"], d["runningCount"], d["pendingCount"], d["desiredCount"]
            ));
        }
        lines.join("\n  ")
    }

    async fn stop_controller(&mut self) {
        if let Some(c) = self.controller.take() {
            c.stop().await;
        }
    }

    async fn shutdown(mut self) {
        self.stop_controller().await;
        for m in &mut self.machines {
            m.crash();
        }
        self.server.set(None);
        let _ = &self.dir;
    }
}

fn bound(desired: usize, max_percent: usize) -> usize {
    desired * max_percent / 100
}

/// Checks what really runs against maximumPercent of the desired count;
/// the bound drops to a lower desired count only once reality has (kept
/// in `bound_desired`). Above it: the limit and the hosts' explanation.
async fn above_bound(h: &Harness, r: &Reality, desired: usize, max_percent: usize, bound_desired: &mut usize) -> Option<(usize, String)> {
    if r.count() <= bound(desired, max_percent) {
        *bound_desired = desired;
    }
    let limit = bound(*bound_desired, max_percent);
    if r.count() > limit {
        return Some((limit, h.explain(r).await));
    }
    None
}

// ---------------------------------------------------------------------------
// 1. Host loss.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_host_s_tasks_are_stopped_and_replaced_on_the_others() {
    let h = Harness::new(3, false).await;
    h.register_revision(1).await;
    h.create_service(6, 200, 100).await;
    h.wait_steady(6, 1, Duration::from_secs(15), Some(12)).await;
    let real = h.reality().await;
    let victim = (0..3).find(|&i| real.on_host(i) > 0).unwrap();
    let lost: BTreeSet<String> = real.tasks.iter().filter(|(_, (host, _))| *host == victim).map(|(t, _)| t.clone()).collect();

    let mut h = h;
    h.machines[victim].crash();
    let silent = Instant::now();
    // Back to 6 RUNNING, all on the other hosts.
    let deadline = silent + Duration::from_secs(20);
    loop {
        let s = h.service().await;
        let running: Vec<Value> = h.tasks("RUNNING").await.into_iter().filter(|t| t["lastStatus"] == "RUNNING").collect();
        let victim_arn = h.machines[victim].instance_arn.clone().unwrap();
        let elsewhere = running.iter().filter(|t| t["containerInstanceArn"] != json!(victim_arn)).count();
        if s["runningCount"] == json!(6) && elsewhere == 6 && running.len() == 6 {
            break;
        }
        assert!(Instant::now() < deadline, "never back to 6 RUNNING elsewhere: {s:#}");
        tokio::time::sleep(SAMPLE).await;
    }
    let took = silent.elapsed().as_secs_f64();
    println!(
        "host loss: {} tasks on the silent host replaced, 6 RUNNING again {took:.2} s after the agent went silent (liveness {}s, host_lost_after {}s)",
        lost.len(),
        LIVENESS.as_secs(),
        HOST_LOST_AFTER.as_secs()
    );
    // The lost tasks: STOPPED by the scheduler with the host-lost reason.
    let stopped = h.tasks("STOPPED").await;
    for id in &lost {
        let t = stopped
            .iter()
            .find(|t| t["taskArn"].as_str().unwrap().ends_with(&format!("/{id}")))
            .unwrap_or_else(|| panic!("lost task {id} is not desired STOPPED"));
        assert_eq!(t["stopCode"], "ServiceSchedulerInitiated", "{t:#}");
        assert!(t["stoppedReason"].as_str().unwrap_or_default().starts_with("Host lost"), "{t:#}");
        assert_eq!(t["group"], json!(format!("service:{SERVICE}")));
        assert!(t["startedBy"].as_str().unwrap_or_default().starts_with("ecs-svc/"), "{t:#}");
    }
    // The survivors really run the 6 (the dead host's containers still
    // run, unreachable: they are why maximumPercent must count them).
    let real = h.reality().await;
    let survivors: usize = (0..3).filter(|&i| i != victim).map(|i| real.on_host(i)).sum();
    assert_eq!(survivors, 6, "{real:?}");
    assert!(real.count() <= 12);
    h.shutdown().await;
}

// ---------------------------------------------------------------------------
// 2. Partition and heal.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_host_is_replaced_then_fenced_when_it_returns_never_above_maximum() {
    let h = Harness::new(3, false).await;
    h.register_revision(1).await;
    h.create_service(6, 200, 100).await;
    let limit = bound(6, 200);
    h.wait_steady(6, 1, Duration::from_secs(15), Some(limit)).await;
    let real = h.reality().await;
    let victim = (0..3).find(|&i| real.on_host(i) > 0).unwrap();
    let stale: BTreeSet<String> = real.tasks.iter().filter(|(_, (host, _))| *host == victim).map(|(t, _)| t.clone()).collect();

    h.machines[victim].partitioned.store(true, Ordering::SeqCst);
    let cut = Instant::now();
    let victim_arn = h.machines[victim].instance_arn.clone().unwrap();
    // Replacements start elsewhere while the stale tasks still really run.
    let deadline = cut + Duration::from_secs(20);
    loop {
        let r = h.reality().await;
        assert!(r.count() <= limit, "t={:.2}: {} really run > {limit}", h.t(), r.count());
        assert!(r.duplicated.is_empty());
        let elsewhere: usize = (0..3).filter(|&i| i != victim).map(|i| r.on_host(i)).sum();
        if elsewhere == 6 {
            assert_eq!(r.on_host(victim), stale.len(), "the partitioned host still runs its tasks");
            break;
        }
        assert!(Instant::now() < deadline, "replacements never ran elsewhere: {r:?}");
        tokio::time::sleep(SAMPLE).await;
    }
    println!("partition: replacements really running {:.2} s after the cut", cut.elapsed().as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = h.service().await;
        if s["runningCount"] == 6 && s["pendingCount"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the service never counted its replacements: {s:#}");
        tokio::time::sleep(SAMPLE).await;
    }

    // Heal: the returning agent stops its stale tasks (fencing).
    h.machines[victim].partitioned.store(false, Ordering::SeqCst);
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(20);
    loop {
        let r = h.reality().await;
        assert!(r.count() <= limit, "t={:.2}: {} really run > {limit}", h.t(), r.count());
        if stale.iter().all(|t| !r.tasks.contains_key(t)) {
            break;
        }
        assert!(Instant::now() < deadline, "the returning agent never stopped its stale tasks: {r:?}");
        tokio::time::sleep(SAMPLE).await;
    }
    println!("heal: stale tasks fenced {:.2} s after the partition healed", healed.elapsed().as_secs_f64());
    for id in &stale {
        let killed = h.machines[victim]
            .runtime
            .calls()
            .iter()
            .any(|c| matches!(c, berth_runtime::fake::Call::Kill(i, _) if i.starts_with(id.as_str())));
        assert!(killed, "stale task {id} was stopped by a signal from its agent");
    }
    h.wait_steady(6, 1, Duration::from_secs(10), Some(limit)).await;
    let stopped = h.tasks("STOPPED").await;
    for id in &stale {
        let t = stopped.iter().find(|t| t["taskArn"].as_str().unwrap().ends_with(&format!("/{id}"))).unwrap();
        assert_eq!(t["containerInstanceArn"], json!(victim_arn));
        assert!(t["stoppedReason"].as_str().unwrap_or_default().starts_with("Host lost"), "{t:#}");
    }
    h.shutdown().await;
}

// ---------------------------------------------------------------------------
// 2b. A deployment while a host is cut off (not yet lost): the tasks the
// deployment stops there cannot stop, so they hold room under
// maximumPercent until the agent confirms.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_stopped_on_a_partitioned_host_count_against_maximum() {
    // Liveness 1 s, host lost after 4 s: the cut-off host is disconnected
    // (placement skips it) but its tasks are not lost yet.
    let h = Harness::new_with(3, false, Duration::from_secs(4)).await;
    h.register_revision(1).await;
    h.create_service(6, 100, 0).await;
    let limit = bound(6, 100);
    h.wait_steady(6, 1, Duration::from_secs(15), Some(limit)).await;
    let real = h.reality().await;
    let victim = (0..3).find(|&i| real.on_host(i) > 0).unwrap();
    h.machines[victim].partitioned.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.register_revision(2).await;
    h.call("UpdateService", json!({"cluster": CLUSTER, "service": SERVICE, "taskDefinition": format!("{SERVICE}:2")})).await;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let r = h.reality().await;
        if r.count() > limit {
            panic!("t={:.2}: {} really run, above {limit}:\n  {}", h.t(), r.count(), h.explain(&r).await);
        }
        tokio::time::sleep(SAMPLE).await;
    }
    let r = h.reality().await;
    assert!(r.on_host(victim) > 0, "the cut-off host still runs its old tasks: {r:?}");
    h.machines[victim].partitioned.store(false, Ordering::SeqCst);
    h.wait_steady(6, 2, Duration::from_secs(15), Some(limit)).await;
    h.shutdown().await;
}

// ---------------------------------------------------------------------------
// 3. Server restart in the middle of a deployment.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_completes_across_a_server_restart() {
    let mut h = Harness::new(3, true).await;
    h.register_revision(1).await;
    // maximumPercent 150: the rollout takes several rounds.
    h.create_service(6, 150, 100).await;
    let limit = bound(6, 150);
    h.wait_steady(6, 1, Duration::from_secs(15), Some(limit)).await;

    h.register_revision(2).await;
    h.call("UpdateService", json!({"cluster": CLUSTER, "service": SERVICE, "taskDefinition": format!("{SERVICE}:2")})).await;
    // Wait for the rollout to be under way: revision 2 really runs, revision 1 too.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = h.reality().await;
        assert!(r.count() <= limit, "{r:?}");
        let revs = r.revisions();
        if revs.get(&2).copied().unwrap_or(0) > 0 && revs.get(&1).copied().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the deployment never started: {revs:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = h.service().await;
    let before: Vec<Value> = s["deployments"].as_array().unwrap().iter().map(|d| json!([d["status"], d["rolloutState"]])).collect();
    println!("restart: deployments at the restart {before:?}, really running {:?}", h.reality().await.revisions());
    assert_eq!(s["deployments"].as_array().unwrap().len(), 2, "mid-deployment: {s:#}");

    // Down: controller, Ecs, and with them the store.
    h.stop_controller().await;
    h.server.set(None);
    let weak = Arc::downgrade(h.store.as_ref().unwrap());
    h.store = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while weak.upgrade().is_some() {
        assert!(Instant::now() < deadline, "something still holds the store");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Up again over the same file.
    let store: Arc<dyn Store> = Arc::new(berth_store::redb_backend::RedbStore::open(&h.dir.path().join("store.redb")).unwrap());
    let ecs = new_ecs(store.clone());
    h.controller = Some(new_controller(store.clone(), &ecs, HOST_LOST_AFTER));
    h.server.set(Some(ecs));
    h.store = Some(store);
    let up = Instant::now();
    h.wait_steady(6, 2, Duration::from_secs(20), Some(limit)).await;
    println!("restart: deployment COMPLETED {:.2} s after the server came back", up.elapsed().as_secs_f64());
    h.shutdown().await;
}

// ---------------------------------------------------------------------------
// 4. Seeded random faults.
//
// After each action the invariants are sampled every 50 ms: what agents
// really run never exceeds maximumPercent of the desired count (a lowered
// desired count lowers the bound once reality has come down to it), and no
// task runs on two hosts. After healing everything the service must be
// steady at exactly the desired count on the PRIMARY revision.

/// SplitMix64: small, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Trouble {
    None,
    Partitioned,
    Crashed,
    Draining,
}

/// Ends host `host`'s trouble `t`: the partition heals, the crashed agent
/// starts again, the draining instance is made ACTIVE.
async fn recover(h: &mut Harness, host: usize, t: Trouble) {
    match t {
        Trouble::Partitioned => h.machines[host].partitioned.store(false, Ordering::SeqCst),
        Trouble::Crashed => {
            let server = h.server.clone();
            h.machines[host].start(&server)
        }
        Trouble::Draining => {
            let arn = h.machines[host].instance_arn.clone().unwrap();
            h.call("UpdateContainerInstancesState", json!({"cluster": CLUSTER, "containerInstances": [arn], "status": "ACTIVE"})).await;
        }
        Trouble::None => {}
    }
}

async fn random_faults(seed: u64, steps: usize, max_percent: usize, min_healthy: usize) {
    const HOSTS: usize = 3;
    let mut rng = Rng(seed);
    let mut h = Harness::new(HOSTS, false).await;
    let mut rev = 1;
    h.register_revision(rev).await;
    let mut desired: usize = 4;
    h.create_service(desired as u32, max_percent as u32, min_healthy as u32).await;
    // The bound drops to a lower desired count only once reality has.
    let mut bound_desired = desired;
    let mut trouble = [Trouble::None; HOSTS];
    let mut log: Vec<String> = Vec::new();
    let fail = |log: &[String], why: String| -> ! {
        panic!("seed {seed}: {why}\nschedule so far:\n  {}", log.join("\n  "));
    };

    for step in 0..steps {
        let healthy = trouble.iter().filter(|t| **t == Trouble::None).count();
        let host = rng.below(HOSTS as u64) as usize;
        let action = rng.below(10);
        let what = match (action, trouble[host]) {
            (0 | 1, Trouble::None) if healthy > 1 => {
                h.machines[host].partitioned.store(true, Ordering::SeqCst);
                trouble[host] = Trouble::Partitioned;
                format!("partition host {host}")
            }
            (2, Trouble::None) if healthy > 1 => {
                h.machines[host].crash();
                trouble[host] = Trouble::Crashed;
                format!("crash agent {host}")
            }
            (3, Trouble::None) if healthy > 1 => {
                let arn = h.machines[host].instance_arn.clone().unwrap();
                h.call("UpdateContainerInstancesState", json!({"cluster": CLUSTER, "containerInstances": [arn], "status": "DRAINING"}))
                    .await;
                trouble[host] = Trouble::Draining;
                format!("drain host {host}")
            }
            (0..=3, t) if t != Trouble::None => {
                recover(&mut h, host, t).await;
                trouble[host] = Trouble::None;
                format!("recover host {host} from {t:?}")
            }
            (4 | 5, _) => match h.machines[host].exit_one(rng.next(), 1).await {
                Some(id) => format!("container {id} on host {host} exits 1"),
                None => format!("(no container to exit on host {host})"),
            },
            (6, _) => {
                desired = 1 + rng.below(8) as usize;
                bound_desired = bound_desired.max(desired);
                h.call("UpdateService", json!({"cluster": CLUSTER, "service": SERVICE, "desiredCount": desired})).await;
                format!("desired count {desired}")
            }
            (7, _) => {
                rev += 1;
                h.register_revision(rev).await;
                h.call("UpdateService", json!({"cluster": CLUSTER, "service": SERVICE, "taskDefinition": format!("{SERVICE}:{rev}")}))
                    .await;
                format!("deploy revision {rev}")
            }
            _ => "(wait)".to_string(),
        };
        log.push(format!("step {step} t={:.2}: {what}", h.t()));
        // Sample for a while, checking the invariants.
        let hold = Duration::from_millis(150 + rng.below(300));
        let until = Instant::now() + hold;
        while Instant::now() < until {
            let r = h.reality().await;
            if let Some((limit, detail)) = above_bound(&h, &r, desired, max_percent, &mut bound_desired).await {
                fail(&log, format!("t={:.2}: {} service tasks really run, above {limit}:\n  {detail}", h.t(), r.count()));
            }
            if !r.duplicated.is_empty() {
                fail(&log, format!("tasks on two hosts: {:?}", r.duplicated));
            }
            tokio::time::sleep(SAMPLE).await;
        }
    }

    // Heal everything; the service must settle exactly.
    for (i, t) in trouble.iter_mut().enumerate() {
        recover(&mut h, i, *t).await;
        *t = Trouble::None;
    }
    log.push(format!("t={:.2}: healed everything; expecting {desired} × revision {rev}", h.t()));
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let r = h.reality().await;
        if let Some((limit, detail)) = above_bound(&h, &r, desired, max_percent, &mut bound_desired).await {
            fail(&log, format!("t={:.2}: {} really run, above {limit} while healing:\n  {detail}", h.t(), r.count()));
        }
        match h.steady(desired, rev).await {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => fail(&log, format!("t={:.2}: never steady: {e}", h.t())),
            Err(_) => tokio::time::sleep(SAMPLE).await,
        }
    }
    println!("seed {seed}: {steps} steps, steady at {desired} × revision {rev} at t={:.2}", h.t());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_seed_1_max_200_min_100() {
    random_faults(1, 40, 200, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_seed_2_max_150_min_50() {
    random_faults(2, 40, 150, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_seed_3_max_100_min_0() {
    random_faults(3, 40, 100, 0).await;
}

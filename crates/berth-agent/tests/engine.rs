//! The task engine against the real ECS service (berth-ecs over a
//! MemoryStore, called in process) with fake runtime, network, cgroups and
//! images: what a user sees through DescribeTasks as containers start,
//! exit, fail and get re-adopted.

mod common;

use berth_agent::control::{ControlError, ControlPlane};
use berth_agent::engine::{Engine, EngineConfig};
use berth_agent::host::HostResources;
use berth_agent::images::FakeImages;
use berth_agent::report::Reporter;
use berth_agent::state::TaskFiles;
use berth_agent::task_endpoint::{EndpointRegistry, HostInfo};
use berth_agent::worker::Host;
use berth_agent_protocol::{PollRequest, PollResponse};
use berth_ecs::Ecs;
use berth_image::{ImageConfig, PullPolicy};
use berth_net::{BridgeConfig, FakeNetwork};
use berth_runtime::fake::Call;
use berth_runtime::{FakeCgroups, FakeRuntime};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct InProcess {
    ecs: Ecs,
}

#[async_trait::async_trait]
impl ControlPlane for InProcess {
    async fn call(&self, operation: &str, body: Value) -> Result<Value, ControlError> {
        common::call(&self.ecs, operation, body).await
    }
    async fn poll(&self, req: &PollRequest) -> Result<PollResponse, ControlError> {
        common::poll(&self.ecs, req).await
    }
}

struct Rig {
    control: Arc<InProcess>,
    runtime: Arc<FakeRuntime>,
    images: Arc<FakeImages>,
    host: Arc<Host>,
    dir: tempfile::TempDir,
}

fn busybox() -> ImageConfig {
    ImageConfig { cmd: vec!["sh".into()], env: vec!["PATH=/bin".into()], ..ImageConfig::default() }
}

async fn rig() -> Rig {
    let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::memory::MemoryStore::new());
    let ecs = Ecs::new(store).with_poll_hold(Duration::from_millis(200));
    let control = Arc::new(InProcess { ecs });
    control.call("CreateCluster", json!({"clusterName": "demo"})).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new());
    let images = Arc::new(FakeImages::new(dir.path().join("rootfs")));
    images.add("busybox", busybox());
    let network = Arc::new(FakeNetwork::new(BridgeConfig::default()).unwrap());
    let host = Arc::new(Host {
        cluster: "demo".into(),
        runtime: runtime.clone(),
        network,
        cgroups: Arc::new(FakeCgroups::new()),
        images: images.clone(),
        clock: Arc::new(berth_clock::SystemClock),
        reporter: Reporter::new(),
        files: TaskFiles::open(dir.path().join("tasks")).unwrap(),
        pull_policy: PullPolicy::Default,
        boot_id: "boot-1".into(),
        endpoints: Arc::new(EndpointRegistry::new(HostInfo { cluster: "demo".into(), availability_zone: "us-east-1a".into() })),
    });
    Rig { control, runtime, images, host, dir }
}

impl Rig {
    fn engine(&self) -> Engine {
        self.engine_on(self.host.clone())
    }

    /// The same machine after a reboot: same disks, new boot id.
    fn rebooted_host(&self) -> Arc<Host> {
        let h = &self.host;
        Arc::new(Host {
            cluster: h.cluster.clone(),
            runtime: h.runtime.clone(),
            network: h.network.clone(),
            cgroups: h.cgroups.clone(),
            images: h.images.clone(),
            clock: h.clock.clone(),
            reporter: Reporter::new(),
            files: h.files.clone(),
            pull_policy: h.pull_policy,
            boot_id: "boot-2".into(),
            endpoints: h.endpoints.clone(),
        })
    }

    fn engine_on(&self, host: Arc<Host>) -> Engine {
        self.engine_with(host, Duration::from_secs(3600))
    }

    fn engine_with(&self, host: Arc<Host>, task_cleanup_wait: Duration) -> Engine {
        Engine::new(self.config(task_cleanup_wait), host, self.control.clone())
    }

    fn config(&self, task_cleanup_wait: Duration) -> EngineConfig {
        EngineConfig {
            cluster: "demo".into(),
            region: "us-east-1".into(),
            instance_type: "berth.test".into(),
            availability_zone: "us-east-1a".into(),
            hostname: "test-host".into(),
            resources: HostResources { cpu_units: 2048, memory_mib: 4096 },
            reserved_ports: vec![22],
            reserved_ports_udp: vec![],
            custom_attributes: vec![],
            state_dir: self.dir.path().to_path_buf(),
            task_cleanup_wait,
        }
    }

    /// Runs an engine until the returned sender is dropped or fired.
    fn start(&self) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        self.start_on(self.host.clone())
    }

    fn start_on(&self, host: Arc<Host>) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let engine = self.engine_on(host);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            engine.run(async { let _ = rx.await; }).await.unwrap();
        });
        (tx, join)
    }

    async fn call(&self, op: &str, body: Value) -> Value {
        self.control.call(op, body).await.unwrap_or_else(|e| panic!("{op}: {e}"))
    }

    async fn register_td(&self, td: Value) {
        self.call("RegisterTaskDefinition", td).await;
    }

    async fn wait_instance(&self) {
        for _ in 0..200 {
            let l = self.call("ListContainerInstances", json!({"cluster": "demo"})).await;
            if !l["containerInstanceArns"].as_array().unwrap().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the agent never registered");
    }

    async fn run_task(&self, family: &str) -> String {
        let r = self.call("RunTask", json!({"cluster": "demo", "taskDefinition": family})).await;
        assert_eq!(r["failures"], json!([]), "{r}");
        r["tasks"][0]["taskArn"].as_str().unwrap().to_string()
    }

    async fn describe(&self, arn: &str) -> Value {
        let d = self.call("DescribeTasks", json!({"cluster": "demo", "tasks": [arn]})).await;
        d["tasks"][0].clone()
    }

    async fn wait_status(&self, arn: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..500 {
            last = self.describe(arn).await;
            if last["lastStatus"] == status {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task never reached {status}: {last:#}");
    }

    async fn wait_started(&self, id: &str) {
        for _ in 0..300 {
            if self.started().iter().any(|s| s == id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("container {id} never started");
    }

    fn started(&self) -> Vec<String> {
        self.runtime.calls().into_iter().filter_map(|c| if let Call::Start(s) = c { Some(s.id) } else { None }).collect()
    }
}

/// A task with an essential `main` and a non-essential `side`, RUNNING.
async fn two_container_task(rig: &Rig) -> (String, Value) {
    rig.register_td(json!({"family": "two", "containerDefinitions": [
        {"name": "main", "image": "busybox", "memory": 32},
        {"name": "side", "image": "busybox", "memory": 32, "essential": false}
    ]}))
    .await;
    rig.wait_instance().await;
    let arn = rig.run_task("two").await;
    let t = rig.wait_status(&arn, "RUNNING").await;
    (arn, t)
}

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
}

fn runtime_id(task: &Value, name: &str) -> String {
    container(task, name)["runtimeId"].as_str().unwrap().to_string()
}

fn web_td() -> Value {
    json!({"family": "web", "networkMode": "bridge", "containerDefinitions": [{
        "name": "web", "image": "busybox", "command": ["httpd", "-f"], "memory": 64,
        "portMappings": [{"containerPort": 8080}], "stopTimeout": 2
    }]})
}

#[tokio::test]
async fn run_then_stop_reports_every_step_like_ecs() {
    let rig = rig().await;
    rig.register_td(web_td()).await;
    let (_stop, _join) = rig.start();
    rig.wait_instance().await;
    let arn = rig.run_task("web").await;
    let t = rig.wait_status(&arn, "RUNNING").await;
    let c = &t["containers"][0];
    assert_eq!(c["lastStatus"], "RUNNING");
    let binding = &c["networkBindings"][0];
    assert_eq!(binding["containerPort"], 8080);
    assert!(binding["hostPort"].as_u64().unwrap() >= 1024, "{binding}");
    assert!(t["pullStartedAt"].is_number() && t["pullStoppedAt"].is_number() && t["startedAt"].is_number(), "{t:#}");
    let spec = rig.runtime.spec(c["runtimeId"].as_str().unwrap()).unwrap();
    assert_eq!(spec.args, vec!["httpd", "-f"]);
    assert_eq!(spec.resources.memory_limit_bytes, Some(64 << 20));

    rig.call("StopTask", json!({"cluster": "demo", "task": arn, "reason": "done"})).await;
    let t = rig.wait_status(&arn, "STOPPED").await;
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "done");
    assert_eq!(t["containers"][0]["exitCode"], 143, "SIGTERM → 128 + 15: {t:#}");
    assert!(t["stoppedAt"].is_number() && t["stoppingAt"].is_number());
    let ci = rig.call("DescribeContainerInstances", json!({"cluster": "demo", "containerInstances": [t["containerInstanceArn"]]})).await;
    let ci = &ci["containerInstances"][0];
    assert_eq!(ci["runningTasksCount"], 0);
    let remaining = ci["remainingResources"].as_array().unwrap();
    let mem = remaining.iter().find(|r| r["name"] == "MEMORY").unwrap();
    assert_eq!(mem["integerValue"], 4096, "memory is returned when the task stops");
}

#[tokio::test]
async fn an_essential_exit_stops_the_task_with_its_exit_code() {
    let rig = rig().await;
    let (_stop, _join) = rig.start();
    let (arn, t) = two_container_task(&rig).await;
    rig.runtime.exit(&runtime_id(&t, "main"), 3);
    let t = rig.wait_status(&arn, "STOPPED").await;
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(container(&t, "main")["exitCode"], 3);
    assert_eq!(container(&t, "side")["exitCode"], 143, "the other container was stopped");
}

#[tokio::test]
async fn non_essential_exit_keeps_the_task_running() {
    let rig = rig().await;
    let (_stop, _join) = rig.start();
    let (arn, t) = two_container_task(&rig).await;
    rig.runtime.exit(&runtime_id(&t, "side"), 0);
    for _ in 0..100 {
        let t = rig.describe(&arn).await;
        if container(&t, "side")["lastStatus"] == "STOPPED" {
            assert_eq!(t["lastStatus"], "RUNNING");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the side container's exit was never reported");
}

#[tokio::test]
async fn depends_on_orders_starts_and_an_unmet_condition_fails_the_task() {
    let rig = rig().await;
    rig.register_td(json!({"family": "ordered", "containerDefinitions": [
        {"name": "app", "image": "busybox", "memory": 32, "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}]},
        {"name": "migrate", "image": "busybox", "memory": 32, "essential": false}
    ]}))
    .await;
    let (_stop, _join) = rig.start();
    rig.wait_instance().await;

    let arn = rig.run_task("ordered").await;
    let task_id = arn.rsplit('/').next().unwrap().to_string();
    let migrate = format!("{task_id}-1");
    let app = format!("{task_id}-0");
    rig.wait_started(&migrate).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!rig.started().contains(&app), "app must wait for migrate to succeed");
    rig.runtime.exit(&migrate, 0);
    let t = rig.wait_status(&arn, "RUNNING").await;
    assert!(rig.started().contains(&app), "{t:#}");

    // Same definition, but the dependency fails: app never starts.
    let arn = rig.run_task("ordered").await;
    let task_id = arn.rsplit('/').next().unwrap().to_string();
    let migrate = format!("{task_id}-1");
    rig.wait_started(&migrate).await;
    rig.runtime.exit(&migrate, 1);
    let t = rig.wait_status(&arn, "STOPPED").await;
    assert!(!rig.started().contains(&format!("{task_id}-0")));
    assert!(t["stoppedReason"].as_str().unwrap().contains("migrate"), "{t:#}");
}

#[tokio::test]
async fn a_missing_image_fails_the_task_with_cannot_pull() {
    let rig = rig().await;
    rig.register_td(json!({"family": "ghost", "containerDefinitions": [{"name": "g", "image": "nosuch/image:1", "memory": 32}]})).await;
    let (_stop, _join) = rig.start();
    rig.wait_instance().await;
    let arn = rig.run_task("ghost").await;
    let t = rig.wait_status(&arn, "STOPPED").await;
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(t["stoppedReason"].as_str().unwrap().starts_with("CannotPullContainerError"), "{t:#}");
    assert!(t["containers"][0]["reason"].as_str().unwrap().starts_with("CannotPullContainerError"));
    assert!(rig.started().is_empty());
}

#[tokio::test]
async fn health_checks_drive_container_and_task_health() {
    let rig = rig().await;
    rig.register_td(json!({"family": "hc", "containerDefinitions": [{"name": "h", "image": "busybox", "memory": 32,
        "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 2}}]}))
    .await;
    let (_stop, _join) = rig.start();
    rig.wait_instance().await;
    let arn = rig.run_task("hc").await;
    let t = rig.wait_status(&arn, "RUNNING").await;
    assert_eq!(t["containers"][0]["healthStatus"], "UNKNOWN");
    let id = t["containers"][0]["runtimeId"].as_str().unwrap().to_string();
    let mut seen_healthy = false;
    for _ in 0..400 {
        let t = rig.describe(&arn).await;
        if !seen_healthy && t["containers"][0]["healthStatus"] == "HEALTHY" {
            assert_eq!(t["healthStatus"], "HEALTHY");
            seen_healthy = true;
            rig.runtime.set_exec_result(&id, Some(1));
        }
        if seen_healthy && t["containers"][0]["healthStatus"] == "UNHEALTHY" {
            assert_eq!(t["healthStatus"], "UNHEALTHY");
            assert!(rig.runtime.calls().iter().any(|c| matches!(c, Call::Exec(i, args) if *i == id && args[..2] == ["/bin/sh".to_string(), "-c".to_string()])));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("health never went HEALTHY then UNHEALTHY (seen healthy: {seen_healthy})");
}

#[tokio::test]
async fn a_new_agent_re_adopts_running_containers_and_reports_their_exit() {
    let rig = rig().await;
    rig.register_td(web_td()).await;
    let (stop, join) = rig.start();
    rig.wait_instance().await;
    let arn = rig.run_task("web").await;
    let t = rig.wait_status(&arn, "RUNNING").await;
    let id = t["containers"][0]["runtimeId"].as_str().unwrap().to_string();
    let _ = stop.send(());
    join.await.unwrap();
    let starts_before = rig.started().len();

    // The container ends while no agent runs.
    rig.runtime.exit(&id, 7);
    let (_stop, _join) = rig.start();
    let t = rig.wait_status(&arn, "STOPPED").await;
    assert_eq!(t["containers"][0]["exitCode"], 7);
    assert_eq!(rig.started().len(), starts_before, "nothing was started again");
    let arns = rig.call("ListContainerInstances", json!({"cluster": "demo"})).await;
    assert_eq!(arns["containerInstanceArns"].as_array().unwrap().len(), 1, "the host kept its container instance");
}

#[tokio::test]
async fn a_task_the_server_no_longer_lists_is_stopped() {
    let rig = rig().await;
    rig.register_td(web_td()).await;
    let mut engine = rig.engine();
    engine.register().await.unwrap();
    // Desired state with a task, then without it.
    let r = rig.run_task("web").await;
    let arn = engine.container_instance_arn().unwrap().to_string();
    let state = rig.control.poll(&PollRequest { cluster: "demo".into(), container_instance_arn: arn, known_version: None }).await.unwrap();
    engine.apply(&state.desired);
    let task_id = r.rsplit('/').next().unwrap().to_string();
    let cid = format!("{task_id}-0");
    rig.wait_started(&cid).await;
    engine.apply(&berth_agent_protocol::DesiredState::default());
    for _ in 0..300 {
        if rig.runtime.calls().iter().any(|c| matches!(c, Call::Kill(i, _) if *i == cid)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the fenced task's container was never stopped");
}

#[tokio::test]
async fn tasks_of_an_earlier_boot_are_reported_stopped_with_a_reason() {
    let rig = rig().await;
    rig.register_td(web_td()).await;
    let (stop, join) = rig.start();
    rig.wait_instance().await;
    let arn = rig.run_task("web").await;
    rig.wait_status(&arn, "RUNNING").await;
    let _ = stop.send(());
    join.await.unwrap();

    let (_stop, _join) = rig.start_on(rig.rebooted_host());
    let t = rig.wait_status(&arn, "STOPPED").await;
    assert_eq!(t["stoppedReason"], berth_agent::engine::REBOOT_REASON, "{t:#}");
    assert_eq!(t["containers"][0]["reason"], "Host restarted");
}

#[tokio::test]
async fn stopped_tasks_are_cleaned_up_once_unlisted_and_past_the_wait() {
    let rig = rig().await;
    rig.register_td(web_td()).await;
    let mut engine = rig.engine_with(rig.host.clone(), Duration::ZERO);
    engine.register().await.unwrap();
    let instance = engine.container_instance_arn().unwrap().to_string();
    let poll = |known| PollRequest { cluster: "demo".into(), container_instance_arn: instance.clone(), known_version: known };
    let arn = rig.run_task("web").await;
    let reporting = tokio::spawn(rig.host.reporter.clone().run(rig.control.clone()));
    engine.apply(&rig.control.poll(&poll(None)).await.unwrap().desired);
    let t = rig.wait_status(&arn, "RUNNING").await;
    let cid = t["containers"][0]["runtimeId"].as_str().unwrap().to_string();
    let task_id = arn.rsplit('/').next().unwrap().to_string();

    rig.call("StopTask", json!({"cluster": "demo", "task": arn})).await;
    engine.apply(&rig.control.poll(&poll(None)).await.unwrap().desired);
    rig.wait_status(&arn, "STOPPED").await;
    assert!(rig.host.files.load(&task_id).unwrap().is_some(), "the record stays while the task is listed");
    // The server no longer lists it and the wait (zero here) has passed.
    engine.apply(&rig.control.poll(&poll(None)).await.unwrap().desired);
    engine.apply(&rig.control.poll(&poll(None)).await.unwrap().desired);
    for _ in 0..200 {
        if rig.runtime.calls().iter().any(|c| matches!(c, Call::Delete(i) if *i == cid)) && rig.host.files.load(&task_id).unwrap().is_none() {
            reporting.abort();
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the stopped task's container and record were never cleaned up");
}

/// The server's part of task roles, stood in for: every poll answer gets
/// freshly minted credentials for each running task (a new key each time).
struct MintingControl {
    inner: Arc<InProcess>,
    minted: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl ControlPlane for MintingControl {
    async fn call(&self, operation: &str, body: Value) -> Result<Value, ControlError> {
        self.inner.call(operation, body).await
    }
    async fn poll(&self, req: &PollRequest) -> Result<PollResponse, ControlError> {
        let mut answer = self.inner.poll(req).await?;
        for t in &mut answer.desired.tasks {
            if t.desired_status == "STOPPED" {
                continue;
            }
            let n = self.minted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            t.credentials = Some(berth_agent_protocol::TaskCredentials {
                credentials_id: format!("cid-{}", berth_agent::plan::task_id(&t.task_arn)),
                task_role: Some(berth_agent_protocol::RoleCredentials {
                    role_arn: "arn:aws:iam::123456789012:role/app".into(),
                    access_key_id: format!("ASIA{n:016}"),
                    secret_access_key: "s3cr3t-value".into(),
                    session_token: "tok".into(),
                    expiration: "2030-01-01T00:00:00Z".into(),
                }),
                execution_role: Some(berth_agent_protocol::RoleCredentials {
                    role_arn: "arn:aws:iam::123456789012:role/exec".into(),
                    access_key_id: format!("ASIAEXEC{n:012}"),
                    secret_access_key: "exec-secret".into(),
                    session_token: "tok".into(),
                    expiration: "2030-01-01T00:00:00Z".into(),
                }),
                error: None,
            });
        }
        Ok(answer)
    }
}

struct NoStats;
impl berth_agent::task_endpoint::StatsSource for NoStats {
    fn container_stats(&self, _: &berth_agent::task_endpoint::registry::TaskMeta, _: &berth_agent::task_endpoint::registry::ContainerMeta) -> Option<Value> {
        None
    }
}

#[tokio::test]
async fn a_task_with_a_role_gets_the_endpoint_in_its_environment_and_its_credentials_from_it() {
    use berth_agent::task_endpoint::handler::handle;
    let rig = rig().await;
    rig.register_td(json!({"family": "roled", "networkMode": "bridge", "taskRoleArn": "arn:aws:iam::123456789012:role/app",
        "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 32,
             "environment": [{"name": "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "value": "/mine"}]},
            {"name": "side", "image": "busybox", "memory": 32, "essential": false}
        ]}))
    .await;
    let control = Arc::new(MintingControl { inner: rig.control.clone(), minted: Default::default() });
    let engine = Engine::new(rig.config(Duration::from_secs(3600)), rig.host.clone(), control);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let join = tokio::spawn(async move { engine.run(async { let _ = rx.await; }).await.unwrap() });
    rig.wait_instance().await;
    let arn = rig.run_task("roled").await;
    let t = rig.wait_status(&arn, "RUNNING").await;
    let task_id = berth_agent::plan::task_id(&arn).to_string();

    let spec = rig.runtime.spec(&runtime_id(&t, "app")).unwrap();
    let env: std::collections::HashMap<_, _> = spec.env.iter().cloned().collect();
    assert_eq!(env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], format!("/v2/credentials/cid-{task_id}"), "the agent's value wins");
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_ECS_EC2");
    let v4 = env["ECS_CONTAINER_METADATA_URI_V4"].clone();
    let key = v4.strip_prefix("http://169.254.170.2/v4/").expect("a v4 metadata URI").to_string();
    let side = rig.runtime.spec(&runtime_id(&t, "side")).unwrap();
    assert!(side.env.iter().any(|(k, v)| k == "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI" && v.ends_with(&task_id)));
    assert!(side.env.iter().any(|(k, v)| k == "ECS_CONTAINER_METADATA_URI_V4" && *v != v4), "each container has its own metadata id");

    let ip: std::net::IpAddr = rig.host.network.task_network(&task_id).unwrap().ipv4.unwrap().into();
    let path = format!("/v2/credentials/cid-{task_id}");
    let first = handle(&rig.host.endpoints.view(), &NoStats, ip, "GET", &path);
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["SecretAccessKey"], "s3cr3t-value");
    // Every poll answer replaces the session.
    let mut refreshed = false;
    for _ in 0..100 {
        let now = handle(&rig.host.endpoints.view(), &NoStats, ip, "GET", &path);
        if now.body["AccessKeyId"] != first.body["AccessKeyId"] {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refreshed, "the credentials were never refreshed");
    assert_eq!(handle(&rig.host.endpoints.view(), &NoStats, "172.29.9.9".parse().unwrap(), "GET", &path).status, 400);

    let meta = handle(&rig.host.endpoints.view(), &NoStats, ip, "GET", &format!("/v4/{key}/task"));
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["TaskARN"], arn.as_str());
    assert_eq!(meta.body["KnownStatus"], "RUNNING");
    assert_eq!(meta.body["Containers"].as_array().unwrap().len(), 2);
    assert_eq!(meta.body["Containers"][0]["Networks"][0]["IPv4Addresses"][0], ip.to_string());

    // The record on disk never holds a session.
    let record = std::fs::read_to_string(rig.dir.path().join(format!("tasks/{task_id}.json"))).unwrap();
    assert!(record.contains(&format!("cid-{task_id}")) && !record.contains("s3cr3t-value") && !record.contains("exec-secret"), "{record}");
    // Its image was pulled with the execution role's session.
    let sessions = rig.images.pull_sessions();
    assert!(!sessions.is_empty() && sessions.iter().all(|s| s.as_deref().is_some_and(|k| k.starts_with("ASIAEXEC"))), "{sessions:?}");

    rig.call("StopTask", json!({"cluster": "demo", "task": arn})).await;
    rig.wait_status(&arn, "STOPPED").await;
    assert_eq!(handle(&rig.host.endpoints.view(), &NoStats, ip, "GET", &path).status, 400, "a stopped task's credentials are gone");
    let _ = stop.send(());
    join.await.unwrap();
}

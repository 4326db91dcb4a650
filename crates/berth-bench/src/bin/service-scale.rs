//! A service at scale on simulated hosts: a real `berth server` (release,
//! its own process) and H simulated hosts in this process (the real agent
//! engine over fake runtime/network/images, speaking the real agent
//! protocol), as `sim-hosts` does, but the tasks come from the service
//! controller rather than RunTask.
//!
//! 1. CreateService desiredCount=N; the clock stops when DescribeServices
//!    says runningCount == N: tasks/s end to end.
//! 2. Host loss: one host's agent stops (silent; its containers keep
//!    running); the clock stops when the server no longer wants any task on
//!    it and the service is back to N RUNNING.
//!
//! ```text
//! service-scale --berth target/release/berth [--hosts 1000] [--tasks 5000] [--host-lost-after SECS] [--progress-every SECS]
//! ```
//!
//! `--host-lost-after` is passed to `berth server` only when given (the
//! server's default is 10 s).

use berth_agent::control::{ControlPlane, HttpControlPlane};
use berth_bench::{arg, call, client, create_sim_cluster, given, raise_nofile, rss_kib, spawn_server_with, start_sim_host, wait_registered};
use berth_runtime::{ContainerRuntime, ContainerState, FakeRuntime};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const AKID: &str = "AKIASERVICESCALEXXXX";
const SECRET: &str = "servicescaleservicescaleservicescalexxxx";

/// DescribeServices, retried: a server busy enough to time a call out is
/// part of what is measured, not a reason to stop.
async fn service(c: &HttpControlPlane) -> Value {
    loop {
        match c.call("DescribeServices", json!({"cluster": "sim", "services": ["scale"]})).await {
            Ok(d) => return d["services"][0].clone(),
            Err(e) => {
                println!("  DescribeServices failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn count(s: &Value, field: &str) -> u64 {
    s[field].as_u64().unwrap_or(0)
}

async fn running_containers(rt: &FakeRuntime) -> usize {
    let mut n = 0;
    for id in rt.list().await.unwrap_or_default() {
        if let Ok(ContainerState::Running { .. }) = rt.state(&id).await {
            n += 1;
        }
    }
    n
}

struct SimAgent {
    runtime: Arc<FakeRuntime>,
    state_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: tokio::task::JoinHandle<()>,
}

#[tokio::main]
async fn main() {
    let berth = PathBuf::from(arg("--berth", "target/release/berth".to_string()));
    let hosts: usize = arg("--hosts", 1000);
    let tasks: u64 = arg("--tasks", 5000);
    let progress_every: u64 = arg("--progress-every", 5);
    let mut extra = Vec::new();
    if let Some(secs) = given("--host-lost-after") {
        extra.push("--host-lost-after".to_string());
        extra.push(secs);
    }
    raise_nofile();
    let dir = tempfile::Builder::new().prefix("berth-service-scale-").tempdir().unwrap();
    let hosts_dir = berth_bench::sim_hosts_dir();

    let server = spawn_server_with(&berth, &dir.path().join("server"), AKID, SECRET, &extra);
    let server_pid = server.pid;
    let _server = server.process;
    let endpoint = server.endpoint;
    let client = client(&endpoint, AKID, SECRET);
    create_sim_cluster(&client, "scale").await;

    let started = Instant::now();
    let mut agents = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let state_dir = hosts_dir.path().join(format!("host-{i}"));
        let sim = start_sim_host(&endpoint, AKID, SECRET, i, state_dir.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let engine = sim.engine;
        let join = tokio::spawn(async move {
            let _ = engine.run(async { let _ = stopped.await; }).await;
        });
        agents.push(SimAgent { runtime: sim.runtime, state_dir, stop: Some(stop), join });
    }
    wait_registered(&client, hosts, started).await;

    // 1. A service of N tasks.
    let t0 = Instant::now();
    call(&client, "CreateService", json!({"cluster": "sim", "serviceName": "scale", "taskDefinition": "scale", "desiredCount": tasks})).await;
    let mut last_print = Instant::now();
    let all_running = loop {
        let s = service(&client).await;
        if count(&s, "runningCount") >= tasks {
            break t0.elapsed().as_secs_f64();
        }
        if last_print.elapsed() > Duration::from_secs(progress_every) {
            let mut really = 0;
            for a in &agents {
                really += running_containers(&a.runtime).await;
            }
            let cluster = call(&client, "DescribeClusters", json!({"clusters": ["sim"]})).await;
            println!(
                "  t={:.1}s service running {} pending {}; cluster runningTasksCount {}; containers really running {really} (server RSS {:.0} MB)",
                t0.elapsed().as_secs_f64(),
                count(&s, "runningCount"),
                count(&s, "pendingCount"),
                cluster["clusters"][0]["runningTasksCount"],
                rss_kib(server_pid) as f64 / 1024.0
            );
            last_print = Instant::now();
        }
        if t0.elapsed() > Duration::from_secs(900) {
            println!("gave up: {} running, {} pending of {tasks}", count(&s, "runningCount"), count(&s, "pendingCount"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let rate = tasks as f64 / all_running;
    let mut really = 0;
    for a in &agents {
        really += running_containers(&a.runtime).await;
    }
    println!("CreateService desiredCount={tasks} on {hosts} hosts: runningCount {tasks} after {all_running:.2} s: {rate:.0} tasks/s end to end");
    println!("  vs anchors: Nomad C1M 3,750 containers/s ({:.2}x); kube-scheduler ~810 pods/s at 5,000 nodes ({:.2}x)", rate / 3750.0, rate / 810.0);
    println!("  containers really running on the simulated hosts: {really}");
    println!("  server RSS {:.0} MB", rss_kib(server_pid) as f64 / 1024.0);

    // 2. Host loss: the agent of a host with tasks goes silent.
    let mut victim = None;
    for (i, a) in agents.iter().enumerate() {
        let n = running_containers(&a.runtime).await;
        if n > 0 {
            victim = Some((i, n));
            break;
        }
    }
    let Some((v, lost)) = victim else {
        println!("no host runs a task; skipping host loss");
        return;
    };
    let identity: Value = serde_json::from_slice(&std::fs::read(agents[v].state_dir.join("instance.json")).unwrap()).unwrap();
    let victim_arn = identity["containerInstanceArn"].as_str().unwrap().to_string();
    let silent = Instant::now();
    if let Some(stop) = agents[v].stop.take() {
        let _ = stop.send(());
    }
    let mut marked = None;
    let back = loop {
        let l = match client.call("ListTasks", json!({"cluster": "sim", "containerInstance": victim_arn, "desiredStatus": "RUNNING"})).await {
            Ok(l) => l,
            Err(e) => {
                println!("  ListTasks failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let still_wanted = l["taskArns"].as_array().map(Vec::len).unwrap_or(0);
        if still_wanted == 0 && marked.is_none() {
            marked = Some(silent.elapsed().as_secs_f64());
        }
        let s = service(&client).await;
        if marked.is_some() && count(&s, "runningCount") == tasks && count(&s, "pendingCount") == 0 {
            break Some(silent.elapsed().as_secs_f64());
        }
        if silent.elapsed() > Duration::from_secs(120) {
            println!(
                "host loss: gave up after 120 s: {still_wanted} tasks still desired RUNNING on the silent host, service running {} pending {}",
                count(&s, "runningCount"),
                count(&s, "pendingCount")
            );
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let setting = given("--host-lost-after").unwrap_or_else(|| "10 (default)".into());
    if let (Some(m), Some(b)) = (marked, back) {
        println!(
            "host loss: {lost} tasks on the silent host; marked lost after {m:.2} s, service back to {tasks} RUNNING after {b:.2} s (--host-lost-after {setting}; target <= 15 s)"
        );
    }
    for a in agents {
        a.join.abort();
    }
}

//! End-to-end task throughput on simulated hosts: a real `berth server`
//! (release, its own process) and H simulated hosts in this process — the
//! real agent engine over fake runtime/network/images, each speaking the
//! real agent protocol (SigV4 HTTP, long poll, SubmitTaskStateChange) to
//! the server. RunTask (count 10) is issued with C in flight until T tasks
//! are placed; the clock stops when the cluster counts T RUNNING tasks.
//!
//! ```text
//! sim-hosts --berth target/release/berth [--hosts 1000] [--tasks 5000] [--concurrency 16]
//! ```

use berth_agent::control::{AgentCredentials, ControlPlane, HttpControlPlane};
use berth_bench::{call, rss_kib, spawn_server};
use berth_agent::host::HostResources;
use berth_agent::sim::{SimHostSpec, sim_host};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const AKID: &str = "AKIASIMHOSTSSIMHOSTS";
const SECRET: &str = "simhostssimhostssimhostssimhostssimhosts";

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Thousands of long polls need thousands of descriptors, here and in the
/// server (which inherits the limit).
fn raise_nofile() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn cluster_counts(c: &HttpControlPlane) -> (u64, u64, u64) {
    let d = call(c, "DescribeClusters", json!({"clusters": ["sim"]})).await;
    let k = &d["clusters"][0];
    let n = |f: &str| k[f].as_u64().unwrap_or(0);
    (n("registeredContainerInstancesCount"), n("pendingTasksCount"), n("runningTasksCount"))
}

#[tokio::main]
async fn main() {
    let berth = PathBuf::from(arg("--berth", "target/release/berth".to_string()));
    let hosts: usize = arg("--hosts", 1000);
    let tasks: usize = arg("--tasks", 5000);
    let concurrency: usize = arg("--concurrency", 16);
    raise_nofile();
    let dir = tempfile::Builder::new().prefix("berth-sim-").tempdir().unwrap();
    let hosts_dir = berth_bench::sim_hosts_dir();

    let server = spawn_server(&berth, &dir.path().join("server"), AKID, SECRET);
    let server_pid = server.pid;
    let _server = server.process;
    let endpoint = server.endpoint;
    let creds = || AgentCredentials { access_key_id: AKID.into(), secret_access_key: SECRET.into() };
    let client = HttpControlPlane::new(&endpoint, "us-east-1", creds()).unwrap();
    call(&client, "CreateCluster", json!({"clusterName": "sim"})).await;
    call(&client, "RegisterTaskDefinition", json!({"family": "sim", "containerDefinitions": [
        {"name": "app", "image": "sim/app:1", "command": ["serve"], "memory": 16, "cpu": 8, "essential": true}
    ]}))
    .await;

    let started = Instant::now();
    for i in 0..hosts {
        let control: Arc<dyn ControlPlane> = Arc::new(HttpControlPlane::new(&endpoint, "us-east-1", creds()).unwrap());
        let spec = SimHostSpec {
            cluster: "sim".into(),
            region: "us-east-1".into(),
            availability_zone: format!("us-east-1{}", ["a", "b", "c"][i % 3]),
            instance_type: "sim.large".into(),
            resources: HostResources { cpu_units: 2048, memory_mib: 4096 },
            state_dir: hosts_dir.path().join(format!("host-{i}")),
        };
        let sim = sim_host(spec, control, Arc::new(berth_clock::SystemClock)).unwrap();
        tokio::spawn(async move {
            let _runtime = sim.runtime;
            let _ = sim.engine.run(std::future::pending::<()>()).await;
        });
    }
    loop {
        let (registered, _, _) = cluster_counts(&client).await;
        if registered as usize >= hosts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{hosts} simulated hosts registered in {:.1} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;

    let t0 = Instant::now();
    let calls = tasks.div_ceil(10);
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let client = Arc::new(client);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..calls {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let c = client.clone();
        set.spawn(async move {
            let r = call(&c, "RunTask", json!({"cluster": "sim", "taskDefinition": "sim", "count": 10})).await;
            drop(permit);
            (r["tasks"].as_array().map(Vec::len).unwrap_or(0), r["failures"].as_array().map(Vec::len).unwrap_or(0))
        });
    }
    let (mut placed, mut failed) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (p, f) = r.unwrap();
        placed += p;
        failed += f;
    }
    let placed_after = t0.elapsed().as_secs_f64();
    loop {
        let (_, pending, running) = cluster_counts(&client).await;
        if running as usize >= placed && pending == 0 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            println!("gave up: {running} running, {pending} pending of {placed}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_running = t0.elapsed().as_secs_f64();
    let rss = rss_kib(server_pid) as f64;
    println!("RunTask x{calls} (count 10, {concurrency} in flight): {placed} placed, {failed} failures, all answered in {placed_after:.2} s");
    println!("all {placed} RUNNING after {all_running:.2} s: {:.0} tasks/s end to end (target >= 2,000/s)", placed as f64 / all_running);
    println!("anchors: Nomad C1M 3,750 containers/s; kube-scheduler ~810 pods/s at 5,000 nodes");
    println!("server RSS {:.0} MB with {hosts} hosts and {placed} tasks", rss / 1024.0);
}

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

use berth_bench::{arg, call, client, cluster_counts, create_sim_cluster, raise_nofile, rss_kib, spawn_server, start_sim_host, wait_registered};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const AKID: &str = "AKIASIMHOSTSSIMHOSTS";
const SECRET: &str = "simhostssimhostssimhostssimhostssimhosts";

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
    let client = client(&endpoint, AKID, SECRET);
    create_sim_cluster(&client, "sim").await;

    let started = Instant::now();
    for i in 0..hosts {
        let sim = start_sim_host(&endpoint, AKID, SECRET, i, hosts_dir.path().join(format!("host-{i}")));
        tokio::spawn(async move {
            let _runtime = sim.runtime;
            let _ = sim.engine.run(std::future::pending::<()>()).await;
        });
    }
    wait_registered(&client, hosts, started).await;

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

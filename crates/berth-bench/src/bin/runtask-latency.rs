//! RunTask → RUNNING latency on this machine, beside the bare OCI runtime
//! starting the same image, and the agent's idle memory.
//!
//! Starts Debian's registry on loopback (busybox image pushed), a
//! `berth server` and a `berth agent` (separate processes, so the agent's
//! own RSS is measurable), warms the image cache with one task, then runs
//! N tasks one after another. For each it records the server's own
//! `startedAt - createdAt` (RunTask accepted → agent reported RUNNING) and
//! what a client polling DescribeTasks saw. The baseline is `runc run -d`
//! of a bundle over the same root filesystem, N times.
//!
//! ```text
//! runtask-latency --berth target/release/berth [--tasks 100]
//! ```

use berth_agent::control::{AgentCredentials, HttpControlPlane};
use berth_bench::{Killed, call, rss_kib, spawn_server};
use berth_testkit::{Registry, busybox_image};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BRIDGE: &str = "bbench0";
const SUBNET: &str = "172.28.0.0/16";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn summary(name: &str, mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&v, 0.50), percentile(&v, 0.99));
    println!("{name:<44} n={:<4} p50 {p50:>7.1} ms   p99 {p99:>7.1} ms   max {:>7.1} ms", v.len(), v.last().copied().unwrap_or(f64::NAN));
    (p50, p99)
}

/// One RunTask, then DescribeTasks until RUNNING: (arn, server ms, client ms).
async fn run_one(root: &HttpControlPlane) -> (String, f64, f64) {
    let started = Instant::now();
    let r = call(root, "RunTask", json!({"cluster": "bench", "taskDefinition": "sleep"})).await;
    let arn = r["tasks"][0]["taskArn"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
    loop {
        let d = call(root, "DescribeTasks", json!({"cluster": "bench", "tasks": [arn]})).await;
        let t = &d["tasks"][0];
        if t["lastStatus"] == "RUNNING" {
            let server_ms = (t["startedAt"].as_f64().unwrap() - t["createdAt"].as_f64().unwrap()) * 1000.0;
            return (arn, server_ms, started.elapsed().as_secs_f64() * 1000.0);
        }
        assert_ne!(t["lastStatus"], "STOPPED", "{t}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let berth = PathBuf::from(arg("--berth").unwrap_or_else(|| "target/release/berth".into()));
    let n: usize = arg("--tasks").and_then(|s| s.parse().ok()).unwrap_or(100);
    let registry = Registry::start().expect("registry");
    let image = busybox_image().push(registry.host(), "bench/busybox", "1", None).expect("push").reference;
    let dir = tempfile::Builder::new().prefix("berth-bench-").tempdir().unwrap();
    let (akid, secret) = ("AKIABENCHBENCHBENCH0", "benchbenchbenchbenchbenchbenchbenchbench");

    let server = spawn_server(&berth, &dir.path().join("server"), akid, secret);
    let _server = server.process;
    let endpoint = server.endpoint;
    let root = HttpControlPlane::new(&endpoint, "us-east-1", AgentCredentials { access_key_id: akid.into(), secret_access_key: secret.into() }).unwrap();
    call(&root, "CreateCluster", json!({"clusterName": "bench"})).await;

    let agent_dir = dir.path().join("agent");
    let agent = Command::new(&berth)
        .args(["agent", "--cluster", "bench", "--server", &endpoint, "--bridge", BRIDGE, "--bridge-subnet", SUBNET, "--cgroup-prefix", BRIDGE])
        .arg("--data-dir")
        .arg(&agent_dir)
        .env("AWS_ACCESS_KEY_ID", akid)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("berth agent");
    let agent_pid = agent.id();
    let _agent = Killed(agent);
    loop {
        let l = call(&root, "ListContainerInstances", json!({"cluster": "bench"})).await;
        if !l["containerInstanceArns"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_kib(agent_pid);

    call(&root, "RegisterTaskDefinition", json!({"family": "sleep", "containerDefinitions": [
        {"name": "s", "image": image, "command": ["sleep", "3600"], "memory": 16, "essential": true}
    ]}))
    .await;

    // Warm the image cache (and every lazy path) with one task.
    let (warm, _, cold_ms) = run_one(&root).await;
    println!("first task (cold image cache, pull included): {cold_ms:.1} ms");
    let mut arns = vec![warm];
    let (mut server_ms, mut client_ms) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (arn, s, c) = run_one(&root).await;
        arns.push(arn);
        server_ms.push(s);
        client_ms.push(c);
    }
    let busy_rss = rss_kib(agent_pid);

    // The baseline: runc run -d over a running task's root filesystem.
    let merged = std::fs::read_dir(agent_dir.join("agent/rootfs"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("merged"))
        .find(|p| p.join("bin/sleep").exists())
        .expect("a mounted container root filesystem");
    let runc_ms = bare_runc(&merged, dir.path(), n);

    println!();
    let (berth_p50, berth_p99) = summary("berth RunTask -> RUNNING (server clock)", server_ms);
    summary("berth RunTask -> RUNNING (client, 2 ms polls)", client_ms);
    let (runc_p50, runc_p99) = summary("bare `runc run -d` (same rootfs)", runc_ms);
    println!();
    println!("ratio p50 berth/runc: {:.2}x   (target <= 2x and <= 100 ms)", berth_p50 / runc_p50);
    println!("ratio p99 berth/runc: {:.2}x", berth_p99 / runc_p99);
    println!("agent RSS idle: {:.1} MB (target <= 15 MB); with {} tasks: {:.1} MB", idle_rss as f64 / 1024.0, arns.len(), busy_rss as f64 / 1024.0);

    for arn in &arns {
        call(&root, "StopTask", json!({"cluster": "bench", "task": arn})).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for arn in &arns {
        loop {
            let d = call(&root, "DescribeTasks", json!({"cluster": "bench", "tasks": [arn]})).await;
            if d["tasks"][0]["lastStatus"] == "STOPPED" || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
    let _ = Command::new("nft").args(["delete", "table", "ip", BRIDGE]).output();
    for c in ["memory", "cpu,cpuacct", "pids"] {
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(c).join(BRIDGE));
    }
}

/// `runc run -d` of a fresh bundle over `rootfs`, `n` times; milliseconds.
fn bare_runc(rootfs: &Path, scratch: &Path, n: usize) -> Vec<f64> {
    let bundle = scratch.join("bare-bundle");
    let state = scratch.join("bare-runc");
    std::fs::create_dir_all(&bundle).unwrap();
    let spec = Command::new("runc").arg("spec").current_dir(&bundle).output().expect("runc spec");
    assert!(spec.status.success());
    let path = bundle.join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["sleep", "3600"]);
    config["root"] = json!({"path": rootfs, "readonly": true});
    let mut out = Vec::new();
    for i in 0..n {
        let id = format!("bare-{i}");
        config["linux"]["cgroupsPath"] = json!(format!("/{BRIDGE}-bare/{id}"));
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        let t = Instant::now();
        let st = Command::new("runc")
            .arg("--root")
            .arg(&state)
            .args(["run", "-d", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(st.success(), "runc run -d failed");
        let _ = Command::new("runc").arg("--root").arg(&state).args(["delete", "-f", &id]).output();
    }
    for c in ["memory", "cpu,cpuacct", "pids"] {
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(c).join(format!("{BRIDGE}-bare")));
    }
    out
}

//! Pieces the benchmark binaries share: a `berth server` child process, a
//! signed ECS call that panics on error (a benchmark has no use for a
//! failed request), command-line flags, and the cluster of simulated hosts
//! that `sim-hosts` and `service-scale` set up.

use berth_agent::control::{AgentCredentials, ControlPlane, HttpControlPlane};
use berth_agent::host::HostResources;
use berth_agent::sim::{SimHost, SimHostSpec, sim_host};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The cluster the simulated hosts join.
pub const SIM_CLUSTER: &str = "sim";
const REGION: &str = "us-east-1";

/// A child process killed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `berth server` on 127.0.0.1 (port 0) with the given root key.
pub struct BenchServer {
    pub process: Killed,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub pid: u32,
}

/// Starts `berth server` and waits for its `ready ADDR` line; its later
/// output is drained so it never blocks on a full pipe.
pub fn spawn_server(berth: &Path, data_dir: &Path, access_key_id: &str, secret: &str) -> BenchServer {
    spawn_server_with(berth, data_dir, access_key_id, secret, &[])
}

/// [`spawn_server`] with more `berth server` flags.
pub fn spawn_server_with(berth: &Path, data_dir: &Path, access_key_id: &str, secret: &str, extra: &[String]) -> BenchServer {
    let mut server = Command::new(berth)
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("BERTH_ROOT_ACCESS_KEY_ID", access_key_id)
        .env("BERTH_ROOT_SECRET_ACCESS_KEY", secret)
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("berth server");
    let mut lines = BufReader::new(server.stdout.take().expect("piped stdout")).lines();
    let addr = loop {
        let line = lines.next().expect("server output").expect("server output is text");
        if let Some(a) = line.strip_prefix("ready ") {
            break a.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let pid = server.id();
    BenchServer { process: Killed(server), endpoint: format!("http://{addr}"), pid }
}

/// One ECS operation; panics with the operation's name on any error.
pub async fn call(c: &HttpControlPlane, op: &str, body: Value) -> Value {
    c.call(op, body).await.unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// RSS of a process in KiB (0 if unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Where simulated hosts keep their agent state: in memory (`/dev/shm`)
/// when there is one. Each real host has a disk of its own; a thousand
/// simulated hosts sharing this machine's one disk would measure its
/// fsync queue, not Berth. The server's store stays on disk.
pub fn sim_hosts_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let mut b = tempfile::Builder::new();
    b.prefix("berth-sim-hosts-");
    let made = if shm.is_dir() { b.tempdir_in(shm) } else { b.tempdir() };
    made.unwrap_or_else(|e| panic!("making a directory for the simulated hosts: {e}"))
}

/// The value after flag `name` on the command line, if given.
pub fn given(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// The value after flag `name`, parsed; `default` when absent or unparsable.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    given(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Thousands of long polls need thousands of descriptors, here and in the
/// server (which inherits the limit).
pub fn raise_nofile() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A control plane client of the server at `endpoint`, signing with the
/// given root key.
pub fn client(endpoint: &str, access_key_id: &str, secret: &str) -> HttpControlPlane {
    let creds = AgentCredentials { access_key_id: access_key_id.into(), secret_access_key: secret.into() };
    HttpControlPlane::new(endpoint, REGION, creds).unwrap()
}

/// CreateCluster [`SIM_CLUSTER`] and RegisterTaskDefinition `family`: one
/// small essential container of `sim/app:1`.
pub async fn create_sim_cluster(c: &HttpControlPlane, family: &str) {
    call(c, "CreateCluster", json!({"clusterName": SIM_CLUSTER})).await;
    call(c, "RegisterTaskDefinition", json!({"family": family, "containerDefinitions": [
        {"name": "app", "image": "sim/app:1", "command": ["serve"], "memory": 16, "cpu": 8, "essential": true}
    ]}))
    .await;
}

/// Simulated host number `i` (2048 CPU units, 4 GiB, AZ a/b/c in turn),
/// an agent of the server at `endpoint` keeping its state in `state_dir`.
pub fn start_sim_host(endpoint: &str, access_key_id: &str, secret: &str, i: usize, state_dir: PathBuf) -> SimHost {
    let control: Arc<dyn ControlPlane> = Arc::new(client(endpoint, access_key_id, secret));
    let spec = SimHostSpec {
        cluster: SIM_CLUSTER.into(),
        region: REGION.into(),
        availability_zone: format!("us-east-1{}", ["a", "b", "c"][i % 3]),
        instance_type: "sim.large".into(),
        resources: HostResources { cpu_units: 2048, memory_mib: 4096 },
        state_dir,
    };
    sim_host(spec, control, Arc::new(berth_clock::SystemClock)).unwrap()
}

/// [`SIM_CLUSTER`]'s registered container instances, pending and running
/// tasks.
pub async fn cluster_counts(c: &HttpControlPlane) -> (u64, u64, u64) {
    let d = call(c, "DescribeClusters", json!({"clusters": [SIM_CLUSTER]})).await;
    let k = &d["clusters"][0];
    let n = |f: &str| k[f].as_u64().unwrap_or(0);
    (n("registeredContainerInstancesCount"), n("pendingTasksCount"), n("runningTasksCount"))
}

/// Waits until `hosts` container instances are registered, says how long
/// that took since `started`, then lets them settle for 2 s.
pub async fn wait_registered(c: &HttpControlPlane, hosts: usize, started: Instant) {
    loop {
        let (registered, _, _) = cluster_counts(c).await;
        if registered as usize >= hosts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{hosts} simulated hosts registered in {:.1} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// Binds `listen` for the binary `program`, which exits 1 saying why when
/// it cannot; returns the listener and the address it got.
pub async fn bind_or_exit(program: &str, listen: std::net::SocketAddr) -> (tokio::net::TcpListener, std::net::SocketAddr) {
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{program}: binding {listen}: {e}");
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().expect("bound address");
    (listener, addr)
}

/// Prints `ready ADDR` (the line bench scripts wait for) and flushes it.
pub fn print_ready(addr: std::net::SocketAddr) {
    println!("ready {addr}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

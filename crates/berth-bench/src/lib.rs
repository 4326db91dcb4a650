//! Pieces the benchmark binaries share: a `berth server` child process and
//! a signed ECS call that panics on error (a benchmark has no use for a
//! failed request).

use berth_agent::control::{ControlPlane, HttpControlPlane};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

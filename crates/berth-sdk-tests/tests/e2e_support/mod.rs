//! Shared by the end-to-end tests: hosts (`berth up` or `berth agent`)
//! with their own bridge, subnet and cgroup prefix, their cleanup, and
//! small helpers over aws-sdk-ecs.

#![allow(dead_code)] // each test binary uses a different part

use crate::common::{self, BerthServer, random_string};
use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode, Task};
use berth_testkit::{Registry, busybox_image};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const CLUSTER: &str = "default";

/// A /24 of 172.30.0.0/16 claimed by a lock file, so parallel tests never
/// pick the same subnet.
pub struct SubnetClaim {
    path: PathBuf,
    pub third_octet: u8,
}

impl SubnetClaim {
    pub fn take() -> SubnetClaim {
        let dir = Path::new("/tmp/berth-e2e-subnets");
        std::fs::create_dir_all(dir).unwrap();
        let start: u8 = random_string(2, b"0123456789").parse().unwrap();
        for i in 0..=255u16 {
            let octet = ((start as u16 + i) % 256) as u8;
            let path = dir.join(octet.to_string());
            if std::fs::OpenOptions::new().write(true).create_new(true).open(&path).is_ok() {
                return SubnetClaim { path, third_octet: octet };
            }
        }
        panic!("no free test subnet in 172.30.0.0/16");
    }
}

impl Drop for SubnetClaim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One `berth up` with its own bridge, subnet and cgroup prefix.
pub struct TestHost {
    pub server: BerthServer,
    pub bridge: String,
    _subnet: SubnetClaim,
}

pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestHost {
    pub fn up() -> TestHost {
        TestHost::up_with(&[])
    }

    pub fn up_with(more: &[&str]) -> TestHost {
        let subnet = SubnetClaim::take();
        let bridge = format!("bt{}", random_string(8, b"abcdefghijklmnopqrstuvwxyz0123456789"));
        let dir = tempfile::Builder::new().prefix("berth-e2e-").tempdir().unwrap();
        let mut extra: Vec<String> = vec![
            "--bridge".into(),
            bridge.clone(),
            "--bridge-subnet".into(),
            format!("172.30.{}.0/24", subnet.third_octet),
            "--cgroup-prefix".into(),
            bridge.clone(),
            // Parallel hosts on one machine: each its own task endpoint port.
            "--task-endpoint-port".into(),
            "0".into(),
        ];
        extra.extend(more.iter().map(|s| s.to_string()));
        let server = BerthServer::start_up(dir, extra);
        TestHost { server, bridge, _subnet: subnet }
    }

    pub fn data(&self) -> PathBuf {
        self.server.dir.path().to_path_buf()
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        self.server.ecs_client()
    }

    pub fn logs(&self, task_arn: &str) -> String {
        let out = Command::new(common::berth_bin())
            .args(["logs", task_arn, "--data-dir"])
            .arg(self.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "berth logs: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The cgroup v1 directory of a task or container.
    pub fn cgroup(&self, controller: &str, rel: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup").join(controller).join(&self.bridge).join(rel)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.server.kill9();
        clean_up_agent(&self.data(), &self.bridge, None);
    }
}

/// Removes everything an agent with data dir `data` and bridge/cgroup
/// prefix `bridge` made: containers, root filesystem mounts, task
/// namespaces, the bridge and its nftables table (in `netns`, if the
/// agent ran in one), and its cgroups. Call after the agent is dead.
pub fn clean_up_agent(data: &Path, bridge: &str, netns: Option<&str>) {
    let root = data.join("agent/runc").to_string_lossy().into_owned();
    for id in sh("runc", &["--root", &root, "list", "-q"]).lines() {
        let _ = Command::new("runc").args(["--root", &root, "delete", "-f", id]).output();
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let prefix = data.to_string_lossy().into_owned();
    let mut targets: Vec<&str> = mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|m| m.starts_with(&prefix)).collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in targets {
        let _ = Command::new("umount").args(["-l", t]).output();
    }
    if let Ok(entries) = std::fs::read_dir(data.join("agent/tasks")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().trim_end_matches(".json").to_string();
            // `berth up --bridge X` names task namespaces `X-<task id>`.
            let _ = Command::new("ip").args(["netns", "del", &format!("{bridge}-{name}")]).output();
        }
    }
    let in_ns = |args: &[&str]| {
        let mut c = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]);
                c.args(args);
                c
            }
            None => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
        };
        let _ = c.output();
    };
    in_ns(&["ip", "link", "del", bridge]);
    in_ns(&["nft", "delete", "table", "ip", bridge]);
    for controller in ["cpu,cpuacct", "memory", "pids", "cpuset", "freezer", "devices", "blkio", "net_cls,net_prio", "perf_event", "hugetlb", "systemd"] {
        remove_cgroup_tree(&Path::new("/sys/fs/cgroup").join(controller).join(bridge));
    }
}

pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

pub fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

pub fn container(name: &str, image: &str) -> aws_sdk_ecs::types::builders::ContainerDefinitionBuilder {
    ContainerDefinition::builder().name(name).image(image).memory(64).essential(true)
}

pub async fn register(ecs: &aws_sdk_ecs::Client, family: &str, mode: Option<NetworkMode>, containers: Vec<ContainerDefinition>) -> String {
    let mut req = ecs.register_task_definition().family(family).set_container_definitions(Some(containers));
    if let Some(m) = mode {
        req = req.network_mode(m);
    }
    let out = req.send().await.expect("RegisterTaskDefinition");
    out.task_definition().unwrap().task_definition_arn().unwrap().to_string()
}

pub async fn run(ecs: &aws_sdk_ecs::Client, td: &str, count: i32) -> Vec<String> {
    let out = ecs.run_task().cluster(CLUSTER).task_definition(td).count(count).send().await.expect("RunTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    out.tasks().iter().map(|t| t.task_arn().unwrap().to_string()).collect()
}

pub async fn describe(ecs: &aws_sdk_ecs::Client, arn: &str) -> Task {
    let out = ecs.describe_tasks().cluster(CLUSTER).tasks(arn).send().await.expect("DescribeTasks");
    out.tasks()[0].clone()
}

pub async fn wait_status(ecs: &aws_sdk_ecs::Client, arn: &str, status: &str, within: Duration) -> Task {
    let deadline = Instant::now() + within;
    loop {
        let t = describe(ecs, arn).await;
        if t.last_status() == Some(status) {
            return t;
        }
        if Instant::now() > deadline {
            panic!("task never reached {status} within {within:?}: {t:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_instance(ecs: &aws_sdk_ecs::Client) -> String {
    for _ in 0..300 {
        let l = ecs.list_container_instances().cluster(CLUSTER).send().await.unwrap();
        if let Some(a) = l.container_instance_arns().first() {
            return a.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the local agent never registered");
}

/// busybox httpd serving /www on 8080 (a dynamic host port in bridge mode),
/// under Berth's init so SIGTERM ends it (httpd as pid 1 would ignore it).
pub fn httpd_container(image: &str, stop_timeout: i32) -> ContainerDefinition {
    httpd_builder(image).stop_timeout(stop_timeout).build()
}

/// [`httpd_container`] before its stop timeout, to add to.
pub fn httpd_builder(image: &str) -> aws_sdk_ecs::types::builders::ContainerDefinitionBuilder {
    container("web", image)
        .command("httpd")
        .command("-f")
        .command("-p")
        .command("8080")
        .command("-h")
        .command("/www")
        .port_mappings(aws_sdk_ecs::types::PortMapping::builder().container_port(8080).build())
        .linux_parameters(aws_sdk_ecs::types::LinuxParameters::builder().init_process_enabled(true).build())
}

pub fn push_busybox(registry: &Registry, repo: &str) -> String {
    busybox_image()
        .file("www/index.html", b"hello from berth\n".to_vec(), 0o644)
        .push(registry.host(), repo, "1", None)
        .expect("push")
        .reference
}


// ---------------------------------------------------------------------------
// Hosts in network namespaces (as on separate machines), for tests that run
// one `berth server` and several `berth agent`s.

fn ip_ok(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace joined to the host by a veth pair:
/// host side `10.231.BLOCK.(4k+1)/30`, namespace side `.(4k+2)`.
pub struct NsMachine {
    pub ns: String,
    pub veth_host: String,
    pub host_ip: String,
    pub ip: String,
}

impl NsMachine {
    pub fn new(block: u8, k: u8) -> NsMachine {
        let tag = random_string(6, b"abcdefghijklmnopqrstuvwxyz0123456789");
        let ns = format!("bm-{tag}");
        let veth_host = format!("vm{tag}h");
        let veth_ns = format!("vm{tag}n");
        let host_ip = format!("10.231.{block}.{}", 4 * k + 1);
        let ns_ip = format!("10.231.{block}.{}", 4 * k + 2);
        ip_ok(&["netns", "add", &ns]);
        let m = NsMachine { ns: ns.clone(), veth_host: veth_host.clone(), host_ip: host_ip.clone(), ip: ns_ip.clone() };
        ip_ok(&["link", "add", &veth_host, "type", "veth", "peer", "name", &veth_ns]);
        ip_ok(&["link", "set", &veth_ns, "netns", &ns]);
        ip_ok(&["addr", "add", &format!("{host_ip}/30"), "dev", &veth_host]);
        ip_ok(&["link", "set", &veth_host, "up"]);
        ip_ok(&["-n", &ns, "addr", "add", &format!("{ns_ip}/30"), "dev", &veth_ns]);
        ip_ok(&["-n", &ns, "link", "set", &veth_ns, "up"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        ip_ok(&["-n", &ns, "route", "add", "default", "via", &host_ip]);
        m
    }
}

impl Drop for NsMachine {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.veth_host]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// `berth agent` inside an [`NsMachine`]'s network namespace (`nsenter
/// --net` only, so task namespaces and mounts stay visible to cleanup),
/// air-gapped: the image archive is loaded into its cache first and it
/// runs with `--pull-policy prefer-cached`. Killed and cleaned up on drop.
pub struct NsAgent {
    child: Option<std::process::Child>,
    pub data: tempfile::TempDir,
    pub bridge: String,
    pub machine: NsMachine,
    _subnet: SubnetClaim,
}

impl NsAgent {
    pub fn start(server: &BerthServer, machine: NsMachine, az: &str, archive: &Path, image: &str) -> NsAgent {
        let subnet = SubnetClaim::take();
        let bridge = format!("bt{}", random_string(8, b"abcdefghijklmnopqrstuvwxyz0123456789"));
        let data = tempfile::Builder::new().prefix("berth-e2e-agent-").tempdir().unwrap();
        let load = Command::new(common::berth_bin())
            .args(["image", "load"])
            .arg(archive)
            .args(["--reference", image, "--data-dir"])
            .arg(data.path())
            .output()
            .unwrap();
        assert!(load.status.success(), "berth image load: {}", String::from_utf8_lossy(&load.stderr));
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", machine.ns))
            .arg(common::berth_bin())
            .args(["agent", "--cluster", CLUSTER, "--server"])
            .arg(format!("http://{}:{}", server.ip, server.port))
            .arg("--data-dir")
            .arg(data.path())
            .args(["--bridge", &bridge, "--cgroup-prefix", &bridge, "--availability-zone", az, "--pull-policy", "prefer-cached"])
            .args(["--task-endpoint-port", "0"])
            .arg("--bridge-subnet")
            .arg(format!("172.30.{}.0/24", subnet.third_octet))
            .env("AWS_ACCESS_KEY_ID", &server.creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &server.creds.secret_access_key)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("BERTH_LOG", std::env::var("BERTH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let child = cmd.spawn().expect("spawning berth agent");
        NsAgent { child: Some(child), data, bridge, machine, _subnet: subnet }
    }

    /// Sends `sig` to the agent process (SIGSTOP/SIGCONT to make it go
    /// silent and come back).
    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: the pid of a child we have not reaped; plain syscall.
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        clean_up_agent(self.data.path(), &self.bridge, Some(&self.machine.ns));
    }
}

/// Every container instance of [`CLUSTER`], described.
pub async fn list_instances(ecs: &aws_sdk_ecs::Client) -> Vec<aws_sdk_ecs::types::ContainerInstance> {
    let arns = ecs.list_container_instances().cluster(CLUSTER).send().await.unwrap().container_instance_arns().to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_container_instances()
        .cluster(CLUSTER)
        .set_container_instances(Some(arns))
        .send()
        .await
        .unwrap()
        .container_instances()
        .to_vec()
}

/// The `ecs.availability-zone` attribute of a container instance.
pub fn instance_az(ci: &aws_sdk_ecs::types::ContainerInstance) -> String {
    ci.attributes().iter().find(|a| a.name() == "ecs.availability-zone").and_then(|a| a.value()).unwrap_or_default().to_string()
}

/// Waits until `n` container instances are registered; returns
/// availability zone → container instance ARN.
pub async fn wait_instances(ecs: &aws_sdk_ecs::Client, n: usize, within: Duration) -> std::collections::HashMap<String, String> {
    let deadline = Instant::now() + within;
    loop {
        let all = list_instances(ecs).await;
        if all.len() >= n && all.iter().all(|ci| ci.agent_connected()) {
            return all.iter().map(|ci| (instance_az(ci), ci.container_instance_arn().unwrap().to_string())).collect();
        }
        assert!(Instant::now() < deadline, "{n} agents never registered and connected: {all:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

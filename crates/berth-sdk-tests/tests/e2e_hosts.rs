//! Two hosts: a `berth server` and two `berth agent`s, each agent in a
//! network namespace of its own (made by this test, linked to the host by
//! a veth pair), as on two machines. Placement spreads across them, tasks
//! answer on their host's address, a silent agent is marked disconnected
//! and gets nothing new, and when it comes back the task the server
//! stopped meanwhile is stopped.
//!
//! The hosts are air-gapped (their namespaces reach only the server): the
//! image is imported on each with `berth image load`, and the agents run
//! with `--pull-policy prefer-cached`.

mod common;
mod e2e_support;

use aws_sdk_ecs::types::{ContainerInstance, PlacementStrategy, PlacementStrategyType};
use berth_testkit::busybox_image;
use common::{BerthServer, random_string};
use e2e_support::*;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace joined to the host by a veth pair:
/// host side `10.231.N.(4k+1)/30`, namespace side `.(4k+2)`.
struct Machine {
    ns: String,
    veth_host: String,
    host_ip: String,
    ip: String,
}

impl Machine {
    fn new(block: u8, k: u8) -> Machine {
        let tag = random_string(6, b"abcdefghijklmnopqrstuvwxyz0123456789");
        let ns = format!("bm-{tag}");
        let veth_host = format!("vm{tag}h");
        let veth_ns = format!("vm{tag}n");
        let host_ip = format!("10.231.{block}.{}", 4 * k + 1);
        let ns_ip = format!("10.231.{block}.{}", 4 * k + 2);
        ip(&["netns", "add", &ns]);
        let m = Machine { ns: ns.clone(), veth_host: veth_host.clone(), host_ip: host_ip.clone(), ip: ns_ip.clone() };
        ip(&["link", "add", &veth_host, "type", "veth", "peer", "name", &veth_ns]);
        ip(&["link", "set", &veth_ns, "netns", &ns]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &veth_host]);
        ip(&["link", "set", &veth_host, "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{ns_ip}/30"), "dev", &veth_ns]);
        ip(&["-n", &ns, "link", "set", &veth_ns, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "route", "add", "default", "via", &host_ip]);
        m
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.veth_host]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// `berth agent` running inside a [`Machine`]'s namespace (only the network
/// namespace: `nsenter --net`, so task namespaces and mounts stay visible
/// to the host and to cleanup).
struct NetnsAgent {
    child: Option<Child>,
    data: tempfile::TempDir,
    bridge: String,
    machine: Machine,
    _subnet: SubnetClaim,
}

impl NetnsAgent {
    fn start(server: &BerthServer, machine: Machine, az: &str, archive: &std::path::Path, image: &str) -> NetnsAgent {
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
            .arg("--bridge-subnet")
            .arg(format!("172.30.{}.0/24", subnet.third_octet))
            .env("AWS_ACCESS_KEY_ID", &server.creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &server.creds.secret_access_key)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("BERTH_LOG", std::env::var("BERTH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = cmd.spawn().expect("spawning berth agent");
        NetnsAgent { child: Some(child), data, bridge, machine, _subnet: subnet }
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: the pid of a child we have not reaped; plain syscall.
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(rc, 0);
    }
}

impl Drop for NetnsAgent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        clean_up_agent(self.data.path(), &self.bridge, Some(&self.machine.ns));
    }
}

async fn instances(ecs: &aws_sdk_ecs::Client) -> Vec<ContainerInstance> {
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

fn az_of(ci: &ContainerInstance) -> String {
    ci.attributes().iter().find(|a| a.name() == "ecs.availability-zone").and_then(|a| a.value()).unwrap_or_default().to_string()
}

async fn wait_connected(ecs: &aws_sdk_ecs::Client, az: &str, connected: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let all = instances(ecs).await;
        if all.iter().any(|ci| az_of(ci) == az && ci.agent_connected() == connected) {
            return;
        }
        assert!(Instant::now() < deadline, "{az} never became agentConnected={connected}: {all:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_hosts_spread_serve_and_fence_when_an_agent_goes_silent() {
    let image = "127.0.0.1:5000/demo/busybox:1".to_string();
    let archive_dir = tempfile::tempdir().unwrap();
    let archive = archive_dir.path().join("busybox.tar");
    busybox_image().file("www/index.html", b"hello from berth\n".to_vec(), 0o644).write_oci_archive(&archive).unwrap();
    let link = SubnetClaim::take();
    let a = Machine::new(link.third_octet, 0);
    let b = Machine::new(link.third_octet, 1);
    let server = BerthServer::start_on(&a.host_ip);
    let ecs = server.ecs_client();
    ecs.create_cluster().cluster_name(CLUSTER).send().await.unwrap();
    let (ip_a, ip_b) = (a.ip.clone(), b.ip.clone());
    let agent_a = NetnsAgent::start(&server, a, "us-east-1a", &archive, &image);
    let _agent_b = NetnsAgent::start(&server, b, "us-east-1b", &archive, &image);

    let deadline = Instant::now() + Duration::from_secs(60);
    while instances(&ecs).await.len() < 2 {
        assert!(Instant::now() < deadline, "both agents never registered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let by_arn: HashMap<String, String> =
        instances(&ecs).await.iter().map(|ci| (ci.container_instance_arn().unwrap().to_string(), az_of(ci))).collect();
    let ip_of = |az: &str| if az == "us-east-1a" { ip_a.clone() } else { ip_b.clone() };

    let td = register(&ecs, "web", None, vec![httpd_container(&image, 5)]).await;
    let spread = PlacementStrategy::builder().r#type(PlacementStrategyType::Spread).field("attribute:ecs.availability-zone").build();
    let out = ecs.run_task().cluster(CLUSTER).task_definition(&td).count(4).placement_strategy(spread.clone()).send().await.unwrap();
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    let mut per_az: HashMap<String, Vec<String>> = HashMap::new();
    for t in out.tasks() {
        let arn = t.task_arn().unwrap().to_string();
        let az = by_arn[t.container_instance_arn().unwrap()].clone();
        let t = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(90)).await;
        let port = t.containers()[0].network_bindings()[0].host_port().unwrap();
        let addr = format!("{}:{port}", ip_of(&az));
        let mut answer = String::new();
        for _ in 0..50 {
            if let Ok(a) = http_get(&addr, "/index.html") {
                answer = a;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(answer.contains("hello from berth"), "{addr} answered {answer:?}");
        per_az.entry(az).or_default().push(arn);
    }
    assert_eq!(per_az.get("us-east-1a").map(Vec::len), Some(2), "{per_az:?}");
    assert_eq!(per_az.get("us-east-1b").map(Vec::len), Some(2), "{per_az:?}");

    // Host a goes silent.
    agent_a.signal(libc::SIGSTOP);
    let silent_at = Instant::now();
    wait_connected(&ecs, "us-east-1a", false, Duration::from_secs(30)).await;
    let marked_after = silent_at.elapsed();
    let out = ecs.run_task().cluster(CLUSTER).task_definition(&td).count(2).placement_strategy(spread).send().await.unwrap();
    for t in out.tasks() {
        assert_eq!(by_arn[t.container_instance_arn().unwrap()], "us-east-1b", "nothing new is placed on a disconnected host");
    }
    let fenced = per_az["us-east-1a"][0].clone();
    ecs.stop_task().cluster(CLUSTER).task(&fenced).reason("stopped while away").send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(describe(&ecs, &fenced).await.last_status(), Some("RUNNING"), "nobody on host a could stop it yet");

    agent_a.signal(libc::SIGCONT);
    wait_connected(&ecs, "us-east-1a", true, Duration::from_secs(30)).await;
    let t = wait_status(&ecs, &fenced, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("UserInitiated"));
    assert_eq!(t.containers()[0].exit_code(), Some(143));
    let other = describe(&ecs, &per_az["us-east-1a"][1]).await;
    assert_eq!(other.last_status(), Some("RUNNING"), "the host's other task kept running through the silence");
    eprintln!("agent marked disconnected {marked_after:?} after it went silent");
}

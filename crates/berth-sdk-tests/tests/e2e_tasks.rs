//! End to end with real containers: `berth up` (server and agent in one
//! process) on 127.0.0.1, images built from Debian's busybox-static and
//! pushed to Debian's reference registry on loopback, tasks driven with
//! aws-sdk-ecs, and the results checked where they really are (HTTP on
//! host ports and task addresses, cgroup files, exit codes, logs).
//!
//! Needs root, runc, iproute2, nftables and docker-registry (`./test.sh`
//! installs them). Every host gets its own bridge, /24 and cgroup prefix,
//! so tests run in parallel; Drop removes what the host made (containers,
//! mounts, namespaces, the bridge, its nftables table, cgroups).

mod common;

use aws_sdk_ecs::types::{
    AwsVpcConfiguration, ContainerDefinition, HealthCheck, KeyValuePair, NetworkConfiguration, NetworkMode, PortMapping,
    Task,
};
use berth_testkit::{Registry, busybox_image};
use common::{BerthServer, random_string};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CLUSTER: &str = "default";

/// A /24 of 172.30.0.0/16 claimed by a lock file, so parallel tests never
/// pick the same subnet.
struct SubnetClaim {
    path: PathBuf,
    third_octet: u8,
}

impl SubnetClaim {
    fn take() -> SubnetClaim {
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
struct TestHost {
    server: BerthServer,
    bridge: String,
    _subnet: SubnetClaim,
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestHost {
    fn up() -> TestHost {
        TestHost::up_with(&[])
    }

    fn up_with(more: &[&str]) -> TestHost {
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
        ];
        extra.extend(more.iter().map(|s| s.to_string()));
        let server = BerthServer::start_up(dir, extra);
        TestHost { server, bridge, _subnet: subnet }
    }

    fn data(&self) -> PathBuf {
        self.server.dir.path().to_path_buf()
    }

    fn ecs(&self) -> aws_sdk_ecs::Client {
        self.server.ecs_client()
    }

    fn logs(&self, task_arn: &str) -> String {
        let out = Command::new(common::berth_bin())
            .args(["logs", task_arn, "--data-dir"])
            .arg(self.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "berth logs: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The cgroup v1 directory of a task or container.
    fn cgroup(&self, controller: &str, rel: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup").join(controller).join(&self.bridge).join(rel)
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.server.kill9();
        let data = self.data();
        let runc_root = data.join("agent/runc");
        let root = runc_root.to_string_lossy().into_owned();
        for id in sh("runc", &["--root", &root, "list", "-q"]).lines() {
            let _ = Command::new("runc").args(["--root", &root, "delete", "-f", id]).output();
        }
        // Shims exit once their container is gone; unmount root filesystems.
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
                let _ = Command::new("ip").args(["netns", "del", &format!("berth-{name}")]).output();
            }
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).output();
        let _ = Command::new("nft").args(["delete", "table", "ip", &self.bridge]).output();
        for controller in ["cpu,cpuacct", "cpu", "memory", "pids", "cpuacct", "cpuset", "freezer", "devices", "blkio", "net_cls,net_prio", "perf_event", "hugetlb", "systemd", "unified"] {
            remove_cgroup_tree(&Path::new("/sys/fs/cgroup").join(controller).join(&self.bridge));
        }
    }
}

fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn container(name: &str, image: &str) -> aws_sdk_ecs::types::builders::ContainerDefinitionBuilder {
    ContainerDefinition::builder().name(name).image(image).memory(64).essential(true)
}

async fn register(ecs: &aws_sdk_ecs::Client, family: &str, mode: Option<NetworkMode>, containers: Vec<ContainerDefinition>) -> String {
    let mut req = ecs.register_task_definition().family(family).set_container_definitions(Some(containers));
    if let Some(m) = mode {
        req = req.network_mode(m);
    }
    let out = req.send().await.expect("RegisterTaskDefinition");
    out.task_definition().unwrap().task_definition_arn().unwrap().to_string()
}

async fn run(ecs: &aws_sdk_ecs::Client, td: &str, count: i32) -> Vec<String> {
    let out = ecs.run_task().cluster(CLUSTER).task_definition(td).count(count).send().await.expect("RunTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    out.tasks().iter().map(|t| t.task_arn().unwrap().to_string()).collect()
}

async fn describe(ecs: &aws_sdk_ecs::Client, arn: &str) -> Task {
    let out = ecs.describe_tasks().cluster(CLUSTER).tasks(arn).send().await.expect("DescribeTasks");
    out.tasks()[0].clone()
}

async fn wait_status(ecs: &aws_sdk_ecs::Client, arn: &str, status: &str, within: Duration) -> Task {
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

async fn wait_instance(ecs: &aws_sdk_ecs::Client) -> String {
    for _ in 0..300 {
        let l = ecs.list_container_instances().cluster(CLUSTER).send().await.unwrap();
        if let Some(a) = l.container_instance_arns().first() {
            return a.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the local agent never registered");
}

fn push_busybox(registry: &Registry, repo: &str) -> String {
    busybox_image()
        .file("www/index.html", b"hello from berth\n".to_vec(), 0o644)
        .push(registry.host(), repo, "1", None)
        .expect("push")
        .reference
}

#[tokio::test]
async fn web_tasks_serve_http_on_dynamic_host_ports_and_stop_as_user_initiated() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let td = register(
        &ecs,
        "web",
        None,
        vec![
            container("web", &image)
                .command("httpd")
                .command("-f")
                .command("-p")
                .command("8080")
                .command("-h")
                .command("/www")
                .port_mappings(PortMapping::builder().container_port(8080).build())
                // httpd as pid 1 would ignore SIGTERM (the kernel's rule
                // for init); Berth's init forwards it, as docker --init does.
                .linux_parameters(aws_sdk_ecs::types::LinuxParameters::builder().init_process_enabled(true).build())
                .stop_timeout(10)
                .build(),
        ],
    )
    .await;
    let arns = run(&ecs, &td, 3).await;
    let mut ports = Vec::new();
    for arn in &arns {
        let t = wait_status(&ecs, arn, "RUNNING", Duration::from_secs(60)).await;
        let c = &t.containers()[0];
        assert_eq!(c.last_status(), Some("RUNNING"));
        let b = &c.network_bindings()[0];
        assert_eq!(b.container_port(), Some(8080));
        ports.push(b.host_port().unwrap());
        assert!(t.pull_started_at().is_some() && t.pull_stopped_at().is_some() && t.started_at().is_some());
    }
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3, "each task has its own host port");
    for p in &ports {
        let mut answer = String::new();
        for _ in 0..50 {
            match http_get(&format!("127.0.0.1:{p}"), "/index.html") {
                Ok(a) if a.contains("hello from berth") => {
                    answer = a;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(answer.contains("200 OK"), "127.0.0.1:{p} answered {answer:?}");
    }

    ecs.stop_task().cluster(CLUSTER).task(&arns[0]).reason("enough").send().await.unwrap();
    let t = wait_status(&ecs, &arns[0], "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("UserInitiated"));
    assert_eq!(t.stopped_reason(), Some("enough"));
    assert_eq!(t.containers()[0].exit_code(), Some(143), "httpd ends on the SIGTERM the init forwarded: 128 + 15");
    assert!(t.stopping_at().is_some() && t.stopped_at().is_some());
    let stopped_port = t.containers()[0].network_bindings().first().and_then(|b| b.host_port());
    if let Some(p) = stopped_port {
        assert!(http_get(&format!("127.0.0.1:{p}"), "/index.html").map(|a| !a.contains("hello")).unwrap_or(true));
    }
}

#[tokio::test]
async fn essential_exit_codes_logs_environment_and_dependency_order() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let env_file = host.data().join("app.env");
    std::fs::write(&env_file, "FROM_FILE=yes\nA=file\n").unwrap();
    let td = register(
        &ecs,
        "batch",
        None,
        vec![
            container("init", &image)
                .essential(false)
                .command("sh")
                .command("-c")
                .command("echo init-ran > /tmp/marker; echo init done")
                .build(),
            container("app", &image)
                .command("sh")
                .command("-c")
                .command("echo \"A=$A FROM_FILE=$FROM_FILE uid=$(id -u) cwd=$(pwd) host=$(hostname)\"; echo oops >&2; exit 3")
                .environment(KeyValuePair::builder().name("A").value("def").build())
                .environment_files(
                    aws_sdk_ecs::types::EnvironmentFile::builder()
                        .value(env_file.to_string_lossy())
                        .r#type(aws_sdk_ecs::types::EnvironmentFileType::S3)
                        .build()
                        .unwrap(),
                )
                .working_directory("/tmp")
                .user("1000")
                .hostname("apphost")
                .depends_on(
                    aws_sdk_ecs::types::ContainerDependency::builder()
                        .container_name("init")
                        .condition(aws_sdk_ecs::types::ContainerCondition::Success)
                        .build()
                        .unwrap(),
                )
                .build(),
        ],
    )
    .await;
    let arn = run(&ecs, &td, 1).await.remove(0);
    let t = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("EssentialContainerExited"), "{t:#?}");
    assert_eq!(t.stopped_reason(), Some("Essential container in task exited"));
    let by_name = |n: &str| t.containers().iter().find(|c| c.name() == Some(n)).unwrap().clone();
    assert_eq!(by_name("app").exit_code(), Some(3));
    assert_eq!(by_name("init").exit_code(), Some(0));
    let logs = host.logs(&arn);
    assert!(logs.contains("init | init done"), "{logs}");
    assert!(logs.contains("app | A=def FROM_FILE=yes uid=1000 cwd=/tmp host=apphost"), "{logs}");
    assert!(logs.contains("app | oops"), "{logs}");
    let init_at = logs.find("init done").unwrap();
    let app_at = logs.find("A=def").unwrap();
    assert!(init_at < app_at, "app started only after init succeeded:\n{logs}");
}

#[tokio::test]
async fn limits_health_checks_stop_timeout_and_oom() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;

    // cpu/memory limits in the cgroups, and a health check going HEALTHY.
    let td = ecs
        .register_task_definition()
        .family("limits")
        .cpu("512")
        .container_definitions(
            container("svc", &image)
                .cpu(256)
                .memory(48)
                .memory_reservation(32)
                .command("sh")
                .command("-c")
                .command("sleep 1; touch /tmp/ok; exec sleep 3600")
                .health_check(
                    HealthCheck::builder()
                        .command("CMD-SHELL")
                        .command("test -f /tmp/ok")
                        .interval(5)
                        .timeout(2)
                        .retries(2)
                        .build()
                        .unwrap(),
                )
                .stop_timeout(2)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition()
        .unwrap()
        .task_definition_arn()
        .unwrap()
        .to_string();
    let arn = run(&ecs, &td, 1).await.remove(0);
    let t = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let task_id = arn.rsplit('/').next().unwrap();
    let cid = t.containers()[0].runtime_id().unwrap().to_string();
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string();
    assert_eq!(read(host.cgroup("memory", &format!("{task_id}/{cid}")).join("memory.limit_in_bytes")), (48u64 << 20).to_string());
    assert_eq!(read(host.cgroup("memory", &format!("{task_id}/{cid}")).join("memory.soft_limit_in_bytes")), (32u64 << 20).to_string());
    assert_eq!(read(host.cgroup("cpu", &format!("{task_id}/{cid}")).join("cpu.shares")), "256");
    let period: u64 = read(host.cgroup("cpu", task_id).join("cpu.cfs_period_us")).parse().unwrap();
    let quota: u64 = read(host.cgroup("cpu", task_id).join("cpu.cfs_quota_us")).parse().unwrap();
    assert_eq!(quota * 1024 / period, 512, "task cpu 512 = half a CPU: quota {quota} period {period}");

    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let t = describe(&ecs, &arn).await;
        if t.containers()[0].health_status().map(|h| h.as_str()) == Some("HEALTHY") {
            assert_eq!(t.health_status().map(|h| h.as_str()), Some("HEALTHY"));
            break;
        }
        assert!(Instant::now() < deadline, "never HEALTHY: {t:#?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // `sleep` as pid 1 ignores SIGTERM: stopTimeout 2 s, then SIGKILL.
    let asked = Instant::now();
    ecs.stop_task().cluster(CLUSTER).task(&arn).send().await.unwrap();
    let t = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert!(asked.elapsed() >= Duration::from_secs(2), "SIGKILL came before stopTimeout");
    assert_eq!(t.containers()[0].exit_code(), Some(137), "{t:#?}");
    assert!(!host.cgroup("memory", task_id).exists(), "the task cgroup is removed");

    // Over the memory limit: the OOM killer, reported as ECS reports it.
    let td = register(
        &ecs,
        "hog",
        None,
        vec![container("hog", &image).memory(16).command("sh").command("-c").command("dd if=/dev/zero of=/dev/null bs=64M count=1").build()],
    )
    .await;
    let arn = run(&ecs, &td, 1).await.remove(0);
    let t = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    let c = &t.containers()[0];
    assert_eq!(c.exit_code(), Some(137), "{t:#?}");
    assert!(c.reason().unwrap_or_default().starts_with("OutOfMemoryError"), "{t:#?}");
}

#[tokio::test]
async fn awsvpc_tasks_are_reachable_at_their_own_address() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let td = register(
        &ecs,
        "vpc",
        Some(NetworkMode::Awsvpc),
        vec![
            container("web", &image)
                .command("httpd")
                .command("-f")
                .command("-p")
                .command("8080")
                .command("-h")
                .command("/www")
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .build(),
        ],
    )
    .await;
    let out = ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition(&td)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(AwsVpcConfiguration::builder().subnets("subnet-0123456789abcdef0").build().unwrap())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let arn = out.tasks()[0].task_arn().unwrap().to_string();
    let t = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let eni = &t.attachments()[0];
    assert_eq!(eni.r#type(), Some("ElasticNetworkInterface"));
    let ip = eni.details().iter().find(|d| d.name() == Some("privateIPv4Address")).and_then(|d| d.value()).expect("an address").to_string();
    assert!(ip.starts_with("172.30."), "{ip}");
    let mut answer = String::new();
    for _ in 0..50 {
        if let Ok(a) = http_get(&format!("{ip}:8080"), "/index.html") {
            answer = a;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.contains("hello from berth"), "{ip}:8080 answered {answer:?}");
}

#[tokio::test]
async fn pull_failures_stop_tasks_with_cannot_pull_container_error() {
    let open = Registry::start().expect("registry");
    let locked = Registry::start_with_basic_auth("alice", "s3cret").expect("registry with auth");
    let missing = format!("{}/demo/nothing:1", open.host());
    let private = busybox_image().push(locked.host(), "demo/private", "1", Some(("alice", "s3cret"))).unwrap().reference;
    let corrupt = busybox_image().file("x", b"x".to_vec(), 0o644).push(open.host(), "demo/corrupt", "1", None).unwrap();
    open.corrupt_blob(corrupt.layer_digests.last().unwrap()).unwrap();

    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    for (family, image, what) in [
        ("missing", missing.as_str(), "not found"),
        ("private", private.as_str(), "auth"),
        ("corrupt", corrupt.reference.as_str(), "digest"),
    ] {
        let td = register(&ecs, family, None, vec![container("c", image).command("true").build()]).await;
        let arn = run(&ecs, &td, 1).await.remove(0);
        let t = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
        assert_eq!(t.stop_code().map(|c| c.as_str()), Some("TaskFailedToStart"), "{what}: {t:#?}");
        let reason = t.stopped_reason().unwrap_or_default();
        assert!(reason.starts_with("CannotPullContainerError"), "{what}: {reason}");
        let c = &t.containers()[0];
        assert!(c.reason().unwrap_or_default().starts_with("CannotPullContainerError"), "{what}: {c:#?}");
        assert_eq!(c.exit_code(), None);
    }
}

#[tokio::test]
async fn a_restarted_agent_re_adopts_its_containers() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let mut host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let td = register(
        &ecs,
        "long",
        None,
        vec![
            container("a", &image).command("sh").command("-c").command("trap 'exit 5' TERM; while true; do sleep 0.2; done").build(),
            container("b", &image).essential(false).command("sh").command("-c").command("sleep 4; exit 9").build(),
        ],
    )
    .await;
    let arn = run(&ecs, &td, 1).await.remove(0);
    wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;

    host.server.kill9();
    // Container b ends while no agent runs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    host.server.restart();
    let ecs = host.ecs();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = describe(&ecs, &arn).await;
        let b = t.containers().iter().find(|c| c.name() == Some("b")).unwrap();
        if b.exit_code() == Some(9) {
            assert_eq!(t.last_status(), Some("RUNNING"), "a still runs");
            break;
        }
        assert!(Instant::now() < deadline, "b's exit while the agent was down never reported: {t:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ecs.stop_task().cluster(CLUSTER).task(&arn).send().await.unwrap();
    let t = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    let a = t.containers().iter().find(|c| c.name() == Some("a")).unwrap();
    assert_eq!(a.exit_code(), Some(5), "the re-adopted container got SIGTERM from the new agent: {t:#?}");
    let ci = ecs.list_container_instances().cluster(CLUSTER).send().await.unwrap();
    assert_eq!(ci.container_instance_arns().len(), 1, "the host kept its container instance");
}

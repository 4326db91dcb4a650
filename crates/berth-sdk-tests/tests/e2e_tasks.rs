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
mod e2e_support;

use aws_sdk_ecs::types::{AwsVpcConfiguration, HealthCheck, KeyValuePair, NetworkConfiguration, NetworkMode};
use berth_testkit::{Registry, busybox_image};
use e2e_support::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[tokio::test]
async fn web_tasks_serve_http_on_dynamic_host_ports_and_stop_as_user_initiated() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let td = register(&ecs, "web", None, vec![httpd_container(&image, 10)]).await;
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
    let td = register(&ecs, "vpc", Some(NetworkMode::Awsvpc), vec![httpd_container(&image, 10)]).await;
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

#[tokio::test]
async fn host_and_none_network_modes() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;

    // host: the container binds the host's own port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let td = register(
        &ecs,
        "hostnet",
        Some(NetworkMode::Host),
        vec![
            container("web", &image)
                .command("httpd")
                .command("-f")
                .command("-p")
                .command(port.to_string())
                .command("-h")
                .command("/www")
                .port_mappings(aws_sdk_ecs::types::PortMapping::builder().container_port(port as i32).host_port(port as i32).build())
                .linux_parameters(aws_sdk_ecs::types::LinuxParameters::builder().init_process_enabled(true).build())
                .stop_timeout(5)
                .build(),
        ],
    )
    .await;
    let arn = run(&ecs, &td, 1).await.remove(0);
    let t = wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    assert_eq!(t.containers()[0].network_bindings()[0].host_port(), Some(port as i32));
    let mut answer = String::new();
    for _ in 0..50 {
        if let Ok(a) = http_get(&format!("127.0.0.1:{port}"), "/index.html") {
            answer = a;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.contains("hello from berth"), "host-mode httpd on {port}: {answer:?}");
    ecs.stop_task().cluster(CLUSTER).task(&arn).send().await.unwrap();
    wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;

    // none: only loopback in the task's namespace.
    let td = register(
        &ecs,
        "nonet",
        Some(NetworkMode::None),
        vec![container("probe", &image).command("sh").command("-c").command("cat /proc/net/dev").build()],
    )
    .await;
    let arn = run(&ecs, &td, 1).await.remove(0);
    let t = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
    assert_eq!(t.containers()[0].exit_code(), Some(0), "{t:#?}");
    let logs = host.logs(&arn);
    assert!(logs.contains("lo:"), "{logs}");
    assert!(!logs.contains("eth0"), "a none-mode task has no interface but loopback: {logs}");
}

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

use aws_sdk_ecs::types::{PlacementStrategy, PlacementStrategyType};
use berth_testkit::busybox_image;
use common::BerthServer;
use e2e_support::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

async fn wait_connected(ecs: &aws_sdk_ecs::Client, az: &str, connected: bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let all = list_instances(ecs).await;
        if all.iter().any(|ci| instance_az(ci) == az && ci.agent_connected() == connected) {
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
    let a = NsMachine::new(link.third_octet, 0);
    let b = NsMachine::new(link.third_octet, 1);
    let server = BerthServer::start_on(&a.host_ip);
    let ecs = server.ecs_client();
    ecs.create_cluster().cluster_name(CLUSTER).send().await.unwrap();
    let (ip_a, ip_b) = (a.ip.clone(), b.ip.clone());
    let agent_a = NsAgent::start(&server, a, "us-east-1a", &archive, &image);
    let _agent_b = NsAgent::start(&server, b, "us-east-1b", &archive, &image);

    let deadline = Instant::now() + Duration::from_secs(60);
    while list_instances(&ecs).await.len() < 2 {
        assert!(Instant::now() < deadline, "both agents never registered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let by_arn: HashMap<String, String> =
        list_instances(&ecs).await.iter().map(|ci| (ci.container_instance_arn().unwrap().to_string(), instance_az(ci))).collect();
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

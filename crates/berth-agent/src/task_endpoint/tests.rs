use super::handler::{Reply, handle};
use super::metadata::task_meta;
use super::registry::{EndpointRegistry, HostInfo, TaskMeta};
use super::stats::{CgroupV1Stats, StatsSource, parse_net_dev};
use crate::plan::{desired_for_tests, plan};
use crate::state::{ContainerPhase, ContainerRecord, Phase, TaskRecord};
use berth_agent_protocol::{RoleCredentials, TaskCredentials};
use berth_net::{NetworkMode, TaskNetwork};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

const ARN: &str = "arn:aws:ecs:us-east-1:123456789012:task/demo/0123456789abcdef0123456789abcdef";
const TASK_IP: &str = "172.29.0.7";

struct NoStats;
impl StatsSource for NoStats {
    fn container_stats(&self, _: &TaskMeta, c: &super::registry::ContainerMeta) -> Option<Value> {
        Some(json!({"id": c.runtime_id}))
    }
}

fn role() -> RoleCredentials {
    RoleCredentials {
        role_arn: "arn:aws:iam::123456789012:role/app".into(),
        access_key_id: "ASIAEXAMPLE".into(),
        secret_access_key: "secret".into(),
        session_token: "token".into(),
        expiration: "2026-11-24T18:00:00Z".into(),
    }
}

fn td(mode: &str) -> Value {
    json!({
        "family": "web", "revision": 3, "networkMode": mode, "cpu": "512", "memory": "256",
        "taskRoleArn": "arn:aws:iam::123456789012:role/app",
        "containerDefinitions": [
            {"name": "app", "image": "busybox", "cpu": 128, "memory": 64,
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
             "healthCheck": {"command": ["CMD", "true"]}},
            {"name": "side", "image": "busybox:1"}
        ]
    })
}

/// A running task of two containers, with credentials, in `mode`.
fn record(mode: &str) -> TaskRecord {
    let mut desired = desired_for_tests(ARN, td(mode), None);
    desired.credentials = Some(TaskCredentials {
        credentials_id: "cred-id-1".into(),
        task_role: Some(role()),
        execution_role: None,
        error: None,
    });
    let mut record = crate::worker::new_record(desired, "boot");
    record.phase = Phase::Running;
    record.pull_started_at = Some(1_795_000_000.0);
    record.pull_stopped_at = Some(1_795_000_001.5);
    for (i, c) in record.containers.iter_mut().enumerate() {
        c.phase = ContainerPhase::Running;
        c.started_at = Some(1_795_000_002.0);
        c.image_digest = Some(format!("sha256:{i:064}"));
        c.endpoint_id = format!("key-{}", c.name);
    }
    record
}

fn network(mode: NetworkMode) -> TaskNetwork {
    TaskNetwork {
        task_id: "t".into(),
        mode,
        netns_path: None,
        ipv4: (mode != NetworkMode::Host).then(|| TASK_IP.parse().unwrap()),
        prefix_len: Some(16),
        gateway: Some("172.29.0.1".parse().unwrap()),
        mac: Some("0a:58:ac:1d:00:07".into()),
        veth_host_name: None,
        bridge: None,
    }
}

/// A registry serving `record` as its worker and the poll would leave it.
fn registry_for(record: &TaskRecord, mode: NetworkMode, pids: &HashMap<String, u32>) -> EndpointRegistry {
    let reg = EndpointRegistry::new(HostInfo { cluster: "demo".into(), availability_zone: "us-east-1a".into() });
    let p = plan(&record.desired).unwrap();
    let net = network(mode);
    reg.publish_task(task_meta(record, Some(&p), Some(&net), pids, &|id| format!("/berth/t/{id}")));
    let mut answer = record.desired.clone();
    answer.credentials.as_mut().unwrap().task_role = Some(role());
    reg.set_credentials(&[answer]);
    reg
}

fn get(reg: &EndpointRegistry, peer: &str, path: &str) -> Reply {
    handle(&reg.view(), &NoStats, peer.parse::<IpAddr>().unwrap(), "GET", path)
}

fn not_found_body() -> Value {
    json!({"code": "InvalidIdInRequest", "message": "CredentialsV2Request: Credentials not found", "HTTPErrorCode": 400})
}

#[test]
fn credentials_are_served_to_the_owning_task_in_the_ecs_agent_shape() {
    let r = record("bridge");
    let reg = registry_for(&r, NetworkMode::Bridge, &HashMap::new());
    let reply = get(&reg, TASK_IP, "/v2/credentials/cred-id-1");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({"RoleArn": "arn:aws:iam::123456789012:role/app", "AccessKeyId": "ASIAEXAMPLE",
               "SecretAccessKey": "secret", "Token": "token", "Expiration": "2026-11-24T18:00:00Z"})
    );
    let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"]);
}

#[test]
fn unknown_ids_and_other_peers_get_the_same_not_found() {
    let r = record("awsvpc");
    let reg = registry_for(&r, NetworkMode::Awsvpc, &HashMap::new());
    for (peer, path) in [
        (TASK_IP, "/v2/credentials/nope"),
        ("172.29.0.8", "/v2/credentials/cred-id-1"),
        ("127.0.0.1", "/v2/credentials/cred-id-1"),
    ] {
        let reply = get(&reg, peer, path);
        assert_eq!((reply.status, &reply.body), (400, &not_found_body()), "{peer} {path}");
    }
    assert_eq!(get(&reg, "::ffff:172.29.0.7", "/v2/credentials/cred-id-1").status, 200, "IPv4-mapped peers are the same address");
    let reply = get(&reg, TASK_IP, "/v2/credentials/");
    assert_eq!(reply.body["code"], "NoIdInRequest");
    assert_eq!(handle(&reg.view(), &NoStats, TASK_IP.parse().unwrap(), "POST", "/v2/credentials/cred-id-1").status, 405);
}

#[test]
fn host_mode_tasks_are_protected_by_the_id_alone_and_none_mode_not_at_all() {
    let r = record("host");
    let reg = registry_for(&r, NetworkMode::Host, &HashMap::new());
    assert_eq!(get(&reg, "10.0.0.5", "/v2/credentials/cred-id-1").status, 200);
    assert_eq!(get(&reg, "10.0.0.5", "/v2/credentials/cred-id-2").status, 400);
    let r = record("none");
    let reg = registry_for(&r, NetworkMode::None, &HashMap::new());
    assert_eq!(get(&reg, "127.0.0.1", "/v2/credentials/cred-id-1").status, 400);
}

#[test]
fn credentials_follow_each_poll_answer() {
    let r = record("bridge");
    let reg = registry_for(&r, NetworkMode::Bridge, &HashMap::new());
    let mut stopping = r.desired.clone();
    stopping.desired_status = "STOPPED".into();
    reg.set_credentials(&[stopping]);
    assert_eq!(get(&reg, TASK_IP, "/v2/credentials/cred-id-1").status, 400, "a task desired STOPPED loses its credentials");
    let mut back = r.desired.clone();
    back.credentials.as_mut().unwrap().task_role = Some(RoleCredentials { access_key_id: "ASIANEW".into(), ..role() });
    reg.set_credentials(std::slice::from_ref(&back));
    assert_eq!(get(&reg, TASK_IP, "/v2/credentials/cred-id-1").body["AccessKeyId"], "ASIANEW");
    reg.set_credentials(&[]);
    assert_eq!(get(&reg, TASK_IP, "/v2/credentials/cred-id-1").status, 400, "a task no longer listed loses its credentials");
    // Credentials without metadata (the worker has not published yet): no
    // owner address to check, so nothing is served.
    let empty = EndpointRegistry::new(HostInfo { cluster: "demo".into(), availability_zone: "a".into() });
    empty.set_credentials(&[back]);
    assert_eq!(get(&empty, TASK_IP, "/v2/credentials/cred-id-1").status, 400);
}

#[test]
fn the_worker_record_never_holds_role_sessions() {
    let r = record("bridge");
    let creds = r.desired.credentials.as_ref().unwrap();
    assert_eq!(creds.credentials_id, "cred-id-1");
    assert!(creds.task_role.is_none() && creds.execution_role.is_none());
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("secret") && !text.contains("ASIAEXAMPLE"), "{text}");
}

#[test]
fn container_environment_points_at_the_endpoint() {
    let r = record("bridge");
    let env: HashMap<String, String> = super::env::container_env(&r.desired, "key-app").into_iter().collect();
    assert_eq!(env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], "/v2/credentials/cred-id-1");
    assert_eq!(env["ECS_CONTAINER_METADATA_URI_V4"], "http://169.254.170.2/v4/key-app");
    assert_eq!(env["ECS_CONTAINER_METADATA_URI"], "http://169.254.170.2/v3/key-app");
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_ECS_EC2");
    let mut no_role = r.desired.clone();
    no_role.task_definition.as_object_mut().unwrap().remove("taskRoleArn");
    let env: HashMap<String, String> = super::env::container_env(&no_role, "k").into_iter().collect();
    assert!(!env.contains_key("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"));
    assert!(env.contains_key("ECS_CONTAINER_METADATA_URI_V4"));
}

#[test]
fn metadata_v4_shapes_for_a_task_of_two_containers() {
    let r = record("awsvpc");
    let reg = registry_for(&r, NetworkMode::Awsvpc, &HashMap::new());
    let reply = get(&reg, TASK_IP, "/v4/key-app/task");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let t = &reply.body;
    assert_eq!(t["Cluster"], "arn:aws:ecs:us-east-1:123456789012:cluster/demo");
    assert_eq!(t["TaskARN"], ARN);
    assert_eq!((t["Family"].as_str(), t["Revision"].as_str()), (Some("web"), Some("3")));
    assert_eq!((t["DesiredStatus"].as_str(), t["KnownStatus"].as_str()), (Some("RUNNING"), Some("RUNNING")));
    assert_eq!(t["Limits"], json!({"CPU": 0.5, "Memory": 256}));
    assert_eq!(t["PullStartedAt"], "2026-11-18T11:06:40Z");
    assert_eq!(t["PullStoppedAt"], "2026-11-18T11:06:41.5Z");
    assert_eq!((t["AvailabilityZone"].as_str(), t["LaunchType"].as_str()), (Some("us-east-1a"), Some("EC2")));
    let containers = t["Containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    let app = &containers[0];
    for key in [
        "DockerId", "Name", "DockerName", "Image", "ImageID", "Labels", "DesiredStatus", "KnownStatus", "Limits", "CreatedAt",
        "StartedAt", "Type", "ContainerARN", "LogDriver", "LogOptions", "Networks", "Health",
    ] {
        assert!(app.get(key).is_some(), "{key} missing from {app:#}");
    }
    assert_eq!(app["DockerId"], format!("{}-0", crate::plan::task_id(ARN)));
    assert_eq!((app["Name"].as_str(), app["Image"].as_str(), app["Type"].as_str()), (Some("app"), Some("busybox"), Some("NORMAL")));
    assert_eq!(app["Labels"]["com.amazonaws.ecs.task-definition-version"], "3");
    assert_eq!(app["Labels"]["com.amazonaws.ecs.container-name"], "app");
    assert_eq!(app["Labels"]["com.amazonaws.ecs.task-arn"], ARN);
    assert_eq!(app["Limits"], json!({"CPU": 128.0, "Memory": 64}));
    assert_eq!(containers[1]["Limits"], json!({"CPU": 2.0, "Memory": 0}), "cpu 0 shows as ECS's floor of 2");
    assert_eq!(app["LogOptions"], json!({"max-size": "10m"}));
    assert_eq!(app["Health"], json!({"status": "UNKNOWN"}));
    let net = &app["Networks"][0];
    assert_eq!(net["NetworkMode"], "awsvpc");
    assert_eq!(net["IPv4Addresses"], json!([TASK_IP]));
    assert_eq!(net["IPv4SubnetCIDRBlock"], "172.29.0.0/16");
    assert_eq!(net["SubnetGatewayIpv4Address"], "172.29.0.1/16");
    assert_eq!(net["MACAddress"], "0a:58:ac:1d:00:07");

    let own = get(&reg, TASK_IP, "/v4/key-side");
    assert_eq!(own.body, containers[1], "a container's own metadata is its entry of the task's");
    assert_eq!(get(&reg, TASK_IP, "/v3/key-side").body, containers[1], "v3 serves the same shapes");

    let stats = get(&reg, TASK_IP, "/v4/key-app/task/stats").body;
    let ids: Vec<&String> = stats.as_object().unwrap().keys().collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(get(&reg, TASK_IP, "/v4/key-app/stats").body["id"], app["DockerId"]);

    let refused = get(&reg, "172.29.0.9", "/v4/key-app/task");
    assert_eq!(refused.status, 404);
    assert_eq!(
        refused.body,
        json!("V4 task metadata handler: unable to get task arn from request: unable to get task Arn from v3 endpoint ID: key-app")
    );
    let unknown = get(&reg, TASK_IP, "/v4/other");
    assert_eq!(
        unknown.body,
        json!("V4 container metadata handler: unable to get container ID from request: unable to get docker ID from v3 endpoint ID: other")
    );
    assert_eq!(get(&reg, TASK_IP, "/v4/key-app/nope").status, 404);
}

#[test]
fn bridge_ports_are_the_published_ones() {
    let mut r = record("bridge");
    r.desired.host_ports = vec![berth_agent_protocol::AssignedPort {
        container_name: "app".into(),
        container_port: 8080,
        host_port: 49160,
        protocol: "tcp".into(),
    }];
    let reg = registry_for(&r, NetworkMode::Bridge, &HashMap::new());
    let app = get(&reg, TASK_IP, "/v4/key-app").body;
    assert_eq!(app["Ports"], json!([{"ContainerPort": 8080, "Protocol": "tcp", "HostPort": 49160, "HostIp": "0.0.0.0"}]));
    assert_eq!(app["Networks"], json!([{"NetworkMode": "bridge", "IPv4Addresses": [TASK_IP]}]));
}

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn stats_in_dockers_shape_from_cgroup_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cg, proc) = (dir.path().join("cgroup"), dir.path().join("proc"));
    let r = record("bridge");
    let id = r.containers[0].runtime_id.clone();
    let path = format!("berth/t/{id}");
    write(&cg, &format!("memory/{path}/memory.usage_in_bytes"), "1048576\n");
    write(&cg, &format!("memory/{path}/memory.max_usage_in_bytes"), "2097152\n");
    write(&cg, &format!("memory/{path}/memory.limit_in_bytes"), "67108864\n");
    write(&cg, &format!("memory/{path}/memory.stat"), "cache 4096\nrss 8192\n");
    write(&cg, &format!("cpu,cpuacct/{path}/cpuacct.usage"), "123456789\n");
    write(&cg, &format!("cpu,cpuacct/{path}/cpuacct.usage_percpu"), "100000000 23456789 \n");
    write(&cg, &format!("cpu,cpuacct/{path}/cpuacct.stat"), "user 7\nsystem 3\n");
    write(&cg, &format!("cpu,cpuacct/{path}/cpu.stat"), "nr_periods 10\nnr_throttled 2\nthrottled_time 500\n");
    write(&cg, &format!("pids/{path}/pids.current"), "3\n");
    write(&proc, "stat", "cpu  100 0 50 850 0 0 0 0 0 0\ncpu0 50 0 25 425 0 0 0 0 0 0\ncpu1 50 0 25 425 0 0 0 0 0 0\nintr 1\n");
    write(
        &proc,
        "4242/net/dev",
        "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n",
    );
    let pids = HashMap::from([("app".to_string(), 4242u32)]);
    let reg = registry_for(&r, NetworkMode::Bridge, &pids);
    let clock = Arc::new(berth_clock::FakeClock::at_epoch_secs(1_795_000_000));
    let stats = CgroupV1Stats::new(&cg, &proc, clock.clone());
    let reply = handle(&reg.view(), &stats, TASK_IP.parse().unwrap(), "GET", "/v4/key-app/stats");
    assert_eq!(reply.status, 200);
    let s = reply.body;
    assert_eq!(s["read"], "2026-11-18T11:06:40Z");
    assert_eq!(s["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(s["memory_stats"], json!({"usage": 1048576, "max_usage": 2097152, "stats": {"cache": 4096, "rss": 8192}, "limit": 67108864}));
    assert_eq!(s["cpu_stats"]["cpu_usage"]["total_usage"], 123456789);
    assert_eq!(s["cpu_stats"]["cpu_usage"]["percpu_usage"], json!([100000000u64, 23456789u64]));
    assert_eq!(s["cpu_stats"]["cpu_usage"]["usage_in_usermode"], 70_000_000);
    assert_eq!(s["cpu_stats"]["system_cpu_usage"], 1000u64 * 10_000_000);
    assert_eq!(s["cpu_stats"]["online_cpus"], 2);
    assert_eq!(s["cpu_stats"]["throttling_data"], json!({"periods": 10, "throttled_periods": 2, "throttled_time": 500}));
    assert_eq!(s["pids_stats"], json!({"current": 3}));
    assert_eq!(
        s["networks"],
        json!({"eth0": {"rx_bytes": 5000, "rx_packets": 40, "rx_errors": 1, "rx_dropped": 2, "tx_bytes": 3000, "tx_packets": 30, "tx_errors": 3, "tx_dropped": 4}})
    );
    assert_eq!(s["id"], id);
    // The second read carries the first as its previous sample.
    clock.advance(std::time::Duration::from_secs(1));
    let again = handle(&reg.view(), &stats, TASK_IP.parse().unwrap(), "GET", "/v4/key-app/stats").body;
    assert_eq!(again["preread"], "2026-11-18T11:06:40Z");
    assert_eq!(again["precpu_stats"], s["cpu_stats"]);
    // Before the worker knows the pid, the cgroup's first process stands in.
    let side = &r.containers[1].runtime_id;
    write(&cg, &format!("memory/berth/t/{side}/memory.usage_in_bytes"), "1\n");
    write(&cg, &format!("memory/berth/t/{side}/cgroup.procs"), "4242\n4243\n");
    let side_stats = handle(&reg.view(), &stats, TASK_IP.parse().unwrap(), "GET", "/v4/key-side/stats").body;
    assert_eq!(side_stats["networks"]["eth0"]["rx_bytes"], 5000);
    std::fs::remove_dir_all(cg.join(format!("memory/berth/t/{side}"))).unwrap();
    // A container whose cgroup is gone has null stats in the task's map.
    let task = handle(&reg.view(), &stats, TASK_IP.parse().unwrap(), "GET", "/v4/key-app/task/stats").body;
    assert_eq!(task[&r.containers[1].runtime_id], Value::Null);
    assert!(task[&id].is_object());
}

#[test]
fn net_dev_skips_loopback_and_headers() {
    let m = parse_net_dev("h1\nh2\n lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n");
    assert!(m.is_empty());
}

#[test]
fn ids_look_like_uuids_and_differ() {
    let (a, b) = (super::new_id(), super::new_id());
    assert_ne!(a, b);
    let parts: Vec<&str> = a.split('-').collect();
    assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
    assert!(parts[2].starts_with('4'));
    assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
}

#[test]
fn records_without_endpoint_ids_still_read() {
    let c: ContainerRecord = serde_json::from_value(json!({"name": "a", "runtimeId": "t-0", "phase": "RUNNING"})).unwrap();
    assert_eq!(c.endpoint_id, "");
}

#[tokio::test]
async fn serves_http_on_a_socket_with_the_peer_address_of_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host_task = record("host");
    let reg = Arc::new(registry_for(&host_task, NetworkMode::Host, &HashMap::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(super::serve(listener, reg.clone(), Arc::new(NoStats)));
    let get = |path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 169.254.170.2\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let ok = get("/v2/credentials/cred-id-1").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("application/json") && ok.contains("\"Token\":\"token\""), "{ok}");
    let refused = get("/v2/credentials/other").await;
    assert!(refused.starts_with("HTTP/1.1 400") && refused.contains("InvalidIdInRequest"), "{refused}");

    // The same task in bridge mode is not served to 127.0.0.1, the
    // connection's peer here.
    let bridge = record("bridge");
    let p = plan(&bridge.desired).unwrap();
    reg.publish_task(task_meta(&bridge, Some(&p), Some(&network(NetworkMode::Bridge)), &HashMap::new(), &|id| id.to_string()));
    let meta = get("/v4/key-app/task").await;
    assert!(meta.starts_with("HTTP/1.1 404"), "{meta}");
    assert!(get("/v2/credentials/cred-id-1").await.starts_with("HTTP/1.1 400"));
    server.abort();
}

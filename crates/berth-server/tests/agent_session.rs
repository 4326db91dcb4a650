//! A simulated agent against the in-process front door (MemoryStore +
//! FakeClock): registration, the long poll, RunTask placement, state
//! reports, StopTask fencing and liveness.

use berth_clock::{Clock, FakeClock};
use berth_server::FrontDoor;
use berth_server::credentials::{self, Overrides};
use berth_sigv4::signer::{self, Credentials, SigningParams};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const AKID: &str = "AKIAAGENTSESSIONTEST";
const SECRET: &str = "agent-session-test-secret-key-0123456789";

struct Door {
    door: Arc<FrontDoor>,
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

fn door() -> Door {
    let dir = tempfile::tempdir().unwrap();
    let identity = credentials::load_or_create(
        dir.path(),
        &Overrides {
            account_id: Some("123456789012".into()),
            root_access_key_id: Some(AKID.into()),
            root_secret_access_key: Some(SECRET.into()),
        },
    )
    .unwrap();
    let clock = Arc::new(FakeClock::at_epoch_secs(1_795_000_000));
    let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::memory::MemoryStore::new());
    let iam = berth_iam::Iam::with_state(store.clone(), identity.account_id.clone(), berth_iam::MasterKey::generate(), Default::default(), 0);
    let ecs = berth_ecs::Ecs::new(store).with_poll_hold(Duration::from_millis(300));
    let door = Arc::new(FrontDoor::new(identity, ecs, iam, clock.clone(), 1 << 20));
    Door { door, clock, _dir: dir }
}

fn signed(d: &Door, path: &str, target: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("10.1.2.3:4566"));
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    if let Some(t) = target {
        headers.insert("x-amz-target", HeaderValue::from_str(t).unwrap());
    }
    let params = SigningParams {
        credentials: Credentials { access_key_id: AKID, secret_access_key: SECRET, session_token: None },
        region: "us-east-1",
        service: "ecs",
        time: d.clock.now(),
    };
    signer::sign("POST", path, "", &mut headers, body.as_bytes(), &params).unwrap();
    let mut req = Request::builder().method("POST").uri(path);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn send(d: &Door, req: Request<Full<Bytes>>) -> (u16, Value) {
    let resp = d.door.handle(req).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn ecs(d: &Door, op: &str, body: Value) -> Value {
    let target = format!("AmazonEC2ContainerServiceV20141113.{op}");
    let (status, out) = send(d, signed(d, "/", Some(&target), &body.to_string())).await;
    assert_eq!(status, 200, "{op}: {out}");
    out
}

async fn poll(d: &Door, arn: &str, known: Option<u64>) -> berth_agent_protocol::PollResponse {
    let req = berth_agent_protocol::PollRequest { cluster: "sim".into(), container_instance_arn: arn.into(), known_version: known };
    let (status, out) = send(d, signed(d, berth_agent_protocol::POLL_PATH, None, &serde_json::to_string(&req).unwrap())).await;
    assert_eq!(status, 200, "{out}");
    serde_json::from_value(out).unwrap()
}

async fn register(d: &Door, mem: i64) -> String {
    let out = ecs(d, "RegisterContainerInstance", json!({
        "cluster": "sim",
        "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": mem},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}
        ],
        "versionInfo": {"agentVersion": "0.1.0"},
        "attributes": [{"name": "ecs.os-type", "value": "linux"}]
    })).await;
    out["containerInstance"]["containerInstanceArn"].as_str().unwrap().to_string()
}

async fn instance(d: &Door, arn: &str) -> Value {
    ecs(d, "DescribeContainerInstances", json!({"cluster": "sim", "containerInstances": [arn]})).await["containerInstances"][0].clone()
}

#[tokio::test]
async fn simulated_agents_run_and_stop_tasks() {
    let d = door();
    ecs(&d, "CreateCluster", json!({"clusterName": "sim"})).await;
    ecs(&d, "RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 256, "portMappings": [{"containerPort": 8080}]}]})).await;
    let a = register(&d, 1024).await;
    let b = register(&d, 1024).await;

    let ep = ecs(&d, "DiscoverPollEndpoint", json!({"cluster": "sim", "containerInstance": a})).await;
    assert_eq!(ep["endpoint"], "http://10.1.2.3:4566/");

    let pa = poll(&d, &a, None).await;
    let pb = poll(&d, &b, None).await;
    assert!(pa.desired.tasks.is_empty() && pb.desired.tasks.is_empty());

    let run = ecs(&d, "RunTask", json!({"cluster": "sim", "taskDefinition": "web", "count": 3,
        "placementStrategy": [{"type": "spread", "field": "instanceId"}]})).await;
    let tasks = run["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    let mut per: HashMap<String, Vec<String>> = HashMap::new();
    for t in tasks {
        per.entry(t["containerInstanceArn"].as_str().unwrap().into()).or_default().push(t["taskArn"].as_str().unwrap().into());
    }
    let mut sizes: Vec<usize> = per.values().map(Vec::len).collect();
    sizes.sort();
    assert_eq!(sizes, vec![1, 2]);

    // Each agent's poll sees exactly its tasks.
    let na = poll(&d, &a, Some(pa.version)).await;
    let nb = poll(&d, &b, Some(pb.version)).await;
    assert_eq!(na.desired.tasks.len(), per[&a].len());
    assert_eq!(nb.desired.tasks.len(), per[&b].len());
    let busy = if per[&a].len() == 2 { &a } else { &b };
    let busy_poll = if busy == &a { na.clone() } else { nb.clone() };
    let ci = instance(&d, busy).await;
    assert_eq!(ci["remainingResources"][1]["integerValue"], 1024 - 512);

    // The agent starts one task and reports it.
    let t = &busy_poll.desired.tasks[0];
    let hp = t.host_ports[0].host_port;
    ecs(&d, "SubmitTaskStateChange", json!({"cluster": "sim", "task": t.task_arn, "status": "RUNNING",
        "containers": [{"containerName": "web", "status": "RUNNING", "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": hp, "protocol": "tcp"}]}]})).await;
    let desc = ecs(&d, "DescribeTasks", json!({"cluster": "sim", "tasks": [t.task_arn]})).await;
    assert_eq!(desc["tasks"][0]["lastStatus"], "RUNNING");
    assert_eq!(desc["tasks"][0]["containers"][0]["networkBindings"][0]["hostPort"], hp);
    assert_eq!(instance(&d, busy).await["runningTasksCount"], 1);
    let cl = ecs(&d, "DescribeClusters", json!({"clusters": ["sim"]})).await;
    assert_eq!(cl["clusters"][0]["runningTasksCount"], 1);
    assert_eq!(cl["clusters"][0]["pendingTasksCount"], 2);
    assert_eq!(cl["clusters"][0]["registeredContainerInstancesCount"], 2);

    // StopTask → the next poll wants it STOPPED → the agent reports STOPPED.
    ecs(&d, "StopTask", json!({"cluster": "sim", "task": t.task_arn, "reason": "done"})).await;
    let after = poll(&d, busy, Some(busy_poll.version)).await;
    assert!(after.version > busy_poll.version);
    let dt = after.desired.tasks.iter().find(|x| x.task_arn == t.task_arn).unwrap();
    assert_eq!(dt.desired_status, "STOPPED");
    ecs(&d, "SubmitTaskStateChange", json!({"cluster": "sim", "task": t.task_arn, "status": "STOPPED",
        "containers": [{"containerName": "web", "status": "STOPPED", "exitCode": 143}]})).await;
    let desc = ecs(&d, "DescribeTasks", json!({"cluster": "sim", "tasks": [t.task_arn]})).await;
    assert_eq!(desc["tasks"][0]["lastStatus"], "STOPPED");
    assert_eq!(desc["tasks"][0]["stopCode"], "UserInitiated");
    assert_eq!(desc["tasks"][0]["containers"][0]["exitCode"], 143);
    assert_eq!(instance(&d, busy).await["remainingResources"][1]["integerValue"], 1024 - 256);
    let fin = poll(&d, busy, Some(after.version)).await;
    assert!(fin.desired.tasks.iter().all(|x| x.task_arn != t.task_arn));

    // Memory and ports run out: failures name every instance.
    let big = ecs(&d, "RunTask", json!({"cluster": "sim", "taskDefinition": "web", "count": 10})).await;
    assert_eq!(big["tasks"].as_array().unwrap().len(), 8 - 2);
    let reasons: Vec<&str> = big["failures"].as_array().unwrap().iter().map(|f| f["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["RESOURCE:MEMORY", "RESOURCE:MEMORY"]);
    ecs(&d, "RegisterTaskDefinition", json!({"family": "ssh", "containerDefinitions": [
        {"name": "s", "image": "busybox", "memory": 6, "portMappings": [{"containerPort": 22, "hostPort": 22}]}]})).await;
    let c = register(&d, 1024).await;
    let ports = ecs(&d, "RunTask", json!({"cluster": "sim", "taskDefinition": "ssh"})).await;
    assert_eq!(ports["tasks"], json!([]));
    let on_c = ports["failures"].as_array().unwrap().iter().find(|f| f["arn"] == c.as_str()).unwrap();
    assert_eq!(on_c["reason"], "RESOURCE:PORTS");
}

#[tokio::test]
async fn silent_agent_is_disconnected_and_skipped() {
    let d = door();
    ecs(&d, "CreateCluster", json!({"clusterName": "sim"})).await;
    ecs(&d, "RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}]})).await;
    let a = register(&d, 1024).await;
    let b = register(&d, 1024).await;
    assert_eq!(instance(&d, &a).await["agentConnected"], true);
    // Only b keeps polling.
    for _ in 0..3 {
        d.clock.advance(Duration::from_secs(5));
        poll(&d, &b, None).await;
    }
    assert_eq!(instance(&d, &a).await["agentConnected"], false);
    assert_eq!(instance(&d, &b).await["agentConnected"], true);
    let run = ecs(&d, "RunTask", json!({"cluster": "sim", "taskDefinition": "web", "count": 4})).await;
    for t in run["tasks"].as_array().unwrap() {
        assert_eq!(t["containerInstanceArn"], b.as_str());
    }
    let listed = ecs(&d, "ListContainerInstances", json!({"cluster": "sim", "filter": "agentConnected == false"})).await;
    assert_eq!(listed["containerInstanceArns"], json!([a]));
}

#[tokio::test]
async fn poll_errors_are_ecs_errors() {
    let d = door();
    let (status, out) = send(&d, signed(&d, berth_agent_protocol::POLL_PATH, None, "{\"cluster\": 5}")).await;
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "SerializationException");
    let req = json!({"cluster": "sim", "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/sim/abc"});
    let (status, out) = send(&d, signed(&d, berth_agent_protocol::POLL_PATH, None, &req.to_string())).await;
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "InvalidParameterException");
}

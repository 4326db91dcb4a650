use super::*;
use crate::container_instances::tests::{cluster, register_instance};
use crate::test_support::{body, code, ctx, store};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn td(s: &dyn Store, family: &str, extra: Value) {
    let mut b = json!({"family": family, "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 256, "cpu": 128,
        "portMappings": [{"containerPort": 8080}]}]});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            b[k] = v;
        }
    }
    crate::task_definitions::register(s, &ctx(), body(b)).await.unwrap();
}

async fn run(s: &dyn Store, l: &Liveness, b: Value) -> EcsResult<Value> {
    run_task(s, l, &ctx(), body(b)).await
}

async fn setup(n: usize, mem: i64) -> (Arc<dyn Store>, Liveness, Vec<String>) {
    let s = store();
    let l = Liveness::default();
    cluster(s.as_ref(), "c").await;
    td(s.as_ref(), "web", json!({})).await;
    let mut arns = Vec::new();
    for _ in 0..n {
        arns.push(register_instance(s.as_ref(), &l, "c", 1024, mem, json!({})).await);
    }
    (s, l, arns)
}

async fn instance(s: &dyn Store, l: &Liveness, arn: &str) -> Value {
    let d = container_instances::describe(s, l, &ctx(), body(json!({"cluster": "c", "containerInstances": [arn]})))
        .await
        .unwrap();
    d["containerInstances"][0].clone()
}

async fn report(s: &dyn Store, l: &Liveness, task: &str, b: Value) -> Value {
    let mut b = b;
    b["cluster"] = json!("c");
    b["task"] = json!(task);
    submit_task_state_change(s, l, &ctx(), body(b)).await.unwrap()
}

async fn describe_one(s: &dyn Store, task: &str) -> Value {
    describe(s, &ctx(), body(json!({"cluster": "c", "tasks": [task], "include": ["TAGS"]}))).await.unwrap()["tasks"][0].clone()
}

#[tokio::test]
async fn run_task_spreads_and_accounts_resources() {
    let (s, l, arns) = setup(2, 2048).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web", "count": 3,
        "placementStrategy": [{"type": "spread", "field": "instanceId"}], "startedBy": "me",
        "tags": [{"key": "a", "value": "b"}]})).await.unwrap();
    let tasks = out["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 3);
    assert_eq!(out["failures"], json!([]));
    let mut per: HashMap<String, usize> = HashMap::new();
    for t in tasks {
        *per.entry(t["containerInstanceArn"].as_str().unwrap().to_string()).or_default() += 1;
        assert_eq!(t["lastStatus"], "PENDING");
        assert_eq!(t["desiredStatus"], "RUNNING");
        assert_eq!(t["launchType"], "EC2");
        assert_eq!(t["group"], "family:web");
        assert_eq!(t["startedBy"], "me");
        assert_eq!(t["cpu"], "128");
        assert_eq!(t["memory"], "256");
        assert_eq!(t["version"], 1);
        assert_eq!(t["tags"], json!([{"key": "a", "value": "b"}]));
        assert_eq!(t["overrides"], json!({"containerOverrides": [{"name": "web"}], "inferenceAcceleratorOverrides": []}));
        assert_eq!(t["containers"][0]["name"], "web");
        assert_eq!(t["containers"][0]["lastStatus"], "PENDING");
        assert_eq!(t["containers"][0]["memory"], "256");
        assert_eq!(t["taskDefinitionArn"], "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1");
    }
    let mut counts: Vec<usize> = per.values().copied().collect();
    counts.sort();
    assert_eq!(counts, vec![1, 2]);

    // remainingResources exact: the busy instance lost 2 × (128 cpu, 256 MiB) and two dynamic ports.
    let busy = per.iter().find(|(_, n)| **n == 2).unwrap().0.clone();
    let ci = instance(s.as_ref(), &l, &busy).await;
    assert_eq!(ci["remainingResources"][0]["integerValue"], 1024 - 256);
    assert_eq!(ci["remainingResources"][1]["integerValue"], 2048 - 512);
    assert_eq!(ci["remainingResources"][2]["stringSetValue"], json!(["22", "2375", "49153", "49154"]));
    assert_eq!(ci["pendingTasksCount"], 2);
    let c = crate::clusters::describe(s.as_ref(), &ctx(), body(json!({"clusters": ["c"]}))).await.unwrap();
    assert_eq!(c["clusters"][0]["pendingTasksCount"], 3);

    // A task reported STOPPED gives its resources back.
    let t0 = tasks.iter().find(|t| t["containerInstanceArn"] == busy.as_str()).unwrap()["taskArn"].as_str().unwrap().to_string();
    report(s.as_ref(), &l, &t0, json!({"status": "RUNNING"})).await;
    let ci = instance(s.as_ref(), &l, &busy).await;
    assert_eq!((ci["runningTasksCount"].clone(), ci["pendingTasksCount"].clone()), (json!(1), json!(1)));
    report(s.as_ref(), &l, &t0, json!({"status": "STOPPED", "containers": [{"containerName": "web", "exitCode": 0, "status": "STOPPED"}]})).await;
    let ci = instance(s.as_ref(), &l, &busy).await;
    assert_eq!(ci["remainingResources"][1]["integerValue"], 2048 - 256);
    assert_eq!(ci["remainingResources"][2]["stringSetValue"].as_array().unwrap().len(), 3);
    let _ = arns;
}

#[tokio::test]
async fn resource_failures_are_reported_per_instance() {
    let (s, l, arns) = setup(1, 300).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web", "count": 2})).await.unwrap();
    assert_eq!(out["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(out["failures"], json!([{"arn": arns[0], "reason": "RESOURCE:MEMORY"}]));

    // Fixed host port taken → RESOURCE:PORTS.
    td(s.as_ref(), "fixed", json!({"containerDefinitions": [{"name": "web", "image": "busybox", "memory": 8,
        "portMappings": [{"containerPort": 22, "hostPort": 22}]}]})).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "fixed"})).await.unwrap();
    assert_eq!(out["tasks"], json!([]));
    assert_eq!(out["failures"], json!([{"arn": arns[0], "reason": "RESOURCE:PORTS"}]));

    td(s.as_ref(), "small", json!({"containerDefinitions": [{"name": "web", "image": "busybox", "memory": 8}]})).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "small",
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == windows"}]})).await.unwrap();
    assert_eq!(out["failures"][0]["reason"], "MemberOf placement constraint unsatisfied.");
}

#[tokio::test]
async fn dynamic_host_ports_come_from_the_instances_registered_range() {
    let s = store();
    let l = Liveness::default();
    cluster(s.as_ref(), "c").await;
    td(s.as_ref(), "web", json!({})).await;
    let attrs = |range: &str| {
        json!({"attributes": [{"name": "ecs.os-type", "value": "linux"},
            {"name": container_instances::DYNAMIC_HOST_PORT_RANGE_ATTRIBUTE, "value": range}]})
    };
    let own = register_instance(s.as_ref(), &l, "c", 4096, 4096, attrs("50000-50001")).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web", "count": 3})).await.unwrap();
    assert_eq!(out["tasks"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(out["failures"], json!([{"arn": own, "reason": "RESOURCE:PORTS"}]));
    let ci = instance(s.as_ref(), &l, &own).await;
    assert_eq!(ci["remainingResources"][2]["stringSetValue"], json!(["22", "2375", "50000", "50001"]));

    // Not a valid range: the default one.
    let s = store();
    cluster(s.as_ref(), "c").await;
    td(s.as_ref(), "web", json!({})).await;
    let bad = register_instance(s.as_ref(), &l, "c", 4096, 4096, attrs("50001-50000")).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web"})).await.unwrap();
    assert_eq!(out["tasks"].as_array().unwrap().len(), 1, "{out}");
    let ci = instance(s.as_ref(), &l, &bad).await;
    assert_eq!(ci["remainingResources"][2]["stringSetValue"], json!(["22", "2375", "49153"]));
}

#[test]
fn port_ranges_parse() {
    use container_instances::parse_port_range;
    assert_eq!(parse_port_range("50000-50255"), Some(50000..=50255));
    assert_eq!(parse_port_range(" 1-65535 "), Some(1..=65535));
    assert_eq!(parse_port_range("7-7"), Some(7..=7));
    for bad in ["", "50000", "0-10", "10-9", "1-65536", "a-b", "-5", "5-"] {
        assert_eq!(parse_port_range(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn input_errors() {
    let (s, l, _) = setup(0, 0).await;
    let e = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web"})).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    assert_eq!(e.to_string(), "No Container Instances were found in your cluster.");
    for bad in [json!({"cluster": "c", "taskDefinition": "web", "count": 11}), json!({"cluster": "c", "taskDefinition": "web", "count": 0}),
        json!({"cluster": "c", "taskDefinition": "web", "placementStrategy": [{"type": "binpack", "field": "disk"}]}),
        json!({"cluster": "c", "taskDefinition": "web", "placementConstraints": [{"type": "memberOf"}]})] {
        assert_eq!(code(&run(s.as_ref(), &l, bad).await.unwrap_err()), "InvalidParameterException");
    }
    assert_eq!(code(&run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "nope"})).await.unwrap_err()), "ClientException");
    assert_eq!(code(&run(s.as_ref(), &l, json!({"cluster": "zz", "taskDefinition": "web"})).await.unwrap_err()), "ClusterNotFoundException");
    td(s.as_ref(), "vpc", json!({"networkMode": "awsvpc"})).await;
    let e = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "vpc"})).await.unwrap_err();
    assert_eq!(e.to_string(), "Network Configuration must be provided when networkMode 'awsvpc' is specified.");
    let e = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web", "overrides": {"containerOverrides": [{"name": "x"}]}})).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
}

#[tokio::test]
async fn awsvpc_task_has_eni_attachment_filled_by_agent() {
    let (s, l, _) = setup(1, 2048).await;
    td(s.as_ref(), "vpc", json!({"networkMode": "awsvpc"})).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "vpc",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}})).await.unwrap();
    let t = &out["tasks"][0];
    assert_eq!(t["lastStatus"], "PROVISIONING");
    assert_eq!(t["attachments"][0]["type"], "ElasticNetworkInterface");
    assert_eq!(t["attachments"][0]["details"], json!([{"name": "subnetId", "value": "subnet-1"}]));
    let arn = t["taskArn"].as_str().unwrap();
    let att = t["attachments"][0]["id"].as_str().unwrap();
    report(s.as_ref(), &l, arn, json!({"status": "PENDING", "attachments": [{"attachmentArn": format!("arn:aws:ecs:us-east-1:123456789012:attachment/{att}"), "status": "ATTACHED",
        "details": [{"name": "privateIPv4Address", "value": "10.0.0.5"}, {"name": "networkInterfaceId", "value": "eni-1"}]}]})).await;
    let d = describe_one(s.as_ref(), arn).await;
    assert_eq!(d["attachments"][0]["status"], "ATTACHED");
    assert_eq!(d["attachments"][0]["details"][1], json!({"name": "privateIPv4Address", "value": "10.0.0.5"}));
    assert_eq!(d["lastStatus"], "PENDING");
}

#[tokio::test]
async fn state_changes_progress_and_stop_codes() {
    let (s, l, _) = setup(1, 4096).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web", "count": 3})).await.unwrap();
    let arn = |i: usize| out["tasks"][i]["taskArn"].as_str().unwrap().to_string();

    // 0: runs, then the essential container exits.
    assert_eq!(report(s.as_ref(), &l, &arn(0), json!({"status": "RUNNING", "pullStartedAt": 1.0, "pullStoppedAt": 2.0,
        "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "r1", "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": 49153, "protocol": "tcp"}]}]})).await,
        json!({"acknowledgment": "ACK"}));
    let d = describe_one(s.as_ref(), &arn(0)).await;
    assert_eq!(d["lastStatus"], "RUNNING");
    assert_eq!(d["connectivity"], "CONNECTED");
    assert_eq!(d["pullStartedAt"], 1.0);
    assert_eq!(d["startedAt"], 1_700_000_000.5);
    assert_eq!(d["containers"][0]["networkBindings"][0]["hostPort"], 49153);
    assert_eq!(d["containers"][0]["runtimeId"], "r1");
    assert_eq!(d["version"], 2);
    // Never backwards.
    report(s.as_ref(), &l, &arn(0), json!({"status": "PENDING"})).await;
    assert_eq!(describe_one(s.as_ref(), &arn(0)).await["lastStatus"], "RUNNING");
    submit_container_state_change(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "task": arn(0), "containerName": "web", "status": "STOPPED", "exitCode": 3, "reason": "boom"}))).await.unwrap();
    report(s.as_ref(), &l, &arn(0), json!({"status": "STOPPED"})).await;
    let d = describe_one(s.as_ref(), &arn(0)).await;
    assert_eq!((d["lastStatus"].clone(), d["desiredStatus"].clone()), (json!("STOPPED"), json!("STOPPED")));
    assert_eq!(d["stopCode"], "EssentialContainerExited");
    assert_eq!(d["stoppedReason"], "Essential container in task exited");
    assert_eq!(d["containers"][0]["exitCode"], 3);
    assert!(d["stoppedAt"].is_number() && d["executionStoppedAt"].is_number() && d["stoppingAt"].is_number());

    // 1: never started.
    report(s.as_ref(), &l, &arn(1), json!({"status": "STOPPED", "reason": "CannotPullContainerError: nope",
        "containers": [{"containerName": "web", "status": "STOPPED", "reason": "CannotPullContainerError: nope"}]})).await;
    let d = describe_one(s.as_ref(), &arn(1)).await;
    assert_eq!(d["stopCode"], "TaskFailedToStart");
    assert_eq!(d["stoppedReason"], "CannotPullContainerError: nope");

    // 2: stopped by the user, then the agent still reports RUNNING.
    let st = stop_task(s.as_ref(), &ctx(), body(json!({"cluster": "c", "task": arn(2), "reason": "bye"}))).await.unwrap();
    assert_eq!(st["task"]["desiredStatus"], "STOPPED");
    assert_eq!(st["task"]["stopCode"], "UserInitiated");
    assert_eq!(st["task"]["stoppedReason"], "bye");
    report(s.as_ref(), &l, &arn(2), json!({"status": "RUNNING"})).await;
    let d = describe_one(s.as_ref(), &arn(2)).await;
    assert_eq!((d["lastStatus"].clone(), d["desiredStatus"].clone()), (json!("RUNNING"), json!("STOPPED")));
    report(s.as_ref(), &l, &arn(2), json!({"status": "STOPPED"})).await;
    let d = describe_one(s.as_ref(), &arn(2)).await;
    assert_eq!(d["stopCode"], "UserInitiated");
    assert_eq!(d["stoppedReason"], "bye");

    // Bad input.
    let e = submit_task_state_change(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "task": arn(2), "status": "DANCING"}))).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let e = stop_task(s.as_ref(), &ctx(), body(json!({"cluster": "c", "task": "0123"}))).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let ack = submit_attachment_state_changes(s.as_ref(), &ctx(), body(json!({"attachments": [{"attachmentArn": "a", "status": "ATTACHED"}]}))).await.unwrap();
    assert_eq!(ack["acknowledgment"], "ACK");
}

#[tokio::test]
async fn describe_and_list_filters() {
    let (s, l, arns) = setup(2, 4096).await;
    td(s.as_ref(), "db", json!({})).await;
    let a = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web", "startedBy": "x", "containerInstances": []})).await.unwrap();
    let b = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "db", "group": "service:api"})).await.unwrap();
    let ta = a["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let tb = b["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let ls = |v: Value| {
        let s = s.clone();
        async move {
            let mut v = v;
            v["cluster"] = json!("c");
            let mut out: Vec<String> = list(s.as_ref(), &ctx(), body(v)).await.unwrap()["taskArns"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
            out.sort();
            out
        }
    };
    let mut both = vec![ta.clone(), tb.clone()];
    both.sort();
    assert_eq!(ls(json!({})).await, both);
    assert_eq!(ls(json!({"family": "web"})).await, vec![ta.clone()]);
    assert_eq!(ls(json!({"startedBy": "x"})).await, vec![ta.clone()]);
    assert_eq!(ls(json!({"serviceName": "api"})).await, vec![tb.clone()]);
    assert_eq!(ls(json!({"launchType": "EC2"})).await.len(), 2);
    assert_eq!(ls(json!({"desiredStatus": "STOPPED"})).await, Vec::<String>::new());
    let on_a = a["tasks"][0]["containerInstanceArn"].as_str().unwrap().to_string();
    assert!(ls(json!({"containerInstance": on_a})).await.contains(&ta));
    stop_task(s.as_ref(), &ctx(), body(json!({"cluster": "c", "task": ta.clone()}))).await.unwrap();
    assert_eq!(ls(json!({"desiredStatus": "STOPPED"})).await, vec![ta.clone()]);
    assert_eq!(ls(json!({})).await, vec![tb.clone()]);
    let p = list(s.as_ref(), &ctx(), body(json!({"cluster": "c", "maxResults": 0}))).await.unwrap_err();
    assert_eq!(code(&p), "InvalidParameterException");

    let short = ta.rsplit('/').next().unwrap();
    let d = describe(s.as_ref(), &ctx(), body(json!({"cluster": "c", "tasks": [short, "missing"]}))).await.unwrap();
    assert_eq!(d["tasks"][0]["taskArn"], ta);
    assert!(d["tasks"][0].get("tags").is_none());
    assert_eq!(d["failures"], json!([{"arn": "arn:aws:ecs:us-east-1:123456789012:task/c/missing", "reason": "MISSING"}]));
    let _ = arns;
}

#[tokio::test]
async fn client_token_is_idempotent() {
    let (s, l, _) = setup(1, 4096).await;
    let b = json!({"cluster": "c", "taskDefinition": "web", "count": 2, "clientToken": "tok-1"});
    let first = run(s.as_ref(), &l, b.clone()).await.unwrap();
    let again = run(s.as_ref(), &l, b).await.unwrap();
    let arns = |v: &Value| v["tasks"].as_array().unwrap().iter().map(|t| t["taskArn"].clone()).collect::<Vec<_>>();
    assert_eq!(arns(&first), arns(&again));
    let e = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web", "count": 1, "clientToken": "tok-1"})).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    let all = list(s.as_ref(), &ctx(), body(json!({"cluster": "c"}))).await.unwrap();
    assert_eq!(all["taskArns"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn disconnected_agents_get_no_placements() {
    let s = store();
    let l = Liveness::new(Duration::from_secs(12));
    cluster(s.as_ref(), "c").await;
    td(s.as_ref(), "web", json!({})).await;
    let a = register_instance(s.as_ref(), &l, "c", 1024, 4096, json!({})).await;
    let later = RequestContext { now: ctx().now + Duration::from_secs(30), ..ctx() };
    let out = run_task(s.as_ref(), &l, &later, body(json!({"cluster": "c", "taskDefinition": "web"}))).await.unwrap();
    assert_eq!(out["failures"], json!([{"arn": a, "reason": "AGENT"}]));
    let d = container_instances::describe(s.as_ref(), &l, &later, body(json!({"cluster": "c", "containerInstances": [a.clone()]}))).await.unwrap();
    assert_eq!(d["containerInstances"][0]["agentConnected"], false);
    l.touch(&a, later.now);
    let out = run_task(s.as_ref(), &l, &later, body(json!({"cluster": "c", "taskDefinition": "web"}))).await.unwrap();
    assert_eq!(out["tasks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_run_tasks_never_overcommit() {
    // 2 instances × 1024 MiB, tasks of 256 MiB: room for exactly 8.
    let (s, l, arns) = setup(2, 1024).await;
    let l = Arc::new(l);
    let mut handles = Vec::new();
    for _ in 0..20 {
        let (s, l) = (s.clone(), l.clone());
        handles.push(tokio::spawn(async move {
            run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "web"})).await.unwrap()["tasks"].as_array().unwrap().len()
        }));
    }
    let mut placed = 0;
    for h in handles {
        placed += h.await.unwrap();
    }
    assert_eq!(placed, 8);
    for a in &arns {
        let ci = instance(s.as_ref(), &l, a).await;
        assert_eq!(ci["remainingResources"][1]["integerValue"], 0);
        assert_eq!(ci["pendingTasksCount"], 4);
    }
}

#[tokio::test]
async fn start_task_on_named_instances_and_deregister_rules() {
    let (s, l, arns) = setup(2, 4096).await;
    let out = start_task(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "taskDefinition": "web", "containerInstances": [arns[1].clone(), "nope"]}))).await.unwrap();
    assert_eq!(out["tasks"][0]["containerInstanceArn"], arns[1]);
    assert_eq!(out["failures"][0]["reason"], "MISSING");
    let e = container_instances::deregister(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstance": arns[1].clone()}))).await.unwrap_err();
    assert_eq!(e.to_string(), "Found running tasks on the instance.");
    let d = container_instances::deregister(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "containerInstance": arns[1].clone(), "force": true}))).await.unwrap();
    assert_eq!(d["containerInstance"]["status"], "INACTIVE");
    let t = describe_one(s.as_ref(), out["tasks"][0]["taskArn"].as_str().unwrap()).await;
    assert_eq!(t["desiredStatus"], "STOPPED");
}

#[tokio::test]
async fn poll_answers_desired_state_and_wakes_on_change() {
    let (s, l, arns) = setup(1, 4096).await;
    let req = |v: Option<u64>| berth_agent_protocol::PollRequest { cluster: "c".into(), container_instance_arn: arns[0].clone(), known_version: v };
    let hold = Duration::from_millis(200);
    let bells = Arc::new(crate::doorbells::Doorbells::default());
    let first = crate::agent_session::poll(&s, &bells, &l, &crate::roles::OpenRoleGate, &ctx(), req(None), hold).await.unwrap();
    assert!(first.desired.tasks.is_empty());
    // Same version: held, then the same answer.
    let same = crate::agent_session::poll(&s, &bells, &l, &crate::roles::OpenRoleGate, &ctx(), req(Some(first.version)), hold).await.unwrap();
    assert_eq!(same.version, first.version);

    // A placement wakes a held poll.
    let (s2, l2) = (s.clone(), Arc::new(l));
    let waiter = {
        let (s, l, r, bells) = (s2.clone(), l2.clone(), req(Some(first.version)), bells.clone());
        tokio::spawn(async move { crate::agent_session::poll(&s, &bells, &l, &crate::roles::OpenRoleGate, &ctx(), r, Duration::from_secs(30)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = run(s2.as_ref(), &l2, json!({"cluster": "c", "taskDefinition": "web"})).await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
    assert!(woke.version > first.version);
    assert_eq!(woke.desired.tasks.len(), 1);
    let dt = &woke.desired.tasks[0];
    assert_eq!(dt.task_arn, out["tasks"][0]["taskArn"].as_str().unwrap());
    assert_eq!(dt.desired_status, "RUNNING");
    assert_eq!(dt.task_definition["family"], "web");
    assert_eq!(dt.host_ports, vec![AssignedPort { container_name: "web".into(), container_port: 8080, host_port: 49153, protocol: "tcp".into() }]);

    // Stop → desired STOPPED with a newer version; reported STOPPED → gone.
    stop_task(s2.as_ref(), &ctx(), body(json!({"cluster": "c", "task": dt.task_arn.clone()}))).await.unwrap();
    let p = crate::agent_session::poll(&s2, &bells, &l2, &crate::roles::OpenRoleGate, &ctx(), req(Some(woke.version)), hold).await.unwrap();
    assert!(p.version > woke.version);
    assert_eq!(p.desired.tasks[0].desired_status, "STOPPED");
    assert_eq!(p.desired.tasks[0].stop_code.as_deref(), Some("UserInitiated"));
    assert!(p.desired.tasks[0].generation > dt.generation);
    report(s2.as_ref(), &l2, &dt.task_arn, json!({"status": "STOPPED"})).await;
    let q = crate::agent_session::poll(&s2, &bells, &l2, &crate::roles::OpenRoleGate, &ctx(), req(Some(p.version)), hold).await.unwrap();
    assert!(q.version > p.version);
    assert!(q.desired.tasks.is_empty());

    // Draining shows up.
    container_instances::update_state(s2.as_ref(), &l2, &ctx(), body(json!({"cluster": "c", "containerInstances": [arns[0].clone()], "status": "DRAINING"}))).await.unwrap();
    let r = crate::agent_session::poll(&s2, &bells, &l2, &crate::roles::OpenRoleGate, &ctx(), req(Some(q.version)), hold).await.unwrap();
    assert!(r.desired.draining && r.version > q.version);
}

#[tokio::test]
async fn discover_poll_endpoint_echoes_caller_endpoint() {
    let s = store();
    let out = crate::agent_session::discover_poll_endpoint(s.as_ref(), &ctx(), body(json!({})), Some("http://10.0.0.5:4566")).await.unwrap();
    assert_eq!(out["endpoint"], "http://10.0.0.5:4566/");
}

fn container(essential: bool, checked: bool, health: &str) -> ContainerRecord {
    ContainerRecord {
        container_arn: "arn".into(),
        name: "c".into(),
        image: "busybox".into(),
        image_digest: None,
        runtime_id: None,
        last_status: "RUNNING".into(),
        exit_code: None,
        reason: None,
        network_bindings: Vec::new(),
        network_interfaces: Vec::new(),
        health_status: health.into(),
        has_health_check: checked,
        cpu: "0".into(),
        memory: None,
        memory_reservation: None,
        essential,
    }
}

#[test]
fn task_health_counts_only_essential_checked_containers() {
    let c = container;
    let cases: &[(&[ContainerRecord], &str)] = &[
        (&[], "UNKNOWN"),
        // No health checks at all: whatever was reported, UNKNOWN.
        (&[c(true, false, "HEALTHY"), c(true, false, "UNHEALTHY")], "UNKNOWN"),
        (&[c(true, true, "HEALTHY")], "HEALTHY"),
        (&[c(true, true, "HEALTHY"), c(true, true, "HEALTHY"), c(true, false, "UNKNOWN")], "HEALTHY"),
        (&[c(true, true, "HEALTHY"), c(true, true, "UNKNOWN")], "UNKNOWN"),
        (&[c(true, true, "UNKNOWN"), c(true, true, "UNHEALTHY")], "UNHEALTHY"),
        (&[c(true, true, "HEALTHY"), c(true, true, "UNHEALTHY")], "UNHEALTHY"),
        // Non-essential containers never decide.
        (&[c(true, true, "HEALTHY"), c(false, true, "UNHEALTHY")], "HEALTHY"),
        (&[c(false, true, "HEALTHY")], "UNKNOWN"),
    ];
    for (containers, want) in cases {
        let got = task_health(containers);
        let shape: Vec<_> = containers.iter().map(|c| (c.essential, c.has_health_check, c.health_status.as_str())).collect();
        assert_eq!(got, *want, "{shape:?}");
    }
}

#[test]
fn container_records_written_before_health_checks_still_load() {
    let mut v = serde_json::to_value(container(true, true, "HEALTHY")).unwrap();
    assert_eq!(v["hasHealthCheck"], true);
    v.as_object_mut().unwrap().remove("hasHealthCheck");
    let old: ContainerRecord = serde_json::from_value(v).unwrap();
    assert!(!old.has_health_check);
}

#[tokio::test]
async fn health_reports_drive_container_and_task_health() {
    let (s, l, _) = setup(1, 4096).await;
    let check = json!({"command": ["CMD-SHELL", "true"], "interval": 5});
    td(s.as_ref(), "checked", json!({"containerDefinitions": [
        {"name": "app", "image": "busybox", "memory": 64, "healthCheck": check},
        {"name": "sidecar", "image": "busybox", "memory": 64},
        {"name": "helper", "image": "busybox", "memory": 64, "essential": false, "healthCheck": check}]})).await;
    let out = run(s.as_ref(), &l, json!({"cluster": "c", "taskDefinition": "checked"})).await.unwrap();
    let arn = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert_eq!(out["tasks"][0]["healthStatus"], "UNKNOWN");
    let health = |d: &Value| {
        let by_name = |n: &str| d["containers"].as_array().unwrap().iter().find(|c| c["name"] == n).unwrap()["healthStatus"].clone();
        (d["healthStatus"].clone(), by_name("app"), by_name("sidecar"), by_name("helper"))
    };

    report(s.as_ref(), &l, &arn, json!({"status": "RUNNING", "containers": [
        {"containerName": "app", "status": "RUNNING", "healthStatus": "HEALTHY"},
        {"containerName": "sidecar", "status": "RUNNING"}]})).await;
    let d = describe_one(s.as_ref(), &arn).await;
    assert_eq!(health(&d), (json!("HEALTHY"), json!("HEALTHY"), json!("UNKNOWN"), json!("UNKNOWN")));

    // A non-essential container's health shows on it, not on the task.
    submit_container_state_change(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "task": arn, "containerName": "helper", "healthStatus": "UNHEALTHY"}))).await.unwrap();
    let d = describe_one(s.as_ref(), &arn).await;
    assert_eq!(health(&d), (json!("HEALTHY"), json!("HEALTHY"), json!("UNKNOWN"), json!("UNHEALTHY")));

    report(s.as_ref(), &l, &arn, json!({"containers": [{"containerName": "app", "healthStatus": "UNHEALTHY"}]})).await;
    assert_eq!(health(&describe_one(s.as_ref(), &arn).await).0, "UNHEALTHY");
    report(s.as_ref(), &l, &arn, json!({"containers": [{"containerName": "app", "healthStatus": "UNKNOWN"}]})).await;
    assert_eq!(health(&describe_one(s.as_ref(), &arn).await).0, "UNKNOWN");

    // Values ECS does not know are refused, and change nothing.
    let before = describe_one(s.as_ref(), &arn).await;
    let e = submit_task_state_change(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "task": arn, "containers": [
        {"containerName": "app", "healthStatus": "HEALTHY"}, {"containerName": "sidecar", "healthStatus": "SICK"}]}))).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    assert!(e.to_string().contains("SICK"), "{e}");
    let e = submit_container_state_change(s.as_ref(), &l, &ctx(), body(json!({"cluster": "c", "task": arn, "containerName": "app", "healthStatus": "healthy"}))).await.unwrap_err();
    assert_eq!(code(&e), "InvalidParameterException");
    assert_eq!(describe_one(s.as_ref(), &arn).await, before);
}

/// (runningTasksCount, pendingTasksCount, CPU, MEMORY, PORTS, PORTS_UDP) of one instance.
async fn usage(s: &dyn Store, l: &Liveness, arn: &str) -> (Value, Value, Value, Value, Value, Value) {
    let ci = instance(s, l, arn).await;
    let r = |name: &str| ci["remainingResources"].as_array().unwrap().iter().find(|x| x["name"] == name).unwrap().clone();
    (
        ci["runningTasksCount"].clone(),
        ci["pendingTasksCount"].clone(),
        r("CPU")["integerValue"].clone(),
        r("MEMORY")["integerValue"].clone(),
        r("PORTS")["stringSetValue"].clone(),
        r("PORTS_UDP")["stringSetValue"].clone(),
    )
}

#[tokio::test]
async fn instance_counts_and_remaining_resources_follow_a_task_through_its_life() {
    let (s, l, arns) = setup(1, 4096).await;
    let (s, a) = (s.as_ref(), arns[0].as_str());
    td(s, "svc", json!({"containerDefinitions": [{"name": "web", "image": "busybox", "memory": 512, "cpu": 256, "portMappings": [
        {"containerPort": 80, "hostPort": 8080},
        {"containerPort": 9000},
        {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}]}]})).await;
    let idle = (json!(0), json!(0), json!(1024), json!(4096), json!(["22", "2375"]), json!([]));
    assert_eq!(usage(s, &l, a).await, idle);

    let out = run(s, &l, json!({"cluster": "c", "taskDefinition": "svc"})).await.unwrap();
    let task = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let held = |running: i64, pending: i64| {
        (json!(running), json!(pending), json!(1024 - 256), json!(4096 - 512), json!(["22", "2375", "8080", "49153"]), json!(["5353"]))
    };
    assert_eq!(usage(s, &l, a).await, held(0, 1), "PENDING");

    report(s, &l, &task, json!({"status": "RUNNING"})).await;
    assert_eq!(usage(s, &l, a).await, held(1, 0), "RUNNING");
    // A repeated report changes nothing.
    report(s, &l, &task, json!({"status": "RUNNING"})).await;
    assert_eq!(usage(s, &l, a).await, held(1, 0), "RUNNING again");

    // Stopping is not stopped: the task still holds its resources.
    stop_task(s, &ctx(), body(json!({"cluster": "c", "task": task}))).await.unwrap();
    assert_eq!(usage(s, &l, a).await, held(1, 0), "desired STOPPED, still RUNNING");
    report(s, &l, &task, json!({"status": "DEACTIVATING"})).await;
    assert_eq!(usage(s, &l, a).await, held(0, 0), "DEACTIVATING");

    report(s, &l, &task, json!({"status": "STOPPED"})).await;
    assert_eq!(usage(s, &l, a).await, idle, "STOPPED");
    // Late or repeated reports never take resources again.
    report(s, &l, &task, json!({"status": "RUNNING", "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "late"}]})).await;
    report(s, &l, &task, json!({"status": "STOPPED"})).await;
    assert_eq!(usage(s, &l, a).await, idle, "after late reports");

    // A task that never starts goes straight from PENDING to STOPPED.
    let out = run(s, &l, json!({"cluster": "c", "taskDefinition": "svc"})).await.unwrap();
    let failed = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert_eq!(usage(s, &l, a).await, held(0, 1), "second PENDING");
    report(s, &l, &failed, json!({"status": "STOPPED", "reason": "CannotPullContainerError"})).await;
    assert_eq!(usage(s, &l, a).await, idle, "failed to start");
}

#[tokio::test]
async fn tasks_stopped_while_the_agent_was_away_stay_desired_stopped_until_reported() {
    let (shared, l, arns) = setup(1, 4096).await;
    let bells = Arc::new(crate::doorbells::Doorbells::default());
    let (s, a, l) = (shared.as_ref(), arns[0].clone(), &l);
    let (shared, bells) = (&shared, &bells);
    let poll_at = |at: RequestContext, known: Option<u64>| {
        let req = berth_agent_protocol::PollRequest { cluster: "c".into(), container_instance_arn: a.clone(), known_version: known };
        async move { crate::agent_session::poll(shared, bells, l, &crate::roles::OpenRoleGate, &at, req, Duration::from_millis(50)).await.unwrap() }
    };
    let out = run(s, l, json!({"cluster": "c", "taskDefinition": "web", "count": 2})).await.unwrap();
    let started = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let never_started = out["tasks"][1]["taskArn"].as_str().unwrap().to_string();
    let seen = poll_at(ctx(), None).await;
    assert_eq!(seen.desired.tasks.len(), 2);
    report(s, l, &started, json!({"status": "RUNNING"})).await;

    // The agent goes away; meanwhile both tasks are stopped.
    let away = RequestContext { now: ctx().now + Duration::from_secs(120), ..ctx() };
    assert!(!l.connected(&a, away.now));
    stop_task(s, &away, body(json!({"cluster": "c", "task": started, "reason": "maintenance"}))).await.unwrap();
    stop_task(s, &away, body(json!({"cluster": "c", "task": never_started}))).await.unwrap();

    // Back: a reconnect (no version) and a poll still holding the old
    // version both get the stops at once, reason and code included.
    let back = RequestContext { now: away.now + Duration::from_secs(60), ..ctx() };
    for known in [None, Some(seen.version)] {
        let p = poll_at(back.clone(), known).await;
        assert!(p.version > seen.version);
        let want = |arn: &str, reason: &str| {
            let t = p.desired.tasks.iter().find(|t| t.task_arn == arn).unwrap();
            assert_eq!(t.desired_status, "STOPPED");
            assert_eq!(t.stop_code.as_deref(), Some("UserInitiated"));
            assert_eq!(t.stopped_reason.as_deref(), Some(reason));
        };
        want(&started, "maintenance");
        want(&never_started, "Task stopped by user");
    }

    // Level-triggered: every answer repeats them until the agent reports,
    // even after a stale RUNNING report.
    let p = poll_at(back.clone(), None).await;
    report(s, l, &started, json!({"status": "RUNNING"})).await;
    let again = poll_at(back.clone(), Some(p.version)).await;
    assert_eq!(again.version, p.version);
    assert_eq!(again.desired.tasks.iter().filter(|t| t.desired_status == "STOPPED").count(), 2);

    report(s, l, &started, json!({"status": "STOPPED", "containers": [{"containerName": "web", "status": "STOPPED", "exitCode": 143}]})).await;
    let p2 = poll_at(back.clone(), Some(again.version)).await;
    assert!(p2.version > again.version);
    assert_eq!(p2.desired.tasks.iter().map(|t| t.task_arn.as_str()).collect::<Vec<_>>(), vec![never_started.as_str()]);
    report(s, l, &never_started, json!({"status": "STOPPED"})).await;
    let p3 = poll_at(back.clone(), Some(p2.version)).await;
    assert!(p3.desired.tasks.is_empty());
    let d = describe_one(s, &started).await;
    assert_eq!((d["lastStatus"].clone(), d["stopCode"].clone(), d["stoppedReason"].clone()), (json!("STOPPED"), json!("UserInitiated"), json!("maintenance")));
}

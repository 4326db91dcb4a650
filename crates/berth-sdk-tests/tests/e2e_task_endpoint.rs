//! End to end, the task endpoint at 169.254.170.2 with real containers on
//! `berth up`: a container reads its task metadata (v4) and its task role's
//! credentials the way the AWS SDKs do, and another task is refused both.
//!
//! Needs what e2e_tasks needs (root, runc, iproute2, nftables,
//! docker-registry). Each host passes `--task-endpoint-port 0`
//! (e2e_support), so hosts in parallel never share the endpoint port.

mod common;
mod e2e_support;

use aws_sdk_ecs::types::{AwsVpcConfiguration, KeyValuePair, NetworkConfiguration, NetworkMode};
use berth_testkit::{Registry, busybox_image};
use e2e_support::*;
use std::time::{Duration, Instant};

/// Prints what a container got from the endpoint, then stays up (so the
/// task is RUNNING while the test reads its log).
const FETCH: &str = concat!(
    "echo \"META=$(wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task)\"; ",
    "echo \"SELF=$(wget -qO- $ECS_CONTAINER_METADATA_URI_V4)\"; ",
    "echo \"STATS=$(wget -qO- $ECS_CONTAINER_METADATA_URI_V4/stats)\"; ",
    "echo \"URI=$ECS_CONTAINER_METADATA_URI_V4\"; ",
    "echo \"CREDURI=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\"; ",
    "if [ -n \"$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\" ]; then ",
    "echo \"CREDS=$(wget -qO- http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)\"; fi; ",
    "echo DONE; sleep 600"
);

/// Tries someone else's URL (in `$TARGET`) and says what happened.
const STEAL: &str = "if wget -qO- \"$TARGET\"; then echo STOLEN; else echo REFUSED; fi; echo DONE; sleep 600";

/// Waits for the task to run (so this host has its logs), then for
/// `marker` in them.
async fn logs_until(host: &TestHost, arn: &str, marker: &str) -> String {
    wait_status(&host.ecs(), arn, "RUNNING", Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = host.logs(arn);
        if text.contains(marker) {
            return text;
        }
        if Instant::now() > deadline {
            panic!("{marker:?} never appeared in the logs of {arn}:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value after `KEY=` on the log line that has it (`berth logs`
/// prefixes each line with the container's name).
fn field(logs: &str, key: &str) -> String {
    let tag = format!("{key}=");
    logs.lines()
        .find_map(|l| l.find(&tag).map(|i| l[i + tag.len()..].to_string()))
        .unwrap_or_else(|| panic!("no {key}= in:\n{logs}"))
}

fn json_field(logs: &str, key: &str) -> serde_json::Value {
    let text = field(logs, key);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"))
}

async fn run_one(ecs: &aws_sdk_ecs::Client, td: &str, mode: Option<&NetworkMode>, env: &[(&str, &str)]) -> String {
    let mut req = ecs.run_task().cluster(CLUSTER).task_definition(td);
    if matches!(mode, Some(NetworkMode::Awsvpc)) {
        req = req.network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(AwsVpcConfiguration::builder().subnets("subnet-1").build().unwrap())
                .build(),
        );
    }
    if !env.is_empty() {
        let mut o = aws_sdk_ecs::types::ContainerOverride::builder().name("app");
        for (k, v) in env {
            o = o.environment(KeyValuePair::builder().name(*k).value(*v).build());
        }
        req = req.overrides(aws_sdk_ecs::types::TaskOverride::builder().container_overrides(o.build()).build());
    }
    let out = req.send().await.expect("RunTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    out.tasks()[0].task_arn().unwrap().to_string()
}

async fn metadata_is_served_to_the_task_only(mode: NetworkMode) {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let family = format!("meta-{}", mode.as_str());
    let td = register(&ecs, &family, Some(mode.clone()), vec![container("app", &image).command("sh").command("-c").command(FETCH).build()]).await;
    let arn = run_one(&ecs, &td, Some(&mode), &[]).await;
    wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
    let logs = logs_until(&host, &arn, "DONE").await;

    let meta = json_field(&logs, "META");
    assert_eq!(meta["TaskARN"], arn.as_str(), "{meta:#}");
    assert_eq!(meta["Family"], family.as_str());
    assert_eq!(meta["LaunchType"], "EC2");
    // The container asks as soon as it starts: the task may not be
    // RUNNING yet.
    assert!(["PENDING", "RUNNING"].contains(&meta["KnownStatus"].as_str().unwrap()), "{meta:#}");
    assert!(meta["Cluster"].as_str().unwrap().ends_with(":cluster/default"), "{meta:#}");
    let containers = meta["Containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["Name"], "app");
    assert_eq!(containers[0]["Image"], image.as_str());
    assert_eq!(containers[0]["Networks"][0]["NetworkMode"], mode.as_str());
    assert!(containers[0]["Networks"][0]["IPv4Addresses"][0].as_str().unwrap().starts_with("172.30."), "{meta:#}");
    let me = json_field(&logs, "SELF");
    assert_eq!(me["DockerId"], containers[0]["DockerId"]);
    let stats = json_field(&logs, "STATS");
    assert!(stats["memory_stats"]["usage"].as_u64().unwrap() > 0, "{stats:#}");
    assert_eq!(stats["memory_stats"]["limit"], 64u64 << 20, "the container's 64 MiB limit");
    assert!(stats["networks"]["eth0"]["rx_bytes"].as_u64().is_some(), "{stats:#}");
    assert_eq!(field(&logs, "CREDURI"), "", "no task role, no credentials URI");

    // Another task on the same bridge, with the first one's URI.
    let uri = field(&logs, "URI");
    let thief = register(&ecs, &format!("{family}-thief"), Some(mode.clone()), vec![container("app", &image).command("sh").command("-c").command(STEAL).build()]).await;
    let other = run_one(&ecs, &thief, Some(&mode), &[("TARGET", &format!("{uri}/task"))]).await;
    let logs = logs_until(&host, &other, "DONE").await;
    assert!(logs.contains("REFUSED") && !logs.contains("STOLEN"), "{logs}");
    assert!(logs.contains("404"), "wget reports the endpoint's 404: {logs}");
}

#[tokio::test]
async fn bridge_tasks_read_their_own_metadata_and_not_anothers() {
    metadata_is_served_to_the_task_only(NetworkMode::Bridge).await;
}

#[tokio::test]
async fn awsvpc_tasks_read_their_own_metadata_and_not_anothers() {
    metadata_is_served_to_the_task_only(NetworkMode::Awsvpc).await;
}

/// The account's IAM API over the query protocol, signed with the root key.
fn iam(host: &TestHost, form: &[(&str, &str)]) -> String {
    let mut body = String::from("Version=2010-05-08");
    for (k, v) in form {
        body.push('&');
        body.push_str(k);
        body.push('=');
        for b in v.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => body.push(b as char),
                _ => body.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let server = &host.server;
    let mut headers = vec![
        ("host".to_string(), format!("127.0.0.1:{}", server.port)),
        ("content-type".to_string(), "application/x-www-form-urlencoded; charset=utf-8".to_string()),
    ];
    let signed = common::sign(
        "POST",
        &format!("http://127.0.0.1:{}/", server.port),
        &headers,
        body.as_bytes(),
        &server.creds.access_key_id,
        &server.creds.secret_access_key,
        "us-east-1",
        "iam",
    );
    headers.extend(signed);
    let resp = common::raw_request(server.port, "POST", "/", &headers, body.as_bytes());
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    assert_eq!(resp.status, 200, "IAM {form:?}: {text}");
    text
}

fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

/// Needs the server's half of task roles (roles through the IAM API,
/// credentials minted into every poll answer).
#[tokio::test]
async fn a_container_gets_its_task_roles_credentials_and_another_task_cannot() {
    let registry = Registry::start().expect("registry");
    let image = push_busybox(&registry, "demo/busybox");
    let host = TestHost::up();
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let created = iam(&host, &[("Action", "CreateRole"), ("RoleName", "e2e-app"), ("AssumeRolePolicyDocument", trust)]);
    let role_arn = xml_value(&created, "Arn");

    for mode in [NetworkMode::Bridge, NetworkMode::Awsvpc] {
        let family = format!("roled-{}", mode.as_str());
        let td = ecs
            .register_task_definition()
            .family(&family)
            .task_role_arn(&role_arn)
            .network_mode(mode.clone())
            .container_definitions(container("app", &image).command("sh").command("-c").command(FETCH).build())
            .send()
            .await
            .expect("RegisterTaskDefinition");
        let td = td.task_definition().unwrap().task_definition_arn().unwrap().to_string();
        let arn = run_one(&ecs, &td, Some(&mode), &[]).await;
        wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
        let logs = logs_until(&host, &arn, "DONE").await;
        let uri = field(&logs, "CREDURI");
        assert!(uri.starts_with("/v2/credentials/") && uri.len() > "/v2/credentials/".len() + 16, "{logs}");
        let creds = json_field(&logs, "CREDS");
        assert_eq!(creds["RoleArn"], role_arn.as_str(), "{creds:#}");
        assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"), "{creds:#}");
        for k in ["SecretAccessKey", "Token", "Expiration"] {
            assert!(creds[k].as_str().is_some_and(|v| !v.is_empty()), "{k} in {creds:#}");
        }
        assert_eq!(json_field(&logs, "META")["TaskARN"], arn.as_str());

        // A task without a role, from its own address, with the owner's URI.
        let thief = register(&ecs, &format!("{family}-thief"), Some(mode.clone()), vec![container("app", &image).command("sh").command("-c").command(STEAL).build()]).await;
        let other = run_one(&ecs, &thief, Some(&mode), &[("TARGET", &format!("http://169.254.170.2{uri}"))]).await;
        let logs = logs_until(&host, &other, "DONE").await;
        assert!(logs.contains("REFUSED") && !logs.contains("STOLEN"), "{logs}");
        assert!(logs.contains("400"), "the ECS agent's 400 for unknown ids: {logs}");
    }
}

/// Private images through the execution role: the server hands out a
/// registry's login through ECR's GetAuthorizationToken
/// (`--private-registries`), and the agent asks for it with each task's
/// execution role. A role allowed `ecr:GetAuthorizationToken` pulls; a role
/// without it cannot. Needs the server's half (`--private-registries`,
/// roles, execution-role sessions in the poll answers).
#[tokio::test]
async fn private_images_are_pulled_with_the_execution_role() {
    let locked = Registry::start_with_basic_auth("alice", "s3cret").expect("registry with auth");
    let private = busybox_image().push(locked.host(), "demo/private", "1", Some(("alice", "s3cret"))).unwrap().reference;
    // Its own image: with the default pull behaviour a failed pull falls
    // back to a cached copy, as ECS's does.
    let other = busybox_image()
        .file("other", b"x".to_vec(), 0o644)
        .push(locked.host(), "demo/other", "1", Some(("alice", "s3cret")))
        .unwrap()
        .reference;
    let logins = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(logins.path(), format!(r#"{{"{}": {{"username": "alice", "password": "s3cret"}}}}"#, locked.host())).unwrap();
    let path = logins.path().to_string_lossy().into_owned();
    let host = TestHost::up_with(&["--private-registries", &path]);
    let ecs = host.ecs();
    wait_instance(&ecs).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let allowed = xml_value(&iam(&host, &[("Action", "CreateRole"), ("RoleName", "exec-ok"), ("AssumeRolePolicyDocument", trust)]), "Arn");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}"#;
    iam(&host, &[("Action", "PutRolePolicy"), ("RoleName", "exec-ok"), ("PolicyName", "pull"), ("PolicyDocument", policy)]);
    let denied = xml_value(&iam(&host, &[("Action", "CreateRole"), ("RoleName", "exec-no"), ("AssumeRolePolicyDocument", trust)]), "Arn");

    for (family, role, image, pulls) in [("exec-ok", &allowed, &private, true), ("exec-no", &denied, &other, false)] {
        let td = ecs
            .register_task_definition()
            .family(family)
            .execution_role_arn(role)
            .container_definitions(container("app", image).command("sh").command("-c").command("echo pulled; sleep 600").build())
            .send()
            .await
            .expect("RegisterTaskDefinition");
        let td = td.task_definition().unwrap().task_definition_arn().unwrap().to_string();
        let arn = run_one(&ecs, &td, None, &[]).await;
        if pulls {
            wait_status(&ecs, &arn, "RUNNING", Duration::from_secs(60)).await;
            logs_until(&host, &arn, "pulled").await;
        } else {
            let t = wait_status(&ecs, &arn, "STOPPED", Duration::from_secs(60)).await;
            let reason = t.stopped_reason().unwrap_or_default();
            // ECS's words: the refused ECR call, as the execution role's session.
            assert!(reason.starts_with("CannotPullECRContainerError: AccessDeniedException: User: arn:aws:sts::"), "{reason}");
            assert!(reason.contains("is not authorized to perform: ecr:GetAuthorizationToken"), "says why: {reason}");
        }
    }
}

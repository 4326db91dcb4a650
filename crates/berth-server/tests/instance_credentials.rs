//! Instance credentials through the in-process front door: the root mints a
//! key over `POST /agent/v1/credentials`, the key does an agent's work and
//! nothing else, and it outlives a store reopen.

use berth_clock::{Clock, FakeClock};
use berth_server::FrontDoor;
use berth_server::credentials::{self, AccountIdentity, Overrides};
use berth_sigv4::signer::{self, Credentials, SigningParams};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const ROOT_AKID: &str = "AKIAINSTANCECREDTEST";
const ROOT_SECRET: &str = "instance-credentials-test-root-secret-01";
const ACCOUNT: &str = "123456789012";

#[derive(Clone, Copy)]
struct Key<'a> {
    id: &'a str,
    secret: &'a str,
}

const ROOT: Key<'static> = Key { id: ROOT_AKID, secret: ROOT_SECRET };

struct Door {
    door: FrontDoor,
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

fn identity(dir: &std::path::Path) -> AccountIdentity {
    credentials::load_or_create(
        dir,
        &Overrides {
            account_id: Some(ACCOUNT.into()),
            root_access_key_id: Some(ROOT_AKID.into()),
            root_secret_access_key: Some(ROOT_SECRET.into()),
        },
    )
    .unwrap()
}

/// One master key for the whole test binary, so credentials minted in
/// process and those a door reads agree (as one server's data dir does).
fn master() -> berth_iam::MasterKey {
    static KEY: std::sync::OnceLock<berth_iam::MasterKey> = std::sync::OnceLock::new();
    KEY.get_or_init(berth_iam::MasterKey::generate).clone()
}

fn door_over(store: Arc<dyn berth_store::Store>) -> Door {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::at_epoch_secs(1_795_000_000));
    let identity = identity(dir.path());
    let iam = berth_iam::Iam::with_state(store.clone(), identity.account_id.clone(), master(), Default::default(), 0);
    let ecs = berth_ecs::Ecs::new(store).with_poll_hold(Duration::from_millis(100));
    let door = FrontDoor::new(identity, ecs, iam, clock.clone(), 1 << 20);
    Door { door, clock, _dir: dir }
}

fn door() -> Door {
    door_over(Arc::new(berth_store::memory::MemoryStore::new()))
}

fn signed(d: &Door, key: Key, service: &str, path: &str, headers_in: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("10.1.2.3:4566"));
    for (k, v) in headers_in {
        headers.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    let params = SigningParams {
        credentials: Credentials { access_key_id: key.id, secret_access_key: key.secret, session_token: None },
        region: "us-east-1",
        service,
        time: d.clock.now(),
    };
    signer::sign("POST", path, "", &mut headers, body.as_bytes(), &params).unwrap();
    let mut req = Request::builder().method("POST").uri(path);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

/// (status, JSON body or the body as a string, x-amzn-errortype)
async fn send(d: &Door, req: Request<Full<Bytes>>) -> (u16, Value) {
    let resp = d.door.handle(req).await;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    (status, v)
}

async fn ecs_as(d: &Door, key: Key<'_>, op: &str, body: Value) -> (u16, Value) {
    let target = format!("AmazonEC2ContainerServiceV20141113.{op}");
    let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
    send(d, signed(d, key, "ecs", "/", &headers, &body.to_string())).await
}

async fn ecs_ok(d: &Door, key: Key<'_>, op: &str, body: Value) -> Value {
    let (status, out) = ecs_as(d, key, op, body).await;
    assert_eq!(status, 200, "{op}: {out}");
    out
}

async fn mint_as(d: &Door, key: Key<'_>, body: &str) -> (u16, Value) {
    let headers = [("content-type", "application/json")];
    send(d, signed(d, key, "ecs", berth_agent_protocol::CREDENTIALS_PATH, &headers, body)).await
}

async fn mint_ok(d: &Door, name: &str) -> berth_agent_protocol::CredentialsResponse {
    let (status, out) = mint_as(d, ROOT, &json!({"name": name}).to_string()).await;
    assert_eq!(status, 200, "{out}");
    serde_json::from_value(out).unwrap()
}

async fn poll_as(d: &Door, key: Key<'_>, instance: &str, known: Option<u64>) -> (u16, Value) {
    let req = berth_agent_protocol::PollRequest { cluster: "sim".into(), container_instance_arn: instance.into(), known_version: known };
    let headers = [("content-type", "application/json")];
    send(d, signed(d, key, "ecs", berth_agent_protocol::POLL_PATH, &headers, &serde_json::to_string(&req).unwrap())).await
}

async fn query_as(d: &Door, key: Key<'_>, service: &str, form: &str) -> (u16, String) {
    let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
    let (status, out) = send(d, signed(d, key, service, "/", &headers, form)).await;
    (status, out.as_str().unwrap_or_default().to_string())
}

fn key_of(c: &berth_agent_protocol::CredentialsResponse) -> Key<'_> {
    Key { id: &c.access_key_id, secret: &c.secret_access_key }
}

fn register_body() -> Value {
    json!({
        "cluster": "sim",
        "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
        ],
        "versionInfo": {"agentVersion": "0.1.0"}
    })
}

#[tokio::test]
async fn minted_key_does_an_agents_work() {
    let d = door();
    let creds = mint_ok(&d, "host-a").await;
    assert!(creds.access_key_id.starts_with("AKIA") && creds.access_key_id.len() == 20, "{creds:?}");
    assert_eq!(creds.secret_access_key.len(), 40);
    assert_eq!(creds.principal_arn, "arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a");
    let agent = key_of(&creds);

    ecs_ok(&d, ROOT, "CreateCluster", json!({"clusterName": "sim"})).await;
    ecs_ok(&d, ROOT, "RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 128}]})).await;

    let reg = ecs_ok(&d, agent, "RegisterContainerInstance", register_body()).await;
    let instance = reg["containerInstance"]["containerInstanceArn"].as_str().unwrap().to_string();
    let ep = ecs_ok(&d, agent, "DiscoverPollEndpoint", json!({"cluster": "sim", "containerInstance": instance})).await;
    assert_eq!(ep["endpoint"], "http://10.1.2.3:4566/");
    let (status, first) = poll_as(&d, agent, &instance, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["desired"]["tasks"], json!([]));

    let run = ecs_ok(&d, ROOT, "RunTask", json!({"cluster": "sim", "taskDefinition": "web"})).await;
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let (_, next) = poll_as(&d, agent, &instance, first["version"].as_u64()).await;
    assert_eq!(next["desired"]["tasks"][0]["taskArn"], task.as_str());

    ecs_ok(&d, agent, "SubmitContainerStateChange", json!({"cluster": "sim", "task": task, "containerName": "web", "status": "RUNNING", "runtimeId": "r1"})).await;
    ecs_ok(&d, agent, "SubmitTaskStateChange", json!({"cluster": "sim", "task": task, "status": "RUNNING"})).await;
    ecs_ok(&d, agent, "SubmitAttachmentStateChanges", json!({"cluster": "sim", "attachments": [{"attachmentArn": "a", "status": "ATTACHED"}]})).await;
    let desc = ecs_ok(&d, ROOT, "DescribeTasks", json!({"cluster": "sim", "tasks": [task]})).await;
    assert_eq!(desc["tasks"][0]["lastStatus"], "RUNNING");
    assert_eq!(desc["tasks"][0]["containers"][0]["runtimeId"], "r1");

    // Who am I: the instance principal, as an assumed role.
    let (status, xml) = query_as(&d, agent, "sts", "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert_eq!(status, 200, "{xml}");
    assert!(xml.contains("<Arn>arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a</Arn>"), "{xml}");
    assert!(xml.contains("<Account>123456789012</Account>"), "{xml}");
    let user_id = xml.split("<UserId>").nth(1).and_then(|r| r.split("</UserId>").next()).unwrap();
    assert!(user_id.starts_with("AROA") && user_id.ends_with(":host-a"), "{user_id}");
    // The root stays the root.
    let (_, xml) = query_as(&d, ROOT, "sts", "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert!(xml.contains("<Arn>arn:aws:iam::123456789012:root</Arn>") && xml.contains("<UserId>123456789012</UserId>"), "{xml}");
}

#[tokio::test]
async fn minted_key_is_denied_everything_else() {
    let d = door();
    let creds = mint_ok(&d, "host-a").await;
    let agent = key_of(&creds);
    ecs_ok(&d, ROOT, "CreateCluster", json!({"clusterName": "sim"})).await;

    let (status, out) = ecs_as(&d, agent, "CreateCluster", json!({"clusterName": "mine"})).await;
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "AccessDeniedException");
    assert_eq!(
        out["message"],
        "User: arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/host-a is not authorized to perform: ecs:CreateCluster on resource: arn:aws:ecs:us-east-1:123456789012:cluster/mine because no identity-based policy allows the ecs:CreateCluster action"
    );
    for op in ["RunTask", "StopTask", "DescribeTasks", "ListClusters", "DeregisterContainerInstance", "UpdateContainerInstancesState", "CreateService"] {
        let (status, out) = ecs_as(&d, agent, op, json!({"cluster": "sim"})).await;
        assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "{op}: {out}");
        assert!(out["message"].as_str().unwrap().contains(&format!("ecs:{op}")), "{out}");
    }
    // Nothing was created.
    let listed = ecs_ok(&d, ROOT, "ListClusters", json!({})).await;
    assert_eq!(listed["clusterArns"].as_array().unwrap().len(), 1);
    // A name outside the ECS model is unknown to everyone.
    let (_, out) = ecs_as(&d, agent, "FlyToTheMoon", json!({})).await;
    assert_eq!(out["__type"], "UnknownOperationException");

    // An agent cannot mint more keys.
    let (status, out) = mint_as(&d, agent, r#"{"name": "host-b"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(out["__type"], "AccessDeniedException");
    assert!(out["message"].as_str().unwrap().contains("berth:CreateInstanceCredentials"), "{out}");

    // EC2 and STS say it their way.
    let (status, xml) = query_as(&d, agent, "ec2", "Action=DescribeVpcs&Version=2016-11-15").await;
    assert_eq!(status, 403);
    assert!(xml.contains("<Code>UnauthorizedOperation</Code>"), "{xml}");
    assert!(xml.contains("is not authorized to perform: ec2:DescribeVpcs"), "{xml}");
    let (status, xml) = query_as(&d, ROOT, "ec2", "Action=DescribeVpcs&Version=2016-11-15").await;
    assert_eq!(status, 200, "{xml}");
    let (status, xml) = query_as(&d, agent, "sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fadmin&RoleSessionName=escape").await;
    assert_eq!(status, 403);
    assert!(xml.contains("<Code>AccessDenied</Code>") && xml.contains("sts:AssumeRole"), "{xml}");
}

#[tokio::test]
async fn unknown_and_wrongly_signed_keys_are_refused_as_aws_refuses_them() {
    let d = door();
    let creds = mint_ok(&d, "host-a").await;
    let unknown = Key { id: "AKIAZZZZZZZZZZZZZZZZ", secret: "whatever-secret-whatever-secret-whatever" };
    let (status, out) = ecs_as(&d, unknown, "RegisterContainerInstance", register_body()).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("UnrecognizedClientException")), "{out}");
    let (status, xml) = query_as(&d, unknown, "sts", "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert_eq!(status, 403);
    assert!(xml.contains("<Code>InvalidClientTokenId</Code>"), "{xml}");

    let wrong = Key { id: &creds.access_key_id, secret: "not-the-secret-not-the-secret-not-the-se" };
    let (status, out) = ecs_as(&d, wrong, "RegisterContainerInstance", register_body()).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidSignatureException")), "{out}");
    assert!(out["message"].as_str().unwrap().starts_with("The request signature we calculated does not match"), "{out}");
    let (status, xml) = query_as(&d, wrong, "sts", "Action=GetCallerIdentity&Version=2011-06-15").await;
    assert_eq!(status, 403);
    assert!(xml.contains("<Code>SignatureDoesNotMatch</Code>"), "{xml}");
    // Nor does the root secret open a minted key id.
    let root_secret = Key { id: &creds.access_key_id, secret: ROOT_SECRET };
    let (_, out) = ecs_as(&d, root_secret, "DiscoverPollEndpoint", json!({})).await;
    assert_eq!(out["__type"], "InvalidSignatureException");
}

#[tokio::test]
async fn minting_over_the_wire_checks_its_input() {
    let d = door();
    // No body: a nameless key, its id as the session name.
    let (status, out) = mint_as(&d, ROOT, "").await;
    assert_eq!(status, 200, "{out}");
    let akid = out["accessKeyId"].as_str().unwrap();
    assert_eq!(out["principalArn"], format!("arn:aws:sts::123456789012:assumed-role/BerthInstanceRole/{akid}"));

    let (status, out) = mint_as(&d, ROOT, r#"{"name": "no/slashes"}"#).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("InvalidParameterException")), "{out}");
    let (status, out) = mint_as(&d, ROOT, r#"{"name": 5}"#).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("SerializationException")), "{out}");
    let wrong_service = signed(&d, ROOT, "sts", berth_agent_protocol::CREDENTIALS_PATH, &[], "{}");
    let (_, out) = send(&d, wrong_service).await;
    assert_eq!(out["__type"], "InvalidSignatureException");
    assert!(out["message"].as_str().unwrap().contains("'ecs'"), "{out}");
}

#[tokio::test]
async fn minted_credentials_survive_a_store_reopen() {
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("berth.redb");
    let account: berth_arn::AccountId = ACCOUNT.parse().unwrap();

    let (over_wire, in_process) = {
        let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::redb_backend::RedbStore::open(&path).unwrap());
        // `berth up`: mint in process before any front door exists.
        let local = berth_server::instance_credentials::mint(&*store, &account, &master(), Some("local"), std::time::SystemTime::now())
            .await
            .unwrap();
        let d = door_over(store);
        ecs_ok(&d, ROOT, "CreateCluster", json!({"clusterName": "sim"})).await;
        // The in-process key works at once, through the same door.
        ecs_ok(&d, key_of(&local.clone().into()), "RegisterContainerInstance", register_body()).await;
        (mint_ok(&d, "host-a").await, local)
    };

    let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::redb_backend::RedbStore::open(&path).unwrap());
    let d = door_over(store);
    for creds in [over_wire, in_process.into()] {
        let out = ecs_ok(&d, key_of(&creds), "RegisterContainerInstance", register_body()).await;
        assert_eq!(out["containerInstance"]["status"], "ACTIVE");
        let (_, xml) = query_as(&d, key_of(&creds), "sts", "Action=GetCallerIdentity&Version=2011-06-15").await;
        assert!(xml.contains(&format!("<Arn>{}</Arn>", creds.principal_arn)), "{xml}");
    }
}

#[tokio::test]
async fn an_agent_acts_only_for_its_own_instance() {
    let d = door();
    ecs_ok(&d, ROOT, "CreateCluster", json!({"clusterName": "sim"})).await;
    ecs_ok(&d, ROOT, "RegisterTaskDefinition", json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}]})).await;
    let (a, b) = (mint_ok(&d, "host-a").await, mint_ok(&d, "host-b").await);
    let reg = ecs_ok(&d, key_of(&a), "RegisterContainerInstance", register_body()).await;
    let instance_a = reg["containerInstance"]["containerInstanceArn"].as_str().unwrap().to_string();
    ecs_ok(&d, key_of(&b), "RegisterContainerInstance", json!({"cluster": "sim", "totalResources": register_body()["totalResources"], "instanceIdentityDocument": "host-b"})).await;
    let run = ecs_ok(&d, ROOT, "RunTask", json!({"cluster": "sim", "taskDefinition": "web", "placementConstraints": [{"type": "memberOf", "expression": format!("ec2InstanceId == {}", reg["containerInstance"]["ec2InstanceId"].as_str().unwrap())}]})).await;
    let task = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert_eq!(run["tasks"][0]["containerInstanceArn"], instance_a.as_str());

    // host-b may not read host-a's desired state (its tasks' credentials),
    let (status, out) = poll_as(&d, key_of(&b), &instance_a, None).await;
    assert_eq!((status, out["__type"].as_str()), (400, Some("AccessDeniedException")), "{out}");
    assert!(out["message"].as_str().unwrap().contains("belongs to another agent"), "{out}");
    // nor report for its tasks, nor take the instance over.
    let (_, out) = ecs_as(&d, key_of(&b), "SubmitTaskStateChange", json!({"cluster": "sim", "task": task, "status": "STOPPED"})).await;
    assert_eq!(out["__type"], "AccessDeniedException", "{out}");
    let (_, out) = ecs_as(&d, key_of(&b), "RegisterContainerInstance", json!({"cluster": "sim", "containerInstanceArn": instance_a, "totalResources": register_body()["totalResources"]})).await;
    assert_eq!(out["__type"], "AccessDeniedException", "{out}");
    let desc = ecs_ok(&d, ROOT, "DescribeTasks", json!({"cluster": "sim", "tasks": [task]})).await;
    assert_eq!(desc["tasks"][0]["lastStatus"], "PENDING", "nothing host-b sent took effect");
    // host-a may; so may the root.
    let (status, out) = poll_as(&d, key_of(&a), &instance_a, None).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["desired"]["tasks"][0]["taskArn"], task.as_str());
    let (status, _) = poll_as(&d, ROOT, &instance_a, None).await;
    assert_eq!(status, 200);
}

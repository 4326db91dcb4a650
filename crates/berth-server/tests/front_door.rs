//! The front door in-process: signed and unsigned requests, routing, error
//! rendering, and property tests that no input panics or escapes the
//! error classes.

use berth_clock::{Clock, FakeClock};
use berth_server::credentials::{self, AccountIdentity, Overrides};
use berth_server::FrontDoor;
use berth_sigv4::signer::{self, Credentials, SigningParams};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const AKID: &str = "AKIAFRONTDOORTEST001";
const SECRET: &str = "front-door-test-secret-key-0123456789";
const NOW: u64 = 1_795_000_000;

struct Door {
    door: FrontDoor,
    clock: Arc<FakeClock>,
    _dir: tempfile::TempDir,
}

fn identity(dir: &std::path::Path) -> AccountIdentity {
    credentials::load_or_create(
        dir,
        &Overrides {
            account_id: Some("123456789012".into()),
            root_access_key_id: Some(AKID.into()),
            root_secret_access_key: Some(SECRET.into()),
        },
    )
    .unwrap()
}

fn door_with_limit(max_body: usize) -> Door {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock::at_epoch_secs(NOW));
    let store: Arc<dyn berth_store::Store> = Arc::new(berth_store::memory::MemoryStore::new());
    let identity = identity(dir.path());
    let iam = berth_iam::Iam::with_state(store.clone(), identity.account_id.clone(), berth_iam::MasterKey::generate(), Default::default(), 0);
    let door = FrontDoor::new(identity, berth_ecs::Ecs::new(store), iam, clock.clone(), max_body);
    Door { door, clock, _dir: dir }
}

fn door() -> Door {
    door_with_limit(berth_server::front_door::DEFAULT_MAX_BODY_BYTES)
}

fn signed_json(target: &str, body: &str, secret: &str, region: &str, service: &str, at: u64) -> Request<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
    let params = SigningParams {
        credentials: Credentials { access_key_id: AKID, secret_access_key: secret, session_token: None },
        region,
        service,
        time: std::time::UNIX_EPOCH + Duration::from_secs(at),
    };
    signer::sign("POST", "/", "", &mut headers, body.as_bytes(), &params).unwrap();
    let mut req = Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

fn ecs(op: &str, body: &str) -> Request<Full<Bytes>> {
    signed_json(&format!("AmazonEC2ContainerServiceV20141113.{op}"), body, SECRET, "us-east-1", "ecs", NOW)
}

async fn call(d: &Door, req: Request<Full<Bytes>>) -> (u16, HeaderMap, serde_json::Value) {
    let resp = d.door.handle(req).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    (status, headers, json)
}

#[tokio::test]
async fn signed_ecs_request_is_served_with_request_id() {
    let d = door();
    let (status, headers, body) = call(&d, ecs("CreateCluster", r#"{"clusterName":"demo"}"#)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cluster"]["clusterArn"], "arn:aws:ecs:us-east-1:123456789012:cluster/demo");
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert_eq!(headers["x-amzn-requestid"].len(), 36);
    assert!(headers["server-timing"].to_str().unwrap().starts_with("app;dur="));
}

#[tokio::test]
async fn health_needs_no_auth() {
    let d = door();
    let req = Request::builder().method("GET").uri("/health").body(Full::new(Bytes::new())).unwrap();
    let (status, _, body) = call(&d, req).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn auth_failures_use_aws_words() {
    let d = door();
    let unsigned = Request::builder()
        .method("POST")
        .uri("/")
        .header("x-amz-target", "AmazonEC2ContainerServiceV20141113.ListClusters")
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (status, _, body) = call(&d, unsigned).await;
    assert_eq!((status, body["__type"].as_str().unwrap()), (403, "MissingAuthenticationTokenException"));

    let wrong = signed_json("AmazonEC2ContainerServiceV20141113.ListClusters", "{}", "not-the-secret-at-all", "us-east-1", "ecs", NOW);
    let (status, _, body) = call(&d, wrong).await;
    assert_eq!((status, body["__type"].as_str().unwrap()), (400, "InvalidSignatureException"));

    let stale = signed_json("AmazonEC2ContainerServiceV20141113.ListClusters", "{}", SECRET, "us-east-1", "ecs", NOW - 16 * 60);
    let (_, _, body) = call(&d, stale).await;
    assert_eq!(body["__type"], "InvalidSignatureException");
    assert!(body["message"].as_str().unwrap().starts_with("Signature expired"), "{body}");

    // Within the 15-minute window either way is fine.
    d.clock.advance(Duration::from_secs(14 * 60));
    let (status, _, _) = call(&d, ecs("ListClusters", "{}")).await;
    assert_eq!(status, 200);

    let wrong_service = signed_json("AmazonEC2ContainerServiceV20141113.ListClusters", "{}", SECRET, "us-east-1", "s3", NOW);
    let (_, _, body) = call(&d, wrong_service).await;
    assert_eq!(body["__type"], "InvalidSignatureException");
    assert!(body["message"].as_str().unwrap().contains("'ecs'"));
}

#[tokio::test]
async fn regions_are_separate_namespaces() {
    let d = door();
    call(&d, ecs("CreateCluster", r#"{"clusterName":"east"}"#)).await;
    let west = signed_json("AmazonEC2ContainerServiceV20141113.ListClusters", "{}", SECRET, "eu-west-1", "ecs", NOW);
    let (_, _, body) = call(&d, west).await;
    assert_eq!(body["clusterArns"], serde_json::json!([]));
    let (_, _, body) = call(&d, ecs("ListClusters", "{}")).await;
    assert_eq!(body["clusterArns"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn routing_errors() {
    let d = door();
    let (_, _, body) = call(&d, ecs("ExecuteCommand", r#"{"task":"x"}"#)).await;
    assert_eq!(body["__type"], "UnsupportedFeatureException");
    assert!(body["message"].as_str().unwrap().contains("ExecuteCommand"));

    let (_, _, body) = call(&d, ecs("FlyToTheMoon", "{}")).await;
    assert_eq!(body["__type"], "UnknownOperationException");

    let unknown_service = signed_json("NoSuchService_2020.Op", "{}", SECRET, "us-east-1", "ecs", NOW);
    let (_, _, body) = call(&d, unknown_service).await;
    assert_eq!(body["__type"], "UnknownOperationException");

    let (_, _, body) = call(&d, ecs("CreateCluster", "{not json")).await;
    assert_eq!(body["__type"], "SerializationException");
    let (_, _, body) = call(&d, ecs("CreateCluster", r#"{"clusterName": 5}"#)).await;
    assert_eq!(body["__type"], "SerializationException");
}

#[tokio::test]
async fn oversized_body_is_refused_clearly() {
    let d = door_with_limit(1024);
    let body = format!(r#"{{"clusterName":"{}"}}"#, "a".repeat(2048));
    let (status, _, body) = call(&d, ecs("CreateCluster", &body)).await;
    assert_eq!(status, 413);
    assert_eq!(body["__type"], "RequestEntityTooLarge");
}

fn signed_form(d: &Door, form: &str, service: &str) -> Request<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
    let params = SigningParams {
        credentials: Credentials { access_key_id: AKID, secret_access_key: SECRET, session_token: None },
        region: "us-east-1",
        service,
        time: d.clock.now(),
    };
    signer::sign("POST", "/", "", &mut headers, form.as_bytes(), &params).unwrap();
    let mut req = Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    req.body(Full::new(Bytes::from(form.to_string()))).unwrap()
}

#[tokio::test]
async fn ec2_requests_reach_the_default_vpc() {
    let d = door();
    let (status, _, body) = call(&d, signed_form(&d, "Action=DescribeVpcs&Version=2016-11-15", "ec2")).await;
    assert_eq!(status, 200);
    let xml = body.as_str().unwrap();
    assert!(xml.contains("<isDefault>true</isDefault>"), "{xml}");
    let (status, _, body) = call(&d, signed_form(&d, "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-0123456789abcdef0", "ec2")).await;
    assert_eq!(status, 400);
    assert!(body.as_str().unwrap().contains("<Code>InvalidVpcID.NotFound</Code>"), "{body}");
}

#[tokio::test]
async fn sts_get_caller_identity_over_query_protocol() {
    let d = door();
    let form = "Action=GetCallerIdentity&Version=2011-06-15";
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4566"));
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
    let params = SigningParams {
        credentials: Credentials { access_key_id: AKID, secret_access_key: SECRET, session_token: None },
        region: "us-east-1",
        service: "sts",
        time: d.clock.now(),
    };
    signer::sign("POST", "/", "", &mut headers, form.as_bytes(), &params).unwrap();
    let mut req = Request::builder().method("POST").uri("/");
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let (status, _, body) = call(&d, req.body(Full::new(Bytes::from(form))).unwrap()).await;
    assert_eq!(status, 200);
    let xml = body.as_str().unwrap();
    assert!(xml.contains("<Account>123456789012</Account>"), "{xml}");
    assert!(xml.contains("<Arn>arn:aws:iam::123456789012:root</Arn>"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

const ALLOWED_CODES: &[&str] = &[
    "SerializationException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
    "UnknownOperationException",
    "UnsupportedFeatureException",
    "InvalidParameterException",
    "ClientException",
    "ClusterNotFoundException",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Arbitrary bytes as a signed body: always a well-formed JSON answer,
    /// never a 500.
    #[test]
    fn any_signed_body_gets_a_classified_answer(body in proptest::collection::vec(any::<u8>(), 0..300),
                                                 op in prop::sample::select(vec!["CreateCluster", "DescribeClusters", "ListClusters", "TagResource", "DeleteCluster", "PutClusterCapacityProviders"])) {
        let d = door();
        let body = String::from_utf8_lossy(&body).into_owned();
        let (status, _, answer) = runtime().block_on(call(&d, ecs(op, &body)));
        prop_assert!(status == 200 || status == 400, "status {status}: {answer}");
        if status == 400 {
            let code = answer["__type"].as_str().unwrap_or("");
            prop_assert!(ALLOWED_CODES.contains(&code), "unexpected code {code}");
        }
    }

    /// Arbitrary Authorization headers and dates: a SigV4 error, never a panic.
    #[test]
    fn any_authorization_header_is_rejected_cleanly(auth in "\\PC{0,200}", date in "[0-9TZ]{0,20}") {
        let d = door();
        let mut req = Request::builder()
            .method("POST")
            .uri("/")
            .header("x-amz-target", "AmazonEC2ContainerServiceV20141113.ListClusters")
            .header("host", "127.0.0.1");
        if let Ok(v) = HeaderValue::from_str(&auth) { req = req.header("authorization", v); }
        if let Ok(v) = HeaderValue::from_str(&date) { req = req.header("x-amz-date", v); }
        let (status, _, answer) = runtime().block_on(call(&d, req.body(Full::new(Bytes::from_static(b"{}"))).unwrap()));
        prop_assert!(status == 400 || status == 403);
        let code = answer["__type"].as_str().unwrap_or("");
        prop_assert!(ALLOWED_CODES.contains(&code), "unexpected code {code}");
    }

    /// Odd unicode in names is validated, never crashes, and round-trips when accepted.
    #[test]
    fn odd_cluster_names(name in "\\PC{0,300}") {
        let d = door();
        let body = serde_json::json!({"clusterName": name}).to_string();
        let (status, _, answer) = runtime().block_on(call(&d, ecs("CreateCluster", &body)));
        if status == 200 {
            prop_assert_eq!(answer["cluster"]["clusterName"].as_str().unwrap(), name.as_str());
        } else {
            prop_assert_eq!(answer["__type"].as_str().unwrap(), "InvalidParameterException");
        }
    }
}

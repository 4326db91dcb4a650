//! The wire: operations of the ECS model Berth does not serve yet, unknown
//! targets, oversized and malformed bodies, response headers, health, and
//! many requests on one kept-alive client.

mod common;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use common::{BerthServer, ecs_target, error_code, raw_request};

#[tokio::test]
async fn unserved_ecs_operation_names_itself() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let err = ecs
        .describe_task_sets()
        .cluster("default")
        .service("web")
        .send()
        .await
        .expect_err("DescribeTaskSets is not served yet");
    assert_eq!(error_code(&err), "UnsupportedFeatureException", "{err:?}");
    let message = err.message().unwrap_or_default().to_string();
    assert!(
        message.contains("DescribeTaskSets"),
        "message should name the operation: {message}"
    );
    assert!(err.into_service_error().is_unsupported_feature_exception());
}

#[tokio::test]
async fn unknown_target_is_unknown_operation() {
    let server = BerthServer::start();
    let resp = server.signed_ecs_request(&ecs_target("FlyToTheMoon"), b"{}");
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.error_type(), "UnknownOperationException");
    assert!(resp.header("x-amzn-requestid").is_some());

    // A target that is not of the ECS service at all.
    let resp = server.signed_ecs_request("NoSuchService_20200101.DoThings", b"{}");
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.error_type(), "UnknownOperationException");
}

#[tokio::test]
async fn signed_raw_request_works_and_reports_timing() {
    let server = BerthServer::start();
    let resp = server.signed_ecs_request(&ecs_target("CreateCluster"), br#"{"clusterName":"raw"}"#);
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(resp.json()["cluster"]["clusterName"], "raw");
    assert!(
        resp.header("content-type")
            .is_some_and(|v| v.starts_with("application/x-amz-json-1.1")),
        "{resp:?}"
    );
    let timing = resp.header("server-timing").expect("server-timing header");
    assert!(timing.starts_with("app;dur="), "{timing}");
    assert!(
        timing["app;dur=".len()..].parse::<f64>().is_ok(),
        "{timing}"
    );
    assert!(
        resp.header("x-amzn-requestid")
            .is_some_and(|v| !v.is_empty())
    );
}

#[tokio::test]
async fn health_needs_no_signature() {
    let server = BerthServer::start();
    let resp = raw_request(server.port, "GET", "/health", &[], b"");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.json()["status"], "ok");
}

#[tokio::test]
async fn oversized_body_is_413_and_the_server_carries_on() {
    let server = BerthServer::start();
    let body = vec![b' '; 11 * 1024 * 1024];
    let headers = vec![
        ("content-type".to_string(), common::JSON_1_1.to_string()),
        ("x-amz-target".to_string(), ecs_target("CreateCluster")),
    ];
    let resp = raw_request(server.port, "POST", "/", &headers, &body);
    assert_eq!(resp.status, 413, "{resp:?}");
    assert_eq!(resp.error_type(), "RequestEntityTooLarge");

    let ecs = server.ecs_client();
    ecs.create_cluster()
        .cluster_name("after-413")
        .send()
        .await
        .expect("CreateCluster after a 413");
    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert_eq!(listed.cluster_arns().len(), 1);
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_serialization_errors() {
    let server = BerthServer::start();
    let create = ecs_target("CreateCluster");

    for body in [
        &b"{\"clusterName\": "[..],
        b"not json",
        b"[1, 2]",
        b"\"text\"",
    ] {
        let resp = server.signed_ecs_request(&create, body);
        assert_eq!(
            resp.status,
            400,
            "{:?}: {resp:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(
            resp.error_type(),
            "SerializationException",
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert!(resp.header("x-amzn-requestid").is_some());
    }

    // Well-formed JSON with a member of the wrong type.
    let resp = server.signed_ecs_request(&create, br#"{"clusterName": 5}"#);
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.error_type(), "SerializationException");
    let resp = server.signed_ecs_request(
        &ecs_target("DescribeClusters"),
        br#"{"clusters": "not-a-list"}"#,
    );
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.error_type(), "SerializationException");
    let resp = server.signed_ecs_request(&ecs_target("ListClusters"), br#"{"maxResults": "ten"}"#);
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.error_type(), "SerializationException");

    // Nothing was created by any of them; an empty body means `{}`.
    let resp = server.signed_ecs_request(&ecs_target("ListClusters"), b"");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.json()["clusterArns"], serde_json::json!([]));
}

#[tokio::test]
async fn two_hundred_sequential_calls_on_one_client() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    ecs.create_cluster()
        .cluster_name("keepalive")
        .send()
        .await
        .expect("CreateCluster");
    for i in 0..200 {
        let out = ecs
            .describe_clusters()
            .clusters("keepalive")
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeClusters #{i}: {e:?}"));
        assert_eq!(out.clusters().len(), 1, "call #{i}");
    }
}

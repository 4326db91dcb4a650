//! Authentication as the SDK sees it: wrong secret, unknown access key, no
//! signature at all, STS GetCallerIdentity, and regions as separate
//! namespaces.

mod common;

use aws_sdk_ecs::error::ProvideErrorMetadata;
use common::{BerthServer, ecs_target, error_code, raw_request, unique};

#[tokio::test]
async fn wrong_secret_is_invalid_signature() {
    let server = BerthServer::start();
    let ecs = server.ecs_client_with(
        &server.creds.access_key_id,
        "wrong-secret-wrong-secret-wrong-secret",
        "us-east-1",
    );
    let err = ecs
        .list_clusters()
        .send()
        .await
        .expect_err("wrong secret must fail");
    assert_eq!(error_code(&err), "InvalidSignatureException", "{err:?}");
    let raw = err.raw_response().expect("an HTTP response came back");
    assert!(raw.status().is_client_error(), "{:?}", raw.status());
    assert!(raw.headers().get("x-amzn-requestid").is_some());
    // The message never echoes the secret or the signature.
    let message = err.message().unwrap_or_default().to_string();
    assert!(!message.contains("wrong-secret"), "{message}");
}

#[tokio::test]
async fn unknown_access_key_is_unrecognized_client() {
    let server = BerthServer::start();
    let ecs = server.ecs_client_with(
        "AKIAUNKNOWNUNKNOWN00",
        &server.creds.secret_access_key,
        "us-east-1",
    );
    let err = ecs
        .describe_clusters()
        .send()
        .await
        .expect_err("unknown key must fail");
    assert_eq!(error_code(&err), "UnrecognizedClientException", "{err:?}");
    assert!(
        err.raw_response()
            .is_some_and(|r| r.status().is_client_error())
    );
}

#[tokio::test]
async fn no_authentication_is_missing_token_with_403() {
    let server = BerthServer::start();
    let headers = vec![
        ("content-type".to_string(), common::JSON_1_1.to_string()),
        ("x-amz-target".to_string(), ecs_target("ListClusters")),
    ];
    let resp = raw_request(server.port, "POST", "/", &headers, b"{}");
    assert_eq!(resp.status, 403, "{resp:?}");
    assert_eq!(resp.error_type(), "MissingAuthenticationTokenException");
    assert!(resp.json()["message"].is_string());
    assert!(
        resp.header("x-amzn-requestid")
            .is_some_and(|v| !v.is_empty()),
        "{resp:?}"
    );

    // And the server is fine afterwards.
    server
        .ecs_client()
        .list_clusters()
        .send()
        .await
        .expect("signed request after an unsigned one");
}

#[tokio::test]
async fn sts_get_caller_identity_names_the_root_account() {
    let server = BerthServer::start();
    let out = server
        .sts_client()
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(out.account(), Some(server.creds.account_id.as_str()));
    assert_eq!(
        out.arn(),
        Some(format!("arn:aws:iam::{}:root", server.creds.account_id).as_str())
    );
    assert!(out.user_id().is_some_and(|u| !u.is_empty()));
}

#[tokio::test]
async fn regions_are_separate_namespaces() {
    let server = BerthServer::start();
    let east = server.ecs_client_in("us-east-1");
    let west = server.ecs_client_in("eu-west-1");
    let name = unique("regional");
    let arn = east
        .create_cluster()
        .cluster_name(&name)
        .send()
        .await
        .expect("CreateCluster in us-east-1")
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("arn")
        .to_string();
    assert!(arn.starts_with("arn:aws:ecs:us-east-1:"), "{arn}");

    let listed = west
        .list_clusters()
        .send()
        .await
        .expect("ListClusters in eu-west-1");
    assert!(
        listed.cluster_arns().is_empty(),
        "{:?}",
        listed.cluster_arns()
    );
    let described = west
        .describe_clusters()
        .clusters(&name)
        .send()
        .await
        .expect("DescribeClusters in eu-west-1");
    assert!(described.clusters().is_empty());
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));
    assert_eq!(
        described.failures()[0].arn(),
        Some(
            format!(
                "arn:aws:ecs:eu-west-1:{}:cluster/{name}",
                server.creds.account_id
            )
            .as_str()
        )
    );
    let err = west
        .delete_cluster()
        .cluster(&name)
        .send()
        .await
        .expect_err("delete from the other region");
    assert!(err.into_service_error().is_cluster_not_found_exception());

    // The same name in eu-west-1 is a different cluster.
    let west_arn = west
        .create_cluster()
        .cluster_name(&name)
        .send()
        .await
        .expect("CreateCluster in eu-west-1")
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("arn")
        .to_string();
    assert!(west_arn.starts_with("arn:aws:ecs:eu-west-1:"), "{west_arn}");
    let east_list = east
        .list_clusters()
        .send()
        .await
        .expect("ListClusters in us-east-1");
    assert_eq!(east_list.cluster_arns(), [arn]);
}

//! TagResource, UntagResource and ListTagsForResource on a cluster and on a
//! task definition revision, and on resources that do not exist.

mod common;

use aws_sdk_ecs::types::{ContainerDefinition, Tag};
use common::{BerthServer, error_code, unique};
use std::collections::BTreeMap;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn as_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn list(ecs: &aws_sdk_ecs::Client, arn: &str) -> BTreeMap<String, String> {
    as_map(
        ecs.list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource")
            .tags(),
    )
}

/// Tag, re-tag (replace a value), untag (including a key that is not
/// there), all on one resource ARN.
async fn exercise(ecs: &aws_sdk_ecs::Client, arn: &str, initial: &[(&str, &str)]) {
    assert_eq!(list(ecs, arn).await, map(initial));
    ecs.tag_resource()
        .resource_arn(arn)
        .tags(tag("a", "1"))
        .tags(tag("b", "2"))
        .send()
        .await
        .expect("TagResource");
    let mut want = map(initial);
    want.extend(map(&[("a", "1"), ("b", "2")]));
    assert_eq!(list(ecs, arn).await, want);

    ecs.tag_resource()
        .resource_arn(arn)
        .tags(tag("a", "one"))
        .send()
        .await
        .expect("TagResource replace");
    want.insert("a".into(), "one".into());
    assert_eq!(list(ecs, arn).await, want);

    ecs.untag_resource()
        .resource_arn(arn)
        .tag_keys("b")
        .tag_keys("never-set")
        .send()
        .await
        .expect("UntagResource");
    want.remove("b");
    assert_eq!(list(ecs, arn).await, want);

    // Reserved prefix and too many tags are refused and change nothing.
    let err = ecs
        .tag_resource()
        .resource_arn(arn)
        .tags(tag("aws:owner", "x"))
        .send()
        .await
        .expect_err("aws: prefix");
    assert_eq!(error_code(&err), "InvalidParameterException");
    let mut req = ecs.tag_resource().resource_arn(arn);
    for i in 0..51 {
        req = req.tags(tag(&format!("k{i}"), "v"));
    }
    let err = req.send().await.expect_err("51 tags");
    assert_eq!(error_code(&err), "InvalidParameterException");
    assert_eq!(list(ecs, arn).await, want);
}

#[tokio::test]
async fn tags_on_a_cluster() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let name = unique("tagged");
    let out = ecs
        .create_cluster()
        .cluster_name(&name)
        .tags(tag("initial", "yes"))
        .send()
        .await
        .expect("CreateCluster");
    let arn = out
        .cluster()
        .and_then(|c| c.cluster_arn())
        .expect("arn")
        .to_string();
    exercise(&ecs, &arn, &[("initial", "yes")]).await;

    // After deletion the cluster can no longer be tagged.
    ecs.delete_cluster()
        .cluster(&name)
        .send()
        .await
        .expect("DeleteCluster");
    let err = ecs
        .tag_resource()
        .resource_arn(&arn)
        .tags(tag("late", "1"))
        .send()
        .await
        .expect_err("tag deleted");
    assert_eq!(error_code(&err), "ClusterNotFoundException");
}

#[tokio::test]
async fn tags_on_a_task_definition() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let family = unique("tagged-family");
    let out = ecs
        .register_task_definition()
        .family(&family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("nginx:latest")
                .memory(128)
                .build(),
        )
        .tags(tag("initial", "td"))
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let arn = out
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("arn")
        .to_string();
    assert_eq!(
        out.tags().len(),
        1,
        "RegisterTaskDefinition returns the tags"
    );
    exercise(&ecs, &arn, &[("initial", "td")]).await;
}

#[tokio::test]
async fn tags_on_unknown_resources() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = &server.creds.account_id;

    let cluster_arn = format!("arn:aws:ecs:us-east-1:{account}:cluster/ghost");
    let err = ecs
        .list_tags_for_resource()
        .resource_arn(&cluster_arn)
        .send()
        .await
        .expect_err("unknown cluster");
    assert_eq!(error_code(&err), "ClusterNotFoundException");
    let err = ecs
        .tag_resource()
        .resource_arn(&cluster_arn)
        .tags(tag("a", "b"))
        .send()
        .await
        .expect_err("unknown cluster");
    assert_eq!(error_code(&err), "ClusterNotFoundException");

    let td_arn = format!("arn:aws:ecs:us-east-1:{account}:task-definition/ghost:1");
    let err = ecs
        .list_tags_for_resource()
        .resource_arn(&td_arn)
        .send()
        .await
        .expect_err("unknown task definition");
    assert_eq!(error_code(&err), "InvalidParameterException");
    let err = ecs
        .untag_resource()
        .resource_arn(&td_arn)
        .tag_keys("a")
        .send()
        .await
        .expect_err("unknown task definition");
    assert_eq!(error_code(&err), "InvalidParameterException");

    // Not an ARN at all, and an ARN of another account.
    let err = ecs
        .list_tags_for_resource()
        .resource_arn("not-an-arn")
        .send()
        .await
        .expect_err("not an ARN");
    assert_eq!(error_code(&err), "InvalidParameterException");
    let err = ecs
        .list_tags_for_resource()
        .resource_arn("arn:aws:ecs:us-east-1:000000000000:cluster/elsewhere")
        .send()
        .await
        .expect_err("other account");
    assert!(
        [
            "InvalidParameterException",
            "ClusterNotFoundException",
            "AccessDeniedException"
        ]
        .contains(&error_code(&err).as_str()),
        "{err:?}"
    );
}

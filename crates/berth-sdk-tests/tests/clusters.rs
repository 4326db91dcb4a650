//! Clusters through aws-sdk-ecs: create, describe (with every include),
//! list with pagination, update, update settings, delete, and the errors
//! ECS gives for unknown clusters and invalid names.

mod common;

use aws_sdk_ecs::types::{
    ClusterConfiguration, ClusterField, ClusterSetting, ClusterSettingName,
    ExecuteCommandConfiguration, ExecuteCommandLogging, Tag,
};
use common::{BerthServer, error_code, error_status, unique};
use std::collections::{BTreeMap, BTreeSet};

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn settings_map(settings: &[ClusterSetting]) -> BTreeMap<String, String> {
    settings
        .iter()
        .map(|s| {
            (
                s.name().map(|n| n.as_str().to_string()).unwrap_or_default(),
                s.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn create_describe_with_includes_update_and_delete() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let name = unique("web");
    let expected_arn = format!(
        "arn:aws:ecs:us-east-1:{}:cluster/{name}",
        server.creds.account_id
    );

    let created = ecs
        .create_cluster()
        .cluster_name(&name)
        .tags(tag("team", "platform"))
        .tags(tag("env", "test"))
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .configuration(
            ClusterConfiguration::builder()
                .execute_command_configuration(
                    ExecuteCommandConfiguration::builder()
                        .logging(ExecuteCommandLogging::Default)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster");
    let c = created.cluster().expect("cluster in CreateCluster output");
    assert_eq!(c.cluster_name(), Some(name.as_str()));
    assert_eq!(c.cluster_arn(), Some(expected_arn.as_str()));
    assert_eq!(c.status(), Some("ACTIVE"));
    assert_eq!(c.registered_container_instances_count(), 0);
    assert_eq!(c.running_tasks_count(), 0);
    assert_eq!(c.pending_tasks_count(), 0);
    assert_eq!(c.active_services_count(), 0);

    // CreateCluster of an ACTIVE name is idempotent.
    let again = ecs
        .create_cluster()
        .cluster_name(&name)
        .send()
        .await
        .expect("CreateCluster again");
    assert_eq!(
        again.cluster().and_then(|c| c.cluster_arn()),
        Some(expected_arn.as_str())
    );

    // Without include: no tags, settings or statistics.
    let plain = ecs
        .describe_clusters()
        .clusters(&name)
        .send()
        .await
        .expect("DescribeClusters");
    assert!(plain.failures().is_empty(), "{:?}", plain.failures());
    let c = &plain.clusters()[0];
    assert_eq!(c.cluster_arn(), Some(expected_arn.as_str()));
    assert!(c.tags().is_empty(), "{:?}", c.tags());
    assert!(c.statistics().is_empty(), "{:?}", c.statistics());
    assert!(c.settings().is_empty(), "{:?}", c.settings());

    // With every include, by ARN.
    let full = ecs
        .describe_clusters()
        .clusters(&expected_arn)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .include(ClusterField::Statistics)
        .include(ClusterField::Configurations)
        .send()
        .await
        .expect("DescribeClusters with include");
    assert!(full.failures().is_empty(), "{:?}", full.failures());
    assert_eq!(full.clusters().len(), 1);
    let c = &full.clusters()[0];
    assert_eq!(c.cluster_name(), Some(name.as_str()));
    assert_eq!(
        tags_map(c.tags()),
        BTreeMap::from([
            ("team".to_string(), "platform".to_string()),
            ("env".to_string(), "test".to_string())
        ])
    );
    assert_eq!(
        settings_map(c.settings())
            .get("containerInsights")
            .map(String::as_str),
        Some("enabled")
    );
    let stats: BTreeMap<&str, &str> = c
        .statistics()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap_or_default(),
                kv.value().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(stats.get("runningEC2TasksCount"), Some(&"0"), "{stats:?}");
    assert_eq!(stats.get("activeEC2ServiceCount"), Some(&"0"), "{stats:?}");
    let logging = c
        .configuration()
        .and_then(|cfg| cfg.execute_command_configuration())
        .and_then(|e| e.logging())
        .cloned();
    assert_eq!(logging, Some(ExecuteCommandLogging::Default));

    // UpdateClusterSettings.
    let updated = ecs
        .update_cluster_settings()
        .cluster(&name)
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("disabled")
                .build(),
        )
        .send()
        .await
        .expect("UpdateClusterSettings");
    let c = updated.cluster().expect("cluster");
    assert_eq!(
        settings_map(c.settings())
            .get("containerInsights")
            .map(String::as_str),
        Some("disabled")
    );

    // UpdateCluster: settings and configuration.
    let updated = ecs
        .update_cluster()
        .cluster(&name)
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enhanced")
                .build(),
        )
        .configuration(
            ClusterConfiguration::builder()
                .execute_command_configuration(
                    ExecuteCommandConfiguration::builder()
                        .logging(ExecuteCommandLogging::None)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("UpdateCluster");
    let c = updated.cluster().expect("cluster");
    assert_eq!(
        settings_map(c.settings())
            .get("containerInsights")
            .map(String::as_str),
        Some("enhanced")
    );
    let described = ecs
        .describe_clusters()
        .clusters(&name)
        .include(ClusterField::Settings)
        .include(ClusterField::Configurations)
        .send()
        .await
        .expect("DescribeClusters after update");
    let c = &described.clusters()[0];
    assert_eq!(
        settings_map(c.settings())
            .get("containerInsights")
            .map(String::as_str),
        Some("enhanced")
    );
    assert_eq!(
        c.configuration()
            .and_then(|cfg| cfg.execute_command_configuration())
            .and_then(|e| e.logging())
            .cloned(),
        Some(ExecuteCommandLogging::None)
    );

    // Delete: INACTIVE in describe, gone from list.
    let deleted = ecs
        .delete_cluster()
        .cluster(&name)
        .send()
        .await
        .expect("DeleteCluster");
    assert_eq!(deleted.cluster().and_then(|c| c.status()), Some("INACTIVE"));
    let after = ecs
        .describe_clusters()
        .clusters(&name)
        .send()
        .await
        .expect("DescribeClusters after delete");
    assert_eq!(
        after.clusters().len(),
        1,
        "deleted clusters stay describable"
    );
    assert_eq!(after.clusters()[0].status(), Some("INACTIVE"));
    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert!(
        !listed.cluster_arns().contains(&expected_arn),
        "{:?}",
        listed.cluster_arns()
    );

    // Deleting it again: the cluster is not found.
    let err = ecs
        .delete_cluster()
        .cluster(&name)
        .send()
        .await
        .expect_err("second delete fails");
    assert_eq!(error_code(&err), "ClusterNotFoundException");

    // Creating the name again makes a fresh ACTIVE cluster.
    let recreated = ecs
        .create_cluster()
        .cluster_name(&name)
        .send()
        .await
        .expect("re-create");
    assert_eq!(recreated.cluster().and_then(|c| c.status()), Some("ACTIVE"));
    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert!(listed.cluster_arns().contains(&expected_arn));
}

#[tokio::test]
async fn list_clusters_paginates_over_every_cluster_once() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let mut want = BTreeSet::new();
    for i in 0..7 {
        let out = ecs
            .create_cluster()
            .cluster_name(format!("page-{i}"))
            .send()
            .await
            .expect("CreateCluster");
        want.insert(
            out.cluster()
                .and_then(|c| c.cluster_arn())
                .expect("arn")
                .to_string(),
        );
    }

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = ecs
            .list_clusters()
            .max_results(3)
            .set_next_token(token.clone())
            .send()
            .await
            .expect("ListClusters");
        assert!(
            out.cluster_arns().len() <= 3,
            "page larger than maxResults: {:?}",
            out.cluster_arns()
        );
        seen.extend(out.cluster_arns().iter().cloned());
        pages += 1;
        assert!(pages <= 7, "pagination does not end");
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "7 clusters in pages of 3");
    let unique_seen: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique_seen.len(),
        seen.len(),
        "a cluster was listed twice: {seen:?}"
    );
    assert_eq!(unique_seen, want);

    // The SDK's paginator agrees.
    let all: Vec<String> = ecs
        .list_clusters()
        .max_results(2)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("paginator");
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(all.len(), 7);

    // Out of range maxResults.
    let err = ecs
        .list_clusters()
        .max_results(101)
        .send()
        .await
        .expect_err("maxResults 101");
    assert_eq!(error_code(&err), "InvalidParameterException");
    let err = ecs
        .list_clusters()
        .next_token("not-a-token")
        .send()
        .await
        .expect_err("bad token");
    assert_eq!(error_code(&err), "InvalidParameterException");
}

#[tokio::test]
async fn unknown_clusters_and_invalid_names() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = &server.creds.account_id;

    // Describe unknown: a MISSING failure naming the ARN.
    let out = ecs
        .describe_clusters()
        .clusters("nope")
        .send()
        .await
        .expect("DescribeClusters");
    assert!(out.clusters().is_empty());
    assert_eq!(out.failures().len(), 1);
    assert_eq!(
        out.failures()[0].arn(),
        Some(format!("arn:aws:ecs:us-east-1:{account}:cluster/nope").as_str())
    );
    assert_eq!(out.failures()[0].reason(), Some("MISSING"));

    // An unknown ARN is echoed as given.
    let arn = format!("arn:aws:ecs:us-east-1:{account}:cluster/ghost");
    let out = ecs
        .describe_clusters()
        .clusters(&arn)
        .send()
        .await
        .expect("DescribeClusters by ARN");
    assert_eq!(out.failures()[0].arn(), Some(arn.as_str()));
    assert_eq!(out.failures()[0].reason(), Some("MISSING"));

    // Delete unknown: the typed ClusterNotFoundException.
    let err = ecs
        .delete_cluster()
        .cluster("nope")
        .send()
        .await
        .expect_err("DeleteCluster of unknown");
    assert_eq!(error_status(&err), 400);
    assert_eq!(error_code(&err), "ClusterNotFoundException");
    assert!(err.into_service_error().is_cluster_not_found_exception());

    let err = ecs
        .update_cluster_settings()
        .cluster("nope")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .send()
        .await
        .expect_err("UpdateClusterSettings of unknown");
    assert!(err.into_service_error().is_cluster_not_found_exception());

    // Invalid names.
    for bad in ["has space", "slash/name", &"x".repeat(256)] {
        let err = ecs
            .create_cluster()
            .cluster_name(bad)
            .send()
            .await
            .expect_err("invalid name");
        assert_eq!(
            error_code(&err),
            "InvalidParameterException",
            "name {bad:?}"
        );
        assert!(err.into_service_error().is_invalid_parameter_exception());
    }

    // Invalid setting value.
    let err = ecs
        .create_cluster()
        .cluster_name("ok-name")
        .settings(
            ClusterSetting::builder()
                .name(ClusterSettingName::ContainerInsights)
                .value("sometimes")
                .build(),
        )
        .send()
        .await
        .expect_err("invalid setting");
    assert_eq!(error_code(&err), "InvalidParameterException");

    // Invalid include.
    let err = ecs
        .describe_clusters()
        .clusters("x")
        .include(ClusterField::from("EVERYTHING"))
        .send()
        .await
        .expect_err("invalid include");
    assert_eq!(error_code(&err), "InvalidParameterException");
}

#[tokio::test]
async fn default_cluster_is_used_when_no_name_is_given() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let out = ecs
        .create_cluster()
        .send()
        .await
        .expect("CreateCluster without a name");
    assert_eq!(
        out.cluster().and_then(|c| c.cluster_name()),
        Some("default")
    );
    let described = ecs
        .describe_clusters()
        .send()
        .await
        .expect("DescribeClusters without clusters");
    assert_eq!(described.clusters().len(), 1);
    assert_eq!(described.clusters()[0].cluster_name(), Some("default"));
}

//! Capacity providers through aws-sdk-ecs: create with an Auto Scaling group
//! ARN, describe (including the built-in FARGATE and FARGATE_SPOT), the
//! reserved name prefixes, association with a cluster and a default
//! strategy, and deletion rules.

mod common;

use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, CapacityProviderField, CapacityProviderStrategyItem, ManagedScaling,
    ManagedScalingStatus, ManagedTerminationProtection, Tag,
};
use common::{BerthServer, error_code, unique};

fn asg_arn(account: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:us-east-1:{account}:autoScalingGroup:8e1a2b3c-0000-4000-8000-000000000001:autoScalingGroupName/{name}"
    )
}

fn asg(arn: &str) -> AutoScalingGroupProvider {
    AutoScalingGroupProvider::builder()
        .auto_scaling_group_arn(arn)
        .build()
        .expect("asg provider")
}

fn strategy(provider: &str, weight: i32, base: i32) -> CapacityProviderStrategyItem {
    CapacityProviderStrategyItem::builder()
        .capacity_provider(provider)
        .weight(weight)
        .base(base)
        .build()
        .expect("strategy item")
}

#[tokio::test]
async fn create_describe_and_builtins() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = server.creds.account_id.clone();
    let name = unique("cp");
    let arn = asg_arn(&account, "my-asg");

    let created = ecs
        .create_capacity_provider()
        .name(&name)
        .auto_scaling_group_provider(
            AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn(&arn)
                .managed_scaling(
                    ManagedScaling::builder()
                        .status(ManagedScalingStatus::Enabled)
                        .target_capacity(80)
                        .build(),
                )
                .managed_termination_protection(ManagedTerminationProtection::Disabled)
                .build()
                .expect("asg provider"),
        )
        .tags(Tag::builder().key("owner").value("sdk-tests").build())
        .send()
        .await
        .expect("CreateCapacityProvider");
    let cp = created.capacity_provider().expect("capacityProvider");
    let cp_arn = format!("arn:aws:ecs:us-east-1:{account}:capacity-provider/{name}");
    assert_eq!(cp.name(), Some(name.as_str()));
    assert_eq!(cp.capacity_provider_arn(), Some(cp_arn.as_str()));
    assert_eq!(cp.status().map(|s| s.as_str()), Some("ACTIVE"));
    let provider = cp
        .auto_scaling_group_provider()
        .expect("autoScalingGroupProvider");
    assert_eq!(provider.auto_scaling_group_arn(), arn);
    let scaling = provider.managed_scaling().expect("managedScaling");
    assert_eq!(scaling.status(), Some(&ManagedScalingStatus::Enabled));
    assert_eq!(scaling.target_capacity(), Some(80));

    // Creating it again is a ClientException.
    let err = ecs
        .create_capacity_provider()
        .name(&name)
        .auto_scaling_group_provider(asg(&asg_arn(&account, "other-asg")))
        .send()
        .await
        .expect_err("duplicate name");
    assert_eq!(error_code(&err), "ClientException");
    assert!(err.into_service_error().is_client_exception());

    // Describe by name and ARN, with tags, plus the built-ins and one unknown.
    let out = ecs
        .describe_capacity_providers()
        .capacity_providers(&name)
        .capacity_providers(&cp_arn)
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .capacity_providers("missing-cp")
        .include(CapacityProviderField::Tags)
        .send()
        .await
        .expect("DescribeCapacityProviders");
    let names: Vec<&str> = out
        .capacity_providers()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    assert_eq!(
        names,
        [name.as_str(), name.as_str(), "FARGATE", "FARGATE_SPOT"]
    );
    let mine = &out.capacity_providers()[0];
    assert_eq!(mine.tags().len(), 1);
    assert_eq!(mine.tags()[0].key(), Some("owner"));
    for builtin in &out.capacity_providers()[2..] {
        assert_eq!(builtin.status().map(|s| s.as_str()), Some("ACTIVE"));
        assert!(builtin.auto_scaling_group_provider().is_none());
        assert_eq!(
            builtin.capacity_provider_arn(),
            Some(
                format!(
                    "arn:aws:ecs:us-east-1:{account}:capacity-provider/{}",
                    builtin.name().unwrap()
                )
                .as_str()
            )
        );
    }
    assert_eq!(out.failures().len(), 1);
    assert_eq!(out.failures()[0].reason(), Some("MISSING"));
    assert_eq!(
        out.failures()[0].arn(),
        Some(format!("arn:aws:ecs:us-east-1:{account}:capacity-provider/missing-cp").as_str())
    );

    // Describe everything: built-ins first, then ours.
    let all = ecs
        .describe_capacity_providers()
        .send()
        .await
        .expect("DescribeCapacityProviders all");
    let names: Vec<&str> = all
        .capacity_providers()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    assert!(
        names.contains(&"FARGATE")
            && names.contains(&"FARGATE_SPOT")
            && names.contains(&name.as_str()),
        "{names:?}"
    );
}

#[tokio::test]
async fn reserved_prefixes_and_invalid_input() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = server.creds.account_id.clone();
    for (i, reserved) in ["aws-mine", "ecs_mine", "fargate-mine", "FARGATE"]
        .iter()
        .enumerate()
    {
        let err = ecs
            .create_capacity_provider()
            .name(*reserved)
            .auto_scaling_group_provider(asg(&asg_arn(&account, &format!("asg-{i}"))))
            .send()
            .await
            .expect_err("reserved prefix");
        assert_eq!(error_code(&err), "InvalidParameterException", "{reserved}");
    }
    let err = ecs
        .create_capacity_provider()
        .name("bad name")
        .auto_scaling_group_provider(asg(&asg_arn(&account, "asg-x")))
        .send()
        .await
        .expect_err("invalid name");
    assert_eq!(error_code(&err), "InvalidParameterException");

    // The built-ins can be neither deleted nor updated.
    let err = ecs
        .delete_capacity_provider()
        .capacity_provider("FARGATE")
        .send()
        .await
        .expect_err("delete FARGATE");
    assert_eq!(error_code(&err), "ClientException");

    // Deleting an unknown provider.
    let err = ecs
        .delete_capacity_provider()
        .capacity_provider("nope")
        .send()
        .await
        .expect_err("delete unknown");
    assert_eq!(error_code(&err), "InvalidParameterException");
}

#[tokio::test]
async fn cluster_association_strategy_and_deletion() {
    let server = BerthServer::start();
    let ecs = server.ecs_client();
    let account = server.creds.account_id.clone();
    let cp = unique("cp");
    ecs.create_capacity_provider()
        .name(&cp)
        .auto_scaling_group_provider(asg(&asg_arn(&account, "assoc-asg")))
        .send()
        .await
        .expect("CreateCapacityProvider");
    let cluster = unique("cl");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("CreateCluster");

    // Fargate providers with a strategy.
    let out = ecs
        .put_cluster_capacity_providers()
        .cluster(&cluster)
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .default_capacity_provider_strategy(strategy("FARGATE", 1, 1))
        .default_capacity_provider_strategy(strategy("FARGATE_SPOT", 4, 0))
        .send()
        .await
        .expect("PutClusterCapacityProviders (Fargate)");
    let c = out.cluster().expect("cluster");
    assert_eq!(c.capacity_providers(), ["FARGATE", "FARGATE_SPOT"]);
    let strat = c.default_capacity_provider_strategy();
    assert_eq!(strat.len(), 2);
    assert_eq!(
        (
            strat[0].capacity_provider(),
            strat[0].weight(),
            strat[0].base()
        ),
        ("FARGATE", 1, 1)
    );
    assert_eq!(
        (
            strat[1].capacity_provider(),
            strat[1].weight(),
            strat[1].base()
        ),
        ("FARGATE_SPOT", 4, 0)
    );

    // A strategy naming a provider not associated with the cluster.
    let err = ecs
        .put_cluster_capacity_providers()
        .cluster(&cluster)
        .capacity_providers("FARGATE")
        .default_capacity_provider_strategy(strategy("FARGATE_SPOT", 1, 0))
        .send()
        .await
        .expect_err("strategy with unassociated provider");
    assert_eq!(error_code(&err), "InvalidParameterException");

    // Mixing Fargate and Auto Scaling group providers in one strategy.
    let err = ecs
        .put_cluster_capacity_providers()
        .cluster(&cluster)
        .capacity_providers("FARGATE")
        .capacity_providers(&cp)
        .default_capacity_provider_strategy(strategy("FARGATE", 1, 0))
        .default_capacity_provider_strategy(strategy(&cp, 1, 0))
        .send()
        .await
        .expect_err("mixed strategy");
    assert_eq!(error_code(&err), "InvalidParameterException");

    // Our provider with a strategy; visible in DescribeClusters.
    ecs.put_cluster_capacity_providers()
        .cluster(&cluster)
        .capacity_providers(&cp)
        .default_capacity_provider_strategy(strategy(&cp, 2, 0))
        .send()
        .await
        .expect("PutClusterCapacityProviders (ASG)");
    let described = ecs
        .describe_clusters()
        .clusters(&cluster)
        .send()
        .await
        .expect("DescribeClusters");
    let c = &described.clusters()[0];
    assert_eq!(c.capacity_providers(), [cp.as_str()]);
    assert_eq!(
        c.default_capacity_provider_strategy()[0].capacity_provider(),
        cp
    );
    assert_eq!(c.default_capacity_provider_strategy()[0].weight(), 2);

    // An Auto Scaling group provider serves one cluster only.
    let other = unique("other");
    ecs.create_cluster()
        .cluster_name(&other)
        .send()
        .await
        .expect("CreateCluster other");
    let err = ecs
        .put_cluster_capacity_providers()
        .cluster(&other)
        .capacity_providers(&cp)
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .expect_err("provider already associated");
    assert_eq!(error_code(&err), "InvalidParameterException");

    // In use: ClientException.
    let err = ecs
        .delete_capacity_provider()
        .capacity_provider(&cp)
        .send()
        .await
        .expect_err("delete in use");
    assert_eq!(error_code(&err), "ClientException");
    assert!(err.into_service_error().is_client_exception());

    // Disassociate, then delete.
    let out = ecs
        .put_cluster_capacity_providers()
        .cluster(&cluster)
        .set_capacity_providers(Some(vec![]))
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .expect("disassociate");
    assert!(
        out.cluster()
            .expect("cluster")
            .capacity_providers()
            .is_empty()
    );
    let deleted = ecs
        .delete_capacity_provider()
        .capacity_provider(&cp)
        .send()
        .await
        .expect("DeleteCapacityProvider");
    let d = deleted.capacity_provider().expect("capacityProvider");
    assert_eq!(d.status().map(|s| s.as_str()), Some("INACTIVE"));
    assert_eq!(
        d.update_status().map(|s| s.as_str()),
        Some("DELETE_COMPLETE")
    );

    // Put on an unknown cluster.
    let err = ecs
        .put_cluster_capacity_providers()
        .cluster("no-such-cluster")
        .set_capacity_providers(Some(vec![]))
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .expect_err("unknown cluster");
    assert!(err.into_service_error().is_cluster_not_found_exception());
}

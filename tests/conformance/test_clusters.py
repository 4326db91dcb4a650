"""Clusters: CreateCluster, DescribeClusters, ListClusters, DeleteCluster,
UpdateCluster, UpdateClusterSettings, PutClusterCapacityProviders."""

from __future__ import annotations

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, cluster_arn, error_code, tags_dict, unique

STATISTIC_NAMES = {
    "runningEC2TasksCount",
    "runningFargateTasksCount",
    "pendingEC2TasksCount",
    "pendingFargateTasksCount",
    "activeEC2ServiceCount",
    "activeFargateServiceCount",
    "drainingEC2ServiceCount",
    "drainingFargateServiceCount",
}


def settings_dict(cluster) -> dict[str, str]:
    return {s["name"]: s["value"] for s in cluster.get("settings", [])}


def test_create_cluster_shape(ecs):
    name = unique("shape")
    c = ecs.create_cluster(clusterName=name)["cluster"]
    assert c["clusterArn"] == f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:cluster/{name}"
    assert c["clusterName"] == name
    assert c["status"] == "ACTIVE"
    assert c["registeredContainerInstancesCount"] == 0
    assert c["runningTasksCount"] == 0
    assert c["pendingTasksCount"] == 0
    assert c["activeServicesCount"] == 0
    assert c.get("statistics", []) == []
    assert c.get("tags", []) == []
    assert settings_dict(c) == {"containerInsights": "disabled"}
    assert c["capacityProviders"] == []
    assert c["defaultCapacityProviderStrategy"] == []


def test_create_cluster_is_idempotent(ecs):
    name = unique("idem")
    first = ecs.create_cluster(clusterName=name)["cluster"]
    second = ecs.create_cluster(clusterName=name)["cluster"]
    assert first["clusterArn"] == second["clusterArn"]
    assert second["status"] == "ACTIVE"
    arns = [a for a in ecs.list_clusters()["clusterArns"] if a == cluster_arn(name)]
    assert arns == [cluster_arn(name)]


def test_create_cluster_without_name_is_default(ecs):
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    assert c["clusterArn"] == cluster_arn("default")
    # DescribeClusters without clusters describes `default`.
    described = ecs.describe_clusters()
    assert [x["clusterName"] for x in described["clusters"]] == ["default"]
    assert described["failures"] == []


@pytest.mark.parametrize("bad", ["has space", "slash/name", "dot.name", "x" * 256, "ünïcode"])
def test_create_cluster_invalid_name(ecs, bad):
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.create_cluster(clusterName=bad)
    assert error_code(e) == "InvalidParameterException"


def test_create_cluster_invalid_setting(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName=unique("badset"), settings=[{"name": "containerInsights", "value": "sometimes"}])
    assert error_code(e) == "InvalidParameterException"


def test_create_with_everything_and_describe_all_includes(ecs):
    name = unique("full")
    configuration = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    created = ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "team", "value": "platform"}, {"key": "env", "value": "test"}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
        configuration=configuration,
    )["cluster"]
    assert tags_dict(created["tags"]) == {"team": "platform", "env": "test"}
    assert settings_dict(created) == {"containerInsights": "enabled"}
    assert created["configuration"] == configuration

    described = ecs.describe_clusters(
        clusters=[name], include=["TAGS", "SETTINGS", "STATISTICS", "CONFIGURATIONS", "ATTACHMENTS"]
    )
    assert described["failures"] == []
    (c,) = described["clusters"]
    assert c["clusterArn"] == cluster_arn(name)
    assert tags_dict(c["tags"]) == {"team": "platform", "env": "test"}
    assert settings_dict(c) == {"containerInsights": "enabled"}
    assert c["configuration"] == configuration
    stats = {s["name"]: s["value"] for s in c["statistics"]}
    assert STATISTIC_NAMES <= set(stats), stats
    assert all(isinstance(v, str) for v in stats.values())
    assert all(stats[n] == "0" for n in STATISTIC_NAMES)
    assert c.get("attachments", []) == []


def test_describe_without_include_omits_tags_and_statistics(ecs):
    name = unique("noinc")
    ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "v"}])
    (c,) = ecs.describe_clusters(clusters=[name])["clusters"]
    assert c.get("tags", []) == []
    assert c.get("statistics", []) == []
    assert "configuration" not in c


def test_describe_missing_clusters_are_failures_with_full_arn(ecs):
    name = unique("present")
    ecs.create_cluster(clusterName=name)
    missing = unique("missing")
    missing_arn = cluster_arn(unique("missing-arn"))
    out = ecs.describe_clusters(clusters=[name, missing, missing_arn])
    assert [c["clusterName"] for c in out["clusters"]] == [name]
    assert sorted(out["failures"], key=lambda f: f["arn"]) == sorted(
        [
            {"arn": cluster_arn(missing), "reason": "MISSING"},
            {"arn": missing_arn, "reason": "MISSING"},
        ],
        key=lambda f: f["arn"],
    )


def test_describe_by_arn(ecs):
    name = unique("byarn")
    ecs.create_cluster(clusterName=name)
    (c,) = ecs.describe_clusters(clusters=[cluster_arn(name)])["clusters"]
    assert c["clusterName"] == name


def test_delete_cluster_goes_inactive(ecs):
    name = unique("del")
    ecs.create_cluster(clusterName=name, tags=[{"key": "a", "value": "b"}])
    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["clusterArn"] == cluster_arn(name)
    assert deleted["status"] == "INACTIVE"

    # Still described, as INACTIVE; no longer listed.
    out = ecs.describe_clusters(clusters=[name])
    assert [c["status"] for c in out["clusters"]] == ["INACTIVE"]
    assert cluster_arn(name) not in ecs.list_clusters()["clusterArns"]

    # Gone for every operation that needs an active cluster.
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.delete_cluster(cluster=name)
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}])

    # The name can be used again.
    again = ecs.create_cluster(clusterName=name)["cluster"]
    assert again["status"] == "ACTIVE"
    assert cluster_arn(name) in ecs.list_clusters()["clusterArns"]


def test_delete_by_arn(ecs):
    name = unique("delarn")
    ecs.create_cluster(clusterName=name)
    assert ecs.delete_cluster(cluster=cluster_arn(name))["cluster"]["status"] == "INACTIVE"


def test_delete_unknown_cluster(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException) as e:
        ecs.delete_cluster(cluster=unique("never"))
    assert error_code(e) == "ClusterNotFoundException"


def test_update_cluster_configuration_and_settings(ecs):
    name = unique("upd")
    ecs.create_cluster(clusterName=name)
    configuration = {
        "executeCommandConfiguration": {
            "logging": "OVERRIDE",
            "logConfiguration": {"cloudWatchLogGroupName": "/ecs/exec", "cloudWatchEncryptionEnabled": True},
        }
    }
    c = ecs.update_cluster(
        cluster=name,
        configuration=configuration,
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )["cluster"]
    assert c["clusterName"] == name
    assert c["configuration"] == configuration
    assert settings_dict(c) == {"containerInsights": "enabled"}
    (d,) = ecs.describe_clusters(clusters=[name], include=["CONFIGURATIONS", "SETTINGS"])["clusters"]
    assert d["configuration"] == configuration
    assert settings_dict(d) == {"containerInsights": "enabled"}


def test_update_cluster_unknown(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.update_cluster(cluster=unique("nope"), settings=[{"name": "containerInsights", "value": "enabled"}])


def test_update_cluster_settings(ecs):
    name = unique("settings")
    ecs.create_cluster(clusterName=name)
    c = ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}])[
        "cluster"
    ]
    assert c["clusterArn"] == cluster_arn(name)
    assert settings_dict(c) == {"containerInsights": "enabled"}
    c = ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "disabled"}])[
        "cluster"
    ]
    assert settings_dict(c) == {"containerInsights": "disabled"}
    (d,) = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"]
    assert settings_dict(d) == {"containerInsights": "disabled"}


def test_update_cluster_settings_invalid_value(ecs):
    name = unique("settingsbad")
    ecs.create_cluster(clusterName=name)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "maybe"}])


def test_put_cluster_capacity_providers(ecs):
    name = unique("cps")
    ecs.create_cluster(clusterName=name)
    strategy = [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
        {"capacityProvider": "FARGATE_SPOT", "weight": 4, "base": 0},
    ]
    c = ecs.put_cluster_capacity_providers(
        cluster=name, capacityProviders=["FARGATE", "FARGATE_SPOT"], defaultCapacityProviderStrategy=strategy
    )["cluster"]
    assert c["clusterArn"] == cluster_arn(name)
    assert c["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert c["defaultCapacityProviderStrategy"] == strategy

    (d,) = ecs.describe_clusters(clusters=[name])["clusters"]
    assert d["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert d["defaultCapacityProviderStrategy"] == strategy

    # Empty lists remove them again.
    c = ecs.put_cluster_capacity_providers(cluster=name, capacityProviders=[], defaultCapacityProviderStrategy=[])[
        "cluster"
    ]
    assert c["capacityProviders"] == []
    assert c["defaultCapacityProviderStrategy"] == []


def test_put_cluster_capacity_providers_strategy_must_use_associated(ecs):
    name = unique("cpsbad")
    ecs.create_cluster(clusterName=name)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.put_cluster_capacity_providers(
            cluster=name,
            capacityProviders=["FARGATE"],
            defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
        )


def test_put_cluster_capacity_providers_one_base_only(ecs):
    name = unique("cpsbase")
    ecs.create_cluster(clusterName=name)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.put_cluster_capacity_providers(
            cluster=name,
            capacityProviders=["FARGATE", "FARGATE_SPOT"],
            defaultCapacityProviderStrategy=[
                {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 2},
            ],
        )


def test_put_cluster_capacity_providers_unknown_cluster(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.put_cluster_capacity_providers(
            cluster=unique("nocluster"), capacityProviders=["FARGATE"], defaultCapacityProviderStrategy=[]
        )


def test_create_cluster_with_capacity_providers(ecs):
    name = unique("cpcreate")
    c = ecs.create_cluster(
        clusterName=name,
        capacityProviders=["FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )["cluster"]
    assert c["capacityProviders"] == ["FARGATE_SPOT"]
    assert c["defaultCapacityProviderStrategy"][0]["capacityProvider"] == "FARGATE_SPOT"
    assert c["defaultCapacityProviderStrategy"][0]["weight"] == 1


def test_list_clusters_paginator(ecs):
    prefix = unique("page")
    names = [f"{prefix}-{i}" for i in range(6)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    pages = list(ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 3
    assert all(len(p["clusterArns"]) <= 2 for p in pages)
    seen = [a for p in pages for a in p["clusterArns"]]
    assert len(seen) == len(set(seen)), "a cluster appeared on two pages"
    assert {cluster_arn(n) for n in names} <= set(seen)
    # Every page but the last hands out a token.
    assert all("nextToken" in p for p in pages[:-1])
    assert "nextToken" not in pages[-1]


def test_list_clusters_max_results_bounds(ecs):
    # "This value can be between 1 and 100."
    for bad in (0, 101):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.list_clusters(maxResults=bad)
        assert error_code(e) in ("InvalidParameterException", "ClientException")


def test_list_clusters_bad_token(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters(nextToken="definitely-not-a-token")
    assert error_code(e) in ("InvalidParameterException", "ClientException")


# ---------------------------------------------------------------- aws CLI


def test_cli_cluster_lifecycle(aws):
    name = unique("cli")
    created = aws("ecs", "create-cluster", "--cluster-name", name, "--tags", "key=team,value=cli",
                  "--settings", "name=containerInsights,value=enabled")["cluster"]
    assert created["clusterArn"] == cluster_arn(name)
    assert created["status"] == "ACTIVE"

    described = aws("ecs", "describe-clusters", "--clusters", name, "missing-" + name,
                    "--include", "TAGS", "SETTINGS", "STATISTICS", "CONFIGURATIONS", "ATTACHMENTS")
    (c,) = described["clusters"]
    assert tags_dict(c["tags"]) == {"team": "cli"}
    assert settings_dict(c) == {"containerInsights": "enabled"}
    assert described["failures"] == [{"arn": cluster_arn("missing-" + name), "reason": "MISSING"}]

    updated = aws("ecs", "update-cluster-settings", "--cluster", name,
                  "--settings", "name=containerInsights,value=disabled")["cluster"]
    assert settings_dict(updated) == {"containerInsights": "disabled"}

    put = aws("ecs", "put-cluster-capacity-providers", "--cluster", name,
              "--capacity-providers", "FARGATE", "FARGATE_SPOT",
              "--default-capacity-provider-strategy", "capacityProvider=FARGATE,weight=1,base=1",
              "capacityProvider=FARGATE_SPOT,weight=4")["cluster"]
    assert put["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]

    # The CLI follows nextToken itself: every cluster comes back.
    listed = aws("ecs", "list-clusters", "--page-size", "1")["clusterArns"]
    assert cluster_arn(name) in listed

    deleted = aws("ecs", "delete-cluster", "--cluster", name)["cluster"]
    assert deleted["status"] == "INACTIVE"

    rc, err = aws.error("ecs", "delete-cluster", "--cluster", name)
    assert rc != 0
    assert "ClusterNotFoundException" in err


def test_cli_update_cluster(aws):
    name = unique("cliupd")
    aws("ecs", "create-cluster", "--cluster-name", name)
    c = aws("ecs", "update-cluster", "--cluster", name,
            "--configuration", '{"executeCommandConfiguration": {"logging": "NONE"}}')["cluster"]
    assert c["configuration"] == {"executeCommandConfiguration": {"logging": "NONE"}}

"""Capacity providers: CreateCapacityProvider, DescribeCapacityProviders,
UpdateCapacityProvider, DeleteCapacityProvider, and the built-in FARGATE and
FARGATE_SPOT providers."""

from __future__ import annotations

import uuid

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, capacity_provider_arn, error_code, tags_dict, unique


def asg_arn(name: str | None = None) -> str:
    name = name or unique("asg")
    return (
        f"arn:aws:autoscaling:us-east-1:{ACCOUNT_ID}:autoScalingGroup:{uuid.uuid4()}"
        f":autoScalingGroupName/{name}"
    )


def create(ecs, name: str | None = None, **provider):
    name = name or unique("cp")
    asg = {"autoScalingGroupArn": asg_arn(), **provider}
    return ecs.create_capacity_provider(name=name, autoScalingGroupProvider=asg)["capacityProvider"]


def test_builtin_fargate_providers(ecs):
    out = ecs.describe_capacity_providers(capacityProviders=["FARGATE", "FARGATE_SPOT"])
    assert out["failures"] == []
    by_name = {p["name"]: p for p in out["capacityProviders"]}
    assert set(by_name) == {"FARGATE", "FARGATE_SPOT"}
    for name, p in by_name.items():
        assert p["capacityProviderArn"] == capacity_provider_arn(name)
        assert p["status"] == "ACTIVE"
        assert "autoScalingGroupProvider" not in p


def test_describe_all_includes_builtins(ecs):
    names = []
    token = None
    while True:
        kwargs = {"maxResults": 2}
        if token:
            kwargs["nextToken"] = token
        out = ecs.describe_capacity_providers(**kwargs)
        assert len(out["capacityProviders"]) <= 2
        names += [p["name"] for p in out["capacityProviders"]]
        token = out.get("nextToken")
        if not token:
            break
    assert {"FARGATE", "FARGATE_SPOT"} <= set(names)
    assert len(names) == len(set(names))


def test_create_capacity_provider_shape(ecs):
    name = unique("cp")
    asg = asg_arn()
    p = ecs.create_capacity_provider(
        name=name,
        autoScalingGroupProvider={
            "autoScalingGroupArn": asg,
            "managedScaling": {"status": "ENABLED", "targetCapacity": 80},
            "managedTerminationProtection": "DISABLED",
        },
        tags=[{"key": "team", "value": "infra"}],
    )["capacityProvider"]
    assert p["capacityProviderArn"] == capacity_provider_arn(name)
    assert p["name"] == name
    assert p["status"] == "ACTIVE"
    assert tags_dict(p.get("tags")) == {"team": "infra"}
    asgp = p["autoScalingGroupProvider"]
    assert asgp["autoScalingGroupArn"] == asg
    ms = asgp["managedScaling"]
    assert ms["status"] == "ENABLED"
    assert ms["targetCapacity"] == 80
    # ECS's documented defaults for what was not given.
    assert ms["minimumScalingStepSize"] == 1
    assert ms["maximumScalingStepSize"] == 10000
    assert ms["instanceWarmupPeriod"] == 300
    assert asgp["managedTerminationProtection"] == "DISABLED"
    assert asgp["managedDraining"] == "ENABLED"


def test_describe_created_with_tags(ecs):
    name = unique("cptags")
    ecs.create_capacity_provider(
        name=name,
        autoScalingGroupProvider={"autoScalingGroupArn": asg_arn()},
        tags=[{"key": "a", "value": "1"}],
    )
    out = ecs.describe_capacity_providers(capacityProviders=[name], include=["TAGS"])
    (p,) = out["capacityProviders"]
    assert tags_dict(p["tags"]) == {"a": "1"}
    # By ARN as well.
    out = ecs.describe_capacity_providers(capacityProviders=[capacity_provider_arn(name)])
    assert [x["name"] for x in out["capacityProviders"]] == [name]


def test_describe_unknown_is_failure(ecs):
    missing = unique("nocp")
    out = ecs.describe_capacity_providers(capacityProviders=[missing])
    assert out["capacityProviders"] == []
    assert out["failures"] == [{"arn": capacity_provider_arn(missing), "reason": "MISSING"}]


@pytest.mark.parametrize("name", ["aws-provider", "ecs-provider", "fargate-provider", "FARGATE", "FARGATE_SPOT"])
def test_reserved_prefixes_rejected(ecs, name):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.create_capacity_provider(name=name, autoScalingGroupProvider={"autoScalingGroupArn": asg_arn()})


def test_invalid_name_rejected(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_capacity_provider(name="bad name!", autoScalingGroupProvider={"autoScalingGroupArn": asg_arn()})
    assert error_code(e) in ("InvalidParameterException", "ClientException")


def test_duplicate_name_rejected(ecs):
    p = create(ecs)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(ecs, name=p["name"])
    # ECS refuses a second provider of the same name; which of its two
    # client-side classes it uses is not documented.
    assert error_code(e) in ("ClientException", "InvalidParameterException")


def test_target_capacity_out_of_range(ecs):
    # targetCapacity is 1..100.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        create(ecs, managedScaling={"status": "ENABLED", "targetCapacity": 101})
    assert error_code(e) in ("InvalidParameterException", "ClientException")


def test_update_capacity_provider(ecs):
    p = create(ecs, managedScaling={"status": "ENABLED", "targetCapacity": 100})
    updated = ecs.update_capacity_provider(
        name=p["name"],
        autoScalingGroupProvider={
            "managedScaling": {"status": "ENABLED", "targetCapacity": 60, "maximumScalingStepSize": 50},
            "managedDraining": "DISABLED",
        },
    )["capacityProvider"]
    assert updated["name"] == p["name"]
    assert updated["updateStatus"] in ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE")
    ms = updated["autoScalingGroupProvider"]["managedScaling"]
    assert ms["targetCapacity"] == 60
    assert ms["maximumScalingStepSize"] == 50
    assert updated["autoScalingGroupProvider"]["managedDraining"] == "DISABLED"
    # The ASG itself is not changed by an update.
    assert updated["autoScalingGroupProvider"]["autoScalingGroupArn"] == p["autoScalingGroupProvider"]["autoScalingGroupArn"]

    (d,) = ecs.describe_capacity_providers(capacityProviders=[p["name"]])["capacityProviders"]
    assert d["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 60


def test_update_builtin_or_unknown_fails(ecs):
    with pytest.raises(botocore.exceptions.ClientError):
        ecs.update_capacity_provider(name="FARGATE", autoScalingGroupProvider={"managedDraining": "DISABLED"})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.update_capacity_provider(name=unique("nocp"), autoScalingGroupProvider={"managedDraining": "DISABLED"})
    assert error_code(e) in ("ClientException", "InvalidParameterException")


def test_delete_capacity_provider(ecs):
    p = create(ecs)
    deleted = ecs.delete_capacity_provider(capacityProvider=p["name"])["capacityProvider"]
    assert deleted["name"] == p["name"]
    assert deleted["capacityProviderArn"] == capacity_provider_arn(p["name"])
    assert deleted.get("updateStatus") in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE")

    # A deleted provider is INACTIVE (or on its way there) and cannot be used.
    (d,) = ecs.describe_capacity_providers(capacityProviders=[p["name"]])["capacityProviders"]
    assert d["status"] == "INACTIVE" or d.get("updateStatus") == "DELETE_IN_PROGRESS"
    cluster = unique("cpdel")
    ecs.create_cluster(clusterName=cluster)
    with pytest.raises(botocore.exceptions.ClientError):
        ecs.put_cluster_capacity_providers(
            cluster=cluster, capacityProviders=[p["name"]], defaultCapacityProviderStrategy=[]
        )


def test_delete_builtin_fails(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_capacity_provider(capacityProvider="FARGATE")
    assert error_code(e) in ("ClientException", "InvalidParameterException")


def test_delete_associated_provider_fails(ecs):
    p = create(ecs)
    cluster = unique("cpuse")
    ecs.create_cluster(clusterName=cluster, capacityProviders=[p["name"]])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_capacity_provider(capacityProvider=p["name"])
    assert error_code(e) in ("ClientException", "InvalidParameterException", "ResourceInUseException")
    # Once disassociated it can be deleted.
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[], defaultCapacityProviderStrategy=[])
    ecs.delete_capacity_provider(capacityProvider=p["name"])


def test_cluster_with_own_provider(ecs):
    p = create(ecs)
    cluster = unique("cpown")
    ecs.create_cluster(clusterName=cluster)
    c = ecs.put_cluster_capacity_providers(
        cluster=cluster,
        capacityProviders=[p["name"]],
        defaultCapacityProviderStrategy=[{"capacityProvider": p["name"], "weight": 1, "base": 0}],
    )["cluster"]
    assert c["capacityProviders"] == [p["name"]]
    # Fargate and Auto Scaling group providers do not mix in one strategy.
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.put_cluster_capacity_providers(
            cluster=cluster,
            capacityProviders=[p["name"], "FARGATE"],
            defaultCapacityProviderStrategy=[
                {"capacityProvider": p["name"], "weight": 1},
                {"capacityProvider": "FARGATE", "weight": 1},
            ],
        )


def test_put_unknown_provider_on_cluster(ecs):
    cluster = unique("cpunk")
    ecs.create_cluster(clusterName=cluster)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_cluster_capacity_providers(
            cluster=cluster, capacityProviders=[unique("nocp")], defaultCapacityProviderStrategy=[]
        )
    assert error_code(e) in ("InvalidParameterException", "ClientException")


# ---------------------------------------------------------------- aws CLI


def test_cli_capacity_provider_lifecycle(aws):
    name = unique("clicp")
    asg = asg_arn()
    created = aws(
        "ecs", "create-capacity-provider", "--name", name,
        "--auto-scaling-group-provider",
        f"autoScalingGroupArn={asg},managedScaling={{status=ENABLED,targetCapacity=70}},managedTerminationProtection=DISABLED",
    )["capacityProvider"]
    assert created["capacityProviderArn"] == capacity_provider_arn(name)
    assert created["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 70

    described = aws("ecs", "describe-capacity-providers", "--capacity-providers", name, "FARGATE")
    assert {p["name"] for p in described["capacityProviders"]} == {name, "FARGATE"}

    updated = aws("ecs", "update-capacity-provider", "--name", name,
                  "--auto-scaling-group-provider", "managedScaling={status=ENABLED,targetCapacity=90}")
    assert updated["capacityProvider"]["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 90

    deleted = aws("ecs", "delete-capacity-provider", "--capacity-provider", name)["capacityProvider"]
    assert deleted["name"] == name

    rc, err = aws.error("ecs", "create-capacity-provider", "--name", "ecs-reserved",
                        "--auto-scaling-group-provider", f"autoScalingGroupArn={asg_arn()}")
    assert "InvalidParameterException" in err

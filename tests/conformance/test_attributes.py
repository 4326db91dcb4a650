"""Attributes: PutAttributes, DeleteAttributes, ListAttributes.

No container instance can register yet, so every attribute target is
unknown: ECS answers TargetNotFoundException for those, and ListAttributes
finds nothing."""

from __future__ import annotations

import uuid

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, error_code, unique


def made_up_instance_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def cluster(ecs):
    name = unique("attrs")
    ecs.create_cluster(clusterName=name)
    return name


def attribute(target_id: str, name: str = "stack", value: str | None = "prod"):
    a = {"name": name, "targetType": "container-instance", "targetId": target_id}
    if value is not None:
        a["value"] = value
    return a


def test_put_on_unknown_instance_is_target_not_found(ecs, cluster):
    with pytest.raises(ecs.exceptions.TargetNotFoundException) as e:
        ecs.put_attributes(cluster=cluster, attributes=[attribute(made_up_instance_id())])
    assert error_code(e) == "TargetNotFoundException"


def test_put_on_unknown_instance_arn_is_target_not_found(ecs, cluster):
    arn = f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:container-instance/{cluster}/{made_up_instance_id()}"
    with pytest.raises(ecs.exceptions.TargetNotFoundException):
        ecs.put_attributes(cluster=cluster, attributes=[attribute(arn)])


def test_delete_on_unknown_instance_is_target_not_found(ecs, cluster):
    with pytest.raises(ecs.exceptions.TargetNotFoundException):
        ecs.delete_attributes(cluster=cluster, attributes=[attribute(made_up_instance_id(), value=None)])


def test_list_attributes_is_empty(ecs, cluster):
    out = ecs.list_attributes(cluster=cluster, targetType="container-instance")
    assert out["attributes"] == []
    assert "nextToken" not in out
    out = ecs.list_attributes(
        cluster=cluster, targetType="container-instance", attributeName="ecs.os-type", attributeValue="linux"
    )
    assert out["attributes"] == []


def test_list_attributes_default_cluster_missing_or_empty(ecs):
    # Without `cluster` the default cluster is meant.
    try:
        out = ecs.list_attributes(targetType="container-instance")
    except ecs.exceptions.ClusterNotFoundException:
        return
    assert out["attributes"] == []


def test_list_attributes_paginator(ecs, cluster):
    pages = list(
        ecs.get_paginator("list_attributes").paginate(
            cluster=cluster, targetType="container-instance", PaginationConfig={"PageSize": 2}
        )
    )
    assert [a for p in pages for a in p["attributes"]] == []


def test_bad_target_type(ecs, cluster):
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.list_attributes(cluster=cluster, targetType="task")
    assert error_code(e) == "InvalidParameterException"
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.put_attributes(
            cluster=cluster,
            attributes=[{"name": "stack", "value": "prod", "targetType": "service", "targetId": made_up_instance_id()}],
        )


def test_unknown_cluster(ecs):
    missing = unique("noattrcluster")
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.list_attributes(cluster=missing, targetType="container-instance")
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.put_attributes(cluster=missing, attributes=[attribute(made_up_instance_id())])


def test_put_more_than_ten_attributes(ecs, cluster):
    target = made_up_instance_id()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_attributes(cluster=cluster, attributes=[attribute(target, name=f"a{i}") for i in range(11)])
    assert error_code(e) in ("AttributeLimitExceededException", "InvalidParameterException")


# ---------------------------------------------------------------- aws CLI


def test_cli_attributes(aws, ecs, cluster):
    out = aws("ecs", "list-attributes", "--cluster", cluster, "--target-type", "container-instance")
    assert out["attributes"] == []
    rc, err = aws.error(
        "ecs", "put-attributes", "--cluster", cluster,
        "--attributes", f"name=stack,value=prod,targetType=container-instance,targetId={made_up_instance_id()}",
    )
    assert "TargetNotFoundException" in err

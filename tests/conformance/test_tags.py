"""Resource tags: TagResource, UntagResource, ListTagsForResource, on
clusters, capacity providers and task definitions."""

from __future__ import annotations

import uuid

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, capacity_provider_arn, cluster_arn, error_code, tags_dict, unique


@pytest.fixture
def cluster(ecs):
    name = unique("tagged")
    return ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]


def test_tag_list_untag_cluster(ecs, cluster):
    assert ecs.list_tags_for_resource(resourceArn=cluster)["tags"] == []
    ecs.tag_resource(resourceArn=cluster, tags=[{"key": "env", "value": "prod"}, {"key": "team", "value": "a"}])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=cluster)["tags"]) == {"env": "prod", "team": "a"}

    # Same key replaces the value; new keys are added.
    ecs.tag_resource(resourceArn=cluster, tags=[{"key": "env", "value": "dev"}, {"key": "cost", "value": "42"}])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=cluster)["tags"]) == {
        "env": "dev",
        "team": "a",
        "cost": "42",
    }

    ecs.untag_resource(resourceArn=cluster, tagKeys=["team", "cost", "not-there"])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=cluster)["tags"]) == {"env": "dev"}

    (c,) = ecs.describe_clusters(clusters=[cluster], include=["TAGS"])["clusters"]
    assert tags_dict(c["tags"]) == {"env": "dev"}


def test_tag_values_may_be_empty_and_unicode(ecs, cluster):
    ecs.tag_resource(resourceArn=cluster, tags=[{"key": "empty", "value": ""}, {"key": "ключ", "value": "значение"}])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=cluster)["tags"]) == {"empty": "", "ключ": "значение"}


def test_reserved_aws_prefix_rejected(ecs, cluster):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn=cluster, tags=[{"key": "aws:owner", "value": "x"}])


TOO_MANY = ("InvalidParameterException", "LimitExceededException")


def test_too_many_tags_rejected(ecs, cluster):
    # At most 50 tags per resource.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.tag_resource(resourceArn=cluster, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert error_code(e) in TOO_MANY
    # The limit counts the tags the resource ends up with.
    ecs.tag_resource(resourceArn=cluster, tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.tag_resource(resourceArn=cluster, tags=[{"key": "one-more", "value": "v"}])
    assert error_code(e) in TOO_MANY
    assert len(ecs.list_tags_for_resource(resourceArn=cluster)["tags"]) == 50


def test_tag_key_too_long(ecs, cluster):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.tag_resource(resourceArn=cluster, tags=[{"key": "k" * 129, "value": "v"}])
    assert error_code(e) in ("InvalidParameterException", "ClientException")


def test_malformed_arn_rejected(ecs):
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_tags_for_resource(resourceArn="not-an-arn")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn="arn:aws:ecs:us-east-1", tags=[{"key": "a", "value": "b"}])


def test_unknown_cluster(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.tag_resource(resourceArn=cluster_arn(unique("nocluster")), tags=[{"key": "a", "value": "b"}])
    assert error_code(e) in ("ClusterNotFoundException", "ResourceNotFoundException", "InvalidParameterException")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_tags_for_resource(resourceArn=cluster_arn(unique("nocluster")))
    assert error_code(e) in ("ClusterNotFoundException", "ResourceNotFoundException", "InvalidParameterException")


def test_deleted_cluster_drops_its_tags(ecs):
    name = unique("tagdel")
    arn = ecs.create_cluster(clusterName=name, tags=[{"key": "old", "value": "1"}])["cluster"]["clusterArn"]
    ecs.delete_cluster(cluster=name)
    ecs.create_cluster(clusterName=name)
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_tag_capacity_provider(ecs):
    name = unique("cptag")
    asg = (
        f"arn:aws:autoscaling:us-east-1:{ACCOUNT_ID}:autoScalingGroup:{uuid.uuid4()}"
        f":autoScalingGroupName/{name}"
    )
    ecs.create_capacity_provider(name=name, autoScalingGroupProvider={"autoScalingGroupArn": asg})
    arn = capacity_provider_arn(name)
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"k": "v"}
    (p,) = ecs.describe_capacity_providers(capacityProviders=[name], include=["TAGS"])["capacityProviders"]
    assert tags_dict(p["tags"]) == {"k": "v"}
    ecs.untag_resource(resourceArn=arn, tagKeys=["k"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_tag_task_definition(ecs):
    family = unique("tdtag")
    td = ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "app", "image": "busybox", "memory": 64}],
        tags=[{"key": "initial", "value": "yes"}],
    )["taskDefinition"]
    arn = td["taskDefinitionArn"]
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"initial": "yes"}
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "extra", "value": "1"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["initial"])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"extra": "1"}
    described = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    assert tags_dict(described["tags"]) == {"extra": "1"}


# ---------------------------------------------------------------- aws CLI


def test_cli_tags(aws, ecs, cluster):
    aws("ecs", "tag-resource", "--resource-arn", cluster, "--tags", "key=stage,value=beta", "key=owner,value=me")
    listed = aws("ecs", "list-tags-for-resource", "--resource-arn", cluster)
    assert tags_dict(listed["tags"]) == {"stage": "beta", "owner": "me"}
    aws("ecs", "untag-resource", "--resource-arn", cluster, "--tag-keys", "owner")
    listed = aws("ecs", "list-tags-for-resource", "--resource-arn", cluster)
    assert tags_dict(listed["tags"]) == {"stage": "beta"}
    rc, err = aws.error("ecs", "tag-resource", "--resource-arn", cluster, "--tags", "key=aws:x,value=y")
    assert "InvalidParameterException" in err

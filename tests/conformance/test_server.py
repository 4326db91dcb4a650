"""The server as a whole: health, authentication, STS, regions, and how
operations outside what Berth serves are answered."""

from __future__ import annotations

import botocore.exceptions
import botocore.session
import pytest

from conftest import (
    ACCOUNT_ID,
    ECS_TARGET_PREFIX,
    OTHER_REGION,
    ROOT_ARN,
    cluster_arn,
    ecs_raw,
    error_code,
    error_message,
    raw_request,
    unique,
)

# The operations Berth serves today; every other operation of the ECS model
# must answer UnsupportedFeatureException naming itself.
SERVED = {
    "CreateCluster", "DescribeClusters", "ListClusters", "DeleteCluster", "UpdateCluster",
    "UpdateClusterSettings", "PutClusterCapacityProviders",
    "CreateCapacityProvider", "DescribeCapacityProviders", "UpdateCapacityProvider", "DeleteCapacityProvider",
    "RegisterTaskDefinition", "DescribeTaskDefinition", "DeregisterTaskDefinition", "DeleteTaskDefinitions",
    "ListTaskDefinitions", "ListTaskDefinitionFamilies",
    "TagResource", "UntagResource", "ListTagsForResource",
    "PutAttributes", "DeleteAttributes", "ListAttributes",
    "PutAccountSetting", "PutAccountSettingDefault", "DeleteAccountSetting", "ListAccountSettings",
    "RegisterContainerInstance", "DeregisterContainerInstance", "DescribeContainerInstances",
    "ListContainerInstances", "UpdateContainerInstancesState",
    "RunTask", "StartTask", "StopTask", "DescribeTasks", "ListTasks",
    "SubmitTaskStateChange", "SubmitContainerStateChange", "SubmitAttachmentStateChanges",
    "DiscoverPollEndpoint",
    "CreateService", "UpdateService", "DeleteService", "DescribeServices", "ListServices",
    "ListServicesByNamespace",
    "ListServiceDeployments", "DescribeServiceDeployments", "DescribeServiceRevisions", "StopServiceDeployment",
}


def test_health(berth):
    resp = raw_request(berth, None, method="GET", path="/health", sign=False)
    assert resp.status == 200
    assert resp.json() == {"status": "ok"}


def test_response_carries_request_id(berth):
    resp = ecs_raw(berth, "ListClusters")
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("application/x-amz-json-1.1")
    assert resp.headers.get("x-amzn-requestid")


def test_sts_get_caller_identity_boto3(sts):
    ident = sts.get_caller_identity()
    assert ident["Account"] == ACCOUNT_ID
    assert ident["Arn"] == ROOT_ARN
    assert ident["UserId"]


def test_sts_get_caller_identity_cli(aws):
    ident = aws("sts", "get-caller-identity")
    assert ident["Account"] == ACCOUNT_ID
    assert ident["Arn"] == ROOT_ARN


def test_wrong_secret_is_invalid_signature(berth):
    client = berth.client("ecs", aws_secret_access_key="not-the-right-secret-0000000000")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_clusters()
    assert error_code(e) == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)


def test_unknown_access_key_is_unrecognized_client(berth):
    client = berth.client("ecs", aws_access_key_id="AKIANOSUCHKEY0000000")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_clusters()
    assert error_code(e) == "UnrecognizedClientException"


def test_unknown_session_token_is_unrecognized_client(berth):
    client = berth.client("ecs", aws_session_token="FwoGZXIvYXdzEBogus")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.list_clusters()
    assert error_code(e) == "UnrecognizedClientException"


def test_wrong_secret_cli(aws):
    rc, err = aws.error("ecs", "list-clusters", env=aws.env(AWS_SECRET_ACCESS_KEY="wrong-secret-wrong-secret-00"))
    assert rc != 0
    assert "InvalidSignatureException" in err


def test_sts_wrong_secret(berth):
    client = berth.client("sts", aws_secret_access_key="not-the-right-secret-0000000000")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.get_caller_identity()
    assert error_code(e) == "SignatureDoesNotMatch"


def test_unsigned_request_is_refused(berth):
    resp = ecs_raw(berth, "ListClusters", sign=False)
    assert resp.status in (400, 403)
    assert resp.json()["__type"].endswith("MissingAuthenticationTokenException")


def test_region_isolation(ecs, ecs_other_region):
    name = unique("regional")
    ecs.create_cluster(clusterName=name)
    assert cluster_arn(name) in ecs.list_clusters()["clusterArns"]

    other = ecs_other_region.list_clusters()["clusterArns"]
    assert cluster_arn(name) not in other
    assert cluster_arn(name, OTHER_REGION) not in other
    described = ecs_other_region.describe_clusters(clusters=[name])
    assert described["clusters"] == []
    assert described["failures"] == [{"arn": cluster_arn(name, OTHER_REGION), "reason": "MISSING"}]

    # The same name in the other region is a different cluster.
    created = ecs_other_region.create_cluster(clusterName=name)["cluster"]
    assert created["clusterArn"] == cluster_arn(name, OTHER_REGION)
    ecs_other_region.delete_cluster(cluster=name)
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["status"] == "ACTIVE"


def test_unserved_operation_boto3(ecs):
    with pytest.raises(ecs.exceptions.UnsupportedFeatureException) as e:
        ecs.describe_task_sets(cluster="default", service="nothing")
    assert error_code(e) == "UnsupportedFeatureException"
    assert "DescribeTaskSets" in error_message(e)


def test_unserved_operation_cli(aws):
    rc, err = aws.error("ecs", "create-task-set", "--cluster", "default", "--service", "nothing",
                        "--task-definition", "nothing")
    assert "UnsupportedFeatureException" in err
    assert "CreateTaskSet" in err


def test_every_unserved_model_operation_names_itself(berth):
    """Each operation of the ECS model in the pinned botocore that Berth does
    not serve answers UnsupportedFeatureException naming it (never
    UnknownOperationException: these operations exist in ECS)."""
    model = botocore.session.get_session().get_service_model("ecs")
    wrong = {}
    for op in sorted(set(model.operation_names) - SERVED):
        resp = ecs_raw(berth, op, {})
        body = resp.json() or {}
        code = body.get("__type", "").rsplit("#", 1)[-1]
        if resp.status != 400 or code != "UnsupportedFeatureException" or op not in body.get("message", ""):
            wrong[op] = f"{resp.status} {code}: {body.get('message', '')}"
    assert not wrong, "operations not answered with UnsupportedFeatureException naming them:\n" + "\n".join(
        f"  {k}: {v}" for k, v in wrong.items()
    )


def test_unknown_operation(berth):
    resp = ecs_raw(berth, "DefinitelyNotAnOperation", {})
    assert resp.status == 400
    body = resp.json()
    assert body["__type"].rsplit("#", 1)[-1] == "UnknownOperationException"


def test_malformed_json_is_serialization_exception(berth):
    resp = raw_request(berth, f"{ECS_TARGET_PREFIX}.ListClusters", data=b"{not json")
    assert resp.status == 400
    assert resp.json()["__type"].rsplit("#", 1)[-1] == "SerializationException"


def test_wrong_member_type_is_serialization_exception(berth):
    resp = ecs_raw(berth, "CreateCluster", {"clusterName": 5})
    assert resp.status == 400
    assert resp.json()["__type"].rsplit("#", 1)[-1] == "SerializationException"

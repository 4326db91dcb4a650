"""Services: CreateService, UpdateService, DeleteService, DescribeServices,
ListServices, ListServicesByNamespace, and tagging services, against a
server with no agent: clusters here have no container instances unless a
test registers one (then tasks are placed but no agent ever runs them), so
services' counts stay 0. Services running real tasks are covered by
test_up_services.py and crates/berth-sdk-tests/tests/e2e_services.rs."""

from __future__ import annotations

import re
import time

import pytest

from conftest import ACCOUNT_ID, ROOT_ARN, assert_recent, error_code, error_message, tags_dict, unique
from test_tasks import register_instance

PREFIX = f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}"


def service_arn(cluster: str, name: str) -> str:
    return f"{PREFIX}:service/{cluster}/{name}"


@pytest.fixture
def cluster(ecs):
    """A cluster with task definition family `<cluster>` (revisions 1 and 2,
    bridge) and `<cluster>-vpc` (awsvpc)."""
    name = unique("svc")
    ecs.create_cluster(clusterName=name)
    for _ in range(2):
        ecs.register_task_definition(
            family=name, containerDefinitions=[{"name": "web", "image": "busybox", "memory": 64}]
        )
    ecs.register_task_definition(
        family=f"{name}-vpc",
        networkMode="awsvpc",
        containerDefinitions=[{"name": "web", "image": "busybox", "memory": 64}],
    )
    return name


def active_services(ecs, cluster: str) -> int:
    return ecs.describe_clusters(clusters=[cluster])["clusters"][0]["activeServicesCount"]


def test_create_service_shape(ecs, cluster):
    svc = ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=f"{cluster}:1",
        desiredCount=2,
        placementConstraints=[{"type": "distinctInstance"}],
        placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}],
        healthCheckGracePeriodSeconds=15,
        propagateTags="SERVICE",
        enableECSManagedTags=True,
        tags=[{"key": "team", "value": "a"}],
    )["service"]
    assert svc["serviceArn"] == service_arn(cluster, "web")
    assert svc["serviceName"] == "web"
    assert svc["clusterArn"] == f"{PREFIX}:cluster/{cluster}"
    assert svc["status"] == "ACTIVE"
    assert (svc["desiredCount"], svc["runningCount"], svc["pendingCount"]) == (2, 0, 0)
    assert svc["launchType"] == "EC2"
    assert svc["schedulingStrategy"] == "REPLICA"
    assert svc["taskDefinition"] == f"{PREFIX}:task-definition/{cluster}:1"
    assert svc["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }
    assert svc["placementConstraints"] == [{"type": "distinctInstance"}]
    assert svc["placementStrategy"] == [{"type": "spread", "field": "attribute:ecs.availability-zone"}]
    assert svc["healthCheckGracePeriodSeconds"] == 15
    assert svc["propagateTags"] == "SERVICE"
    assert svc["enableECSManagedTags"] is True
    assert svc["enableExecuteCommand"] is False
    assert svc["events"] == []
    assert svc["createdBy"] == ROOT_ARN
    assert_recent(svc["createdAt"])
    assert tags_dict(svc["tags"]) == {"team": "a"}
    [d] = svc["deployments"]
    assert re.fullmatch(r"ecs-svc/\d{19}", d["id"])
    assert d["status"] == "PRIMARY"
    assert d["taskDefinition"] == svc["taskDefinition"]
    assert (d["desiredCount"], d["pendingCount"], d["runningCount"], d["failedTasks"]) == (2, 0, 0, 0)
    assert d["launchType"] == "EC2"
    assert d["rolloutState"] == "IN_PROGRESS"
    assert d["rolloutStateReason"] == f"ECS deployment {d['id']} in progress."
    assert_recent(d["createdAt"])
    assert_recent(d["updatedAt"])
    assert active_services(ecs, cluster) == 1


def test_create_service_errors(ecs, cluster):
    cases = [
        (dict(cluster=unique("nope"), serviceName="a", taskDefinition=f"{cluster}:1", desiredCount=1),
         "ClusterNotFoundException", "Cluster not found."),
        (dict(cluster=cluster, serviceName="a", taskDefinition=unique("ghost"), desiredCount=1),
         "ClientException", "TaskDefinition not found."),
        (dict(cluster=cluster, serviceName="a", taskDefinition=f"{cluster}-vpc", desiredCount=1),
         "InvalidParameterException", "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
        (dict(cluster=cluster, serviceName="a", taskDefinition=cluster, schedulingStrategy="DAEMON", desiredCount=1),
         "InvalidParameterException",
         "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again"),
        (dict(cluster=cluster, serviceName="a", taskDefinition=cluster, schedulingStrategy="DAEMON",
              placementStrategy=[{"type": "random"}]),
         "InvalidParameterException",
         "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again"),
        (dict(cluster=cluster, serviceName="has space", taskDefinition=cluster, desiredCount=1),
         "InvalidParameterException", None),
        (dict(cluster=cluster, serviceName="a", taskDefinition=cluster, desiredCount=1,
              deploymentConfiguration={"minimumHealthyPercent": 101}),
         "InvalidParameterException", None),
        (dict(cluster=cluster, serviceName="a", taskDefinition=cluster, desiredCount=1,
              placementConstraints=[{"type": "memberOf"}]),
         "InvalidParameterException", None),
    ]
    for kwargs, code, message in cases:
        with pytest.raises(ecs.exceptions.ClientError) as e:
            ecs.create_service(**kwargs)
        assert error_code(e) == code, kwargs
        if message is not None:
            assert error_message(e) == message, kwargs
    assert active_services(ecs, cluster) == 0


def test_daemon_and_awsvpc_services(ecs, cluster):
    daemon = ecs.create_service(cluster=cluster, serviceName="d", taskDefinition=cluster, schedulingStrategy="DAEMON")[
        "service"
    ]
    assert daemon["schedulingStrategy"] == "DAEMON"
    assert daemon["taskDefinition"] == f"{PREFIX}:task-definition/{cluster}:2"
    assert daemon["deploymentConfiguration"]["minimumHealthyPercent"] == 0
    assert daemon["deploymentConfiguration"]["maximumPercent"] == 100
    net = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}}
    vpc = ecs.create_service(
        cluster=cluster, serviceName="v", taskDefinition=f"{cluster}-vpc", desiredCount=1, networkConfiguration=net
    )["service"]
    assert vpc["networkConfiguration"] == net
    assert vpc["deployments"][0]["networkConfiguration"] == net


def test_create_service_idempotency(ecs, cluster):
    kwargs = dict(cluster=cluster, serviceName="idem", taskDefinition=f"{cluster}:1", desiredCount=1, clientToken="t-1")
    first = ecs.create_service(**kwargs)["service"]
    again = ecs.create_service(**kwargs)["service"]
    assert again["deployments"][0]["id"] == first["deployments"][0]["id"]
    for change in [dict(clientToken="t-2"), dict(desiredCount=3)]:
        with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
            ecs.create_service(**{**kwargs, **change})
        assert error_message(e) == "Creation of service was not idempotent."
    assert len(ecs.list_services(cluster=cluster)["serviceArns"]) == 1


def test_update_service_deployments(ecs, cluster):
    created = ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=f"{cluster}:1", desiredCount=1)[
        "service"
    ]
    first = created["deployments"][0]["id"]
    scaled = ecs.update_service(cluster=cluster, service="web", desiredCount=3)["service"]
    assert scaled["desiredCount"] == 3
    assert [(d["id"], d["desiredCount"]) for d in scaled["deployments"]] == [(first, 3)]

    updated = ecs.update_service(cluster=cluster, service=service_arn(cluster, "web"), taskDefinition=f"{cluster}:2")[
        "service"
    ]
    assert updated["taskDefinition"] == f"{PREFIX}:task-definition/{cluster}:2"
    primary, old = updated["deployments"]
    assert (primary["status"], primary["taskDefinition"], primary["desiredCount"]) == (
        "PRIMARY",
        updated["taskDefinition"],
        3,
    )
    assert primary["id"] != first
    assert (old["status"], old["id"], old["taskDefinition"]) == ("ACTIVE", first, f"{PREFIX}:task-definition/{cluster}:1")

    forced = ecs.update_service(cluster=cluster, service="web", forceNewDeployment=True)["service"]
    # The old deployments have no tasks (no instances here), so the
    # controller may already have retired the first one.
    statuses = [d["status"] for d in forced["deployments"]]
    assert statuses[0] == "PRIMARY" and statuses[1:] in (["ACTIVE"], ["ACTIVE", "ACTIVE"]), statuses
    assert forced["deployments"][1]["id"] == primary["id"]
    assert forced["deployments"][0]["taskDefinition"] == updated["taskDefinition"]

    configured = ecs.update_service(
        cluster=cluster,
        service="web",
        deploymentConfiguration={
            "minimumHealthyPercent": 50,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
        healthCheckGracePeriodSeconds=5,
    )["service"]
    assert configured["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,
        "minimumHealthyPercent": 50,
    }
    assert configured["healthCheckGracePeriodSeconds"] == 5

    with pytest.raises(ecs.exceptions.ServiceNotFoundException) as e:
        ecs.update_service(cluster=cluster, service="ghost", desiredCount=1)
    assert error_message(e) == "Service not found."


def test_delete_service_drains(ecs, cluster):
    # Tasks placed on an instance whose agent never runs them keep the
    # deleted service DRAINING: nothing ever reports them STOPPED.
    register_instance(ecs, cluster)
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=cluster, desiredCount=2)
    placed = ecs.list_tasks(cluster=cluster, serviceName="web")["taskArns"]
    deadline = time.monotonic() + 10
    while len(placed) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        placed = ecs.list_tasks(cluster=cluster, serviceName="web")["taskArns"]
    assert len(placed) == 2
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.delete_service(cluster=cluster, service="web")
    assert error_message(e) == "The service cannot be stopped while it is scaled above 0."
    deleted = ecs.delete_service(cluster=cluster, service="web", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    assert deleted["desiredCount"] == 0
    assert active_services(ecs, cluster) == 0
    assert ecs.describe_services(cluster=cluster, services=["web"])["services"][0]["status"] == "DRAINING"
    assert ecs.list_services(cluster=cluster)["serviceArns"] == [service_arn(cluster, "web")]
    with pytest.raises(ecs.exceptions.ServiceNotActiveException) as e:
        ecs.update_service(cluster=cluster, service="web", desiredCount=1)
    assert error_message(e) == "Service was not ACTIVE."
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=cluster, desiredCount=1)
    # A service still ACTIVE keeps the cluster from being deleted.
    ecs.create_service(cluster=cluster, serviceName="other", taskDefinition=cluster, desiredCount=0)
    with pytest.raises(ecs.exceptions.ClusterContainsServicesException):
        ecs.delete_cluster(cluster=cluster)


def test_describe_services_failures_and_tags(ecs, cluster):
    ecs.create_service(
        cluster=cluster, serviceName="web", taskDefinition=cluster, desiredCount=0, tags=[{"key": "a", "value": "1"}]
    )
    arn = service_arn(cluster, "web")
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"b": "2"}
    out = ecs.describe_services(cluster=cluster, services=["web", arn, "ghost"], include=["TAGS"])
    assert [s["serviceArn"] for s in out["services"]] == [arn, arn]
    assert tags_dict(out["services"][0]["tags"]) == {"b": "2"}
    assert out["failures"] == [{"arn": service_arn(cluster, "ghost"), "reason": "MISSING"}]
    plain = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    assert "tags" not in plain
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.describe_services(cluster=cluster, services=[f"s{i}" for i in range(11)])


def test_list_services_paginates_and_filters(ecs, cluster):
    names = [f"s{i:02}" for i in range(13)]
    for n in names:
        ecs.create_service(cluster=cluster, serviceName=n, taskDefinition=cluster, desiredCount=0)
    ecs.create_service(cluster=cluster, serviceName="zd", taskDefinition=cluster, schedulingStrategy="DAEMON")
    assert len(ecs.list_services(cluster=cluster)["serviceArns"]) == 10
    pages = list(ecs.get_paginator("list_services").paginate(cluster=cluster, PaginationConfig={"PageSize": 4}))
    assert len(pages) == 4
    seen = [a for p in pages for a in p["serviceArns"]]
    assert seen == [service_arn(cluster, n) for n in [*names, "zd"]]
    daemons = ecs.list_services(cluster=cluster, schedulingStrategy="DAEMON")["serviceArns"]
    assert daemons == [service_arn(cluster, "zd")]
    assert ecs.list_services(cluster=cluster, launchType="EXTERNAL")["serviceArns"] == []
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_services(cluster=cluster, maxResults=101)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_services(cluster=cluster, nextToken=ecs.list_clusters(maxResults=1).get("nextToken", "garbage"))
    assert ecs.list_services_by_namespace(namespace="ns")["serviceArns"] == []


def test_services_with_the_cli(aws, cluster):
    created = aws(
        "ecs", "create-service", "--cluster", cluster, "--service-name", "cli", "--task-definition", cluster,
        "--desired-count", "1",
    )["service"]
    assert created["status"] == "ACTIVE"
    assert created["deployments"][0]["status"] == "PRIMARY"
    listed = aws("ecs", "list-services", "--cluster", cluster)
    assert listed["serviceArns"] == [service_arn(cluster, "cli")]
    updated = aws(
        "ecs", "update-service", "--cluster", cluster, "--service", "cli", "--task-definition", f"{cluster}:1",
    )["service"]
    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    rc, err = aws.error("ecs", "delete-service", "--cluster", cluster, "--service", "cli")
    assert "InvalidParameterException" in err
    assert "The service cannot be stopped while it is scaled above 0." in err
    deleted = aws("ecs", "delete-service", "--cluster", cluster, "--service", "cli", "--force")["service"]
    assert deleted["status"] == "DRAINING"
    # No task ever ran (the cluster has no instance): the controller makes
    # it INACTIVE at once.
    aws("ecs", "wait", "services-inactive", "--cluster", cluster, "--services", "cli")
    described = aws("ecs", "describe-services", "--cluster", cluster, "--services", "cli", "ghost")
    assert [s["status"] for s in described["services"]] == ["INACTIVE"]
    assert described["failures"] == [{"arn": service_arn(cluster, "ghost"), "reason": "MISSING"}]

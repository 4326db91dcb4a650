"""Service deployments and revisions: ListServiceDeployments,
DescribeServiceDeployments, DescribeServiceRevisions, StopServiceDeployment.

The shared server has no agents, so no task of these services ever runs:
deployments stay IN_PROGRESS unless replaced or stopped, which is what these
tests rely on (desiredCount 1, circuit breaker off)."""

from __future__ import annotations

import datetime
import re

import pytest

from conftest import ACCOUNT_ID, assert_recent, error_code, error_message, unique

PREFIX = f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}"


@pytest.fixture
def cluster(ecs):
    """A cluster with task definition family `<cluster>`, revisions 1..3."""
    name = unique("sdep")
    ecs.create_cluster(clusterName=name)
    for image in ("busybox", "busybox:1.36", "busybox:1.37"):
        ecs.register_task_definition(family=name, containerDefinitions=[{"name": "web", "image": image, "memory": 64}])
    return name


def td_arn(cluster: str, revision: int) -> str:
    return f"{PREFIX}:task-definition/{cluster}:{revision}"


def deployed(ecs, cluster: str, service: str = "web") -> list[str]:
    """Create `service` on revision 1, update it to revision 2; the service
    deployment ARNs, newest first."""
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=f"{cluster}:1", desiredCount=1)
    ecs.update_service(cluster=cluster, service=service, taskDefinition=f"{cluster}:2")
    listed = ecs.list_service_deployments(cluster=cluster, service=service)["serviceDeployments"]
    return [b["serviceDeploymentArn"] for b in listed]


def revision_of(deployment_arn: str) -> str:
    return deployment_arn.replace(":service-deployment/", ":service-revision/")


def test_list_newest_first_with_brief_shape(ecs, cluster):
    arns = deployed(ecs, cluster)
    assert len(arns) == 2
    for arn in arns:
        assert re.fullmatch(rf"{re.escape(PREFIX)}:service-deployment/{cluster}/web/\d{{19}}", arn), arn
    listed = ecs.list_service_deployments(cluster=cluster, service=f"{PREFIX}:service/{cluster}/web")
    assert "nextToken" not in listed
    new, old = listed["serviceDeployments"]
    assert new["serviceArn"] == f"{PREFIX}:service/{cluster}/web"
    assert new["clusterArn"] == f"{PREFIX}:cluster/{cluster}"
    assert new["targetServiceRevisionArn"] == revision_of(new["serviceDeploymentArn"])
    assert new["status"] == "IN_PROGRESS"
    assert "finishedAt" not in new
    assert_recent(new["createdAt"])
    assert new["startedAt"] == new["createdAt"]
    assert new["createdAt"] >= old["createdAt"]
    # Replaced before it finished.
    assert old["status"] == "STOPPED"
    assert_recent(old["finishedAt"])

    # The deployment ids DescribeServices shows name the same deployments
    # (the controller may already have retired the old one: no task ran).
    svc = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    digits = [d["id"].removeprefix("ecs-svc/") for d in svc["deployments"]]
    assert [a.rsplit("/", 1)[1] for a in arns][: len(digits)] == digits


def test_list_filters_and_pages(ecs, cluster):
    new, old = deployed(ecs, cluster)
    assert not ecs.can_paginate("list_service_deployments")
    first = ecs.list_service_deployments(cluster=cluster, service="web", maxResults=1)
    assert [b["serviceDeploymentArn"] for b in first["serviceDeployments"]] == [new]
    second = ecs.list_service_deployments(cluster=cluster, service="web", maxResults=1, nextToken=first["nextToken"])
    assert [b["serviceDeploymentArn"] for b in second["serviceDeployments"]] == [old]
    assert "nextToken" not in second

    stopped = ecs.list_service_deployments(cluster=cluster, service="web", status=["STOPPED", "ROLLBACK_FAILED"])
    assert [b["serviceDeploymentArn"] for b in stopped["serviceDeployments"]] == [old]
    now = datetime.datetime.now(datetime.timezone.utc)
    hour = datetime.timedelta(hours=1)
    assert ecs.list_service_deployments(cluster=cluster, service="web", createdAt={"after": now + hour})[
        "serviceDeployments"
    ] == []
    window = ecs.list_service_deployments(
        cluster=cluster, service="web", createdAt={"after": now - hour, "before": now + hour}
    )
    assert len(window["serviceDeployments"]) == 2


def test_describe_deployments_and_revisions(ecs, cluster):
    new, old = deployed(ecs, cluster)
    missing = f"{PREFIX}:service-deployment/{cluster}/web/0000000000000000001"
    out = ecs.describe_service_deployments(serviceDeploymentArns=[new, missing, old])
    assert out["failures"] == [{"arn": missing, "reason": "MISSING"}]
    d, o = out["serviceDeployments"]
    assert d["serviceDeploymentArn"] == new
    assert d["status"] == "IN_PROGRESS"
    assert d["targetServiceRevision"] == {
        "arn": revision_of(new),
        "requestedTaskCount": 1,
        "runningTaskCount": 0,
        "pendingTaskCount": 0,
    }
    assert [s["arn"] for s in d["sourceServiceRevisions"]] == [revision_of(old)]
    assert d["deploymentCircuitBreaker"] == {"status": "DISABLED"}
    assert d["deploymentConfiguration"]["maximumPercent"] == 200
    assert_recent(d["updatedAt"])
    assert "rollback" not in d
    assert o["status"] == "STOPPED"
    assert o["sourceServiceRevisions"] == []
    assert_recent(o["stoppedAt"])

    missing_rev = f"{PREFIX}:service-revision/{cluster}/web/0000000000000000001"
    revs = ecs.describe_service_revisions(serviceRevisionArns=[revision_of(old), revision_of(new), missing_rev])
    assert revs["failures"] == [{"arn": missing_rev, "reason": "MISSING"}]
    r_old, r_new = revs["serviceRevisions"]
    assert r_old["serviceRevisionArn"] == revision_of(old)
    assert r_old["taskDefinition"] == td_arn(cluster, 1)
    assert r_new["taskDefinition"] == td_arn(cluster, 2)
    assert r_new["containerImages"] == [{"containerName": "web", "image": "busybox:1.36"}]
    assert r_new["launchType"] == "EC2"
    assert r_new["serviceArn"] == f"{PREFIX}:service/{cluster}/web"
    assert r_new["clusterArn"] == f"{PREFIX}:cluster/{cluster}"
    assert_recent(r_new["createdAt"])


def test_stop_with_rollback_redeploys_the_previous_revision(ecs, cluster):
    new, old = deployed(ecs, cluster)
    assert ecs.stop_service_deployment(serviceDeploymentArn=new)["serviceDeploymentArn"] == new
    # Asked again while the rollback runs: it continues, nothing new starts.
    assert ecs.stop_service_deployment(serviceDeploymentArn=new)["serviceDeploymentArn"] == new
    svc = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    assert svc["taskDefinition"] == td_arn(cluster, 1)
    primary = svc["deployments"][0]
    assert primary["status"] == "PRIMARY"
    assert primary["taskDefinition"] == td_arn(cluster, 1)
    # The stopped deployment is ACTIVE until the controller has drained it.
    for d in svc["deployments"][1:]:
        if d["id"].removeprefix("ecs-svc/") == new.rsplit("/", 1)[1]:
            assert (d["status"], d["rolloutState"]) == ("ACTIVE", "FAILED")

    d = ecs.describe_service_deployments(serviceDeploymentArns=[new])["serviceDeployments"][0]
    assert d["status"] in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")
    rollback_arn = f"{PREFIX}:service-deployment/{cluster}/web/{primary['id'].removeprefix('ecs-svc/')}"
    assert d["rollback"]["serviceRevisionArn"] == revision_of(rollback_arn)
    assert_recent(d["rollback"]["startedAt"])
    assert_recent(d["stoppedAt"])

    listed = ecs.list_service_deployments(cluster=cluster, service="web")["serviceDeployments"]
    assert [b["serviceDeploymentArn"] for b in listed] == [rollback_arn, new, old]
    assert listed[0]["status"] == "IN_PROGRESS"
    rev = ecs.describe_service_revisions(serviceRevisionArns=[revision_of(rollback_arn)])["serviceRevisions"][0]
    assert rev["taskDefinition"] == td_arn(cluster, 1)


def test_stop_with_abort_freezes_the_deployment(ecs, cluster):
    new, _ = deployed(ecs, cluster)
    assert ecs.stop_service_deployment(serviceDeploymentArn=new, stopType="ABORT")["serviceDeploymentArn"] == new
    svc = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    primary = svc["deployments"][0]
    assert (primary["status"], primary["rolloutState"]) == ("PRIMARY", "FAILED")
    assert svc["taskDefinition"] == td_arn(cluster, 2)
    d = ecs.describe_service_deployments(serviceDeploymentArns=[new])["serviceDeployments"][0]
    assert d["status"] == "STOPPED"
    assert_recent(d["stoppedAt"])
    with pytest.raises(ecs.exceptions.ConflictException):
        ecs.stop_service_deployment(serviceDeploymentArn=new, stopType="ABORT")


def test_modeled_exceptions(ecs, cluster):
    new, old = deployed(ecs, cluster)
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.list_service_deployments(cluster=cluster, service="ghost")
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.list_service_deployments(cluster=unique("nocluster"), service="web")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_service_deployments(cluster=cluster, service="web", maxResults=101)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_service_deployments(cluster=cluster, service="web", nextToken="garbage")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.describe_service_deployments(serviceDeploymentArns=[])
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.describe_service_revisions(serviceRevisionArns=[revision_of(new)] * 21)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.describe_service_deployments(serviceDeploymentArns=[f"{PREFIX}:service/{cluster}/web"])

    ghost = f"{PREFIX}:service-deployment/{cluster}/web/0000000000000000001"
    with pytest.raises(ecs.exceptions.ServiceDeploymentNotFoundException) as e:
        ecs.stop_service_deployment(serviceDeploymentArn=ghost)
    assert error_message(e) == "Service deployment not found."
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.stop_service_deployment(serviceDeploymentArn=new, stopType="PAUSE")
    # Replaced by the newer deployment: already finished.
    with pytest.raises(ecs.exceptions.ConflictException) as e:
        ecs.stop_service_deployment(serviceDeploymentArn=old)
    assert error_code(e) == "ConflictException"
    # A first deployment has no previous revision to roll back to.
    ecs.create_service(cluster=cluster, serviceName="solo", taskDefinition=f"{cluster}:1", desiredCount=1)
    [solo] = ecs.list_service_deployments(cluster=cluster, service="solo")["serviceDeployments"]
    with pytest.raises(ecs.exceptions.ConflictException):
        ecs.stop_service_deployment(serviceDeploymentArn=solo["serviceDeploymentArn"], stopType="ROLLBACK")



def test_service_deployments_with_the_cli(aws, ecs, cluster):
    new, old = deployed(ecs, cluster)
    listed = aws("ecs", "list-service-deployments", "--cluster", cluster, "--service", "web", "--status", "IN_PROGRESS")
    assert [b["serviceDeploymentArn"] for b in listed["serviceDeployments"]] == [new]
    described = aws("ecs", "describe-service-deployments", "--service-deployment-arns", new, old)
    assert [d["status"] for d in described["serviceDeployments"]] == ["IN_PROGRESS", "STOPPED"]
    revs = aws("ecs", "describe-service-revisions", "--service-revision-arns", revision_of(new))
    assert revs["serviceRevisions"][0]["taskDefinition"] == td_arn(cluster, 2)
    stopped = aws("ecs", "stop-service-deployment", "--service-deployment-arn", new, "--stop-type", "ROLLBACK")
    assert stopped == {"serviceDeploymentArn": new}
    rc, err = aws.error("ecs", "stop-service-deployment", "--service-deployment-arn", old)
    assert rc != 0
    assert "ConflictException" in err

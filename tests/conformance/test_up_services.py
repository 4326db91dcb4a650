"""ECS services on `berth up` running real containers, through the aws CLI's
and boto3's service waiters (`services-stable`, `services-inactive`).

This module gets its own `berth up` from the fixtures of test_up_tasks.py
(own data dir, bridge, cgroup prefix and /24; the busybox image built in
Python and loaded with `berth image load`). Services restart the tasks
StopTask ends, so every test deletes its services (--force) and waits for
INACTIVE before that fixture's teardown stops whatever is left and checks
that nothing of a task remains.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import botocore.exceptions
import pytest

from conftest import unique
from test_up_tasks import (  # noqa: F401  (berth, ecs, aws and image_archive are fixtures)
    CLUSTER,
    IMAGE_REF,
    INDEX_TEXT,
    TASK_TIMEOUT_S,
    _describe,
    _http_get,
    aws,
    berth,
    ecs,
    image_archive,
)

# The CLI's waiters poll every 15 s (services-stable up to 40 times);
# boto3's are given a 1 s delay here.
BOTO_WAIT = {"Delay": 1, "MaxAttempts": TASK_TIMEOUT_S}


def _container(version: str) -> dict[str, Any]:
    return {
        "name": "web",
        "image": IMAGE_REF,
        "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
        "environment": [{"name": "VERSION", "value": version}],
        "portMappings": [{"containerPort": 8080}],
        "memory": 32,
        "essential": True,
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": 3,
    }


def _service(ecs, name: str) -> dict[str, Any]:
    out = ecs.describe_services(cluster=CLUSTER, services=[name])
    assert out["failures"] == [], out
    (service,) = out["services"]
    return service


def _summary(service: dict[str, Any]) -> str:
    """The parts of a service worth seeing when a wait fails."""
    return json.dumps({
        "status": service.get("status"),
        "desiredCount": service.get("desiredCount"),
        "runningCount": service.get("runningCount"),
        "pendingCount": service.get("pendingCount"),
        "deployments": [{k: d.get(k) for k in ("id", "status", "taskDefinition", "desiredCount", "runningCount",
                                                "pendingCount", "failedTasks", "rolloutState", "rolloutStateReason")}
                        for d in service.get("deployments", [])],
        "events": [e["message"] for e in service.get("events", [])[:15]],
    }, indent=1, default=str)


def _service_tasks(ecs, name: str, desired: str = "RUNNING") -> list[dict[str, Any]]:
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER, serviceName=name, desiredStatus=desired):
        arns += page["taskArns"]
    return _describe(ecs, arns) if arns else []


def _wait(ecs, waiter: str, name: str) -> None:
    """boto3's own waiter; on failure the message shows the service."""
    try:
        ecs.get_waiter(waiter).wait(cluster=CLUSTER, services=[name], WaiterConfig=BOTO_WAIT)
    except botocore.exceptions.WaiterError as e:
        pytest.fail(f"{waiter} waiter: {e}\nservice now: {_summary(_service(ecs, name))}")


@pytest.fixture
def services(ecs) -> Iterator[list[str]]:
    """Names of the services a test creates; each is deleted (--force) and
    waited INACTIVE afterwards, even when the test failed."""
    names: list[str] = []
    yield names
    problems = []
    for name in names:
        try:
            if _service(ecs, name)["status"] == "ACTIVE":
                ecs.delete_service(cluster=CLUSTER, service=name, force=True)
            ecs.get_waiter("services_inactive").wait(cluster=CLUSTER, services=[name], WaiterConfig=BOTO_WAIT)
        except Exception as e:  # go on with the others
            problems.append(f"{name}: {e!r}")
    assert problems == [], problems


def test_cli_wait_services_stable_then_inactive(berth, aws, ecs, services):
    """aws CLI: create-service with 2 tasks, `aws ecs wait services-stable`,
    the tasks serve HTTP, delete-service --force, `aws ecs wait
    services-inactive`, every task STOPPED."""
    family = unique("svc-cli")
    name = unique("web")
    td = aws("ecs", "register-task-definition", "--family", family,
             "--container-definitions", json.dumps([_container("1")]))["taskDefinition"]
    created = aws("ecs", "create-service", "--cluster", CLUSTER, "--service-name", name,
                  "--task-definition", td["taskDefinitionArn"], "--desired-count", "2")["service"]
    services.append(name)
    assert created["status"] == "ACTIVE" and created["desiredCount"] == 2

    started = time.monotonic()
    aws("ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", name)
    print(f"services-stable after {time.monotonic() - started:.1f}s")
    (service,) = aws("ecs", "describe-services", "--cluster", CLUSTER, "--services", name)["services"]
    assert (service["status"], service["runningCount"], service["pendingCount"]) == ("ACTIVE", 2, 0), _summary(service)
    (deployment,) = service["deployments"]
    assert deployment["status"] == "PRIMARY", _summary(service)
    tasks = _service_tasks(ecs, name)
    assert len(tasks) == 2
    for task in tasks:
        assert task["lastStatus"] == "RUNNING"
        assert task["group"] == f"service:{name}"
        assert task["startedBy"] == deployment["id"]
        (binding,) = task["containers"][0]["networkBindings"]
        status, body = _http_get(binding["hostPort"], "/index.html")
        assert (status, body) == (200, INDEX_TEXT)

    deleted = aws("ecs", "delete-service", "--cluster", CLUSTER, "--service", name, "--force")["service"]
    assert deleted["status"] == "DRAINING"
    started = time.monotonic()
    aws("ecs", "wait", "services-inactive", "--cluster", CLUSTER, "--services", name)
    print(f"services-inactive after {time.monotonic() - started:.1f}s")
    (service,) = aws("ecs", "describe-services", "--cluster", CLUSTER, "--services", name)["services"]
    assert service["status"] == "INACTIVE"
    stopped = _describe(ecs, [t["taskArn"] for t in tasks])
    assert [t["lastStatus"] for t in stopped] == ["STOPPED", "STOPPED"], stopped
    assert _service_tasks(ecs, name) == []


def test_boto3_waiters_services_stable_through_an_update_and_inactive(berth, ecs, services):
    """boto3: services_stable after CreateService and again after an
    UpdateService to a new revision (only the new revision runs then),
    services_stable failing fast on a DRAINING service, services_inactive."""
    family = unique("svc-boto")
    name = unique("web")
    td1 = ecs.register_task_definition(family=family, containerDefinitions=[_container("1")])["taskDefinition"]
    td2 = ecs.register_task_definition(family=family, containerDefinitions=[_container("2")])["taskDefinition"]
    ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=td1["taskDefinitionArn"], desiredCount=2,
                       deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200})
    services.append(name)
    _wait(ecs, "services_stable", name)
    service = _service(ecs, name)
    assert service["runningCount"] == 2, _summary(service)
    first = {t["taskArn"] for t in _service_tasks(ecs, name)}
    assert len(first) == 2

    updated = ecs.update_service(cluster=CLUSTER, service=name, taskDefinition=td2["taskDefinitionArn"])["service"]
    assert len(updated["deployments"]) == 2
    _wait(ecs, "services_stable", name)
    service = _service(ecs, name)
    (deployment,) = service["deployments"]
    assert deployment["taskDefinition"] == td2["taskDefinitionArn"], _summary(service)
    assert service["runningCount"] == 2, _summary(service)
    tasks = _service_tasks(ecs, name)
    assert {t["taskDefinitionArn"] for t in tasks} == {td2["taskDefinitionArn"]}, tasks
    assert not first & {t["taskArn"] for t in tasks}
    assert all(t["lastStatus"] == "STOPPED" for t in _describe(ecs, sorted(first)))

    ecs.delete_service(cluster=CLUSTER, service=name, force=True)
    # services_stable treats a DRAINING (or INACTIVE) service as a failure.
    with pytest.raises(botocore.exceptions.WaiterError) as excinfo:
        ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[name], WaiterConfig=BOTO_WAIT)
    assert "failure state" in str(excinfo.value).lower() or "terminal" in str(excinfo.value).lower(), excinfo.value
    _wait(ecs, "services_inactive", name)
    assert _service(ecs, name)["status"] == "INACTIVE"
    assert _service_tasks(ecs, name) == []
    assert all(t["lastStatus"] == "STOPPED" for t in _describe(ecs, [t["taskArn"] for t in tasks]))


def test_boto3_services_inactive_on_a_missing_service_fails(berth, ecs):
    """services_inactive on a service that never existed: a MISSING failure,
    which the waiter treats as terminal."""
    with pytest.raises(botocore.exceptions.WaiterError):
        ecs.get_waiter("services_inactive").wait(cluster=CLUSTER, services=[unique("never")],
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 3})

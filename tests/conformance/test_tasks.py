"""Hosts and tasks, server side: the agent-facing calls made the way an
agent makes them (RegisterContainerInstance, SubmitTaskStateChange) through
boto3, and the user-facing container instance and task operations."""

from __future__ import annotations

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, error_code, unique


def register_instance(ecs, cluster: str, memory: int = 1024, itype: str = "t3.small") -> str:
    out = ecs.register_container_instance(
        cluster=cluster,
        totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
        ],
        versionInfo={"agentVersion": "0.1.0", "agentHash": "berth", "dockerVersion": "runc"},
        attributes=[
            {"name": "ecs.os-type", "value": "linux"},
            {"name": "ecs.instance-type", "value": itype},
        ],
    )
    return out["containerInstance"]["containerInstanceArn"]


@pytest.fixture
def cluster(ecs):
    name = unique("tasks")
    ecs.create_cluster(clusterName=name)
    ecs.register_task_definition(
        family=name,
        containerDefinitions=[
            {"name": "web", "image": "busybox", "memory": 128, "portMappings": [{"containerPort": 8080}]}
        ],
    )
    return name


def test_register_describe_list_container_instances(ecs, cluster):
    a = register_instance(ecs, cluster, itype="t3.small")
    b = register_instance(ecs, cluster, itype="m5.large")
    assert a.startswith(f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:container-instance/{cluster}/")
    d = ecs.describe_container_instances(cluster=cluster, containerInstances=[a, "missing"], include=["TAGS"])
    ci = d["containerInstances"][0]
    assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True
    assert ci["ec2InstanceId"].startswith("i-")
    assert ci["registeredResources"][0] == {
        "name": "CPU", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": 2048}
    assert ci["remainingResources"][1]["integerValue"] == 1024
    assert d["failures"][0]["reason"] == "MISSING"
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    assert sorted(arns) == sorted([a, b])
    f = ecs.list_container_instances(cluster=cluster, filter="attribute:ecs.instance-type =~ m5.*")
    assert f["containerInstanceArns"] == [b]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_container_instances(cluster=cluster, filter="attribute:")
    assert error_code(e) == "InvalidParameterException"
    u = ecs.update_container_instances_state(cluster=cluster, containerInstances=[b], status="DRAINING")
    assert u["containerInstances"][0]["status"] == "DRAINING"
    assert ecs.list_container_instances(cluster=cluster, status="DRAINING")["containerInstanceArns"] == [b]
    c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert c["registeredContainerInstancesCount"] == 2
    gone = ecs.deregister_container_instance(cluster=cluster, containerInstance=b)
    assert gone["containerInstance"]["status"] == "INACTIVE"


def test_run_describe_list_stop_and_agent_reports(ecs, cluster):
    register_instance(ecs, cluster)
    register_instance(ecs, cluster)
    run = ecs.run_task(cluster=cluster, taskDefinition=cluster, count=3, startedBy="pytest",
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert run["failures"] == []
    tasks = run["tasks"]
    assert len(tasks) == 3
    assert sorted([sum(1 for t in tasks if t["containerInstanceArn"] == x)
                   for x in {t["containerInstanceArn"] for t in tasks}]) == [1, 2]
    arn = tasks[0]["taskArn"]
    listed = ecs.list_tasks(cluster=cluster, startedBy="pytest")["taskArns"]
    assert sorted(listed) == sorted(t["taskArn"] for t in tasks)
    assert ecs.list_tasks(cluster=cluster, family=cluster)["taskArns"]

    # The agent reports RUNNING with its port binding.
    ecs.submit_task_state_change(cluster=cluster, task=arn, status="RUNNING", containers=[
        {"containerName": "web", "status": "RUNNING",
         "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": 49153, "protocol": "tcp"}]}])
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
    assert t["containers"][0]["networkBindings"][0]["hostPort"] == 49153
    assert t["group"] == f"family:{cluster}" and t["launchType"] == "EC2"

    stopped = ecs.stop_task(cluster=cluster, task=arn, reason="pytest says stop")["task"]
    assert stopped["desiredStatus"] == "STOPPED" and stopped["stopCode"] == "UserInitiated"
    ack = ecs.submit_task_state_change(cluster=cluster, task=arn, status="STOPPED", containers=[
        {"containerName": "web", "status": "STOPPED", "exitCode": 0}])
    assert ack["acknowledgment"] == "ACK"
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn, "nope"])
    assert t["tasks"][0]["lastStatus"] == "STOPPED"
    assert t["tasks"][0]["stoppedReason"] == "pytest says stop"
    assert t["failures"][0]["reason"] == "MISSING"
    assert arn in ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]


def test_run_task_failures(ecs, cluster):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=cluster)
    assert error_code(e) == "InvalidParameterException"
    a = register_instance(ecs, cluster, memory=200)
    out = ecs.run_task(cluster=cluster, taskDefinition=cluster, count=2)
    assert len(out["tasks"]) == 1
    assert out["failures"] == [{"arn": a, "reason": "RESOURCE:MEMORY"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=cluster, count=11)
    assert error_code(e) == "InvalidParameterException"


def test_discover_poll_endpoint(ecs, cluster, berth):
    out = ecs.discover_poll_endpoint(cluster=cluster)
    assert out["endpoint"].startswith("http://127.0.0.1:")

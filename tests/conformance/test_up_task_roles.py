"""Task roles on `berth up` with real containers: a container fetches its
task role's credentials from 169.254.170.2 as every AWS SDK does
(`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`), boto3 signs with them and is
the assumed role; another task cannot fetch them; the task metadata
endpoint v4 describes the task. In bridge and awsvpc modes.

Uses the `berth up` of test_up_tasks.py (its fixtures), and the image's
busybox `wget`.
"""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, error_code, unique
from test_up_tasks import (  # noqa: F401  (berth, ecs, aws, image_archive, stop_tasks_after are fixtures)
    CLUSTER,
    IMAGE_REF,
    TASK_TIMEOUT_S,
    aws,
    berth,
    ecs,
    image_archive,
    stop_tasks_after,
    wait_for,
)

TRUST_ECS_TASKS = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})


def _role(iam, policy_actions: list[str]) -> dict:
    name = unique("task-role")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ECS_TASKS)["Role"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="app",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": policy_actions, "Resource": "*"}]}),
    )
    return role


def _logs_until(berth, task_arn: str, marker: str) -> str:
    deadline = time.monotonic() + TASK_TIMEOUT_S
    text = ""
    while time.monotonic() < deadline:
        text = berth.logs(task_arn)
        if marker in text:
            return text
        time.sleep(0.3)
    pytest.fail(f"{marker!r} never appeared in the logs of {task_arn}:\n{text}")


def _json_line(text: str, prefix: str) -> dict:
    for line in text.splitlines():
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    pytest.fail(f"no line starting {prefix!r} in:\n{text}")


FETCH = (
    'echo "CREDS=$(wget -qO- http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI)"; '
    'echo "META=$(wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task)"; '
    'echo "URI=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; '
    'echo DONE; sleep 600'
)


@pytest.mark.parametrize("network_mode", ["bridge", "awsvpc"])
def test_a_container_gets_its_task_roles_credentials_and_is_that_role(berth, ecs, stop_tasks_after, network_mode):
    iam = berth.client("iam")
    role = _role(iam, ["ecs:ListClusters", "ecs:DescribeTasks"])
    family = unique(f"roles-{network_mode}")
    ecs.register_task_definition(
        family=family,
        taskRoleArn=role["Arn"],
        networkMode=network_mode,
        containerDefinitions=[{"name": "app", "image": IMAGE_REF, "memory": 32, "essential": True, "command": ["sh", "-c", FETCH]}],
    )
    extra = {}
    if network_mode == "awsvpc":
        subnet = berth.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
        extra["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": [subnet]}}
    (task,) = ecs.run_task(cluster=CLUSTER, taskDefinition=family, **extra)["tasks"]
    arn = task["taskArn"]
    task_id = arn.rsplit("/", 1)[1]
    wait_for(ecs, "tasks_running", [arn])
    text = _logs_until(berth, arn, "DONE")

    creds = _json_line(text, "CREDS=")
    assert set(creds) >= {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}, creds
    assert creds["RoleArn"] == role["Arn"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["Expiration"].endswith("Z")
    uri = next(line for line in text.splitlines() if line.startswith("URI="))[4:]
    assert uri.startswith("/v2/credentials/") and len(uri) > len("/v2/credentials/") + 16

    session = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["Token"])
    ident = berth.client("sts", **session).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role['RoleName']}/{task_id}"
    assert ident["UserId"] == f"{role['RoleId']}:{task_id}"
    as_task = berth.client("ecs", **session)
    as_task.list_clusters()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_task.create_cluster(clusterName=unique("from-task"))
    assert error_code(e) == "AccessDeniedException"

    meta = _json_line(text, "META=")
    assert meta["TaskARN"] == arn
    assert meta["Family"] == family
    assert meta["LaunchType"] == "EC2"
    assert [c["Name"] for c in meta["Containers"]] == ["app"]


def test_a_task_cannot_fetch_another_tasks_credentials(berth, ecs, stop_tasks_after):
    iam = berth.client("iam")
    role = _role(iam, ["ecs:ListClusters"])
    owner_family = unique("owner")
    ecs.register_task_definition(
        family=owner_family,
        taskRoleArn=role["Arn"],
        containerDefinitions=[{"name": "app", "image": IMAGE_REF, "memory": 32, "command": ["sh", "-c", FETCH]}],
    )
    (owner,) = ecs.run_task(cluster=CLUSTER, taskDefinition=owner_family)["tasks"]
    wait_for(ecs, "tasks_running", [owner["taskArn"]])
    uri = next(line for line in _logs_until(berth, owner["taskArn"], "DONE").splitlines() if line.startswith("URI="))[4:]

    # A task with no role (and one with a role of its own) tries the owner's URI.
    thief_role = _role(iam, ["ecs:ListClusters"])
    steal = f'if wget -qO- http://169.254.170.2{uri}; then echo STOLEN; else echo REFUSED; fi; echo DONE; sleep 600'
    thieves = []
    for name, extra in (("norole", {}), ("ownrole", {"taskRoleArn": thief_role["Arn"]})):
        family = unique(f"thief-{name}")
        ecs.register_task_definition(
            family=family,
            containerDefinitions=[{"name": "app", "image": IMAGE_REF, "memory": 32, "command": ["sh", "-c", steal]}],
            **extra,
        )
        (t,) = ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"]
        thieves.append(t["taskArn"])
    wait_for(ecs, "tasks_running", thieves)
    for arn in thieves:
        text = _logs_until(berth, arn, "DONE")
        assert "REFUSED" in text and "STOLEN" not in text, text
        assert "SecretAccessKey" not in text, text

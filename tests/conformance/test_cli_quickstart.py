"""The README quickstart, command for command, against a fresh server:

    aws ecs create-cluster --cluster-name demo
    aws ecs register-task-definition --cli-input-json file://web.json
    aws ecs describe-task-definition --task-definition web

run from examples/, where web.json lives.
"""

from __future__ import annotations

import json

import pytest

from conftest import EXAMPLES, AwsCli, cluster_arn, start_berth, task_definition_arn


@pytest.fixture(scope="module")
def quickstart_aws(tmp_path_factory):
    with start_berth(tmp_path_factory.mktemp("quickstart") / "data") as server:
        yield AwsCli(server, tmp_path_factory.mktemp("quickstart-home"))


def test_quickstart(quickstart_aws):
    aws = quickstart_aws
    spec = json.loads((EXAMPLES / "web.json").read_text())

    cluster = aws("ecs", "create-cluster", "--cluster-name", "demo", cwd=EXAMPLES)["cluster"]
    assert cluster["clusterName"] == "demo"
    assert cluster["clusterArn"] == cluster_arn("demo")
    assert cluster["status"] == "ACTIVE"

    registered = aws("ecs", "register-task-definition", "--cli-input-json", "file://web.json", cwd=EXAMPLES)
    td = registered["taskDefinition"]
    assert td["family"] == "web"
    assert td["revision"] == 1
    assert td["taskDefinitionArn"] == task_definition_arn("web", 1)
    assert td["status"] == "ACTIVE"
    assert [c["name"] for c in td["containerDefinitions"]] == [c["name"] for c in spec["containerDefinitions"]]

    described = aws("ecs", "describe-task-definition", "--task-definition", "web", cwd=EXAMPLES)["taskDefinition"]
    assert described["taskDefinitionArn"] == task_definition_arn("web", 1)
    assert described["containerDefinitions"] == td["containerDefinitions"]
    assert described["volumes"] == spec["volumes"]

"""Task definitions: RegisterTaskDefinition, DescribeTaskDefinition,
DeregisterTaskDefinition, DeleteTaskDefinitions, ListTaskDefinitions,
ListTaskDefinitionFamilies."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest

from conftest import (
    EXAMPLES,
    ROOT_ARN,
    assert_recent,
    ecs_raw,
    error_code,
    tags_dict,
    task_definition_arn,
    unique,
)


def container(name: str = "app", **extra):
    return {"name": name, "image": "public.ecr.aws/docker/library/busybox:1.36", "memory": 128, **extra}


def register(ecs, family: str | None = None, containers=None, **kwargs):
    family = family or unique("td")
    return ecs.register_task_definition(
        family=family, containerDefinitions=containers or [container()], **kwargs
    )["taskDefinition"]


def fargate(ecs, family: str | None = None, cpu: str = "256", memory: str = "512", **kwargs):
    return ecs.register_task_definition(
        family=family or unique("fg"),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu=cpu,
        memory=memory,
        containerDefinitions=[{"name": "app", "image": "nginx", "portMappings": [{"containerPort": 80}]}],
        **kwargs,
    )["taskDefinition"]


# ------------------------------------------------------------ register


def test_register_minimal(ecs):
    family = unique("min")
    td = register(ecs, family)
    assert td["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert td["family"] == family
    assert td["revision"] == 1
    assert td["status"] == "ACTIVE"
    assert td["volumes"] == []
    assert td["placementConstraints"] == []
    assert "EC2" in td["compatibilities"]
    assert isinstance(td["requiresAttributes"], list)
    assert td["registeredBy"] == ROOT_ARN
    assert_recent(td["registeredAt"])
    (c,) = td["containerDefinitions"]
    assert c["name"] == "app"
    assert c["image"] == "public.ecr.aws/docker/library/busybox:1.36"
    assert c["memory"] == 128
    # ECS fills these in on every container definition.
    assert c["cpu"] == 0
    assert c["essential"] is True
    assert c["portMappings"] == []
    assert c["environment"] == []
    assert c["mountPoints"] == []
    assert c["volumesFrom"] == []


def test_register_again_adds_revision(ecs):
    family = unique("rev")
    assert register(ecs, family)["revision"] == 1
    td2 = register(ecs, family, containers=[container(memory=256)])
    assert td2["revision"] == 2
    assert td2["taskDefinitionArn"] == task_definition_arn(family, 2)
    assert td2["containerDefinitions"][0]["memory"] == 256


def test_register_returns_tags(ecs):
    resp = ecs.register_task_definition(
        family=unique("tags"),
        containerDefinitions=[container()],
        tags=[{"key": "team", "value": "web"}],
    )
    assert tags_dict(resp["tags"]) == {"team": "web"}


def test_register_fargate(ecs):
    td = fargate(ecs)
    assert td["cpu"] == "256"
    assert td["memory"] == "512"
    assert td["networkMode"] == "awsvpc"
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert "FARGATE" in td["compatibilities"]
    # awsvpc: the host port is the container port.
    (pm,) = td["containerDefinitions"][0]["portMappings"]
    assert pm["containerPort"] == 80
    assert pm["hostPort"] == 80
    assert pm["protocol"] == "tcp"


def test_register_fargate_units_are_normalised(ecs):
    # "When the task definition is registered, a vCPU value is converted to an
    # integer indicating the CPU units ... a GB value is converted to MiB."
    td = fargate(ecs, cpu="1 vCPU", memory="2 GB")
    assert td["cpu"] == "1024"
    assert td["memory"] == "2048"


@pytest.mark.parametrize(
    "cpu,memory",
    [("256", "512"), ("256", "2048"), ("512", "4096"), ("1024", "8192"), ("2048", "16384"), ("4096", "30720")],
)
def test_register_fargate_valid_sizes(ecs, cpu, memory):
    td = fargate(ecs, cpu=cpu, memory=memory)
    assert (td["cpu"], td["memory"]) == (cpu, memory)


@pytest.mark.parametrize("cpu,memory", [("256", "4096"), ("512", "512"), ("1024", "1024"), ("300", "1024"), ("4096", "4096")])
def test_register_fargate_invalid_sizes(ecs, cpu, memory):
    with pytest.raises(ecs.exceptions.ClientException) as e:
        fargate(ecs, cpu=cpu, memory=memory)
    assert error_code(e) == "ClientException"


def test_register_fargate_needs_task_cpu_and_memory(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.register_task_definition(
            family=unique("fgnocpu"),
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            containerDefinitions=[container()],
        )


def test_register_fargate_needs_awsvpc(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.register_task_definition(
            family=unique("fgbridge"),
            requiresCompatibilities=["FARGATE"],
            networkMode="bridge",
            cpu="256",
            memory="512",
            containerDefinitions=[container()],
        )


def test_register_too_many_containers(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        register(ecs, containers=[container(f"c{i}") for i in range(11)])


def test_register_ten_containers_is_fine(ecs):
    td = register(ecs, containers=[container(f"c{i}") for i in range(10)])
    assert len(td["containerDefinitions"]) == 10


def test_register_ec2_container_without_memory(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        register(ecs, containers=[{"name": "app", "image": "busybox"}])


def test_register_ec2_task_memory_makes_container_memory_optional(ecs):
    td = register(ecs, containers=[{"name": "app", "image": "busybox"}], memory="512")
    assert td["memory"] == "512"


def test_register_memory_reservation_only(ecs):
    td = register(ecs, containers=[{"name": "app", "image": "busybox", "memoryReservation": 64}])
    assert td["containerDefinitions"][0]["memoryReservation"] == 64


def test_register_memory_reservation_above_memory(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        register(ecs, containers=[container(memory=128, memoryReservation=256)])


def test_register_no_essential_container(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        register(ecs, containers=[container(essential=False)])


def test_register_empty_container_list(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.register_task_definition(family=unique("empty"), containerDefinitions=[])


def test_register_duplicate_container_names(ecs):
    with pytest.raises(ecs.exceptions.ClientException):
        register(ecs, containers=[container("same"), container("same")])


def test_register_invalid_family(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        register(ecs, family="bad family!")
    assert error_code(e) in ("ClientException", "InvalidParameterException")


def test_register_rich_definition_round_trips(ecs):
    spec = json.loads((EXAMPLES / "web.json").read_text())
    family = unique("rich")
    spec["family"] = family
    resp = ecs.register_task_definition(**spec)
    td = resp["taskDefinition"]
    assert tags_dict(resp["tags"]) == {"app": "web", "owner": "platform-team"}
    assert td["family"] == family
    assert td["networkMode"] == "bridge"
    assert td["volumes"] == spec["volumes"]
    web = next(c for c in td["containerDefinitions"] if c["name"] == "web")
    want = spec["containerDefinitions"][0]
    for key in ("image", "cpu", "memory", "memoryReservation", "essential", "environment", "mountPoints",
                "healthCheck", "ulimits", "dockerLabels", "stopTimeout", "portMappings"):
        assert web[key] == want[key], key
    sidecar = next(c for c in td["containerDefinitions"] if c["name"] == "log-router")
    assert sidecar["essential"] is False
    assert sidecar["command"] == spec["containerDefinitions"][1]["command"]
    assert sidecar["dependsOn"] == [{"containerName": "web", "condition": "START"}]


# ------------------------------------------------------------ describe


def test_describe_by_family_revision_and_arn(ecs):
    family = unique("desc")
    register(ecs, family)
    register(ecs, family, containers=[container(memory=256)])
    latest = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert latest["revision"] == 2
    first = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert first["revision"] == 1
    assert first["containerDefinitions"][0]["memory"] == 128
    by_arn = ecs.describe_task_definition(taskDefinition=task_definition_arn(family, 2))["taskDefinition"]
    assert by_arn["taskDefinitionArn"] == task_definition_arn(family, 2)
    assert_recent(by_arn["registeredAt"])


def test_describe_include_tags(ecs):
    family = unique("desctags")
    ecs.register_task_definition(
        family=family, containerDefinitions=[container()], tags=[{"key": "k", "value": "v"}]
    )
    out = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert tags_dict(out["tags"]) == {"k": "v"}
    out = ecs.describe_task_definition(taskDefinition=family)
    assert out.get("tags", []) == []


@pytest.mark.parametrize("ref", ["no-such-family-xyz", "no-such-family-xyz:3"])
def test_describe_unknown(ecs, ref):
    with pytest.raises(ecs.exceptions.ClientException) as e:
        ecs.describe_task_definition(taskDefinition=ref)
    assert error_code(e) == "ClientException"


def test_describe_unknown_revision_of_known_family(ecs):
    family = unique("descrev")
    register(ecs, family)
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.describe_task_definition(taskDefinition=f"{family}:9")


def test_timestamps_are_epoch_numbers_on_the_wire(berth, ecs):
    family = unique("wire")
    register(ecs, family)
    resp = ecs_raw(berth, "DescribeTaskDefinition", {"taskDefinition": family})
    assert resp.status == 200
    registered_at = resp.json()["taskDefinition"]["registeredAt"]
    assert isinstance(registered_at, (int, float)) and not isinstance(registered_at, bool)
    assert registered_at > 1.6e9


def test_task_definitions_are_regional(ecs, ecs_other_region):
    family = unique("regional")
    register(ecs, family)
    with pytest.raises(ecs_other_region.exceptions.ClientException):
        ecs_other_region.describe_task_definition(taskDefinition=family)


# ------------------------------------------------------------ deregister / delete


def test_deregister(ecs):
    family = unique("dereg")
    register(ecs, family)
    register(ecs, family)
    td = ecs.deregister_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert td["revision"] == 2
    assert_recent(td["deregisteredAt"])

    # An INACTIVE revision can still be described by revision...
    again = ecs.describe_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]
    assert again["status"] == "INACTIVE"
    # ...while the family alone means its latest ACTIVE revision.
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 1
    # The next registration still gets a new number.
    assert register(ecs, family)["revision"] == 3


def test_describe_family_without_active_revision(ecs):
    family = unique("allgone")
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.describe_task_definition(taskDefinition=family)


def test_deregister_unknown(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.deregister_task_definition(taskDefinition=f"{unique('nofam')}:1")
    assert error_code(e) in ("ClientException", "InvalidParameterException")


def test_delete_task_definitions(ecs):
    family = unique("delete")
    register(ecs, family)
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    out = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1", f"{family}:2"])
    deleted = {td["taskDefinitionArn"]: td for td in out["taskDefinitions"]}
    assert list(deleted) == [task_definition_arn(family, 1)]
    assert deleted[task_definition_arn(family, 1)]["status"] == "DELETE_IN_PROGRESS"
    # An ACTIVE revision is not deleted: it is a failure, not an exception.
    assert [f["arn"] for f in out["failures"]] == [task_definition_arn(family, 2)]
    assert out["failures"][0]["reason"]

    assert task_definition_arn(family, 1) not in ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")[
        "taskDefinitionArns"
    ]
    # Revision numbers are never reused.
    assert register(ecs, family)["revision"] == 3


def test_deregister_needs_a_revision(ecs):
    # "You must specify a revision."
    family = unique("deregfam")
    register(ecs, family)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.deregister_task_definition(taskDefinition=family)
    assert error_code(e) in ("ClientException", "InvalidParameterException")
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["status"] == "ACTIVE"


def test_delete_needs_revisions_and_at_most_ten(ecs):
    family = unique("delfam")
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_task_definitions(taskDefinitions=[f"{family}:{r}" for r in range(1, 12)])
    assert error_code(e) in ("ClientException", "InvalidParameterException")
    # A family without a revision deletes nothing: refused outright or as a failure.
    try:
        out = ecs.delete_task_definitions(taskDefinitions=[family])
    except botocore.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] in ("ClientException", "InvalidParameterException")
    else:
        assert out["taskDefinitions"] == [] and out["failures"]


def test_delete_unknown_is_failure(ecs):
    family = unique("delunk")
    out = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1"])
    assert out["taskDefinitions"] == []
    assert len(out["failures"]) == 1


# ------------------------------------------------------------ list


def test_list_task_definitions_filters_and_sort(ecs):
    family = unique("list")
    other = family + "-longer"  # shares the prefix, but familyPrefix is a whole family name
    for _ in range(3):
        register(ecs, family)
    register(ecs, other)
    arns = [task_definition_arn(family, r) for r in (1, 2, 3)]

    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == arns
    assert ecs.list_task_definitions(familyPrefix=family, sort="DESC")["taskDefinitionArns"] == arns[::-1]

    ecs.deregister_task_definition(taskDefinition=f"{family}:2")
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == [arns[0], arns[2]]
    assert ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"] == [arns[0], arns[2]]
    assert ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"] == [arns[1]]

    everything = ecs.get_paginator("list_task_definitions").paginate().build_full_result()["taskDefinitionArns"]
    assert arns[0] in everything and arns[2] in everything and task_definition_arn(other, 1) in everything
    assert arns[1] not in everything


def test_list_task_definitions_paginator(ecs):
    family = unique("tdpage")
    for _ in range(5):
        register(ecs, family)
    pages = list(
        ecs.get_paginator("list_task_definitions").paginate(familyPrefix=family, PaginationConfig={"PageSize": 2})
    )
    assert [len(p["taskDefinitionArns"]) for p in pages] == [2, 2, 1]
    seen = [a for p in pages for a in p["taskDefinitionArns"]]
    assert seen == [task_definition_arn(family, r) for r in range(1, 6)]
    desc = ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=family, sort="DESC", PaginationConfig={"PageSize": 2}
    ).build_full_result()["taskDefinitionArns"]
    assert desc == seen[::-1]


def test_list_task_definition_families(ecs):
    prefix = unique("fam")
    active, inactive, mixed = f"{prefix}-active", f"{prefix}-inactive", f"{prefix}-mixed"
    register(ecs, active)
    register(ecs, inactive)
    ecs.deregister_task_definition(taskDefinition=f"{inactive}:1")
    register(ecs, mixed)
    register(ecs, mixed)
    ecs.deregister_task_definition(taskDefinition=f"{mixed}:1")

    def families(**kw):
        return ecs.get_paginator("list_task_definition_families").paginate(
            familyPrefix=prefix, **kw
        ).build_full_result()["families"]

    # ACTIVE: families with an ACTIVE revision; INACTIVE: families without
    # one; no status: all of them.
    assert families(status="ACTIVE") == [active, mixed]
    assert families(status="INACTIVE") == [inactive]
    assert families(status="ALL") == [active, inactive, mixed]
    assert sorted(families()) == [active, inactive, mixed]


def test_list_task_definition_families_paginator(ecs):
    prefix = unique("fampage")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        register(ecs, n)
    pages = list(
        ecs.get_paginator("list_task_definition_families").paginate(
            familyPrefix=prefix, status="ACTIVE", PaginationConfig={"PageSize": 2}
        )
    )
    assert all(len(p["families"]) <= 2 for p in pages)
    assert [f for p in pages for f in p["families"]] == names


def test_list_task_definitions_max_results_bounds(ecs):
    # "This value can be between 1 and 100."
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_task_definitions(maxResults=101)
    assert error_code(e) in ("InvalidParameterException", "ClientException")


# ---------------------------------------------------------------- aws CLI


def test_cli_register_rich_web_json(aws, tmp_path):
    spec = json.loads((EXAMPLES / "web.json").read_text())
    family = unique("cliweb")
    spec["family"] = family
    path = tmp_path / "web.json"
    path.write_text(json.dumps(spec))
    out = aws("ecs", "register-task-definition", "--cli-input-json", f"file://{path}")
    td = out["taskDefinition"]
    assert td["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert {c["name"] for c in td["containerDefinitions"]} == {"web", "log-router"}
    assert tags_dict(out["tags"]) == {"app": "web", "owner": "platform-team"}
    # CLI v1 prints timestamps as they are on the wire: epoch seconds.
    assert isinstance(td["registeredAt"], (int, float)) and td["registeredAt"] > 1.6e9

    described = aws("ecs", "describe-task-definition", "--task-definition", family, "--include", "TAGS")
    assert described["taskDefinition"]["revision"] == 1
    assert tags_dict(described["tags"]) == {"app": "web", "owner": "platform-team"}


def test_cli_fargate_and_errors(aws, tmp_path):
    family = unique("clifg")
    out = aws(
        "ecs", "register-task-definition", "--family", family,
        "--requires-compatibilities", "FARGATE", "--network-mode", "awsvpc", "--cpu", "512", "--memory", "1024",
        "--container-definitions", json.dumps([{"name": "app", "image": "nginx"}]),
    )
    assert out["taskDefinition"]["cpu"] == "512"

    rc, err = aws.error(
        "ecs", "register-task-definition", "--family", family,
        "--requires-compatibilities", "FARGATE", "--network-mode", "awsvpc", "--cpu", "256", "--memory", "4096",
        "--container-definitions", json.dumps([{"name": "app", "image": "nginx"}]),
    )
    assert "ClientException" in err

    rc, err = aws.error("ecs", "describe-task-definition", "--task-definition", unique("nope"))
    assert "ClientException" in err


def test_cli_list_deregister_delete(aws, ecs):
    family = unique("clilist")
    register(ecs, family)
    register(ecs, family)
    listed = aws("ecs", "list-task-definitions", "--family-prefix", family, "--sort", "DESC")
    assert listed["taskDefinitionArns"] == [task_definition_arn(family, 2), task_definition_arn(family, 1)]
    fams = aws("ecs", "list-task-definition-families", "--family-prefix", family)
    assert fams["families"] == [family]

    dereg = aws("ecs", "deregister-task-definition", "--task-definition", f"{family}:1")
    assert dereg["taskDefinition"]["status"] == "INACTIVE"
    deleted = aws("ecs", "delete-task-definitions", "--task-definitions", f"{family}:1")
    assert deleted["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"

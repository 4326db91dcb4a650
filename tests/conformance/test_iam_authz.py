"""Authorization on every request: IAM users' access keys, their identity
policies (inline, managed, through groups), explicit denies, resource ARNs
and conditions, and STS sessions (AssumeRole, GetSessionToken), all through
boto3 and the aws CLI against a real `berth server`.

Each test makes its own users and roles (unique names) with the root
credentials, then acts as them.
"""

from __future__ import annotations

import json
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, REGION, error_code, error_message, unique

CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/"


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@pytest.fixture(scope="module")
def iam(berth):
    return berth.client("iam")


def wait_for_key(berth, key: dict) -> None:
    """IAM is eventually consistent in AWS; Berth answers at once, but a
    careful client may poll GetCallerIdentity. One call is enough here."""
    sts = berth.client("sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    assert sts.get_caller_identity()["Arn"].endswith(key["UserName"])


def make_user(berth, iam, *statements: dict, name: str | None = None) -> tuple[str, dict]:
    """A user with an inline policy of `statements` and an access key."""
    name = name or unique("user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    wait_for_key(berth, key)
    return name, key


def as_key(berth, service: str, key: dict, **extra):
    return berth.client(
        service,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        aws_session_token=key.get("SessionToken"),
        **extra,
    )


def test_a_user_allowed_only_describe_clusters_is_denied_create_cluster(berth, iam):
    name, key = make_user(berth, iam, allow("ecs:DescribeClusters"))
    ecs = as_key(berth, "ecs", key)
    assert ecs.describe_clusters(clusters=["default"])["ResponseMetadata"]["HTTPStatusCode"] == 200
    wanted = unique("denied")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName=wanted)
    assert error_code(e) == "AccessDeniedException"
    assert error_message(e) == (
        f"User: arn:aws:iam::{ACCOUNT_ID}:user/{name} is not authorized to perform: ecs:CreateCluster "
        f"on resource: {CLUSTER_ARN}{wanted} because no identity-based policy allows the ecs:CreateCluster action"
    )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Nothing was created.
    root = berth.client("ecs")
    assert root.describe_clusters(clusters=[wanted])["failures"][0]["reason"] == "MISSING"
    # Other services are denied too (query protocol: AccessDenied, 403).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "iam", key).list_users()
    assert error_code(e) == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "ec2", key).describe_vpcs()
    assert error_code(e) == "UnauthorizedOperation"
    # Who am I needs no permission.
    ident = as_key(berth, "sts", key).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    assert ident["Account"] == ACCOUNT_ID
    assert ident["UserId"].startswith("AIDA")


def test_explicit_deny_wins_over_a_group_allow(berth, iam):
    group = unique("ops")
    iam.create_group(GroupName=group)
    iam.put_group_policy(GroupName=group, PolicyName="all-ecs", PolicyDocument=policy(allow("ecs:*")))
    name, key = make_user(berth, iam, deny("ecs:DeleteCluster"))
    ecs = as_key(berth, "ecs", key)
    # Before joining the group: nothing but the deny.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters()
    assert error_code(e) == "AccessDeniedException"
    iam.add_user_to_group(GroupName=group, UserName=name)
    cluster = unique("grp")
    ecs.create_cluster(clusterName=cluster)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_cluster(cluster=cluster)
    assert error_code(e) == "AccessDeniedException"
    assert error_message(e).endswith("with an explicit deny in an identity-based policy")
    # Out of the group again: the allow is gone.
    iam.remove_user_from_group(GroupName=group, UserName=name)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.describe_clusters(clusters=[cluster])
    assert error_code(e) == "AccessDeniedException"
    berth.client("ecs").delete_cluster(cluster=cluster)


def test_managed_policies_resources_wildcards_and_not_action(berth, iam):
    prefix = unique("team")
    managed = iam.create_policy(
        PolicyName=unique("pol"),
        PolicyDocument=policy(
            allow(["ecs:CreateCluster", "ecs:DescribeClusters", "ecs:DeleteCluster"], f"{CLUSTER_ARN}{prefix}-*"),
            {"Effect": "Allow", "NotAction": ["ecs:*", "iam:*", "ec2:*", "elasticloadbalancing:*", "sts:*"], "Resource": "*"},
        ),
    )["Policy"]
    name, key = make_user(berth, iam)
    iam.attach_user_policy(UserName=name, PolicyArn=managed["Arn"])
    ecs = as_key(berth, "ecs", key)
    mine = f"{prefix}-a"
    ecs.create_cluster(clusterName=mine)
    assert ecs.describe_clusters(clusters=[mine])["clusters"][0]["status"] == "ACTIVE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName=unique("elsewhere"))
    assert error_code(e) == "AccessDeniedException"
    # Several resources in one call: every one must be allowed.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.describe_clusters(clusters=[mine, "default"])
    assert f"on resource: {CLUSTER_ARN}default " in error_message(e)
    # NotAction allows what it does not name, and only that.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters()
    assert error_code(e) == "AccessDeniedException"
    ecs.delete_cluster(cluster=mine)
    # Detached: nothing allowed any more.
    iam.detach_user_policy(UserName=name, PolicyArn=managed["Arn"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.describe_clusters(clusters=[mine])
    assert error_code(e) == "AccessDeniedException"


def test_conditions_on_source_ip_and_region(berth, iam):
    name, key = make_user(
        berth,
        iam,
        allow("ecs:ListClusters", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}),
        allow("ecs:ListTaskDefinitions", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        allow("ecs:ListServices", Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}),
    )
    ecs = as_key(berth, "ecs", key)
    ecs.list_clusters()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_task_definitions()
    assert error_code(e) == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_services(cluster="default")
    assert error_code(e) == "AccessDeniedException"
    eu = as_key(berth, "ecs", key, region_name="eu-west-1")
    # Authorized there: the answer is the operation's own (no such cluster).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        eu.list_services(cluster=unique("nowhere"))
    assert error_code(e) == "ClusterNotFoundException"


def test_inactive_and_deleted_keys_are_refused(berth, iam):
    name, key = make_user(berth, iam, allow("ecs:ListClusters"))
    ecs = as_key(berth, "ecs", key)
    ecs.list_clusters()
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters()
    assert error_code(e) == "UnrecognizedClientException"
    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    ecs.list_clusters()
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters()
    assert error_code(e) == "UnrecognizedClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "sts", key).get_caller_identity()
    assert error_code(e) == "InvalidClientTokenId"


def test_assume_role_gives_a_session_limited_to_the_roles_policies(berth, iam):
    name, key = make_user(berth, iam, allow("sts:AssumeRole"))
    role = unique("reader")
    trust = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"})
    created = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName=role, PolicyName="read", PolicyDocument=policy(allow(["ecs:List*", "ecs:Describe*"])))

    sts = as_key(berth, "sts", key)
    out = sts.assume_role(RoleArn=created["Arn"], RoleSessionName="alice", DurationSeconds=900)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/alice"
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{created['RoleId']}:alice"
    left = creds["Expiration"].timestamp() - time.time()
    assert 800 < left <= 905, left

    session = {"AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"], "SessionToken": creds["SessionToken"]}
    ident = as_key(berth, "sts", session).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/alice"
    assert ident["UserId"] == f"{created['RoleId']}:alice"
    ecs = as_key(berth, "ecs", session)
    ecs.list_clusters()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName=unique("nope"))
    assert error_code(e) == "AccessDeniedException"
    assert f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/alice is not authorized" in error_message(e)

    # The role's policy changes apply to live sessions at once.
    iam.delete_role_policy(RoleName=role, PolicyName="read")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters()
    assert error_code(e) == "AccessDeniedException"


def test_assume_role_needs_trust_and_permission(berth, iam):
    role = unique("locked")
    trusts_service = policy({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trusts_service)["Role"]["Arn"]
    _, key = make_user(berth, iam, allow("sts:AssumeRole"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "sts", key).assume_role(RoleArn=arn, RoleSessionName="x1")
    assert error_code(e) == "AccessDenied"
    assert arn in error_message(e)
    # Trusting the account is not enough without an identity policy.
    role2 = unique("acct")
    trusts_account = policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ID}, "Action": "sts:AssumeRole"})
    arn2 = iam.create_role(RoleName=role2, AssumeRolePolicyDocument=trusts_account)["Role"]["Arn"]
    _, nothing = make_user(berth, iam, allow("ecs:ListClusters"))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "sts", nothing).assume_role(RoleArn=arn2, RoleSessionName="x2")
    assert error_code(e) == "AccessDenied"
    as_key(berth, "sts", key).assume_role(RoleArn=arn2, RoleSessionName="x3")


def test_tampered_and_foreign_session_tokens_are_rejected(berth, iam):
    role = unique("tamper")
    trust = policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ID}, "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="all", PolicyDocument=policy(allow("ecs:*")))
    creds = berth.client("sts").assume_role(RoleArn=arn, RoleSessionName="tamper")["Credentials"]
    good = {"AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"], "SessionToken": creds["SessionToken"]}
    as_key(berth, "ecs", good).list_clusters()

    token = creds["SessionToken"]
    middle = len(token) // 2
    flipped = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    for bad_token in (flipped, token[:-4], token + "AAAA", "not-a-token"):
        bad = dict(good, SessionToken=bad_token)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            as_key(berth, "ecs", bad).list_clusters()
        assert error_code(e) == "UnrecognizedClientException", bad_token[:20]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            as_key(berth, "sts", bad).get_caller_identity()
        assert error_code(e) == "InvalidClientTokenId"
    # Another session's token with this key id.
    other = berth.client("sts").assume_role(RoleArn=arn, RoleSessionName="other")["Credentials"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "ecs", dict(good, SessionToken=other["SessionToken"])).list_clusters()
    assert error_code(e) == "UnrecognizedClientException"
    # A session key without its token, and a long-term key with a token.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "ecs", {"AccessKeyId": good["AccessKeyId"], "SecretAccessKey": good["SecretAccessKey"]}).list_clusters()
    assert error_code(e) == "UnrecognizedClientException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.client("ecs", aws_session_token=token).list_clusters()
    assert error_code(e) == "UnrecognizedClientException"
    # The right token with the wrong secret.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_key(berth, "ecs", dict(good, SecretAccessKey="x" * 40)).list_clusters()
    assert error_code(e) == "InvalidSignatureException"


def test_get_session_token_for_a_user_carries_the_users_permissions(berth, iam):
    name, key = make_user(berth, iam, allow("ecs:ListClusters"))
    out = as_key(berth, "sts", key).get_session_token(DurationSeconds=900)["Credentials"]
    session = {"AccessKeyId": out["AccessKeyId"], "SecretAccessKey": out["SecretAccessKey"], "SessionToken": out["SessionToken"]}
    assert as_key(berth, "sts", session).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    ecs = as_key(berth, "ecs", session)
    ecs.list_clusters()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_task_definitions()
    assert error_code(e) == "AccessDeniedException"


def test_the_cli_as_a_limited_user(berth, iam, aws):
    name, key = make_user(berth, iam, allow("ecs:DescribeClusters"))
    env = aws.env(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    assert aws("sts", "get-caller-identity", env=env)["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    aws("ecs", "describe-clusters", "--clusters", "default", env=env)
    code, err = aws.error("ecs", "create-cluster", "--cluster-name", unique("cli"), env=env)
    assert code != 0
    assert "AccessDeniedException" in err and "ecs:CreateCluster" in err
    code, err = aws.error("iam", "create-user", "--user-name", unique("cli"), env=env)
    assert "AccessDenied" in err


def test_pass_role_is_checked_when_a_task_definition_names_roles(berth, iam):
    role = unique("app")
    trust = policy({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    family = unique("withrole")
    containers = [{"name": "c", "image": "busybox", "memory": 32}]
    name, key = make_user(berth, iam, allow("ecs:RegisterTaskDefinition"))
    ecs = as_key(berth, "ecs", key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.register_task_definition(family=family, taskRoleArn=arn, containerDefinitions=containers)
    assert error_code(e) == "AccessDeniedException"
    assert error_message(e).startswith(f"User: arn:aws:iam::{ACCOUNT_ID}:user/{name} is not authorized to perform: iam:PassRole on resource: {arn}")
    # AmazonECS_FullAccess lets its holders pass roles to ECS tasks.
    iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AmazonECS_FullAccess")
    td = ecs.register_task_definition(family=family, taskRoleArn=arn, containerDefinitions=containers)["taskDefinition"]
    assert td["taskRoleArn"] == arn


def test_run_task_with_a_role_ecs_cannot_assume_is_refused(berth, iam):
    role = unique("untrusting")
    trust = policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ID}, "Action": "sts:AssumeRole"})
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    ecs = berth.client("ecs")
    family = unique("untrusted")
    ecs.register_task_definition(family=family, taskRoleArn=arn, containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition=family)
    assert error_code(e) == "ClientException"
    assert error_message(e) == (
        f"ECS was unable to assume the role '{arn}' that was provided for this task. Please verify that the role being "
        "passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role."
    )


def test_load_balancer_actions_are_authorized_on_their_arns(berth, iam):
    elbv2 = berth.client("elbv2")
    vpc = berth.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    prefix = unique("tg")[:20]
    mine = elbv2.create_target_group(Name=f"{prefix}-a", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    other = elbv2.create_target_group(Name=unique("other")[:32], Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    scope = mine.rsplit("/", 2)[0] + f"/{prefix}-*"
    _, key = make_user(berth, iam, allow("elasticloadbalancing:DeleteTargetGroup", scope))
    as_user = as_key(berth, "elbv2", key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        as_user.delete_target_group(TargetGroupArn=other)
    assert error_code(e) == "AccessDenied"
    assert f"elasticloadbalancing:DeleteTargetGroup on resource: {other}" in error_message(e)
    as_user.delete_target_group(TargetGroupArn=mine)
    assert [g["TargetGroupArn"] for g in elbv2.describe_target_groups(TargetGroupArns=[other])["TargetGroups"]] == [other]
    elbv2.delete_target_group(TargetGroupArn=other)


def test_the_ecs_cluster_condition_key_confines_a_caller_to_clusters(berth, iam):
    ecs = berth.client("ecs")
    mine, other = unique("mine"), unique("other")
    for name in (mine, other):
        ecs.create_cluster(clusterName=name)
    _, key = make_user(
        berth,
        iam,
        allow(["ecs:ListTasks", "ecs:ListServices"], Condition={"ArnEquals": {"ecs:cluster": f"{CLUSTER_ARN}{mine}"}}),
    )
    as_user = as_key(berth, "ecs", key)
    assert as_user.list_tasks(cluster=mine)["taskArns"] == []
    assert as_user.list_services(cluster=f"{CLUSTER_ARN}{mine}")["serviceArns"] == []
    for call in (lambda: as_user.list_tasks(cluster=other), lambda: as_user.list_services()):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e) == "AccessDeniedException"
    for name in (mine, other):
        ecs.delete_cluster(cluster=name)

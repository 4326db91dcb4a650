"""IAM (API version 2010-05-08, query protocol): users, groups, roles,
managed and inline policies, access keys and instance profiles, through
boto3's `iam` client and the aws CLI.

IAM is global: every test names its entities uniquely (`unique`), and
asserts on lists only through the entities it made (or a path of its own).
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.config
import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, assert_recent, error_code, error_message, raw_request, unique, watch_against_model

IAM_NS = "{https://iam.amazonaws.com/doc/2010-05-08/}"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY_IAM = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}]}
DOC2 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def iam(berth):
    return berth.client("iam")


@pytest.fixture(scope="module")
def loose(berth):
    """A client that sends what botocore's own validation would refuse, to
    see the server's answer."""
    config = botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=False)
    return berth.client("iam", config=config)


def path_of(prefix: str) -> str:
    """A path no other test uses, so List calls see only this test's entities."""
    return f"/{unique(prefix)}/"


def make_role(iam, **kwargs) -> dict:
    kwargs.setdefault("RoleName", unique("role"))
    kwargs.setdefault("AssumeRolePolicyDocument", json.dumps(TRUST))
    return iam.create_role(**kwargs)["Role"]


def make_policy(iam, doc=DOC, **kwargs) -> dict:
    kwargs.setdefault("PolicyName", unique("pol"))
    return iam.create_policy(PolicyDocument=json.dumps(doc), **kwargs)["Policy"]


def client_error(call, *args, **kwargs) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kwargs)
    return e


def assert_no_such_entity(message: str, call, *args, **kwargs) -> None:
    """`call` fails with NoSuchEntity and `message`."""
    e = client_error(call, *args, **kwargs)
    assert error_code(e) == "NoSuchEntity"
    assert error_message(e) == message


def iam_raw(berth, form: dict[str, str]):
    body = urllib.parse.urlencode({"Version": "2010-05-08", **form}).encode()
    return raw_request(
        berth, None, service="iam", data=body, content_type="application/x-www-form-urlencoded; charset=utf-8"
    )


# --------------------------------------------------------------------------
# Users


def test_user_lifecycle(iam):
    name = unique("user")
    path = path_of("users")
    user = iam.create_user(UserName=name, Path=path, Tags=[{"Key": "team", "Value": "ecs"}])["User"]
    assert user["UserName"] == name
    assert user["Path"] == path
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user{path}{name}"
    assert re.fullmatch(r"AIDA[A-Z0-9]{17}", user["UserId"])
    assert_recent(user["CreateDate"])
    assert user["Tags"] == [{"Key": "team", "Value": "ecs"}]

    got = iam.get_user(UserName=name)["User"]
    assert got["UserId"] == user["UserId"]
    assert got["Tags"] == [{"Key": "team", "Value": "ecs"}]
    listed = iam.list_users(PathPrefix=path)
    assert [u["UserName"] for u in listed["Users"]] == [name]
    assert listed["IsTruncated"] is False
    assert "Tags" not in listed["Users"][0]

    new_name, new_path = unique("renamed"), path_of("moved")
    iam.update_user(UserName=name, NewUserName=new_name, NewPath=new_path)
    got = iam.get_user(UserName=new_name)["User"]
    assert got["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user{new_path}{new_name}"
    assert got["UserId"] == user["UserId"]
    e = client_error(iam.get_user, UserName=name)
    assert error_code(e) == "NoSuchEntity"
    assert error_message(e) == f"The user with name {name} cannot be found."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    iam.delete_user(UserName=new_name)
    assert error_code(client_error(iam.delete_user, UserName=new_name)) == "NoSuchEntity"


def test_user_errors(iam, loose):
    name = unique("dup")
    iam.create_user(UserName=name)
    e = client_error(iam.create_user, UserName=name.upper())
    assert error_code(e) == "EntityAlreadyExists"
    assert error_message(e) == f"User with name {name.upper()} already exists."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert error_code(client_error(iam.create_user, UserName="has space")) == "ValidationError"
    assert error_code(client_error(loose.create_user, UserName="x" * 65)) == "ValidationError"
    assert error_code(client_error(iam.create_user, UserName=unique("p"), Path="no-slashes")) == "ValidationError"
    other = unique("other")
    iam.create_user(UserName=other)
    assert error_code(client_error(iam.update_user, UserName=other, NewUserName=name)) == "EntityAlreadyExists"


def test_get_user_without_a_name_is_the_root(iam):
    user = iam.get_user()["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert user["UserId"] == ACCOUNT_ID
    assert "UserName" not in user


def test_user_tags(iam):
    name = unique("tagged")
    iam.create_user(UserName=name)
    iam.tag_user(UserName=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    iam.tag_user(UserName=name, Tags=[{"Key": "a", "Value": "3"}])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    iam.untag_user(UserName=name, TagKeys=["a"])
    assert iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "b", "Value": "2"}]
    e = client_error(iam.tag_user, UserName=name, Tags=[{"Key": "aws:reserved", "Value": "x"}])
    assert error_code(e) == "InvalidInput"


def test_delete_user_conflicts(iam):
    name, group = unique("busy"), unique("grp")
    iam.create_user(UserName=name)
    iam.create_group(GroupName=group)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(DOC))
    iam.attach_user_policy(UserName=name, PolicyArn=READ_ONLY_IAM)
    iam.add_user_to_group(UserName=name, GroupName=group)

    def conflict(what: str) -> None:
        e = client_error(iam.delete_user, UserName=name)
        assert error_code(e) == "DeleteConflict"
        assert error_message(e) == f"Cannot delete entity, must {what} first."
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409

    conflict("delete access keys")
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    conflict("delete policies")
    iam.delete_user_policy(UserName=name, PolicyName="inline")
    conflict("detach all policies")
    iam.detach_user_policy(UserName=name, PolicyArn=READ_ONLY_IAM)
    conflict("remove users from group")
    iam.remove_user_from_group(UserName=name, GroupName=group)
    iam.delete_user(UserName=name)
    iam.delete_group(GroupName=group)


def test_users_paginate(iam, loose):
    path = path_of("page")
    names = sorted(unique("pg") for _ in range(5))
    for n in names:
        iam.create_user(UserName=n, Path=path)
    first = iam.list_users(PathPrefix=path, MaxItems=2)
    assert first["IsTruncated"] is True and first["Marker"]
    assert len(first["Users"]) == 2
    pages = list(iam.get_paginator("list_users").paginate(PathPrefix=path, PaginationConfig={"PageSize": 2}))
    assert [len(p["Users"]) for p in pages] == [2, 2, 1]
    assert sorted(u["UserName"] for p in pages for u in p["Users"]) == names
    e = client_error(loose.list_users, MaxItems=1001)
    assert error_code(e) == "ValidationError"


def test_waiters(iam):
    user, role = unique("waited"), unique("waited")
    iam.create_user(UserName=user)
    iam.get_waiter("user_exists").wait(UserName=user, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    make_role(iam, RoleName=role)
    iam.get_waiter("role_exists").wait(RoleName=role, WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    policy = make_policy(iam)
    iam.get_waiter("policy_exists").wait(PolicyArn=policy["Arn"], WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    profile = unique("ip")
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.get_waiter("instance_profile_exists").wait(
        InstanceProfileName=profile, WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )
    with pytest.raises(botocore.exceptions.WaiterError):
        iam.get_waiter("user_exists").wait(UserName=unique("never"), WaiterConfig={"Delay": 1, "MaxAttempts": 2})


# --------------------------------------------------------------------------
# Groups


def test_groups_and_members(iam):
    path = path_of("groups")
    group = unique("grp")
    created = iam.create_group(GroupName=group, Path=path)["Group"]
    assert re.fullmatch(r"AGPA[A-Z0-9]{17}", created["GroupId"])
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:group{path}{group}"
    assert error_code(client_error(iam.create_group, GroupName=group)) == "EntityAlreadyExists"
    users = sorted(unique("member") for _ in range(3))
    for u in users:
        iam.create_user(UserName=u)
        iam.add_user_to_group(GroupName=group, UserName=u)
    got = iam.get_group(GroupName=group)
    assert got["Group"]["GroupId"] == created["GroupId"]
    assert sorted(u["UserName"] for u in got["Users"]) == users
    paged = [
        u["UserName"]
        for page in iam.get_paginator("get_group").paginate(GroupName=group, PaginationConfig={"PageSize": 2})
        for u in page["Users"]
    ]
    assert sorted(paged) == users
    assert [g["GroupName"] for g in iam.list_groups(PathPrefix=path)["Groups"]] == [group]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=users[0])["Groups"]] == [group]

    e = client_error(iam.delete_group, GroupName=group)
    assert error_code(e) == "DeleteConflict"
    assert error_message(e) == "Cannot delete entity, must remove users from group first."
    for u in users:
        iam.remove_user_from_group(GroupName=group, UserName=u)
    assert iam.list_groups_for_user(UserName=users[0])["Groups"] == []
    iam.attach_group_policy(GroupName=group, PolicyArn=READ_ONLY_IAM)
    iam.put_group_policy(GroupName=group, PolicyName="inline", PolicyDocument=json.dumps(DOC))
    assert iam.list_group_policies(GroupName=group)["PolicyNames"] == ["inline"]
    assert iam.get_group_policy(GroupName=group, PolicyName="inline")["PolicyDocument"] == DOC
    assert error_message(client_error(iam.delete_group, GroupName=group)) == (
        "Cannot delete entity, must delete policies first."
    )
    iam.delete_group_policy(GroupName=group, PolicyName="inline")
    assert error_message(client_error(iam.delete_group, GroupName=group)) == (
        "Cannot delete entity, must detach all policies first."
    )
    iam.detach_group_policy(GroupName=group, PolicyArn=READ_ONLY_IAM)
    iam.delete_group(GroupName=group)
    assert_no_such_entity(f"The group with name {group} cannot be found.", iam.get_group, GroupName=group)


# --------------------------------------------------------------------------
# Roles


def test_role_lifecycle(iam):
    name, path = unique("role"), path_of("roles")
    role = make_role(
        iam,
        RoleName=name,
        Path=path,
        Description="runs tasks",
        MaxSessionDuration=7200,
        Tags=[{"Key": "k", "Value": "v"}],
    )
    assert re.fullmatch(r"AROA[A-Z0-9]{17}", role["RoleId"])
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:role{path}{name}"
    # IAM sends the document percent-encoded; botocore hands back a dict.
    assert role["AssumeRolePolicyDocument"] == TRUST
    assert role["MaxSessionDuration"] == 7200
    assert role["Description"] == "runs tasks"
    assert role["Tags"] == [{"Key": "k", "Value": "v"}]

    got = iam.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == TRUST
    assert got["RoleLastUsed"] == {}
    listed = iam.list_roles(PathPrefix=path)["Roles"]
    assert [r["RoleName"] for r in listed] == [name]
    assert listed[0]["AssumeRolePolicyDocument"] == TRUST

    iam.update_role(RoleName=name, Description="new", MaxSessionDuration=3600)
    got = iam.get_role(RoleName=name)["Role"]
    assert (got["Description"], got["MaxSessionDuration"]) == ("new", 3600)
    ec2_trust = json.loads(json.dumps(TRUST).replace("ecs-tasks", "ec2"))
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(ec2_trust))
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == ec2_trust

    iam.tag_role(RoleName=name, Tags=[{"Key": "k2", "Value": "v2"}])
    assert {t["Key"] for t in iam.list_role_tags(RoleName=name)["Tags"]} == {"k", "k2"}
    iam.untag_role(RoleName=name, TagKeys=["k", "k2"])
    assert iam.list_role_tags(RoleName=name)["Tags"] == []

    iam.delete_role(RoleName=name)
    assert_no_such_entity(f"The role with name {name} cannot be found.", iam.get_role, RoleName=name)


def test_role_errors(iam, loose):
    name = unique("role")
    make_role(iam, RoleName=name)
    e = client_error(make_role, iam, RoleName=name)
    assert error_code(e) == "EntityAlreadyExists"
    assert error_message(e) == f"Role with name {name} already exists."
    for bad in (3599, 43201):
        e = client_error(make_role, loose, MaxSessionDuration=bad)
        assert error_code(e) == "ValidationError"
        assert "maxSessionDuration" in error_message(e)
    assert error_code(client_error(make_role, iam, AssumeRolePolicyDocument="{not json")) == "MalformedPolicyDocument"
    assert error_code(client_error(make_role, loose, RoleName="x" * 65)) == "ValidationError"
    bad_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    e = client_error(iam.update_assume_role_policy, RoleName=name, PolicyDocument=json.dumps(bad_trust))
    assert error_code(e) == "MalformedPolicyDocument"


def test_delete_role_conflicts(iam):
    name, profile = unique("role"), unique("ip")
    make_role(iam, RoleName=name)
    iam.create_instance_profile(InstanceProfileName=profile)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=name)
    iam.attach_role_policy(RoleName=name, PolicyArn=ADMIN)
    iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(DOC))

    def conflict(what: str) -> None:
        e = client_error(iam.delete_role, RoleName=name)
        assert error_code(e) == "DeleteConflict"
        assert error_message(e) == f"Cannot delete entity, must {what} first."

    conflict("remove roles from instance profile")
    iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=name)
    conflict("detach all policies")
    iam.detach_role_policy(RoleName=name, PolicyArn=ADMIN)
    conflict("delete policies")
    iam.delete_role_policy(RoleName=name, PolicyName="inline")
    iam.delete_role(RoleName=name)
    iam.delete_instance_profile(InstanceProfileName=profile)


def test_roles_paginate(iam):
    path = path_of("rpage")
    names = sorted(make_role(iam, Path=path)["RoleName"] for _ in range(3))
    pages = list(iam.get_paginator("list_roles").paginate(PathPrefix=path, PaginationConfig={"PageSize": 2}))
    assert [len(p["Roles"]) for p in pages] == [2, 1]
    assert sorted(r["RoleName"] for p in pages for r in p["Roles"]) == names


# --------------------------------------------------------------------------
# Managed policies


def test_managed_policy_and_versions(iam):
    path = path_of("pol")
    policy = make_policy(iam, Path=path, Description="lists ECS")
    arn = policy["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT_ID}:policy{path}{policy['PolicyName']}"
    assert re.fullmatch(r"ANPA[A-Z0-9]{17}", policy["PolicyId"])
    assert (policy["DefaultVersionId"], policy["AttachmentCount"], policy["IsAttachable"]) == ("v1", 0, True)
    got = iam.get_policy(PolicyArn=arn)["Policy"]
    assert got["Description"] == "lists ECS"
    assert_recent(got["UpdateDate"])
    e = client_error(make_policy, iam, PolicyName=policy["PolicyName"])
    assert error_code(e) == "EntityAlreadyExists"
    assert error_message(e) == f"A policy called {policy['PolicyName']} already exists. Duplicate names are not allowed."

    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(DOC2), SetAsDefault=True)["PolicyVersion"]
    assert (v2["VersionId"], v2["IsDefaultVersion"]) == ("v2", True)
    assert v2["Document"] == DOC2
    for _ in range(3):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(DOC))
    e = client_error(iam.create_policy_version, PolicyArn=arn, PolicyDocument=json.dumps(DOC))
    assert error_code(e) == "LimitExceeded"
    assert error_message(e) == (
        "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version."
    )
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["VersionId"] for v in versions if v["IsDefaultVersion"]] == ["v2"]
    assert "Document" not in versions[0]
    v1 = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert v1["Document"] == DOC and v1["IsDefaultVersion"] is False

    e = client_error(iam.delete_policy_version, PolicyArn=arn, VersionId="v2")
    assert error_code(e) == "DeleteConflict"
    assert error_message(e) == "Cannot delete the default version of a policy."
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v1"
    e = client_error(iam.delete_policy, PolicyArn=arn)
    assert error_code(e) == "DeleteConflict"
    for v in ("v2", "v3", "v4", "v5"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=v)
    assert error_code(client_error(iam.get_policy_version, PolicyArn=arn, VersionId="v5")) == "NoSuchEntity"

    assert [p["Arn"] for p in iam.list_policies(Scope="Local", PathPrefix=path)["Policies"]] == [arn]
    iam.delete_policy(PolicyArn=arn)
    assert_no_such_entity(f"Policy {arn} was not found.", iam.get_policy, PolicyArn=arn)


def test_malformed_policy_documents(iam):
    missing_action = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}
    e = client_error(make_policy, iam, doc=missing_action)
    assert error_code(e) == "MalformedPolicyDocument"
    assert error_message(e) == "Policy statement must contain actions."
    e = client_error(iam.create_policy, PolicyName=unique("bad"), PolicyDocument="not json")
    assert error_code(e) == "MalformedPolicyDocument"
    assert error_message(e) == "Syntax errors in policy."


def test_attachments_and_entities(iam):
    policy = make_policy(iam)
    arn = policy["Arn"]
    user, group, role = unique("u"), unique("g"), unique("r")
    iam.create_user(UserName=user)
    iam.create_group(GroupName=group)
    make_role(iam, RoleName=role)
    iam.attach_user_policy(UserName=user, PolicyArn=arn)
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn=ADMIN)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 3

    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert {(p["PolicyName"], p["PolicyArn"]) for p in attached} == {
        (policy["PolicyName"], arn),
        ("AdministratorAccess", ADMIN),
    }
    assert iam.list_attached_user_policies(UserName=user)["AttachedPolicies"] == [
        {"PolicyName": policy["PolicyName"], "PolicyArn": arn}
    ]
    assert iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"] == [
        {"PolicyName": policy["PolicyName"], "PolicyArn": arn}
    ]
    entities = iam.list_entities_for_policy(PolicyArn=arn)
    assert [u["UserName"] for u in entities["PolicyUsers"]] == [user]
    assert [g["GroupName"] for g in entities["PolicyGroups"]] == [group]
    assert [r["RoleName"] for r in entities["PolicyRoles"]] == [role]
    only_roles = iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="Role")
    assert only_roles["PolicyUsers"] == [] and len(only_roles["PolicyRoles"]) == 1
    assert arn in [p["Arn"] for p in iam.list_policies(Scope="Local", OnlyAttached=True)["Policies"]]

    e = client_error(iam.delete_policy, PolicyArn=arn)
    assert error_code(e) == "DeleteConflict"
    assert error_message(e) == "Cannot delete a policy attached to entities."
    missing = f"arn:aws:iam::{ACCOUNT_ID}:policy/{unique('missing')}"
    assert_no_such_entity(
        f"Policy {missing} does not exist or is not attachable.", iam.attach_user_policy, UserName=user, PolicyArn=missing
    )
    assert error_code(client_error(iam.detach_user_policy, UserName=user, PolicyArn=ADMIN)) == "NoSuchEntity"

    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
    iam.delete_policy(PolicyArn=arn)


def test_at_most_ten_managed_policies_per_identity(iam):
    role = make_role(iam)["RoleName"]
    arns = [make_policy(iam)["Arn"] for _ in range(11)]
    for arn in arns[:10]:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    e = client_error(iam.attach_role_policy, RoleName=role, PolicyArn=arns[10])
    assert error_code(e) == "LimitExceeded"
    assert error_message(e) == "Cannot exceed quota for PoliciesPerRole: 10"
    pages = list(
        iam.get_paginator("list_attached_role_policies").paginate(RoleName=role, PaginationConfig={"PageSize": 3})
    )
    assert [len(p["AttachedPolicies"]) for p in pages] == [3, 3, 3, 1]


def test_aws_managed_policies(iam):
    got = iam.get_policy(PolicyArn=ADMIN)["Policy"]
    assert (got["PolicyName"], got["Path"], got["DefaultVersionId"]) == ("AdministratorAccess", "/", "v1")
    assert re.fullmatch(r"ANPA[A-Z0-9]{17}", got["PolicyId"])
    version = iam.get_policy_version(PolicyArn=ADMIN, VersionId="v1")["PolicyVersion"]
    assert version["Document"]["Statement"][0]["Action"] == "*"
    aws = [p["PolicyName"] for p in iam.list_policies(Scope="AWS")["Policies"]]
    assert {"AdministratorAccess", "AmazonECSTaskExecutionRolePolicy", "IAMReadOnlyAccess"} <= set(aws)
    listed = [p for p in iam.list_policies(Scope="AWS", PathPrefix="/service-role/")["Policies"]]
    assert listed and all(p["Path"] == "/service-role/" for p in listed)

    role = make_role(iam)["RoleName"]
    exec_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    before = iam.get_policy(PolicyArn=exec_arn)["Policy"]["AttachmentCount"]
    iam.attach_role_policy(RoleName=role, PolicyArn=exec_arn)
    assert iam.get_policy(PolicyArn=exec_arn)["Policy"]["AttachmentCount"] == before + 1
    assert role in [r["RoleName"] for r in iam.list_entities_for_policy(PolicyArn=exec_arn)["PolicyRoles"]]
    iam.detach_role_policy(RoleName=role, PolicyArn=exec_arn)
    missing = "arn:aws:iam::aws:policy/NoSuchManagedPolicy"
    e = client_error(iam.attach_role_policy, RoleName=role, PolicyArn=missing)
    assert error_message(e) == f"Policy {missing} does not exist or is not attachable."


def test_list_policies_paginates(iam):
    path = path_of("ppage")
    arns = sorted(make_policy(iam, Path=path)["Arn"] for _ in range(3))
    pages = list(
        iam.get_paginator("list_policies").paginate(Scope="Local", PathPrefix=path, PaginationConfig={"PageSize": 2})
    )
    assert [len(p["Policies"]) for p in pages] == [2, 1]
    assert sorted(p["Arn"] for page in pages for p in page["Policies"]) == arns


# --------------------------------------------------------------------------
# Inline policies


def test_inline_policies(iam):
    user, role = unique("u"), unique("r")
    iam.create_user(UserName=user)
    make_role(iam, RoleName=role)
    iam.put_user_policy(UserName=user, PolicyName="b", PolicyDocument=json.dumps(DOC))
    iam.put_user_policy(UserName=user, PolicyName="a", PolicyDocument=json.dumps(DOC2))
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["a", "b"]
    got = iam.get_user_policy(UserName=user, PolicyName="a")
    assert (got["UserName"], got["PolicyName"], got["PolicyDocument"]) == (user, "a", DOC2)
    iam.put_user_policy(UserName=user, PolicyName="a", PolicyDocument=json.dumps(DOC))
    assert iam.get_user_policy(UserName=user, PolicyName="a")["PolicyDocument"] == DOC

    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=json.dumps(DOC))
    assert iam.get_role_policy(RoleName=role, PolicyName="p")["PolicyDocument"] == DOC
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["p"]

    assert_no_such_entity(
        "The user policy with name zz cannot be found.", iam.get_user_policy, UserName=user, PolicyName="zz"
    )
    e = client_error(iam.delete_role_policy, RoleName=role, PolicyName="zz")
    assert error_message(e) == "The role policy with name zz cannot be found."
    e = client_error(iam.put_user_policy, UserName=user, PolicyName="bad", PolicyDocument="{")
    assert error_code(e) == "MalformedPolicyDocument"
    e = client_error(iam.put_user_policy, UserName=unique("nobody"), PolicyName="p", PolicyDocument=json.dumps(DOC))
    assert error_code(e) == "NoSuchEntity"

    iam.delete_user_policy(UserName=user, PolicyName="a")
    iam.delete_user_policy(UserName=user, PolicyName="b")
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == []


# --------------------------------------------------------------------------
# Access keys


def test_access_keys(iam):
    user = unique("keyed")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key["AccessKeyId"])
    assert len(key["SecretAccessKey"]) == 40
    assert (key["UserName"], key["Status"]) == (user, "Active")
    assert_recent(key["CreateDate"])
    second = iam.create_access_key(UserName=user)["AccessKey"]
    e = client_error(iam.create_access_key, UserName=user)
    assert error_code(e) == "LimitExceeded"
    assert error_message(e) == "Cannot exceed quota for AccessKeysPerUser: 2"

    listed = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert sorted(k["AccessKeyId"] for k in listed) == sorted([key["AccessKeyId"], second["AccessKeyId"]])
    assert all("SecretAccessKey" not in k for k in listed)

    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    statuses = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
    assert statuses[key["AccessKeyId"]] == "Inactive"
    last = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    assert last["UserName"] == user
    assert last["AccessKeyLastUsed"] == {"ServiceName": "N/A", "Region": "N/A"}

    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    key_id = key["AccessKeyId"]
    assert_no_such_entity(
        f"The Access Key with id {key_id} cannot be found.", iam.delete_access_key, UserName=user, AccessKeyId=key_id
    )
    # The root must name the user: its own key is not an IAM user's.
    assert error_code(client_error(iam.create_access_key)) == "ValidationError"


def test_a_user_key_signs_requests_with_its_policies(berth, iam):
    """A key made by CreateAccessKey authenticates, and its user may do only
    what its policies allow."""
    user = unique("signer")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    as_user = berth.client(
        "iam", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    e = client_error(as_user.list_users)
    assert error_code(e) == "AccessDenied"
    iam.attach_user_policy(UserName=user, PolicyArn=READ_ONLY_IAM)
    me = as_user.get_user()["User"]
    assert (me["UserName"], me["Arn"]) == (user, f"arn:aws:iam::{ACCOUNT_ID}:user/{user}")
    as_user.list_users(MaxItems=1)
    assert error_code(client_error(as_user.create_user, UserName=unique("nope"))) == "AccessDenied"
    # Without UserName, a user manages its own keys.
    own = as_user.list_access_keys()["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in own] == [key["AccessKeyId"]]


# --------------------------------------------------------------------------
# Instance profiles


def test_instance_profiles(iam):
    path, name = path_of("ip"), unique("ip")
    role, role2 = make_role(iam)["RoleName"], make_role(iam)["RoleName"]
    profile = iam.create_instance_profile(InstanceProfileName=name, Path=path)["InstanceProfile"]
    assert re.fullmatch(r"AIPA[A-Z0-9]{17}", profile["InstanceProfileId"])
    assert profile["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:instance-profile{path}{name}"
    assert profile["Roles"] == []
    e = client_error(iam.create_instance_profile, InstanceProfileName=name)
    assert error_code(e) == "EntityAlreadyExists"

    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    e = client_error(iam.add_role_to_instance_profile, InstanceProfileName=name, RoleName=role2)
    assert error_code(e) == "LimitExceeded"
    assert error_message(e) == "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1"
    got = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == [role]
    assert got["Roles"][0]["AssumeRolePolicyDocument"] == TRUST
    assert [p["InstanceProfileName"] for p in iam.list_instance_profiles(PathPrefix=path)["InstanceProfiles"]] == [name]
    assert [
        p["InstanceProfileName"] for p in iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"]
    ] == [name]
    assert iam.list_instance_profiles_for_role(RoleName=role2)["InstanceProfiles"] == []

    e = client_error(iam.delete_instance_profile, InstanceProfileName=name)
    assert error_code(e) == "DeleteConflict"
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
    iam.delete_instance_profile(InstanceProfileName=name)
    assert_no_such_entity(f"Instance Profile {name} cannot be found.", iam.get_instance_profile, InstanceProfileName=name)


# --------------------------------------------------------------------------
# Account, wire and unknown actions


def test_account_summary(iam):
    summary = iam.get_account_summary()["SummaryMap"]
    assert summary["AccessKeysPerUserQuota"] == 2
    assert summary["Users"] >= 0 and summary["VersionsPerPolicyQuota"] == 5


def test_error_document_and_actions_on_the_wire(berth):
    name = unique("nobody")
    resp = iam_raw(berth, {"Action": "GetUser", "UserName": name})
    assert resp.status == 404
    root = ET.fromstring(resp.body)
    assert root.find("{*}Error/{*}Code").text == "NoSuchEntity"
    assert root.find("{*}Error/{*}Type").text == "Sender"
    assert root.find("{*}Error/{*}Message").text == f"The user with name {name} cannot be found."

    ok = iam_raw(berth, {"Action": "ListUsers", "PathPrefix": path_of("none")})
    assert ok.status == 200
    root = ET.fromstring(ok.body)
    assert root.tag == f"{IAM_NS}ListUsersResponse"
    assert root.find(f"{IAM_NS}ListUsersResult/{IAM_NS}IsTruncated").text == "false"
    assert root.find(f"{IAM_NS}ResponseMetadata/{IAM_NS}RequestId").text == ok.headers["x-amzn-requestid"]

    role = unique("raw")
    created = iam_raw(
        berth, {"Action": "CreateRole", "RoleName": role, "AssumeRolePolicyDocument": json.dumps(TRUST)}
    )
    doc = ET.fromstring(created.body).find(f".//{IAM_NS}AssumeRolePolicyDocument").text
    assert doc.startswith("%7B%22Version%22")
    assert json.loads(urllib.parse.unquote(doc)) == TRUST

    deleted = iam_raw(berth, {"Action": "DeleteRole", "RoleName": role})
    root = ET.fromstring(deleted.body)
    assert root.tag == f"{IAM_NS}DeleteRoleResponse"
    assert root.find(f"{IAM_NS}DeleteRoleResult") is None

    unsupported = iam_raw(berth, {"Action": "CreateLoginProfile", "UserName": "x", "Password": "y"})
    assert ET.fromstring(unsupported.body).find("{*}Error/{*}Code").text == "UnsupportedOperation"
    unknown = iam_raw(berth, {"Action": "CreateBucket"})
    assert unknown.status == 400
    assert ET.fromstring(unknown.body).find("{*}Error/{*}Code").text == "InvalidAction"


# --------------------------------------------------------------------------
# The aws CLI


def test_cli_roles_and_policies(aws, tmp_path):
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(TRUST))
    doc = tmp_path / "policy.json"
    doc.write_text(json.dumps(DOC))
    role = unique("cli-role")
    out = aws("iam", "create-role", "--role-name", role, "--assume-role-policy-document", f"file://{trust}")
    assert out["Role"]["AssumeRolePolicyDocument"] == TRUST
    aws("iam", "wait", "role-exists", "--role-name", role)
    out = aws("iam", "get-role", "--role-name", role)
    assert out["Role"]["RoleName"] == role
    policy_name = unique("cli-pol")
    out = aws("iam", "create-policy", "--policy-name", policy_name, "--policy-document", f"file://{doc}")
    arn = out["Policy"]["Arn"]
    aws("iam", "attach-role-policy", "--role-name", role, "--policy-arn", arn)
    out = aws("iam", "list-attached-role-policies", "--role-name", role)
    assert out["AttachedPolicies"] == [{"PolicyName": policy_name, "PolicyArn": arn}]
    aws("iam", "put-role-policy", "--role-name", role, "--policy-name", "inline", "--policy-document", f"file://{doc}")
    out = aws("iam", "get-role-policy", "--role-name", role, "--policy-name", "inline")
    assert out["PolicyDocument"] == DOC
    out = aws("iam", "get-policy-version", "--policy-arn", arn, "--version-id", "v1")
    assert out["PolicyVersion"]["Document"] == DOC

    code, stderr = aws.error("iam", "delete-role", "--role-name", role)
    assert code != 0 and "DeleteConflict" in stderr
    aws("iam", "delete-role-policy", "--role-name", role, "--policy-name", "inline")
    aws("iam", "detach-role-policy", "--role-name", role, "--policy-arn", arn)
    aws("iam", "delete-role", "--role-name", role)
    aws("iam", "delete-policy", "--policy-arn", arn)
    code, stderr = aws.error("iam", "get-role", "--role-name", role)
    assert "NoSuchEntity" in stderr


def test_cli_users_and_keys(aws):
    user = unique("cli-user")
    aws("iam", "create-user", "--user-name", user, "--tags", "Key=k,Value=v")
    aws("iam", "wait", "user-exists", "--user-name", user)
    out = aws("iam", "list-users")
    assert user in [u["UserName"] for u in out["Users"]]
    out = aws("iam", "create-access-key", "--user-name", user)
    key_id = out["AccessKey"]["AccessKeyId"]
    out = aws("iam", "list-access-keys", "--user-name", user)
    assert [k["AccessKeyId"] for k in out["AccessKeyMetadata"]] == [key_id]
    aws("iam", "update-access-key", "--user-name", user, "--access-key-id", key_id, "--status", "Inactive")
    aws("iam", "delete-access-key", "--user-name", user, "--access-key-id", key_id)
    out = aws("iam", "list-user-tags", "--user-name", user)
    assert out["Tags"] == [{"Key": "k", "Value": "v"}]
    aws("iam", "delete-user", "--user-name", user)


# --------------------------------------------------------------------------
# Every element answered is in botocore's model (see conftest.watch_against_model).


def test_every_answered_element_is_in_the_model(berth):
    client = berth.client("iam")
    problems, seen = watch_against_model(
        client, IAM_NS, service="IAM", maps=True, timestamps=r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    )

    tags = [{"Key": "k", "Value": "v"}]
    user, group, role, profile = unique("m-u"), unique("m-g"), unique("m-r"), unique("m-ip")
    client.create_user(UserName=user, Tags=tags)
    client.get_user(UserName=user)
    client.get_user()
    client.list_users(MaxItems=1)
    client.tag_user(UserName=user, Tags=[{"Key": "k2", "Value": "v"}])
    client.untag_user(UserName=user, TagKeys=["k2"])
    client.list_user_tags(UserName=user)
    client.create_group(GroupName=group)
    client.add_user_to_group(GroupName=group, UserName=user)
    client.get_group(GroupName=group)
    client.list_groups(MaxItems=1)
    client.list_groups_for_user(UserName=user)
    make_role(client, RoleName=role, Description="d", Tags=tags)
    client.get_role(RoleName=role)
    client.list_roles(MaxItems=2)
    client.update_role(RoleName=role, Description="d2")
    client.update_role_description(RoleName=role, Description="d3")
    client.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(TRUST))
    client.tag_role(RoleName=role, Tags=[{"Key": "k2", "Value": "v"}])
    client.list_role_tags(RoleName=role)
    client.untag_role(RoleName=role, TagKeys=["k2"])
    policy = make_policy(client, Description="d", Tags=tags)
    arn = policy["Arn"]
    client.get_policy(PolicyArn=arn)
    client.get_policy(PolicyArn=ADMIN)
    client.list_policies(MaxItems=3)
    client.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(DOC2), SetAsDefault=True)
    client.get_policy_version(PolicyArn=arn, VersionId="v2")
    client.get_policy_version(PolicyArn=ADMIN, VersionId="v1")
    client.list_policy_versions(PolicyArn=arn)
    client.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    client.delete_policy_version(PolicyArn=arn, VersionId="v2")
    client.tag_policy(PolicyArn=arn, Tags=[{"Key": "k2", "Value": "v"}])
    client.list_policy_tags(PolicyArn=arn)
    client.untag_policy(PolicyArn=arn, TagKeys=["k2"])
    for attach, kwargs in (
        (client.attach_user_policy, {"UserName": user}),
        (client.attach_group_policy, {"GroupName": group}),
        (client.attach_role_policy, {"RoleName": role}),
    ):
        attach(PolicyArn=arn, **kwargs)
    client.list_attached_user_policies(UserName=user)
    client.list_attached_group_policies(GroupName=group)
    client.list_attached_role_policies(RoleName=role)
    client.list_entities_for_policy(PolicyArn=arn)
    client.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(DOC))
    client.put_group_policy(GroupName=group, PolicyName="p", PolicyDocument=json.dumps(DOC))
    client.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=json.dumps(DOC))
    client.get_user_policy(UserName=user, PolicyName="p")
    client.get_group_policy(GroupName=group, PolicyName="p")
    client.get_role_policy(RoleName=role, PolicyName="p")
    client.list_user_policies(UserName=user)
    client.list_group_policies(GroupName=group)
    client.list_role_policies(RoleName=role)
    key = client.create_access_key(UserName=user)["AccessKey"]
    client.list_access_keys(UserName=user)
    client.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    client.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    client.create_instance_profile(InstanceProfileName=profile, Tags=tags)
    client.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    client.get_instance_profile(InstanceProfileName=profile)
    client.list_instance_profiles(MaxItems=1)
    client.list_instance_profiles_for_role(RoleName=role)
    client.tag_instance_profile(InstanceProfileName=profile, Tags=[{"Key": "k2", "Value": "v"}])
    client.list_instance_profile_tags(InstanceProfileName=profile)
    client.untag_instance_profile(InstanceProfileName=profile, TagKeys=["k2"])
    client.get_account_summary()

    # And the teardown, each delete answered without a result.
    client.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=role)
    client.delete_instance_profile(InstanceProfileName=profile)
    client.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    client.delete_user_policy(UserName=user, PolicyName="p")
    client.delete_group_policy(GroupName=group, PolicyName="p")
    client.delete_role_policy(RoleName=role, PolicyName="p")
    client.detach_user_policy(UserName=user, PolicyArn=arn)
    client.detach_group_policy(GroupName=group, PolicyArn=arn)
    client.detach_role_policy(RoleName=role, PolicyArn=arn)
    client.remove_user_from_group(GroupName=group, UserName=user)
    client.update_user(UserName=user, NewPath="/m/")
    client.update_group(GroupName=group, NewPath="/m/")
    client.delete_policy(PolicyArn=arn)
    client.delete_role(RoleName=role)
    client.delete_group(GroupName=group)
    client.delete_user(UserName=user)

    assert not problems, "\n".join(problems)
    assert len(set(seen)) >= 70, sorted(set(seen))

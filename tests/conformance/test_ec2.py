"""The EC2 query API Berth serves: every account's default VPC, its default
subnets (one per availability zone), its `default` security group and the
region's availability zones — what scripts look up before they create ECS
services with awsvpc networking.

The network is synthetic but stable: the same ids on every call, different
ids in another region.
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, OTHER_REGION, REGION, error_code, error_message, raw_request

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
NOT_THERE_VPC = "vpc-0123456789abcdef0"
NOT_THERE_SUBNET = "subnet-0123456789abcdef0"
NOT_THERE_GROUP = "sg-0123456789abcdef0"


@pytest.fixture(scope="module")
def ec2(berth):
    return berth.client("ec2")


@pytest.fixture(scope="module")
def ec2_other_region(berth):
    return berth.client("ec2", region=OTHER_REGION)


@pytest.fixture(scope="module")
def default_vpc(ec2) -> dict:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    return vpcs[0]


def ec2_raw(berth, form: dict[str, str], region: str = REGION):
    body = urllib.parse.urlencode({"Version": "2016-11-15", **form}).encode()
    return raw_request(
        berth,
        None,
        region=region,
        service="ec2",
        data=body,
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )


# --------------------------------------------------------------------------
# DescribeVpcs


def test_default_vpc(default_vpc):
    vpc = default_vpc
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", vpc["VpcId"])
    assert vpc["IsDefault"] is True
    assert vpc["State"] == "available"
    assert vpc["CidrBlock"] == "172.31.0.0/16"
    assert vpc["OwnerId"] == ACCOUNT_ID
    assert vpc["InstanceTenancy"] == "default"
    assert re.fullmatch(r"dopt-[0-9a-f]{17}", vpc["DhcpOptionsId"])
    [assoc] = vpc["CidrBlockAssociationSet"]
    assert assoc["CidrBlock"] == "172.31.0.0/16"
    assert assoc["CidrBlockState"]["State"] == "associated"
    assert assoc["AssociationId"].startswith("vpc-cidr-assoc-")


def test_vpc_lookups_agree(ec2, default_vpc):
    vpc_id = default_vpc["VpcId"]
    assert ec2.describe_vpcs()["Vpcs"] == [default_vpc]
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"] == [default_vpc]
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"] == [default_vpc]
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"] == [default_vpc]
    assert ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["false"]}])["Vpcs"] == []
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["*"]}])["Vpcs"] == []


def test_default_vpc_is_stable_and_per_region(ec2, ec2_other_region, default_vpc):
    again = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    assert again["VpcId"] == default_vpc["VpcId"]
    other = ec2_other_region.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert len(other) == 1
    assert other[0]["VpcId"] != default_vpc["VpcId"]
    assert other[0]["CidrBlock"] == "172.31.0.0/16"


def test_vpc_waiter(ec2, default_vpc):
    ec2.get_waiter("vpc_available").wait(VpcIds=[default_vpc["VpcId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 2})


# --------------------------------------------------------------------------
# DescribeSubnets


def test_default_subnets(ec2, default_vpc):
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc["VpcId"]]}])["Subnets"]
    assert len(subnets) == 3
    zones = {s["AvailabilityZone"] for s in subnets}
    assert len(zones) == 3
    assert all(z.startswith(REGION) for z in zones)
    assert {s["CidrBlock"] for s in subnets} == {"172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"}
    for s in subnets:
        assert re.fullmatch(r"subnet-[0-9a-f]{17}", s["SubnetId"])
        assert s["VpcId"] == default_vpc["VpcId"]
        assert s["DefaultForAz"] is True
        assert s["MapPublicIpOnLaunch"] is True
        assert s["State"] == "available"
        assert s["AvailableIpAddressCount"] == 4091
        assert s["OwnerId"] == ACCOUNT_ID
        assert s["SubnetArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:subnet/{s['SubnetId']}"
        assert s["AvailabilityZoneId"]


def test_subnet_lookups(ec2, default_vpc):
    subnets = ec2.describe_subnets()["Subnets"]
    ids = [s["SubnetId"] for s in subnets]
    assert len(ids) == 3
    by_id = ec2.describe_subnets(SubnetIds=[ids[1]])["Subnets"]
    assert [s["SubnetId"] for s in by_id] == [ids[1]]
    zone = subnets[0]["AvailabilityZone"]
    in_zone = ec2.describe_subnets(
        Filters=[
            {"Name": "default-for-az", "Values": ["true"]},
            {"Name": "availability-zone", "Values": [zone]},
        ]
    )["Subnets"]
    assert [s["SubnetId"] for s in in_zone] == [ids[0]]
    assert ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["false"]}])["Subnets"] == []


def test_subnet_paginator(ec2):
    pages = list(ec2.get_paginator("describe_subnets").paginate(PaginationConfig={"PageSize": 5}))
    assert len(pages) == 1
    assert len(pages[0]["Subnets"]) == 3
    assert "NextToken" not in pages[0]


def test_cli_default_subnet_ids(aws, ec2):
    ids = aws("ec2", "describe-subnets", "--filters", "Name=default-for-az,Values=true", "--query", "Subnets[].SubnetId")
    assert sorted(ids) == sorted(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"])


def test_cli_default_vpc_id(aws, default_vpc):
    vpc_id = aws("ec2", "describe-vpcs", "--filters", "Name=isDefault,Values=true", "--query", "Vpcs[0].VpcId")
    assert vpc_id == default_vpc["VpcId"]


# --------------------------------------------------------------------------
# DescribeSecurityGroups


def test_default_security_group(ec2, default_vpc):
    [group] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert re.fullmatch(r"sg-[0-9a-f]{17}", group["GroupId"])
    assert group["GroupName"] == "default"
    assert group["Description"] == "default VPC security group"
    assert group["VpcId"] == default_vpc["VpcId"]
    assert group["OwnerId"] == ACCOUNT_ID
    [ingress] = group["IpPermissions"]
    assert ingress["IpProtocol"] == "-1"
    assert ingress["UserIdGroupPairs"] == [{"UserId": ACCOUNT_ID, "GroupId": group["GroupId"]}]
    assert ingress["IpRanges"] == []
    [egress] = group["IpPermissionsEgress"]
    assert egress["IpProtocol"] == "-1"
    assert egress["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]

    assert ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"] == [group]
    filtered = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [default_vpc["VpcId"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    assert filtered == [group]


# --------------------------------------------------------------------------
# DescribeAvailabilityZones


def test_availability_zones(ec2):
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert len(zones) == 3
    subnet_zones = {s["AvailabilityZone"]: s["AvailabilityZoneId"] for s in ec2.describe_subnets()["Subnets"]}
    assert {z["ZoneName"]: z["ZoneId"] for z in zones} == subnet_zones
    for z in zones:
        assert z["State"] == "available"
        assert z["RegionName"] == REGION
        assert z["ZoneType"] == "availability-zone"
        assert z["OptInStatus"] == "opt-in-not-required"
        assert z["Messages"] == []
    first = zones[0]["ZoneName"]
    assert [z["ZoneName"] for z in ec2.describe_availability_zones(ZoneNames=[first])["AvailabilityZones"]] == [first]
    named = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": [first]}])["AvailabilityZones"]
    assert [z["ZoneName"] for z in named] == [first]


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "call, kwargs, code",
    [
        ("describe_vpcs", {"VpcIds": [NOT_THERE_VPC]}, "InvalidVpcID.NotFound"),
        ("describe_vpcs", {"VpcIds": ["default"]}, "InvalidVpcID.Malformed"),
        ("describe_subnets", {"SubnetIds": [NOT_THERE_SUBNET]}, "InvalidSubnetID.NotFound"),
        ("describe_security_groups", {"GroupNames": ["no-such-group"]}, "InvalidGroup.NotFound"),
        ("describe_security_groups", {"GroupIds": [NOT_THERE_GROUP]}, "InvalidGroup.NotFound"),
        ("describe_security_groups", {"GroupIds": ["default"]}, "InvalidGroupId.Malformed"),
        ("describe_availability_zones", {"ZoneNames": [f"{REGION}z"]}, "InvalidParameterValue"),
        ("describe_subnets", {"Filters": [{"Name": "colour", "Values": ["blue"]}]}, "InvalidParameterValue"),
    ],
)
def test_error_codes(ec2, call, kwargs, code):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        getattr(ec2, call)(**kwargs)
    assert error_code(e) == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["ResponseMetadata"]["RequestId"]


def test_error_messages(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_vpcs(VpcIds=[NOT_THERE_VPC])
    assert error_message(e) == f"The vpc ID '{NOT_THERE_VPC}' does not exist"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_availability_zones(ZoneNames=[f"{REGION}z"])
    assert error_message(e) == f"Invalid availability zone: [{REGION}z]"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_subnets(Filters=[{"Name": "colour", "Values": ["blue"]}])
    assert error_message(e) == "The filter 'colour' is invalid"


@pytest.mark.parametrize(
    "call", ["describe_vpcs", "describe_subnets", "describe_security_groups", "describe_availability_zones"]
)
def test_dry_run(ec2, call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        getattr(ec2, call)(DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert error_message(e) == "Request would have succeeded, but DryRun flag is set."
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_cli_error(aws):
    code, stderr = aws.error("ec2", "describe-vpcs", "--vpc-ids", NOT_THERE_VPC)
    assert code != 0
    assert "InvalidVpcID.NotFound" in stderr


# --------------------------------------------------------------------------
# The wire, as an SDK would not show it


def test_wire_response_document(berth):
    resp = ec2_raw(berth, {"Action": "DescribeAvailabilityZones"})
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(resp.body)
    assert root.tag == f"{{{EC2_NS}}}DescribeAvailabilityZonesResponse"
    assert root.find(f"{{{EC2_NS}}}requestId").text
    items = root.findall(f"{{{EC2_NS}}}availabilityZoneInfo/{{{EC2_NS}}}item")
    assert len(items) == 3


@pytest.mark.parametrize(
    "form, status, code",
    [
        ({"Action": "DescribeVpcs", "MaxResults": "4"}, 400, "InvalidParameterValue"),
        ({"Action": "DescribeVpcs", "MaxResults": "1001"}, 400, "InvalidParameterValue"),
        ({"Action": "DescribeVpcs", "Bogus": "1"}, 400, "UnknownParameter"),
        ({"Action": "DescribeNoSuchThing"}, 400, "InvalidAction"),
    ],
)
def test_wire_errors(berth, form, status, code):
    resp = ec2_raw(berth, form)
    assert resp.status == status
    root = ET.fromstring(resp.body)
    assert root.tag == "Response"
    assert root.find("Errors/Error/Code").text == code
    assert root.find("Errors/Error/Message").text
    assert root.find("RequestID").text == resp.headers["x-amzn-requestid"]

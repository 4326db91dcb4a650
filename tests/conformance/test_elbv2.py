"""The Elastic Load Balancing v2 control plane (API version 2015-12-01,
query protocol): load balancers, target groups, listeners, rules, targets,
attributes, tags, pagination and error codes, through boto3's `elbv2`
client and the aws CLI.

No data plane runs in this suite, so target health is asserted only in its
shape and its states before any health check (`initial`, `unused`).
Listeners are created only on random ports in 20000-29999: once the data
plane binds listener ports for real, fixed ports would collide between
tests and with the host.
"""

from __future__ import annotations

import json
import random
import re
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.config
import botocore.exceptions
import pytest

from conftest import ACCOUNT_ID, REGION, error_code, error_message, raw_request, unique, watch_against_model

ELB_NS = "{http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/}"
CERT = f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/berth-conformance"
CERT2 = f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/berth-conformance-2"
CERT3 = f"arn:aws:acm:{REGION}:{ACCOUNT_ID}:certificate/berth-conformance-3"
NOT_THERE_LB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:loadbalancer/app/not-there/0123456789abcdef"
NOT_THERE_TG = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:targetgroup/not-there/0123456789abcdef"
NOT_THERE_LISTENER = (
    f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:listener/app/not-there/0123456789abcdef/0123456789abcdef"
)
NOT_THERE_RULE = (
    f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:listener-rule/app/not-there/"
    "0123456789abcdef/0123456789abcdef/0123456789abcdef"
)


def lb_name(prefix: str) -> str:
    # Load balancer and target group names: at most 32 characters.
    return unique(prefix)[:32]


def free_port() -> int:
    return random.randint(20000, 29999)


@pytest.fixture(scope="module")
def elbv2(berth):
    return berth.client("elbv2")


@pytest.fixture(scope="module")
def network(berth):
    """The default VPC's id and two of its subnets (with their zones)."""
    ec2 = berth.client("ec2")
    [vpc] = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    subnets = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
    return {
        "vpc": vpc["VpcId"],
        "subnets": [s["SubnetId"] for s in subnets[:2]],
        "zones": {s["SubnetId"]: s["AvailabilityZone"] for s in subnets},
    }


def make_lb(elbv2, network, kind: str = "application", **kwargs) -> dict:
    subnets = network["subnets"] if kind == "application" else network["subnets"][:1]
    [lb] = elbv2.create_load_balancer(Name=lb_name(kind[:3]), Subnets=subnets, Type=kind, **kwargs)["LoadBalancers"]
    return lb


def make_tg(elbv2, network, protocol: str = "HTTP", **kwargs) -> dict:
    kwargs.setdefault("Port", 8000)
    kwargs.setdefault("VpcId", network["vpc"])
    [tg] = elbv2.create_target_group(Name=lb_name("tg"), Protocol=protocol, **kwargs)["TargetGroups"]
    return tg


def forward(tg_arn: str) -> list[dict]:
    return [{"Type": "forward", "TargetGroupArn": tg_arn}]


def make_listener(elbv2, lb: dict, tg: dict, protocol: str = "HTTP", **kwargs) -> dict:
    """A listener on a random free port (retrying on DuplicateListener)."""
    for _ in range(20):
        try:
            [listener] = elbv2.create_listener(
                LoadBalancerArn=lb["LoadBalancerArn"],
                Protocol=protocol,
                Port=free_port(),
                DefaultActions=forward(tg["TargetGroupArn"]),
                **kwargs,
            )["Listeners"]
            return listener
        except elbv2.exceptions.DuplicateListenerException:
            continue
    raise AssertionError("no free listener port")


@pytest.fixture
def alb(elbv2, network):
    return make_lb(elbv2, network)


@pytest.fixture
def http_tg(elbv2, network):
    return make_tg(elbv2, network)


def elbv2_raw(berth, form: dict[str, str]):
    body = urllib.parse.urlencode({"Version": "2015-12-01", **form}).encode()
    return raw_request(
        berth,
        None,
        service="elasticloadbalancing",
        data=body,
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )


# --------------------------------------------------------------------------
# Load balancers


def test_application_load_balancer_shape(elbv2, network):
    name = lb_name("alb")
    [lb] = elbv2.create_load_balancer(
        Name=name, Subnets=network["subnets"], SecurityGroups=[], Scheme="internet-facing"
    )["LoadBalancers"]
    assert re.fullmatch(
        rf"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:loadbalancer/app/{name}/[0-9a-f]{{16}}",
        lb["LoadBalancerArn"],
    )
    assert lb["LoadBalancerName"] == name
    assert lb["Type"] == "application"
    assert lb["Scheme"] == "internet-facing"
    assert lb["State"]["Code"] == "active"
    assert lb["DNSName"].startswith(f"{name}-")
    assert lb["VpcId"] == network["vpc"]
    assert lb["IpAddressType"] == "ipv4"
    assert {(z["ZoneName"], z["SubnetId"]) for z in lb["AvailabilityZones"]} == {
        (network["zones"][s], s) for s in network["subnets"]
    }
    assert "CreatedTime" in lb and lb["CreatedTime"].tzinfo is not None

    elbv2.get_waiter("load_balancer_available").wait(
        LoadBalancerArns=[lb["LoadBalancerArn"]], WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    [same] = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    assert same == lb
    [same] = elbv2.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])["LoadBalancers"]
    assert same == lb

    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancers(Names=[name])
    elbv2.get_waiter("load_balancers_deleted").wait(
        LoadBalancerArns=[lb["LoadBalancerArn"]], WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    # Deleting again succeeds, as in AWS.
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def test_network_load_balancer_shape(elbv2, network):
    name = lb_name("nlb")
    [lb] = elbv2.create_load_balancer(
        Name=name, Subnets=network["subnets"][:1], Type="network", Scheme="internal"
    )["LoadBalancers"]
    assert ":loadbalancer/net/" in lb["LoadBalancerArn"]
    assert lb["Type"] == "network"
    assert lb["Scheme"] == "internal"
    assert lb["DNSName"].startswith(f"internal-{name}-")
    assert [z["SubnetId"] for z in lb["AvailabilityZones"]] == network["subnets"][:1]
    elbv2.get_waiter("load_balancer_available").wait(Names=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 5})


def test_load_balancer_errors(elbv2, network):
    lb = make_lb(elbv2, network)
    # Same name, other settings.
    with pytest.raises(elbv2.exceptions.DuplicateLoadBalancerNameException):
        elbv2.create_load_balancer(
            Name=lb["LoadBalancerName"], Subnets=network["subnets"], Scheme="internal"
        )
    # Same name, same settings: the same load balancer.
    [again] = elbv2.create_load_balancer(Name=lb["LoadBalancerName"], Subnets=network["subnets"])["LoadBalancers"]
    assert again["LoadBalancerArn"] == lb["LoadBalancerArn"]

    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancers(LoadBalancerArns=[NOT_THERE_LB])
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancers(Names=[lb_name("not-there")])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.create_load_balancer(Name="-bad-", Subnets=network["subnets"])
    assert error_code(e) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.create_load_balancer(Name=lb_name("one"), Subnets=network["subnets"][:1])
    assert error_code(e) == "ValidationError"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_deletion_protection(elbv2, network):
    lb = make_lb(elbv2, network)
    arn = lb["LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}]
    )
    with pytest.raises(elbv2.exceptions.InvalidConfigurationRequestException):
        elbv2.delete_load_balancer(LoadBalancerArn=arn)
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}]
    )
    elbv2.delete_load_balancer(LoadBalancerArn=arn)


# --------------------------------------------------------------------------
# Target groups


@pytest.mark.parametrize(
    "protocol,target_type",
    [("HTTP", "instance"), ("HTTPS", "ip"), ("TCP", "instance"), ("UDP", "ip"), ("TCP_UDP", "instance"), ("TLS", "ip")],
)
def test_target_group_defaults(elbv2, network, protocol, target_type):
    tg = make_tg(elbv2, network, protocol, TargetType=target_type, Port=9000)
    assert re.fullmatch(
        rf"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:targetgroup/{tg['TargetGroupName']}/[0-9a-f]{{16}}",
        tg["TargetGroupArn"],
    )
    assert tg["Protocol"] == protocol
    assert tg["Port"] == 9000
    assert tg["VpcId"] == network["vpc"]
    assert tg["TargetType"] == target_type
    assert tg["HealthCheckEnabled"] is True
    assert tg["HealthCheckPort"] == "traffic-port"
    assert tg["LoadBalancerArns"] == []
    if protocol in ("HTTP", "HTTPS"):
        assert tg["HealthCheckProtocol"] == protocol
        assert tg["HealthCheckPath"] == "/"
        assert tg["Matcher"] == {"HttpCode": "200"}
    else:
        assert tg["HealthCheckProtocol"] == "TCP"
        assert "HealthCheckPath" not in tg
    [same] = elbv2.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"]
    assert same == tg


def test_target_group_health_check_settings_echoed(elbv2, network):
    tg = make_tg(
        elbv2,
        network,
        "HTTP",
        HealthCheckProtocol="HTTP",
        HealthCheckPort="8081",
        HealthCheckPath="/healthz",
        HealthCheckIntervalSeconds=10,
        HealthCheckTimeoutSeconds=3,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=3,
        Matcher={"HttpCode": "200-299"},
    )
    assert tg["HealthCheckPort"] == "8081"
    assert tg["HealthCheckPath"] == "/healthz"
    assert tg["HealthCheckIntervalSeconds"] == 10
    assert tg["HealthCheckTimeoutSeconds"] == 3
    assert tg["HealthyThresholdCount"] == 2
    assert tg["UnhealthyThresholdCount"] == 3
    assert tg["Matcher"] == {"HttpCode": "200-299"}

    [changed] = elbv2.modify_target_group(
        TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="/ready", HealthCheckIntervalSeconds=15
    )["TargetGroups"]
    assert changed["HealthCheckPath"] == "/ready"
    assert changed["HealthCheckIntervalSeconds"] == 15
    assert changed["HealthCheckPort"] == "8081"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="no-slash")
    assert error_code(e) == "ValidationError"


def test_target_group_errors(elbv2, network):
    tg = make_tg(elbv2, network)
    with pytest.raises(elbv2.exceptions.DuplicateTargetGroupNameException):
        elbv2.create_target_group(Name=tg["TargetGroupName"], Protocol="TCP", Port=1, VpcId=network["vpc"])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_groups(TargetGroupArns=[NOT_THERE_TG])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_groups(Names=[lb_name("not-there")])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.modify_target_group(TargetGroupArn=NOT_THERE_TG, HealthCheckPath="/")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.create_target_group(Name=lb_name("tg"), Protocol="HTTP", Port=70000, VpcId=network["vpc"])
    assert error_code(e) == "ValidationError"
    elbv2.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])


# --------------------------------------------------------------------------
# Listeners


def test_http_listener_and_duplicate_port(elbv2, alb, http_tg):
    listener = make_listener(elbv2, alb, http_tg)
    assert re.fullmatch(
        rf"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT_ID}:listener/app/{alb['LoadBalancerName']}/[0-9a-f]{{16}}/[0-9a-f]{{16}}",
        listener["ListenerArn"],
    )
    assert listener["LoadBalancerArn"] == alb["LoadBalancerArn"]
    assert listener["Protocol"] == "HTTP"
    assert 20000 <= listener["Port"] <= 29999
    assert "Certificates" not in listener and "SslPolicy" not in listener
    [action] = listener["DefaultActions"]
    assert action["Type"] == "forward"
    assert action["TargetGroupArn"] == http_tg["TargetGroupArn"]
    assert action["ForwardConfig"]["TargetGroups"] == [{"TargetGroupArn": http_tg["TargetGroupArn"], "Weight": 1}]

    [same] = elbv2.describe_listeners(ListenerArns=[listener["ListenerArn"]])["Listeners"]
    assert same == listener
    assert elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"] == [listener]
    # The group now belongs to the load balancer.
    [tg] = elbv2.describe_target_groups(TargetGroupArns=[http_tg["TargetGroupArn"]])["TargetGroups"]
    assert tg["LoadBalancerArns"] == [alb["LoadBalancerArn"]]
    [tg] = elbv2.describe_target_groups(LoadBalancerArn=alb["LoadBalancerArn"])["TargetGroups"]
    assert tg["TargetGroupArn"] == http_tg["TargetGroupArn"]

    with pytest.raises(elbv2.exceptions.DuplicateListenerException):
        elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=listener["Port"],
            DefaultActions=forward(http_tg["TargetGroupArn"]),
        )
    # A group in use cannot be deleted.
    with pytest.raises(elbv2.exceptions.ResourceInUseException):
        elbv2.delete_target_group(TargetGroupArn=http_tg["TargetGroupArn"])

    elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    with pytest.raises(elbv2.exceptions.ListenerNotFoundException):
        elbv2.describe_listeners(ListenerArns=[listener["ListenerArn"]])
    elbv2.delete_target_group(TargetGroupArn=http_tg["TargetGroupArn"])


def test_https_listener_with_certificates(elbv2, alb, http_tg):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.create_listener(
            LoadBalancerArn=alb["LoadBalancerArn"],
            Protocol="HTTPS",
            Port=free_port(),
            DefaultActions=forward(http_tg["TargetGroupArn"]),
        )
    assert error_code(e) == "ValidationError"
    assert error_message(e) == "A certificate must be specified for HTTPS listeners"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        make_listener(elbv2, alb, http_tg, "HTTP", Certificates=[{"CertificateArn": CERT}])
    assert error_code(e) == "ValidationError"
    with pytest.raises(elbv2.exceptions.SSLPolicyNotFoundException):
        make_listener(elbv2, alb, http_tg, "HTTPS", Certificates=[{"CertificateArn": CERT}], SslPolicy="NoSuchPolicy")

    listener = make_listener(elbv2, alb, http_tg, "HTTPS", Certificates=[{"CertificateArn": CERT}])
    assert listener["Protocol"] == "HTTPS"
    assert listener["Certificates"] == [{"CertificateArn": CERT}]
    assert listener["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    [same] = elbv2.describe_listeners(ListenerArns=[listener["ListenerArn"]])["Listeners"]
    assert same == listener

    arn = listener["ListenerArn"]
    assert elbv2.describe_listener_certificates(ListenerArn=arn)["Certificates"] == [
        {"CertificateArn": CERT, "IsDefault": True}
    ]
    added = elbv2.add_listener_certificates(
        ListenerArn=arn, Certificates=[{"CertificateArn": CERT2}, {"CertificateArn": CERT3}]
    )["Certificates"]
    assert added == [{"CertificateArn": CERT2, "IsDefault": False}, {"CertificateArn": CERT3, "IsDefault": False}]
    assert elbv2.describe_listener_certificates(ListenerArn=arn)["Certificates"] == [
        {"CertificateArn": CERT, "IsDefault": True},
        {"CertificateArn": CERT2, "IsDefault": False},
        {"CertificateArn": CERT3, "IsDefault": False},
    ]
    elbv2.remove_listener_certificates(ListenerArn=arn, Certificates=[{"CertificateArn": CERT2}])
    assert [c["CertificateArn"] for c in elbv2.describe_listener_certificates(ListenerArn=arn)["Certificates"]] == [
        CERT,
        CERT3,
    ]
    with pytest.raises(elbv2.exceptions.OperationNotPermittedException):
        elbv2.remove_listener_certificates(ListenerArn=arn, Certificates=[{"CertificateArn": CERT}])
    # DescribeListeners still names only the default certificate.
    [same] = elbv2.describe_listeners(ListenerArns=[arn])["Listeners"]
    assert same["Certificates"] == [{"CertificateArn": CERT}]

    # A new default certificate and policy; the additional certificate stays.
    [changed] = elbv2.modify_listener(
        ListenerArn=arn,
        Certificates=[{"CertificateArn": CERT2}],
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
    )["Listeners"]
    assert changed["Certificates"] == [{"CertificateArn": CERT2}]
    assert changed["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert elbv2.describe_listener_certificates(ListenerArn=arn)["Certificates"] == [
        {"CertificateArn": CERT2, "IsDefault": True},
        {"CertificateArn": CERT3, "IsDefault": False},
    ]
    # Back to HTTP: no certificates, no policy.
    [plain] = elbv2.modify_listener(ListenerArn=arn, Protocol="HTTP")["Listeners"]
    assert plain["Protocol"] == "HTTP"
    assert "Certificates" not in plain and "SslPolicy" not in plain


def test_modify_listener(elbv2, alb, network):
    tg1 = make_tg(elbv2, network)
    tg2 = make_tg(elbv2, network)
    first = make_listener(elbv2, alb, tg1)
    second = make_listener(elbv2, alb, tg1)
    with pytest.raises(elbv2.exceptions.DuplicateListenerException):
        elbv2.modify_listener(ListenerArn=second["ListenerArn"], Port=first["Port"])
    new_port = free_port()
    while new_port in (first["Port"], second["Port"]):
        new_port = free_port()
    [changed] = elbv2.modify_listener(
        ListenerArn=second["ListenerArn"],
        Port=new_port,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "down"},
            }
        ],
    )["Listeners"]
    assert changed["Port"] == new_port
    assert changed["DefaultActions"] == [
        {
            "Type": "fixed-response",
            "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain", "MessageBody": "down"},
        }
    ]
    [changed] = elbv2.modify_listener(ListenerArn=first["ListenerArn"], DefaultActions=forward(tg2["TargetGroupArn"]))[
        "Listeners"
    ]
    assert changed["DefaultActions"][0]["TargetGroupArn"] == tg2["TargetGroupArn"]
    assert changed["Port"] == first["Port"]
    # tg1 is no longer used by anything.
    elbv2.delete_target_group(TargetGroupArn=tg1["TargetGroupArn"])
    with pytest.raises(elbv2.exceptions.ListenerNotFoundException):
        elbv2.modify_listener(ListenerArn=NOT_THERE_LISTENER, Port=new_port)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.modify_listener(ListenerArn=first["ListenerArn"], Protocol="HTTPS")
    assert error_code(e) == "ValidationError"


@pytest.mark.parametrize("protocol", ["TCP", "UDP", "TCP_UDP", "TLS"])
def test_network_listeners(elbv2, network, protocol):
    nlb = make_lb(elbv2, network, "network")
    tg_protocol = "TCP" if protocol == "TLS" else protocol
    tg = make_tg(elbv2, network, tg_protocol)
    extra = {"Certificates": [{"CertificateArn": CERT}]} if protocol == "TLS" else {}
    listener = make_listener(elbv2, nlb, tg, protocol, **extra)
    assert listener["Protocol"] == protocol
    assert ":listener/net/" in listener["ListenerArn"]
    if protocol == "TLS":
        assert listener["Certificates"] == [{"CertificateArn": CERT}]
        assert listener["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    else:
        assert "Certificates" not in listener
    # Network load balancers take no HTTP listener, and no HTTP group.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        make_listener(elbv2, nlb, tg, "HTTP")
    assert error_code(e) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        make_listener(elbv2, nlb, make_tg(elbv2, network, "HTTP"), protocol, **extra)
    assert error_code(e) in ("InvalidConfigurationRequest", "IncompatibleProtocols")


def test_tls_listener_needs_a_certificate(elbv2, network):
    nlb = make_lb(elbv2, network, "network")
    tg = make_tg(elbv2, network, "TCP")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        make_listener(elbv2, nlb, tg, "TLS")
    assert error_code(e) == "ValidationError"
    assert error_message(e) == "A certificate must be specified for TLS listeners"


# --------------------------------------------------------------------------
# Rules


CONDITIONS = [
    {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}},
    {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}},
    {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue", "green"]}},
    {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET", "HEAD"]}},
    {"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}, {"Value": "debug"}]}},
    {"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8", "192.168.1.1/32"]}},
]


@pytest.fixture
def alb_listener(elbv2, alb, http_tg):
    return make_listener(elbv2, alb, http_tg)


@pytest.mark.parametrize("condition", CONDITIONS, ids=[c["Field"] for c in CONDITIONS])
def test_rule_condition_round_trips(elbv2, alb_listener, http_tg, condition):
    [rule] = elbv2.create_rule(
        ListenerArn=alb_listener["ListenerArn"],
        Priority=10,
        Conditions=[condition],
        Actions=forward(http_tg["TargetGroupArn"]),
    )["Rules"]
    assert ":listener-rule/app/" in rule["RuleArn"]
    assert rule["Priority"] == "10"
    assert rule["IsDefault"] is False
    [got] = rule["Conditions"]
    for key, value in condition.items():
        assert got[key] == value, (key, got)
    if condition["Field"] in ("path-pattern", "host-header"):
        # ELB also answers these in the legacy Values.
        assert got["Values"] == condition[next(k for k in condition if k.endswith("Config"))]["Values"]
    [same] = elbv2.describe_rules(RuleArns=[rule["RuleArn"]])["Rules"]
    assert same == rule


def test_rule_actions_priorities_and_default_rule(elbv2, alb, network):
    tg1 = make_tg(elbv2, network)
    tg2 = make_tg(elbv2, network)
    listener = make_listener(elbv2, alb, tg1)
    larn = listener["ListenerArn"]
    weighted = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": tg1["TargetGroupArn"], "Weight": 80},
                {"TargetGroupArn": tg2["TargetGroupArn"], "Weight": 20},
            ],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 3600},
        },
    }
    [r1] = elbv2.create_rule(
        ListenerArn=larn, Priority=5, Conditions=[CONDITIONS[0]], Actions=[weighted]
    )["Rules"]
    [action] = r1["Actions"]
    assert action["Type"] == "forward"
    assert action["ForwardConfig"] == weighted["ForwardConfig"]

    fixed = {
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "404", "ContentType": "application/json", "MessageBody": "{}"},
    }
    [r2] = elbv2.create_rule(ListenerArn=larn, Priority=7, Conditions=[CONDITIONS[1]], Actions=[fixed])["Rules"]
    assert r2["Actions"] == [fixed]

    redirect = {
        "Type": "redirect",
        "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
    }
    [r3] = elbv2.create_rule(ListenerArn=larn, Priority=9, Conditions=[CONDITIONS[3]], Actions=[redirect])["Rules"]
    assert r3["Actions"] == [
        {
            "Type": "redirect",
            "RedirectConfig": {
                "Protocol": "HTTPS",
                "Port": "443",
                "Host": "#{host}",
                "Path": "/#{path}",
                "Query": "#{query}",
                "StatusCode": "HTTP_301",
            },
        }
    ]

    with pytest.raises(elbv2.exceptions.PriorityInUseException):
        elbv2.create_rule(ListenerArn=larn, Priority=5, Conditions=[CONDITIONS[2]], Actions=[fixed])

    rules = elbv2.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["Priority"] for r in rules] == ["5", "7", "9", "default"]
    default = rules[-1]
    assert default["IsDefault"] is True
    assert default["Conditions"] == []
    assert default["Actions"][0]["TargetGroupArn"] == tg1["TargetGroupArn"]

    # Swap two priorities in one call.
    changed = elbv2.set_rule_priorities(
        RulePriorities=[{"RuleArn": r1["RuleArn"], "Priority": 7}, {"RuleArn": r2["RuleArn"], "Priority": 5}]
    )["Rules"]
    assert {r["RuleArn"]: r["Priority"] for r in changed} == {r1["RuleArn"]: "7", r2["RuleArn"]: "5"}
    with pytest.raises(elbv2.exceptions.PriorityInUseException):
        elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": r3["RuleArn"], "Priority": 5}])
    rules = elbv2.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["RuleArn"] for r in rules[:3]] == [r2["RuleArn"], r1["RuleArn"], r3["RuleArn"]]

    # ModifyRule: new conditions and actions.
    [modified] = elbv2.modify_rule(RuleArn=r3["RuleArn"], Conditions=[CONDITIONS[5]], Actions=[fixed])["Rules"]
    assert modified["Conditions"] == [CONDITIONS[5]]
    assert modified["Actions"] == [fixed]
    assert modified["Priority"] == "9"
    [only_actions] = elbv2.modify_rule(RuleArn=r3["RuleArn"], Actions=forward(tg2["TargetGroupArn"]))["Rules"]
    assert only_actions["Conditions"] == [CONDITIONS[5]]
    assert only_actions["Actions"][0]["TargetGroupArn"] == tg2["TargetGroupArn"]
    with pytest.raises(elbv2.exceptions.RuleNotFoundException):
        elbv2.modify_rule(RuleArn=NOT_THERE_RULE, Actions=[fixed])

    # The default rule cannot be deleted; others can.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.delete_rule(RuleArn=default["RuleArn"])
    assert error_code(e) in ("OperationNotPermitted", "InvalidConfigurationRequest")
    elbv2.delete_rule(RuleArn=r3["RuleArn"])
    with pytest.raises(elbv2.exceptions.RuleNotFoundException):
        elbv2.describe_rules(RuleArns=[r3["RuleArn"]])
    with pytest.raises(elbv2.exceptions.RuleNotFoundException):
        elbv2.delete_rule(RuleArn=r3["RuleArn"])
    with pytest.raises(elbv2.exceptions.ListenerNotFoundException):
        elbv2.describe_rules(ListenerArn=NOT_THERE_LISTENER)


def test_rule_validation(berth, elbv2, alb_listener, http_tg):
    larn = alb_listener["ListenerArn"]
    # botocore refuses priority 0 itself; on the wire it is a ValidationError.
    resp = elbv2_raw(
        berth,
        {
            "Action": "CreateRule",
            "ListenerArn": larn,
            "Priority": "0",
            "Conditions.member.1.Field": "path-pattern",
            "Conditions.member.1.Values.member.1": "/x",
            "Actions.member.1.Type": "forward",
            "Actions.member.1.TargetGroupArn": http_tg["TargetGroupArn"],
        },
    )
    assert resp.status == 400
    assert ET.fromstring(resp.body).find("{*}Error/{*}Code").text == "ValidationError"
    for bad in (
        dict(Priority=50001, Conditions=[CONDITIONS[0]], Actions=forward(http_tg["TargetGroupArn"])),
        dict(Priority=3, Conditions=[], Actions=forward(http_tg["TargetGroupArn"])),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            elbv2.create_rule(ListenerArn=larn, **bad)
        assert error_code(e) == "ValidationError", bad
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.create_rule(ListenerArn=larn, Priority=3, Conditions=[CONDITIONS[0]], Actions=forward(NOT_THERE_TG))
    with pytest.raises(elbv2.exceptions.ListenerNotFoundException):
        elbv2.create_rule(
            ListenerArn=NOT_THERE_LISTENER, Priority=3, Conditions=[CONDITIONS[0]], Actions=forward(http_tg["TargetGroupArn"])
        )


# --------------------------------------------------------------------------
# Targets


def test_register_deregister_and_health_shape(elbv2, network):
    tg = make_tg(elbv2, network, "HTTP", TargetType="ip", Port=8080)
    arn = tg["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1"}, {"Id": "10.0.0.2", "Port": 9090}])
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    got = {(h["Target"]["Id"], h["Target"]["Port"]): h for h in health}
    assert set(got) == {("10.0.0.1", 8080), ("10.0.0.2", 9090)}
    for (_, port), h in got.items():
        assert h["HealthCheckPort"] == str(port)
        # No listener forwards to the group yet.
        assert h["TargetHealth"]["State"] == "unused"
        assert h["TargetHealth"]["Reason"] == "Target.NotInUse"
        assert h["TargetHealth"]["Description"]

    # Once in use, a target awaits its first checks.
    lb = make_lb(elbv2, network)
    make_listener(elbv2, lb, tg)
    health = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1"}])["TargetHealthDescriptions"]
    [h] = health
    assert h["Target"] == {"Id": "10.0.0.1", "Port": 8080}
    assert h["TargetHealth"]["State"] in ("initial", "healthy", "unhealthy")

    # Not registered.
    [h] = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.9"}])["TargetHealthDescriptions"]
    assert h["TargetHealth"]["State"] == "unused"
    assert h["TargetHealth"]["Reason"] == "Target.NotRegistered"

    # Deregistering a target of a group in use drains it first (300 s by default).
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.2", "Port": 9090}])
    states = {
        h["Target"]["Id"]: h["TargetHealth"]["State"]
        for h in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    }
    assert states.get("10.0.0.2") in (None, "draining")

    with pytest.raises(elbv2.exceptions.InvalidTargetException):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.register_targets(TargetGroupArn=NOT_THERE_TG, Targets=[{"Id": "10.0.0.1"}])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_health(TargetGroupArn=NOT_THERE_TG)


def test_instance_targets(elbv2, network):
    tg = make_tg(elbv2, network, "TCP", Port=7000)
    arn = tg["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}])
    [h] = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert h["Target"]["Id"] == "i-0123456789abcdef0"
    assert h["Target"]["Port"] == 7000
    with pytest.raises(elbv2.exceptions.InvalidTargetException):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.0.1"}])
    elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "i-0123456789abcdef0"}])
    assert elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"] == []


# --------------------------------------------------------------------------
# Attributes


def attrs(result) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in result["Attributes"]}


def test_target_group_attributes(elbv2, network):
    tg = make_tg(elbv2, network)
    arn = tg["TargetGroupArn"]
    got = attrs(elbv2.describe_target_group_attributes(TargetGroupArn=arn))
    assert got["deregistration_delay.timeout_seconds"] == "300"
    assert got["stickiness.enabled"] == "false"
    assert got["stickiness.type"] == "lb_cookie"
    assert got["slow_start.duration_seconds"] == "0"
    assert got["load_balancing.algorithm.type"] == "round_robin"
    changes = {
        "deregistration_delay.timeout_seconds": "5",
        "slow_start.duration_seconds": "30",
        "stickiness.enabled": "true",
        "stickiness.type": "app_cookie",
        "stickiness.lb_cookie.duration_seconds": "60",
        "stickiness.app_cookie.cookie_name": "SESSION",
        "stickiness.app_cookie.duration_seconds": "120",
        "load_balancing.algorithm.type": "least_outstanding_requests",
    }
    answered = attrs(
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": k, "Value": v} for k, v in changes.items()]
        )
    )
    for k, v in changes.items():
        assert answered[k] == v, k
    assert attrs(elbv2.describe_target_group_attributes(TargetGroupArn=arn)) == answered

    for key, value in (
        ("no.such.key", "1"),
        ("stickiness.type", "source_ip"),
        ("load_balancing.algorithm.type", "random"),
        ("deregistration_delay.timeout_seconds", "99999"),
        ("stickiness.app_cookie.cookie_name", "AWSALBAPP"),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[{"Key": key, "Value": value}])
        assert error_code(e) == "ValidationError", key
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.describe_target_group_attributes(TargetGroupArn=NOT_THERE_TG)


def test_load_balancer_attributes(elbv2, alb):
    arn = alb["LoadBalancerArn"]
    got = attrs(elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn))
    assert got["idle_timeout.timeout_seconds"] == "60"
    assert got["routing.http2.enabled"] == "true"
    assert got["deletion_protection.enabled"] == "false"
    answered = attrs(
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn,
            Attributes=[
                {"Key": "idle_timeout.timeout_seconds", "Value": "120"},
                {"Key": "routing.http2.enabled", "Value": "false"},
            ],
        )
    )
    assert answered["idle_timeout.timeout_seconds"] == "120"
    assert answered["routing.http2.enabled"] == "false"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "bogus", "Value": "1"}])
    assert error_code(e) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "0"}]
        )
    assert error_code(e) == "ValidationError"
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancer_attributes(LoadBalancerArn=NOT_THERE_LB)


# --------------------------------------------------------------------------
# Tags


def test_tags(elbv2, alb, http_tg):
    lb_arn, tg_arn = alb["LoadBalancerArn"], http_tg["TargetGroupArn"]
    elbv2.add_tags(ResourceArns=[lb_arn, tg_arn], Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "a"}])
    described = elbv2.describe_tags(ResourceArns=[lb_arn, tg_arn])["TagDescriptions"]
    assert [d["ResourceArn"] for d in described] == [lb_arn, tg_arn]
    for d in described:
        assert {t["Key"]: t["Value"] for t in d["Tags"]} == {"env": "prod", "team": "a"}
    elbv2.add_tags(ResourceArns=[lb_arn], Tags=[{"Key": "env", "Value": "dev"}])
    elbv2.remove_tags(ResourceArns=[lb_arn], TagKeys=["team"])
    [d] = elbv2.describe_tags(ResourceArns=[lb_arn])["TagDescriptions"]
    assert d["Tags"] == [{"Key": "env", "Value": "dev"}]

    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_tags(ResourceArns=[NOT_THERE_LB])
    with pytest.raises(elbv2.exceptions.TargetGroupNotFoundException):
        elbv2.add_tags(ResourceArns=[NOT_THERE_TG], Tags=[{"Key": "a", "Value": "b"}])
    with pytest.raises(elbv2.exceptions.TooManyTagsException):
        elbv2.add_tags(ResourceArns=[tg_arn], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])


def test_listener_tags_are_empty(elbv2, alb, http_tg):
    listener = make_listener(elbv2, alb, http_tg)
    [d] = elbv2.describe_tags(ResourceArns=[listener["ListenerArn"]])["TagDescriptions"]
    assert d == {"ResourceArn": listener["ListenerArn"], "Tags": []}
    elbv2.remove_tags(ResourceArns=[listener["ListenerArn"]], TagKeys=["x"])
    with pytest.raises(elbv2.exceptions.ListenerNotFoundException):
        elbv2.describe_tags(ResourceArns=[NOT_THERE_LISTENER])


def test_tags_at_creation(elbv2, network):
    lb = make_lb(elbv2, network, Tags=[{"Key": "made", "Value": "at-creation"}])
    tg = make_tg(elbv2, network, Tags=[{"Key": "made", "Value": "too"}])
    described = elbv2.describe_tags(ResourceArns=[lb["LoadBalancerArn"], tg["TargetGroupArn"]])["TagDescriptions"]
    assert [d["Tags"] for d in described] == [[{"Key": "made", "Value": "at-creation"}], [{"Key": "made", "Value": "too"}]]


# --------------------------------------------------------------------------
# Pagination


def test_page_size_and_marker(elbv2, network):
    names = sorted(lb_name("page") for _ in range(5))
    arns = [make_tg(elbv2, network, Port=8000)["TargetGroupArn"] for _ in names]
    got_arns = [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups(TargetGroupArns=arns)["TargetGroups"]]
    assert sorted(got_arns) == sorted(arns)

    pages, marker = [], None
    while True:
        kwargs = {"TargetGroupArns": arns, "PageSize": 2}
        if marker:
            kwargs["Marker"] = marker
        result = elbv2.describe_target_groups(**kwargs)
        pages.append([tg["TargetGroupArn"] for tg in result["TargetGroups"]])
        marker = result.get("NextMarker")
        if not marker:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(sum(pages, [])) == sorted(arns)

    with pytest.raises(botocore.exceptions.ClientError) as e:
        elbv2.describe_target_groups(PageSize=401)
    assert error_code(e) == "ValidationError"


def test_boto3_paginators(elbv2, network):
    tgs = [make_tg(elbv2, network)["TargetGroupArn"] for _ in range(3)]
    lbs = [make_lb(elbv2, network)["LoadBalancerArn"] for _ in range(3)]
    seen_tgs = [
        tg["TargetGroupArn"]
        for page in elbv2.get_paginator("describe_target_groups").paginate(PaginationConfig={"PageSize": 2})
        for tg in page["TargetGroups"]
    ]
    assert len(seen_tgs) == len(set(seen_tgs))
    assert set(tgs) <= set(seen_tgs)
    seen_lbs = [
        lb["LoadBalancerArn"]
        for page in elbv2.get_paginator("describe_load_balancers").paginate(PaginationConfig={"PageSize": 2})
        for lb in page["LoadBalancers"]
    ]
    assert len(seen_lbs) == len(set(seen_lbs))
    assert set(lbs) <= set(seen_lbs)

    lb = {"LoadBalancerArn": lbs[0]}
    tg = {"TargetGroupArn": tgs[0]}
    made = [make_listener(elbv2, lb, tg)["ListenerArn"] for _ in range(3)]
    listed = [
        listener["ListenerArn"]
        for page in elbv2.get_paginator("describe_listeners").paginate(
            LoadBalancerArn=lbs[0], PaginationConfig={"PageSize": 1}
        )
        for listener in page["Listeners"]
    ]
    assert sorted(listed) == sorted(made)


# --------------------------------------------------------------------------
# Errors on the wire


def test_not_found_codes(elbv2):
    cases = [
        (lambda: elbv2.describe_listeners(ListenerArns=[NOT_THERE_LISTENER]), "ListenerNotFound"),
        (lambda: elbv2.describe_listeners(LoadBalancerArn=NOT_THERE_LB), "LoadBalancerNotFound"),
        (lambda: elbv2.delete_listener(ListenerArn=NOT_THERE_LISTENER), "ListenerNotFound"),
        (lambda: elbv2.describe_rules(RuleArns=[NOT_THERE_RULE]), "RuleNotFound"),
        (lambda: elbv2.delete_rule(RuleArn=NOT_THERE_RULE), "RuleNotFound"),
        (lambda: elbv2.describe_listener_certificates(ListenerArn=NOT_THERE_LISTENER), "ListenerNotFound"),
        (
            lambda: elbv2.create_listener(
                LoadBalancerArn=NOT_THERE_LB, Protocol="HTTP", Port=free_port(), DefaultActions=forward(NOT_THERE_TG)
            ),
            "LoadBalancerNotFound",
        ),
    ]
    for call, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e) == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_error_document_on_the_wire(berth):
    resp = elbv2_raw(berth, {"Action": "DescribeLoadBalancers", "LoadBalancerArns.member.1": NOT_THERE_LB})
    assert resp.status == 400
    assert resp.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(resp.body)
    assert root.tag == f"{ELB_NS}ErrorResponse"
    error = root.find("{*}Error")
    assert error.find("{*}Type").text == "Sender"
    assert error.find("{*}Code").text == "LoadBalancerNotFound"
    assert root.find("{*}RequestId").text == resp.headers["x-amzn-requestid"]

    ok = elbv2_raw(berth, {"Action": "DescribeLoadBalancers"})
    assert ok.status == 200
    root = ET.fromstring(ok.body)
    assert root.tag == f"{ELB_NS}DescribeLoadBalancersResponse"
    assert root.find(f"{ELB_NS}ResponseMetadata/{ELB_NS}RequestId").text == ok.headers["x-amzn-requestid"]

    bad = elbv2_raw(berth, {"Action": "NoSuchAction"})
    assert bad.status == 400
    assert ET.fromstring(bad.body).find("{*}Error/{*}Code").text == "InvalidAction"


def test_instance_credentials_are_denied(berth):
    minted = raw_request(
        berth,
        None,
        {"name": unique("elbv2-denied")},
        path="/agent/v1/credentials",
        content_type="application/json",
    ).json()
    client = berth.client(
        "elbv2",
        aws_access_key_id=minted["accessKeyId"],
        aws_secret_access_key=minted["secretAccessKey"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client.describe_load_balancers()
    assert error_code(e) == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "elasticloadbalancing:DescribeLoadBalancers" in error_message(e)


# --------------------------------------------------------------------------
# The aws CLI


def test_cli_parses_every_describe(aws, elbv2, network):
    lb = make_lb(elbv2, network)
    tg = make_tg(elbv2, network)
    listener = make_listener(elbv2, lb, tg, "HTTPS", Certificates=[{"CertificateArn": CERT}])
    elbv2.create_rule(
        ListenerArn=listener["ListenerArn"], Priority=1, Conditions=CONDITIONS, Actions=forward(tg["TargetGroupArn"])
    )
    elbv2.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0"}])

    out = aws("elbv2", "describe-load-balancers", "--names", lb["LoadBalancerName"])
    assert out["LoadBalancers"][0]["LoadBalancerArn"] == lb["LoadBalancerArn"]
    assert out["LoadBalancers"][0]["State"] == {"Code": "active"}
    out = aws("elbv2", "describe-target-groups", "--target-group-arns", tg["TargetGroupArn"])
    assert out["TargetGroups"][0]["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    out = aws("elbv2", "describe-listeners", "--load-balancer-arn", lb["LoadBalancerArn"])
    assert out["Listeners"][0]["Certificates"] == [{"CertificateArn": CERT}]
    out = aws("elbv2", "describe-listener-certificates", "--listener-arn", listener["ListenerArn"])
    assert out["Certificates"] == [{"CertificateArn": CERT, "IsDefault": True}]
    out = aws("elbv2", "describe-rules", "--listener-arn", listener["ListenerArn"])
    assert [r["Priority"] for r in out["Rules"]] == ["1", "default"]
    assert len(out["Rules"][0]["Conditions"]) == len(CONDITIONS)
    out = aws("elbv2", "describe-target-health", "--target-group-arn", tg["TargetGroupArn"])
    assert out["TargetHealthDescriptions"][0]["Target"]["Id"] == "i-0123456789abcdef0"
    out = aws("elbv2", "describe-target-group-attributes", "--target-group-arn", tg["TargetGroupArn"])
    assert any(a["Key"] == "deregistration_delay.timeout_seconds" for a in out["Attributes"])
    out = aws("elbv2", "describe-load-balancer-attributes", "--load-balancer-arn", lb["LoadBalancerArn"])
    assert any(a["Key"] == "idle_timeout.timeout_seconds" for a in out["Attributes"])
    out = aws("elbv2", "describe-tags", "--resource-arns", lb["LoadBalancerArn"])
    assert out["TagDescriptions"][0]["ResourceArn"] == lb["LoadBalancerArn"]
    aws("elbv2", "wait", "load-balancer-available", "--load-balancer-arns", lb["LoadBalancerArn"])

    code, stderr = aws.error("elbv2", "describe-load-balancers", "--load-balancer-arns", NOT_THERE_LB)
    assert code != 0 and "LoadBalancerNotFound" in stderr


def test_cli_creates_and_deletes(aws, network):
    name = lb_name("cli")
    out = aws("elbv2", "create-load-balancer", "--name", name, "--subnets", *network["subnets"])
    lb_arn = out["LoadBalancers"][0]["LoadBalancerArn"]
    tg_name = lb_name("clitg")
    out = aws(
        "elbv2", "create-target-group", "--name", tg_name, "--protocol", "HTTP", "--port", "80",
        "--vpc-id", network["vpc"], "--target-type", "ip",
    )
    tg_arn = out["TargetGroups"][0]["TargetGroupArn"]
    out = aws(
        "elbv2", "create-listener", "--load-balancer-arn", lb_arn, "--protocol", "HTTP",
        "--port", str(free_port()), "--default-actions", json.dumps(forward(tg_arn)),
    )
    listener_arn = out["Listeners"][0]["ListenerArn"]
    code, stderr = aws.error("elbv2", "delete-target-group", "--target-group-arn", tg_arn)
    assert "ResourceInUse" in stderr
    aws("elbv2", "delete-listener", "--listener-arn", listener_arn)
    aws("elbv2", "delete-target-group", "--target-group-arn", tg_arn)
    aws("elbv2", "delete-load-balancer", "--load-balancer-arn", lb_arn)
    aws("elbv2", "wait", "load-balancers-deleted", "--load-balancer-arns", lb_arn)


# --------------------------------------------------------------------------
# Every element answered is in botocore's model (see conftest.watch_against_model).


def test_every_answered_element_is_in_the_model(elbv2, berth, network):
    client = berth.client("elbv2")
    problems, seen = watch_against_model(
        client, ELB_NS, service="ELBv2", maps=False, timestamps=None, empty_result_ok=True
    )

    lb = make_lb(client, network, Tags=[{"Key": "k", "Value": "v"}])
    nlb = make_lb(client, network, "network")
    tg = make_tg(client, network, "HTTP", Matcher={"HttpCode": "200"})
    tcp = make_tg(client, network, "TCP")
    listener = make_listener(client, lb, tg, "HTTPS", Certificates=[{"CertificateArn": CERT}])
    make_listener(client, nlb, tcp, "TLS", Certificates=[{"CertificateArn": CERT}])
    weighted = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": tg["TargetGroupArn"], "Weight": 3}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60},
        },
    }
    [rule] = client.create_rule(
        ListenerArn=listener["ListenerArn"], Priority=3, Conditions=CONDITIONS, Actions=[weighted]
    )["Rules"]
    client.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=4,
        Conditions=[CONDITIONS[0]],
        Actions=[{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_302", "Host": "example.com"}}],
    )
    client.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=5,
        Conditions=[CONDITIONS[1]],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}],
    )
    client.modify_rule(RuleArn=rule["RuleArn"], Conditions=[CONDITIONS[4]])
    client.set_rule_priorities(RulePriorities=[{"RuleArn": rule["RuleArn"], "Priority": 6}])
    client.modify_listener(ListenerArn=listener["ListenerArn"], SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06")
    client.add_listener_certificates(ListenerArn=listener["ListenerArn"], Certificates=[{"CertificateArn": CERT2}])
    client.describe_listener_certificates(ListenerArn=listener["ListenerArn"])
    client.remove_listener_certificates(ListenerArn=listener["ListenerArn"], Certificates=[{"CertificateArn": CERT2}])
    client.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0"}])
    client.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
    client.deregister_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0"}])
    client.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"], nlb["LoadBalancerArn"]])
    client.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"], tcp["TargetGroupArn"]])
    client.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])
    client.describe_rules(ListenerArn=listener["ListenerArn"])
    client.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckPath="/x")
    client.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])
    client.modify_target_group_attributes(
        TargetGroupArn=tg["TargetGroupArn"], Attributes=[{"Key": "stickiness.enabled", "Value": "true"}]
    )
    client.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])
    client.modify_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "30"}]
    )
    client.add_tags(ResourceArns=[tg["TargetGroupArn"]], Tags=[{"Key": "a", "Value": "b"}])
    client.describe_tags(ResourceArns=[lb["LoadBalancerArn"], tg["TargetGroupArn"], rule["RuleArn"]])
    client.remove_tags(ResourceArns=[tg["TargetGroupArn"]], TagKeys=["a"])
    client.delete_rule(RuleArn=rule["RuleArn"])
    client.delete_listener(ListenerArn=listener["ListenerArn"])
    client.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    client.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])

    assert len(set(seen)) >= 29, sorted(set(seen))
    assert problems == []

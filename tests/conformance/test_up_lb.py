"""Load balancers wired to ECS services on `berth up`, with real containers
and real traffic: the ELBv2 API (boto3's `elbv2` client and the aws CLI at
the ECS endpoint) and the data plane that `berth up` runs beside it.

This module gets its own `berth up` from the fixtures of test_up_tasks.py
(own data dir, bridge, cgroup prefix and /24), started with
`--lb-bind 127.0.0.1` so every listener listens on loopback only. Its image
is that module's busybox image plus `/bin/udpecho`, a tiny static UDP echo
server compiled here with the C compiler cargo links with (busybox's nc
cannot do UDP).

Every container is busybox httpd on port 8080 serving files its command
writes before starting it: `/index.html` and `/api/x` say
"<ROLE> <VERSION> <random id of this task>", `/health` says ok (and is
removed after $UNHEALTHY_AFTER seconds when that is set),
`/cgi-bin/slow` answers the same line after $SLOW_S seconds and
`/cgi-bin/env` shows the CGI environment (the request's headers). The id tells
which task answered a request that went through a load balancer; each
task's id is read straight from its own port to map ids to tasks.

Only the first test uses bridge mode (targets of type instance: the
container instance's ec2InstanceId and the task's host port, which the
load balancer reaches at 127.0.0.1); the others run awsvpc tasks (targets
of type ip: the task's own address on this `berth up`'s own /24). Each
`berth up` also has its own block of dynamic host ports (the fixture's
`--dynamic-host-port-range`), so bridge-mode traffic to 127.0.0.1:PORT
reaches this module's container, never another's. Task addresses do not
collide either.

Listener ports are free loopback ports picked per test; every name is
unique; target groups have fast health checks (interval 5 s, thresholds 2)
and short deregistration delays. Each test deletes its services (--force,
waiting for INACTIVE) and then its load balancers and target groups.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import botocore.exceptions
import pytest

from conftest import unique, wait_until
from test_up_services import (  # noqa: F401  (services is a fixture)
    _service,
    _service_tasks,
    _summary,
    _wait,
    services,
)
from test_up_tasks import (  # noqa: F401  (berth, ecs and aws are fixtures)
    CLUSTER,
    IMAGE_REF,
    TASK_TIMEOUT_S,
    _describe,
    _http_get,
    _the_instance,
    aws,
    berth,
    build_oci_archive,
    ecs,
)

# Read by test_up_tasks.py's `berth` fixture.
BERTH_UP_ARGS = ("--lb-bind", "127.0.0.1")

# Target groups: a target turns healthy after two checks 5 s apart.
HEALTH_CHECK = {
    "HealthCheckIntervalSeconds": 5,
    "HealthCheckTimeoutSeconds": 2,
    "HealthyThresholdCount": 2,
    "UnhealthyThresholdCount": 2,
}
# Waits on health checks and deployments: generous, the machine may be busy.
LB_TIMEOUT_S = 120

UDP_ECHO_C = r"""
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/* udpecho PORT: sends every datagram back to where it came from. */
int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7001;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("udpecho");
        return 1;
    }
    printf("udpecho listening on %d\n", port);
    fflush(stdout);
    static char buf[65536];
    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
        if (n >= 0)
            sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
    }
}
"""


def _compile_udpecho(workdir: Path) -> bytes | None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source = workdir / "udpecho.c"
    binary = workdir / "udpecho"
    source.write_text(UDP_ECHO_C)
    done = subprocess.run([compiler, "-static", "-Os", "-o", str(binary), str(source)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        print(f"cannot build a static udpecho:\n{done.stderr}")
        return None
    return binary.read_bytes()


HAVE_UDPECHO: dict[str, bool] = {}


@pytest.fixture(scope="module")
def image_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Overrides test_up_tasks.py's image: the same busybox image, plus
    /bin/udpecho when a static build is possible."""
    workdir = tmp_path_factory.mktemp("image-lb")
    udpecho = _compile_udpecho(workdir)
    HAVE_UDPECHO["yes"] = udpecho is not None
    path = workdir / "busybox-lb-oci.tar"
    build_oci_archive(path, {"bin/udpecho": udpecho} if udpecho else None)
    return path


# --------------------------------------------------------------------------
# Containers


def _web_container(role: str, version: str = "1", *, unhealthy_after: int | None = None,
                   slow_s: int = 8, memory: int = 32) -> dict[str, Any]:
    """busybox httpd on 8080 serving the files described in the module doc."""
    script = (
        'ID=$(cat /proc/sys/kernel/random/uuid); '
        'busybox mkdir -p /www/api /www/cgi-bin; '
        'echo "$ROLE $VERSION $ID" > /www/index.html; '
        'echo "$ROLE $VERSION $ID" > /www/api/x; '
        'echo ok > /www/health; '
        '{ echo "#!/bin/sh"; echo "echo Content-Type: text/plain"; echo echo; '
        '  echo "sleep $SLOW_S"; echo "cat /www/index.html"; } > /www/cgi-bin/slow; '
        '{ echo "#!/bin/sh"; echo "echo Content-Type: text/plain"; echo echo; echo env; } > /www/cgi-bin/env; '
        'busybox chmod 755 /www/cgi-bin/slow /www/cgi-bin/env; '
        'if [ -n "$UNHEALTHY_AFTER" ]; then (sleep "$UNHEALTHY_AFTER"; busybox rm -f /www/health) & fi; '
        'exec httpd -f -p 8080 -h /www'
    )
    env = [{"name": "ROLE", "value": role}, {"name": "VERSION", "value": version},
           {"name": "SLOW_S", "value": str(slow_s)}]
    if unhealthy_after is not None:
        env.append({"name": "UNHEALTHY_AFTER", "value": str(unhealthy_after)})
    return {
        "name": "web",
        "image": IMAGE_REF,
        "command": ["sh", "-c", script],
        "environment": env,
        "portMappings": [{"containerPort": 8080}],
        "memory": memory,
        "essential": True,
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": 3,
    }


def _register(ecs, family: str, container: dict[str, Any], **kwargs: Any) -> str:
    td = ecs.register_task_definition(family=family, containerDefinitions=[container], **kwargs)
    return td["taskDefinition"]["taskDefinitionArn"]


# --------------------------------------------------------------------------
# ELBv2 resources


def free_port() -> int:
    """A port free on 127.0.0.1 right now (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def elbv2(berth):
    return berth.client("elbv2")


@pytest.fixture(scope="module")
def network(berth) -> dict[str, Any]:
    """The default VPC and its subnets, as a script would find them."""
    ec2 = berth.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"] or ec2.describe_vpcs()["Vpcs"]
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    by_az: dict[str, str] = {}
    for subnet in subnets:
        by_az.setdefault(subnet["AvailabilityZone"], subnet["SubnetId"])
    assert len(by_az) >= 2, f"the default VPC needs subnets in two zones: {subnets}"
    return {"vpc": vpc_id, "subnets": sorted(by_az.values())}


class Elb:
    """Creates load balancers, target groups and listeners for one test and
    deletes them afterwards (load balancers first: that deletes their
    listeners and rules, which frees the target groups)."""

    def __init__(self, elbv2, network: dict[str, Any]):
        self.elbv2 = elbv2
        self.network = network
        self.load_balancers: list[str] = []
        self.target_groups: list[str] = []

    def load_balancer(self, kind: str = "application") -> str:
        lb = self.elbv2.create_load_balancer(
            Name=unique("alb" if kind == "application" else "nlb"), Type=kind, Scheme="internal",
            Subnets=self.network["subnets"],
        )["LoadBalancers"][0]
        self.load_balancers.append(lb["LoadBalancerArn"])
        assert lb["Type"] == kind
        return lb["LoadBalancerArn"]

    def target_group(self, protocol: str = "HTTP", port: int = 8080, *, target_type: str = "instance",
                     health_path: str | None = "/health", health_port: str | None = None,
                     deregistration_delay: int = 3, **health: Any) -> str:
        kwargs: dict[str, Any] = dict(HEALTH_CHECK)
        kwargs.update(health)
        if protocol in ("HTTP", "HTTPS"):
            kwargs.update(HealthCheckProtocol="HTTP", HealthCheckPath=health_path or "/",
                          Matcher={"HttpCode": "200"})
        else:
            kwargs.update(HealthCheckProtocol="TCP")
        if health_port is not None:
            kwargs["HealthCheckPort"] = health_port
        tg = self.elbv2.create_target_group(
            Name=unique("tg"), Protocol=protocol, Port=port, VpcId=self.network["vpc"], TargetType=target_type,
            **kwargs,
        )["TargetGroups"][0]
        arn = tg["TargetGroupArn"]
        self.target_groups.append(arn)
        self.elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}])
        return arn

    def listener(self, lb_arn: str, protocol: str, target_group: str, port: int | None = None) -> tuple[str, int]:
        """A listener forwarding to `target_group` on a free loopback port;
        for TCP protocols, returns once the port accepts connections."""
        port = port or (free_udp_port() if "UDP" in protocol else free_port())
        listener = self.elbv2.create_listener(
            LoadBalancerArn=lb_arn, Protocol=protocol, Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group}],
        )["Listeners"][0]
        assert listener["Port"] == port
        if protocol in ("HTTP", "TCP"):
            assert wait_until(lambda: _listening(port), timeout=30, interval=0.2), \
                f"nothing listens on 127.0.0.1:{port} 30 s after CreateListener ({protocol})"
        return listener["ListenerArn"], port

    def cleanup(self) -> list[str]:
        problems = []
        for arn in self.load_balancers:
            try:
                self.elbv2.delete_load_balancer(LoadBalancerArn=arn)
            except Exception as e:
                problems.append(f"DeleteLoadBalancer {arn}: {e!r}")
        for arn in self.target_groups:
            # A target group is in use until its listeners are gone.
            for attempt in range(20):
                try:
                    self.elbv2.delete_target_group(TargetGroupArn=arn)
                    break
                except botocore.exceptions.ClientError as e:
                    if e.response["Error"]["Code"] != "ResourceInUse" or attempt == 19:
                        problems.append(f"DeleteTargetGroup {arn}: {e!r}")
                        break
                    time.sleep(0.5)
        return problems


@pytest.fixture
def elb(elbv2, network) -> Iterator[Elb]:
    """Request it before `services`: services are then deleted first."""
    tracker = Elb(elbv2, network)
    yield tracker
    assert tracker.cleanup() == []


# --------------------------------------------------------------------------
# Target health


def _health(elbv2, tg: str) -> list[dict[str, Any]]:
    """[{id, port, state, reason}] of a target group's targets."""
    out = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return [{"id": d["Target"]["Id"], "port": d["Target"].get("Port"), "state": d["TargetHealth"]["State"],
             "reason": d["TargetHealth"].get("Reason")} for d in out]


def _wait_targets(elbv2, tg: str, expected: set[tuple[str, int]], what: str = "",
                  timeout: float = LB_TIMEOUT_S) -> list[dict[str, Any]]:
    """Waits until the healthy targets of `tg` are exactly `expected` and no
    other target is listed; returns the last DescribeTargetHealth."""
    seen: list[list[dict[str, Any]]] = []

    def done() -> bool:
        health = _health(elbv2, tg)
        if not seen or seen[-1] != health:
            seen.append(health)
        return {(t["id"], t["port"]) for t in health} == expected and all(t["state"] == "healthy" for t in health)

    if not wait_until(done, timeout=timeout, interval=0.5):
        pytest.fail(f"targets of {tg} {what} did not become exactly {sorted(expected)} healthy in {timeout}s; "
                    f"states seen, oldest first: {json.dumps(seen[-12:], indent=1)}")
    return seen[-1]


def _host_port(task: dict[str, Any], container_port: int = 8080) -> int:
    (container,) = [c for c in task["containers"] if c["name"] == "web"]
    bindings = [b for b in container.get("networkBindings", []) if b["containerPort"] == container_port]
    assert len(bindings) == 1, f"task {task['taskArn']} has no binding of {container_port}: {container}"
    return bindings[0]["hostPort"]


def _private_ip(task: dict[str, Any]) -> str | None:
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail["name"] == "privateIPv4Address":
                return detail["value"]
    return None


def _task_ip(task: dict[str, Any]) -> str:
    ip = _private_ip(task)
    assert ip, f"task {task['taskArn']} has no private IPv4 address: {task.get('attachments')}"
    return ip


def _address(task: dict[str, Any]) -> tuple[str, int]:
    """Where a task's web container answers from the host: the task's own
    address (awsvpc) or 127.0.0.1 and the host port (bridge)."""
    ip = _private_ip(task)
    return (ip, 8080) if ip else ("127.0.0.1", _host_port(task))


def _targets(ecs, tasks: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """The targets ECS registers for tasks' web containers: (private IP,
    container port) for awsvpc, (ec2InstanceId, host port) for bridge."""
    instance_id = _the_instance(ecs)["ec2InstanceId"]
    return {(ip, 8080) if (ip := _private_ip(t)) else (instance_id, _host_port(t)) for t in tasks}


def _target_id(task: dict[str, Any]) -> str:
    """The target id of an awsvpc task (its private IP)."""
    return _task_ip(task)


def _create_service(ecs, network: dict[str, Any], name: str, td: str, tg: str, count: int, **kwargs: Any) -> None:
    """An awsvpc service whose web containers are the targets of `tg`
    (type ip)."""
    ecs.create_service(
        cluster=CLUSTER, serviceName=name, taskDefinition=td, desiredCount=count,
        networkConfiguration={"awsvpcConfiguration": {"subnets": network["subnets"][:1]}},
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}], **kwargs,
    )


def _running_service_tasks(ecs, name: str, count: int) -> list[dict[str, Any]]:
    tasks = _service_tasks(ecs, name)
    running = [t for t in tasks if t["lastStatus"] == "RUNNING"]
    assert len(running) == count, f"{name}: expected {count} RUNNING tasks, got {[(t['taskArn'], t['lastStatus']) for t in tasks]}"
    return running


def _task_identity(task: dict[str, Any]) -> str:
    """What a task answers on /index.html, asked directly (not through a
    load balancer)."""
    address, port = _address(task)
    status, body, _ = _get(port, "/index.html", address=address)
    assert status == 200, (task["taskArn"], status, body)
    return body.strip()


# --------------------------------------------------------------------------
# Clients


def _get(port: int, path: str, *, host: str | None = None, address: str = "127.0.0.1",
         timeout: float = 15) -> tuple[int, str, dict[str, str]]:
    """GET with a new connection; `host` is the Host header to send."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        headers = {"Host": host} if host else {}
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace"), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def _get_ok(port: int, path: str, **kwargs: Any) -> str:
    status, body, _ = _get(port, path, **kwargs)
    assert status == 200, f"GET {path} through 127.0.0.1:{port}: {status} {body!r}"
    return body.strip()


class LoadClient(threading.Thread):
    """GETs `path` through the load balancer in a loop until stopped,
    recording every answer: on one keep-alive connection (reopened only
    when the server says it will close it) or on a new connection each
    time. Any non-200 answer or connection error is a failure."""

    def __init__(self, port: int, path: str, keep_alive: bool):
        super().__init__(name=f"load-{'keepalive' if keep_alive else 'new-conn'}", daemon=True)
        self.port = port
        self.path = path
        self.keep_alive = keep_alive
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[str] = []  # bodies of 200 answers, in order
        self.failures: list[str] = []
        self.requests = 0

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self.stopping.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            try:
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").strip()
                with self.lock:
                    self.requests += 1
                    if resp.status == 200:
                        self.answers.append(body)
                    else:
                        self.failures.append(f"{time.strftime('%H:%M:%S')} HTTP {resp.status} {body[:200]!r}")
                if not self.keep_alive or resp.will_close:
                    conn.close()
                    conn = None
            except Exception as e:
                with self.lock:
                    self.requests += 1
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {e!r}")
                conn.close()
                conn = None
            time.sleep(0.05)
        if conn is not None:
            conn.close()

    def last(self, n: int) -> list[str]:
        with self.lock:
            return self.answers[-n:]

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


# --------------------------------------------------------------------------
# Tests


def test_alb_path_routing_to_two_services(berth, ecs, elbv2, aws, elb, services):
    """Two bridge-mode services behind one ALB: /api/* (a rule created with
    the aws CLI) goes to `api`, everything else to `web` (the default
    action). Each service's running tasks are its targets (type instance:
    the container instance's ec2InstanceId and the task's host port), both
    tasks of each receive traffic, and nothing else answers.
    The aws CLI's `elbv2 wait target-in-service` and
    `describe-target-health` agree."""
    lb = elb.load_balancer("application")
    tg_web = elb.target_group("HTTP", 8080)
    tg_api = elb.target_group("HTTP", 8080)
    listener, port = elb.listener(lb, "HTTP", tg_web)
    rule = aws("elbv2", "create-rule", "--listener-arn", listener, "--priority", "10",
               "--conditions", "Field=path-pattern,Values=/api/*",
               "--actions", f"Type=forward,TargetGroupArn={tg_api}")["Rules"][0]
    assert rule["Priority"] == "10"
    assert rule["Conditions"][0]["Field"] == "path-pattern"

    names = {}
    for role, tg in (("web", tg_web), ("api", tg_api)):
        name = unique(role)
        td = _register(ecs, unique(f"lb-{role}"), _web_container(role))
        created = ecs.create_service(
            cluster=CLUSTER, serviceName=name, taskDefinition=td, desiredCount=2,
            loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}],
            healthCheckGracePeriodSeconds=30,
        )["service"]
        services.append(name)
        assert created["loadBalancers"] == [{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}]
        names[role] = name

    identities: dict[str, set[str]] = {}
    for role, tg in (("web", tg_web), ("api", tg_api)):
        _wait(ecs, "services_stable", names[role])
        tasks = _running_service_tasks(ecs, names[role], 2)
        _wait_targets(elbv2, tg, _targets(ecs, tasks), what=f"(service {role})")
        identities[role] = {_task_identity(t) for t in tasks}
        assert len(identities[role]) == 2 and all(i.startswith(f"{role} 1 ") for i in identities[role])

    # The aws CLI: its waiter (first poll at once) and the same health.
    aws("elbv2", "wait", "target-in-service", "--target-group-arn", tg_api)
    cli = aws("elbv2", "describe-target-health", "--target-group-arn", tg_api)["TargetHealthDescriptions"]
    assert sorted((d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"]) for d in cli) == \
        sorted((t["id"], t["port"], t["state"]) for t in _health(elbv2, tg_api))

    # /api/x exists in web's tasks too: only the rule sends it to api.
    for role, path in (("api", "/api/x"), ("web", "/"), ("web", "/index.html")):
        answered = Counter(_get_ok(port, path) for _ in range(12))
        assert set(answered) == identities[role], f"GET {path} should reach both {role} tasks: {answered}"
    status, _, _ = _get(port, "/nothing-here")
    assert status == 404  # web's httpd answered, through the default action


def test_alb_rolling_deployment_under_load_has_no_failed_requests(berth, ecs, elbv2, elb, services, network):
    """A service of 2 tasks behind the ALB (minimumHealthyPercent 100,
    maximumPercent 200) updated to a new revision while two clients (one
    keep-alive connection, one new connection per request) GET through the
    ALB: not one request fails, both versions answer, at least 2 targets are
    healthy at every moment sampled (a new task counts only once its target
    is healthy), and once the deployment is COMPLETED only the new version
    answers."""
    lb = elb.load_balancer("application")
    tg = elb.target_group("HTTP", 8080, target_type="ip", deregistration_delay=3)
    _, port = elb.listener(lb, "HTTP", tg)
    family = unique("lb-roll")
    td1 = _register(ecs, family, _web_container("roll", "1"), networkMode="awsvpc")
    td2 = _register(ecs, family, _web_container("roll", "2"), networkMode="awsvpc")
    name = unique("roll")
    _create_service(ecs, network, name, td1, tg, 2,
                    deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200},
                    healthCheckGracePeriodSeconds=30)
    services.append(name)
    _wait(ecs, "services_stable", name)
    first = _running_service_tasks(ecs, name, 2)
    _wait_targets(elbv2, tg, _targets(ecs, first), what="(revision 1)")

    clients = [LoadClient(port, "/index.html", keep_alive=True), LoadClient(port, "/index.html", keep_alive=False)]
    for client in clients:
        client.start()
    sampled: list[list[tuple[str, str]]] = []
    sampling = threading.Event()

    def sample_health() -> None:
        sampler_elbv2 = berth.client("elbv2")  # botocore clients are not shared across threads
        while not sampling.is_set():
            try:
                sampled.append([(t["id"], t["state"]) for t in _health(sampler_elbv2, tg)])
            except Exception as e:
                sampled.append([("error", repr(e))])
            time.sleep(0.25)

    sampler = threading.Thread(target=sample_health, name="health-sampler", daemon=True)
    sampler.start()
    try:
        assert wait_until(lambda: all(len(c.last(5)) == 5 for c in clients), timeout=30, interval=0.2), \
            [c.failures[:5] for c in clients]
        ecs.update_service(cluster=CLUSTER, service=name, taskDefinition=td2)

        def completed() -> bool:
            service = _service(ecs, name)
            deployments = service["deployments"]
            return (len(deployments) == 1 and deployments[0]["taskDefinition"] == td2
                    and deployments[0].get("rolloutState") == "COMPLETED" and service["runningCount"] == 2)

        if not wait_until(completed, timeout=LB_TIMEOUT_S * 2, interval=1):
            pytest.fail(f"the deployment did not complete: {_summary(_service(ecs, name))}\n"
                        f"targets: {_health(elbv2, tg)}")
        # The old tasks may still be draining (RUNNING, out of the counts).
        second = [t for t in _service_tasks(ecs, name) if t["taskDefinitionArn"] == td2]
        assert [t["lastStatus"] for t in second] == ["RUNNING", "RUNNING"], second
        targets = _wait_targets(elbv2, tg, _targets(ecs, second), what="(revision 2)")
        # The old tasks were deregistered, drained and stopped.
        assert wait_until(lambda: all(t["lastStatus"] == "STOPPED" for t in _describe(ecs, [t["taskArn"] for t in first])),
                          timeout=TASK_TIMEOUT_S, interval=0.5), _describe(ecs, [t["taskArn"] for t in first])

        def only_new_version() -> bool:
            return all(len(c.last(20)) == 20 and all(b.startswith("roll 2 ") for b in c.last(20)) for c in clients)

        assert wait_until(only_new_version, timeout=60, interval=0.5), [c.last(20) for c in clients]
    finally:
        for client in clients:
            client.stop()
        sampling.set()
        sampler.join(timeout=30)

    too_few = [s for s in sampled if sum(state == "healthy" for _, state in s) < 2]
    assert too_few == [], f"{len(too_few)} of {len(sampled)} samples had fewer than 2 healthy targets: {too_few[:5]}"
    for client in clients:
        versions = Counter(body.split(" ")[1] for body in client.answers)
        print(f"{client.name}: {client.requests} requests, versions {dict(versions)}, "
              f"{len(client.failures)} failures")
        assert client.failures == [], f"{client.name}: {len(client.failures)} of {client.requests} failed: " \
                                      f"{client.failures[:20]}"
        assert set(versions) == {"1", "2"}, versions
    new_ids = {_task_identity(t) for t in second}
    assert {b for c in clients for b in c.last(20)} <= new_ids, targets


def test_alb_scale_in_drains_the_target_before_stopping_the_task(berth, ecs, elbv2, elb, services, network):
    """Scaling a service from 2 tasks to 1: the removed task's target is
    `draining` in DescribeTargetHealth, gets no new request, the task keeps
    running (and answering) until the deregistration delay has passed, the
    slow requests in flight on it complete, then it stops and its target is
    gone."""
    delay = 15
    slow_s = 8
    lb = elb.load_balancer("application")
    tg = elb.target_group("HTTP", 8080, target_type="ip", deregistration_delay=delay)
    _, port = elb.listener(lb, "HTTP", tg)
    td = _register(ecs, unique("lb-drain"), _web_container("drain", slow_s=slow_s), networkMode="awsvpc")
    name = unique("drain")
    _create_service(ecs, network, name, td, tg, 2, healthCheckGracePeriodSeconds=30)
    services.append(name)
    _wait(ecs, "services_stable", name)
    tasks = _running_service_tasks(ecs, name, 2)
    _wait_targets(elbv2, tg, _targets(ecs, tasks))
    identity = {_target_id(t): _task_identity(t) for t in tasks}
    assert Counter(_get_ok(port, "/") for _ in range(6)).keys() == set(identity.values())

    # Slow requests in flight on both tasks (round robin spreads them).
    slow: list[tuple[int, str] | str] = []
    slow_lock = threading.Lock()

    def slow_get() -> None:
        try:
            status, body, _ = _get(port, "/cgi-bin/slow", timeout=60)
            result: tuple[int, str] | str = (status, body.strip())
        except Exception as e:
            result = repr(e)
        with slow_lock:
            slow.append(result)

    slow_threads = [threading.Thread(target=slow_get, daemon=True) for _ in range(6)]
    for t in slow_threads:
        t.start()
    time.sleep(2)  # they reach the tasks; each takes slow_s seconds

    scaled_at = time.time()
    ecs.update_service(cluster=CLUSTER, service=name, desiredCount=1)

    seen: list[list[dict[str, Any]]] = []

    def draining() -> dict[str, Any] | None:
        health = _health(elbv2, tg)
        seen.append(health)
        found = [t for t in health if t["state"] == "draining"]
        return found[0] if found else None

    target = wait_until(draining, timeout=60, interval=0.2)
    assert target, f"no target went draining after scaling in; seen: {json.dumps(seen[-5:])}"
    assert target["id"] in identity and target["port"] == 8080, target
    (removed,) = [t for t in tasks if _target_id(t) == target["id"]]
    (kept,) = [t for t in tasks if _target_id(t) != target["id"]]
    assert target.get("reason") == "Target.DeregistrationInProgress", target
    others = [t for t in seen[-1] if t["id"] != target["id"]]
    assert [(t["id"], t["state"]) for t in others] == [(_target_id(kept), "healthy")], seen[-1]

    # While it drains: still running and serving on its own port, but the
    # load balancer sends every new request to the other task.
    (now,) = _describe(ecs, [removed["taskArn"]])
    assert now["lastStatus"] in ("RUNNING", "DEACTIVATING"), now["lastStatus"]
    assert now["containers"][0]["lastStatus"] == "RUNNING"
    assert _task_identity(removed) == identity[target["id"]]
    answers = Counter(_get_ok(port, "/") for _ in range(10))
    assert set(answers) == {identity[_target_id(kept)]}, answers
    assert [t["state"] for t in _health(elbv2, tg) if t["id"] == target["id"]] == ["draining"], \
        f"the target should still be draining ({delay} s): {_health(elbv2, tg)}"

    for t in slow_threads:
        t.join(timeout=90)
    assert len(slow) == 6 and all(isinstance(r, tuple) and r[0] == 200 for r in slow), slow
    served_by = Counter(r[1] for r in slow if isinstance(r, tuple))
    assert identity[target["id"]] in served_by, f"no slow request was in flight on the drained task: {served_by}"

    def stopped() -> dict[str, Any] | None:
        (task,) = _describe(ecs, [removed["taskArn"]])
        return task if task["lastStatus"] == "STOPPED" else None

    task = wait_until(stopped, timeout=delay + TASK_TIMEOUT_S, interval=0.5)
    assert task, f"the drained task did not stop: {_describe(ecs, [removed['taskArn']])}"
    # It was told to stop only once the delay had passed.
    assert task["stoppedAt"].timestamp() >= scaled_at + delay - 1, (task["stoppedAt"], scaled_at)
    assert wait_until(lambda: [(t["id"], t["state"]) for t in _health(elbv2, tg)] == [(_target_id(kept), "healthy")],
                      timeout=30, interval=0.5), _health(elbv2, tg)
    assert _running_service_tasks(ecs, name, 1)[0]["taskArn"] == kept["taskArn"]
    # No need to wait the whole delay again when the service is deleted.
    elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])


def test_nlb_tcp_and_udp_echo_to_awsvpc_tasks(berth, ecs, elbv2, elb, services, network):
    """A network load balancer with a TCP listener and a UDP listener in
    front of an awsvpc service (targets of type ip: the task's address and
    the container port): bytes sent to either listener come back."""
    if not HAVE_UDPECHO.get("yes"):
        pytest.skip("no C compiler able to build a static udpecho")
    lb = elb.load_balancer("network")
    tg_tcp = elb.target_group("TCP", 7000, target_type="ip")
    # A UDP target group is health-checked over TCP: on the TCP echo's port.
    tg_udp = elb.target_group("UDP", 7001, target_type="ip", health_port="7000")
    _, tcp_port = elb.listener(lb, "TCP", tg_tcp)
    _, udp_port = elb.listener(lb, "UDP", tg_udp)
    container = {
        "name": "echo",
        "image": IMAGE_REF,
        "command": ["sh", "-c", "busybox nc -ll -p 7000 -e cat & exec udpecho 7001"],
        "portMappings": [{"containerPort": 7000, "protocol": "tcp"}, {"containerPort": 7001, "protocol": "udp"}],
        "memory": 32,
        "essential": True,
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": 2,
    }
    td = _register(ecs, unique("lb-echo"), container, networkMode="awsvpc")
    name = unique("echo")
    ecs.create_service(
        cluster=CLUSTER, serviceName=name, taskDefinition=td, desiredCount=1,
        networkConfiguration={"awsvpcConfiguration": {"subnets": network["subnets"][:1]}},
        loadBalancers=[{"targetGroupArn": tg_tcp, "containerName": "echo", "containerPort": 7000},
                       {"targetGroupArn": tg_udp, "containerName": "echo", "containerPort": 7001}],
    )
    services.append(name)
    _wait(ecs, "services_stable", name)
    (task,) = _running_service_tasks(ecs, name, 1)
    ip = _task_ip(task)
    _wait_targets(elbv2, tg_tcp, {(ip, 7000)}, what="(TCP)")
    _wait_targets(elbv2, tg_udp, {(ip, 7001)}, what="(UDP)")

    for i in range(3):
        payload = f"tcp {i} {unique('x')}\n".encode()
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=10) as s:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        assert got == payload, f"TCP echo through 127.0.0.1:{tcp_port}"

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for i in range(3):
            payload = f"udp {i} {unique('x')}".encode()
            got = None
            for _attempt in range(10):  # datagrams may be lost: resend
                s.sendto(payload, ("127.0.0.1", udp_port))
                try:
                    got, _ = s.recvfrom(65536)
                    break
                except socket.timeout:
                    continue
            assert got == payload, f"UDP echo through 127.0.0.1:{udp_port}: {got!r}"


def test_alb_target_failing_health_checks_is_replaced(berth, ecs, elbv2, elb, services, network):
    """Two services in one target group: `steady` always healthy, `flaky`
    serving /health only for its first 20 s, with a 60 s grace period.
    Flaky's target goes healthy, then unhealthy (Target.ResponseCodeMismatch)
    and traffic goes only to steady; once the grace period is over, ECS
    stops the flaky task ("Task failed ELB health checks in (target-group
    ...)") and starts a replacement that is registered. (The grace period
    also keeps the unhealthy state visible: without one, ECS deregisters
    the target within a second.)"""
    grace = 60
    lb = elb.load_balancer("application")
    tg = elb.target_group("HTTP", 8080, target_type="ip", health_path="/health", deregistration_delay=3)
    _, port = elb.listener(lb, "HTTP", tg)
    steady, flaky = unique("steady"), unique("flaky")
    for name, container in ((steady, _web_container("steady")),
                            (flaky, _web_container("flaky", unhealthy_after=20))):
        td = _register(ecs, unique("lb-hc"), container, networkMode="awsvpc")
        _create_service(ecs, network, name, td, tg, 1, healthCheckGracePeriodSeconds=grace)
        services.append(name)
    _wait(ecs, "services_stable", steady)
    _wait(ecs, "services_stable", flaky)
    (steady_task,) = _running_service_tasks(ecs, steady, 1)
    (flaky_task,) = _running_service_tasks(ecs, flaky, 1)
    steady_id, flaky_id = _task_identity(steady_task), _task_identity(flaky_task)
    _wait_targets(elbv2, tg, _targets(ecs, [steady_task, flaky_task]))
    flaky_target = _target_id(flaky_task)
    assert set(Counter(_get_ok(port, "/") for _ in range(6))) == {steady_id, flaky_id}

    seen: list[list[dict[str, Any]]] = []

    def flaky_unhealthy() -> dict[str, Any] | None:
        health = _health(elbv2, tg)
        if not seen or seen[-1] != health:
            seen.append(health)
        found = [t for t in health if t["id"] == flaky_target and t["state"] == "unhealthy"]
        return found[0] if found else None

    target = wait_until(flaky_unhealthy, timeout=LB_TIMEOUT_S, interval=0.5)
    assert target, f"flaky's target never showed unhealthy; states seen: {json.dumps(seen[-12:], indent=1)}"
    assert target["reason"] == "Target.ResponseCodeMismatch", target
    answers = Counter(_get_ok(port, "/") for _ in range(8))
    assert flaky_id not in answers, f"an unhealthy target still got requests: {answers}"
    assert steady_id in answers, answers

    def replaced() -> dict[str, Any] | None:
        (task,) = _describe(ecs, [flaky_task["taskArn"]])
        return task if task["lastStatus"] == "STOPPED" else None

    stopped = wait_until(replaced, timeout=grace + LB_TIMEOUT_S, interval=0.5)
    assert stopped, f"the unhealthy task was not stopped: {_summary(_service(ecs, flaky))}"
    # Not before the grace period was over.
    assert (stopped["stoppedAt"] - stopped["startedAt"]).total_seconds() >= grace - 1, stopped
    assert stopped["stoppedReason"].startswith("Task failed ELB health checks in (target-group "), stopped
    assert tg in stopped["stoppedReason"], stopped["stoppedReason"]
    assert stopped["stopCode"] == "ServiceSchedulerInitiated", stopped

    def new_task_registered() -> list[dict[str, Any]] | None:
        tasks = [t for t in _service_tasks(ecs, flaky) if t["taskArn"] != flaky_task["taskArn"]
                 and t["lastStatus"] == "RUNNING"]
        if not tasks:
            return None
        ids = {_target_id(t) for t in tasks}
        registered = {t["id"] for t in _health(elbv2, tg)}
        return tasks if ids <= registered else None

    assert wait_until(new_task_registered, timeout=LB_TIMEOUT_S, interval=0.5), \
        f"no replacement registered: {_summary(_service(ecs, flaky))}\ntargets: {_health(elbv2, tg)}"
    # Steady was never touched.
    assert _running_service_tasks(ecs, steady, 1)[0]["taskArn"] == steady_task["taskArn"]


def test_alb_rule_actions_and_forwarded_headers(berth, ecs, elbv2, elb, services, network):
    """Listener rules by priority: a host-header rule answering a
    fixed-response, a redirect, a forward to a target group without targets
    (503), and the default forward, whose requests reach the task with
    X-Forwarded-For, -Proto and -Port."""
    lb = elb.load_balancer("application")
    tg = elb.target_group("HTTP", 8080, target_type="ip")
    empty = elb.target_group("HTTP", 8080, target_type="ip")
    listener, port = elb.listener(lb, "HTTP", tg)
    rules = [
        (1, [{"Field": "host-header", "Values": ["fixed.example.test"]}],
         {"Type": "fixed-response", "FixedResponseConfig": {
             "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "hello from the listener"}}),
        (2, [{"Field": "path-pattern", "Values": ["/old"]}],
         {"Type": "redirect", "RedirectConfig": {
             "Protocol": "HTTPS", "Host": "example.test", "Port": "8443", "Path": "/moved", "Query": "a=1",
             "StatusCode": "HTTP_301"}}),
        (3, [{"Field": "path-pattern", "Values": ["/empty/*"]}],
         {"Type": "forward", "TargetGroupArn": empty}),
        (4, [{"Field": "path-pattern", "Values": ["/teapot"]}],
         {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "418", "MessageBody": "short and stout"}}),
    ]
    for priority, conditions, action in rules:
        elbv2.create_rule(ListenerArn=listener, Priority=priority, Conditions=conditions, Actions=[action])
    described = elbv2.describe_rules(ListenerArn=listener)["Rules"]
    assert [r["Priority"] for r in described] == ["1", "2", "3", "4", "default"]

    name = unique("rules")
    td = _register(ecs, unique("lb-rules"), _web_container("rules"), networkMode="awsvpc")
    _create_service(ecs, network, name, td, tg, 1)
    services.append(name)
    _wait(ecs, "services_stable", name)
    (task,) = _running_service_tasks(ecs, name, 1)
    _wait_targets(elbv2, tg, _targets(ecs, [task]))
    identity = _task_identity(task)

    status, body, _ = _get(port, "/index.html", host="fixed.example.test")
    assert (status, body) == (200, "hello from the listener")
    status, body, headers = _get(port, "/old")
    assert status == 301, (status, body)
    assert headers["location"] == "https://example.test:8443/moved?a=1"
    status, _, _ = _get(port, "/empty/x")
    assert status == 503
    status, body, _ = _get(port, "/teapot")
    assert (status, body) == (418, "short and stout")
    assert _get_ok(port, "/index.html") == identity

    status, body, _ = _get(port, "/cgi-bin/env")
    assert status == 200, body
    env = dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
    assert env.get("HTTP_X_FORWARDED_FOR") == "127.0.0.1", env
    assert env.get("HTTP_X_FORWARDED_PROTO") == "http", env
    assert env.get("HTTP_X_FORWARDED_PORT") == str(port), env
    assert env.get("HTTP_HOST") == f"127.0.0.1:{port}", env

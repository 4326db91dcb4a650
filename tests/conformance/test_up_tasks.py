"""`berth up` running real containers, driven by the aws CLI and boto3.

Each test module run starts one `berth up` (server + agent, cluster
`default`) of its own: a throw-away data dir, its own bridge (also its
cgroup prefix), a /24 of 172.31.0.0/16 claimed with a lock file and a
block of dynamic host ports derived from that claim
(`--dynamic-host-port-range`), so several runs (or pytest-xdist workers)
can share the machine without publishing the same host port. Its only
image, a tiny busybox image built here in Python as an OCI layout tarball,
is put in the data dir's cache with `berth image load` before the server
starts, and `--pull-policy prefer-cached` keeps any registry out of it.

Containers outlive `berth up` by design, so the teardown stops every task
through the API and waits for STOPPED before killing the process, then
removes whatever the agent left: runc containers, mounts, task network
namespaces, the bridge, its nftables table and its cgroups.

Needs root and runc (skipped otherwise) and Debian's busybox-static.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import random
import shutil
import string
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import botocore.exceptions
import pytest

from conftest import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    REGION,
    SECRET_ACCESS_KEY,
    STARTUP_TIMEOUT_S,
    AwsCli,
    Berth,
    _die_with_parent,
    _read_ready_line,
    _stop,
    berth_binary,
    unique,
    wait_until,
)

if not sys.platform.startswith("linux") or os.geteuid() != 0:
    pytest.skip("berth up runs containers: needs root on Linux", allow_module_level=True)
if shutil.which("runc") is None:
    pytest.skip("runc is not installed (Debian package runc)", allow_module_level=True)

CLUSTER = "default"
IMAGE_REF = "127.0.0.1:5999/conformance/busybox:1"
INDEX_TEXT = "<h1>Hello from a Berth conformance task</h1>\n"
BUSYBOX = Path("/bin/busybox")
APPLETS = ["sh", "httpd", "sleep", "echo", "cat", "ls", "true", "false", "env", "id", "kill", "ps", "wget"]
SUBNET_LOCK_DIR = Path("/tmp/berth-pytest-subnets")
# Dynamic host ports: claim k (the /24's third octet, 0..255) gets
# PORT_BLOCK ports from PORT_BASE + PORT_BLOCK * k. The 256 blocks tile
# 16384..32767 exactly, below the kernel's usual ephemeral range (32768..),
# so they never meet another block nor a port-0 listener (servers, load
# balancer listeners picked with `free_port`).
PORT_BASE = 16384
PORT_BLOCK = 64
# Everything that waits on containers: generous, as the machine may be busy.
TASK_TIMEOUT_S = 90


# --------------------------------------------------------------------------
# The image: an OCI image layout tarball, built in Python


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _oci_arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _add(tar: tarfile.TarFile, name: str, *, kind: bytes = tarfile.REGTYPE, mode: int = 0o644,
         data: bytes = b"", link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if kind == tarfile.SYMTYPE:
        info.linkname = link
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def _layer_tar(extra_files: dict[str, bytes] | None = None) -> bytes:
    """The root filesystem: busybox, its applet links, /www and /tmp (and
    `extra_files`, executables by path, for modules that need more)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, "bin", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "bin/busybox", mode=0o755, data=BUSYBOX.read_bytes())
        for applet in APPLETS:
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, link="busybox")
        _add(tar, "www", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "www/index.html", data=INDEX_TEXT.encode())
        _add(tar, "tmp", kind=tarfile.DIRTYPE, mode=0o1777)
        for name, data in sorted((extra_files or {}).items()):
            _add(tar, name, mode=0o755, data=data)
    return buf.getvalue()


def build_oci_archive(path: Path, extra_files: dict[str, bytes] | None = None) -> dict[str, str]:
    """Writes the image as an OCI image layout tarball; returns its digests."""
    layer = _layer_tar(extra_files)
    layer_gz = gzip.compress(layer, mtime=0)
    config = json.dumps({
        "architecture": _oci_arch(),
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha256(layer)]},
        "history": [{"created_by": "tests/conformance/test_up_tasks.py"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha256(layer_gz), "size": len(layer_gz)}],
    }, sort_keys=True).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": _sha256(manifest), "size": len(manifest),
                       "platform": {"architecture": _oci_arch(), "os": "linux"}}],
    }, sort_keys=True).encode()
    with tarfile.open(path, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, "oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", data=index)
        _add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for blob in (config, manifest, layer_gz):
            _add(tar, "blobs/sha256/" + _sha256(blob).split(":", 1)[1], data=blob)
    return {"manifest": _sha256(manifest), "config": _sha256(config), "layer": _sha256(layer_gz),
            "diff_id": _sha256(layer)}


@pytest.fixture(scope="module")
def image_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert BUSYBOX.is_file(), f"{BUSYBOX} is missing: install Debian's busybox-static"
    path = tmp_path_factory.mktemp("image") / "busybox-oci.tar"
    build_oci_archive(path)
    return path


# --------------------------------------------------------------------------
# `berth up` with its own bridge, subnet and cgroup prefix


class SubnetClaim:
    """A /24 of 172.31.0.0/16 claimed by an O_EXCL lock file, and with
    it a block of dynamic host ports no other claim shares."""

    def __init__(self) -> None:
        SUBNET_LOCK_DIR.mkdir(parents=True, exist_ok=True)
        start = random.randrange(256)
        for i in range(256):
            octet = (start + i) % 256
            path = SUBNET_LOCK_DIR / str(octet)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
            self.path = path
            self.cidr = f"172.31.{octet}.0/24"
            lo = PORT_BASE + PORT_BLOCK * octet
            self.dynamic_ports = (lo, lo + PORT_BLOCK - 1)
            return
        raise RuntimeError(f"no free test subnet in 172.31.0.0/16 (see {SUBNET_LOCK_DIR})")

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class UpBerth(Berth):
    """A running `berth up`: a `Berth` (so the conftest's failure report
    shows its stderr) with the host side of its agent."""

    bridge: str = ""
    subnet: str = ""
    # The agent's `--dynamic-host-port-range`, inclusive.
    dynamic_ports: tuple[int, int] = (0, 0)

    def logs(self, task: str) -> str:
        done = subprocess.run(
            [str(berth_binary()), "logs", task, "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, timeout=30,
        )
        assert done.returncode == 0, f"berth logs {task} exited {done.returncode}: {done.stderr}"
        return done.stdout


def _run_quiet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30)


def _remove_cgroup_tree(path: Path) -> None:
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            _remove_cgroup_tree(child)
    try:
        path.rmdir()
    except OSError:
        pass


def _shims_of(data_dir: Path) -> list[int]:
    """PIDs of `berth shim` processes working under `data_dir`."""
    pids = []
    needle = str(data_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1] == b"shim" and any(needle in a for a in argv):
            pids.append(int(entry.name))
    return pids


def clean_up_agent(data_dir: Path, bridge: str) -> list[str]:
    """Removes what the agent of `data_dir` made; call once it is dead.
    Returns what was left of tasks that should not have been, once every
    task was STOPPED: running containers, mounts, namespaces, shims (not the
    bridge, its table, the cgroup prefix or stopped containers, which the
    agent keeps by design)."""
    leftovers: list[str] = []
    runc_root = str(data_dir / "agent" / "runc")
    listed = _run_quiet("runc", "--root", runc_root, "list", "--format", "json").stdout.strip()
    for container in json.loads(listed or "null") or []:
        # Stopped containers are kept for --task-cleanup-wait by design.
        if container.get("status") != "stopped":
            leftovers.append(f"runc container {container['id']} {container.get('status')}")
        _run_quiet("runc", "--root", runc_root, "delete", "-f", container["id"])
    prefix = str(data_dir)
    with open("/proc/mounts") as f:
        targets = [line.split(" ")[1] for line in f]
    targets = [t for t in targets if t == prefix or t.startswith(prefix + "/")]
    for target in sorted(targets, key=len, reverse=True):
        leftovers.append(f"mount {target}")
        _run_quiet("umount", "-l", target)
    # `ip netns list` prints "NAME" or "NAME (id: N)".
    netns = {line.split()[0] for line in _run_quiet("ip", "netns", "list").stdout.splitlines() if line.strip()}
    for task_file in (data_dir / "agent" / "tasks").glob("*.json"):
        # `berth-<task id>`, or `<bridge>-<task id>` for a non-default bridge.
        for name in (f"berth-{task_file.stem}", f"{bridge}-{task_file.stem}"):
            if name in netns:
                leftovers.append(f"netns {name}")
                _run_quiet("ip", "netns", "del", name)
    for pid in _shims_of(data_dir):
        leftovers.append(f"shim pid {pid}")
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    _run_quiet("ip", "link", "del", bridge)
    _run_quiet("nft", "delete", "table", "ip", bridge)
    cgroup_root = Path("/sys/fs/cgroup")
    for controller in cgroup_root.iterdir():
        _remove_cgroup_tree(controller / bridge)
    return leftovers


def _all_tasks(ecs) -> list[str]:
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER, desiredStatus=desired):
            arns += page["taskArns"]
    return arns


def _describe(ecs, arns: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        out += ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])["tasks"]
    return out


def stop_all_tasks(ecs, timeout: float = TASK_TIMEOUT_S) -> list[dict[str, Any]]:
    """Stops every task of the cluster and waits until all are STOPPED;
    returns those that were not (empty on success)."""
    for page in ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER, desiredStatus="RUNNING"):
        for arn in page["taskArns"]:
            ecs.stop_task(cluster=CLUSTER, task=arn, reason="conformance teardown")
    deadline = time.monotonic() + timeout
    while True:
        arns = _all_tasks(ecs)
        pending = [t for t in _describe(ecs, arns) if t["lastStatus"] != "STOPPED"] if arns else []
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(0.5)


def _start_up(data_dir: Path, bridge: str, subnet: str, dynamic_ports: tuple[int, int], stderr_path: Path,
              extra_args: tuple[str, ...] = ()):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))}
    env.update(
        BERTH_ROOT_ACCESS_KEY_ID=ACCESS_KEY_ID,
        BERTH_ROOT_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        BERTH_ACCOUNT_ID=ACCOUNT_ID,
        BERTH_LOG=os.environ.get("BERTH_LOG", "warn"),
    )
    with open(stderr_path, "wb") as stderr:
        return subprocess.Popen(
            [str(berth_binary()), "up", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
             "--bridge", bridge, "--bridge-subnet", subnet, "--cgroup-prefix", bridge,
             "--dynamic-host-port-range", f"{dynamic_ports[0]}-{dynamic_ports[1]}",
             "--pull-policy", "prefer-cached", "--task-endpoint-port", "0", *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            preexec_fn=_die_with_parent,
        )


@pytest.fixture(scope="module")
def berth(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          image_archive: Path) -> Iterator[UpBerth]:
    """This module's own `berth up` (overrides the conftest's shared server).
    A test module may set `BERTH_UP_ARGS` (a tuple) for more flags."""
    binary = berth_binary()
    if not binary.is_file():
        pytest.exit(f"berth binary not found at {binary}: run `cargo build -p berth` or set BERTH_BIN",
                    returncode=3)
    claim = SubnetClaim()
    bridge = "bp" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
    base = tmp_path_factory.mktemp("up")
    data_dir = base / "data"
    data_dir.mkdir()
    stderr_path = base / "berth-up.stderr.log"
    proc = None
    server: UpBerth | None = None
    try:
        loaded = subprocess.run(
            [str(binary), "image", "load", str(image_archive), "--reference", IMAGE_REF,
             "--data-dir", str(data_dir)],
            capture_output=True, text=True, timeout=60,
        )
        assert loaded.returncode == 0, f"berth image load failed:\n{loaded.stdout}{loaded.stderr}"
        extra_args = tuple(getattr(request.module, "BERTH_UP_ARGS", ()))
        proc = _start_up(data_dir, bridge, claim.cidr, claim.dynamic_ports, stderr_path, extra_args)
        try:
            host, port = _read_ready_line(proc, STARTUP_TIMEOUT_S)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\nstderr: {stderr_path.read_text(errors='replace')[-4000:]}") from None
        server = UpBerth(
            endpoint=f"http://{host}:{port}", host=host, port=port, account_id=ACCOUNT_ID,
            access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY, data_dir=data_dir,
            process=proc, stderr_path=stderr_path, bridge=bridge, subnet=claim.cidr,
            dynamic_ports=claim.dynamic_ports,
        )
        # `ready` means the API listens; the agent creates the cluster
        # `default` and registers right after.
        ecs = server.client("ecs")

        def instances() -> list[str]:
            if not ecs.list_clusters()["clusterArns"]:
                return []
            return ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]

        registered = wait_until(instances, timeout=STARTUP_TIMEOUT_S, interval=0.2)
        assert registered, f"the agent did not register in {STARTUP_TIMEOUT_S}s:\n{server.stderr_tail()}"
        yield server
    finally:
        not_stopped: list[dict[str, Any]] = []
        if server is not None and proc is not None and proc.poll() is None:
            try:
                not_stopped = stop_all_tasks(server.client("ecs"))
            except Exception as e:  # the teardown must go on
                not_stopped = [{"taskArn": f"(could not stop tasks: {e!r})", "lastStatus": "?"}]
        if proc is not None:
            _stop(proc)
        leftovers = clean_up_agent(data_dir, bridge)
        claim.release()
        problems = [f"task {t['taskArn']} still {t['lastStatus']}" for t in not_stopped]
        problems += leftovers
        if problems:
            # After stopping every task, nothing of a task should remain.
            pytest.fail("berth up left things behind after all tasks were stopped: " + "; ".join(problems))


@pytest.fixture(scope="module")
def ecs(berth: UpBerth):
    return berth.client("ecs")


@pytest.fixture(scope="module")
def aws(berth: UpBerth, tmp_path_factory: pytest.TempPathFactory) -> AwsCli:
    return AwsCli(berth, tmp_path_factory.mktemp("aws-home"))


@pytest.fixture
def stop_tasks_after(ecs) -> Iterator[None]:
    """Leaves no task running for the next test, even if this one failed."""
    yield
    assert stop_all_tasks(ecs) == []


def wait_for(ecs, waiter: str, arns: list[str]) -> None:
    """boto3's own waiter, polling once a second; on failure the message
    shows where the tasks were."""
    try:
        ecs.get_waiter(waiter).wait(cluster=CLUSTER, tasks=arns,
                                    WaiterConfig={"Delay": 1, "MaxAttempts": TASK_TIMEOUT_S})
    except botocore.exceptions.WaiterError as e:
        seen = [
            {k: t.get(k) for k in ("taskArn", "lastStatus", "desiredStatus", "stopCode", "stoppedReason",
                                   "startedAt")}
            | {"containers": [{k: c.get(k) for k in ("name", "lastStatus", "exitCode", "reason")}
                              for c in t.get("containers", [])]}
            for t in _describe(ecs, arns)
        ]
        pytest.fail(f"{waiter} waiter: {e}\nlast response: {e.last_response}\nnow: {seen}")


def _resource(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["name"] == name]
    return found


def _the_instance(ecs) -> dict[str, Any]:
    (arn,) = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    described = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    assert described["failures"] == []
    (instance,) = described["containerInstances"]
    return instance


def _http_get(port: int, path: str) -> tuple[int, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return resp.status, resp.read().decode()


# --------------------------------------------------------------------------
# Tests


def test_cli_httpd_tasks_run_serve_and_stop(berth, aws, stop_tasks_after):
    """aws CLI: register, run-task --count 2, the CLI's own waiters, a page
    served on each task's dynamic host port, stop-task."""
    family = unique("httpd")
    container = {
        "name": "web",
        "image": IMAGE_REF,
        "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
        "portMappings": [{"containerPort": 8080}],
        "memory": 64,
        "essential": True,
        "linuxParameters": {"initProcessEnabled": True},
        "stopTimeout": 5,
    }
    td = aws("ecs", "register-task-definition", "--family", family,
             "--container-definitions", json.dumps([container]))["taskDefinition"]
    assert td["family"] == family and td["revision"] == 1

    run = aws("ecs", "run-task", "--cluster", CLUSTER, "--task-definition", family, "--count", "2")
    assert run["failures"] == []
    arns = [t["taskArn"] for t in run["tasks"]]
    assert len(arns) == 2 and len(set(arns)) == 2

    aws("ecs", "wait", "tasks-running", "--cluster", CLUSTER, "--tasks", *arns)
    tasks = aws("ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", *arns)["tasks"]
    assert sorted(t["taskArn"] for t in tasks) == sorted(arns)
    ports = []
    for task in tasks:
        assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
        (c,) = task["containers"]
        assert c["name"] == "web" and c["lastStatus"] == "RUNNING"
        (binding,) = c["networkBindings"]
        assert binding["containerPort"] == 8080
        assert binding["protocol"] == "tcp"
        lo, hi = berth.dynamic_ports
        assert lo <= binding["hostPort"] <= hi, f"host port outside this agent's range {lo}-{hi}: {binding}"
        ports.append(binding["hostPort"])
    assert len(set(ports)) == 2, f"two tasks on one host need two host ports: {ports}"

    for port in ports:
        status, body = _http_get(port, "/index.html")
        assert status == 200
        assert body == INDEX_TEXT

    for arn in arns:
        stopped = aws("ecs", "stop-task", "--cluster", CLUSTER, "--task", arn, "--reason", "pytest says stop")
        assert stopped["task"]["taskArn"] == arn
        assert stopped["task"]["desiredStatus"] == "STOPPED"
    aws("ecs", "wait", "tasks-stopped", "--cluster", CLUSTER, "--tasks", *arns)
    tasks = aws("ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", *arns)["tasks"]
    for task in tasks:
        assert task["lastStatus"] == "STOPPED"
        assert task["stopCode"] == "UserInitiated"
        assert task["stoppedReason"] == "pytest says stop"
        (c,) = task["containers"]
        assert c["lastStatus"] == "STOPPED"
        # httpd under the init process dies of the SIGTERM: 128 + 15.
        assert c["exitCode"] == 143


def test_boto3_waiters_essential_container_exit(berth, ecs, stop_tasks_after):
    """boto3 waiters on a task whose essential container prints and exits 4."""
    family = unique("exit4")
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{
            "name": "main",
            "image": IMAGE_REF,
            "essential": True,
            "memory": 32,
            # The sleep keeps the task RUNNING for a moment: the
            # tasks_running waiter treats an already STOPPED task as a
            # terminal failure, and polls once a second.
            "command": ["sh", "-c", "echo hi; sleep 5; exit 4"],
        }],
    )
    (task,) = ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"]
    arn = task["taskArn"]
    wait_for(ecs, "tasks_running", [arn])
    wait_for(ecs, "tasks_stopped", [arn])

    (task,) = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    (c,) = task["containers"]
    assert {
        "lastStatus": task["lastStatus"],
        "desiredStatus": task["desiredStatus"],
        "stopCode": task.get("stopCode"),
        "stoppedReason": task.get("stoppedReason"),
        "container": (c["lastStatus"], c.get("exitCode")),
    } == {
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "container": ("STOPPED", 4),
    }, task
    assert task["startedAt"] <= task["stoppingAt"] <= task["stoppedAt"]

    task_id = arn.rsplit("/", 1)[1]
    logs = berth.logs(task_id)
    assert "hi" in logs.splitlines(), f"berth logs {task_id}: {logs!r}"


def test_boto3_essential_container_exiting_at_once(berth, ecs, stop_tasks_after):
    """`echo hi; exit 4` with no pause: the container did start (it printed),
    so the task has a startedAt and ends with EssentialContainerExited,
    not TaskFailedToStart, even when it exits before the agent's RUNNING
    report is out (the tasks_running waiter cannot be used here: it takes
    a STOPPED task for a failure)."""
    family = unique("exit4now")
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "main", "image": IMAGE_REF, "essential": True, "memory": 32,
                               "command": ["sh", "-c", "echo hi; exit 4"]}],
    )
    run = ecs.run_task(cluster=CLUSTER, taskDefinition=family, count=3)
    arns = [t["taskArn"] for t in run["tasks"]]
    wait_for(ecs, "tasks_stopped", arns)
    for task in ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]:
        (c,) = task["containers"]
        assert {
            "stopCode": task.get("stopCode"),
            "stoppedReason": task.get("stoppedReason"),
            "started": "startedAt" in task,
            "exitCode": c.get("exitCode"),
        } == {
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "started": True,
            "exitCode": 4,
        }, task
        assert "hi" in berth.logs(task["taskArn"]).splitlines()


def test_boto3_container_instance_resources(berth, ecs, stop_tasks_after):
    """The host as a container instance: registered resources from the
    machine, remaining memory following a running task."""
    instance = _the_instance(ecs)
    assert instance["status"] == "ACTIVE"
    assert instance["agentConnected"] is True
    assert instance["containerInstanceArn"].startswith(
        f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:container-instance/{CLUSTER}/")
    registered_cpu = _resource(instance["registeredResources"], "CPU")["integerValue"]
    assert registered_cpu == 1024 * os.cpu_count()
    registered_mem = _resource(instance["registeredResources"], "MEMORY")["integerValue"]
    assert registered_mem > 64
    assert _resource(instance["remainingResources"], "MEMORY")["integerValue"] == registered_mem
    attributes = {a["name"]: a.get("value") for a in instance["attributes"]}
    assert attributes.get("ecs.os-type") == "linux"
    assert attributes.get("ecs.availability-zone") == f"{REGION}a"

    family = unique("mem64")
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "idle", "image": IMAGE_REF, "memory": 64, "essential": True,
                               "command": ["sleep", "3600"], "stopTimeout": 2}],
    )
    (task,) = ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"]
    arn = task["taskArn"]
    assert task["containerInstanceArn"] == instance["containerInstanceArn"]
    wait_for(ecs, "tasks_running", [arn])

    running = _the_instance(ecs)
    assert running["runningTasksCount"] == 1
    assert _resource(running["remainingResources"], "MEMORY")["integerValue"] == registered_mem - 64
    assert _resource(running["registeredResources"], "MEMORY")["integerValue"] == registered_mem

    ecs.stop_task(cluster=CLUSTER, task=arn)
    wait_for(ecs, "tasks_stopped", [arn])
    after = _the_instance(ecs)
    assert after["runningTasksCount"] == 0
    assert _resource(after["remainingResources"], "MEMORY")["integerValue"] == registered_mem

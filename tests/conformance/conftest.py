"""Fixtures of the ECS conformance suite.

The suite starts the real `berth server` binary on a free port with a
throw-away data dir and fixed credentials, then talks to it only as an AWS
client would: through boto3 and through the `aws` CLI (v1) installed in the
same virtualenv. Every test names its resources uniquely (see `unique`), so
tests share one server; the few that change account-wide state (account
settings) start a server of their own with `start_berth`.

The binary is $BERTH_BIN, else <cargo target dir>/debug/berth, where the
target dir is $CARGO_TARGET_DIR or the repository's target/.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"

ACCOUNT_ID = "123456789012"
ACCESS_KEY_ID = "AKIABERTHCONFORMANCE"
SECRET_ACCESS_KEY = "berth/conformance+Secret0123456789abcdef"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:root"
ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"

STARTUP_TIMEOUT_S = 30

# Keep this process's boto3 away from the developer's ~/.aws and from any
# AWS_* variables of the calling shell.
# (A directory that is never created, so the files in it never exist.)
_ISOLATION_DIR = Path(tempfile.gettempdir()) / f"berth-conformance-no-aws-{os.getpid()}"
for _name in list(os.environ):
    if _name.startswith("AWS_"):
        del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = str(_ISOLATION_DIR / "no-config")
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(_ISOLATION_DIR / "no-credentials")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def berth_binary() -> Path:
    explicit = os.environ.get("BERTH_BIN")
    if explicit:
        return Path(explicit)
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = Path(target) if target else REPO_ROOT / "target"
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    return target_dir / "debug" / "berth"


def unique(prefix: str) -> str:
    """A resource name no other test uses: `prefix-<8 hex>`."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Berth:
    """A running server."""

    endpoint: str
    host: str
    port: int
    account_id: str
    access_key_id: str
    secret_access_key: str
    data_dir: Path
    process: subprocess.Popen
    stderr_path: Path

    def client(self, service: str, region: str = REGION, **overrides: Any):
        """A boto3 client of this server; `overrides` replace credentials etc."""
        kwargs: dict[str, Any] = dict(
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )
        kwargs.update(overrides)
        return boto3.session.Session().client(service, **kwargs)

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _read_ready_line(proc: subprocess.Popen, timeout: float) -> tuple[str, int]:
    """Wait for `ready HOST:PORT` on the server's stdout."""
    found: dict[str, Any] = {}
    seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if not done.is_set():
                seen.append(line)
                if line.startswith("ready "):
                    found["addr"] = line.split(" ", 1)[1].strip()
                    done.set()
            # Keep draining so the server never blocks on a full pipe.
        done.set()

    threading.Thread(target=reader, name="berth-stdout", daemon=True).start()
    if not done.wait(timeout) or "addr" not in found:
        raise RuntimeError(
            f"berth did not print 'ready HOST:PORT' within {timeout}s "
            f"(exit code {proc.poll()}); stdout so far: {seen!r}"
        )
    host, _, port = found["addr"].rpartition(":")
    return host, int(port)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if pytest itself dies (Linux),
    so even a killed test run leaves no server behind."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def start_berth(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Berth]:
    """Start `berth server` on 127.0.0.1:0 and stop it (by its PID) on exit."""
    binary = berth_binary()
    if not binary.is_file():
        pytest.exit(
            f"berth binary not found at {binary}: run `cargo build -p berth` "
            "(or ./test.sh), or set BERTH_BIN",
            returncode=3,
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))}
    env.update(
        BERTH_ROOT_ACCESS_KEY_ID=ACCESS_KEY_ID,
        BERTH_ROOT_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        BERTH_ACCOUNT_ID=ACCOUNT_ID,
        BERTH_LOG=os.environ.get("BERTH_LOG", "warn"),
    )
    env.update(extra_env or {})
    stderr_path = data_dir.parent / f"{data_dir.name}.stderr.log"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [str(binary), "server", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
    try:
        host, port = _read_ready_line(proc, STARTUP_TIMEOUT_S)
        yield Berth(
            endpoint=f"http://{host}:{port}",
            host=host,
            port=port,
            account_id=ACCOUNT_ID,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
            data_dir=data_dir,
            process=proc,
            stderr_path=stderr_path,
        )
    finally:
        _stop(proc)


# --------------------------------------------------------------------------
# Servers and clients


@pytest.fixture(scope="session")
def berth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Berth]:
    """The server most tests share."""
    with start_berth(tmp_path_factory.mktemp("berth") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def ecs(berth: Berth):
    return berth.client("ecs")


@pytest.fixture(scope="session")
def ecs_other_region(berth: Berth):
    return berth.client("ecs", region=OTHER_REGION)


@pytest.fixture(scope="session")
def sts(berth: Berth):
    return berth.client("sts")


# --------------------------------------------------------------------------
# The aws CLI


class CliFailure(AssertionError):
    pass


class AwsCli:
    """Runs the virtualenv's `aws` against one server, isolated from ~/.aws.

    `aws("ecs", "list-clusters")` returns the parsed JSON output (or None for
    an empty output) and fails the test if the command failed;
    `aws.error(...)` expects a failure and returns `(exit code, stderr)`.
    """

    def __init__(self, server: Berth, home: Path, region: str = REGION):
        self.server = server
        self.region = region
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.executable = self._find_executable()

    @staticmethod
    def _find_executable() -> str:
        beside = Path(sys.executable).parent / "aws"
        if beside.is_file():
            return str(beside)
        found = shutil.which("aws")
        if not found:
            pytest.fail("the aws CLI is not installed (pip install -r requirements-test.txt)")
        return found

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            HOME=str(self.home),
            AWS_ENDPOINT_URL=self.server.endpoint,
            AWS_ACCESS_KEY_ID=self.server.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.server.secret_access_key,
            AWS_DEFAULT_REGION=self.region,
            AWS_CONFIG_FILE=str(self.home / "nonexistent-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.home / "nonexistent-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
            AWS_PAGER="",
        )
        env.update(overrides)
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.executable, *args, "--output", "json"],
            env=env or self.env(),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def __call__(self, *args: str, **kwargs: Any) -> Any:
        done = self.run(*args, **kwargs)
        if done.returncode != 0:
            raise CliFailure(f"aws {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    def error(self, *args: str, **kwargs: Any) -> tuple[int, str]:
        done = self.run(*args, **kwargs)
        if done.returncode == 0:
            raise CliFailure(f"aws {' '.join(args)} succeeded but was expected to fail:\n{done.stdout}")
        return done.returncode, done.stderr


@pytest.fixture(scope="session")
def aws(berth: Berth, tmp_path_factory: pytest.TempPathFactory) -> AwsCli:
    return AwsCli(berth, tmp_path_factory.mktemp("aws-home"))


# --------------------------------------------------------------------------
# Raw signed requests, for what an SDK will not send (unknown operations)
# or hides (the JSON as it is on the wire).


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def raw_request(
    server: Berth,
    target: str | None,
    body: Any = None,
    *,
    region: str = REGION,
    service: str = "ecs",
    secret: str | None = None,
    sign: bool = True,
    method: str = "POST",
    path: str = "/",
    data: bytes | None = None,
    content_type: str = "application/x-amz-json-1.1",
) -> RawResponse:
    url = server.endpoint + path
    if data is None:
        data = b"" if body is None else json.dumps(body).encode()
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = botocore.awsrequest.AWSRequest(method=method, url=url, data=data, headers=headers)
    if sign:
        creds = botocore.credentials.Credentials(server.access_key_id, secret or server.secret_access_key)
        botocore.auth.SigV4Auth(creds, service, region).add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(
        prepared.url, data=prepared.body or None, method=method, headers=dict(prepared.headers.items())
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as e:
        return RawResponse(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def ecs_raw(server: Berth, operation: str, body: Any = None, **kwargs: Any) -> RawResponse:
    return raw_request(server, f"{ECS_TARGET_PREFIX}.{operation}", body if body is not None else {}, **kwargs)


# --------------------------------------------------------------------------
# Assertions


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def error_message(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"].get("Message", "")


def assert_recent(ts: Any, slack_s: float = 300) -> None:
    """A timestamp botocore parsed into an aware datetime, close to now."""
    assert isinstance(ts, datetime.datetime), f"expected a datetime, got {ts!r}"
    assert ts.tzinfo is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - ts).total_seconds()) < slack_s, f"{ts} is not close to {now}"


def tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["key"]: t["value"] for t in tags or []}


def cluster_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:ecs:{region}:{ACCOUNT_ID}:cluster/{name}"


def capacity_provider_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:ecs:{region}:{ACCOUNT_ID}:capacity-provider/{name}"


def task_definition_arn(family: str, revision: int, region: str = REGION) -> str:
    return f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{family}:{revision}"


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attach the end of the shared server's log to the report."""
    report = yield
    if report.failed and call.when == "call":
        server = item.funcargs.get("berth")
        if isinstance(server, Berth):
            tail = server.stderr_tail()
            if tail:
                report.sections.append(("berth server stderr (last lines)", tail))
    return report


# --------------------------------------------------------------------------
# Every element a query-protocol service answers is in botocore's model
# (botocore's parser skips unknown elements silently, so a misspelt member
# would pass every other test).


def check_against_shape(
    elem: ET.Element,
    shape,
    path: str,
    problems: list[str],
    *,
    ns: str,
    service: str,
    maps: bool,
    timestamps: str | None,
) -> None:
    """Add to `problems` each way `elem` departs from botocore's `shape`.

    `ns` is the service's XML namespace (`{...}`); a service without maps
    (`maps=False`) reports any; `timestamps`, if given, is the pattern
    every timestamp must match."""
    rules = dict(ns=ns, service=service, maps=maps, timestamps=timestamps)
    kind = shape.type_name
    if kind == "structure":
        members = {m.serialization.get("name", name): m for name, m in shape.members.items()}
        for child in elem:
            tag = child.tag.split("}", 1)[-1]
            if tag not in members:
                problems.append(f"{path}/{tag}: not a member of {shape.name}")
                continue
            check_against_shape(child, members[tag], f"{path}/{tag}", problems, **rules)
    elif kind == "list":
        item = shape.member.serialization.get("name", "member")
        for child in elem:
            tag = child.tag.split("}", 1)[-1]
            if tag != item:
                problems.append(f"{path}/{tag}: list items of {shape.name} are <{item}>")
                continue
            check_against_shape(child, shape.member, f"{path}/{tag}", problems, **rules)
    elif kind == "map":
        if not maps:
            problems.append(f"{path}: maps are not expected in {service}")
            return
        for child in elem:
            tag = child.tag.split("}", 1)[-1]
            key, value = child.find(f"{ns}key"), child.find(f"{ns}value")
            if tag != "entry" or key is None or value is None:
                problems.append(f"{path}/{tag}: map entries are <entry><key/><value/></entry>")
                continue
            if shape.key.enum and key.text not in shape.key.enum:
                problems.append(f"{path}: key {key.text!r} is not in {shape.key.name}")
            check_against_shape(value, shape.value, f"{path}/{key.text}", problems, **rules)
    else:
        if len(elem):
            problems.append(f"{path}: scalar {shape.name} has children")
        text = elem.text or ""
        if kind == "boolean" and text not in ("true", "false"):
            problems.append(f"{path}: {text!r} is no boolean")
        if kind in ("integer", "long") and not re.fullmatch(r"-?\d+", text):
            problems.append(f"{path}: {text!r} is no integer")
        if kind == "timestamp" and timestamps is not None and not re.fullmatch(timestamps, text):
            problems.append(f"{path}: {text!r} is not {service}'s timestamp format")
        if kind == "string" and shape.enum and text not in shape.enum:
            problems.append(f"{path}: {text!r} is not in the enum {shape.name}")


def watch_against_model(
    client,
    ns: str,
    *,
    empty_result_ok: bool = False,
    **rules: Any,
) -> tuple[list[str], list[str]]:
    """Check every successful answer `client` parses from now on against
    botocore's model (see `check_against_shape` for `rules`). Returns the
    list of problems and the list of operations seen, both filled as calls
    go. An operation without output may answer an empty Result element if
    `empty_result_ok`."""
    problems: list[str] = []
    seen: list[str] = []

    def check(operation_model, response_dict, **_):
        seen.append(operation_model.name)
        if response_dict["status_code"] != 200:
            return
        root = ET.fromstring(response_dict["body"])
        assert root.tag == f"{ns}{operation_model.name}Response", root.tag
        output = operation_model.output_shape
        result = root.find(f"{ns}{operation_model.name}Result")
        if output is None:
            if result is not None and not (empty_result_ok and not len(result)):
                problems.append(f"{operation_model.name}: unexpected result {ET.tostring(result)!r}")
            return
        assert result is not None, operation_model.name
        check_against_shape(result, output, operation_model.name, problems, ns=ns, **rules)

    client.meta.events.register(f"before-parse.{client.meta.service_model.service_id.hyphenize()}", check)
    return problems, seen

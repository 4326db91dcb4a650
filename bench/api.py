#!/usr/bin/env python3
"""API benchmark: Berth vs moto_server vs a bare hyper server (the ceiling),
and what IAM authorization costs Berth.

Run through bench/api.sh, which installs wrk and the venv (boto3, moto) and
builds the release binaries. Everything runs on this machine, in one run, so
the targets are compared on the same hardware in the same minute.

Targets: `ceiling` (hello-ceiling), `berth` (berth server, requests signed
with the root key, which is allowed everything without a policy), and on the
SAME berth process `berth-user` (an IAM user's access key, authorized by its
inline, attached managed and group policies) and `berth-session` (STS
AssumeRole session credentials of a role with the same policies, the token
signed in X-Amz-Security-Token), then `moto`. berth-user/berth and
berth-session/berth are what authenticating and authorizing a non-root
caller costs.

For each operation (DescribeClusters, RegisterTaskDefinition) and each
target:

  latency     BENCH_LATENCY_N sequential requests on one keep-alive
              connection (raw http.client), one SigV4-signed request replayed
              byte for byte; client-side round trip per request, and for Berth
              the server-side time from its `server-timing: app;dur=` header.
  throughput  wrk (BENCH_WRK_THREADS threads, BENCH_CONNECTIONS connections,
              BENCH_SECONDS seconds) replaying the same signed request.

Prints a table and the ratios, checks the targets (DescribeClusters
server-side p50 < 1 ms; Berth throughput >= 50% of the ceiling) and saves the
raw results to bench/results/api-<timestamp>.json.

Environment:
  BENCH_SECONDS        wrk duration per run (default 10)
  BENCH_LATENCY_N      sequential requests per latency run (default 2000)
  BENCH_WARMUP_N       unmeasured requests before each latency run (default 200)
  BENCH_CONNECTIONS    wrk connections (default 32)
  BENCH_WRK_THREADS    wrk threads (default 2)
  BENCH_TARGETS        comma list of ceiling,berth,berth-user,berth-session,moto
                       (default: all five; berth-user and berth-session run on
                       berth's process, which is started for them either way)
  BENCH_STRICT         1: exit 3 when a target is missed (default: report only)
  BERTH_BIN, CEILING_BIN, MOTO_SERVER, WRK   paths of the programs
"""

from __future__ import annotations

import atexit
import datetime as dt
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIABERTHBENCHMARK00"
SECRET_ACCESS_KEY = "berth-bench-secret-key-not-a-real-one-0000"
ACCOUNT_ID = "123456789012"
CLUSTER = "bench"

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
OPERATIONS = {
    "DescribeClusters": {"clusters": [CLUSTER]},
    "RegisterTaskDefinition": {
        "family": "bench",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "busybox",
                "memory": 64,
                "essential": True,
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    },
}

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
LATENCY_N = int(os.environ.get("BENCH_LATENCY_N", "2000"))
WARMUP_N = int(os.environ.get("BENCH_WARMUP_N", "200"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
ALL_TARGETS = ("ceiling", "berth", "berth-user", "berth-session", "moto")
TARGETS = [t.strip() for t in os.environ.get("BENCH_TARGETS", ",".join(ALL_TARGETS)).split(",") if t.strip()]
# Targets served by berth's one process, each with its own caller: the root
# key, an IAM user's access key, an assumed role's session credentials.
BERTH_TARGETS = ("berth", "berth-user", "berth-session")
IAM_TARGETS = ("berth-user", "berth-session")
STRICT = os.environ.get("BENCH_STRICT", "") == "1"
# A latency run stops early after this many seconds (a slow target must not
# blow the time budget); the number of samples taken is reported.
# RegisterTaskDefinition under wrk: this many families (see measure_throughput).
FAMILIES = int(os.environ.get("BENCH_FAMILIES", str(4 * CONNECTIONS)))
LATENCY_TIME_CAP = float(os.environ.get("BENCH_LATENCY_TIME_CAP", "15"))

BERTH_BIN = os.environ.get("BERTH_BIN", str(ROOT / "target" / "release" / "berth"))
CEILING_BIN = os.environ.get("CEILING_BIN", str(ROOT / "target" / "release" / "hello-ceiling"))
MOTO_SERVER = os.environ.get("MOTO_SERVER", str(HERE / ".venv" / "bin" / "moto_server"))
WRK = os.environ.get("WRK", shutil.which("wrk") or "wrk")


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes

_children: list[subprocess.Popen] = []


def _reap(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def stop_all() -> None:
    while _children:
        _reap(_children.pop())


atexit.register(stop_all)


def _on_signal(signum, _frame):
    # Turn SIGTERM/SIGHUP into an exception so finally blocks and atexit run.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def spawn(cmd: list[str], *, stdout, stderr, env=None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env)
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen) -> None:
    _reap(proc)
    if proc in _children:
        _children.remove(proc)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready_line(proc: subprocess.Popen, out_path: Path, err_path: Path, what: str, timeout: float = 30) -> int:
    """Wait for `ready 127.0.0.1:PORT` on the process's stdout (a file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out_path.read_text(errors="replace") if out_path.exists() else ""
        m = re.search(r"^ready 127\.0\.0\.1:(\d+)\s*$", text, re.M)
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise BenchError(
        f"{what} did not print 'ready 127.0.0.1:PORT' (exit {proc.poll()}).\n"
        f"stdout:\n{_tail(out_path)}\nstderr:\n{_tail(err_path)}"
    )


def wait_port(proc: subprocess.Popen, port: int, err_path: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} before listening.\nstderr:\n{_tail(err_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{what} did not listen on 127.0.0.1:{port} within {timeout}s.\nstderr:\n{_tail(err_path)}")


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(none)"


# ---------------------------------------------------------------- requests


ROOT_CREDENTIALS = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
# The callers of berth-user and berth-session, made by setup_iam once berth
# is up; every other target signs with the root key.
CREDENTIALS: dict[str, Credentials] = {}


def signed_request(target: str, port: int, operation: str, family: str | None = None) -> tuple[bytes, dict[str, str]]:
    """One SigV4-signed ECS JSON 1.1 request, ready to replay (valid ~15 min),
    signed with `target`'s credentials (a session's token is signed too, in
    X-Amz-Security-Token).

    `family` overrides a RegisterTaskDefinition's family (it is part of the
    signed body, so each family is its own pre-signed request)."""
    params = dict(OPERATIONS[operation])
    if family is not None:
        params["family"] = family
    if operation == "RegisterTaskDefinition" and target in IAM_TARGETS:
        # Berth's IAM callers register into their own families: in a family
        # holding thousands of revisions from an earlier target's runs each
        # registration is slower, which is not what they measure.
        params["family"] = params["family"].replace("bench", f"bench-{target.removeprefix('berth-')}", 1)
    body = json.dumps(params, separators=(",", ":")).encode()
    host = f"127.0.0.1:{port}"
    req = AWSRequest(
        method="POST",
        url=f"http://{host}/",
        data=body,
        headers={
            "Host": host,
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": TARGET_PREFIX + operation,
        },
    )
    if target in IAM_TARGETS and target not in CREDENTIALS:
        raise BenchError(f"{target}: no credentials (setup_iam did not run)")
    SigV4Auth(CREDENTIALS.get(target, ROOT_CREDENTIALS), "ecs", REGION).add_auth(req)
    headers = {k: v for k, v in req.headers.items()}
    headers["Content-Length"] = str(len(body))
    return body, headers


def check_response(target: str, operation: str, status: int, payload: bytes) -> None:
    if status != 200:
        raise BenchError(
            f"{target} rejected the signed {operation} request: HTTP {status}: {payload[:500]!r}"
        )
    if target == "ceiling":
        return
    doc = json.loads(payload)
    if operation == "DescribeClusters":
        names = [c.get("clusterName") for c in doc.get("clusters", [])]
        if names != [CLUSTER] or doc.get("failures"):
            raise BenchError(f"{target} DescribeClusters answered unexpectedly: {payload[:500]!r}")
    elif not str(doc.get("taskDefinition", {}).get("family", "")).startswith("bench"):
        raise BenchError(f"{target} RegisterTaskDefinition answered unexpectedly: {payload[:500]!r}")


_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def measure_latency(target: str, port: int, operation: str) -> dict:
    body, headers = signed_request(target, port, operation)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_ms: list[float] = []
    server_ms: list[float] = []

    def once() -> tuple[int, float, http.client.HTTPResponse, bytes]:
        t0 = time.perf_counter_ns()
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, (time.perf_counter_ns() - t0) / 1e6, resp, payload

    try:
        # The first answer is checked in full: a rejected signature fails here.
        status, _, _, payload = once()
        check_response(target, operation, status, payload)
        for _ in range(WARMUP_N):
            status, _, _, payload = once()
            if status != 200:
                check_response(target, operation, status, payload)
        started = time.monotonic()
        for _ in range(LATENCY_N):
            status, ms, resp, payload = once()
            if status != 200:
                check_response(target, operation, status, payload)
            client_ms.append(ms)
            timing = resp.getheader("server-timing")
            if timing:
                m = _SERVER_TIMING.search(timing)
                if m:
                    server_ms.append(float(m.group(1)))
            if time.monotonic() - started > LATENCY_TIME_CAP:
                log(f"  {target} {operation}: latency run capped at {LATENCY_TIME_CAP:.0f}s after {len(client_ms)} requests")
                break
    finally:
        conn.close()
    if target in BERTH_TARGETS and len(server_ms) != len(client_ms):
        raise BenchError(f"{target}: {len(client_ms) - len(server_ms)} responses lacked 'server-timing: app;dur='")
    out = {"n": len(client_ms), "client": summarize(client_ms)}
    if server_ms:
        out["server"] = summarize(server_ms)
    return out


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def summarize(values: list[float]) -> dict:
    s = sorted(values)
    return {
        "p50_ms": percentile(s, 50),
        "p90_ms": percentile(s, 90),
        "p99_ms": percentile(s, 99),
        "max_ms": s[-1],
        "mean_ms": statistics.fmean(s),
    }


# ---------------------------------------------------------------- wrk


def lua_string(b: bytes | str) -> str:
    if isinstance(b, str):
        b = b.encode()
    out = []
    for c in b:
        ch = chr(c)
        out.append(ch if (ch.isalnum() or ch in " -_.:/=,;+*()[]{}@") and c < 128 else f"\\{c:03d}")
    return '"' + "".join(out) + '"'


WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d," ..
    "\\"connect_errors\\":%d,\\"read_errors\\":%d,\\"write_errors\\":%d,\\"timeouts\\":%d,\\"non_2xx_3xx\\":%d," ..
    "\\"lat_p50_us\\":%d,\\"lat_p90_us\\":%d,\\"lat_p99_us\\":%d,\\"lat_max_us\\":%d,\\"lat_mean_us\\":%.1f}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_headers(headers: dict[str, str]) -> str:
    # wrk adds Content-Length itself from the body.
    return "{" + ", ".join(
        f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items() if k.lower() != "content-length"
    ) + "}"


def wrk_script(requests: list[tuple[bytes, dict[str, str]]]) -> str:
    """A wrk script replaying pre-signed requests.

    One request: wrk's static request (the cheapest path for the client).
    Several: each wrk thread cycles round-robin through its own share of
    them, so no two threads send the same one."""
    if len(requests) == 1:
        body, headers = requests[0]
        return (
            'wrk.method = "POST"\nwrk.path = "/"\n'
            f"wrk.body = {lua_string(body)}\n"
            f"wrk.headers = {lua_headers(headers)}\n" + WRK_DONE
        )
    entries = ",\n".join(f"  {{ body = {lua_string(b)}, headers = {lua_headers(h)} }}" for b, h in requests)
    return f"""\
local all = {{
{entries}
}}
local counter = 1
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  reqs = {{}}
  for i, r in ipairs(all) do
    if (i - 1) % {WRK_THREADS} == (tid - 1) % {WRK_THREADS} then
      table.insert(reqs, wrk.format("POST", "/", r.headers, r.body))
    end
  end
  n = 0
end
function request()
  n = n % #reqs + 1
  return reqs[n]
end
""" + WRK_DONE


def process_cpu_seconds(pid: int) -> float | None:
    """user + system CPU time of a running process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def measure_throughput(target: str, port: int, operation: str, workdir: Path, server_pid: int) -> dict:
    if operation == "RegisterTaskDefinition":
        # Registrations of ONE family are serialized by design (each takes the
        # next revision; ECS answers "Too many concurrent attempts to create a
        # new revision" when they pile up), so under load each connection's
        # requests are spread over their own families: this measures
        # registration throughput, not single-family contention.
        requests = [signed_request(target, port, operation, f"bench-{i:03d}") for i in range(FAMILIES)]
    else:
        requests = [signed_request(target, port, operation)]
    script = workdir / f"wrk-{target}-{operation}.lua"
    script.write_text(wrk_script(requests))
    cmd = [
        WRK, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s", "--latency",
        "-s", str(script), f"http://127.0.0.1:{port}/",
    ]
    cpu_before = process_cpu_seconds(server_pid)
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=SECONDS + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk against {target} did not finish within {SECONDS + 60}s")
    finally:
        stop(proc)
    cpu_after = process_cpu_seconds(server_pid)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk against {target} failed (exit {proc.returncode}):\n{text}")
    m = re.search(r"^BENCH_JSON (\{.*\})\s*$", text, re.M)
    if not m:
        raise BenchError(f"wrk against {target} printed no summary:\n{text}")
    s = json.loads(m.group(1))
    rps_text = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    non2xx_text = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result = {
        "rps": s["requests"] / (s["duration_us"] / 1e6) if s["duration_us"] else 0.0,
        "rps_wrk_text": float(rps_text.group(1)) if rps_text else None,
        "requests": s["requests"],
        "non_2xx_3xx": int(non2xx_text.group(1)) if non2xx_text else s["non_2xx_3xx"],
        "socket_errors": {k: s[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")},
        "latency": {
            "p50_ms": s["lat_p50_us"] / 1000,
            "p90_ms": s["lat_p90_us"] / 1000,
            "p99_ms": s["lat_p99_us"] / 1000,
            "max_ms": s["lat_max_us"] / 1000,
            "mean_ms": s["lat_mean_us"] / 1000,
        },
        # The server's own CPU time per request under load: unlike rps, it
        # barely moves when the client or other processes take CPU.
        "server_cpu_us_per_request": (
            (cpu_after - cpu_before) * 1e6 / s["requests"]
            if cpu_before is not None and cpu_after is not None and s["requests"] else None
        ),
        "wrk_output": text,
    }
    if s["requests"] == 0:
        raise BenchError(f"wrk against {target} completed no request:\n{text}")
    bad = result["non_2xx_3xx"]
    if bad:
        msg = f"wrk against {target} {operation}: {bad} of {s['requests']} responses were not 2xx/3xx"
        if target in BERTH_TARGETS:
            raise BenchError(msg + " (signed requests rejected?)\n" + text)
        log("WARNING: " + msg)
    errs = sum(result["socket_errors"].values())
    if errs:
        log(f"WARNING: wrk against {target} {operation}: socket errors {result['socket_errors']}")
    return result


# ---------------------------------------------------------------- targets


def start_ceiling(workdir: Path) -> tuple[subprocess.Popen, int]:
    out, err = workdir / "ceiling.out", workdir / "ceiling.err"
    proc = spawn([CEILING_BIN, "--listen", "127.0.0.1:0"], stdout=out.open("wb"), stderr=err.open("wb"))
    return proc, wait_ready_line(proc, out, err, "hello-ceiling")


def start_berth(workdir: Path, extra_args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    out, err = workdir / "berth.out", workdir / "berth.err"
    env = dict(os.environ)
    env.update(
        BERTH_ROOT_ACCESS_KEY_ID=ACCESS_KEY_ID,
        BERTH_ROOT_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
        BERTH_ACCOUNT_ID=ACCOUNT_ID,
    )
    data = workdir / "berth-data"
    data.mkdir()
    proc = spawn(
        [BERTH_BIN, "server", "--listen", "127.0.0.1:0", "--data-dir", str(data), *extra_args],
        stdout=out.open("wb"), stderr=err.open("wb"), env=env,
    )
    return proc, wait_ready_line(proc, out, err, "berth server")


def start_moto(workdir: Path) -> tuple[subprocess.Popen, int]:
    if not os.path.exists(MOTO_SERVER):
        raise BenchError(f"moto_server not found at {MOTO_SERVER} (run bench/api.sh, which installs it)")
    out, err = workdir / "moto.out", workdir / "moto.err"
    port = free_port()
    proc = spawn([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)], stdout=out.open("wb"), stderr=err.open("wb"))
    wait_port(proc, port, err, "moto_server")
    return proc, port


def client(service: str, port: int, credentials: Credentials = ROOT_CREDENTIALS):
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.token,
        config=Config(retries={"max_attempts": 1}),
    )


def create_cluster(target: str, port: int) -> None:
    try:
        client("ecs", port).create_cluster(clusterName=CLUSTER)
    except botocore.exceptions.ClientError as e:
        raise BenchError(f"{target}: CreateCluster failed: {e}") from e


# The identity policies of berth-user and berth-session: what a team's
# deploy user or role might carry, not a minimal one. Every request of theirs
# is evaluated against all of them (explicit denies are looked for in every
# statement), with conditions on the global keys Berth fills in.
def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


_ECS = f"arn:aws:ecs:*:{ACCOUNT_ID}"
_PRIVATE_NETS = ["10.0.0.0/8", "172.16.0.0/12", "127.0.0.0/8"]
# The inline policy (user) / role policy (role): 10 statements, 3 of them
# denies; within the 2,048 characters AWS allows a user's inline policies.
INLINE_POLICY = _policy(
    {"Sid": "ReadBenchClusters", "Effect": "Allow",
     "Action": ["ecs:DescribeClusters", "ecs:ListContainerInstances", "ecs:ListServices", "ecs:ListTasks"],
     "Resource": f"{_ECS}:cluster/bench*",
     "Condition": {"IpAddress": {"aws:SourceIp": _PRIVATE_NETS}}},
    {"Sid": "TaskDefinitions", "Effect": "Allow",
     "Action": ["ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition"],
     "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": _PRIVATE_NETS},
                   "StringEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]}}},
    {"Sid": "RunBenchTasks", "Effect": "Allow", "Action": ["ecs:RunTask", "ecs:StartTask"],
     "Resource": f"{_ECS}:task-definition/bench*:*"},
    {"Sid": "ManageBenchTasks", "Effect": "Allow", "Action": ["ecs:StopTask", "ecs:DescribeTasks"],
     "Resource": f"{_ECS}:task/bench*/*"},
    {"Sid": "ManageBenchServices", "Effect": "Allow",
     "Action": ["ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService", "ecs:DescribeServices"],
     "Resource": f"{_ECS}:service/bench*/*"},
    {"Sid": "PassTaskRoles", "Effect": "Allow", "Action": "iam:PassRole",
     "Resource": f"arn:aws:iam::{ACCOUNT_ID}:role/bench-task-*",
     "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
    {"Sid": "TagBenchResources", "Effect": "Allow",
     "Action": ["ecs:TagResource", "ecs:ListTagsForResource"],
     "Resource": f"{_ECS}:*/bench*",
     "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}},
    {"Sid": "DenyOutsideEcs", "Effect": "Deny",
     "NotAction": ["ecs:*", "iam:PassRole", "iam:Get*", "iam:List*", "sts:GetCallerIdentity", "logs:*"],
     "Resource": "*"},
    {"Sid": "DenyProd", "Effect": "Deny", "Action": "ecs:*",
     "Resource": [f"{_ECS}:cluster/prod*", f"{_ECS}:service/prod*/*"]},
    {"Sid": "DenyDestructiveOffNetwork", "Effect": "Deny",
     "Action": ["ecs:DeleteCluster", "ecs:DeleteService"],
     "Resource": "*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
)
# A customer managed policy, attached to the user and to the role.
MANAGED_POLICY = _policy(
    {"Sid": "ReadOnly", "Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"},
    {"Sid": "ReadNetwork", "Effect": "Allow", "Action": ["ec2:Describe*", "elasticloadbalancing:Describe*"],
     "Resource": "*"},
    {"Sid": "ReadLogs", "Effect": "Allow",
     "Action": ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"],
     "Resource": f"arn:aws:logs:*:{ACCOUNT_ID}:log-group:/ecs/*"},
    {"Sid": "ReadMetrics", "Effect": "Allow", "Action": ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"],
     "Resource": "*"},
)
# The user's group's inline policy; the role gets it as a second managed policy.
DEPLOYERS_POLICY = _policy(
    {"Sid": "Deploy", "Effect": "Allow",
     "Action": ["ecs:RegisterTaskDefinition", "ecs:UpdateService", "ecs:DescribeServices"], "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}},
    {"Sid": "ReadRoles", "Effect": "Allow", "Action": ["iam:GetRole", "iam:ListRoles"],
     "Resource": f"arn:aws:iam::{ACCOUNT_ID}:role/*"},
    {"Sid": "NoClusterDeletes", "Effect": "Deny", "Action": "ecs:DeleteCluster", "Resource": "*"},
)


def setup_iam(port: int) -> dict[str, Credentials]:
    """With the root credentials, through boto3: a user with an access key
    (inline policy, an attached managed policy, a group with its policy) and
    a role with the same statements (inline + two managed), assumed by the
    root; returns the callers of berth-user and berth-session, each checked:
    GetCallerIdentity names it and its policies deny what they should."""
    iam, sts = client("iam", port), client("sts", port)
    out: dict[str, Credentials] = {}
    try:
        managed = iam.create_policy(PolicyName="bench-read-only", PolicyDocument=MANAGED_POLICY)["Policy"]["Arn"]
        deployers = iam.create_policy(PolicyName="bench-deployers", PolicyDocument=DEPLOYERS_POLICY)["Policy"]["Arn"]
        iam.create_group(GroupName="bench-deployers")
        iam.put_group_policy(GroupName="bench-deployers", PolicyName="deploy", PolicyDocument=DEPLOYERS_POLICY)
        iam.create_user(UserName="bench-user")
        iam.put_user_policy(UserName="bench-user", PolicyName="bench", PolicyDocument=INLINE_POLICY)
        iam.attach_user_policy(UserName="bench-user", PolicyArn=managed)
        iam.add_user_to_group(GroupName="bench-deployers", UserName="bench-user")
        key = iam.create_access_key(UserName="bench-user")["AccessKey"]
        out["berth-user"] = Credentials(key["AccessKeyId"], key["SecretAccessKey"])

        trust = _policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ID}, "Action": "sts:AssumeRole"})
        role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam.put_role_policy(RoleName="bench-role", PolicyName="bench", PolicyDocument=INLINE_POLICY)
        iam.attach_role_policy(RoleName="bench-role", PolicyArn=managed)
        iam.attach_role_policy(RoleName="bench-role", PolicyArn=deployers)
        # An hour: longer than any run (a session past its expiry is refused).
        creds = sts.assume_role(RoleArn=role, RoleSessionName="bench", DurationSeconds=3600)["Credentials"]
        out["berth-session"] = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    except botocore.exceptions.ClientError as e:
        raise BenchError(f"berth: setting up the IAM user and role failed: {e}") from e

    expected = {
        "berth-user": f"arn:aws:iam::{ACCOUNT_ID}:user/bench-user",
        "berth-session": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/bench-role/bench",
    }
    for target, credentials in out.items():
        try:
            arn = client("sts", port, credentials).get_caller_identity()["Arn"]
        except botocore.exceptions.ClientError as e:
            raise BenchError(f"{target}: GetCallerIdentity failed: {e}") from e
        if arn != expected[target]:
            raise BenchError(f"{target}: GetCallerIdentity says {arn}, expected {expected[target]}")
        # The policies are in force: the explicit denies win over the allows.
        for call, what in (
            (lambda c: client("ecs", port, c).describe_clusters(clusters=["prod-db"]), "DescribeClusters of prod-db"),
            (lambda c: client("ec2", port, c).describe_vpcs(), "ec2:DescribeVpcs"),
        ):
            try:
                call(credentials)
            except botocore.exceptions.ClientError as e:
                if e.response["Error"]["Code"] not in ("AccessDeniedException", "UnauthorizedOperation"):
                    raise BenchError(f"{target}: {what} failed with {e}, expected access denied") from e
            else:
                raise BenchError(f"{target}: {what} was allowed; its policy denies it")
    return out


# ---------------------------------------------------------------- report


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def fmt(v, spec=".3f", unit=""):
    return "-" if v is None else f"{v:{spec}}{unit}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def report(results: dict, meta: dict) -> dict:
    lines = []
    p = lines.append
    p("")
    p("Berth API benchmark — one run, same machine, same minute")
    p(f"  machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['platform']}")
    p(f"  wrk: {WRK_THREADS} threads, {CONNECTIONS} connections, {SECONDS}s per run; latency: "
      f"{LATENCY_N} sequential requests on one keep-alive connection (after {WARMUP_N} warm-up)")
    p(f"  NOTE: the load generator (wrk, or the Python client) and the server share the same "
      f"{meta['cpus']} cores, so every figure includes client CPU contention; compare ratios, not absolutes.")
    p("  Every request is one SigV4-signed request replayed; Berth verifies the signature on each.")
    if any(t in IAM_TARGETS for t in TARGETS):
        p("  berth = root key (allowed everything, no policy read); on the same process, berth-user = an IAM user's")
        p("  access key and berth-session = AssumeRole session credentials, both authorized by realistic policies")
        p("  (inline 10 statements + managed 4 + group/second managed 3; denies, NotAction, conditions, wildcards).")
    other = meta.get("other_processes_cpu_share")
    if other is not None:
        p(f"  CPU used by processes outside this benchmark during the run: {other * 100:.0f}% of the machine"
          + ("  <- THE MACHINE WAS NOT IDLE: figures are noisy, rerun on an idle machine" if other > 0.10 else ""))
    p("")
    hdr = (f"{'target':<13} {'operation':<23} {'rps':>9} {'wrk p50':>9} {'wrk p99':>9} "
           f"{'seq p50':>9} {'seq p99':>9} {'srv p50':>9} {'srv p99':>9} {'cpu/req':>8} {'n-2xx':>6}")
    p(hdr)
    p("-" * len(hdr))
    for op in OPERATIONS:
        for target in TARGETS:
            r = results.get(op, {}).get(target)
            if r is None:
                continue
            if "error" in r:
                p(f"{target:<13} {op:<23} ERROR: {r['error'].splitlines()[0]}")
                continue
            t, lat = r["throughput"], r["latency"]
            srv = lat.get("server", {})
            p(f"{target:<13} {op:<23} {t['rps']:>9.0f} {fmt(t['latency']['p50_ms'], '.3f'):>9} "
              f"{fmt(t['latency']['p99_ms'], '.3f'):>9} {fmt(lat['client']['p50_ms']):>9} "
              f"{fmt(lat['client']['p99_ms']):>9} {fmt(srv.get('p50_ms')):>9} {fmt(srv.get('p99_ms')):>9} "
              f"{fmt(t.get('server_cpu_us_per_request'), '.0f'):>8} {t['non_2xx_3xx']:>6}")
    p("  (rps and wrk p50/p99: under load from wrk; seq p50/p99: one request at a time, client-side;")
    p("   srv p50/p99: Berth's own handling time from `server-timing: app;dur=`; all times in ms;")
    p("   cpu/req: the server process's CPU time per request under wrk, in microseconds)")
    p("")

    ratios: dict = {}
    p(f"{'ratios (subject / peer)':<23} {'operation':<23} {'rps':>8} {'wrk p50':>8} {'seq p50':>8} "
      f"{'srv p50':>8} {'cpu/req':>8}")
    # Berth against its peers; then each IAM caller against the root on the
    # same process (what authenticating and authorizing it costs).
    pairs = [("berth", "ceiling", "Berth/ceiling"), ("berth", "moto", "Berth/moto")]
    pairs += [(t, "berth", f"{t}/berth") for t in IAM_TARGETS]
    for op in OPERATIONS:
        for subject, peer, label in pairs:
            b = results.get(op, {}).get(subject)
            r = results.get(op, {}).get(peer)
            if not b or "error" in b or not r or "error" in r:
                continue
            entry = {
                "rps": ratio(b["throughput"]["rps"], r["throughput"]["rps"]),
                "wrk_p50": ratio(b["throughput"]["latency"]["p50_ms"], r["throughput"]["latency"]["p50_ms"]),
                "seq_p50": ratio(b["latency"]["client"]["p50_ms"], r["latency"]["client"]["p50_ms"]),
                "srv_p50": ratio(b["latency"].get("server", {}).get("p50_ms"),
                                 r["latency"].get("server", {}).get("p50_ms")),
                "cpu_per_request": ratio(b["throughput"].get("server_cpu_us_per_request"),
                                         r["throughput"].get("server_cpu_us_per_request")),
            }
            ratios.setdefault(op, {})[label.lower()] = entry
            p(f"{label:<23} {op:<23} {fmt_ratio(entry['rps']):>8} {fmt_ratio(entry['wrk_p50']):>8} "
              f"{fmt_ratio(entry['seq_p50']):>8} {fmt_ratio(entry['srv_p50']):>8} {fmt_ratio(entry['cpu_per_request']):>8}")
    p("  (rps ratio: higher is better for the subject; p50 and cpu/req ratios: lower is better, < 1 means the")
    p("   subject answers faster / spends less CPU per request; berth-user/berth and berth-session/berth are")
    p("   the cost of a non-root caller on the same server: 1.00x = authorization is free)")
    deltas = []
    for op in OPERATIONS:
        base = results.get(op, {}).get("berth")
        for t in IAM_TARGETS:
            r = results.get(op, {}).get(t)
            if not base or "error" in base or not r or "error" in r:
                continue

            def diff(get, scale=1.0):
                a, b = get(r), get(base)
                return None if a is None or b is None else (a - b) * scale

            cpu = diff(lambda x: x["throughput"].get("server_cpu_us_per_request"))
            srv = diff(lambda x: x["latency"].get("server", {}).get("p50_ms"), 1000)
            ratios.setdefault(op, {})[f"{t}/berth"]["extra_us"] = {"cpu_per_request": cpu, "srv_p50": srv}
            deltas.append(f"  {t:<13} {op:<23} CPU/req {fmt(cpu, '+.0f', ' us'):>9}   srv p50 {fmt(srv, '+.0f', ' us'):>9}")
    if deltas:
        p("Extra per request of an IAM caller over the root key (same process; authentication + authorization):")
        lines.extend(deltas)
    p("")

    targets = {}
    dc = results.get("DescribeClusters", {}).get("berth")
    if dc and "error" not in dc and "server" in dc["latency"]:
        v = dc["latency"]["server"]["p50_ms"]
        targets["describe_clusters_server_p50_lt_1ms"] = {"value_ms": v, "met": v < 1.0}
    for op in OPERATIONS:
        r = ratios.get(op, {}).get("berth/ceiling")
        if r and r["rps"] is not None:
            targets[f"{op}_rps_ge_50pct_ceiling"] = {"value": r["rps"], "met": r["rps"] >= 0.5}
    p("Targets")
    t = targets.get("describe_clusters_server_p50_lt_1ms")
    if t:
        p(f"  DescribeClusters server-side p50 < 1 ms:        {t['value_ms']:.3f} ms  -> {'MET' if t['met'] else 'NOT MET'}")
    for op in OPERATIONS:
        t = targets.get(f"{op}_rps_ge_50pct_ceiling")
        if t:
            note = "" if op == "DescribeClusters" else "  (informational: each one is a durable, fsynced write)"
            p(f"  {op + ' rps >= 50% of ceiling:':<47} {t['value'] * 100:.1f}%  -> {'MET' if t['met'] else 'NOT MET'}{note}")
    print("\n".join(lines), flush=True)
    return {"ratios": ratios, "targets": targets}


def machine_meta() -> dict:
    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def run(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    try:
        import moto  # noqa: PLC0415

        moto_version = moto.__version__
    except Exception:  # noqa: BLE001
        moto_version = None
    return {
        "loadavg_at_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "moto": moto_version,
        "wrk": (run([WRK, "--version"]) or "").splitlines()[0] if run([WRK, "--version"]) else None,
        "git_commit": run(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(run(["git", "status", "--porcelain"])),
    }


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(machine busy CPU-seconds, this process + reaped children CPU-seconds, wall)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: only user+nice+system,
    # since interrupt time (loopback networking) need not be charged to the
    # processes that caused it.
    busy = sum(fields[:3])
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), t.user + t.system + t.children_user + t.children_system, time.monotonic()


def other_cpu_share(start) -> float | None:
    """Share of the machine's CPU used by processes other than this benchmark
    (and the servers and wrk it started and reaped) since `start`."""
    end = cpu_snapshot()
    if start is None or end is None:
        return None
    wall = end[2] - start[2]
    other = (end[0] - start[0]) - (end[1] - start[1])
    return max(0.0, other) / (wall * (os.cpu_count() or 1)) if wall > 0 else None


# ---------------------------------------------------------------- main


def main() -> int:
    for t in TARGETS:
        if t not in ALL_TARGETS:
            raise BenchError(f"unknown target {t!r} in BENCH_TARGETS (known: {','.join(ALL_TARGETS)})")
    for path, what in ((BERTH_BIN, "berth"), (CEILING_BIN, "hello-ceiling")):
        if not os.access(path, os.X_OK):
            raise BenchError(f"{what} binary not found at {path} (run bench/api.sh, which builds it)")
    if not shutil.which(WRK) and not os.access(WRK, os.X_OK):
        raise BenchError("wrk not found (run bench/api.sh, which installs it)")

    started_at = dt.datetime.now(dt.timezone.utc)
    cpu0 = cpu_snapshot()
    meta = machine_meta()
    results: dict = {}
    ports: dict = {}
    pids: dict = {}
    moto_error: str | None = None
    with tempfile.TemporaryDirectory(prefix="berth-bench-") as tmp:
        workdir = Path(tmp)
        try:
            starters = {"ceiling": start_ceiling, "berth": start_berth, "moto": start_moto}
            # berth-user and berth-session are callers of berth's process.
            server_of = {t: "berth" if t in BERTH_TARGETS else t for t in TARGETS}
            for target in dict.fromkeys(server_of.values()):
                try:
                    server, port = starters[target](workdir)
                    for t, s in server_of.items():
                        if s == target:
                            ports[t], pids[t] = port, server.pid
                    log(f"{target} listening on 127.0.0.1:{port}")
                    if target in ("berth", "moto"):
                        create_cluster(target, port)
                    if target == "berth" and any(t in IAM_TARGETS for t in TARGETS):
                        CREDENTIALS.update(setup_iam(port))
                        log("berth: IAM user bench-user and role bench-role made; session of bench-role assumed")
                except (BenchError, OSError, botocore.exceptions.BotoCoreError) as e:
                    if target != "moto":
                        raise
                    # moto is the peer, not the subject: its failure is
                    # reported and the rest of the run stands.
                    moto_error = f"moto_server could not be used: {e}"
                    log(moto_error)
            for op in OPERATIONS:
                for target in TARGETS:
                    if target == "moto" and moto_error:
                        results.setdefault(op, {})[target] = {"error": moto_error}
                        continue
                    port = ports[target]
                    try:
                        log(f"{op} on {target}: latency ({LATENCY_N} sequential requests)")
                        lat = measure_latency(target, port, op)
                        log(f"{op} on {target}: throughput (wrk {SECONDS}s)")
                        thr = measure_throughput(target, port, op, workdir, pids[target])
                    except (BenchError, OSError, ValueError, http.client.HTTPException) as e:
                        if target != "moto":
                            raise
                        moto_error = f"moto failed during {op}: {e}"
                        log(moto_error)
                        results.setdefault(op, {})[target] = {"error": moto_error}
                        continue
                    results.setdefault(op, {})[target] = {"latency": lat, "throughput": thr}
        finally:
            for name in ("berth.err", "moto.err"):
                if (workdir / name).exists():
                    tail = _tail(workdir / name, 5)
                    if "panic" in tail.lower():
                        log(f"{name} shows a panic:\n{tail}")
            stop_all()

    finished_at = dt.datetime.now(dt.timezone.utc)
    meta["other_processes_cpu_share"] = other_cpu_share(cpu0)
    summary = report(results, meta)
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    out_path = out_dir / f"api-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    out_path.write_text(json.dumps({
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "settings": {
            "seconds": SECONDS, "latency_n": LATENCY_N, "warmup_n": WARMUP_N,
            "connections": CONNECTIONS, "wrk_threads": WRK_THREADS, "targets": TARGETS,
            "shared_cores_note": "wrk/the Python client and the servers share the same cores",
        },
        "machine": meta,
        "results": results,
        **summary,
    }, indent=2) + "\n")
    print(f"\nraw results: {out_path.relative_to(ROOT)}  (took {(finished_at - started_at).total_seconds():.0f}s)")
    if STRICT and not all(t["met"] for t in summary["targets"].values()):
        return 3
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
    finally:
        stop_all()

"""Load balancer benchmark: wrk through Berth's ALB, nginx and HAProxy.

Each proxy forwards plain HTTP/1.1 GETs to the same backend
(`hello-ceiling`, a bare hyper server) on 127.0.0.1 with pooled keep-alive
upstream connections, one proxy at a time, in the same few minutes. Berth's
ALB is configured the way a user does it: `berth server`, then
CreateLoadBalancer / CreateTargetGroup (ip target) / CreateListener through
boto3, and the benchmark waits until DescribeTargetHealth says `healthy`.

Reported per proxy: requests/s, p50/p99 latency (wrk), the proxy's own CPU
time per request (user+system of the proxy's processes over the run), and
the ratios against HAProxy. Run through bench/lb.sh.

Environment:
  BENCH_SECONDS      wrk duration per run (default 10)
  BENCH_CONNECTIONS  wrk connections (default 64)
  BENCH_WRK_THREADS  wrk threads (default 1)
  BENCH_TARGETS      comma list of berth,nginx,haproxy (default all)
  BENCH_WORKERS      worker processes/threads for nginx and HAProxy
                     (default: the number of cores; Berth's runtime uses
                     one thread per core as well)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import (  # noqa: E402  (shared process and wrk helpers)
    ACCESS_KEY_ID,
    BERTH_BIN,
    CEILING_BIN,
    REGION,
    SECRET_ACCESS_KEY,
    WRK,
    WRK_DONE,
    BenchError,
    start_berth as start_berth_server,
    free_port,
    log,
    process_cpu_seconds,
    spawn,
    stop,
    stop_all,
    wait_port,
    wait_ready_line,
)

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "1"))
TARGETS = [t.strip() for t in os.environ.get("BENCH_TARGETS", "haproxy,nginx,berth").split(",") if t.strip()]
WORKERS = int(os.environ.get("BENCH_WORKERS", str(os.cpu_count() or 2)))
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
HAPROXY = os.environ.get("HAPROXY", "/usr/sbin/haproxy")


def process_tree_cpu_seconds(pid: int) -> float | None:
    """CPU time of `pid` and its direct children (nginx's workers)."""
    total = process_cpu_seconds(pid)
    if total is None:
        return None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += process_cpu_seconds(int(stat.parent.name)) or 0.0
    return total


# ---------------------------------------------------------------- proxies


def start_nginx(workdir: Path, backend: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
daemon off;
master_process on;
worker_processes {WORKERS};
pid {workdir}/nginx.pid;
error_log {workdir}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_buffering off;
    }}
  }}
}}
""")
    err = workdir / "nginx.stderr"
    proc = spawn([NGINX, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "nginx.err")],
                 stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    wait_port(proc, port, err, "nginx")
    return proc, port


def start_haproxy(workdir: Path, backend: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = workdir / "haproxy.cfg"
    conf.write_text(f"""
global
  nbthread {WORKERS}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:{port}
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Forwarded-Port %[dst_port]
  default_backend be
backend be
  server s1 127.0.0.1:{backend}
""")
    err = workdir / "haproxy.stderr"
    proc = spawn([HAPROXY, "-db", "-f", str(conf)], stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    wait_port(proc, port, err, "haproxy")
    return proc, port


def start_berth(workdir: Path, backend: int) -> tuple[subprocess.Popen, int]:
    proc, api_port = start_berth_server(workdir, ("--lb-bind", "127.0.0.1"))
    err = workdir / "berth.err"
    elb = boto3.client(
        "elbv2",
        endpoint_url=f"http://127.0.0.1:{api_port}",
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 1}),
    )
    lb = elb.create_load_balancer(Name="bench", Type="application", Subnets=["subnet-bench-a", "subnet-bench-b"])["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="bench-tg", Protocol="HTTP", Port=backend, VpcId=lb["VpcId"], TargetType="ip",
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
    )["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": backend}])
    port = free_port()
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        state = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"][0][
            "TargetHealth"]["State"]
        if state == "healthy":
            break
        time.sleep(0.5)
    if state != "healthy":
        raise BenchError(f"Berth's target never became healthy (last state {state})")
    wait_port(proc, port, err, "berth ALB listener")
    return proc, port


STARTERS = {"haproxy": start_haproxy, "nginx": start_nginx, "berth": start_berth}


# ---------------------------------------------------------------- measuring


def run_wrk(target: str, port: int, pid: int, workdir: Path, seconds: int) -> dict:
    script = workdir / "wrk-get.lua"
    script.write_text(WRK_DONE)
    cmd = [WRK, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "--latency",
           "-s", str(script), f"http://127.0.0.1:{port}/"]
    cpu_before = process_tree_cpu_seconds(pid)
    proc = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        stop(proc)
    cpu_after = process_tree_cpu_seconds(pid)
    text = out.decode(errors="replace")
    m = re.search(r"^BENCH_JSON (\{.*\})\s*$", text, re.M)
    if proc.returncode != 0 or not m:
        raise BenchError(f"wrk against {target} failed (exit {proc.returncode}):\n{text}")
    s = json.loads(m.group(1))
    if s["requests"] == 0:
        raise BenchError(f"wrk against {target} completed no request:\n{text}")
    errors = s["connect_errors"] + s["read_errors"] + s["write_errors"] + s["timeouts"]
    return {
        "rps": s["requests"] / (s["duration_us"] / 1e6),
        "requests": s["requests"],
        "failed": s["non_2xx_3xx"] + errors,
        "p50_ms": s["lat_p50_us"] / 1000,
        "p99_ms": s["lat_p99_us"] / 1000,
        "cpu_us_per_request": (cpu_after - cpu_before) * 1e6 / s["requests"]
        if cpu_before is not None and cpu_after is not None else None,
    }


def main() -> None:
    for path, what in ((BERTH_BIN, "berth"), (CEILING_BIN, "hello-ceiling"), (WRK, "wrk")):
        if not os.path.exists(path):
            raise BenchError(f"{what} not found at {path} (run bench/lb.sh)")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="berth-lb-bench-") as tmp:
        workdir = Path(tmp)
        out, err = workdir / "backend.out", workdir / "backend.err"
        backend_proc = spawn([CEILING_BIN, "--listen", "127.0.0.1:0"], stdout=out.open("wb"), stderr=err.open("wb"))
        backend = wait_ready_line(backend_proc, out, err, "hello-ceiling")
        log(f"backend hello-ceiling on 127.0.0.1:{backend}; {SECONDS}s per run, {CONNECTIONS} connections, "
            f"{WORKERS} proxy workers")
        for target in TARGETS:
            tdir = workdir / target
            tdir.mkdir()
            proc, port = STARTERS[target](tdir, backend)
            try:
                run_wrk(target, port, proc.pid, tdir, 2)  # warm the pools and caches
                results[target] = run_wrk(target, port, proc.pid, tdir, SECONDS)
                log(f"{target}: {results[target]}")
            finally:
                stop(proc)
        stop(backend_proc)
    print(f"\n# {os.uname().sysname} {os.uname().release}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    print(f"# wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{SECONDS}s GET / -> proxy -> hello-ceiling (127.0.0.1)")
    print(f"{'proxy':<8} {'rps':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu us/req':>11} {'failed':>7}")
    for target, r in results.items():
        cpu = f"{r['cpu_us_per_request']:.1f}" if r["cpu_us_per_request"] is not None else "n/a"
        print(f"{target:<8} {r['rps']:>10.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {cpu:>11} {r['failed']:>7}")
    base = results.get("haproxy")
    if base:
        print("\nratios against HAProxy (rps: higher is better; p99, cpu: lower is better)")
        for target, r in results.items():
            if target == "haproxy":
                continue
            cpu = (f"{r['cpu_us_per_request'] / base['cpu_us_per_request']:.2f}x"
                   if r["cpu_us_per_request"] and base["cpu_us_per_request"] else "n/a")
            print(f"  {target:<8} rps {r['rps'] / base['rps']:.2f}x   p99 {r['p99_ms'] / base['p99_ms']:.2f}x"
                  f"   cpu/req {cpu}")
        b = results.get("berth")
        if b:
            met = b["rps"] >= base["rps"] and b["p99_ms"] <= base["p99_ms"] * 1.10
            print(f"\ntarget (rps >= HAProxy's, p99 within 10% of it): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
    finally:
        stop_all()

#!/usr/bin/env bash
# Load balancer benchmark: wrk through Berth's ALB, nginx and HAProxy, each
# proxying to the same bare hyper backend on 127.0.0.1; prints rps, p99 and
# CPU per request with the ratios against HAProxy. See bench/README.md.
#
#   bench/lb.sh
#
# Installs what it needs when missing (wrk, nginx-light, haproxy from Debian,
# with their services kept from starting; bench/.venv with boto3), builds the
# release binaries (berth, hello-ceiling), then runs bench/lb.py (its header
# lists the environment knobs). About a minute of measuring.
set -euo pipefail
cd "$(dirname "$0")"
BENCH_DIR="$PWD"
ROOT="$(cd .. && pwd)"

. "$BENCH_DIR/setup.sh"
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
bench_apt_install "${missing[@]}"
bench_venv
bench_build
mkdir -p results
OUT="results/lb-$(date -u +%Y%m%dT%H%M%SZ).txt"
"$VENV/bin/python" "$BENCH_DIR/lb.py" "$@" | tee "$OUT"

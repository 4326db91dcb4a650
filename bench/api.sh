#!/usr/bin/env bash
# API benchmark: DescribeClusters and RegisterTaskDefinition latency and
# throughput against Berth (as the root, an IAM user and an STS session: what
# authorization costs), moto_server and a bare hyper server (the ceiling), in
# one run on this machine, with the ratios. See bench/README.md.
#
#   bench/api.sh
#
# Installs what it needs when missing (wrk from Debian; bench/.venv with the
# pinned boto3 + moto[server] of bench/requirements.txt), builds the release
# binaries (berth, hello-ceiling), then runs bench/api.py. All traffic stays
# on 127.0.0.1. Takes about 4 minutes with the defaults.
#
# Environment (see bench/api.py for all):
#   BENCH_SECONDS      wrk duration per run (default 10)
#   BENCH_LATENCY_N    sequential requests per latency run (default 2000)
#   BENCH_CONNECTIONS  wrk connections (default 32)
#   BENCH_STRICT=1     exit 3 when a target is missed
#   BENCH_VENV         the virtualenv to use (default: bench/.venv)
#   CARGO_TARGET_DIR   where cargo builds (default: the workspace's target/)
set -euo pipefail
cd "$(dirname "$0")"
BENCH_DIR="$PWD"
ROOT="$(cd .. && pwd)"

. "$BENCH_DIR/setup.sh"
command -v wrk >/dev/null 2>&1 || bench_apt_install wrk
bench_venv
bench_build
export MOTO_SERVER="${MOTO_SERVER:-$VENV/bin/moto_server}"
exec "$VENV/bin/python" "$BENCH_DIR/api.py" "$@"

#!/usr/bin/env bash
# API benchmark: DescribeClusters and RegisterTaskDefinition latency and
# throughput against Berth, moto_server and a bare hyper server (the
# ceiling), in one run on this machine, with the ratios. See bench/README.md.
#
#   bench/api.sh
#
# Installs what it needs when missing (wrk from Debian; bench/.venv with the
# pinned boto3 + moto[server] of bench/requirements.txt), builds the release
# binaries (berth, hello-ceiling), then runs bench/api.py. All traffic stays
# on 127.0.0.1. Takes about 2.5 minutes with the defaults.
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

if ! command -v wrk >/dev/null 2>&1; then
  echo "[bench] installing wrk" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

VENV="${BENCH_VENV:-$BENCH_DIR/.venv}"
stamp="$VENV/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bench] installing the Python venv at $VENV (boto3, moto[server])" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" >"$stamp"
fi

echo "[bench] building release binaries (berth, hello-ceiling)" >&2
(cd "$ROOT" && cargo build --release --quiet -p berth -p berth-bench)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac

export BERTH_BIN="${BERTH_BIN:-$TARGET_DIR/release/berth}"
export CEILING_BIN="${CEILING_BIN:-$TARGET_DIR/release/hello-ceiling}"
export MOTO_SERVER="${MOTO_SERVER:-$VENV/bin/moto_server}"
exec "$VENV/bin/python" "$BENCH_DIR/api.py" "$@"

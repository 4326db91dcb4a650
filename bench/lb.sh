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

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[bench] installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # Debian starts nginx and haproxy as services on install; the benchmark
  # runs its own instances, so keep the packaged ones from starting.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    trap '$SUDO rm -f "$policy"' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

VENV="${BENCH_VENV:-$BENCH_DIR/.venv}"
stamp="$VENV/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bench] installing the Python venv at $VENV" >&2
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
mkdir -p results
OUT="results/lb-$(date -u +%Y%m%dT%H%M%SZ).txt"
"$VENV/bin/python" "$BENCH_DIR/lb.py" "$@" | tee "$OUT"

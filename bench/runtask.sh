#!/usr/bin/env bash
# RunTask -> RUNNING latency (p50, p99 over N tasks, warm image cache) beside
# the bare OCI runtime (`runc run -d`) starting the same root filesystem, and
# the agent's idle RSS. Release builds; needs root, runc, iproute2, nftables
# and docker-registry (../test.sh --deps-only installs them).
#
#   bench/runtask.sh [N]        # default 100
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
cargo build --release -p berth -p berth-bench --bins
TARGET="${CARGO_TARGET_DIR:-target}/release"
"$TARGET/runtask-latency" --berth "$TARGET/berth" --tasks "$N" | tee "bench/results/runtask-$(date -u +%Y%m%dT%H%M%SZ).txt"

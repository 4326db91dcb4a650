#!/usr/bin/env bash
# Services at scale: pure placements/s (berth-placement over 5,000
# simulated instances, 100,000 tasks in batches of 10: binpack, spread by
# zone, random), then a service of N tasks on H simulated hosts against a
# real release `berth server` (CreateService -> runningCount N, and the time
# to replace one lost host's tasks). Release builds; no root needed.
#
#   bench/services.sh [TASKS] [HOSTS]     # default 5000 1000
#   HOST_LOST_AFTER=SECS bench/services.sh   # passed to berth server
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS="${1:-5000}"
HOSTS="${2:-1000}"
cargo build --release -p berth -p berth-bench --bins
TARGET="${CARGO_TARGET_DIR:-target}/release"
OUT="bench/results/services-$(date -u +%Y%m%dT%H%M%SZ).txt"
EXTRA=()
if [ -n "${HOST_LOST_AFTER:-}" ]; then EXTRA=(--host-lost-after "$HOST_LOST_AFTER"); fi
{
  echo "# $(uname -srm), $(nproc) cores, $(date -u +%FT%TZ)"
  "$TARGET/placement"
  echo
  "$TARGET/service-scale" --berth "$TARGET/berth" --hosts "$HOSTS" --tasks "$TASKS" "${EXTRA[@]}"
} 2>&1 | tee "$OUT"

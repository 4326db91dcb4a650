#!/usr/bin/env bash
# Start Berth and drive it with the aws CLI: builds the binary, starts
# `berth server` on 127.0.0.1:4566 with ./berth-data, creates a cluster,
# registers examples/web.json, describes it, and leaves the server running
# in the foreground (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")"

LISTEN="${BERTH_LISTEN:-127.0.0.1:4566}"
DATA_DIR="${BERTH_DATA_DIR:-./berth-data}"

cargo build --release -p berth
BIN="${CARGO_TARGET_DIR:-target}/release/berth"

# The aws CLI, in a private venv, if the machine has none.
if ! command -v aws >/dev/null 2>&1; then
  if [ ! -x .venv/bin/aws ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet -r requirements-test.txt
  fi
  PATH="$PWD/.venv/bin:$PATH"
fi

out="$(mktemp)"
"$BIN" server --listen "$LISTEN" --data-dir "$DATA_DIR" >"$out" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do grep -q '^ready ' "$out" && break; sleep 0.1; done
grep -q '^ready ' "$out" || { cat "$out"; echo "berth server did not start" >&2; exit 1; }
cat "$out"

creds="$DATA_DIR/root-credentials.json"
export AWS_ENDPOINT_URL="http://$LISTEN" AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID="${BERTH_ROOT_ACCESS_KEY_ID:-$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessKeyId"])' "$creds")}"
export AWS_SECRET_ACCESS_KEY="${BERTH_ROOT_SECRET_ACCESS_KEY:-$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secretAccessKey"])' "$creds")}"

set -x
aws sts get-caller-identity
aws ecs create-cluster --cluster-name demo
aws ecs register-task-definition --cli-input-json file://examples/web.json
aws ecs describe-task-definition --task-definition web
aws ecs list-task-definitions
set +x
echo
echo "Berth is running on http://$LISTEN. In another shell:"
echo "  export AWS_ENDPOINT_URL=http://$LISTEN AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=<from $creds>"
echo "Ctrl-C stops the server."
wait "$server"

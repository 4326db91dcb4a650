#!/usr/bin/env bash
# Run every Berth test: the Rust workspace (cargo nextest) and the ECS
# conformance suite (pytest driving boto3 and the aws CLI against the built
# server). Works on a fresh Debian machine: it installs the Debian packages
# and the Python virtualenv (.venv) the tests need, and skips both when they
# are already in place.
#
#   ./test.sh
#
# Environment:
#   CARGO_TARGET_DIR   where cargo builds (default: the workspace's target/)
#   BERTH_TEST_VENV    the virtualenv to use (default: .venv)
#   PYTHON             the interpreter that creates it (default: python3)
#   PYTEST_ADDOPTS     extra pytest options (standard pytest variable)
#
# Both suites always run; the exit status is non-zero if any stage failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD

# Debian packages the tests need, installed only when missing. One per line.
APT_PACKAGES=(
    runc            # berth-runtime: the OCI runtime the shim drives
    busybox-static  # berth-runtime: test container rootfs
    nftables        # berth-net: published ports (DNAT)
    iproute2        # berth-net: ip netns / links
    docker-registry # berth-testkit: the OCI Distribution registry e2e tests pull from
)

PYTHON=${PYTHON:-python3}
VENV=${BERTH_TEST_VENV:-$ROOT/.venv}
REQUIREMENTS=$ROOT/requirements-test.txt

LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/berth-test.XXXXXX")
trap 'rm -rf "$LOG_DIR"' EXIT

say() { printf '\n==> %s\n' "$*"; }

# Run "$@" with errexit active inside, without letting a failure stop this
# script: the stage's exit code lands in STAGE_RC.
run_stage() {
    set +e
    ( set -e; "$@" )
    STAGE_RC=$?
    set -e
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root to run: $*" >&2
        return 1
    fi
}

install_apt_packages() {
    local wanted=("${APT_PACKAGES[@]}")
    # A Debian python3 can only create virtualenvs with python3-venv.
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        wanted+=(python3-venv)
    fi
    if [ ${#wanted[@]} -eq 0 ]; then
        return 0
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "not a Debian system: make sure these are installed: ${wanted[*]}" >&2
        return 0
    fi
    local missing=()
    local p
    for p in "${wanted[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

setup_venv() {
    # The stamp records what the venv was built from: the requirements and
    # the interpreter. Anything else changed means reinstall.
    local stamp_file=$VENV/.berth-requirements.sha256
    local want
    want=$( { cat "$REQUIREMENTS"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
    if [ -x "$VENV/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ]; then
        return 0
    fi
    say "setting up the Python virtualenv in $VENV"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"
    echo "$want" >"$stamp_file"
}

target_dir() {
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then
        echo "$CARGO_TARGET_DIR"
    else
        cargo metadata --format-version 1 --no-deps \
            | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
    fi
}

build_server() {
    cargo build -p berth
}

run_nextest() {
    cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$LOG_DIR/nextest.log"
}

run_pytest() {
    PATH="$VENV/bin:$PATH" BERTH_BIN=$BERTH_BIN \
        "$VENV/bin/python" -m pytest tests/conformance -q 2>&1 | tee "$LOG_DIR/pytest.log"
}

# "N passed" and "N failed" (errors count as failed) from a runner's summary line.
count() { # log file, line pattern, word
    local line
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" 2>/dev/null | grep -E "$2" | tail -n 1 || true)
    local n=0 w
    for w in $3; do
        local k
        k=$(grep -oE "[0-9]+ $w\b" <<<"$line" | head -n 1 | cut -d' ' -f1 || true)
        n=$((n + ${k:-0}))
    done
    echo "$n"
}

declare -A RESULT

# `./test.sh --deps-only`: install what Berth needs and stop (run.sh uses it).
if [ "${1:-}" = "--deps-only" ]; then
    install_apt_packages
    setup_venv
    exit 0
fi

say "checking Debian packages"
run_stage install_apt_packages
RESULT[setup]=$STAGE_RC

say "preparing the Python virtualenv"
run_stage setup_venv
venv_rc=$STAGE_RC
[ "$venv_rc" -eq 0 ] || RESULT[setup]=$venv_rc

say "cargo build -p berth"
run_stage build_server
RESULT[build]=$STAGE_RC
TARGET_DIR=$(target_dir) || TARGET_DIR=$ROOT/target
BERTH_BIN=$TARGET_DIR/debug/berth
export BERTH_BIN

say "cargo nextest run --workspace --no-fail-fast"
run_stage run_nextest
RESULT[nextest]=$STAGE_RC

say "pytest tests/conformance (BERTH_BIN=$BERTH_BIN)"
if [ "${RESULT[build]}" -ne 0 ] || [ ! -x "$BERTH_BIN" ]; then
    echo "skipped: the berth binary was not built" >&2
    RESULT[pytest]=1
elif [ "$venv_rc" -ne 0 ] || [ ! -x "$VENV/bin/python" ]; then
    echo "skipped: the Python virtualenv could not be set up" >&2
    RESULT[pytest]=1
else
    run_stage run_pytest
    RESULT[pytest]=$STAGE_RC
fi

passed=$(( $(count "$LOG_DIR/nextest.log" 'Summary \[' passed) + $(count "$LOG_DIR/pytest.log" '(passed|failed|error)' passed) ))
failed=$(( $(count "$LOG_DIR/nextest.log" 'Summary \[' 'failed timed') + $(count "$LOG_DIR/pytest.log" '(passed|failed|error)' 'failed errors error') ))

status=0
report=""
for stage in setup build nextest pytest; do
    if [ "${RESULT[$stage]}" -eq 0 ]; then
        report+="$stage ok; "
    else
        report+="$stage FAILED (exit ${RESULT[$stage]}); "
        status=1
    fi
done
echo
echo "stages: ${report%; }"
echo "summary: $passed passed, $failed failed"
exit "$status"

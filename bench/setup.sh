# Shared by the Python-driven benchmarks (api.sh, lb.sh); sourced, not run.
# Expects BENCH_DIR (this folder) and ROOT (the workspace).

# Install Debian packages that are missing; a package's services are kept
# from starting (the benchmarks run their own instances).
bench_apt_install() {
  [ $# -gt 0 ] || return 0
  echo "[bench] installing $*" >&2
  local sudo="" policy=/usr/sbin/policy-rc.d added=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    added=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
  [ -z "$added" ] || $sudo rm -f "$policy"
}

# The venv with requirements.txt (boto3, moto[server]), reinstalled when the
# requirements change. Sets VENV.
bench_venv() {
  VENV="${BENCH_VENV:-$BENCH_DIR/.venv}"
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$BENCH_DIR/requirements.txt" | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[bench] installing the Python venv at $VENV (boto3, moto[server])" >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$BENCH_DIR/requirements.txt"
    echo "$want" >"$stamp"
  fi
}

# Release builds of berth and the bench binaries; exports BERTH_BIN and
# CEILING_BIN unless already set.
bench_build() {
  echo "[bench] building release binaries (berth, berth-bench)" >&2
  (cd "$ROOT" && cargo build --release --quiet -p berth -p berth-bench)
  local target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
  case "$target_dir" in /*) ;; *) target_dir="$ROOT/$target_dir" ;; esac
  export BERTH_BIN="${BERTH_BIN:-$target_dir/release/berth}"
  export CEILING_BIN="${CEILING_BIN:-$target_dir/release/hello-ceiling}"
}

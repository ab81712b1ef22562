#!/usr/bin/env bash
# `make bench`: install what the benchmark needs, then drive every target (see bench/README.md).
# BENCH_TARGETS=direct,litellm skips the others; every knob is listed in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

install_tools() {
  local missing=()
  command -v nginx >/dev/null || missing+=(nginx)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  [ ${#missing[@]} -eq 0 ] && return
  apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
}

install_litellm() {
  local venv=bench/.litellm-venv
  [ -x "$venv/bin/litellm" ] && return
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'litellm[proxy]==1.108.7'
}

# Portkey's gateway from npm, with the dependency versions of its own lockfile pinned by
# bench/portkey/package.json (overrides); reinstalled when that file changes.
install_portkey() {
  local dir=bench/.portkey
  command -v node >/dev/null && command -v npm >/dev/null || apt-get install -y nodejs npm
  if [ -f "$dir/node_modules/@portkey-ai/gateway/package.json" ] \
    && cmp -s bench/portkey/package.json "$dir/package.json"; then
    return
  fi
  mkdir -p "$dir"
  cp bench/portkey/package.json "$dir/package.json"
  # No install scripts: the package's postinstall (patch-package) has no patches to apply.
  (cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
}

targets="${BENCH_TARGETS:-direct,litellm,portkey,gateway}"
install_tools
case ",$targets," in *,litellm,*) install_litellm ;; esac
case ",$targets," in *,portkey,*) install_portkey ;; esac

export BENCH_TARGETS="$targets"
if [ -z "${BENCH_PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then BENCH_PYTHON="$PWD/.venv/bin/python"; else BENCH_PYTHON="$(command -v python3)"; fi
fi
export BENCH_PYTHON
# granian only for the server comparison: the gateway's own requirements do not carry it.
case ",$targets," in
  *,gateway-granian,*)
    "$BENCH_PYTHON" -c 'import granian' 2>/dev/null \
      || "$BENCH_PYTHON" -m pip install --quiet --disable-pip-version-check granian==2.8.9 ;;
esac
export BENCH_DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/gw_bench}"
export BENCH_REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/9}"
# A fresh Redis database: no rate-limit counters or cached answers left from an earlier run.
redis-cli -u "$BENCH_REDIS_URL" flushdb >/dev/null

# The driver stops every server it starts; this is the backstop if it is itself killed.
driver_pid=""
cleanup() { [ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$BENCH_PYTHON" bench/bench.py &
driver_pid=$!
status=0
wait "$driver_pid" || status=$?
driver_pid=""
exit "$status"

#!/usr/bin/env bash
# setup.sh: make a Debian 12 machine ready to build and test mcplex, then build it.
#   1. apt: installs only the packages that are missing (nothing to do, no output, when all are
#      there; sudo only when not root);
#   2. npm ci in tests/ (the real MCP peers the tests run, pinned by tests/package-lock.json),
#      only when tests/node_modules is missing or older than the lockfile;
#   3. cmake configure (RelWithDebInfo) and build into build/ with -j2.
# Usage: bazel-free-build/setup.sh [-v|--verbose] [--run [mcplex args...]]
#   --run   exec build/mcplex afterwards; without args it serves the embedded default example
#           (examples/default.yaml) at http://127.0.0.1:3000/mcp.
# Env: BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo), JOBS (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_DIR="$PWD"
BUILD_DIR="${BUILD_DIR:-build}"
BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
JOBS="${JOBS:-2}"
VERBOSE=0
RUN=0
RUN_ARGS=()

while (($#)); do
  case "$1" in
    -v | --verbose) VERBOSE=1 ;;
    --run) RUN=1; shift; RUN_ARGS=("$@"); break ;;
    -h | --help) sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "setup.sh: unknown option: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

cd "$ROOT"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
LOG_DIR="$BUILD_DIR/setup-logs"

say() { echo "setup: $*" >&2; }

# quiet NAME CMD...: runs CMD with its output in $LOG_DIR/NAME.log; on failure shows the tail.
quiet() {
  local name="$1"; shift
  if ((VERBOSE)); then "$@"; return; fi
  mkdir -p "$LOG_DIR"
  if ! "$@" >"$LOG_DIR/$name.log" 2>&1; then
    say "'$*' failed; last lines of $LOG_DIR/$name.log:"
    tail -n 60 "$LOG_DIR/$name.log" >&2
    return 1
  fi
}

# ---- 1. system packages ----------------------------------------------------------------------
APT_PACKAGES=(
  build-essential cmake pkg-config
  libevent-dev libnghttp2-dev libhttp-parser-dev
  libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev libgrpc-dev
  libssl-dev libcjson-dev libyaml-dev libcmocka-dev
  android-libboringssl-dev # the TLS unit test's BoringSSL build (issue 4; test.sh)
  openssl # certificates made at test time by the TLS tests
  nghttp2-client curl ca-certificates
  prometheus # only for promtool: `promtool check metrics` on /stats/prometheus (80-admin.mjs, issue 7)
  chromium # the web UI's browser test (tests/integration/85-ui.mjs, issue 7)
)

install_packages() {
  local missing=() p status
  if ! command -v dpkg-query >/dev/null; then
    say "no dpkg-query: not a Debian system; install the equivalents of: ${APT_PACKAGES[*]} nodejs npm"
    return 0
  fi
  for p in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
    [[ "$status" == ii* ]] || missing+=("$p")
  done
  # Node (20 on CI, from NodeSource, which bundles npm) is only installed when absent.
  if ! command -v node >/dev/null; then
    missing+=(nodejs npm)
  elif ! command -v npm >/dev/null; then
    missing+=(npm)
  fi
  ((${#missing[@]})) || return 0

  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { say "need root or sudo to install: ${missing[*]}"; return 1; }
    sudo=(sudo)
  fi
  say "installing ${missing[*]}"
  quiet apt-update "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  quiet apt-install "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ---- 2. test peers (npm) ---------------------------------------------------------------------
install_test_peers() {
  local marker="tests/node_modules/.package-lock.json"
  if [[ -f "$marker" && ! tests/package-lock.json -nt "$marker" && ! tests/package.json -nt "$marker" ]]; then
    return 0
  fi
  say "npm ci in tests/ (pinned MCP servers and SDK for the test suite)"
  quiet npm-ci bash -c 'cd tests && npm ci --no-audit --no-fund --loglevel=error'
}

# ---- 3. configure and build ------------------------------------------------------------------
build() {
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    say "configuring $BUILD_DIR ($BUILD_TYPE)"
  fi
  quiet cmake-configure cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE"
  quiet cmake-build cmake --build "$BUILD_DIR" -j "$JOBS"
}

install_packages
install_test_peers
build

if ((RUN)); then
  # Run from tests/ so the `npx -y <package>` commands of the default example resolve to the
  # pinned packages in tests/node_modules (no download, fast start). File arguments given
  # relative to the caller's directory are made absolute first.
  args=()
  for a in "${RUN_ARGS[@]+"${RUN_ARGS[@]}"}"; do
    if [[ "$a" != /* && "$a" != -* && -e "$CALLER_DIR/$a" ]]; then
      args+=("$CALLER_DIR/$a")
    else
      args+=("$a")
    fi
  done
  cd "$ROOT/tests"
  say "starting $BUILD_DIR/mcplex ${args[*]+"${args[*]}"}"
  exec "$BUILD_DIR/mcplex" "${args[@]+"${args[@]}"}"
fi

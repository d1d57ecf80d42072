#!/usr/bin/env bash
# test.sh: the whole test suite. Runs setup.sh (packages, test peers, build), then ctest:
# cmocka unit tests and the integration tests (tests/integration/NN-*.mjs against real MCP
# servers on 127.0.0.1). ctest's summary line closes the output; the exit code is ctest's.
# Usage: bazel-free-build/test.sh [extra ctest args, e.g. -R integration_10 or -L unit]
# Env: BUILD_DIR (default build), JOBS (default 2). Logs of each integration test stay in
# tests/artifacts/<test>/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"

bash "$ROOT/bazel-free-build/setup.sh"

# The TLS unit test once more against Debian's BoringSSL (issue 4): src/net/tls.c must keep to
# the API OpenSSL 3 and BoringSSL share. Only that test is built, in its own small build dir.
BORING_DIR="${BORING_BUILD_DIR:-$BUILD_DIR-boringssl}"
boring_rc=0
if [[ -d /usr/include/android/openssl ]]; then
  { cmake -S "$ROOT" -B "$BORING_DIR" -DMCPLEX_TLS_BORINGSSL=ON >/dev/null &&
    cmake --build "$BORING_DIR" --target unit_net_test_tls_boringssl -j "${JOBS:-2}" >/dev/null &&
    ctest --test-dir "$BORING_DIR" --output-on-failure -R '^unit_net_test_tls_boringssl$'; } || boring_rc=$?
else
  echo "test.sh: android-libboringssl-dev is missing: the BoringSSL TLS test did not run" >&2
  boring_rc=1
fi

rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error -j "${JOBS:-2}" "$@" || rc=$?
((rc != 0)) || rc=$boring_rc
exit "$rc"

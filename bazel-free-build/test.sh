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

rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error -j "${JOBS:-2}" "$@" || rc=$?
exit "$rc"

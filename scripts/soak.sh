#!/usr/bin/env bash
# The long tests, separate from the test suite because they run for minutes:
# the soak (mixed load, random receiver faults, a restart; nothing may be
# lost; the worker's memory is printed at start and end), then the crash
# tests at ten times their size (tens of thousands of events, 30 immediate
# stops). Usage: bash scripts/soak.sh [minutes]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/deps.sh
ensure_deps && require_node 20 || exit 1
build_and_install
node test/soak.mjs "${1:-3}"
OUTBOX_CRASH_SCALE=10 node --test test/e2e/crash.test.mjs

#!/usr/bin/env bash
# Soak test, separate from the test suite because it runs for minutes:
# mixed load, random receiver faults, a restart; nothing may be lost, and the
# worker's memory is printed at start and end. Usage: bash scripts/soak.sh [minutes]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/deps.sh
ensure_deps
build_and_install
node test/soak.mjs "${1:-3}"

#!/usr/bin/env bash
# Fails when a file under the given directories includes a PostgreSQL header.
set -euo pipefail
if grep -rnE '#\s*include\s*[<"](postgres|postgres_ext|fmgr|funcapi|miscadmin|pg_config|executor/|utils/|access/|catalog/|storage/|postmaster/|nodes/|commands/|lib/|libpq/|tcop/)' "$@"; then
    echo "src/core, src/http and src/sink must not include PostgreSQL headers" >&2
    exit 1
fi
echo "no PostgreSQL headers in: $*"

#!/usr/bin/env bash
# Runs the pg_regress suites (sql/*.sql against expected/*.out) on a
# temporary instance that preloads the installed extension. PostgreSQL
# refuses to run as root, so as root the run happens as the postgres user,
# in a scratch directory it owns.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pg_config=${PG_CONFIG:-pg_config}
bindir=$("$pg_config" --bindir)
pg_regress="$(dirname "$("$pg_config" --pgxs)")/../test/regress/pg_regress"
tests=$(sed -n 's/^REGRESS = //p' "$root/Makefile")

work=$(mktemp -d /tmp/outbox-regress.XXXXXX)
cp -r "$root/sql" "$root/expected" "$work/"
cp "$root/test/regress.conf" "$work/"
run=()
if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$work"
    run=(runuser -u postgres --)
fi

status=0
(cd "$work" && "${run[@]}" "$pg_regress" --bindir="$bindir" --inputdir="$work" --outputdir="$work" \
    --temp-instance="$work/tmp_check" --temp-config="$work/regress.conf" \
    --dbname=contrib_regression $tests) || status=$?

if [ "$status" != 0 ]; then
    mkdir -p "$root/results"
    cp -r "$work/results/." "$root/results/" 2>/dev/null || true
    [ -f "$work/regression.diffs" ] && cp "$work/regression.diffs" "$root/results/" && cat "$work/regression.diffs"
    echo "server log: $work/tmp_check/log/postmaster.log" >&2
else
    rm -rf "$work"
fi
exit "$status"

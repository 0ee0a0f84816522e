#!/usr/bin/env bash
# Runs the pg_regress suites (sql/*.sql against expected/*.out) on a
# temporary instance that preloads the installed extension. PostgreSQL
# refuses to run as root, so as root the run happens as the postgres user,
# in a scratch directory it owns.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pg_config=${PG_CONFIG:-pg_config}
bindir=$("$pg_config" --bindir)
pgxs_dir="$(dirname "$("$pg_config" --pgxs)")/.."
pg_regress="$pgxs_dir/test/regress/pg_regress"
pg_isolation_regress="$pgxs_dir/test/isolation/pg_isolation_regress"
tests=$(sed -n 's/^REGRESS = //p' "$root/Makefile")
specs=$(sed -n 's/^ISOLATION = //p' "$root/Makefile")

work=$(mktemp -d /tmp/outbox-regress.XXXXXX)
cp -r "$root/sql" "$root/expected" "$root/specs" "$work/"
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
# Isolation specs (specs/*.spec, expected/*.out): concurrent claimers.
if [ "$status" = 0 ] && [ -n "$specs" ]; then
    (cd "$work" && "${run[@]}" "$pg_isolation_regress" --bindir="$bindir" --inputdir="$work" \
        --outputdir="$work/isolation" --temp-instance="$work/tmp_check_iso" \
        --temp-config="$work/regress.conf" --dbname=contrib_regression $specs) || status=$?
fi

if [ "$status" != 0 ]; then
    mkdir -p "$root/results"
    cp -r "$work/results/." "$root/results/" 2>/dev/null || true
    cp -r "$work/isolation/results/." "$root/results/" 2>/dev/null || true
    for diffs in "$work/regression.diffs" "$work/isolation/regression.diffs"; do
        [ -f "$diffs" ] && cat "$diffs"
    done
    echo "server log: $work/tmp_check/log/postmaster.log" >&2
else
    rm -rf "$work"
fi
exit "$status"

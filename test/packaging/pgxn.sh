#!/usr/bin/env bash
# The PGXN release, and a build with no broker library at all, in one
# build: `make dist` writes outbox-<version>.zip, its META.json is checked
# against the PGXN Meta Spec 1.0.0, and `pgxn install` (pgxnclient) builds
# the archive with BROKERS= (webhooks only, nothing linked for the brokers)
# into a private copy of the server under test; then pg_regress, a signed
# webhook end to end, and a NATS endpoint whose deliveries wait in that
# build and are delivered once the cluster runs the full build (the server
# under test's). Leaves the server under test untouched.
# Usage: test/packaging/pgxn.sh   (PG_CONFIG: the server under test, a
# Debian layout .../usr/lib/postgresql/NN/bin with outbox installed)
# Ends with "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/test/packaging/lib.sh"
full_pg_config=$(command -v "${PG_CONFIG:-pg_config}")
full_bindir=$("$full_pg_config" --bindir)
version=$(ext_version "$root")
zip=outbox-$version.zip
work=$(mktemp -d /tmp/outbox-pgxn.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # the server runs as postgres from the copy in here

# The server's prefix: Debian's layout is PREFIX/usr/lib/postgresql/NN/bin.
major=$(basename "$(dirname "$full_bindir")")
prefix=${full_bindir%/usr/lib/postgresql/$major/bin}
if [ "$prefix" = "$full_bindir" ] || [ ! -d "$prefix/usr/include/postgresql" ]; then
    echo "test/packaging/pgxn.sh needs a server in Debian's layout (.../usr/lib/postgresql/NN/bin): $full_bindir" >&2
    exit 2
fi
copy=$work/pg
pg_config=$copy/usr/lib/postgresql/$major/bin/pg_config

dist() {
    make -s -C "$work" -f "$root/Makefile" VPATH="$root" PG_CONFIG="$full_pg_config" dist &&
        [ -f "$work/$zip" ] && python3 -m zipfile -l "$work/$zip" | grep -E "outbox-$version/(META.json|Makefile|outbox.control) "
}

meta() {
    (cd "$work" && python3 -m zipfile -e "$zip" unpacked) &&
        python3 "$root/test/packaging/check_meta.py" "$work/unpacked/outbox-$version/META.json" "$work/unpacked/outbox-$version" &&
        python3 - "$work/unpacked/outbox-$version/META.json" "$version" <<'PY'
import json, sys
meta = json.load(open(sys.argv[1]))
assert meta["version"] == sys.argv[2] and meta["provides"]["outbox"]["version"] == sys.argv[2], "META.json's version"
print("META.json's versions are the Makefile's:", sys.argv[2])
PY
}

server_copy() {
    mkdir -p "$copy/usr/lib/postgresql" "$copy/usr/share/postgresql" "$copy/usr/include" &&
        cp -a "$prefix/usr/lib/postgresql/$major" "$copy/usr/lib/postgresql/" &&
        cp -a "$prefix/usr/share/postgresql/$major" "$copy/usr/share/postgresql/" &&
        cp -a "$prefix/usr/include/postgresql" "$copy/usr/include/" &&
        mkdir -p "$("$pg_config" --libdir)" &&  # pgxn wants it writable (Debian's is /usr/lib/<triplet>)
        "$pg_config" --pkglibdir
}

pgxn_install() {
    # An environment variable reaches make: the build without brokers.
    (cd "$work" && BROKERS= pgxn install --pg_config "$pg_config" "./$zip" >"$work/pgxn.log" 2>&1) ||
        { tail -n 30 "$work/pgxn.log"; return 1; }
    grep -E "^(INFO|WARNING)|not found|building without" "$work/pgxn.log" | head -n 10
    local so
    so="$("$pg_config" --pkglibdir)/outbox.so"
    ldd "$so" | grep -E 'libcurl|nats|rabbitmq|hiredis'
    ! ldd "$so" | grep -qE 'nats|rabbitmq|hiredis'
}

regress() {
    PG_CONFIG=$pg_config "$root/test/regress.sh"
}

check "make dist writes $zip" dist || { summary; exit 1; }
check "its META.json is valid (PGXN Meta Spec 1.0.0)" meta
check "a private copy of $("$full_pg_config" --version)" server_copy || { summary; exit 1; }
check "BROKERS= pgxn install ./$zip (no broker library linked)" pgxn_install || { summary; exit 1; }
check "pg_regress with that build" regress
PATH="$("$pg_config" --bindir):$PATH" OUTBOX_EXPECT_PROTOCOLS='' OUTBOX_FULL_BINDIR=$full_bindir \
    check_node "$root/test/packaging/installed.test.mjs" "$root/test/packaging/missing_protocol.test.mjs"
summary

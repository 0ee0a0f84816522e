#!/usr/bin/env bash
# A PostgreSQL 18 server, built from Debian unstable's source package into a
# cache directory, for testing the extension on 18 beside the system's 15.
# Run it or source it: either way it ends by printing the path of its
# pg_config and (when sourced) exporting it as OUTBOX_PG18_CONFIG.
#
#   OUTBOX_PG_CACHE   where the build lives (default /var/cache/outbox/postgresql-18)
#
# The system's apt configuration is not touched: the source is fetched with a
# private sources list and private state/cache directories, and nothing is
# installed from unstable. Build dependencies come from the system's own suites.
# The build happens in a scratch directory next to the cache and is moved
# into place only when complete, so an interrupted build is never taken for
# a finished one.

pg18_ensure() (
    set -euo pipefail
    local cache=${OUTBOX_PG_CACHE:-/var/cache/outbox/postgresql-18}
    # Bumped when what is built changes, so that an older build is replaced.
    local recipe="2: amcheck auto_explain pg_regress pg_isolation_regress"
    ready() { [ "$(cat "$cache/.outbox-recipe" 2>/dev/null)" = "$recipe" ]; }
    # The tests run this server as postgres: its folders must be readable
    # whatever the umask (CI's made the cache's parent 0700 once).
    umask 022
    if ready; then
        [ "$(id -u)" != 0 ] || chmod go+rx "$(dirname "$cache")"
        echo "$cache/bin/pg_config"; return 0
    fi
    [ "$(id -u)" = 0 ] || { echo "pg18.sh: building PostgreSQL 18 needs root" >&2; return 1; }
    local start=$SECONDS parent
    parent=$(dirname "$cache")
    mkdir -p "$parent"
    exec 9>"$cache.lock"; flock 9     # one build at a time
    ready && { echo "$cache/bin/pg_config"; return 0; }

    {
        export DEBIAN_FRONTEND=noninteractive
        local deps=(bison flex zlib1g-dev g++ make perl pkg-config) missing=() p
        for p in "${deps[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        if [ "${#missing[@]}" -gt 0 ]; then
            apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi

        local work; work=$(mktemp -d "$parent/.postgresql-18.build.XXXXXX")
        trap 'rm -rf "$work"' EXIT
        # Fetch the source with a private apt setup: deb-src for unstable only.
        local mirror
        mirror=$(sed -nE 's/^URIs: *(http[^ ]*debian)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
        mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
        echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} unstable main" \
            >"$work/apt/sources.list"
        local apt=(apt-get -q -o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                   -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache"
                   -o APT::Sandbox::User=root)
        "${apt[@]}" update >/dev/null
        (cd "$work/src" && "${apt[@]}" source --download-only postgresql-18 >/dev/null)
        # The upstream tarball is all we need (Debian's patches are packaging).
        tar -xf "$work"/src/postgresql-18_*.orig.tar.* -C "$work/src"
        cd "$work"/src/postgresql-18*/
        echo "pg18.sh: building $(basename "$PWD") into $cache" >&2

        ./configure --prefix="$cache" --without-readline --without-icu --without-llvm >/dev/null
        make -s -j"$(nproc)" >/dev/null
        # The server and client programs (pg_dump, pg_upgrade, pg_basebackup
        # live in src/bin), plus what the tests use: amcheck (regress),
        # auto_explain (e2e), pg_regress and pg_isolation_regress (into the
        # PGXS directory, where test/regress.sh looks for them).
        local extras=(contrib/amcheck contrib/auto_explain src/test/regress src/test/isolation) d
        for d in "${extras[@]}"; do make -s -j"$(nproc)" -C "$d" >/dev/null; done
        local stage="$work/stage"
        for d in . "${extras[@]}"; do
            make -s -C "$d" install DESTDIR="$stage" >/dev/null
        done
        for p in postgres pg_ctl initdb psql pg_dump pg_upgrade pg_basebackup; do
            [ -x "$stage$cache/bin/$p" ] || { echo "pg18.sh: $p missing from the build" >&2; exit 1; }
        done
        echo "$recipe" >"$stage$cache/.outbox-recipe"
        chmod -R a+rX "$stage$cache"
        [ ! -e "$cache" ] || mv "$cache" "$work/previous"  # an older recipe's build
        mv "$stage$cache" "$cache"
        echo "pg18.sh: PostgreSQL 18 built in $((SECONDS - start)) s" >&2
    } 1>&2
    echo "$cache/bin/pg_config"
)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    pg18_ensure
else
    OUTBOX_PG18_CONFIG=$(pg18_ensure) && export OUTBOX_PG18_CONFIG
fi

#!/usr/bin/env bash
# The Debian package, as an operator gets it: built from a copy of this
# tree with `dpkg-buildpackage -us -uc -b` (pg_buildext, dh --with pgxs),
# checked by lintian (no errors), installed with `apt-get install ./...deb`
# into Debian's PostgreSQL 15, a cluster with the packaged library preloaded
# delivers a signed webhook, the package is removed, and the machine is
# left as it was found: the same packages, and the files the package had
# (a `make install` of outbox into that server, say) back as they were.
# As root. Ends with "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/test/packaging/lib.sh"
[ "$(id -u)" = 0 ] || { echo "test/packaging/deb.sh installs a package: run it as root" >&2; exit 2; }
pg=15
version=$(ext_version "$root")
deb=postgresql-$pg-outbox_${version}_$(dpkg --print-architecture).deb
work=$(mktemp -d /tmp/outbox-deb.XXXXXX)
installed=
cleanup() {
    [ -n "$installed" ] && remove_package
    rm -rf "$work"
}
trap cleanup EXIT

state() {  # the installed packages, and the package's files as they are now
    dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' | sort
    local f
    while read -r f; do
        if [ -e "$f" ]; then sha256sum "$f"; else echo "absent $f"; fi
    done <"$work/files"
    # and the modes of the folders they are in, up to / (postgres must
    # still reach the server's programs and libraries afterwards)
    while read -r f; do
        while f=$(dirname "$f"); [ "$f" != / ]; do [ ! -d "$f" ] || echo "$f"; done
    done <"$work/files" | sort -u | xargs -r stat -c '%a %U:%G %n'
}

build() {
    copy_tree "$root" "$work/src" || return 1
    echo "dpkg-buildpackage -us -uc -b (log: build.log)"
    (cd "$work/src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || { tail -n 40 "$work/build.log"; return 1; }
    ls "$work"/*.deb
    [ -f "$work/$deb" ] || { echo "no $deb"; return 1; }
}

lintian_clean() {
    # --fail-on error: warnings and information are shown, errors fail.
    lintian --fail-on error --display-info --tag-display-limit 0 "$work"/*.changes
}

depends() {
    local d
    d=$(dpkg-deb -f "$work/$deb" Depends)
    echo "Depends: $d"
    for lib in libcurl4 libfmt libssl libnats librabbitmq libhiredis "postgresql-$pg"; do
        grep -q "$lib" <<<"$d" || { echo "Depends lacks $lib"; return 1; }
    done
    dpkg-deb -c "$work/$deb" | awk '{print $6}' | sed 's/^\.//' | grep -v '/$' >"$work/files"
    grep -qx "/usr/lib/postgresql/$pg/lib/outbox.so" "$work/files" &&
        grep -qx "/usr/share/postgresql/$pg/extension/outbox.control" "$work/files"
}

install_package() {
    state >"$work/before"
    mkdir -p "$work/backup"
    while read -r f; do [ -e "$f" ] && cp -a --parents "$f" "$work/backup/"; done <"$work/files"
    # Services of packages it might pull in must not start.
    local policy=/usr/sbin/policy-rc.d own_policy= rc
    [ -e "$policy" ] || { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1; }
    (cd "$work" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$deb")
    rc=$?
    [ -n "$own_policy" ] && rm -f "$policy"
    installed=1
    [ "$rc" = 0 ] && dpkg -s "postgresql-$pg-outbox" | grep -q '^Status: install ok installed'
}

delivers() {
    PATH="/usr/lib/postgresql/$pg/bin:$PATH" OUTBOX_EXPECT_PROTOCOLS='nats, amqp, redis, kafka' \
        check_node "$root/test/packaging/installed.test.mjs"
}

remove_package() {
    installed=
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "postgresql-$pg-outbox" || return 1
    # Whatever the install brought in goes too.
    local new
    new=$(comm -13 <(awk '{print $2}' "$work/before" | grep -v '^/' | sort -u) \
                   <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 ~ /^i/ {print $2}' | sort -u))
    [ -z "$new" ] || DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $new
    # Files only, each to its place: copying the backup's folders over /
    # would give /usr the mode the backup's parents were made with.
    local f
    while read -r f; do
        [ ! -e "$work/backup$f" ] || cp -a "$work/backup$f" "$f"
    done <"$work/files"
    return 0
}

as_found() {
    remove_package || return 1
    state >"$work/after"
    diff "$work/before" "$work/after" && echo "the same packages and files as before"
}

check "build $deb" build || { summary; exit 1; }
check "lintian reports no errors" lintian_clean
check "its dependencies are computed (shlibs, postgresql)" depends
if check "apt-get install ./$deb" install_package; then
    delivers
fi
check "removed, and the machine as it was found" as_found
summary

#!/usr/bin/env bash
# The end-to-end delivery, crash and hostile tests against the extension
# built with AddressSanitizer and UndefinedBehaviorSanitizer (issue 22),
# in a private copy of the server of $PG_CONFIG, so that the normal build
# stays installed where it is:
#
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config bash scripts/e2e-asan.sh [TEST_FILE...]
#
# - build/e2e-asan/server: a copy of the server (Debian's PostgreSQL and a
#   source build are relocatable), made once per server version;
# - build/e2e-asan/tree: a copy of the sources, built with
#   -fsanitize=address,undefined and installed into that copy;
# - the tests run with that server's programs first on PATH, the server
#   started with the sanitizer's runtime preloaded (OUTBOX_E2E_PRELOAD, see
#   test/lib/cluster.mjs) and every report written to build/e2e-asan/reports.
#
# Prints the tests' TAP output, then "ok - no sanitizer reports" or "not ok -
# N sanitizer reports" with their first lines. Fails if a test or the check
# fails. About 4 minutes on 2 cores (2 of them building).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pg_config=$(command -v "${PG_CONFIG:-pg_config}") || { echo "no pg_config" >&2; exit 1; }
dir=$root/build/e2e-asan
server=$dir/server
reports=$dir/reports
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test/e2e/delivery.test.mjs test/e2e/crash.test.mjs test/e2e/hostile.test.mjs)

# GCC's sanitizers: the runtime of ASan must be the first library of the
# process; the server is not built with it, so it is preloaded.
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
runtime=$(gcc -print-file-name=libasan.so)
[ -f "$runtime" ] || { echo "no libasan.so (gcc: $runtime)" >&2; exit 1; }
mkdir -p "$dir"
# Without it the server hangs at start (test/asan/swift_demangle.c says why).
gcc -shared -fPIC -O2 -o "$dir/swift_demangle.so" "$root/test/asan/swift_demangle.c" || exit 1

# The copy of the server: the directories pg_config names, at the same
# places under $server (relative paths between them are what relocation
# keeps).
version="$pg_config $("$pg_config" --version)"
if [ "$(cat "$dir/server.stamp" 2>/dev/null)" != "$version" ]; then
    rm -rf "$server" && mkdir -p "$server"
    for d in "$(dirname "$("$pg_config" --bindir)")" "$("$pg_config" --sharedir)" "$("$pg_config" --includedir)"; do
        mkdir -p "$server$(dirname "$d")" && cp -a "$d" "$server$(dirname "$d")/" || exit 1
    done
    echo "$version" >"$dir/server.stamp"
fi
copy_config=$server$pg_config
[ -x "$copy_config" ] || { echo "the copy has no pg_config at $copy_config" >&2; exit 1; }

# The sources, without the normal build's objects. tar keeps their times,
# so a second run rebuilds what changed; a file added or removed starts the
# tree afresh.
sources=(Makefile outbox.control src extension)
excludes=(--exclude='*.o' --exclude='*.so' --exclude='*.bc')
list=$(tar -C "$root" "${excludes[@]}" -cf - "${sources[@]}" | tar -tf - | sort)
if [ "$list" != "$(cat "$dir/tree.list" 2>/dev/null)" ]; then
    rm -rf "$dir/tree" && mkdir -p "$dir/tree" && echo "$list" >"$dir/tree.list"
fi
tar -C "$root" "${excludes[@]}" -cf - "${sources[@]}" | tar -C "$dir/tree" -xf - || exit 1
echo "building the extension with $flags"
# PGXS adds PROFILE to the C flags and the link's, not to C++'s: the
# compiler carries them instead.
build=(PG_CONFIG="$copy_config" CXX="g++ $flags" PROFILE="$flags")
nice make -C "$dir/tree" -j"$(nproc)" -s "${build[@]}" >"$dir/build.log" 2>&1 &&
    make -C "$dir/tree" -s install "${build[@]}" >>"$dir/build.log" 2>&1 ||
    { tail -30 "$dir/build.log"; echo "the sanitized build failed"; exit 1; }
nm -D "$server$("$pg_config" --pkglibdir)/outbox.so" | grep __asan_init >/dev/null ||
    { echo "the installed outbox.so is not built with ASan"; exit 1; }

rm -rf "$reports" && mkdir -p "$reports" && chmod 1777 "$reports"
# PostgreSQL keeps what it allocates until its processes end: no leak
# checks. abort_on_error: a report ends the process with SIGABRT, which the
# postmaster logs and the tests see as a crash.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=$reports/asan:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export OUTBOX_E2E_PRELOAD="$runtime $dir/swift_demangle.so"
export PATH="$server$("$pg_config" --bindir):$PATH"
cd "$root"
node --test --test-concurrency=1 --test-force-exit --test-timeout=900000 "${tests[@]}"
rc=$?

found=$(find "$reports" -type f | sort)
if [ -z "$found" ]; then
    echo "ok - no sanitizer reports"
else
    echo "not ok - $(wc -l <<<"$found") sanitizer reports"
    for f in $found; do
        echo "--- $f"
        head -n 40 "$f"
    done
    rc=1
fi
exit "$rc"

# Shared by the packaging tests (test/packaging/*.sh): numbered checks that
# end in one line "N passed, N failed", and a copy of the source tree.

# Its umask (the server runs as postgres from copies made here) and how
# node's test runner is run.
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/deps.sh"

passed=0 failed=0
# check NAME COMMAND...: runs the command, output shown, and counts it.
check() {
    local name=$1
    shift
    echo "-- $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "ok - $name"
    else
        failed=$((failed + 1))
        echo "not ok - $name"
        return 1
    fi
}

# Runs node's test runner on files and counts its tests as checks.
check_node() {
    local out rc ok bad
    out=$(mktemp)
    "${node_test[@]}" "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    ok=$(sed -nE 's/^# pass ([0-9]+)/\1/p' "$out" | tail -1)
    bad=$(sed -nE 's/^# fail ([0-9]+)/\1/p' "$out" | tail -1)
    [ "$rc" = 0 ] || [ "${bad:-0}" -gt 0 ] || bad=1
    passed=$((passed + ${ok:-0})) failed=$((failed + ${bad:-0}))
    rm -f "$out"
}

summary() {
    echo
    echo "(${SECONDS} s)"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

# Copies the tracked files of the working tree at $1 (uncommitted changes
# included, as `make dist` takes them) into directory $2.
copy_tree() {
    local tree
    tree=$(git -C "$1" -c user.name=outbox -c user.email=dist@outbox.invalid stash create) || return 1
    mkdir -p "$2" && git -C "$1" archive "${tree:-HEAD}" | tar -x -C "$2"
}

# The Makefile's EXTVERSION.
ext_version() { sed -n 's/^EXTVERSION = //p' "$1/Makefile"; }

# Runs a command as the postgres user from / (PostgreSQL refuses root).
as_postgres() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

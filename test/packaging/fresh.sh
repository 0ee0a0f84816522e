#!/usr/bin/env bash
# By hand, not in CI (about 15 minutes on 2 cores: debootstrap, then the
# packages, then the build): the README's commands on a fresh Debian 12,
# each on its own. Makes a minimal bookworm with debootstrap in DIR (kept
# as base/, reused by later runs), then in a fresh copy runs
# `bash scripts/demo.sh` on a copy of this tree, and in another fresh copy
# the dependency step of `bash scripts/test.sh` (then the test command
# itself, which stops there on Debian's Node.js 18: the tests need 20).
# Usage (root): test/packaging/fresh.sh DIR [MIRROR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/test/packaging/lib.sh"
dir=${1:?usage: fresh.sh DIR [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
mkdir -p "$dir"
[ -x "$dir/base/bin/bash" ] || debootstrap --variant=minbase bookworm "$dir/base" "$mirror"

# run NAME COMMAND: in a fresh copy of base/ with this tree at /root/outbox.
run() {
    local name=$1 command=$2 start rc
    local target="$dir/$name"
    rm -rf "$target" && cp -a "$dir/base" "$target"
    copy_tree "$root" "$target/root/outbox"
    cp /etc/resolv.conf "$target/etc/resolv.conf"
    # A machine whose traffic goes through a proxy with its own CA (this
    # workplace's) needs it in the copy too; a plain fresh machine does not.
    local env=()
    if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
        cp "$NODE_EXTRA_CA_CERTS" "$target/root/extra-ca.pem" && env+=(NODE_EXTRA_CA_CERTS=/root/extra-ca.pem)
    fi
    mount -t proc proc "$target/proc"
    mount --bind /dev "$target/dev"
    mount --bind /dev/pts "$target/dev/pts"
    start=$(date +%s)
    set +e
    chroot "$target" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb "${env[@]}" \
        bash -c "cd /root/outbox && $command" 2>&1 | tee "$dir/$name.log"
    rc=${PIPESTATUS[0]}
    set -e
    umount "$target/dev/pts" "$target/dev" "$target/proc"
    echo "== $name: exit $rc after $(( $(date +%s) - start )) s (log: $dir/$name.log)"
}

run demo 'bash scripts/demo.sh'
run test-deps 'source scripts/deps.sh && ensure_deps test package && echo "dependencies: done" && bash scripts/test.sh'

# Sourced by the demo, the test runner and the benchmarks: installs what is
# missing on a Debian machine (apt packages from scripts/dependencies, then
# npm packages), and nothing else.
# Usage: ensure_deps [group or apt package...]
# The groups build, nats, amqp, redis, kafka, demo and node are always installed:
# the demo builds outbox with every broker, as a user building from source
# with everything would.

# The clusters run as postgres from folders these scripts make (copies of a
# server, data directories): a umask of 077, as CI had, makes them unreadable
# to it ("initdb: Permission denied").
umask 022
# deb.sh under that umask, before it restored its backup file by file, left
# /usr, /usr/lib, /usr/share and PostgreSQL's folders in them 0700 on a
# machine that later runs reuse: give them back their usual mode.
if [ "$(id -u)" = 0 ]; then
    for dir in /usr /usr/lib /usr/share; do
        if [ "$(stat -c %a "$dir")" = 700 ]; then chmod 755 "$dir"; fi
    done
    for dir in /usr/lib/postgresql /usr/share/postgresql; do
        if [ -d "$dir" ]; then find "$dir" -maxdepth 3 -type d -perm 700 -exec chmod 755 {} +; fi
    done
fi

# node:test as every suite runs it: one file at a time; a test is failed
# after 15 minutes, and a file's process ends when its tests do, whatever
# it left open (so that a hang can't eat a CI run).
node_test=(node --test --test-concurrency=1 --test-force-exit --test-timeout=900000)

# The Debian server the scripts build against (Debian 12's), for NN in
# scripts/dependencies.
debian_pg=15

# The packages of the named groups of scripts/dependencies (NN replaced);
# words that name no group are packages themselves.
dependency_packages() {
    local file word line found
    file="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/dependencies"
    for word in "$@"; do
        found=
        while read -r line; do
            [[ "$line" =~ ^$word[[:space:]]+(.*)$ ]] && found=${BASH_REMATCH[1]}
        done < <(grep -v '^#' "$file")
        if [ -z "$found" ]; then
            echo "$word"
        else
            for pkg in $found; do
                # Node.js from elsewhere (NodeSource) has npm in it: keep it.
                if [ "$word" = node ] && command -v "${pkg/nodejs/node}" >/dev/null; then continue; fi
                echo "${pkg//NN/$debian_pg}"
            done
        fi
    done
}

ensure_deps() {
    local wanted=() missing=() pkg
    mapfile -t wanted < <(dependency_packages build nats amqp redis kafka demo node "$@")
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
            return 1
        fi
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # All of them, not only the missing ones: the server headers must be
        # of the installed server's minor version (an extension built with
        # newer headers may not load), so the server comes up to date too.
        # Packaged servers (rabbitmq-server, redis-server, nats-server) must
        # not start their system-wide services: the tests run their own
        # instances. A policy-rc.d that denies every start, for the install.
        local policy=/usr/sbin/policy-rc.d own_policy=
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
        fi
        apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
        local rc=$?
        [ -n "$own_policy" ] && rm -f "$policy"
        [ "$rc" = 0 ] || return 1
    fi
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [ ! -d "$root/node_modules/standardwebhooks" ] || [ ! -d "$root/node_modules/pg" ] ||
       [ ! -d "$root/node_modules/nats" ] || [ ! -d "$root/node_modules/amqplib" ] || [ ! -d "$root/node_modules/redis" ] ||
       [ ! -d "$root/node_modules/kafkajs" ]; then
        echo "installing npm packages"
        (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# Node.js $1 or later on PATH. Debian 12 has 18 (enough for the demo); the
# tests and the Next.js example need 20: where node is older, Node.js
# $node_version comes from the npm registry (the package node-linux-<arch>
# holds the official binary) into $OUTBOX_NODE_CACHE, and goes first on PATH.
node_version=20.20.2
require_node() {
    local major cache arch
    major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || major=0
    [ "$major" -ge "$1" ] && return 0
    cache=${OUTBOX_NODE_CACHE:-/var/cache/outbox/node-$node_version}
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) echo "Node.js $1 or later is needed (found: $(node --version 2>/dev/null || echo none))" >&2; return 1 ;;
    esac
    if [ ! -x "$cache/node_modules/node-linux-$arch/bin/node" ]; then
        echo "Node.js $1 or later is needed (found: $(node --version)): installing $node_version into $cache"
        mkdir -p "$cache" &&
            npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "node-linux-$arch@$node_version" || return 1
    fi
    export PATH="$cache/node_modules/node-linux-$arch/bin:$PATH"
    echo "using $(command -v node) $(node --version)"
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge "$1" ]
}

# Builds the extension and installs it into the PostgreSQL of $PG_CONFIG
# (default: the pg_config on PATH). Object files built for another server
# are cleaned first: build/pg_config.stamp records which one they are for.
build_and_install() {
    local root pg_config server stamp
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    pg_config=$(command -v "${PG_CONFIG:-pg_config}") || return 1
    server="$pg_config $("$pg_config" --version)"
    stamp="$root/build/pg_config.stamp"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$server" ]; then
        make -C "$root" -s clean PG_CONFIG="$pg_config"
        mkdir -p "$root/build" && echo "$server" >"$stamp"
    fi
    make -C "$root" -j"$(nproc)" -s PG_CONFIG="$pg_config"
    make -C "$root" -s install PG_CONFIG="$pg_config" >/dev/null
}

# Sourced by bench/run.sh: a throwaway PostgreSQL cluster in a directory of
# its own, run by the postgres user (PostgreSQL refuses root), reachable only
# through a Unix socket in that directory. Never the system's cluster.

# cluster_start DIR PORT NGINX_PORT: initdb, configure, start; prints nothing.
cluster_start() {
    local dir=$1 port=$2 sink_port=$3 bindir run=()
    bindir=$(pg_config --bindir)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF

# --- outbox benchmark ---
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
max_connections = 100
shared_buffers = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
log_min_messages = warning
log_line_prefix = '%m [%p] %b '
shared_preload_libraries = 'outbox${BENCH_PGNET:+,pg_net}'
${BENCH_PGNET:+pg_net.database_name = 'bench'}
outbox.database = 'bench'
outbox.url = 'http://127.0.0.1:$sink_port/hook'
outbox.secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
outbox.allowed_networks = '127.0.0.1/32'
outbox.paused = on
CONF
    "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null || {
        tail -20 "$dir/postgres.log" >&2; return 1; }
    local psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres)
    # bench: the database the worker serves; claimdb: a second copy of the
    # schema that no worker touches, for timing the claim query alone.
    "${psql[@]}" -d postgres -c "CREATE DATABASE bench" -c "CREATE DATABASE claimdb" >/dev/null &&
        "${psql[@]}" -d bench -c "CREATE EXTENSION outbox" ${BENCH_PGNET:+-c "CREATE EXTENSION pg_net"} >/dev/null &&
        "${psql[@]}" -d claimdb -c "CREATE EXTENSION outbox" >/dev/null
}

# cluster_stop DIR: immediate stop; safe to call when it is not running.
cluster_stop() {
    local dir=$1 run=()
    [ -f "$dir/data/postmaster.pid" ] || return 0
    [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
    "${run[@]}" "$(pg_config --bindir)/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
}

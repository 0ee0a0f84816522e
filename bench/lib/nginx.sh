# Sourced by bench/run.sh: an nginx of our own that answers every request
# with 204 over keep-alive, on 127.0.0.1 only; /nginx_status counts requests.

# nginx_start DIR PORT: writes DIR/nginx.conf, starts nginx in the
# foreground as a background job; sets nginx_pid.
nginx_start() {
    local dir=$1 port=$2 user=nobody
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] || user=$(id -un)
    cat >"$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user $user $(id -gn "$user");" )
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$port;
        location = /nginx_status { stub_status; }
        location / { return 204; }
    }
}
CONF
    nginx -c "$dir/nginx.conf" -e "$dir/error.log" &
    nginx_pid=$!
    local i
    for i in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "nginx did not start:" >&2
    cat "$dir/error.log" >&2
    return 1
}

# Sourced by bench/run.sh: an nginx of our own that answers every request
# with 204 over keep-alive, on 127.0.0.1 only; /nginx_status counts requests.

# nginx_start DIR PORT [TLS_PORT]: writes DIR/nginx.conf, starts nginx in
# the foreground as a background job; sets nginx_pid. With TLS_PORT, also
# HTTPS on that port, with a self-signed certificate for 127.0.0.1 made in
# DIR (DIR/cert.pem is what outbox.ca_file should name).
nginx_start() {
    local dir=$1 port=$2 tls_port=${3:-} user=nobody tls_server=""
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] || user=$(id -un)
    if [ -n "$tls_port" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
            -addext "subjectAltName=IP:127.0.0.1" -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
        chmod 644 "$dir/cert.pem"
        tls_server="server {
        listen 127.0.0.1:$tls_port ssl;
        ssl_certificate $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;
        ssl_session_cache shared:tls:10m;
        location / { return 204; }
    }"
    fi
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
    $tls_server
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

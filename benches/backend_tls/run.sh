#!/usr/bin/env bash
# Backends over TLS against cleartext, through one Spawngate, to one nginx answering from memory on two
# ports (TLS with a certificate from a CA made here, and cleartext): keep-alive requests per proxy
# CPU-second over HTTP/1.1 (wrk) and h2c (h2load), and how many backend connections nginx saw (each one a
# TLS handshake on the TLS port: pooled connections are reused, so it stays at the client count).
#
#   benches/backend_tls/run.sh target/release/spawngate     # built with --features tls
#
# Needs nginx, wrk, h2load, openssl and curl. Ports 18000, 18001, 18080 and 18443 on 127.0.0.1.
set -euo pipefail
BIN=$(realpath "${1:?usage: run.sh path/to/spawngate}")
DIR=$(mktemp -d)
trap 'kill $SG $NGX 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT
cd "$DIR"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=backend.test" \
    -keyout be.key -out be.csr 2>/dev/null
printf "subjectAltName=DNS:backend.test\n" >ext.cnf
openssl x509 -req -in be.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
    -out be.pem 2>/dev/null

cat >nginx.conf <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
events { worker_connections 4096; }
http {
    log_format conn '\$server_port \$connection';
    access_log $DIR/access.log conn buffer=64k;
    client_body_temp_path $DIR/body;
    proxy_temp_path $DIR/proxy;
    fastcgi_temp_path $DIR/fastcgi;
    uwsgi_temp_path $DIR/uwsgi;
    scgi_temp_path $DIR/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:18443 ssl;
        ssl_certificate $DIR/be.pem;
        ssl_certificate_key $DIR/be.key;
        location / { return 200 "hello from the benchmark backend\n"; }
    }
    server {
        listen 127.0.0.1:18080;
        location / { return 200 "hello from the benchmark backend\n"; }
    }
}
CONF

cat >spawngate.toml <<CONF
[server]
port = 18000
admin_port = 18001
bind = "127.0.0.1"

[pools.tls]
address = "https://127.0.0.1:18443"
tls_server_name = "backend.test"
ca_file = "$DIR/ca.pem"
health = "tcp"

[pools.plain]
address = "127.0.0.1:18080"
health = "tcp"

[hosts."tls.test"]
[[hosts."tls.test".routes]]
to = "tls"

[hosts."plain.test"]
[[hosts."plain.test".routes]]
to = "plain"
CONF

nginx -p "$DIR" -e "$DIR/error.log" -c "$DIR/nginx.conf" &
NGX=$!
RUST_LOG=warn "$BIN" spawngate.toml 2>spawngate.log &
SG=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null -H 'Host: plain.test' http://127.0.0.1:18000/ && break
    sleep 0.1
done
curl -sf -o /dev/null -H 'Host: tls.test' http://127.0.0.1:18000/

# The proxy's CPU time (user + system, clock ticks) from /proc, read around each run.
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$SG/stat"; }
per_cpu_s() { # requests, ticks before, ticks after
    awk -v n="$1" -v a="$2" -v b="$3" -v t="$TCK" \
        'BEGIN {printf "proxy CPU %.2f s, %.0f requests per proxy CPU-second\n", (b-a)/t, n/((b-a)/t)}'
}
for host in plain tls; do
    echo "== HTTP/1.1 keep-alive, backend $host: wrk -t1 -c32 -d10s"
    a=$(cpu)
    out=$(wrk -t1 -c32 -d10s -H "Host: $host.test" http://127.0.0.1:18000/)
    b=$(cpu)
    echo "$out" | grep -E "Requests/sec|requests in"
    per_cpu_s "$(echo "$out" | awk '/requests in/ {print $1}')" "$a" "$b"
done
for host in plain tls; do
    echo "== h2c, backend $host: h2load -t1 -c16 -m10 -D10"
    a=$(cpu)
    out=$(h2load -t1 -c16 -m10 -D10 -H ":authority: $host.test" http://127.0.0.1:18000/)
    b=$(cpu)
    echo "$out" | grep -E "finished in|status codes"
    per_cpu_s "$(echo "$out" | awk '/^requests:/ {print $2}')" "$a" "$b"
done
kill "$SG" "$NGX"
wait 2>/dev/null || true
echo "== requests and distinct connections nginx saw, by port (18443: TLS)"
awk '{n[$1]++; c[$1" "$2]=1} END {for (k in c) {split(k, a, " "); d[a[1]]++}
     for (p in n) print p ": " n[p] " requests on " d[p] " connections"}' access.log

#!/usr/bin/env bash
# Runs the topology of compose.yaml without Docker, on loopback: Redis, two
# duplex serve nodes, and HAProxy (deploy/haproxy.cfg) or nginx
# (deploy/nginx.conf) in front, with the node names replaced by loopback
# ports. Then it checks what the compose file promises:
#
#   1. a WebSocket opened through the proxy works (upgrade headers pass);
#   2. a subscriber on either node gets messages published on both
#      (channels shared through Redis);
#   3. after a node gets SIGTERM, new connections through the proxy all
#      reach the other node (health checks and retries).
#
# Usage: deploy/try-local.sh [haproxy|nginx]    (default haproxy)
# Needs redis-server, haproxy or nginx, curl, and Go (or DUPLEX_BIN).
# Ports BASE_PORT..BASE_PORT+4 (default 27400) on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
proxy=${1:-haproxy}
base=${BASE_PORT:-27400}
redis_port=$base node1=$((base + 1)) node2=$((base + 2)) lb=$((base + 3)) stats=$((base + 4))
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
unset HTTP_PROXY HTTPS_PROXY http_proxy https_proxy ALL_PROXY all_proxy
fail() { echo "FAIL: $*" >&2; echo "--- logs in order: node1, node2, proxy" >&2; tail -n 20 "$tmp"/node1.log "$tmp"/node2.log "$tmp"/proxy.log >&2 || true; exit 1; }

bin=${DUPLEX_BIN:-}
if [ -z "$bin" ]; then
  bin=$tmp/duplex
  CGO_ENABLED=0 go build -o "$bin" ./cmd/duplex
fi
for tool in redis-server "$proxy" curl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
for n in 1 2; do
  port=$((base + n))
  DUPLEX_ADDR=127.0.0.1:$port DUPLEX_TOKENS=t DUPLEX_API_KEY=k DUPLEX_BROKER=redis://127.0.0.1:$redis_port \
    DUPLEX_SHUTDOWN_TIMEOUT=5s "$bin" serve >"$tmp/node$n.log" 2>&1 &
  pids+=($!)
  eval "pid$n=$!"
done

names="s/duplex1:8080/127.0.0.1:$node1/; s/duplex2:8080/127.0.0.1:$node2/"
case $proxy in
haproxy)
  # maxconn: the production value needs a file limit this shell may not have.
  sed -e "$names" -e "s/bind :8080/bind 127.0.0.1:$lb/; s/bind :8404/bind 127.0.0.1:$stats/" \
    -e "s/maxconn 60000/maxconn 2000/" deploy/haproxy.cfg >"$tmp/haproxy.cfg"
  haproxy -c -q -f "$tmp/haproxy.cfg" || fail "haproxy -c"
  haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/proxy.log" 2>&1 &
  ;;
nginx)
  mkdir -p "$tmp/nginx/logs"
  sed -e "$names" -e "s/listen 8080;/listen 127.0.0.1:$lb;/" \
    -e "s/worker_rlimit_nofile 131072;/worker_rlimit_nofile 8192;/; s/worker_connections 65536;/worker_connections 4096;/" \
    deploy/nginx.conf >"$tmp/nginx/nginx.conf"
  ng=(nginx -p "$tmp/nginx/" -c "$tmp/nginx/nginx.conf" -g "daemon off; pid $tmp/nginx/nginx.pid; error_log $tmp/proxy.log;")
  "${ng[@]}" -t -q || fail "nginx -t"
  "${ng[@]}" &
  ;;
*) fail "unknown proxy $proxy: haproxy or nginx" ;;
esac
pids+=($!)

# Wait for both nodes and the proxy.
for url in "http://127.0.0.1:$node1/healthz" "http://127.0.0.1:$node2/healthz" "http://127.0.0.1:$lb/healthz"; do
  for _ in $(seq 100); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -o /dev/null "$url" || fail "$url never answered 200"
done
echo "ok: the nodes and $proxy are up"

# 1. A WebSocket through the proxy.
out=$(echo "through the proxy" | timeout 20 "$bin" connect "ws://127.0.0.1:$lb/echo?token=t") || fail "connect through $proxy"
[ "$out" = "through the proxy" ] || fail "echo through $proxy gave '$out'"
echo "ok: a WebSocket through $proxy echoes"

# 2. A subscriber, on whichever node the proxy picked, gets a message
#    published on each node.
(echo '{"type":"subscribe","channel":"news"}'; sleep 4) |
  timeout 20 "$bin" connect "ws://127.0.0.1:$lb/ws?token=t" >"$tmp/sub.out" 2>"$tmp/sub.err" &
sub=$!
for _ in $(seq 50); do grep -q '"subscribed"' "$tmp/sub.out" 2>/dev/null && break; sleep 0.1; done
grep -q '"subscribed"' "$tmp/sub.out" || fail "no subscribed answer: $(cat "$tmp/sub.out" "$tmp/sub.err")"
for n in 1 2; do
  curl -fsS -o /dev/null -H 'Authorization: Bearer k' \
    -d "{\"channel\":\"news\",\"data\":\"from node$n\"}" "http://127.0.0.1:$((base + n))/api/publish" ||
    fail "publish on node$n"
done
for n in 1 2; do
  for _ in $(seq 50); do grep -q "from node$n" "$tmp/sub.out" && break; sleep 0.1; done
  grep -q "from node$n" "$tmp/sub.out" || fail "the subscriber missed the message published on node$n: $(cat "$tmp/sub.out")"
done
wait "$sub" || true
echo "ok: a subscriber gets what is published on either node (through Redis)"

# 3. SIGTERM to node1: every new connection through the proxy reaches node2.
kill -TERM "$pid1"
for i in $(seq 10); do
  out=$(echo "after $i" | timeout 20 "$bin" connect "ws://127.0.0.1:$lb/echo?token=t" 2>&1) ||
    fail "connection $i after node1's SIGTERM: $out"
  [ "$out" = "after $i" ] || fail "connection $i after node1's SIGTERM gave '$out'"
done
echo "ok: after node1's SIGTERM, 10 of 10 new connections through $proxy reached node2"
echo "PASS ($proxy)"

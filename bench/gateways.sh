#!/usr/bin/env bash
# Gateway comparison (issue 13): duplex serve beside Centrifugo, both
# loaded by `duplex bench --mode pubsub` (with --protocol centrifugo for
# Centrifugo), the server pinned to one core and the load generator to
# another; each run repeated R times, medians and ratios printed as
# markdown.
#
#   bench/gateways.sh                          # defaults: about 15 minutes
#   R=1 SCENARIOS=idle IDLE_N=5000 bench/gateways.sh
#   R=5 DURATION=10s SCENARIOS="fanout spread" bench/gateways.sh
#
# Scenarios:
#   idle    IDLE_N subscribers, one channel each, held IDLE_HOLD: the
#           server's RSS growth per subscribed client
#   fanout  FANOUT_N subscribers on one channel, FANOUT_RATE publishes/s
#           through the HTTP API for DURATION: server CPU per delivery,
#           latency from publish to delivery
#   spread  SPREAD_N subscribers, one channel each, SPREAD_RATE
#           publishes/s spread over the channels (each publish to the
#           next channel in turn): the same figures
#   heartbeat  IDLE_N idle subscribers held HEARTBEAT_HOLD while the server
#           pings each every PING_INTERVAL (duplex: --ping-interval;
#           Centrifugo: client.ping_interval, pong_timeout 3s): the
#           server's CPU use, in % of one core
#
# Environment:
#   R            repetitions of each run (3); the tables show medians
#   DURATION     length of each publishing run (5s)
#   SIZE         data of each publish, bytes (256)
#   IDLE_N       subscribers in idle (19000; capped by ulimit -n)
#   IDLE_HOLD    how long they are held before memory is sampled (10s)
#   HEARTBEAT_HOLD, PING_INTERVAL   heartbeat's hold (20s) and ping interval (5s)
#   FANOUT_N, FANOUT_RATE   fanout's subscribers (5000) and publishes/s (10)
#   SPREAD_N, SPREAD_RATE   spread's subscribers (5000) and publishes/s (1000)
#   PUBLISHERS   concurrent publishers, each one HTTP request at a time (16)
#   SCENARIOS    any of: idle fanout spread heartbeat (all)
#   SERVERS      any of: duplex duplex-goroutine centrifugo; the first is the
#                base of the ratios. Default: all three when duplex serve has
#                --no-event-loop (duplex-goroutine: today's goroutine
#                sessions, for the figure beside the event loop's), else
#                duplex centrifugo
#   CENTRIFUGO_VERSION  module version built with go install (v6.9.1)
#   CENTRIFUGO   a centrifugo binary to use instead of building one
#   DUPLEX_SERVE a duplex binary to serve with (default: built from this tree,
#                which is always the load generator)
#   SERVER_CPU   core for the servers (0); CLIENT_CPU core for duplex bench (1)
#   OUT          directory for binaries, configs, logs and JSON results (a new temp dir)
#   PORT         first TCP port; each run takes the next (23000)
#
# Both gateways run with their defaults, except for what the comparison
# needs: an API key for publishing, clients without credentials (duplex:
# --no-auth; Centrifugo: client.insecure), room for IDLE_N connections
# (duplex: --max-connections), and for Centrifugo the channel options
# duplex serve has by default: history of 100 messages for 5 minutes,
# recovery forced (duplex serve's --history-size 100 --history-ttl 5m).
set -euo pipefail
command -v jq >/dev/null || { echo "gateways.sh needs jq" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
R=${R:-3}
DURATION=${DURATION:-5s}
SIZE=${SIZE:-256}
IDLE_N=${IDLE_N:-19000}
IDLE_HOLD=${IDLE_HOLD:-10s}
HEARTBEAT_HOLD=${HEARTBEAT_HOLD:-20s}
PING_INTERVAL=${PING_INTERVAL:-5s}
FANOUT_N=${FANOUT_N:-5000}
FANOUT_RATE=${FANOUT_RATE:-10}
SPREAD_N=${SPREAD_N:-5000}
SPREAD_RATE=${SPREAD_RATE:-1000}
SCENARIOS=${SCENARIOS:-idle fanout spread heartbeat}
SERVERS=${SERVERS:-}
CENTRIFUGO_VERSION=${CENTRIFUGO_VERSION:-v6.9.1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/duplex-gateways.XXXXXX")}
PORT=${PORT:-23000}
PUBLISHERS=${PUBLISHERS:-16}
API_KEY=bench-api-key
bin=$OUT/bin
mkdir -p "$bin"

log() { printf '%s\n' "$*" >&2; }

log "building into $bin"
(cd "$root" && go build -o "$bin/duplex" ./cmd/duplex)
if [ -n "${DUPLEX_SERVE:-}" ]; then
	cp "$DUPLEX_SERVE" "$bin/duplex-serve"
else
	ln -sf duplex "$bin/duplex-serve"
fi
(cd "$here" && go build -o "$bin/gateways" ./gateways)
has_goroutine_flag() { "$bin/duplex-serve" serve --help 2>&1 | grep -q -- --no-event-loop; }
if [ -z "$SERVERS" ]; then
	SERVERS="duplex centrifugo"
	has_goroutine_flag && SERVERS="duplex duplex-goroutine centrifugo"
fi
case " $SERVERS " in *" duplex-goroutine "*)
	has_goroutine_flag || {
		log "duplex serve has no --no-event-loop: duplex-goroutine needs the event-loop gateway (issue 13)"
		exit 2
	}
	;;
esac
log "servers: $SERVERS"
case " $SERVERS " in *" centrifugo "*)
	if [ -n "${CENTRIFUGO:-}" ]; then
		cp "$CENTRIFUGO" "$bin/centrifugo"
	else
		# Its own go.mod pins its dependencies; none reach bench/go.mod.
		log "building centrifugo $CENTRIFUGO_VERSION (the first build takes minutes)"
		# -X stamps the version, as its release builds do (else 0.0.0).
		GOBIN=$bin GOFLAGS=-buildvcs=false go install \
			-ldflags "-X github.com/centrifugal/centrifugo/v6/internal/build.Version=${CENTRIFUGO_VERSION#v}" \
			"github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
	fi
	"$bin/centrifugo" version >&2 || true
	;;
esac

command -v taskset >/dev/null || log "warning: taskset not found; server and load generator are not pinned"
pin() { # pin CPU COMMAND...: run pinned when taskset exists
	local cpu=$1
	shift
	if command -v taskset >/dev/null; then
		taskset -c "$cpu" "$@"
	else
		"$@"
	fi
}
start_server() { # start_server CPU COMMAND...: run in the background with &;
	# exec keeps $! the server's own PID, which duplex bench reads /proc for.
	local cpu=$1
	shift
	if command -v taskset >/dev/null; then
		exec taskset -c "$cpu" "$@"
	fi
	exec "$@"
}

# Subscribers need a file descriptor each, in both processes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ]; then
	for v in IDLE_N FANOUT_N SPREAD_N; do
		if [ "${!v}" -gt $((nofile - 300)) ]; then
			log "warning: ulimit -n is $nofile; $v shrunk from ${!v} to $((nofile - 300))"
			printf -v "$v" %d $((nofile - 300))
		fi
	done
fi
# Eight loopback source addresses, so that tens of thousands of
# connections to one port, run after run, do not run out of local ports.
sources=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8

scenario_args() {
	case $1 in
	idle) echo "-c $IDLE_N --channels $IDLE_N --rate 0 -d $IDLE_HOLD" ;;
	heartbeat) echo "-c $IDLE_N --channels $IDLE_N --rate 0 -d $HEARTBEAT_HOLD" ;;
	fanout) echo "-c $FANOUT_N --channels 1 --rate $FANOUT_RATE -s $SIZE -d $DURATION --api-key $API_KEY --publishers $PUBLISHERS" ;;
	spread) echo "-c $SPREAD_N --channels $SPREAD_N --rate $SPREAD_RATE -s $SIZE -d $DURATION --api-key $API_KEY --publishers $PUBLISHERS" ;;
	*)
		log "unknown scenario $1"
		exit 2
		;;
	esac
}

centrifugo_config() { # centrifugo_config PORT SCENARIO: writes its config, prints its path
	# gateways/centrifugo.json is the configuration; the Go test in
	# gateways/ checks it (history, recovery, API key) against a real server.
	local f=$OUT/centrifugo-$1.json ping=.
	[ "$2" = heartbeat ] && ping=".client.ping_interval = \"$PING_INTERVAL\" | .client.pong_timeout = \"3s\""
	jq --argjson port "$1" --arg key "$API_KEY" ".http_server.port = \$port | .http_api.key = \$key | $ping" \
		"$here/gateways/centrifugo.json" >"$f"
	echo "$f"
}

server_cmd() { # server_cmd SERVER PORT SCENARIO
	local ping=
	[ "$3" = heartbeat ] && ping=" --ping-interval $PING_INTERVAL"
	case $1 in
	duplex) echo "$bin/duplex-serve serve --addr 127.0.0.1:$2 --no-auth --api-key $API_KEY --max-connections $((IDLE_N + 100))$ping" ;;
	duplex-goroutine) echo "$(server_cmd duplex "$2" "$3") --no-event-loop" ;;
	centrifugo) echo "$bin/centrifugo --config $(centrifugo_config "$2" "$3")" ;;
	*)
		log "unknown server $1"
		exit 2
		;;
	esac
}

url() { # url SERVER PORT
	case $1 in
	duplex | duplex-goroutine) echo "ws://127.0.0.1:$2/ws" ;;
	centrifugo) echo "ws://127.0.0.1:$2/connection/websocket" ;;
	esac
}

protocol() { [ "$1" = centrifugo ] && echo centrifugo || echo duplex; }

wait_port() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# server is the PID of the server running now, stopped on any exit.
server=
stop_server() {
	if [ -n "$server" ]; then
		kill "$server" 2>/dev/null || true
		# Bounded: a server that ignores SIGTERM for 10s gets SIGKILL.
		for _ in $(seq 100); do
			kill -0 "$server" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
		server=
	fi
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

run_one() { # run_one SCENARIO SERVER REP
	local sc=$1 s=$2 rep=$3 port=$PORT
	PORT=$((PORT + 1))
	mkdir -p "$OUT/$sc/$s"
	echo "== $sc $s $rep: $(server_cmd "$s" "$port" "$sc")" >>"$OUT/servers.log"
	# shellcheck disable=SC2046
	start_server "$SERVER_CPU" $(server_cmd "$s" "$port" "$sc") >>"$OUT/servers.log" 2>&1 &
	server=$!
	# A listener left on the port by someone else would answer too: check
	# that ours is alive once the port opens.
	if ! wait_port "$port" || ! kill -0 "$server" 2>/dev/null; then
		log "  $s did not start listening on $port (see $OUT/servers.log)"
		stop_server
		return
	fi
	echo "== $sc $s $rep" >>"$OUT/bench.log"
	# shellcheck disable=SC2046
	pin "$CLIENT_CPU" "$bin/duplex" bench --mode pubsub --protocol "$(protocol "$s")" $(scenario_args "$sc") \
		--source-addrs "$sources" --server-pid "$server" --json "$(url "$s" "$port")" \
		>"$OUT/$sc/$s/$rep.json" 2>>"$OUT/bench.log" || true
	stop_server
}

started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for sc in $SCENARIOS; do
	# Repetitions go round the servers, so that a slow spell on the
	# machine is shared rather than landing on one server.
	for rep in $(seq "$R"); do
		for s in $SERVERS; do
			log "$sc: $s, run $rep of $R"
			run_one "$sc" "$s" "$rep"
		done
	done
done

day=$(date -u +%Y-%m-%d)
machine="$(uname -sr), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(go version | cut -d' ' -f3)"
cmdline="R=$R DURATION=$DURATION SIZE=$SIZE PUBLISHERS=$PUBLISHERS IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD HEARTBEAT_HOLD=$HEARTBEAT_HOLD PING_INTERVAL=$PING_INTERVAL FANOUT_N=$FANOUT_N FANOUT_RATE=$FANOUT_RATE SPREAD_N=$SPREAD_N SPREAD_RATE=$SPREAD_RATE bench/gateways.sh"
cat <<INFO
Gateway comparison, $day, $machine.
Servers on core $SERVER_CPU, duplex bench on core $CLIENT_CPU; median of $R runs.
Centrifugo $CENTRIFUGO_VERSION: insecure clients, history 100 for 300s, forced recovery. duplex serve: defaults (--no-auth, --api-key, --max-connections $((IDLE_N + 100))); duplex-goroutine: the same with --no-event-loop. Heartbeat: pings every $PING_INTERVAL (Centrifugo: pong timeout 3s).
Command: $cmdline ($(($(date +%s) - started))s). Load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg). Lower is better but for deliveries/s; ⚠ marks errors.

INFO
"$bin/gateways" -dir "$OUT" -servers "$SERVERS" -scenarios "$SCENARIOS"
log "results in $OUT"

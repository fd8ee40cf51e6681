#!/usr/bin/env bash
# Peer comparison (issue 8): runs every echo server in bench/servers under
# `duplex bench`, the server pinned to one core and the load generator to
# another, repeats each run, and prints medians and ratios as markdown.
#
#   bench/run.sh                      # defaults: about five minutes
#   R=5 DURATION=10s bench/run.sh     # steadier numbers
#   IDLE_N=2000 SCENARIOS="1k idle" SERVERS="duplex gws floor" bench/run.sh
#
# Environment:
#   R           repetitions of each run (3); the table shows medians
#   DURATION    length of each echo run (2s)
#   IDLE_N      connections in the idle scenario (19500; capped by ulimit -n)
#   IDLE_HOLD   how long the idle connections are held before memory is sampled (5s)
#   SCENARIOS   any of: 1k 64k deflate idle (all), rtt (one connection,
#               16-byte messages: the round trip's p99)
#   SERVERS     any of: duplex duplex-detach duplex-events gorilla coder gobwas gws floor floor-goroutine (all)
#   SERVER_CPU  core for the servers (0); CLIENT_CPU core for duplex bench (1)
#   OUT         directory for binaries, logs and JSON results (a new temp dir)
#   PORT        first TCP port; each run takes the next (21000)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
R=${R:-3}
DURATION=${DURATION:-2s}
IDLE_N=${IDLE_N:-19500}
IDLE_HOLD=${IDLE_HOLD:-5s}
SCENARIOS=${SCENARIOS:-1k 64k deflate idle}
SERVERS=${SERVERS:-duplex duplex-detach duplex-events gorilla coder gobwas gws floor floor-goroutine}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/duplex-bench.XXXXXX")}
PORT=${PORT:-21000}
bin=$OUT/bin
mkdir -p "$bin"

log() { printf '%s\n' "$*" >&2; }

log "building into $bin"
for s in duplex gorilla coder gobwas gws floor; do
	(cd "$here" && go build -o "$bin/$s" "./servers/$s")
done
(cd "$here" && go build -o "$bin/summarize" ./summarize)
(cd "$root" && go build -o "$bin/duplex-bench" ./cmd/duplex)

pin() { # pin CPU COMMAND...: run pinned when taskset exists
	local cpu=$1
	shift
	if command -v taskset >/dev/null; then
		taskset -c "$cpu" "$@"
	else
		"$@"
	fi
}
command -v taskset >/dev/null || log "warning: taskset not found; server and load generator are not pinned"

start_server() { # start_server CPU COMMAND...: run in the background with &;
	# exec keeps $! the server's own PID, which duplex bench reads /proc for.
	local cpu=$1
	shift
	if command -v taskset >/dev/null; then
		exec taskset -c "$cpu" "$@"
	fi
	exec "$@"
}

# Idle connections need a file descriptor each, in both processes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$IDLE_N" -gt $((nofile - 200)) ]; then
	log "warning: ulimit -n is $nofile; idle scenario shrunk from $IDLE_N to $((nofile - 200)) connections"
	IDLE_N=$((nofile - 200))
fi
# Eight loopback source addresses: 19,500 connections to one port fit in
# one ephemeral port range, but repeated runs leave ports in TIME_WAIT.
sources=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8

scenario_args() {
	case $1 in
	1k) echo "-c 100 -s 1024 -d $DURATION" ;;
	64k) echo "-c 10 -s 65536 -d $DURATION" ;;
	rtt) echo "-c 1 -s 16 -d $DURATION" ;;
	deflate) echo "-c 100 -s 1024 --text --compress -d $DURATION" ;;
	idle) echo "-n $IDLE_N -d $IDLE_HOLD --source-addrs $sources" ;;
	*)
		log "unknown scenario $1"
		exit 2
		;;
	esac
}

server_cmd() { # server_cmd SERVER SCENARIO PORT
	local s=$1 flags="-addr 127.0.0.1:$3"
	[ "$2" = deflate ] && flags="$flags -compress"
	case $s in
	floor-goroutine) echo "$bin/floor -goroutine $flags" ;;
	duplex-detach) echo "$bin/duplex -detach $flags" ;;
	duplex-events) echo "$bin/duplex -events $flags" ;;
	*) echo "$bin/$s $flags" ;;
	esac
}

wait_port() {
	for _ in $(seq 100); do
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
	# shellcheck disable=SC2046
	start_server "$SERVER_CPU" $(server_cmd "$s" "$sc" "$port") 2>>"$OUT/servers.log" &
	server=$!
	# A listener left on the port by someone else would answer too: check
	# that ours is alive once the port opens.
	if ! wait_port "$port" || ! kill -0 "$server" 2>/dev/null; then
		log "  $s did not start listening on $port (see $OUT/servers.log)"
		stop_server
		return
	fi
	# shellcheck disable=SC2046
	pin "$CLIENT_CPU" "$bin/duplex-bench" bench $(scenario_args "$sc") --server-pid "$server" --json \
		"ws://127.0.0.1:$port/" >"$OUT/$sc/$s/$rep.json" 2>>"$OUT/bench.log" || true
	stop_server
}

started=$(date +%s)
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
cmdline="R=$R DURATION=$DURATION IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD bench/run.sh"
cat <<INFO
Peer comparison, $day, $machine.
Servers on core $SERVER_CPU, duplex bench on core $CLIENT_CPU; median of $R runs; echo runs of $DURATION; idle: $IDLE_N connections held $IDLE_HOLD.
Command: $cmdline ($(($(date +%s) - started))s). Lower is better; ⚠ marks errors.

INFO
# The chart is for the README (docs/bench.svg): copy it there with the table.
"$bin/summarize" -dir "$OUT" -servers "$SERVERS" -scenarios "$SCENARIOS" -svg "$OUT/bench.svg" \
	-date "$day" -machine "$machine" -command "$cmdline; median of $R runs"
log "results in $OUT"
log "chart in $OUT/bench.svg"

#!/usr/bin/env bash
# The websocket fan-out benchmark: a private redis-server, the router and the
# gateway from a release build; then inbox-bench-ws: A agents (role agent,
# team "support", created through the router), C concurrent authenticated
# websockets spread over them, S single events (one sweep each), then a
# burst of B events XADDed straight to inbox:events in the router's format,
# about dialogs of connector "bench" (team support), so every socket sees
# every event. Prints the delivery rate, XADD-to-receipt latency, the
# gateway's RSS per connection and the CPU seconds of each process.
#
# The gateway needs one descriptor per socket: the file limit is raised here,
# before the gateway starts (it inherits it), to the hard limit.
#
# Usage: bash contrib/bench/ws.sh [build-dir]
#   env: C (10000), A (100), B (100), S (10), SIZE (600), ROLE (agent or
#        supervisor), INFLIGHT (200), RUNS (1)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build-bench-ws}
C=${C:-10000}
A=${A:-100}
B=${B:-100}
S=${S:-10}
SIZE=${SIZE:-600}
ROLE=${ROLE:-agent}
INFLIGHT=${INFLIGHT:-200}
RUNS=${RUNS:-1}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null

# One descriptor per websocket in the gateway and in the client.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((C + 100)) ]; then
	echo "ulimit -n is $(ulimit -n) (hard limit): too low for C=$C sockets" >&2
	exit 1
fi

tmp=""
pids=()
cleanup() {
	for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "$tmp" ] || rm -rf "$tmp"
	pids=()
	tmp=""
}
trap cleanup EXIT
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

run_once() {
	local rport gport
	tmp=$(mktemp -d /tmp/inboxd-ws-XXXXXX)
	rport=$(free_port); gport=$(free_port)

	cat > "$tmp/inboxd.conf" <<CONF
[log]
level = warn
[redis]
port = $rport
[store]
path = $tmp/db
map_size_mb = 1024
[gateway]
port = $gport
web_root = $src/ws_gateway/web
secret_file = $tmp/gateway.secret
# the bench opens clients/agents sockets per agent (100 by default)
max_sockets_per_agent = 0
[connector bench]
channel = api
team = support
CONF

	redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --appendonly yes \
		--appendfsync everysec --save "" > "$tmp/redis.log" 2>&1 &
	pids+=($!)
	until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.05; done
	"$build/router/inbox-router" -v -c "$tmp/inboxd.conf" 2> "$tmp/router.log" &
	pids+=($!)
	# the router creates the store; the gateway opens it read-only
	for _ in $(seq 200); do
		grep -q "router ready" "$tmp/router.log" && break
		sleep 0.05
	done
	"$build/ws_gateway/inbox-gateway" -c "$tmp/inboxd.conf" 2> "$tmp/gateway.log" &
	pids+=($!)
	local ready=0
	for _ in $(seq 200); do
		if curl -sf "http://127.0.0.1:$gport/healthz" >/dev/null; then
			ready=1
			break
		fi
		sleep 0.05
	done
	if [ "$ready" != 1 ]; then
		echo "gateway did not start:" >&2
		tail -n 20 "$tmp/router.log" "$tmp/gateway.log" >&2
		return 1
	fi
	echo "limits: gateway (pid ${pids[2]}) $(awk '/Max open files/ {print "nofile " $4 " (soft) " $5 " (hard)"}' \
		"/proc/${pids[2]}/limits"); redis maxclients $(redis-cli -p "$rport" \
		config get maxclients | tail -1) (the gateway uses 2 connections)"

	"$build/contrib/bench/inbox-bench-ws" --gateway "127.0.0.1:$gport" \
		--redis "127.0.0.1:$rport" --clients "$C" --agents "$A" \
		--role "$ROLE" --team "$([ "$ROLE" = agent ] && echo support || echo '')" \
		--inflight "$INFLIGHT" --singles "$S" --burst "$B" --size "$SIZE" \
		--gateway-pid "${pids[2]}" --cpu "inbox-gateway=${pids[2]}" \
		--cpu "redis-server=${pids[0]}" --cpu "inbox-router=${pids[1]}"

	# CPU seconds each process used over the whole run (user+system).
	local tick name=(redis-server inbox-router inbox-gateway)
	tick=$(getconf CLK_TCK)
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[i]}" 2>/dev/null; then
			echo "${name[i]} is gone (crashed?):" >&2
			tail -n 20 "$tmp/${name[i]#inbox-}.log" >&2 || true
			continue
		fi
		read -r ut st < <(awk '{print $14, $15}' "/proc/${pids[i]}/stat")
		python3 -c "print('cpu (whole run) %-15s %.2f s' % ('${name[i]}', ($ut + $st) / $tick))"
	done
	if grep -qE " (warn|error): " "$tmp/router.log" "$tmp/gateway.log"; then
		echo "== warnings logged ($(grep -chE " (warn|error): " \
			"$tmp/router.log" "$tmp/gateway.log" | paste -sd+ | bc)):"
		grep -hE " (warn|error): " "$tmp/router.log" "$tmp/gateway.log" |
			tail -n 5
	fi
}

for run in $(seq "$RUNS"); do
	echo "== run $run: C=$C A=$A ROLE=$ROLE S=$S B=$B SIZE=$SIZE; $(uptime | sed "s/.*load/load/")"
	run_once
	cleanup
done

#!/usr/bin/env bash
# The feed benchmark: a store of N conversations (default 1,000,000), then
# the feed queries an agent's client sends (open page of 50, #payment page of
# 50, the agent's own open dialogs, page 100 of the open feed, #payment and
# mine), timed twice: the store lookup alone (inbox-bench-feed store), and
# over a websocket to inbox-gateway, request to answer (inbox-bench-feed ws).
# The router is started on the store too, to show it accepts it.
#
# Usage: bash contrib/bench/feed.sh [N]
#   env: K (runs per query, 2000), BUILD (build dir, build-bench-feed),
#        KEEP=1 (keep the temporary directory and its store)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-1000000}
K=${K:-2000}
build=${BUILD:-$src/build-bench-feed}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null
bench=$build/contrib/bench/inbox-bench-feed

tmp=$(mktemp -d /tmp/inboxd-feed-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

echo "== populate: $N conversations in $tmp/db"
start=$(date +%s.%N)
"$bench" populate "$tmp/db" "$N"
end=$(date +%s.%N)
python3 -c "print('populate wall time: %.1f s' % ($end - $start))"
echo "store size: $(du -h --apparent-size "$tmp/db/data.mdb" | cut -f1)" \
	"($(stat -c %s "$tmp/db/data.mdb") bytes, data.mdb)"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rport=$(free_port); gport=$(free_port)

cat > "$tmp/inboxd.conf" <<CONF
[log]
level = warn
[redis]
port = $rport
[store]
path = $tmp/db
map_size_mb = 8192
[gateway]
port = $gport
web_root = $src/ws_gateway/web
secret_file = $tmp/gateway.secret
CONF

redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --save "" \
	--appendonly no > "$tmp/redis.log" 2>&1 &
pids+=($!)
until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.05; done

"$build/router/inbox-router" -v -c "$tmp/inboxd.conf" 2> "$tmp/router.log" &
pids+=($!)
"$build/ws_gateway/inbox-gateway" -c "$tmp/inboxd.conf" 2> "$tmp/gateway.log" &
pids+=($!)
ready=0
for _ in $(seq 600); do
	if grep -q "router ready" "$tmp/router.log" &&
		curl -sf "http://127.0.0.1:$gport/healthz" >/dev/null; then
		ready=1
		break
	fi
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || { ready=-1; break 2; }
	done
	sleep 0.05
done
if [ "$ready" != 1 ]; then
	echo "router or gateway did not start:" >&2
	tail -n 20 "$tmp/router.log" "$tmp/gateway.log" >&2
	exit 1
fi
echo "router accepted the store: $(grep -m1 "router ready" "$tmp/router.log" |
	sed 's/.*router ready/router ready/')"

token=$(curl -sf -H 'Content-Type: application/json' \
	-d '{"login":"a05","password":"benchpw"}' \
	"http://127.0.0.1:$gport/api/login" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

echo "== store lookup (K=$K)"
"$bench" store "$tmp/db" "$K"
echo "== websocket round trip (K=$K), agent a05"
"$bench" ws 127.0.0.1 "$gport" "$token" "$K"

# CPU seconds each process used (user+system).
tick=$(getconf CLK_TCK)
name=(redis-server inbox-router inbox-gateway)
for i in "${!pids[@]}"; do
	read -r ut st < <(awk '{print $14, $15}' "/proc/${pids[i]}/stat")
	python3 -c "print('cpu %-15s %.2f s' % ('${name[i]}', ($ut + $st) / $tick))"
done
if grep -qE " (warn|error): " "$tmp/router.log" "$tmp/gateway.log"; then
	echo "== warnings logged:"
	grep -hE " (warn|error): " "$tmp/router.log" "$tmp/gateway.log" |
		tail -n 10
fi

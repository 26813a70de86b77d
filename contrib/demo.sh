#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running inboxd: installs
# what is missing, builds, starts a private Redis (unix socket, data under
# ./state), the router, the webhooks connector and the gateway on loopback,
# creates the demo agent, and prints where to go. Ctrl-C stops everything.
#
# Environment: INBOXD_STATE (default ./state), INBOXD_GATEWAY_PORT (8080),
# INBOXD_WEBHOOKS_PORT (8081).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
state=$(mkdir -p "${INBOXD_STATE:-$PWD/state}" && cd "${INBOXD_STATE:-$PWD/state}" && pwd)
gport=${INBOXD_GATEWAY_PORT:-8080}
wport=${INBOXD_WEBHOOKS_PORT:-8081}
build=$src/build-demo

. "$src/contrib/deps.sh"
inboxd_install_deps
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null

for port in "$gport" "$wport"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "port $port is in use; set INBOXD_GATEWAY_PORT / INBOXD_WEBHOOKS_PORT" >&2
		exit 1
	fi
done

mkdir -p "$state/logs"
conf=$state/inboxd.conf
cat > "$conf" <<CONF
# written by contrib/demo.sh; see contrib/inboxd.conf.example
[log]
level = info
[redis]
unix = $state/redis.sock
prefix = inbox
[store]
path = $state/db
map_size_mb = 1024
[webhooks]
listen = 127.0.0.1
port = $wport
[gateway]
listen = 127.0.0.1
port = $gport
web_root = $src/ws_gateway/web
secret_file = $state/gateway.secret
[connector demo]
channel = api
CONF

pids=()
stop() {
	trap - INT TERM EXIT
	echo; echo "stopping inboxd..."
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap stop INT TERM EXIT

wait_for() { # what, test command...
	local what=$1; shift
	for _ in $(seq 1 200); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.05
	done
	echo "$what did not start; see $state/logs" >&2
	exit 1
}

rm -f "$state/redis.sock"
redis-server --port 0 --unixsocket "$state/redis.sock" --unixsocketperm 700 \
	--dir "$state" --appendonly yes --appendfsync everysec --save "" \
	> "$state/logs/redis.log" 2>&1 &
pids+=($!)
wait_for redis redis-cli -s "$state/redis.sock" ping

"$build/router/inbox-router" -c "$conf" 2> "$state/logs/router.log" &
pids+=($!)
wait_for inbox-router grep -q "router ready" "$state/logs/router.log"
"$build/connectors/webhooks/inbox-webhooks" -c "$conf" 2> "$state/logs/webhooks.log" &
pids+=($!)
"$build/ws_gateway/inbox-gateway" -c "$conf" 2> "$state/logs/gateway.log" &
pids+=($!)
wait_for inbox-webhooks grep -q "webhooks ready" "$state/logs/webhooks.log"
wait_for inbox-gateway grep -q "gateway ready" "$state/logs/gateway.log"

if ! out=$(echo demo | "$build/router/inboxctl" -c "$conf" agent add demo \
	--name "Demo Agent" --password-stdin 2>&1); then
	case $out in *exists*) ;; *) echo "$out" >&2; exit 1 ;; esac
fi

cat <<MSG

inboxd is running.
  Web client:  http://127.0.0.1:$gport/   (login: demo, password: demo)
  Send a message:
    curl -s -X POST http://127.0.0.1:$wport/hooks/demo -H 'Content-Type: application/json' \\
      -d '{"external_id":"m-1","thread":"t-1","contact":{"external_id":"c-1","name":"Ann"},"text":"Hello!"}'
  Admin:       $build/router/inboxctl -c $conf conversations
  Logs:        $state/logs/
Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a process exited; see $state/logs" >&2

#!/usr/bin/env bash
# The soak test (not run in CI): an hour of mixed traffic (webhook POSTs,
# an agent's commands over a websocket, IMAP APPENDs when dovecot is
# installed) while a chaos loop SIGKILLs and restarts a random process
# (router, webhooks, gateway, imap, redis) every 10-60 s; at the end every
# acknowledged message must be in the store exactly once. See soak.py for
# what is checked and the figures printed.
#
# Usage: bash contrib/bench/soak.sh [build-dir]
#   env: SOAK_SECONDS (3600), SOAK_RATE (40 posts/s), SOAK_KILL_MIN (10),
#        SOAK_KILL_MAX (60), SOAK_IMAP (auto|0|1), SOAK_SEED, SOAK_KEEP,
#        SOAK_JSON (write the figures there), SOAK_SHARDS (1: with N, one
#        router per shard, each killed on its own); more in soak.py.
# Exit status: 0 when every check held, 1 otherwise (the logs are kept and
# their directory printed).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${BUILD:-$src/build-soak}}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null
BUILD=$build exec python3 "$src/contrib/bench/soak.py"

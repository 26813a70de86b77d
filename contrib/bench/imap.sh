#!/usr/bin/env bash
# The e-mail sync benchmark (contrib/bench/imap_sync.py) on a release build.
# Usage: bash contrib/bench/imap.sh [N]   (default 10000)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$src/build-bench}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null
BUILD=$build python3 "$src/contrib/bench/imap_sync.py" "${1:-10000}"

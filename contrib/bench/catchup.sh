#!/usr/bin/env bash
# Router catch-up benchmark (contrib/bench/catchup.py) on a release build.
# Usage: bash contrib/bench/catchup.sh [N]   (default 100000)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$src/build-bench}
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" --buildtype=release -Dtests=false >/dev/null
fi
ninja -C "$build" >/dev/null
BUILD=$build python3 "$src/contrib/bench/catchup.py" "${1:-100000}"

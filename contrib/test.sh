#!/usr/bin/env bash
# Runs every inboxd test (unit, fuzz corpora, integration against real
# redis-server, LMDB and the real executables) in a build with
# AddressSanitizer + UndefinedBehaviorSanitizer and warnings as errors.
# Usage: bash contrib/test.sh [meson test args...]
# Ends with a line "N passed, N failed"; exits nonzero when a test failed.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${INBOXD_TEST_BUILD:-$src/build-test}
. "$src/contrib/deps.sh"
inboxd_install_deps $INBOXD_TEST_DEPS

if [ ! -f "$build/build.ninja" ] && ! meson setup "$build" "$src" \
	-Db_sanitize=address,undefined -Dwerror=true -Dtests=true \
	--buildtype=debugoptimized >/dev/null; then
	echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1
fi
if ! ninja -C "$build"; then
	echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
meson test -C "$build" --print-errorlogs --num-processes 2 "$@" || rc=$?

# Meson's own summary is not what CI reads: count from its JSON log, where a
# skip counts as a failure.
python3 - "$build/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = 0
with open(sys.argv[1]) as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line).get("result")
        if r == "OK":
            passed += 1
        else:
            failed += 1
print("%d passed, %d failed" % (passed, failed))
PY
exit $rc

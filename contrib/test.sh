#!/usr/bin/env bash
# Runs every inboxd test (unit, fuzz corpora, integration against real
# redis-server, LMDB and the real executables) in a build with
# AddressSanitizer + UndefinedBehaviorSanitizer and warnings as errors; then,
# in a second build (build-fuzz: clang, -Dfuzz=true, ASan+UBSan, coverage for
# libFuzzer), a short libFuzzer run of every fuzz target (suite 'fuzz', about
# 15 s each, FUZZ_SECONDS to change).
# Usage: bash contrib/test.sh [meson test args...]
# The args go to the first build's meson test; with args the fuzz stage is
# left out unless INBOXD_FUZZ=1 (INBOXD_FUZZ=0 leaves it out always).
# Ends with a line "N passed, N failed" counting both builds' tests; exits
# nonzero when a test failed.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${INBOXD_TEST_BUILD:-$src/build-test}
fuzz_build=${INBOXD_FUZZ_BUILD:-$src/build-fuzz}
fuzz=${INBOXD_FUZZ:-$([ $# -eq 0 ] && echo 1 || echo 0)}
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
logs=("$build/meson-logs/testlog.json")

# The fuzz stage. libFuzzer needs clang; -fsanitize=fuzzer-no-link gives
# every library coverage instrumentation (the targets add -fsanitize=fuzzer).
# The build is not -Werror: clang warns where gcc, which the main build
# uses, does not. A setup or build failure counts as one failed test.
broken=0
if [ "$fuzz" = 1 ]; then
	echo "== fuzz: libFuzzer runs in $fuzz_build"
	rm -f "$fuzz_build/meson-logs/testlog.json"
	if [ ! -f "$fuzz_build/build.ninja" ] && ! CC=clang meson setup \
		"$fuzz_build" "$src" -Dfuzz=true -Dtests=true \
		-Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link \
		--buildtype=debugoptimized >/dev/null; then
		echo "fuzz: meson setup failed"; broken=1; rc=1
	elif ! ninja -C "$fuzz_build" >"$fuzz_build/ninja.log" 2>&1; then
		tail -30 "$fuzz_build/ninja.log"
		echo "fuzz: build failed"; broken=1; rc=1
	else
		meson test -C "$fuzz_build" --no-rebuild --suite fuzz \
			--print-errorlogs --num-processes 2 || rc=$?
		logs+=("$fuzz_build/meson-logs/testlog.json")
		# no fuzz tests at all is a failure too (counted below)
		[ -s "$fuzz_build/meson-logs/testlog.json" ] || rc=1
	fi
fi

# Meson's own summary is not what CI reads: count from its JSON logs, where a
# skip counts as a failure (and a missing log as one failure).
python3 - "$broken" "${logs[@]}" <<'PY'
import json, sys
passed, failed = 0, int(sys.argv[1])
for path in sys.argv[2:]:
    try:
        f = open(path, errors="replace")
    except OSError as e:
        print("no test log: %s" % e)
        failed += 1
        continue
    with f:
        for line in f:
            line = line.strip().strip("\x00")
            if not line:
                continue
            try:
                r = json.loads(line).get("result")
            except ValueError:
                print("unreadable line in %s: counted as a failure" % path)
                r = None
            if r == "OK":
                passed += 1
            else:
                failed += 1
print("%d passed, %d failed" % (passed, failed))
PY
exit $rc

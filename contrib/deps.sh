# Sourced by contrib/demo.sh, contrib/test.sh and .ci/run: installs the Debian
# packages inboxd needs to build, run and test, when some are missing.
INBOXD_DEPS="meson ninja-build pkg-config gcc libc6-dev python3
 libcjson-dev liblmdb-dev libhiredis-dev libwebsockets-dev libwebsockets-evlib-uv
 libcurl4-gnutls-dev libetpan-dev libgnutls28-dev libsasl2-modules
 libuv1-dev libsodium-dev libcmocka-dev zlib1g-dev redis-server redis-tools"
# Only the tests need these: headless Chromium for the web client, dovecot
# (IMAP) and openssl (its test certificate) for the e-mail connector; clang
# and its runtimes (libFuzzer, sanitizers; only Recommended by clang) for the
# fuzz build; redis-sentinel for the failover tests (sentinel_tests.py).
INBOXD_TEST_DEPS="chromium nodejs dovecot-imapd openssl clang libclang-rt-dev
 redis-sentinel"

# Usage: inboxd_install_deps [extra packages...]
inboxd_install_deps() {
	local missing=() p
	for p in $INBOXD_DEPS "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "inboxd: installing ${missing[*]}" >&2
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

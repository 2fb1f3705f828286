#!/usr/bin/env bash
# The memcached tenant PD in QEMU: builds the default system (system.xml: memcached on TCP and
# UDP port 11211), boots it with a free host port forwarded to guest port 11211 (TCP and UDP),
# and talks to it with real clients:
#   (a) pytest tests/memcached-qemu: tests/memcached's raw-protocol cases against Debian's
#       memcached side by side, a pymemcache session (every classic command, expiry, noreply,
#       large values, stats), several connections at once, UDP with the 8-byte frame header;
#   (b) libmemcached-tools (Debian): memccp a file in, memccat it back and compare, memcstat.
# Prints `memcached-qemu: N passed, M failed`; exits non-zero on any failure.
#
# Environment: TIMEOUT (seconds QEMU may live, default 240), CPU/GIC (passed to qemu/run.sh),
# PYTEST_ARGS (extra pytest arguments, e.g. `-k udp`).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=build
log=$out/memcached-qemu.log
image=$out/memcached-qemu.img
mkdir -p "$out"
passed=0
failed=0
finish() {
    echo "memcached-qemu: $passed passed, $failed failed"
    [ "$failed" = 0 ] && exit 0
    exit 1
}
fail_setup() {
    echo "memcached-qemu: $1"
    failed=$((failed + 1))
    finish
}

# What the clients need: Debian's memcached (the reference) and libmemcached-tools, pytest and
# pymemcache from PyPI.
missing=()
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v memccp >/dev/null 2>&1 || missing+=(libmemcached-tools)
if [ ${#missing[@]} -gt 0 ]; then
    echo "memcached-qemu: installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null || fail_setup "apt-get install ${missing[*]} failed"
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import pytest, pymemcache" >/dev/null 2>&1; then
    echo "memcached-qemu: installing pytest and pymemcache (pip)"
    "$PYTHON" -m pip install -q pytest pymemcache || fail_setup "pip install failed"
fi

tools/build-bare.sh >/dev/null || fail_setup "tools/build-bare.sh failed"
cargo build -q --release --bin edgeos || fail_setup "building the edgeos tool failed"
if ! cargo run -q --release --bin edgeos -- build system.xml --board qemu-virt-aarch64 \
        --search-path "$out/elf" -o "$image" >"$out/memcached-qemu.build.log" 2>&1; then
    cat "$out/memcached-qemu.build.log"
    fail_setup "building the image of system.xml failed"
fi

# A host port free for both TCP and UDP.
port=$("$PYTHON" -c '
import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        u.close(); t.close()
    print(p); break')

NET_FORWARD="$port:11211" timeout "${TIMEOUT:-240}" qemu/run.sh "$image" </dev/null >"$log" 2>&1 &
qemu_pid=$!
cleanup() { kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; }
trap cleanup EXIT

# Ready: the PD announced itself and answers `version` through the forwarded port.
ready=0
for _ in $(seq 1 300); do
    if grep -q "memcached: PD memcached" "$log" && "$PYTHON" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"version\r\n")
sys.exit(0 if s.recv(100).startswith(b"VERSION ") else 1)' "$port" 2>/dev/null; then
        ready=1; break
    fi
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
done
if [ $ready = 0 ]; then
    echo "memcached-qemu: the memcached PD did not come up (log: $log)"
    tail -n 30 "$log" | sed 's/^/    | /'
    fail_setup "no server"
fi
grep "memcached: PD memcached" "$log"

# (a) pytest: every case counts.
junit=$out/memcached-qemu.junit.xml
# shellcheck disable=SC2086
MEMCACHED_QEMU_PORT=$port "$PYTHON" -m pytest -q -p no:cacheprovider --junitxml="$junit" \
    tests/memcached-qemu/test_qemu.py ${PYTEST_ARGS:-} 2>&1 | sed 's/^/    /'
read -r p f < <("$PYTHON" -c '
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skipped, bad)' "$junit")
passed=$((passed + p))
failed=$((failed + f))

# (b) libmemcached-tools.
check() {
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}
servers="--servers=127.0.0.1:$port"
work=$(mktemp -d)
head -c 300000 /dev/urandom >"$work/payload.bin"
check "memccp stores a 300 KB file" memccp "$servers" "$work/payload.bin"
memccat_roundtrip() {
    # memccat ends what it prints with a newline of its own.
    memccat "$servers" payload.bin >"$work/back.bin" || return 1
    [ "$(stat -c %s "$work/back.bin")" = 300001 ] && head -c 300000 "$work/back.bin" | cmp -s - "$work/payload.bin"
}
check "memccat reads it back byte for byte" memccat_roundtrip
memcstat_reports() {
    memcstat "$servers" >"$work/stat.txt" 2>&1 || { cat "$work/stat.txt"; return 1; }
    grep -q "version: 1.6.18-edgeos" "$work/stat.txt" && grep -q "curr_items:" "$work/stat.txt" \
        || { cat "$work/stat.txt"; return 1; }
    grep -E "^\s*(Server|version|curr_items|bytes|cmd_set|time):" "$work/stat.txt" | sed 's/^/    /'
}
check "memcstat prints the server's stats" memcstat_reports
rm -rf "$work"

if ! kill -0 "$qemu_pid" 2>/dev/null; then
    echo "FAIL QEMU exited during the test (log: $log)"
    failed=$((failed + 1))
elif grep -q "panicked\|fault" "$log"; then
    echo "FAIL a PD faulted (log: $log)"
    grep "panicked\|fault" "$log" | head -5
    failed=$((failed + 1))
fi
finish

#!/usr/bin/env bash
# Instance tenants in QEMU: boots tests/net/instances/system.xml (the default node with
# memcached served by featherweight instances, policy port over 11211..11218, idle 3 s, and
# the echo tenant) and runs tests/net/instances/client.py against it: fresh instances per
# port, the first packet of a flow (TCP SYN, UDP datagram) answered at once, separate stores,
# TCP and UDP of a port on one instance, idle release and a fresh instance after it, hostile
# instances (a template whose instances corrupt their queue) dropped alone. Also
# checks the guest log: nothing panicked or faulted.
#
# Prints `instances: N passed, M failed`; exits non-zero on failure. TIMEOUT: seconds QEMU may
# live (default 120).
set -uo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
out=build
log=$out/net-instances.log
mkdir -p "$out"
[ "${SKIP_BUILD:-0}" = 1 ] || tools/build-bare.sh >/dev/null || { echo "instances: build failed"; echo "instances: 0 passed, 1 failed"; exit 1; }
if ! cargo run -q --bin edgeos -- build tests/net/instances/system.xml --board qemu-virt-aarch64 \
        --search-path "$out/elf" -o "$out/net-instances.img" >"$out/net-instances.build.log" 2>&1; then
    cat "$out/net-instances.build.log"; echo "instances: 0 passed, 1 failed"; exit 1
fi
read -r p1 p2 p3 p4 < <(python3 -c '
import socket
ports = []
while len(ports) < 4:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); ports.append(p)
    except OSError:
        pass
    u.close(); t.close()
print(*ports)')
NET_FORWARD="$p1:5555 $p2:11211 $p3:11212 $p4:7100" timeout "${TIMEOUT:-120}" qemu/run.sh "$out/net-instances.img" </dev/null >"$log" 2>&1 &
qemu_pid=$!
cleanup() { kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 1 300); do
    if grep -q "echo: PD echo" "$log" && grep -q "net-virt: node" "$log" && grep -q "manager: [0-9]* services" "$log"; then break; fi
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q "net-virt: node" "$log"; then
    echo "instances: the system did not come up (log: $log)"
    tail -n 30 "$log" | sed 's/^/    | /'
    echo "instances: 0 passed, 1 failed"
    exit 1
fi
python3 tests/net/instances/client.py --echo "$p1" --mc "$p2" --mc2 "$p3" --vandal "$p4" --log "$log" --idle 3 | tee "$out/net-instances-client.log"
rc=${PIPESTATUS[0]}
read -r passed failed < <(sed -n 's/^instances: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$out/net-instances-client.log" | tail -n1)
passed=${passed:-0}; failed=${failed:-1}
# Only the vandal's instances may be cut off; nothing may panic or fault.
if grep -E "panicked|faulted|no longer served" "$log" | grep -qv "broke its tx_active queue"; then
    echo "FAIL a PD panicked, faulted or was cut off (log: $log):"
    grep -E -A3 "panicked|faulted|no longer served" "$log" | head -20 | sed 's/^/    | /'
    failed=$((failed + 1)); rc=1
else
    echo "ok   no PD panicked or faulted"; passed=$((passed + 1))
fi
echo "instances: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$rc" = 0 ]

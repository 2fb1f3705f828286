#!/usr/bin/env bash
# The network path's QEMU test: boots tests/net/system.xml (virtio-net driver, virtualiser, two
# echo tenants, one tenant that never drains its ring, a hostile one, the route API's controller
# netctl) with QEMU user networking, forwards
# host ports to the tenants, puts a `dgram` netdev on the same hub as the NIC to inject raw
# Ethernet frames, and runs tests/net/client.py against it. User networking runs without IPv6,
# so QEMU sends the guest no router advertisements the virtualiser would count as unrouted.
#
#   tests/net/run.sh            the test (prints `net: N passed, M failed`; non-zero on failure),
#                               then tests/net/instances/run.sh (memcached served by instances)
#   tests/net/run.sh bench      measurements (round trips, echoes/s) into build/net-bench.txt
#   tests/net/run.sh icount     instructions per packet through driver + virtualiser (-icount)
#
# Environment: CPU, GIC, EL2 (passed to qemu/run.sh), LEGACY=1 (virtio-mmio version 1),
# TIMEOUT (seconds for the whole run, default 300).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
mode=${1:-test}
out=build
log=$out/net.log
mkdir -p "$out"

if ! tools/build-bare.sh >/dev/null; then
    echo "net: build failed"; echo "net: 0 passed, 1 failed"; exit 1
fi
if ! cargo build -q --bin edgeos; then
    echo "net: building the edgeos tool failed"; echo "net: 0 passed, 1 failed"; exit 1
fi
if ! cargo run -q --bin edgeos -- build tests/net/system.xml --board qemu-virt-aarch64 \
        --search-path "$out/elf" --search-path tests/net -o "$out/net.img" >"$out/net.build.log" 2>&1; then
    cat "$out/net.build.log"; echo "net: 0 passed, 1 failed"; exit 1
fi

# Free local ports: 4 forwarded (echo1, echo2, sink, netctl) and 2 for the raw-frame injector.
# (A UDP port the kernel picks may be taken for TCP: pick again then.)
read -r p1 p2 p3 p4 inj_guest inj_host < <(python3 -c '
import socket
for _ in range(50):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    tcps = [socket.socket() for _ in range(4)]
    for s in socks: s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    try:
        for t, p in zip(tcps, ports): t.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(*ports)
    break')

fwd="hostfwd=udp:127.0.0.1:$p1-:7001,hostfwd=tcp:127.0.0.1:$p1-:7001"
fwd="$fwd,hostfwd=udp:127.0.0.1:$p2-:7002,hostfwd=tcp:127.0.0.1:$p2-:7002"
fwd="$fwd,hostfwd=udp:127.0.0.1:$p3-:7003,hostfwd=udp:127.0.0.1:$p4-:7005"
qemu_net=(
    -netdev "user,id=user0,ipv6=off,$fwd"
    -netdev "dgram,id=inject0,local.type=inet,local.host=127.0.0.1,local.port=$inj_guest,remote.type=inet,remote.host=127.0.0.1,remote.port=$inj_host"
    -netdev hubport,id=hub_user,hubid=0,netdev=user0
    -netdev hubport,id=hub_inject,hubid=0,netdev=inject0
    -netdev hubport,id=hub_nic,hubid=0
    -device virtio-net-device,netdev=hub_nic
)
if [ "${LEGACY:-0}" != 1 ]; then
    qemu_net+=(-global virtio-mmio.force-legacy=false)
fi
extra=()
if [ "$mode" = icount ]; then
    extra=(-icount shift=0)
fi

NET=none timeout "${TIMEOUT:-300}" qemu/run.sh "$out/net.img" "${qemu_net[@]}" "${extra[@]}" </dev/null >"$log" 2>&1 &
qemu_pid=$!
cleanup() { kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null; }
trap cleanup EXIT

# Wait for every tenant to be up.
for _ in $(seq 1 300); do
    if grep -q "echo: PD echo2" "$log" && grep -q "echo: PD echo1" "$log" && grep -q "netctl: tenant" "$log"; then break; fi
    if ! kill -0 "$qemu_pid" 2>/dev/null; then break; fi
    sleep 0.1
done
if ! grep -q "netctl: tenant" "$log"; then
    echo "net: the system did not come up (log: $log)"
    tail -n 30 "$log" | sed 's/^/    | /'
    echo "net: 0 passed, 1 failed"
    exit 1
fi

client=(python3 tests/net/client.py --echo "$p1,$p2" --sink "$p3" --control "$p4" --inject-to "$inj_guest" --inject-from "$inj_host")
passed=0
failed=0
count() {  # adds the counts of a "WORD: N passed, M failed" line
    local p f
    read -r p f < <(sed -n 's/^[a-z]*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' | tail -n1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
}
case "$mode" in
    test|bench)
        args=()
        [ "$mode" = bench ] && args=(--bench "$out/net-bench.txt")
        "${client[@]}" "${args[@]}" | tee "$out/net-client.log"
        rc=${PIPESTATUS[0]}
        count <"$out/net-client.log"
        ;;
    icount) tests/net/icount.sh "$p1" "$log"; rc=$? ;;
    *) echo "unknown mode $mode"; rc=2 ;;
esac
# What the guest itself reports: each line must be in the log.
if [ "$mode" = test ]; then
    while IFS='|' read -r what line; do
        if grep -qF -- "$line" "$log"; then
            echo "ok   $what"; passed=$((passed + 1))
        else
            echo "FAIL $what: no line '$line' in $log"; failed=$((failed + 1)); rc=1
        fi
    done <<'EXPECT'
the virtualiser reports the stalled tenant's drops|net-virt: tenant 2 is not draining its ring
the route API works over protected calls|netctl: route API ok
the route API refuses a caller that is not the controller|vandal: route API refused every call (not the controller)
the virtualiser logged the refused call|net-virt: route API call on channel 7 refused: not the controller
a tenant that corrupts its queue is cut off|net-virt: tenant 3 broke its tx_active queue
EXPECT
fi
# Only the vandal may be cut off; nothing may panic or fault.
if grep -E "panicked|faulted|no longer served" "$log" | grep -qv "tenant 3 broke its tx_active"; then
    echo "FAIL a PD panicked, faulted or was cut off (log: $log):"
    grep -E -A3 "panicked|faulted|no longer served" "$log" | head -20 | sed 's/^/    | /'
    failed=$((failed + 1))
    rc=1
fi
# Instance tenants (a system of its own, booted after this one is stopped).
if [ "$mode" = test ]; then
    cleanup
    trap - EXIT
    SKIP_BUILD=1 tests/net/instances/run.sh | tee "$out/net-instances-run.log"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    count <"$out/net-instances-run.log"
fi
if [ "$mode" != icount ]; then
    echo "net: $passed passed, $failed failed"
fi
exit $rc

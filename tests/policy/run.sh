#!/usr/bin/env bash
# Per-client policy in QEMU: the default node with its memcached service switched to `policy
# client` (one featherweight instance per client address), its NIC on a raw L2 link to this
# test (a QEMU `dgram` netdev, no user networking), and tests/policy/client.py playing the
# gateway and CLIENTS clients with distinct IPv4 addresses, speaking memcached's UDP protocol.
# Passes when every client gets an instance of its own: what one client stores, no other client
# sees; a client's second source port reaches the same instance; the virtualiser logs one fresh
# instance per client.
#
#   tests/policy/run.sh            CLIENTS=6 (at most 8: the default fork grant's max_instances
#                                  less the pool of 2 is what the quota leaves room for)
#
# Prints `policy: P passed, F failed`; exits non-zero on failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=build/policy
mkdir -p "$out"
clients=${CLIENTS:-6}

fail_early() { echo "FAIL $1"; echo "policy: 0 passed, 1 failed"; exit 1; }

[ "${SKIP_BUILD:-0}" = 1 ] || tools/build-bare.sh >/dev/null || fail_early "build"
cargo build -q --bin edgeos || fail_early "building the edgeos tool"

# The default description with its memcached service serving each client address on port 11211.
sed -e 's/ports 11211-11218 protocols tcp,udp policy port/ports 11211 protocols tcp,udp policy client/' \
    system.services.conf >"$out/system.services.conf"
grep -q "policy client" "$out/system.services.conf" ||
    fail_early "system.services.conf no longer has the memcached line this test rewrites"
cp system.routes.conf system.xml "$out/"
if ! cargo run -q --bin edgeos -- build "$out/system.xml" --board qemu-virt-aarch64 --search-path build/elf \
        -o "$out/policy.img" >"$out/build.log" 2>&1; then
    cat "$out/build.log"; fail_early "image build"
fi

# Two free local UDP ports: QEMU's end of the L2 link and ours.
read -r guest_port host_port < <(python3 -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
log=$out/guest.log
NET=none timeout "${TIMEOUT:-300}" qemu/run.sh "$out/policy.img" \
    -netdev "dgram,id=l2,local.type=inet,local.host=127.0.0.1,local.port=$guest_port,remote.type=inet,remote.host=127.0.0.1,remote.port=$host_port" \
    -device virtio-net-device,netdev=l2 -global virtio-mmio.force-legacy=false </dev/null >"$log" 2>&1 &
qemu_pid=$!
trap 'kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null' EXIT
for _ in $(seq 1 600); do
    grep -q "net-virt: node" "$log" && grep -q "manager: [0-9]* services" "$log" && break
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "net-virt: node" "$log" || { tail -n 30 "$log" | sed 's/^/    | /'; fail_early "the system did not come up (log: $log)"; }

python3 tests/policy/client.py "$host_port" "$guest_port" "$clients" "$log"

#!/usr/bin/env bash
# `make run`'s path, checked: build the default system (system.xml) and boot it in QEMU; every
# PD's greeting must appear, and the echo tenant must answer on guest port 5555 over the NIC
# that qemu/run.sh adds (UDP and TCP, through a free host port, so a port taken on the host
# cannot fail the test). The default system runs forever, so QEMU is stopped once the checks
# are done (or after TIMEOUT seconds, which fails). Last, a dry run of qemu/run.sh checks that
# its default forwarding covers every port the default system serves.
set -uo pipefail
cd "$(dirname "$0")/../.."
timeout_s=${TIMEOUT:-20}
make -s image >build/default.build.log 2>&1 || { cat build/default.build.log; echo "default: 0 passed, 3 failed"; exit 1; }
log=build/default.log
want=("hello from PD hello" "hello from PD world" "echo: PD echo (tenant 0) serving UDP port 5555, TCP port 5555")
# A host port free for both TCP and UDP.
port=$(python3 -c '
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass')
NET_FORWARD="$port:5555" qemu/run.sh build/edgeos.img </dev/null >"$log" 2>&1 &
qemu=$!
ok=0
for _ in $(seq $((timeout_s * 10))); do
    missing=0
    for w in "${want[@]}"; do grep -qF "$w" "$log" || missing=1; done
    if [ $missing = 0 ]; then ok=1; break; fi
    kill -0 $qemu 2>/dev/null || break
    sleep 0.1
done
echo_ok=0
if [ $ok = 1 ]; then
    # A few datagrams (each tried up to 3 times: this is a smoke check of the default system's
    # forwarding, tests/net counts losses) and one TCP exchange.
    if python3 - "$port" <<'PY'
import socket, sys
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
for i in range(5):
    msg = b"default system %d" % i
    for _ in range(3):
        u.sendto(msg, ("127.0.0.1", port))
        try:
            if u.recvfrom(2048)[0] == msg:
                break
        except socket.timeout:
            pass
    else:
        sys.exit(f"no UDP echo of {msg!r}")
with socket.create_connection(("127.0.0.1", port), timeout=5) as t:
    t.settimeout(5)
    t.sendall(b"hello over TCP")
    got = b""
    while len(got) < 14:
        chunk = t.recv(64)
        if not chunk:
            break
        got += chunk
    if got != b"hello over TCP":
        sys.exit(f"TCP echo returned {got!r}")
PY
    then echo_ok=1; fi
fi
kill $qemu 2>/dev/null; wait $qemu 2>/dev/null
passed=0
failed=0
if [ $ok = 1 ]; then
    echo "ok   default system boots and every PD prints its line"; passed=$((passed + 1))
else
    echo "FAIL default system: expected lines missing; log:"; cat "$log"; failed=$((failed + 1))
fi
if [ $echo_ok = 1 ]; then
    echo "ok   default system: the echo tenant answers UDP and TCP on guest port 5555 (host port $port)"; passed=$((passed + 1))
else
    echo "FAIL default system: no echo on guest port 5555 (host port $port; log: $log)"; failed=$((failed + 1))
fi
# qemu/run.sh's default forwarding (a dry run with QEMU=echo): every port the default system
# serves (system.routes.conf, system.services.conf) is forwarded to itself, TCP and UDP, or
# reported as taken on the host.
dry=$(env -u NET_FORWARD QEMU=echo qemu/run.sh build/edgeos.img 2>&1)
if python3 - "$dry" <<'PY'
import sys
out = sys.argv[1]
ports = []
for line in open("system.routes.conf").read().splitlines():
    w = line.split("#")[0].split()
    if len(w) == 4 and w[0] == "route":
        ports.append(int(w[3]))
for line in open("system.services.conf").read().splitlines():
    w = line.split("#")[0].split()
    if w[:1] == ["service"]:
        lo, _, hi = w[w.index("ports") + 1].partition("-")
        ports += range(int(lo), int(hi or lo) + 1)
missing = [p for p in sorted(set(ports))
           if not all(f"hostfwd={k}:127.0.0.1:{p}-:{p}" in out for k in ("tcp", "udp"))
           and f"host port {p} is in use" not in out]
if missing:
    sys.exit(f"not forwarded by default: {missing}")
print(f"ports {sorted(set(ports))} forwarded by default")
PY
then
    echo "ok   qemu/run.sh forwards every port the default system serves"; passed=$((passed + 1))
else
    echo "FAIL qemu/run.sh's default forwarding misses served ports"; failed=$((failed + 1))
fi
echo "default: $passed passed, $failed failed"
[ $failed = 0 ]

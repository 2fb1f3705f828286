#!/usr/bin/env bash
# The network virtualiser's instructions per packet with few vs many live, idle memcached
# instances, under `-icount shift=0` (one counter tick = 16 instructions at 62.5 MHz).
#
# Boots the default node with its memcached service widened to N ports (as tests/instances/run.sh;
# idle time raised to 600 s so nothing is released during the run) and, in one boot:
#   1. drives UDP echoes (64-byte payloads, INFLIGHT at a time, default 1) to the static echo
#      tenant (port 5555) until the virtualiser has printed 3 statistics lines (every 16384
#      frames): "few";
#   2. opens one TCP connection per memcached port (N instances live, then idle; the
#      connections stay open) and checks each with a `version` request;
#   3. drives the same echoes until 2 more statistics lines: "many".
# Each figure is the virtualiser's handler ticks between its last two statistics lines of the
# phase x 16 / the frames between them (one frame in and one out per echo). One echo in flight
# makes every echo the same sequence of events; with more in flight, how frames fall into
# batches varies from run to run by a factor of 2 (the stats line's `events` shows it).
#
# With BEFORE=DIR (a directory holding another net_virtualiser.elf, e.g. one built from the
# previous commit) the same is measured with that virtualiser too, in the same run, and both are
# printed side by side.
#
#   tests/instances/icount.sh      N=300 MEM=1G QUOTA=0x3a000000 BASE=23211 INFLIGHT=1 [BEFORE=DIR] [SKIP_BUILD=1]
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${N:-300}
base=${BASE:-23211}
out=build/instances-icount
mkdir -p "$out"

[ "${SKIP_BUILD:-0}" = 1 ] || tools/build-bare.sh >/dev/null || { echo "icount: build failed"; exit 1; }
why=$(tests/instances/widen.sh "$n" "$out" 600) || { echo "icount: $why"; exit 1; }

variants=(after)
[ -n "${BEFORE:-}" ] && variants=(before after)
for v in "${variants[@]}"; do
    search=(--search-path build/elf)
    [ "$v" = before ] && search=(--search-path "$BEFORE" --search-path build/elf)
    if ! cargo run -q --bin edgeos -- build "$out/system.xml" --board qemu-virt-aarch64 "${search[@]}" \
            -o "$out/$v.img" >"$out/$v.build.log" 2>&1; then
        cat "$out/$v.build.log"; echo "icount: image build failed ($v)"; exit 1
    fi
done

measure() {  # measure VARIANT: prints "VARIANT few F many M live L"
    local v=$1 log=$out/$1.log
    local forward="$((base - 1)):5555 "
    for ((k = 0; k < n; k++)); do forward+="$((base + k)):$((11211 + k)) "; done
    NET_FORWARD="$forward" MEM=${MEM:-1G} timeout "${TIMEOUT:-900}" qemu/run.sh "$out/$v.img" -icount shift=0 \
        </dev/null >"$log" 2>&1 &
    local qemu_pid=$!
    for _ in $(seq 1 3000); do
        grep -q "net-virt: node" "$log" && grep -q "manager: [0-9]* services" "$log" && grep -q "echo: PD echo" "$log" && break
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.1
    done
    python3 - "$v" "$log" "$((base - 1))" "$base" "$n" "${INFLIGHT:-1}" <<'PY'
import re, socket, sys, time
from concurrent.futures import ThreadPoolExecutor
variant, log, echo_port, base, n, inflight = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
pat = re.compile(r"net-virt: stats: frames (\d+) .*handler_ticks (\d+) instances live (\d+)(?:.* events (\d+))?")
def lines():
    return [tuple(int(x or 0) for x in m.groups()) for m in pat.finditer(open(log, errors="replace").read())]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
def drive(until):
    deadline = time.monotonic() + 600
    sent = 0
    while time.monotonic() < deadline:
        for _ in range(inflight):
            s.sendto(bytes(64), ("127.0.0.1", echo_port))
            sent += 1
        for _ in range(inflight):
            try:
                s.recvfrom(2048)
            except socket.timeout:
                break
        if sent % 1024 < inflight and len(lines()) >= until:
            return
    print(f"icount {variant}: timed out waiting for {until} statistics lines (have {len(lines())})")
    sys.exit(1)
def per_frame(a, b):
    return (b[1] - a[1]) * 16 / (b[0] - a[0])
def events(a, b):  # events per frame ("-": the virtualiser does not count them)
    return f"{(b[3] - a[3]) / (b[0] - a[0]):.2f}" if b[3] else "-"

drive(3)
few = lines()
few_ipp, few_live, few_ev = per_frame(few[-2], few[-1]), few[-1][2], events(few[-2], few[-1])
conns = []
def connect(k):
    c = socket.create_connection(("127.0.0.1", base + k), timeout=60)
    c.sendall(b"version\r\n")
    reply = c.recv(100)
    if not reply.startswith(b"VERSION"):
        raise RuntimeError(f"port {base + k}: {reply!r}")
    return c
with ThreadPoolExecutor(16) as pool:
    conns = list(pool.map(connect, range(n)))
before_many = len(lines())
drive(before_many + 2)
many = lines()
many_ipp, many_live, many_ev = per_frame(many[-2], many[-1]), min(many[-2][2], many[-1][2]), events(many[-2], many[-1])
print(f"{variant} few {few_ipp:.0f} live {few_live} ev {few_ev} many {many_ipp:.0f} live {many_live} ev {many_ev}")
PY
    local rc=$?
    kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null
    return $rc
}

results=()
for v in "${variants[@]}"; do
    r=$(measure "$v") || { echo "$r"; echo "icount: measuring $v failed (log: $out/$v.log)"; exit 1; }
    results+=("$r")
done
echo "virtualiser instructions per echoed packet (one frame in, one out), -icount shift=0, N=$n, ${INFLIGHT:-1} in flight:"
printf '  %-8s %34s %34s\n' "" "few instances live" "$n instances live"
for r in "${results[@]}"; do
    read -r v _ few _ fl _ fe _ many _ ml _ me <<<"$r"
    printf '  %-8s %8s (live %4s, events/frame %4s) %8s (live %4s, events/frame %4s)\n' "$v" "$few" "$fl" "$fe" "$many" "$ml" "$me"
done

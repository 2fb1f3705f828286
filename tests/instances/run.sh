#!/usr/bin/env bash
# Many memcached instances at once (issue 6): the default node (system.xml) with its memcached
# service widened to N ports (default 300: 11211..11510, policy port, so one featherweight
# instance per port), booted in QEMU with every port forwarded (host ports from BASE, default
# 21211), and driven by the project's load generator: one TCP connection per port, the paper's
# sizes (16-byte keys, 135-byte values, 95 % get), closed loop for DURATION (default 5 s).
# Passes when every port was served (N instances live at once, from the manager's statistics
# line) and the load generator saw no error, timeout or miss.
#
#   tests/instances/run.sh            N=300 MEM=1G QUOTA=0x3a000000 DURATION=5 BASE=21211 [LOADGEN_ARGS=...]
#
# Prints `instances-scale: P passed, F failed`; exits non-zero on failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
n=${N:-300}
base=${BASE:-21211}
out=build/instances-scale
mkdir -p "$out"
passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
finish() { echo "instances-scale: $passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }

[ "${SKIP_BUILD:-0}" = 1 ] || tools/build-bare.sh >/dev/null || { bad "build"; finish; }
cargo build -q --release -p edgeos-loadgen -p edgeos-manager-core || { bad "host tools build"; finish; }

# The default description with the service and the fork grant widened to N instances.
if ! why=$(tests/instances/widen.sh "$n" "$out"); then
    bad "$why"
    finish
fi
if ! cargo run -q --bin edgeos -- build "$out/system.xml" --board qemu-virt-aarch64 --search-path build/elf \
        -o "$out/scale.img" >"$out/build.log" 2>&1; then
    cat "$out/build.log"; bad "image build"; finish
fi

forward=""
for ((k = 0; k < n; k++)); do forward+="$((base + k)):$((11211 + k)) "; done
log=$out/guest.log
mon=$out/monitor.sock
rm -f "$mon"
NET_FORWARD="$forward" MEM=${MEM:-1G} timeout "${TIMEOUT:-600}" qemu/run.sh "$out/scale.img" \
    -monitor "unix:$mon,server,nowait" </dev/null >"$log" 2>&1 &
qemu_pid=$!
trap 'kill "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null' EXIT
for _ in $(seq 1 1800); do
    grep -q "net-virt: node" "$log" && grep -q "manager: [0-9]* services" "$log" && break
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q "net-virt: node" "$log"; then
    tail -n 30 "$log" | sed 's/^/    | /'
    bad "the system did not come up (log: $log)"
    finish
fi
ok "booted with a $n-port memcached service"

# One connection per port: each brings up its own instance (fresh fork or pool).
# LOADGEN_ARGS replaces the workload (for measurements, e.g. the baseline's open-loop load).
read -r -a load <<<"${LOADGEN_ARGS:---depth 1 --key-size 16 --value-size 135 --get-ratio 0.95 --keys 20 --warmup 1s --duration ${DURATION:-5}s --timeout 10s}"
if ./target/release/loadgen --ports "$base-$((base + n - 1))" --connections-per-port 1 --connect-concurrency 16 \
        "${load[@]}" --json --quiet --output "$out/loadgen.json" >"$out/loadgen.out" 2>&1; then
    ok "load generator ran against $n ports"
else
    tail -n 20 "$out/loadgen.out" | sed 's/^/    | /'
    bad "load generator could not run (see $out/loadgen.out)"
    finish
fi
read -r requests errors timeouts misses < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
r = r.get("points", [r])[-1] if isinstance(r, dict) and "points" in r else r
def find(d, key):
    if isinstance(d, dict):
        if key in d and not isinstance(d[key], (dict, list)):
            return d[key]
        for v in d.values():
            x = find(v, key)
            if x is not None:
                return x
    return None
print(*(find(r, k) or 0 for k in ("requests", "errors", "timeouts", "misses")))' "$out/loadgen.json")
echo "     $requests requests measured; errors $errors, timeouts $timeouts, misses $misses"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
p = r["points"][-1]
lat = p["latency_us"]
print("     latency p50 %.0f us, p99 %.0f us, p99.9 %.0f us; throughput %.0f replies/s" % (lat["p50"], lat["p99"], lat["p99_9"], p["throughput_rps"]))' "$out/loadgen.json" 2>/dev/null || true
if [ "${requests:-0}" -gt 0 ] && [ "$errors" = 0 ] && [ "$timeouts" = 0 ] && [ "$misses" = 0 ]; then
    ok "every request answered, no errors, timeouts or misses"
else
    bad "load generator saw errors, timeouts or misses (see $out/loadgen.json)"
fi
# The instances: N assigned at once, and nothing panicked or faulted.
sleep 1
if grep -E "panicked|faulted|no longer served" "$log" >/dev/null; then
    grep -E -A3 "panicked|faulted|no longer served" "$log" | head -20 | sed 's/^/    | /'
    bad "a PD panicked, faulted or was cut off (log: $log)"
else
    ok "no PD panicked or faulted"
fi
# The manager's statistics record, read from guest memory through the QEMU monitor.
if ./target/release/manager-stats --qemu "$mon" --report "$out/scale.img.report.txt" >"$out/manager-stats.txt" 2>&1; then
    sed 's/^/     /' "$out/manager-stats.txt" | head -4
    assigned=$(sed -n 's/.*instances: live [0-9]* pooled [0-9]* assigned \([0-9]*\).*/\1/p' "$out/manager-stats.txt" | head -n1)
    if [ "${assigned:-0}" -ge "$n" ]; then
        ok "$assigned instances assigned at once (one per port)"
    else
        bad "the manager has ${assigned:-?} instances assigned, expected $n"
    fi
else
    cat "$out/manager-stats.txt" | sed 's/^/    | /'
    bad "manager-stats could not read the statistics"
fi
echo "     at boot: $(grep -o "[0-9]* KiB free" "$log" | head -n1)"
finish

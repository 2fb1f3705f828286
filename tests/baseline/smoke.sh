#!/usr/bin/env bash
# Smoke test of the Linux baseline harness (issue 7), for CI: builds the Linux guest (downloads
# cached in .cache/linux-guest/), boots it once in QEMU with -icount shift=0, runs 100 iterations
# of each process-start variant and 10 container starts, starts 2 memcached instances and does a
# set/get on each from the host (TCP and UDP), checks the figures are sane and that the results
# table can be written. Prints one line per check and `baseline: N passed, M failed`; exits
# non-zero on any failure.
#
#   tests/baseline/smoke.sh
#
# About a minute on a fresh machine (downloads included), about 15 s when cached.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
out=build/baseline/smoke
mkdir -p "$out"
rm -f "$out/run.json" "$out/results.md"
t0=$(date +%s)
passed=0; failed=0
check() {  # NAME STATUS [DETAIL]
    if [ "$2" = 0 ]; then
        passed=$((passed + 1)); echo "PASS $1${3:+: $3}"
    else
        failed=$((failed + 1)); echo "FAIL $1${3:+: $3}"
    fi
}
finish() {
    echo "smoke: $(( $(date +%s) - t0 )) s (logs in $out/)"
    echo "baseline: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

tools/install-deps.sh >"$out/install-deps.log" 2>&1
check "host tools (tools/install-deps.sh)" $? "$(tail -1 "$out/install-deps.log")"

tools/baseline/build-guest.sh >"$out/build-guest.log" 2>&1
rc=$?
check "build the Linux guest (tools/baseline/build-guest.sh)" $rc "$(tail -1 "$out/build-guest.log")"
[ $rc = 0 ] || { cat "$out/build-guest.log"; finish; }

tools/baseline/run-guest.py --iters 100 --crun --criters 10 --mc 2 --mc-udp --check 2 \
    --host-port-base auto --quiet --timeout 240 --out "$out/run.json" --log "$out/console.log" \
    >"$out/run-guest.log" 2>&1
rc=$?
check "boot, benchmark, memcached, power off (run-guest.py)" $rc "$(tail -1 "$out/run-guest.log")"
if [ $rc != 0 ]; then  # what CI needs to see
    tail -15 "$out/run-guest.log" | sed 's/^/    /'
    echo "    guest console (last lines):"; tail -15 "$out/console.log" 2>/dev/null | sed 's/^/    | /'
fi
[ -f "$out/run.json" ] || finish

# Sanity of the figures: one check line per rule, from the JSON.
while IFS='|' read -r status name detail; do
    check "$name" "$status" "$detail"
done < <(python3 - "$out/run.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["variant"]: x for x in d["process_start"]}
ref = {"fork": 165_000, "vfork_exec": 125_000, "posix_spawn": 232_000, "fork_exec": 265_000}  # platform.md
def out(ok, name, detail=""):
    print(f"{0 if ok else 1}|{name}|{detail}")
for v in ["fork", "vfork_exec", "posix_spawn", "fork_exec", "crun_run"]:
    x = r.get(v)
    if not x:
        out(False, f"{v}: result present")
        continue
    ok = 0 < x["median_instr"] <= x["p99_instr"] and x["n"] >= 10
    lo, hi = (ref[v] / 3, ref[v] * 3) if v in ref else (1e6, 1e9)
    out(ok and lo <= x["median_instr"] <= hi, f"{v}: median {x['median_instr']:,} p99 {x['p99_instr']:,} instructions",
        f"expected 0 < median <= p99, median within [{lo:,.0f}, {hi:,.0f}]")
c = r.get("calib")
out(c is not None and abs(c["min_instr"] - 3_000_000) < 30_000, "-icount in effect: 3 M-instruction loop",
    f"read {c['min_instr']:,}" if c else "missing")
m = {v: r[v]["median_instr"] for v in r}
if all(v in m for v in ["fork", "vfork_exec", "fork_exec", "crun_run"]):
    out(m["vfork_exec"] < m["fork_exec"] and m["fork"] < m["fork_exec"] < m["crun_run"],
        "ordering: vfork+exec and fork < fork+exec < crun run",
        ", ".join(f"{v} {m[v]:,}" for v in ["vfork_exec", "fork", "fork_exec", "crun_run"]))
mc = d.get("memcached") or {}
checks = mc.get("checks", [])
out(mc.get("listening") == 2, "memcached: 2 instances listen", f"listening {mc.get('listening')}")
out(len(checks) == 2 and all(c["ok"] for c in checks), "memcached: set/get from the host on each (TCP, UDP)",
    "; ".join(f"port {c['host_port']}: {'ok' if c['ok'] else c['error']}" for c in checks))
out(not d.get("errors"), "guest reported no errors", "; ".join(d.get("errors", []))[:300])
EOF
)

python3 tools/baseline/report.py --process-start "$out/run.json" --memcached "$out/run.json" \
    --edgeos build/edgeos-results.json --out "$out/results.md" >"$out/report.log" 2>&1
rc=$?
grep -q "fork + exec + wait" "$out/results.md" 2>/dev/null
check "results table (report.py)" $(( rc | $? )) "$out/results.md"
finish

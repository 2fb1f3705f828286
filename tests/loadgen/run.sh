#!/usr/bin/env bash
# Shows that loadgen is a sound measuring instrument, against real servers on this machine:
#  - Debian's memcached (installed if missing), several instances on free local ports, driven in
#    closed and open loop over TCP and UDP: no errors, the offered rate achieved, no misses once
#    every key is stored, well-formed JSON; a run without populate must see misses (so a zero is
#    not vacuous); 1000 connections at once; 1000 connections opened gradually (paced, each
#    checked with a `version` round trip, progress on stderr); a sweep writes its plot and its
#    points;
#  - loadgen-stub, a server that answers at once: the instrument's own latency floor, beside
#    memcached's at the same rate;
#  - loadgen-stub with an exact delay D: the reported latency must be D plus that small floor;
#  - clear failures: a refused connection names the address and the OS error, a server that
#    closes every connection at once is retried and then named, a backwards port range is refused.
# Ends with `loadgen: N passed, M failed`; exits non-zero if anything failed.
# Tolerances can be widened on a loaded machine: RATE_TOLERANCE (%), DELAY_P50_SLACK_MS,
# DELAY_P99_SLACK_MS. Tail percentiles on a shared 2-core machine depend on the scheduler, so
# they are bounded only loosely (to catch gross errors) and reported.
set -uo pipefail
cd "$(dirname "$0")/../.."

RATE_TOLERANCE=${RATE_TOLERANCE:-3}
DELAY_MS=${DELAY_MS:-5}
DELAY_P50_SLACK_MS=${DELAY_P50_SLACK_MS:-1}
DELAY_P99_SLACK_MS=${DELAY_P99_SLACK_MS:-20}
INSTANCES=4

WORK=$(mktemp -d)
PIDS=()
PASSED=0
FAILED=0

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

finish() {
    echo "loadgen: $PASSED passed, $FAILED failed"
    [[ $FAILED -eq 0 ]]
    exit
}

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1"; FAILED=$((FAILED + 1)); }

# --- Tools -----------------------------------------------------------------------------------
MEMCACHED=$(command -v memcached || true)
if [[ -z $MEMCACHED ]]; then
    echo "installing Debian's memcached"
    if ! apt-get install -y memcached >"$WORK/apt.log" 2>&1; then
        apt-get update >>"$WORK/apt.log" 2>&1
        apt-get install -y memcached >>"$WORK/apt.log" 2>&1
    fi
    MEMCACHED=$(command -v memcached || true)
    if [[ -z $MEMCACHED ]]; then
        tail -5 "$WORK/apt.log"
        fail "install memcached"
        finish
    fi
fi
echo "memcached: $("$MEMCACHED" -V)"

build_start=$SECONDS
if ! cargo build --release -q -p edgeos-loadgen; then
    fail "build edgeos-loadgen"
    finish
fi
echo "built loadgen in $((SECONDS - build_start)) s"
tests_start=$SECONDS
LOADGEN=target/release/loadgen
STUB=target/release/loadgen-stub

# --- Servers ---------------------------------------------------------------------------------
# Ports free for both TCP and UDP (memcached listens on both).
read -r -a MC_PORTS <<<"$(python3 - "$INSTANCES" <<'EOF'
import socket, sys
ports = []
while len(ports) < int(sys.argv[1]):
    tcp = socket.socket(); tcp.bind(("127.0.0.1", 0)); port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("127.0.0.1", port))
        ports.append(port)
    except OSError:
        pass
    tcp.close(); udp.close()
print(" ".join(map(str, ports)))
EOF
)"
MC=$(IFS=,; echo "${MC_PORTS[*]}")
user_args=()
[[ $EUID -eq 0 ]] && user_args=(-u nobody)
for port in "${MC_PORTS[@]}"; do
    "$MEMCACHED" "${user_args[@]}" -l 127.0.0.1 -p "$port" -U "$port" -t 1 -m 64 -c 1024 &
    PIDS+=($!)
done

start_stub() { # name delay -> sets STUB_PORTS_<name>
    local name=$1 delay=$2
    "$STUB" --count "$INSTANCES" --delay "$delay" --for 120s >"$WORK/$name.ports" 2>"$WORK/$name.log" &
    PIDS+=($!)
}
start_stub floor 0
start_stub delayed "${DELAY_MS}ms"

wait_tcp() { # port
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
for port in "${MC_PORTS[@]}"; do
    wait_tcp "$port" || { fail "memcached on port $port did not start"; finish; }
done
for name in floor delayed; do
    for _ in $(seq 50); do
        [[ -s $WORK/$name.ports ]] && break
        sleep 0.1
    done
done
FLOOR=$(sed 's/^ports //' "$WORK/floor.ports")
DELAYED=$(sed 's/^ports //' "$WORK/delayed.ports")
if [[ -z $FLOOR || -z $DELAYED ]]; then
    fail "start loadgen-stub"
    cat "$WORK"/*.log
    finish
fi
echo "memcached on ports $MC; stub on $FLOOR; stub with ${DELAY_MS} ms delay on $DELAYED"

# --- Cases -----------------------------------------------------------------------------------
COMMON=(--host 127.0.0.1 --warmup 500ms --duration 2s --keys 1000 --threads 1 --timeout 1s)

# check NAME LOADGEN-ARGS... -- CONDITIONS...: runs loadgen with a JSON report, checks it.
check() {
    local name=$1
    shift
    local args=()
    while [[ $1 != -- ]]; do
        args+=("$1")
        shift
    done
    shift
    local report=$WORK/$name.json
    "$LOADGEN" -q --output "$report" "${COMMON[@]}" "${args[@]}" >"$WORK/$name.out" 2>"$WORK/$name.err"
    local status=$?
    if [[ $status -ne 0 ]]; then
        fail "$name (loadgen exited $status)"
        sed 's/^/  /' "$WORK/$name.err" | tail -5
        return
    fi
    local verdict
    if verdict=$(python3 tests/loadgen/check.py "$report" "$@"); then
        pass "$name"
    else
        fail "$name"
    fi
    echo "$verdict"
}

# Field of a report, for the overhead table.
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['result']; v=r
for p in sys.argv[2].split('.'): v=v[p]
print(v)" "$WORK/$1.json" "$2"; }

# memcached's CPU time so far (all instances), seconds.
memcached_cpu() {
    local total=0 pid ticks
    for pid in "${PIDS[@]:0:$INSTANCES}"; do
        ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + ticks))
    done
    python3 -c "import os,sys; print(int(sys.argv[1]) / os.sysconf('SC_CLK_TCK'))" "$total"
}

NO_ERRORS=(errors==0 timeouts==0)

check closed-tcp --ports "$MC" --connections-per-port 2 --depth 2 \
    -- schema "${NO_ERRORS[@]}" misses==0 "hits>1000" "sets>0" "completed>2000"

cpu_before=$(memcached_cpu)
check open-tcp --ports "$MC" --connections-per-port 2 --rate 10000 \
    -- schema "${NO_ERRORS[@]}" misses==0 "rate~$RATE_TOLERANCE"
cpu_after=$(memcached_cpu)

check open-udp --ports "$MC" --connections-per-port 2 --rate 10000 --protocol udp \
    -- schema "${NO_ERRORS[@]}" misses==0 "rate~$RATE_TOLERANCE"

check closed-udp --ports "$MC" --connections-per-port 2 --protocol udp \
    -- schema "${NO_ERRORS[@]}" misses==0 "hits>1000"

# Facebook ETC sizes and gaps, Zipf keys: values up to tens of kilobytes make memcached split
# its UDP replies over several datagrams.
check etc-udp --ports "$MC" --connections-per-port 2 --rate 5000 --protocol udp \
    --key-size fb-key --value-size fb-value --arrivals fb-ia --popularity zipf:0.99 --keys 2000 \
    -- schema "${NO_ERRORS[@]}" misses==0 "rate~$RATE_TOLERANCE"

# Without populate, gets of keys never stored must miss: the zero above is a real zero.
check misses-detected --ports "$MC" --rate 5000 --no-populate --key-size 40 --seed 99 \
    -- errors==0 "misses>1000"

check connections-1000 --ports "$MC" --connections-per-port 250 --rate 10000 --threads 2 \
    -- "${NO_ERRORS[@]}" misses==0 "rate~$RATE_TOLERANCE"

# Gradual setup: 1000 connections at most 4 at a time and 600 per second (about 1.7 s), each
# checked with a `version` round trip; progress on stderr, all of it done before measuring.
"$LOADGEN" --output "$WORK/connect-paced.json" "${COMMON[@]}" --warmup 200ms --duration 1s --ports "$MC" \
    --connections-per-port 250 --rate 5000 --threads 2 --connect-concurrency 4 --connect-rate 600 \
    >/dev/null 2>"$WORK/connect-paced.err"
status=$?
if [[ $status -eq 0 ]] && grep -q "loadgen: connected [0-9]*/1000 (" "$WORK/connect-paced.err" &&
    python3 - "$WORK/connect-paced.json" <<'EOF_CONNECT'
import json, sys
report = json.load(open(sys.argv[1]))
connect, result = report["workload"]["connect"], report["result"]
assert connect["connections"] == 1000 and connect["retries"] == 0, connect
assert 1.4 <= connect["seconds"] <= 10, connect   # paced: 1000 at 600/s cannot take less
assert report["config"]["connect"]["in_flight"] == 4, report["config"]["connect"]
assert result["errors"] == 0 and result["timeouts"] == 0, result
EOF_CONNECT
then
    pass "connect-paced"
else
    fail "connect-paced (exit $status: $(tail -3 "$WORK/connect-paced.err"))"
fi

# The instrument's floor: the same open-loop TCP run against a server that does nothing.
check floor-tcp --ports "$FLOOR" --connections-per-port 2 --rate 10000 \
    -- schema "${NO_ERRORS[@]}" misses==0 "rate~$RATE_TOLERANCE"
check floor-udp --ports "$FLOOR" --connections-per-port 2 --rate 10000 --protocol udp \
    -- "${NO_ERRORS[@]}" "rate~$RATE_TOLERANCE"

# A known delay: every reply leaves exactly D after its request arrived, so no latency may be
# below D, and the median must be D plus a fraction of a millisecond (the floor above).
delay_us=$((DELAY_MS * 1000))
for protocol in tcp udp; do
    check "delay-${DELAY_MS}ms-$protocol" --ports "$DELAYED" --connections-per-port 2 --rate 2000 --protocol "$protocol" \
        -- "${NO_ERRORS[@]}" "latency_us.min>=$delay_us" \
        "latency_us.p50<=$((delay_us + DELAY_P50_SLACK_MS * 1000))" \
        "latency_us.p99<=$((delay_us + DELAY_P99_SLACK_MS * 1000))"
done

# A sweep writes an SVG plot and the JSON of every point.
sweep_ok=false
if "$LOADGEN" -q "${COMMON[@]}" --warmup 200ms --duration 1s --ports "$MC" --sweep 2000,5000,10000 \
    --plot "$WORK/sweep.svg" >"$WORK/sweep.out" 2>"$WORK/sweep.err" &&
    sweep_verdict=$(python3 tests/loadgen/check.py "$WORK/sweep.json" points=3 errors==0) &&
    python3 - "$WORK/sweep.svg" <<'EOF_SVG'
import sys, xml.etree.ElementTree as tree
root = tree.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 4, "one line per percentile"
EOF_SVG
then
    sweep_ok=true
fi
if $sweep_ok; then
    pass "sweep-plot"
else
    fail "sweep-plot"
    tail -3 "$WORK/sweep.err"
fi
echo "${sweep_verdict:-}"

# Failures a person can act on.
closed_port=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$LOADGEN" -q --ports "$closed_port" --duration 1s >/dev/null 2>"$WORK/refused.err"
status=$?
if [[ $status -eq 1 ]] && grep -q "127.0.0.1:$closed_port" "$WORK/refused.err" && grep -q "connection refused" "$WORK/refused.err"; then
    pass "refused-names-address"
else
    fail "refused-names-address (exit $status: $(cat "$WORK/refused.err"))"
fi
# A server that accepts and closes at once (what QEMU user networking does when the guest side
# of a forwarded connection fails): retried, then the run ends naming the address.
python3 -c "
import socket, sys, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16); print(s.getsockname()[1], flush=True)
end = time.time() + 30
s.settimeout(1)
while time.time() < end:
    try: s.accept()[0].close()
    except socket.timeout: pass
" >"$WORK/closer.port" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $WORK/closer.port ]] && break; sleep 0.1; done
closer_port=$(cat "$WORK/closer.port")
"$LOADGEN" -q --ports "$closer_port" --duration 1s --connect-attempts 3 >/dev/null 2>"$WORK/closer.err"
status=$?
# (Closed or reset: a close with the `version` request unread sends a reset.)
if [[ $status -eq 1 ]] && grep -Eq "cannot connect to 127.0.0.1:$closer_port \(TCP\) after 3 attempts: .*(closed the connection|reset)" "$WORK/closer.err"; then
    pass "closed-connection-retried"
else
    fail "closed-connection-retried (exit $status: $(cat "$WORK/closer.err"))"
fi
"$LOADGEN" -q --ports 11300-11211 >/dev/null 2>"$WORK/range.err"
status=$?
if [[ $status -eq 2 ]] && grep -q "runs backwards" "$WORK/range.err"; then
    pass "bad-range-refused"
else
    fail "bad-range-refused (exit $status: $(cat "$WORK/range.err"))"
fi

# --- Overhead --------------------------------------------------------------------------------
if [[ -s $WORK/floor-tcp.json && -s $WORK/open-tcp.json ]]; then
    echo "instrument overhead (open loop, 10000 requests/s, TCP, $INSTANCES ports x 2 connections):"
    printf '  %-22s %9s %9s %9s %9s\n' server p50_us p90_us p99_us p99.9_us
    for name in floor-tcp open-tcp floor-udp open-udp; do
        [[ -s $WORK/$name.json ]] || continue
        printf '  %-22s %9s %9s %9s %9s\n' "$name" "$(field "$name" latency_us.p50)" "$(field "$name" latency_us.p90)" \
            "$(field "$name" latency_us.p99)" "$(field "$name" latency_us.p99_9)"
    done
    requests=$(field open-tcp instrument.requests)
    echo "  loadgen CPU per request: $(field open-tcp instrument.cpu_us_per_request) us" \
        "($(field open-tcp instrument.cores_used) cores at 10000/s); memcached CPU per request:" \
        "$(python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1e6 / int(sys.argv[3]), 2))" "$cpu_before" "$cpu_after" "$requests") us"
    echo "  send lag (how late loadgen sent, already inside the latencies above): p50 $(field open-tcp send_lag_us.p50) us, p99 $(field open-tcp send_lag_us.p99) us"
fi
echo "cases took $((SECONDS - tests_start)) s"
finish

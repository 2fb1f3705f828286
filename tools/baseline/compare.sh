#!/usr/bin/env bash
# EdgeOS vs Linux, side by side, in the same QEMU (issue 7). One command:
#
#   tools/baseline/compare.sh [--smoke] [--no-crun] [--no-memcached] [--reuse-process-start]
#
# 1. builds the Linux guest if needed (tools/baseline/build-guest.sh: Debian arm64 packages, cached);
# 2. boots it with qemu/run.sh's board settings plus -icount shift=0 and runs the process-start
#    benchmark (fork, vfork+exec, posix_spawn, fork+exec: 10 000 runs each; crun run: 1 000);
# 3. if the project's load generator exists (tools/loadgen), boots the guest again for each N in
#    BL_INSTANCES (default "1 100 300 1000") with N memcached processes, forwarded to host ports
#    11211.. (or the next free range), and runs the load generator against them; else says why not;
# 4. writes build/baseline/results.md: machine, QEMU version and settings, and for each figure
#    EdgeOS, Linux and the ratio. EdgeOS figures come from build/edgeos-results.json (the shape is
#    in tools/baseline/report.py), "pending" where it has none.
#
# --smoke: 100 runs of each variant, 10 container starts, memcached N=2 with a host set/get.
# Environment: CPU, GIC, EL2, MEM (as for qemu/run.sh); BL_ITERS, BL_CRUN_ITERS; BL_INSTANCES;
# BL_PORT_BASE (host port of instance 0; default auto: 11211 if free, else the next free range);
# BL_MEM_LARGE, guest RAM when N > BL_MAX_N_1G (default 4G above 350: an idle memcached process
# costs Linux about 1.3 MiB, but once populated and driven about 2.45 MiB (its first 1 MiB slab
# page, connection buffers), so about 370 fit in 1 GiB and 1000 need more than 2 GiB: at 2 GiB the
# guest runs out of memory during populate and the host sees connections reset);
# LOADGEN_ARGS, LOADGEN_CMD (below).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
out=build/baseline
log() { printf '[compare] %s\n' "$*"; }

smoke=0; crun=1; memcached=1; process_start=1
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=1;;
        --reuse-process-start) process_start=0;;
        --no-crun) crun=0;;
        --no-memcached) memcached=0;;
        -h|--help) sed -n '2,24p' "$0"; exit 0;;
        *) echo "usage: $0 [--smoke] [--no-crun] [--no-memcached] [--reuse-process-start]" >&2; exit 2;;
    esac
done
if [ $smoke = 1 ]; then
    iters=${BL_ITERS:-100}; crun_iters=${BL_CRUN_ITERS:-10}; instances=${BL_INSTANCES:-2}
else
    iters=${BL_ITERS:-10000}; crun_iters=${BL_CRUN_ITERS:-1000}; instances=${BL_INSTANCES:-1 100 300 1000}
fi
port_base=${BL_PORT_BASE:-auto}
max_n_1g=${BL_MAX_N_1G:-350}
mem_large=${BL_MEM_LARGE:-4G}
mkdir -p "$out"
t0=$(date +%s)

tools/install-deps.sh
tools/baseline/build-guest.sh

# --- process start --------------------------------------------------------------------------
crun_args=()
[ $crun = 1 ] && crun_args=(--crun --criters "$crun_iters")
ps_rc=0
if [ $process_start = 0 ] && [ -f "$out/process-start.json" ]; then
    log "process start: reusing $out/process-start.json (--reuse-process-start)"
else
    log "process start: $iters runs per variant${crun_args:+, $crun_iters container starts} (log: $out/process-start.log)"
    tools/baseline/run-guest.py --iters "$iters" "${crun_args[@]}" --quiet \
        --out "$out/process-start.json" --log "$out/process-start.log" || ps_rc=$?
fi

# --- memcached ------------------------------------------------------------------------------
# Driven by the project's load generator (tools/loadgen, package edgeos-loadgen, issue 6) with
# LOADGEN_ARGS, the same load the EdgeOS memcached benchmark must apply. LOADGEN_CMD replaces the
# whole command; it runs on the host while the guest serves and sees BL_HOST, BL_PORT_BASE,
# BL_INSTANCES and BL_RESULT_JSON (where the JSON report goes: loadgen's "result.latency_us").
# TCP by default: over UDP, loadgen's populate (64 sets in flight per port at once) loses
# datagrams into an emulated guest at 100 instances and more. --timeout 30s: populating 300 or
# more instances takes the emulated guest longer than loadgen's default 1 s, and a saturated
# guest answers seconds late (those replies are counted, not dropped as timeouts).
loadgen_args=${LOADGEN_ARGS:---protocol tcp --rate-per-connection 20 --key-size 16 --value-size 135 --get-ratio 0.95 --keys 100 --warmup 2s --duration 10s --timeout 30s}
mc_files=(); mc_skip=""; mc_rc=0
loadgen_cmd=${LOADGEN_CMD:-}
if [ $memcached = 0 ]; then
    mc_skip="--no-memcached given"
elif [ $smoke = 1 ]; then
    :   # the smoke run checks the memcached path with a host set/get, without the load generator
elif [ -z "$loadgen_cmd" ]; then
    if [ ! -f tools/loadgen/Cargo.toml ]; then
        mc_skip="the load generator (tools/loadgen, issue 6) does not exist yet; set LOADGEN_CMD to use another"
    elif ! cargo build -q --release -p edgeos-loadgen 2>"$out/loadgen-build.log"; then
        mc_skip="tools/loadgen exists but 'cargo build --release -p edgeos-loadgen' failed (see $out/loadgen-build.log)"
    else
        loadgen_cmd="target/release/loadgen --host \"\$BL_HOST\" --ports \"\$BL_PORT_BASE-\$((BL_PORT_BASE + BL_INSTANCES - 1))\" $loadgen_args --quiet --output \"\$BL_RESULT_JSON\""
    fi
fi
udp=()
case " $loadgen_args " in *" --protocol udp "*|*" --transport udp "*) udp=(--mc-udp);; esac
if [ -n "$mc_skip" ]; then
    log "memcached comparison skipped: $mc_skip"
elif [ $smoke = 1 ]; then
    for n in $instances; do
        log "memcached: $n instances, host set/get"
        tools/baseline/run-guest.py --iters 0 --mc "$n" --mc-udp --host-port-base "$port_base" --check "$n" \
            --quiet --out "$out/memcached-$n.json" --log "$out/memcached-$n.log" || mc_rc=$?
        mc_files+=("$out/memcached-$n.json")
    done
else
    for n in $instances; do
        mem=${MEM:-1G}
        [ "$n" -gt "$max_n_1g" ] && mem=$mem_large
        log "memcached: $n instances (guest RAM $mem), load: $loadgen_args"
        rm -f "$out/loadgen-$n.json"
        MEM=$mem tools/baseline/run-guest.py --iters 0 --mc "$n" "${udp[@]}" --host-port-base "$port_base" \
            --quiet --run-cmd "$loadgen_cmd" --run-json "$out/loadgen-$n.json" \
            --out "$out/memcached-$n.json" --log "$out/memcached-$n.log" || mc_rc=$?
        mc_files+=("$out/memcached-$n.json")
    done
fi

# --- memcached on EdgeOS --------------------------------------------------------------------
# The same load against N featherweight memcached instances (tests/instances/run.sh: the default
# system with its service widened to N ports, one instance each), same guest RAM as Linux's run;
# each result is merged into build/edgeos-results.json ("memcached": {"N": ...}) for the table.
# BL_NO_EDGEOS=1 skips it (Linux side only).
if [ -z "$mc_skip" ] && [ $smoke = 0 ] && [ -z "${LOADGEN_CMD:-}" ] && [ "${BL_NO_EDGEOS:-0}" != 1 ]; then
    tools/build-bare.sh >/dev/null
    for n in $instances; do
        # EdgeOS's board file uses 1 GiB whatever QEMU is given: every N runs in 1 GiB.
        log "memcached on EdgeOS: $n instances (guest RAM 1G), load: $loadgen_args (log: $out/edgeos-memcached-$n.log)"
        if N=$n MEM=1G SKIP_BUILD=1 LOADGEN_ARGS="$loadgen_args" tests/instances/run.sh >"$out/edgeos-memcached-$n.log" 2>&1; then
            :
        else
            log "memcached on EdgeOS, $n instances: the run reported failures (see $out/edgeos-memcached-$n.log)"
            mc_rc=1
        fi
        [ -f build/instances-scale/loadgen.json ] && cp build/instances-scale/loadgen.json "$out/edgeos-loadgen-$n.json" &&
            python3 tools/baseline/report.py --merge-edgeos-memcached "$out/edgeos-loadgen-$n.json" --instances "$n" \
                --edgeos build/edgeos-results.json
    done
fi

# --- the table ------------------------------------------------------------------------------
rep_rc=0
python3 tools/baseline/report.py --process-start "$out/process-start.json" \
    --memcached "${mc_files[@]}" --memcached-skipped "$mc_skip" \
    --edgeos build/edgeos-results.json --out "$out/results.md" --svg "$out/memcached-latency.svg" || rep_rc=$?
log "done in $(( $(date +%s) - t0 )) s: $out/results.md"
[ $ps_rc = 0 ] && [ $mc_rc = 0 ] && [ $rep_rc = 0 ]

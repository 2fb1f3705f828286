#!/usr/bin/env bash
# EdgeOS QEMU system tests.
#
#   tests/system/run.sh [NAME...]      run all tests (or the named ones)
#   tests/system/run.sh bench boot_time   the measurements (docs/benchmarks.md): their figures
#                                       ("bench: ..." / "boot: ..." lines) are printed too, and
#                                       the bench and fwp_1000 figures merged into
#                                       build/edgeos-results.json (tests/system/results.py) for
#                                       tools/baseline/report.py
#
# Builds the kernel and every PD program (release, aarch64-unknown-none), copies the ELFs to
# build/elf/, then for each tests/system/NAME/system.xml: builds build/NAME.img with the edgeos
# tool, boots it in QEMU under a timeout and checks the log: it must contain the line
# "EDGEOS-TEST: PASS", no "EDGEOS-TEST: FAIL", and every line of NAME/expect (if present).
# QEMU must exit by itself with status 0: images are built with `--debug-exit`, so the PD that
# decides ends the run with a status (pass() 0, fail() 1) that QEMU returns (semihosting).
# NAME/expect-status, if present, turns the test around: it must fail with that status.
# NAME/ceilings, if present, bounds the test's figures (tests/system/ceilings.py), so a
# performance regression in instructions counted under -icount fails the suite. NAME/qemu-args, if present, holds
# extra QEMU arguments (e.g. `-icount shift=0` for benchmarks).
#
# Environment: CPU, GIC, EL2, NET (default none) (passed to qemu/run.sh), TIMEOUT (seconds per test, default 30),
# SKIP_BUILD=1 (test the programs already in build/elf/),
# MATRIX=1 runs every test on each of cortex-a53/GICv2/EL1, cortex-a72/GICv3/EL2, max/GICv3/EL1,
# cortex-a53/GICv2/EL2 and max/GICv3/EL2.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
timeout_s=${TIMEOUT:-30}
# Kernel tests need no NIC, and without one they forward no host ports that could be busy.
export NET=${NET:-none}
target=aarch64-unknown-none
out=build
mkdir -p "$out/elf"

# The kernel and every PD program, into build/elf/ (the image builder's search path).
# SKIP_BUILD=1 uses what build/elf/ already holds.
if [ "${SKIP_BUILD:-0}" != 1 ] && ! tools/build-bare.sh; then
    echo "build failed"
    exit 1
fi
if ! cargo build -q --bin edgeos; then
    echo "building the edgeos tool failed"
    exit 1
fi

if [ $# -gt 0 ]; then
    tests=("$@")
else
    tests=()
    for d in tests/system/*/; do
        [ -f "$d/system.xml" ] && tests+=("$(basename "$d")")
    done
fi

if [ "${MATRIX:-0}" = 1 ]; then
    configs=("cortex-a53 2 0" "cortex-a72 3 1" "max 3 0" "cortex-a53 2 1" "max 3 1")
else
    configs=("${CPU:-cortex-a53} ${GIC:-2} ${EL2:-0}")
fi

passed=0
failed=0
failures=()
for name in "${tests[@]}"; do
    dir="tests/system/$name"
    img="$out/$name.img"
    # Test images (--debug-exit): a PD ends the run with a status that becomes QEMU's exit code
    # (through semihosting, enabled below); pass() exits 0, fail() 1, a kernel failure 1.
    if ! cargo run -q --bin edgeos -- build "$dir/system.xml" --board qemu-virt-aarch64 --debug-exit \
            --search-path "$out/elf" -o "$img" >"$out/$name.build.log" 2>&1; then
        echo "FAIL $name (image build failed, see $out/$name.build.log)"
        cat "$out/$name.build.log"
        failed=$((failed + 1))
        failures+=("$name")
        continue
    fi
    for config in "${configs[@]}"; do
        read -r cpu gic el2 <<<"$config"
        label="$name [$cpu gicv$gic el$((el2 + 1))]"
        log="$out/$name.$cpu.gic$gic.el$((el2 + 1)).log"
        start=$(date +%s.%N)
        extra=(-semihosting-config enable=on,target=native)
        if [ -f "$dir/qemu-args" ]; then
            read -r -a more <"$dir/qemu-args"
            extra+=("${more[@]}")
        fi
        CPU=$cpu GIC=$gic EL2=$el2 timeout "$timeout_s" qemu/run.sh "$img" "${extra[@]}" </dev/null >"$log" 2>&1
        rc=$?
        secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        why=""
        if [ $rc -eq 124 ]; then
            why="timed out after ${timeout_s}s"
        elif [ -f "$dir/expect-status" ]; then
            # A test of the verdict itself: it must fail, with this exit status.
            want=$(cat "$dir/expect-status")
            if [ "$rc" != "$want" ] || ! grep -q "EDGEOS-TEST: FAIL" "$log"; then
                why="expected a FAIL marker and exit status $want, got status $rc"
            fi
        elif grep -q "EDGEOS-TEST: FAIL" "$log"; then
            why="$(grep -m1 "EDGEOS-TEST: FAIL" "$log") (exit status $rc)"
        elif [ $rc -ne 0 ]; then
            why="qemu exited with $rc"
        elif ! grep -q "EDGEOS-TEST: PASS" "$log"; then
            why="no PASS marker"
        elif [ -f "$dir/expect" ]; then
            while IFS= read -r line; do
                [ -z "$line" ] && continue
                if ! grep -qF -- "$line" "$log"; then
                    why="missing expected line: $line"
                    break
                fi
            done <"$dir/expect"
        fi
        # Measurement tests hold their figures under ceilings (instruction counts: exact).
        if [ -z "$why" ] && [ -f "$dir/ceilings" ] && ! over=$(python3 tests/system/ceilings.py "$dir/ceilings" "$log"); then
            why="figures over their ceilings: $over"
        fi
        if [ -z "$why" ]; then
            echo "ok   $label (${secs}s)"
            # Measurements (benchmarks, boot time) are shown as well as logged.
            grep -E "^(bench|boot): " "$log" | sed 's/^/     /' || true
            # The benchmarks' figures (instruction counts under -icount) go to
            # build/edgeos-results.json for the Linux comparison table (tools/baseline/report.py).
            # Other tests print "bench:" lines too (fwp_basic, fwp_cycles) but without -icount.
            case $name in
                bench|fwp_1000)
                    python3 tests/system/results.py "$out/edgeos-results.json" "$name" "$log" \
                        "$cpu" "$gic" "$((el2 + 1))" ||
                        echo "     (could not record the figures in $out/edgeos-results.json)";;
            esac
            passed=$((passed + 1))
        else
            echo "FAIL $label: $why (log: $log)"
            tail -n 20 "$log" | sed 's/^/    | /'
            failed=$((failed + 1))
            failures+=("$label")
        fi
    done
done

echo
echo "system-tests: $passed passed, $failed failed"
for f in "${failures[@]}"; do
    echo "  failed: $f"
done
[ $failed -eq 0 ]

#!/usr/bin/env bash
# Idle cost on the host: the CPU time the QEMU process uses while the guest has nothing to do.
#
#   tests/system/idle.sh IMAGE|SYSTEM.xml|floor [SECONDS] [SETTLE]
#
# Boots IMAGE with qemu/run.sh (CPU/GIC/EL2/NET as there), waits SETTLE seconds (default 3) for
# it to finish booting, then reads the CPU time of all the QEMU process's threads (nanoseconds,
# /proc/PID/task/*/schedstat) before and after SECONDS (default 10) and prints it as a share of
# one host core.
# A SYSTEM.xml is built into build/idle.img first (programs from build/elf/). `floor` measures
# the floor instead: a bare guest that only executes `wfi` in a loop (no timer armed), under the
# same settings.
set -euo pipefail
cd "$(dirname "$0")/../.."
image=${1:?usage: $0 IMAGE|SYSTEM.xml|floor [SECONDS] [SETTLE]}
seconds=${2:-10}
settle=${3:-3}
mkdir -p build
if [[ "$image" == *.xml ]]; then
    # A system description: build its image from the programs in build/elf/.
    cargo run -q --bin edgeos -- build "$image" --board qemu-virt-aarch64 --search-path build/elf \
        -o build/idle.img >/dev/null
    image=build/idle.img
elif [ "$image" = floor ]; then
    # wfi; b .-4 as a raw image (QEMU runs a raw -kernel at RAM base + 0x80000).
    printf '\x7f\x20\x03\xd5\xff\xff\xff\x17' >build/wfi-floor.bin
    image=build/wfi-floor.bin
fi
log=build/idle.log
qemu/run.sh "$image" </dev/null >"$log" 2>&1 &
launcher=$!
trap 'kill $launcher 2>/dev/null || true' EXIT
sleep "$settle"
# The QEMU process: the launcher itself once qemu/run.sh has exec'd it, or one of its
# descendants (when the shell wraps background jobs).
pid=""
todo=("$launcher")
while [ ${#todo[@]} -gt 0 ] && [ -z "$pid" ]; do
    p=${todo[0]}
    todo=("${todo[@]:1}")
    if [ "$(cat /proc/$p/comm 2>/dev/null)" = qemu-system-aar ]; then
        pid=$p
        break
    fi
    mapfile -t children < <(pgrep -P "$p" || true)
    todo+=("${children[@]}")
done
if [ -z "$pid" ]; then
    echo "idle: no QEMU process found (log: $log)"
    cat "$log"
    exit 1
fi
trap 'kill $pid $launcher 2>/dev/null || true' EXIT
cpu_ns() { cat /proc/$pid/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'; }
t0=$(cpu_ns)
start=$(date +%s.%N)
sleep "$seconds"
t1=$(cpu_ns)
end=$(date +%s.%N)
kill $pid $launcher 2>/dev/null || true
wait $launcher 2>/dev/null || true
trap - EXIT
awk -v d=$((t1 - t0)) -v a="$start" -v b="$end" -v img="$image" 'BEGIN {
    wall = b - a
    printf "idle: %s: %.3f ms of host CPU in %.1f s = %.4f%% of one host core\n", img, d / 1e6, wall, 100 * d / 1e9 / wall
}'

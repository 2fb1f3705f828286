#!/usr/bin/env bash
# Where a benchmark's instructions go, per function of the kernel and of each PD.
#
#   tests/system/profile.sh KEY      KEY: call-passive-0, call-passive-4, call-active-0,
#                                         call-active-4, notify-equal, notify-higher,
#                                         notify-equal-deferred, notify-higher-deferred
#
# Builds the bench system with its client renamed `client-KEY` (so it runs that benchmark only),
# boots it under `-icount shift=0` with QEMU's execution trace (one instruction per translation
# block) piped into profile.py, and prints instructions per round trip by function. The trace
# makes the run about 20x slower; the instruction counts are those of the normal run plus the
# benchmark's setup, spread over its round trips.
set -euo pipefail
cd "$(dirname "$0")/../.."
key=${1:?usage: $0 KEY}
dir=build/profile-$key
mkdir -p "$dir"
[ "${SKIP_BUILD:-0}" = 1 ] || tools/build-bare.sh >/dev/null
sed "s/\"client\"/\"client-$key\"/g" tests/system/bench/system.xml >"$dir/system.xml"
# A test image (--debug-exit): the bench ends the run itself, through semihosting.
cargo run -q --bin edgeos -- build "$dir/system.xml" --board qemu-virt-aarch64 --debug-exit --search-path build/elf \
    -o "$dir/bench.img" >/dev/null
kernel=$(ls build/elf/edgeos-kernel.elf)
fifo=$dir/trace.fifo
rm -f "$fifo"
mkfifo "$fifo"
python3 tests/system/profile.py "$fifo" 10100 "$kernel" build/elf/bench_client.elf build/elf/bench_server.elf \
    build/elf/bench_echo.elf build/elf/bench_echo_deferred.elf >"$dir/profile.txt" &
analyser=$!
qemu/run.sh "$dir/bench.img" -semihosting-config enable=on,target=native -icount shift=0 -accel tcg,one-insn-per-tb=on -d exec,nochain -D "$fifo" \
    </dev/null >"$dir/console.log" 2>&1
wait $analyser
rm -f "$fifo"
grep "bench:" "$dir/console.log" || true
cat "$dir/profile.txt"

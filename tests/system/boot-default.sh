#!/usr/bin/env bash
# `make run`'s path, checked: build the default system (system.xml) and boot it in QEMU; every
# PD's greeting must appear. The default system runs forever, so QEMU is stopped once the
# lines are there (or after TIMEOUT seconds, which fails).
set -uo pipefail
cd "$(dirname "$0")/../.."
timeout_s=${TIMEOUT:-20}
make -s image >build/default.build.log 2>&1 || { cat build/default.build.log; echo "default: 0 passed, 1 failed"; exit 1; }
log=build/default.log
want=("hello from PD hello" "hello from PD world")
qemu/run.sh build/edgeos.img </dev/null >"$log" 2>&1 &
qemu=$!
ok=0
for _ in $(seq $((timeout_s * 10))); do
    missing=0
    for w in "${want[@]}"; do grep -qF "$w" "$log" || missing=1; done
    if [ $missing = 0 ]; then ok=1; break; fi
    kill -0 $qemu 2>/dev/null || break
    sleep 0.1
done
kill $qemu 2>/dev/null; wait $qemu 2>/dev/null
if [ $ok = 1 ]; then
    echo "ok   default system boots and every PD prints its line"
    echo "default: 1 passed, 0 failed"
else
    echo "FAIL default system: expected lines missing; log:"; cat "$log"
    echo "default: 0 passed, 1 failed"
    exit 1
fi

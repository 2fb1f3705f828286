#!/usr/bin/env bash
# Fuzzes the manager's services file parser for a while (default 30 s):
#   pds/manager/core/fuzz/run.sh [SECONDS]
# Installs cargo-fuzz if missing; libFuzzer needs nightly-only flags, which RUSTC_BOOTSTRAP=1
# unlocks on stable. ASan when it builds, no sanitizer otherwise. The corpus starts from the
# repository's services files and the format's documented example.
set -euo pipefail
seconds=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
cd "$here"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
corpus=corpus/config
mkdir -p "$corpus"
cp "$root/system.services.conf" "$corpus/system.services.conf"
cp "$root/tests/net/instances/services.conf" "$corpus/net-instances.conf"
cp "$root/tests/system/manager_basic/services.conf" "$corpus/manager-basic.conf"
printf 'service memcached fork 0 ports 11211-11510 protocols tcp,udp policy port idle 60 pool 4\nservice echo fork 1 ports 7 protocols udp policy shared  # one echo\r\nservice web pool 2 policy client protocols tcp ports 80 fork 2\n\0garbage' >"$corpus/example.conf"
export RUSTC_BOOTSTRAP=1
args=(config "$corpus" -- "-max_total_time=$seconds" "-dict=$here/config.dict" -max_len=4096)
if cargo fuzz build --sanitizer address config >/dev/null 2>&1; then
    cargo fuzz run --sanitizer address "${args[@]}"
else
    echo "[fuzz] AddressSanitizer build failed; running without a sanitizer"
    cargo fuzz run --sanitizer none "${args[@]}"
fi

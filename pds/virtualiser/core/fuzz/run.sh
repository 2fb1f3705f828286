#!/usr/bin/env bash
# Fuzzes the virtualiser's frame parsing for a while (default 30 s):
#   pds/virtualiser/core/fuzz/run.sh [SECONDS]
# Installs cargo-fuzz if missing; libFuzzer needs nightly-only flags, which RUSTC_BOOTSTRAP=1
# unlocks on stable. The corpus starts from a few valid frames (written here).
set -euo pipefail
seconds=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
corpus=corpus/frames
mkdir -p "$corpus"
# Seeds: UDP to port 7001, TCP SYN to 7001, an ARP request for 10.0.2.15.
printf '\x52\x54\x00\x12\x34\x56\x02\x00\x00\x00\x00\x01\x08\x00\x45\x00\x00\x20\x00\x01\x00\x00\x40\x11\x62\xbd\x0a\x00\x02\x02\x0a\x00\x02\x0f\x9c\x40\x1b\x59\x00\x0c\x00\x00ping' >"$corpus/udp"
printf '\x52\x54\x00\x12\x34\x56\x02\x00\x00\x00\x00\x01\x08\x00\x45\x00\x00\x28\x00\x01\x00\x00\x40\x06\x62\xc0\x0a\x00\x02\x02\x0a\x00\x02\x0f\x9c\x40\x1b\x59\x00\x00\x00\x01\x00\x00\x00\x00\x50\x02\xff\xff\x00\x00\x00\x00' >"$corpus/tcp"
printf '\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x01\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01\x02\x00\x00\x00\x00\x01\x0a\x00\x02\x02\x00\x00\x00\x00\x00\x00\x0a\x00\x02\x0f' >"$corpus/arp"
export RUSTC_BOOTSTRAP=1
args=(frames "$corpus" -- "-max_total_time=$seconds" -max_len=2048)
if cargo fuzz build --sanitizer address frames >/dev/null 2>&1; then
    cargo fuzz run --sanitizer address "${args[@]}"
else
    cargo fuzz run --sanitizer none "${args[@]}"
fi

#!/usr/bin/env bash
# Runs the system description parser fuzzer for a while (default 30 s):
#   libs/sysdesc/fuzz/run.sh [SECONDS]
# Installs cargo-fuzz (from crates.io) if it is missing and seeds the corpus
# with every fixture. libFuzzer needs nightly-only compiler flags; on a
# stable toolchain RUSTC_BOOTSTRAP=1 unlocks them. AddressSanitizer is used
# when it works and the run falls back to no sanitizer otherwise (Rust code
# without `unsafe` gains little from ASan; the panic check is what matters).
set -euo pipefail

seconds=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

log() { printf '[fuzz] %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

corpus=corpus/parse
mkdir -p "$corpus"
cp ../tests/fixtures/valid/*.xml ../tests/fixtures/invalid/*.xml "$corpus"/

export RUSTC_BOOTSTRAP=1
args=(parse "$corpus" -- "-max_total_time=$seconds" "-dict=$here/parse.dict" -max_len=8192)
if cargo fuzz build --sanitizer address parse >/dev/null 2>&1; then
    log "running with AddressSanitizer for ${seconds}s"
    cargo fuzz run --sanitizer address "${args[@]}"
else
    log "AddressSanitizer build failed; running without a sanitizer for ${seconds}s"
    cargo fuzz run --sanitizer none "${args[@]}"
fi

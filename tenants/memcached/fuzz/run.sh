#!/usr/bin/env bash
# Fuzzes the memcached protocol library for a while (default 30 s, split between the targets):
#   tenants/memcached/fuzz/run.sh [SECONDS]
# Targets: `stream` (a TCP byte stream cut into pieces for one or more connections) and `udp`
# (request datagrams). Installs cargo-fuzz if missing; libFuzzer needs nightly-only flags, which
# RUSTC_BOOTSTRAP=1 unlocks on stable. ASan when it builds, no sanitizer otherwise. The corpora
# start from the requests in seeds/ (each with a few headers; see the targets' doc comments).
set -euo pipefail
export LC_ALL=C
seconds=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

mkdir -p corpus/stream corpus/udp
for seed in seeds/*.txt; do
    name=$(basename "$seed" .txt)
    # stream: 4 header bytes (configuration, piece-cutting seed), then the requests.
    for header in '\x00\x00\x00\x00' '\x01\x17\x2a\x03' '\xc5\x99\x10\x7f' '\x3a\x01\x02\x03'; do
        { printf "$header"; cat "$seed"; } >"corpus/stream/$name-${header//\\x/}"
    done
    # udp: a configuration byte, then each request line as its own datagram (16-bit length,
    # frame header with request id 1, sequence 0 of 1), then the whole file as one datagram.
    {
        printf '\x01'
        while IFS= read -r line; do
            line="$line"$'\n'
            printf "\\x$(printf %02x $(((${#line} + 8) >> 8)))\\x$(printf %02x $(((${#line} + 8) & 255)))"
            printf '\x00\x01\x00\x00\x00\x01\x00\x00'
            printf '%s' "$line"
        done <"$seed"
        size=$(($(wc -c <"$seed") + 8))
        printf "\\x$(printf %02x $((size >> 8)))\\x$(printf %02x $((size & 255)))"
        printf '\x00\x02\x00\x00\x00\x01\x00\x00'
        cat "$seed"
    } >"corpus/udp/$name"
done

export RUSTC_BOOTSTRAP=1
sanitizer=address
if ! cargo fuzz build --sanitizer address >/dev/null 2>&1; then
    echo "[fuzz] AddressSanitizer build failed; running without a sanitizer"
    sanitizer=none
fi
udp_seconds=$((seconds / 3 > 0 ? seconds / 3 : 1))
stream_seconds=$((seconds - udp_seconds > 0 ? seconds - udp_seconds : 1))
for run in "stream $stream_seconds 4096" "udp $udp_seconds 4096"; do
    set -- $run
    cargo fuzz run --sanitizer "$sanitizer" "$1" "corpus/$1" -- \
        "-max_total_time=$2" "-max_len=$3" "-dict=$here/memcached.dict"
done

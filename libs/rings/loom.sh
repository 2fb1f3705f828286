#!/usr/bin/env bash
# Model-checks the queue's wake-up protocol with loom (tests/loom.rs). Uses its own target
# directory so the `--cfg loom` build does not invalidate the normal one.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3} \
    cargo test -q --release -p edgeos-rings --test loom --target-dir target/loom -- --test-threads=2 "$@"

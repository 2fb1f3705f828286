#!/usr/bin/env bash
# Builds every bare-metal crate of the workspace (the kernel and all PD programs) for
# aarch64-unknown-none and copies each binary to build/elf/NAME.elf, where `edgeos build`
# finds program images (its --search-path). Bare-metal crates are the workspace members
# that are not default members (see the root Cargo.toml).
# Usage: tools/build-bare.sh [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
flag=--release
if [ "${1:-}" = "--debug" ]; then profile=debug; flag=; fi
target=aarch64-unknown-none
out=build/elf
mkdir -p "$out"

# name<TAB>bin1,bin2 for each bare-metal package
mapfile -t pkgs < <(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
m = json.load(sys.stdin)
default = set(m.get("workspace_default_members", []))
for p in m["packages"]:
    if p["id"] in m["workspace_members"] and p["id"] not in default:
        bins = [t["name"] for t in p["targets"] if "bin" in t["kind"]]
        if bins:
            print(p["name"] + "\t" + ",".join(bins))
')
args=()
for line in "${pkgs[@]}"; do args+=(-p "${line%%$'\t'*}"); done
echo "[build-bare] building ${#pkgs[@]} bare-metal crates for $target ($profile)"
cargo build -q $flag --target "$target" "${args[@]}"
for line in "${pkgs[@]}"; do
    IFS=, read -ra bins <<< "${line#*$'\t'}"
    for b in "${bins[@]}"; do
        cp "target/$target/$profile/$b" "$out/$b.elf"
    done
done
echo "[build-bare] program images in $out/"

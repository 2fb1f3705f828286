#!/usr/bin/env bash
# Builds every bare-metal crate of the workspace (the kernel and all PD programs) for
# aarch64-unknown-none and copies each binary to build/elf/NAME.elf, where `edgeos build`
# finds program images (its --search-path). Bare-metal crates are the workspace members
# that are not default members (see the root Cargo.toml). A package may ask for another target
# with `[package.metadata.edgeos] target = "..."` (the kernel uses aarch64-unknown-none-softfloat
# so that it never touches FP/SIMD registers, which it switches lazily for PDs).
# Usage: tools/build-bare.sh [--debug | --lint]   (--lint: clippy over the same crates, warnings denied)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
flag=--release
lint=0
case "${1:-}" in
    --debug) profile=debug; flag= ;;
    --lint) lint=1 ;;
esac
target=aarch64-unknown-none
out=build/elf
mkdir -p "$out"

# target<TAB>name<TAB>bin1,bin2 for each bare-metal package
mapfile -t pkgs < <(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
m = json.load(sys.stdin)
default = set(m.get("workspace_default_members", []))
for p in m["packages"]:
    if p["id"] in m["workspace_members"] and p["id"] not in default:
        bins = [t["name"] for t in p["targets"] if "bin" in t["kind"]]
        own = ((p.get("metadata") or {}).get("edgeos") or {}).get("target")
        if bins:
            print((own or sys.argv[1]) + "\t" + p["name"] + "\t" + ",".join(bins))
' "$target")
mapfile -t targets < <(printf '%s\n' "${pkgs[@]}" | cut -f1 | sort -u)
for t in "${targets[@]}"; do
    if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
        echo "[build-bare] adding Rust target $t"
        rustup target add "$t"
    fi
    args=()
    for line in "${pkgs[@]}"; do
        IFS=$'\t' read -r pt name _ <<< "$line"
        [ "$pt" = "$t" ] && args+=(-p "$name")
    done
    if [ $lint = 1 ]; then
        echo "[build-bare] clippy over $(( ${#args[@]} / 2 )) bare-metal crates for $t"
        cargo clippy -q --no-deps --release --target "$t" "${args[@]}" -- -D warnings
    else
        echo "[build-bare] building $(( ${#args[@]} / 2 )) bare-metal crates for $t ($profile)"
        cargo build -q $flag --target "$t" "${args[@]}"
    fi
done
[ $lint = 1 ] && exit 0
for line in "${pkgs[@]}"; do
    IFS=$'\t' read -r pt _ bins_csv <<< "$line"
    IFS=, read -ra bins <<< "$bins_csv"
    for b in "${bins[@]}"; do
        cp "target/$pt/$profile/$b" "$out/$b.elf"
    done
done
echo "[build-bare] program images in $out/"

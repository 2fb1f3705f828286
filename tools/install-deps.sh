#!/usr/bin/env bash
# Installs what building and testing EdgeOS needs, and only what is missing:
#   - the Rust bare-metal targets aarch64-unknown-none(-softfloat) (rustup)
#   - QEMU 10 (qemu-system-arm) from bookworm-backports: Debian 12's own QEMU 7.2
#     conflicts with the qemu-utils 10 these machines ship, so backports is required.
#   - graphviz (for `edgeos graph --svg`), python3 packages used by the system tests.
# The backports mirror URI is read from the machine's existing apt sources, never hard-coded.
# Safe to run repeatedly; prints what it does.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*"; }
aptlog=$(mktemp /tmp/edgeos-apt.XXXXXX.log)
trap 'rm -f "$aptlog"' EXIT
# Runs an apt command quietly; shows its output only if it fails.
apt_quiet() {
    if ! "$@" >"$aptlog" 2>&1; then
        cat "$aptlog"; log "error: '$*' failed"; exit 1
    fi
}

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then echo sudo; else
            log "error: installing system packages needs root (or sudo)"; exit 1; fi
    fi
}

# --- Rust targets ----------------------------------------------------------
# PDs build for aarch64-unknown-none; the kernel for the soft-float variant (it never touches
# FP/SIMD registers, which it switches lazily for PDs).
for t in aarch64-unknown-none aarch64-unknown-none-softfloat; do
    if ! rustup target list --installed 2>/dev/null | grep -qx "$t"; then
        log "adding Rust target $t"
        rustup target add "$t"
    fi
done

# --- Debian packages -------------------------------------------------------
apt_missing=()
qemu_ok() {
    command -v qemu-system-aarch64 >/dev/null 2>&1 &&
        qemu-system-aarch64 --version | head -1 | grep -Eq 'version (9|[1-9][0-9])\.'
}
qemu_ok || apt_missing+=(qemu-system-arm)
command -v dot >/dev/null 2>&1 || apt_missing+=(graphviz)

if [ ${#apt_missing[@]} -gt 0 ]; then
    SUDO=$(need_root)
    . /etc/os-release
    codename=${VERSION_CODENAME:-bookworm}
    if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        # Reuse the mirror URI the machine already uses for Debian itself.
        uri=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
              awk '{print $2}' | grep -v security | head -1)
        if [ -z "$uri" ]; then
            uri=$(grep -hs '^deb ' /etc/apt/sources.list 2>/dev/null |
                  awk '{print $2}' | grep -v security | head -1)
        fi
        if [ -z "$uri" ]; then log "error: cannot find the Debian mirror URI in apt sources"; exit 1; fi
        log "adding ${codename}-backports from $uri"
        printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$uri" "$codename" | $SUDO tee /etc/apt/sources.list.d/edgeos-backports.sources >/dev/null
    fi
    log "apt-get update"
    apt_quiet $SUDO apt-get update
    for p in "${apt_missing[@]}"; do
        if [ "$p" = qemu-system-arm ]; then
            log "installing qemu-system-arm from ${codename}-backports"
            apt_quiet env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -t "${codename}-backports" \
                --no-install-recommends qemu-system-arm
        else
            log "installing $p"
            apt_quiet env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "$p"
        fi
    done
fi
qemu_ok || { log "error: qemu-system-aarch64 >= 9 still missing"; exit 1; }
log "ok: $(qemu-system-aarch64 --version | head -1)"

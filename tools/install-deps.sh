#!/usr/bin/env bash
# Installs what building and testing EdgeOS needs, and only what is missing:
#   - the Rust bare-metal targets aarch64-unknown-none(-softfloat) (rustup)
#   - QEMU 10 or newer (qemu-system-arm) from bookworm-backports: Debian 12's own QEMU 7.2
#     conflicts with the qemu-utils 10 these machines ship, so backports is required.
#   - graphviz (for `edgeos graph --svg`) and python3 (the system tests' network clients; they
#     use only its standard library, so no Python packages are installed).
# The backports mirror URI is read from the machine's existing apt sources (one-line
# sources.list entries or deb822 .sources files), never hard-coded.
# Safe to run repeatedly; prints what it does.
#
# Helper modes, which install nothing (tools/edgeos/tests/install_deps.rs tests them):
#   install-deps.sh --print-mirror FILE...    the Debian mirror URI the apt sources FILEs use
#   install-deps.sh --has-backports FILE...   exit 0 if they enable CODENAME-backports
#   install-deps.sh --qemu-ok "VERSION LINE"  exit 0 if a `qemu-system-aarch64 --version` line is >= 10
# The codename is $EDGEOS_DEBIAN_CODENAME, else VERSION_CODENAME from /etc/os-release, else bookworm.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*"; }

QEMU_MIN_MAJOR=10

codename() {
    if [ -n "${EDGEOS_DEBIAN_CODENAME:-}" ]; then echo "$EDGEOS_DEBIAN_CODENAME"; return; fi
    local c=""
    if [ -r /etc/os-release ]; then c=$(. /etc/os-release && echo "${VERSION_CODENAME:-}"); fi
    echo "${c:-bookworm}"
}

# Prints "URI SUITE COMPONENT..." for every enabled binary (`deb`) entry of the apt sources FILEs:
# one-line entries (`deb [options] URI SUITE COMPONENT...`; the bracketed option block, e.g.
# `[arch=amd64 signed-by=...]`, is skipped; commented-out lines are ignored) and deb822 stanzas
# in files ending in .sources (Types/URIs/Suites/Components, skipping `Enabled: no`).
apt_entries() {
    local f files=()
    for f in "$@"; do [ -r "$f" ] && files+=("$f"); done
    [ ${#files[@]} -gt 0 ] || return 0
    awk '
        function flush(   i, j, nu, ns, us, ss) {
            if (is_deb && enabled) {
                nu = split(uris, us, /[ \t]+/); ns = split(suites, ss, /[ \t]+/)
                for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                    if (us[i] != "" && ss[j] != "") print us[i], ss[j], comps
            }
            is_deb = 0; enabled = 1; uris = ""; suites = ""; comps = ""; last = ""
        }
        FNR == 1 { if (deb822) flush(); deb822 = (FILENAME ~ /\.sources$/); is_deb = 0; enabled = 1; uris = ""; suites = ""; comps = "" }
        deb822 {
            line = $0
            if (line ~ /^[ \t]*#/) next
            if (line ~ /^[ \t]*$/) { flush(); next }
            if (line ~ /^[ \t]/) {            # continuation of the previous field
                if (last == "uris") uris = uris " " line
                else if (last == "suites") suites = suites " " line
                else if (last == "comps") comps = comps " " line
                next
            }
            field = tolower(line); sub(/:.*/, "", field)
            value = line; sub(/^[^:]*:[ \t]*/, "", value)
            last = ""
            if (field == "types") { n = split(value, ts, /[ \t]+/); for (k = 1; k <= n; k++) if (ts[k] == "deb") is_deb = 1 }
            else if (field == "uris") { uris = value; last = "uris" }
            else if (field == "suites") { suites = value; last = "suites" }
            else if (field == "components") { comps = value; last = "comps" }
            else if (field == "enabled") { enabled = (tolower(value) !~ /^(no|false|0)/) }
            next
        }
        {
            line = $0
            sub(/#.*/, "", line)
            if (line !~ /^[ \t]*deb[ \t]/) next
            sub(/^[ \t]*deb[ \t]+/, "", line)
            if (line ~ /^\[/) {
                if (index(line, "]") == 0) next
                line = substr(line, index(line, "]") + 1)
            }
            n = split(line, f, /[ \t]+/)
            k = 1; while (k <= n && f[k] == "") k++
            if (k + 1 > n) next
            out = f[k] " " f[k + 1]
            for (i = k + 2; i <= n; i++) if (f[i] != "") out = out " " f[i]
            print out
        }
        END { if (deb822) flush() }
    ' "${files[@]}"
}

# The URI of the machine's Debian mirror: the first enabled entry for the release itself (or its
# -updates suite) with the `main` component (third-party repositories such as Docker's name the
# release too, but not `main`) that is not the security archive.
print_mirror() {
    local c
    c=$(codename)
    apt_entries "$@" | awk -v c="$c" '
        ($2 == c || $2 == c "-updates") && $1 !~ /security/ {
            for (i = 3; i <= NF; i++) if ($i == "main") { print $1; exit }
        }' | grep .
}

has_backports() {
    local c
    c=$(codename)
    apt_entries "$@" | awk -v c="$c" '$2 == c "-backports" { found = 1 } END { exit !found }'
}

# Whether a `qemu-system-aarch64 --version` first line names version QEMU_MIN_MAJOR or newer.
qemu_version_ok() {
    local major
    major=$(printf '%s\n' "$1" | sed -n 's/.*version \([0-9][0-9]*\)\..*/\1/p' | head -1)
    [ -n "$major" ] && [ "$major" -ge "$QEMU_MIN_MAJOR" ]
}

apt_source_files() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && echo "$f"
    done
    return 0
}

case "${1:-}" in
    --print-mirror) shift; print_mirror "$@"; exit ;;
    --has-backports) shift; has_backports "$@"; exit ;;
    --qemu-ok) shift; qemu_version_ok "${1:-}"; exit ;;
    "") ;;
    *) log "error: unknown argument '$1' (see the header of $0)"; exit 2 ;;
esac

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
        qemu_version_ok "$(qemu-system-aarch64 --version | head -1)"
}
qemu_ok || apt_missing+=(qemu-system-arm)
command -v dot >/dev/null 2>&1 || apt_missing+=(graphviz)
command -v python3 >/dev/null 2>&1 || apt_missing+=(python3)

if [ ${#apt_missing[@]} -gt 0 ]; then
    SUDO=$(need_root)
    codename=$(codename)
    mapfile -t sources < <(apt_source_files)
    if [ ${#sources[@]} -eq 0 ] || ! has_backports "${sources[@]}"; then
        # Reuse the mirror URI the machine already uses for Debian itself.
        uri=""
        [ ${#sources[@]} -gt 0 ] && uri=$(print_mirror "${sources[@]}" || true)
        if [ -z "$uri" ]; then log "error: cannot find the Debian mirror URI in apt sources (${sources[*]:-none})"; exit 1; fi
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
qemu_ok || { log "error: qemu-system-aarch64 >= ${QEMU_MIN_MAJOR} still missing"; exit 1; }
log "ok: $(qemu-system-aarch64 --version | head -1)"

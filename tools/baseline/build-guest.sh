#!/usr/bin/env bash
# Builds the Linux baseline guest for issue 7: a Debian arm64 kernel and an initramfs holding
# busybox, the process-start benchmark, memcached with its shared libraries, and crun.
#
#   tools/baseline/build-guest.sh [--refresh]
#
# Everything is fetched from Debian's arm64 packages with apt into a git-ignored cache
# (.cache/linux-guest/), through a private apt configuration there: the host's own apt state and
# architectures are left alone. The benchmark programs are cross-compiled statically with Debian's
# gcc-aarch64-linux-gnu (installed on the host if missing). Output, in build/baseline/guest/:
#   vmlinuz              the kernel (Debian's cloud-arm64 flavour, Linux 6.1)
#   initramfs.cpio.gz    the root file system, /init = tools/baseline/guest/init
#   guest.info           package versions (read into the results table)
# Idempotent: downloads are cached, and a second run only repacks the initramfs (a few seconds).
# --refresh drops the cached package lists and downloads first.
# Environment: BL_CACHE (cache folder), BL_OUT (output folder), BL_KERNEL_PKG (kernel package,
# default: what linux-image-cloud-arm64 depends on).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${BL_CACHE:-$repo/.cache/linux-guest}
OUT=${BL_OUT:-$repo/build/baseline/guest}
log() { printf '[build-guest] %s\n' "$*"; }
die() { log "error: $*"; exit 1; }
t0=$(date +%s)

if [ "${1:-}" = --refresh ]; then
    log "dropping cached package lists and downloads"
    rm -rf "$CACHE/apt" "$CACHE/debs" "$CACHE/root" "$CACHE/root.stamp"
fi

# --- host tools -------------------------------------------------------------------------------
need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v readelf >/dev/null 2>&1 || need_apt+=(binutils)
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb missing: this script needs a Debian host"
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing ${need_apt[*]} needs root or sudo"
        SUDO=sudo
    fi
    log "installing host packages: ${need_apt[*]}"
    aptlog=$(mktemp)
    # An unreachable third-party source makes `apt-get update` fail while Debian's lists are fine:
    # the install below is what must succeed.
    $SUDO apt-get update >"$aptlog" 2>&1 || log "apt-get update reported errors (continuing)"
    if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
            "${need_apt[@]}" >>"$aptlog" 2>&1; then
        cat "$aptlog"; rm -f "$aptlog"; die "apt-get install failed"
    fi
    rm -f "$aptlog"
fi

# --- a private apt configuration for Debian arm64 ---------------------------------------------
APTDIR=$CACHE/apt
mkdir -p "$APTDIR/etc/sources.list.d" "$APTDIR/etc/preferences.d" "$APTDIR/state/lists/partial" \
    "$APTDIR/cache/archives/partial" "$CACHE/debs"
touch "$APTDIR/state/status" "$APTDIR/etc/sources.list"
# The mirror URI is the one the host already uses for Debian itself (never hard-coded here).
uri=$(grep -rhs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
      grep -i debian | grep -v security | head -1 || true)
if [ -z "$uri" ]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' |
          grep -i debian | grep -v security | head -1 || true)
fi
[ -n "$uri" ] || die "cannot find the Debian mirror URI in the host's apt sources"
. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}
printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nArchitectures: arm64\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$codename" "$codename" > "$APTDIR/etc/sources.list.d/debian-arm64.sources.new"
cat > "$APTDIR/apt.conf.new" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::Etc "$APTDIR/etc";
Dir::Etc::SourceList "$APTDIR/etc/sources.list";
Dir::Etc::SourceParts "$APTDIR/etc/sources.list.d";
Dir::Etc::Preferences "$APTDIR/etc/preferences";
Dir::Etc::PreferencesParts "$APTDIR/etc/preferences.d";
Dir::Etc::Parts "$APTDIR/etc/apt.conf.d";
Dir::State "$APTDIR/state";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
Acquire::Languages "none";
APT::Sandbox::User "root";
CONF
# The host's network settings for apt (a proxy, say) apply here too; nothing else of its config.
env -u APT_CONFIG apt-config dump 2>/dev/null | grep -iE '^Acquire::(https?::Proxy|Check-Valid-Until|Check-Date)' \
    >> "$APTDIR/apt.conf.new" || true
mkdir -p "$APTDIR/etc/apt.conf.d"
changed=0
for f in apt.conf etc/sources.list.d/debian-arm64.sources; do
    if cmp -s "$APTDIR/$f.new" "$APTDIR/$f"; then rm "$APTDIR/$f.new"; else mv "$APTDIR/$f.new" "$APTDIR/$f"; changed=1; fi
done
export APT_CONFIG=$APTDIR/apt.conf
if [ $changed = 1 ] || ! ls "$APTDIR"/state/lists/*_Packages* >/dev/null 2>&1; then
    log "apt-get update (Debian $codename arm64, from $uri)"
    apt-get -q update >"$CACHE/apt-update.log" 2>&1 || { cat "$CACHE/apt-update.log"; die "apt-get update failed"; }
else
    log "package lists cached (--refresh to update them)"
fi

# --- which packages ---------------------------------------------------------------------------
kernel_pkg=${BL_KERNEL_PKG:-}
if [ -z "$kernel_pkg" ]; then
    kernel_pkg=$(apt-cache depends linux-image-cloud-arm64 2>/dev/null |
                 awk '/Depends: linux-image-/{print $2; exit}')
    [ -n "$kernel_pkg" ] || die "cannot resolve linux-image-cloud-arm64"
fi
# The libraries of memcached and crun: their Depends on lib* packages, recursively.
lib_deps() {  # one apt-cache call per level of the dependency tree
    local seen=" " frontier=("$@") next d
    while [ ${#frontier[@]} -gt 0 ]; do
        next=()
        for d in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
                       --no-replaces --no-enhances "${frontier[@]}" 2>/dev/null |
                   awk '/^ *(Pre)?Depends: lib/{print $2}' | grep -v '[<>]' | sort -u || true); do
            case "$seen" in *" $d "*) ;; *) seen="$seen$d "; next+=("$d");; esac
        done
        frontier=("${next[@]}")
    done
    echo $seen
}
pkgs=("$kernel_pkg" busybox-static memcached crun)
read -r -a libs <<<"$(lib_deps memcached crun)"
pkgs+=("${libs[@]}")

# --- download (cached) ------------------------------------------------------------------------
missing=()
for p in "${pkgs[@]}"; do
    ls "$CACHE/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "downloading ${#missing[@]} packages: ${missing[*]}"
    (cd "$CACHE/debs" && apt-get -q download "${missing[@]}") >"$CACHE/apt-download.log" 2>&1 ||
        { cat "$CACHE/apt-download.log"; die "apt-get download failed"; }
else
    log "all ${#pkgs[@]} packages cached"
fi
debs=()
for p in "${pkgs[@]}"; do
    d=$(ls "$CACHE/debs/${p}_"*.deb | sort -V | tail -1)
    debs+=("$d")
done

# --- extract (only when the set of packages changed) --------------------------------------------
ROOT=$CACHE/root
stamp=$(printf '%s\n' "${debs[@]##*/}" | sort)
if [ ! -d "$ROOT" ] || [ "$(cat "$CACHE/root.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "extracting ${#debs[@]} packages"
    rm -rf "$ROOT" && mkdir -p "$ROOT"
    for d in "${debs[@]}"; do dpkg-deb -x "$d" "$ROOT"; done
    printf '%s\n' "$stamp" > "$CACHE/root.stamp"
else
    log "packages already extracted"
fi
kver=${kernel_pkg#linux-image-}
[ -f "$ROOT/boot/vmlinuz-$kver" ] || die "no kernel image $ROOT/boot/vmlinuz-$kver"

# --- benchmark programs -----------------------------------------------------------------------
mkdir -p "$OUT/bin"
CC=aarch64-linux-gnu-gcc
build_if_newer() {  # OUTPUT SOURCE COMMAND...
    local o=$1 s=$2; shift 2
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ]; then log "compiling ${o##*/}"; "$@"; fi
}
build_if_newer "$OUT/bin/spawnbench" "$here/guest/spawnbench.c" \
    $CC -static -O2 -Wall -Wextra -Werror -o "$OUT/bin/spawnbench" "$here/guest/spawnbench.c"
build_if_newer "$OUT/bin/exit0" "$here/guest/exit0.S" \
    $CC -nostdlib -static -s -Wl,--build-id=none -Wl,-n -o "$OUT/bin/exit0" "$here/guest/exit0.S"

# --- the root file system ---------------------------------------------------------------------
STAGE=$OUT/rootfs
rm -rf "$STAGE"
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,lib,etc,proc,sys,dev,tmp,run,bench,modules,root}
install -m 755 "$here/guest/init" "$STAGE/init"
install -m 755 "$ROOT/bin/busybox" "$STAGE/bin/busybox"
install -m 755 "$OUT/bin/spawnbench" "$OUT/bin/exit0" "$STAGE/bench/"
install -m 755 "$ROOT/usr/bin/memcached" "$STAGE/usr/bin/memcached"
install -m 755 "$ROOT/usr/bin/crun" "$STAGE/usr/bin/crun"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$STAGE/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$STAGE/etc/group"
# Shared libraries: follow DT_NEEDED from the dynamic executables, copy what they need.
libdirs=("$ROOT/lib/aarch64-linux-gnu" "$ROOT/usr/lib/aarch64-linux-gnu")
mkdir -p "$STAGE/lib/aarch64-linux-gnu"
find_lib() {
    local d; for d in "${libdirs[@]}"; do [ -e "$d/$1" ] && { echo "$d/$1"; return; }; done
}
queue=("$STAGE/usr/bin/memcached" "$STAGE/usr/bin/crun")
done_libs=" "
while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}; queue=("${queue[@]:1}")
    for n in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        case "$done_libs" in *" $n "*) continue;; esac
        done_libs="$done_libs$n "
        src=$(find_lib "$n")
        [ -n "$src" ] || die "library $n (needed by ${f##*/}) is in none of the downloaded packages"
        cp -L "$src" "$STAGE/lib/aarch64-linux-gnu/$n"
        queue+=("$STAGE/lib/aarch64-linux-gnu/$n")
    done
done
interp=$(readelf -l "$STAGE/usr/bin/memcached" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
[ -n "$interp" ] || die "memcached has no program interpreter"
src=$(find_lib "${interp##*/}")
[ -n "$src" ] || die "loader $interp not found"
mkdir -p "$STAGE$(dirname "$interp")"
cp -L "$src" "$STAGE$interp"
# Kernel modules for the network: virtio-net over virtio-mmio, with their dependencies in order.
moddir=$ROOT/lib/modules/$kver
modorder=()
mod_add() {
    local m=$1 ko deps d
    case " ${modorder[*]} " in *" $m "*) return;; esac
    ko=$(find "$moddir/kernel" -name "$m.ko" -o -name "${m//_/-}.ko" | head -1)
    if [ -z "$ko" ]; then
        grep -qx "CONFIG_$(echo "$m" | tr a-z A-Z)=y" "$ROOT/boot/config-$kver" 2>/dev/null && return
        die "kernel module $m not found"
    fi
    deps=$(grep -ao 'depends=[a-z0-9_,-]*' "$ko" | head -1 | cut -d= -f2 | tr , ' ')
    for d in $deps; do mod_add "$d"; done
    cp "$ko" "$STAGE/modules/$m.ko"
    modorder+=("$m")
}
for m in virtio_mmio virtio_net; do mod_add "$m"; done
printf '%s\n' "${modorder[@]}" > "$STAGE/modules/order"
# The container bundle: a root holding only the exit-only binary.
mkdir -p "$STAGE/containers/exit0/rootfs"/{proc,dev}
cp "$here/guest/container-config.json" "$STAGE/containers/exit0/config.json"
cp "$OUT/bin/exit0" "$STAGE/containers/exit0/rootfs/exit0"

# --- outputs ----------------------------------------------------------------------------------
cp "$ROOT/boot/vmlinuz-$kver" "$OUT/vmlinuz"
python3 "$here/mkcpio.py" "$STAGE" "$OUT/initramfs.cpio.gz"
ver() { dpkg-deb -f "$(ls "$CACHE/debs/${1}_"*.deb | sort -V | tail -1)" Version; }
{
    echo "kernel=$kernel_pkg $(ver "$kernel_pkg")"
    echo "busybox=$(ver busybox-static)"
    echo "memcached=$(ver memcached)"
    echo "crun=$(ver crun)"
    echo "libc6=$(ver libc6)"
    echo "cc=$($CC --version | head -1)"
    echo "exit0_bytes=$(stat -c %s "$OUT/bin/exit0")"
    echo "modules=${modorder[*]}"
} > "$OUT/guest.info"
log "kernel $OUT/vmlinuz ($kernel_pkg), modules: ${modorder[*]}"
log "done in $(( $(date +%s) - t0 )) s"

#!/usr/bin/env bash
# Writes the default node (system.xml, system.services.conf, system.routes.conf) into OUT with
# its memcached service widened to N ports (11211..11211+N-1, one instance per port) and its
# fork grant to N instances within QUOTA bytes (default 0x3a000000); IDLE, if given, replaces the
# service's idle time (seconds). Used by tests/instances/run.sh and icount.sh.
#
#   tests/instances/widen.sh N OUT [IDLE]
#
# Exits non-zero, saying what, if the default files no longer have the lines it rewrites.
set -euo pipefail
n=$1
out=$2
idle=${3:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
last=$((11211 + n - 1))
idle_edit=()
[ -n "$idle" ] && idle_edit=(-e "s/idle 60 /idle $idle /")
sed -e "s/ports 11211-11218/ports 11211-$last/" "${idle_edit[@]}" "$root/system.services.conf" >"$out/system.services.conf"
cp "$root/system.routes.conf" "$out/"
sed -e "s/max_instances=\"8\" memory=\"0x10000000\"/max_instances=\"$n\" memory=\"${QUOTA:-0x3a000000}\"/" \
    "$root/system.xml" >"$out/system.xml"
if ! grep -q "max_instances=\"$n\"" "$out/system.xml"; then
    echo "system.xml no longer has the fork grant this widens (max_instances=\"8\" memory=\"0x10000000\")"
    exit 1
fi
if ! grep -q "ports 11211-$last " "$out/system.services.conf"; then
    echo "system.services.conf no longer has the memcached line this widens (ports 11211-11218)"
    exit 1
fi
if [ -n "$idle" ] && ! grep -q "idle $idle " "$out/system.services.conf"; then
    echo "system.services.conf no longer says 'idle 60 '"
    exit 1
fi

#!/usr/bin/env bash
# Boots an EdgeOS image (or a bare kernel ELF) on QEMU `virt`.
#
#   qemu/run.sh IMAGE [extra qemu args...]
#
# Board configuration, overridable through the environment:
#   CPU=cortex-a53|cortex-a72|max   (default cortex-a53)
#   GIC=2|3                         (default 2)
#   EL2=0|1                         (1: enter the kernel at EL2, virtualization=on; default 0)
#   MEM=1G                          (RAM; the board file assumes at least 1 GiB)
#   QEMU=qemu-system-aarch64
#   NET=user|none                   (default user: a virtio-net-device on virtio-mmio, behind
#                                    QEMU user networking; the guest is 10.0.2.15, gateway 10.0.2.2)
#   NET_FORWARD="5555:5555 11211:11211"
#                                   host ports forwarded to guest ports, HOST:GUEST each, TCP and
#                                   UDP both, on 127.0.0.1. A host port already in use is skipped
#                                   with a warning. Default: every port the default system serves,
#                                   to the same port: the static routes of system.routes.conf (5555,
#                                   the echo tenant) and the port ranges of system.services.conf
#                                   (11211-11218, memcached instances).
#   NET_LEGACY=0|1                  (1: virtio-mmio version 1, QEMU's own default; 0: version 2)
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 IMAGE [extra qemu args...]" >&2
    exit 2
fi
image=$1
shift

cpu=${CPU:-cortex-a53}
gic=${GIC:-2}
el2=${EL2:-0}
mem=${MEM:-1G}
machine="virt,gic-version=${gic}"
if [ "$el2" = 1 ]; then
    machine="${machine},virtualization=on"
fi

# The host ports among "$@" that are taken on 127.0.0.1 for TCP or UDP (one Python run for all:
# forwarding a thousand ports must not start a thousand interpreters).
busy_ports() {
    python3 -c '
import socket, sys
for port in sys.argv[1:]:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", int(port)))
        except OSError:
            print(port)
            break
        finally:
            s.close()
' "$@"
}

# The ports the default system serves, one a line: `route TENANT PROTO PORT` lines of
# system.routes.conf and `service ... ports LO-HI ...` lines of system.services.conf.
served_ports() {
    local dir
    dir=$(cd "$(dirname "$0")/.." && pwd)
    python3 - "$dir/system.routes.conf" "$dir/system.services.conf" <<'PY'
import sys
ports = []
def add(p):
    if p not in ports:
        ports.append(p)
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        w = line.split("#")[0].split()
        if len(w) == 4 and w[0] == "route":
            add(int(w[3]))
        elif w[:1] == ["service"] and "ports" in w:
            lo, _, hi = w[w.index("ports") + 1].partition("-")
            for p in range(int(lo), int(hi or lo) + 1):
                add(p)
print("\n".join(map(str, ports)))
PY
}

net=()
case "${NET:-user}" in
    none) net=(-nic none) ;;
    user)
        forwards=""
        if [ -z "${NET_FORWARD+set}" ]; then
            NET_FORWARD=$(served_ports | sed 's/.*/&:&/' | tr '\n' ' ')
        fi
        pairs=(${NET_FORWARD})
        busy=" $(busy_ports "${pairs[@]%%:*}" | tr '\n' ' ') "
        for pair in "${pairs[@]}"; do
            host=${pair%%:*}
            guest=${pair##*:}
            if [[ "$busy" == *" $host "* ]]; then
                echo "qemu/run.sh: host port $host is in use; not forwarding it to guest port $guest" >&2
                continue
            fi
            forwards="$forwards,hostfwd=tcp:127.0.0.1:$host-:$guest,hostfwd=udp:127.0.0.1:$host-:$guest"
        done
        # The first -device lands in the highest virtio-mmio slot (31: interrupt 79).
        net=(-netdev "user,id=net0$forwards" -device virtio-net-device,netdev=net0 -nic none)
        if [ "${NET_LEGACY:-0}" != 1 ]; then
            net+=(-global virtio-mmio.force-legacy=false)
        fi
        ;;
    *) echo "qemu/run.sh: NET must be user or none" >&2; exit 2 ;;
esac

exec "${QEMU:-qemu-system-aarch64}" -machine "$machine" -cpu "$cpu" -m "$mem" -nographic \
    -serial mon:stdio "${net[@]}" -kernel "$image" "$@"

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

exec "${QEMU:-qemu-system-aarch64}" -machine "$machine" -cpu "$cpu" -m "$mem" -nographic \
    -serial mon:stdio -nic none -kernel "$image" "$@"

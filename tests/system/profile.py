#!/usr/bin/env python3
"""Where the instructions of a benchmark go: reads a QEMU `-d exec,nochain` trace taken with
one instruction per translation block, counts executions per instruction and prints them per
function, divided by the number of round trips.

Kernel addresses are symbolized with the kernel ELF. User code of different PDs shares virtual
addresses, so user instructions are told apart by their translation block (distinct per physical
page): blocks that run in one stretch between two kernel entries belong to the same PD, and each
such group is symbolized with every candidate PD program (the one whose names fit is the PD).

Usage: profile.py TRACE ROUNDS KERNEL_ELF PD_ELF... (TRACE may be a FIFO)
With ANNOTATE=NAME in the environment, also prints every kernel instruction of the functions
whose names contain NAME with its count per round trip (disassembled with llvm-objdump).
"""
import bisect
import os
import subprocess
import sys
from collections import Counter, defaultdict

KERNEL_BASE = 0xFFFF_0000_0000_0000


def symbols(elf):
    out = subprocess.run(["nm", "-n", "-C", "--defined-only", elf], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    syms.sort()
    return [a for a, _ in syms], [n for _, n in syms]


def lookup(table, pc):
    addrs, names = table
    i = bisect.bisect_right(addrs, pc) - 1
    return names[i] if i >= 0 else "?"


def short(name, width=70):
    return name if len(name) <= width else name[: width - 3] + "..."


def annotate(elf, table, counts, rounds, name):
    per_pc = Counter()
    for (_, pc), n in counts.items():
        if pc >= KERNEL_BASE:
            per_pc[pc] += n
    dis = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", "-C", elf], capture_output=True, text=True).stdout
    print()
    for line in dis.splitlines():
        head = line.split(":", 1)[0].strip()
        try:
            pc = int(head, 16)
        except ValueError:
            continue
        if pc >= KERNEL_BASE and name in lookup(table, pc) and ":" in line:
            print(f"{per_pc[pc] / rounds:6.2f} {line.strip()}")


def main():
    trace, rounds, kernel_elf, pd_elfs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    counts = Counter()            # (tb, pc) -> executions
    parent = {}                   # union-find over user translation blocks

    def find(t):
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    kernel_entries = 0
    prev_user_tb = None
    in_kernel = True
    with open(trace, errors="replace") as f:
        for line in f:
            if not line.startswith("Trace"):
                continue
            parts = line.split()
            tb = parts[2]
            pc = int(parts[3][1:].split("/")[1], 16)
            counts[(tb, pc)] += 1
            if pc >= KERNEL_BASE:
                if not in_kernel:
                    kernel_entries += 1
                in_kernel = True
                prev_user_tb = None
                continue
            in_kernel = False
            if tb not in parent:
                parent[tb] = tb
            if prev_user_tb is not None:
                a, b = find(prev_user_tb), find(tb)
                if a != b:
                    parent[a] = b
            prev_user_tb = tb

    ktab = symbols(kernel_elf)
    ptabs = [(e, symbols(e)) for e in pd_elfs]
    total = sum(counts.values())
    kernel = Counter()
    groups = defaultdict(Counter)
    for (tb, pc), n in counts.items():
        if pc >= KERNEL_BASE:
            kernel[lookup(ktab, pc)] += n
        else:
            groups[find(tb)][pc] += n

    def show(title, per_function):
        s = sum(per_function.values())
        print(f"{title}: {s / rounds:8.1f} per round trip")
        for name, n in per_function.most_common():
            if n / rounds < 0.5:
                break
            print(f"    {n / rounds:8.1f}  {short(name)}")

    print(f"{total} instructions traced, {kernel_entries} kernel entries, {rounds} round trips\n")
    show("kernel", kernel)
    if os.environ.get("ANNOTATE"):
        annotate(kernel_elf, ktab, counts, rounds, os.environ["ANNOTATE"])
    for g, pcs in sorted(groups.items(), key=lambda kv: -sum(kv[1].values())):
        if sum(pcs.values()) / rounds < 1:
            continue
        print()
        for elf, tab in ptabs:
            per = Counter()
            for pc, n in pcs.items():
                per[lookup(tab, pc)] += n
            show(f"user code, read as {elf.rsplit('/', 1)[-1]}", per)


if __name__ == "__main__":
    main()

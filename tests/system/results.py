#!/usr/bin/env python3
"""Merges one benchmark test's figures into build/edgeos-results.json (read by tools/baseline/report.py).

    results.py RESULTS.json TEST LOG CPU GIC EL

Called by tests/system/run.sh for the benchmark tests (bench, fwp_1000) when they pass. The
side-by-side table only takes figures measured on the Linux baseline's board (cortex-a53, GICv2,
EL1); other configurations are kept under "by_config" and do not replace them.

fwp_1000 prints "bench: fork: median M p99 P instructions" (and "start (fork + first call +
destroy)"): EdgeOS fork is set against Linux fork + exit + wait, EdgeOS start against the Linux
variants that also run a program (vfork/fork + exec, posix_spawn, crun run). bench prints
"bench: NAME: N instructions per round trip", kept under "ipc".
"""
import json
import os
import re
import subprocess
import sys

BASELINE_BOARD = ("cortex-a53", "2", "1")
FWP = re.compile(r"^bench: (.+?): median (\d+) p99 (\d+) instructions")
IPC = re.compile(r"^bench: (.+?): (\d+) instructions per round trip")
# Linux variant -> (EdgeOS figure in the fwp log, how the table names it).
START = ("start (fork + first call + destroy)", "FWP start: fork + first call + destroy")
VS_LINUX = {
    "fork": ("fork", "FWP fork from a template"),
    "vfork_exec": START,
    "posix_spawn": START,
    "fork_exec": START,
    "crun_run": START,
}


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    path, test, log, cpu, gic, el = sys.argv[1:7]
    fwp, ipc = {}, {}
    with open(log, errors="replace") as f:
        for line in f:
            line = line.strip()
            m = FWP.match(line)
            if m:
                fwp[m.group(1)] = (int(m.group(2)), int(m.group(3)))
                continue
            m = IPC.match(line)
            if m:
                ipc[m.group(1)] = int(m.group(2))
    if not fwp and not ipc:
        return 0
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError):
        d = {}
    config = f"{cpu} gicv{gic} el{el}"
    section = {}
    for variant, (name, op) in VS_LINUX.items():
        if name in fwp:
            section.setdefault("process_start", {})[variant] = {
                "op": op, "median_instr": fwp[name][0], "p99_instr": fwp[name][1]}
    if ipc:
        section["ipc"] = {k: {"instr_per_round_trip": v} for k, v in ipc.items()}
    d.setdefault("by_config", {}).setdefault(config, {}).update(section)
    if (cpu, gic, el) == BASELINE_BOARD:
        for k, v in section.items():
            d.setdefault(k, {}).update(v)
        d["source"] = f"tests/system/run.sh, QEMU {config}, -icount shift=0, commit {commit()}"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

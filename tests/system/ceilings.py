#!/usr/bin/env python3
"""Checks a measurement test's figures against its ceilings (tests/system/NAME/ceilings).

Usage: ceilings.py CEILINGS LOG

Each non-comment line of CEILINGS is `PREFIX | MAX`: a log line starting with PREFIX (where
`*` stands for any text) must exist, and the first number after PREFIX must be at most MAX. The figures are instruction counts
under QEMU -icount, which repeat exactly from run to run, so a ceiling ~25% above today's figure
catches a regression without ever tripping on noise. Prints one line per figure; exits 1 if any
is missing or over its ceiling.
"""
import re
import sys


def main():
    ceilings_path, log_path = sys.argv[1], sys.argv[2]
    with open(log_path, errors="replace") as f:
        log = f.read().splitlines()
    bad = 0
    with open(ceilings_path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            prefix, _, limit = line.rpartition("|")
            prefix = prefix.strip()
            if not prefix or not limit.strip().isdigit():
                print(f"{ceilings_path}:{n}: expected `PREFIX | MAX`, got {line!r}")
                bad += 1
                continue
            limit = int(limit)
            pattern = re.compile(".*?".join(map(re.escape, prefix.split("*"))) + r"\D*(\d+)")
            m = next((m for m in map(pattern.match, log) if m), None)
            if not m:
                print(f"missing figure: {prefix!r}")
                bad += 1
            elif int(m.group(1)) > limit:
                print(f"over its ceiling: {prefix} {m.group(1)} > {limit} ({ceilings_path}:{n})")
                bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

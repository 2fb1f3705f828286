#!/usr/bin/env python3
"""Checks one loadgen JSON report against conditions given on the command line.

    check.py REPORT.json COND...

Each COND is `FIELD OP VALUE` in one word, FIELD a dotted path into the report's `result`
(`errors`, `latency_us.p50`), OP one of == != <= >= < >, VALUE a number; or `rate~PERCENT`
(throughput within PERCENT % of the offered rate); or `has=FIELD,FIELD` (top-level and result
fields present); or `points=N` (a sweep with N points). Prints one line per failed condition and
exits non-zero if any failed; prints a summary line of the point on success.
"""
import json
import operator
import re
import sys

OPERATORS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}

REQUIRED_RESULT = [
    "offered_rps", "duration_s", "sent", "completed", "throughput_rps", "gets", "sets", "hits", "misses",
    "errors", "timeouts", "latency_us", "get_latency_us", "set_latency_us", "send_lag_us", "error_samples",
]
REQUIRED_PERCENTILES = ["count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"]


def lookup(result, path):
    value = result
    for part in path.split("."):
        value = value[part]
    return value


def main():
    path, conditions = sys.argv[1], sys.argv[2:]
    try:
        with open(path) as handle:
            report = json.load(handle)
    except (OSError, ValueError) as error:
        print(f"  report {path} unreadable or not JSON: {error}")
        return 1
    result = report.get("result") or {}
    failures = []
    for condition in conditions:
        if condition == "schema":
            for field in ["tool", "version", "config", "workload", "result", "points"]:
                if field not in report:
                    failures.append(f"top-level field `{field}` missing")
            for field in REQUIRED_RESULT:
                if field not in result:
                    failures.append(f"result field `{field}` missing")
            for histogram in ["latency_us", "get_latency_us", "set_latency_us", "send_lag_us"]:
                for field in REQUIRED_PERCENTILES:
                    if not isinstance(result.get(histogram, {}).get(field), (int, float)):
                        failures.append(f"`{histogram}.{field}` missing or not a number")
            latency = result.get("latency_us", {})
            if latency and not (latency["min"] <= latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99_9"] <= latency["max"]):
                failures.append(f"percentiles out of order: {latency}")
            continue
        if condition.startswith("points="):
            want = int(condition.split("=", 1)[1])
            got = len(report.get("points", []))
            if got != want:
                failures.append(f"{got} points, wanted {want}")
            continue
        if condition.startswith("rate~"):
            tolerance = float(condition.split("~", 1)[1])
            offered, achieved = result["offered_rps"], result["throughput_rps"]
            off = abs(achieved - offered) / offered * 100
            if off > tolerance:
                failures.append(f"throughput {achieved:.0f}/s is {off:.2f} % off the offered {offered:.0f}/s (limit {tolerance} %)")
            continue
        match = re.fullmatch(r"([\w.]+)(==|!=|<=|>=|<|>)(-?[\d.]+)", condition)
        if not match:
            failures.append(f"cannot read condition `{condition}`")
            continue
        field, op, value = match.groups()
        try:
            actual = lookup(result, field)
        except (KeyError, TypeError):
            failures.append(f"field `{field}` missing")
            continue
        if not OPERATORS[op](actual, float(value)):
            failures.append(f"{field} = {actual}, wanted {op} {value}")
    for failure in failures:
        print(f"  {failure}")
    if result.get("error_samples") and failures:
        print(f"  error samples: {result['error_samples']}")
    if not failures and result:
        latency = result["latency_us"]
        print(
            f"  {result['throughput_rps']:.0f}/s, p50 {latency['p50']} us, p90 {latency['p90']} us, "
            f"p99 {latency['p99']} us, p99.9 {latency['p99_9']} us, errors {result['errors']}, "
            f"misses {result['misses']}, timeouts {result['timeouts']}, send lag p99 {result['send_lag_us']['p99']} us"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

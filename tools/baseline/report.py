#!/usr/bin/env python3
"""Writes the side-by-side table EdgeOS vs Linux (issue 7) as markdown.

    report.py --process-start PS.json [--memcached MC-N.json ...] [--edgeos build/edgeos-results.json]
              --out build/baseline/results.md [--svg build/baseline/memcached-latency.svg]
    report.py --merge-edgeos-memcached LOADGEN.json --instances N [--edgeos build/edgeos-results.json]
              (records a loadgen report of N EdgeOS memcached instances under "memcached")

PS.json and MC-N.json are run-guest.py's outputs. The EdgeOS figures come from a JSON file the
EdgeOS benchmarks write; every figure missing there shows as "pending". Its shape:

    {"source": "what produced it (command, commit)",
     "process_start": {"fork": {"op": "FWP fork from a template", "median_instr": 1300, "p99_instr": 1500},
                       "fork_exec": {...}, "vfork_exec": {...}, "posix_spawn": {...}, "crun_run": {...}},
     "memcached": {"300": {"p50_us": 40.0, "p99_us": 90.0, "throughput_rps": 2100000}}}

Keys of "process_start" are the Linux variants each EdgeOS operation is set against; "op" names the
EdgeOS operation. Ratios are Linux / EdgeOS (how many times fewer instructions EdgeOS needs).
"""
import argparse
import datetime
import json
import math
import os
import sys

# platform.md: Linux 6.1 cloud-arm64, QEMU 10 virt, cortex-a53, 1 GiB, -icount shift=0, 300 runs,
# medians in guest instructions.
REFERENCE = {"fork": 165_000, "vfork_exec": 125_000, "posix_spawn": 232_000, "fork_exec": 265_000}
LABELS = {
    "fork": "fork + child _exit + wait",
    "vfork_exec": "vfork + exec + wait",
    "posix_spawn": "posix_spawn + wait",
    "fork_exec": "fork + exec + wait",
    "crun_run": "container: crun run (namespaces, cgroup, exec) + wait",
}
ORDER = ["fork", "vfork_exec", "posix_spawn", "fork_exec", "crun_run"]


def fmt(n):
    if n is None:
        return "pending"
    if isinstance(n, float) and n < 100:
        return f"{n:.1f}"
    return f"{int(round(n)):,}".replace(",", " ")


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "pending"
    r = a / b
    return f"{r:,.0f}x".replace(",", " ") if r >= 10 else f"{r:.2f}x"


def find_metric(d, names):
    """The first numeric value under any of `names`, searching nested dictionaries."""
    if isinstance(d, dict):
        for n in names:
            if isinstance(d.get(n), (int, float)):
                return float(d[n])
        for v in d.values():
            r = find_metric(v, names)
            if r is not None:
                return r
    return None


P50 = ["p50_us", "median_us", "p50"]
P99 = ["p99_us", "p99"]
RPS = ["throughput_rps", "rps", "throughput"]


def human_us(v):
    if v >= 1e6:
        return f"{v / 1e6:g} s"
    if v >= 1e3:
        return f"{v / 1e3:g} ms"
    return f"{v:g} us"


def svg_plot(series, path, title):
    """Latency (log scale) versus instance count, one line per series; no plotting library needed.

    series: {"Linux p99": [(n, microseconds), ...], ...}; names ending in p50 are drawn dashed."""
    pts = [(n, v) for s in series.values() for n, v in s if v > 0]
    if not pts:
        return False
    w, h, left, right, top, bottom = 680, 380, 80, 150, 40, 60
    xs = sorted({n for n, _ in pts})
    lo = 10 ** math.floor(math.log10(min(v for _, v in pts)))
    hi = 10 ** math.ceil(math.log10(max(v for _, v in pts)))
    if hi <= lo:
        hi = lo * 10
    xi = {n: left + i * (w - left - right) / max(len(xs) - 1, 1) for i, n in enumerate(xs)}

    def y(v):
        return h - bottom - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (h - top - bottom)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{(w - right + left) / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
           f'<text x="{(w - right + left) / 2}" y="{h - 18}" text-anchor="middle">memcached instances (one process each)</text>',
           f'<text x="18" y="{(h - bottom + top) / 2}" transform="rotate(-90 18 {(h - bottom + top) / 2})" '
           'text-anchor="middle">latency (log scale)</text>']
    for n in xs:
        out.append(f'<text x="{xi[n]:.1f}" y="{h - bottom + 18}" text-anchor="middle">{n}</text>')
    v = lo
    while v <= hi * 1.001:
        out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - right}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{human_us(v)}</text>')
        v *= 10
    colours = {"Linux": "#c0392b", "EdgeOS": "#2471a3"}
    for i, (name, s) in enumerate(series.items()):
        s = sorted((n, v) for n, v in s if v > 0)
        if not s:
            continue
        c = colours.get(name.split()[0], "#229954")
        dash = ' stroke-dasharray="6 4"' if name.endswith("p50") else ""
        out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>'
                   % (c, dash, " ".join(f"{xi[n]:.1f},{y(v):.1f}" for n, v in s)))
        for n, v in s:
            out.append(f'<circle cx="{xi[n]:.1f}" cy="{y(v):.1f}" r="3" fill="{c}"/>')
        ly = top + 10 + 20 * i
        out.append(f'<line x1="{w - right + 15}" y1="{ly}" x2="{w - right + 45}" y2="{ly}" stroke="{c}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{w - right + 52}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def merge_edgeos_memcached(loadgen_json, n, edgeos_path):
    """Records the last point of a loadgen JSON report as EdgeOS's memcached figure for N."""
    with open(loadgen_json) as f:
        r = json.load(f)
    point = r["points"][-1] if r.get("points") else r.get("result", r)
    lat = point.get("latency_us", {})
    edgeos = {}
    if os.path.exists(edgeos_path):
        with open(edgeos_path) as f:
            edgeos = json.load(f)
    edgeos.setdefault("memcached", {})[str(n)] = {
        "p50_us": lat.get("p50"),
        "p99_us": lat.get("p99"),
        "throughput_rps": point.get("throughput_rps"),
        "errors": point.get("errors"),
        "timeouts": point.get("timeouts"),
        "source": f"tests/instances/run.sh N={n} ({datetime.date.today()})",
    }
    with open(edgeos_path, "w") as f:
        json.dump(edgeos, f, indent=1, sort_keys=True)


def main():
    if "--merge-edgeos-memcached" in sys.argv:
        mp = argparse.ArgumentParser()
        mp.add_argument("--merge-edgeos-memcached", required=True)
        mp.add_argument("--instances", type=int, required=True)
        mp.add_argument("--edgeos", default="build/edgeos-results.json")
        m = mp.parse_args()
        merge_edgeos_memcached(m.merge_edgeos_memcached, m.instances, m.edgeos)
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--process-start", required=True)
    ap.add_argument("--memcached", nargs="*", default=[])
    ap.add_argument("--memcached-skipped", default="", help="why the memcached comparison did not run")
    ap.add_argument("--edgeos", default="build/edgeos-results.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--svg")
    a = ap.parse_args()

    with open(a.process_start) as f:
        ps = json.load(f)
    edgeos, edgeos_note = {}, f"`{a.edgeos}` not found: EdgeOS figures pending"
    if os.path.exists(a.edgeos):
        try:
            with open(a.edgeos) as f:
                edgeos = json.load(f)
            edgeos_note = f"`{a.edgeos}`" + (f" ({edgeos['source']})" if edgeos.get("source") else "")
        except (OSError, json.JSONDecodeError) as e:
            edgeos_note = f"`{a.edgeos}` unreadable ({e}): EdgeOS figures pending"
    meta = ps["meta"]
    guest = meta.get("guest", {})
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "unknown")
    except OSError:
        pass
    board = meta.get("board", {})
    L = []
    L.append("# EdgeOS vs Linux: side-by-side results")
    L.append("")
    L.append(f"Generated {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `tools/baseline/compare.sh`.")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append(f"| host | {cpu_model}, {meta.get('host', {}).get('cpus')} cores, {meta.get('host', {}).get('uname', '')} |")
    L.append(f"| QEMU | {meta.get('qemu')} (TCG, no acceleration) |")
    L.append(f"| board | `virt`, gic-version={board.get('gic')}, cpu {board.get('cpu')}, {board.get('mem')} RAM, "
             f"EL2={board.get('el2')}, 1 vCPU, `-icount shift=0` (1 ns of guest time = 1 instruction) |")
    L.append(f"| QEMU command | `{meta.get('qemu_args')}` |")
    L.append(f"| Linux guest | {guest.get('kernel', '?')}, busybox {guest.get('busybox', '?')}, "
             f"memcached {guest.get('memcached', '?')}, crun {guest.get('crun', '?')}, glibc {guest.get('libc6', '?')} "
             "(Debian 12 arm64 packages), initramfs root |")
    L.append(f"| benchmark | `spawnbench`, static, {guest.get('cc', '?')}; launched program: {guest.get('exit0_bytes', '?')}-byte "
             "static binary that calls exit(0) |")
    L.append(f"| EdgeOS figures | {edgeos_note} |")
    L.append("")
    calib = next((r for r in ps["process_start"] if r["variant"] == "calib"), None)
    if calib:
        L.append(f"Method check: a 3-instruction loop run 1 000 000 times reads {fmt(calib['min_instr'])} "
                 f"instructions (minimum of {calib['n']}; expected 3 000 000 plus the timer reads).")
        L.append("")
    L.append("## Process start (guest instructions; median and p99 of "
             f"{next((r['n'] for r in ps['process_start'] if r['variant'] == 'fork'), '?')} runs)")
    L.append("")
    L.append("| Linux operation | Linux median | Linux p99 | platform.md median | EdgeOS operation | EdgeOS median "
             "| EdgeOS p99 | ratio (median) |")
    L.append("|---|---:|---:|---:|---|---:|---:|---:|")
    byv = {r["variant"]: r for r in ps["process_start"]}
    eps = edgeos.get("process_start", {}) if isinstance(edgeos.get("process_start"), dict) else {}
    for v in ORDER + [v for v in byv if v not in ORDER and v != "calib"]:
        r = byv.get(v)
        if r is None:
            continue
        e = eps.get(v, {}) if isinstance(eps.get(v), dict) else {}
        em, e99 = e.get("median_instr"), e.get("p99_instr")
        n_note = f" (n={r['n']})" if v == "crun_run" else ""
        L.append(f"| {LABELS.get(v, v)}{n_note} | {fmt(r['median_instr'])} | {fmt(r['p99_instr'])} | "
                 f"{fmt(REFERENCE.get(v)) if v in REFERENCE else '-'} | {e.get('op', 'pending')} | {fmt(em)} | "
                 f"{fmt(e99)} | {ratio(r['median_instr'], em)} |")
    L.append("")
    errs = list(ps.get("errors", []))

    L.append("## memcached, N instances (one process per instance)")
    L.append("")
    if a.memcached:
        series = {"Linux p99": [], "Linux p50": [], "EdgeOS p99": [], "EdgeOS p50": []}
        emc = edgeos.get("memcached", {}) if isinstance(edgeos.get("memcached"), dict) else {}
        rows, load_cmds = [], set()
        for path in a.memcached:
            if not os.path.exists(path):
                errs.append(f"{path}: missing (the run failed before writing it)")
                continue
            with open(path) as f:
                d = json.load(f)
            mc = d.get("memcached") or {}
            n = mc.get("instances")
            avail = {}
            for line in mc.get("memory", []):
                parts = line.split()
                if parts and parts[0] in ("before-memcached", "after-memcached") and "MemAvailable:" in parts:
                    avail[parts[0]] = int(parts[parts.index("MemAvailable:") + 1])
            per = ("%.2f MiB" % ((avail["before-memcached"] - avail["after-memcached"]) / 1024 / n)
                   if len(avail) == 2 and n and n >= 10 else "-")
            # Under load: the lowest MemAvailable the guest reported (BL-STAT) while driven.
            loaded = [st["memavail_kB"] for st in mc.get("guest_stats", []) if isinstance(st.get("memavail_kB"), int)]
            if loaded and "before-memcached" in avail and n and n >= 10:
                per += " / %.2f MiB" % ((avail["before-memcached"] - min(loaded)) / 1024 / n)
            checks = mc.get("checks", [])
            run = mc.get("run_cmd") or {}
            if run.get("cmd"):
                load_cmds.add(run["cmd"])
            lg = {}
            if run.get("json") and os.path.exists(run["json"]):
                with open(run["json"]) as f:
                    lg = json.load(f)
            res = lg.get("result") if isinstance(lg.get("result"), dict) else lg
            lat = res.get("latency_us", res) if isinstance(res, dict) else {}
            p50, p99 = find_metric(lat, P50), find_metric(lat, P99)
            tput = find_metric(res, RPS) if lg else None
            offered = res.get("offered_rps") if isinstance(res, dict) else None
            bad = (res.get("errors", 0) + res.get("timeouts", 0)) if isinstance(res, dict) and lg else None
            e = emc.get(str(n), {})
            ep50, ep99 = find_metric(e, P50), find_metric(e, P99)
            for name, val in (("Linux p99", p99), ("Linux p50", p50), ("EdgeOS p99", ep99), ("EdgeOS p50", ep50)):
                if val is not None:
                    series[name].append((n, val))
            nr = None if lg else (f"failed (exit {run.get('exit')})" if run.get("cmd") else "not run")
            rows.append(f"| {n} | {d['meta']['board'].get('mem')} | {mc.get('listening', 0)} | "
                        f"{sum(c['ok'] for c in checks)}/{len(checks)} ok | {per} | {nr or fmt(offered)} | "
                        f"{nr or fmt(tput)} | {nr or fmt(p50)} | {nr or fmt(p99)} | {nr or fmt(bad)} | "
                        f"{fmt(ep50)} | {fmt(ep99)} | {ratio(p99, ep99)} |")
            errs += [f"N={n}: {x}" for x in d.get("errors", [])]
        for c in sorted(load_cmds):
            L.append(f"Load (host, wall clock): `{c}`")
            L.append("")
        L.append("| N | guest RAM | listening | host set/get | guest memory per instance (idle / loaded) | offered req/s | Linux req/s "
                 "| Linux p50 (us) | Linux p99 (us) | errors + timeouts | EdgeOS p50 (us) | EdgeOS p99 (us) | ratio p99 |")
        L.append("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        L += rows
        L.append("")
        if a.svg and svg_plot({k: v for k, v in series.items() if v}, a.svg, "memcached latency vs instances"):
            L.append(f"Plot: `{os.path.relpath(a.svg, os.path.dirname(os.path.abspath(a.out)))}`")
            L.append("")
    else:
        L.append(f"Skipped: {a.memcached_skipped or 'no memcached runs given'}")
        L.append("")
    if errs:
        L.append("## Errors")
        L.append("")
        L += [f"- {x}" for x in errs]
        L.append("")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(L))
    print(f"[report] wrote {a.out}")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Boots the Linux baseline guest in QEMU and collects what it measures (issue 7).

    run-guest.py [--iters N] [--variants a,b] [--crun] [--mc N] [--out FILE.json] ...

QEMU is started through qemu/run.sh, the same board configuration EdgeOS boots with (virt, CPU,
GIC, RAM from the CPU/GIC/MEM/EL2 environment variables; NET=user: virtio-net on virtio-mmio
behind QEMU user networking), plus `-icount shift=0` as in EdgeOS's benchmarks, the guest's
kernel, initramfs and command line, and a QEMU monitor on a Unix socket. With memcached
instances, one host forwarding rule per instance (and protocol) is added through that monitor:
host 127.0.0.1:(BASE+i) -> guest 10.0.2.15:(11211+i). (With a qemu/run.sh that has no network
option, the rules go on a -netdev argument of our own instead.) The monitor also ends QEMU when
the guest stays up.

With --mc N, once all N instances listen, this script checks a set/get on a few of them from the
host (--check K instances), then runs --run-cmd if given (a load generator, say: it gets
BL_HOST, BL_PORT_BASE, BL_INSTANCES, BL_UDP and BL_RESULT_JSON in its environment), then quits
QEMU. --hold keeps the guest up until Ctrl-C (or SIGTERM) instead.

The JSON written to --out has "meta" (QEMU version and arguments, guest packages, memory),
"process_start" (one record per variant, from the guest's spawnbench) and "memcached".
Exit status: 0 if the guest ran everything without reporting an error, 1 otherwise.
"""
import argparse
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
GUEST_PORT_BASE = 11211
GUEST_ADDR = "10.0.2.15"
# Linux limits one argument to 128 KiB (MAX_ARG_STRLEN); beyond that the forwarding rules are
# added through the monitor instead of the -netdev argument.
MAX_NETDEV_ARG = 120 * 1024
# memcached's background threads (LRU crawler and maintainer, slab rebalancer) and its default
# hash table cost about 1 MiB per process; without them an instance costs about 1.05 MiB of guest
# memory instead of 2, so more instances fit in 1 GiB. They do nothing useful for the benchmark's
# small working set (the paper preloads 100 items).
LEAN_MEMCACHED = "no_lru_crawler,no_lru_maintainer,no_slab_reassign,hashpower=12"


def log(msg):
    print(f"[run-guest] {msg}", flush=True)


def memcached_check(host, port, key, udp=False, timeout=5.0):
    """A set then a get of one key over the text protocol; returns None if fine, else a reason."""
    value = f"v{port}-{random.randrange(1 << 30)}"
    if udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            for i, cmd in enumerate([f"set {key} 0 0 {len(value)}\r\n{value}\r\n", f"get {key}\r\n"]):
                s.sendto(bytes([0, i, 0, 0, 0, 1, 0, 0]) + cmd.encode(), (host, port))
                data, _ = s.recvfrom(65536)
                body = data[8:].decode(errors="replace")
                if i == 0 and not body.startswith("STORED"):
                    return f"udp set answered {body!r}"
                if i == 1 and value not in body:
                    return f"udp get answered {body!r}"
            return None
        except OSError as e:
            return f"udp: {e}"
        finally:
            s.close()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            f = s.makefile("rwb")
            f.write(f"set {key} 0 0 {len(value)}\r\n{value}\r\n".encode())
            f.flush()
            line = f.readline().decode().strip()
            if line != "STORED":
                return f"set answered {line!r}"
            f.write(f"get {key}\r\n".encode())
            f.flush()
            header = f.readline().decode().strip()
            data = f.readline().decode().strip()
            end = f.readline().decode().strip()
            if header != f"VALUE {key} 0 {len(value)}" or data != value or end != "END":
                return f"get answered {header!r} {data!r} {end!r}"
            return None
    except OSError as e:
        return f"tcp: {e}"


def port_free(host, port, kind):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def monitor_cmd(path, cmds, timeout=30.0):
    """Sends commands to the QEMU human monitor on a Unix socket; returns what it printed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    out = b""
    try:
        for c in cmds:
            s.sendall(c.encode() + b"\n")
        if cmds[-1] != "quit":
            s.sendall(b"info version\n")
            while b"\n(qemu)" not in out.split(b"info version", 1)[-1]:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        else:
            try:
                while s.recv(65536):
                    pass
            except OSError:
                pass
    finally:
        s.close()
    return out.decode(errors="replace")


def interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    # Ctrl-C and SIGTERM end QEMU cleanly (a background job may have SIGINT ignored).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--guest", default=os.path.join(REPO, "build/baseline/guest"),
                    help="folder with vmlinuz, initramfs.cpio.gz, guest.info (build-guest.sh's output)")
    ap.add_argument("--iters", type=int, default=10000, help="process-start iterations per variant (0: none)")
    ap.add_argument("--variants", default="fork,vfork_exec,posix_spawn,fork_exec")
    ap.add_argument("--crun", action="store_true", help="also time a container start (crun run)")
    ap.add_argument("--criters", type=int, default=0, help="container-start iterations (default iters/10)")
    ap.add_argument("--mc", type=int, default=0, help="memcached instances")
    ap.add_argument("--mc-udp", action="store_true", help="memcached also on UDP (forwarded too)")
    ap.add_argument("--mc-mem", type=int, default=16, help="memcached -m, MB")
    ap.add_argument("--mc-conns", type=int, default=64, help="memcached -c (default 64)")
    ap.add_argument("--mc-opts", default=LEAN_MEMCACHED,
                    help="memcached -o, comma-separated (default: %(default)s; '' for memcached's defaults)")
    ap.add_argument("--watch", type=int, default=10,
                    help="with --mc: the guest reports instances alive, free memory and OOM kills every "
                         "this many seconds (BL-STAT; 0: never)")
    ap.add_argument("--host-port-base", default=str(GUEST_PORT_BASE),
                    help="host port of instance 0 (instance i: base + i); 'auto': the first free range "
                         "from 11211 up, in steps of 1000")
    ap.add_argument("--check", type=int, default=4, help="instances to set/get from the host")
    ap.add_argument("--run-cmd", help="shell command to run on the host while memcached is up")
    ap.add_argument("--run-json", help="where --run-cmd writes its JSON results (recorded; in BL_RESULT_JSON)")
    ap.add_argument("--hold", action="store_true", help="keep the guest up until Ctrl-C")
    ap.add_argument("--timeout", type=float, default=0, help="seconds for the guest's own work "
                    "(default: 120 + what the iterations and instances need)")
    ap.add_argument("--out", help="write the results here (JSON)")
    ap.add_argument("--log", help="write the guest console here")
    ap.add_argument("--quiet", action="store_true", help="do not echo the guest console")
    a = ap.parse_args()

    kernel = os.path.join(a.guest, "vmlinuz")
    initrd = os.path.join(a.guest, "initramfs.cpio.gz")
    for f in (kernel, initrd):
        if not os.path.exists(f):
            sys.exit(f"[run-guest] {f} missing: run tools/baseline/build-guest.sh first")
    info = {}
    try:
        with open(os.path.join(a.guest, "guest.info")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                info[k] = v
    except OSError:
        pass

    host = "127.0.0.1"
    cmdline = ["console=ttyAMA0", "quiet", "loglevel=3", f"bl.iters={a.iters}", f"bl.variants={a.variants}",
               f"bl.crun={int(a.crun)}", f"bl.mc={a.mc}", f"bl.mcudp={int(a.mc_udp)}", f"bl.mcmem={a.mc_mem}",
               f"bl.mcconns={a.mc_conns}", f"bl.watch={a.watch}"]
    if a.mc_opts:
        if " " in a.mc_opts:
            sys.exit("[run-guest] --mc-opts: no spaces (comma-separated)")
        cmdline.append(f"bl.mcopts={a.mc_opts}")
    if a.criters:
        cmdline.append(f"bl.criters={a.criters}")
    tmp = tempfile.mkdtemp(prefix="edgeos-baseline-")
    mon = os.path.join(tmp, "monitor.sock")
    qemu_extra = ["-icount", "shift=0", "-initrd", initrd, "-append", " ".join(cmdline),
                  "-monitor", f"unix:{mon},server=on,wait=off"]
    late_rules, rules = [], []
    # qemu/run.sh's own network (NET=user: virtio-net on virtio-mmio behind user networking, the
    # setup EdgeOS boots with), if this version of it has one; no default forwarding rules.
    with open(os.path.join(REPO, "qemu/run.sh")) as f:
        runsh_net = "NET_FORWARD" in f.read()
    env = dict(os.environ)
    if runsh_net:
        env.update(NET="user", NET_FORWARD="")
    if a.mc > 0:
        protos = ["tcp", "udp"] if a.mc_udp else ["tcp"]
        def busy_ports(base):
            return [f"{p}/{base + i}" for i in range(a.mc) for p in protos
                    if not port_free(host, base + i, socket.SOCK_STREAM if p == "tcp" else socket.SOCK_DGRAM)]
        if a.host_port_base == "auto":
            # Below the ephemeral range (32768 up), where outgoing connections take their ports.
            a.host_port_base = next((b for b in range(11211, 32768 - a.mc, 1000) if not busy_ports(b)), 0)
            if not a.host_port_base:
                sys.exit("[run-guest] no free host port range found")
        else:
            a.host_port_base = int(a.host_port_base)
        busy = busy_ports(a.host_port_base)
        if busy:
            sys.exit(f"[run-guest] host ports in use: {' '.join(busy[:10])}{' ...' if len(busy) > 10 else ''}"
                     " (choose another --host-port-base)")
        rules = [f"{p}:{host}:{a.host_port_base + i}-{GUEST_ADDR}:{GUEST_PORT_BASE + i}"
                 for i in range(a.mc) for p in protos]
        if runsh_net:
            # qemu/run.sh sets up the NIC as EdgeOS has it; the rules go in through the monitor
            # (one per instance and protocol: too many for its NET_FORWARD, which checks each port
            # with a Python start of its own).
            late_rules = rules
        else:
            arg = "user,id=net0" + "".join(f",hostfwd={r}" for r in rules)
            if len(arg) > MAX_NETDEV_ARG:
                late_rules, arg = rules, "user,id=net0"
            qemu_extra += ["-netdev", arg, "-device", "virtio-net-device,netdev=net0"]
        # One listening socket per rule in QEMU, plus its own.
        need_fds = len(rules) + 256
        try:
            import resource
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft < need_fds:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(need_fds, soft), hard), hard))
        except (ImportError, ValueError, OSError) as e:
            log(f"cannot raise the open-file limit: {e}")
    qemu_bin = env.get("QEMU", "qemu-system-aarch64")
    try:
        qemu_version = (subprocess.run([qemu_bin, "--version"], capture_output=True, text=True).stdout.splitlines()
                        or ["unknown"])[0]
    except OSError as e:
        sys.exit(f"[run-guest] cannot run {qemu_bin}: {e} (tools/install-deps.sh installs QEMU)")
    argv = [os.path.join(REPO, "qemu/run.sh"), kernel] + qemu_extra
    meta = {
        "qemu": qemu_version,
        "board": {"machine": "virt", "cpu": env.get("CPU", "cortex-a53"), "gic": env.get("GIC", "2"),
                  "el2": env.get("EL2", "0"), "mem": env.get("MEM", "1G")},
        "qemu_args": ("NET=user NET_FORWARD='' " if runsh_net else "") + "qemu/run.sh vmlinuz " + " ".join(
            shlex.quote(x.replace(mon, "MONITOR").replace(initrd, "initramfs.cpio.gz")
                        if len(x) < 300 else x[:150] + f"...({len(rules)} forwarding rules)")
            for x in qemu_extra),
        "guest": info,
        "host": {"cpus": os.cpu_count(), "uname": " ".join(os.uname()[i] for i in (0, 2, 4))},
        "iters": a.iters,
    }
    if late_rules:
        meta["forwarding"] = f"{len(late_rules)} rules added with hostfwd_add through the QEMU monitor"
    if a.timeout <= 0:
        # Generous: about 1 s of host time per 2000 process starts, and ~0.1 s per instance.
        a.timeout = 120 + a.iters * len(a.variants.split(",")) / 1000 + (a.iters / 5 if a.crun else 0) + a.mc * 0.2
    log(f"booting: {' '.join(argv[:2])} (-icount shift=0, iters={a.iters}, memcached={a.mc}"
        f"{', udp' if a.mc_udp else ''}, crun={int(a.crun)})")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    results, errors, memlines, stats = [], [], [], []
    state = {"booted": None, "ready": None, "done": None}
    ready_evt, done_evt = threading.Event(), threading.Event()
    logf = open(a.log, "w") if a.log else None

    def reader():
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if logf:
                logf.write(line + "\n")
                logf.flush()
            if not a.quiet:
                print(f"  guest| {line}", flush=True)
            m = re.search(r"BL-(\w[\w-]*) ?(.*)", line)
            if not m:
                continue
            tag, rest = m.group(1), m.group(2)
            now = round(time.monotonic() - t0, 2)
            if tag == "RESULT":
                try:
                    results.append(json.loads(rest))
                except json.JSONDecodeError:
                    errors.append(f"unparsable result: {rest}")
            elif tag == "ERROR":
                errors.append(rest)
            elif tag == "MEM":
                memlines.append(rest)
            elif tag == "STAT":
                stat = {"t": now}
                for field in rest.split():
                    k, _, v = field.partition("=")
                    try:
                        stat[k] = int(v)
                    except ValueError:
                        stat[k] = v
                stats.append(stat)
            elif tag == "BOOTED":
                state["booted"] = now
                meta["guest_boot"] = rest
            elif tag == "MC-READY":
                state["ready"] = now
                meta["memcached_listening"] = int(rest.split()[0]) if rest.split() else 0
                ready_evt.set()
            elif tag == "DONE":
                state["done"] = now
                done_evt.set()
        done_evt.set()
        ready_evt.set()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    if not isinstance(a.host_port_base, int):
        a.host_port_base = int(a.host_port_base) if a.host_port_base != "auto" else 0
    mc = {"instances": a.mc, "udp": a.mc_udp, "host_port_base": a.host_port_base,
          "guest_port_base": GUEST_PORT_BASE}
    ok = True

    def quit_qemu():
        try:
            monitor_cmd(mon, ["quit"], timeout=10)
        except OSError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    try:
        if late_rules:
            for _ in range(200):
                if os.path.exists(mon) or proc.poll() is not None:
                    break
                time.sleep(0.05)
            try:
                out = monitor_cmd(mon, [f"hostfwd_add net0 {r}" for r in late_rules], timeout=120)
                bad = [ln for ln in out.splitlines() if "rror" in ln or "ould not" in ln or "nvalid" in ln]
                if bad:
                    errors.append(f"hostfwd_add: {len(bad)} rules failed: {bad[0][:200]}")
                log(f"{len(late_rules)} forwarding rules added through the QEMU monitor")
            except OSError as e:
                errors.append(f"QEMU monitor unreachable ({e}): QEMU exited {proc.poll()}")
        if a.mc > 0:
            if not ready_evt.wait(a.timeout):
                errors.append(f"memcached not ready after {a.timeout:.0f} s")
            elif done_evt.wait(10) and proc.poll() is None:
                mc["ready_after_s"] = state["ready"]
                mc["listening"] = meta.get("memcached_listening", 0)
                if mc["listening"] < a.mc:
                    errors.append(f"only {mc['listening']} of {a.mc} memcached instances listen")
                # The first and the last instance, and random others.
                idx = sorted({0, a.mc - 1} | set(random.sample(range(1, a.mc), max(min(a.check, a.mc) - 2, 0))))
                if a.check >= a.mc:
                    idx = list(range(a.mc))
                checks = []
                for i in idx:
                    port = a.host_port_base + i
                    t = time.monotonic()
                    why = memcached_check(host, port, f"baseline-key-{i}")
                    if a.mc_udp and why is None:
                        why = memcached_check(host, port, f"baseline-ukey-{i}", udp=True)
                    checks.append({"instance": i, "host_port": port, "ok": why is None, "error": why,
                                   "ms": round((time.monotonic() - t) * 1000, 1)})
                    if why:
                        errors.append(f"memcached instance {i} (host port {port}): {why}")
                mc["checks"] = checks
                log(f"memcached set/get from the host: {sum(c['ok'] for c in checks)}/{len(checks)} instances ok "
                    f"(instances {', '.join(str(c['instance']) for c in checks)})")
                if a.run_cmd:
                    cenv = dict(os.environ, BL_HOST=host, BL_PORT_BASE=str(a.host_port_base),
                                BL_INSTANCES=str(a.mc), BL_UDP=str(int(a.mc_udp)),
                                BL_RESULT_JSON=a.run_json or "")
                    log(f"running: {a.run_cmd}")
                    child = subprocess.Popen(a.run_cmd, shell=True, env=cenv, start_new_session=True)
                    try:
                        rc = child.wait()
                    finally:
                        if child.poll() is None:  # interrupted: end the command's whole group
                            os.killpg(child.pid, signal.SIGTERM)
                            child.wait()
                    mc["run_cmd"] = {"cmd": a.run_cmd, "exit": rc, "json": a.run_json}
                    if rc != 0:
                        errors.append(f"--run-cmd exited {rc}")
                    # One more BL-STAT after the load: instances still alive, memory in use.
                    if a.watch > 0 and proc.poll() is None:
                        seen, until = len(stats), time.monotonic() + 2 * a.watch + 5
                        while len(stats) == seen and time.monotonic() < until and proc.poll() is None:
                            time.sleep(0.2)
                if a.hold:
                    log(f"guest up: memcached on {host}:{a.host_port_base}..{a.host_port_base + a.mc - 1}; "
                        "Ctrl-C ends it")
                    try:
                        while proc.poll() is None:
                            time.sleep(1)
                    except KeyboardInterrupt:
                        pass
            quit_qemu()
        else:
            try:
                proc.wait(timeout=a.timeout)
            except subprocess.TimeoutExpired:
                errors.append(f"guest did not power off within {a.timeout:.0f} s")
                quit_qemu()
    except KeyboardInterrupt:
        errors.append("interrupted")
        quit_qemu()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        th.join(timeout=5)
        if logf:
            logf.close()
        try:
            os.unlink(mon)
        except OSError:
            pass
        os.rmdir(tmp)

    if state["done"] is None:
        errors.append("the guest did not finish its script (no BL-DONE)")
    if a.mc == 0 and proc.returncode != 0:
        errors.append(f"QEMU exited {proc.returncode}")
    meta["host_seconds"] = round(time.monotonic() - t0, 2)
    meta["guest_booted_after_s"] = state["booted"]
    meta["memory"] = memlines
    mc["memory"] = memlines
    if stats:
        # BL-STAT lines: instances alive, MemAvailable, OOM kills (every --watch seconds).
        mc["guest_stats"] = stats
        low = min(stats, key=lambda st: st.get("alive", a.mc) if isinstance(st.get("alive"), int) else a.mc)
        last = stats[-1]
        if isinstance(low.get("alive"), int) and low["alive"] < a.mc:
            errors.append(f"only {low['alive']} of {a.mc} memcached instances were alive at {low['t']} s "
                          f"(guest OOM kills so far: {last.get('oom_kills', '?')}, MemAvailable "
                          f"{last.get('memavail_kB', '?')} kB)")
    out = {"meta": meta, "process_start": results, "memcached": mc if a.mc else None, "errors": errors}
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    for r in results:
        log(f"{r['variant']:<12} n={r['n']:<6} median {r['median_instr']:>10,} instr   p99 {r['p99_instr']:>10,} instr")
    for e in errors:
        log(f"ERROR: {e}")
    log(f"finished in {meta['host_seconds']} s host time{'' if not errors else ' with errors'}")
    ok = not errors
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

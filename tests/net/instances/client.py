#!/usr/bin/env python3
"""Instance tenants through the network path (run by tests/net/instances/run.sh): memcached
served by featherweight instances the manager hands out per local port (policy port), next to
the static echo tenant. Prints `ok`/`FAIL` lines and `instances: N passed, M failed`."""
import argparse
import re
import socket
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--echo", type=int, required=True, help="host port forwarded to guest 5555")
ap.add_argument("--mc", type=int, required=True, help="host port forwarded to guest 11211")
ap.add_argument("--mc2", type=int, required=True, help="host port forwarded to guest 11212")
ap.add_argument("--vandal", type=int, required=True, help="host port forwarded to guest UDP 7100")
ap.add_argument("--log", required=True, help="the guest's console log")
ap.add_argument("--idle", type=float, default=3, help="the service's idle time (s)")
args = ap.parse_args()

passed = failed = 0


def check(name, fn):
    global passed, failed
    t0 = time.monotonic()
    try:
        detail = fn()
        print(f"ok   {name} ({time.monotonic() - t0:.1f}s): {detail}")
        passed += 1
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        print(f"FAIL {name}: {e}")
        failed += 1


def log():
    with open(args.log, errors="replace") as f:
        return f.read()


def tcp_session(port, request, until=b"END\r\n", timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request)
        data = b""
        while not data.endswith(until):
            d = s.recv(4096)
            if not d:
                break
            data += d
        return data
    finally:
        s.close()


def udp_request(port, command, timeout=2.0, request_id=1):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        header = request_id.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00"
        s.sendto(header + command, ("127.0.0.1", port))
        data, _ = s.recvfrom(65536)
        if data[:2] != header[:2]:
            raise AssertionError(f"reply to request {int.from_bytes(data[:2], 'big')}, not {request_id}")
        return data[8:]
    finally:
        s.close()


def assigned_count():
    return len(re.findall(r"net-virt: instance \d+ of service \d+ is tenant", log()))


def first_flow_tcp():
    # The first SYN to 11211 makes the virtualiser ASSIGN a fresh instance; it must be answered
    # at once (a lost SYN would cost the client a 1 s retransmission).
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", args.mc), timeout=5)
    connect = time.monotonic() - t0
    try:
        s.sendall(b"set k1 0 0 5\r\nhello\r\nget k1\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            d = s.recv(4096)
            if not d:
                break
            data += d
    finally:
        s.close()
    total = time.monotonic() - t0
    if data != b"STORED\r\nVALUE k1 0 5\r\nhello\r\nEND\r\n":
        raise AssertionError(f"unexpected reply {data!r}")
    if total > 0.9:
        raise AssertionError(f"took {total:.2f}s (connect {connect:.2f}s): the first packet waited for a retransmission")
    return f"set/get on a fresh instance in {total * 1000:.0f} ms"


def first_flow_udp():
    # 11212's first packet is a UDP datagram (no retransmission): it must reach the new instance.
    before = assigned_count()
    reply = udp_request(args.mc2, b"get k1\r\n", timeout=2.0)
    if reply != b"END\r\n":
        raise AssertionError(f"unexpected reply {reply!r}")
    if assigned_count() != before + 1:
        raise AssertionError("no new instance was assigned for port 11212")
    return "a fresh instance answered the flow's first datagram (k1 not there: its own store)"


def isolation():
    r = tcp_session(args.mc2, b"set k2 0 0 3\r\nabc\r\nget k1 k2\r\n")
    if r != b"STORED\r\nVALUE k2 0 3\r\nabc\r\nEND\r\n":
        raise AssertionError(f"11212 reply {r!r}")
    r = tcp_session(args.mc, b"get k1 k2\r\n")
    if r != b"VALUE k1 0 5\r\nhello\r\nEND\r\n":
        raise AssertionError(f"11211 reply {r!r}")
    # The same port over UDP and TCP is one instance.
    r = udp_request(args.mc, b"get k1\r\n", request_id=7)
    if r != b"VALUE k1 0 5\r\nhello\r\nEND\r\n":
        raise AssertionError(f"11211 UDP reply {r!r}")
    return "per-port instances keep separate stores; TCP and UDP of one port share one"


def echo():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"ping", ("127.0.0.1", args.echo))
    data, _ = s.recvfrom(100)
    if data != b"ping":
        raise AssertionError(f"echo {data!r}")
    r = tcp_session(args.echo, b"hello\n", until=b"hello\n")
    if r != b"hello\n":
        raise AssertionError(f"tcp echo {r!r}")
    return "the static echo tenant still serves UDP and TCP"


def many_connections():
    socks = [socket.create_connection(("127.0.0.1", args.mc), timeout=5) for _ in range(8)]
    try:
        for i, s in enumerate(socks):
            s.sendall(f"set c{i} 0 0 1\r\n{i % 10}\r\n".encode())
        for s in socks:
            if s.recv(100) != b"STORED\r\n":
                raise AssertionError("a connection got no STORED")
    finally:
        for s in socks:
            s.close()
    return "8 concurrent connections to one instance"


def idle_release():
    # Both memcached instances (ports 11211 and 11212) go idle; the one of 11212 may have been
    # released already while the tests above ran. Whichever clock sees it first drops it: the
    # virtualiser's (it RELEASEs) or the manager's (it retires it through the dead list).
    time.sleep(args.idle * 2 + 1.5)
    text = log()
    released = set(re.findall(r"instance (\d+) of fork 0 \(tenant \d+\) (?:released: idle|retired by the manager)", text))
    if len(released) < 2:
        raise AssertionError(f"instances {sorted(released)} of memcached released after {args.idle * 2 + 1.5:.1f}s idle (want 2)")
    before = assigned_count()
    r = tcp_session(args.mc, b"get k1\r\n")
    if r != b"END\r\n":
        raise AssertionError(f"after release, 11211 still has k1: {r!r}")
    if assigned_count() != before + 1:
        raise AssertionError("no fresh instance after the release")
    return f"{len(released)} idle instances released; the next flow got a fresh one"


def hostile_instance():
    n = len(re.findall(r"instance tenant \d+ broke its tx_active queue", log()))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"wake up", ("127.0.0.1", args.vandal))
    s.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        text = log()
        broke = len(re.findall(r"instance tenant \d+ broke its tx_active queue", text)) - n
        if broke >= 1 and re.search(r"released: broken", text):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the hostile instance was not cut off and released")
    tcp_session(args.mc, b"get k1\r\n")
    return "the instance that handed over a bad descriptor was dropped and released; memcached still serves"


check("memcached: a new flow gets a fresh instance, first SYN answered", first_flow_tcp)
check("memcached: a UDP flow's first datagram reaches its fresh instance", first_flow_udp)
check("memcached: instances per port", isolation)
check("memcached: concurrent connections", many_connections)
check("a hostile instance is cut off alone", hostile_instance)
check("echo beside instances", echo)
check("idle instances are released", idle_release)
print(f"instances: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)

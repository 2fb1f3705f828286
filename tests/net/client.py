#!/usr/bin/env python3
"""Host side of the network test: talks to the guest through QEMU's forwarded ports and
injects raw Ethernet frames through a QEMU `dgram` netdev on the same hub as the NIC.

    client.py --echo PORT[,PORT...] --sink PORT --inject-to PORT --inject-from PORT [--bench FILE]

Every check prints `ok NAME` or `FAIL NAME: why`; the last line is `client: N passed, M failed`
and the exit status is non-zero if anything failed. Every loop is bounded in count and time.
"""
import argparse
import random
import socket
import struct
import sys
import threading
import time

HOST = "127.0.0.1"
NODE_MAC = bytes.fromhex("525400123456")
INJECTOR_MAC = bytes.fromhex("02000000aa01")
NODE_IP = bytes([10, 0, 2, 15])
INJECTOR_IP = bytes([10, 0, 2, 99])

results = []


def check(name, fn):
    start = time.monotonic()
    try:
        detail = fn()
        secs = time.monotonic() - start
        print(f"ok   {name} ({secs:.1f}s){': ' + detail if detail else ''}", flush=True)
        results.append(True)
    except Exception as e:  # a failed check must not stop the others
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        results.append(False)


# ----- UDP and TCP echo -------------------------------------------------------------------

def udp_socket(timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    return s


def udp_exchange(s, port, payload, tries=3):
    """Sends `payload` and waits for the same bytes back (retrying a lost datagram)."""
    for _ in range(tries):
        s.sendto(payload, (HOST, port))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                data, _ = s.recvfrom(4096)
            except socket.timeout:
                break
            if data == payload:
                return
        # Lost (or only stale replies): try again.
    raise AssertionError(f"no echo of {len(payload)} bytes on UDP port {port}")


def udp_sizes(port):
    """Every payload size 1..1400, one at a time, each tagged with its sequence number."""
    s = udp_socket()
    for size in range(1, 1401):
        tag = struct.pack(">I", size)
        payload = (tag * (size // 4 + 1))[:size]
        udp_exchange(s, port, payload)
    return "1400 datagrams of 1..1400 bytes"


def udp_windows(port, window=32, rounds=40):
    """Bursts of `window` datagrams in flight; all must come back (in any order)."""
    s = udp_socket()
    rng = random.Random(port)
    lost = 0
    for r in range(rounds):
        sent = set()
        for i in range(window):
            size = rng.randint(8, 1400)
            payload = struct.pack(">II", r, i) + bytes(rng.getrandbits(8) for _ in range(size - 8))
            sent.add(payload)
            s.sendto(payload, (HOST, port))
        deadline = time.monotonic() + 3.0
        while sent and time.monotonic() < deadline:
            try:
                data, _ = s.recvfrom(4096)
            except socket.timeout:
                break
            sent.discard(data)
        lost += len(sent)
    if lost:
        raise AssertionError(f"{lost} of {window * rounds} datagrams not echoed")
    return f"{window * rounds} datagrams in bursts of {window}"


def tcp_echo_connection(port, messages, seed, errors):
    rng = random.Random(seed)
    try:
        with socket.create_connection((HOST, port), timeout=10) as c:
            c.settimeout(10)
            for _ in range(messages):
                size = rng.randint(1, 1400)
                payload = bytes(rng.getrandbits(8) for _ in range(size))
                c.sendall(payload)
                got = b""
                while len(got) < size:
                    chunk = c.recv(size - len(got))
                    if not chunk:
                        raise AssertionError("connection closed early")
                    got += chunk
                if got != payload:
                    raise AssertionError("echoed bytes differ")
            c.shutdown(socket.SHUT_WR)
            if c.recv(1) != b"":
                raise AssertionError("extra bytes after the echo")
    except Exception as e:
        errors.append(f"connection {seed}: {type(e).__name__}: {e}")


def tcp_concurrent(port, connections=6, messages=100):
    errors = []
    threads = [
        threading.Thread(target=tcp_echo_connection, args=(port, messages, port * 100 + i, errors))
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if any(t.is_alive() for t in threads):
        raise AssertionError("a connection hung")
    if errors:
        raise AssertionError("; ".join(errors[:3]))
    return f"{connections} concurrent connections x {messages} messages of 1..1400 bytes"


def tcp_sequential(port, count=20):
    errors = []
    for i in range(count):
        tcp_echo_connection(port, 3, 7000 + i, errors)
        if errors:
            raise AssertionError(errors[0])
    return f"{count} connections one after another"


def tcp_stream(port, total=256 * 1024):
    """One connection streaming `total` bytes while reading the echo back concurrently."""
    rng = random.Random(42)
    data = bytes(rng.getrandbits(8) for _ in range(total))
    got = bytearray()
    with socket.create_connection((HOST, port), timeout=10) as c:
        c.settimeout(10)

        def reader():
            while len(got) < total:
                chunk = c.recv(65536)
                if not chunk:
                    return
                got.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        c.sendall(data)
        t.join(60)
    if bytes(got) != data:
        raise AssertionError(f"stream: {len(got)} of {total} bytes came back intact={bytes(got) == data[:len(got)]}")
    return f"{total // 1024} KiB streamed"


# ----- raw frames ---------------------------------------------------------------------------

def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f">{len(b) // 2}H", b))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(payload, protocol, total=None, ihl=5, good_checksum=True, src=INJECTOR_IP):
    total = 20 + len(payload) if total is None else total
    h = bytearray(struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, 0, 64, protocol, 0, src, NODE_IP))
    c = checksum(bytes(h))
    if not good_checksum:
        c ^= 0x5555
    h[10:12] = struct.pack(">H", c)
    return bytes(h) + payload


def ether(payload, ethertype=0x0800, dst=NODE_MAC):
    return dst + INJECTOR_MAC + struct.pack(">H", ethertype) + payload


def arp_request(target=NODE_IP):
    return ether(
        struct.pack(">HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, INJECTOR_MAC, INJECTOR_IP, b"\0" * 6, target),
        0x0806,
        dst=b"\xff" * 6,
    )


def malformed_frames(echo_port):
    rng = random.Random(1)
    udp_ok = struct.pack(">HHHH", 40000, echo_port, 8 + 4, 0) + b"ping"
    tcp_hdr = struct.pack(">HHIIBBHHH", 40000, echo_port, 1, 0, 0x50, 0x02, 65535, 0, 0)
    frames = {
        # (No 0-byte frame: QEMU's dgram backend takes an empty datagram for end-of-stream.)
        "runts": [bytes(n) for n in range(1, 14)] + [NODE_MAC + INJECTOR_MAC],
        "truncated IPv4 header": [ether(ipv4(b"", 17)[:n]) for n in range(0, 20)],
        "IPv4 total length beyond the frame": [ether(ipv4(udp_ok, 17, total=1400))],
        "IPv4 total length below its header": [ether(ipv4(udp_ok, 17, total=10))],
        "IPv4 header length beyond the frame": [ether(ipv4(b"", 17, ihl=15))],
        "IPv4 header length below 5": [ether(ipv4(udp_ok, 17, ihl=3))],
        "IPv4 bad checksum": [ether(ipv4(udp_ok, 17, good_checksum=False))],
        "UDP length beyond the packet": [ether(ipv4(struct.pack(">HHHH", 1, echo_port, 900, 0) + b"x", 17))],
        "UDP length below its header": [ether(ipv4(struct.pack(">HHHH", 1, echo_port, 3, 0) + b"x", 17))],
        "truncated UDP header": [ether(ipv4(udp_ok[:n], 17)) for n in range(0, 8)],
        "truncated TCP header": [ether(ipv4(tcp_hdr[:n], 6)) for n in range(0, 20)],
        "TCP data offset beyond the segment": [ether(ipv4(tcp_hdr[:12] + b"\xf0" + tcp_hdr[13:], 6))],
        "truncated ARP": [ether(arp_request()[14:14 + n], 0x0806) for n in range(0, 28)],
        "ARP for another hardware type": [ether(b"\x00\x06" + arp_request()[16:], 0x0806)],
        "oversized (1515..2100 bytes)": [ether(bytes(n - 14)) for n in (1515, 1600, 2032, 2048, 2100)],
        "jumbo (9000 bytes)": [ether(ipv4(bytes(8980), 17))],
        "unknown ethertype": [ether(b"hello", 0x88B5)],
        "random garbage": [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 1514))) for _ in range(300)],
        "random garbage after a valid Ethernet header": [
            ether(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 1500))), rng.choice([0x0800, 0x0806]))
            for _ in range(300)
        ],
    }
    return frames


class Injector:
    def __init__(self, to_port, from_port):
        self.to = (HOST, to_port)
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind((HOST, from_port))
        self.rx.settimeout(0.2)
        self.tx = self.rx

    def send(self, frame):
        self.tx.sendto(frame, self.to)

    def drain(self):
        try:
            while True:
                self.rx.recvfrom(65536)
        except (socket.timeout, BlockingIOError):
            pass

    def wait_for(self, predicate, seconds=3.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame, _ = self.rx.recvfrom(65536)
            except socket.timeout:
                continue
            if predicate(frame):
                return frame
        return None


def is_arp_reply_to_injector(frame):
    return (
        len(frame) >= 42
        and frame[12:14] == b"\x08\x06"
        and frame[20:22] == b"\x00\x02"
        and frame[22:28] == NODE_MAC
        and frame[28:32] == NODE_IP
        and frame[38:42] == INJECTOR_IP
    )


def l2_arp(injector):
    injector.drain()
    injector.send(arp_request())
    if injector.wait_for(is_arp_reply_to_injector) is None:
        raise AssertionError("no ARP reply from the node to a raw ARP request")
    return "raw ARP request answered by the virtualiser"


def malformed(injector, echo_ports):
    sent = 0
    for name, frames in malformed_frames(echo_ports[0]).items():
        for f in frames:
            injector.send(f)
            sent += 1
        time.sleep(0.01)
    time.sleep(0.5)
    # The path must still work: raw ARP through the injector, then echo from the host.
    l2_arp(injector)
    s = udp_socket()
    for port in echo_ports:
        for size in (1, 100, 1400):
            udp_exchange(s, port, bytes([size % 256]) * size)
    for port in echo_ports:
        errors = []
        tcp_echo_connection(port, 5, 99, errors)
        if errors:
            raise AssertionError(errors[0])
    return f"{sent} malformed frames injected at L2; ARP, UDP and TCP echo still work"


def stalled_tenant(sink_port, echo_ports, flood=2000):
    """Floods the tenant that never drains its ring, then checks the others still echo."""
    s = udp_socket()
    for i in range(flood):
        s.sendto(struct.pack(">I", i) + bytes(100), (HOST, sink_port))
        if i % 200 == 0:
            time.sleep(0.01)
    for port in echo_ports:
        for i in range(50):
            udp_exchange(s, port, struct.pack(">I", i) + b"after the flood")
        errors = []
        tcp_echo_connection(port, 20, 123, errors)
        if errors:
            raise AssertionError(errors[0])
    # And while the flood goes on.
    stop = threading.Event()

    def flooder():
        f = udp_socket()
        n = 0
        while not stop.is_set() and n < 20000:
            f.sendto(bytes(64), (HOST, sink_port))
            n += 1
            if n % 50 == 0:
                time.sleep(0.001)

    t = threading.Thread(target=flooder)
    t.start()
    try:
        for port in echo_ports:
            for i in range(50):
                udp_exchange(s, port, struct.pack(">I", i) + b"during the flood")
    finally:
        stop.set()
        t.join(30)
    return f"{flood}+ datagrams to the stalled tenant; both echo tenants unaffected"


# ----- measurements -------------------------------------------------------------------------

def bench(port, out):
    s = udp_socket()
    payload = bytes(64)
    for _ in range(200):  # warm up
        udp_exchange(s, port, payload)
    rtts = []
    for _ in range(5000):
        t0 = time.perf_counter()
        udp_exchange(s, port, payload)
        rtts.append(time.perf_counter() - t0)
    rtts.sort()
    p50 = rtts[len(rtts) // 2] * 1e6
    p99 = rtts[int(len(rtts) * 0.99)] * 1e6
    # Throughput: windows of 32 datagrams in flight, for a fixed count.
    window, total = 32, 20000
    t0 = time.perf_counter()
    received = 0
    sent = 0
    while sent < total:
        for _ in range(window):
            s.sendto(payload, (HOST, port))
            sent += 1
        got = 0
        while got < window:
            try:
                s.recvfrom(2048)
            except socket.timeout:
                break
            got += 1
        received += got
    secs = time.perf_counter() - t0
    line = (
        f"UDP echo 64 B: round trip p50 {p50:.0f} us, p99 {p99:.0f} us (5000 sequential); "
        f"{received / secs:.0f} echoes/s with {window} in flight ({received}/{total} returned in {secs:.1f}s)"
    )
    with open(out, "w") as f:
        f.write(line + "\n")
    return line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--echo", required=True, help="host ports forwarded to the echo tenants")
    ap.add_argument("--sink", type=int, required=True)
    ap.add_argument("--inject-to", type=int, required=True)
    ap.add_argument("--inject-from", type=int, required=True)
    ap.add_argument("--bench")
    args = ap.parse_args()
    echo_ports = [int(p) for p in args.echo.split(",")]
    injector = Injector(args.inject_to, args.inject_from)

    if args.bench:
        check("benchmark", lambda: bench(echo_ports[0], args.bench))
    else:
        for port in echo_ports:
            check(f"UDP echo, payloads 1..1400, port {port}", lambda p=port: udp_sizes(p))
            check(f"UDP echo, bursts, port {port}", lambda p=port: udp_windows(p))
            check(f"TCP echo, concurrent connections, port {port}", lambda p=port: tcp_concurrent(p))
            check(f"TCP echo, sequential connections, port {port}", lambda p=port: tcp_sequential(p))
            check(f"TCP echo, 256 KiB stream, port {port}", lambda p=port: tcp_stream(p))
        check("both echo tenants at once", lambda: both_at_once(echo_ports))
        check("L2: ARP answered for the node", lambda: l2_arp(injector))
        check("L2: malformed frames dropped without harm", lambda: malformed(injector, echo_ports))
        check("a tenant that never drains its ring", lambda: stalled_tenant(args.sink, echo_ports))
    passed = sum(results)
    failed = len(results) - passed
    print(f"client: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def both_at_once(echo_ports):
    errors = []
    threads = [
        threading.Thread(target=tcp_echo_connection, args=(port, 50, 500 + i, errors))
        for port in echo_ports
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors or any(t.is_alive() for t in threads):
        raise AssertionError("; ".join(errors[:3]) or "a connection hung")
    return f"{len(threads)} connections spread over {len(echo_ports)} tenants"


if __name__ == "__main__":
    sys.exit(main())

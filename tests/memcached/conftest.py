"""Fixtures for the memcached differential tests: start Debian's memcached and our
memcached-host side by side on free ports, talk raw protocol to both, and compare."""

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OUR_BINARY = Path(os.environ.get("MEMCACHED_HOST", REPO / "target" / "release" / "memcached-host"))
TIMEOUT = 5.0


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found for TCP and UDP")


class Server:
    """One running server process (real memcached or ours)."""

    def __init__(self, name, argv, port):
        self.name = name
        self.port = port
        # stderr goes to a file, not a pipe: a chatty server must never block on a full pipe.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    if self.process.poll() is None:
                        self.process.kill()
                        self.process.wait()
                    self.log.seek(0)
                    stderr = self.log.read().decode(errors="replace")
                    self.stop()
                    raise RuntimeError(f"{name} did not start on port {port}: {' '.join(argv)}\n{stderr}")
                time.sleep(0.02)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def connect(self):
        return Conn(self)

    def udp(self, payload, request_id=0x1234, total=1, expect_reply=True):
        """Sends one request datagram; returns the reply datagrams (header, payload) in arrival
        order. With `expect_reply`, the payload should end with `mn`, and reading stops at `MN`."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(struct.pack(">HHHH", request_id, 0, total, 0) + payload, ("127.0.0.1", self.port))
            datagrams = []
            sock.settimeout(TIMEOUT if expect_reply else 0.3)
            try:
                while True:
                    data, _ = sock.recvfrom(65536)
                    datagrams.append((struct.unpack(">HHHH", data[:8]), data[8:]))
                    if expect_reply and b"".join(part for _, part in datagrams).endswith(b"MN\r\n"):
                        break
            except socket.timeout:
                if expect_reply:
                    raise AssertionError(f"{self.name}: UDP reply incomplete: {datagrams!r}")
            return datagrams


def start_memcached(memory_mb=64, extra=()):
    binary = shutil.which("memcached")
    if binary is None:
        pytest.fail("memcached is not installed (tests/memcached/run.sh installs it)")
    port = free_port()
    argv = [binary, "-p", str(port), "-U", str(port), "-l", "127.0.0.1", "-m", str(memory_mb), *extra]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return Server("memcached", argv, port)


def start_ours(memory_mb=64, extra=()):
    if not OUR_BINARY.exists():
        pytest.fail(f"{OUR_BINARY} is missing: build it with "
                    "cargo build --release -p edgeos-memcached --features host --bin memcached-host")
    port = free_port()
    argv = [str(OUR_BINARY), "--port", str(port), "--udp-port", str(port), "--memory-limit-mb", str(memory_mb), *extra]
    return Server("memcached-host", argv, port)


class Conn:
    """A TCP connection that sends requests and reads their complete replies."""

    def __init__(self, server):
        self.server = server
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.cas = {}
        self.cas_names = {}

    def close(self):
        self.sock.close()

    def send(self, data, pieces=None, pause=0.0):
        """Sends `data`, optionally cut into pieces of the given sizes with pauses between."""
        if not pieces:
            self.sock.sendall(data)
            return
        offset = 0
        for size in pieces:
            self.sock.sendall(data[offset:offset + size])
            offset += size
            if pause:
                time.sleep(pause)
        if offset < len(data):
            self.sock.sendall(data[offset:])

    def request(self, data, pieces=None, pause=0.0):
        """Sends `data` then `mn`, and returns everything before the final `MN`. A request that
        itself holds `mn` commands gets one `MN` per command first, so reading waits for all of
        them: a server may flush the first `MN` before it has parsed the rest."""
        self.send(data + b"mn\r\n", pieces, pause)
        noops = 1 + len(re.findall(rb"(?:^|(?<=\n))mn(?: [^\r\n]*)?\r\n", data))
        reply = self.read_until(lambda buffer: buffer.endswith(b"MN\r\n") and buffer.count(b"MN\r\n") >= noops)
        self.remember_cas(reply)
        return reply[:-4]

    def request_closing(self, data, pieces=None, pause=0.0):
        """Sends `data` and reads until the server closes; returns (reply, closed)."""
        try:
            self.send(data, pieces, pause)
        except OSError:
            return b"", True
        buffer = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return buffer, True
                buffer += chunk
        except socket.timeout:
            return buffer, False
        except ConnectionResetError:
            return buffer, True

    def read_until(self, done):
        buffer = b""
        while not done(buffer):
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise AssertionError(f"{self.server.name}: reply incomplete after {TIMEOUT}s: {buffer[-300:]!r}")
            if not chunk:
                raise AssertionError(f"{self.server.name}: connection closed; got {buffer[-300:]!r}")
            buffer += chunk
        return buffer

    def remember_cas(self, reply):
        for key, cas in re.findall(rb"^VALUE (\S+) \d+ \d+ (\d+)\r$", reply, flags=re.M):
            self.cas[key.decode()] = int(cas)
        for line in re.findall(rb"^(?:HD|VA|EX|NS|NF)[^\r\n]*", reply, flags=re.M):
            tokens = line.split(b" ")
            key = next((t[1:].decode() for t in tokens if t.startswith(b"k")), None)
            cas = next((int(t[1:]) for t in tokens if re.fullmatch(rb"c\d+", t)), None)
            if key is not None and cas is not None:
                self.cas[key] = cas

    def normalize(self, reply):
        """Replaces what may legitimately differ between servers: the version string, CAS values
        (renamed in order of first appearance), idle times, and TTLs to within a second."""
        def cas_name(number):
            return b"CAS%d" % self.cas_names.setdefault(int(number), len(self.cas_names) + 1)

        def rough(number):
            return b"%d" % ((int(number) + 2) // 5 * 5)

        lines = []
        for line in reply.split(b"\r\n"):
            line = re.sub(rb"^VERSION .*", b"VERSION <version>", line)
            line = re.sub(rb"^(VALUE \S+ \d+ \d+) (\d+)$", lambda m: m.group(1) + b" " + cas_name(m.group(2)), line)
            if re.match(rb"^(HD|VA|EN|NF|NS|EX)( |$)", line):
                line = re.sub(rb" c(\d+)", lambda m: b" c" + cas_name(m.group(1)), line)
                line = re.sub(rb" t(\d+)", lambda m: b" t~" + rough(m.group(1)), line)
                line = re.sub(rb" l\d+", b" l<idle>", line)
            if line.startswith(b"ME "):
                line = re.sub(rb"cas=(\d+)", lambda m: b"cas=" + cas_name(m.group(1)), line)
                line = re.sub(rb"exp=-(\d+)", lambda m: b"exp=-~" + rough(m.group(1)), line)
                line = re.sub(rb"la=\d+", b"la=<idle>", line)
            lines.append(line)
        return b"\r\n".join(lines)


class Pair:
    """The same session on real memcached and on ours, step by step."""

    def __init__(self, reference, ours):
        self.reference = reference
        self.ours = ours
        self.conns = (reference.connect(), ours.connect())

    def reconnect(self):
        for conn in self.conns:
            conn.close()
        self.conns = (self.reference.connect(), self.ours.connect())

    def step(self, data, pieces=None, pause=0.0):
        """Sends one request (bytes, or a function of the server's CAS map giving bytes) to both
        and asserts the normalized replies are identical; returns our raw reply."""
        replies = []
        for conn in self.conns:
            payload = data(conn.cas) if callable(data) else data
            replies.append(conn.request(payload, pieces, pause))
        expected, actual = (conn.normalize(reply) for conn, reply in zip(self.conns, replies))
        assert actual == expected, f"request {shorten(data)}\n memcached: {shorten(expected)}\n ours:      {shorten(actual)}"
        return replies[1]

    def steps(self, *requests):
        for request in requests:
            self.step(request)

    def closing_step(self, data, pieces=None, pause=0.0):
        """A request after which both servers should behave the same about closing."""
        results = [conn.request_closing(data, pieces, pause) for conn in self.conns]
        assert results[1] == results[0], f"request {shorten(data)}\n memcached: {results[0]!r}\n ours:      {results[1]!r}"
        self.reconnect()
        return results[1]


def shorten(value, limit=600):
    if callable(value):
        return "<request built from CAS values>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit // 2] + " ... " + text[-limit // 2:]


@pytest.fixture
def servers(request):
    """Starts memcached and ours with the same settings; yields a factory for more pairs."""
    started = []

    def start(memory_mb=64, reference_extra=(), our_extra=()):
        reference = start_memcached(memory_mb, reference_extra)
        started.append(reference)
        ours = start_ours(memory_mb, our_extra)
        started.append(ours)
        return reference, ours

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def pair(servers):
    reference, ours = servers()
    session = Pair(reference, ours)
    yield session
    for conn in session.conns:
        conn.close()

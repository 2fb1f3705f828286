"""The memcached tenant PD in QEMU against Debian's memcached on the host.

The raw-protocol cases of tests/memcached/test_protocol.py run unchanged, with the EdgeOS side
being the memcached PD reached through QEMU's hostfwd (MEMCACHED_QEMU_PORT, TCP and UDP) instead
of a fresh memcached-host process. The QEMU instance lives for the whole run, so before each case
its items are flushed and its counters reset; the reference memcached gets the PD's memory limit
(MEMCACHED_QEMU_MB, 16 MiB). Cases that need another configuration (a 4 MiB limit, -M) are
skipped. Then a pymemcache session written for this test: every classic command, expiry with
real waiting, noreply, stats, a 500 KB value; and UDP with the 8-byte frame header."""

import os
import re
import socket
import struct
import sys
import time
from pathlib import Path

import pytest
from pymemcache.client.base import Client

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "memcached"))

import conftest as shared  # noqa: E402  (tests/memcached/conftest.py: Server, Pair, start_memcached)
from conftest import Pair, Server, start_memcached  # noqa: E402
# test_stats first: its `stats items` / `stats slabs` comparisons need slab classes no earlier
# case has used (a flush empties the store but, as in memcached, classes stay in the reports).
# pytest runs a module's tests in the order they appear in its namespace.
from test_protocol import test_stats  # noqa: E402,F401  (collected here, with this module's fixtures)
from test_protocol import (  # noqa: E402,F401
    test_delete_incr_decr,
    test_item_size_limit,
    test_line_length_limits,
    test_meta_arithmetic,
    test_meta_binary_keys,
    test_meta_debug_and_noop,
    test_meta_delete_and_stale,
    test_meta_get,
    test_meta_set,
    test_other_commands,
    test_pipelining_and_partial_reads,
    test_pymemcache_session,
    test_retrieval_commands,
    test_storage_commands,
    test_storage_errors,
)

PORT = int(os.environ.get("MEMCACHED_QEMU_PORT", "11211"))
MEMORY_MB = int(os.environ.get("MEMCACHED_QEMU_MB", "16"))
# QEMU's user networking adds latency; give replies more time than on the host.
shared.TIMEOUT = 15.0


class QemuServer(Server):
    """The memcached PD: no process to start or stop, only an address."""

    def __init__(self, port):  # noqa: super().__init__ would start a process
        self.name = "edgeos-qemu"
        self.port = port

    def stop(self):
        pass


def reset_qemu():
    """Empties the PD's store and zeroes its counters, so each case starts as on a fresh server."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=shared.TIMEOUT) as sock:
        sock.sendall(b"flush_all\r\nstats reset\r\nmn\r\n")
        reply = b""
        while not reply.endswith(b"MN\r\n"):
            chunk = sock.recv(4096)
            assert chunk, f"QEMU closed the connection during reset: {reply!r}"
            reply += chunk
    assert reply == b"OK\r\nRESET\r\nMN\r\n", reply


@pytest.fixture
def servers():
    """Like tests/memcached's fixture, with the QEMU PD as `ours`."""
    started = []

    def start(memory_mb=64, reference_extra=(), our_extra=()):
        if memory_mb != 64 or our_extra or reference_extra:
            pytest.skip("the PD in QEMU has one fixed configuration")
        if started:
            pytest.skip("needs two independent servers; the QEMU system has one memcached")
        # The PD serves TCP_SOCKETS (32) connections at once and reports that as maxconns.
        reference = start_memcached(MEMORY_MB, ["-c", "32"])
        started.append(reference)
        reset_qemu()
        return reference, QemuServer(PORT)

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


def test_expiry_relative_absolute_and_touch(pair):
    """tests/memcached's expiry case without its second server: exptimes relative, absolute
    (unix time, so the PD's RTC must be right) and negative, touch/gat/mg T, with real waiting."""
    now = int(time.time())
    pair.steps(
        b"set rel 0 2 1\r\nr\r\nset abs 0 %d 1\r\na\r\nset neg 0 -1 1\r\nn\r\nset keep 0 100 1\r\nk\r\n" % (now + 2),
        b"set past 0 %d 1\r\np\r\nset never 0 0 1\r\nv\r\nms mrel 1 T2\r\nm\r\n" % (now - 10),
        b"get rel abs neg keep past never mrel\r\n",
        b"set tch 0 100 1\r\nt\r\ntouch tch 2\r\nset gt 0 100 1\r\ng\r\ngat 2 gt\r\nmg mt v T2\r\n",
    )
    time.sleep(3.5)
    pair.steps(
        b"get rel abs neg keep past never mrel tch gt\r\n",
        b"mg rel\r\nmg keep t\r\nadd rel 0 0 1\r\nR\r\nreplace abs 0 0 1\r\nA\r\nget rel abs\r\n",
    )


def test_delayed_flush(pair):
    pair.steps(b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nflush_all 3\r\nget a b\r\n")
    time.sleep(3.5)
    pair.steps(b"get a b\r\nset c 0 0 1\r\n3\r\nget c\r\n")


def test_eviction_at_the_memory_limit():
    """tests/memcached's eviction case at the PD's limit: 1000-byte items well past 16 MiB; the
    frequently read key survives, the oldest go, and about as many stay as in memcached -m 16."""
    from test_protocol import fill, present_keys, stats_of

    count = 24000
    reference = start_memcached(MEMORY_MB, ["-c", "32"])
    reset_qemu()
    results = []
    try:
        for server in (reference, QemuServer(PORT)):
            conn = server.connect()
            assert fill(conn, count, value=b"e" * 1000) == [b"STORED"] * count, f"{server.name}: not every set was stored"
            present = present_keys(conn, count)
            results.append((present, int(stats_of(conn)["evictions"])))
            conn.close()
    finally:
        reference.stop()
    (reference_present, reference_evictions), (present, evictions) = results
    assert 0 in present, "the frequently read key survives"
    assert 1 not in present and 2000 not in present, "old keys are evicted first"
    assert set(range(count - 1000, count)) <= set(present), "the newest keys are kept"
    assert abs(len(present) - len(reference_present)) <= len(reference_present) // 50, (len(present), len(reference_present))
    assert evictions > 0 and abs(evictions - reference_evictions) <= reference_evictions // 50, (evictions, reference_evictions)


def test_rtc_time():
    """The PD's clock is the host's unix time (PL031): `stats` time within a few seconds."""
    reset_qemu()
    with socket.create_connection(("127.0.0.1", PORT), timeout=shared.TIMEOUT) as sock:
        sock.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += sock.recv(65536)
    stats = dict(line.split(" ", 2)[1:] for line in reply.decode().split("\r\n") if line.startswith("STAT "))
    assert abs(int(stats["time"]) - time.time()) < 5, stats["time"]
    assert int(stats["limit_maxbytes"]) == MEMORY_MB << 20


def test_pymemcache_commands():
    """A pymemcache session covering every classic command, checked against known answers."""
    reset_qemu()
    c = Client(("127.0.0.1", PORT), default_noreply=False, connect_timeout=5, timeout=15)
    assert c.version().startswith(b"1.6.18")
    assert c.set("k", b"v1", flags=3) is True
    assert c.get("k") == b"v1"
    assert c.add("k", b"x") is False
    assert c.add("new", b"n") is True
    assert c.replace("nope", b"x") is False
    assert c.replace("new", b"n2") is True
    assert c.append("k", b"-tail") is True
    assert c.prepend("k", b"head-") is True
    assert c.get("k") == b"head-v1-tail"
    value, cas = c.gets("k")
    assert value == b"head-v1-tail"
    assert c.cas("k", b"swapped", cas) is True
    assert c.cas("k", b"again", cas) is False
    assert c.cas("missing", b"x", 1) is None
    assert c.get_many(["k", "new", "missing"]) == {"k": b"swapped", "new": b"n2"}
    assert c.gets_many(["k"])["k"][0] == b"swapped"
    # gat / gats (pymemcache has no method for them: raw commands).
    # (raw_command returns the reply up to its end token, without it.)
    assert c.raw_command("gat 100 k", b"END\r\n") == b"VALUE k 0 7\r\nswapped\r\n"
    reply = c.raw_command("gats 100 k missing", b"END\r\n")
    assert reply.startswith(b"VALUE k 0 7 ") and reply.endswith(b"\r\nswapped\r\n"), reply
    assert c.touch("k", 100) is True
    assert c.touch("missing", 100) is False
    assert c.set("n", b"10") is True
    assert c.incr("n", 5) == 15
    assert c.decr("n", 20) == 0
    assert c.incr("n", 2**64 - 1) == 2**64 - 1
    assert c.incr("n", 2) == 1
    assert c.incr("missing", 1) is None
    assert c.delete("n") is True
    assert c.delete("n") is False
    # noreply: nothing comes back, the store still happens.
    assert c.set("quiet", b"q", noreply=True) is True
    assert c.delete("new", noreply=True) is True
    assert c.get_many(["quiet", "new"]) == {"quiet": b"q"}
    # Expiry with a short exptime and real waiting.
    assert c.set("short", b"s", expire=1) is True
    assert c.set("long", b"l", expire=100) is True
    assert c.get("short") == b"s"
    time.sleep(2.2)
    assert c.get("short") is None
    assert c.get("long") == b"l"
    # A large value, over TCP in many segments both ways.
    big = bytes(range(256)) * 2000  # 512000 bytes
    assert c.set("big", big) is True
    assert c.get("big") == big
    assert c.set("huge", b"h" * 1048000) is True
    assert len(c.get("huge")) == 1048000
    with pytest.raises(Exception, match="object too large"):
        c.set("toohuge", b"h" * 2000000)
    stats = c.stats()
    for name in (b"cmd_get", b"get_hits", b"get_misses", b"curr_items", b"uptime", b"curr_connections"):
        assert name in stats, name
    assert stats[b"version"] == "1.6.18-edgeos" or stats[b"version"] == b"1.6.18-edgeos"
    assert int(stats[b"get_hits"]) > 0
    assert c.flush_all() is True
    assert c.get_many(["k", "quiet", "big", "long"]) == {}
    c.quit()


def test_many_connections():
    """Several clients at once, each with its own connection, interleaved."""
    reset_qemu()
    clients = [Client(("127.0.0.1", PORT), connect_timeout=5, timeout=15) for _ in range(8)]
    for index, client in enumerate(clients):
        assert client.set(f"conn{index}", b"%d" % index, noreply=False) is True
    for index, client in enumerate(reversed(clients)):
        assert client.get(f"conn{7 - index}") == b"%d" % (7 - index)
    for client in clients:
        client.quit()


def test_udp(pair):
    """tests/memcached's UDP case, with the large values stored over TCP: a request must fit in
    one Ethernet frame here (the virtualiser routes by UDP port and IPv4 fragments after the
    first carry none; memcached's UDP clients send single-datagram requests anyway)."""
    reference, ours = pair.reference, pair.ours
    pair.step(b"set u 0 0 3000\r\n" + b"z" * 3000 + b"\r\nset big 0 0 30000\r\n" + b"b" * 30000 + b"\r\n")
    requests = [
        b"set v 0 0 1\r\nv\r\n",
        b"get u v nx\r\n",
        b"get v nx v\r\ngets v\r\n",
        b"get nx\r\nmg v v\r\nms w 2 T0\r\nww\r\nmg w v t\r\n",
        b"set n 0 0 1 noreply\r\n5\r\nincr n 3\r\ndelete v\r\nget v\r\n",
        b"get big big\r\n",
        b"bogus\r\nversion\r\n",
    ]
    for payload in requests:
        replies = [server.udp(payload + b"mn\r\n") for server in (reference, ours)]
        joined = [b"".join(part for _, part in datagrams) for datagrams in replies]
        # (CAS values are compared by shape: resetting the PD's store consumed one.)
        normalized = [re.sub(rb"VERSION [^\r]*", b"VERSION <version>", reply) for reply in joined]
        normalized = [re.sub(rb"^(VALUE \S+ \d+ \d+) \d+\r$", rb"\1 <cas>\r", reply, flags=re.M) for reply in normalized]
        assert normalized[1] == normalized[0], f"UDP {payload[:60]!r}"
        ours_datagrams = replies[1]
        for index, (header, part) in enumerate(ours_datagrams):
            assert header == (0x1234, index, len(ours_datagrams), 0)
            assert 8 + len(part) <= 1400
    assert len(replies[1]) == (len(joined[1]) + 1391) // 1392
    for server in (reference, ours):
        assert server.udp(b"get v\r\nmn\r\n", total=2, expect_reply=False) == []


def udp_request(payload, request_id):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(struct.pack(">HHHH", request_id, 0, 1, 0) + payload, ("127.0.0.1", PORT))
        parts = {}
        total = None
        while total is None or len(parts) < total:
            data, _ = sock.recvfrom(65536)
            rid, seq, total, reserved = struct.unpack(">HHHH", data[:8])
            assert rid == request_id and reserved == 0
            parts[seq] = data[8:]
        return b"".join(parts[i] for i in range(total)), total


def test_udp_get_set():
    reset_qemu()
    assert udp_request(b"set ukey 5 0 5\r\nhello\r\n", 7) == (b"STORED\r\n", 1)
    assert udp_request(b"get ukey\r\n", 8) == (b"VALUE ukey 5 5\r\nhello\r\nEND\r\n", 1)
    # A reply of several datagrams, reassembled by sequence number.
    # (A request must fit in one frame; a reply may take several datagrams.)
    value = b"u" * 1400
    assert udp_request(b"set ulong 0 0 1400\r\n" + value + b"\r\n", 9) == (b"STORED\r\n", 1)
    client = Client(("127.0.0.1", PORT), timeout=15, default_noreply=False)
    assert client.get("ukey") == b"hello"
    assert client.set("ulong", value * 4, noreply=False) is True
    client.quit()
    reply, datagrams = udp_request(b"get ulong\r\n", 10)
    assert reply == b"VALUE ulong 0 5600\r\n" + value * 4 + b"\r\nEND\r\n" and datagrams == 5, (len(reply), datagrams)

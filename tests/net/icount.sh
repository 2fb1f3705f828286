#!/usr/bin/env bash
# Instructions per packet through the driver and the virtualiser, under `-icount shift=0`
# (one counter tick = 16 instructions at 62.5 MHz). Called by `tests/net/run.sh icount` with
# the system booted: sends UDP echoes (64-byte payloads, 32 in flight) until each PD has
# printed two more statistics lines (every 16384 frames), then divides the handler ticks
# between the last two lines by the frames between them.
#   icount.sh HOST_PORT LOG
set -uo pipefail
port=$1
log=$2
python3 - "$port" "$log" <<'PY'
import re, socket, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)

def stats(prefix, frames_key):
    pat = re.compile(prefix + r": stats: .*?" + frames_key + r" (\d+) .*handler_ticks (\d+)")
    return [(int(m.group(1)), int(m.group(2))) for m in pat.finditer(open(log, errors="replace").read())]

deadline = time.monotonic() + 600
sent = 0
while time.monotonic() < deadline and sent < 200_000:
    for _ in range(32):
        s.sendto(bytes(64), ("127.0.0.1", port))
        sent += 1
    for _ in range(32):
        try:
            s.recvfrom(2048)
        except socket.timeout:
            break
    if sent % 4096 == 0 and len(stats("virtio-net", "received")) >= 3 and len(stats("net-virt", "frames")) >= 3:
        break
d, v = stats("virtio-net", "received"), stats("net-virt", "frames")
if len(d) < 3 or len(v) < 3:
    print(f"icount: not enough statistics lines (driver {len(d)}, virtualiser {len(v)})")
    sys.exit(1)
def per_frame(lines):
    (f0, t0), (f1, t1) = lines[-2], lines[-1]
    return (t1 - t0) * 16 / (f1 - f0)
drv, virt = per_frame(d), per_frame(v)
print(f"instructions per echoed packet (one frame in, one out), handler code incl. its system calls:")
print(f"  driver      {drv:8.0f}")
print(f"  virtualiser {virt:8.0f}")
print(f"  together    {drv + virt:8.0f}   ({sent} echoes sent)")
PY

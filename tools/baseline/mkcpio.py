#!/usr/bin/env python3
"""Packs a directory into a gzip-compressed initramfs (cpio "newc" format), without root.

    mkcpio.py SRC_DIR OUT.cpio.gz

Every file is stored as owned by root. /dev/console and /dev/null are added as character devices,
which a non-root host cannot create in SRC_DIR itself (the kernel needs /dev/console to give init
its standard streams). Entries are sorted and timestamps zeroed, so the same tree gives the same
bytes.
"""
import gzip
import os
import stat
import sys


def header(ino, mode, nlink, size, rdev_major, rdev_minor, name):
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev_major, rdev_minor, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def pad4(n):
    return (4 - n % 4) % 4


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    entries = []  # (name, mode, data, major, minor)
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            st = os.lstat(path)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                entries.append((rel, stat.S_IFLNK | 0o777, os.readlink(path).encode(), 0, 0))
            elif stat.S_ISDIR(st.st_mode):
                entries.append((rel, stat.S_IFDIR | perm, b"", 0, 0))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entries.append((rel, stat.S_IFREG | perm, f.read(), 0, 0))
    names = {e[0] for e in entries}
    if "dev" not in names:
        entries.append(("dev", stat.S_IFDIR | 0o755, b"", 0, 0))
    entries.append(("dev/console", stat.S_IFCHR | 0o600, b"", 5, 1))
    entries.append(("dev/null", stat.S_IFCHR | 0o666, b"", 1, 3))
    entries.sort(key=lambda e: e[0])
    buf = bytearray()
    for ino, (name, mode, data, major, minor) in enumerate(entries, start=1):
        nlink = 2 if stat.S_ISDIR(mode) else 1
        nb = name.encode()
        h = header(ino, mode, nlink, len(data), major, minor, nb)
        buf += h + nb + b"\0"
        buf += b"\0" * pad4(len(h) + len(nb) + 1)
        buf += data + b"\0" * pad4(len(data))
    trailer = b"TRAILER!!!"
    h = header(0, 0, 1, 0, 0, 0, trailer)
    buf += h + trailer + b"\0"
    buf += b"\0" * pad4(len(h) + len(trailer) + 1)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(gzip.compress(bytes(buf), compresslevel=6, mtime=0))
    os.replace(tmp, out)
    print(f"[build-guest] initramfs {out}: {len(entries)} entries, {len(buf) >> 10} KiB uncompressed")


if __name__ == "__main__":
    main()

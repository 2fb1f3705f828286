#!/usr/bin/env python3
"""Writes stand-in PD programs for a system description, so that `edgeos build` can be tested on
descriptions whose real programs we do not have (e.g. sdfgen output for sDDF systems).

Each program is an aarch64 ELF executable with a code page at 0x200000 and a data segment holding
every variable the description asks the builder to patch into that program (`setvar_*`
attributes and `<setvar>` symbols), 8 bytes each, plus the runtime's variables.

Usage: fake_programs.py SYSTEM.xml OUTDIR
"""
import os
import struct
import sys
import xml.etree.ElementTree as ET

RUNTIME = [("microkit_name", 64), ("microkit_passive", 1), ("microkit_irqs", 8),
           ("microkit_notifications", 8), ("microkit_pps", 8)]


def symbols_per_program(root: ET.Element) -> dict:
    """program image path -> set of variable names the description patches into it."""
    wanted = {}

    def visit(pd: ET.Element, parent_image):
        image = pd.find("program_image").get("path")
        names = wanted.setdefault(image, set())
        for el in pd.iter():
            if el is not pd and el.tag == "protection_domain":
                continue
            for attr in ("setvar_vaddr", "setvar_size", "setvar_prefill_size"):
                if el.tag == "map" and el.get(attr):
                    names.add(el.get(attr))
            if el.tag == "irq" and el.get("setvar_id"):
                names.add(el.get("setvar_id"))
            if el.tag == "setvar":
                names.add(el.get("symbol"))
        if parent_image is not None and pd.get("setvar_id"):
            wanted[parent_image].add(pd.get("setvar_id"))
        for child in pd.findall("protection_domain"):
            visit(child, image)

    pds = {}
    for pd in root.findall("protection_domain"):
        visit(pd, None)
    for pd in root.iter("protection_domain"):
        pds[pd.get("name")] = pd.find("program_image").get("path")
    for channel in root.findall("channel"):
        for end in channel.findall("end"):
            if end.get("setvar_id"):
                wanted[pds[end.get("pd")]].add(end.get("setvar_id"))
    return wanted


def elf(symbols: list) -> bytes:
    """An ELF64 aarch64 executable: RX page at 0x200000, RW data at 0x201000 with `symbols`
    ((name, size) pairs) laid out in order, and a symbol table naming them."""
    data = bytearray()
    placed = []
    for name, size in symbols:
        placed.append((name, 0x201000 + len(data), size))
        data += bytes(size)
        data += bytes(-len(data) % 8)
    code = bytes([0x00, 0x00, 0x00, 0x14]) * 4  # `b .` : spins if it were ever run
    strtab = bytearray(b"\0")
    symtab = bytearray(24)
    for name, addr, size in placed:
        off = len(strtab)
        strtab += name.encode() + b"\0"
        symtab += struct.pack("<IBBHQQ", off, 0x11, 0, 0xFFF1, addr, size)
    shstrtab = b"\0.symtab\0.strtab\0.shstrtab\0"
    out = bytearray(64 + 2 * 56)
    out += bytes(0x1000 - len(out))
    code_off = len(out)
    out += code + bytes(0x1000 - len(code))
    data_off = len(out)
    out += data

    def place(blob):
        out.extend(bytes(-len(out) % 8))
        at = len(out)
        out.extend(blob)
        return at

    sym_off, str_off, shs_off = place(symtab), place(strtab), place(shstrtab)
    out += bytes(-len(out) % 8)
    shoff = len(out)
    out += bytes(64)
    out += struct.pack("<IIQQQQIIQQ", 1, 2, 0, 0, sym_off, len(symtab), 2, 1, 8, 24)
    out += struct.pack("<IIQQQQIIQQ", 9, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)
    out += struct.pack("<IIQQQQIIQQ", 17, 3, 0, 0, shs_off, len(shstrtab), 0, 0, 1, 0)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 183, 1, 0x200000, 64, shoff, 0, 64, 56, 2, 64, 4, 3)
    out[:64] = header
    phdrs = struct.pack("<IIQQQQQQ", 1, 5, code_off, 0x200000, 0x200000, len(code), len(code), 0x1000)
    phdrs += struct.pack("<IIQQQQQQ", 1, 6, data_off, 0x201000, 0x201000, len(data), max(len(data), 8), 0x1000)
    out[64:64 + 112] = phdrs
    return bytes(out)


def main() -> None:
    system, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    for image, names in symbols_per_program(ET.parse(system).getroot()).items():
        syms = RUNTIME + [(n, 8) for n in sorted(names)]
        with open(os.path.join(outdir, image), "wb") as f:
            f.write(elf(syms))


if __name__ == "__main__":
    main()

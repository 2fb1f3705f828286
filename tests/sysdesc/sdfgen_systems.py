#!/usr/bin/env python3
"""Generates system descriptions with sdfgen (the generator LionsOS and sDDF systems use), so
`edgeos check` is tested against real third-party output, not only our own fixtures.

Usage: sdfgen_systems.py OUTDIR
Writes OUTDIR/sddf_net.xml and OUTDIR/sixty_three_pds.xml.
"""
import os
import sys

import sdfgen

SDF = sdfgen.SystemDescription


def net_system() -> str:
    """An sDDF-shaped network system built with sdfgen's generic API: a virtio-net driver with its
    device registers and IRQ, rx/tx virtualisers, copiers and clients, queues named the way sDDF
    names them (with '/' and '@'), and a DMA region at a fixed physical address inside RAM.
    (sdfgen's Sddf classes need the sDDF source tree for driver metadata, which is not available
    here, so the same shape is assembled by hand.)"""
    sdf = SDF(SDF.Arch.AARCH64, 0x1_0000_0000)
    driver = SDF.ProtectionDomain("eth_driver", "eth_driver.elf", priority=110, budget=100, period=400)
    virt_rx = SDF.ProtectionDomain("net_virt_rx", "network_virt_rx.elf", priority=108)
    virt_tx = SDF.ProtectionDomain("net_virt_tx", "network_virt_tx.elf", priority=109, budget=20000)
    timer = SDF.ProtectionDomain("timer_driver", "timer_driver.elf", priority=150, passive=True)
    for pd in [driver, virt_rx, virt_tx, timer]:
        sdf.add_pd(pd)
    regs = SDF.MemoryRegion(sdf, "virtio_mmio@a003e00", 0x1000, paddr=0xA003000)
    sdf.add_mr(regs)
    driver.add_map(SDF.Map(regs, 0x6000_0000, "rw", cached=False, setvar_vaddr="virtio_regs"))
    driver.add_irq(SDF.IrqConventional(79, trigger=SDF.IrqConventional.Trigger.EDGE, id=0))
    timer.add_irq(SDF.IrqConventional(30, trigger=SDF.IrqConventional.Trigger.LEVEL, id=0))
    dma = SDF.MemoryRegion(sdf, "net_driver/rx/dma", 0x20_0000, paddr=0x6000_0000)
    sdf.add_mr(dma)
    driver.add_map(SDF.Map(dma, 0x2_0000_0000, "rw", cached=True, setvar_vaddr="rx_dma"))
    virt_rx.add_map(SDF.Map(dma, 0x2_0000_0000, "r", setvar_vaddr="rx_dma"))
    sdf.add_channel(SDF.Channel(driver, virt_rx, a_id=1, b_id=0))
    sdf.add_channel(SDF.Channel(driver, virt_tx, a_id=2, b_id=0))
    for i in range(2):
        client = SDF.ProtectionDomain(f"client{i}", "echo.elf", priority=97, budget=20000)
        copier = SDF.ProtectionDomain(f"client{i}_net_copier", "network_copy.elf", priority=98, budget=20000)
        sdf.add_pd(client)
        sdf.add_pd(copier)
        for kind in ["free", "active"]:
            q = SDF.MemoryRegion(sdf, f"net/queue/client{i}/rx/{kind}", 0x1000)
            sdf.add_mr(q)
            client.add_map(SDF.Map(q, 0x3000_0000 + (0x1000 if kind == "active" else 0), "rw", setvar_vaddr=f"rx_{kind}"))
            copier.add_map(SDF.Map(q, 0x3000_0000 + (0x1000 if kind == "active" else 0), "rw"))
        data = SDF.MemoryRegion(sdf, f"net/client{i}/rx/data", 0x20_0000)
        sdf.add_mr(data)
        client.add_map(SDF.Map(data, 0x4000_0000, "r", setvar_vaddr="rx_data"))
        copier.add_map(SDF.Map(data, 0x4000_0000, "rw"))
        sdf.add_channel(SDF.Channel(copier, client, a_id=1, b_id=2, pd_b_setvar_id="rx_channel"))
        sdf.add_channel(SDF.Channel(virt_rx, copier, a_id=2 + i, b_id=0))
        sdf.add_channel(SDF.Channel(client, virt_tx, a_id=3, b_id=1 + i))
        sdf.add_channel(SDF.Channel(client, timer, a_id=4, b_id=1 + i, pp_a=True))
    return sdf.render()


def sixty_three_pds() -> str:
    """The Microkit ceiling: 63 PDs in a ring of channels, with shared regions."""
    sdf = SDF(SDF.Arch.AARCH64, 0x1_0000_0000)
    pds = [SDF.ProtectionDomain(f"pd{i}", "pd.elf", priority=1 + i) for i in range(63)]
    for pd in pds:
        sdf.add_pd(pd)
    for i in range(63):
        mr = SDF.MemoryRegion(sdf, f"shared/{i}", 0x1000)
        sdf.add_mr(mr)
        pds[i].add_map(SDF.Map(mr, 0x4000_0000, "rw"))
        pds[(i + 1) % 63].add_map(SDF.Map(mr, 0x5000_0000, "r"))
        lo, hi = sorted([pds[i], pds[(i + 1) % 63]], key=lambda p: int(p.name[2:]))
        sdf.add_channel(SDF.Channel(lo, hi, pp_a=True))
    return sdf.render()


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, xml in [("sddf_net", net_system()), ("sixty_three_pds", sixty_three_pds())]:
        with open(os.path.join(out, f"{name}.xml"), "w") as f:
            f.write(xml)
        print(f"wrote {out}/{name}.xml")


if __name__ == "__main__":
    main()

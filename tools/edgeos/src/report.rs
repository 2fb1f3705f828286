//! The human-readable build report: where every PD, segment, region, map and channel landed.

use std::fmt::Write;

use bootinfo::layout::{stack_reservation, PD_STACK_TOP};

use crate::build::Layout;

fn kib(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn perms(p: &sysdesc::Perms) -> String {
    format!("{}{}{}", if p.r { "r" } else { "-" }, if p.w { "w" } else { "-" }, if p.x { "x" } else { "-" })
}

/// Writes the report.
pub(crate) fn write(l: &Layout, image_len: usize) -> String {
    let mut out = String::new();
    let s = l.system;
    let w = &mut out;
    let _ = writeln!(w, "EdgeOS build report");
    let _ = writeln!(w, "===================");
    let _ = writeln!(w, "board:            {}", l.board.name);
    let _ = writeln!(w, "kernel:           {}", l.kernel_path.display());
    let _ = writeln!(w, "image file:       {}", kib(image_len as u64));
    let _ = writeln!(w);
    let _ = writeln!(w, "Physical memory");
    let _ = writeln!(w, "---------------");
    let _ = writeln!(w, "RAM               {:#012x}..{:#012x} ({})", l.board.ram_base, l.board.ram_base + l.board.ram_size, kib(l.board.ram_size));
    let _ = writeln!(w, "kernel            {:#012x}..{:#012x} ({})", l.kernel_range.0, l.kernel_range.1, kib(l.kernel_range.1 - l.kernel_range.0));
    let _ = writeln!(w, "boot blob         {:#012x}..{:#012x} ({})", l.blob_range.0, l.blob_range.1, kib(l.blob_range.1 - l.blob_range.0));
    for (mr, r) in s.memory_regions.iter().zip(&l.regions) {
        let kind = if r.flags & bootinfo::REGION_FIXED != 0 { "fixed" } else { "placed" };
        let _ = writeln!(
            w,
            "region {:<10} {:#012x}..{:#012x} ({}, {} pages of {}, {kind})",
            mr.name,
            r.paddr,
            r.paddr + r.size,
            kib(r.size),
            r.size / r.page_size,
            kib(r.page_size)
        );
    }
    let ram_end = l.board.ram_base + l.board.ram_size;
    let _ = writeln!(w, "free for kernel   {:#012x}..{:#012x} ({})", l.reserved_end, ram_end, kib(ram_end - l.reserved_end));
    let _ = writeln!(w);
    let _ = writeln!(w, "Protection domains ({})", s.protection_domains.len());
    let _ = writeln!(w, "----------------------");
    for (i, pd) in s.protection_domains.iter().enumerate() {
        let lp = &l.pds[i];
        let parent = pd.parent.map(|p| format!(", child {} of '{}'", pd.child_id.unwrap_or(0), s.protection_domains[p].name)).unwrap_or_default();
        let _ = writeln!(
            w,
            "[{i}] {}: priority {}, budget {} us / period {} us{}{}",
            pd.name,
            pd.priority,
            pd.budget,
            pd.period,
            if pd.passive { ", passive" } else { "" },
            parent
        );
        let _ = writeln!(w, "    program   {} (entry {:#x})", lp.image_path.display(), lp.image.entry);
        for seg in &lp.image.segments {
            let p = sysdesc::Perms { r: seg.perms.read, w: seg.perms.write, x: seg.perms.execute };
            let _ = writeln!(w, "    segment   {:#012x}..{:#012x} {} ({} from file)", seg.vaddr, seg.end(), perms(&p), kib(seg.data.len() as u64));
        }
        let (stack_lo, _) = stack_reservation(pd.stack_size);
        let _ = writeln!(w, "    stack     {:#012x}..{:#012x} rw- ({}, guard page at {:#x})", PD_STACK_TOP - pd.stack_size, PD_STACK_TOP, kib(pd.stack_size), stack_lo);
        if let Some(ipc) = lp.image.symbol(crate::build::IPC_BUFFER_SYMBOL) {
            let _ = writeln!(w, "    ipc buf   {:#012x}", ipc.addr);
        }
        for m in &pd.maps {
            let Some(ri) = s.memory_regions.iter().position(|r| r.name == m.mr) else { continue };
            let r = l.regions[ri];
            let _ = writeln!(
                w,
                "    map       {:#012x}..{:#012x} {} -> {} @ {:#x}{}",
                m.vaddr,
                m.vaddr + r.size,
                perms(&m.perms),
                m.mr,
                r.paddr,
                if m.cached { "" } else { " (uncached)" }
            );
        }
        for irq in &pd.irqs {
            if let sysdesc::Irq::Arm { irq, id, trigger, .. } = irq {
                let _ = writeln!(w, "    irq       {irq} on channel id {id} ({trigger:?})");
            }
        }
        for e in s.channel_ends_of(i) {
            let peer = &s.protection_domains[e.peer.pd_index].name;
            let mut rights = Vec::new();
            if e.end.notify {
                rights.push("notify");
            }
            if e.end.pp {
                rights.push("pp");
            }
            let _ = writeln!(w, "    channel   id {:>2} -> '{}' (its id {}) [{}]", e.end.id, peer, e.peer.id, rights.join(", "));
        }
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "Channels ({})", s.channels.len());
    let _ = writeln!(w, "------------");
    for c in &s.channels {
        let [a, b] = &c.ends;
        let arrow = match (a.pp, b.pp) {
            (true, _) => "=pp=>",
            (_, true) => "<=pp=",
            _ => "<--->",
        };
        let _ = writeln!(w, "{}:{} {arrow} {}:{}", a.pd, a.id, b.pd, b.id);
    }
    out
}

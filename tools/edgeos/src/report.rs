//! The human-readable build report: where every PD, segment, region, map and channel landed.

use std::fmt::Write;

use bootinfo::layout::{stack_reservation, PD_STACK_TOP};

use crate::build::Layout;

fn kib(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
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
    let _ = writeln!(w, "debug exit:       {}", if l.debug_exit { "on (test image)" } else { "off" });
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
    // Fixed regions in RAM above the image are carved out of the kernel's memory at boot.
    let carved: u64 = l
        .regions
        .iter()
        .filter(|r| r.flags & bootinfo::REGION_FIXED != 0 && r.paddr >= l.reserved_end && l.board.in_ram(r.paddr, r.size))
        .map(|r| r.size)
        .sum();
    let free = ram_end - l.reserved_end - carved;
    let carved_note = if carved > 0 { format!(", less {} of fixed regions", kib(carved)) } else { String::new() };
    let _ = writeln!(w, "free for kernel   {:#012x}..{:#012x} ({}{carved_note})", l.reserved_end, ram_end, kib(free));
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
        for a in s.channel_arrays_of_pd(i) {
            let t = &a.template_end;
            let _ = writeln!(
                w,
                "    array     id {:>2} -> every instance of template '{}' (their id {}) [{}]",
                a.pd_end.id,
                t.template,
                t.id,
                rights(a.pd_end.notify, a.pd_end.pp)
            );
        }
        for win in &pd.instance_windows {
            let (lo, hi, max) = window_reach(s, win);
            let _ = writeln!(
                w,
                "    window    {lo:#012x}..{hi:#012x} {} -> {}/{} of instance i at {:#x} + i * {:#x} (i < {max}){}",
                perms(&win.perms),
                win.template,
                win.mr,
                win.vaddr,
                win.stride,
                if win.cached { "" } else { " (uncached)" }
            );
        }
        for f in &pd.forks {
            let _ = writeln!(
                w,
                "    fork      handle {} -> template '{}' (at most {} instances, quota {})",
                f.id,
                f.template,
                f.max_instances,
                kib(f.memory)
            );
        }
    }
    if !s.templates.is_empty() {
        templates(w, l);
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
    if !s.channel_arrays.is_empty() {
        let _ = writeln!(w);
        let _ = writeln!(w, "Channel arrays ({})", s.channel_arrays.len());
        let _ = writeln!(w, "------------------");
        for a in &s.channel_arrays {
            let (p, t) = (&a.pd_end, &a.template_end);
            let arrow = match (p.pp, t.pp) {
                (true, _) => "=pp=>",
                (_, true) => "<=pp=",
                _ => "<--->",
            };
            let _ = writeln!(w, "{}:{} {arrow} {}[*]:{}", p.pd, p.id, t.template, t.id);
        }
    }
    out
}

fn rights(notify: bool, pp: bool) -> String {
    let mut rights = Vec::new();
    if notify {
        rights.push("notify");
    }
    if pp {
        rights.push("pp");
    }
    rights.join(", ")
}

/// The addresses an instance window reserves: `vaddr .. vaddr + stride * max_instances`, and
/// `max_instances`.
fn window_reach(s: &sysdesc::SystemDescription, win: &sysdesc::InstanceWindow) -> (u64, u64, u64) {
    let max = s.fork_of(win.template_index).map_or(0, |(_, f)| f.max_instances);
    (win.vaddr, win.vaddr + win.stride * max, max)
}

/// The Templates section: program, segments, stack, instance regions, maps, channel arrays,
/// windows onto its instances, the fork grant and what instances cost.
fn templates(w: &mut String, l: &Layout) {
    let s = l.system;
    let _ = writeln!(w);
    let _ = writeln!(w, "Templates ({})", s.templates.len());
    let _ = writeln!(w, "-------------");
    let mut snapshots = 0;
    for (i, t) in s.templates.iter().enumerate() {
        let lp = &l.templates[i];
        let fork = s.fork_of(i);
        let max = fork.map_or(0, |(_, f)| f.max_instances);
        let _ = writeln!(
            w,
            "[{i}] {} x{max}: priority {}, budget {} us / period {} us{}",
            t.name,
            t.priority,
            t.budget,
            t.period,
            if t.passive { ", passive" } else { "" }
        );
        let _ = writeln!(w, "    program   {} (entry {:#x})", lp.image_path.display(), lp.image.entry);
        for seg in &lp.image.segments {
            let p = sysdesc::Perms { r: seg.perms.read, w: seg.perms.write, x: seg.perms.execute };
            let how = if seg.perms.write { "copied per instance" } else { "shared" };
            let _ = writeln!(w, "    segment   {:#012x}..{:#012x} {} ({} from file, {how})", seg.vaddr, seg.end(), perms(&p), kib(seg.data.len() as u64));
        }
        let (stack_lo, _) = stack_reservation(t.stack_size);
        let _ = writeln!(w, "    stack     {:#012x}..{:#012x} rw- ({}, guard page at {:#x}, copied per instance)", PD_STACK_TOP - t.stack_size, PD_STACK_TOP, kib(t.stack_size), stack_lo);
        if let Some(ipc) = lp.image.symbol(crate::build::IPC_BUFFER_SYMBOL) {
            let _ = writeln!(w, "    ipc buf   {:#012x}", ipc.addr);
        }
        for r in &t.instance_regions {
            let _ = writeln!(w, "    instance region {}: {} ({} pages of {}), one per instance", r.name, kib(r.size), r.size / r.page_size, kib(r.page_size));
        }
        for tm in &t.maps {
            let m = &tm.map;
            let sizes: Vec<u64> = l.regions.iter().map(|r| r.size).collect();
            let size = crate::build::template_map_size(&sizes, t, tm);
            let what = match tm.target {
                sysdesc::RegionRef::Instance(_) => "the instance's own".to_string(),
                sysdesc::RegionRef::Static(r) => format!("shared @ {:#x}", l.regions[r].paddr),
            };
            let _ = writeln!(
                w,
                "    map       {:#012x}..{:#012x} {} -> {} ({what}){}",
                m.vaddr,
                m.vaddr + size,
                perms(&m.perms),
                m.mr,
                if m.cached { "" } else { " (uncached)" }
            );
        }
        for a in s.channel_arrays_of_template(i) {
            let e = &a.template_end;
            let _ = writeln!(w, "    channel   id {:>2} -> '{}' (its array id {}) [{}]", e.id, a.pd_end.pd, a.pd_end.id, rights(e.notify, e.pp));
        }
        for (pd, win) in s.windows_of_template(i) {
            let (lo, hi, _) = window_reach(s, win);
            let _ = writeln!(
                w,
                "    window    {} in '{}' at {lo:#012x}..{hi:#012x} {} (instance i at {:#x} + i * {:#x})",
                win.mr,
                s.protection_domains[pd].name,
                perms(&win.perms),
                win.vaddr,
                win.stride
            );
        }
        let cost = crate::build::instance_cost(t, lp);
        snapshots += cost.snapshot();
        let _ = writeln!(
            w,
            "    memory    {} per instance (writable pages {}, stack {}, instance regions {}) + page tables; {} shared read-only; snapshot {}",
            kib(cost.per_instance()),
            kib(cost.writable),
            kib(cost.stack),
            kib(cost.regions),
            kib(cost.shared),
            kib(cost.snapshot())
        );
        if let Some((holder, f)) = fork {
            let fits = f.memory.checked_div(cost.per_instance()).unwrap_or(0);
            let _ = writeln!(
                w,
                "    fork      by '{}' with handle {}: at most {} instances, quota {} (holds {} instances){}",
                s.protection_domains[holder].name,
                f.id,
                f.max_instances,
                kib(f.memory),
                fits,
                if fits < f.max_instances { "; the quota binds before max_instances" } else { "" }
            );
        }
    }
    let _ = writeln!(w, "At boot every template is loaded and snapshotted: {} of snapshots from free RAM.", kib(snapshots));
}

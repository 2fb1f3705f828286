//! Featherweight processes: the fork, destroy and instance-call system calls (the address-space
//! work; the bookkeeping is `edgeos_kernel_core::fwp`, the scheduling state
//! `Kernel::start_instance` / `kill_instance`).
//!
//! An instance's address space, built at fork from its template's (which is frozen at its
//! checkpoint, its first wait, and never runs again):
//! - read-only and executable pages (code, rodata) map the template's frames (shared);
//! - writable pages (data, bss, heap, stack, IPC buffer) are fresh frames copied from the
//!   template's frames, which *are* the snapshot (the template cannot change them any more);
//! - instance regions get fresh zeroed frames; static regions are mapped as in the template.
//!
//! Destroy frees every leaf frame the template does not map at the same address (so shared
//! code and static regions stay), then every table, visiting only the ranges the template's
//! segments, stack and maps cover, and flushes the instance's ASID (slot `k`
//! always uses ASID `k + 1`, so ASIDs are never shared between live address spaces).

use bootinfo::layout::PAGE_SIZE;
use bootinfo::TemplateRegion;
use edgeos_kernel_abi::{Error, MessageInfo};
use edgeos_kernel_core::asid::Asid;
use edgeos_kernel_core::kernel::{Next, PdId, State as PdState};
use edgeos_kernel_core::pagetable::{self, PageAttrs, PageSize};
use edgeos_kernel_core::runqueue::NIL;

use crate::memory::{self, Memory};
use crate::{arch, State};

/// System calls FORK, DESTROY, INSTANCE_CALL and DEBUG_FREE_FRAMES of `pd` (x8 = `number`).
pub fn syscall(s: &mut State, pd: PdId, number: u64) -> Next {
    let x = s.kernel.pd(pd).ctx.x;
    let (r0, r1) = match number {
        edgeos_kernel_abi::sys::FORK => match fork(s, pd, x[0]) {
            Ok(id) => (0, id as u64),
            Err(e) => (e as u64, 0),
        },
        edgeos_kernel_abi::sys::DESTROY => match destroy(s, pd, x[0], x[1]) {
            Ok(()) => (0, 0),
            Err(e) => (e as u64, 0),
        },
        edgeos_kernel_abi::sys::RECYCLE => match recycle(s, pd, x[0], x[1]) {
            Ok(()) => (0, 0),
            Err(e) => (e as u64, 0),
        },
        edgeos_kernel_abi::sys::INSTANCE_CALL => match call_target(s, pd, x[0], x[1]) {
            Ok((server, badge)) => return s.kernel.call_instance(&mut s.hw, pd, server, badge, MessageInfo(x[2])),
            Err(e) => (e as u64, 0),
        },
        _ => (0, s.mem.frames.free_frames() as u64),
    };
    let c = &mut s.kernel.pd_mut(pd).ctx;
    c.x[0] = r0;
    c.x[1] = r1;
    Next::Resume
}

fn template_of(s: &State, pd: PdId, handle: u64) -> Result<usize, Error> {
    if handle >= edgeos_kernel_abi::CHANNEL_IDS as u64 {
        return Err(Error::InvalidChannel);
    }
    s.instances.find(pd, handle).ok_or(Error::NotGranted)
}

fn call_target(s: &State, pd: PdId, handle: u64, id: u64) -> Result<(PdId, u8), Error> {
    let t = template_of(s, pd, handle)?;
    if !s.instances.is_live(t, id) {
        return Err(Error::InvalidChild);
    }
    let server = s.instances.slot(t, id as u32);
    // A faulted instance never answers: refuse rather than leave the caller blocked.
    if matches!(s.kernel.pd(server).state, PdState::FaultSending { .. } | PdState::FaultDelivered { .. } | PdState::Stopped) {
        return Err(Error::InvalidState);
    }
    // The instance's end of a channel array joining it to the caller (its holder: only the
    // holder finds the template by its handle), worked out with the fork plan.
    let index = s.instances.template(t).template_pd as usize - s.info.pd_count();
    Ok((server, s.plans[index].holder_badge))
}

fn fork(s: &mut State, holder: PdId, handle: u64) -> Result<u32, Error> {
    let t = template_of(s, holder, handle)?;
    let tpl = *s.instances.template(t);
    if !s.kernel.checkpoint_reached(tpl.template_pd) {
        return Err(Error::InvalidState);
    }
    let index = tpl.template_pd as usize - s.info.pd_count();
    if !tpl.compacted {
        prepare(s, t, index)?;
    }
    // The plan by reference (it is ~100 bytes: copying it cost a `memmove` per fork); its
    // slices are 'static, so they outlive the borrow.
    let prepared = &s.plans[index];
    let (ranges, windows, priority) = (prepared.ranges, prepared.windows, prepared.priority);
    let id = s.instances.alloc(t)?;
    let slot = s.instances.slot(t, id);
    let asid = slot + 1;
    if asid > (1u32 << arch::mmu::asid_bits()) - 1 {
        s.instances.release(t, id);
        return Err(Error::OutOfMemory);
    }
    let before = s.mem.frames.free_frames();
    let built = build(&mut s.mem, &s.plans[index]);
    let used = (before - s.mem.frames.free_frames()) as u64 * PAGE_SIZE;
    let (root, ipc) = match built {
        Ok(r) => r,
        Err(root) => {
            if root != 0 {
                teardown(&mut s.mem, ranges, root);
            }
            s.instances.release(t, id);
            return Err(Error::OutOfMemory);
        }
    };
    if let Err(e) = s.instances.charge(t, id, used) {
        teardown(&mut s.mem, ranges, root);
        s.instances.release(t, id);
        return Err(e);
    }
    if map_windows(s, windows, id, root).is_err() {
        teardown(&mut s.mem, ranges, root);
        s.instances.release(t, id);
        return Err(Error::OutOfMemory);
    }
    arch::mmu::table_write_barrier();
    s.kernel.start_instance(slot, tpl.template_pd, priority, holder, handle as u8, id as u16);
    let p = s.kernel.pd_mut(slot);
    p.root = root;
    p.asid = Asid { id: asid as u16, generation: 0 };
    p.ipc_buffer = arch::phys_to_virt(ipc);
    Ok(id)
}

/// What fork and destroy need of a template, computed once by [`prepare`].
#[derive(Clone, Copy, Debug)]
pub struct Prepared {
    pages: &'static [PlanPage],
    /// Instances' priority (the template's declared one).
    priority: u8,
    /// The address ranges an instance may map (empty: too many, walk every table).
    ranges: &'static [(u64, u64)],
    /// Its writable segments and stack, page-rounded: where an instance has private pages or
    /// gets them on demand.
    writable: &'static [(u64, u64)],
    /// Where its IPC buffer is.
    ipc_buffer: u64,
    /// The static regions it maps (shared with the template).
    statics: &'static [StaticMap],
    /// The instance windows its instance regions show through.
    windows: &'static [Window],
    /// The badge a call from its holder arrives with: the instance's id of a channel array
    /// joining it to the holder (0: none).
    holder_badge: u8,
}

/// A static region a template maps, as its instances map it.
#[derive(Clone, Copy, Debug)]
pub struct StaticMap {
    region: bootinfo::Region,
    vaddr: u64,
    attrs: PageAttrs,
}

/// An instance window: instance `id`'s copy of the region the instance maps at `src` (`size`
/// bytes) shows in `pd` at `vaddr + id * stride`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pd: PdId,
    vaddr: u64,
    stride: u64,
    src: u64,
    size: u64,
    attrs: PageAttrs,
}

impl Prepared {
    pub const NONE: Prepared =
        Prepared { pages: &[], priority: 0, ranges: &[], writable: &[], ipc_buffer: 0, statics: &[], windows: &[], holder_badge: 0 };

    /// True if `va` is in one of the template's writable segments or its stack.
    fn in_writable_range(&self, va: u64) -> bool {
        self.writable.iter().any(|&(start, end)| va >= start && va < end)
    }
}

/// One page of an instance's address space as fork builds it (see [`prepare`]).
#[derive(Clone, Copy, Debug)]
pub struct PlanPage {
    va: u64,
    /// The template's frame.
    paddr: u64,
    attrs: PageAttrs,
    /// A private page (else the template's frame is shared): bytes `lo..hi` are copied from
    /// the template's frame, the rest is zero.
    private: bool,
    lo: u16,
    hi: u16,
}

impl PlanPage {
    pub const NONE: PlanPage =
        PlanPage {
            va: 0,
            paddr: 0,
            attrs: PageAttrs { read: false, write: false, execute: false, device: false, owned: false },
            private: false,
            lo: 0,
            hi: 0,
        };
}

/// Builds the address space of an instance from its template's plan (no description record
/// is read); returns the root and the IPC buffer's frame, or the root to tear down (0: none)
/// on out of memory.
fn build(mem: &mut Memory, plan: &Prepared) -> Result<(u64, u64), u64> {
    let root = pagetable::new_root(mem).ok_or(0u64)?;
    let mut mapper = pagetable::Mapper::new(root);
    let mut ipc = 0;
    for e in plan.pages {
        let frame = if e.private {
            let Some(frame) = mem.frames.alloc() else { return Err(root) };
            let (lo, hi) = (e.lo as u64, e.hi as u64);
            // SAFETY: a fresh whole RAM frame nobody else refers to, and the template's frame
            // (frozen at its checkpoint), both through the direct map; lo..hi is within a page
            // and 8-byte aligned.
            unsafe {
                // Only the bytes outside the copied span need zeroing.
                if hi <= lo {
                    memory::zero_phys(frame, PAGE_SIZE);
                } else {
                    memory::zero_phys(frame, lo);
                    memory::zero_phys(frame + hi, PAGE_SIZE - hi);
                }
                if hi > lo {
                    memory::copy_words(
                        arch::phys_to_virt(e.paddr + lo) as *const u64,
                        arch::phys_to_virt(frame + lo) as *mut u64,
                        ((hi - lo) / 8) as usize,
                    );
                }
            }
            frame
        } else {
            e.paddr
        };
        if mapper.map_page(mem, e.va, frame, e.attrs).is_err() {
            if e.private {
                let _ = mem.frames.free(frame);
            }
            return Err(root);
        }
        if e.va == plan.ipc_buffer {
            ipc = frame;
        }
    }
    // Static regions are shared with the template.
    for m in plan.statics {
        crate::loader::map_region(mem, root, &m.region, m.vaddr, m.attrs).map_err(|_| root)?;
    }
    if ipc == 0 {
        return Err(root);
    }
    Ok((root, ipc))
}

/// Calls `f(start, end)` for each of template `index`'s writable segments (page-rounded) and its
/// stack: the pages instances copy, or get on demand.
fn writable_ranges(info: &bootinfo::BootInfo<'static>, index: usize, mut f: impl FnMut(u64, u64)) {
    let d = info.template(index);
    for sg in info.template_segments(&d) {
        let seg = info.segment(sg);
        if seg.perms.write {
            f(seg.vaddr, seg.vaddr.saturating_add(seg.mem_size.div_ceil(PAGE_SIZE) * PAGE_SIZE));
        }
    }
    f(d.stack_top - d.stack_size, d.stack_top);
}

/// Prepares template `index` for forking, once (at its first fork: it is frozen at its
/// checkpoint by then):
/// - drops its writable pages that are all zero, and its stack pages wholly below its
///   checkpoint's stack pointer (dead), so untouched heap, bss and stack cost instances nothing:
///   an instance's first touch of one maps a zeroed page ([`demand_fault`]);
/// - writes its fork plan: every page an instance gets, shared (code, read-only data) or
///   private with the byte span holding data (the rest of a private page starts zeroed), so a
///   fork reads no description records and copies only bytes that matter.
fn prepare(s: &mut State, t: usize, index: usize) -> Result<(), Error> {
    let tpl = *s.instances.template(t);
    let p = s.kernel.pd(tpl.template_pd);
    let (troot, asid, sp) = (p.root, p.asid.id, p.ctx.sp);
    let d = s.info.template(index);
    let ipc = d.ipc_buffer & !(PAGE_SIZE - 1);
    let mut count = 0;
    writable_ranges(&s.info, index, |_, _| count += 1);
    let writable = s.mem.alloc_table(count, (0u64, 0u64)).ok_or(Error::OutOfMemory)?;
    let mut k = 0;
    writable_ranges(&s.info, index, |start, end| {
        writable[k] = (start, end);
        k += 1;
    });
    let writable: &'static [(u64, u64)] = writable;
    // Compaction: every writable page but the IPC buffer (which must stay mapped).
    let mem = &mut s.mem;
    for &(start, end) in writable {
        for va in (start..end).step_by(PAGE_SIZE as usize) {
            if va == ipc {
                continue;
            }
            let Some(leaf) = pagetable::lookup(mem, troot, va) else { continue };
            if !leaf.attrs.write || leaf.size != PageSize::Small {
                continue;
            }
            let dead_stack = va >= d.stack_top - d.stack_size && va + PAGE_SIZE <= sp;
            if dead_stack || span(leaf.paddr).is_none() {
                if let Some(frame) = pagetable::unmap(mem, troot, va) {
                    let _ = mem.frames.free(frame);
                }
            }
        }
    }
    arch::mmu::flush_asid(asid);

    // The plan: every page still mapped in the template's segments, stack and instance regions.
    let mut count = 0;
    plan_pages(&s.info, index, &mut s.mem, troot, |_, _, _| count += 1);
    let table = s.mem.alloc_table(count.max(1), PlanPage::NONE).ok_or(Error::OutOfMemory)?;
    let mut n = 0;
    plan_pages(&s.info, index, &mut s.mem, troot, |va, leaf, instance_region| {
        let private = leaf.attrs.write || instance_region;
        let (mut lo, hi) = if !private || va == ipc { (0, 0) } else { span(leaf.paddr).unwrap_or((0, 0)) };
        if va < sp && sp < va + PAGE_SIZE {
            // The part of the stack page below the stack pointer is dead.
            lo = lo.max(((sp - va) & !15) as u16);
        }
        // A private page's frame is the instance's own: marked so its teardown frees it.
        let attrs = PageAttrs { owned: private, ..leaf.attrs };
        table[n] = PlanPage { va, paddr: leaf.paddr & !(PAGE_SIZE - 1), attrs, private, lo, hi: hi.max(lo) };
        n += 1;
    });
    let pages: &'static [PlanPage] = &table[..n];
    // The address ranges teardown walks (none: more than MAX_RANGES, walk whole tables).
    let ranges: &'static [(u64, u64)] = match ranges(&s.info, index) {
        Some((r, k)) => s.mem.alloc_from(r[..k].iter().copied()).ok_or(Error::OutOfMemory)?,
        None => &[],
    };
    // Static maps and instance windows, read from the description once here.
    let info = &s.info;
    let statics = info.template_maps(&d).map(|m| info.template_map(m)).filter_map(|mp| match mp.region {
        TemplateRegion::Static(r) => {
            Some(StaticMap { region: info.region(r as usize), vaddr: mp.vaddr, attrs: crate::loader::attrs(mp.perms, mp.cached) })
        }
        TemplateRegion::Instance(_) => None,
    });
    let statics = s.mem.alloc_from(statics).ok_or(Error::OutOfMemory)?;
    let windows = (0..info.instance_window_count()).map(|w| info.instance_window(w)).filter(|w| w.template as usize == index).map(|w| Window {
        pd: w.pd,
        vaddr: w.vaddr,
        stride: w.stride,
        src: region_vaddr(info, &w).unwrap_or(0),
        size: info.instance_region(w.instance_region as usize).size,
        // Windows never execute.
        attrs: crate::loader::attrs(bootinfo::Perms { execute: false, ..w.perms }, w.cached),
    });
    let windows = s.mem.alloc_from(windows).ok_or(Error::OutOfMemory)?;
    let holder_badge = (0..info.channel_array_count())
        .map(|a| info.channel_array(a))
        .find(|a| a.template as usize == index && a.pd.pd == tpl.holder)
        .map_or(0, |a| a.instance_id as u8);
    let prepared = Prepared { pages, priority: d.priority, ranges, writable, ipc_buffer: d.ipc_buffer, statics, windows, holder_badge };
    s.plans[index] = prepared;
    s.instances.set_compacted(t);
    Ok(())
}

/// The byte span `lo..hi` (8-byte aligned) of a page that holds non-zero bytes; None if all zero.
fn span(paddr: u64) -> Option<(u16, u16)> {
    // SAFETY: a whole RAM frame of the frozen template, read through the direct map.
    let words = unsafe { core::slice::from_raw_parts(arch::phys_to_virt(paddr & !(PAGE_SIZE - 1)) as *const u64, 512) };
    let first = words.iter().position(|&w| w != 0)?;
    let last = words.iter().rposition(|&w| w != 0)?;
    Some(((first * 8) as u16, ((last + 1) * 8) as u16))
}

/// Calls `f(va, leaf, is_instance_region)` for every page the template maps in its segments,
/// stack and instance regions (4 KiB pages), in address order within each.
fn plan_pages(info: &bootinfo::BootInfo<'static>, index: usize, mem: &mut Memory, troot: u64, mut f: impl FnMut(u64, pagetable::Leaf, bool)) {
    let d = info.template(index);
    let mut visit = |mem: &mut Memory, va: u64, instance_region: bool| {
        if let Some(leaf) = pagetable::lookup(mem, troot, va) {
            if leaf.size == PageSize::Small {
                f(va, leaf, instance_region);
            }
        }
    };
    for sg in info.template_segments(&d) {
        let seg = info.segment(sg);
        for p in 0..seg.mem_size.div_ceil(PAGE_SIZE) {
            visit(mem, seg.vaddr + p * PAGE_SIZE, false);
        }
    }
    let stack_base = d.stack_top - d.stack_size;
    for p in 0..d.stack_size / PAGE_SIZE {
        visit(mem, stack_base + p * PAGE_SIZE, false);
    }
    for m in info.template_maps(&d) {
        let mp = info.template_map(m);
        if let TemplateRegion::Instance(r) = mp.region {
            for p in 0..info.instance_region(r as usize).size / PAGE_SIZE {
                visit(mem, mp.vaddr + p * PAGE_SIZE, true);
            }
        }
    }
}

/// A translation fault of instance `pd` at `address`: if it is a writable page of its template
/// that [`compact`] dropped, maps a zeroed page there (charged to the instance's quota) and
/// returns true (the instruction re-runs); otherwise false (a real fault).
pub fn demand_fault(s: &mut State, pd: PdId, esr: u64, address: u64) -> bool {
    const EC_DATA_ABORT_LOWER: u64 = 0x24;
    let translation_fault = esr >> 26 == EC_DATA_ABORT_LOWER && (esr & 0x3c) == 0x04;
    let p = s.kernel.pd(pd);
    if !translation_fault || p.instance_handle == edgeos_kernel_core::kernel::NOT_INSTANCE {
        return false;
    }
    let (root, id) = (p.root, p.instance_id as u32);
    let Some(t) = p.parent.and_then(|holder| s.instances.find(holder, p.instance_handle as u64)) else { return false };
    let index = s.instances.template(t).template_pd as usize - s.info.pd_count();
    let va = address & !(PAGE_SIZE - 1);
    if !s.plans[index].in_writable_range(va) || pagetable::lookup(&mut s.mem, root, va).is_some() {
        return false;
    }
    if s.instances.charge_more(t, id, PAGE_SIZE).is_err() {
        return false;
    }
    let attrs = PageAttrs { read: true, write: true, execute: false, device: false, owned: true };
    let mapped = match s.mem.zeroed_frame() {
        Some(frame) => pagetable::map(&mut s.mem, root, va, frame, PageSize::Small, attrs).map_err(|_| {
            let _ = s.mem.frames.free(frame);
        }),
        None => Err(()),
    };
    if mapped.is_err() {
        s.instances.uncharge(t, id, PAGE_SIZE);
        return false;
    }
    arch::mmu::table_write_barrier();
    true
}

/// Maps instance `id`'s copies of its instance regions into the static PDs' instance windows
/// (instance root `root`). On failure, what was mapped is unmapped again.
fn map_windows(s: &mut State, windows: &[Window], id: u32, root: u64) -> Result<(), ()> {
    for (k, w) in windows.iter().enumerate() {
        if map_window(s, w, id, root).is_err() {
            unmap_windows(s, &windows[..=k], id);
            return Err(());
        }
    }
    Ok(())
}

/// Where the instance maps the region of window `win` (windows show regions the instance maps).
fn region_vaddr(info: &bootinfo::BootInfo<'static>, win: &bootinfo::InstanceWindow) -> Option<u64> {
    let d = info.template(win.template as usize);
    info.template_maps(&d)
        .map(|m| info.template_map(m))
        .find(|mp| mp.region == TemplateRegion::Instance(win.instance_region))
        .map(|mp| mp.vaddr)
}

fn map_window(s: &mut State, w: &Window, id: u32, root: u64) -> Result<(), ()> {
    let base = w.vaddr + id as u64 * w.stride;
    let proot = s.kernel.pd(w.pd).root;
    for p in 0..w.size / PAGE_SIZE {
        let leaf = pagetable::lookup(&mut s.mem, root, w.src + p * PAGE_SIZE).ok_or(())?;
        pagetable::map(&mut s.mem, proot, base + p * PAGE_SIZE, leaf.paddr & !(PAGE_SIZE - 1), PageSize::Small, w.attrs).map_err(|_| ())?;
    }
    Ok(())
}

/// Unmaps instance `id` from `windows` (the frames are the instance's: its teardown frees
/// them) and flushes the holders' TLB entries.
fn unmap_windows(s: &mut State, windows: &[Window], id: u32) {
    for w in windows {
        let base = w.vaddr + id as u64 * w.stride;
        let p = s.kernel.pd(w.pd);
        let (proot, asid) = (p.root, p.asid.id);
        for page in 0..w.size / PAGE_SIZE {
            pagetable::unmap(&mut s.mem, proot, base + page * PAGE_SIZE);
        }
        arch::mmu::flush_asid(asid);
    }
}

/// Most address ranges a template's instances map for [`teardown`] to walk by range (more:
/// the whole tables are scanned).
const MAX_RANGES: usize = 32;

/// Every address range an instance of template `index` may have mapped (segments, stack,
/// maps); None if there are more than [`MAX_RANGES`].
fn ranges(info: &bootinfo::BootInfo<'static>, index: usize) -> Option<([(u64, u64); MAX_RANGES], usize)> {
    let d = info.template(index);
    let mut out = [(0, 0); MAX_RANGES];
    let mut n = 0;
    let mut push = |r: (u64, u64)| {
        let slot = out.get_mut(n)?;
        *slot = r;
        n += 1;
        Some(())
    };
    for sg in info.template_segments(&d) {
        let seg = info.segment(sg);
        push((seg.vaddr, seg.vaddr.saturating_add(seg.mem_size)))?;
    }
    push((d.stack_top - d.stack_size, d.stack_top))?;
    for m in info.template_maps(&d) {
        let mp = info.template_map(m);
        let size = match mp.region {
            TemplateRegion::Static(r) => info.region(r as usize).size,
            TemplateRegion::Instance(r) => info.instance_region(r as usize).size,
        };
        push((mp.vaddr, mp.vaddr.saturating_add(size)))?;
    }
    Some((out, n))
}

/// Frees what an instance's address space owns: every leaf frame the template does not map at
/// the same address, and every table.
fn teardown(mem: &mut Memory, ranges: &[(u64, u64)], root: u64) {
    // Its own frames (private and on-demand pages) carry the owned mark; the rest are the
    // template's or static regions', shared.
    let mut leaf = |mem: &mut Memory, _va, leaf: pagetable::Leaf| {
        if leaf.attrs.owned && leaf.size == PageSize::Small {
            let _ = mem.frames.free(leaf.paddr);
        }
    };
    let mut table = |mem: &mut Memory, table| {
        let _ = mem.frames.free(table);
    };
    if ranges.is_empty() {
        pagetable::teardown(mem, root, &mut leaf, &mut table);
    } else {
        pagetable::teardown_ranges(mem, root, ranges, &mut leaf, &mut table);
    }
}

/// Resets a live instance to its template's snapshot in place (see `sys::RECYCLE`).
fn recycle(s: &mut State, holder: PdId, handle: u64, id: u64) -> Result<(), Error> {
    let t = template_of(s, holder, handle)?;
    if !s.instances.is_live(t, id) {
        return Err(Error::InvalidChild);
    }
    let tpl = *s.instances.template(t);
    let index = tpl.template_pd as usize - s.info.pd_count();
    let prepared = s.plans[index];
    let slot = s.instances.slot(t, id as u32);
    let p = s.kernel.pd(slot);
    let (root, asid, ipc) = (p.root, p.asid, p.ipc_buffer);
    let troot = s.kernel.pd(tpl.template_pd).root;
    // Pages it got on demand (mapped in its writable ranges, absent from the template's).
    let mut freed = 0u64;
    for &(start, end) in prepared.writable {
        pagetable::unmap_range_if(&mut s.mem, root, start, end, &mut |mem: &mut Memory, va, leaf: pagetable::Leaf| {
            if pagetable::lookup(mem, troot, va).is_some() {
                return false;
            }
            let _ = mem.frames.free(leaf.paddr);
            freed += 1;
            true
        });
    }
    arch::mmu::flush_asid(asid.id);
    s.instances.uncharge(t, id as u32, freed * PAGE_SIZE);
    // Private pages: the snapshot's bytes again.
    for e in prepared.pages.iter().filter(|e| e.private) {
        let Some(leaf) = pagetable::lookup(&mut s.mem, root, e.va) else { continue };
        let frame = leaf.paddr & !(PAGE_SIZE - 1);
        let (lo, hi) = (e.lo as u64, e.hi as u64);
        // SAFETY: the instance's own frame (it is not running: the holder is) and the template's
        // frozen one, through the direct map; lo..hi is within a page and 8-byte aligned.
        unsafe {
            memory::zero_phys(frame, PAGE_SIZE);
            if hi > lo {
                memory::copy_words(arch::phys_to_virt(e.paddr + lo) as *const u64, arch::phys_to_virt(frame + lo) as *mut u64, ((hi - lo) / 8) as usize);
            }
        }
    }
    // Scheduling state: as a fresh instance, in the same slot with the same address space.
    s.kernel.kill_instance(slot);
    s.fp.forget(slot);
    s.kernel.start_instance(slot, tpl.template_pd, prepared.priority, holder, handle as u8, id as u16);
    let p = s.kernel.pd_mut(slot);
    p.root = root;
    p.asid = asid;
    p.ipc_buffer = ipc;
    Ok(())
}

fn destroy(s: &mut State, holder: PdId, handle: u64, id: u64) -> Result<(), Error> {
    let t = template_of(s, holder, handle)?;
    if !s.instances.is_live(t, id) {
        return Err(Error::InvalidChild);
    }
    let tpl = *s.instances.template(t);
    let slot = s.instances.slot(t, id as u32);
    let p = s.kernel.pd(slot);
    let (root, asid) = (p.root, p.asid.id);
    s.kernel.kill_instance(slot);
    s.fp.forget(slot);
    if s.installed == slot {
        s.installed = NIL;
    }
    arch::mmu::flush_asid(asid);
    let index = tpl.template_pd as usize - s.info.pd_count();
    unmap_windows(s, s.plans[index].windows, id as u32);
    teardown(&mut s.mem, s.plans[index].ranges, root);
    s.instances.release(t, id as u32);
    Ok(())
}

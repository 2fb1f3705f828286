//! Builds the PDs of the boot description: address spaces (ELF segments mapped in place by
//! their permissions, zeroed frames past the file data, stack with a guard page, every map of
//! the description), ASIDs, IPC buffers and the kernel's tables.

use bootinfo::layout::{PAGE_SIZE, STACK_GUARD_SIZE};
use bootinfo::{BootInfo, Perms, REGION_ZERO};
use edgeos_kernel_core::arrays::{ArrayInfo, Arrays};
use edgeos_kernel_core::asid::AsidAllocator;
use edgeos_kernel_core::fwp::{self, GrantSpec, Instances, TemplateSlots};
use edgeos_kernel_core::kernel::{Kernel, Pd, PdId, Storage, MAX_IRQS};
use edgeos_kernel_core::time::us_to_ticks;
use edgeos_kernel_core::pagetable::{self, MapError, PageAttrs, PageSize};
use edgeos_kernel_core::runqueue::Link;

use crate::arch;
use crate::memory::{self, Memory};
use crate::println;

/// Why the system could not be built.
#[derive(Debug)]
pub enum LoadError {
    OutOfMemory(&'static str),
    Map { pd: usize, vaddr: u64, error: MapError },
    Kernel(edgeos_kernel_core::kernel::BuildError),
    /// A segment's data or a region is not where the description says.
    BadAddress { pd: usize, vaddr: u64 },
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::OutOfMemory(what) => write!(f, "out of memory for {what}"),
            LoadError::Map { pd, vaddr, error } => write!(f, "PD {pd}: cannot map {vaddr:#x}: {error:?}"),
            LoadError::Kernel(e) => write!(f, "{e}"),
            LoadError::BadAddress { pd, vaddr } => write!(f, "PD {pd}: no backing memory for {vaddr:#x}"),
        }
    }
}

/// The page attributes of a map with these permissions and caching.
pub(crate) fn attrs(perms: Perms, cached: bool) -> PageAttrs {
    PageAttrs { read: perms.read, write: perms.write, execute: perms.execute, device: !cached, owned: false }
}

/// Maps a program's ELF segments (file pages in place: the blob is in RAM; zeroed frames past
/// them) and its stack (zeroed frames; the guard page below stays unmapped) under `root`.
fn map_image(
    info: &BootInfo<'static>,
    blob_paddr: u64,
    mem: &mut Memory,
    root: u64,
    i: usize,
    segments: core::ops::Range<usize>,
    (stack_top, stack_size): (u64, u64),
) -> Result<(), LoadError> {
    let map = |mem: &mut Memory, vaddr: u64, paddr: u64, size: PageSize, a: PageAttrs| {
        pagetable::map(mem, root, vaddr, paddr, size, a).map_err(|error| LoadError::Map { pd: i, vaddr, error })
    };
    for s in segments {
        let seg = info.segment(s);
        let a = attrs(seg.perms, true);
        let pages = seg.mem_size.div_ceil(PAGE_SIZE);
        let file_pages = seg.file_size.div_ceil(PAGE_SIZE);
        for p in 0..pages {
            let vaddr = seg.vaddr + p * PAGE_SIZE;
            let paddr = if p < file_pages {
                blob_paddr + seg.data_offset + p * PAGE_SIZE
            } else {
                mem.zeroed_frame().ok_or(LoadError::OutOfMemory("PD memory"))?
            };
            map(mem, vaddr, paddr, PageSize::Small, a)?;
        }
        if seg.perms.execute && file_pages > 0 {
            arch::mmu::sync_instruction_cache(arch::phys_to_virt(blob_paddr + seg.data_offset), file_pages * PAGE_SIZE);
        }
    }
    let rw = PageAttrs { read: true, write: true, execute: false, device: false, owned: false };
    let stack_base = stack_top - stack_size;
    const { assert!(STACK_GUARD_SIZE >= PAGE_SIZE) };
    for p in 0..stack_size / PAGE_SIZE {
        let frame = mem.zeroed_frame().ok_or(LoadError::OutOfMemory("PD stacks"))?;
        map(mem, stack_base + p * PAGE_SIZE, frame, PageSize::Small, rw)?;
    }
    Ok(())
}

/// Maps every page of static region `region` at `vaddr`.
pub fn map_region(mem: &mut Memory, root: u64, region: &bootinfo::Region, vaddr: u64, a: PageAttrs) -> Result<(), MapError> {
    let size = if region.page_size == bootinfo::layout::LARGE_PAGE_SIZE { PageSize::Large } else { PageSize::Small };
    let mut off = 0;
    while off < region.size {
        pagetable::map(mem, root, vaddr + off, region.paddr + off, size, a)?;
        off += size.bytes();
    }
    Ok(())
}

/// Builds every PD and template. `blob_paddr` is where the boot blob sits in RAM.
///
/// PD slots: the description's PDs, then one per template, then every fork grant's
/// `max_instances` instance slots (see `edgeos_kernel_core::fwp`). Slot `k` uses ASID `k + 1`.
pub fn load(info: &BootInfo<'static>, blob_paddr: u64, mem: &mut Memory, frequency: u64) -> Result<Kernel<'static>, LoadError> {
    let n_pds = info.pd_count();
    let n_templates = info.template_count();
    let instance_slots = fwp::total_slots(grants(info).map(|g| g.max_instances));
    let n = n_pds + n_templates + instance_slots;
    // Regions the tool allocated in RAM without contents start zeroed.
    for r in 0..info.region_count() {
        let region = info.region(r);
        if region.flags & REGION_ZERO != 0 {
            // SAFETY: the tool placed this region in RAM below reserved_end_paddr, or it is a
            // fixed region in RAM whose frames the allocator excluded (and the frame bitmap
            // avoids); owned by no one yet. BootInfo::parse checked its bounds do not overflow.
            unsafe { memory::zero_phys(region.paddr, region.size) };
        }
    }

    let storage = Storage {
        pds: mem.alloc_table(n, Pd::EMPTY).ok_or(LoadError::OutOfMemory("PD table"))?,
        run_links: mem.alloc_table(n, Link::UNQUEUED).ok_or(LoadError::OutOfMemory("run queues"))?,
        release_heap: mem.alloc_table(n, 0u32).ok_or(LoadError::OutOfMemory("release queue"))?,
        release_pos: mem.alloc_table(n, 0u32).ok_or(LoadError::OutOfMemory("release queue"))?,
        release_time: mem.alloc_table(n, 0u64).ok_or(LoadError::OutOfMemory("release queue"))?,
        irq_owner: mem.alloc_table(MAX_IRQS, None).ok_or(LoadError::OutOfMemory("IRQ table"))?,
    };
    let mut kernel = Kernel::new(storage, info, frequency, arch::timer::KERNEL_TIMER_IRQ).map_err(LoadError::Kernel)?;
    let mut asids = AsidAllocator::new(arch::mmu::asid_bits());

    for i in 0..n_pds {
        let d = info.pd(i);
        let root = pagetable::new_root(mem).ok_or(LoadError::OutOfMemory("translation tables"))?;
        map_image(info, blob_paddr, mem, root, i, info.pd_segments(&d), (d.stack_top, d.stack_size))?;

        // Memory regions.
        for m in info.pd_maps(&d) {
            let mp = info.map(m);
            let region = info.region(mp.region as usize);
            map_region(mem, root, &region, mp.vaddr, attrs(mp.perms, mp.cached))
                .map_err(|error| LoadError::Map { pd: i, vaddr: mp.vaddr, error })?;
        }

        // The IPC buffer must be a writable page of the PD's own image.
        let ipc = if d.ipc_buffer != 0 {
            match pagetable::lookup(mem, root, d.ipc_buffer) {
                Some(leaf) if leaf.attrs.write && !leaf.attrs.device => leaf.paddr,
                _ => return Err(LoadError::BadAddress { pd: i, vaddr: d.ipc_buffer }),
            }
        } else {
            0
        };

        let (asid, rolled) = asids.alloc();
        if rolled {
            println!("edgeos: more PDs than ASIDs; address-space ids are being recycled");
            arch::mmu::flush_all_user();
        }
        let pd = &mut kernel.pds[i];
        pd.root = root;
        pd.asid = asid;
        // The kernel's address of the page (its direct map), so IPC copies need no conversion.
        pd.ipc_buffer = if ipc != 0 { arch::phys_to_virt(ipc) } else { 0 };
    }

    // Templates: loaded like PDs with their maps; an instance region is the template's own
    // zeroed copy (what its init writes there is part of the snapshot every instance starts
    // from). Each runs its init at its own priority with no grants, so its first wait blocks
    // for good: that is the checkpoint.
    for t in 0..n_templates {
        let d = info.template(t);
        let i = n_pds + t;
        let root = pagetable::new_root(mem).ok_or(LoadError::OutOfMemory("translation tables"))?;
        map_image(info, blob_paddr, mem, root, i, info.template_segments(&d), (d.stack_top, d.stack_size))?;
        for m in info.template_maps(&d) {
            let mp = info.template_map(m);
            let a = attrs(mp.perms, mp.cached);
            let error = |error| LoadError::Map { pd: i, vaddr: mp.vaddr, error };
            match mp.region {
                bootinfo::TemplateRegion::Static(r) => map_region(mem, root, &info.region(r as usize), mp.vaddr, a).map_err(error)?,
                bootinfo::TemplateRegion::Instance(r) => {
                    // 4 KiB pages whatever the region's page size, as instances map them.
                    for p in 0..info.instance_region(r as usize).size / PAGE_SIZE {
                        let frame = mem.zeroed_frame().ok_or(LoadError::OutOfMemory("template instance regions"))?;
                        pagetable::map(mem, root, mp.vaddr + p * PAGE_SIZE, frame, PageSize::Small, a).map_err(error)?;
                    }
                }
            }
        }
        let ipc = match pagetable::lookup(mem, root, d.ipc_buffer) {
            Some(leaf) if d.ipc_buffer != 0 && leaf.attrs.write && !leaf.attrs.device => leaf.paddr,
            _ => return Err(LoadError::BadAddress { pd: i, vaddr: d.ipc_buffer }),
        };
        let budget = us_to_ticks(d.budget_us, frequency);
        let period = us_to_ticks(d.period_us, frequency);
        kernel.init_template(i as PdId, budget, period, d.entry, d.stack_top);
        let (asid, _) = asids.alloc();
        let pd = &mut kernel.pds[i];
        pd.root = root;
        pd.asid = asid;
        pd.ipc_buffer = arch::phys_to_virt(ipc);
    }
    arch::mmu::table_write_barrier();
    Ok(kernel)
}

/// The fork grants of the description, in template order (template `t` is PD slot `n + t`).
fn grants<'a>(info: &'a BootInfo<'static>) -> impl Iterator<Item = GrantSpec> + 'a {
    let n_pds = info.pd_count();
    (0..info.template_count()).map(move |t| {
        let g = info.fork_grant_of(t).unwrap_or_default();
        GrantSpec { template_pd: (n_pds + t) as PdId, holder: g.pd, handle: g.handle as u8, max_instances: g.max_instances, quota: g.memory }
    })
}

/// The featherweight-process books: instance slots follow the PDs and templates `load` built.
pub fn instances(info: &BootInfo<'static>, mem: &mut Memory) -> Result<Instances<'static>, LoadError> {
    let n_templates = info.template_count();
    let instance_slots = fwp::total_slots(grants(info).map(|g| g.max_instances));
    // (A system without templates allocates nothing for them.)
    let (templates, free, charged): (&'static mut [TemplateSlots], &'static mut [u32], &'static mut [u64]) = if n_templates == 0 {
        (&mut [], &mut [], &mut [])
    } else {
        (
            mem.alloc_table(n_templates, TemplateSlots::EMPTY).ok_or(LoadError::OutOfMemory("template table"))?,
            mem.alloc_table(instance_slots, 0u32).ok_or(LoadError::OutOfMemory("instance table"))?,
            mem.alloc_table(instance_slots, 0u64).ok_or(LoadError::OutOfMemory("instance table"))?,
        )
    };
    Instances::new(
        templates,
        free,
        charged,
        (info.pd_count() + n_templates) as PdId,
        grants(info),
    )
    .ok_or(LoadError::OutOfMemory("instance table"))
}

/// The channel arrays, with their instances' slots (from the books `instances` laid out).
pub fn arrays(info: &BootInfo<'static>, mem: &mut Memory, instances: &Instances<'static>) -> Result<Arrays<'static>, LoadError> {
    let n = info.channel_array_count();
    if n == 0 {
        return Ok(Arrays::default());
    }
    let infos = mem.alloc_table(n, ArrayInfo::EMPTY).ok_or(LoadError::OutOfMemory("channel arrays"))?;
    for (a, slot) in infos.iter_mut().enumerate() {
        let ca = info.channel_array(a);
        let t = instances.template(ca.template as usize);
        *slot = ArrayInfo {
            holder: ca.pd.pd,
            holder_id: ca.pd.id as u8,
            holder_notify: ca.pd.notify,
            template: t.template_pd,
            first_slot: t.first_slot,
            max_instances: t.max_instances,
            instance_id: ca.instance_id as u8,
            instance_notify: ca.instance_notify,
            word_base: 0,
        };
    }
    let words: usize = infos.iter().map(|a| a.words() as usize).sum();
    let bits = mem.alloc_table(words.max(1), 0u64).ok_or(LoadError::OutOfMemory("channel arrays"))?;
    let bits = &mut bits[..words];
    Arrays::new(infos, bits).ok_or(LoadError::OutOfMemory("channel arrays"))
}

//! Physical memory as the kernel sees it through its direct map: frames, page tables, boot-time
//! tables sized from the description, and copies to and from PD memory.
//!
//! Every raw access to physical memory goes through the few functions here.

use core::mem::MaybeUninit;

use edgeos_kernel_core::frames::{self, FrameAllocator, FRAME_SIZE};
use edgeos_kernel_core::pagetable::{TableMemory, ENTRIES};

use crate::arch::phys_to_virt;

/// A byte slice over physical memory `[paddr, paddr + len)`.
///
/// # Safety
/// The range must be RAM inside the direct map that nothing else mutates while the slice lives.
pub unsafe fn phys_slice(paddr: u64, len: usize) -> &'static [u8] {
    // SAFETY: forwarded to the caller.
    unsafe { core::slice::from_raw_parts(phys_to_virt(paddr) as *const u8, len) }
}

/// Fills physical memory with zeroes: whole cache-line blocks with `dc zva` (one instruction
/// per block), the unaligned ends byte-wise.
///
/// # Safety
/// The range must be RAM inside the direct map owned by the caller (no live references to it).
pub unsafe fn zero_phys(paddr: u64, len: u64) {
    let start = phys_to_virt(paddr);
    let end = start + len;
    // [start, body) and [body_end, end) byte-wise, [body, body_end) by blocks. With len >= b
    // there is a multiple of b in [start, end), so body <= body_end.
    let (block, body, body_end) = match zva_block_size() {
        Some(b) if len >= b => (b, start.next_multiple_of(b), end & !(b - 1)),
        _ => (1, end, end),
    };
    // SAFETY: forwarded to the caller: only [start, end) is written. The direct map is Normal
    // cacheable memory, where DC ZVA is allowed (DCZID_EL0.DZP was checked).
    unsafe {
        if body > start {
            core::ptr::write_bytes(start as *mut u8, 0, (body - start) as usize);
        }
        let mut at = body;
        // Sixteen blocks per iteration (1 KiB with the usual 64-byte block): two instructions a
        // block instead of four, which halves the cost of zeroing a page table or a frame.
        while body_end - at >= 16 * block {
            core::arch::asm!(
                ".rept 16",
                "dc zva, {at}",
                "add {at}, {at}, {block}",
                ".endr",
                at = inout(reg) at,
                block = in(reg) block,
                options(nostack, preserves_flags),
            );
        }
        while at < body_end {
            core::arch::asm!("dc zva, {}", in(reg) at, options(nostack, preserves_flags));
            at += block;
        }
        if end > body_end {
            core::ptr::write_bytes(body_end as *mut u8, 0, (end - body_end) as usize);
        }
    }
}

/// The block `dc zva` zeroes, in bytes, if the instruction may be used.
fn zva_block_size() -> Option<u64> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    if dczid & (1 << 4) != 0 {
        return None;
    }
    Some(4 << (dczid & 0xf))
}

/// The kernel's frame allocator and everything carved from it.
pub struct Memory {
    pub frames: FrameAllocator<'static>,
}

impl Memory {
    /// Manages RAM `[start, end)` except `fixed` (ranges the description fixes there, which are
    /// not the kernel's to hand out: their frames are marked used before any allocation). The
    /// allocator's own bitmap is carved from the highest free frames clear of them (tables and
    /// PD memory come from the bottom); None if it does not fit.
    pub fn new<I>(start: u64, end: u64, fixed: I) -> Option<Memory>
    where
        I: Iterator<Item = (u64, u64)> + Clone,
    {
        let start = start.next_multiple_of(FRAME_SIZE);
        let frames_total = ((end - start) / FRAME_SIZE) as usize;
        let words = FrameAllocator::bitmap_words(frames_total);
        let bitmap_bytes = (words * 8) as u64;
        let at = frames::last_fit(start, end, bitmap_bytes, fixed.clone())?;
        // SAFETY: [at, at + bitmap_bytes) is free RAM past everything the image occupies (the
        // boot description's reserved_end_paddr), clear of every fixed region, and used for
        // nothing else; it is zeroed here (with DC ZVA, far cheaper than the allocator's own
        // fill) before the slice exists.
        let bitmap = unsafe {
            zero_phys(at, bitmap_bytes);
            core::slice::from_raw_parts_mut(phys_to_virt(at) as *mut u64, words)
        };
        let mut frames = FrameAllocator::new_zeroed(start, frames_total, bitmap);
        frames.reserve(at, at + bitmap_bytes);
        for (s, e) in fixed {
            frames.reserve(s, e);
        }
        Some(Memory { frames })
    }

    /// A zeroed frame.
    pub fn zeroed_frame(&mut self) -> Option<u64> {
        let f = self.frames.alloc()?;
        // SAFETY: the frame was just allocated: nobody else refers to it.
        unsafe { zero_phys(f, FRAME_SIZE) };
        Some(f)
    }

    /// A table of `n` values, each `init`, in fresh frames that live for the rest of the run.
    pub fn alloc_table<T: Copy>(&mut self, n: usize, init: T) -> Option<&'static mut [T]> {
        self.alloc_with(n, |_| init)
    }

    /// A table of the values `items` yields, in fresh frames that live for the rest of the run.
    /// `items` is walked twice (to count, then to fill), so it must be a pure view (of the boot
    /// description, say).
    pub fn alloc_from<T: Copy>(&mut self, items: impl Iterator<Item = T> + Clone) -> Option<&'static [T]> {
        let n = items.clone().count();
        let mut items = items;
        let table = self.alloc_with(n, |_| items.next().expect("a pure iterator yields the same items again"))?;
        Some(table)
    }

    /// A table of `n` values, the `i`th `item(i)`, in fresh frames that live for the rest of the
    /// run.
    fn alloc_with<T: Copy>(&mut self, n: usize, mut item: impl FnMut(usize) -> T) -> Option<&'static mut [T]> {
        let bytes = (n * core::mem::size_of::<T>()).max(1) as u64;
        let count = bytes.div_ceil(FRAME_SIZE) as usize;
        let align = (core::mem::align_of::<T>() as u64).max(FRAME_SIZE);
        let paddr = self.frames.alloc_contiguous(count, align)?;
        // SAFETY: the frames were just allocated for this table alone, are aligned for T, and are
        // never freed; every element is initialised before the slice is formed.
        unsafe {
            let ptr = phys_to_virt(paddr) as *mut MaybeUninit<T>;
            for i in 0..n {
                (*ptr.add(i)).write(item(i));
            }
            Some(core::slice::from_raw_parts_mut(ptr as *mut T, n))
        }
    }
}

impl TableMemory for Memory {
    fn alloc_table(&mut self) -> Option<u64> {
        self.zeroed_frame()
    }
    fn table(&mut self, paddr: u64) -> &mut [u64; ENTRIES] {
        // SAFETY: `paddr` is a table frame this allocator handed out (the page-table code only
        // follows descriptors it wrote); the borrow of self keeps it unique.
        unsafe { &mut *(phys_to_virt(paddr) as *mut [u64; ENTRIES]) }
    }
}

/// Copies `count` (at least 1) 64-bit words between two non-overlapping buffers, in pairs
/// (`ldp`/`stp`). Written out because the compiler would turn a loop into a `memcpy` call,
/// which costs more than the copy for the few words of a typical message.
///
/// # Safety
/// `from` and `to` must be valid for `count` words, 8-byte aligned and not overlap.
#[inline(always)]
pub unsafe fn copy_words(from: *const u64, to: *mut u64, count: usize) {
    // SAFETY: forwarded to the caller: exactly `count` words are read and written.
    unsafe {
        core::arch::asm!(
            "tbz {n}, #0, 2f",
            "ldr {a}, [{src}], #8",
            "str {a}, [{dst}], #8",
            "2:",
            "lsr {n}, {n}, #1",
            "cbz {n}, 4f",
            "3:",
            "ldp {a}, {b}, [{src}], #16",
            "stp {a}, {b}, [{dst}], #16",
            "subs {n}, {n}, #1",
            "b.ne 3b",
            "4:",
            src = inout(reg) from => _,
            dst = inout(reg) to => _,
            n = inout(reg) count => _,
            a = out(reg) _,
            b = out(reg) _,
            options(nostack),
        )
    }
}

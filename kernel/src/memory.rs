//! Physical memory as the kernel sees it through its direct map: frames, page tables, boot-time
//! tables sized from the description, and copies to and from PD memory.
//!
//! Every raw access to physical memory goes through the few functions here.

use core::mem::MaybeUninit;

use edgeos_kernel_core::frames::{FrameAllocator, FRAME_SIZE};
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

/// Fills physical memory with zeroes.
///
/// # Safety
/// The range must be RAM inside the direct map owned by the caller (no live references to it).
pub unsafe fn zero_phys(paddr: u64, len: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { core::ptr::write_bytes(phys_to_virt(paddr) as *mut u8, 0, len as usize) }
}

/// The kernel's frame allocator and everything carved from it.
pub struct Memory {
    pub frames: FrameAllocator<'static>,
}

impl Memory {
    /// Manages RAM `[start, end)`. The allocator's own bitmap is carved from the start.
    pub fn new(start: u64, end: u64) -> Memory {
        let start = start.next_multiple_of(FRAME_SIZE);
        let frames_total = ((end - start) / FRAME_SIZE) as usize;
        let words = FrameAllocator::bitmap_words(frames_total);
        let bitmap_bytes = (words * 8) as u64;
        let base = (start + bitmap_bytes).next_multiple_of(FRAME_SIZE);
        let frames = ((end - base) / FRAME_SIZE) as usize;
        // SAFETY: [start, start + bitmap_bytes) is free RAM past everything the image occupies
        // (the boot description's reserved_end_paddr) and is used for nothing else.
        let bitmap = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(start) as *mut u64, words) };
        Memory { frames: FrameAllocator::new(base, frames, bitmap) }
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
        let bytes = (n * core::mem::size_of::<T>()).max(1) as u64;
        let count = bytes.div_ceil(FRAME_SIZE) as usize;
        let align = (core::mem::align_of::<T>() as u64).max(FRAME_SIZE);
        let paddr = self.frames.alloc_contiguous(count, align)?;
        // SAFETY: the frames were just allocated for this table alone, are aligned for T, and are
        // never freed; every element is initialised before the slice is formed.
        unsafe {
            let ptr = phys_to_virt(paddr) as *mut MaybeUninit<T>;
            for i in 0..n {
                (*ptr.add(i)).write(init);
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

/// The message registers of an IPC buffer page.
///
/// # Safety
/// `paddr` must be the physical address of a PD's IPC buffer page (RAM, page aligned).
pub unsafe fn ipc_words(paddr: u64) -> *mut u64 {
    phys_to_virt(paddr) as *mut u64
}

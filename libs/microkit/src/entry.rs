//! Program entry (`_start`), the main function the `#[protection_domain]` macro hooks into,
//! the heap, and the panic handler.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::NonNull;

use bootinfo::layout::PD_STACK_TOP;

use crate::handler::Handler;
use crate::symbols::name_for_messages;

// The kernel starts a PD at its ELF entry with SP at the stack top; a restart (Microkit
// semantics) sets only the PC, so `_start` resets SP itself.
core::arch::global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    "_start:",
    "    ldr x9, ={stack_top}",
    "    mov sp, x9",
    "    mov x29, #0",
    "    mov x30, #0",
    "    bl __edgeos_microkit_main",
    "    udf #0",
    ".ltorg",
    stack_top = const PD_STACK_TOP,
);

/// Runs a PD: calls `init`, then drives the handler's event loop forever. Called by the code
/// `#[protection_domain]` generates.
pub fn run_main<T: Handler>(init: impl FnOnce() -> T) -> ! {
    let mut handler = init();
    match handler.run() {
        Ok(never) => match never {},
        Err(e) => panic!("handler error: {e}"),
    }
}

/// Ends a test run as passed (status 0): `debug_exit(0)`.
pub fn debug_shutdown() -> ! {
    debug_exit(0)
}

/// Ends a test run with `status` (0: passed), which becomes QEMU's exit code. Only images built
/// with `edgeos build --debug-exit` allow it; elsewhere the kernel refuses, so this PD says so on
/// the console and then only waits (no PD of a production image can power the node off).
pub fn debug_exit(status: u32) -> ! {
    if let Err(e) = crate::sys::debug_exit(status) {
        crate::debug_println!("{}: debug_exit({status}) refused ({e:?}): not a test image", crate::pd_name().unwrap_or("?"));
    }
    loop {
        crate::sys::recv(None, crate::sys::DeferredKind::None, 0);
    }
}

/// The kernel's counter value and its frequency in Hz (EdgeOS extension for measurements).
pub fn debug_time() -> (u64, u64) {
    crate::sys::debug_time()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::debug_println!("PD '{}' panicked: {}", name_for_messages(), info);
    // Fault on purpose: the parent (or, for a root PD, the kernel's report) learns of it.
    loop {
        // SAFETY: an undefined instruction only raises a fault to the kernel.
        unsafe { core::arch::asm!("udf #0") }
    }
}

/// A heap of `N` bytes inside the PD image, as the global allocator (`heap_size`).
pub struct Heap<const N: usize> {
    arena: UnsafeCell<[u8; N]>,
    heap: UnsafeCell<Option<linked_list_allocator::Heap>>,
}

// SAFETY: a PD is single-threaded and its handler never runs re-entrantly, so the allocator is
// never used from two places at once.
unsafe impl<const N: usize> Sync for Heap<N> {}

impl<const N: usize> Heap<N> {
    pub const fn new() -> Self {
        Heap { arena: UnsafeCell::new([0; N]), heap: UnsafeCell::new(None) }
    }

    #[allow(clippy::mut_from_ref)]
    fn heap(&self) -> &mut linked_list_allocator::Heap {
        // SAFETY: see the Sync impl: no other reference to the heap state is live.
        let slot = unsafe { &mut *self.heap.get() };
        slot.get_or_insert_with(|| {
            // SAFETY: the arena is this allocator's alone and lives for the whole program.
            unsafe { linked_list_allocator::Heap::new(self.arena.get() as *mut u8, N) }
        })
    }
}

impl<const N: usize> Default for Heap<N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: allocation is delegated to linked_list_allocator over memory owned by this heap.
unsafe impl<const N: usize> GlobalAlloc for Heap<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.heap().allocate_first_fit(layout).map_or(core::ptr::null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: the caller passes a pointer this allocator returned with the same layout.
            unsafe { self.heap().deallocate(p, layout) }
        }
    }
}

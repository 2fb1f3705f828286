//! The user address-space layout of a protection domain, shared by the image builder (which
//! places stacks and checks maps against them) and the kernel (which builds the page tables).

/// The small page size.
pub const PAGE_SIZE: u64 = 0x1000;
/// The large (level-2 block) page size.
pub const LARGE_PAGE_SIZE: u64 = 0x20_0000;
/// PD programs are linked from here (the first 2 MiB stay unmapped so null dereferences fault).
pub const PD_IMAGE_BASE: u64 = 0x20_0000;
/// User addresses are below this (39-bit user address space: three translation levels).
pub const USER_TOP: u64 = 1 << 39;
/// The top of every PD's stack; a guard page lies below the stack's lowest page.
pub const PD_STACK_TOP: u64 = 0x40_0000_0000;
/// Unmapped pages below each stack.
pub const STACK_GUARD_SIZE: u64 = PAGE_SIZE;

/// Rounds `v` up to a multiple of `align` (a power of two).
pub const fn align_up(v: u64, align: u64) -> u64 {
    (v + align - 1) & !(align - 1)
}

/// The addresses a PD's stack and its guard page take: `[start, PD_STACK_TOP)`. Maps must not
/// overlap this range.
pub const fn stack_reservation(stack_size: u64) -> (u64, u64) {
    (PD_STACK_TOP - stack_size - STACK_GUARD_SIZE, PD_STACK_TOP)
}

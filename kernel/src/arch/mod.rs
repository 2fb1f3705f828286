//! The aarch64 layer: boot entry, exception vectors, the console, the interrupt controller, the
//! timer, power control and translation-table registers. Almost all of the kernel's `unsafe` lives
//! here; the rest of the kernel calls these safe wrappers.

pub mod console;
pub mod context;
pub mod cpu;
pub mod gic;
pub mod mmu;
pub mod power;
pub mod timer;

core::arch::global_asm!(include_str!("boot.S"));
core::arch::global_asm!(include_str!("vectors.S"));

/// The kernel's view of physical memory: the whole of RAM and the device window are mapped at
/// this offset (TTBR1), so `phys_to_virt(p) = p + KERNEL_VIRT_OFFSET`.
pub const KERNEL_VIRT_OFFSET: u64 = 0xFFFF_FF80_0000_0000;

/// The kernel virtual address of a physical address in the direct map.
pub const fn phys_to_virt(paddr: u64) -> u64 {
    paddr + KERNEL_VIRT_OFFSET
}

/// The physical address of a kernel virtual address in the direct map (the kernel image and RAM).
pub const fn virt_to_phys(vaddr: u64) -> u64 {
    vaddr - KERNEL_VIRT_OFFSET
}

unsafe extern "C" {
    static __kernel_end: u8;
    static boot_stack_top: u8;
    static exception_vectors: u8;
}

/// The first physical byte after the kernel image (its last segment, .bss included).
pub fn kernel_phys_end() -> u64 {
    // Only the address of the linker symbol is taken, never its contents. (The kernel is in the
    // high half; `__kernel_phys_end` itself is out of reach of PC-relative addressing.)
    virt_to_phys(core::ptr::addr_of!(__kernel_end) as u64)
}

/// Per-core setup done once after the MMU is on: exception vectors, kernel stack for exception
/// entry, and no translation for user addresses until a PD runs.
pub fn init_cpu() {
    // SAFETY: the vector table and the boot stack are linked into the kernel image; the stack is
    // the one kmain runs on, and it becomes the kernel stack every exception entry resets to
    // (kmain never returns). TTBR0 walks are disabled until a PD's table is installed.
    unsafe {
        let vectors = core::ptr::addr_of!(exception_vectors) as u64;
        let stack_top = core::ptr::addr_of!(boot_stack_top) as u64;
        core::arch::asm!(
            "msr vbar_el1, {v}",
            "msr tpidr_el1, {s}",
            "isb",
            v = in(reg) vectors,
            s = in(reg) stack_top,
        );
    }
    mmu::disable_user_translation();
    timer::allow_user_counter_access();
}

/// Stops the core for good (used after a fatal error when power-off failed).
pub fn halt() -> ! {
    loop {
        cpu::wait_for_interrupt();
    }
}

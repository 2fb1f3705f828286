//! Small CPU operations and system-register reads.

use core::arch::asm;

use edgeos_kernel_core::context::FpContext;

/// Waits for an interrupt. Interrupts stay masked in the kernel; WFI still wakes on a pending one.
pub fn wait_for_interrupt() {
    // SAFETY: WFI only pauses the core.
    unsafe { asm!("wfi", options(nomem, nostack, preserves_flags)) }
}

/// The exception syndrome of the last exception taken to EL1.
pub fn esr() -> u64 {
    let v: u64;
    // SAFETY: reading a system register has no side effects.
    unsafe { asm!("mrs {}, esr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// The fault address of the last synchronous abort taken to EL1.
pub fn far() -> u64 {
    let v: u64;
    // SAFETY: reading a system register has no side effects.
    unsafe { asm!("mrs {}, far_el1", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Gives EL0 access to the FP/SIMD registers, or traps it (CPACR_EL1.FPEN = 0b11 / 0b01; EL1
/// is never trapped, so the kernel can move the registers, and never uses them otherwise).
pub fn set_user_fp_access(enabled: bool) {
    let v: u64 = if enabled { 3 << 20 } else { 1 << 20 };
    // SAFETY: CPACR_EL1 only controls FP/SIMD traps. No ISB: the setting matters only at EL0,
    // and the ERET that returns there is a context synchronization event (the kernel itself
    // never uses FP/SIMD except in fp_save/fp_restore, which EL1 may always run).
    unsafe { asm!("msr cpacr_el1, {}", in(reg) v, options(nostack, preserves_flags)) }
}

unsafe extern "C" {
    fn fp_save(to: *mut FpContext);
    fn fp_restore(from: *const FpContext);
}

/// Saves the FP/SIMD registers (q0..q31, FPCR, FPSR).
pub fn save_fp(to: &mut FpContext) {
    // SAFETY: fp_save (vectors.S) only writes the 528 bytes of `to` and clobbers x1, x2 (caller-
    // saved registers of the C ABI).
    unsafe { fp_save(to) }
}

/// Loads the FP/SIMD registers.
pub fn load_fp(from: &FpContext) {
    // SAFETY: fp_restore only reads `from` and clobbers x1, x2 and the FP registers, which the
    // kernel does not use (it is built soft-float).
    unsafe { fp_restore(from) }
}

/// The CPU's main id register, for the boot banner.
pub fn midr() -> u64 {
    let v: u64;
    // SAFETY: reading a system register has no side effects.
    unsafe { asm!("mrs {}, midr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// A readable name for the core, from MIDR.
pub fn core_name() -> &'static str {
    let midr = midr();
    let implementer = (midr >> 24) & 0xff;
    let part = (midr >> 4) & 0xfff;
    match (implementer, part) {
        (0x41, 0xd03) => "cortex-a53",
        (0x41, 0xd08) => "cortex-a72",
        (0x41, 0xd07) => "cortex-a57",
        (0x41, 0xd0c) => "neoverse-n1",
        (0x41, _) => "arm core",
        (0x00, _) => "qemu max",
        _ => "unknown core",
    }
}

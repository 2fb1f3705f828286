//! Small CPU operations and system-register reads.

use core::arch::asm;

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

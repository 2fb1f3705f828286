//! The generic timer's counter, read directly at EL0 (no system call): for timing code and
//! measuring. Under QEMU's `-icount shift=0` one tick of a 62.5 MHz counter is 16 instructions.

use core::arch::asm;

/// The virtual counter (`CNTVCT_EL0`), ordered after earlier instructions.
#[inline]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: the kernel lets EL0 read the virtual counter; reading it has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// The counter's frequency in ticks per second (`CNTFRQ_EL0`).
#[inline]
pub fn counter_frequency() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 at EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

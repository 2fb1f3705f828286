//! The generic timer. The kernel uses the EL1 physical timer (PPI 30) for scheduling events and
//! programs it only for the next real deadline; the virtual timer (PPI 27) is left to a PD that
//! the description grants IRQ 27, which may then program it from EL0.

use core::arch::asm;

/// The kernel's timer interrupt: the non-secure EL1 physical timer.
pub const KERNEL_TIMER_IRQ: u32 = 30;

/// Counter ticks per second (CNTFRQ_EL0; differs between CPU models).
pub fn frequency() -> u64 {
    let v: u64;
    // SAFETY: reading a system register has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// The current counter value.
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: the ISB orders the read after earlier instructions; no side effects.
    unsafe { asm!("isb", "mrs {}, cntpct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Arms the kernel timer to fire when the counter reaches `deadline`.
pub fn set_deadline(deadline: u64) {
    // SAFETY: programs the EL1 physical timer, which only the kernel uses.
    unsafe {
        asm!(
            "msr cntp_cval_el0, {d}",
            "msr cntp_ctl_el0, {on}",
            "isb",
            d = in(reg) deadline,
            on = in(reg) 1u64,
            options(nostack, preserves_flags)
        )
    }
}

/// Disarms the kernel timer.
pub fn cancel() {
    // SAFETY: as in set_deadline.
    unsafe { asm!("msr cntp_ctl_el0, {}", "isb", in(reg) 0u64, options(nostack, preserves_flags)) }
}

const CNTKCTL_EL0PCTEN: u64 = 1 << 0;
const CNTKCTL_EL0VCTEN: u64 = 1 << 1;
const CNTKCTL_EL0VTEN: u64 = 1 << 8;

/// Lets EL0 read the counters (for timing) but not program any timer.
pub fn allow_user_counter_access() {
    set_user_virtual_timer_access(false);
}

/// Grants or revokes EL0 access to the virtual timer's registers (switched per PD).
pub fn set_user_virtual_timer_access(allowed: bool) {
    let v = CNTKCTL_EL0PCTEN | CNTKCTL_EL0VCTEN | if allowed { CNTKCTL_EL0VTEN } else { 0 };
    // SAFETY: CNTKCTL_EL1 only controls EL0 access to the timer registers.
    unsafe { asm!("msr cntkctl_el1, {}", in(reg) v, options(nostack, preserves_flags)) }
}

//! The generic timer. The kernel uses the EL1 virtual timer (PPI 27) for scheduling events and
//! programs it only for the next real deadline; the EL1 physical timer (PPI 30) is left to a PD
//! that the description grants IRQ 30 (as seL4 does: sDDF's timer driver takes it), which may then
//! program it from EL0. The kernel's clock is the virtual counter, the one its timer compares
//! against; CNTVOFF is 0 (boot.S sets it when entered at EL2), so it reads as the physical count.

use core::arch::asm;

/// The kernel's timer interrupt: the EL1 virtual timer.
pub const KERNEL_TIMER_IRQ: u32 = 27;

/// Counter ticks per second (CNTFRQ_EL0; differs between CPU models).
pub fn frequency() -> u64 {
    let v: u64;
    // SAFETY: reading a system register has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// The current counter value (the virtual count, which the kernel timer compares against).
pub fn now() -> u64 {
    let v: u64;
    // SAFETY: the ISB orders the read after earlier instructions; no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

/// Arms the kernel timer to fire when the counter reaches `deadline`.
pub fn set_deadline(deadline: u64) {
    // SAFETY: programs the EL1 virtual timer, which only the kernel uses (EL0 never gets
    // CNTKCTL_EL1.EL0VTEN).
    unsafe {
        asm!(
            "msr cntv_cval_el0, {d}",
            "msr cntv_ctl_el0, {on}",
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
    unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) 0u64, options(nostack, preserves_flags)) }
}

const CNTKCTL_EL0PCTEN: u64 = 1 << 0;
const CNTKCTL_EL0VCTEN: u64 = 1 << 1;
const CNTKCTL_EL0PTEN: u64 = 1 << 9;

/// Lets EL0 read the counters (for timing) but not program any timer, and leaves the physical
/// timer disarmed for the PD that may get it.
pub fn allow_user_counter_access() {
    // SAFETY: the physical timer is no one's yet; disarming it has no other effect.
    unsafe { asm!("msr cntp_ctl_el0, {}", in(reg) 0u64, options(nostack, preserves_flags)) }
    set_user_physical_timer_access(false);
}

/// Grants or revokes EL0 access to the physical timer's registers (switched per PD).
pub fn set_user_physical_timer_access(allowed: bool) {
    let v = CNTKCTL_EL0PCTEN | CNTKCTL_EL0VCTEN | if allowed { CNTKCTL_EL0PTEN } else { 0 };
    // SAFETY: CNTKCTL_EL1 only controls EL0 access to the timer registers.
    unsafe { asm!("msr cntkctl_el1, {}", in(reg) v, options(nostack, preserves_flags)) }
}

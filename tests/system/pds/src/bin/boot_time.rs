//! Boot time: reads the virtual counter first thing in `init` and prints it as this PD's first
//! line. QEMU starts the counter at 0 when the machine starts, so under `-icount
//! shift=0,sleep=off` (one instruction per nanosecond, no idle time) the value counts every
//! instruction from QEMU start to this PD's first line: the kernel's boot, building every PD,
//! and the runtime's start of this PD.
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::{debug_println, protection_domain, NullHandler};
use edgeos_system_test_pds::pass;

#[protection_domain]
fn init() -> NullHandler {
    let ticks: u64;
    let frequency: u64;
    // SAFETY: reading the virtual counter and its frequency is allowed at EL0 and has no side
    // effects.
    unsafe { asm!("isb", "mrs {t}, cntvct_el0", "mrs {f}, cntfrq_el0", t = out(reg) ticks, f = out(reg) frequency) };
    let instructions = (ticks as u128 * 1_000_000_000 / frequency as u128) as u64;
    debug_println!("boot: first PD line at counter {ticks} ({instructions} instructions under -icount shift=0)");
    pass("boot time measured")
}

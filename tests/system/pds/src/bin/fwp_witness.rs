//! The lowest-priority PD of `fwp_spin`: it only runs when every higher-priority PD waits or is
//! throttled. It passes once it has run for 100 ms of counter time, which it can only do if the
//! spinning instance (higher priority, budget 1 ms per 10 ms) is throttled by its budget.
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::{protection_domain, NullHandler};
use edgeos_system_test_pds::pass;

fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter is allowed at EL0 and has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v) };
    v
}

#[protection_domain]
fn init() -> NullHandler {
    let freq: u64;
    // SAFETY: as above.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) freq) };
    let t0 = counter();
    while counter() - t0 < freq / 10 {
        core::hint::spin_loop();
    }
    pass("featherweight processes: a spinning instance is throttled by its budget")
}

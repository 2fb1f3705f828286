//! A child that faults on its first run (a store to an unmapped address) and, once its parent
//! restarts it, tells the parent on channel 0. Memory is not reset by a restart, so the run
//! counter survives it.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use edgeos_microkit::{debug_println, protection_domain, Channel, NullHandler};

static RUNS: AtomicU64 = AtomicU64::new(0);
const PARENT: Channel = Channel::new(0);

#[protection_domain]
fn init() -> NullHandler {
    let run = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    debug_println!("faulter: run {run}");
    if run == 1 {
        // SAFETY: deliberately invalid: nothing is mapped at 0x10, the kernel reports the fault.
        unsafe { core::ptr::write_volatile(0x10 as *mut u64, 1) };
        debug_println!("faulter: the store did not fault!");
    }
    PARENT.notify();
    NullHandler::new()
}

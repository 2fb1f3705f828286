//! Low priority: clears a shared flag, notifies the high-priority PD and checks that the flag is
//! already set when `notify` returns, i.e. the notification preempted it at once.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use edgeos_microkit::{memory_region_symbol, protection_domain, Channel, NullHandler};
use edgeos_system_test_pds::{check, pass};

const HIGH: Channel = Channel::new(0);

#[protection_domain]
fn init() -> NullHandler {
    let flag = memory_region_symbol!(shared_flag: *mut AtomicU64);
    // SAFETY: the region is mapped read-write for this PD and only holds atomics.
    let flag = unsafe { flag.as_ref() };
    for round in 1..=10 {
        flag.store(0, Ordering::SeqCst);
        HIGH.notify();
        let seen = flag.load(Ordering::SeqCst);
        check!(seen == round, "round {round}: the high-priority PD did not run before notify returned (flag {seen})");
        flag.store(round, Ordering::SeqCst);
    }
    pass("priority preemption")
}

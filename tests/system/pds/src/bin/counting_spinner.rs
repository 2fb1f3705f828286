//! Spins forever in `init`, counting its iterations in its `counter` map: word 0 = iterations
//! (continued across restarts), word 1 = how many times `init` started. Every 4096 iterations
//! it reads the counter-timer, as `budget_checker`'s own loop does, so that both loops cost the
//! same per iteration. Used by the `budget` and `child_stop` tests.
#![no_std]
#![no_main]

use core::ptr::{read_volatile, write_volatile};

use edgeos_microkit::{counter, debug_println, memory_region_symbol, pd_name, protection_domain, NullHandler};

#[protection_domain]
fn init() -> NullHandler {
    let c = memory_region_symbol!(counter: *mut u64).as_ptr();
    // SAFETY: the counter map is this PD's, read-write, at least 4 KiB; others only read it.
    unsafe {
        let starts = read_volatile(c.add(1)) + 1;
        write_volatile(c.add(1), starts);
        debug_println!("{}: counting (start {starts})", pd_name().unwrap_or("?"));
        let mut n = read_volatile(c);
        loop {
            n = n.wrapping_add(1);
            write_volatile(c, n);
            if n & 0xfff == 0 {
                write_volatile(c.add(2), counter());
            }
        }
    }
}

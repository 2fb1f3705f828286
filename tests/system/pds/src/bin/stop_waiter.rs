//! A child that waits for notifications (the `child_stop` test): its `report` map holds
//! [0] = 1 once `init` is done, [1] = how many `notified` calls it got, [2] = the last set's bits,
//! [3] = the first set's bits.
#![no_std]
#![no_main]

use core::ptr::{read_volatile, write_volatile};

use edgeos_microkit::{debug_println, memory_region_symbol, protection_domain, ChannelSet, Handler, Infallible};

fn report() -> *mut u64 {
    memory_region_symbol!(report: *mut u64).as_ptr()
}

struct Waiter;

#[protection_domain]
fn init() -> Waiter {
    // SAFETY: this PD's report map, read-write, 4 KiB.
    unsafe { write_volatile(report(), 1) };
    Waiter
}

impl Handler for Waiter {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        debug_println!("waiter: notified on {}", channels.display());
        // SAFETY: as in init.
        unsafe {
            let r = report();
            let calls = read_volatile(r.add(1)) + 1;
            write_volatile(r.add(1), calls);
            if calls == 1 {
                write_volatile(r.add(3), channels.bits());
            }
            write_volatile(r.add(2), channels.bits());
        }
        Ok(())
    }
}

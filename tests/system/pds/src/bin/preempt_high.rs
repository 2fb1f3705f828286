//! High priority: on every notification, writes the round number into the shared flag.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use edgeos_microkit::{memory_region_symbol, protection_domain, ChannelSet, Handler, Infallible};

struct High {
    round: u64,
}

#[protection_domain]
fn init() -> High {
    High { round: 0 }
}

impl Handler for High {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        let flag = memory_region_symbol!(shared_flag: *mut AtomicU64);
        self.round += 1;
        // SAFETY: the region is mapped read-write for this PD and only holds atomics.
        unsafe { flag.as_ref() }.store(self.round, Ordering::SeqCst);
        Ok(())
    }
}

//! Waits for a notification from each of the 61 members (channel ids 0..=60).
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, protection_domain, ChannelSet, Handler, Infallible};
use edgeos_system_test_pds::pass;

const MEMBERS: u32 = 61;

struct Collector {
    seen: u64,
}

#[protection_domain]
fn init() -> Collector {
    Collector { seen: 0 }
}

impl Handler for Collector {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        self.seen |= channels.bits();
        if self.seen.count_ones() == MEMBERS {
            debug_println!("collector: all {MEMBERS} members reported");
            pass("62 protection domains");
        }
        Ok(())
    }
}

//! Benchmark echo: answers every notification on channel 0 with a notify from its handler.
#![no_std]
#![no_main]

use edgeos_microkit::{protection_domain, Channel, ChannelSet, Handler, Infallible};

const CLIENT: Channel = Channel::new(0);

struct Echo;

#[protection_domain]
fn init() -> Echo {
    Echo
}

impl Handler for Echo {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        CLIENT.notify();
        Ok(())
    }
}

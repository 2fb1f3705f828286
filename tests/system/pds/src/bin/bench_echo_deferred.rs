//! Benchmark echo: answers every notification with a deferred notify on channel 0 (performed by
//! the runtime together with its next wait: one system call instead of two).
#![no_std]
#![no_main]

use edgeos_microkit::{protection_domain, Channel, ChannelSet, DeferredAction, Handler, Infallible};

const CLIENT: Channel = Channel::new(0);

struct Echo {
    answer: bool,
}

#[protection_domain]
fn init() -> Echo {
    Echo { answer: false }
}

impl Handler for Echo {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        self.answer = true;
        Ok(())
    }

    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        core::mem::take(&mut self.answer).then(|| DeferredAction::new_notify(CLIENT))
    }
}

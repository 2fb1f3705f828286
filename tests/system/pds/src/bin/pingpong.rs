//! Ping-pong over one channel. The PD named `ping` starts and counts round trips; `pong`
//! answers every notification with a deferred notify (fused with its next wait).
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, pd_name, protection_domain, Channel, ChannelSet, DeferredAction, Handler, Infallible};
use edgeos_system_test_pds::{check, pass};

const PEER: Channel = Channel::new(0);
const ROUNDS: u64 = 1000;

struct PingPong {
    ping: bool,
    rounds: u64,
    answer: bool,
}

#[protection_domain]
fn init() -> PingPong {
    let ping = pd_name() == Ok("ping");
    if ping {
        debug_println!("ping: starting {ROUNDS} round trips");
        PEER.notify();
    }
    PingPong { ping, rounds: 0, answer: false }
}

impl Handler for PingPong {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        check!(channels.contains(PEER), "notified on {} instead of channel 0", channels.display());
        self.rounds += 1;
        if self.ping {
            if self.rounds == ROUNDS {
                pass("ping-pong: 1000 round trips");
            }
            PEER.notify();
        } else {
            self.answer = true;
        }
        Ok(())
    }

    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        core::mem::take(&mut self.answer).then(|| DeferredAction::new_notify(PEER))
    }
}

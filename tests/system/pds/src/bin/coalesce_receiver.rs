//! The receiver of the `notify_coalesce` test, below both senders' priority: every round the
//! senders notify it on several channels (some twice) before it can run, so one `notified`
//! call must carry exactly the round's channels (all of them: none lost, none spurious; a
//! channel notified twice is one bit). Then it asks `sender_a` for the next round on channel 0,
//! which preempts it at once. It passes after every round, checking that most rounds delivered
//! two or more channels in one call.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, protection_domain, Channel, ChannelSet, Handler, Infallible};
use edgeos_system_test_pds::{check, pass};

/// As in `coalesce_sender`.
const PATTERNS: [u64; 8] = [0b1110, 0b0110, 0b1010, 0b1100, 0b0010, 0b1110, 0b1000, 0b1110];
const TO_SENDER_A: Channel = Channel::new(0);

struct Receiver {
    round: usize,
    multi: usize,
}

#[protection_domain]
fn init() -> Receiver {
    Receiver { round: 0, multi: 0 }
}

impl Handler for Receiver {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        check!(self.round < PATTERNS.len(), "notified on {} after the last round", channels.display());
        let expected = PATTERNS[self.round];
        debug_println!("receiver: round {}: notified on {}", self.round, channels.display());
        check!(
            channels.bits() == expected,
            "round {}: one notified call carried {}, expected the bits {expected:#b} together",
            self.round,
            channels.display()
        );
        let n = channels.iter().count();
        check!(n as u32 == expected.count_ones(), "round {}: the set iterates {n} channels", self.round);
        if n >= 2 {
            self.multi += 1;
        }
        self.round += 1;
        if self.round == PATTERNS.len() {
            check!(self.multi == 6, "only {} rounds delivered several channels at once", self.multi);
            pass("notifications sent before the receiver runs arrive together in one ChannelSet");
        }
        TO_SENDER_A.notify();
        Ok(())
    }
}

//! The senders of the `notify_coalesce` test, both above the receiver's priority. Round `r`
//! (round 0 from `sender_a`'s init, later rounds when the receiver signals `sender_a` on
//! channel 0): `sender_a` notifies the receiver on channels 1 and 2 as `PATTERNS[r]` says (each
//! twice), then signals `sender_b` on channel 5, which notifies channel 3 (twice) if the pattern
//! has it. All of it happens before the receiver runs again. The patterns are repeated in
//! `coalesce_receiver`.
#![no_std]
#![no_main]

use edgeos_microkit::{pd_name, protection_domain, Channel, ChannelSet, Handler, Infallible};
use edgeos_system_test_pds::{check, fail};

/// The receiver's channels set in each round (bit i = channel i).
const PATTERNS: [u64; 8] = [0b1110, 0b0110, 0b1010, 0b1100, 0b0010, 0b1110, 0b1000, 0b1110];
/// `sender_a` hears "next round" from the receiver here; `sender_b` from `sender_a` on 5.
const FROM_RECEIVER: Channel = Channel::new(0);
const A_TO_B: Channel = Channel::new(5);

struct Sender {
    is_a: bool,
    round: usize,
}

impl Sender {
    fn send_round(&mut self) {
        check!(self.round < PATTERNS.len(), "{}: round {} past the last", pd_name().unwrap_or("?"), self.round);
        let pattern = PATTERNS[self.round];
        let mine: &[usize] = if self.is_a { &[1, 2] } else { &[3] };
        for _ in 0..2 {
            for &ch in mine {
                if pattern & (1 << ch) != 0 {
                    Channel::new(ch).notify();
                }
            }
        }
        if self.is_a {
            A_TO_B.notify();
        }
        self.round += 1;
    }
}

#[protection_domain]
fn init() -> Sender {
    let is_a = match pd_name() {
        Ok("sender_a") => true,
        Ok("sender_b") => false,
        other => fail(format_args!("unexpected PD name {other:?}")),
    };
    let mut s = Sender { is_a, round: 0 };
    if is_a {
        s.send_round();
    }
    s
}

impl Handler for Sender {
    type Error = Infallible;

    fn notified(&mut self, channels: ChannelSet) -> Result<(), Infallible> {
        let expected = if self.is_a { FROM_RECEIVER } else { A_TO_B };
        check!(
            channels.bits() == 1 << expected.index(),
            "{}: notified on {}, expected only {}",
            pd_name().unwrap_or("?"),
            channels.display(),
            expected.index()
        );
        self.send_round();
        Ok(())
    }
}

//! Measures round trips in counter ticks and, under QEMU `-icount shift=0` (one instruction per
//! nanosecond), in guest instructions: protected calls to a passive and to an active server
//! (0 and 4 message registers), and notification round trips to an echo PD of equal and of
//! higher priority (the echo answers with a deferred notify).
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::{debug_println, protection_domain, set_mr, Channel, ChannelSet, Handler, Infallible, MessageInfo};
use edgeos_system_test_pds::pass;

const PASSIVE: Channel = Channel::new(1);
const ACTIVE: Channel = Channel::new(2);
const ECHO_EQUAL: Channel = Channel::new(3);
const ECHO_HIGHER: Channel = Channel::new(4);
const WARMUP: u64 = 100;
const ROUNDS: u64 = 10_000;

fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter is allowed at EL0 and has no side effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v) };
    v
}

fn frequency() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 at EL0 has no side effects.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) v) };
    v
}

fn report(what: &str, ticks: u64) {
    // Under -icount shift=0 one nanosecond is one instruction.
    let instructions = ticks * 1_000_000_000 / frequency() / ROUNDS;
    debug_println!("bench: {what}: {instructions} instructions per round trip ({ticks} ticks for {ROUNDS})");
}

fn bench_calls(what: &str, channel: Channel, mrs: usize) {
    for i in 0..mrs {
        set_mr(i, i as u64);
    }
    for _ in 0..WARMUP {
        channel.pp_call(MessageInfo::new(1, mrs));
    }
    let start = counter();
    for _ in 0..ROUNDS {
        channel.pp_call(MessageInfo::new(1, mrs));
    }
    report(what, counter() - start);
}

struct Client {
    channel: Channel,
    count: u64,
    start: u64,
}

#[protection_domain]
fn init() -> Client {
    bench_calls("protected call, passive server, 0 MRs", PASSIVE, 0);
    bench_calls("protected call, passive server, 4 MRs", PASSIVE, 4);
    bench_calls("protected call, active server, 0 MRs", ACTIVE, 0);
    ECHO_EQUAL.notify();
    Client { channel: ECHO_EQUAL, count: 0, start: 0 }
}

impl Handler for Client {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        self.count += 1;
        if self.count == WARMUP {
            self.start = counter();
        }
        if self.count == WARMUP + ROUNDS {
            let ticks = counter() - self.start;
            if self.channel == ECHO_EQUAL {
                report("notify round trip, equal priority", ticks);
                self.channel = ECHO_HIGHER;
                self.count = 0;
            } else {
                report("notify round trip, higher priority", ticks);
                pass("benchmarks ran");
            }
        }
        self.channel.notify();
        Ok(())
    }
}

//! Measures round trips in counter ticks and, under QEMU `-icount shift=0` (one instruction per
//! nanosecond), in guest instructions. Every figure includes both runtimes' event loops.
//!
//! - protected calls to a passive and to an active server, with 0 and 4 message registers;
//!   once with the FP/SIMD registers held by a third PD (`fp_holder`, notified right before the
//!   timed loop, so no PD in the loop owns them: the kernel switches FP/SIMD lazily and never
//!   touches it then), and once with the caller owning them (the kernel then enables and
//!   disables FP/SIMD access on every switch);
//! - notification ping-pong with an echo PD of equal and of higher priority that answers with a
//!   plain notify from its handler (`echo_*`), and with one that answers with a deferred notify
//!   fused with its next wait (`echo_*_deferred`).
//!
//! The PD named `client` runs them all. A PD named `client-KEY` runs only the benchmark KEY
//! (`tests/system/profile.sh` uses this to trace one benchmark at a time).
//!
//! Measuring starts only once every PD has run its `init` and waits: `init` sends one
//! notification round trip through an equal-priority echo and the benchmarks start when it
//! comes back. (PDs of the client's priority queued behind it for their `init` would otherwise
//! make the kernel keep a time slice armed for the client, which changes the figures.)
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::{debug_println, pd_name, protection_domain, set_mr, Channel, ChannelSet, Handler, Infallible, MessageInfo};
use edgeos_system_test_pds::pass;

const PASSIVE: Channel = Channel::new(1);
const ACTIVE: Channel = Channel::new(2);
const FP_HOLDER: Channel = Channel::new(7);
const WARMUP: u64 = 100;
const ROUNDS: u64 = 10_000;

/// A protected-call benchmark: key, what it prints, channel, message registers, whether the
/// caller owns the FP/SIMD registers.
const CALLS: [(&str, &str, Channel, usize, bool); 6] = [
    ("call-passive-0", "protected call, passive server, 0 MRs", PASSIVE, 0, false),
    ("call-passive-4", "protected call, passive server, 4 MRs", PASSIVE, 4, false),
    ("call-active-0", "protected call, active server, 0 MRs", ACTIVE, 0, false),
    ("call-active-4", "protected call, active server, 4 MRs", ACTIVE, 4, false),
    ("call-passive-0-fp", "protected call, passive server, 0 MRs, caller uses FP", PASSIVE, 0, true),
    ("call-active-0-fp", "protected call, active server, 0 MRs, caller uses FP", ACTIVE, 0, true),
];

/// A notification benchmark: key, what it prints, channel to its echo PD.
const NOTIFIES: [(&str, &str, Channel); 4] = [
    ("notify-equal", "notify round trip, equal priority", Channel::new(3)),
    ("notify-higher", "notify round trip, higher priority", Channel::new(4)),
    ("notify-equal-deferred", "notify round trip, equal priority, deferred answer", Channel::new(5)),
    ("notify-higher-deferred", "notify round trip, higher priority, deferred answer", Channel::new(6)),
];

use edgeos_microkit::{counter, counter_frequency as frequency};

fn report(what: &str, ticks: u64) {
    // Under -icount shift=0 one nanosecond is one instruction.
    let instructions = ticks * 1_000_000_000 / frequency() / ROUNDS;
    debug_println!("bench: {what}: {instructions} instructions per round trip ({ticks} ticks for {ROUNDS})");
}

/// Who holds the FP/SIMD registers during a timed loop (see the module docs).
fn place_fp(caller_uses_fp: bool) {
    if caller_uses_fp {
        // SAFETY: writes only v31, declared as clobbered.
        unsafe { asm!("movi v31.2d, #0", out("v31") _) };
    } else {
        FP_HOLDER.notify();
    }
}

fn bench_calls(what: &str, channel: Channel, mrs: usize, caller_uses_fp: bool) {
    for i in 0..mrs {
        set_mr(i, i as u64);
    }
    for _ in 0..WARMUP {
        channel.pp_call(MessageInfo::new(1, mrs));
    }
    place_fp(caller_uses_fp);
    let start = counter();
    for _ in 0..ROUNDS {
        channel.pp_call(MessageInfo::new(1, mrs));
    }
    report(what, counter() - start);
}

/// True if this PD runs the benchmark `key`.
fn selected(key: &str) -> bool {
    match pd_name() {
        Ok("client") => true,
        Ok(name) => name.strip_prefix("client-") == Some(key),
        Err(_) => false,
    }
}

struct Client {
    /// Whether the benchmarks have started (see the module docs).
    started: bool,
    /// The notification benchmark running (index into NOTIFIES), if any.
    current: Option<usize>,
    count: u64,
    start: u64,
}

impl Client {
    /// Starts the first selected notification benchmark at or after `from`, or ends the run.
    fn start_from(&mut self, from: usize) {
        self.count = 0;
        self.current = (from..NOTIFIES.len()).find(|&i| selected(NOTIFIES[i].0));
        match self.current {
            Some(i) => {
                place_fp(false);
                NOTIFIES[i].2.notify();
            }
            None => pass("benchmarks ran"),
        }
    }
}

/// The equal-priority echo whose answer starts the benchmarks.
const SETTLE: Channel = Channel::new(5);

#[protection_domain]
fn init() -> Client {
    SETTLE.notify();
    Client { started: false, current: None, count: 0, start: 0 }
}

impl Client {
    fn run_all(&mut self) {
        self.started = true;
        for (key, what, channel, mrs, caller_uses_fp) in CALLS {
            if selected(key) {
                bench_calls(what, channel, mrs, caller_uses_fp);
            }
        }
        self.start_from(0);
    }
}

impl Handler for Client {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        if !self.started {
            self.run_all();
            return Ok(());
        }
        let Some(i) = self.current else { return Ok(()) };
        self.count += 1;
        if self.count == WARMUP {
            self.start = counter();
        }
        if self.count == WARMUP + ROUNDS {
            report(NOTIFIES[i].1, counter() - self.start);
            self.start_from(i + 1);
            return Ok(());
        }
        NOTIFIES[i].2.notify();
        Ok(())
    }
}

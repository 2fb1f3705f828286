//! Shares its priority with a spinner (`peer`) and sits below a higher-priority spinner with a
//! partial budget (`greedy`, 2 ms every 10 ms). Both are `counting_spinner`s counting their
//! iterations in maps this PD reads. For one second this PD spins too, reading the timer every
//! 4096 iterations: a jump of over 250 µs means it was preempted, anything else is its own
//! running time. The rest of the second went to greedy and peer, split as their iteration
//! counts (same program, same loop). Greedy is entitled to 20%, the two priority-50 PDs split
//! the rest. It checks that greedy got a bounded share (under 35%: a budget that is not
//! enforced gives it far more, or starves this PD for good) but not nothing (its budget is
//! replenished every period), and that both round-robin peers got a fair part.
//!
//! The test runs under `-icount` (qemu-args): time is the instruction count, so the timer fires
//! exactly on time whatever the load on the host.
#![no_std]
#![no_main]

use core::ptr::{read_volatile, write_volatile};

use edgeos_microkit::{counter, counter_frequency, debug_println, memory_region_symbol, protection_domain, NullHandler};
use edgeos_system_test_pds::{check, pass};

static mut OWN: u64 = 0;

fn greedy() -> u64 {
    // SAFETY: greedy's counter map, read-only here.
    unsafe { read_volatile(memory_region_symbol!(greedy_counter: *mut u64).as_ptr()) }
}

fn peer() -> u64 {
    // SAFETY: peer's counter map, read-only here.
    unsafe { read_volatile(memory_region_symbol!(peer_counter: *mut u64).as_ptr()) }
}

#[protection_domain]
fn init() -> NullHandler {
    let freq = counter_frequency();
    let (g0, p0) = (greedy(), peer());
    let start = counter();
    let mut last = start;
    let mut preempted = 0u64;
    let mut ran = 0u64;
    let mut n = 0u64;
    let now = loop {
        n = n.wrapping_add(1);
        // SAFETY: this PD's own counter; nothing else uses it.
        unsafe { write_volatile(&raw mut OWN, n) };
        if n & 0xfff == 0 {
            let now = counter();
            if now - last > freq / 4000 {
                preempted += 1;
            } else {
                ran += now - last;
            }
            last = now;
            if now - start >= freq {
                break now;
            }
        }
    };
    let (g, p) = (greedy() - g0, peer() - p0);
    check!(g + p > 0, "neither spinner ran in 1 s");
    // Shares of the second, in permille.
    let own = ran * 1000 / (now - start);
    let others = 1000 - own.min(1000);
    let (greedy_share, peer_share) = (others * g / (g + p), others * p / (g + p));
    debug_println!(
        "checker: in 1 s: checker ran {own}‰ (preempted {preempted} times); greedy {g} and peer {p} iterations: \
         greedy {greedy_share}‰, peer {peer_share}‰"
    );
    check!(greedy_share < 350, "greedy (budget 2 ms / 10 ms) got {greedy_share}‰ of the time, more than 35%");
    check!(greedy_share > 50, "greedy got only {greedy_share}‰ of the time: its budget is not replenished");
    check!(own > 150, "the checker got only {own}‰ of the time");
    check!(peer_share > 150, "the peer got only {peer_share}‰ of the time");
    pass("budgets: a budget-limited spinner gets a bounded share, its peers the rest")
}

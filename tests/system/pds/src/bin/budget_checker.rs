//! Shares its priority with a spinner and sits below a higher-priority spinner with a partial
//! budget: it passes if it gets the CPU for a while and sees time advance.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, debug_time, protection_domain, NullHandler};
use edgeos_system_test_pds::pass;

#[protection_domain]
fn init() -> NullHandler {
    let (start, freq) = debug_time();
    let mut slices = 0u64;
    let mut last = start;
    // Count how often time jumps (others ran) while we wait for 50 ms to pass.
    loop {
        let (now, _) = debug_time();
        if now - last > freq / 10_000 {
            slices += 1;
        }
        last = now;
        if now - start > freq / 20 {
            break;
        }
    }
    debug_println!("checker: ran through 50 ms, preempted {slices} times by the spinners");
    edgeos_system_test_pds::check!(slices > 0, "the spinners never ran");
    pass("budgets: spinning PDs do not starve others")
}

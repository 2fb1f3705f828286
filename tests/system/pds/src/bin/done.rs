//! Runs last (lowest priority): when it gets the CPU every other PD has finished its `init`
//! and waits, so the test passes.
#![no_std]
#![no_main]

use edgeos_microkit::{pd_name, protection_domain, NullHandler};

#[protection_domain]
fn init() -> NullHandler {
    edgeos_system_test_pds::pass(pd_name().unwrap_or("done"))
}

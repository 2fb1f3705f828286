//! Fails the run on purpose (the `exit_status` test): the runner must see QEMU exit with
//! status 1, so a failing test can never look like a passing one.
#![no_std]
#![no_main]

use edgeos_microkit::{protection_domain, NullHandler};

#[protection_domain]
fn init() -> NullHandler {
    edgeos_system_test_pds::fail(format_args!("on purpose: the runner expects exit status 1"))
}

//! Spins forever in `init`: only budgets let anything else run.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, pd_name, protection_domain, NullHandler};

#[protection_domain]
fn init() -> NullHandler {
    debug_println!("{}: spinning forever", pd_name().unwrap_or("?"));
    loop {
        core::hint::spin_loop();
    }
}

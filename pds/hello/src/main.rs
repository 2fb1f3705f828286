//! A protection domain that prints `hello from PD <name>` and then waits for events forever.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use edgeos_microkit::{debug_println, pd_name, protection_domain, Handler, Infallible};

#[protection_domain]
fn init() -> Hello {
    debug_println!("hello from PD {}", pd_name().unwrap_or("?"));
    Hello
}

struct Hello;

impl Handler for Hello {
    type Error = Infallible;
}

//! One of many PDs: notifies the collector once and waits.
#![no_std]
#![no_main]

use edgeos_microkit::{protection_domain, Channel, NullHandler};

#[protection_domain]
fn init() -> NullHandler {
    Channel::new(0).notify();
    NullHandler::new()
}

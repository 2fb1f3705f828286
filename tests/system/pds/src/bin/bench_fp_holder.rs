//! Benchmark helper: takes the FP/SIMD registers when notified (it uses one FP instruction, so
//! the kernel's lazy FP switching makes it the owner). The bench client notifies it right before
//! a timed loop, so the PDs in the loop do not own the FP/SIMD registers and the figures do not
//! depend on whether the client's own code happened to use SIMD before the loop.
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::{protection_domain, ChannelSet, Handler, Infallible};

struct Holder;

#[protection_domain]
fn init() -> Holder {
    Holder
}

impl Handler for Holder {
    type Error = Infallible;

    fn notified(&mut self, _channels: ChannelSet) -> Result<(), Infallible> {
        // SAFETY: writes only v31, declared as clobbered.
        unsafe { asm!("movi v31.2d, #0", out("v31") _) };
        Ok(())
    }
}

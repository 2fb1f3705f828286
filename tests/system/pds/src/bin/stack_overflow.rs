//! A child that recurses until its stack runs into the guard page.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, protection_domain, NullHandler};

#[inline(never)]
#[allow(unconditional_recursion)] // the point: it only ends in the guard page
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 64];
    core::hint::black_box(&frame);
    recurse(depth + 1) + core::hint::black_box(frame[3])
}

#[protection_domain]
fn init() -> NullHandler {
    debug_println!("stack_overflow: recursing");
    let n = recurse(0);
    debug_println!("stack_overflow: returned {n}?!");
    NullHandler::new()
}

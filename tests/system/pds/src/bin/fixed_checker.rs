//! Checks that memory regions fixed in RAM kept their prefilled contents through boot: the
//! kernel's frame allocator must exclude their frames (stacks, page tables and the frame bitmap
//! would otherwise land on them). Each region holds tests/system/fixed_regions/pattern.txt:
//! 256 lines of 64 bytes, "fixed region line NNNN " padded with dots.
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, memory_region_symbol, protection_domain, NullHandler};
use edgeos_system_test_pds::{check, pass};

const LINES: usize = 256;
const LINE: usize = 64;

/// Byte `at` of line `i` of the pattern.
fn expected(i: usize, at: usize) -> u8 {
    const PREFIX: &[u8] = b"fixed region line ";
    match at {
        _ if at < PREFIX.len() => PREFIX[at],
        _ if at < PREFIX.len() + 4 => {
            let digit = PREFIX.len() + 3 - at;
            b'0' + (i / 10usize.pow(digit as u32) % 10) as u8
        }
        _ if at == PREFIX.len() + 4 => b' ',
        _ if at < LINE - 1 => b'.',
        _ => b'\n',
    }
}

fn check_region(name: &str, region: *mut u8) {
    for i in 0..LINES {
        for at in 0..LINE {
            // SAFETY: the region is mapped (read-only, 16 KiB) at the patched address.
            let got = unsafe { core::ptr::read_volatile(region.add(i * LINE + at)) };
            check!(got == expected(i, at), "region {name}: byte {at} of line {i} is {got:#x}, not {:#x}", expected(i, at));
        }
    }
}

#[protection_domain]
fn init() -> NullHandler {
    check_region("low", memory_region_symbol!(low_region: *mut u8).as_ptr());
    check_region("top", memory_region_symbol!(top_region: *mut u8).as_ptr());
    debug_println!("fixed_checker: both fixed regions hold their {LINES} lines");
    pass("fixed regions in RAM keep their contents")
}

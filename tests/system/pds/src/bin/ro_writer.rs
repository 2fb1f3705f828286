//! A child with a read-only map: reads it (allowed), then writes it (must fault).
#![no_std]
#![no_main]

use edgeos_microkit::{debug_println, memory_region_symbol, protection_domain, NullHandler};

#[protection_domain]
fn init() -> NullHandler {
    let region = memory_region_symbol!(ro_region: *mut u64);
    // SAFETY: the region is mapped (read-only) at the patched address.
    let value = unsafe { core::ptr::read_volatile(region.as_ptr()) };
    debug_println!("ro_writer: read {value:#x}, now writing to the read-only map");
    // SAFETY: deliberately forbidden: the map is read-only, so the kernel reports a fault.
    unsafe { core::ptr::write_volatile(region.as_ptr(), 0xdead) };
    debug_println!("ro_writer: the write did not fault!");
    NullHandler::new()
}

//! Tries everything the description does not grant, through raw system calls (bypassing the
//! runtime's own checks), and expects the kernel to refuse each with the right error.
#![no_std]
#![no_main]

use edgeos_microkit::sys::{self, Error, RawMessageInfo};
use edgeos_microkit::{debug_println, protection_domain, NullHandler};
use edgeos_system_test_pds::{check, pass};

#[protection_domain]
fn init() -> NullHandler {
    // Channel 0 is granted for notify only; nothing else is granted at all.
    check!(sys::notify(0).is_ok(), "granted notify refused");
    let refusals: [(&str, Result<(), Error>, Error); 10] = [
        ("notify on an unused id", sys::notify(5), Error::NotGranted),
        ("pp_call on a notify-only channel", sys::pp_call(0, RawMessageInfo::new(1, 0)).map(|_| ()), Error::NotGranted),
        ("irq_ack on a channel", sys::irq_ack(0), Error::NotGranted),
        ("irq_ack on an unused id", sys::irq_ack(9), Error::NotGranted),
        ("notify on id 62", sys::notify(62), Error::InvalidChannel),
        ("notify on a huge id", sys::notify(u64::MAX), Error::InvalidChannel),
        ("restart of a non-child", sys::pd_restart(0, 0x20_0000), Error::InvalidChild),
        ("stop of child 61", sys::pd_stop(61), Error::InvalidChild),
        ("print from an unmapped address", sys::debug_puts(
            // SAFETY: never dereferenced here; the kernel must refuse the address.
            unsafe { core::slice::from_raw_parts(0x10 as *const u8, 8) }), Error::InvalidAddress),
        ("print from kernel memory", sys::debug_puts(
            // SAFETY: never dereferenced here; the kernel must refuse the address.
            unsafe { core::slice::from_raw_parts(0xffff_ff80_4020_0000usize as *const u8, 8) }), Error::InvalidAddress),
    ];
    for (what, got, want) in refusals {
        check!(got == Err(want), "{what}: expected {want:?}, got {got:?}");
        debug_println!("ungranted: {what}: refused ({want})");
    }
    check!(sys::raw_call(1234, 0, 0) == Error::InvalidCall as u64, "unknown call not refused");
    pass("ungranted uses refused with errors, kernel unharmed")
}

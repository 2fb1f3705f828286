//! Helpers shared by the system-test PDs: the pass/fail markers the test runner looks for.
#![no_std]

use edgeos_microkit::{debug_println, debug_shutdown};

/// Prints the pass marker and powers the machine off.
pub fn pass(what: &str) -> ! {
    debug_println!("EDGEOS-TEST: PASS ({what})");
    debug_shutdown()
}

/// Prints the fail marker and powers the machine off.
pub fn fail(why: core::fmt::Arguments) -> ! {
    debug_println!("EDGEOS-TEST: FAIL ({why})");
    debug_shutdown()
}

/// Fails the test unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::fail(format_args!($($arg)*));
        }
    };
}

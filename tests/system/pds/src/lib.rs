//! Helpers shared by the system-test PDs: the pass/fail markers the test runner looks for.
#![no_std]

use edgeos_microkit::{debug_exit, debug_println, debug_shutdown};

/// Prints the pass marker and ends the run with status 0.
pub fn pass(what: &str) -> ! {
    debug_println!("EDGEOS-TEST: PASS ({what})");
    debug_shutdown()
}

/// Prints the fail marker and ends the run with status 1.
pub fn fail(why: core::fmt::Arguments) -> ! {
    debug_println!("EDGEOS-TEST: FAIL ({why})");
    debug_exit(1)
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

/// Assembly text (for one `asm!` template) that fills every vector register and FPCR with a
/// pattern: the low half of `vN` gets `{base} + N`, the high half its complement, and FPCR gets
/// `{fpcr}`. Clobbers x11 and v0..v31; the `asm!` that uses it names the operands `base` and
/// `fpcr`. Used by `fp_client` and `fp_server` (the `fp_switch` test).
#[macro_export]
macro_rules! fp_fill_asm {
    () => {
        $crate::fp_regs_asm!(fill: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26
            27 28 29 30 31)
    };
}

/// Assembly text that checks every vector register and FPCR still hold what [`fp_fill_asm!`]
/// put there (same `{base}` and `{fpcr}`), branching to the local label `2` forward (`b.ne 2f`)
/// at the first difference and falling through if all match. Clobbers x9 and x11.
#[macro_export]
macro_rules! fp_check_asm {
    () => {
        $crate::fp_regs_asm!(check: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26
            27 28 29 30 31)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! fp_regs_asm {
    (fill: $($n:literal)*) => {
        concat!(
            $(
                "add x11, {base}, #", $n, "\n",
                "fmov d", $n, ", x11\n",
                "mvn x11, x11\n",
                "mov v", $n, ".d[1], x11\n",
            )*
            "msr fpcr, {fpcr}\n",
        )
    };
    (check: $($n:literal)*) => {
        concat!(
            $(
                "add x11, {base}, #", $n, "\n",
                "fmov x9, d", $n, "\n",
                "cmp x9, x11\n",
                "b.ne 2f\n",
                "mvn x11, x11\n",
                "mov x9, v", $n, ".d[1]\n",
                "cmp x9, x11\n",
                "b.ne 2f\n",
            )*
            "mrs x9, fpcr\n",
            "cmp x9, {fpcr}\n",
            "b.ne 2f\n",
        )
    };
}

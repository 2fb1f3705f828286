//! FP/SIMD switching test, client side: fills all 32 vector registers and FPCR with a pattern,
//! makes a protected call to `fp_server` (which fills them with its own), and checks its own
//! values after the call returns, all in one assembly block so no compiled code runs between
//! filling and checking. The kernel switches FP/SIMD lazily: each side's first FP instruction
//! after a switch traps and moves the registers.
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::sys::number;
use edgeos_microkit::{debug_println, protection_domain, Channel, NullHandler};
use edgeos_system_test_pds::{check, fp_check_asm, fp_fill_asm, pass};

const SERVER: Channel = Channel::new(1);
const ROUNDS: u64 = 200;
/// Round toward plus infinity: not the default, so a lost FPCR shows.
const FPCR: u64 = 1 << 22;

/// One round: returns true if every register came back as it was.
fn round(base: u64) -> bool {
    let ok: u64;
    // SAFETY: the block writes only the registers it declares (all vector registers, x0..x4,
    // x8, x9, x11) and restores FPCR to 0 (the default the compiled code assumes) before it ends;
    // `svc` is a protected call on a granted channel, after which the kernel preserves every
    // register but x0..x4.
    unsafe {
        asm!(
            fp_fill_asm!(),
            "mov x0, {ch}",
            "mov x1, #0",
            "mov x8, {pp_call}",
            "svc #0",
            fp_check_asm!(),
            "mov {ok}, #1",
            "b 3f",
            "2:",
            "mov {ok}, #0",
            "3:",
            "msr fpcr, xzr",
            base = in(reg) base,
            fpcr = in(reg) FPCR,
            ch = const SERVER.index(),
            pp_call = const number::PP_CALL,
            ok = lateout(reg) ok,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _, out("x4") _, out("x8") _, out("x9") _, out("x11") _,
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _, out("v14") _, out("v15") _, out("v16") _, out("v17") _, out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _, out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _, out("v30") _, out("v31") _,
        );
    }
    ok == 1
}

#[protection_domain]
fn init() -> NullHandler {
    for i in 0..ROUNDS {
        let base = 0x1234_5678_0000_0000 + i * 0x100;
        check!(round(base), "FP/SIMD registers or FPCR changed across a protected call (round {i})");
    }
    debug_println!("fp: {ROUNDS} protected calls, FP/SIMD state kept on both sides");
    pass("lazy FP/SIMD switching keeps each PD's registers")
}

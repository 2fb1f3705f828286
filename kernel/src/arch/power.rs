//! How the machine ends: PSCI SYSTEM_OFF, through HVC when the kernel was entered at EL1 (QEMU's
//! default) or SMC when it was entered at EL2 (QEMU `virtualization=on`, where no hypervisor is
//! there to answer HVC); or, in a test image (boot flag `FLAG_DEBUG_EXIT`), semihosting
//! `SYS_EXIT`, which makes QEMU exit with the run's status so a test verdict is an exit code.

use core::sync::atomic::{AtomicBool, Ordering};

use smccc::{Hvc, Smc};

static USE_SMC: AtomicBool = AtomicBool::new(false);
static SEMIHOSTING: AtomicBool = AtomicBool::new(false);

/// Records the PSCI conduit; `entered_el2` comes from the boot code.
pub fn init(entered_el2: bool) {
    USE_SMC.store(entered_el2, Ordering::Relaxed);
}

/// From now on [`off`] leaves through semihosting (test images; QEMU must run with
/// `-semihosting-config enable=on`, which the test runners pass).
pub fn use_semihosting_exit() {
    SEMIHOSTING.store(true, Ordering::Relaxed);
}

/// Ends the run. `status` is QEMU's exit code in a test image (0: passed); otherwise the machine
/// powers off through PSCI and QEMU exits with 0 whatever `status` was.
pub fn off(status: u32) -> ! {
    if SEMIHOSTING.load(Ordering::Relaxed) {
        semihosting_exit(status);
    }
    let result = if USE_SMC.load(Ordering::Relaxed) {
        smccc::psci::system_off::<Smc>()
    } else {
        smccc::psci::system_off::<Hvc>()
    };
    crate::println!("edgeos: PSCI SYSTEM_OFF failed: {:?}", result);
    super::halt()
}

/// Semihosting `SYS_EXIT` (operation 0x18) with reason `ADP_Stopped_ApplicationExit` and the
/// status as its subcode (the AArch64 form: x1 points at the two-word block).
fn semihosting_exit(status: u32) -> ! {
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting trap; with semihosting enabled QEMU
    // reads the block (a live kernel stack array, mapped) and exits, so the call never returns.
    // It touches no kernel memory. Only test images get here, and their runners enable it.
    unsafe {
        core::arch::asm!("hlt #0xf000", in("x0") SYS_EXIT, in("x1") block.as_ptr(), options(nostack, readonly));
    }
    crate::println!("edgeos: semihosting exit returned (QEMU without -semihosting-config enable=on?)");
    super::halt()
}

//! Power control through PSCI: HVC when the kernel was entered at EL1 (QEMU's default), SMC when
//! it was entered at EL2 (QEMU `virtualization=on`), where no hypervisor is there to answer HVC.

use core::sync::atomic::{AtomicBool, Ordering};

use smccc::{Hvc, Smc};

static USE_SMC: AtomicBool = AtomicBool::new(false);

/// Records the PSCI conduit; `entered_el2` comes from the boot code.
pub fn init(entered_el2: bool) {
    USE_SMC.store(entered_el2, Ordering::Relaxed);
}

/// Turns the machine off (QEMU exits with status 0).
pub fn system_off() -> ! {
    let result = if USE_SMC.load(Ordering::Relaxed) {
        smccc::psci::system_off::<Smc>()
    } else {
        smccc::psci::system_off::<Hvc>()
    };
    crate::println!("edgeos: PSCI SYSTEM_OFF failed: {:?}", result);
    super::halt()
}

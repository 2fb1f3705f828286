//! FP/SIMD switching test, server side: every protected call fills all 32 vector registers
//! and FPCR with its own pattern (and checks the pattern is still there from the previous call
//! first, inside the same kind of assembly block: nothing but the kernel and the runtime's event
//! loop, which uses no FP/SIMD, ran in between).
#![no_std]
#![no_main]

use core::arch::asm;

use edgeos_microkit::{protection_domain, Channel, Handler, Infallible, MessageInfo};
use edgeos_system_test_pds::{fail, fp_check_asm, fp_fill_asm};

/// Round toward minus infinity.
const FPCR: u64 = 2 << 22;
const BASE: u64 = 0x0bad_cafe_0000_0000;

struct Server {
    calls: u64,
}

#[protection_domain]
fn init() -> Server {
    Server { calls: 0 }
}

impl Handler for Server {
    type Error = Infallible;

    fn protected(&mut self, _channel: Channel, _msg_info: MessageInfo) -> Result<MessageInfo, Infallible> {
        let ok: u64;
        let fpcr_back = FPCR;
        // SAFETY: the block writes only the registers it declares. It leaves its pattern in the
        // vector registers and FPCR set to round-down on purpose: the event loop that runs next
        // uses no FP/SIMD, and the client must never see these values. (FPCR is put back for
        // the compiled code only after the check, below.)
        unsafe {
            asm!(
                "cbz {first}, 4f",
                fp_check_asm!(),
                "4:",
                fp_fill_asm!(),
                "mov {ok}, #1",
                "b 3f",
                "2:",
                "mov {ok}, #0",
                "3:",
                base = in(reg) BASE,
                fpcr = in(reg) fpcr_back,
                first = in(reg) self.calls,
                ok = lateout(reg) ok,
                out("x9") _, out("x11") _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _, out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _, out("v12") _, out("v13") _, out("v14") _, out("v15") _, out("v16") _, out("v17") _, out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _, out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _, out("v30") _, out("v31") _,
            );
        }
        if ok != 1 {
            fail(format_args!("fp_server: its FP/SIMD registers changed between calls (call {})", self.calls));
        }
        self.calls += 1;
        Ok(MessageInfo::new(0, 0))
    }
}

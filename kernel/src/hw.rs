//! The kernel model's [`Platform`]: timer, interrupt controller, IPC buffers and the console on
//! this machine.

use edgeos_kernel_abi::{Error, MSG_MAX_LENGTH};
use edgeos_kernel_core::context::UserContext;
use edgeos_kernel_core::kernel::{FaultInfo, Pd, PdId, Platform};

use crate::arch::{self, console, gic, mmu, timer};
use crate::memory;
use crate::{print, println};

/// Longest debug print accepted in one call.
const MAX_DEBUG_WRITE: u64 = 4096;

/// The machine (all state lives in the devices and the kernel model).
pub struct Hardware {
    pub frequency: u64,
    pub names: fn(PdId) -> &'static str,
}

impl Platform for Hardware {
    fn now(&mut self) -> u64 {
        timer::now()
    }

    fn frequency(&self) -> u64 {
        self.frequency
    }

    fn set_timer(&mut self, deadline: Option<u64>) {
        match deadline {
            Some(d) => timer::set_deadline(d),
            None => timer::cancel(),
        }
    }

    fn set_irq_enabled(&mut self, irq: u32, enabled: bool) {
        gic::set_enabled(irq, enabled);
    }

    #[inline]
    fn copy_mrs(&mut self, from: &Pd, to: &Pd, count: usize) {
        if count == 0 {
            return;
        }
        let count = count.min(MSG_MAX_LENGTH);
        if from.ipc_buffer == 0 || to.ipc_buffer == 0 {
            return;
        }
        // SAFETY: both are direct-map addresses of IPC buffer pages checked at load time
        // (writable RAM of each PD's own image); two distinct PDs never share one, and count is
        // within the page.
        unsafe { memory::copy_words(from.ipc_buffer as *const u64, to.ipc_buffer as *mut u64, count) }
    }

    fn write_mrs(&mut self, to: &Pd, words: &[u64]) {
        if to.ipc_buffer == 0 {
            return;
        }
        let n = words.len().min(MSG_MAX_LENGTH);
        // SAFETY: as in copy_mrs; n is within the page.
        unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), to.ipc_buffer as *mut u64, n) }
    }

    fn debug_write(&mut self, _pd: PdId, vaddr: u64, len: u64) -> Result<(), Error> {
        if len > MAX_DEBUG_WRITE || vaddr.checked_add(len).is_none() {
            return Err(Error::InvalidAddress);
        }
        // Check every page first, so a bad pointer prints nothing.
        let mut at = vaddr;
        while at < vaddr + len {
            mmu::translate_user(at, false).ok_or(Error::InvalidAddress)?;
            at = (at & !0xfff) + 0x1000;
        }
        let mut at = vaddr;
        while at < vaddr + len {
            let chunk_end = ((at & !0xfff) + 0x1000).min(vaddr + len);
            let paddr = mmu::translate_user(at, false).ok_or(Error::InvalidAddress)?;
            // SAFETY: the PD's own table maps this page readable at EL0, so it is memory the PD
            // may read (its image, stack or a mapped region), within one page.
            let bytes = unsafe { memory::phys_slice(paddr, (chunk_end - at) as usize) };
            console::write_bytes(bytes);
            at = chunk_end;
        }
        Ok(())
    }

    fn report_fault(&mut self, pd: PdId, ctx: &UserContext, fault: &FaultInfo) {
        println!(
            "edgeos: PD '{}' faulted: {:?} at pc {:#x}, address {:#x} ({}), syndrome {:#x}; the PD is stopped",
            (self.names)(pd),
            fault.kind,
            fault.pc,
            fault.address,
            if fault.is_write { "write" } else { "read" },
            fault.syndrome
        );
        for (i, r) in ctx.x.iter().enumerate() {
            print!("  x{i:<2} {r:#018x}");
            if i % 4 == 3 {
                println!();
            }
        }
        println!("  sp  {:#018x}  pc  {:#018x}  spsr {:#x}", ctx.sp, ctx.pc, ctx.spsr);
    }

    fn shutdown(&mut self, status: u32) {
        arch::power::off(status);
    }
}

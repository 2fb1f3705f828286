//! Translation registers: installing a PD's table in TTBR0 with its ASID, TLB maintenance, and
//! and address translation of user pointers. (MAIR_EL1 is set by boot.S to the indices
//! `edgeos_kernel_core::pagetable` uses.)

use core::arch::asm;

const TCR_EPD0: u64 = 1 << 7;

/// Stops translation of user addresses (no PD table installed).
pub fn disable_user_translation() {
    // SAFETY: only affects the lower (user) half; the kernel runs in the upper half.
    unsafe {
        asm!(
            "mrs {t}, tcr_el1",
            "orr {t}, {t}, {epd0}",
            "msr tcr_el1, {t}",
            "isb",
            t = out(reg) _,
            epd0 = in(reg) TCR_EPD0,
            options(nostack, preserves_flags)
        )
    }
}

/// Re-enables translation of user addresses through TTBR0.
pub fn enable_user_translation() {
    // SAFETY: only affects the lower (user) half; the kernel runs in the upper half.
    unsafe {
        asm!(
            "mrs {t}, tcr_el1",
            "bic {t}, {t}, {epd0}",
            "msr tcr_el1, {t}",
            "isb",
            t = out(reg) _,
            epd0 = in(reg) TCR_EPD0,
            options(nostack, preserves_flags)
        )
    }
}

/// True if the core has 16-bit ASIDs (and the boot code enabled them).
pub fn asid_bits() -> u32 {
    let tcr: u64;
    // SAFETY: reading a system register has no side effects.
    unsafe { asm!("mrs {}, tcr_el1", out(reg) tcr, options(nomem, nostack, preserves_flags)) }
    if tcr & (1 << 36) != 0 { 16 } else { 8 }
}

/// Installs a user translation table for the PD about to be resumed: `root` is its physical
/// address, `asid` its address-space id. The caller must not use user addresses (AT, copies
/// through TTBR0) before the ERET to that PD: there is no ISB here, the ERET is the context
/// synchronization event that makes the new table take effect.
#[inline]
pub fn set_user_table(root: u64, asid: u16) {
    let ttbr = root | ((asid as u64) << 48);
    // SAFETY: `root` is a valid table built by the kernel, mapping only user memory; kernel
    // addresses are translated through TTBR1 and are unaffected.
    unsafe { asm!("msr ttbr0_el1, {}", in(reg) ttbr, options(nostack, preserves_flags)) }
}

/// Makes page-table writes visible to the table walker before they are used.
pub fn table_write_barrier() {
    // SAFETY: a barrier has no other effect.
    unsafe { asm!("dsb ishst", options(nostack, preserves_flags)) }
}

/// Invalidates every non-global TLB entry (used when ASIDs roll over).
pub fn flush_all_user() {
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe { asm!("dsb ishst", "tlbi vmalle1is", "dsb ish", "isb", options(nostack, preserves_flags)) }
}

/// Invalidates every TLB entry of one ASID (a destroyed instance's, before its slot is reused).
pub fn flush_asid(asid: u16) {
    let arg = (asid as u64) << 48;
    // SAFETY: TLB maintenance only drops cached translations.
    unsafe { asm!("dsb ishst", "tlbi aside1is, {}", "dsb ish", "isb", in(reg) arg, options(nostack, preserves_flags)) }
}

/// Makes instructions written through the direct map visible to instruction fetch at their user
/// address (the data cache is cleaned to the point of unification, the instruction cache
/// invalidated).
pub fn sync_instruction_cache(kernel_va: u64, len: u64) {
    let line = 64u64;
    let mut a = kernel_va & !(line - 1);
    // SAFETY: cache maintenance on mapped kernel addresses has no architectural side effects.
    unsafe {
        while a < kernel_va + len {
            asm!("dc cvau, {}", in(reg) a, options(nostack, preserves_flags));
            a += line;
        }
        asm!("dsb ish", "ic ialluis", "dsb ish", "isb", options(nostack, preserves_flags));
    }
}

/// Translates a user address for an EL0 read (or write) with the hardware walker, using the
/// current TTBR0; returns the physical address if the access would be allowed.
pub fn translate_user(va: u64, write: bool) -> Option<u64> {
    let par: u64;
    // SAFETY: AT only performs a translation and writes PAR_EL1.
    unsafe {
        if write {
            asm!("at s1e0w, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack, preserves_flags));
        } else {
            asm!("at s1e0r, {va}", "isb", "mrs {par}, par_el1", va = in(reg) va, par = out(reg) par, options(nostack, preserves_flags));
        }
    }
    if par & 1 != 0 {
        return None;
    }
    Some((par & 0x0000_ffff_ffff_f000) | (va & 0xfff))
}

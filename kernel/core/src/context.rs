//! The saved user-mode state of a PD. The arch layer's exception entry saves the general
//! registers straight into [`UserContext`], so its layout is fixed (and checked below). The
//! FP/SIMD registers are switched lazily (see [`crate::fpu`]) and live apart, in [`FpContext`].

/// General registers of a PD while it is not running.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserContext {
    /// x0..x30.
    pub x: [u64; 31],
    /// SP_EL0.
    pub sp: u64,
    /// The address execution resumes at (ELR_EL1).
    pub pc: u64,
    /// Saved program status (SPSR_EL1).
    pub spsr: u64,
}

/// FP/SIMD registers of a PD whose FP state is not in the hardware registers.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpContext {
    pub q: [u128; 32],
    pub fpcr: u64,
    pub fpsr: u64,
}

/// Byte offsets used by the assembly entry code.
pub const SIZE: usize = 272;
pub const OFFSET_SP: usize = 248;
pub const OFFSET_PC: usize = 256;
pub const FP_SIZE: usize = 528;
pub const FP_OFFSET_FPCR: usize = 512;

const _: () = assert!(core::mem::size_of::<UserContext>() == SIZE);
const _: () = assert!(core::mem::offset_of!(UserContext, sp) == OFFSET_SP);
const _: () = assert!(core::mem::offset_of!(UserContext, pc) == OFFSET_PC);
const _: () = assert!(core::mem::size_of::<FpContext>() == FP_SIZE);
const _: () = assert!(core::mem::offset_of!(FpContext, fpcr) == FP_OFFSET_FPCR);

/// SPSR for EL0t, AArch64, interrupts unmasked.
pub const SPSR_EL0: u64 = 0;

impl UserContext {
    /// A context that starts at `pc` with stack pointer `sp`.
    pub const fn new(pc: u64, sp: u64) -> Self {
        UserContext { x: [0; 31], sp, pc, spsr: SPSR_EL0 }
    }
}

impl Default for UserContext {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

impl FpContext {
    /// All registers zero (the state a PD starts with).
    pub const ZERO: FpContext = FpContext { q: [0; 32], fpcr: 0, fpsr: 0 };
}

//! Lazy FP/SIMD switching. The FP/SIMD registers stay with the last PD that used them (the
//! owner); every other PD runs with EL0 FP access trapped (CPACR_EL1.FPEN). A PD's first FP
//! instruction traps: only then are the owner's registers saved and the PD's loaded. PDs that
//! never use FP (most of them: drivers, servers, the PD runtime's IPC path) cost nothing, and a
//! PD alone in using FP never has its registers moved at all.
//!
//! This is the bookkeeping; the arch layer moves the registers and programs CPACR_EL1.

use crate::kernel::PdId;
use crate::runqueue::NIL;

/// Which PD owns the FP/SIMD registers, and whether EL0 access is enabled in the hardware.
/// Plain ids with NIL for "none": this is looked at on every switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LazyFp {
    owner: PdId,
    /// The owner while the hardware lets EL0 use FP/SIMD, else NIL.
    enabled_for: PdId,
}

/// The registers to move on a trap: save the hardware registers into `save`'s context (if
/// some PD owned them), then load `load`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpSwitch {
    pub save: Option<PdId>,
    pub load: PdId,
}

impl LazyFp {
    /// Nobody owns the registers; EL0 access is trapped.
    pub const fn new() -> Self {
        LazyFp { owner: NIL, enabled_for: NIL }
    }

    /// The PD whose state is in the registers.
    pub fn owner(&self) -> Option<PdId> {
        (self.owner != NIL).then_some(self.owner)
    }

    /// `pd` is about to run: returns the new EL0 access setting if the hardware's must change
    /// (enabled exactly when `pd` owns the registers).
    #[inline]
    pub fn on_resume(&mut self, pd: PdId) -> Option<bool> {
        let enabled_for = if self.owner == pd { pd } else { NIL };
        if enabled_for == self.enabled_for {
            return None;
        }
        self.enabled_for = enabled_for;
        Some(enabled_for != NIL)
    }

    /// `pd` trapped on an FP/SIMD instruction: it becomes the owner. Returns the registers to
    /// move, or None if it already owns them (access was only disabled: nothing to move).
    pub fn on_trap(&mut self, pd: PdId) -> Option<FpSwitch> {
        if self.owner == pd {
            return None;
        }
        let save = self.owner();
        self.owner = pd;
        Some(FpSwitch { save, load: pd })
    }
}

impl LazyFp {
    /// `pd` is gone (a destroyed instance; its slot may be reused): if it owned the registers,
    /// nobody does now (their contents are dropped, never saved into the slot). The hardware
    /// access setting is left for the next `on_resume` to correct.
    pub fn forget(&mut self, pd: PdId) {
        if self.owner == pd {
            self.owner = NIL;
        }
    }
}

impl Default for LazyFp {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_move_only_when_the_user_changes() {
        let mut fp = LazyFp::new();
        assert_eq!(fp.on_resume(0), None, "trapped already: no change");
        assert_eq!(fp.on_trap(0), Some(FpSwitch { save: None, load: 0 }));
        assert_eq!(fp.on_resume(0), Some(true));
        // Switching to a PD that does not use FP: access trapped again, nothing moved.
        assert_eq!(fp.on_resume(1), Some(false));
        assert_eq!(fp.on_resume(2), None);
        // Back to the owner: enabled without a trap, registers untouched.
        assert_eq!(fp.on_resume(0), Some(true));
        assert_eq!(fp.on_resume(0), None);
        // Another PD uses FP: the owner's registers are saved, its own loaded.
        assert_eq!(fp.on_resume(1), Some(false));
        assert_eq!(fp.on_trap(1), Some(FpSwitch { save: Some(0), load: 1 }));
        assert_eq!(fp.owner(), Some(1));
        assert_eq!(fp.on_resume(1), Some(true));
        // A trap by the owner (cannot happen while enabled, but harmless): nothing to move.
        assert_eq!(fp.on_trap(1), None);
        // The owner is destroyed and its slot reused: the new PD must trap and load its own.
        fp.forget(1);
        assert_eq!(fp.on_resume(1), Some(false));
        assert_eq!(fp.on_trap(1), Some(FpSwitch { save: None, load: 1 }));
    }
}

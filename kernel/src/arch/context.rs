//! Entering user mode with a PD's saved context (the layout lives in `edgeos_kernel_core::context`).

use edgeos_kernel_core::context::UserContext;

unsafe extern "C" {
    fn resume_user(ctx: *mut UserContext) -> !;
}

/// Leaves the kernel and runs the PD whose context this is. The kernel stack is abandoned: the
/// next exception starts from its top again.
///
/// # Safety
/// `ctx` must stay valid (not move, not be freed) while the PD runs: the next exception from EL0
/// saves the PD's registers into it. The PD's translation table must be installed.
pub unsafe fn enter_user(ctx: *mut UserContext) -> ! {
    // SAFETY: forwarded to the caller.
    unsafe { resume_user(ctx) }
}

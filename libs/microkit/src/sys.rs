//! Raw system calls (see `edgeos-kernel-abi` for the ABI). These do not check grants: the
//! [`crate::Channel`] methods do, then call these. System tests use them to check that the
//! kernel refuses what the description does not grant.

use core::arch::asm;

pub use edgeos_kernel_abi::{sys as number, DeferredKind, Error, Event, IpcBuffer, MessageInfo as RawMessageInfo, INSTANCE_FAULT, RECV_REPLY};

/// A non-zero result code as an error (out of line: refusals are rare, and the event loop and
/// protected calls stay short without the decoding).
#[cold]
#[inline(never)]
fn error(code: u64) -> Error {
    Error::from_code(code).unwrap_or(Error::InvalidCall)
}

#[inline]
fn result(code: u64) -> Result<(), Error> {
    if code == 0 {
        Ok(())
    } else {
        Err(error(code))
    }
}

#[inline(always)]
fn call2(n: u64, a0: u64, a1: u64) -> (u64, u64) {
    let (r0, r1);
    // SAFETY: `svc` enters the kernel, which reads x8 and x0..x5 and writes x0..x4; all other
    // registers are preserved. The kernel only touches memory the PD may access.
    unsafe {
        asm!("svc #0", inlateout("x0") a0 => r0, inlateout("x1") a1 => r1, in("x8") n,
             lateout("x2") _, lateout("x3") _, lateout("x4") _, options(nostack));
    }
    (r0, r1)
}

/// Prints bytes on the console.
pub fn debug_puts(bytes: &[u8]) -> Result<(), Error> {
    result(call2(number::DEBUG_PUTS, bytes.as_ptr() as u64, bytes.len() as u64).0)
}

/// Notifies channel `ch`.
#[inline]
pub fn notify(ch: u64) -> Result<(), Error> {
    result(call2(number::NOTIFY, ch, 0).0)
}

/// Re-enables the IRQ on channel `ch`.
pub fn irq_ack(ch: u64) -> Result<(), Error> {
    result(call2(number::IRQ_ACK, ch, 0).0)
}

/// Protected call on channel `ch`; returns the reply's message info.
#[inline]
pub fn pp_call(ch: u64, info: RawMessageInfo) -> Result<RawMessageInfo, Error> {
    let (r0, r1) = call2(number::PP_CALL, ch, info.0);
    if r0 == 0 {
        Ok(RawMessageInfo(r1))
    } else {
        Err(error(r0))
    }
}

/// What [`recv`] returns.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub event: u64,
    pub badge: u64,
    pub info: RawMessageInfo,
    /// The deferred action's result code (0: done; see [`Received::deferred`]).
    pub deferred_code: u64,
    /// The reply's result code (0: delivered; see [`Received::reply`]).
    pub reply_code: u64,
}

impl Received {
    /// The deferred action's result.
    #[inline]
    pub fn deferred(&self) -> Result<(), Error> {
        result(self.deferred_code)
    }

    /// The reply's result.
    #[inline]
    pub fn reply(&self) -> Result<(), Error> {
        result(self.reply_code)
    }
}

/// The event-loop call: optional reply, optional deferred action, then wait.
#[inline]
pub fn recv(reply: Option<RawMessageInfo>, deferred: DeferredKind, deferred_channel: u64) -> Received {
    let flags = if reply.is_some() { RECV_REPLY } else { 0 };
    let (r0, r1, r2, r3, r4);
    // SAFETY: as in call2.
    unsafe {
        asm!("svc #0",
             inlateout("x0") flags => r0,
             inlateout("x1") reply.map_or(0, |r| r.0) => r1,
             inlateout("x2") deferred as u64 => r2,
             inlateout("x3") deferred_channel => r3,
             lateout("x4") r4,
             in("x8") number::RECV, options(nostack));
    }
    Received { event: r0, badge: r1, info: RawMessageInfo(r2), deferred_code: r3, reply_code: r4 }
}

/// Restarts child `id` at `pc`.
pub fn pd_restart(id: u64, pc: u64) -> Result<(), Error> {
    result(call2(number::PD_RESTART, id, pc).0)
}

/// Stops child `id`.
pub fn pd_stop(id: u64) -> Result<(), Error> {
    result(call2(number::PD_STOP, id, 0).0)
}

/// Resumes child `id`.
pub fn pd_resume(id: u64) -> Result<(), Error> {
    result(call2(number::PD_RESUME, id, 0).0)
}

/// Test images: ends the run with `status` (QEMU's exit code). Refused (`NotGranted`) in any
/// other image.
pub fn debug_exit(status: u32) -> Result<(), Error> {
    result(call2(number::DEBUG_SHUTDOWN, status as u64, 0).0)
}

/// The kernel's counter and its frequency.
pub fn debug_time() -> (u64, u64) {
    call2(number::DEBUG_TIME, 0, 0)
}

#[inline(always)]
fn call3(n: u64, a0: u64, a1: u64, a2: u64) -> (u64, u64) {
    let (r0, r1);
    // SAFETY: as in call2.
    unsafe {
        asm!("svc #0", inlateout("x0") a0 => r0, inlateout("x1") a1 => r1, inlateout("x2") a2 => _, in("x8") n,
             lateout("x3") _, lateout("x4") _, options(nostack));
    }
    (r0, r1)
}

/// Forks an instance of the template of fork handle `handle`; returns its id.
pub fn fork(handle: u64) -> Result<u64, Error> {
    let (r0, r1) = call2(number::FORK, handle, 0);
    result(r0).map(|()| r1)
}

/// Destroys instance `id` of fork handle `handle`.
pub fn destroy(handle: u64, id: u64) -> Result<(), Error> {
    result(call2(number::DESTROY, handle, id).0)
}

/// Protected call to instance `id` of fork handle `handle`; returns the reply's message info.
pub fn instance_call(handle: u64, id: u64, info: RawMessageInfo) -> Result<RawMessageInfo, Error> {
    let (r0, r1) = call3(number::INSTANCE_CALL, handle, id, info.0);
    result(r0).map(|()| RawMessageInfo(r1))
}

/// Resets instance `id` of fork handle `handle` to its template's snapshot.
pub fn recycle(handle: u64, id: u64) -> Result<(), Error> {
    result(call2(number::RECYCLE, handle, id).0)
}

/// Notifies instance `id` through channel array `ch`.
pub fn array_notify(ch: u64, id: u64) -> Result<(), Error> {
    result(call2(number::ARRAY_NOTIFY, ch, id).0)
}

/// Takes the pending bits of channel array `ch` from word `from` on: `(word, bits)`, word
/// [`edgeos_kernel_abi::ARRAY_EMPTY`] if none is pending.
pub fn array_take(ch: u64, from: u64) -> Result<(u64, u64), Error> {
    let (r0, r1, r2);
    // SAFETY: as in call2; the call reads x0, x1 and writes x0..x2 only.
    unsafe {
        asm!("svc #0", inlateout("x0") ch => r0, inlateout("x1") from => r1, lateout("x2") r2, in("x8") number::ARRAY_TAKE,
             lateout("x3") _, lateout("x4") _, options(nostack));
    }
    result(r0).map(|()| (r1, r2))
}

/// Debug builds of the kernel: free 4 KiB frames.
pub fn debug_free_frames() -> u64 {
    call2(number::DEBUG_FREE_FRAMES, 0, 0).1
}

/// Makes system call `n` with two arguments and returns `x0` (for tests of the ABI itself).
pub fn raw_call(n: u64, a0: u64, a1: u64) -> u64 {
    call2(n, a0, a1).0
}

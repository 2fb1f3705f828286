//! The system-call ABI between the EdgeOS kernel and protection domains.
//!
//! A PD enters the kernel with `svc #0`. The call number is in `x8`, arguments in `x0..x5`;
//! results come back in `x0..x3`. Unless a call says otherwise, `x0` returns [`Error`] as a
//! number (0 = success).
//!
//! Message registers (MRs) live in the PD's IPC buffer, a 4 KiB page in the PD image
//! (`__sel4_ipc_buffer_obj`): word `i` of [`IpcBuffer::msg`] is MR `i`. A protected call or a
//! fault copies `count` MRs from the sender's buffer into the receiver's.
#![no_std]
#![forbid(unsafe_code)]

/// System-call numbers (`x8`).
pub mod sys {
    /// Prints `len` bytes at user address `x0`, `x1 = len`. Returns an [`super::Error`].
    pub const DEBUG_PUTS: u64 = 0;
    /// Notifies the other end of channel `x0`.
    pub const NOTIFY: u64 = 1;
    /// Re-enables the interrupt delivered on channel `x0`.
    pub const IRQ_ACK: u64 = 2;
    /// Protected call on channel `x0` with message info `x1` and MRs from the IPC buffer.
    /// Blocks until the callee replies: then `x0` = 0 and `x1` = the reply's message info, the
    /// reply's MRs are in the IPC buffer. An immediate refusal returns the error in `x0`.
    pub const PP_CALL: u64 = 3;
    /// The event-loop call: optionally replies to the protected call being served
    /// (`x0` & [`super::RECV_REPLY`], reply message info in `x1`, MRs from the IPC buffer),
    /// optionally performs one deferred action (`x2` = [`super::DeferredKind`] number, `x3` =
    /// channel), then waits for the next event. Returns `x0` = [`super::Event`] number, `x1` =
    /// badge (notification bits, channel id of a protected call, or child id of a fault), `x2` =
    /// message info, `x3` = error of the deferred action and `x4` = error of the reply (0 = done).
    pub const RECV: u64 = 4;
    /// Restarts child `x0` at program counter `x1` (other registers unchanged, as Microkit).
    pub const PD_RESTART: u64 = 5;
    /// Stops child `x0`.
    pub const PD_STOP: u64 = 6;
    /// Resumes child `x0` after a stop (or after a fault, re-running the faulting instruction).
    pub const PD_RESUME: u64 = 7;
    /// Debug builds only: powers the machine off (used by system tests to end a run).
    pub const DEBUG_SHUTDOWN: u64 = 8;
    /// Debug builds only: reads the kernel's instruction-count-friendly clock (counter ticks) and
    /// its frequency: `x0` = now, `x1` = ticks per second.
    pub const DEBUG_TIME: u64 = 9;
    /// Forks an instance of the template the caller names by fork handle `x0` (its `<fork id>`).
    /// Returns `x0` = error, `x1` = the instance id (0..max_instances).
    pub const FORK: u64 = 10;
    /// Destroys instance `x1` of fork handle `x0`: every frame and table it owned is freed.
    pub const DESTROY: u64 = 11;
    /// Protected call to instance `x1` of fork handle `x0` with message info `x2` (MRs in the IPC
    /// buffer), as [`PP_CALL`]: the instance receives it on its channel-array id (0 if none).
    pub const INSTANCE_CALL: u64 = 12;
    /// Debug builds only: `x0` = 0, `x1` = the kernel's free frames (4 KiB each).
    pub const DEBUG_FREE_FRAMES: u64 = 13;
    /// Notifies instance `x1` through channel array `x0` (the static end of a channel joining
    /// this PD and a template): the instance gets the notification on its own channel id.
    pub const ARRAY_NOTIFY: u64 = 14;
    /// Takes the pending bits of channel array `x0`: returns `x0` = error, `x1` = the index of
    /// the first 64-instance word at or after word `x1` with a bit set ([`super::ARRAY_EMPTY`]
    /// if none) and `x2` = its bits (bit `b` of word `w`: instance `64 * w + b` notified), which
    /// the call clears. The PD itself was notified once, on the array's channel id.
    pub const ARRAY_TAKE: u64 = 15;
    /// Resets instance `x1` of fork handle `x0` to its template's snapshot without tearing it
    /// down: its private pages are copied again, pages it got on demand are freed, its
    /// registers go back to the checkpoint and pending notifications are dropped; it keeps its
    /// id, its frames and its windows. A call it was serving fails with InvalidState.
    pub const RECYCLE: u64 = 16;
}

/// [`sys::ARRAY_TAKE`]'s word index when no instance of the array has a pending notification.
pub const ARRAY_EMPTY: u64 = u64::MAX;

/// Bit of a fault event's badge that marks a featherweight instance's fault: the badge is then
/// `INSTANCE_FAULT | handle << 32 | instance id`.
pub const INSTANCE_FAULT: u64 = 1 << 63;

/// Why the kernel refused a call. Returned as `Error as u64`; 0 means success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Error {
    /// The call number is unknown.
    InvalidCall = 1,
    /// The channel id is out of range (0..62).
    InvalidChannel = 2,
    /// The description does not grant this use of the channel (no notify / no pp / no irq).
    NotGranted = 3,
    /// A user pointer or length is invalid.
    InvalidAddress = 4,
    /// The child id names no child of the caller.
    InvalidChild = 5,
    /// The call is not valid in the caller's state (e.g. a reply with nothing to reply to).
    InvalidState = 6,
    /// A message is longer than the IPC buffer holds.
    MessageTooLong = 7,
    /// A fork over the grant's `max_instances` or memory quota.
    QuotaExceeded = 8,
    /// The kernel ran out of memory.
    OutOfMemory = 9,
}

impl Error {
    /// Decodes a returned `x0`; `None` for success or an unknown code.
    pub fn from_code(code: u64) -> Option<Error> {
        Some(match code {
            1 => Error::InvalidCall,
            2 => Error::InvalidChannel,
            3 => Error::NotGranted,
            4 => Error::InvalidAddress,
            5 => Error::InvalidChild,
            6 => Error::InvalidState,
            7 => Error::MessageTooLong,
            8 => Error::QuotaExceeded,
            9 => Error::OutOfMemory,
            _ => return None,
        })
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::InvalidCall => "unknown system call",
            Error::InvalidChannel => "channel id out of range",
            Error::NotGranted => "not granted by the system description",
            Error::InvalidAddress => "invalid user address",
            Error::InvalidChild => "no such child",
            Error::InvalidState => "not valid in this state",
            Error::MessageTooLong => "message too long",
            Error::QuotaExceeded => "over the fork quota",
            Error::OutOfMemory => "out of kernel memory",
        })
    }
}

/// Flag in `x0` of [`sys::RECV`]: reply to the protected call being served.
pub const RECV_REPLY: u64 = 1;

/// What woke a PD from [`sys::RECV`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Event {
    /// Notifications: `x1` has one bit per channel id.
    Notification = 0,
    /// A protected call: `x1` = channel id, `x2` = message info.
    ProtectedCall = 1,
    /// A child faulted: `x1` = child id, `x2` = message info (label = [`FaultKind`]).
    Fault = 2,
}

impl Event {
    /// Decodes the `x0` of a returned [`sys::RECV`].
    pub fn from_code(code: u64) -> Option<Event> {
        Some(match code {
            0 => Event::Notification,
            1 => Event::ProtectedCall,
            2 => Event::Fault,
            _ => return None,
        })
    }
}

/// A deferred action fused with [`sys::RECV`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum DeferredKind {
    None = 0,
    Notify = 1,
    IrqAck = 2,
}

/// Number of channel ids per PD (shared with IRQ ids), as in Microkit.
pub const CHANNEL_IDS: usize = 62;
/// Number of message registers in the IPC buffer.
pub const MSG_MAX_LENGTH: usize = 120;

/// A message's label and length, packed in one word as seL4 does (label in bits 12.., length in
/// bits 0..7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MessageInfo(pub u64);

impl MessageInfo {
    const LENGTH_MASK: u64 = 0x7f;
    const LABEL_SHIFT: u32 = 12;

    /// A message with `label` and `count` MRs (`count` is clamped to [`MSG_MAX_LENGTH`]).
    pub const fn new(label: u64, count: usize) -> Self {
        let count = if count > MSG_MAX_LENGTH { MSG_MAX_LENGTH } else { count };
        MessageInfo((label << Self::LABEL_SHIFT) | count as u64)
    }
    /// The label.
    pub const fn label(self) -> u64 {
        self.0 >> Self::LABEL_SHIFT
    }
    /// The number of MRs, at most [`MSG_MAX_LENGTH`].
    pub const fn count(self) -> usize {
        let n = (self.0 & Self::LENGTH_MASK) as usize;
        if n > MSG_MAX_LENGTH { MSG_MAX_LENGTH } else { n }
    }
}

/// The kinds of fault a parent sees (the label of a fault message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum FaultKind {
    /// A load or store the address space does not allow (MR 1 = address).
    DataAbort = 1,
    /// An instruction fetch the address space does not allow (MR 1 = address).
    InstructionAbort = 2,
    /// An undefined or trapped instruction.
    UndefinedInstruction = 3,
    /// A misaligned PC, SP or data access.
    Alignment = 4,
    /// A breakpoint, watchpoint or other debug exception.
    Debug = 5,
    /// Anything else the kernel cannot classify.
    Unknown = 6,
}

impl FaultKind {
    /// Decodes a fault message's label.
    pub fn from_label(label: u64) -> Option<FaultKind> {
        Some(match label {
            1 => FaultKind::DataAbort,
            2 => FaultKind::InstructionAbort,
            3 => FaultKind::UndefinedInstruction,
            4 => FaultKind::Alignment,
            5 => FaultKind::Debug,
            6 => FaultKind::Unknown,
            _ => return None,
        })
    }
}

/// MRs of a fault message (all faults use this layout).
pub mod fault_mr {
    /// The faulting program counter.
    pub const PC: usize = 0;
    /// The faulting data or instruction address (0 if none).
    pub const ADDRESS: usize = 1;
    /// The raw exception syndrome (ESR_EL1).
    pub const SYNDROME: usize = 2;
    /// 1 if a data abort was a write.
    pub const IS_WRITE: usize = 3;
    /// The stack pointer at the fault.
    pub const SP: usize = 4;
    /// Number of fault MRs.
    pub const COUNT: usize = 5;
}

/// The IPC buffer's layout: message registers first. One 4 KiB page.
#[repr(C, align(4096))]
pub struct IpcBuffer {
    pub msg: [u64; MSG_MAX_LENGTH],
    pub reserved: [u64; 512 - MSG_MAX_LENGTH],
}

const _: () = assert!(core::mem::size_of::<IpcBuffer>() == 4096);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_info_round_trips() {
        let m = MessageInfo::new(0xabc, 7);
        assert_eq!(m.label(), 0xabc);
        assert_eq!(m.count(), 7);
        assert_eq!(MessageInfo::new(1, 500).count(), MSG_MAX_LENGTH);
        // A hostile word cannot claim more than the buffer holds.
        assert_eq!(MessageInfo(0x7f).count(), MSG_MAX_LENGTH);
    }

    #[test]
    fn codes_round_trip() {
        for e in [Error::InvalidCall, Error::NotGranted, Error::MessageTooLong] {
            assert_eq!(Error::from_code(e as u64), Some(e));
        }
        assert_eq!(Error::from_code(0), None);
        assert_eq!(Event::from_code(Event::Fault as u64), Some(Event::Fault));
        assert_eq!(FaultKind::from_label(FaultKind::Alignment as u64), Some(FaultKind::Alignment));
    }
}

//! Message info and message registers (in the IPC buffer).

use edgeos_kernel_abi::{fault_mr, MessageInfo as RawMessageInfo, MSG_MAX_LENGTH};

use crate::symbols::ipc_buffer_ptr;

/// A message label.
pub type MessageLabel = u64;
/// A message register.
pub type MessageRegisterValue = u64;

/// A message's label and number of message registers (`microkit_msginfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    inner: RawMessageInfo,
}

impl MessageInfo {
    #[doc(hidden)]
    #[inline]
    pub fn from_inner(inner: RawMessageInfo) -> Self {
        MessageInfo { inner }
    }

    #[doc(hidden)]
    #[inline]
    pub fn into_inner(self) -> RawMessageInfo {
        self.inner
    }

    /// A message with `label` and `count` message registers.
    #[inline]
    pub fn new(label: MessageLabel, count: usize) -> Self {
        MessageInfo { inner: RawMessageInfo::new(label, count) }
    }

    /// The label.
    #[inline]
    pub fn label(&self) -> MessageLabel {
        self.inner.label()
    }

    /// The number of meaningful bits in a label.
    pub const fn label_width() -> usize {
        52
    }

    /// The number of message registers.
    #[inline]
    pub fn count(&self) -> usize {
        self.inner.count()
    }

    /// Reads this message as a child's fault (in a `fault` handler).
    pub fn fault(&self) -> Fault {
        with_msg_regs(|mr| Fault {
            kind: FaultKind::from_label(self.label()),
            pc: mr[fault_mr::PC],
            address: mr[fault_mr::ADDRESS],
            syndrome: mr[fault_mr::SYNDROME],
            is_write: mr[fault_mr::IS_WRITE] != 0,
            sp: mr[fault_mr::SP],
        })
    }
}

impl Default for MessageInfo {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

pub use edgeos_kernel_abi::FaultKind;

/// A child's fault, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What happened (None if the label is not a fault kind).
    pub kind: Option<FaultKind>,
    pub pc: u64,
    /// The faulting address of a data or instruction abort.
    pub address: u64,
    /// The raw exception syndrome (ESR_EL1).
    pub syndrome: u64,
    pub is_write: bool,
    pub sp: u64,
}

/// Reads the message registers.
pub fn with_msg_regs<T>(f: impl FnOnce(&[MessageRegisterValue]) -> T) -> T {
    // SAFETY: the IPC buffer is this PD's own static; the PD is single-threaded and the kernel
    // writes it only while the PD is in a system call, so no other reference is live.
    f(unsafe { &(*ipc_buffer_ptr()).msg })
}

/// Writes the message registers.
pub fn with_msg_regs_mut<T>(f: impl FnOnce(&mut [MessageRegisterValue]) -> T) -> T {
    // SAFETY: as in with_msg_regs; the closure cannot make a system call that changes the buffer
    // while it holds the slice without going through these functions again.
    f(unsafe { &mut (*ipc_buffer_ptr()).msg })
}

/// Reads the message registers as bytes.
pub fn with_msg_bytes<T>(f: impl FnOnce(&[u8]) -> T) -> T {
    with_msg_regs(|regs| {
        // SAFETY: u64s viewed as bytes: same memory, alignment 1, length in bytes.
        f(unsafe { core::slice::from_raw_parts(regs.as_ptr() as *const u8, core::mem::size_of_val(regs)) })
    })
}

/// Writes the message registers as bytes.
pub fn with_msg_bytes_mut<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    with_msg_regs_mut(|regs| {
        let len = core::mem::size_of_val(regs);
        // SAFETY: as in with_msg_bytes, mutable.
        f(unsafe { core::slice::from_raw_parts_mut(regs.as_mut_ptr() as *mut u8, len) })
    })
}

/// Sets message register `i` (`microkit_mr_set`).
#[inline]
pub fn set_mr(i: usize, value: MessageRegisterValue) {
    assert!(i < MSG_MAX_LENGTH, "message register {i} out of range");
    with_msg_regs_mut(|regs| regs[i] = value)
}

/// Reads message register `i` (`microkit_mr_get`).
#[inline]
pub fn get_mr(i: usize) -> MessageRegisterValue {
    assert!(i < MSG_MAX_LENGTH, "message register {i} out of range");
    with_msg_regs(|regs| regs[i])
}

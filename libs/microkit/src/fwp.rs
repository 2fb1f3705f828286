//! Featherweight processes (EdgeOS extension, `docs/featherweight.md`): the PD holding a
//! template's `<fork>` grant forks instances of it, calls them and destroys them. Shaped like
//! the rest of the API: a [`Fork`] is named by its id in the description as a [`crate::Channel`]
//! is, an [`Instance`] by the id the kernel returned, as a [`crate::Child`].

use crate::message::MessageInfo;
use crate::sys;

/// A fork grant (`<fork template="..." id="N" .../>`), by its id `N` in this PD.
#[derive(Debug, Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub struct Fork {
    index: usize,
}

/// One live instance of a template (ids are `0..max_instances`, reused after a destroy).
#[derive(Debug, Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub struct Instance {
    index: u32,
}

impl Instance {
    /// The instance with id `index`.
    pub const fn new(index: u32) -> Self {
        Instance { index }
    }

    /// The id.
    pub const fn index(&self) -> u32 {
        self.index
    }
}

/// Why the kernel refused a fork-grant operation.
pub type ForkError = sys::Error;

impl Fork {
    /// The fork grant with id `index` (panics unless `index < 62`).
    pub const fn new(index: usize) -> Self {
        assert!(index < edgeos_kernel_abi::CHANNEL_IDS);
        Fork { index }
    }

    /// The id.
    pub const fn index(&self) -> usize {
        self.index
    }

    /// Creates an instance: it resumes from the template's checkpoint (inside its event loop,
    /// waiting). Over `max_instances` or the memory quota: `Err(QuotaExceeded)`.
    pub fn fork(&self) -> Result<Instance, ForkError> {
        sys::fork(self.index as u64).map(|id| Instance { index: id as u32 })
    }

    /// Destroys an instance: its memory goes back to the kernel and its id may be reused.
    pub fn destroy(&self, instance: Instance) -> Result<(), ForkError> {
        sys::destroy(self.index as u64, instance.index as u64)
    }

    /// A protected call to an instance (its `protected` handler gets it on its channel-array
    /// id, 0 if none); returns the reply. MRs as for [`crate::Channel::pp_call`].
    pub fn call(&self, instance: Instance, msg_info: MessageInfo) -> Result<MessageInfo, ForkError> {
        sys::instance_call(self.index as u64, instance.index as u64, msg_info.into_inner()).map(MessageInfo::from_inner)
    }
}

/// Debug builds of the kernel: the number of free 4 KiB frames (to check that memory comes back).
pub fn debug_free_frames() -> u64 {
    sys::debug_free_frames()
}

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

    /// Resets an instance to its template's snapshot without a teardown (cheaper than
    /// destroy + fork; it keeps its id, memory and windows): memory as at the checkpoint,
    /// registers at the checkpoint, pending notifications dropped. The instance must be
    /// treated as fresh (e.g. a network link set up again).
    pub fn recycle(&self, instance: Instance) -> Result<(), ForkError> {
        sys::recycle(self.index as u64, instance.index as u64)
    }

    /// A protected call to an instance (its `protected` handler gets it on its channel-array
    /// id, 0 if none); returns the reply. MRs as for [`crate::Channel::pp_call`].
    pub fn call(&self, instance: Instance, msg_info: MessageInfo) -> Result<MessageInfo, ForkError> {
        sys::instance_call(self.index as u64, instance.index as u64, msg_info.into_inner()).map(MessageInfo::from_inner)
    }
}

/// The static end of a channel array (`<channel><end pd="me" id="N"/><end template="t" .../>`),
/// by its id `N` in this PD: one channel id names every instance of the template. Each instance
/// sees an ordinary [`crate::Channel`] (its own end's id) and notifies or calls this PD with it.
///
/// However many instances notify, this PD is notified once on id `N`; [`ChannelArray::take`]
/// then says which instances did.
#[derive(Debug, Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub struct ChannelArray {
    index: usize,
}

impl ChannelArray {
    /// The channel array with id `index` (panics unless `index < 62`).
    pub const fn new(index: usize) -> Self {
        assert!(index < edgeos_kernel_abi::CHANNEL_IDS);
        ChannelArray { index }
    }

    /// The id (the bit it sets in [`crate::ChannelSet`]s handed to `notified`).
    pub const fn index(&self) -> usize {
        self.index
    }

    /// Notifies one instance (on its end's channel id). A dead instance: `Err(InvalidChild)`.
    pub fn notify(&self, instance: Instance) -> Result<(), ForkError> {
        sys::array_notify(self.index as u64, instance.index as u64)
    }

    /// Calls `f` with every instance that notified since the last `take` (in id order), and
    /// clears their bits (an instance notifying meanwhile brings a new notification).
    pub fn take(&self, mut f: impl FnMut(Instance)) -> Result<(), ForkError> {
        let mut from = 0;
        loop {
            let (word, mut bits) = sys::array_take(self.index as u64, from)?;
            if word == edgeos_kernel_abi::ARRAY_EMPTY {
                return Ok(());
            }
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                f(Instance { index: (word * 64) as u32 + bit });
            }
            from = word + 1;
        }
    }
}

/// Debug builds of the kernel: the number of free 4 KiB frames (to check that memory comes back).
pub fn debug_free_frames() -> u64 {
    sys::debug_free_frames()
}

//! Channels (by their local id), sets of them, and child PDs.

use core::fmt;

use crate::message::MessageInfo;
use crate::symbols::{name_for_messages, pd_irqs, pd_notifications, pd_pps};
use crate::sys;

/// Channel ids are `0..MAX_CHANNELS` (shared with IRQ ids).
const MAX_CHANNELS: usize = edgeos_kernel_abi::CHANNEL_IDS;

/// A channel between this PD and another (or an IRQ), by its id in this PD.
#[derive(Debug, Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub struct Channel {
    index: usize,
}

impl Channel {
    /// The channel with id `index` (panics unless `index < 62`).
    #[inline]
    pub const fn new(index: usize) -> Self {
        assert!(index < MAX_CHANNELS);
        Channel { index }
    }

    /// A channel id the kernel reported (always below 62).
    #[inline]
    pub(crate) fn from_kernel(index: u64) -> Self {
        debug_assert!(index < MAX_CHANNELS as u64);
        Channel { index: index as usize }
    }

    /// The id.
    #[inline]
    pub const fn index(&self) -> usize {
        self.index
    }

    #[inline]
    fn check(&self, mask: u64, what: &'static str) {
        if mask & (1 << self.index) == 0 {
            not_granted(what, self.index);
        }
    }

    /// Signals the other end.
    #[inline]
    pub fn notify(&self) {
        self.check(pd_notifications(), "notify");
        if let Err(e) = sys::notify(self.index as u64) {
            refused("notify", self.index, e);
        }
    }

    /// Re-enables the IRQ delivered on this channel.
    pub fn irq_ack(&self) -> Result<(), IrqAckError> {
        self.check(pd_irqs(), "irq_ack");
        sys::irq_ack(self.index as u64).map_err(IrqAckError)
    }

    /// Calls the PD at the other end with the message in the message registers; returns its
    /// reply (the reply's MRs are in the message registers).
    #[inline]
    pub fn pp_call(&self, msg_info: MessageInfo) -> MessageInfo {
        self.check(pd_pps(), "pp_call");
        match sys::pp_call(self.index as u64, msg_info.into_inner()) {
            Ok(reply) => MessageInfo::from_inner(reply),
            Err(e) => refused("pp_call", self.index, e),
        }
    }
}

// The panics are out of line so the channel operations inline to a few instructions.

#[cold]
#[inline(never)]
fn not_granted(what: &str, index: usize) -> ! {
    panic!("{what}: channel {index} is not granted to PD '{}' by the system description", name_for_messages());
}

#[cold]
#[inline(never)]
fn refused(what: &str, index: usize, e: sys::Error) -> ! {
    panic!("{what} on channel {index}: the kernel refused: {e}");
}

/// The kernel refused an IRQ ack.
#[derive(Debug, PartialEq, Eq)]
pub struct IrqAckError(sys::Error);

impl fmt::Display for IrqAckError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "irq ack error: {}", self.0)
    }
}

/// The channels whose notifications arrived together.
#[derive(Debug, Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelSet(pub(crate) u64);

impl ChannelSet {
    /// True if `channel` is in the set.
    pub fn contains(&self, channel: Channel) -> bool {
        self.0 & (1 << channel.index()) != 0
    }

    /// The channels in ascending order.
    pub fn iter(&self) -> ChannelSetIter {
        ChannelSetIter(self.0)
    }

    /// Shows the set as `{1, 5}`.
    pub fn display(&self) -> DisplayChannelSet<'_> {
        DisplayChannelSet(self)
    }

    /// The raw bits (bit i = channel i). An EdgeOS extension.
    pub fn bits(&self) -> u64 {
        self.0
    }
}

/// Iterator over a [`ChannelSet`].
pub struct ChannelSetIter(u64);

impl Iterator for ChannelSetIter {
    type Item = Channel;

    fn next(&mut self) -> Option<Channel> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        // The kernel only sets bits below 62; anything else is ignored rather than trusted.
        (i < MAX_CHANNELS).then(|| Channel::new(i)).or_else(|| self.next())
    }
}

/// Displays a [`ChannelSet`].
pub struct DisplayChannelSet<'a>(&'a ChannelSet);

impl fmt::Display for DisplayChannelSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("{")?;
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", c.index())?;
        }
        f.write_str("}")
    }
}

/// A child PD, by its id in this PD.
#[derive(Debug, Copy, Clone, Eq, PartialEq, Ord, PartialOrd, Hash)]
pub struct Child {
    index: usize,
}

/// The kernel refused to control a child.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct PdControlError(pub sys::Error);

impl fmt::Display for PdControlError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "child control error: {}", self.0)
    }
}

impl Child {
    /// The child with id `index`.
    pub const fn new(index: usize) -> Self {
        Child { index }
    }

    /// The id.
    pub const fn index(&self) -> usize {
        self.index
    }

    /// Restarts the child at `entry_point` (only its PC is set; memory is not reset), as
    /// `microkit_pd_restart`.
    pub fn pd_restart(&self, entry_point: usize) -> Result<(), PdControlError> {
        sys::pd_restart(self.index as u64, entry_point as u64).map_err(PdControlError)
    }

    /// Stops the child, as `microkit_pd_stop`.
    pub fn pd_stop(&self) -> Result<(), PdControlError> {
        sys::pd_stop(self.index as u64).map_err(PdControlError)
    }

    /// Resumes a stopped (or faulted) child where it was.
    pub fn pd_resume(&self) -> Result<(), PdControlError> {
        sys::pd_resume(self.index as u64).map_err(PdControlError)
    }
}

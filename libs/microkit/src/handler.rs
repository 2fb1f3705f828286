//! The `Handler` trait and the event loop that drives it.

use core::fmt;

use crate::channel::{Channel, ChannelSet, Child};
use crate::fwp::{Fork, Instance};
use crate::defer::{DeferredAction, DeferredActionInterface};
use crate::message::MessageInfo;
use crate::symbols::{name_for_messages, pd_irqs, pd_notifications};
use crate::sys::{self, DeferredKind, Event};

pub use core::convert::Infallible;

/// What a protection domain does when events arrive.
pub trait Handler {
    /// Error type of the entry points (an error stops the PD with a message).
    type Error: fmt::Display;

    /// Notifications arrived on `channels` (all that arrived since the last wait).
    fn notified(&mut self, channels: ChannelSet) -> Result<(), Self::Error> {
        panic!("PD '{}' has no `notified` handler but was notified on channels {}", name_for_messages(), channels.display())
    }

    /// A protected call arrived on `channel`; the returned message is the reply.
    fn protected(&mut self, channel: Channel, msg_info: MessageInfo) -> Result<MessageInfo, Self::Error> {
        panic!(
            "PD '{}' has no `protected` handler but got a call on channel {} with {msg_info:?}",
            name_for_messages(),
            channel.index()
        )
    }

    /// Child `child` faulted; returning a message resumes it (re-running the faulting
    /// instruction unless it was restarted elsewhere).
    fn fault(&mut self, child: Child, msg_info: MessageInfo) -> Result<Option<MessageInfo>, Self::Error> {
        panic!(
            "PD '{}' has no `fault` handler but child {} faulted: {:?}",
            name_for_messages(),
            child.index(),
            msg_info.fault()
        )
    }

    /// Instance `instance` of fork grant `fork` faulted (EdgeOS featherweight processes). It
    /// stays stopped; the usual answer is `fork.destroy(instance)`.
    fn instance_fault(&mut self, fork: Fork, instance: Instance, msg_info: MessageInfo) -> Result<(), Self::Error> {
        panic!(
            "PD '{}' has no `instance_fault` handler but instance {} of fork {} faulted: {:?}",
            name_for_messages(),
            instance.index(),
            fork.index(),
            msg_info.fault()
        )
    }

    /// One notify or IRQ ack to perform together with the next wait.
    fn take_deferred_action(&mut self) -> Option<DeferredAction> {
        None
    }

    #[doc(hidden)]
    fn run(&mut self) -> Result<Never, Self::Error> {
        // Every granted IRQ starts masked in the kernel: ack each once.
        let mut bits = pd_irqs();
        while bits != 0 {
            let ch = Channel::new(bits.trailing_zeros() as usize);
            if let Err(e) = ch.irq_ack() {
                panic!("initial ack of IRQ channel {}: {e}", ch.index());
            }
            bits &= bits - 1;
        }
        let mut reply: Option<MessageInfo> = None;
        loop {
            let (kind, channel) = match self.take_deferred_action() {
                None => (DeferredKind::None, 0),
                Some(action) => {
                    let (kind, mask, what) = match action.interface() {
                        DeferredActionInterface::Notify => (DeferredKind::Notify, pd_notifications(), "notify"),
                        DeferredActionInterface::IrqAck => (DeferredKind::IrqAck, pd_irqs(), "irq_ack"),
                    };
                    let ch = action.channel().index();
                    if mask & (1 << ch) == 0 {
                        panic!("deferred {what}: channel {ch} is not granted to PD '{}'", name_for_messages());
                    }
                    (kind, ch as u64)
                }
            };
            let r = sys::recv(reply.take().map(MessageInfo::into_inner), kind, channel);
            if r.deferred_code != 0 {
                deferred_refused(channel, r.deferred_code);
            }
            match Event::from_code(r.event) {
                Some(Event::Notification) => self.notified(ChannelSet(r.badge))?,
                Some(Event::ProtectedCall) => {
                    reply = Some(self.protected(Channel::from_kernel(r.badge), MessageInfo::from_inner(r.info))?);
                }
                Some(Event::Fault) if r.badge & sys::INSTANCE_FAULT != 0 => {
                    let fork = Fork::new(((r.badge >> 32) & 0xff) as usize);
                    self.instance_fault(fork, Instance::new(r.badge as u32), MessageInfo::from_inner(r.info))?;
                }
                Some(Event::Fault) => {
                    reply = self.fault(Child::new(r.badge as usize), MessageInfo::from_inner(r.info))?;
                }
                None => unknown_event(r.event),
            }
        }
    }
}

#[cold]
#[inline(never)]
fn deferred_refused(channel: u64, code: u64) -> ! {
    let e = sys::Error::from_code(code).unwrap_or(sys::Error::InvalidCall);
    panic!("deferred action on channel {channel}: the kernel refused: {e}")
}

#[cold]
#[inline(never)]
fn unknown_event(event: u64) -> ! {
    panic!("unknown event {event} from the kernel")
}

/// The type of a loop that never ends.
#[doc(hidden)]
pub enum Never {}

impl Handler for Never {
    type Error = Infallible;
}

/// A handler with only the default (panicking) methods.
pub struct NullHandler(());

impl NullHandler {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NullHandler(())
    }
}

impl Handler for NullHandler {
    type Error = Infallible;
}

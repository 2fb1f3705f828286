//! Deferred actions: one notify or IRQ ack that the event loop fuses with its next wait.

use crate::channel::{Channel, IrqAckError};

/// An action for the event loop to perform together with its next wait.
#[derive(Debug, Copy, Clone, Eq, PartialEq)]
pub struct DeferredAction {
    channel: Channel,
    interface: DeferredActionInterface,
}

/// What a deferred action does.
#[derive(Debug, Copy, Clone, Eq, PartialEq)]
pub enum DeferredActionInterface {
    Notify,
    IrqAck,
}

impl DeferredAction {
    pub fn new(channel: Channel, interface: DeferredActionInterface) -> Self {
        DeferredAction { channel, interface }
    }

    /// Notify `channel` with the next wait.
    pub fn new_notify(channel: Channel) -> Self {
        Self::new(channel, DeferredActionInterface::Notify)
    }

    /// Ack the IRQ on `channel` with the next wait.
    pub fn new_irq_ack(channel: Channel) -> Self {
        Self::new(channel, DeferredActionInterface::IrqAck)
    }

    pub fn channel(&self) -> Channel {
        self.channel
    }

    pub fn interface(&self) -> DeferredActionInterface {
        self.interface
    }

    /// Performs the action now instead.
    pub fn execute_now(self) -> Result<(), IrqAckError> {
        match self.interface {
            DeferredActionInterface::Notify => {
                self.channel.notify();
                Ok(())
            }
            DeferredActionInterface::IrqAck => self.channel.irq_ack(),
        }
    }
}

/// Holds at most one deferred action; deferring a second performs the first at once.
#[derive(Debug, Default)]
pub struct DeferredActionSlot {
    inner: Option<DeferredAction>,
}

impl DeferredActionSlot {
    pub const fn new() -> Self {
        DeferredActionSlot { inner: None }
    }

    pub fn take(&mut self) -> Option<DeferredAction> {
        self.inner.take()
    }

    pub fn defer(&mut self, action: DeferredAction) -> Result<(), IrqAckError> {
        match self.inner.replace(action) {
            Some(previous) => previous.execute_now(),
            None => Ok(()),
        }
    }

    pub fn defer_notify(&mut self, channel: Channel) -> Result<(), IrqAckError> {
        self.defer(DeferredAction::new_notify(channel))
    }

    pub fn defer_irq_ack(&mut self, channel: Channel) -> Result<(), IrqAckError> {
        self.defer(DeferredAction::new_irq_ack(channel))
    }
}

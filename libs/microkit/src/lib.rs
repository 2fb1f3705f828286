//! The EdgeOS protection-domain runtime, with the API of rust-sel4's `sel4-microkit` 5.
//!
//! A PD written for `sel4-microkit` builds against this crate with nothing changed but the
//! dependency (a Cargo rename keeps even the crate name):
//!
//! ```toml
//! sel4-microkit = { package = "edgeos-microkit", path = "../../libs/microkit" }
//! ```
//!
//! The runtime owns `_start` and the event loop: it calls the `#[protection_domain]` function
//! once, acks every granted IRQ, then waits for events and hands them to the [`Handler`]; a
//! reply to a protected call and at most one deferred notify or IRQ ack are fused with the next
//! wait (one system call).
//!
//! Grants are checked locally before calling the kernel: the image tool patches the masks of
//! what the description grants into `microkit_notifications`, `microkit_pps` and
//! `microkit_irqs`, and using anything else panics loudly (the kernel would refuse it too).
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

mod channel;
mod debug;
mod defer;
mod entry;
mod fwp;
mod handler;
mod message;
mod symbols;
pub mod sys;
mod time;

pub use channel::{Channel, ChannelSet, ChannelSetIter, Child, DisplayChannelSet, IrqAckError, PdControlError};
pub use defer::{DeferredAction, DeferredActionInterface, DeferredActionSlot};
pub use edgeos_microkit_macros::protection_domain;
pub use fwp::{debug_free_frames, ChannelArray, Fork, ForkError, Instance};
pub use handler::{Handler, Infallible, Never, NullHandler};
pub use message::{
    get_mr, set_mr, with_msg_bytes, with_msg_bytes_mut, with_msg_regs, with_msg_regs_mut, Fault, FaultKind, MessageInfo,
    MessageLabel, MessageRegisterValue,
};
pub use symbols::{ipc_buffer_ptr, pd_is_passive, pd_name, pd_name_bytes};

/// Writes the debug output of this PD (the kernel's console).
pub use debug::debug_write;

/// EdgeOS extensions beyond the `sel4-microkit` API.
pub use entry::{debug_exit, debug_shutdown, debug_time};
pub use time::{counter, counter_frequency};

// For the macros.
#[doc(hidden)]
pub mod _private {
    pub use crate::debug::DebugWriter;
    pub use crate::entry::run_main;
    pub use crate::entry::Heap;
    pub use crate::symbols::ImmutableCell;

    /// Gives the PD a heap of `$size` bytes as its global allocator.
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __edgeos_microkit_declare_heap {
        ($size:expr) => {
            #[global_allocator]
            static __EDGEOS_MICROKIT_HEAP: $crate::_private::Heap<{ $size }> = $crate::_private::Heap::new();
        };
    }
    pub use crate::__edgeos_microkit_declare_heap as declare_heap;
}

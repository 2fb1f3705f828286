//! Single-producer single-consumer queues in memory shared between protection domains, in the
//! shape of the seL4 Device Driver Framework (sDDF): every link between two PDs is a PAIR of
//! queues, `free` (empty buffers going back) and `active` (full buffers going forward), carrying
//! 16-byte [`Descriptor`]s that name a buffer by its offset in a data region.
//!
//! The shared part of a queue is a [`Header`] (the producer's `tail`, the consumer's `head` and
//! the consumer's "please notify me" flag, each on its own cache line) followed by the slots.
//! Indices are free-running `u32`s; the number of items is `tail - head`.
//!
//! Everything read from shared memory was written by a peer that may be hostile. Each side
//! therefore keeps its own index and the capacity PRIVATELY (in [`Producer`] / [`Consumer`]),
//! reads the peer's index exactly once per operation into a local, and refuses it
//! ([`Corrupt`]) if it implies more items than the capacity. A descriptor is read once into a
//! local and its offset and length are checked against the data region ([`BufferLayout`])
//! before anything follows them.
//!
//! Ordering: the producer writes a slot, then stores `tail` with Release; the consumer loads
//! `tail` with Acquire before reading slots and stores `head` with Release after reading them.
//! Wake-ups follow sDDF's protocol with the two SeqCst fences that close the lost-wake-up race
//! (see [`Consumer::request_signal`] and [`Producer::signal_wanted`]); `tests/loom.rs` checks
//! it under every interleaving `loom` explores.
//!
//! Unsafe code lives in one module, [`raw`], which turns a mapped shared region into these
//! views; everything else is safe code.
#![no_std]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod net;
mod queue;
#[cfg(not(loom))]
#[allow(unsafe_code)]
pub mod raw;
mod sync;

pub use queue::{
    queue_bytes, BufferLayout, Consumer, Corrupt, Descriptor, EnqueueError, Header, Producer, QueueStorage, QueueView,
    Slot, HEADER_BYTES, SLOT_BYTES,
};

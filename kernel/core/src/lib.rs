//! The EdgeOS kernel's hardware-independent logic, built for the kernel (aarch64, no_std) and
//! tested on the host with `cargo test`.
//!
//! - [`frames`]: the physical frame allocator;
//! - [`fwp`]: featherweight-process bookkeeping (instance ids, slots, quotas);
//! - [`arrays`]: channel arrays (one channel id naming every instance of a template);
//! - [`fpu`]: lazy FP/SIMD switching (who owns the registers);
//! - [`pagetable`]: building aarch64 stage-1 translation tables for PD address spaces;
//! - [`asid`]: address-space ids with generations;
//! - [`runqueue`]: O(1) ready queues (priority bitmap + FIFO per priority);
//! - [`release`]: the queue of scheduling contexts waiting for their budget to come back;
//! - [`grants`]: what each PD's channel ids may do, lowered from the boot description;
//! - [`kernel`]: protection domains, notifications, protected calls, faults and scheduling,
//!   driven by the arch layer through the [`kernel::Platform`] trait.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
// `x % n == 0` stays: `is_multiple_of` needs Rust 1.87 and the workspace declares 1.85.
#![allow(clippy::manual_is_multiple_of)]

#[cfg(test)]
extern crate std;

pub mod arrays;
pub mod asid;
pub mod context;
pub mod fpu;
pub mod frames;
pub mod fwp;
pub mod grants;
pub mod kernel;
pub mod pagetable;
pub mod release;
pub mod runqueue;
pub mod time;

//! The featherweight-process manager's logic (`docs/featherweight.md`, "Manager"), kept free of
//! the kernel and of shared memory so it is tested on the host:
//!
//! - [`config`]: the services file (which template serves which ports, with which policy),
//!   parsed from untrusted bytes; the network virtualiser uses it too.
//! - [`policy`]: the [`policy::Manager`] state machine: which instance serves a request (same
//!   key, pool, or a fresh fork), pools, idle reclaim, the two-step retirement of dead instances.
//! - [`stats`]: the binary statistics record the manager PD writes into a region, and its decoder.
//! - [`api`]: the protected-call API the virtualiser uses (labels, message registers, errors).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod api;
pub mod config;
pub mod policy;
pub mod stats;

pub use config::{parse, ConfigError, Policy, Protocol, Service, ServiceId, Services};
pub use policy::{InstanceRef, Manager};

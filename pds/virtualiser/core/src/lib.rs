//! The network virtualiser's logic, kept free of hardware and shared memory so it is tested
//! (and fuzzed) on the host: parsing a frame just far enough to route it ([`parse`]), the
//! table that maps flows to tenants ([`flow`]), the protected-call API a manager uses to
//! install routes ([`api`]), the checks on frames a tenant hands over ([`policy`]), the
//! tenants that are featherweight instances ([`instances`]), what one event visits and when
//! (work sets, the deadline heap, the ASSIGN back-off: [`sched`]) and the ARP answers the
//! virtualiser gives for the node ([`arp`]).
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod api;
pub mod arp;
pub mod config;
pub mod flow;
pub mod fuzzing;
pub mod instances;
pub mod parse;
pub mod policy;
pub mod sched;

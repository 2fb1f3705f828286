//! `edgeos-loadgen`: a mutilate-style load generator for memcached, built to be a sound
//! measuring instrument for EdgeOS's many-instance memcached tenants.
//!
//! - [`config`]: what to run, and the parsers for the command line's values.
//! - [`dist`], [`keys`], [`rng`]: the workload (size, arrival and popularity distributions,
//!   the key space), reproducible from a seed.
//! - [`protocol`], [`udp`]: memcached's text protocol and UDP framing, client side.
//! - [`schedule`], [`timer`], [`worker`]: the open-loop send schedule and the `mio` event loops.
//! - [`connect`]: opening many TCP connections gradually, each checked, with retries.
//! - [`run`]: the coordinator (connect, populate, warm up, measure, merge).
//! - [`stats`], [`plot`]: HDR-histogram percentiles, the JSON and text reports, the sweep plot.
//! - [`stub`]: a stub server with an exact artificial delay, to calibrate the instrument.
//!
//! See `tools/loadgen/README.md` for usage, method and the instrument's measured overhead.
#![forbid(unsafe_code)]

pub mod config;
pub mod connect;
pub mod dist;
pub mod keys;
pub mod plot;
pub mod protocol;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod stats;
pub mod stub;
pub mod timer;
pub mod udp;
pub mod worker;

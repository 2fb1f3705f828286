//! Fuzzes every parser the virtualiser runs on frames from the network or from tenants.
#![no_main]

use std::sync::OnceLock;

use edgeos_netvirt_core::flow::FlowTable;
use edgeos_netvirt_core::fuzzing::{exercise, sample_table};
use libfuzzer_sys::fuzz_target;

static TABLE: OnceLock<FlowTable> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    exercise(data, TABLE.get_or_init(sample_table));
});

//! What the fuzz targets share (each includes this file as `mod common`).

use memcached::Config;

/// The clock's start (unix seconds).
pub const START: u32 = 1_700_000_000;

/// The store configuration a header byte picks: a memory limit of 1 to 64 KiB (so eviction and
/// out-of-memory paths run), evictions on or off, strict keys, a small item size limit, a
/// small `get` line limit.
pub fn config(byte: u8) -> Config {
    Config {
        memory_limit: [1024, 4096, 16 * 1024, 64 * 1024][usize::from(byte & 3)],
        evictions: byte & 4 == 0,
        strict_keys: byte & 8 != 0,
        item_size_max: if byte & 16 != 0 {
            2048
        } else {
            Config::default().item_size_max
        },
        max_get_line: if byte & 32 != 0 {
            3000
        } else {
            Config::default().max_get_line
        },
        ..Config::default()
    }
}

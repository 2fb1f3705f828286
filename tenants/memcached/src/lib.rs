//! memcached for EdgeOS tenants: the text, meta and UDP protocols of memcached 1.6 over an item
//! store with a memory limit, LRU eviction and expiry.
//!
//! The crate does no I/O and reads no clock. A server feeds it the bytes it received and the
//! current unix time, and sends back the bytes it produces:
//!
//! - [`Store`] holds the items of one memcached instance.
//! - [`Connection`] is one TCP client's protocol state: [`Connection::feed`] takes whatever
//!   arrived (half a command, a value in pieces, or many pipelined commands), appends every
//!   reply to an output buffer and says whether to keep the connection open.
//! - [`udp::handle_datagram`] answers one UDP request datagram with framed reply datagrams.
//! - [`Store::crawl`] removes expired items a bounded number of slots at a time; call it
//!   periodically.
//!
//! ```
//! use memcached::{Action, Config, Connection, Store};
//!
//! let now = 1_700_000_000;
//! let mut store = Store::new(Config::default(), now);
//! let mut connection = Connection::new();
//! let mut out = Vec::new();
//! let action = connection.feed(b"set greeting 0 0 5\r\nhello\r\nget greeting\r\n", &mut store, now, &mut out);
//! assert_eq!(action, Action::Continue);
//! assert_eq!(out, b"STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n");
//! ```
//!
//! Replies match memcached 1.6.18 byte for byte, including its quirks (see the crate's
//! README for the list); `tests/memcached/` checks that against Debian's memcached.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod conn;
pub mod lru;
mod meta;
pub mod parse;
pub mod slabs;
pub mod stats;
pub mod store;
mod text;
pub mod udp;

pub use conn::{Action, Connection};
pub use store::{ArithError, ItemRef, Store, StoreError, StoreMode, StoreOptions, StoreStatus};

/// The version this implementation reports: the memcached release whose protocol it matches,
/// tagged so that clients and operators can tell it apart.
pub const VERSION: &str = "1.6.18-edgeos";

/// Settings of one memcached instance (memcached's command-line options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Memory for items, in bytes (memcached `-m`, which is in MiB). Items are charged the
    /// chunk size memcached would use for them (see [`slabs`]).
    pub memory_limit: usize,
    /// The largest item, in bytes, counting memcached's per-item overhead (memcached `-I`).
    pub item_size_max: usize,
    /// Whether to evict live items when memory is full; when false, stores fail with
    /// `SERVER_ERROR out of memory storing object` (memcached `-M`).
    pub evictions: bool,
    /// Seed for the key hash, so that clients cannot predict collisions; use something random.
    pub hash_seed: u64,
    /// The longest `get`/`gets` command line accepted; longer ones close the connection.
    /// (Other command lines are limited to 2048 bytes as in memcached.)
    pub max_get_line: usize,
    /// Also reject keys containing control characters (memcached itself only forbids spaces,
    /// which cannot occur in a key because they separate tokens, and lengths over 250).
    pub strict_keys: bool,
    /// Reported by `version` and `stats`.
    pub version: &'static str,
    /// Reported by `stats` as `pid`.
    pub process_id: u32,
    /// Reported by `stats` and `stats settings`.
    pub max_connections: u32,
    /// Reported by `stats settings` (0: none).
    pub tcp_port: u16,
    /// Reported by `stats settings` (0: none).
    pub udp_port: u16,
}

impl Default for Config {
    /// memcached's defaults: 64 MiB, 1 MiB items, evictions on.
    fn default() -> Self {
        Self {
            memory_limit: 64 * 1024 * 1024,
            item_size_max: 1024 * 1024,
            evictions: true,
            hash_seed: 0x6d65_6d63_6163_6865,
            max_get_line: 256 * 1024,
            strict_keys: false,
            version: VERSION,
            process_id: 0,
            max_connections: 1024,
            tcp_port: 11211,
            udp_port: 0,
        }
    }
}

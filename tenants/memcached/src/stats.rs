//! Counters kept by the store and connections, and the `stats` command's reports (general,
//! `settings`, `items`, `slabs`) in memcached 1.6's names and order.
//!
//! Only statistics that mean something here are reported; memcached's thread, libevent, slab
//! mover, extstore and TLS figures are left out. Names that are kept have memcached's meaning,
//! so monitoring tools (`memcstat`, exporters) read them unchanged.

use alloc::vec::Vec;

use crate::parse::{push_i64, push_u64};
use crate::slabs::{self, MAX_CLASSES};

/// Counters kept per slab class (memcached keeps these per class and sums them for `stats`).
#[derive(Debug, Default, Clone, Copy)]
pub struct ClassStats {
    /// Items currently stored in this class.
    pub number: u64,
    /// Sum of the memcached-accounted sizes of the items in this class.
    pub mem_requested: u64,
    /// The most pages memcached would have allocated to this class (it never gives pages back).
    pub pages: u64,
    /// Live items removed to make room.
    pub evicted: u64,
    /// Of those, items that had an expiry time.
    pub evicted_nonzero: u64,
    /// Of those, items that were never fetched.
    pub evicted_unfetched: u64,
    /// Times an item could not be stored for lack of memory.
    pub outofmemory: u64,
    /// Expired or flushed items whose memory was reused for a new item.
    pub reclaimed: u64,
    /// Expired items reclaimed that were never fetched.
    pub expired_unfetched: u64,
    /// Items freed by the periodic crawler.
    pub crawler_reclaimed: u64,
    /// Items the crawler examined.
    pub crawler_items_checked: u64,
    /// Retrievals that found an item of this class.
    pub get_hits: u64,
    /// Storage commands for items of this class.
    pub cmd_set: u64,
    /// Deletes that found an item of this class.
    pub delete_hits: u64,
    /// Increments that found an item of this class.
    pub incr_hits: u64,
    /// Decrements that found an item of this class.
    pub decr_hits: u64,
    /// CAS stores that matched.
    pub cas_hits: u64,
    /// CAS stores refused because the item changed.
    pub cas_badval: u64,
    /// Touches that found an item of this class.
    pub touch_hits: u64,
}

/// Counters that are not per class.
#[derive(Debug, Default, Clone, Copy)]
pub struct GlobalStats {
    /// Retrieval keys asked for (each key of a multi-get counts).
    pub cmd_get: u64,
    /// Flush commands.
    pub cmd_flush: u64,
    /// Touch commands and touching retrievals, per key.
    pub cmd_touch: u64,
    /// Meta debug (`me`) commands: what memcached 1.6.18 counts as `cmd_meta`.
    pub cmd_meta: u64,
    /// Retrieval keys not found.
    pub get_misses: u64,
    /// Lookups that found an expired item.
    pub get_expired: u64,
    /// Lookups that found a flushed item.
    pub get_flushed: u64,
    /// Deletes of missing keys.
    pub delete_misses: u64,
    /// Increments of missing keys.
    pub incr_misses: u64,
    /// Decrements of missing keys.
    pub decr_misses: u64,
    /// CAS stores of missing keys.
    pub cas_misses: u64,
    /// Touches of missing keys.
    pub touch_misses: u64,
    /// Stores refused because the item exceeds the item size limit.
    pub store_too_large: u64,
    /// Stores refused for lack of memory.
    pub store_no_memory: u64,
    /// Bytes received from clients.
    pub bytes_read: u64,
    /// Bytes sent to clients.
    pub bytes_written: u64,
    /// Open connections (maintained by the server around the library).
    pub curr_connections: u64,
    /// Connections opened since start.
    pub total_connections: u64,
    /// Items ever stored.
    pub total_items: u64,
}

/// What `stats` needs to know about the running server besides counters.
#[derive(Debug, Clone, Copy)]
pub struct ServerView<'a> {
    /// Process id (0 where there are no processes).
    pub pid: u32,
    /// Seconds since start.
    pub uptime: u32,
    /// Current unix time.
    pub now: u32,
    /// Version string.
    pub version: &'a str,
    /// Memory limit in bytes.
    pub limit_maxbytes: u64,
    /// Items stored now.
    pub curr_items: u64,
    /// Bytes of items stored now (memcached's accounting).
    pub bytes: u64,
    /// Connection limit.
    pub max_connections: u32,
}

/// Appends one `STAT name value` line.
fn stat_line(out: &mut Vec<u8>, name: &str, value: impl StatValue) {
    out.extend_from_slice(b"STAT ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    value.write(out);
    out.extend_from_slice(b"\r\n");
}

/// A value that can be printed in a `STAT` line.
trait StatValue {
    fn write(self, out: &mut Vec<u8>);
}

impl StatValue for u64 {
    fn write(self, out: &mut Vec<u8>) {
        push_u64(out, self);
    }
}

impl StatValue for u32 {
    fn write(self, out: &mut Vec<u8>) {
        push_u64(out, u64::from(self));
    }
}

impl StatValue for i64 {
    fn write(self, out: &mut Vec<u8>) {
        push_i64(out, self);
    }
}

impl StatValue for &str {
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

/// Sums one per-class counter over all classes.
fn total(classes: &[ClassStats; MAX_CLASSES], field: impl Fn(&ClassStats) -> u64) -> u64 {
    classes.iter().map(field).sum()
}

/// Writes the general `stats` report (without the closing `END`).
pub fn write_general(
    out: &mut Vec<u8>,
    server: &ServerView<'_>,
    global: &GlobalStats,
    classes: &[ClassStats; MAX_CLASSES],
) {
    let get_hits = total(classes, |class| class.get_hits);
    stat_line(out, "pid", server.pid);
    stat_line(out, "uptime", server.uptime);
    stat_line(out, "time", server.now);
    stat_line(out, "version", server.version);
    stat_line(out, "pointer_size", 64u32);
    stat_line(out, "rusage_user", "0.000000");
    stat_line(out, "rusage_system", "0.000000");
    stat_line(out, "max_connections", server.max_connections);
    stat_line(out, "curr_connections", global.curr_connections);
    stat_line(out, "total_connections", global.total_connections);
    stat_line(out, "rejected_connections", 0u64);
    stat_line(out, "cmd_get", global.cmd_get);
    stat_line(out, "cmd_set", total(classes, |class| class.cmd_set));
    stat_line(out, "cmd_flush", global.cmd_flush);
    stat_line(out, "cmd_touch", global.cmd_touch);
    stat_line(out, "cmd_meta", global.cmd_meta);
    stat_line(out, "get_hits", get_hits);
    stat_line(out, "get_misses", global.get_misses);
    stat_line(out, "get_expired", global.get_expired);
    stat_line(out, "get_flushed", global.get_flushed);
    stat_line(out, "delete_misses", global.delete_misses);
    stat_line(
        out,
        "delete_hits",
        total(classes, |class| class.delete_hits),
    );
    stat_line(out, "incr_misses", global.incr_misses);
    stat_line(out, "incr_hits", total(classes, |class| class.incr_hits));
    stat_line(out, "decr_misses", global.decr_misses);
    stat_line(out, "decr_hits", total(classes, |class| class.decr_hits));
    stat_line(out, "cas_misses", global.cas_misses);
    stat_line(out, "cas_hits", total(classes, |class| class.cas_hits));
    stat_line(out, "cas_badval", total(classes, |class| class.cas_badval));
    stat_line(out, "touch_hits", total(classes, |class| class.touch_hits));
    stat_line(out, "touch_misses", global.touch_misses);
    stat_line(out, "store_too_large", global.store_too_large);
    stat_line(out, "store_no_memory", global.store_no_memory);
    stat_line(out, "auth_cmds", 0u64);
    stat_line(out, "auth_errors", 0u64);
    stat_line(out, "bytes_read", global.bytes_read);
    stat_line(out, "bytes_written", global.bytes_written);
    stat_line(out, "limit_maxbytes", server.limit_maxbytes);
    stat_line(out, "accepting_conns", 1u64);
    stat_line(out, "threads", 1u64);
    stat_line(out, "bytes", server.bytes);
    stat_line(out, "curr_items", server.curr_items);
    stat_line(out, "total_items", global.total_items);
    stat_line(
        out,
        "expired_unfetched",
        total(classes, |class| class.expired_unfetched),
    );
    stat_line(
        out,
        "evicted_unfetched",
        total(classes, |class| class.evicted_unfetched),
    );
    stat_line(out, "evictions", total(classes, |class| class.evicted));
    stat_line(out, "reclaimed", total(classes, |class| class.reclaimed));
    stat_line(
        out,
        "crawler_reclaimed",
        total(classes, |class| class.crawler_reclaimed),
    );
    stat_line(
        out,
        "crawler_items_checked",
        total(classes, |class| class.crawler_items_checked),
    );
}

/// What `stats settings` reports.
#[derive(Debug, Clone, Copy)]
pub struct SettingsView {
    /// Memory limit in bytes.
    pub maxbytes: u64,
    /// Connection limit.
    pub maxconns: u32,
    /// TCP port (0 when none).
    pub tcpport: u16,
    /// UDP port (0 when none).
    pub udpport: u16,
    /// Current `verbosity` level.
    pub verbosity: u32,
    /// Whether live items are evicted when memory is full.
    pub evictions: bool,
    /// Largest item in bytes.
    pub item_size_max: u64,
}

/// Writes the `stats settings` report (without the closing `END`).
pub fn write_settings(out: &mut Vec<u8>, settings: &SettingsView) {
    stat_line(out, "maxbytes", settings.maxbytes);
    stat_line(out, "maxconns", settings.maxconns);
    stat_line(out, "tcpport", u32::from(settings.tcpport));
    stat_line(out, "udpport", u32::from(settings.udpport));
    stat_line(out, "verbosity", settings.verbosity);
    stat_line(out, "oldest", 0u64);
    stat_line(
        out,
        "evictions",
        if settings.evictions { "on" } else { "off" },
    );
    stat_line(out, "growth_factor", "1.25");
    stat_line(out, "chunk_size", 48u64);
    stat_line(out, "num_threads", 1u64);
    stat_line(out, "cas_enabled", "yes");
    stat_line(out, "item_size_max", settings.item_size_max);
    stat_line(out, "slab_chunk_max", u64::from(slabs::CHUNK_MAX));
    stat_line(out, "lru_crawler", "yes");
    stat_line(out, "flush_enabled", "yes");
    stat_line(out, "lru_segmented", "no");
}

/// Writes the `stats items` report for classes holding items (without the closing `END`).
/// `oldest_age` gives, per class id, the seconds since the least recently used item was used.
pub fn write_items(
    out: &mut Vec<u8>,
    classes: &[ClassStats; MAX_CLASSES],
    oldest_age: &[u32; MAX_CLASSES],
) {
    for (id, class) in classes.iter().enumerate() {
        if class.number == 0 {
            continue;
        }
        let mut line = |field: &str, value: u64| {
            out.extend_from_slice(b"STAT items:");
            push_u64(out, id as u64);
            out.push(b':');
            out.extend_from_slice(field.as_bytes());
            out.push(b' ');
            push_u64(out, value);
            out.extend_from_slice(b"\r\n");
        };
        line("number", class.number);
        line("number_hot", 0);
        line("number_warm", 0);
        line("number_cold", class.number);
        line("age_hot", 0);
        line("age_warm", 0);
        line("age", u64::from(oldest_age[id]));
        line("mem_requested", class.mem_requested);
        line("evicted", class.evicted);
        line("evicted_nonzero", class.evicted_nonzero);
        line("evicted_time", 0);
        line("outofmemory", class.outofmemory);
        line("tailrepairs", 0);
        line("reclaimed", class.reclaimed);
        line("expired_unfetched", class.expired_unfetched);
        line("evicted_unfetched", class.evicted_unfetched);
        line("evicted_active", 0);
        line("crawler_reclaimed", class.crawler_reclaimed);
        line("crawler_items_checked", class.crawler_items_checked);
        line("lrutail_reflocked", 0);
        line("moves_to_cold", 0);
        line("moves_to_warm", 0);
        line("moves_within_lru", 0);
        line("direct_reclaims", 0);
        line("hits_to_hot", 0);
        line("hits_to_warm", 0);
        line("hits_to_cold", class.get_hits);
        line("hits_to_temp", 0);
    }
}

/// Writes the `stats slabs` report for classes that have (had) pages (without the closing `END`).
pub fn write_slabs(out: &mut Vec<u8>, classes: &[ClassStats; MAX_CLASSES]) {
    let mut active = 0u64;
    let mut malloced = 0u64;
    for (id, class) in classes.iter().enumerate() {
        if class.pages == 0 {
            continue;
        }
        let id8 = u8::try_from(id).unwrap_or(0);
        let per_page = u64::from(slabs::chunks_per_page(id8));
        let total_chunks = class.pages * per_page;
        active += 1;
        malloced += class.pages * u64::from(slabs::PAGE_SIZE);
        let mut line = |field: &str, value: u64| {
            out.extend_from_slice(b"STAT ");
            push_u64(out, id as u64);
            out.push(b':');
            out.extend_from_slice(field.as_bytes());
            out.push(b' ');
            push_u64(out, value);
            out.extend_from_slice(b"\r\n");
        };
        line("chunk_size", u64::from(slabs::chunk_size(id8)));
        line("chunks_per_page", per_page);
        line("total_pages", class.pages);
        line("total_chunks", total_chunks);
        line("used_chunks", class.number);
        line("free_chunks", total_chunks.saturating_sub(class.number));
        line("free_chunks_end", 0);
        line("get_hits", class.get_hits);
        line("cmd_set", class.cmd_set);
        line("delete_hits", class.delete_hits);
        line("incr_hits", class.incr_hits);
        line("decr_hits", class.decr_hits);
        line("cas_hits", class.cas_hits);
        line("cas_badval", class.cas_badval);
        line("touch_hits", class.touch_hits);
    }
    stat_line(out, "active_slabs", active);
    stat_line(out, "total_malloced", malloced);
}

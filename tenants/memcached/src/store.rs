//! The item store: keys to values with client flags, expiry and CAS, under a memory limit with
//! least-recently-used eviction, lazy expiry on access and a bounded periodic crawler.
//!
//! Time is never read here: every operation takes `now`, whole seconds since the unix epoch,
//! from the caller (a PD reads the PL031 real-time clock; the host server reads the system clock).
//! Expiry times are kept as absolute unix seconds, with memcached's rules for what clients send:
//! 0 never expires, up to 30 days is relative to now, larger values are absolute unix times, and
//! negative values are already expired.
//!
//! The semantics (what `add`, `cas`, `append`, `incr` do with existing, expired, flushed or
//! missing items, which statistics move) follow memcached 1.6's `do_store_item`,
//! `do_add_delta` and `do_item_get`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hash::BuildHasher;

use foldhash::fast::FixedState;
use hashbrown::HashTable;

use crate::lru::{LruSlab, SlotId};
use crate::parse::{self, push_u64};
use crate::slabs::{self, MAX_CLASSES};
use crate::stats::{self, ClassStats, GlobalStats};
use crate::Config;

/// Client exptimes above this many seconds (30 days) are absolute unix times.
pub const RELATIVE_EXPTIME_MAX: i32 = 60 * 60 * 24 * 30;

/// memcached refreshes an item's last-access time at most this often (`ITEM_UPDATE_INTERVAL`).
const ACCESS_UPDATE_INTERVAL: u32 = 60;

/// How a storage command treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key holds no item.
    Add,
    /// Store only if the key holds an item.
    Replace,
    /// Add the data after an existing item's value.
    Append,
    /// Add the data before an existing item's value.
    Prepend,
    /// Store only if the existing item's CAS value is the one given.
    Cas,
}

/// The outcome of a storage command that was carried out (memcached's reply word in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreStatus {
    /// The item was stored (`STORED` / `HD`).
    Stored,
    /// A condition of the mode was not met (`NOT_STORED` / `NS`).
    NotStored,
    /// The CAS value did not match (`EXISTS` / `EX`).
    Exists,
    /// A CAS store found no item (`NOT_FOUND` / `NF`).
    NotFound,
}

/// Why an item could not be stored at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The item is larger than the item size limit (`SERVER_ERROR object too large for cache`).
    TooLarge,
    /// No memory could be freed for it (`SERVER_ERROR out of memory storing object`).
    OutOfMemory,
}

/// Why an increment or decrement did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithError {
    /// No live item under the key.
    NotFound,
    /// The value is not a decimal 64-bit unsigned number.
    NonNumeric,
    /// A CAS value was given and did not match.
    CasMismatch,
    /// The longer result needed memory that could not be freed.
    OutOfMemory,
}

/// Options of a storage command beyond key, value, flags and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How to treat an existing item.
    pub mode: StoreMode,
    /// The CAS value to compare with (0: none), for `cas` and the meta `C` flag.
    pub compare_cas: u64,
    /// Meta `I` with `C`: a CAS value older than the item's still stores, marking the item stale.
    pub invalidate: bool,
    /// The key arrived base64-encoded (meta `b`), so replies show it that way.
    pub key_binary: bool,
}

impl StoreOptions {
    /// Plain options for `mode`.
    pub const fn new(mode: StoreMode) -> Self {
        Self {
            mode,
            compare_cas: 0,
            invalidate: false,
            key_binary: false,
        }
    }
}

/// One stored item.
#[derive(Debug)]
struct Entry {
    key: Box<[u8]>,
    value: Vec<u8>,
    flags: u32,
    /// Absolute unix time of expiry; 0 never expires.
    exptime: u32,
    /// When the item was stored or last refreshed by an access (memcached's `it->time`).
    time: u32,
    cas: u64,
    class: u8,
    /// Fetched at least once since stored.
    fetched: bool,
    /// Marked stale by meta delete `I` (or stored stale by meta set `I`).
    stale: bool,
    /// A client was told it won the right to recache (meta `W` flag).
    token_sent: bool,
    /// The key was given in base64 (meta `b` flag).
    key_binary: bool,
}

impl Entry {
    fn total_size(&self) -> usize {
        slabs::item_total_size(self.key.len(), self.value.len(), self.flags)
    }
}

/// A read-only view of a stored item.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef<'a> {
    entry: &'a Entry,
}

impl<'a> ItemRef<'a> {
    /// The key.
    pub fn key(&self) -> &'a [u8] {
        &self.entry.key
    }

    /// The value.
    pub fn value(&self) -> &'a [u8] {
        &self.entry.value
    }

    /// The client flags.
    pub fn flags(&self) -> u32 {
        self.entry.flags
    }

    /// The CAS value.
    pub fn cas(&self) -> u64 {
        self.entry.cas
    }

    /// The absolute expiry time in unix seconds, 0 for never.
    pub fn exptime(&self) -> u32 {
        self.entry.exptime
    }

    /// Seconds of life left at `now`, or -1 when the item never expires.
    pub fn ttl(&self, now: u32) -> i64 {
        match self.entry.exptime {
            0 => -1,
            exptime => i64::from(exptime) - i64::from(now),
        }
    }

    /// Seconds since the item was stored or last refreshed by an access.
    pub fn idle(&self, now: u32) -> i64 {
        i64::from(now) - i64::from(self.entry.time)
    }

    /// Whether the item was fetched since it was stored.
    pub fn fetched(&self) -> bool {
        self.entry.fetched
    }

    /// Whether the item was marked stale (meta `I`).
    pub fn stale(&self) -> bool {
        self.entry.stale
    }

    /// Whether a client already won the right to recache this item.
    pub fn token_sent(&self) -> bool {
        self.entry.token_sent
    }

    /// Whether the key was stored from base64 (meta `b`).
    pub fn key_binary(&self) -> bool {
        self.entry.key_binary
    }

    /// The memcached slab class this item is reported in.
    pub fn class(&self) -> u8 {
        self.entry.class
    }

    /// The bytes memcached would account for this item.
    pub fn total_size(&self) -> usize {
        self.entry.total_size()
    }
}

/// Where the value of a new or rewritten item comes from.
#[derive(Clone, Copy)]
enum NewValue<'a> {
    Replace(&'a [u8]),
    Append(&'a [u8]),
    Prepend(&'a [u8]),
}

/// What a new or rewritten item carries besides its key and value.
#[derive(Clone, Copy)]
struct Attributes {
    flags: u32,
    /// Absolute expiry time, 0 for never.
    exptime: u32,
    key_binary: bool,
}

/// The item store of one memcached instance.
pub struct Store {
    config: Config,
    /// Maps key hashes to item slots; keys are compared against the slot's entry.
    index: HashTable<SlotId>,
    hasher: FixedState,
    items: LruSlab<Entry>,
    /// Bytes charged against `config.memory_limit` (chunk sizes).
    charged: usize,
    /// Bytes of items as memcached accounts them (`stats bytes`).
    bytes: usize,
    /// The last CAS value handed out.
    last_cas: u64,
    /// Items stored or refreshed at or before this time are flushed, once it has passed.
    oldest_live: Option<u32>,
    /// Items with a CAS value below this are flushed too (set by an immediate flush).
    oldest_cas: u64,
    /// Next slot the crawler examines.
    crawl_cursor: SlotId,
    /// When the store was created.
    started: u32,
    /// Level set by `verbosity` (reported only).
    verbosity: u32,
    global: GlobalStats,
    classes: [ClassStats; MAX_CLASSES],
}

impl core::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("items", &self.items.len())
            .field("bytes", &self.bytes)
            .field("charged", &self.charged)
            .field("memory_limit", &self.config.memory_limit)
            .finish()
    }
}

/// Converts a client exptime to an absolute expiry time (0: never), following memcached's
/// `realtime()`: negative is already expired, up to 30 days is relative.
pub fn absolute_exptime(exptime: i32, now: u32) -> u32 {
    match exptime {
        0 => 0,
        // Any non-zero time in the past: the item is dead on arrival.
        i32::MIN..=-1 => 1,
        1..=RELATIVE_EXPTIME_MAX => now.saturating_add(exptime as u32),
        absolute => absolute as u32,
    }
}

/// Hashes a key with the store's seeded hasher.
fn hash_key(hasher: &FixedState, key: &[u8]) -> u64 {
    hasher.hash_one(key)
}

impl Store {
    /// An empty store with `config`, created at unix time `now`.
    pub fn new(config: Config, now: u32) -> Self {
        Self {
            hasher: FixedState::with_seed(config.hash_seed),
            config,
            index: HashTable::new(),
            items: LruSlab::new(),
            charged: 0,
            bytes: 0,
            last_cas: 0,
            oldest_live: None,
            oldest_cas: 0,
            crawl_cursor: 0,
            started: now,
            verbosity: 0,
            global: GlobalStats::default(),
            classes: [ClassStats::default(); MAX_CLASSES],
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The number of items held (including expired ones not yet noticed).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no items are held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of items as memcached accounts them (`stats bytes`).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes charged against the memory limit.
    pub fn charged_bytes(&self) -> usize {
        self.charged
    }

    /// Counters that are not per slab class.
    pub fn global_stats(&self) -> &GlobalStats {
        &self.global
    }

    /// Counters that are not per slab class, for the server to update (connections, bytes).
    pub fn global_stats_mut(&mut self) -> &mut GlobalStats {
        &mut self.global
    }

    /// Per-class counters, indexed by class id.
    pub fn class_stats(&self) -> &[ClassStats; MAX_CLASSES] {
        &self.classes
    }

    /// Records that a client connection was opened.
    pub fn connection_opened(&mut self) {
        self.global.curr_connections += 1;
        self.global.total_connections += 1;
    }

    /// Records that a client connection was closed.
    pub fn connection_closed(&mut self) {
        self.global.curr_connections = self.global.curr_connections.saturating_sub(1);
    }

    /// Sets the reported verbosity level.
    pub fn set_verbosity(&mut self, level: u32) {
        self.verbosity = level;
    }

    /// A new CAS value.
    fn next_cas(&mut self) -> u64 {
        self.last_cas += 1;
        self.last_cas
    }

    /// Whether `entry` is expired or flushed at `now`; the second value says which.
    fn dead(&self, entry: &Entry, now: u32) -> Option<Death> {
        if entry.exptime != 0 && entry.exptime <= now {
            return Some(Death::Expired);
        }
        if let Some(oldest_live) = self.oldest_live {
            if oldest_live <= now
                && (entry.time <= oldest_live
                    || (self.oldest_cas != 0 && entry.cas != 0 && entry.cas < self.oldest_cas))
            {
                return Some(Death::Flushed);
            }
        }
        None
    }

    /// The slot of the item under `key`, dead or alive.
    fn slot_of(&self, key: &[u8]) -> Option<SlotId> {
        let hash = hash_key(&self.hasher, key);
        let items = &self.items;
        self.index
            .find(hash, |&slot| {
                items.get(slot).is_some_and(|entry| &*entry.key == key)
            })
            .copied()
    }

    /// Finds the live item under `key`, removing it if it has expired or been flushed (memcached's
    /// `do_item_get` without the LRU bump).
    pub(crate) fn find(&mut self, key: &[u8], now: u32) -> Option<SlotId> {
        let slot = self.slot_of(key)?;
        let entry = self.items.get(slot)?;
        match self.dead(entry, now) {
            None => Some(slot),
            Some(death) => {
                match death {
                    Death::Expired => self.global.get_expired += 1,
                    Death::Flushed => self.global.get_flushed += 1,
                }
                self.unlink(slot);
                None
            }
        }
    }

    /// A view of the item in `slot`.
    ///
    /// # Panics
    /// If `slot` holds no item (callers pass slots just returned by this store).
    pub(crate) fn item(&self, slot: SlotId) -> ItemRef<'_> {
        ItemRef {
            entry: self
                .items
                .get(slot)
                .expect("slot returned by the store holds an item"),
        }
    }

    /// Mutable access to the entry in `slot`.
    fn entry_mut(&mut self, slot: SlotId) -> &mut Entry {
        self.items
            .get_mut(slot)
            .expect("slot returned by the store holds an item")
    }

    /// Records an access: moves the item to the head of the LRU, marks it fetched and refreshes
    /// its access time (at most once a minute, like memcached).
    pub(crate) fn bump(&mut self, slot: SlotId, now: u32) {
        self.items.touch(slot);
        let entry = self.entry_mut(slot);
        entry.fetched = true;
        if entry.time < now.saturating_sub(ACCESS_UPDATE_INTERVAL) {
            entry.time = now;
        }
    }

    /// Sets the item's expiry from a client exptime.
    pub(crate) fn set_exptime(&mut self, slot: SlotId, exptime: i32, now: u32) {
        self.entry_mut(slot).exptime = absolute_exptime(exptime, now);
    }

    /// Records that a client was told it won the right to recache the item.
    pub(crate) fn mark_token_sent(&mut self, slot: SlotId) {
        self.entry_mut(slot).token_sent = true;
    }

    /// Meta delete `I`: keeps the item but marks it stale with a new CAS value, so the next
    /// client to fetch it wins the right to recache it.
    pub(crate) fn mark_stale(&mut self, slot: SlotId) {
        let cas = self.next_cas();
        let entry = self.entry_mut(slot);
        entry.stale = true;
        entry.token_sent = false;
        entry.cas = cas;
    }

    /// Counts a retrieval for statistics. Like memcached, a retrieval that touches (`gat`,
    /// `mg` with `T`) counts as a touch, not as a get.
    pub(crate) fn count_get(&mut self, slot: Option<SlotId>, touch: bool) {
        if !touch {
            self.global.cmd_get += 1;
        }
        match (slot, touch) {
            (Some(slot), false) => {
                let class = self.item(slot).class();
                self.classes[usize::from(class)].get_hits += 1;
            }
            (Some(slot), true) => {
                let class = self.item(slot).class();
                self.global.cmd_touch += 1;
                self.classes[usize::from(class)].touch_hits += 1;
            }
            (None, false) => self.global.get_misses += 1,
            (None, true) => {
                self.global.cmd_touch += 1;
                self.global.touch_misses += 1;
            }
        }
    }

    /// Counts a meta debug command (memcached's `cmd_meta`).
    pub(crate) fn count_meta(&mut self) {
        self.global.cmd_meta += 1;
    }

    /// Counts a storage command for statistics (memcached counts it once the data arrived,
    /// whatever the outcome), in the class of an item of `total` bytes.
    pub(crate) fn count_set(&mut self, total: usize) {
        let class = slabs::class_of(total).unwrap_or(1);
        self.classes[usize::from(class)].cmd_set += 1;
    }

    /// Counts a storage command refused before its data was read.
    pub(crate) fn count_refused(&mut self, error: StoreError) {
        match error {
            StoreError::TooLarge => self.global.store_too_large += 1,
            StoreError::OutOfMemory => self.global.store_no_memory += 1,
        }
    }

    /// Removes the item in `slot` and its index entry, updating the accounting.
    fn unlink(&mut self, slot: SlotId) -> Option<Entry> {
        let entry = self.items.remove(slot)?;
        let hash = hash_key(&self.hasher, &entry.key);
        if let Ok(found) = self.index.find_entry(hash, |&candidate| candidate == slot) {
            found.remove();
        }
        let total = entry.total_size();
        self.bytes -= total;
        self.charged -= slabs::charged_size(total);
        let class = &mut self.classes[usize::from(entry.class)];
        class.number -= 1;
        class.mem_requested -= total as u64;
        Some(entry)
    }

    /// Frees memory until `incoming` more bytes (less `outgoing` bytes that the operation
    /// releases) fit under the limit. Expired and flushed items at the LRU tail are always
    /// reclaimed; live ones are evicted only when evictions are on. `keep` is never evicted.
    fn make_room(
        &mut self,
        incoming: usize,
        outgoing: usize,
        keep: Option<SlotId>,
        now: u32,
    ) -> Result<(), StoreError> {
        let limit = self.config.memory_limit;
        if incoming > limit {
            return Err(StoreError::OutOfMemory);
        }
        while self.charged - outgoing + incoming > limit {
            let mut victim = self.items.tail();
            if victim.is_some() && victim == keep {
                victim = victim.and_then(|slot| self.items.newer(slot));
            }
            let Some(victim) = victim else {
                return Err(StoreError::OutOfMemory);
            };
            let entry = self.items.get(victim).expect("the LRU tail holds an item");
            let class = usize::from(entry.class);
            match self.dead(entry, now) {
                Some(_) => {
                    let unfetched = !entry.fetched;
                    let stats = &mut self.classes[class];
                    stats.reclaimed += 1;
                    if unfetched {
                        stats.expired_unfetched += 1;
                    }
                }
                None if self.config.evictions => {
                    let (nonzero, unfetched) = (entry.exptime != 0, !entry.fetched);
                    let stats = &mut self.classes[class];
                    stats.evicted += 1;
                    if nonzero {
                        stats.evicted_nonzero += 1;
                    }
                    if unfetched {
                        stats.evicted_unfetched += 1;
                    }
                }
                None => return Err(StoreError::OutOfMemory),
            }
            self.unlink(victim);
        }
        Ok(())
    }

    /// Stores a new item, or rewrites the item in `existing` (which must be under `key`), giving
    /// it a new CAS value. Fails, leaving the store unchanged, when the item is too large or no
    /// memory can be freed for it.
    fn put(
        &mut self,
        existing: Option<SlotId>,
        key: &[u8],
        value: NewValue<'_>,
        attributes: Attributes,
        now: u32,
    ) -> Result<SlotId, StoreError> {
        let Attributes {
            flags,
            exptime,
            key_binary,
        } = attributes;
        let old_len = existing.map_or(0, |slot| self.item(slot).value().len());
        let new_len = match value {
            NewValue::Replace(data) => data.len(),
            NewValue::Append(data) | NewValue::Prepend(data) => old_len + data.len(),
        };
        let total = slabs::item_total_size(key.len(), new_len, flags);
        if total > self.config.item_size_max {
            return Err(StoreError::TooLarge);
        }
        let charged = slabs::charged_size(total);
        let old_charged =
            existing.map_or(0, |slot| slabs::charged_size(self.item(slot).total_size()));
        if let Err(error) = self.make_room(charged, old_charged, existing, now) {
            let class = slabs::class_of(total).unwrap_or(1);
            self.classes[usize::from(class)].outofmemory += 1;
            return Err(error);
        }
        let class = slabs::class_of(total).unwrap_or(1);
        let cas = self.next_cas();
        let slot = match existing {
            Some(slot) => {
                let old_total = self.item(slot).total_size();
                let old_class = self.item(slot).class();
                let entry = self.entry_mut(slot);
                match value {
                    NewValue::Replace(data) => {
                        entry.value.clear();
                        entry.value.extend_from_slice(data);
                        entry.value.shrink_to(data.len());
                    }
                    NewValue::Append(data) => entry.value.extend_from_slice(data),
                    NewValue::Prepend(data) => {
                        entry.value.splice(0..0, data.iter().copied());
                    }
                }
                *entry = Entry {
                    key: core::mem::take(&mut entry.key),
                    value: core::mem::take(&mut entry.value),
                    flags,
                    exptime,
                    time: now,
                    cas,
                    class,
                    fetched: false,
                    stale: false,
                    token_sent: false,
                    key_binary,
                };
                self.items.touch(slot);
                self.bytes -= old_total;
                self.charged -= old_charged;
                let old = &mut self.classes[usize::from(old_class)];
                old.number -= 1;
                old.mem_requested -= old_total as u64;
                slot
            }
            None => {
                let data = match value {
                    NewValue::Replace(data) | NewValue::Append(data) | NewValue::Prepend(data) => {
                        data
                    }
                };
                let entry = Entry {
                    key: key.into(),
                    value: data.to_vec(),
                    flags,
                    exptime,
                    time: now,
                    cas,
                    class,
                    fetched: false,
                    stale: false,
                    token_sent: false,
                    key_binary,
                };
                let slot = self.items.push_front(entry);
                let hash = hash_key(&self.hasher, key);
                let (items, hasher) = (&self.items, &self.hasher);
                self.index.insert_unique(hash, slot, |&other| {
                    items
                        .get(other)
                        .map_or(0, |entry| hash_key(hasher, &entry.key))
                });
                slot
            }
        };
        self.bytes += total;
        self.charged += charged;
        let stats = &mut self.classes[usize::from(class)];
        stats.number += 1;
        stats.mem_requested += total as u64;
        let per_page = u64::from(slabs::chunks_per_page(class)).max(1);
        stats.pages = stats.pages.max(stats.number.div_ceil(per_page));
        self.global.total_items += 1;
        Ok(slot)
    }

    /// Whether an item with these sizes would exceed the item size limit.
    pub fn too_large(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        slabs::item_total_size(key_len, value_len, flags) > self.config.item_size_max
    }

    /// Carries out a storage command (`set`, `add`, `replace`, `append`, `prepend`, `cas`, `ms`)
    /// and returns its outcome and, when stored, the item's new CAS value.
    ///
    /// `exptime` is the client's value (see [`absolute_exptime`]); `append` and `prepend` keep
    /// the existing item's flags and expiry. A `set` that fails for size or memory also removes
    /// the old item, as memcached does, so no stale value outlives a failed update.
    pub fn store(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: i32,
        options: StoreOptions,
        now: u32,
    ) -> Result<(StoreStatus, u64), StoreError> {
        let attributes = Attributes {
            flags,
            exptime: absolute_exptime(exptime, now),
            key_binary: options.key_binary,
        };
        let existing = self.find(key, now);
        let requested = options.compare_cas;
        let result = match existing {
            Some(slot) => {
                let item = self.item(slot);
                let (old_cas, old_class) = (item.cas(), usize::from(item.class()));
                let cas_check = if requested == 0 {
                    CasCheck::None
                } else if requested == old_cas {
                    CasCheck::Match
                } else if options.invalidate && requested < old_cas {
                    CasCheck::Stale
                } else {
                    CasCheck::Mismatch
                };
                match options.mode {
                    StoreMode::Add => {
                        // memcached refreshes the existing item in the LRU.
                        self.items.touch(slot);
                        Ok((StoreStatus::NotStored, 0))
                    }
                    StoreMode::Set | StoreMode::Replace => self
                        .put(Some(slot), key, NewValue::Replace(value), attributes, now)
                        .map(|slot| (StoreStatus::Stored, self.item(slot).cas())),
                    StoreMode::Cas => match cas_check {
                        CasCheck::Match => {
                            self.classes[old_class].cas_hits += 1;
                            self.put(Some(slot), key, NewValue::Replace(value), attributes, now)
                                .map(|slot| (StoreStatus::Stored, self.item(slot).cas()))
                        }
                        CasCheck::Stale => {
                            // Stored, but keeps the old expiry and is marked stale; whoever was
                            // told to recache still is.
                            self.classes[old_class].cas_hits += 1;
                            let (old_exptime, token_sent) = {
                                let item = self.item(slot);
                                (item.exptime(), item.token_sent())
                            };
                            self.put(
                                Some(slot),
                                key,
                                NewValue::Replace(value),
                                Attributes {
                                    exptime: old_exptime,
                                    ..attributes
                                },
                                now,
                            )
                            .map(|slot| {
                                let entry = self.entry_mut(slot);
                                entry.stale = true;
                                entry.token_sent = token_sent;
                                (StoreStatus::Stored, entry.cas)
                            })
                        }
                        CasCheck::None | CasCheck::Mismatch => {
                            self.classes[old_class].cas_badval += 1;
                            Ok((StoreStatus::Exists, 0))
                        }
                    },
                    StoreMode::Append | StoreMode::Prepend => {
                        if matches!(cas_check, CasCheck::Stale | CasCheck::Mismatch) {
                            Ok((StoreStatus::Exists, 0))
                        } else {
                            let item = self.item(slot);
                            let (old_flags, old_exptime, binary) =
                                (item.flags(), item.exptime(), item.key_binary());
                            let data = if options.mode == StoreMode::Append {
                                NewValue::Append(value)
                            } else {
                                NewValue::Prepend(value)
                            };
                            match self.put(
                                Some(slot),
                                key,
                                data,
                                Attributes {
                                    flags: old_flags,
                                    exptime: old_exptime,
                                    key_binary: binary,
                                },
                                now,
                            ) {
                                Ok(slot) => Ok((StoreStatus::Stored, self.item(slot).cas())),
                                // memcached answers NOT_STORED when the combined item cannot
                                // be allocated.
                                Err(_) => Ok((StoreStatus::NotStored, 0)),
                            }
                        }
                    }
                }
            }
            None => match options.mode {
                StoreMode::Set | StoreMode::Add => self
                    .put(None, key, NewValue::Replace(value), attributes, now)
                    .map(|slot| (StoreStatus::Stored, self.item(slot).cas())),
                StoreMode::Cas => {
                    self.global.cas_misses += 1;
                    Ok((StoreStatus::NotFound, 0))
                }
                StoreMode::Replace | StoreMode::Append | StoreMode::Prepend => {
                    Ok((StoreStatus::NotStored, 0))
                }
            },
        };
        if let Err(error) = result {
            self.count_refused(error);
            if options.mode == StoreMode::Set {
                self.delete_quietly(key, now);
            }
        }
        result
    }

    /// Removes the item under `key` without counting a delete (used after failed stores).
    pub(crate) fn delete_quietly(&mut self, key: &[u8], now: u32) {
        if let Some(slot) = self.find(key, now) {
            self.unlink(slot);
        }
    }

    /// Retrieves the live item under `key`, counting a get and refreshing its LRU position.
    pub fn get(&mut self, key: &[u8], now: u32) -> Option<ItemRef<'_>> {
        let slot = self.find(key, now);
        self.count_get(slot, false);
        let slot = slot?;
        self.bump(slot, now);
        Some(self.item(slot))
    }

    /// Retrieves the live item under `key` and sets its expiry (`gat`): counts a touch.
    pub fn get_and_touch(&mut self, key: &[u8], exptime: i32, now: u32) -> Option<ItemRef<'_>> {
        let slot = self.find(key, now);
        self.count_get(slot, true);
        let slot = slot?;
        self.bump(slot, now);
        self.set_exptime(slot, exptime, now);
        Some(self.item(slot))
    }

    /// Looks at the live item under `key` without counting or refreshing anything.
    pub fn peek(&mut self, key: &[u8], now: u32) -> Option<ItemRef<'_>> {
        let slot = self.find(key, now)?;
        Some(self.item(slot))
    }

    /// Sets the expiry of the live item under `key` (`touch`); false if there is none.
    pub fn touch(&mut self, key: &[u8], exptime: i32, now: u32) -> bool {
        self.global.cmd_touch += 1;
        match self.find(key, now) {
            Some(slot) => {
                let class = self.item(slot).class();
                self.classes[usize::from(class)].touch_hits += 1;
                self.bump(slot, now);
                self.set_exptime(slot, exptime, now);
                true
            }
            None => {
                self.global.touch_misses += 1;
                false
            }
        }
    }

    /// Removes the live item under `key`; false if there is none.
    pub fn delete(&mut self, key: &[u8], now: u32) -> bool {
        match self.find(key, now) {
            Some(slot) => {
                let class = self.item(slot).class();
                self.classes[usize::from(class)].delete_hits += 1;
                self.unlink(slot);
                true
            }
            None => {
                self.global.delete_misses += 1;
                false
            }
        }
    }

    /// Removes the item in `slot` (meta delete), counting a delete hit.
    pub(crate) fn delete_slot(&mut self, slot: SlotId) {
        let class = self.item(slot).class();
        self.classes[usize::from(class)].delete_hits += 1;
        self.unlink(slot);
    }

    /// Counts a delete that found nothing.
    pub(crate) fn count_delete_miss(&mut self) {
        self.global.delete_misses += 1;
    }

    /// Counts an increment or decrement that found nothing.
    pub(crate) fn count_arith_miss(&mut self, increment: bool) {
        if increment {
            self.global.incr_misses += 1;
        } else {
            self.global.decr_misses += 1;
        }
    }

    /// Adds `delta` to (wrapping at 2^64) or subtracts it from (stopping at 0) the decimal
    /// number stored under `key`, and returns the new number and the item's slot.
    ///
    /// Like memcached, a result no longer than the old value is written in place and padded
    /// with spaces to the old length (clients see `"99 "` after decrementing `"100"`); a longer
    /// result replaces the value. Either way the item gets a new CAS value. `compare_cas`, when
    /// non-zero, must match the item's CAS value. Misses are not counted here (the text and meta
    /// protocols count them differently).
    pub(crate) fn arith_slot(
        &mut self,
        key: &[u8],
        increment: bool,
        delta: u64,
        compare_cas: u64,
        now: u32,
    ) -> Result<(u64, SlotId), ArithError> {
        let slot = self.find(key, now).ok_or(ArithError::NotFound)?;
        let item = self.item(slot);
        if item.value().is_empty() {
            return Err(ArithError::NonNumeric);
        }
        if compare_cas != 0 && item.cas() != compare_cas {
            return Err(ArithError::CasMismatch);
        }
        let current = parse::parse_u64(item.value()).ok_or(ArithError::NonNumeric)?;
        let class = usize::from(item.class());
        let result = if increment {
            self.classes[class].incr_hits += 1;
            current.wrapping_add(delta)
        } else {
            self.classes[class].decr_hits += 1;
            current.saturating_sub(delta)
        };
        let mut digits = Vec::with_capacity(20);
        push_u64(&mut digits, result);
        let old_len = self.item(slot).value().len();
        if digits.len() <= old_len {
            let cas = self.next_cas();
            let entry = self.entry_mut(slot);
            entry.value.clear();
            entry.value.extend_from_slice(&digits);
            entry.value.resize(old_len, b' ');
            entry.cas = cas;
            if entry.time < now.saturating_sub(ACCESS_UPDATE_INTERVAL) {
                entry.time = now;
            }
            self.items.touch(slot);
            Ok((result, slot))
        } else {
            let item = self.item(slot);
            let (flags, exptime, binary) = (item.flags(), item.exptime(), item.key_binary());
            let slot = self
                .put(
                    Some(slot),
                    key,
                    NewValue::Replace(&digits),
                    Attributes {
                        flags,
                        exptime,
                        key_binary: binary,
                    },
                    now,
                )
                .map_err(|_| ArithError::OutOfMemory)?;
            Ok((result, slot))
        }
    }

    /// `incr` / `decr`: adds `delta` to (wrapping at 2^64) or subtracts it from (stopping at 0)
    /// the decimal number stored under `key` and returns the new number.
    ///
    /// Like memcached, a result no longer than the old value is written in place and padded with
    /// spaces to the old length (clients see `"99 "` after decrementing `"100"`); a longer result
    /// replaces the value. Either way the item gets a new CAS value.
    pub fn incr_decr(
        &mut self,
        key: &[u8],
        increment: bool,
        delta: u64,
        now: u32,
    ) -> Result<u64, ArithError> {
        match self.arith_slot(key, increment, delta, 0, now) {
            Ok((value, _)) => Ok(value),
            Err(ArithError::NotFound) => {
                self.count_arith_miss(increment);
                Err(ArithError::NotFound)
            }
            Err(error) => Err(error),
        }
    }

    /// Stores a new item under `key` only if there is none (meta vivify on miss); returns its slot.
    pub(crate) fn add_slot(
        &mut self,
        key: &[u8],
        value: &[u8],
        key_binary: bool,
        now: u32,
    ) -> Result<SlotId, StoreError> {
        self.put(
            None,
            key,
            NewValue::Replace(value),
            Attributes {
                flags: 0,
                exptime: 0,
                key_binary,
            },
            now,
        )
    }

    /// `flush_all [delay]`: invalidates every item stored before the flush time, now when
    /// `delay` is 0 or negative, else after `delay` (relative or absolute like an exptime).
    /// Memory is reclaimed lazily, on access, by eviction, or by [`Store::crawl`].
    pub fn flush_all(&mut self, delay: i32, now: u32) {
        self.global.cmd_flush += 1;
        let flush_time = if delay > 0 {
            absolute_exptime(delay, now)
        } else {
            now
        };
        if delay > RELATIVE_EXPTIME_MAX && flush_time <= self.started {
            // memcached maps absolute times before its start to "no flush time at all".
            self.oldest_live = None;
            return;
        }
        let oldest_live = flush_time.saturating_sub(1);
        self.oldest_live = Some(oldest_live);
        if oldest_live <= now {
            self.oldest_cas = self.next_cas();
        }
    }

    /// Examines up to `budget` slots from where the last call stopped, removing expired and
    /// flushed items; returns how many were removed. Calling it regularly (say every second with
    /// a budget of a few thousand) bounds the memory held by dead items that nobody asks for,
    /// while each call does a bounded amount of work.
    pub fn crawl(&mut self, now: u32, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget.min(self.items.capacity()) {
            if self.crawl_cursor as usize >= self.items.capacity() {
                self.crawl_cursor = 0;
            }
            let slot = self.crawl_cursor;
            self.crawl_cursor += 1;
            let Some(entry) = self.items.get(slot) else {
                continue;
            };
            let class = usize::from(entry.class);
            self.classes[class].crawler_items_checked += 1;
            if self.dead(entry, now).is_some() {
                self.classes[class].crawler_reclaimed += 1;
                self.unlink(slot);
                removed += 1;
            }
        }
        removed
    }

    /// `stats reset`: zeroes the counters (not the items, nor the open connection count).
    pub fn reset_stats(&mut self) {
        let curr_connections = self.global.curr_connections;
        self.global = GlobalStats {
            curr_connections,
            ..GlobalStats::default()
        };
        for class in self.classes.iter_mut() {
            *class = ClassStats {
                number: class.number,
                mem_requested: class.mem_requested,
                pages: class.pages,
                ..ClassStats::default()
            };
        }
    }

    /// Writes the general `stats` report lines.
    pub(crate) fn write_stats(&self, out: &mut Vec<u8>, now: u32) {
        let view = stats::ServerView {
            pid: self.config.process_id,
            uptime: now.saturating_sub(self.started),
            now,
            version: self.config.version,
            limit_maxbytes: self.config.memory_limit as u64,
            curr_items: self.items.len() as u64,
            bytes: self.bytes as u64,
            max_connections: self.config.max_connections,
        };
        stats::write_general(out, &view, &self.global, &self.classes);
    }

    /// Writes the `stats settings` report lines.
    pub(crate) fn write_settings(&self, out: &mut Vec<u8>) {
        let view = stats::SettingsView {
            maxbytes: self.config.memory_limit as u64,
            maxconns: self.config.max_connections,
            tcpport: self.config.tcp_port,
            udpport: self.config.udp_port,
            verbosity: self.verbosity,
            evictions: self.config.evictions,
            item_size_max: self.config.item_size_max as u64,
        };
        stats::write_settings(out, &view);
    }

    /// Writes the `stats items` report lines.
    pub(crate) fn write_items(&self, out: &mut Vec<u8>, now: u32) {
        // The age of each class's least recently used item: walk from the LRU tail until every
        // class with items has been seen (stats are rare; this is linear at worst).
        let mut oldest = [0u32; MAX_CLASSES];
        let mut seen = [false; MAX_CLASSES];
        let mut pending = self.classes.iter().filter(|class| class.number > 0).count();
        for (_, entry) in self.items.iter_oldest_first() {
            if pending == 0 {
                break;
            }
            let class = usize::from(entry.class);
            if !seen[class] {
                seen[class] = true;
                oldest[class] = now.saturating_sub(entry.time);
                pending -= 1;
            }
        }
        stats::write_items(out, &self.classes, &oldest);
    }

    /// Writes the `stats slabs` report lines.
    pub(crate) fn write_slabs(&self, out: &mut Vec<u8>) {
        stats::write_slabs(out, &self.classes);
    }
}

/// Why a found item is no longer live.
#[derive(Debug, Clone, Copy)]
enum Death {
    Expired,
    Flushed,
}

/// How a supplied CAS value compares with an item's.
#[derive(Debug, Clone, Copy)]
enum CasCheck {
    None,
    Match,
    Stale,
    Mismatch,
}

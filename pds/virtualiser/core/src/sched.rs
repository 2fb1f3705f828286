//! What an event of the virtualiser visits, kept O(tenants with work + log N) whatever the
//! number of live tenants (`docs/network.md`, "Per event cost"):
//!
//! - [`WorkSet`]: the tenants one event visits (they notified, a frame went to them, they are
//!   fresh, or transmit buffers came back while they waited for one), each once, in the order
//!   they were added. Also used for the tenants waiting for a NIC transmit buffer.
//! - [`Deadlines`]: a min-heap of tenants' timer and idle deadlines with lazy deletion: each
//!   tenant has at most one *current* entry (its earliest scheduled deadline); a deadline that
//!   moved later leaves the earlier entry in place, which pops, is re-read by the caller and
//!   re-scheduled.
//! - [`Refusals`]: flows the manager recently refused an instance for, so their packets are
//!   dropped for a short back-off instead of asking the manager again for each.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

use crate::flow::{Connection, TenantId};

/// A set of tenant ids with insertion order and O(1) membership (a bit per possible id).
#[derive(Default, Clone, Debug)]
pub struct WorkSet {
    order: Vec<TenantId>,
    marks: Vec<u64>,
}

impl WorkSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `t`; false if it was in the set already.
    pub fn add(&mut self, t: TenantId) -> bool {
        let (word, bit) = (t as usize / 64, 1u64 << (t % 64));
        if self.marks.len() <= word {
            self.marks.resize(word + 1, 0);
        }
        if self.marks[word] & bit != 0 {
            return false;
        }
        self.marks[word] |= bit;
        self.order.push(t);
        true
    }

    pub fn contains(&self, t: TenantId) -> bool {
        self.marks.get(t as usize / 64).is_some_and(|w| w & (1u64 << (t % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The `k`th tenant added (`k < len()`); tenants added while a caller walks the set by
    /// index are walked too.
    pub fn get(&self, k: usize) -> TenantId {
        self.order[k]
    }

    pub fn as_slice(&self) -> &[TenantId] {
        &self.order
    }

    /// Empties the set (O(its size)).
    pub fn clear(&mut self) {
        for t in self.order.drain(..) {
            if let Some(w) = self.marks.get_mut(t as usize / 64) {
                *w &= !(1u64 << (t % 64));
            }
        }
    }

    /// Moves every member into `into` (which skips those it holds already) and empties `self`.
    pub fn move_into(&mut self, into: &mut WorkSet) {
        for &t in &self.order {
            into.add(t);
        }
        self.clear();
    }
}

/// Tenants' deadlines (counter ticks), earliest first, with lazy deletion.
#[derive(Default, Clone, Debug)]
pub struct Deadlines {
    heap: BinaryHeap<Reverse<(u64, TenantId)>>,
    /// Per tenant id: its earliest entry in the heap (`u64::MAX`: none).
    scheduled: Vec<u64>,
    /// Tenants with an entry (`scheduled != u64::MAX`).
    tracked: usize,
}

impl Deadlines {
    pub fn new() -> Self {
        Self::default()
    }

    /// The earliest deadline scheduled for `t` (`u64::MAX`: none).
    pub fn scheduled(&self, t: TenantId) -> u64 {
        self.scheduled.get(t as usize).copied().unwrap_or(u64::MAX)
    }

    fn set(&mut self, t: TenantId, at: u64) {
        let i = t as usize;
        if self.scheduled.len() <= i {
            self.scheduled.resize(i + 1, u64::MAX);
        }
        match (self.scheduled[i] == u64::MAX, at == u64::MAX) {
            (true, false) => self.tracked += 1,
            (false, true) => self.tracked -= 1,
            _ => {}
        }
        self.scheduled[i] = at;
    }

    /// Makes sure `t` is woken at `at` at the latest: pushes an entry only if `at` is earlier
    /// than what `t` has scheduled (`u64::MAX`: nothing to schedule). True if it pushed.
    pub fn schedule(&mut self, t: TenantId, at: u64) -> bool {
        if at >= self.scheduled(t) {
            return false;
        }
        self.set(t, at);
        self.heap.push(Reverse((at, t)));
        // Stale entries (deadlines that moved earlier again and again) are bounded: rebuild
        // when they outnumber the current ones, which keeps the heap O(tenants), amortised O(1).
        if self.heap.len() > 2 * self.tracked + 64 {
            let scheduled = &self.scheduled;
            self.heap.retain(|Reverse((d, t))| scheduled.get(*t as usize) == Some(d));
        }
        true
    }

    /// The next entry due at `now` (deadline `<= now`), removed. The caller re-reads that
    /// tenant's deadlines (the entry may be stale: the tenant's deadline moved later, or it
    /// is gone), serves what is due and schedules what is ahead. If the entry was the
    /// tenant's current one, the tenant has nothing scheduled any more.
    pub fn pop_due(&mut self, now: u64) -> Option<TenantId> {
        let Reverse((at, t)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        if self.scheduled(t) == at {
            self.set(t, u64::MAX);
        }
        Some(t)
    }

    /// The earliest entry (what the timer is armed for; `u64::MAX`: none). It may be a stale
    /// one, which only costs an early wake-up.
    pub fn next(&self) -> u64 {
        self.heap.peek().map_or(u64::MAX, |Reverse((at, _))| *at)
    }

    /// `t` is gone: nothing is current for it (its entries are stale and pop unnoticed, or
    /// wake whoever gets its id next, which re-reads its own deadlines).
    pub fn forget(&mut self, t: TenantId) {
        if (t as usize) < self.scheduled.len() {
            self.set(t, u64::MAX);
        }
    }

    /// Entries in the heap (current and stale).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Flows remembered in [`Refusals`] (direct-mapped by a hash of the key: a collision forgets
/// the older refusal, which only means asking the manager again).
pub const REFUSAL_SLOTS: usize = 64;

/// Recent ASSIGN refusals, per (service, client flow): while one is remembered the flow's
/// packets are dropped without asking the manager.
#[derive(Clone, Debug)]
pub struct Refusals {
    slots: [Option<(u8, Connection, u64)>; REFUSAL_SLOTS],
    backoff_ticks: u64,
}

impl Refusals {
    /// Remembers each refusal for `backoff_ticks` counter ticks.
    pub fn new(backoff_ticks: u64) -> Self {
        Refusals { slots: [None; REFUSAL_SLOTS], backoff_ticks }
    }

    fn slot(service: u8, c: &Connection) -> usize {
        // FNV-1a over the key's bytes.
        let mut h: u32 = 0x811c_9dc5;
        let bytes = [
            service,
            c.protocol as u8,
            c.remote_ip[0],
            c.remote_ip[1],
            c.remote_ip[2],
            c.remote_ip[3],
            (c.remote_port >> 8) as u8,
            c.remote_port as u8,
            (c.local_port >> 8) as u8,
            c.local_port as u8,
        ];
        for b in bytes {
            h = (h ^ b as u32).wrapping_mul(0x0100_0193);
        }
        h as usize % REFUSAL_SLOTS
    }

    /// The manager refused an instance of `service` for flow `c` at `now`.
    pub fn refused(&mut self, service: u8, c: &Connection, now: u64) {
        self.slots[Self::slot(service, c)] = Some((service, *c, now.saturating_add(self.backoff_ticks)));
    }

    /// Whether flow `c` of `service` is backing off at `now` (its packets are dropped without
    /// asking the manager). An expired refusal is forgotten.
    pub fn backing_off(&mut self, service: u8, c: &Connection, now: u64) -> bool {
        let slot = &mut self.slots[Self::slot(service, c)];
        match *slot {
            Some((s, conn, until)) if s == service && conn == *c => {
                if now < until {
                    true
                } else {
                    *slot = None;
                    false
                }
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Protocol;
    use alloc::vec;

    #[test]
    fn work_set_dedups_and_keeps_order() {
        let mut w = WorkSet::new();
        assert!(w.add(7));
        assert!(w.add(40_000));
        assert!(!w.add(7));
        assert!(w.add(0));
        assert_eq!(w.as_slice(), &[7, 40_000, 0]);
        assert!(w.contains(40_000) && !w.contains(8));
        // Walking by index sees members added during the walk.
        let mut k = 0;
        while k < w.len() {
            if w.get(k) == 0 {
                w.add(1);
            }
            k += 1;
        }
        assert_eq!(k, 4);
        w.clear();
        assert!(w.is_empty() && !w.contains(7) && !w.contains(40_000));
        assert!(w.add(7));
    }

    #[test]
    fn work_set_move_into_merges() {
        let mut blocked = WorkSet::new();
        let mut work = WorkSet::new();
        blocked.add(3);
        blocked.add(5);
        work.add(5);
        blocked.move_into(&mut work);
        assert_eq!(work.as_slice(), &[5, 3]);
        assert!(blocked.is_empty() && !blocked.contains(3));
    }

    #[test]
    fn deadlines_pop_in_order() {
        let mut d = Deadlines::new();
        assert_eq!(d.next(), u64::MAX);
        assert!(d.schedule(1, 300));
        assert!(d.schedule(2, 100));
        assert!(d.schedule(3, 200));
        assert!(!d.schedule(4, u64::MAX));
        assert_eq!(d.next(), 100);
        assert_eq!(d.pop_due(99), None);
        assert_eq!(d.pop_due(250), Some(2));
        assert_eq!(d.pop_due(250), Some(3));
        assert_eq!(d.pop_due(250), None);
        assert_eq!(d.scheduled(2), u64::MAX);
        assert_eq!(d.scheduled(1), 300);
        assert_eq!(d.next(), 300);
    }

    #[test]
    fn deadlines_push_only_when_earlier() {
        let mut d = Deadlines::new();
        assert!(d.schedule(1, 500));
        assert!(!d.schedule(1, 500));
        assert!(!d.schedule(1, 900));
        assert_eq!(d.len(), 1);
        assert!(d.schedule(1, 200));
        assert_eq!(d.len(), 2);
        assert_eq!(d.scheduled(1), 200);
        // The current entry pops; the stale one (500) pops later and the caller re-reads.
        assert_eq!(d.pop_due(200), Some(1));
        assert_eq!(d.scheduled(1), u64::MAX);
        assert!(d.schedule(1, 800));
        assert_eq!(d.pop_due(600), Some(1));
        assert_eq!(d.scheduled(1), 800, "a stale entry leaves the current one in place");
        assert_eq!(d.pop_due(799), None);
        assert_eq!(d.pop_due(800), Some(1));
        assert!(d.is_empty());
    }

    #[test]
    fn deadline_that_moved_later_is_rescheduled_by_the_caller() {
        // An idle deadline: scheduled at 100, activity moves it to 250.
        let mut d = Deadlines::new();
        d.schedule(9, 100);
        let mut current = 250;
        let mut woken = vec![];
        for now in [100, 250] {
            while let Some(t) = d.pop_due(now) {
                if current <= now {
                    woken.push((t, now));
                    current = u64::MAX;
                } else {
                    d.schedule(t, current);
                }
            }
        }
        assert_eq!(woken, [(9, 250)]);
        assert!(d.is_empty());
    }

    #[test]
    fn forgotten_tenants_entries_are_stale() {
        let mut d = Deadlines::new();
        d.schedule(4, 10);
        d.forget(4);
        d.forget(60_000);
        assert_eq!(d.scheduled(4), u64::MAX);
        assert!(d.schedule(4, 20), "a new tenant under the id schedules afresh");
        assert_eq!(d.pop_due(30), Some(4));
        assert_eq!(d.pop_due(30), Some(4));
        assert_eq!(d.pop_due(30), None);
    }

    #[test]
    fn stale_entries_stay_bounded() {
        // A tenant publishing an ever earlier deadline that never comes due.
        let mut d = Deadlines::new();
        d.schedule(0, 5_000_000);
        for k in 0..100_000u64 {
            assert!(d.schedule(1, u64::MAX - 1 - k));
        }
        assert!(d.len() <= 2 * 2 + 64 + 1, "heap holds {}", d.len());
        assert_eq!(d.next(), 5_000_000);
        assert_eq!(d.pop_due(5_000_000), Some(0));
        assert_eq!(d.scheduled(1), u64::MAX - 100_000);
    }

    #[test]
    fn many_tenants_come_out_sorted() {
        let mut d = Deadlines::new();
        let mut x: u64 = 12345;
        let mut expected = vec![];
        for t in 0..1000u16 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = x >> 40;
            d.schedule(t, at);
            expected.push(at);
        }
        expected.sort_unstable();
        let mut got = vec![];
        while d.next() != u64::MAX {
            let at = d.next();
            let t = d.pop_due(at).unwrap();
            assert_eq!(d.scheduled(t), u64::MAX);
            got.push(at);
        }
        assert_eq!(got, expected);
    }

    fn flow(port: u16) -> Connection {
        Connection { protocol: Protocol::Tcp, remote_ip: [10, 0, 2, 2], remote_port: port, local_port: 11211 }
    }

    #[test]
    fn refusal_backs_off_that_flow_for_a_while() {
        let mut r = Refusals::new(625_000);
        let c = flow(40000);
        assert!(!r.backing_off(0, &c, 1000));
        r.refused(0, &c, 1000);
        assert!(r.backing_off(0, &c, 1000));
        assert!(r.backing_off(0, &c, 625_999));
        assert!(!r.backing_off(1, &c, 2000), "another service asks");
        assert!(!r.backing_off(0, &flow(40001), 2000), "another flow asks");
        let other_port = Connection { local_port: 11212, ..c };
        assert!(!r.backing_off(0, &other_port, 2000));
        assert!(!r.backing_off(0, &c, 626_000), "asks again after the back-off");
        assert!(!r.backing_off(0, &c, 626_001));
        r.refused(0, &c, 700_000);
        assert!(r.backing_off(0, &c, 700_001));
    }

    #[test]
    fn refusals_are_bounded_and_collisions_only_forget() {
        let mut r = Refusals::new(100);
        for p in 0..1000 {
            r.refused(0, &flow(p), 0);
        }
        let remembered = (0..1000).filter(|p| r.backing_off(0, &flow(*p), 50)).count();
        assert!(remembered <= REFUSAL_SLOTS && remembered > 0);
        // The most recent refusal is always remembered.
        r.refused(0, &flow(7), 60);
        assert!(r.backing_off(0, &flow(7), 61));
        let zero = Refusals::new(0);
        let mut zero = zero;
        zero.refused(0, &flow(1), 5);
        assert!(!zero.backing_off(0, &flow(1), 5), "no back-off configured");
    }
}

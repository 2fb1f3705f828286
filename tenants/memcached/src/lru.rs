//! A slab of values threaded on an intrusive doubly-linked recency list, so that touching,
//! removing and evicting the least recently used value are all O(1).
//!
//! Values live in one `Vec` and are named by their slot index ([`SlotId`]); each slot carries the
//! indices of its neighbours in the recency list, so there are no per-node allocations and no
//! pointers. Free slots are chained through the same `next` field and reused first, which keeps
//! the slab as small as the peak number of live values.

use alloc::vec::Vec;

/// The index of a slot in an [`LruSlab`].
///
/// A `SlotId` stays valid until its value is removed; after that the slot may be reused for a
/// different value, so holders must not keep ids across operations that can remove values.
pub type SlotId = u32;

/// The "no slot" marker for list ends.
const NONE: SlotId = SlotId::MAX;

/// One slot: a value (or nothing, when free) and its recency-list neighbours.
#[derive(Debug)]
struct Slot<T> {
    value: Option<T>,
    /// Towards the most recently used end (the head).
    prev: SlotId,
    /// Towards the least recently used end (the tail); for free slots, the next free slot.
    next: SlotId,
}

/// Values in a slab, ordered from most recently used (head) to least recently used (tail).
#[derive(Debug)]
pub struct LruSlab<T> {
    slots: Vec<Slot<T>>,
    head: SlotId,
    tail: SlotId,
    free: SlotId,
    len: usize,
}

impl<T> Default for LruSlab<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LruSlab<T> {
    /// An empty slab.
    pub const fn new() -> Self {
        Self {
            slots: Vec::new(),
            head: NONE,
            tail: NONE,
            free: NONE,
            len: 0,
        }
    }

    /// The number of values held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of slots, free or not: ids are always below this.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Stores `value` as the most recently used one and returns its id.
    ///
    /// # Panics
    /// If more than `u32::MAX - 1` values would be held at once (far beyond any memory limit).
    pub fn push_front(&mut self, value: T) -> SlotId {
        let id = if self.free != NONE {
            let id = self.free;
            let slot = &mut self.slots[id as usize];
            self.free = slot.next;
            slot.value = Some(value);
            id
        } else {
            let id = SlotId::try_from(self.slots.len())
                .ok()
                .filter(|&id| id != NONE)
                .expect("LruSlab holds at most u32::MAX - 1 values");
            self.slots.push(Slot {
                value: Some(value),
                prev: NONE,
                next: NONE,
            });
            id
        };
        self.link_front(id);
        self.len += 1;
        id
    }

    /// Removes the value in slot `id` and returns it (`None` if the slot is free or out of range).
    pub fn remove(&mut self, id: SlotId) -> Option<T> {
        let value = self.slots.get_mut(id as usize)?.value.take()?;
        self.unlink(id);
        let slot = &mut self.slots[id as usize];
        slot.prev = NONE;
        slot.next = self.free;
        self.free = id;
        self.len -= 1;
        Some(value)
    }

    /// Marks the value in slot `id` as the most recently used. Does nothing for a free slot.
    pub fn touch(&mut self, id: SlotId) {
        if self.get(id).is_none() || self.head == id {
            return;
        }
        self.unlink(id);
        self.link_front(id);
    }

    /// The value in slot `id`, if the slot holds one.
    pub fn get(&self, id: SlotId) -> Option<&T> {
        self.slots.get(id as usize)?.value.as_ref()
    }

    /// The value in slot `id`, mutably, if the slot holds one.
    pub fn get_mut(&mut self, id: SlotId) -> Option<&mut T> {
        self.slots.get_mut(id as usize)?.value.as_mut()
    }

    /// The least recently used value's id.
    pub fn tail(&self) -> Option<SlotId> {
        (self.tail != NONE).then_some(self.tail)
    }

    /// The most recently used value's id.
    pub fn head(&self) -> Option<SlotId> {
        (self.head != NONE).then_some(self.head)
    }

    /// The id of the next more recently used value after `id`.
    pub fn newer(&self, id: SlotId) -> Option<SlotId> {
        let slot = self.slots.get(id as usize)?;
        (slot.value.is_some() && slot.prev != NONE).then_some(slot.prev)
    }

    /// The id of the next less recently used value after `id`.
    pub fn older(&self, id: SlotId) -> Option<SlotId> {
        let slot = self.slots.get(id as usize)?;
        (slot.value.is_some() && slot.next != NONE).then_some(slot.next)
    }

    /// Iterates over `(id, value)` from least to most recently used.
    pub fn iter_oldest_first(&self) -> impl Iterator<Item = (SlotId, &T)> + '_ {
        let mut cursor = self.tail();
        core::iter::from_fn(move || {
            let id = cursor?;
            cursor = self.newer(id);
            Some((id, self.get(id)?))
        })
    }

    /// Removes every value, keeping the allocation.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.head = NONE;
        self.tail = NONE;
        self.free = NONE;
        self.len = 0;
    }

    /// Detaches slot `id` from the recency list (it must be on it).
    fn unlink(&mut self, id: SlotId) {
        let (prev, next) = {
            let slot = &self.slots[id as usize];
            (slot.prev, slot.next)
        };
        if prev == NONE {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NONE {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }

    /// Puts slot `id` (not on the list) at the head of the recency list.
    fn link_front(&mut self, id: SlotId) {
        let old_head = self.head;
        {
            let slot = &mut self.slots[id as usize];
            slot.prev = NONE;
            slot.next = old_head;
        }
        if old_head == NONE {
            self.tail = id;
        } else {
            self.slots[old_head as usize].prev = id;
        }
        self.head = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn order(lru: &LruSlab<u32>) -> Vec<u32> {
        lru.iter_oldest_first().map(|(_, v)| *v).collect()
    }

    #[test]
    fn push_touch_remove_keep_recency_order() {
        let mut lru = LruSlab::new();
        let a = lru.push_front(1);
        let b = lru.push_front(2);
        let c = lru.push_front(3);
        assert_eq!(order(&lru), vec![1, 2, 3]);
        lru.touch(a);
        assert_eq!(order(&lru), vec![2, 3, 1]);
        assert_eq!(lru.tail(), Some(b));
        assert_eq!(lru.head(), Some(a));
        assert_eq!(lru.remove(c), Some(3));
        assert_eq!(order(&lru), vec![2, 1]);
        assert_eq!(lru.remove(c), None, "a free slot holds nothing");
        assert_eq!(lru.len(), 2);
        lru.touch(c); // no effect on a free slot
        assert_eq!(order(&lru), vec![2, 1]);
    }

    #[test]
    fn free_slots_are_reused() {
        let mut lru = LruSlab::new();
        let ids: Vec<_> = (0..4).map(|v| lru.push_front(v)).collect();
        lru.remove(ids[1]);
        lru.remove(ids[2]);
        let x = lru.push_front(10);
        let y = lru.push_front(11);
        assert!(x == ids[2] || x == ids[1]);
        assert!(y == ids[2] || y == ids[1]);
        assert_eq!(lru.capacity(), 4);
        assert_eq!(order(&lru), vec![0, 3, 10, 11]);
    }

    #[test]
    fn removing_every_value_empties_the_list() {
        let mut lru = LruSlab::new();
        let ids: Vec<_> = (0..5).map(|v| lru.push_front(v)).collect();
        for id in ids.iter().rev() {
            lru.remove(*id);
        }
        assert!(lru.is_empty());
        assert_eq!(lru.tail(), None);
        assert_eq!(lru.head(), None);
        let id = lru.push_front(7);
        assert_eq!(lru.tail(), Some(id));
        assert_eq!(order(&lru), vec![7]);
    }

    #[test]
    fn older_and_newer_walk_the_list() {
        let mut lru = LruSlab::new();
        let a = lru.push_front(1);
        let b = lru.push_front(2);
        assert_eq!(lru.older(b), Some(a));
        assert_eq!(lru.newer(a), Some(b));
        assert_eq!(lru.older(a), None);
        assert_eq!(lru.newer(b), None);
    }
}

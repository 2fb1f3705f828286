//! Ready queues: one FIFO per priority (0..=255, higher runs first) and a bitmap of the
//! non-empty ones, so insert, remove and "highest ready" are O(1) whatever the number of PDs.
//! The links live in arrays indexed by thread number, sized by the caller from boot memory.

/// "No thread" in the link arrays.
pub const NIL: u32 = u32::MAX;

/// Links of one thread in its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    next: u32,
    prev: u32,
    /// The priority queue it is on, if queued.
    queued_at: Option<u8>,
}

impl Link {
    /// An unqueued thread.
    pub const UNQUEUED: Link = Link { next: NIL, prev: NIL, queued_at: None };
}

/// The ready queues.
#[derive(Debug)]
pub struct RunQueues<'a> {
    /// Bit p of word p / 64: queue p is non-empty.
    bitmap: [u64; 4],
    /// Bit w: word w of `bitmap` is non-zero (so "anything above" is two tests, not a scan).
    words: u64,
    head: [u32; 256],
    tail: [u32; 256],
    links: &'a mut [Link],
}

impl<'a> RunQueues<'a> {
    /// Empty queues for threads `0..links.len()`.
    pub fn new(links: &'a mut [Link]) -> Self {
        links.fill(Link::UNQUEUED);
        RunQueues { bitmap: [0; 4], words: 0, head: [NIL; 256], tail: [NIL; 256], links }
    }

    /// True if `t` is on a queue.
    pub fn is_queued(&self, t: u32) -> bool {
        self.links[t as usize].queued_at.is_some()
    }

    /// Appends `t` at the tail of queue `prio` (removing it from any queue it was on).
    pub fn push_back(&mut self, t: u32, prio: u8) {
        self.remove(t);
        let p = prio as usize;
        let old_tail = self.tail[p];
        self.links[t as usize] = Link { next: NIL, prev: old_tail, queued_at: Some(prio) };
        if old_tail == NIL {
            self.head[p] = t;
        } else {
            self.links[old_tail as usize].next = t;
        }
        self.tail[p] = t;
        self.mark(p);
    }

    /// Puts `t` at the head of queue `prio` (it runs next among its priority).
    pub fn push_front(&mut self, t: u32, prio: u8) {
        self.remove(t);
        let p = prio as usize;
        let old_head = self.head[p];
        self.links[t as usize] = Link { next: old_head, prev: NIL, queued_at: Some(prio) };
        if old_head == NIL {
            self.tail[p] = t;
        } else {
            self.links[old_head as usize].prev = t;
        }
        self.head[p] = t;
        self.mark(p);
    }

    fn mark(&mut self, p: usize) {
        self.bitmap[p / 64] |= 1 << (p % 64);
        self.words |= 1 << (p / 64);
    }

    /// Takes `t` off its queue, if it is on one.
    pub fn remove(&mut self, t: u32) {
        let Link { next, prev, queued_at } = self.links[t as usize];
        let Some(prio) = queued_at else { return };
        let p = prio as usize;
        if prev == NIL {
            self.head[p] = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NIL {
            self.tail[p] = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        if self.head[p] == NIL {
            self.bitmap[p / 64] &= !(1 << (p % 64));
            if self.bitmap[p / 64] == 0 {
                self.words &= !(1 << (p / 64));
            }
        }
        self.links[t as usize] = Link::UNQUEUED;
    }

    /// Takes the thread at the head of the highest non-empty queue off it.
    #[inline]
    pub fn pop_highest(&mut self) -> Option<u32> {
        let p = self.highest_priority()? as usize;
        let t = self.head[p];
        let next = self.links[t as usize].next;
        self.head[p] = next;
        if next == NIL {
            self.tail[p] = NIL;
            self.bitmap[p / 64] &= !(1 << (p % 64));
            if self.bitmap[p / 64] == 0 {
                self.words &= !(1 << (p / 64));
            }
        } else {
            self.links[next as usize].prev = NIL;
        }
        self.links[t as usize] = Link::UNQUEUED;
        Some(t)
    }

    /// The highest non-empty priority.
    pub fn highest_priority(&self) -> Option<u8> {
        if self.words == 0 {
            return None;
        }
        let w = 63 - self.words.leading_zeros() as usize;
        Some((w * 64 + 63 - self.bitmap[w & 3].leading_zeros() as usize) as u8)
    }

    /// The thread at the head of the highest non-empty queue.
    pub fn highest(&self) -> Option<u32> {
        self.highest_priority().map(|p| self.head[p as usize])
    }

    /// True if some queue of priority `prio` or higher is non-empty.
    #[inline]
    pub fn any_at_or_above(&self, prio: u8) -> bool {
        let w = prio as usize / 64;
        (self.bitmap[w] >> (prio % 64)) != 0 || (self.words >> w >> 1) != 0
    }

    /// True if queue `prio` holds another thread besides `t`.
    pub fn has_other_at(&self, prio: u8, t: u32) -> bool {
        let h = self.head[prio as usize];
        h != NIL && (h != t || self.links[h as usize].next != NIL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn drain(q: &mut RunQueues) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(t) = q.highest() {
            q.remove(t);
            out.push(t);
        }
        out
    }

    #[test]
    fn highest_priority_first_fifo_within() {
        let mut links = vec![Link::UNQUEUED; 10];
        let mut q = RunQueues::new(&mut links);
        q.push_back(1, 10);
        q.push_back(2, 200);
        q.push_back(3, 10);
        q.push_back(4, 255);
        q.push_back(5, 0);
        q.push_back(6, 200);
        assert_eq!(q.highest_priority(), Some(255));
        assert_eq!(drain(&mut q), vec![4, 2, 6, 1, 3, 5]);
        assert_eq!(q.highest(), None);
    }

    #[test]
    fn requeue_moves_and_round_robins() {
        let mut links = vec![Link::UNQUEUED; 4];
        let mut q = RunQueues::new(&mut links);
        q.push_back(0, 7);
        q.push_back(1, 7);
        q.push_back(2, 7);
        assert_eq!(q.highest(), Some(0));
        q.push_back(0, 7); // round robin: to the tail
        assert_eq!(q.highest(), Some(1));
        q.push_front(2, 7);
        assert_eq!(q.highest(), Some(2));
        q.push_back(1, 9); // moving to another priority
        assert_eq!(q.highest(), Some(1));
        assert!(q.has_other_at(7, 2));
        q.remove(0);
        assert!(!q.has_other_at(7, 2));
        assert_eq!(drain(&mut q), vec![1, 2]);
        q.remove(3); // not queued: no effect
        assert!(!q.is_queued(3));
    }

    #[test]
    fn pop_highest_takes_heads_in_order() {
        let mut links = vec![Link::UNQUEUED; 6];
        let mut q = RunQueues::new(&mut links);
        for (t, p) in [(0, 5), (1, 70), (2, 5), (3, 200), (4, 70)] {
            q.push_back(t, p);
        }
        let mut order = Vec::new();
        while let Some(t) = q.pop_highest() {
            assert!(!q.is_queued(t));
            order.push(t);
            // The queues stay consistent with a mix of pops and other operations.
            if t == 1 {
                q.push_front(5, 70);
            }
        }
        assert_eq!(order, vec![3, 1, 5, 4, 0, 2]);
        assert_eq!(q.highest_priority(), None);
        assert!(!q.any_at_or_above(0));
    }

    #[test]
    fn any_at_or_above_looks_at_higher_words_too() {
        let mut links = vec![Link::UNQUEUED; 4];
        let mut q = RunQueues::new(&mut links);
        assert!(!q.any_at_or_above(0));
        q.push_back(0, 10);
        assert!(q.any_at_or_above(0) && q.any_at_or_above(10));
        assert!(!q.any_at_or_above(11) && !q.any_at_or_above(255));
        q.push_back(1, 200);
        assert!(q.any_at_or_above(11) && q.any_at_or_above(63) && q.any_at_or_above(200));
        assert!(!q.any_at_or_above(201));
        q.push_back(2, 255);
        assert!(q.any_at_or_above(255));
        q.remove(1);
        q.remove(2);
        assert!(!q.any_at_or_above(64));
    }

    #[test]
    fn bitmap_covers_all_priorities() {
        let mut links = vec![Link::UNQUEUED; 256];
        let mut q = RunQueues::new(&mut links);
        for p in 0..=255u8 {
            q.push_back(p as u32, p);
        }
        for p in (0..=255u8).rev() {
            assert_eq!(q.highest_priority(), Some(p));
            q.remove(p as u32);
        }
        assert_eq!(q.highest_priority(), None);
    }
}

//! The release queue: scheduling contexts whose budget is spent, ordered by the time their
//! budget comes back. A binary min-heap with a position index, so insert, remove and "earliest"
//! are O(log n) / O(1) over thousands of contexts, in arrays sized from boot memory.

use crate::runqueue::NIL;

/// The queue. Entries are scheduling-context numbers `0..n`.
#[derive(Debug)]
pub struct ReleaseQueue<'a> {
    heap: &'a mut [u32],
    /// Position of each entry in `heap`, or NIL.
    pos: &'a mut [u32],
    /// Release time of each entry while queued.
    time: &'a mut [u64],
    len: usize,
}

impl<'a> ReleaseQueue<'a> {
    /// An empty queue for entries `0..n`; the three slices must have the same length n.
    pub fn new(heap: &'a mut [u32], pos: &'a mut [u32], time: &'a mut [u64]) -> Self {
        assert!(heap.len() == pos.len() && pos.len() == time.len());
        pos.fill(NIL);
        ReleaseQueue { heap, pos, time, len: 0 }
    }

    /// Number of queued entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if `e` is queued.
    pub fn contains(&self, e: u32) -> bool {
        self.pos[e as usize] != NIL
    }

    /// The earliest entry and its time.
    pub fn earliest(&self) -> Option<(u32, u64)> {
        (self.len > 0).then(|| (self.heap[0], self.time[self.heap[0] as usize]))
    }

    /// Queues `e` for `time` (re-queues it if it was queued).
    pub fn insert(&mut self, e: u32, time: u64) {
        self.remove(e);
        let i = self.len;
        self.len += 1;
        self.heap[i] = e;
        self.pos[e as usize] = i as u32;
        self.time[e as usize] = time;
        self.sift_up(i);
    }

    /// Takes `e` off the queue if it is on it.
    pub fn remove(&mut self, e: u32) {
        let i = self.pos[e as usize];
        if i == NIL {
            return;
        }
        let i = i as usize;
        self.len -= 1;
        self.pos[e as usize] = NIL;
        if i == self.len {
            return;
        }
        let last = self.heap[self.len];
        self.heap[i] = last;
        self.pos[last as usize] = i as u32;
        self.sift_down(i);
        self.sift_up(self.pos[last as usize] as usize);
    }

    /// Removes and returns the earliest entry if its time is at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<u32> {
        let (e, t) = self.earliest()?;
        if t > now {
            return None;
        }
        self.remove(e);
        Some(e)
    }

    fn key(&self, i: usize) -> u64 {
        self.time[self.heap[i] as usize]
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a] as usize] = a as u32;
        self.pos[self.heap[b] as usize] = b as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.key(parent) <= self.key(i) {
                break;
            }
            self.swap(parent, i);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < self.len && self.key(l) < self.key(smallest) {
                smallest = l;
            }
            if r < self.len && self.key(r) < self.key(smallest) {
                smallest = r;
            }
            if smallest == i {
                break;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn pops_in_time_order() {
        let n = 64;
        let (mut h, mut p, mut t) = (vec![0; n], vec![0; n], vec![0; n]);
        let mut q = ReleaseQueue::new(&mut h, &mut p, &mut t);
        // A scrambled order of times.
        for e in 0..n as u32 {
            q.insert(e, ((e as u64 * 37) % 64) * 10);
        }
        q.remove(5);
        q.insert(6, 1); // re-queue with an earlier time
        let mut out: Vec<(u32, u64)> = Vec::new();
        while let Some((e, time)) = q.earliest() {
            assert_eq!(q.pop_due(u64::MAX), Some(e));
            out.push((e, time));
        }
        assert_eq!(out.len(), n - 1);
        assert!(out.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(out.iter().all(|&(e, _)| e != 5));
        assert_eq!(out[1], (6, 1));
    }

    #[test]
    fn pop_due_respects_now() {
        let (mut h, mut p, mut t) = (vec![0; 3], vec![0; 3], vec![0; 3]);
        let mut q = ReleaseQueue::new(&mut h, &mut p, &mut t);
        q.insert(0, 100);
        q.insert(1, 50);
        assert_eq!(q.pop_due(49), None);
        assert_eq!(q.pop_due(50), Some(1));
        assert_eq!(q.pop_due(99), None);
        assert!(q.contains(0));
        assert_eq!(q.pop_due(100), Some(0));
        assert!(q.is_empty());
    }
}

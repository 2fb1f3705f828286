//! Address-space ids: each PD address space gets one so switching never flushes the TLB. When
//! the ids run out, a new generation starts: the whole TLB is flushed once and address spaces
//! take new ids as they next run (DESIGN-NOTES 4: never one flush per fork).

/// A PD's id and the generation it was handed out in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Asid {
    pub id: u16,
    pub generation: u32,
}

/// Hands out ASIDs. Id 0 is kept for "no address space".
#[derive(Debug)]
pub struct AsidAllocator {
    max: u32,
    next: u32,
    generation: u32,
}

impl AsidAllocator {
    /// An allocator for `bits`-bit ASIDs (8 or 16).
    pub fn new(bits: u32) -> Self {
        AsidAllocator { max: (1u32 << bits) - 1, next: 1, generation: 1 }
    }

    /// True if `asid` is still valid (from the current generation).
    pub fn is_current(&self, asid: Asid) -> bool {
        asid.generation == self.generation && asid.id != 0
    }

    /// A fresh id. The flag is true when a new generation began: the caller must flush all user
    /// TLB entries before using it, and every older id is stale.
    pub fn alloc(&mut self) -> (Asid, bool) {
        let mut rolled = false;
        if self.next > self.max {
            self.generation += 1;
            self.next = 1;
            rolled = true;
        }
        let a = Asid { id: self.next as u16, generation: self.generation };
        self.next += 1;
        (a, rolled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_until_rollover() {
        let mut a = AsidAllocator::new(8);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..255 {
            let (id, rolled) = a.alloc();
            assert!(!rolled);
            assert!(id.id != 0 && seen.insert(id.id));
        }
        let (first_old, _) = (Asid { id: 1, generation: 1 }, ());
        let (id, rolled) = a.alloc();
        assert!(rolled);
        assert_eq!(id, Asid { id: 1, generation: 2 });
        assert!(!a.is_current(first_old));
        assert!(a.is_current(id));
        assert_eq!(AsidAllocator::new(16).max, 65535);
    }
}

//! The physical frame allocator: a bitmap over the free RAM the boot description leaves to the
//! kernel (from `reserved_end_paddr` to the end of RAM). The bitmap itself is carved from that
//! memory by the caller, so its size follows the machine, not a constant. Memory regions the
//! description fixes in that RAM (`REGION_FIXED`, e.g. a DMA region at a device's address) are
//! carved out with [`FrameAllocator::reserve`] before any allocation, and the bitmap is placed
//! clear of them with [`last_fit`].

/// 4 KiB frames.
pub const FRAME_SIZE: u64 = 4096;

/// Allocates and frees 4 KiB frames of one physical range.
#[derive(Debug)]
pub struct FrameAllocator<'a> {
    base: u64,
    frames: usize,
    /// Bit set = frame in use.
    used: &'a mut [u64],
    free: usize,
    /// Where the next search starts (a word index).
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// Words of bitmap needed for `frames` frames.
    pub const fn bitmap_words(frames: usize) -> usize {
        frames.div_ceil(64)
    }

    /// An allocator for `[base, base + frames * FRAME_SIZE)`, all free. `bitmap` must have at
    /// least [`Self::bitmap_words`] words; `base` must be frame aligned.
    pub fn new(base: u64, frames: usize, bitmap: &'a mut [u64]) -> Self {
        bitmap.fill(0);
        Self::new_zeroed(base, frames, bitmap)
    }

    /// As [`Self::new`], for a bitmap the caller has already zeroed (the kernel clears it with
    /// cache-line zeroing, faster than a fill here; debug builds check it).
    pub fn new_zeroed(base: u64, frames: usize, bitmap: &'a mut [u64]) -> Self {
        assert!(base % FRAME_SIZE == 0, "frame allocator base not aligned");
        assert!(bitmap.len() >= Self::bitmap_words(frames), "frame bitmap too small");
        debug_assert!(bitmap.iter().all(|&w| w == 0), "frame bitmap not zeroed");
        // Frames past the end are marked used so they are never handed out.
        for i in frames..bitmap.len() * 64 {
            bitmap[i / 64] |= 1 << (i % 64);
        }
        FrameAllocator { base, frames, used: bitmap, free: frames, hint: 0 }
    }

    /// Number of free frames.
    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// The managed range `[start, end)`.
    pub fn range(&self) -> (u64, u64) {
        (self.base, self.base + self.frames as u64 * FRAME_SIZE)
    }

    /// One frame (not zeroed: the caller zeroes it through its own mapping).
    pub fn alloc(&mut self) -> Option<u64> {
        let words = self.used.len();
        for n in 0..words {
            let w = (self.hint + n) % words;
            if self.used[w] != u64::MAX {
                let bit = (!self.used[w]).trailing_zeros() as usize;
                self.used[w] |= 1 << bit;
                self.free -= 1;
                self.hint = w;
                return Some(self.base + (w * 64 + bit) as u64 * FRAME_SIZE);
            }
        }
        None
    }

    /// `count` physically contiguous frames whose start is aligned to `align` bytes (a power of
    /// two, at least a frame).
    pub fn alloc_contiguous(&mut self, count: usize, align: u64) -> Option<u64> {
        if count == 0 {
            return None;
        }
        let align = align.max(FRAME_SIZE);
        let mut start = align_up(self.base, align);
        let end = self.base + self.frames as u64 * FRAME_SIZE;
        while start + count as u64 * FRAME_SIZE <= end {
            let first = ((start - self.base) / FRAME_SIZE) as usize;
            match (first..first + count).find(|&i| self.is_used(i)) {
                None => {
                    for i in first..first + count {
                        self.used[i / 64] |= 1 << (i % 64);
                    }
                    self.free -= count;
                    return Some(start);
                }
                Some(busy) => {
                    start = align_up(self.base + (busy as u64 + 1) * FRAME_SIZE, align);
                }
            }
        }
        None
    }

    /// Returns a frame. Freeing a frame that is not allocated (or not ours) is refused.
    pub fn free(&mut self, paddr: u64) -> Result<(), FreeError> {
        if paddr % FRAME_SIZE != 0 || paddr < self.base {
            return Err(FreeError::NotOurs);
        }
        let i = ((paddr - self.base) / FRAME_SIZE) as usize;
        if i >= self.frames {
            return Err(FreeError::NotOurs);
        }
        if !self.is_used(i) {
            return Err(FreeError::NotAllocated);
        }
        self.used[i / 64] &= !(1 << (i % 64));
        self.free += 1;
        Ok(())
    }

    /// Marks every frame overlapping `[start, end)` used (the part inside the managed range; frames
    /// already used stay so), before any allocation: for memory that is not the kernel's to hand
    /// out. Returns how many frames it took from the free ones.
    pub fn reserve(&mut self, start: u64, end: u64) -> usize {
        let (lo, hi) = self.range();
        let (start, end) = (start.max(lo), end.min(hi));
        if start >= end {
            return 0;
        }
        let first = ((start - lo) / FRAME_SIZE) as usize;
        let last = ((end - lo).div_ceil(FRAME_SIZE)) as usize; // exclusive
        let mut taken = 0;
        let mut i = first;
        while i < last {
            // Whole words at once: a large DMA region is thousands of frames.
            let bit = i % 64;
            let n = (64 - bit).min(last - i);
            let mask = if n == 64 { u64::MAX } else { ((1u64 << n) - 1) << bit };
            let w = &mut self.used[i / 64];
            taken += (mask & !*w).count_ones() as usize;
            *w |= mask;
            i += n;
        }
        self.free -= taken;
        taken
    }

    fn is_used(&self, i: usize) -> bool {
        self.used[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Why [`FrameAllocator::free`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    NotOurs,
    NotAllocated,
}

/// The highest frame-aligned address `a` with `[a, a + len)` inside `[start, end)` and clear of
/// every `[s, e)` in `excluded` (None: there is none). The kernel puts the frame bitmap there, so
/// it never lands on a fixed region and leaves the low frames, where tables and PD memory are
/// allocated from, in one piece.
pub fn last_fit<I>(start: u64, end: u64, len: u64, excluded: I) -> Option<u64>
where
    I: Iterator<Item = (u64, u64)> + Clone,
{
    let mut at = end.checked_sub(len)? & !(FRAME_SIZE - 1);
    loop {
        if at < start {
            return None;
        }
        let stop = at + len;
        // Every step moves below an overlapping range's start, so this ends.
        match excluded.clone().filter(|&(s, e)| s < stop && at < e).map(|(s, _)| s).min() {
            None => return Some(at),
            Some(s) => at = s.checked_sub(len)? & !(FRAME_SIZE - 1),
        }
    }
}

const fn align_up(v: u64, align: u64) -> u64 {
    (v + align - 1) & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn allocates_every_frame_once() {
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(100)];
        let mut a = FrameAllocator::new(0x4000_0000, 100, &mut bitmap);
        let mut got = std::collections::BTreeSet::new();
        while let Some(f) = a.alloc() {
            assert!((0x4000_0000..0x4000_0000 + 100 * FRAME_SIZE).contains(&f));
            assert!(got.insert(f));
        }
        assert_eq!(got.len(), 100);
        assert_eq!(a.free_frames(), 0);
        a.free(0x4000_5000).unwrap();
        assert_eq!(a.alloc(), Some(0x4000_5000));
    }

    #[test]
    fn refuses_bad_frees() {
        let mut bitmap = vec![0u64; 2];
        let mut a = FrameAllocator::new(0x1000, 70, &mut bitmap);
        assert_eq!(a.free(0x1000), Err(FreeError::NotAllocated));
        assert_eq!(a.free(0x1001), Err(FreeError::NotOurs));
        assert_eq!(a.free(0x1000 + 70 * FRAME_SIZE), Err(FreeError::NotOurs));
        assert_eq!(a.free(0), Err(FreeError::NotOurs));
        let f = a.alloc().unwrap();
        a.free(f).unwrap();
        assert_eq!(a.free(f), Err(FreeError::NotAllocated));
    }

    #[test]
    fn reserved_ranges_are_never_handed_out() {
        // 200 frames from 0x4000_0000; a fixed region over frames 10..80 (not frame aligned at
        // its end), one reaching past the end, and one wholly outside.
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(200)];
        let base = 0x4000_0000;
        let mut a = FrameAllocator::new(base, 200, &mut bitmap);
        assert_eq!(a.reserve(base + 10 * FRAME_SIZE, base + 79 * FRAME_SIZE + 1), 70);
        assert_eq!(a.reserve(base + 190 * FRAME_SIZE, base + 1000 * FRAME_SIZE), 10);
        assert_eq!(a.reserve(0x1000, base), 0);
        assert_eq!(a.reserve(base + 300 * FRAME_SIZE, base + 400 * FRAME_SIZE), 0);
        // Overlapping an earlier reservation counts only the new frames.
        assert_eq!(a.reserve(base + 70 * FRAME_SIZE, base + 90 * FRAME_SIZE), 10);
        assert_eq!(a.free_frames(), 200 - 90);
        let mut got = std::collections::BTreeSet::new();
        while let Some(f) = a.alloc() {
            let i = (f - base) / FRAME_SIZE;
            assert!(i < 10 || (90..190).contains(&i), "frame {i} was reserved");
            assert!(got.insert(f));
        }
        assert_eq!(got.len(), 200 - 90);
        // Contiguous runs skip reservations too.
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(2048)];
        let mut a = FrameAllocator::new(base, 2048, &mut bitmap);
        a.reserve(base + 0x10_0000, base + 0x30_0000);
        assert_eq!(a.alloc_contiguous(512, 0x20_0000), Some(base + 0x40_0000));
        assert_eq!(a.alloc_contiguous(256, FRAME_SIZE), Some(base));
    }

    #[test]
    fn the_bitmap_fits_between_fixed_regions() {
        let fixed = [(0x4100_0000, 0x4100_2000), (0x4100_3000, 0x4100_4800)];
        let it = || fixed.iter().copied();
        assert_eq!(last_fit(0x4000_0000, 0x8000_0800, 0x2000, it()), Some(0x7fff_e000));
        assert_eq!(last_fit(0x4000_0000, 0x4100_4000, 0x1000, it()), Some(0x4100_2000));
        assert_eq!(last_fit(0x4000_0000, 0x4100_4000, 0x2000, it()), Some(0x40ff_e000));
        assert_eq!(last_fit(0x4100_0000, 0x4100_6000, 0x2000, it()), None);
        assert_eq!(last_fit(0x4100_1000, 0x4100_2000, 0x1000, core::iter::empty()), Some(0x4100_1000));
        assert_eq!(last_fit(0, 0x1000, 0x2000, core::iter::empty()), None);
        assert_eq!(last_fit(0, 0x3000, 0x2000, [(0x1000, 0x2000)].into_iter()), None);
    }

    #[test]
    fn contiguous_and_aligned() {
        let mut bitmap = vec![0u64; FrameAllocator::bitmap_words(2048)];
        let mut a = FrameAllocator::new(0x4000_1000, 2048, &mut bitmap);
        let one = a.alloc().unwrap();
        assert_eq!(one, 0x4000_1000);
        let big = a.alloc_contiguous(512, 0x20_0000).unwrap();
        assert_eq!(big % 0x20_0000, 0);
        assert_eq!(big, 0x4020_0000);
        let small = a.alloc_contiguous(3, FRAME_SIZE).unwrap();
        assert_eq!(small, 0x4000_2000);
        assert_eq!(a.free_frames(), 2048 - 1 - 512 - 3);
        assert!(a.alloc_contiguous(4096, FRAME_SIZE).is_none());
    }
}

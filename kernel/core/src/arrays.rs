//! Channel arrays: one channel id of a static PD naming every instance of a template.
//!
//! An instance's notify sets its bit in the array's pending bitmap and signals the static PD on
//! the array's channel id (once, however many instances notify before it looks); the static PD
//! takes the bitmap a 64-instance word at a time (`ARRAY_TAKE`) and notifies instance `i` with
//! `ARRAY_NOTIFY`. The bitmap lives in the kernel, so an instance can only ever set its own bit.

use crate::kernel::PdId;

/// One channel array, as the arch layer lowers it from the description once instance slots are
/// laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayInfo {
    /// The static PD and its channel id for the array.
    pub holder: PdId,
    pub holder_id: u8,
    /// The static PD may notify instances.
    pub holder_notify: bool,
    /// The template's PD slot, and the slot of its instance 0 (instance `i` is `first_slot + i`).
    pub template: PdId,
    pub first_slot: PdId,
    pub max_instances: u32,
    /// The channel id every instance sees, and whether instances may notify.
    pub instance_id: u8,
    pub instance_notify: bool,
    /// Where this array's words start in the shared bitmap storage.
    pub word_base: u32,
}

impl ArrayInfo {
    /// An unused entry (placeholder for storage).
    pub const EMPTY: ArrayInfo = ArrayInfo {
        holder: 0,
        holder_id: 0,
        holder_notify: false,
        template: 0,
        first_slot: 0,
        max_instances: 0,
        instance_id: 0,
        instance_notify: false,
        word_base: 0,
    };

    /// Bitmap words this array needs.
    pub const fn words(&self) -> u32 {
        self.max_instances.div_ceil(64)
    }
}

/// Every channel array and its pending bits.
#[derive(Default)]
pub struct Arrays<'a> {
    infos: &'a mut [ArrayInfo],
    bits: &'a mut [u64],
}

impl<'a> Arrays<'a> {
    /// Lays the arrays' words out in `bits` (which must hold exactly the sum of their words);
    /// None if it does not.
    pub fn new(infos: &'a mut [ArrayInfo], bits: &'a mut [u64]) -> Option<Self> {
        let mut base = 0u32;
        for a in infos.iter_mut() {
            a.word_base = base;
            base = base.checked_add(a.words())?;
        }
        if base as usize != bits.len() {
            return None;
        }
        bits.fill(0);
        Some(Arrays { infos, bits })
    }

    pub fn len(&self) -> usize {
        self.infos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    pub fn info(&self, a: usize) -> &ArrayInfo {
        &self.infos[a]
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &ArrayInfo)> + '_ {
        self.infos.iter().enumerate()
    }

    /// Marks instance `index` of array `a` as having notified.
    #[inline]
    pub fn set(&mut self, a: usize, index: u32) {
        let info = &self.infos[a];
        if index < info.max_instances {
            self.bits[(info.word_base + index / 64) as usize] |= 1 << (index % 64);
        }
    }

    /// Clears instance `index`'s bit (it was destroyed: its id may be reused).
    pub fn clear(&mut self, a: usize, index: u32) {
        let info = &self.infos[a];
        if index < info.max_instances {
            self.bits[(info.word_base + index / 64) as usize] &= !(1 << (index % 64));
        }
    }

    /// The first word at or after `from` with a bit set, and its bits, which are cleared.
    pub fn take(&mut self, a: usize, from: u64) -> Option<(u64, u64)> {
        let info = &self.infos[a];
        let words = &mut self.bits[info.word_base as usize..(info.word_base + info.words()) as usize];
        let start = usize::try_from(from).ok()?;
        let (i, w) = words.iter_mut().enumerate().skip(start).find(|(_, w)| **w != 0)?;
        let bits = core::mem::take(w);
        Some((i as u64, bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn info(max: u32) -> ArrayInfo {
        ArrayInfo { max_instances: max, ..ArrayInfo::EMPTY }
    }

    #[test]
    fn set_take_and_clear() {
        let mut infos = [info(130), info(3)];
        let mut bits = vec![0; 4];
        let mut arrays = Arrays::new(&mut infos, &mut bits).unwrap();
        assert_eq!(arrays.info(1).word_base, 3);
        assert_eq!(arrays.take(0, 0), None);
        arrays.set(0, 1);
        arrays.set(0, 129);
        arrays.set(0, 64);
        arrays.set(0, 130); // out of range: ignored
        arrays.set(1, 2);
        assert_eq!(arrays.take(0, 0), Some((0, 0b10)));
        assert_eq!(arrays.take(0, 1), Some((1, 1)));
        assert_eq!(arrays.take(0, 2), Some((2, 0b10)));
        assert_eq!(arrays.take(0, 3), None);
        assert_eq!(arrays.take(0, u64::MAX), None);
        assert_eq!(arrays.take(1, 0), Some((0, 0b100)), "arrays do not share bits");
        arrays.set(1, 0);
        arrays.clear(1, 0);
        assert_eq!(arrays.take(1, 0), None);
    }

    #[test]
    fn storage_must_match() {
        let mut infos = [info(65)];
        let mut bits = vec![0; 1];
        assert!(Arrays::new(&mut infos, &mut bits).is_none());
    }
}

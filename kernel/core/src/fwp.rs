//! Bookkeeping of featherweight processes: which PD may fork which template (by handle), which
//! instance ids are live, and what each instance's memory costs against the grant's quota.
//!
//! PD slots: the description's PDs are `0..n`, template `t` is slot `n + t`, and the instances of
//! the fork grant of template `t` have the slots `first_slot .. first_slot + max_instances`
//! (instance id `i` is slot `first_slot + i`). Free ids are kept on a stack per template, so
//! fork and destroy are O(1).

use edgeos_kernel_abi::Error;

use crate::kernel::PdId;

/// One template with its fork grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateSlots {
    /// The template's own PD slot (it holds the checkpoint).
    pub template_pd: PdId,
    /// The PD holding the fork grant, and its handle for it.
    pub holder: PdId,
    pub handle: u8,
    /// The slot of instance 0.
    pub first_slot: PdId,
    pub max_instances: u32,
    /// Bytes all live instances may use, and use now.
    pub quota: u64,
    pub used: u64,
    pub live: u32,
    /// The template's all-zero writable pages were dropped (at its first fork): instances get
    /// those on demand.
    pub compacted: bool,
    /// Where this template's ids start in the shared free-id stack and per-instance tables.
    base: u32,
    /// Free ids on the stack: `free[base .. base + max_instances - live]`.
    free_len: u32,
}

/// Every template's instances.
pub struct Instances<'a> {
    templates: &'a mut [TemplateSlots],
    /// Free-id stacks, one region of `max_instances` per template.
    free: &'a mut [u32],
    /// Bytes charged to each instance (0: not live).
    charged: &'a mut [u64],
}

/// A fork grant as the description gives it.
#[derive(Clone, Copy, Debug)]
pub struct GrantSpec {
    pub template_pd: PdId,
    pub holder: PdId,
    pub handle: u8,
    pub max_instances: u32,
    pub quota: u64,
}

impl TemplateSlots {
    /// An unused entry (placeholder for storage).
    pub const EMPTY: TemplateSlots =
        TemplateSlots {
        template_pd: 0,
        holder: 0,
        handle: 0,
        first_slot: 0,
        max_instances: 0,
        quota: 0,
        used: 0,
        live: 0,
        compacted: false,
        base: 0,
        free_len: 0,
    };
}

/// Total instance slots the grants need.
pub fn total_slots(grants: impl Iterator<Item = u32>) -> usize {
    grants.map(|m| m as usize).sum()
}

impl<'a> Instances<'a> {
    /// Lays the grants out from slot `first_slot` on. `free` and `charged` must hold
    /// [`total_slots`] entries, `templates` one per grant.
    pub fn new(
        templates: &'a mut [TemplateSlots],
        free: &'a mut [u32],
        charged: &'a mut [u64],
        first_slot: PdId,
        grants: impl Iterator<Item = GrantSpec>,
    ) -> Option<Self> {
        let mut base = 0u32;
        let mut count = 0;
        for (t, g) in templates.iter_mut().zip(grants) {
            *t = TemplateSlots {
                template_pd: g.template_pd,
                holder: g.holder,
                handle: g.handle,
                first_slot: first_slot.checked_add(base)?,
                max_instances: g.max_instances,
                quota: g.quota,
                used: 0,
                live: 0,
                compacted: false,
                base,
                free_len: g.max_instances,
            };
            // Ids pop in increasing order: id 0 first.
            let region = free.get_mut(base as usize..(base + g.max_instances) as usize)?;
            for (k, slot) in region.iter_mut().enumerate() {
                *slot = g.max_instances - 1 - k as u32;
            }
            base = base.checked_add(g.max_instances)?;
            count += 1;
        }
        if count != templates.len() || base as usize != free.len() || charged.len() != free.len() {
            return None;
        }
        charged.fill(0);
        Some(Instances { templates, free, charged })
    }

    /// The template `holder` names with fork handle `handle`.
    pub fn find(&self, holder: PdId, handle: u64) -> Option<usize> {
        self.templates.iter().position(|t| t.holder == holder && t.handle as u64 == handle)
    }

    pub fn template(&self, t: usize) -> &TemplateSlots {
        &self.templates[t]
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Takes a free instance id of template `t` (not yet charged: see [`Instances::charge`]).
    pub fn alloc(&mut self, t: usize) -> Result<u32, Error> {
        let ts = &mut self.templates[t];
        if ts.free_len == 0 {
            return Err(Error::QuotaExceeded);
        }
        ts.free_len -= 1;
        ts.live += 1;
        Ok(self.free[(ts.base + ts.free_len) as usize])
    }

    /// Charges `bytes` (at least one frame) to instance `id` of template `t`, or refuses if the
    /// quota would be exceeded (the id stays allocated: give it back with [`Instances::release`]).
    pub fn charge(&mut self, t: usize, id: u32, bytes: u64) -> Result<(), Error> {
        let ts = &mut self.templates[t];
        if ts.used.checked_add(bytes).is_none_or(|u| u > ts.quota) {
            return Err(Error::QuotaExceeded);
        }
        ts.used += bytes;
        self.charged[(ts.base + id) as usize] = bytes.max(1);
        Ok(())
    }

    /// Charges `bytes` more to live instance `id` of template `t` (a page it touched), or
    /// refuses if the quota would be exceeded.
    pub fn charge_more(&mut self, t: usize, id: u32, bytes: u64) -> Result<(), Error> {
        let ts = &mut self.templates[t];
        if ts.used.checked_add(bytes).is_none_or(|u| u > ts.quota) {
            return Err(Error::QuotaExceeded);
        }
        ts.used += bytes;
        self.charged[(ts.base + id) as usize] += bytes;
        Ok(())
    }

    /// Takes back `bytes` charged with [`Instances::charge_more`].
    pub fn uncharge(&mut self, t: usize, id: u32, bytes: u64) {
        let ts = &mut self.templates[t];
        let c = &mut self.charged[(ts.base + id) as usize];
        let b = bytes.min(*c - 1).min(ts.used);
        *c -= b;
        ts.used -= b;
    }

    pub fn set_compacted(&mut self, t: usize) {
        self.templates[t].compacted = true;
    }

    /// True if instance `id` of template `t` is live (allocated and charged).
    pub fn is_live(&self, t: usize, id: u64) -> bool {
        let ts = &self.templates[t];
        id < ts.max_instances as u64 && self.charged[(ts.base as u64 + id) as usize] != 0
    }

    /// The PD slot of instance `id` of template `t`.
    pub fn slot(&self, t: usize, id: u32) -> PdId {
        self.templates[t].first_slot + id
    }

    /// Gives instance `id` back (live or only allocated): uncharges it and frees the id.
    pub fn release(&mut self, t: usize, id: u32) {
        let ts = &mut self.templates[t];
        let c = &mut self.charged[(ts.base + id) as usize];
        ts.used -= (*c).min(ts.used);
        *c = 0;
        self.free[(ts.base + ts.free_len) as usize] = id;
        ts.free_len += 1;
        ts.live -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn spec(holder: PdId, handle: u8, max: u32, quota: u64) -> GrantSpec {
        GrantSpec { template_pd: 9, holder, handle, max_instances: max, quota }
    }

    #[test]
    fn ids_slots_and_quotas() {
        let grants = [spec(0, 3, 4, 10 * 4096), spec(1, 0, 2, 4096)];
        let n = total_slots(grants.iter().map(|g| g.max_instances));
        let mut ts = [TemplateSlots::EMPTY; 2];
        let (mut free, mut charged) = (vec![0; n], vec![0; n]);
        let mut inst = Instances::new(&mut ts, &mut free, &mut charged, 10, grants.iter().copied()).unwrap();
        assert_eq!(inst.find(0, 3), Some(0));
        assert_eq!(inst.find(1, 0), Some(1));
        assert_eq!(inst.find(0, 0), None);
        // Ids come out in order; slots follow the layout.
        for want in 0..4 {
            let id = inst.alloc(0).unwrap();
            assert_eq!(id, want);
            assert_eq!(inst.slot(0, id), 10 + want);
            assert!(!inst.is_live(0, id as u64));
            inst.charge(0, id, 2 * 4096).unwrap();
            assert!(inst.is_live(0, id as u64));
        }
        assert_eq!(inst.alloc(0), Err(Error::QuotaExceeded), "max_instances");
        assert_eq!(inst.template(0).used, 8 * 4096);
        inst.release(0, 2);
        assert!(!inst.is_live(0, 2));
        assert_eq!(inst.template(0).used, 6 * 4096);
        assert_eq!(inst.alloc(0), Ok(2));
        assert_eq!(inst.charge(0, 2, 5 * 4096), Err(Error::QuotaExceeded), "memory quota");
        inst.charge(0, 2, 2 * 4096).unwrap();
        inst.charge_more(0, 2, 2 * 4096).unwrap();
        assert_eq!(inst.charge_more(0, 2, 4096), Err(Error::QuotaExceeded), "pages touched later count too");
        assert_eq!(inst.template(0).used, 10 * 4096);
        inst.release(0, 2);
        assert_eq!(inst.template(0).used, 6 * 4096, "release gives back everything charged");
        assert_eq!(inst.template(0).live, 3);
        // The second template's slots follow the first's.
        let id = inst.alloc(1).unwrap();
        assert_eq!(inst.slot(1, id), 14);
        assert!(!inst.is_live(1, 7), "out of range ids are never live");
    }

    #[test]
    fn cycles_leave_the_books_where_they_started() {
        let grants = [spec(0, 0, 64, 64 * 4096)];
        let mut ts = [TemplateSlots::EMPTY; 1];
        let (mut free, mut charged) = (vec![0; 64], vec![0; 64]);
        let mut inst = Instances::new(&mut ts, &mut free, &mut charged, 1, grants.iter().copied()).unwrap();
        let mut live = std::vec::Vec::new();
        let mut seed = 12345u64;
        for _ in 0..100_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if seed >> 63 == 0 || live.is_empty() {
                match inst.alloc(0) {
                    Ok(id) => {
                        assert!(!live.contains(&id));
                        inst.charge(0, id, 4096).unwrap();
                        live.push(id);
                    }
                    Err(e) => {
                        assert_eq!(e, Error::QuotaExceeded);
                        assert_eq!(live.len(), 64);
                    }
                }
            } else {
                let id = live.swap_remove((seed >> 20) as usize % live.len());
                inst.release(0, id);
            }
            assert_eq!(inst.template(0).used, live.len() as u64 * 4096);
            assert_eq!(inst.template(0).live as usize, live.len());
        }
        for id in live.drain(..) {
            inst.release(0, id);
        }
        assert_eq!(inst.template(0).used, 0);
        assert_eq!(inst.template(0).live, 0);
    }

    #[test]
    fn storage_must_match() {
        let grants = [spec(0, 0, 4, 4096)];
        let mut ts = [TemplateSlots::EMPTY; 1];
        let (mut free, mut charged) = (vec![0; 3], vec![0; 3]);
        assert!(Instances::new(&mut ts, &mut free, &mut charged, 1, grants.iter().copied()).is_none());
    }
}

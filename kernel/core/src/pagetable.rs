//! aarch64 stage-1 translation tables for PD address spaces: 4 KiB granule, 39-bit user
//! addresses (`bootinfo::layout::USER_TOP`), so three levels (1 GiB, 2 MiB, 4 KiB entries).
//!
//! Written here rather than with `aarch64-paging` because PD address spaces need things that
//! crate does not offer: tables the kernel allocates from its own frame allocator and may share
//! between address spaces (DESIGN-NOTES 4: forked instances link read-only subtrees), ASID-tagged
//! (non-global) user entries, and host tests against a fake memory.
//!
//! Memory attribute indices follow the MAIR_EL1 value the boot code programs:
//! index 0 = Device-nGnRE, 1 = Normal write-back, 2 = Normal non-cacheable.

/// Entries per table.
pub const ENTRIES: usize = 512;
/// The small page.
pub const PAGE_SIZE: u64 = 4096;
/// A level-2 block.
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// The first address past the user address space.
pub const USER_TOP: u64 = 1 << 39;

/// MAIR index of Device-nGnRE memory.
pub const MAIR_DEVICE: u64 = 0;
/// MAIR index of normal write-back memory.
pub const MAIR_NORMAL: u64 = 1;

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_SHIFT: u32 = 2;
const AP_EL0: u64 = 1 << 6;
const AP_READ_ONLY: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const NOT_GLOBAL: u64 = 1 << 11;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// Bit 55 of a leaf descriptor, one of the four (55..58) reserved for software: see
/// [`PageAttrs::owned`].
const OWNED: u64 = 1 << 55;

/// Where tables live: the kernel implements this over its frame allocator and direct map, the
/// tests over a vector.
pub trait TableMemory {
    /// A new zeroed table; returns its physical address.
    fn alloc_table(&mut self) -> Option<u64>;
    /// The table at `paddr` (one returned by `alloc_table`).
    fn table(&mut self, paddr: u64) -> &mut [u64; ENTRIES];
}

/// What a PD may do with a page, and how it is cached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageAttrs {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
    /// Device memory (Device-nGnRE): for `cached="false"` maps.
    pub device: bool,
    /// The frame belongs to this address space (a featherweight instance's private or
    /// on-demand page): its teardown frees it. Kept in a descriptor bit the MMU ignores
    /// ([`OWNED`]), so teardown needs no other record of which frames are shared.
    pub owned: bool,
}

/// Page sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Small,
    Large,
}

impl PageSize {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        match self {
            PageSize::Small => PAGE_SIZE,
            PageSize::Large => LARGE_PAGE_SIZE,
        }
    }
}

/// Why a mapping was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address not aligned to the page size.
    Misaligned,
    /// Outside the user address space.
    OutOfRange,
    /// Something is already mapped there.
    AlreadyMapped,
    /// Writable and executable at once (W^X), or no access at all.
    BadPermissions,
    /// No memory for a table.
    OutOfMemory,
}

/// A leaf found by [`lookup`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Physical address of `va` itself (page base plus offset).
    pub paddr: u64,
    pub size: PageSize,
    pub attrs: PageAttrs,
}

/// The leaf descriptor of a user page.
pub fn leaf_descriptor(paddr: u64, attrs: PageAttrs, size: PageSize) -> u64 {
    let kind = match size {
        PageSize::Small => VALID | TABLE_OR_PAGE,
        PageSize::Large => VALID,
    };
    let mut d = (paddr & ADDRESS_MASK) | kind | AF | NOT_GLOBAL | PXN;
    d |= if attrs.device { MAIR_DEVICE << ATTR_SHIFT } else { (MAIR_NORMAL << ATTR_SHIFT) | SH_INNER };
    if attrs.read {
        d |= AP_EL0;
    }
    if !attrs.write {
        d |= AP_READ_ONLY;
    }
    if !attrs.execute || attrs.device {
        d |= UXN;
    }
    if attrs.owned {
        d |= OWNED;
    }
    d
}

fn decode_attrs(d: u64) -> PageAttrs {
    PageAttrs {
        read: d & AP_EL0 != 0,
        write: d & AP_READ_ONLY == 0,
        execute: d & UXN == 0,
        device: (d >> ATTR_SHIFT) & 7 == MAIR_DEVICE,
        owned: d & OWNED != 0,
    }
}

fn index(va: u64, level: u32) -> usize {
    ((va >> (39 - 9 * level)) & 0x1ff) as usize
}

/// Allocates an empty root table.
pub fn new_root(mem: &mut impl TableMemory) -> Option<u64> {
    mem.alloc_table()
}

/// Whether a user page may have these permissions: never writable and executable (W^X), never
/// without access, never write-only.
fn permitted(attrs: PageAttrs) -> bool {
    let writable_and_executable = attrs.write && attrs.execute;
    let no_access = !attrs.read && !attrs.execute;
    let write_only = attrs.write && !attrs.read;
    !(writable_and_executable || no_access || write_only)
}

/// Maps one page or block at `va` to `paddr`.
pub fn map(mem: &mut impl TableMemory, root: u64, va: u64, paddr: u64, size: PageSize, attrs: PageAttrs) -> Result<(), MapError> {
    let bytes = size.bytes();
    if va % bytes != 0 || paddr % bytes != 0 {
        return Err(MapError::Misaligned);
    }
    if va.checked_add(bytes).is_none_or(|end| end > USER_TOP) {
        return Err(MapError::OutOfRange);
    }
    if !permitted(attrs) {
        return Err(MapError::BadPermissions);
    }
    let leaf_level = match size {
        PageSize::Small => 3,
        PageSize::Large => 2,
    };
    let mut table = root;
    for level in 1..leaf_level {
        let i = index(va, level);
        let d = mem.table(table)[i];
        table = if d & VALID == 0 {
            let t = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            mem.table(table)[i] = t | VALID | TABLE_OR_PAGE;
            t
        } else if d & TABLE_OR_PAGE == 0 {
            return Err(MapError::AlreadyMapped); // a block covers it
        } else {
            d & ADDRESS_MASK
        };
    }
    let i = index(va, leaf_level);
    let entry = &mut mem.table(table)[i];
    if *entry & VALID != 0 {
        return Err(MapError::AlreadyMapped);
    }
    *entry = leaf_descriptor(paddr, attrs, size);
    Ok(())
}

/// Maps 4 KiB pages into one address space, remembering the last level-3 table it used, so a
/// run of pages in the same 2 MiB costs one descriptor write each (fork maps page by page).
pub struct Mapper {
    root: u64,
    /// `va >> 21` of the cached level-3 table, and its address (0: none cached).
    l3_key: u64,
    l3: u64,
}

impl Mapper {
    pub fn new(root: u64) -> Self {
        Mapper { root, l3_key: 0, l3: 0 }
    }

    /// As [`map`] with [`PageSize::Small`].
    pub fn map_page(&mut self, mem: &mut impl TableMemory, va: u64, paddr: u64, attrs: PageAttrs) -> Result<(), MapError> {
        if self.l3 == 0 || va >> 21 != self.l3_key {
            if va % PAGE_SIZE != 0 || paddr % PAGE_SIZE != 0 {
                return Err(MapError::Misaligned);
            }
            // The general path creates the tables and checks range and permissions.
            map(mem, self.root, va, paddr, PageSize::Small, attrs)?;
            let mut table = self.root;
            for level in 1..3 {
                table = mem.table(table)[index(va, level)] & ADDRESS_MASK;
            }
            self.l3_key = va >> 21;
            self.l3 = table;
            return Ok(());
        }
        if va % PAGE_SIZE != 0 || paddr % PAGE_SIZE != 0 {
            return Err(MapError::Misaligned);
        }
        if !permitted(attrs) {
            return Err(MapError::BadPermissions);
        }
        let entry = &mut mem.table(self.l3)[index(va, 3)];
        if *entry & VALID != 0 {
            return Err(MapError::AlreadyMapped);
        }
        *entry = leaf_descriptor(paddr, attrs, PageSize::Small);
        Ok(())
    }
}

/// Finds the page mapping `va`, if any.
pub fn lookup(mem: &mut impl TableMemory, root: u64, va: u64) -> Option<Leaf> {
    if va >= USER_TOP {
        return None;
    }
    let mut table = root;
    for level in 1..=3 {
        let d = mem.table(table)[index(va, level)];
        if d & VALID == 0 {
            return None;
        }
        let is_leaf = level == 3 || d & TABLE_OR_PAGE == 0;
        if is_leaf {
            let size = if level == 3 { PageSize::Small } else { PageSize::Large };
            if level == 1 {
                return None; // 1 GiB blocks are never created for PDs
            }
            let offset = va & (size.bytes() - 1);
            return Some(Leaf { paddr: (d & ADDRESS_MASK & !(size.bytes() - 1)) + offset, size, attrs: decode_attrs(d) });
        }
        table = d & ADDRESS_MASK;
    }
    None
}

/// Removes the 4 KiB page mapped at `va` (tables stay); returns its frame, None if no page
/// was mapped there. The caller flushes the TLB.
pub fn unmap(mem: &mut impl TableMemory, root: u64, va: u64) -> Option<u64> {
    if va >= USER_TOP {
        return None;
    }
    let mut table = root;
    for level in 1..3 {
        let d = mem.table(table)[index(va, level)];
        if d & VALID == 0 || d & TABLE_OR_PAGE == 0 {
            return None;
        }
        table = d & ADDRESS_MASK;
    }
    let entry = &mut mem.table(table)[index(va, 3)];
    if *entry & VALID == 0 {
        return None;
    }
    let paddr = *entry & ADDRESS_MASK;
    *entry = 0;
    Some(paddr)
}

/// Visits every 4 KiB page mapped in `[start, end)` (tables that are absent are skipped whole)
/// and unmaps those for which `drop(mem, va, leaf)` returns true (tables stay). The caller
/// flushes the TLB and frees the frames.
pub fn unmap_range_if<M: TableMemory>(mem: &mut M, root: u64, start: u64, end: u64, drop: &mut impl FnMut(&mut M, u64, Leaf) -> bool) {
    const GIB: u64 = 1 << 30;
    let (mut va, end) = (start & !(PAGE_SIZE - 1), end.min(USER_TOP));
    while va < end {
        let d1 = mem.table(root)[index(va, 1)];
        if d1 & VALID == 0 || d1 & TABLE_OR_PAGE == 0 {
            va = (va | (GIB - 1)) + 1;
            continue;
        }
        let d2 = mem.table(d1 & ADDRESS_MASK)[index(va, 2)];
        if d2 & VALID == 0 || d2 & TABLE_OR_PAGE == 0 {
            va = (va | (LARGE_PAGE_SIZE - 1)) + 1;
            continue;
        }
        let l3 = d2 & ADDRESS_MASK;
        let d3 = mem.table(l3)[index(va, 3)];
        if d3 & VALID != 0 && drop(mem, va, Leaf { paddr: d3 & ADDRESS_MASK, size: PageSize::Small, attrs: decode_attrs(d3) }) {
            mem.table(l3)[index(va, 3)] = 0;
        }
        va += PAGE_SIZE;
    }
}

/// Tears an address space down: calls `leaf(mem, va, leaf)` for every page or block mapped
/// under `root`, then `table(mem, paddr)` for every table (root last), bottom up. The tables
/// must not be used again (freeing them is the callback's business).
pub fn teardown<M: TableMemory>(mem: &mut M, root: u64, leaf: &mut impl FnMut(&mut M, u64, Leaf), table: &mut impl FnMut(&mut M, u64)) {
    walk(mem, root, 1, 0, leaf, table);
}

fn walk<M: TableMemory>(mem: &mut M, t: u64, level: u32, base: u64, leaf: &mut impl FnMut(&mut M, u64, Leaf), table: &mut impl FnMut(&mut M, u64)) {
    let span = 1u64 << (39 - 9 * level);
    for i in 0..ENTRIES {
        let d = mem.table(t)[i];
        if d & VALID == 0 {
            continue;
        }
        let va = base + i as u64 * span;
        if level < 3 && d & TABLE_OR_PAGE != 0 {
            walk(mem, d & ADDRESS_MASK, level + 1, va, leaf, table);
        } else if level >= 2 {
            let size = if level == 3 { PageSize::Small } else { PageSize::Large };
            leaf(mem, va, Leaf { paddr: d & ADDRESS_MASK & !(size.bytes() - 1), size, attrs: decode_attrs(d) });
        }
    }
    table(mem, t);
}

/// Tears down an address space whose mappings all lie in `ranges` (`[start, end)` pairs; they
/// may overlap), visiting only those entries: `leaf(mem, va, leaf)` for each page or block,
/// then `table(mem, paddr)` for each table, root last. Cost is proportional to what is mapped,
/// where [`teardown`] scans all 512 entries of every table. Entries are cleared as they are
/// reported, so each leaf and table is reported once.
pub fn teardown_ranges<M: TableMemory>(
    mem: &mut M,
    root: u64,
    ranges: &[(u64, u64)],
    leaf: &mut impl FnMut(&mut M, u64, Leaf),
    table: &mut impl FnMut(&mut M, u64),
) {
    const GIB: u64 = 1 << 30;
    let clip = |&(start, end): &(u64, u64)| (start & !(PAGE_SIZE - 1), end.min(USER_TOP));
    // Leaves.
    for r in ranges {
        let (mut va, end) = clip(r);
        while va < end {
            let d1 = mem.table(root)[index(va, 1)];
            if d1 & VALID == 0 || d1 & TABLE_OR_PAGE == 0 {
                va = (va | (GIB - 1)) + 1;
                continue;
            }
            let l2 = d1 & ADDRESS_MASK;
            let d2 = mem.table(l2)[index(va, 2)];
            if d2 & VALID == 0 {
                va = (va | (LARGE_PAGE_SIZE - 1)) + 1;
                continue;
            }
            if d2 & TABLE_OR_PAGE == 0 {
                mem.table(l2)[index(va, 2)] = 0;
                let l = Leaf { paddr: d2 & ADDRESS_MASK & !(LARGE_PAGE_SIZE - 1), size: PageSize::Large, attrs: decode_attrs(d2) };
                leaf(mem, va & !(LARGE_PAGE_SIZE - 1), l);
                va = (va | (LARGE_PAGE_SIZE - 1)) + 1;
                continue;
            }
            let l3 = d2 & ADDRESS_MASK;
            let i3 = index(va, 3);
            let d3 = mem.table(l3)[i3];
            if d3 & VALID != 0 {
                mem.table(l3)[i3] = 0;
                leaf(mem, va, Leaf { paddr: d3 & ADDRESS_MASK, size: PageSize::Small, attrs: decode_attrs(d3) });
            }
            va += PAGE_SIZE;
        }
    }
    // Level-3 tables, then level-2 tables, then the root.
    for r in ranges {
        let (mut va, end) = clip(r);
        while va < end {
            let d1 = mem.table(root)[index(va, 1)];
            if d1 & VALID != 0 && d1 & TABLE_OR_PAGE != 0 {
                let l2 = d1 & ADDRESS_MASK;
                let d2 = mem.table(l2)[index(va, 2)];
                if d2 & VALID != 0 && d2 & TABLE_OR_PAGE != 0 {
                    mem.table(l2)[index(va, 2)] = 0;
                    table(mem, d2 & ADDRESS_MASK);
                }
            }
            va = (va | (LARGE_PAGE_SIZE - 1)) + 1;
        }
    }
    for r in ranges {
        let (mut va, end) = clip(r);
        while va < end {
            let d1 = mem.table(root)[index(va, 1)];
            if d1 & VALID != 0 && d1 & TABLE_OR_PAGE != 0 {
                mem.table(root)[index(va, 1)] = 0;
                table(mem, d1 & ADDRESS_MASK);
            }
            va = (va | (GIB - 1)) + 1;
        }
    }
    table(mem, root);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::boxed::Box;

    /// Tables in a map keyed by fake physical address.
    struct FakeMemory {
        tables: BTreeMap<u64, Box<[u64; ENTRIES]>>,
        next: u64,
        limit: usize,
    }

    impl FakeMemory {
        fn new(limit: usize) -> Self {
            FakeMemory { tables: BTreeMap::new(), next: 0x8000_0000, limit }
        }
    }

    impl TableMemory for FakeMemory {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.tables.len() >= self.limit {
                return None;
            }
            let p = self.next;
            self.next += PAGE_SIZE;
            self.tables.insert(p, Box::new([0; ENTRIES]));
            Some(p)
        }
        fn table(&mut self, paddr: u64) -> &mut [u64; ENTRIES] {
            self.tables.get_mut(&paddr).expect("not a table")
        }
    }

    const RX: PageAttrs = PageAttrs { read: true, write: false, execute: true, device: false, owned: false };
    const RW: PageAttrs = PageAttrs { read: true, write: true, execute: false, device: false, owned: false };
    const RO: PageAttrs = PageAttrs { read: true, write: false, execute: false, device: false, owned: false };

    #[test]
    fn maps_and_looks_up() {
        let mut m = FakeMemory::new(100);
        let root = new_root(&mut m).unwrap();
        map(&mut m, root, 0x20_0000, 0x4100_0000, PageSize::Small, RX).unwrap();
        map(&mut m, root, 0x20_1000, 0x4100_5000, PageSize::Small, RW).unwrap();
        map(&mut m, root, 0x4000_0000, 0x4200_0000, PageSize::Large, RO).unwrap();
        let leaf = lookup(&mut m, root, 0x20_1234).unwrap();
        assert_eq!(leaf.paddr, 0x4100_5234);
        assert_eq!(leaf.attrs, RW);
        assert_eq!(lookup(&mut m, root, 0x20_0010).unwrap().attrs, RX);
        let big = lookup(&mut m, root, 0x4010_0008).unwrap();
        assert_eq!((big.paddr, big.size, big.attrs), (0x4210_0008, PageSize::Large, RO));
        assert_eq!(lookup(&mut m, root, 0x20_2000), None);
        assert_eq!(lookup(&mut m, root, USER_TOP), None);
        // root + one L2 + one L3 for the small pages, one more L2 for the block (other GiB).
        assert_eq!(m.tables.len(), 4);
    }

    #[test]
    fn mapper_matches_map() {
        let mut a = FakeMemory::new(100);
        let mut b = FakeMemory::new(100);
        let (ra, rb) = (new_root(&mut a).unwrap(), new_root(&mut b).unwrap());
        let mut m = Mapper::new(rb);
        let pages = [0x20_0000u64, 0x20_1000, 0x20_5000, 0x40_0000, 0x3f_ffff_f000, 0x20_2000];
        for (k, &va) in pages.iter().enumerate() {
            let attrs = if k % 2 == 0 { RX } else { RW };
            map(&mut a, ra, va, 0x4100_0000 + k as u64 * PAGE_SIZE, PageSize::Small, attrs).unwrap();
            m.map_page(&mut b, va, 0x4100_0000 + k as u64 * PAGE_SIZE, attrs).unwrap();
        }
        for &va in &pages {
            assert_eq!(lookup(&mut a, ra, va), lookup(&mut b, rb, va));
        }
        assert_eq!(a.tables.len(), b.tables.len());
        assert_eq!(m.map_page(&mut b, 0x20_1000, 0x4200_0000, RO), Err(MapError::AlreadyMapped));
        assert_eq!(m.map_page(&mut b, 0x20_3000, 0x4200_0800, RO), Err(MapError::Misaligned));
        let wx = PageAttrs { read: true, write: true, execute: true, device: false, owned: false };
        assert_eq!(m.map_page(&mut b, 0x20_3000, 0x4200_0000, wx), Err(MapError::BadPermissions));
    }

    #[test]
    fn unmaps_a_range_selectively() {
        let mut m = FakeMemory::new(100);
        let root = new_root(&mut m).unwrap();
        for k in 0..6u64 {
            map(&mut m, root, 0x20_0000 + k * PAGE_SIZE, 0x4100_0000 + k * PAGE_SIZE, PageSize::Small, RW).unwrap();
        }
        map(&mut m, root, 0x4000_0000, 0x4200_0000, PageSize::Large, RO).unwrap();
        let mut seen = std::vec::Vec::new();
        unmap_range_if(&mut m, root, 0x20_1000, 0x4020_0000, &mut |_, va, leaf| {
            seen.push(va);
            leaf.paddr % (2 * PAGE_SIZE) == 0
        });
        assert_eq!(seen, [0x20_1000, 0x20_2000, 0x20_3000, 0x20_4000, 0x20_5000], "pages only, from start on");
        let left: std::vec::Vec<bool> = (0..6u64).map(|k| lookup(&mut m, root, 0x20_0000 + k * PAGE_SIZE).is_some()).collect();
        assert_eq!(left, [true, true, false, true, false, true]);
        assert!(lookup(&mut m, root, 0x4000_0000).is_some(), "blocks are left alone");
    }

    #[test]
    fn unmaps_pages_and_maps_again() {
        let mut m = FakeMemory::new(100);
        let root = new_root(&mut m).unwrap();
        map(&mut m, root, 0x20_1000, 0x4100_5000, PageSize::Small, RW).unwrap();
        map(&mut m, root, 0x4000_0000, 0x4200_0000, PageSize::Large, RO).unwrap();
        assert_eq!(unmap(&mut m, root, 0x20_1000), Some(0x4100_5000));
        assert_eq!(lookup(&mut m, root, 0x20_1000), None);
        assert_eq!(unmap(&mut m, root, 0x20_1000), None, "nothing left to unmap");
        assert_eq!(unmap(&mut m, root, 0x4000_0000), None, "blocks are not pages");
        assert_eq!(unmap(&mut m, root, 0x9000_0000), None, "no table there");
        assert_eq!(unmap(&mut m, root, USER_TOP), None);
        let tables = m.tables.len();
        map(&mut m, root, 0x20_1000, 0x4100_7000, PageSize::Small, RO).unwrap();
        assert_eq!(lookup(&mut m, root, 0x20_1000).unwrap().paddr, 0x4100_7000);
        assert_eq!(m.tables.len(), tables, "the tables were kept");
    }

    #[test]
    fn refuses_overlaps_and_bad_requests() {
        let mut m = FakeMemory::new(100);
        let root = new_root(&mut m).unwrap();
        map(&mut m, root, 0x20_0000, 0x4100_0000, PageSize::Small, RX).unwrap();
        assert_eq!(map(&mut m, root, 0x20_0000, 0x4100_0000, PageSize::Small, RX), Err(MapError::AlreadyMapped));
        assert_eq!(map(&mut m, root, 0x60_0000, 0x4100_0000, PageSize::Large, RO), Ok(()));
        assert_eq!(map(&mut m, root, 0x60_1000, 0x4100_0000, PageSize::Small, RO), Err(MapError::AlreadyMapped));
        assert_eq!(map(&mut m, root, 0x20_0800, 0x4100_0000, PageSize::Small, RO), Err(MapError::Misaligned));
        assert_eq!(map(&mut m, root, USER_TOP, 0x4100_0000, PageSize::Small, RO), Err(MapError::OutOfRange));
        let wx = PageAttrs { read: true, write: true, execute: true, device: false, owned: false };
        assert_eq!(map(&mut m, root, 0x30_0000, 0x4100_0000, PageSize::Small, wx), Err(MapError::BadPermissions));
        assert_eq!(map(&mut m, root, 0x30_0000, 0x4100_0000, PageSize::Small, PageAttrs::default()), Err(MapError::BadPermissions));
        let mut tiny = FakeMemory::new(1);
        let root = new_root(&mut tiny).unwrap();
        assert_eq!(map(&mut tiny, root, 0, 0, PageSize::Small, RO), Err(MapError::OutOfMemory));
    }

    #[test]
    fn teardown_visits_every_leaf_and_table() {
        let mut m = FakeMemory::new(100);
        let root = new_root(&mut m).unwrap();
        map(&mut m, root, 0x20_0000, 0x4100_0000, PageSize::Small, RX).unwrap();
        map(&mut m, root, 0x20_1000, 0x4100_5000, PageSize::Small, RW).unwrap();
        map(&mut m, root, 0x4000_0000, 0x4200_0000, PageSize::Large, RO).unwrap();
        map(&mut m, root, 0x7f_ffff_f000, 0x4300_0000, PageSize::Small, RW).unwrap();
        let mut leaves = std::vec::Vec::new();
        let mut tables = std::vec::Vec::new();
        teardown(&mut m, root, &mut |_, va, l| leaves.push((va, l.paddr, l.size)), &mut |_, t| tables.push(t));
        assert_eq!(
            leaves,
            [
                (0x20_0000, 0x4100_0000, PageSize::Small),
                (0x20_1000, 0x4100_5000, PageSize::Small),
                (0x4000_0000, 0x4200_0000, PageSize::Large),
                (0x7f_ffff_f000, 0x4300_0000, PageSize::Small)
            ]
        );
        assert_eq!(tables.len(), m.tables.len());
        assert_eq!(*tables.last().unwrap(), root);
        let mut sorted = tables.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), tables.len(), "each table once");
    }

    #[test]
    fn teardown_by_ranges_matches_the_full_walk() {
        let build = |m: &mut FakeMemory| {
            let root = new_root(m).unwrap();
            map(m, root, 0x20_0000, 0x4100_0000, PageSize::Small, RX).unwrap();
            map(m, root, 0x20_1000, 0x4100_5000, PageSize::Small, RW).unwrap();
            map(m, root, 0x3f_e000, 0x4100_6000, PageSize::Small, RW).unwrap(); // next L3 table
            map(m, root, 0x4000_0000, 0x4200_0000, PageSize::Large, RO).unwrap();
            map(m, root, 0x7f_ffff_f000, 0x4300_0000, PageSize::Small, RW).unwrap();
            root
        };
        let mut m = FakeMemory::new(100);
        let root = build(&mut m);
        let (mut full_leaves, mut full_tables) = (std::vec::Vec::new(), std::vec::Vec::new());
        teardown(&mut m, root, &mut |_, va, l| full_leaves.push((va, l.paddr)), &mut |_, t| full_tables.push(t));
        let mut m = FakeMemory::new(100);
        let root = build(&mut m);
        let (mut leaves, mut tables) = (std::vec::Vec::new(), std::vec::Vec::new());
        // Overlapping ranges, unmapped holes, one past the top of the address space.
        let ranges = [(0x20_0000, 0x20_2000), (0x20_1000, 0x40_0000), (0x4000_0000, 0x4020_0000), (0x7f_ffff_0000, u64::MAX)];
        teardown_ranges(&mut m, root, &ranges, &mut |_, va, l| leaves.push((va, l.paddr)), &mut |_, t| tables.push(t));
        leaves.sort();
        full_leaves.sort();
        assert_eq!(leaves, full_leaves);
        assert_eq!(*tables.last().unwrap(), root);
        tables.sort();
        full_tables.sort();
        assert_eq!(tables, full_tables, "every table once");
    }

    #[test]
    fn the_owned_mark_is_a_software_bit_that_round_trips() {
        let owned = PageAttrs { owned: true, ..RW };
        let d = leaf_descriptor(0x4000_1000, owned, PageSize::Small);
        assert_eq!(d & !OWNED, leaf_descriptor(0x4000_1000, RW, PageSize::Small), "the MMU sees the same page");
        assert_eq!(decode_attrs(d), owned);
        let mut mem = FakeMemory::new(100);
        let root = new_root(&mut mem).unwrap();
        map(&mut mem, root, 0x20_0000, 0x4000_1000, PageSize::Small, owned).unwrap();
        map(&mut mem, root, 0x20_1000, 0x4000_2000, PageSize::Small, RO).unwrap();
        assert!(lookup(&mut mem, root, 0x20_0000).unwrap().attrs.owned);
        assert!(!lookup(&mut mem, root, 0x20_1000).unwrap().attrs.owned);
    }

    #[test]
    fn descriptor_bits() {
        // Normal RW user page: valid page, AF, nG, PXN, UXN, EL0 access, inner shareable, attr 1.
        let d = leaf_descriptor(0x4000_1000, RW, PageSize::Small);
        assert_eq!(d, 0x4000_1000 | 0b11 | (1 << 10) | (1 << 11) | (1 << 53) | (1 << 54) | (1 << 6) | (3 << 8) | (1 << 2));
        // Device pages are never executable and use attr 0.
        let dev = PageAttrs { read: true, write: true, execute: true, device: true, owned: false };
        let d = leaf_descriptor(0x0900_0000, dev, PageSize::Small);
        assert_ne!(d & (1 << 54), 0);
        assert_eq!((d >> 2) & 7, MAIR_DEVICE);
        // Execute-only: no EL0 data access, EL0 may execute, EL1 never.
        let x = leaf_descriptor(0x1000, PageAttrs { execute: true, ..Default::default() }, PageSize::Small);
        assert_eq!(x & (1 << 6), 0);
        assert_eq!(x & (1 << 54), 0);
        assert_ne!(x & (1 << 53), 0);
    }
}

//! The compact boot-time description of a system: the one format the image builder writes and
//! the kernel reads.
//!
//! The host tool parses `system.xml`, validates it, resolves program images and lays out memory;
//! it then lowers the result into this binary form and places it in the image right after the
//! kernel (at the first 4 KiB boundary past the kernel's last byte). The kernel never parses XML or
//! ELF: it checks this blob once with [`BootInfo::parse`] and then reads records by index.
//!
//! Layout (all integers little-endian):
//! ```text
//! header (HEADER_SIZE bytes) | tables (8-byte aligned) | strings | pad to page | segment data (page aligned)
//! ```
//! Every table is an array of fixed-size records. Everything is validated in [`BootInfo::parse`]:
//! after it succeeds, no accessor can index out of bounds or return an inconsistent record.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod board;
#[cfg(any(test, feature = "alloc"))]
mod encode;
pub mod layout;
mod records;

#[cfg(any(test, feature = "alloc"))]
pub use encode::Builder;
pub use records::*;

/// The eight bytes every boot blob starts with.
pub const MAGIC: [u8; 8] = *b"EDGEBOOT";
/// Bumped on every incompatible change; the kernel refuses any other version.
pub const VERSION: u32 = 1;
/// Size of the fixed header.
pub const HEADER_SIZE: usize = 96;
/// Channel ids (and IRQ ids, which share their namespace) are 0..MAX_CHANNEL_ID.
pub const CHANNEL_IDS: u32 = 62;
/// A PD index meaning "none" (e.g. the parent of a root PD).
pub const NO_PD: u32 = u32::MAX;

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The blob is shorter than its header or its declared size.
    Truncated,
    /// The magic bytes are wrong: this is not a boot blob.
    BadMagic,
    /// The blob was written for another format version.
    BadVersion(u32),
    /// A table lies outside the blob or is misaligned.
    BadTable(Table),
    /// Record `index` of `table` is inconsistent (out-of-range reference, misalignment, ...).
    BadRecord(Table, u32),
}

/// The tables of a blob, for error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    ProtectionDomains,
    Segments,
    Regions,
    Maps,
    Irqs,
    Channels,
    Strings,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated => write!(f, "boot blob is truncated"),
            Error::BadMagic => write!(f, "boot blob has no EDGEBOOT magic"),
            Error::BadVersion(v) => write!(f, "boot blob version {v}, expected {VERSION}"),
            Error::BadTable(t) => write!(f, "boot blob table {t:?} is out of bounds"),
            Error::BadRecord(t, i) => write!(f, "boot blob record {i} of table {t:?} is invalid"),
        }
    }
}

/// Where a table sits in the blob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TableRef {
    pub offset: u32,
    pub count: u32,
}

/// The fixed header. `tables` are in [`Table`] order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub total_size: u64,
    pub reserved_end_paddr: u64,
    pub tables: [TableRef; 7],
}

/// A validated boot blob.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo<'a> {
    blob: &'a [u8],
    header: Header,
}

pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn read_u64(b: &[u8], at: usize) -> u64 {
    (read_u32(b, at) as u64) | ((read_u32(b, at + 4) as u64) << 32)
}

const TABLES: [(Table, usize); 7] = [
    (Table::ProtectionDomains, ProtectionDomain::SIZE),
    (Table::Segments, Segment::SIZE),
    (Table::Regions, Region::SIZE),
    (Table::Maps, Map::SIZE),
    (Table::Irqs, Irq::SIZE),
    (Table::Channels, Channel::SIZE),
    (Table::Strings, 1),
];

impl<'a> BootInfo<'a> {
    /// Checks a whole blob. `blob` may extend past the blob's declared size (the kernel passes
    /// everything up to the end of RAM); only the declared part is used.
    pub fn parse(blob: &'a [u8]) -> Result<Self, Error> {
        if blob.len() < HEADER_SIZE {
            return Err(Error::Truncated);
        }
        if blob[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = read_u32(blob, 8);
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        if read_u32(blob, 12) as usize != HEADER_SIZE {
            return Err(Error::Truncated);
        }
        let total_size = read_u64(blob, 16);
        if total_size > blob.len() as u64 || total_size < HEADER_SIZE as u64 {
            return Err(Error::Truncated);
        }
        let blob = &blob[..total_size as usize];
        let mut header = Header { total_size, reserved_end_paddr: read_u64(blob, 24), tables: [TableRef::default(); 7] };
        for (i, (table, size)) in TABLES.iter().enumerate() {
            let t = TableRef { offset: read_u32(blob, 32 + 8 * i), count: read_u32(blob, 36 + 8 * i) };
            let end = (t.count as u64) * (*size as u64) + t.offset as u64;
            let aligned = *size == 1 || t.offset.is_multiple_of(8);
            if end > total_size || (t.offset as usize) < HEADER_SIZE || !aligned {
                return Err(Error::BadTable(*table));
            }
            header.tables[i] = t;
        }
        let info = BootInfo { blob, header };
        info.validate()?;
        Ok(info)
    }

    fn validate(&self) -> Result<(), Error> {
        let n_pds = self.pd_count();
        for i in 0..n_pds {
            let pd = self.pd(i);
            let bad = || Error::BadRecord(Table::ProtectionDomains, i as u32);
            self.string(pd.name).ok_or_else(bad)?;
            let in_range = |r: Range, n: usize| (r.first as u64 + r.count as u64) <= n as u64;
            if !in_range(pd.segments, self.segment_count())
                || !in_range(pd.maps, self.map_count())
                || !in_range(pd.irqs, self.irq_count())
                || pd.priority > 254
                || (pd.parent != NO_PD && (pd.parent as usize >= n_pds || pd.parent as usize == i))
                || (pd.parent != NO_PD && pd.child_id >= CHANNEL_IDS)
                || pd.budget_us == 0
                || pd.budget_us > pd.period_us
                || !pd.stack_size.is_multiple_of(layout::PAGE_SIZE)
                || pd.stack_size == 0
                || !pd.stack_top.is_multiple_of(layout::PAGE_SIZE)
                || !pd.ipc_buffer.is_multiple_of(layout::PAGE_SIZE)
            {
                return Err(bad());
            }
        }
        for i in 0..self.segment_count() {
            let s = self.segment(i);
            let end = s.data_offset.checked_add(s.file_size);
            if !s.vaddr.is_multiple_of(layout::PAGE_SIZE)
                || !s.data_offset.is_multiple_of(layout::PAGE_SIZE)
                || s.file_size > s.mem_size
                || end.is_none_or(|e| e > self.header.total_size)
                || s.vaddr.checked_add(s.mem_size).is_none_or(|e| e > layout::USER_TOP)
                || !s.perms.is_valid()
            {
                return Err(Error::BadRecord(Table::Segments, i as u32));
            }
        }
        for i in 0..self.region_count() {
            let r = self.region(i);
            if !(r.page_size == layout::PAGE_SIZE || r.page_size == layout::LARGE_PAGE_SIZE)
                || !r.paddr.is_multiple_of(r.page_size)
                || r.size == 0
                || !r.size.is_multiple_of(r.page_size)
                || r.paddr.checked_add(r.size).is_none()
            {
                return Err(Error::BadRecord(Table::Regions, i as u32));
            }
        }
        for i in 0..self.map_count() {
            let m = self.map(i);
            let ok = (m.region as usize) < self.region_count() && {
                let r = self.region(m.region as usize);
                m.vaddr.is_multiple_of(r.page_size)
                    && m.vaddr.checked_add(r.size).is_some_and(|e| e <= layout::USER_TOP)
                    && m.perms.is_valid()
            };
            if !ok {
                return Err(Error::BadRecord(Table::Maps, i as u32));
            }
        }
        for i in 0..self.irq_count() {
            if self.irq(i).channel_id >= CHANNEL_IDS {
                return Err(Error::BadRecord(Table::Irqs, i as u32));
            }
        }
        for i in 0..self.channel_count() {
            let c = self.channel(i);
            let ok = c.ends.iter().all(|e| (e.pd as usize) < n_pds && e.id < CHANNEL_IDS)
                && c.ends[0].pd != c.ends[1].pd
                && !(c.ends[0].pp && c.ends[1].pp);
            if !ok {
                return Err(Error::BadRecord(Table::Channels, i as u32));
            }
        }
        Ok(())
    }

    /// The number of bytes the blob occupies.
    pub fn total_size(&self) -> u64 {
        self.header.total_size
    }

    /// The first physical address after the blob and every region the tool placed: memory from
    /// here to the end of RAM is free for the kernel.
    pub fn reserved_end_paddr(&self) -> u64 {
        self.header.reserved_end_paddr
    }

    fn record(&self, table: Table, size: usize, index: usize) -> &'a [u8] {
        let t = self.header.tables[table as usize];
        assert!(index < t.count as usize, "boot info index out of range");
        let at = t.offset as usize + index * size;
        &self.blob[at..at + size]
    }

    fn count(&self, table: Table) -> usize {
        self.header.tables[table as usize].count as usize
    }

    /// Number of protection domains.
    pub fn pd_count(&self) -> usize {
        self.count(Table::ProtectionDomains)
    }
    /// Protection domain `i` (panics if `i >= pd_count()`).
    pub fn pd(&self, i: usize) -> ProtectionDomain {
        ProtectionDomain::decode(self.record(Table::ProtectionDomains, ProtectionDomain::SIZE, i))
    }
    /// Number of ELF segments over all PDs.
    pub fn segment_count(&self) -> usize {
        self.count(Table::Segments)
    }
    /// Segment `i`.
    pub fn segment(&self, i: usize) -> Segment {
        Segment::decode(self.record(Table::Segments, Segment::SIZE, i))
    }
    /// The file bytes of a segment (page-aligned inside the blob; the kernel may map them in place).
    pub fn segment_data(&self, s: &Segment) -> &'a [u8] {
        &self.blob[s.data_offset as usize..(s.data_offset + s.file_size) as usize]
    }
    /// Number of memory regions.
    pub fn region_count(&self) -> usize {
        self.count(Table::Regions)
    }
    /// Memory region `i`.
    pub fn region(&self, i: usize) -> Region {
        Region::decode(self.record(Table::Regions, Region::SIZE, i))
    }
    /// Number of maps over all PDs.
    pub fn map_count(&self) -> usize {
        self.count(Table::Maps)
    }
    /// Map `i`.
    pub fn map(&self, i: usize) -> Map {
        Map::decode(self.record(Table::Maps, Map::SIZE, i))
    }
    /// Number of IRQs over all PDs.
    pub fn irq_count(&self) -> usize {
        self.count(Table::Irqs)
    }
    /// IRQ `i`.
    pub fn irq(&self, i: usize) -> Irq {
        Irq::decode(self.record(Table::Irqs, Irq::SIZE, i))
    }
    /// Number of channels.
    pub fn channel_count(&self) -> usize {
        self.count(Table::Channels)
    }
    /// Channel `i`.
    pub fn channel(&self, i: usize) -> Channel {
        Channel::decode(self.record(Table::Channels, Channel::SIZE, i))
    }
    /// A string of the string table (PD names); `None` if out of range or not UTF-8.
    pub fn string(&self, s: StrRef) -> Option<&'a str> {
        let t = self.header.tables[Table::Strings as usize];
        let end = s.offset.checked_add(s.len)?;
        if end > t.count {
            return None;
        }
        let start = (t.offset + s.offset) as usize;
        core::str::from_utf8(&self.blob[start..start + s.len as usize]).ok()
    }
    /// The name of PD `i`.
    pub fn pd_name(&self, i: usize) -> &'a str {
        // Validated in `parse`.
        self.string(self.pd(i).name).unwrap_or("?")
    }
    /// The segments of a PD, as indices into the segment table.
    pub fn pd_segments(&self, pd: &ProtectionDomain) -> core::ops::Range<usize> {
        pd.segments.as_range()
    }
    /// The maps of a PD, as indices into the map table.
    pub fn pd_maps(&self, pd: &ProtectionDomain) -> core::ops::Range<usize> {
        pd.maps.as_range()
    }
    /// The IRQs of a PD, as indices into the IRQ table.
    pub fn pd_irqs(&self, pd: &ProtectionDomain) -> core::ops::Range<usize> {
        pd.irqs.as_range()
    }
}

#[cfg(test)]
mod tests;

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
//! header (HEADER_SIZE bytes) | tables (8-byte aligned) | strings | [extension] | pad to page | segment data (page aligned)
//! ```
//! Every table is an array of fixed-size records. Everything is validated in [`BootInfo::parse`]:
//! after it succeeds, no accessor can index out of bounds or return an inconsistent record.
//!
//! Header (HEADER_SIZE = 96 bytes):
//! ```text
//!  0  magic "EDGEBOOT"          8  u32 VERSION            12 u32 HEADER_SIZE
//! 16  u64 total_size           24  u64 reserved_end_paddr
//! 32  7 x (u32 offset, u32 count): PDs, segments, regions, maps, IRQs, channels, strings (bytes)
//! 88  u32 extension offset (0: none)                     92 u32 flags (FLAG_*)
//! ```
//!
//! ## The extension block (featherweight processes)
//!
//! Templates and what goes with them live in an optional second table directory, found through
//! the header word at byte 88, which blobs without templates leave 0 (so their bytes are exactly
//! what they were before the extension existed, and the format VERSION stays 1). A parser that
//! does not know the extension ignores it and still sees a complete static system: template
//! segments sit in the shared segment table but no PD's range names them, and channel arrays are
//! not in the channel table. The extension block, 8-byte aligned inside the blob:
//! ```text
//!  0  magic "EDGEFWP\0"        8  u32 EXT_VERSION        12 u32 EXT_HEADER_SIZE (64)
//! 16  6 x (u32 offset, u32 count): templates, instance regions, template maps,
//!     channel arrays, instance windows, fork grants
//! ```
//! Offsets are from the start of the blob, like the header's. Rules checked by
//! [`BootInfo::parse`] beyond bounds and indices: every template has exactly one fork grant,
//! handles are unique per PD, template maps of instance regions and windows name regions of their
//! own template, and a window's reach `vaddr + stride * max_instances` stays in the user address
//! space.
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
/// The eight bytes the extension block starts with.
pub const EXT_MAGIC: [u8; 8] = *b"EDGEFWP\0";
/// Version of the extension block; a parser refuses any other (the blob's VERSION is unchanged).
pub const EXT_VERSION: u32 = 1;
/// Size of the extension block's own header.
pub const EXT_HEADER_SIZE: usize = 64;
/// Byte offset, in the header, of the extension block's offset.
pub const EXT_OFFSET_FIELD: usize = 88;
/// Most live instances a fork grant may allow.
pub const MAX_INSTANCES: u32 = 1 << 16;
/// Byte offset, in the header, of the system flags word.
pub const FLAGS_FIELD: usize = 92;
/// System flag: the image is a test image. Root PDs may end the run with an exit status
/// (`DEBUG_SHUTDOWN`), and the kernel leaves QEMU through semihosting so the status becomes
/// QEMU's exit code (the runner must start QEMU with semihosting enabled). Without it
/// `DEBUG_SHUTDOWN` is refused: no PD of a production image can power the node off.
pub const FLAG_DEBUG_EXIT: u32 = 1;
/// Every flag this format defines; a blob with any other bit set is refused.
pub const KNOWN_FLAGS: u32 = FLAG_DEBUG_EXIT;
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
    /// The extension block was written for another extension version.
    BadExtensionVersion(u32),
    /// The header's flags word has a bit this format does not define.
    BadFlags(u32),
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
    /// The extension block's own header.
    Extension,
    Templates,
    InstanceRegions,
    TemplateMaps,
    ChannelArrays,
    InstanceWindows,
    ForkGrants,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated => write!(f, "boot blob is truncated"),
            Error::BadMagic => write!(f, "boot blob has no EDGEBOOT magic"),
            Error::BadVersion(v) => write!(f, "boot blob version {v}, expected {VERSION}"),
            Error::BadTable(t) => write!(f, "boot blob table {t:?} is out of bounds"),
            Error::BadRecord(t, i) => write!(f, "boot blob record {i} of table {t:?} is invalid"),
            Error::BadExtensionVersion(v) => write!(f, "boot blob extension version {v}, expected {EXT_VERSION}"),
            Error::BadFlags(v) => write!(f, "boot blob flags {v:#x} has undefined bits"),
        }
    }
}

/// Where a table sits in the blob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TableRef {
    pub offset: u32,
    pub count: u32,
}

/// The fixed header. `tables` are in [`Table`] order; `ext_tables` are the extension's (all
/// empty when the blob has no extension block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub total_size: u64,
    pub reserved_end_paddr: u64,
    pub tables: [TableRef; 7],
    pub ext_tables: [TableRef; 6],
    pub flags: u32,
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

const EXT_TABLES: [(Table, usize); 6] = [
    (Table::Templates, Template::SIZE),
    (Table::InstanceRegions, InstanceRegion::SIZE),
    (Table::TemplateMaps, TemplateMap::SIZE),
    (Table::ChannelArrays, ChannelArray::SIZE),
    (Table::InstanceWindows, InstanceWindow::SIZE),
    (Table::ForkGrants, ForkGrant::SIZE),
];

/// Reads a table directory entry at `at` and checks it lies inside `blob` after the header.
fn table_ref(blob: &[u8], at: usize, table: Table, size: usize) -> Result<TableRef, Error> {
    let t = TableRef { offset: read_u32(blob, at), count: read_u32(blob, at + 4) };
    let end = (t.count as u64) * (size as u64) + t.offset as u64;
    let aligned = size == 1 || t.offset.is_multiple_of(8);
    if end > blob.len() as u64 || (t.offset as usize) < HEADER_SIZE || !aligned {
        return Err(Error::BadTable(table));
    }
    Ok(t)
}

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
        let mut header = Header {
            total_size,
            reserved_end_paddr: read_u64(blob, 24),
            tables: [TableRef::default(); 7],
            ext_tables: [TableRef::default(); 6],
            flags: read_u32(blob, FLAGS_FIELD),
        };
        if header.flags & !KNOWN_FLAGS != 0 {
            return Err(Error::BadFlags(header.flags));
        }
        for (i, (table, size)) in TABLES.iter().enumerate() {
            header.tables[i] = table_ref(blob, 32 + 8 * i, *table, *size)?;
        }
        let ext = read_u32(blob, EXT_OFFSET_FIELD) as usize;
        if ext != 0 {
            if ext < HEADER_SIZE || !ext.is_multiple_of(8) || ext + EXT_HEADER_SIZE > blob.len() {
                return Err(Error::BadTable(Table::Extension));
            }
            if blob[ext..ext + 8] != EXT_MAGIC || read_u32(blob, ext + 12) as usize != EXT_HEADER_SIZE {
                return Err(Error::BadTable(Table::Extension));
            }
            let version = read_u32(blob, ext + 8);
            if version != EXT_VERSION {
                return Err(Error::BadExtensionVersion(version));
            }
            for (i, (table, size)) in EXT_TABLES.iter().enumerate() {
                header.ext_tables[i] = table_ref(blob, ext + 16 + 8 * i, *table, *size)?;
            }
        }
        let info = BootInfo { blob, header };
        info.validate()?;
        info.validate_extension()?;
        Ok(info)
    }

    /// The extension's rules (see the module documentation). Runs after [`Self::validate`], so
    /// the static tables it refers to are sound.
    fn validate_extension(&self) -> Result<(), Error> {
        let in_range = |r: Range, n: usize| (r.first as u64 + r.count as u64) <= n as u64;
        let fits = |vaddr: u64, size: u64| vaddr.checked_add(size).is_some_and(|e| e <= layout::USER_TOP);
        for i in 0..self.instance_region_count() {
            let r = self.instance_region(i);
            if !(r.page_size == layout::PAGE_SIZE || r.page_size == layout::LARGE_PAGE_SIZE)
                || r.size == 0
                || !r.size.is_multiple_of(r.page_size)
            {
                return Err(Error::BadRecord(Table::InstanceRegions, i as u32));
            }
        }
        for i in 0..self.template_map_count() {
            let m = self.template_map(i);
            let (size, page) = match m.region {
                TemplateRegion::Static(r) if (r as usize) < self.region_count() => {
                    let r = self.region(r as usize);
                    (r.size, r.page_size)
                }
                TemplateRegion::Instance(r) if (r as usize) < self.instance_region_count() => {
                    let r = self.instance_region(r as usize);
                    (r.size, r.page_size)
                }
                _ => return Err(Error::BadRecord(Table::TemplateMaps, i as u32)),
            };
            if !m.vaddr.is_multiple_of(page) || !fits(m.vaddr, size) || !m.perms.is_valid() {
                return Err(Error::BadRecord(Table::TemplateMaps, i as u32));
            }
        }
        let n_templates = self.template_count();
        for i in 0..n_templates {
            let t = self.template(i);
            let bad = || Error::BadRecord(Table::Templates, i as u32);
            self.string(t.name).ok_or_else(bad)?;
            if !in_range(t.segments, self.segment_count())
                || !in_range(t.maps, self.template_map_count())
                || !in_range(t.instance_regions, self.instance_region_count())
                || t.priority > 254
                || t.budget_us == 0
                || t.budget_us > t.period_us
                || !t.stack_size.is_multiple_of(layout::PAGE_SIZE)
                || t.stack_size == 0
                || !t.stack_top.is_multiple_of(layout::PAGE_SIZE)
                || !t.ipc_buffer.is_multiple_of(layout::PAGE_SIZE)
            {
                return Err(bad());
            }
            let own = t.instance_regions.as_range();
            for m in t.maps.as_range() {
                if let TemplateRegion::Instance(r) = self.template_map(m).region {
                    if !own.contains(&(r as usize)) {
                        return Err(bad());
                    }
                }
            }
        }
        let n_pds = self.pd_count();
        let n_grants = self.fork_grant_count();
        for i in 0..n_grants {
            let g = self.fork_grant(i);
            let clash = (0..i).map(|j| self.fork_grant(j)).any(|e| e.template == g.template || (e.pd == g.pd && e.handle == g.handle));
            if g.pd as usize >= n_pds
                || g.template as usize >= n_templates
                || g.handle >= CHANNEL_IDS
                || g.max_instances == 0
                || g.max_instances > MAX_INSTANCES
                || g.memory == 0
                || !g.memory.is_multiple_of(layout::PAGE_SIZE)
                || clash
            {
                return Err(Error::BadRecord(Table::ForkGrants, i as u32));
            }
        }
        // Grants name distinct templates; as many as there are templates means one each.
        if n_grants != n_templates {
            let orphan = (0..n_templates).find(|&t| self.fork_grant_of(t).is_none()).unwrap_or(0);
            return Err(Error::BadRecord(Table::Templates, orphan as u32));
        }
        for i in 0..self.channel_array_count() {
            let a = self.channel_array(i);
            if a.pd.pd as usize >= n_pds
                || a.pd.id >= CHANNEL_IDS
                || a.template as usize >= n_templates
                || a.instance_id >= CHANNEL_IDS
                || (a.pd.pp && a.instance_pp)
            {
                return Err(Error::BadRecord(Table::ChannelArrays, i as u32));
            }
        }
        for i in 0..self.instance_window_count() {
            let w = self.instance_window(i);
            let ok = (w.pd as usize) < n_pds && (w.template as usize) < n_templates && {
                let t = self.template(w.template as usize);
                let grant = self.fork_grant_of(w.template as usize);
                t.instance_regions.as_range().contains(&(w.instance_region as usize))
                    && grant.is_some_and(|g| {
                        let r = self.instance_region(w.instance_region as usize);
                        w.stride >= r.size
                            && w.stride.is_multiple_of(r.page_size)
                            && w.vaddr.is_multiple_of(r.page_size)
                            && w.stride.checked_mul(g.max_instances as u64).is_some_and(|reach| fits(w.vaddr, reach))
                    })
                    && w.perms.is_valid()
            };
            if !ok {
                return Err(Error::BadRecord(Table::InstanceWindows, i as u32));
            }
        }
        Ok(())
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

    /// The system flags (`FLAG_*`).
    pub fn flags(&self) -> u32 {
        self.header.flags
    }

    fn table(&self, table: Table) -> TableRef {
        match table as usize {
            t if t < 7 => self.header.tables[t],
            t if t > Table::Extension as usize => self.header.ext_tables[t - Table::Extension as usize - 1],
            _ => TableRef::default(),
        }
    }

    fn record(&self, table: Table, size: usize, index: usize) -> &'a [u8] {
        let t = self.table(table);
        assert!(index < t.count as usize, "boot info index out of range");
        let at = t.offset as usize + index * size;
        &self.blob[at..at + size]
    }

    fn count(&self, table: Table) -> usize {
        self.table(table).count as usize
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
        let t = self.table(Table::Strings);
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

    // ----- the extension: featherweight processes ---------------------------------------------

    /// Number of templates (0 for a blob without the extension block).
    pub fn template_count(&self) -> usize {
        self.count(Table::Templates)
    }
    /// Template `i`.
    pub fn template(&self, i: usize) -> Template {
        Template::decode(self.record(Table::Templates, Template::SIZE, i))
    }
    /// The name of template `i`.
    pub fn template_name(&self, i: usize) -> &'a str {
        // Validated in `parse`.
        self.string(self.template(i).name).unwrap_or("?")
    }
    /// The segments of a template, as indices into the (shared) segment table.
    pub fn template_segments(&self, t: &Template) -> core::ops::Range<usize> {
        t.segments.as_range()
    }
    /// The maps of a template, as indices into the template-map table.
    pub fn template_maps(&self, t: &Template) -> core::ops::Range<usize> {
        t.maps.as_range()
    }
    /// The instance regions of a template, as indices into the instance-region table.
    pub fn template_instance_regions(&self, t: &Template) -> core::ops::Range<usize> {
        t.instance_regions.as_range()
    }
    /// Number of instance regions over all templates.
    pub fn instance_region_count(&self) -> usize {
        self.count(Table::InstanceRegions)
    }
    /// Instance region `i`.
    pub fn instance_region(&self, i: usize) -> InstanceRegion {
        InstanceRegion::decode(self.record(Table::InstanceRegions, InstanceRegion::SIZE, i))
    }
    /// Number of template maps over all templates.
    pub fn template_map_count(&self) -> usize {
        self.count(Table::TemplateMaps)
    }
    /// Template map `i`.
    pub fn template_map(&self, i: usize) -> TemplateMap {
        TemplateMap::decode(self.record(Table::TemplateMaps, TemplateMap::SIZE, i))
    }
    /// Number of channel arrays.
    pub fn channel_array_count(&self) -> usize {
        self.count(Table::ChannelArrays)
    }
    /// Channel array `i`.
    pub fn channel_array(&self, i: usize) -> ChannelArray {
        ChannelArray::decode(self.record(Table::ChannelArrays, ChannelArray::SIZE, i))
    }
    /// Number of instance windows.
    pub fn instance_window_count(&self) -> usize {
        self.count(Table::InstanceWindows)
    }
    /// Instance window `i`.
    pub fn instance_window(&self, i: usize) -> InstanceWindow {
        InstanceWindow::decode(self.record(Table::InstanceWindows, InstanceWindow::SIZE, i))
    }
    /// Number of fork grants (one per template in a valid blob).
    pub fn fork_grant_count(&self) -> usize {
        self.count(Table::ForkGrants)
    }
    /// Fork grant `i`.
    pub fn fork_grant(&self, i: usize) -> ForkGrant {
        ForkGrant::decode(self.record(Table::ForkGrants, ForkGrant::SIZE, i))
    }
    /// The fork grant of template `template` (a valid blob has exactly one).
    pub fn fork_grant_of(&self, template: usize) -> Option<ForkGrant> {
        (0..self.fork_grant_count()).map(|i| self.fork_grant(i)).find(|g| g.template as usize == template)
    }
}

#[cfg(test)]
mod tests;

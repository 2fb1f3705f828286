//! The encoder, used by the host image builder.

use alloc::vec::Vec;

use crate::layout::{align_up, PAGE_SIZE};
use crate::records::{Record, Writer};
use crate::{
    Channel, ChannelArray, ForkGrant, InstanceRegion, InstanceWindow, Irq, Map, ProtectionDomain, Region, Segment, StrRef,
    Template, TemplateMap, EXT_HEADER_SIZE, EXT_MAGIC, EXT_OFFSET_FIELD, EXT_VERSION, FLAGS_FIELD, HEADER_SIZE, MAGIC, VERSION,
};

/// Collects records, then writes a blob with [`Builder::finish`].
///
/// Segment data is added with [`Builder::add_segment_data`], which returns an offset RELATIVE to
/// the data area; [`Builder::finish`] turns it into the absolute blob offset stored in the record.
/// Record fields that refer to other tables (ranges, region indices) are the caller's business and
/// are checked when the blob is parsed.
#[derive(Default, Debug)]
pub struct Builder {
    pub pds: Vec<ProtectionDomain>,
    pub segments: Vec<Segment>,
    pub regions: Vec<Region>,
    pub maps: Vec<Map>,
    pub irqs: Vec<Irq>,
    pub channels: Vec<Channel>,
    /// Featherweight processes: written in the extension block, which is left out (header word
    /// at [`EXT_OFFSET_FIELD`] = 0) when all of these are empty. Template segments go into
    /// `segments` like PDs'.
    pub templates: Vec<Template>,
    pub instance_regions: Vec<InstanceRegion>,
    pub template_maps: Vec<TemplateMap>,
    pub channel_arrays: Vec<ChannelArray>,
    pub instance_windows: Vec<InstanceWindow>,
    pub fork_grants: Vec<ForkGrant>,
    /// The header's flags word (`FLAG_*`).
    pub flags: u32,
    strings: Vec<u8>,
    data: Vec<u8>,
}

/// Where the tables land: the seven of the header, the extension block and its six tables (if
/// any), and the start of the data area.
struct Layout {
    tables: [(usize, usize); 7],
    ext: Option<(usize, [(usize, usize); 6])>,
    data_base: usize,
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a string to the string table.
    pub fn add_string(&mut self, s: &str) -> StrRef {
        let r = StrRef { offset: self.strings.len() as u32, len: s.len() as u32 };
        self.strings.extend_from_slice(s.as_bytes());
        r
    }

    /// Appends segment file bytes, page aligned and zero padded; returns the offset relative to
    /// the data area to put in [`Segment::data_offset`].
    pub fn add_segment_data(&mut self, bytes: &[u8]) -> u64 {
        let at = self.data.len() as u64;
        self.data.extend_from_slice(bytes);
        self.data.resize(align_up(self.data.len() as u64, PAGE_SIZE) as usize, 0);
        at
    }

    fn has_extension(&self) -> bool {
        !(self.templates.is_empty()
            && self.instance_regions.is_empty()
            && self.template_maps.is_empty()
            && self.channel_arrays.is_empty()
            && self.instance_windows.is_empty()
            && self.fork_grants.is_empty())
    }

    fn layout(&self) -> Layout {
        fn place<const N: usize>(at: &mut usize, sizes: [(usize, usize); N]) -> [(usize, usize); N] {
            let mut out = [(0, 0); N];
            for (i, (count, size)) in sizes.iter().enumerate() {
                *at = align_up(*at as u64, 8) as usize;
                out[i] = (*at, *count);
                *at += count * size;
            }
            out
        }
        let mut at = HEADER_SIZE;
        let tables = place(
            &mut at,
            [
                (self.pds.len(), ProtectionDomain::SIZE),
                (self.segments.len(), Segment::SIZE),
                (self.regions.len(), Region::SIZE),
                (self.maps.len(), Map::SIZE),
                (self.irqs.len(), Irq::SIZE),
                (self.channels.len(), Channel::SIZE),
                (self.strings.len(), 1),
            ],
        );
        let ext = self.has_extension().then(|| {
            at = align_up(at as u64, 8) as usize;
            let ext_at = at;
            at += EXT_HEADER_SIZE;
            let ext_tables = place(
                &mut at,
                [
                    (self.templates.len(), Template::SIZE),
                    (self.instance_regions.len(), InstanceRegion::SIZE),
                    (self.template_maps.len(), TemplateMap::SIZE),
                    (self.channel_arrays.len(), ChannelArray::SIZE),
                    (self.instance_windows.len(), InstanceWindow::SIZE),
                    (self.fork_grants.len(), ForkGrant::SIZE),
                ],
            );
            (ext_at, ext_tables)
        });
        Layout { tables, ext, data_base: align_up(at as u64, PAGE_SIZE) as usize }
    }

    /// The size [`Builder::finish`] will produce, so that memory placed after the blob can be
    /// laid out (and its addresses recorded) before finishing.
    pub fn encoded_len(&self) -> usize {
        self.layout().data_base + self.data.len()
    }

    /// Writes the blob. `reserved_end_paddr` is the first physical byte the kernel may allocate.
    pub fn finish(&self, reserved_end_paddr: u64) -> Vec<u8> {
        let Layout { tables, ext, data_base } = self.layout();
        let total = data_base + self.data.len();
        let mut blob = alloc::vec![0u8; total];
        blob[..8].copy_from_slice(&MAGIC);
        let mut w = Writer::new(&mut blob[8..HEADER_SIZE]);
        w.u32(VERSION).u32(HEADER_SIZE as u32).u64(total as u64).u64(reserved_end_paddr);
        for (offset, count) in tables {
            w.u32(offset as u32).u32(count as u32);
        }
        // The header's last two words: the extension block's offset (0: none) and the flags.
        const _: () = assert!(32 + 8 * 7 == EXT_OFFSET_FIELD && EXT_OFFSET_FIELD + 4 == FLAGS_FIELD);
        w.u32(ext.map_or(0, |(at, _)| at as u32)).u32(self.flags);
        fn put<R: Record>(blob: &mut [u8], at: usize, records: &[R]) {
            for (i, r) in records.iter().enumerate() {
                r.encode(&mut blob[at + i * R::SIZE..at + (i + 1) * R::SIZE]);
            }
        }
        put(&mut blob, tables[0].0, &self.pds);
        let segments: Vec<Segment> = self
            .segments
            .iter()
            .map(|s| Segment { data_offset: s.data_offset + data_base as u64, ..*s })
            .collect();
        put(&mut blob, tables[1].0, &segments);
        put(&mut blob, tables[2].0, &self.regions);
        put(&mut blob, tables[3].0, &self.maps);
        put(&mut blob, tables[4].0, &self.irqs);
        put(&mut blob, tables[5].0, &self.channels);
        blob[tables[6].0..tables[6].0 + self.strings.len()].copy_from_slice(&self.strings);
        if let Some((at, ext_tables)) = ext {
            blob[at..at + 8].copy_from_slice(&EXT_MAGIC);
            let mut w = Writer::new(&mut blob[at + 8..at + EXT_HEADER_SIZE]);
            w.u32(EXT_VERSION).u32(EXT_HEADER_SIZE as u32);
            for (offset, count) in ext_tables {
                w.u32(offset as u32).u32(count as u32);
            }
            put(&mut blob, ext_tables[0].0, &self.templates);
            put(&mut blob, ext_tables[1].0, &self.instance_regions);
            put(&mut blob, ext_tables[2].0, &self.template_maps);
            put(&mut blob, ext_tables[3].0, &self.channel_arrays);
            put(&mut blob, ext_tables[4].0, &self.instance_windows);
            put(&mut blob, ext_tables[5].0, &self.fork_grants);
        }
        blob[data_base..].copy_from_slice(&self.data);
        blob
    }
}

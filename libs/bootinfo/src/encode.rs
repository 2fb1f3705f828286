//! The encoder, used by the host image builder.

use alloc::vec::Vec;

use crate::layout::{align_up, PAGE_SIZE};
use crate::records::{Record, Writer};
use crate::{Channel, Irq, Map, ProtectionDomain, Region, Segment, StrRef, HEADER_SIZE, MAGIC, VERSION};

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
    strings: Vec<u8>,
    data: Vec<u8>,
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

    fn tables_layout(&self) -> ([(usize, usize); 7], usize) {
        let sizes = [
            (self.pds.len(), ProtectionDomain::SIZE),
            (self.segments.len(), Segment::SIZE),
            (self.regions.len(), Region::SIZE),
            (self.maps.len(), Map::SIZE),
            (self.irqs.len(), Irq::SIZE),
            (self.channels.len(), Channel::SIZE),
            (self.strings.len(), 1),
        ];
        let mut at = HEADER_SIZE;
        let mut out = [(0, 0); 7];
        for (i, (count, size)) in sizes.iter().enumerate() {
            at = align_up(at as u64, 8) as usize;
            out[i] = (at, *count);
            at += count * size;
        }
        (out, align_up(at as u64, PAGE_SIZE) as usize)
    }

    /// The size [`Builder::finish`] will produce, so that memory placed after the blob can be
    /// laid out (and its addresses recorded) before finishing.
    pub fn encoded_len(&self) -> usize {
        self.tables_layout().1 + self.data.len()
    }

    /// Writes the blob. `reserved_end_paddr` is the first physical byte the kernel may allocate.
    pub fn finish(&self, reserved_end_paddr: u64) -> Vec<u8> {
        let (tables, data_base) = self.tables_layout();
        let total = data_base + self.data.len();
        let mut blob = alloc::vec![0u8; total];
        blob[..8].copy_from_slice(&MAGIC);
        let mut w = Writer::new(&mut blob[8..HEADER_SIZE]);
        w.u32(VERSION).u32(HEADER_SIZE as u32).u64(total as u64).u64(reserved_end_paddr);
        for (offset, count) in tables {
            w.u32(offset as u32).u32(count as u32);
        }
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
        blob[data_base..].copy_from_slice(&self.data);
        blob
    }
}

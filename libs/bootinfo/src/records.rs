//! The fixed-size records of the boot blob, with their byte encodings.
// Encoding is only compiled into the host tool (feature `alloc`); the kernel only decodes.
#![cfg_attr(not(any(test, feature = "alloc")), allow(dead_code))]

use crate::{read_u32, read_u64};

/// Access rights of a segment or a map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Perms {
    const R: u32 = 1;
    const W: u32 = 2;
    const X: u32 = 4;

    /// Bits as stored: R=1, W=2, X=4.
    pub fn bits(self) -> u32 {
        ((self.read as u32) * Self::R) | ((self.write as u32) * Self::W) | ((self.execute as u32) * Self::X)
    }
    /// The inverse of [`Perms::bits`]; unknown bits make the perms invalid (see [`Perms::is_valid`]).
    pub fn from_bits(bits: u32) -> Self {
        Perms { read: bits & Self::R != 0, write: bits & Self::W != 0, execute: bits & Self::X != 0 }
    }
    /// Something must be granted, write needs read, and nothing is both writable and executable
    /// (W^X).
    pub fn is_valid(self) -> bool {
        if self.write { self.read && !self.execute } else { self.read || self.execute }
    }
}

/// A string in the string table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrRef {
    pub offset: u32,
    pub len: u32,
}

/// A run of records in another table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub first: u32,
    pub count: u32,
}

impl Range {
    /// As a `Range<usize>` of table indices.
    pub fn as_range(self) -> core::ops::Range<usize> {
        self.first as usize..(self.first as usize + self.count as usize)
    }
}

/// One protection domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtectionDomain {
    pub name: StrRef,
    /// 0..=254, higher runs first.
    pub priority: u8,
    /// Runs only inside protected calls (after its `init`).
    pub passive: bool,
    /// May ask the kernel to make SMC calls.
    pub smc: bool,
    pub budget_us: u64,
    pub period_us: u64,
    /// Index of the parent PD, or [`crate::NO_PD`].
    pub parent: u32,
    /// This PD's id as its parent's child (meaningful only with a parent).
    pub child_id: u32,
    pub cpu: u32,
    /// Entry point (user virtual address).
    pub entry: u64,
    /// Highest address of the stack (exclusive); the stack grows down from here.
    pub stack_top: u64,
    pub stack_size: u64,
    /// Virtual address of the PD's IPC buffer page (`__sel4_ipc_buffer_obj`), 0 if it has none.
    pub ipc_buffer: u64,
    pub segments: Range,
    pub maps: Range,
    pub irqs: Range,
}

/// A loadable ELF segment of a PD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Page-aligned start.
    pub vaddr: u64,
    /// Bytes of address space (a multiple of the page size is not required; round up).
    pub mem_size: u64,
    /// Bytes present in the blob; the rest up to `mem_size` is zero.
    pub file_size: u64,
    /// Where the file bytes sit inside the blob (page aligned; the pad to the page end is zero).
    pub data_offset: u64,
    pub perms: Perms,
}

/// A memory region, placed by the tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub paddr: u64,
    pub size: u64,
    /// 4 KiB or 2 MiB.
    pub page_size: u64,
    /// Region flags, see the `REGION_*` constants.
    pub flags: u32,
}

/// The kernel must zero the region at boot (RAM that the tool allocated and did not prefill).
pub const REGION_ZERO: u32 = 1;
/// The region is at a fixed physical address given in the description (device or DMA memory).
pub const REGION_FIXED: u32 = 2;

/// A memory region mapped into a PD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Map {
    /// Index into the region table.
    pub region: u32,
    pub vaddr: u64,
    pub perms: Perms,
    /// False for device memory.
    pub cached: bool,
}

/// Level or edge triggered interrupt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trigger {
    #[default]
    Level,
    Edge,
}

/// A hardware interrupt delivered to a PD as a notification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Irq {
    /// Hardware interrupt number (GIC INTID).
    pub irq: u32,
    /// The channel id the PD sees it on.
    pub channel_id: u32,
    pub trigger: Trigger,
}

/// One end of a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelEnd {
    pub pd: u32,
    pub id: u32,
    /// This end may make protected calls to the other end.
    pub pp: bool,
    /// This end may notify the other end.
    pub notify: bool,
}

/// A channel between two PDs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    pub ends: [ChannelEnd; 2],
}

/// Encoding of one record kind.
pub(crate) trait Record: Sized {
    const SIZE: usize;
    fn decode(b: &[u8]) -> Self;
    fn encode(&self, out: &mut [u8]);
}

/// Writes little-endian fields into a record buffer in order.
pub(crate) struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut [u8]) -> Self {
        Writer { out, at: 0 }
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.out[self.at..self.at + 4].copy_from_slice(&v.to_le_bytes());
        self.at += 4;
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.out[self.at..self.at + 8].copy_from_slice(&v.to_le_bytes());
        self.at += 8;
        self
    }
    /// A [`Range`]: first, then count.
    pub(crate) fn range(&mut self, v: Range) -> &mut Self {
        self.u32(v.first).u32(v.count)
    }
}

/// Reads little-endian fields from a record in order.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> u32 {
        let v = read_u32(self.b, self.at);
        self.at += 4;
        v
    }
    fn u64(&mut self) -> u64 {
        let v = read_u64(self.b, self.at);
        self.at += 8;
        v
    }
    fn range(&mut self) -> Range {
        Range { first: self.u32(), count: self.u32() }
    }
}

const PD_PASSIVE: u32 = 1;
const PD_SMC: u32 = 2;

impl Record for ProtectionDomain {
    const SIZE: usize = 112;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let name = StrRef { offset: r.u32(), len: r.u32() };
        let priority = r.u32();
        let flags = r.u32();
        ProtectionDomain {
            name,
            // Out-of-range priorities are refused by validation; clamp so decoding is total.
            priority: priority.min(255) as u8,
            passive: flags & PD_PASSIVE != 0,
            smc: flags & PD_SMC != 0,
            budget_us: r.u64(),
            period_us: r.u64(),
            parent: r.u32(),
            child_id: r.u32(),
            cpu: r.u32(),
            entry: {
                r.u32(); // padding
                r.u64()
            },
            stack_top: r.u64(),
            stack_size: r.u64(),
            ipc_buffer: r.u64(),
            segments: r.range(),
            maps: r.range(),
            irqs: r.range(),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        let flags = ((self.passive as u32) * PD_PASSIVE) | ((self.smc as u32) * PD_SMC);
        Writer::new(out)
            .u32(self.name.offset)
            .u32(self.name.len)
            .u32(self.priority as u32)
            .u32(flags)
            .u64(self.budget_us)
            .u64(self.period_us)
            .u32(self.parent)
            .u32(self.child_id)
            .u32(self.cpu)
            .u32(0)
            .u64(self.entry)
            .u64(self.stack_top)
            .u64(self.stack_size)
            .u64(self.ipc_buffer)
            .range(self.segments)
            .range(self.maps)
            .range(self.irqs);
    }
}

impl Record for Segment {
    const SIZE: usize = 40;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        Segment {
            vaddr: r.u64(),
            mem_size: r.u64(),
            file_size: r.u64(),
            data_offset: r.u64(),
            perms: Perms::from_bits(r.u32()),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        Writer::new(out)
            .u64(self.vaddr)
            .u64(self.mem_size)
            .u64(self.file_size)
            .u64(self.data_offset)
            .u32(self.perms.bits())
            .u32(0);
    }
}

impl Record for Region {
    const SIZE: usize = 32;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        Region { paddr: r.u64(), size: r.u64(), page_size: r.u64(), flags: r.u32() }
    }
    fn encode(&self, out: &mut [u8]) {
        Writer::new(out).u64(self.paddr).u64(self.size).u64(self.page_size).u32(self.flags).u32(0);
    }
}

impl Record for Map {
    const SIZE: usize = 24;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let region = r.u32();
        let perms = Perms::from_bits(r.u32());
        let vaddr = r.u64();
        let cached = r.u32() != 0;
        Map { region, vaddr, perms, cached }
    }
    fn encode(&self, out: &mut [u8]) {
        Writer::new(out).u32(self.region).u32(self.perms.bits()).u64(self.vaddr).u32(self.cached as u32).u32(0);
    }
}

impl Record for Irq {
    const SIZE: usize = 16;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let irq = r.u32();
        let channel_id = r.u32();
        let trigger = if r.u32() == 1 { Trigger::Edge } else { Trigger::Level };
        Irq { irq, channel_id, trigger }
    }
    fn encode(&self, out: &mut [u8]) {
        let trigger = match self.trigger {
            Trigger::Level => 0,
            Trigger::Edge => 1,
        };
        Writer::new(out).u32(self.irq).u32(self.channel_id).u32(trigger).u32(0);
    }
}

const END_PP: u32 = 1;
const END_NOTIFY: u32 = 2;

impl Record for Channel {
    const SIZE: usize = 24;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let mut end = || {
            let pd = r.u32();
            let id = r.u32();
            let flags = r.u32();
            ChannelEnd { pd, id, pp: flags & END_PP != 0, notify: flags & END_NOTIFY != 0 }
        };
        let a = end();
        let b = end();
        Channel { ends: [a, b] }
    }
    fn encode(&self, out: &mut [u8]) {
        let mut w = Writer::new(out);
        for e in &self.ends {
            w.u32(e.pd).u32(e.id).u32(((e.pp as u32) * END_PP) | ((e.notify as u32) * END_NOTIFY));
        }
    }
}

// ----- featherweight processes (the extension block, see `crate::ext`) -------

/// A template: a program loaded like a PD's, whose instances are forked at run time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Template {
    pub name: StrRef,
    /// 0..=254: every instance's priority.
    pub priority: u8,
    /// Instances run only inside protected calls (after the template's `init`).
    pub passive: bool,
    pub budget_us: u64,
    pub period_us: u64,
    /// Entry point (user virtual address).
    pub entry: u64,
    /// Highest address of the stack (exclusive).
    pub stack_top: u64,
    pub stack_size: u64,
    /// Virtual address of the IPC buffer page, 0 if the program has none.
    pub ipc_buffer: u64,
    /// The template's ELF segments, in the (shared) segment table.
    pub segments: Range,
    /// Its maps, in the template-map table.
    pub maps: Range,
    /// Its instance regions, in the instance-region table.
    pub instance_regions: Range,
}

/// A region every instance of a template gets its own copy of (allocated zeroed at fork).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceRegion {
    pub size: u64,
    /// 4 KiB or 2 MiB.
    pub page_size: u64,
}

/// What a template map shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateRegion {
    /// A static memory region (index into the region table), shared by every instance.
    Static(u32),
    /// The instance's own copy of an instance region (index into the instance-region table,
    /// inside the template's own range).
    Instance(u32),
}

impl Default for TemplateRegion {
    fn default() -> Self {
        TemplateRegion::Instance(0)
    }
}

/// A map of every instance of a template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TemplateMap {
    pub region: TemplateRegion,
    pub vaddr: u64,
    pub perms: Perms,
    pub cached: bool,
}

/// A channel array: a channel between a static PD and every instance of a template. The PD names
/// all instances with `pd_id` (instance *i* with `(pd_id, i)`); every instance sees an ordinary
/// channel `instance_id`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelArray {
    /// The static end: PD index, its channel id, and its rights (`pp`: may call the instances).
    pub pd: ChannelEnd,
    /// Index into the template table.
    pub template: u32,
    /// The channel id every instance sees.
    pub instance_id: u32,
    /// Instances may call the PD.
    pub instance_pp: bool,
    /// Instances may notify the PD.
    pub instance_notify: bool,
}

/// An instance window: instance *i*'s copy of an instance region is mapped into a static PD at
/// `vaddr + i * stride` while instance *i* lives (*i* < the template's `max_instances`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceWindow {
    pub pd: u32,
    pub template: u32,
    /// Index into the instance-region table, inside the template's own range.
    pub instance_region: u32,
    pub vaddr: u64,
    pub stride: u64,
    pub perms: Perms,
    pub cached: bool,
}

/// The right of one PD to fork one template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkGrant {
    pub pd: u32,
    pub template: u32,
    /// The handle the PD names the template by in the fork call (0..CHANNEL_IDS, unique per PD).
    pub handle: u32,
    /// Most instances alive at once (1..=MAX_INSTANCES).
    pub max_instances: u32,
    /// Quota in bytes for all live instances' memory (page multiple).
    pub memory: u64,
}

impl Record for Template {
    const SIZE: usize = 96;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let name = StrRef { offset: r.u32(), len: r.u32() };
        let priority = r.u32();
        let flags = r.u32();
        Template {
            name,
            priority: priority.min(255) as u8,
            passive: flags & PD_PASSIVE != 0,
            budget_us: r.u64(),
            period_us: r.u64(),
            entry: r.u64(),
            stack_top: r.u64(),
            stack_size: r.u64(),
            ipc_buffer: r.u64(),
            segments: r.range(),
            maps: r.range(),
            instance_regions: r.range(),
        }
    }
    fn encode(&self, out: &mut [u8]) {
        Writer::new(out)
            .u32(self.name.offset)
            .u32(self.name.len)
            .u32(self.priority as u32)
            .u32((self.passive as u32) * PD_PASSIVE)
            .u64(self.budget_us)
            .u64(self.period_us)
            .u64(self.entry)
            .u64(self.stack_top)
            .u64(self.stack_size)
            .u64(self.ipc_buffer)
            .range(self.segments)
            .range(self.maps)
            .range(self.instance_regions);
    }
}

impl Record for InstanceRegion {
    const SIZE: usize = 16;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        InstanceRegion { size: r.u64(), page_size: r.u64() }
    }
    fn encode(&self, out: &mut [u8]) {
        Writer::new(out).u64(self.size).u64(self.page_size);
    }
}

const TMAP_CACHED: u32 = 1;
const TMAP_INSTANCE: u32 = 2;

impl Record for TemplateMap {
    const SIZE: usize = 24;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let index = r.u32();
        let perms = Perms::from_bits(r.u32());
        let vaddr = r.u64();
        let flags = r.u32();
        let region = if flags & TMAP_INSTANCE != 0 { TemplateRegion::Instance(index) } else { TemplateRegion::Static(index) };
        TemplateMap { region, vaddr, perms, cached: flags & TMAP_CACHED != 0 }
    }
    fn encode(&self, out: &mut [u8]) {
        let (index, kind) = match self.region {
            TemplateRegion::Static(i) => (i, 0),
            TemplateRegion::Instance(i) => (i, TMAP_INSTANCE),
        };
        Writer::new(out).u32(index).u32(self.perms.bits()).u64(self.vaddr).u32(kind | ((self.cached as u32) * TMAP_CACHED)).u32(0);
    }
}

impl Record for ChannelArray {
    const SIZE: usize = 24;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let pd = r.u32();
        let id = r.u32();
        let flags = r.u32();
        let template = r.u32();
        let instance_id = r.u32();
        let instance_flags = r.u32();
        ChannelArray {
            pd: ChannelEnd { pd, id, pp: flags & END_PP != 0, notify: flags & END_NOTIFY != 0 },
            template,
            instance_id,
            instance_pp: instance_flags & END_PP != 0,
            instance_notify: instance_flags & END_NOTIFY != 0,
        }
    }
    fn encode(&self, out: &mut [u8]) {
        let flags = |pp: bool, notify: bool| ((pp as u32) * END_PP) | ((notify as u32) * END_NOTIFY);
        Writer::new(out)
            .u32(self.pd.pd)
            .u32(self.pd.id)
            .u32(flags(self.pd.pp, self.pd.notify))
            .u32(self.template)
            .u32(self.instance_id)
            .u32(flags(self.instance_pp, self.instance_notify));
    }
}

impl Record for InstanceWindow {
    const SIZE: usize = 40;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        let pd = r.u32();
        let template = r.u32();
        let instance_region = r.u32();
        let perms = Perms::from_bits(r.u32());
        let vaddr = r.u64();
        let stride = r.u64();
        let cached = r.u32() != 0;
        InstanceWindow { pd, template, instance_region, vaddr, stride, perms, cached }
    }
    fn encode(&self, out: &mut [u8]) {
        Writer::new(out)
            .u32(self.pd)
            .u32(self.template)
            .u32(self.instance_region)
            .u32(self.perms.bits())
            .u64(self.vaddr)
            .u64(self.stride)
            .u32(self.cached as u32)
            .u32(0);
    }
}

impl Record for ForkGrant {
    const SIZE: usize = 24;
    fn decode(b: &[u8]) -> Self {
        let mut r = Reader { b, at: 0 };
        ForkGrant { pd: r.u32(), template: r.u32(), handle: r.u32(), max_instances: r.u32(), memory: r.u64() }
    }
    fn encode(&self, out: &mut [u8]) {
        Writer::new(out).u32(self.pd).u32(self.template).u32(self.handle).u32(self.max_instances).u64(self.memory);
    }
}

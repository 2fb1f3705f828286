//! The typed model of a system description.
//!
//! Every value is parsed (numbers, booleans, enumerations) and every default
//! is filled in, so consumers never look at XML text. Every element carries
//! its [`Pos`] and the positions of its attributes ([`AttrPositions`]), so the
//! image builder can report problems only it can see (a missing program
//! image, a map over a PD's ELF segments) at the right place.

use std::fmt;
use std::ops::Range;

/// The architecture a description is checked for. It decides which `irq`
/// forms are valid (ARM `irq=` versus x86 IOAPIC/MSI), whether `ioport`,
/// `io_address_space` and `prefill_bootinfo` may be used (x86-64 only) and
/// whether `smc="true"` is (AArch64 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// 64-bit ARM.
    Aarch64,
    /// 64-bit x86.
    X86_64,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::Aarch64 => "aarch64",
            Arch::X86_64 => "x86_64",
        })
    }
}

/// Where something is in the source text: 1-based line and character column
/// of its start, and its byte range. For an element the range covers `<` and
/// the tag name; for an attribute it covers `name="value"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Pos {
    /// The byte range, as [`crate::Diagnostic::span`] wants it.
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }
}

/// Positions of the attributes written on one element, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttrPositions(pub Vec<(String, Pos)>);

impl AttrPositions {
    /// Position of attribute `name`, if it was written.
    pub fn get(&self, name: &str) -> Option<Pos> {
        self.0.iter().find(|(n, _)| n == name).map(|&(_, pos)| pos)
    }

    /// Position of attribute `name`, or `element` when it was not written
    /// (a defaulted value is reported at its element).
    pub fn get_or(&self, name: &str, element: Pos) -> Pos {
        self.get(name).unwrap_or(element)
    }
}

/// A whole, validated description: the `<system>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemDescription {
    /// The architecture the description was checked for.
    pub arch: Arch,
    /// All PDs, nested children flattened: a child follows its parent (depth
    /// first, in source order) and links to it by index in
    /// [`ProtectionDomain::parent`].
    pub protection_domains: Vec<ProtectionDomain>,
    /// All memory regions, in source order.
    pub memory_regions: Vec<MemoryRegion>,
    /// All channels, in source order.
    pub channels: Vec<Channel>,
    /// The domain schedule, if `<domains>` is present.
    pub domains: Option<DomainSchedule>,
    /// IOMMU address spaces (x86-64), in source order.
    pub io_address_spaces: Vec<IoAddressSpace>,
    /// Templates of featherweight processes (EdgeOS extension), in source
    /// order. They do not count toward the 63-PD limit.
    pub templates: Vec<Template>,
    /// Channels with one end on a template (channel arrays, EdgeOS
    /// extension), in source order. [`SystemDescription::channels`] holds
    /// only channels between two PDs.
    pub channel_arrays: Vec<ChannelArray>,
    /// The `<system>` element.
    pub pos: Pos,
}

impl SystemDescription {
    /// Index of the PD called `name`.
    pub fn pd_index(&self, name: &str) -> Option<usize> {
        self.protection_domains
            .iter()
            .position(|pd| pd.name == name)
    }

    /// The PD called `name`.
    pub fn pd_by_name(&self, name: &str) -> Option<&ProtectionDomain> {
        self.protection_domains.iter().find(|pd| pd.name == name)
    }

    /// The memory region called `name`.
    pub fn mr_by_name(&self, name: &str) -> Option<&MemoryRegion> {
        self.memory_regions.iter().find(|mr| mr.name == name)
    }

    /// Indices of the direct children of PD `parent`.
    pub fn children_of(&self, parent: usize) -> impl Iterator<Item = usize> + '_ {
        self.protection_domains
            .iter()
            .enumerate()
            .filter(move |(_, pd)| pd.parent == Some(parent))
            .map(|(i, _)| i)
    }

    /// Index of the template called `name`.
    pub fn template_index(&self, name: &str) -> Option<usize> {
        self.templates.iter().position(|t| t.name == name)
    }

    /// The template called `name`.
    pub fn template_by_name(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The `<fork>` grant of template `template` (by index) and the index of
    /// the PD holding it. A valid description has exactly one per template.
    pub fn fork_of(&self, template: usize) -> Option<(usize, &Fork)> {
        self.protection_domains
            .iter()
            .enumerate()
            .flat_map(|(i, pd)| pd.forks.iter().map(move |f| (i, f)))
            .find(|(_, f)| f.template_index == template)
    }

    /// The channel arrays PD `pd` (by index) is the static end of.
    pub fn channel_arrays_of_pd(&self, pd: usize) -> impl Iterator<Item = &ChannelArray> + '_ {
        self.channel_arrays
            .iter()
            .filter(move |a| a.pd_end.pd_index == pd)
    }

    /// The channel arrays of template `template` (by index).
    pub fn channel_arrays_of_template(
        &self,
        template: usize,
    ) -> impl Iterator<Item = &ChannelArray> + '_ {
        self.channel_arrays
            .iter()
            .filter(move |a| a.template_end.template_index == template)
    }

    /// The instance windows onto template `template` (by index), with the
    /// index of the PD each belongs to.
    pub fn windows_of_template(
        &self,
        template: usize,
    ) -> impl Iterator<Item = (usize, &InstanceWindow)> + '_ {
        self.protection_domains
            .iter()
            .enumerate()
            .flat_map(|(i, pd)| pd.instance_windows.iter().map(move |w| (i, w)))
            .filter(move |(_, w)| w.template_index == template)
    }

    /// The channel ends that belong to PD `pd` (by index), with the channel
    /// each is part of and the PD at the other end.
    pub fn channel_ends_of(&self, pd: usize) -> impl Iterator<Item = ChannelEndRef<'_>> + '_ {
        self.channels.iter().flat_map(move |channel| {
            (0..2).filter_map(move |i| {
                let end = &channel.ends[i];
                (end.pd_index == pd).then(|| ChannelEndRef {
                    channel,
                    end,
                    peer: &channel.ends[1 - i],
                })
            })
        })
    }
}

/// One end of a channel seen from its PD: see
/// [`SystemDescription::channel_ends_of`].
#[derive(Debug, Clone, Copy)]
pub struct ChannelEndRef<'a> {
    /// The whole channel.
    pub channel: &'a Channel,
    /// This PD's end.
    pub end: &'a End,
    /// The other PD's end.
    pub peer: &'a End,
}

/// A `<protection_domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionDomain {
    /// Unique name.
    pub name: String,
    /// Index of the parent PD in [`SystemDescription::protection_domains`],
    /// for a nested child.
    pub parent: Option<usize>,
    /// The child's `id` (its fault id in the parent), for a nested child.
    pub child_id: Option<u64>,
    /// Fixed priority 0..=254, higher runs first (default 0).
    pub priority: u8,
    /// Budget in microseconds (default 1000).
    pub budget: u64,
    /// Period in microseconds (default: the budget).
    pub period: u64,
    /// Whether the PD gives its scheduling context away after `init`.
    pub passive: bool,
    /// Stack size in bytes (default 0x2000).
    pub stack_size: u64,
    /// The core the PD runs on (default 0).
    pub cpu: u64,
    /// `smc` as written (AArch64 only): whether the PD may ask for SMC calls.
    pub smc: Option<bool>,
    /// Whether the PD may use the FPU (default true).
    pub fpu: bool,
    /// The scheduling domain the PD runs in (required exactly when a domain
    /// schedule exists).
    pub domain: Option<String>,
    /// For a nested child: the parent's symbol patched with the child id.
    pub setvar_id: Option<String>,
    /// The program this PD runs.
    pub program_image: ProgramImage,
    /// Memory regions mapped into the PD, in source order.
    pub maps: Vec<Map>,
    /// Interrupts delivered to the PD.
    pub irqs: Vec<Irq>,
    /// `<setvar>` elements (physical addresses of regions).
    pub setvars: Vec<Setvar>,
    /// x86 I/O port ranges the PD may use.
    pub ioports: Vec<IoPort>,
    /// The virtual machine this PD manages.
    pub virtual_machine: Option<VirtualMachine>,
    /// Extra capabilities handed to the PD.
    pub cspace: Option<Cspace>,
    /// Windows onto the instance regions of a template's instances
    /// (EdgeOS extension), in source order.
    pub instance_windows: Vec<InstanceWindow>,
    /// Rights to fork templates (EdgeOS extension), in source order.
    pub forks: Vec<Fork>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl ProtectionDomain {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }

    /// Whether the PD is a nested child.
    pub fn is_child(&self) -> bool {
        self.parent.is_some()
    }
}

/// A `<program_image>`: the ELF a PD runs. Whether the file exists is checked
/// by the image builder, which knows the search path; `attrs` lets it point
/// at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgramImage {
    /// The ELF to load.
    pub path: String,
    /// An ELF used only to look up symbols to patch.
    pub path_for_symbols: Option<String>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

/// Access rights of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Readable.
    pub r: bool,
    /// Writable.
    pub w: bool,
    /// Executable.
    pub x: bool,
}

impl Perms {
    /// Read-write, the default for `map` and `iomap`.
    pub const RW: Perms = Perms {
        r: true,
        w: true,
        x: false,
    };
}

impl Default for Perms {
    fn default() -> Self {
        Perms::RW
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (set, letter) in [(self.r, 'r'), (self.w, 'w'), (self.x, 'x')] {
            if set {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

/// A `<map>` of a memory region into a PD or virtual machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// Name of the mapped memory region.
    pub mr: String,
    /// Virtual address, aligned to the region's page size.
    pub vaddr: u64,
    /// Access rights (default `rw`).
    pub perms: Perms,
    /// Cacheable (default true).
    pub cached: bool,
    /// Symbol patched with `vaddr`.
    pub setvar_vaddr: Option<String>,
    /// Symbol patched with the region's size.
    pub setvar_size: Option<String>,
    /// Symbol patched with the length of the region's prefill file.
    pub setvar_prefill_size: Option<String>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl Map {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }
}

/// Interrupt trigger mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Level triggered (the default).
    Level,
    /// Edge triggered.
    Edge,
}

/// IOAPIC interrupt polarity (x86-64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// Active high (the default).
    High,
    /// Active low.
    Low,
}

/// A PCI function address, written `BUS:DEV.FUNC` in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PciAddress {
    /// Bus, 0..=255.
    pub bus: u8,
    /// Device, 0..=31.
    pub device: u8,
    /// Function, 0..=7.
    pub function: u8,
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{:x}",
            self.bus, self.device, self.function
        )
    }
}

/// An `<irq>`: an interrupt delivered to a PD as a notification on channel
/// id `id`. Which form is valid depends on [`Arch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Irq {
    /// The ARM form: a GIC interrupt number.
    Arm {
        /// Hardware interrupt number.
        irq: u64,
        /// Channel id (shares the PD's channel-id namespace).
        id: u64,
        /// Trigger mode (default level).
        trigger: Trigger,
        /// Symbol patched with `id`.
        setvar_id: Option<String>,
        /// The element.
        pos: Pos,
        /// Its attributes.
        attrs: AttrPositions,
    },
    /// The x86-64 IOAPIC form.
    IoApic {
        /// Channel id.
        id: u64,
        /// IOAPIC unit (default 0).
        ioapic: u64,
        /// Pin on that IOAPIC.
        pin: u64,
        /// CPU vector, 0..=107.
        vector: u64,
        /// Trigger mode (default level).
        trigger: Trigger,
        /// Polarity (default high).
        polarity: Polarity,
        /// Symbol patched with `id`.
        setvar_id: Option<String>,
        /// The element.
        pos: Pos,
        /// Its attributes.
        attrs: AttrPositions,
    },
    /// The x86-64 MSI form.
    Msi {
        /// Channel id.
        id: u64,
        /// The PCI function raising the interrupt.
        pcidev: PciAddress,
        /// MSI handle.
        handle: u64,
        /// CPU vector, 0..=107.
        vector: u64,
        /// Symbol patched with `id`.
        setvar_id: Option<String>,
        /// The element.
        pos: Pos,
        /// Its attributes.
        attrs: AttrPositions,
    },
}

impl Irq {
    /// The channel id the interrupt is delivered on.
    pub fn id(&self) -> u64 {
        match self {
            Irq::Arm { id, .. } | Irq::IoApic { id, .. } | Irq::Msi { id, .. } => *id,
        }
    }

    /// The symbol patched with the id, if any.
    pub fn setvar_id(&self) -> Option<&str> {
        match self {
            Irq::Arm { setvar_id, .. }
            | Irq::IoApic { setvar_id, .. }
            | Irq::Msi { setvar_id, .. } => setvar_id.as_deref(),
        }
    }

    /// The element.
    pub fn pos(&self) -> Pos {
        match self {
            Irq::Arm { pos, .. } | Irq::IoApic { pos, .. } | Irq::Msi { pos, .. } => *pos,
        }
    }

    /// The element's attributes.
    pub fn attrs(&self) -> &AttrPositions {
        match self {
            Irq::Arm { attrs, .. } | Irq::IoApic { attrs, .. } | Irq::Msi { attrs, .. } => attrs,
        }
    }

    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs().get_or(name, self.pos())
    }
}

/// A `<setvar>`: a PD symbol patched with a memory region's physical address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setvar {
    /// The symbol to patch.
    pub symbol: String,
    /// Name of the memory region whose physical address is written.
    pub region_paddr: String,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

/// An `<ioport>` (x86-64): a range of I/O ports a PD may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoPort {
    /// Id in the PD's channel-id namespace.
    pub id: u64,
    /// First port.
    pub addr: u64,
    /// Number of ports.
    pub size: u64,
    /// Symbol patched with `id`.
    pub setvar_id: Option<String>,
    /// Symbol patched with `addr`.
    pub setvar_addr: Option<String>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

/// A `<virtual_machine>` managed by a PD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualMachine {
    /// Unique name.
    pub name: String,
    /// Priority 0..=254 (AArch64 only; default 0).
    pub priority: u8,
    /// Budget in microseconds (AArch64 only; default 1000).
    pub budget: u64,
    /// Period in microseconds (AArch64 only; default: the budget).
    pub period: u64,
    /// Virtual CPUs, at least one.
    pub vcpus: Vec<Vcpu>,
    /// Guest memory, as a PD's maps but without `setvar_*`.
    pub maps: Vec<Map>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

/// A `<vcpu>` of a virtual machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vcpu {
    /// Id 0..=61, shared with the PD's child ids.
    pub id: u64,
    /// The core it runs on, if given.
    pub cpu: Option<u64>,
    /// Symbol patched with `id`.
    pub setvar_id: Option<String>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

/// A `<cspace>`: capabilities to other PDs handed to this PD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cspace {
    /// The capabilities, in source order.
    pub caps: Vec<CapEntry>,
    /// The element.
    pub pos: Pos,
}

/// What a [`CapEntry`] gives access to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapKind {
    /// `cap_tcb`: the PD's thread.
    Tcb,
    /// `cap_sc`: its scheduling context.
    Sc,
    /// `cap_vspace`: its address space.
    Vspace,
}

impl CapKind {
    /// The element name.
    pub fn element(self) -> &'static str {
        match self {
            CapKind::Tcb => "cap_tcb",
            CapKind::Sc => "cap_sc",
            CapKind::Vspace => "cap_vspace",
        }
    }
}

/// One `cap_tcb`, `cap_sc` or `cap_vspace` of a [`Cspace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapEntry {
    /// The kind of capability.
    pub kind: CapKind,
    /// Slot 0..128, unique in the cspace.
    pub slot: u64,
    /// Name of the PD the capability refers to.
    pub pd: String,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

/// What a memory region is filled with at build time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefill {
    /// `prefill_path`: a file copied in (found and read by the builder).
    Path(String),
    /// `prefill_bootinfo`: x86 boot information.
    Bootinfo(BootinfoKind),
}

/// The x86 boot information kinds `prefill_bootinfo` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BootinfoKind {
    /// `x86_vbe`.
    X86Vbe,
    /// `x86_mbmap` (Microkit's own spelling `x86_mbmmap` is accepted too).
    X86Mbmap,
    /// `x86_acpi_rsdp`.
    X86AcpiRsdp,
    /// `x86_framebuffer`.
    X86Framebuffer,
    /// `x86_tsc_freq`.
    X86TscFreq,
}

impl BootinfoKind {
    /// All kinds with their spelling in the description.
    pub const ALL: [(&'static str, BootinfoKind); 5] = [
        ("x86_vbe", BootinfoKind::X86Vbe),
        ("x86_mbmap", BootinfoKind::X86Mbmap),
        ("x86_acpi_rsdp", BootinfoKind::X86AcpiRsdp),
        ("x86_framebuffer", BootinfoKind::X86Framebuffer),
        ("x86_tsc_freq", BootinfoKind::X86TscFreq),
    ];

    /// Reads a kind from its spelling.
    pub fn from_name(name: &str) -> Option<BootinfoKind> {
        if name == "x86_mbmmap" {
            return Some(BootinfoKind::X86Mbmap);
        }
        Self::ALL.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
    }
}

/// A `<memory_region>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Unique name (may contain `/` and `@`, as sdfgen writes them).
    pub name: String,
    /// Size in bytes, a multiple of `page_size`. When it is not written and
    /// the region has a `prefill_path` it is 0 here and `size_explicit` is
    /// false: the builder learns it from the file with
    /// [`MemoryRegion::size_for_prefill`]. For `prefill_bootinfo` without a
    /// size it is one page.
    pub size: u64,
    /// Whether `size` was written.
    pub size_explicit: bool,
    /// Page size: as written, or else the largest of 0x1000 and 0x200000
    /// that the size, the physical address and every mapping address allow
    /// (0x1000 for regions mapped into an IOMMU address space).
    pub page_size: u64,
    /// Whether `page_size` was written.
    pub page_size_explicit: bool,
    /// Fixed physical address (device registers, DMA areas).
    pub phys_addr: Option<u64>,
    /// Initial contents.
    pub prefill: Option<Prefill>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl MemoryRegion {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }

    /// Number of pages.
    pub fn page_count(&self) -> u64 {
        self.size.checked_div(self.page_size).unwrap_or(0)
    }

    /// Given the length of this region's prefill file, the region's size, or
    /// why the file does not fit: an empty file is an error, and so is a
    /// written size smaller than the file. Without a written size, the size
    /// is the file length rounded up to the page size. The builder reports
    /// an `Err` at `attr_pos("prefill_path")`.
    pub fn size_for_prefill(&self, file_len: u64) -> Result<u64, String> {
        if file_len == 0 {
            return Err(format!(
                "prefill file of memory region '{}' is empty",
                self.name
            ));
        }
        if self.size_explicit {
            if file_len > self.size {
                return Err(format!(
                    "prefill file of memory region '{}' is {file_len:#x} bytes, larger than the region's size {:#x}",
                    self.name, self.size
                ));
            }
            return Ok(self.size);
        }
        let page = self.page_size.max(1);
        file_len
            .div_ceil(page)
            .checked_mul(page)
            .ok_or_else(|| format!("prefill file of memory region '{}' is too large", self.name))
    }
}

/// A `<channel>` between two PDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The two ends, in source order.
    pub ends: [End; 2],
    /// The element.
    pub pos: Pos,
}

/// One `<end>` of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// Name of the PD at this end.
    pub pd: String,
    /// Index of that PD in [`SystemDescription::protection_domains`].
    pub pd_index: usize,
    /// The channel id in that PD, 0..=61.
    pub id: u64,
    /// Whether this end may make protected procedure calls into the other
    /// (default false).
    pub pp: bool,
    /// Whether this end may notify the other (default true).
    pub notify: bool,
    /// Symbol in this end's PD patched with `id`.
    pub setvar_id: Option<String>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl End {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }
}

/// `<domains>`: time partitions and the schedule cycling through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSchedule {
    /// Declared domains with resolved ids.
    pub domains: Vec<Domain>,
    /// Index of the first schedule entry run (default 0).
    pub start_index: u64,
    /// Where the schedule is placed in the kernel's table (default 0).
    pub index_shift: u64,
    /// The schedule, in order.
    pub schedule: Vec<ScheduleItem>,
    /// The `<domains>` element.
    pub pos: Pos,
    /// The `<domain_schedule>` element.
    pub schedule_pos: Pos,
}

impl DomainSchedule {
    /// The domain called `name`.
    pub fn domain_by_name(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name == name)
    }
}

/// A `<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Unique name.
    pub name: String,
    /// Id: as written, or else the lowest id no other domain uses.
    pub id: u64,
    /// Whether `id` was written.
    pub id_explicit: bool,
    /// The element.
    pub pos: Pos,
}

/// The length of a schedule entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duration {
    /// Microseconds (`<n>us`).
    Micros(u64),
    /// Kernel timer ticks (`<n>ticks`).
    Ticks(u64),
}

/// One element of a `<domain_schedule>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleItem {
    /// A `<schedule_entry>`: run `domain` for `duration`.
    Entry {
        /// Domain name.
        domain: String,
        /// How long.
        duration: Duration,
        /// The element.
        pos: Pos,
    },
    /// A `<schedule_end_marker>`.
    EndMarker {
        /// The element.
        pos: Pos,
    },
}

/// An `<io_address_space>` (IOMMU, x86-64): the DMA view of one PCI device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoAddressSpace {
    /// Unique name.
    pub name: String,
    /// The device, unique.
    pub peripheral_id: PciAddress,
    /// IOMMU domain id, unique.
    pub domain_id: u64,
    /// Regions visible to the device.
    pub iomaps: Vec<IoMap>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

/// An `<iomap>`: a memory region made visible to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoMap {
    /// Name of the region.
    pub mr: String,
    /// Device-visible address.
    pub iovaddr: u64,
    /// `r` or `rw` (default `rw`); never `x`, never write-only.
    pub perms: Perms,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

// ----- featherweight processes (EdgeOS extension) ---------------------------

/// A `<template>`: the program and resources every featherweight instance
/// forked from it gets. Instances are created at run time by the PD holding
/// the template's [`Fork`] grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Unique among templates and protection domains.
    pub name: String,
    /// Priority of every instance, 0..=254 (default 0).
    pub priority: u8,
    /// Budget of every instance in microseconds (default 1000).
    pub budget: u64,
    /// Period in microseconds (default: the budget).
    pub period: u64,
    /// Whether instances run only when called (after the template's `init`).
    pub passive: bool,
    /// Stack size of every instance (default 0x2000).
    pub stack_size: u64,
    /// The program every instance runs.
    pub program_image: ProgramImage,
    /// Regions every instance gets its own copy of, in source order.
    pub instance_regions: Vec<InstanceRegion>,
    /// What is mapped into every instance, in source order.
    pub maps: Vec<TemplateMap>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl Template {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }

    /// Index of the instance region called `name`.
    pub fn instance_region_index(&self, name: &str) -> Option<usize> {
        self.instance_regions.iter().position(|r| r.name == name)
    }
}

/// An `<instance_region>` of a template: memory every instance gets its
/// own copy of, allocated (zeroed) at fork and freed at destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRegion {
    /// Unique within the template, and distinct from every memory region.
    pub name: String,
    /// Size in bytes, a multiple of `page_size`.
    pub size: u64,
    /// 0x1000 (the default) or 0x200000.
    pub page_size: u64,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl InstanceRegion {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }
}

/// What a template's map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegionRef {
    /// The instance's own copy of an instance region (index into
    /// [`Template::instance_regions`]).
    Instance(usize),
    /// A static memory region shared by all instances (index into
    /// [`SystemDescription::memory_regions`]).
    Static(usize),
}

/// A `<map>` inside a template, with what its `mr` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMap {
    /// The map as written (the same element as a PD's map).
    pub map: Map,
    /// The region it names: an instance region of the template or a static
    /// memory region (resolved in validation; `Static(usize::MAX)` only in
    /// descriptions that failed).
    pub target: RegionRef,
}

/// One `<end>` of a channel array: the template's side, which every
/// instance sees as an ordinary channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEnd {
    /// Name of the template.
    pub template: String,
    /// Index into [`SystemDescription::templates`].
    pub template_index: usize,
    /// The channel id every instance sees, 0..=61 (the template's namespace).
    pub id: u64,
    /// Whether instances may call the static PD (default false).
    pub pp: bool,
    /// Whether instances may notify the static PD (default true).
    pub notify: bool,
    /// Symbol in the template's program patched with `id`.
    pub setvar_id: Option<String>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl TemplateEnd {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }
}

/// A `<channel>` with one end on a template: the static PD names all
/// instances with one channel id; each instance sees an ordinary channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelArray {
    /// The static PD's end (its `id` is in the PD's channel-id namespace).
    pub pd_end: End,
    /// The template's end.
    pub template_end: TemplateEnd,
    /// Whether the template's end was written first.
    pub template_first: bool,
    /// The `<channel>` element.
    pub pos: Pos,
}

/// An `<instance_window>` inside a PD: instance *i*'s copy of an instance
/// region appears in the PD at `vaddr + i * stride` while instance *i*
/// lives, for *i* below the template's `max_instances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceWindow {
    /// Name of the template.
    pub template: String,
    /// Index into [`SystemDescription::templates`] (resolved in validation).
    pub template_index: usize,
    /// Name of the instance region.
    pub mr: String,
    /// Index into the template's [`Template::instance_regions`] (resolved in
    /// validation).
    pub region_index: usize,
    /// Where instance 0's copy appears.
    pub vaddr: u64,
    /// Distance between consecutive instances' copies: as written, or else
    /// the region's size.
    pub stride: u64,
    /// Whether `stride` was written.
    pub stride_explicit: bool,
    /// Access rights (default `rw`).
    pub perms: Perms,
    /// Cacheable (default true).
    pub cached: bool,
    /// PD symbol patched with `vaddr`.
    pub setvar_vaddr: Option<String>,
    /// PD symbol patched with `stride` (as written or defaulted).
    pub setvar_stride: Option<String>,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl InstanceWindow {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }
}

/// A `<fork>` inside a PD: the right to create instances of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    /// Name of the template.
    pub template: String,
    /// Index into [`SystemDescription::templates`] (resolved in validation).
    pub template_index: usize,
    /// The handle the PD names the template by, 0..=61, unique among the
    /// PD's forks (a namespace of its own, apart from channel and child ids).
    pub id: u64,
    /// Most instances alive at once, 1..=65536.
    pub max_instances: u64,
    /// Memory quota in bytes for all live instances (a multiple of 4 KiB).
    pub memory: u64,
    /// The element.
    pub pos: Pos,
    /// Its attributes.
    pub attrs: AttrPositions,
}

impl Fork {
    /// Position of attribute `name`, or of the element if it was not written.
    pub fn attr_pos(&self, name: &str) -> Pos {
        self.attrs.get_or(name, self.pos)
    }
}

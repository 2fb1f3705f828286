//! `edgeos build`: resolve program images, lay out physical memory, patch PD variables and lower
//! the description into the boot blob, then write one bootable image and a report.
//!
//! Physical layout on every board:
//! ```text
//! kernel_paddr: kernel segments | boot blob (page aligned) | memory regions (each aligned to
//! its page size) | ... free RAM for the kernel's allocator (from `reserved_end_paddr`)
//! ```
//! Regions with a fixed `phys_addr` stay where the description puts them; one inside RAM (above
//! the image) is flagged `REGION_FIXED` and the kernel's frame allocator marks its frames used at
//! boot, so RAM below a high fixed region stays free for the kernel.

use std::path::{Path, PathBuf};

use bootinfo::board::Board;
use bootinfo::layout::{align_up, stack_reservation, PAGE_SIZE, PD_STACK_TOP, USER_TOP};
use bootinfo::{Builder, Perms};
use sysdesc::{Diagnostic, Pos, Severity, SystemDescription};

use crate::elf::{PatchError, ProgramImage};
use crate::image::{write_elf, ImageSegment};
use crate::Loaded;

/// Symbol of the kernel image expected on the search path when `--kernel` is not given.
pub const DEFAULT_KERNEL: &str = "edgeos-kernel.elf";
/// The PD runtime's IPC buffer page, found by symbol (as Microkit does).
pub const IPC_BUFFER_SYMBOL: &str = "__sel4_ipc_buffer_obj";
/// An optional runtime variable of a static PD: bit `i` set when channel id `i` is a channel
/// array (patched only into PDs that have one).
pub const ARRAYS_SYMBOL: &str = "edgeos_channel_arrays";

/// What `build` needs besides the description.
#[derive(Debug, Clone)]
pub struct Options {
    pub board: &'static Board,
    /// Folders searched in order for program images, prefill files and the kernel.
    pub search_path: Vec<PathBuf>,
    pub kernel: Option<PathBuf>,
    /// A test image: sets [`bootinfo::FLAG_DEBUG_EXIT`], so root PDs may end the run with an
    /// exit status (QEMU's exit code). Never for production images: with it, a PD can power the
    /// machine off.
    pub debug_exit: bool,
}

/// A built system.
#[derive(Debug, Clone)]
pub struct Built {
    /// The bootable ELF image.
    pub image: Vec<u8>,
    /// Where everything landed, for people.
    pub report: String,
}

/// Why a build failed.
#[derive(Debug)]
pub enum BuildError {
    /// Located problems in the description (missing images, overlaps, unsupported features...).
    Description(Vec<Diagnostic>),
    /// A problem with no place in the description (the kernel image, memory exhausted).
    Other(String),
}

/// Where one memory region landed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlacedRegion {
    pub paddr: u64,
    pub size: u64,
    pub page_size: u64,
    pub flags: u32,
}

/// A PD's program after loading and page alignment.
#[derive(Debug, Clone)]
pub(crate) struct LoadedPd {
    pub image: ProgramImage,
    pub image_path: PathBuf,
}

/// Everything the report needs.
pub(crate) struct Layout<'a> {
    pub system: &'a SystemDescription,
    pub board: &'static Board,
    pub kernel_path: PathBuf,
    pub kernel_range: (u64, u64),
    pub blob_range: (u64, u64),
    pub reserved_end: u64,
    pub regions: Vec<PlacedRegion>,
    pub pds: Vec<LoadedPd>,
    /// The templates' programs, in description order.
    pub templates: Vec<LoadedPd>,
    /// Whether the image lets root PDs end the run with an exit status.
    pub debug_exit: bool,
}

/// What one instance of a template costs, in bytes (page tables not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InstanceCost {
    /// Writable pages of the program (data, bss, heap), copied from the snapshot at fork.
    pub writable: u64,
    /// The stack, copied from the snapshot too.
    pub stack: u64,
    /// The instance regions, allocated zeroed at fork.
    pub regions: u64,
    /// Read-only pages (code, constants), shared with the template and never copied.
    pub shared: u64,
}

impl InstanceCost {
    /// Memory each instance takes from its fork quota.
    pub fn per_instance(&self) -> u64 {
        self.writable + self.stack + self.regions
    }
    /// The snapshot the kernel keeps of the template (its writable pages and stack).
    pub fn snapshot(&self) -> u64 {
        self.writable + self.stack
    }
}

/// The memory one instance of `template` needs, from its loaded program.
pub(crate) fn instance_cost(template: &sysdesc::Template, program: &LoadedPd) -> InstanceCost {
    let mut cost = InstanceCost { stack: template.stack_size, ..InstanceCost::default() };
    for s in &program.image.segments {
        let (start, end) = s.page_range();
        if s.perms.write {
            cost.writable += end - start;
        } else {
            cost.shared += end - start;
        }
    }
    cost.regions = template.instance_regions.iter().map(|r| r.size).sum();
    cost
}

/// A variable to patch in a program: `program` indexes the PDs' programs, then the templates'
/// (see [`Programs`]).
struct Patch {
    pd: usize,
    symbol: String,
    value: PatchValue,
    /// Where the description asks for it (None: runtime symbols the tool fills on its own,
    /// which are optional).
    pos: Option<Pos>,
}

enum PatchValue {
    Word(u64),
    RegionPaddr(usize),
    Name(String),
}

struct Ctx<'a> {
    loaded: &'a Loaded,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    /// Reports an error at `pos`. Every error carries a hint saying what to do about it.
    fn error(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::at(Severity::Error, &self.loaded.name, pos, message, Some(hint.into())));
    }
}

fn find_file(search: &[PathBuf], name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.is_file().then(|| p.to_path_buf());
    }
    search.iter().map(|d| d.join(p)).find(|c| c.is_file())
}

fn search_list(search: &[PathBuf]) -> String {
    search.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn perms_str(p: Perms) -> String {
    format!("{}{}{}", if p.read { "r" } else { "" }, if p.write { "w" } else { "" }, if p.execute { "x" } else { "" })
}

fn to_perms(p: &sysdesc::Perms) -> Perms {
    Perms { read: p.r, write: p.w, execute: p.x }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Builds the image. All located problems are collected and returned together.
pub fn build(loaded: &Loaded, system: &SystemDescription, options: &Options) -> Result<Built, BuildError> {
    let mut cx = Ctx { loaded, diags: Vec::new() };
    refuse_unsupported(&mut cx, system, options.board);

    // The kernel.
    let kernel_path = match &options.kernel {
        Some(p) => p.clone(),
        None => find_file(&options.search_path, DEFAULT_KERNEL).ok_or_else(|| {
            BuildError::Other(format!(
                "kernel image '{DEFAULT_KERNEL}' not found (searched: {}); build it with `make bare` or pass --kernel",
                search_list(&options.search_path)
            ))
        })?,
    };
    let kernel_bytes = std::fs::read(&kernel_path)
        .map_err(|e| BuildError::Other(format!("cannot read kernel {}: {e}", kernel_path.display())))?;
    let kernel = ProgramImage::parse(&kernel_bytes)
        .map_err(|e| BuildError::Other(format!("kernel {}: {e}", kernel_path.display())))?;
    let kernel_start = kernel.segments.iter().map(|s| s.paddr).min().unwrap_or(0);
    let kernel_end = kernel.segments.iter().map(|s| s.paddr + s.mem_size).max().unwrap_or(0);
    if kernel_start < options.board.kernel_paddr || !options.board.in_ram(kernel_start, kernel_end - kernel_start) {
        return Err(BuildError::Other(format!(
            "kernel {} is linked at physical {kernel_start:#x}..{kernel_end:#x}, outside {}'s RAM above {:#x}",
            kernel_path.display(),
            options.board.name,
            options.board.kernel_paddr
        )));
    }

    // Program images: the PDs', then the templates' (patch targets index this one list).
    let mut pds: Vec<Option<LoadedPd>> = Vec::new();
    for pd in &system.protection_domains {
        pds.push(load_program(&mut cx, &format!("protection domain '{}'", pd.name), &pd.name, &pd.program_image, &options.search_path));
    }
    for t in &system.templates {
        pds.push(load_program(&mut cx, &format!("template '{}'", t.name), &t.name, &t.program_image, &options.search_path));
    }
    // Prefill files fix their regions' sizes, which maps and `setvar_size` need.
    let contents = read_prefills(&mut cx, system, &options.search_path);
    let sizes: Vec<u64> = contents.iter().map(|c| c.size).collect();
    for (i, pd) in system.protection_domains.iter().enumerate() {
        if let Some(l) = &pds[i] {
            check_address_space(&mut cx, &pd.name, pd.stack_size, &pd.program_image, l, &pd_maps(system, &sizes, i));
        }
    }
    let n_pds = system.protection_domains.len();
    for (i, t) in system.templates.iter().enumerate() {
        if let Some(l) = &pds[n_pds + i] {
            check_address_space(&mut cx, &t.name, t.stack_size, &t.program_image, l, &template_maps(&sizes, t));
            check_fork_quota(&mut cx, system, i, l);
        }
    }

    // Variables: first with placeholder values so that every patched symbol gets file bytes
    // (which fixes the blob's size), then again with the final values once memory is laid out.
    let patches = collect_patches(system, &contents);
    for p in &patches {
        let Some(l) = pds[p.pd].as_mut() else { continue };
        let bytes = placeholder(p, l);
        apply_patch(&mut cx, p, l, &bytes);
    }
    if !cx.diags.is_empty() {
        return Err(BuildError::Description(cx.diags));
    }
    let programs: Vec<LoadedPd> = pds.into_iter().map(|p| p.expect("loaded when no errors")).collect();

    // Blob size, then physical layout.
    let mut builder = lower(system, &programs, &[]);
    let blob_paddr = align_up(kernel_end, PAGE_SIZE);
    let blob_len = builder.encoded_len() as u64;
    let (regions, prefills, reserved_end) = place_regions(&mut cx, system, options, contents, blob_paddr + blob_len)?;
    if !cx.diags.is_empty() {
        return Err(BuildError::Description(cx.diags));
    }

    // Final values.
    let mut programs = programs;
    for p in &patches {
        let bytes = match &p.value {
            PatchValue::RegionPaddr(r) => word_bytes(regions[*r].paddr, &programs[p.pd], &p.symbol),
            _ => placeholder(p, &programs[p.pd]),
        };
        apply_patch(&mut cx, p, &mut programs[p.pd], &bytes);
    }
    builder = lower(system, &programs, &regions);
    if options.debug_exit {
        builder.flags |= bootinfo::FLAG_DEBUG_EXIT;
    }
    let blob = builder.finish(reserved_end);
    debug_assert_eq!(blob.len() as u64, blob_len);
    bootinfo::BootInfo::parse(&blob).map_err(|e| BuildError::Other(format!("internal error: {e}")))?;

    let mut segments: Vec<ImageSegment> = kernel
        .segments
        .iter()
        .map(|s| ImageSegment {
            paddr: s.paddr,
            vaddr: s.vaddr,
            mem_size: s.mem_size,
            data: s.data.clone(),
            flags: elf_flags(s.perms),
        })
        .collect();
    segments.push(ImageSegment { paddr: blob_paddr, vaddr: blob_paddr, mem_size: blob_len, data: blob, flags: 4 });
    for (region, data) in prefills {
        let r = regions[region];
        segments.push(ImageSegment { paddr: r.paddr, vaddr: r.paddr, mem_size: data.len() as u64, data, flags: 4 });
    }
    let image = write_elf(kernel.entry, &segments);
    let templates = programs.split_off(n_pds);
    let pds = programs;
    let layout = Layout {
        system,
        board: options.board,
        kernel_path,
        kernel_range: (kernel_start, kernel_end),
        blob_range: (blob_paddr, blob_paddr + blob_len),
        reserved_end,
        regions,
        pds,
        templates,
        debug_exit: options.debug_exit,
    };
    let report = crate::report::write(&layout, image.len());
    Ok(Built { image, report })
}

fn elf_flags(p: Perms) -> u32 {
    (p.execute as u32) | (p.write as u32) << 1 | (p.read as u32) << 2
}

/// Features the description dialect has but this board's kernel does not implement yet.
fn refuse_unsupported(cx: &mut Ctx, system: &SystemDescription, board: &Board) {
    let hint = || "remove it, or build for a board that supports it".to_string();
    let name = board.name;
    if let Some(d) = &system.domains {
        cx.error(d.pos, format!("domain scheduling ('domains') is not supported on {name} yet"), hint());
    }
    for a in &system.io_address_spaces {
        cx.error(a.pos, format!("IOMMU address spaces ('io_address_space') are not supported on {name} yet"), hint());
    }
    for pd in &system.protection_domains {
        if let Some(vm) = &pd.virtual_machine {
            cx.error(vm.pos, format!("virtual machines ('virtual_machine') are not supported on {name} yet"), hint());
        }
        if let Some(cs) = &pd.cspace {
            cx.error(cs.pos, format!("'cspace' capabilities are not supported on {name} yet"), hint());
        }
        if pd.smc == Some(true) {
            cx.error(pd.attr_pos("smc"), format!("SMC forwarding ('smc=\"true\"') is not supported on {name} yet"), hint());
        }
        for map in &pd.maps {
            refuse_wx(cx, map.perms, map.attr_pos("perms"), &format!("map of '{}'", map.mr));
        }
        for w in &pd.instance_windows {
            refuse_wx(cx, w.perms, w.attr_pos("perms"), &format!("instance window of '{}/{}'", w.template, w.mr));
        }
    }
    for t in &system.templates {
        for tm in &t.maps {
            refuse_wx(cx, tm.map.perms, tm.map.attr_pos("perms"), &format!("map of '{}'", tm.map.mr));
        }
    }
    for pd in &system.protection_domains {
        for irq in &pd.irqs {
            if let sysdesc::Irq::Arm { irq: n, .. } = irq {
                if *n == board.kernel_timer_irq as u64 {
                    cx.error(
                        irq.attr_pos("irq"),
                        format!("irq {n} is the kernel's own timer on {name} and cannot be given to a PD"),
                        "a timer driver PD can take the physical timer (irq 30) instead".to_string(),
                    );
                }
            }
        }
    }
    for mr in &system.memory_regions {
        if let Some(sysdesc::Prefill::Bootinfo(_)) = &mr.prefill {
            cx.error(mr.attr_pos("prefill_bootinfo"), format!("'prefill_bootinfo' is x86-only and not supported on {name}"), hint());
        }
    }
}

fn refuse_wx(cx: &mut Ctx, perms: sysdesc::Perms, at: Pos, what: &str) {
    if perms.w && perms.x {
        cx.error(
            at,
            format!("{what} is both writable and executable; EdgeOS enforces W^X"),
            "use perms=\"rw\" for data or perms=\"rx\" for code".to_string(),
        );
    }
}

/// Loads the program of a PD or template (`owner` names it in messages, `name` alone too).
fn load_program(cx: &mut Ctx, owner: &str, name: &str, pi: &sysdesc::ProgramImage, search: &[PathBuf]) -> Option<LoadedPd> {
    let path_pos = pi.attrs.get_or("path", pi.pos);
    let Some(path) = find_file(search, &pi.path) else {
        cx.error(
            path_pos,
            format!("program image '{}' of {owner} not found", pi.path),
            format!("searched: {}; build the PD first (`make bare`) or fix the path", search_list(search)),
        );
        return None;
    };
    let read = |cx: &mut Ctx, path: &Path, pos: Pos| -> Option<ProgramImage> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                cx.error(
                    pos,
                    format!("cannot read program image {}: {e}", path.display()),
                    "check that the file is readable by the user running the build",
                );
                return None;
            }
        };
        match ProgramImage::parse(&bytes) {
            Ok(img) => Some(img),
            Err(e) => {
                cx.error(
                    pos,
                    format!("program image {} of '{name}' is unusable: {e}", path.display()),
                    "PD programs are aarch64 ELF executables (cargo --target aarch64-unknown-none)".to_string(),
                );
                None
            }
        }
    };
    let mut image = read(cx, &path, path_pos)?;
    if let Some(sym_path) = &pi.path_for_symbols {
        let pos = pi.attrs.get_or("path_for_symbols", pi.pos);
        let Some(found) = find_file(search, sym_path) else {
            cx.error(pos, format!("symbol file '{sym_path}' not found"), format!("searched: {}", search_list(search)));
            return None;
        };
        image.symbols = read(cx, &found, pos)?.symbols;
    }
    let mut ok = true;
    for (i, s) in image.segments.iter().enumerate() {
        if !s.perms.is_valid() {
            ok = false;
            cx.error(
                path_pos,
                format!("segment {i} of {} has perms '{}'; EdgeOS loads only W^X segments", path.display(), perms_str(s.perms)),
                "link code and data into separate segments (the PD linker script in libs/microkit does)".to_string(),
            );
        }
    }
    for (i, a) in image.segments.iter().enumerate() {
        for b in &image.segments[i + 1..] {
            if overlaps(a.page_range(), b.page_range()) && a.perms != b.perms {
                ok = false;
                cx.error(
                    path_pos,
                    format!("segments of {} at {:#x} and {:#x} share a page with different perms", path.display(), a.vaddr, b.vaddr),
                    "align segments to 4 KiB pages in the linker script".to_string(),
                );
            }
        }
    }
    if let Some(ipc) = image.symbol(IPC_BUFFER_SYMBOL) {
        if ipc.addr % PAGE_SIZE != 0 || ipc.size < PAGE_SIZE {
            ok = false;
            cx.error(
                path_pos,
                format!("'{IPC_BUFFER_SYMBOL}' in {} is not a page-aligned 4 KiB page ({:#x}, {} bytes)", path.display(), ipc.addr, ipc.size),
                "declare it through the PD runtime (libs/microkit), which aligns it".to_string(),
            );
        }
    }
    ok.then_some(LoadedPd { image, image_path: path })
}

/// Something mapped into an address space, for the builder's checks: a description map or an
/// instance window's whole reach.
struct Mapped {
    /// "map of 'x'" or "instance window of 't/r'", for messages.
    what: String,
    range: (u64, u64),
    at: Pos,
}

/// A PD's maps and instance windows.
/// `sizes` are the regions' sizes once prefill files are read.
fn pd_maps(system: &SystemDescription, sizes: &[u64], pd: usize) -> Vec<Mapped> {
    let pd = &system.protection_domains[pd];
    let mut out = Vec::new();
    for map in &pd.maps {
        let Some(size) = region_index(system, &map.mr).map(|r| sizes[r]) else { continue };
        out.push(Mapped { what: format!("map of '{}'", map.mr), range: (map.vaddr, map.vaddr.saturating_add(size)), at: map.attr_pos("vaddr") });
    }
    for w in &pd.instance_windows {
        let max = system.fork_of(w.template_index).map_or(0, |(_, f)| f.max_instances);
        let end = w.vaddr.saturating_add(w.stride.saturating_mul(max));
        out.push(Mapped { what: format!("instance window of '{}/{}'", w.template, w.mr), range: (w.vaddr, end), at: w.attr_pos("vaddr") });
    }
    out
}

/// Index of the memory region called `name`.
fn region_index(system: &SystemDescription, name: &str) -> Option<usize> {
    system.memory_regions.iter().position(|m| m.name == name)
}

/// The size of what a template map shows; `sizes` are the memory regions' sizes once prefill
/// files are read.
pub(crate) fn template_map_size(sizes: &[u64], t: &sysdesc::Template, tm: &sysdesc::TemplateMap) -> u64 {
    match tm.target {
        sysdesc::RegionRef::Instance(r) => t.instance_regions.get(r).map_or(0, |r| r.size),
        sysdesc::RegionRef::Static(r) => sizes.get(r).copied().unwrap_or(0),
    }
}

/// A template's maps.
fn template_maps(sizes: &[u64], t: &sysdesc::Template) -> Vec<Mapped> {
    t.maps
        .iter()
        .map(|tm| {
            let size = template_map_size(sizes, t, tm);
            Mapped { what: format!("map of '{}'", tm.map.mr), range: (tm.map.vaddr, tm.map.vaddr.saturating_add(size)), at: tm.map.attr_pos("vaddr") }
        })
        .collect()
}

/// Maps against segments, the stack and the user address-space limit, for a PD or a template
/// (`name`).
fn check_address_space(cx: &mut Ctx, name: &str, stack_size: u64, program: &sysdesc::ProgramImage, l: &LoadedPd, mapped: &[Mapped]) {
    let stack = stack_reservation(stack_size);
    for s in &l.image.segments {
        let pages = s.page_range();
        if pages.0 < PAGE_SIZE || pages.1 > USER_TOP || overlaps(pages, stack) {
            cx.error(
                program.attrs.get_or("path", program.pos),
                format!(
                    "segment {:#x}..{:#x} of {} is outside the user area {:#x}..{:#x} below the stack",
                    s.vaddr,
                    s.end(),
                    l.image_path.display(),
                    PAGE_SIZE,
                    stack.0
                ),
                "link PD programs with the PD linker script (from 0x200000)".to_string(),
            );
        }
    }
    for m in mapped {
        let (range, at, what) = (m.range, m.at, &m.what);
        if range.1 > USER_TOP {
            cx.error(
                at,
                format!("{what} ends at {:#x}, above the user address space ({USER_TOP:#x})", range.1),
                format!("choose a lower vaddr, so that it ends at or below {USER_TOP:#x}"),
            );
        }
        if overlaps(range, stack) {
            cx.error(
                at,
                format!("{what} at {:#x}..{:#x} overlaps the stack of '{name}' ({:#x}..{PD_STACK_TOP:#x}, guard page included)", range.0, range.1, stack.0),
                format!("choose a vaddr below {:#x}", stack.0),
            );
        }
        for s in &l.image.segments {
            let pages = s.page_range();
            if overlaps(range, pages) {
                cx.error(
                    at,
                    format!("{what} at {:#x}..{:#x} overlaps the ELF segment {:#x}..{:#x} of {}", range.0, range.1, pages.0, pages.1, l.image_path.display()),
                    "choose a vaddr clear of the program (e.g. 0x2_000_000 and up)".to_string(),
                );
            }
        }
    }
}

/// A fork quota must hold at least one instance of its template.
fn check_fork_quota(cx: &mut Ctx, system: &SystemDescription, template: usize, program: &LoadedPd) {
    let t = &system.templates[template];
    let Some((_, fork)) = system.fork_of(template) else { return };
    let cost = instance_cost(t, program);
    let one = cost.per_instance();
    if fork.memory < one {
        cx.error(
            fork.attr_pos("memory"),
            format!(
                "fork quota memory={:#x} for template '{}' cannot hold one instance ({one:#x} bytes: writable pages {:#x}, stack {:#x}, instance regions {:#x})",
                fork.memory, t.name, cost.writable, cost.stack, cost.regions
            ),
            format!(
                "{} instances need {:#x} bytes plus their page tables",
                fork.max_instances,
                one.saturating_mul(fork.max_instances)
            ),
        );
    }
}

/// What one program may do on its channel ids, as the runtime's bitmask variables hold it.
#[derive(Default)]
struct Grants {
    irqs: u64,
    notifications: u64,
    pps: u64,
}

fn word(program: usize, symbol: &str, value: u64, pos: Option<Pos>) -> Patch {
    Patch { pd: program, symbol: symbol.to_string(), value: PatchValue::Word(value), pos }
}

impl Grants {
    /// Adds the rights of `program`'s channel end, and its `setvar_id`.
    fn add_end(&mut self, out: &mut Vec<Patch>, program: usize, end: &sysdesc::End) {
        self.add(out, program, (end.id, end.notify, end.pp), &end.setvar_id, end.attr_pos("setvar_id"));
    }

    /// The same for an end given as (id, notify, pp), with its `setvar_id` at `pos`.
    fn add(&mut self, out: &mut Vec<Patch>, program: usize, (id, notify, pp): (u64, bool, bool), setvar_id: &Option<String>, pos: Pos) {
        if notify {
            self.notifications |= 1 << id;
        }
        if pp {
            self.pps |= 1 << id;
        }
        if let Some(s) = setvar_id {
            out.push(word(program, s, id, Some(pos)));
        }
    }

    /// The runtime's own variables (optional: a program without the runtime has none of them).
    fn patches(&self, out: &mut Vec<Patch>, program: usize, name: &str, passive: bool) {
        out.push(Patch { pd: program, symbol: "microkit_name".into(), value: PatchValue::Name(name.to_string()), pos: None });
        out.push(word(program, "microkit_passive", passive as u64, None));
        out.push(word(program, "microkit_irqs", self.irqs, None));
        out.push(word(program, "microkit_notifications", self.notifications, None));
        out.push(word(program, "microkit_pps", self.pps, None));
    }
}

/// The `setvar_*` attributes of a map of a region of `size` bytes whose prefill file has
/// `prefill_len` bytes (as in Microkit: `setvar_size` is the region's size, which for a
/// prefilled region without a written size is the file length rounded up to its page size, and
/// `setvar_prefill_size` is the file's own length).
fn map_patches(out: &mut Vec<Patch>, program: usize, map: &sysdesc::Map, size: u64, prefill_len: u64) {
    for (attr, symbol, value) in [
        ("setvar_vaddr", &map.setvar_vaddr, map.vaddr),
        ("setvar_size", &map.setvar_size, size),
        ("setvar_prefill_size", &map.setvar_prefill_size, prefill_len),
    ] {
        if let Some(s) = symbol {
            out.push(word(program, s, value, Some(map.attr_pos(attr))));
        }
    }
}

/// Every variable to patch: PDs' programs first, then templates' (program index n_pds + t).
/// `contents` are the memory regions' sizes and prefill data.
fn collect_patches(system: &SystemDescription, contents: &[RegionContents]) -> Vec<Patch> {

    let mut out = Vec::new();
    for (i, pd) in system.protection_domains.iter().enumerate() {
        let mut grants = Grants::default();
        for irq in &pd.irqs {
            grants.irqs |= 1 << irq.id();
            if let Some(s) = irq.setvar_id() {
                out.push(word(i, s, irq.id(), Some(irq.attr_pos("setvar_id"))));
            }
        }
        for e in system.channel_ends_of(i) {
            grants.add_end(&mut out, i, e.end);
        }
        // Channel arrays: the PD notifies or calls instance i with (array id, i).
        let mut arrays = 0u64;
        for a in system.channel_arrays_of_pd(i) {
            arrays |= 1 << a.pd_end.id;
            grants.add_end(&mut out, i, &a.pd_end);
        }
        if arrays != 0 {
            out.push(word(i, ARRAYS_SYMBOL, arrays, None));
        }
        grants.patches(&mut out, i, &pd.name, pd.passive);
        for map in &pd.maps {
            let (size, prefill_len) = region_index(system, &map.mr).map_or((0, 0), |r| (contents[r].size, contents[r].prefill_len()));
            map_patches(&mut out, i, map, size, prefill_len);
        }
        for sv in &pd.setvars {
            let region = system.memory_regions.iter().position(|m| m.name == sv.region_paddr).unwrap_or(0);
            out.push(Patch { pd: i, symbol: sv.symbol.clone(), value: PatchValue::RegionPaddr(region), pos: Some(sv.attrs.get_or("symbol", sv.pos)) });
        }
        if let (Some(parent), Some(id), Some(s)) = (pd.parent, pd.child_id, &pd.setvar_id) {
            out.push(word(parent, s, id, Some(pd.attr_pos("setvar_id"))));
        }
        for w in &pd.instance_windows {
            if let Some(s) = &w.setvar_vaddr {
                out.push(word(i, s, w.vaddr, Some(w.attr_pos("setvar_vaddr"))));
            }
            if let Some(s) = &w.setvar_stride {
                out.push(word(i, s, w.stride, Some(w.attr_pos("setvar_stride"))));
            }
        }
    }
    // Every instance starts from its template's snapshot, so these values are what every
    // instance sees.
    let sizes: Vec<u64> = contents.iter().map(|c| c.size).collect();
    let n_pds = system.protection_domains.len();
    for (t, template) in system.templates.iter().enumerate() {
        let i = n_pds + t;
        let mut grants = Grants::default();
        for a in system.channel_arrays_of_template(t) {
            let end = &a.template_end;
            grants.add(&mut out, i, (end.id, end.notify, end.pp), &end.setvar_id, end.attr_pos("setvar_id"));
        }
        grants.patches(&mut out, i, &template.name, template.passive);
        for tm in &template.maps {
            // Instance regions have no prefill (the description refuses setvar_prefill_size on them).
            let prefill_len = match tm.target {
                sysdesc::RegionRef::Static(r) => contents[r].prefill_len(),
                sysdesc::RegionRef::Instance(_) => 0,
            };
            map_patches(&mut out, i, &tm.map, template_map_size(&sizes, template, tm), prefill_len);
        }
    }
    out
}

/// The bytes of `value` sized for the symbol (1, 2, 4 or 8 bytes, little-endian).
fn word_bytes(value: u64, pd: &LoadedPd, symbol: &str) -> Vec<u8> {
    let size = pd.image.symbol(symbol).map_or(8, |s| s.size.clamp(1, 8)) as usize;
    value.to_le_bytes()[..size].to_vec()
}

fn placeholder(p: &Patch, pd: &LoadedPd) -> Vec<u8> {
    match &p.value {
        PatchValue::Word(v) => word_bytes(*v, pd, &p.symbol),
        PatchValue::RegionPaddr(_) => word_bytes(0, pd, &p.symbol),
        PatchValue::Name(name) => {
            let size = pd.image.symbol(&p.symbol).map_or(0, |s| s.size) as usize;
            let mut bytes = vec![0u8; size];
            let n = name.len().min(size.saturating_sub(1));
            bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
            bytes
        }
    }
}

fn apply_patch(cx: &mut Ctx, p: &Patch, pd: &mut LoadedPd, bytes: &[u8]) {
    let Some(pos) = p.pos else {
        // Runtime symbols are optional.
        if pd.image.symbol(&p.symbol).is_some() {
            let _ = pd.image.patch(&p.symbol, bytes);
        }
        return;
    };
    let path = pd.image_path.display().to_string();
    match pd.image.patch(&p.symbol, bytes) {
        Ok(()) => {
            if let PatchValue::Word(v) = p.value {
                if bytes.len() < 8 && v >> (8 * bytes.len()) != 0 {
                    cx.error(
                        pos,
                        format!("value {v:#x} does not fit symbol '{}' ({} bytes) in {path}", p.symbol, bytes.len()),
                        "declare the variable as a 64-bit integer (u64/usize)".to_string(),
                    );
                }
            }
        }
        Err(PatchError::NotFound) => cx.error(
            pos,
            format!("symbol '{}' not found in {path}", p.symbol),
            "declare it in the PD, e.g. `var!(NAME: usize = 0)`, and check the spelling".to_string(),
        ),
        Err(PatchError::TooSmall { have, need }) => cx.error(
            pos,
            format!("symbol '{}' in {path} has {have} bytes; {need} are needed", p.symbol),
            "declare the variable as a 64-bit integer (u64/usize)".to_string(),
        ),
        Err(PatchError::NotInSegment) => cx.error(
            pos,
            format!("symbol '{}' in {path} is not in a loadable segment", p.symbol),
            "declare it as a static variable of the PD (in .data or .bss), e.g. with `var!`",
        ),
        Err(PatchError::ReadOnly) => cx.error(
            pos,
            format!("symbol '{}' in {path} is in an executable segment and cannot be patched", p.symbol),
            "make it a data variable (static in .data/.rodata)".to_string(),
        ),
    }
}

/// A memory region's size and initial contents, once its prefill file (if any) is read.
pub(crate) struct RegionContents {
    /// The region's size: as written, or from the prefill file.
    pub size: u64,
    /// The prefill file's bytes.
    pub prefill: Option<Vec<u8>>,
}

impl RegionContents {
    /// The prefill file's length (0 without one).
    fn prefill_len(&self) -> u64 {
        self.prefill.as_ref().map_or(0, |data| data.len() as u64)
    }
}

/// Reads every region's prefill file and settles the region's size. A region whose file is
/// missing or does not fit keeps its written size (an error is reported).
fn read_prefills(cx: &mut Ctx, system: &SystemDescription, search: &[PathBuf]) -> Vec<RegionContents> {
    let mut out = Vec::new();
    for mr in &system.memory_regions {
        let mut contents = RegionContents { size: mr.size, prefill: None };
        if let Some(sysdesc::Prefill::Path(p)) = &mr.prefill {
            let pos = mr.attr_pos("prefill_path");
            match find_file(search, p).map(std::fs::read) {
                Some(Ok(data)) => match mr.size_for_prefill(data.len() as u64) {
                    Ok(size) => contents = RegionContents { size, prefill: Some(data) },
                    Err(e) => {
                        let hint = if data.is_empty() {
                            "a prefill file must hold at least one byte; for a zeroed region remove prefill_path".to_string()
                        } else {
                            format!(
                                "make size at least {:#x} (the file length rounded up to the page size), or remove size to take it from the file",
                                (data.len() as u64).div_ceil(mr.page_size.max(1)).saturating_mul(mr.page_size.max(1))
                            )
                        };
                        cx.error(pos, e, hint);
                    }
                },
                Some(Err(e)) => cx.error(
                    pos,
                    format!("cannot read prefill file '{p}': {e}"),
                    "check that the file is readable by the user running the build".to_string(),
                ),
                None => cx.error(pos, format!("prefill file '{p}' not found"), format!("searched: {}", search_list(search))),
            }
        }
        out.push(contents);
    }
    out
}

/// Places every memory region (with its `contents`) after `cursor`; returns the placements, the
/// prefill data per region, and the first free physical address.
#[allow(clippy::type_complexity)]
fn place_regions(
    cx: &mut Ctx,
    system: &SystemDescription,
    options: &Options,
    contents: Vec<RegionContents>,
    mut cursor: u64,
) -> Result<(Vec<PlacedRegion>, Vec<(usize, Vec<u8>)>, u64), BuildError> {
    let board = options.board;
    let mut regions = Vec::new();
    let mut prefills = Vec::new();
    for (i, (mr, RegionContents { size, prefill })) in system.memory_regions.iter().zip(contents).enumerate() {
        let page = mr.page_size;
        let placed = match mr.phys_addr {
            Some(paddr) => {
                let in_ram = board.in_ram(paddr, size);
                if !in_ram && !board.in_devices(paddr, size) {
                    cx.error(
                        mr.attr_pos("phys_addr"),
                        format!("memory region '{}' at {paddr:#x}..{:#x} is neither RAM nor a device of {}", mr.name, paddr + size, board.name),
                        format!("RAM is {:#x}..{:#x}; see the board's memory map in libs/bootinfo/src/board.rs", board.ram_base, board.ram_base + board.ram_size),
                    );
                }
                let zero = if in_ram && prefill.is_none() { bootinfo::REGION_ZERO } else { 0 };
                PlacedRegion { paddr, size, page_size: page, flags: bootinfo::REGION_FIXED | zero }
            }
            None => {
                cursor = align_up(cursor, page);
                let r = PlacedRegion { paddr: cursor, size, page_size: page, flags: if prefill.is_some() { 0 } else { bootinfo::REGION_ZERO } };
                cursor += size;
                r
            }
        };
        if let Some(data) = prefill {
            prefills.push((i, data));
        }
        regions.push(placed);
    }
    let image_end = align_up(cursor, PAGE_SIZE);
    // Fixed regions in RAM must not collide with what the tool placed.
    for (mr, r) in system.memory_regions.iter().zip(&regions) {
        if r.flags & bootinfo::REGION_FIXED != 0 && board.in_ram(r.paddr, r.size) && overlaps((r.paddr, r.paddr + r.size), (board.kernel_paddr, image_end)) {
            cx.error(
                mr.attr_pos("phys_addr"),
                format!("memory region '{}' at {:#x}..{:#x} overlaps the kernel and boot image ({:#x}..{image_end:#x})", mr.name, r.paddr, r.paddr + r.size, board.kernel_paddr),
                format!("place it at or above {:#x}", align_up(image_end, r.page_size)),
            );
        }
    }
    // Fixed regions in RAM are not reserved here: the kernel's frame allocator excludes their
    // frames (REGION_FIXED) at boot.
    let reserved_end = image_end;
    let ram_end = board.ram_base + board.ram_size;
    if reserved_end > ram_end {
        return Err(BuildError::Other(format!(
            "the system needs RAM up to {reserved_end:#x} but {} has RAM only up to {ram_end:#x}; shrink memory regions",
            board.name
        )));
    }
    Ok((regions, prefills, reserved_end))
}

/// Lowers the validated description and loaded programs (the PDs', then the templates') into
/// boot-blob records. With no `regions` (the sizing pass) region records are placeholders.
fn lower(system: &SystemDescription, pds: &[LoadedPd], regions: &[PlacedRegion]) -> Builder {
    let mut b = Builder::new();
    for (i, mr) in system.memory_regions.iter().enumerate() {
        let r = regions.get(i).copied().unwrap_or(PlacedRegion { paddr: 0, size: mr.size, page_size: mr.page_size, flags: 0 });
        b.regions.push(bootinfo::Region { paddr: r.paddr, size: r.size, page_size: r.page_size, flags: r.flags });
    }
    for (i, pd) in system.protection_domains.iter().enumerate() {
        let l = &pds[i];
        let name = b.add_string(&pd.name);
        let segments = lower_segments(&mut b, l);
        let first_map = b.maps.len() as u32;
        for m in &pd.maps {
            let region = system.memory_regions.iter().position(|r| r.name == m.mr).unwrap_or(0) as u32;
            b.maps.push(bootinfo::Map { region, vaddr: m.vaddr, perms: to_perms(&m.perms), cached: m.cached });
        }
        let first_irq = b.irqs.len() as u32;
        for irq in &pd.irqs {
            if let sysdesc::Irq::Arm { irq, id, trigger, .. } = irq {
                let trigger = match trigger {
                    sysdesc::Trigger::Level => bootinfo::Trigger::Level,
                    sysdesc::Trigger::Edge => bootinfo::Trigger::Edge,
                };
                b.irqs.push(bootinfo::Irq { irq: *irq as u32, channel_id: *id as u32, trigger });
            }
        }
        let ipc_buffer = l.image.symbol(IPC_BUFFER_SYMBOL).map_or(0, |s| s.addr);
        b.pds.push(bootinfo::ProtectionDomain {
            name,
            priority: pd.priority,
            passive: pd.passive,
            smc: pd.smc == Some(true),
            budget_us: pd.budget,
            period_us: pd.period,
            parent: pd.parent.map_or(bootinfo::NO_PD, |p| p as u32),
            child_id: pd.child_id.unwrap_or(0) as u32,
            cpu: pd.cpu as u32,
            entry: l.image.entry,
            stack_top: PD_STACK_TOP,
            stack_size: pd.stack_size,
            ipc_buffer,
            segments,
            maps: bootinfo::Range { first: first_map, count: b.maps.len() as u32 - first_map },
            irqs: bootinfo::Range { first: first_irq, count: b.irqs.len() as u32 - first_irq },
        });
    }
    for c in &system.channels {
        let end = |e: &sysdesc::End| bootinfo::ChannelEnd { pd: e.pd_index as u32, id: e.id as u32, pp: e.pp, notify: e.notify };
        b.channels.push(bootinfo::Channel { ends: [end(&c.ends[0]), end(&c.ends[1])] });
    }
    lower_templates(&mut b, system, &pds[system.protection_domains.len()..]);
    b
}

/// Adds a program's segments to the blob (page aligned, file bytes in the data area) and returns
/// their range in the segment table.
fn lower_segments(b: &mut Builder, l: &LoadedPd) -> bootinfo::Range {
    let first = b.segments.len() as u32;
    for s in &l.image.segments {
        let pad = (s.vaddr % PAGE_SIZE) as usize;
        let mut data = vec![0u8; pad];
        data.extend_from_slice(&s.data);
        let off = b.add_segment_data(&data);
        b.segments.push(bootinfo::Segment {
            vaddr: s.vaddr - pad as u64,
            mem_size: s.mem_size + pad as u64,
            file_size: data.len() as u64,
            data_offset: off,
            perms: s.perms,
        });
    }
    bootinfo::Range { first, count: b.segments.len() as u32 - first }
}

/// The extension records: templates (segments after every PD's), their instance regions and
/// maps, channel arrays, instance windows and fork grants. Nothing for a system without
/// templates, so its blob is exactly what it was before templates existed.
fn lower_templates(b: &mut Builder, system: &SystemDescription, programs: &[LoadedPd]) {
    // Index of each template's first instance region in the instance-region table.
    let mut region_base = Vec::new();
    for (t, l) in system.templates.iter().zip(programs) {
        let name = b.add_string(&t.name);
        let segments = lower_segments(b, l);
        let first_region = b.instance_regions.len() as u32;
        region_base.push(first_region);
        for r in &t.instance_regions {
            b.instance_regions.push(bootinfo::InstanceRegion { size: r.size, page_size: r.page_size });
        }
        let first_map = b.template_maps.len() as u32;
        for tm in &t.maps {
            let region = match tm.target {
                sysdesc::RegionRef::Instance(r) => bootinfo::TemplateRegion::Instance(first_region + r as u32),
                sysdesc::RegionRef::Static(r) => bootinfo::TemplateRegion::Static(r as u32),
            };
            b.template_maps.push(bootinfo::TemplateMap { region, vaddr: tm.map.vaddr, perms: to_perms(&tm.map.perms), cached: tm.map.cached });
        }
        b.templates.push(bootinfo::Template {
            name,
            priority: t.priority,
            passive: t.passive,
            budget_us: t.budget,
            period_us: t.period,
            entry: l.image.entry,
            stack_top: PD_STACK_TOP,
            stack_size: t.stack_size,
            ipc_buffer: l.image.symbol(IPC_BUFFER_SYMBOL).map_or(0, |s| s.addr),
            segments,
            maps: bootinfo::Range { first: first_map, count: b.template_maps.len() as u32 - first_map },
            instance_regions: bootinfo::Range { first: first_region, count: t.instance_regions.len() as u32 },
        });
    }
    for a in &system.channel_arrays {
        let (p, t) = (&a.pd_end, &a.template_end);
        b.channel_arrays.push(bootinfo::ChannelArray {
            pd: bootinfo::ChannelEnd { pd: p.pd_index as u32, id: p.id as u32, pp: p.pp, notify: p.notify },
            template: t.template_index as u32,
            instance_id: t.id as u32,
            instance_pp: t.pp,
            instance_notify: t.notify,
        });
    }
    for (i, pd) in system.protection_domains.iter().enumerate() {
        for w in &pd.instance_windows {
            b.instance_windows.push(bootinfo::InstanceWindow {
                pd: i as u32,
                template: w.template_index as u32,
                instance_region: region_base[w.template_index] + w.region_index as u32,
                vaddr: w.vaddr,
                stride: w.stride,
                perms: to_perms(&w.perms),
                cached: w.cached,
            });
        }
        for f in &pd.forks {
            b.fork_grants.push(bootinfo::ForkGrant {
                pd: i as u32,
                template: f.template_index as u32,
                handle: f.id as u32,
                max_instances: f.max_instances as u32,
                memory: f.memory,
            });
        }
    }
}

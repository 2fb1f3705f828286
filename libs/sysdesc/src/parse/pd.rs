//! Protection domains and what they contain: program images, maps, irqs,
//! setvars, I/O ports, virtual machines, cspaces and nested child PDs.

use roxmltree::Node;

use super::ctx::Ctx;
use super::template::{parse_fork, parse_instance_window};
use super::{
    CSPACE_SLOTS, DEFAULT_BUDGET, DEFAULT_STACK, IOPORT_LIMIT, MAX_NESTING, MAX_PRIORITY,
    MAX_STACK, MAX_VECTOR, MIN_STACK, SMALL_PAGE,
};
use crate::model::*;
use crate::numbers::hex;

const PD_ATTRS: &[&str] = &[
    "name",
    "priority",
    "budget",
    "period",
    "passive",
    "stack_size",
    "cpu",
    "smc",
    "fpu",
    "domain",
    "id",
    "setvar_id",
];
/// A top-level PD has no child id.
const TOP_PD_ATTRS: &[&str] = &[
    "name",
    "priority",
    "budget",
    "period",
    "passive",
    "stack_size",
    "cpu",
    "smc",
    "fpu",
    "domain",
];
const PD_CHILDREN: &[&str] = &[
    "program_image",
    "map",
    "irq",
    "setvar",
    "protection_domain",
    "virtual_machine",
    "ioport",
    "cspace",
    "instance_window",
    "fork",
];
pub(super) const MAP_ATTRS: &[&str] = &[
    "mr",
    "vaddr",
    "perms",
    "cached",
    "setvar_vaddr",
    "setvar_size",
    "setvar_prefill_size",
];
const VM_MAP_ATTRS: &[&str] = &["mr", "vaddr", "perms", "cached"];
const ARM_IRQ_ATTRS: &[&str] = &["irq", "id", "trigger", "setvar_id"];
const IOAPIC_IRQ_ATTRS: &[&str] = &[
    "id",
    "pin",
    "vector",
    "ioapic",
    "trigger",
    "polarity",
    "setvar_id",
];
const MSI_IRQ_ATTRS: &[&str] = &["id", "pcidev", "handle", "vector", "setvar_id"];

pub(super) fn parse_pd(
    ctx: &mut Ctx,
    node: Node,
    parent: Option<usize>,
    depth: usize,
    pds: &mut Vec<ProtectionDomain>,
) {
    let pos = ctx.pos_elem(node);
    if depth > MAX_NESTING {
        ctx.error(
            pos,
            format!("protection_domain nested more than {MAX_NESTING} levels deep"),
            "a description holds at most 63 PDs".into(),
        );
        return;
    }
    if parent.is_some() {
        ctx.check_attrs(node, PD_ATTRS);
    } else {
        ctx.check_attrs_except(node, TOP_PD_ATTRS, &["id", "setvar_id"]);
        for name in ["id", "setvar_id"] {
            if let Some(attr) = node.attribute_node(name) {
                ctx.error(
                    ctx.pos_attr(&attr),
                    format!("attribute '{name}' is only allowed on a nested protection_domain"),
                    "only a child PD (declared inside its parent) has a child id".into(),
                );
            }
        }
    }
    let name = ctx.required_name(node, "name");

    let priority = priority(ctx, node);
    let (budget, period) = scheduling(ctx, node);
    let passive = ctx.boolean(node, "passive", false);
    let stack_size = stack_size(ctx, node);
    let cpu = parse_cpu(ctx, node, "cpu").unwrap_or(0);
    let smc = ctx.optional_boolean(node, "smc");
    if smc == Some(true) && ctx.opts.arch != Arch::Aarch64 {
        ctx.error(
            ctx.attr_pos(node, "smc"),
            format!(
                "smc=\"true\" on element 'protection_domain' is only available on aarch64, not {}",
                ctx.opts.arch
            ),
            "SMC calls are an ARM feature; remove the attribute".into(),
        );
    }
    let fpu = ctx.boolean(node, "fpu", true);
    let domain = ctx.string(node, "domain");
    let (child_id, setvar_id) = if parent.is_some() {
        (
            ctx.channel_id(node, "child id"),
            ctx.string(node, "setvar_id"),
        )
    } else {
        (None, None)
    };

    let index = pds.len();
    pds.push(ProtectionDomain {
        name: name.clone(),
        parent,
        child_id,
        priority,
        budget,
        period,
        passive,
        stack_size,
        cpu,
        smc,
        fpu,
        domain,
        setvar_id,
        program_image: ProgramImage {
            pos,
            ..ProgramImage::default()
        },
        maps: Vec::new(),
        irqs: Vec::new(),
        setvars: Vec::new(),
        ioports: Vec::new(),
        virtual_machine: None,
        cspace: None,
        instance_windows: Vec::new(),
        forks: Vec::new(),
        pos,
        attrs: ctx.attr_positions(node),
    });

    let mut program_image: Option<ProgramImage> = None;
    let mut maps = Vec::new();
    let mut irqs = Vec::new();
    let mut setvars = Vec::new();
    let mut ioports = Vec::new();
    let mut virtual_machine: Option<VirtualMachine> = None;
    let mut cspace: Option<Cspace> = None;
    let mut instance_windows = Vec::new();
    let mut forks = Vec::new();
    let shown_name = if name.is_empty() { "?" } else { name.as_str() };

    for child in ctx.elements(node) {
        let child_pos = ctx.pos_elem(child);
        match ctx.tag(child) {
            "program_image" => {
                let image = parse_program_image(ctx, child);
                let owner = format!("protection domain '{shown_name}'");
                ctx.set_once(
                    &mut program_image,
                    image,
                    |f| f.pos,
                    child_pos,
                    &owner,
                    "program_image",
                    "a PD runs exactly one program; remove one",
                );
            }
            "map" => maps.push(parse_map(ctx, child, MAP_ATTRS)),
            "irq" => {
                if let Some(irq) = parse_irq(ctx, child) {
                    irqs.push(irq);
                }
            }
            "setvar" => {
                ctx.check_attrs(child, &["symbol", "region_paddr"]);
                ctx.no_children(child);
                let symbol = ctx.required_string(child, "symbol").unwrap_or_default();
                let region_paddr = ctx
                    .required_string(child, "region_paddr")
                    .unwrap_or_default();
                setvars.push(Setvar {
                    symbol,
                    region_paddr,
                    pos: child_pos,
                    attrs: ctx.attr_positions(child),
                });
            }
            "protection_domain" => parse_pd(ctx, child, Some(index), depth + 1, pds),
            "virtual_machine" => {
                let vm = parse_vm(ctx, child);
                let owner = format!("protection domain '{shown_name}'");
                ctx.set_once(
                    &mut virtual_machine,
                    vm,
                    |f| f.pos,
                    child_pos,
                    &owner,
                    "virtual_machine",
                    "a PD manages at most one virtual machine",
                );
            }
            "ioport" => {
                if ctx.opts.arch == Arch::X86_64 {
                    ioports.push(parse_ioport(ctx, child));
                } else {
                    ctx.error(
                        child_pos,
                        format!("element 'ioport' is only available on x86_64, not {}", ctx.opts.arch),
                        "I/O ports are an x86 feature; map device registers with a memory_region instead".into(),
                    );
                }
            }
            "cspace" => {
                let parsed = parse_cspace(ctx, child);
                let owner = format!("protection domain '{shown_name}'");
                ctx.set_once(
                    &mut cspace,
                    parsed,
                    |f| f.pos,
                    child_pos,
                    &owner,
                    "cspace",
                    "put every cap_* element in one <cspace>",
                );
            }
            "instance_window" => instance_windows.push(parse_instance_window(ctx, child)),
            "fork" => forks.push(parse_fork(ctx, child)),
            _ => ctx.unknown_element(child, node, PD_CHILDREN),
        }
    }

    if program_image.is_none() {
        ctx.error(
            pos,
            format!("protection domain '{shown_name}' has no program_image"),
            "add <program_image path=\"NAME.elf\"/> inside the protection_domain".into(),
        );
    }
    let pd = &mut pds[index];
    if let Some(image) = program_image {
        pd.program_image = image;
    }
    pd.maps = maps;
    pd.irqs = irqs;
    pd.setvars = setvars;
    pd.ioports = ioports;
    pd.virtual_machine = virtual_machine;
    pd.cspace = cspace;
    pd.instance_windows = instance_windows;
    pd.forks = forks;
}

/// `priority` of a PD or template, 0..=254 (default 0).
pub(super) fn priority(ctx: &mut Ctx, node: Node) -> u8 {
    match ctx.number(node, "priority") {
        Ok(Some(p)) => {
            let hint = "PD priorities are 0..=254 (higher runs first); 255 is the monitor's";
            if ctx.check_max(node, "priority", "priority", p, MAX_PRIORITY, hint) {
                u8::try_from(p).unwrap_or(0)
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// `budget` and `period` of a PD, template or virtual machine, with their
/// rules.
pub(super) fn scheduling(ctx: &mut Ctx, node: Node) -> (u64, u64) {
    let tag = ctx.tag(node);
    let element = ctx.pos_elem(node);
    let budget = ctx.number(node, "budget").ok().flatten();
    let period = ctx.number(node, "period").ok().flatten();
    for (name, value) in [("budget", budget), ("period", period)] {
        if value == Some(0) {
            ctx.error(
                ctx.attr_pos(node, name),
                format!("{name} must be greater than 0 on element '{tag}'"),
                "budget and period are in microseconds".into(),
            );
            ctx.mark_bad(element, name);
        }
    }
    let budget_value = budget.unwrap_or(DEFAULT_BUDGET);
    let period_value = period.unwrap_or(budget_value);
    let both_usable = !ctx.is_bad(element, "budget") && !ctx.is_bad(element, "period");
    if both_usable && budget_value > period_value {
        let at = if node.attribute("budget").is_some() {
            "budget"
        } else {
            "period"
        };
        ctx.error(
            ctx.attr_pos(node, at),
            format!(
                "budget {budget_value} is greater than period {period_value} on element '{tag}'"
            ),
            "a budget is the time a PD may run in each period; make budget <= period".into(),
        );
    }
    (budget_value, period_value)
}

/// `stack_size` of a PD or template.
pub(super) fn stack_size(ctx: &mut Ctx, node: Node) -> u64 {
    let Ok(Some(size)) = ctx.number(node, "stack_size") else {
        return DEFAULT_STACK;
    };
    let tag = ctx.tag(node);
    let pos = ctx.attr_pos(node, "stack_size");
    let element = ctx.pos_elem(node);
    if !(MIN_STACK..=MAX_STACK).contains(&size) {
        ctx.error(
            pos,
            format!(
                "stack_size {} is out of range ({}..={}) on element '{tag}'",
                hex(size),
                hex(MIN_STACK),
                hex(MAX_STACK)
            ),
            "a PD stack is 4 KiB to 16 MiB".into(),
        );
        ctx.mark_bad(element, "stack_size");
        DEFAULT_STACK
    } else if size % SMALL_PAGE != 0 {
        ctx.error(
            pos,
            format!(
                "stack_size {} is not a multiple of the page size {} on element '{tag}'",
                hex(size),
                hex(SMALL_PAGE)
            ),
            format!(
                "round it up to {}",
                hex(size.div_ceil(SMALL_PAGE) * SMALL_PAGE)
            ),
        );
        ctx.mark_bad(element, "stack_size");
        DEFAULT_STACK
    } else {
        size
    }
}

/// A `cpu` attribute, checked against the configuration's cores.
fn parse_cpu(ctx: &mut Ctx, node: Node, name: &'static str) -> Option<u64> {
    let cpu = ctx.number(node, name).ok().flatten()?;
    let cores = u64::from(ctx.opts.cores);
    if cpu < cores {
        return Some(cpu);
    }
    let tag = ctx.tag(node);
    let plural = if cores == 1 { "core" } else { "cores" };
    ctx.error(
        ctx.attr_pos(node, name),
        format!(
            "cpu {cpu} does not name an existing core on element '{tag}' (this configuration has {cores} {plural})"
        ),
        format!(
            "cores are numbered 0..={}",
            cores.saturating_sub(1)
        ),
    );
    ctx.mark_bad(ctx.pos_elem(node), name);
    None
}

pub(super) fn parse_program_image(ctx: &mut Ctx, node: Node) -> ProgramImage {
    ctx.check_attrs(node, &["path", "path_for_symbols"]);
    ctx.no_children(node);
    let path = ctx.required_name(node, "path");
    ProgramImage {
        path,
        path_for_symbols: ctx.string(node, "path_for_symbols"),
        pos: ctx.pos_elem(node),
        attrs: ctx.attr_positions(node),
    }
}

/// Reads `perms`: only the letters r, w, x, not empty, not write-only.
pub(super) fn map_perms(ctx: &mut Ctx, node: Node) -> Perms {
    let Some((raw, pos)) = ctx.get(node, "perms") else {
        return Perms::RW;
    };
    let tag = ctx.tag(node);
    let element = ctx.pos_elem(node);
    let mut perms = Perms {
        r: false,
        w: false,
        x: false,
    };
    for c in raw.chars() {
        match c {
            'r' => perms.r = true,
            'w' => perms.w = true,
            'x' => perms.x = true,
            _ => {
                ctx.error(
                    pos,
                    format!(
                        "invalid perms '{raw}' on element '{tag}': '{c}' is not one of r, w, x"
                    ),
                    "perms is a combination of the letters r, w and x, e.g. \"rw\"".into(),
                );
                ctx.mark_bad(element, "perms");
                return Perms::RW;
            }
        }
    }
    if raw.is_empty() {
        ctx.error(
            pos,
            format!("perms must not be empty on element '{tag}'"),
            "give at least \"r\"; leave the attribute out for the default \"rw\"".into(),
        );
        ctx.mark_bad(element, "perms");
        return Perms::RW;
    }
    if perms.w && !perms.r {
        ctx.error(
            pos,
            format!("perms '{raw}' on element '{tag}' are write-only (w without r)"),
            "write-only mappings are not allowed; add 'r'".into(),
        );
        ctx.mark_bad(element, "perms");
        return Perms::RW;
    }
    perms
}

pub(super) fn parse_map(ctx: &mut Ctx, node: Node, allowed: &[&str]) -> Map {
    ctx.check_attrs(node, allowed);
    ctx.no_children(node);
    let mr = ctx.required_string(node, "mr").unwrap_or_default();
    let vaddr = ctx.required_number(node, "vaddr").unwrap_or(0);
    let perms = map_perms(ctx, node);
    let cached = ctx.boolean(node, "cached", true);
    Map {
        mr,
        vaddr,
        perms,
        cached,
        setvar_vaddr: ctx.string(node, "setvar_vaddr"),
        setvar_size: ctx.string(node, "setvar_size"),
        setvar_prefill_size: ctx.string(node, "setvar_prefill_size"),
        pos: ctx.pos_elem(node),
        attrs: ctx.attr_positions(node),
    }
}

const TRIGGERS: &[(&str, Trigger)] = &[("level", Trigger::Level), ("edge", Trigger::Edge)];

fn parse_irq(ctx: &mut Ctx, node: Node) -> Option<Irq> {
    ctx.no_children(node);
    let pos = ctx.pos_elem(node);
    let has = |name: &str| node.attribute(name).is_some();
    match ctx.opts.arch {
        Arch::Aarch64 => {
            if !has("irq") && (has("pin") || has("pcidev")) {
                let form = if has("pin") {
                    "IOAPIC (pin=)"
                } else {
                    "MSI (pcidev=)"
                };
                ctx.error(
                    pos,
                    format!("the x86 {form} form of element 'irq' is not valid on aarch64"),
                    "on aarch64 an irq is <irq irq=\"N\" id=\"CHANNEL\" trigger=\"level|edge\"/>"
                        .into(),
                );
                return None;
            }
            ctx.check_attrs(node, ARM_IRQ_ATTRS);
            let irq = ctx.required_number(node, "irq");
            let id = ctx.channel_id(node, "channel id");
            let trigger = ctx.choice(node, "trigger", TRIGGERS, Trigger::Level);
            Some(Irq::Arm {
                irq: irq.unwrap_or(0),
                id: id.unwrap_or(0),
                trigger,
                setvar_id: ctx.string(node, "setvar_id"),
                pos,
                attrs: ctx.attr_positions(node),
            })
        }
        Arch::X86_64 => {
            if has("pin") {
                ctx.check_attrs(node, IOAPIC_IRQ_ATTRS);
                let id = ctx.channel_id(node, "channel id");
                let pin = ctx.required_number(node, "pin");
                let vector = vector(ctx, node);
                let ioapic = ctx.number_or(node, "ioapic", 0);
                let trigger = ctx.choice(node, "trigger", TRIGGERS, Trigger::Level);
                let polarity = ctx.choice(
                    node,
                    "polarity",
                    &[("high", Polarity::High), ("low", Polarity::Low)],
                    Polarity::High,
                );
                Some(Irq::IoApic {
                    id: id.unwrap_or(0),
                    ioapic,
                    pin: pin.unwrap_or(0),
                    vector: vector.unwrap_or(0),
                    trigger,
                    polarity,
                    setvar_id: ctx.string(node, "setvar_id"),
                    pos,
                    attrs: ctx.attr_positions(node),
                })
            } else if has("pcidev") {
                ctx.check_attrs(node, MSI_IRQ_ATTRS);
                let id = ctx.channel_id(node, "channel id");
                let pcidev = pci_attr(ctx, node, "pcidev");
                let handle = ctx.required_number(node, "handle");
                let vector = vector(ctx, node);
                Some(Irq::Msi {
                    id: id.unwrap_or(0),
                    pcidev: pcidev.unwrap_or_default(),
                    handle: handle.unwrap_or(0),
                    vector: vector.unwrap_or(0),
                    setvar_id: ctx.string(node, "setvar_id"),
                    pos,
                    attrs: ctx.attr_positions(node),
                })
            } else if has("irq") {
                ctx.error(
                    ctx.attr_pos(node, "irq"),
                    "the ARM form (irq=) of element 'irq' is not valid on x86_64".into(),
                    "on x86_64 use the IOAPIC form (id, pin, vector) or the MSI form (id, pcidev, handle, vector)".into(),
                );
                None
            } else {
                ctx.error(
                    pos,
                    "element 'irq' on x86_64 needs 'pin' (IOAPIC form) or 'pcidev' (MSI form)".into(),
                    "IOAPIC: <irq id=\"N\" pin=\"P\" vector=\"V\"/>; MSI: <irq id=\"N\" pcidev=\"BB:DD.F\" handle=\"H\" vector=\"V\"/>".into(),
                );
                None
            }
        }
    }
}

fn vector(ctx: &mut Ctx, node: Node) -> Option<u64> {
    let vector = ctx.required_number(node, "vector")?;
    ctx.check_max(
        node,
        "vector",
        "vector",
        vector,
        MAX_VECTOR,
        "x86 IRQ vectors for PDs are 0..=107",
    )
    .then_some(vector)
}

/// Parses `BUS:DEV.FUNC` in hex.
pub(crate) fn parse_pci(text: &str) -> Result<PciAddress, String> {
    let malformed = || format!("'{text}' is not a PCI address of the form BUS:DEV.FUNC (hex)");
    let (bus, rest) = text.split_once(':').ok_or_else(malformed)?;
    let (device, function) = rest.split_once('.').ok_or_else(malformed)?;
    let field = |s: &str, what: &str, max: u64| -> Result<u8, String> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        match u64::from_str_radix(s, 16) {
            Ok(v) if v <= max => Ok(u8::try_from(v).unwrap_or(u8::MAX)),
            _ => Err(format!(
                "PCI {what} '{s}' in '{text}' is out of range (0..={max:#x})"
            )),
        }
    };
    Ok(PciAddress {
        bus: field(bus, "bus", 0xff)?,
        device: field(device, "device", 0x1f)?,
        function: field(function, "function", 0x7)?,
    })
}

pub(super) fn pci_attr(ctx: &mut Ctx, node: Node, name: &'static str) -> Option<PciAddress> {
    let Some((raw, pos)) = ctx.get(node, name) else {
        ctx.missing(node, name);
        return None;
    };
    match parse_pci(raw) {
        Ok(address) => Some(address),
        Err(message) => {
            let tag = ctx.tag(node);
            ctx.error(
                pos,
                format!("invalid {name} on element '{tag}': {message}"),
                "write bus:device.function in hex, bus <= ff, device <= 1f, function <= 7, e.g. 00:03.0".into(),
            );
            ctx.mark_bad(ctx.pos_elem(node), name);
            None
        }
    }
}

fn parse_ioport(ctx: &mut Ctx, node: Node) -> IoPort {
    ctx.check_attrs(node, &["id", "addr", "size", "setvar_id", "setvar_addr"]);
    ctx.no_children(node);
    let element = ctx.pos_elem(node);
    let id = ctx.channel_id(node, "channel id");
    let addr = ctx.required_number(node, "addr");
    let size = ctx.required_number(node, "size");
    if size == Some(0) {
        ctx.error(
            ctx.attr_pos(node, "size"),
            "size must be greater than 0 on element 'ioport'".into(),
            "size is the number of consecutive ports".into(),
        );
        ctx.mark_bad(element, "size");
    }
    if let (Some(addr), Some(size)) = (addr, size) {
        if size > 0 && addr.checked_add(size).is_none_or(|end| end > IOPORT_LIMIT) {
            ctx.error(
                ctx.attr_pos(node, "size"),
                format!(
                    "I/O port range [{}..{}) on element 'ioport' goes past the last port 0xffff",
                    hex(addr),
                    hex(addr.saturating_add(size))
                ),
                "x86 I/O ports are 0x0..=0xffff".into(),
            );
            ctx.mark_bad(element, "size");
        }
    }
    IoPort {
        id: id.unwrap_or(0),
        addr: addr.unwrap_or(0),
        size: size.unwrap_or(0),
        setvar_id: ctx.string(node, "setvar_id"),
        setvar_addr: ctx.string(node, "setvar_addr"),
        pos: element,
        attrs: ctx.attr_positions(node),
    }
}

fn parse_vm(ctx: &mut Ctx, node: Node) -> VirtualMachine {
    let pos = ctx.pos_elem(node);
    let arm = ctx.opts.arch == Arch::Aarch64;
    if arm {
        ctx.check_attrs(node, &["name", "priority", "budget", "period"]);
    } else {
        ctx.check_attrs(node, &["name"]);
    }
    let name = ctx.required_name(node, "name");
    let (mut priority, mut budget, mut period) = (0, DEFAULT_BUDGET, DEFAULT_BUDGET);
    if arm {
        if let Ok(Some(p)) = ctx.number(node, "priority") {
            let hint = "virtual machine priorities are 0..=254 (higher runs first)";
            if ctx.check_max(node, "priority", "priority", p, MAX_PRIORITY, hint) {
                priority = u8::try_from(p).unwrap_or(0);
            }
        }
        (budget, period) = scheduling(ctx, node);
    }
    let mut vcpus = Vec::new();
    let mut maps = Vec::new();
    for child in ctx.elements(node) {
        match ctx.tag(child) {
            "vcpu" => {
                ctx.check_attrs(child, &["id", "cpu", "setvar_id"]);
                ctx.no_children(child);
                let id = ctx.channel_id(child, "vcpu id");
                let cpu = parse_cpu(ctx, child, "cpu");
                vcpus.push(Vcpu {
                    id: id.unwrap_or(0),
                    cpu,
                    setvar_id: ctx.string(child, "setvar_id"),
                    pos: ctx.pos_elem(child),
                    attrs: ctx.attr_positions(child),
                });
            }
            "map" => maps.push(parse_map(ctx, child, VM_MAP_ATTRS)),
            _ => ctx.unknown_element(child, node, &["vcpu", "map"]),
        }
    }
    if vcpus.is_empty() {
        let shown = if name.is_empty() { "?" } else { name.as_str() };
        ctx.error(
            pos,
            format!("virtual machine '{shown}' has no vcpu"),
            "add at least one <vcpu id=\"0\"/>".into(),
        );
    }
    VirtualMachine {
        name,
        priority,
        budget,
        period,
        vcpus,
        maps,
        pos,
        attrs: ctx.attr_positions(node),
    }
}

fn parse_cspace(ctx: &mut Ctx, node: Node) -> Cspace {
    ctx.check_attrs(node, &[]);
    let mut caps = Vec::new();
    for child in ctx.elements(node) {
        let kind = match ctx.tag(child) {
            "cap_tcb" => CapKind::Tcb,
            "cap_sc" => CapKind::Sc,
            "cap_vspace" => CapKind::Vspace,
            _ => {
                ctx.unknown_element(child, node, &["cap_tcb", "cap_sc", "cap_vspace"]);
                continue;
            }
        };
        ctx.check_attrs(child, &["slot", "pd"]);
        ctx.no_children(child);
        let slot = ctx.required_number(child, "slot").and_then(|slot| {
            ctx.check_max(
                child,
                "slot",
                "slot",
                slot,
                CSPACE_SLOTS - 1,
                "a cspace has 128 slots, 0..=127",
            )
            .then_some(slot)
        });
        let pd = ctx.required_name(child, "pd");
        caps.push(CapEntry {
            kind,
            slot: slot.unwrap_or(0),
            pd,
            pos: ctx.pos_elem(child),
            attrs: ctx.attr_positions(child),
        });
    }
    Cspace {
        caps,
        pos: ctx.pos_elem(node),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_pci;
    use crate::model::PciAddress;

    #[test]
    fn pci_addresses() {
        assert_eq!(
            parse_pci("00:1f.7"),
            Ok(PciAddress {
                bus: 0,
                device: 0x1f,
                function: 7
            })
        );
        assert_eq!(
            parse_pci("ff:0.0").map(|p| p.to_string()),
            Ok("ff:00.0".to_string())
        );
        assert!(parse_pci("100:00.0").is_err());
        assert!(parse_pci("00:20.0").is_err());
        assert!(parse_pci("00:00.8").is_err());
        assert!(parse_pci("00.00:0").is_err());
        assert!(parse_pci("0x0:0.0").is_err());
        assert!(parse_pci(":0.0").is_err());
        assert!(parse_pci("").is_err());
    }
}

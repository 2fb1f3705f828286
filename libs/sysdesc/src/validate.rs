//! Rules that relate elements to each other: unique names, references by
//! name (channel ends, maps, setvars, cspace entries, domains), id namespaces
//! within a PD, PPC priorities, overlapping address ranges, limits on the
//! whole description, and the default page size of memory regions.
//!
//! Values that already failed to parse are skipped (see
//! [`Ctx::is_bad`]) so one mistake gives one error.

use std::collections::{HashMap, HashSet};

use crate::model::*;
use crate::numbers::hex;
use crate::parse::{Ctx, Parsed, LARGE_PAGE, MAX_ID, SMALL_PAGE};

mod templates;

/// Most PDs a description may declare, as in Microkit.
pub(crate) const MAX_PDS: usize = 63;
/// The PD name Microkit keeps for its monitor.
const RESERVED_PD_NAME: &str = "monitor";
/// Top of the user part of a virtual address space (the canonical lower
/// half on x86-64, TTBR0 with 48-bit addresses on AArch64, both 47 bits for
/// user mappings).
pub(crate) const USER_TOP: u64 = 0x8000_0000_0000;
/// Top of a device (IOMMU) address space: 48-bit I/O virtual addresses.
pub(crate) const IOVA_TOP: u64 = 1 << 48;

/// Runs every cross-element rule, resolves references and defaults, and
/// returns the finished model.
pub(crate) fn validate(ctx: &mut Ctx, parsed: Parsed) -> SystemDescription {
    let Parsed {
        mut desc,
        domain_names,
    } = parsed;
    let pd_names = check_pds(ctx, &desc);
    check_pd_domains(ctx, &desc, domain_names.as_deref());
    let mr_names = check_mr_names(ctx, &desc);
    let template_names = templates::check_names(ctx, &desc, &pd_names, &mr_names);
    templates::resolve_maps(ctx, &mut desc, &mr_names);
    resolve_channels(ctx, &mut desc, &pd_names);
    templates::resolve_channel_arrays(ctx, &mut desc, &pd_names, &template_names);
    check_channel_ids(ctx, &desc);
    check_child_ids(ctx, &desc);
    templates::resolve_forks(ctx, &mut desc, &template_names);
    templates::resolve_windows(ctx, &mut desc, &template_names);
    check_setvars(ctx, &desc, &mr_names);
    templates::check_setvars(ctx, &desc);
    resolve_page_sizes(ctx, &mut desc, &mr_names);
    let pd_map_ranges = check_maps(ctx, &desc, &mr_names);
    templates::check_maps(ctx, &desc);
    templates::check_windows(ctx, &desc, &pd_map_ranges);
    check_io_address_spaces(ctx, &desc, &mr_names);
    check_irqs(ctx, &desc);
    check_ioports(ctx, &desc);
    check_virtual_machines(ctx, &desc);
    check_cspaces(ctx, &desc, &pd_names);
    check_physical_overlaps(ctx, &desc);
    warn_unmapped(ctx, &desc);
    desc
}

/// Element name -> index of its first declaration.
type Names = HashMap<String, usize>;

/// "name" of an element for messages, `?` when it has none.
fn shown(name: &str) -> &str {
    if name.is_empty() {
        "?"
    } else {
        name
    }
}

/// Counts, reserved and duplicate names. Returns name -> first index.
fn check_pds(ctx: &mut Ctx, desc: &SystemDescription) -> Names {
    let pds = &desc.protection_domains;
    if pds.is_empty() {
        ctx.error(
            desc.pos,
            "the system declares no protection_domain".into(),
            "a system needs at least one <protection_domain>".into(),
        );
    }
    if pds.len() > MAX_PDS {
        ctx.error(
            pds[MAX_PDS].pos,
            format!(
                "too many protection domains: {} declared, at most {MAX_PDS} are allowed",
                pds.len()
            ),
            "static PDs are limited as in Microkit; create many instances at run time instead"
                .into(),
        );
    }
    let mut names = Names::new();
    for (i, pd) in pds.iter().enumerate() {
        if pd.name.is_empty() {
            continue;
        }
        let at = pd.attr_pos("name");
        if pd.name == RESERVED_PD_NAME {
            ctx.error(
                at,
                "protection domain name 'monitor' is reserved".into(),
                "Microkit's own monitor PD is called 'monitor'; pick another name".into(),
            );
        }
        if let Some(&first) = names.get(pd.name.as_str()) {
            ctx.error(
                at,
                format!(
                    "duplicate protection domain name '{}' (first declared at line {})",
                    pd.name, pds[first].pos.line
                ),
                "PD names are unique across the whole system, children included".into(),
            );
        } else {
            names.insert(pd.name.clone(), i);
        }
    }
    names
}

/// A PD names a domain exactly when a domain schedule exists.
fn check_pd_domains(ctx: &mut Ctx, desc: &SystemDescription, domains: Option<&[String]>) {
    for pd in &desc.protection_domains {
        match (domains, &pd.domain) {
            (None, Some(domain)) => ctx.error(
                pd.attr_pos("domain"),
                format!(
                    "protection domain '{}' names domain '{domain}' but the system declares no 'domains'",
                    shown(&pd.name)
                ),
                "remove the attribute, or declare the domain schedule in <domains>".into(),
            ),
            (Some(_), None) => ctx.error(
                pd.pos,
                format!(
                    "protection domain '{}' has no 'domain' attribute; it is required when 'domains' is declared",
                    shown(&pd.name)
                ),
                "add domain=\"NAME\" naming one of the declared domains".into(),
            ),
            (Some(names), Some(domain)) if !names.contains(domain) => ctx.error(
                pd.attr_pos("domain"),
                format!(
                    "protection domain '{}' names domain '{domain}', which is not declared in 'domains'",
                    shown(&pd.name)
                ),
                format!("declared domains: {}", names.join(", ")),
            ),
            _ => {}
        }
    }
}

fn check_mr_names(ctx: &mut Ctx, desc: &SystemDescription) -> Names {
    let mut names = Names::new();
    for (i, mr) in desc.memory_regions.iter().enumerate() {
        if mr.name.is_empty() {
            continue;
        }
        if let Some(&first) = names.get(mr.name.as_str()) {
            ctx.error(
                mr.attr_pos("name"),
                format!(
                    "duplicate memory region name '{}' (first declared at line {})",
                    mr.name, desc.memory_regions[first].pos.line
                ),
                "memory region names are unique".into(),
            );
        } else {
            names.insert(mr.name.clone(), i);
        }
    }
    names
}

/// Resolves end PDs, and checks self channels and PPC priorities.
fn resolve_channels(ctx: &mut Ctx, desc: &mut SystemDescription, pds: &Names) {
    let arch = desc.arch;
    let all_pds = &desc.protection_domains;
    for channel in &mut desc.channels {
        for end in &mut channel.ends {
            if end.pd.is_empty() {
                continue;
            }
            match pds.get(end.pd.as_str()) {
                Some(&index) => end.pd_index = index,
                None => ctx.error(
                    end.attr_pos("pd"),
                    format!("channel end names unknown protection domain '{}'", end.pd),
                    "'pd' must be the name of a declared protection_domain".into(),
                ),
            }
        }
        let [a, b] = &channel.ends;
        if a.pd_index == usize::MAX || b.pd_index == usize::MAX {
            continue;
        }
        if a.pd_index == b.pd_index {
            ctx.error(
                b.attr_pos("pd"),
                format!("channel connects protection domain '{}' to itself", b.pd),
                "a channel joins two different PDs".into(),
            );
            continue;
        }
        if a.pp && b.pp {
            continue; // reported while parsing
        }
        for (caller_end, callee_end) in [(a, b), (b, a)] {
            if !caller_end.pp {
                continue;
            }
            let caller = &all_pds[caller_end.pd_index];
            let callee = &all_pds[callee_end.pd_index];
            let priorities_known =
                !ctx.is_bad(caller.pos, "priority") && !ctx.is_bad(callee.pos, "priority");
            if priorities_known && callee.priority <= caller.priority {
                ctx.error(
                    caller_end.attr_pos("pp"),
                    format!(
                        "protected procedure call from '{}' (priority {}) into '{}' (priority {}): the callee's priority must be strictly higher",
                        caller.name, caller.priority, callee.name, callee.priority
                    ),
                    format!(
                        "raise the priority of '{}' above {}, or make the call from the other end",
                        callee.name, caller.priority
                    ),
                );
            }
            if arch == Arch::X86_64 && callee.virtual_machine.is_some() {
                ctx.error(
                    caller_end.attr_pos("pp"),
                    format!(
                        "on x86_64 protection domain '{}' cannot be called (pp) because it manages a virtual machine",
                        callee.name
                    ),
                    "use notifications to talk to a PD that runs a vCPU".into(),
                );
            }
        }
    }
}

/// One use of an id in a PD's (or template's) namespace.
struct IdUse {
    pd: usize,
    id: u64,
    element: &'static str,
    pos: Pos,
}

/// Reports ids used twice in one PD; `what` names the namespace.
fn report_id_clashes(ctx: &mut Ctx, desc: &SystemDescription, uses: Vec<IdUse>, what: &str) {
    let names: Vec<&str> = desc
        .protection_domains
        .iter()
        .map(|pd| pd.name.as_str())
        .collect();
    report_clashes_in(ctx, &names, "protection domain", uses, what);
}

/// Reports ids used twice by one owner (a PD or a template, named by
/// `owners[use.pd]`); `what` names the namespace.
fn report_clashes_in(
    ctx: &mut Ctx,
    owners: &[&str],
    owner_kind: &str,
    mut uses: Vec<IdUse>,
    what: &str,
) {
    uses.sort_by_key(|u| u.pos.start);
    let used: HashSet<(usize, u64)> = uses.iter().map(|u| (u.pd, u.id)).collect();
    let mut seen: HashMap<(usize, u64), (&'static str, u32)> = HashMap::new();
    for u in uses {
        if let Some(&(element, line)) = seen.get(&(u.pd, u.id)) {
            let hint = match (0..=MAX_ID).find(|id| !used.contains(&(u.pd, *id))) {
                Some(free) => format!(
                    "{what}s are unique within a {}; {free} is free",
                    short_kind(owner_kind)
                ),
                None => {
                    format!(
                        "{what}s are unique within a {}, and all of 0..={MAX_ID} are taken",
                        short_kind(owner_kind)
                    )
                }
            };
            ctx.error(
                u.pos,
                format!(
                    "{what} {} of {owner_kind} '{}' is already used by the '{element}' at line {line}",
                    u.id, owners[u.pd]
                ),
                hint,
            );
        } else {
            seen.insert((u.pd, u.id), (u.element, u.pos.line));
        }
    }
}

/// "PD" for "protection domain", anything else as it is.
fn short_kind(kind: &str) -> &str {
    if kind == "protection domain" {
        "PD"
    } else {
        kind
    }
}

/// Channel ends, irqs and ioports share one id namespace per PD.
fn check_channel_ids(ctx: &mut Ctx, desc: &SystemDescription) {
    let mut uses = Vec::new();
    for channel in &desc.channels {
        for end in &channel.ends {
            if end.pd_index != usize::MAX && !ctx.is_bad(end.pos, "id") {
                uses.push(IdUse {
                    pd: end.pd_index,
                    id: end.id,
                    element: "end",
                    pos: end.attr_pos("id"),
                });
            }
        }
    }
    for array in &desc.channel_arrays {
        let end = &array.pd_end;
        if end.pd_index != usize::MAX && !ctx.is_bad(end.pos, "id") {
            uses.push(IdUse {
                pd: end.pd_index,
                id: end.id,
                element: "end",
                pos: end.attr_pos("id"),
            });
        }
    }
    for (i, pd) in desc.protection_domains.iter().enumerate() {
        for irq in &pd.irqs {
            if !ctx.is_bad(irq.pos(), "id") {
                uses.push(IdUse {
                    pd: i,
                    id: irq.id(),
                    element: "irq",
                    pos: irq.attr_pos("id"),
                });
            }
        }
        for port in &pd.ioports {
            if !ctx.is_bad(port.pos, "id") {
                uses.push(IdUse {
                    pd: i,
                    id: port.id,
                    element: "ioport",
                    pos: port.attrs.get_or("id", port.pos),
                });
            }
        }
    }
    report_id_clashes(ctx, desc, uses, "channel id");
}

/// Child PD ids and vcpu ids share one namespace per parent PD (both are
/// how faults are told apart). This is a separate namespace from channel
/// ids, as in Microkit.
fn check_child_ids(ctx: &mut Ctx, desc: &SystemDescription) {
    let mut uses = Vec::new();
    for (i, pd) in desc.protection_domains.iter().enumerate() {
        if let (Some(parent), Some(id)) = (pd.parent, pd.child_id) {
            if !ctx.is_bad(pd.pos, "id") {
                uses.push(IdUse {
                    pd: parent,
                    id,
                    element: "protection_domain",
                    pos: pd.attr_pos("id"),
                });
            }
        }
        if let Some(vm) = &pd.virtual_machine {
            for vcpu in &vm.vcpus {
                if !ctx.is_bad(vcpu.pos, "id") {
                    uses.push(IdUse {
                        pd: i,
                        id: vcpu.id,
                        element: "vcpu",
                        pos: vcpu.attrs.get_or("id", vcpu.pos),
                    });
                }
            }
        }
    }
    report_id_clashes(ctx, desc, uses, "child id");
}

/// Symbols patched by the builder are unique per PD, and `setvar`
/// references name existing regions.
fn check_setvars(ctx: &mut Ctx, desc: &SystemDescription, mrs: &Names) {
    // (pd, symbol, position of the attribute naming it)
    let mut symbols: Vec<(usize, &str, Pos)> = Vec::new();
    let pds = &desc.protection_domains;
    for (i, pd) in pds.iter().enumerate() {
        for map in &pd.maps {
            for (attr, symbol) in [
                ("setvar_vaddr", &map.setvar_vaddr),
                ("setvar_size", &map.setvar_size),
                ("setvar_prefill_size", &map.setvar_prefill_size),
            ] {
                if let Some(symbol) = symbol {
                    symbols.push((i, symbol, map.attr_pos(attr)));
                }
            }
        }
        for setvar in &pd.setvars {
            symbols.push((i, &setvar.symbol, setvar.attrs.get_or("symbol", setvar.pos)));
        }
        for irq in &pd.irqs {
            if let Some(symbol) = irq.setvar_id() {
                symbols.push((i, symbol, irq.attr_pos("setvar_id")));
            }
        }
        for port in &pd.ioports {
            for (attr, symbol) in [
                ("setvar_id", &port.setvar_id),
                ("setvar_addr", &port.setvar_addr),
            ] {
                if let Some(symbol) = symbol {
                    symbols.push((i, symbol, port.attrs.get_or(attr, port.pos)));
                }
            }
        }
        if let (Some(parent), Some(symbol)) = (pd.parent, &pd.setvar_id) {
            symbols.push((parent, symbol, pd.attr_pos("setvar_id")));
        }
        if let Some(vm) = &pd.virtual_machine {
            for vcpu in &vm.vcpus {
                if let Some(symbol) = &vcpu.setvar_id {
                    symbols.push((i, symbol, vcpu.attrs.get_or("setvar_id", vcpu.pos)));
                }
            }
        }
    }
    for channel in &desc.channels {
        for end in &channel.ends {
            if let (true, Some(symbol)) = (end.pd_index != usize::MAX, &end.setvar_id) {
                symbols.push((end.pd_index, symbol, end.attr_pos("setvar_id")));
            }
        }
    }
    for (i, pd) in pds.iter().enumerate() {
        for window in &pd.instance_windows {
            if let Some(symbol) = &window.setvar_vaddr {
                symbols.push((i, symbol, window.attr_pos("setvar_vaddr")));
            }
            if let Some(symbol) = &window.setvar_stride {
                symbols.push((i, symbol, window.attr_pos("setvar_stride")));
            }
        }
    }
    for array in &desc.channel_arrays {
        let end = &array.pd_end;
        if let (true, Some(symbol)) = (end.pd_index != usize::MAX, &end.setvar_id) {
            symbols.push((end.pd_index, symbol, end.attr_pos("setvar_id")));
        }
    }
    let names: Vec<&str> = pds.iter().map(|pd| pd.name.as_str()).collect();
    report_symbol_clashes(ctx, &names, "protection domain", symbols);

    for pd in pds {
        for setvar in &pd.setvars {
            if setvar.region_paddr.is_empty() {
                continue;
            }
            let at = setvar.attrs.get_or("region_paddr", setvar.pos);
            match mrs.get(setvar.region_paddr.as_str()) {
                None => ctx.error(
                    at,
                    format!(
                        "setvar '{}' names unknown memory region '{}'",
                        setvar.symbol, setvar.region_paddr
                    ),
                    "'region_paddr' must be the name of a declared memory_region".into(),
                ),
                Some(&mr) => {
                    let mr = &desc.memory_regions[mr];
                    if desc.arch == Arch::X86_64 && mr.phys_addr.is_none() {
                        ctx.error(
                            at,
                            format!(
                                "on x86_64 setvar '{}' needs memory region '{}' to have a phys_addr",
                                setvar.symbol, mr.name
                            ),
                            "give the region a fixed phys_addr".into(),
                        );
                    }
                }
            }
        }
    }
}

/// Reports a symbol patched twice in one program; `symbols` holds (owner
/// index into `owners`, symbol, position of the attribute naming it).
fn report_symbol_clashes(
    ctx: &mut Ctx,
    owners: &[&str],
    owner_kind: &str,
    mut symbols: Vec<(usize, &str, Pos)>,
) {
    symbols.sort_by_key(|&(_, _, pos)| pos.start);
    let mut seen: HashMap<(usize, &str), u32> = HashMap::new();
    for (owner, symbol, pos) in symbols {
        if symbol.is_empty() {
            continue;
        }
        if let Some(&line) = seen.get(&(owner, symbol)) {
            ctx.error(
                pos,
                format!(
                    "symbol '{symbol}' of {owner_kind} '{}' is already set at line {line}",
                    owners[owner]
                ),
                format!(
                    "each setvar symbol of a {} is patched once; rename one",
                    short_kind(owner_kind)
                ),
            );
        } else {
            seen.insert((owner, symbol), pos.line);
        }
    }
}

/// All maps of the system (PDs' and virtual machines'), with the name of
/// their address space.
fn all_maps(desc: &SystemDescription) -> Vec<(String, &Map)> {
    let mut maps = Vec::new();
    for pd in &desc.protection_domains {
        let space = format!("protection domain '{}'", shown(&pd.name));
        maps.extend(pd.maps.iter().map(|m| (space.clone(), m)));
        if let Some(vm) = &pd.virtual_machine {
            let space = format!("virtual machine '{}'", shown(&vm.name));
            maps.extend(vm.maps.iter().map(|m| (space.clone(), m)));
        }
    }
    maps
}

/// A region's usable size, if it is known here and valid.
fn known_size(ctx: &Ctx, mr: &MemoryRegion) -> Option<u64> {
    (mr.size > 0 && !ctx.is_bad(mr.pos, "size")).then_some(mr.size)
}

/// Default page sizes: the largest page the size, the physical address and
/// every mapping address allow. Regions mapped for a device stay at 4 KiB
/// (the IOMMU has no large pages).
fn resolve_page_sizes(ctx: &Ctx, desc: &mut SystemDescription, mrs: &Names) {
    let mut large_ok: Vec<bool> = desc
        .memory_regions
        .iter()
        .map(|mr| {
            !mr.page_size_explicit
                && known_size(ctx, mr).is_some_and(|size| size % LARGE_PAGE == 0)
                && mr.phys_addr.is_none_or(|addr| addr % LARGE_PAGE == 0)
        })
        .collect();
    for (_, map) in all_maps(desc) {
        if let Some(&mr) = mrs.get(map.mr.as_str()) {
            if ctx.is_bad(map.pos, "vaddr") || map.vaddr % LARGE_PAGE != 0 {
                large_ok[mr] = false;
            }
        }
    }
    for template in &desc.templates {
        for tm in &template.maps {
            if let RegionRef::Static(mr) = tm.target {
                if mr < large_ok.len()
                    && (ctx.is_bad(tm.map.pos, "vaddr") || tm.map.vaddr % LARGE_PAGE != 0)
                {
                    large_ok[mr] = false;
                }
            }
        }
    }
    for space in &desc.io_address_spaces {
        for iomap in &space.iomaps {
            if let Some(&mr) = mrs.get(iomap.mr.as_str()) {
                large_ok[mr] = false;
            }
        }
    }
    for (mr, large) in desc.memory_regions.iter_mut().zip(large_ok) {
        if large {
            mr.page_size = LARGE_PAGE;
        }
    }
}

/// Finds overlapping half-open ranges. `ranges` are in source order; each
/// returned pair is (later, earlier) by that order, reported once per later
/// range. Empty ranges never overlap.
fn overlaps(ranges: &[(u64, u64)]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..ranges.len())
        .filter(|&i| ranges[i].0 < ranges[i].1)
        .collect();
    order.sort_by_key(|&i| (ranges[i].0, i));
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut widest: Option<usize> = None;
    for i in order {
        if let Some(w) = widest {
            if ranges[w].1 > ranges[i].0 {
                let pair = (i.max(w), i.min(w));
                if !found.iter().any(|&(later, _)| later == pair.0) {
                    found.push(pair);
                }
            }
        }
        if widest.is_none_or(|w| ranges[i].1 > ranges[w].1) {
            widest = Some(i);
        }
    }
    found.sort_unstable();
    found
}

fn range_text(start: u64, end: u64) -> String {
    format!("[{}..{})", hex(start), hex(end))
}

/// What a map's `mr` names, as far as the checks of an address space need
/// to know.
struct Target<'a> {
    /// "memory region" or "instance region", for messages.
    kind: &'static str,
    name: &'a str,
    page_size: u64,
    /// Whether `page_size` is a valid value (not already reported).
    page_size_usable: bool,
    /// The size, if known and valid.
    size: Option<u64>,
    /// Whether the region is filled from a file.
    prefilled: bool,
}

impl<'a> Target<'a> {
    fn memory_region(ctx: &Ctx, mr: &'a MemoryRegion) -> Target<'a> {
        Target {
            kind: "memory region",
            name: &mr.name,
            page_size: mr.page_size,
            page_size_usable: !ctx.is_bad(mr.pos, "page_size"),
            size: known_size(ctx, mr),
            prefilled: matches!(mr.prefill, Some(Prefill::Path(_))),
        }
    }

    fn instance_region(ctx: &Ctx, region: &'a InstanceRegion) -> Target<'a> {
        Target {
            kind: "instance region",
            name: &region.name,
            page_size: region.page_size,
            page_size_usable: !ctx.is_bad(region.pos, "page_size"),
            size: (region.size > 0 && !ctx.is_bad(region.pos, "size")).then_some(region.size),
            prefilled: false,
        }
    }
}

/// Maps name existing regions, are aligned, fit the address space and do
/// not overlap within their address space. Returns, per PD, the address
/// ranges of its maps (`(0, 0)` for a map with a problem), for the checks of
/// instance windows.
fn check_maps(ctx: &mut Ctx, desc: &SystemDescription, mrs: &Names) -> Vec<Vec<(u64, u64)>> {
    let mut pd_ranges = Vec::new();
    for pd in &desc.protection_domains {
        let space = format!("protection domain '{}'", shown(&pd.name));
        let maps: Vec<(&Map, Option<Target>)> = pd
            .maps
            .iter()
            .map(|map| (map, resolve_static(ctx, desc, mrs, map)))
            .collect();
        pd_ranges.push(check_address_space(ctx, &space, &maps));
        if let Some(vm) = &pd.virtual_machine {
            let space = format!("virtual machine '{}'", shown(&vm.name));
            let maps: Vec<(&Map, Option<Target>)> = vm
                .maps
                .iter()
                .map(|map| (map, resolve_static(ctx, desc, mrs, map)))
                .collect();
            check_address_space(ctx, &space, &maps);
        }
    }
    pd_ranges
}

/// The memory region a PD's map names; `None` (reported) if there is none.
fn resolve_static<'a>(
    ctx: &mut Ctx,
    desc: &'a SystemDescription,
    mrs: &Names,
    map: &Map,
) -> Option<Target<'a>> {
    if map.mr.is_empty() {
        return None;
    }
    let Some(&mr_index) = mrs.get(map.mr.as_str()) else {
        ctx.error(
            map.attr_pos("mr"),
            format!("map names unknown memory region '{}'", map.mr),
            "'mr' must be the name of a declared memory_region".into(),
        );
        return None;
    };
    Some(Target::memory_region(ctx, &desc.memory_regions[mr_index]))
}

/// Checks the maps of one address space (`space` names it in messages);
/// each map comes with what it names (`None`: nothing, already reported).
/// Returns the maps' address ranges, `(0, 0)` for those with a problem.
fn check_address_space(
    ctx: &mut Ctx,
    space: &str,
    maps: &[(&Map, Option<Target>)],
) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for (map, target) in maps {
        ranges.push((0, 0));
        let Some(target) = target else {
            continue;
        };
        if map.setvar_prefill_size.is_some() && !target.prefilled {
            ctx.error(
                map.attr_pos("setvar_prefill_size"),
                format!(
                    "setvar_prefill_size on a map of {} '{}', which has no prefill_path",
                    target.kind, target.name
                ),
                "only a region filled from a file has a prefill size".into(),
            );
        }
        if ctx.is_bad(map.pos, "vaddr") {
            continue;
        }
        if target.page_size_usable && map.vaddr % target.page_size != 0 {
            ctx.error(
                map.attr_pos("vaddr"),
                format!(
                    "vaddr {} is not aligned to the page size {} of {} '{}' on element 'map'",
                    hex(map.vaddr),
                    hex(target.page_size),
                    target.kind,
                    target.name
                ),
                format!(
                    "use a multiple of {}, e.g. {}",
                    hex(target.page_size),
                    hex(map.vaddr - map.vaddr % target.page_size)
                ),
            );
            continue;
        }
        let Some(size) = target.size else {
            continue;
        };
        match map.vaddr.checked_add(size) {
            Some(end) if end <= USER_TOP => {
                if let Some(last) = ranges.last_mut() {
                    *last = (map.vaddr, end);
                }
            }
            _ => ctx.error(
                map.attr_pos("vaddr"),
                format!(
                    "map of '{}' at {} goes past the top of the user address space {} on element 'map'",
                    target.name,
                    range_text(map.vaddr, map.vaddr.saturating_add(size)),
                    hex(USER_TOP)
                ),
                "pick a lower vaddr".into(),
            ),
        }
    }
    for (later, earlier) in overlaps(&ranges) {
        let (a, b) = (maps[later].0, maps[earlier].0);
        let (a_start, a_end) = ranges[later];
        let (b_start, b_end) = ranges[earlier];
        ctx.error(
            a.attr_pos("vaddr"),
            format!(
                "map of '{}' at {} overlaps the map of '{}' at {} (line {}) in {space}",
                a.mr,
                range_text(a_start, a_end),
                b.mr,
                range_text(b_start, b_end),
                b.pos.line
            ),
            "move one of the maps to a free virtual address".into(),
        );
    }
    ranges
}

/// IOMMU address spaces: unique names, devices and domain ids; iomaps that
/// name 4 KiB-page regions, are aligned, in range and do not overlap.
fn check_io_address_spaces(ctx: &mut Ctx, desc: &SystemDescription, mrs: &Names) {
    let spaces = &desc.io_address_spaces;
    for (i, space) in spaces.iter().enumerate() {
        let earlier = &spaces[..i];
        if let Some(first) = earlier
            .iter()
            .find(|s| !space.name.is_empty() && s.name == space.name)
        {
            ctx.error(
                space.attrs.get_or("name", space.pos),
                format!(
                    "duplicate io_address_space name '{}' (first declared at line {})",
                    space.name, first.pos.line
                ),
                "io_address_space names are unique; rename one".into(),
            );
        }
        if !ctx.is_bad(space.pos, "peripheral_id") {
            if let Some(first) = earlier.iter().find(|s| {
                s.peripheral_id == space.peripheral_id && !ctx.is_bad(s.pos, "peripheral_id")
            }) {
                ctx.error(
                    space.attrs.get_or("peripheral_id", space.pos),
                    format!(
                        "device {} already has an io_address_space (line {})",
                        space.peripheral_id, first.pos.line
                    ),
                    "a device has one IOMMU address space; map more regions into it".into(),
                );
            }
        }
        if !ctx.is_bad(space.pos, "domain_id") {
            if let Some(first) = earlier
                .iter()
                .find(|s| s.domain_id == space.domain_id && !ctx.is_bad(s.pos, "domain_id"))
            {
                ctx.error(
                    space.attrs.get_or("domain_id", space.pos),
                    format!(
                        "IOMMU domain_id {} is already used by io_address_space '{}' (line {})",
                        space.domain_id, first.name, first.pos.line
                    ),
                    "every io_address_space has its own domain_id".into(),
                );
            }
        }

        let mut ranges = Vec::new();
        for iomap in &space.iomaps {
            ranges.push((0, 0));
            if iomap.mr.is_empty() {
                continue;
            }
            let Some(&mr) = mrs.get(iomap.mr.as_str()) else {
                ctx.error(
                    iomap.attrs.get_or("mr", iomap.pos),
                    format!("iomap names unknown memory region '{}'", iomap.mr),
                    "'mr' must be the name of a declared memory_region".into(),
                );
                continue;
            };
            let mr = &desc.memory_regions[mr];
            if mr.page_size_explicit && mr.page_size == LARGE_PAGE {
                ctx.error(
                    iomap.attrs.get_or("mr", iomap.pos),
                    format!(
                        "memory region '{}' has page_size {}, but IOMMU mappings use {} pages only",
                        mr.name,
                        hex(LARGE_PAGE),
                        hex(SMALL_PAGE)
                    ),
                    "leave page_size out (or 0x1000) on regions a device maps".into(),
                );
                continue;
            }
            if ctx.is_bad(iomap.pos, "iovaddr") {
                continue;
            }
            let at = iomap.attrs.get_or("iovaddr", iomap.pos);
            if iomap.iovaddr % SMALL_PAGE != 0 {
                ctx.error(
                    at,
                    format!(
                        "iovaddr {} is not aligned to the page size {} on element 'iomap'",
                        hex(iomap.iovaddr),
                        hex(SMALL_PAGE)
                    ),
                    format!("use an iovaddr that is a multiple of {}", hex(SMALL_PAGE)),
                );
                continue;
            }
            let Some(size) = known_size(ctx, mr) else {
                continue;
            };
            match iomap.iovaddr.checked_add(size) {
                Some(end) if end <= IOVA_TOP => {
                    if let Some(last) = ranges.last_mut() {
                        *last = (iomap.iovaddr, end);
                    }
                }
                _ => ctx.error(
                    at,
                    format!(
                        "iomap of '{}' at {} goes past the top of the device address space {}",
                        mr.name,
                        range_text(iomap.iovaddr, iomap.iovaddr.saturating_add(size)),
                        hex(IOVA_TOP)
                    ),
                    "pick a lower iovaddr".into(),
                ),
            }
        }
        for (later, earlier) in overlaps(&ranges) {
            let (a, b) = (&space.iomaps[later], &space.iomaps[earlier]);
            ctx.error(
                a.attrs.get_or("iovaddr", a.pos),
                format!(
                    "iomap of '{}' at {} overlaps the iomap of '{}' at {} (line {}) in io_address_space '{}'",
                    a.mr,
                    range_text(ranges[later].0, ranges[later].1),
                    b.mr,
                    range_text(ranges[earlier].0, ranges[earlier].1),
                    b.pos.line,
                    shown(&space.name)
                ),
                "move one of the iomaps to a free address".into(),
            );
        }
    }
}

/// A hardware interrupt is delivered to one PD only.
fn check_irqs(ctx: &mut Ctx, desc: &SystemDescription) {
    #[derive(PartialEq, Eq, Hash)]
    enum Source {
        Line(u64),
        Vector(u64),
        Pin(u64, u64),
    }
    let mut seen: HashMap<Source, (usize, u32)> = HashMap::new();
    for (i, pd) in desc.protection_domains.iter().enumerate() {
        for irq in &pd.irqs {
            let pos = irq.pos();
            let mut sources = Vec::new();
            match irq {
                Irq::Arm { irq: line, .. } if !ctx.is_bad(pos, "irq") => {
                    sources.push((Source::Line(*line), "irq", format!("irq {line}")));
                }
                Irq::IoApic {
                    ioapic,
                    pin,
                    vector,
                    ..
                } => {
                    if !ctx.is_bad(pos, "vector") {
                        sources.push((
                            Source::Vector(*vector),
                            "vector",
                            format!("vector {vector}"),
                        ));
                    }
                    if !ctx.is_bad(pos, "pin") && !ctx.is_bad(pos, "ioapic") {
                        sources.push((
                            Source::Pin(*ioapic, *pin),
                            "pin",
                            format!("IOAPIC {ioapic} pin {pin}"),
                        ));
                    }
                }
                Irq::Msi { vector, .. } if !ctx.is_bad(pos, "vector") => {
                    sources.push((
                        Source::Vector(*vector),
                        "vector",
                        format!("vector {vector}"),
                    ));
                }
                _ => {}
            }
            for (source, attr, what) in sources {
                if let Some(&(owner, line)) = seen.get(&source) {
                    ctx.error(
                        irq.attr_pos(attr),
                        format!(
                            "{what} is already delivered to protection domain '{}' (line {line})",
                            desc.protection_domains[owner].name
                        ),
                        "an interrupt goes to exactly one PD".into(),
                    );
                } else {
                    seen.insert(source, (i, pos.line));
                }
            }
        }
    }
}

/// x86 I/O port ranges never overlap, within a PD or across PDs.
fn check_ioports(ctx: &mut Ctx, desc: &SystemDescription) {
    let mut ports: Vec<(usize, &IoPort)> = Vec::new();
    for (i, pd) in desc.protection_domains.iter().enumerate() {
        ports.extend(pd.ioports.iter().map(|p| (i, p)));
    }
    ports.sort_by_key(|(_, p)| p.pos.start);
    let ranges: Vec<(u64, u64)> = ports
        .iter()
        .map(|(_, p)| {
            let usable = !ctx.is_bad(p.pos, "addr") && !ctx.is_bad(p.pos, "size");
            if usable {
                (p.addr, p.addr.saturating_add(p.size))
            } else {
                (0, 0)
            }
        })
        .collect();
    for (later, earlier) in overlaps(&ranges) {
        let (pd_a, a) = ports[later];
        let (pd_b, b) = ports[earlier];
        ctx.error(
            a.attrs.get_or("addr", a.pos),
            format!(
                "I/O port range {} of protection domain '{}' overlaps {} of protection domain '{}' (line {})",
                range_text(ranges[later].0, ranges[later].1),
                desc.protection_domains[pd_a].name,
                range_text(ranges[earlier].0, ranges[earlier].1),
                desc.protection_domains[pd_b].name,
                b.pos.line
            ),
            "each I/O port belongs to one ioport element".into(),
        );
    }
}

fn check_virtual_machines(ctx: &mut Ctx, desc: &SystemDescription) {
    let mut names: HashMap<&str, u32> = HashMap::new();
    for (i, pd) in desc.protection_domains.iter().enumerate() {
        let Some(vm) = &pd.virtual_machine else {
            continue;
        };
        if !vm.name.is_empty() {
            if let Some(&line) = names.get(vm.name.as_str()) {
                ctx.error(
                    vm.attrs.get_or("name", vm.pos),
                    format!(
                        "duplicate virtual machine name '{}' (first declared at line {line})",
                        vm.name
                    ),
                    "virtual machine names are unique".into(),
                );
            } else {
                names.insert(&vm.name, vm.pos.line);
            }
        }
        if desc.arch == Arch::X86_64 && desc.children_of(i).next().is_some() {
            ctx.error(
                vm.pos,
                format!(
                    "on x86_64 protection domain '{}' cannot both manage a virtual machine and have child protection domains",
                    shown(&pd.name)
                ),
                "move the children to another PD".into(),
            );
        }
    }
}

fn check_cspaces(ctx: &mut Ctx, desc: &SystemDescription, pds: &Names) {
    for pd in &desc.protection_domains {
        let Some(cspace) = &pd.cspace else { continue };
        let mut slots: HashMap<u64, u32> = HashMap::new();
        for cap in &cspace.caps {
            if !cap.pd.is_empty() && !pds.contains_key(cap.pd.as_str()) {
                ctx.error(
                    cap.attrs.get_or("pd", cap.pos),
                    format!(
                        "{} names unknown protection domain '{}'",
                        cap.kind.element(),
                        cap.pd
                    ),
                    "'pd' must be the name of a declared protection_domain".into(),
                );
            }
            if ctx.is_bad(cap.pos, "slot") {
                continue;
            }
            if let Some(&line) = slots.get(&cap.slot) {
                ctx.error(
                    cap.attrs.get_or("slot", cap.pos),
                    format!(
                        "slot {} of the cspace of protection domain '{}' is already used at line {line}",
                        cap.slot,
                        shown(&pd.name)
                    ),
                    "every capability takes its own slot (0..=127)".into(),
                );
            } else {
                slots.insert(cap.slot, cap.pos.line);
            }
        }
    }
}

/// Regions at fixed physical addresses do not overlap.
fn check_physical_overlaps(ctx: &mut Ctx, desc: &SystemDescription) {
    let mrs = &desc.memory_regions;
    let ranges: Vec<(u64, u64)> = mrs
        .iter()
        .map(|mr| match (mr.phys_addr, known_size(ctx, mr)) {
            (Some(addr), Some(size)) if !ctx.is_bad(mr.pos, "phys_addr") => {
                (addr, addr.saturating_add(size))
            }
            _ => (0, 0),
        })
        .collect();
    for (later, earlier) in overlaps(&ranges) {
        let (a, b) = (&mrs[later], &mrs[earlier]);
        ctx.error(
            a.attr_pos("phys_addr"),
            format!(
                "memory region '{}' at physical {} overlaps memory region '{}' at {} (line {})",
                a.name,
                range_text(ranges[later].0, ranges[later].1),
                b.name,
                range_text(ranges[earlier].0, ranges[earlier].1),
                b.pos.line
            ),
            "regions at fixed physical addresses must not share memory; map one region twice instead".into(),
        );
    }
}

fn warn_unmapped(ctx: &mut Ctx, desc: &SystemDescription) {
    let maps = all_maps(desc);
    for mr in &desc.memory_regions {
        let mapped = maps.iter().any(|(_, m)| m.mr == mr.name)
            || desc.templates.iter().any(|t| {
                t.maps
                    .iter()
                    .any(|tm| matches!(tm.target, RegionRef::Static(_)) && tm.map.mr == mr.name)
            })
            || desc
                .io_address_spaces
                .iter()
                .any(|s| s.iomaps.iter().any(|m| m.mr == mr.name));
        if !mapped && !mr.name.is_empty() {
            ctx.warning(
                mr.pos,
                format!("memory region '{}' is never mapped", mr.name),
                Some("map it with <map mr=\"...\"> in a protection_domain, or remove it".into()),
            );
        }
    }
    templates::warn_unused_instance_regions(ctx, desc);
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn overlap_pairs() {
        assert!(overlaps(&[]).is_empty());
        assert!(overlaps(&[(0, 10), (10, 20)]).is_empty());
        assert_eq!(overlaps(&[(0, 10), (5, 20)]), vec![(1, 0)]);
        // The later element in source order is reported, once.
        assert_eq!(overlaps(&[(10, 20), (0, 100)]), vec![(1, 0)]);
        assert_eq!(
            overlaps(&[(0, 100), (10, 20), (30, 40)]),
            vec![(1, 0), (2, 0)]
        );
        // Empty ranges are ignored.
        assert!(overlaps(&[(5, 5), (0, 10)]).is_empty());
    }
}

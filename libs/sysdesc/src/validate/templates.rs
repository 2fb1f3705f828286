//! Cross-element rules of the featherweight-process extension: template and
//! instance-region names, what template maps name, channel arrays (ends,
//! priorities, ids), fork grants (one holder per template, handle ids),
//! instance windows (region, stride, reach, overlaps) and the symbols
//! patched into template programs.

use std::collections::HashMap;

use super::{
    check_address_space, overlaps, range_text, report_clashes_in, report_symbol_clashes, shown,
    IdUse, Names, Target, RESERVED_PD_NAME, USER_TOP,
};
use crate::model::*;
use crate::numbers::hex;
use crate::parse::Ctx;

/// Template names (unique, apart from PD names, not `monitor`) and instance
/// region names (unique in their template, apart from memory region names).
/// Returns template name -> first index.
pub(super) fn check_names(
    ctx: &mut Ctx,
    desc: &SystemDescription,
    pds: &Names,
    mrs: &Names,
) -> Names {
    let templates = &desc.templates;
    let mut names = Names::new();
    for (i, template) in templates.iter().enumerate() {
        if template.name.is_empty() {
            continue;
        }
        let at = template.attr_pos("name");
        if template.name == RESERVED_PD_NAME {
            ctx.error(
                at,
                "template name 'monitor' is reserved".into(),
                "Microkit's own monitor PD is called 'monitor'; pick another name".into(),
            );
        }
        if let Some(&pd) = pds.get(template.name.as_str()) {
            ctx.error(
                at,
                format!(
                    "template name '{}' is already the name of a protection domain (line {})",
                    template.name, desc.protection_domains[pd].pos.line
                ),
                "templates and protection domains share one namespace of names; rename one".into(),
            );
        }
        if let Some(&first) = names.get(template.name.as_str()) {
            ctx.error(
                at,
                format!(
                    "duplicate template name '{}' (first declared at line {})",
                    template.name, templates[first].pos.line
                ),
                "template names are unique".into(),
            );
        } else {
            names.insert(template.name.clone(), i);
        }

        let mut regions: HashMap<&str, u32> = HashMap::new();
        for region in &template.instance_regions {
            if region.name.is_empty() {
                continue;
            }
            let at = region.attr_pos("name");
            if let Some(&line) = regions.get(region.name.as_str()) {
                ctx.error(
                    at,
                    format!(
                        "duplicate instance_region name '{}' in template '{}' (first declared at line {line})",
                        region.name,
                        shown(&template.name)
                    ),
                    "instance region names are unique within their template".into(),
                );
            } else {
                regions.insert(&region.name, region.pos.line);
            }
            if let Some(&mr) = mrs.get(region.name.as_str()) {
                ctx.error(
                    at,
                    format!(
                        "instance_region '{}' of template '{}' has the name of memory region '{}' (line {})",
                        region.name,
                        shown(&template.name),
                        region.name,
                        desc.memory_regions[mr].pos.line
                    ),
                    "a template's maps name instance regions and memory regions alike; rename one".into(),
                );
            }
        }
    }
    names
}

/// Resolves what every template map names: an instance region of its
/// template first, else a memory region.
pub(super) fn resolve_maps(ctx: &mut Ctx, desc: &mut SystemDescription, mrs: &Names) {
    for template in &mut desc.templates {
        for i in 0..template.maps.len() {
            let mr = template.maps[i].map.mr.clone();
            if mr.is_empty() {
                continue;
            }
            if let Some(region) = template.instance_region_index(&mr) {
                template.maps[i].target = RegionRef::Instance(region);
            } else if let Some(&static_mr) = mrs.get(mr.as_str()) {
                template.maps[i].target = RegionRef::Static(static_mr);
            } else {
                ctx.error(
                    template.maps[i].map.attr_pos("mr"),
                    format!(
                        "map names '{mr}', which is neither an instance_region of template '{}' nor a memory region",
                        shown(&template.name)
                    ),
                    "declare <instance_region name=\"...\"/> in the template (one copy per instance) or a <memory_region> (shared)".into(),
                );
            }
        }
    }
}

/// Resolves both ends of every channel array and applies the PPC priority
/// rule against the template's priority.
pub(super) fn resolve_channel_arrays(
    ctx: &mut Ctx,
    desc: &mut SystemDescription,
    pds: &Names,
    templates: &Names,
) {
    let all_pds = &desc.protection_domains;
    let all_templates = &desc.templates;
    for array in &mut desc.channel_arrays {
        let end = &mut array.pd_end;
        if !end.pd.is_empty() {
            match pds.get(end.pd.as_str()) {
                Some(&index) => end.pd_index = index,
                None => ctx.error(
                    end.attr_pos("pd"),
                    format!("channel end names unknown protection domain '{}'", end.pd),
                    "'pd' must be the name of a declared protection_domain".into(),
                ),
            }
        }
        let end = &mut array.template_end;
        if !end.template.is_empty() {
            match templates.get(end.template.as_str()) {
                Some(&index) => end.template_index = index,
                None => ctx.error(
                    end.attr_pos("template"),
                    format!("channel end names unknown template '{}'", end.template),
                    "'template' must be the name of a declared template".into(),
                ),
            }
        }
        let (pd_end, t_end) = (&array.pd_end, &array.template_end);
        if pd_end.pd_index == usize::MAX || t_end.template_index == usize::MAX {
            continue;
        }
        if pd_end.pp && t_end.pp {
            continue; // reported while parsing
        }
        let pd = &all_pds[pd_end.pd_index];
        let template = &all_templates[t_end.template_index];
        if ctx.is_bad(pd.pos, "priority") || ctx.is_bad(template.pos, "priority") {
            continue;
        }
        if pd_end.pp && template.priority <= pd.priority {
            ctx.error(
                pd_end.attr_pos("pp"),
                format!(
                    "protected procedure call from '{}' (priority {}) into template '{}' (priority {}): the callee's priority must be strictly higher",
                    pd.name, pd.priority, template.name, template.priority
                ),
                format!(
                    "raise the priority of template '{}' above {}, or make the call from the other end",
                    template.name, pd.priority
                ),
            );
        }
        if t_end.pp && pd.priority <= template.priority {
            ctx.error(
                t_end.attr_pos("pp"),
                format!(
                    "protected procedure call from template '{}' (priority {}) into '{}' (priority {}): the callee's priority must be strictly higher",
                    template.name, template.priority, pd.name, pd.priority
                ),
                format!(
                    "raise the priority of '{}' above {}, or make the call from the other end",
                    pd.name, template.priority
                ),
            );
        }
    }

    // The template's channel ids: every instance sees all of them.
    let mut uses = Vec::new();
    for array in &desc.channel_arrays {
        let end = &array.template_end;
        if end.template_index != usize::MAX && !ctx.is_bad(end.pos, "id") {
            uses.push(IdUse {
                pd: end.template_index,
                id: end.id,
                element: "end",
                pos: end.attr_pos("id"),
            });
        }
    }
    let names: Vec<&str> = desc.templates.iter().map(|t| t.name.as_str()).collect();
    report_clashes_in(ctx, &names, "template", uses, "channel id");
}

/// Resolves fork grants: a declared template, exactly one holder per
/// template, handle ids unique per PD.
pub(super) fn resolve_forks(ctx: &mut Ctx, desc: &mut SystemDescription, templates: &Names) {
    // template -> (holder PD, line)
    let mut holders: HashMap<usize, (usize, u32)> = HashMap::new();
    let mut order: Vec<(usize, usize)> = Vec::new();
    for (p, pd) in desc.protection_domains.iter().enumerate() {
        order.extend((0..pd.forks.len()).map(|f| (p, f)));
    }
    order.sort_by_key(|&(p, f)| desc.protection_domains[p].forks[f].pos.start);
    for (p, f) in order {
        let fork = &desc.protection_domains[p].forks[f];
        if fork.template.is_empty() {
            continue;
        }
        let Some(&template) = templates.get(fork.template.as_str()) else {
            ctx.error(
                fork.attr_pos("template"),
                format!("fork names unknown template '{}'", fork.template),
                "'template' must be the name of a declared template".into(),
            );
            continue;
        };
        if let Some(&(holder, line)) = holders.get(&template) {
            ctx.error(
                fork.attr_pos("template"),
                format!(
                    "template '{}' is already forked by protection domain '{}' (line {line})",
                    fork.template, desc.protection_domains[holder].name
                ),
                "exactly one protection domain holds the right to fork a template".into(),
            );
        } else {
            holders.insert(template, (p, fork.pos.line));
        }
        desc.protection_domains[p].forks[f].template_index = template;
    }
    for (i, template) in desc.templates.iter().enumerate() {
        if template.name.is_empty() || templates.get(template.name.as_str()) != Some(&i) {
            continue;
        }
        if !holders.contains_key(&i) {
            ctx.error(
                template.attr_pos("name"),
                format!(
                    "template '{}' has no fork holder: no protection domain may create its instances",
                    template.name
                ),
                format!(
                    "add <fork template=\"{}\" id=\"0\" max_instances=\"...\" memory=\"...\"/> to the protection domain that manages its instances",
                    template.name
                ),
            );
        }
    }

    let mut uses = Vec::new();
    for (p, pd) in desc.protection_domains.iter().enumerate() {
        for fork in &pd.forks {
            if !ctx.is_bad(fork.pos, "id") {
                uses.push(IdUse {
                    pd: p,
                    id: fork.id,
                    element: "fork",
                    pos: fork.attr_pos("id"),
                });
            }
        }
    }
    let names: Vec<&str> = desc
        .protection_domains
        .iter()
        .map(|pd| pd.name.as_str())
        .collect();
    report_clashes_in(ctx, &names, "protection domain", uses, "fork handle id");
}

/// Resolves the template and instance region of every instance window and
/// fills in the default stride (the region's size).
pub(super) fn resolve_windows(ctx: &mut Ctx, desc: &mut SystemDescription, templates: &Names) {
    let all_templates = &desc.templates;
    for pd in &mut desc.protection_domains {
        for window in &mut pd.instance_windows {
            if window.template.is_empty() {
                continue;
            }
            let Some(&t) = templates.get(window.template.as_str()) else {
                ctx.error(
                    window.attr_pos("template"),
                    format!(
                        "instance_window names unknown template '{}'",
                        window.template
                    ),
                    "'template' must be the name of a declared template".into(),
                );
                continue;
            };
            window.template_index = t;
            let template = &all_templates[t];
            if window.mr.is_empty() {
                continue;
            }
            let Some(r) = template.instance_region_index(&window.mr) else {
                let declared: Vec<&str> = template
                    .instance_regions
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                let hint = if declared.is_empty() {
                    format!("template '{}' declares no instance_region", template.name)
                } else {
                    format!(
                        "instance regions of template '{}': {}",
                        template.name,
                        declared.join(", ")
                    )
                };
                ctx.error(
                    window.attr_pos("mr"),
                    format!(
                        "instance_window names '{}', which is not an instance_region of template '{}'",
                        window.mr, template.name
                    ),
                    hint,
                );
                continue;
            };
            window.region_index = r;
            if !window.stride_explicit {
                window.stride = template.instance_regions[r].size;
            }
        }
    }
}

/// Symbols patched into a template's program are unique per template.
pub(super) fn check_setvars(ctx: &mut Ctx, desc: &SystemDescription) {
    let mut symbols: Vec<(usize, &str, Pos)> = Vec::new();
    for (i, template) in desc.templates.iter().enumerate() {
        for tm in &template.maps {
            let map = &tm.map;
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
    }
    for array in &desc.channel_arrays {
        let end = &array.template_end;
        if let (true, Some(symbol)) = (end.template_index != usize::MAX, &end.setvar_id) {
            symbols.push((end.template_index, symbol, end.attr_pos("setvar_id")));
        }
    }
    let names: Vec<&str> = desc.templates.iter().map(|t| t.name.as_str()).collect();
    report_symbol_clashes(ctx, &names, "template", symbols);
}

/// Template maps: aligned, in range, not overlapping; static regions only
/// read-only (every instance shares them).
pub(super) fn check_maps(ctx: &mut Ctx, desc: &SystemDescription) {
    for template in &desc.templates {
        let space = format!("template '{}'", shown(&template.name));
        let mut maps: Vec<(&Map, Option<Target>)> = Vec::new();
        for tm in &template.maps {
            let target = match tm.target {
                _ if tm.map.mr.is_empty() => None,
                RegionRef::Instance(r) => template
                    .instance_regions
                    .get(r)
                    .map(|region| Target::instance_region(ctx, region)),
                RegionRef::Static(mr) => desc
                    .memory_regions
                    .get(mr)
                    .map(|mr| Target::memory_region(ctx, mr)),
            };
            if let (RegionRef::Static(mr), Some(_)) = (tm.target, &target) {
                let map = &tm.map;
                if map.perms.w && !ctx.is_bad(map.pos, "perms") {
                    ctx.error(
                        map.attr_pos("perms"),
                        format!(
                            "template '{}' maps memory region '{}' writable; every instance would share it",
                            shown(&template.name),
                            desc.memory_regions[mr].name
                        ),
                        "map memory regions read-only (perms=\"r\") into templates; for memory of each instance's own, declare an instance_region".into(),
                    );
                }
            }
            maps.push((&tm.map, target));
        }
        check_address_space(ctx, &space, &maps);
    }
}

/// Instance windows: stride a page multiple at least the region's size,
/// aligned, `vaddr + stride * max_instances` inside the user address space
/// and clear of the PD's maps and other windows.
pub(super) fn check_windows(
    ctx: &mut Ctx,
    desc: &SystemDescription,
    pd_map_ranges: &[Vec<(u64, u64)>],
) {
    for (p, pd) in desc.protection_domains.iter().enumerate() {
        if pd.instance_windows.is_empty() {
            continue;
        }
        let mut window_ranges = Vec::new();
        for window in &pd.instance_windows {
            window_ranges.push(window_range(ctx, desc, window).unwrap_or((0, 0)));
        }
        // Maps and windows together, in source order, for the overlap check.
        enum Item<'a> {
            Map(&'a Map),
            Window(&'a InstanceWindow),
        }
        let mut items: Vec<(Item, (u64, u64), Pos)> = Vec::new();
        let map_ranges = pd_map_ranges.get(p).map(Vec::as_slice).unwrap_or(&[]);
        for (map, range) in pd.maps.iter().zip(map_ranges) {
            items.push((Item::Map(map), *range, map.pos));
        }
        for (window, range) in pd.instance_windows.iter().zip(&window_ranges) {
            items.push((Item::Window(window), *range, window.pos));
        }
        items.sort_by_key(|(_, _, pos)| pos.start);
        let ranges: Vec<(u64, u64)> = items.iter().map(|(_, r, _)| *r).collect();
        let describe = |item: &Item, range: (u64, u64)| match item {
            Item::Map(m) => format!("the map of '{}' at {}", m.mr, range_text(range.0, range.1)),
            Item::Window(w) => format!(
                "the instance window of '{}/{}' at {}",
                w.template,
                w.mr,
                range_text(range.0, range.1)
            ),
        };
        for (later, earlier) in overlaps(&ranges) {
            let (a, a_range, _) = &items[later];
            let (b, b_range, b_pos) = &items[earlier];
            if let (Item::Map(_), Item::Map(_)) = (a, b) {
                continue; // reported with the maps
            }
            let (at, subject) = match a {
                Item::Map(m) => (m.attr_pos("vaddr"), describe(a, *a_range)),
                Item::Window(w) => (w.attr_pos("vaddr"), describe(a, *a_range)),
            };
            let subject = subject.trim_start_matches("the ").to_string();
            ctx.error(
                at,
                format!(
                    "{subject} overlaps {} (line {}) in protection domain '{}'",
                    describe(b, *b_range),
                    b_pos.line,
                    shown(&pd.name)
                ),
                "an instance window reserves stride * max_instances bytes; move it or the other one to a free virtual address".into(),
            );
        }
    }
}

/// The address range an instance window reserves, after checking its
/// stride, alignment and reach; `None` when it has a problem (reported) or
/// depends on something already reported.
fn window_range(
    ctx: &mut Ctx,
    desc: &SystemDescription,
    window: &InstanceWindow,
) -> Option<(u64, u64)> {
    let template = desc.templates.get(window.template_index)?;
    let region = template.instance_regions.get(window.region_index)?;
    if ctx.is_bad(region.pos, "page_size") || ctx.is_bad(region.pos, "size") || region.size == 0 {
        return None;
    }
    let page = region.page_size;
    let mut ok = true;
    if window.stride_explicit && !ctx.is_bad(window.pos, "stride") {
        if window.stride % page != 0 {
            ctx.error(
                window.attr_pos("stride"),
                format!(
                    "stride {} is not a multiple of the page size {} of instance region '{}' on element 'instance_window'",
                    hex(window.stride),
                    hex(page),
                    region.name
                ),
                format!(
                    "round it up to {}",
                    hex(window.stride.div_ceil(page).saturating_mul(page))
                ),
            );
            ok = false;
        } else if window.stride < region.size {
            ctx.error(
                window.attr_pos("stride"),
                format!(
                    "stride {} is smaller than instance region '{}' ({}) on element 'instance_window'",
                    hex(window.stride),
                    region.name,
                    hex(region.size)
                ),
                format!(
                    "instances' copies must not overlap: use a stride of at least {}",
                    hex(region.size)
                ),
            );
            ok = false;
        }
    }
    if ctx.is_bad(window.pos, "stride") {
        ok = false;
    }
    if ctx.is_bad(window.pos, "vaddr") {
        return None;
    }
    if window.vaddr % page != 0 {
        ctx.error(
            window.attr_pos("vaddr"),
            format!(
                "vaddr {} is not aligned to the page size {} of instance region '{}' on element 'instance_window'",
                hex(window.vaddr),
                hex(page),
                region.name
            ),
            format!(
                "use a multiple of {}, e.g. {}",
                hex(page),
                hex(window.vaddr - window.vaddr % page)
            ),
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    let (_, fork) = desc.fork_of(window.template_index)?;
    if ctx.is_bad(fork.pos, "max_instances") {
        return None;
    }
    let reach = window
        .stride
        .checked_mul(fork.max_instances)
        .and_then(|bytes| window.vaddr.checked_add(bytes));
    match reach {
        Some(end) if end <= USER_TOP => Some((window.vaddr, end)),
        _ => {
            ctx.error(
                window.attr_pos("vaddr"),
                format!(
                    "instance window of '{}/{}' at {} ({} instances, stride {}) goes past the top of the user address space {}",
                    template.name,
                    region.name,
                    range_text(
                        window.vaddr,
                        window
                            .vaddr
                            .saturating_add(window.stride.saturating_mul(fork.max_instances))
                    ),
                    fork.max_instances,
                    hex(window.stride),
                    hex(USER_TOP)
                ),
                "pick a lower vaddr, a smaller stride or fewer max_instances".into(),
            );
            None
        }
    }
}

/// An instance region neither mapped into its template nor shown in any
/// window is allocated for every instance to no use.
pub(super) fn warn_unused_instance_regions(ctx: &mut Ctx, desc: &SystemDescription) {
    for (t, template) in desc.templates.iter().enumerate() {
        for (r, region) in template.instance_regions.iter().enumerate() {
            // A duplicate name is reported as such.
            if region.name.is_empty() || template.instance_region_index(&region.name) != Some(r) {
                continue;
            }
            let mapped = template
                .maps
                .iter()
                .any(|tm| tm.target == RegionRef::Instance(r));
            let windowed = desc
                .windows_of_template(t)
                .any(|(_, w)| w.region_index == r);
            if !mapped && !windowed {
                ctx.warning(
                    region.pos,
                    format!(
                        "instance region '{}' of template '{}' is never mapped",
                        region.name,
                        shown(&template.name)
                    ),
                    Some(format!(
                        "map it with <map mr=\"{}\"> in the template or show it in an <instance_window>, or remove it",
                        region.name
                    )),
                );
            }
        }
    }
}

//! The other top-level elements: memory regions, channels, the domain
//! schedule and IOMMU address spaces.

use roxmltree::Node;

use super::ctx::{Ctx, Reported};
use super::pd::pci_attr;
use super::{LARGE_PAGE, MAX_DOMAINS, MAX_SCHEDULE_ENTRIES, SMALL_PAGE};
use crate::model::*;
use crate::numbers::{hex, parse_number};

const MR_ATTRS: &[&str] = &[
    "name",
    "size",
    "page_size",
    "phys_addr",
    "prefill_path",
    "prefill_bootinfo",
];
const END_ATTRS: &[&str] = &["pd", "template", "id", "pp", "notify", "setvar_id"];

// ----- memory regions ------------------------------------------------------

pub(super) fn parse_mr(ctx: &mut Ctx, node: Node) -> MemoryRegion {
    ctx.check_attrs(node, MR_ATTRS);
    ctx.no_children(node);
    let pos = ctx.pos_elem(node);
    let name = ctx.required_name(node, "name");

    let page_size = match ctx.number(node, "page_size") {
        Ok(Some(size)) if size == SMALL_PAGE || size == LARGE_PAGE => Some(size),
        Ok(Some(size)) => {
            ctx.error(
                ctx.attr_pos(node, "page_size"),
                format!(
                    "page_size {} is not supported on element 'memory_region'",
                    hex(size)
                ),
                "page_size is 0x1000 (4 KiB) or 0x200000 (2 MiB)".into(),
            );
            ctx.mark_bad(pos, "page_size");
            None
        }
        _ => None,
    };
    let page_usable = !ctx.is_bad(pos, "page_size");
    let min_page = page_size.unwrap_or(SMALL_PAGE);

    let prefill_path = match ctx.get(node, "prefill_path") {
        Some(("", at)) => {
            ctx.error(
                at,
                "attribute 'prefill_path' on element 'memory_region' must not be empty".into(),
                "name the file to copy into the region".into(),
            );
            ctx.mark_bad(pos, "prefill_path");
            None
        }
        Some((path, _)) => Some(path.to_string()),
        None => None,
    };
    let bootinfo = match ctx.get(node, "prefill_bootinfo") {
        None => None,
        Some((_, at)) if ctx.opts.arch != Arch::X86_64 => {
            ctx.error(
                at,
                format!(
                    "attribute 'prefill_bootinfo' on element 'memory_region' is only available on x86_64, not {}",
                    ctx.opts.arch
                ),
                "boot information prefills are x86 boot data".into(),
            );
            ctx.mark_bad(pos, "prefill_bootinfo");
            None
        }
        Some((kind, at)) => match BootinfoKind::from_name(kind) {
            Some(kind) => Some(kind),
            None => {
                let kinds: Vec<&str> = BootinfoKind::ALL.iter().map(|(n, _)| *n).collect();
                ctx.error(
                    at,
                    format!(
                        "unknown boot information kind '{kind}' for attribute 'prefill_bootinfo' on element 'memory_region'"
                    ),
                    format!("prefill_bootinfo is one of {}", kinds.join(", ")),
                );
                ctx.mark_bad(pos, "prefill_bootinfo");
                None
            }
        },
    };
    let has_path = node.attribute("prefill_path").is_some();
    let has_bootinfo = node.attribute("prefill_bootinfo").is_some();
    if has_path && has_bootinfo {
        ctx.error(
            pos,
            "memory_region has both 'prefill_path' and 'prefill_bootinfo'".into(),
            "a region is filled from a file or from boot information, never both".into(),
        );
    }
    let prefill = match (prefill_path, bootinfo) {
        (Some(path), _) => Some(Prefill::Path(path)),
        (None, Some(kind)) => Some(Prefill::Bootinfo(kind)),
        (None, None) => None,
    };

    let (size, size_explicit) = match ctx.number(node, "size") {
        Ok(Some(0)) => {
            ctx.error(
                ctx.attr_pos(node, "size"),
                "size must be greater than 0 on element 'memory_region'".into(),
                "give the region at least one page, e.g. size=\"0x1000\"".into(),
            );
            ctx.mark_bad(pos, "size");
            (0, true)
        }
        Ok(Some(size)) => {
            if page_usable && size % min_page != 0 {
                ctx.error(
                    ctx.attr_pos(node, "size"),
                    format!(
                        "size {} is not a multiple of the page size {} on element 'memory_region'",
                        hex(size),
                        hex(min_page)
                    ),
                    format!(
                        "round it up to {}",
                        hex(size.div_ceil(min_page).saturating_mul(min_page))
                    ),
                );
                ctx.mark_bad(pos, "size");
            }
            (size, true)
        }
        Ok(None) if has_path => (0, false),
        Ok(None) if has_bootinfo => (min_page, false),
        Ok(None) => {
            ctx.missing(node, "size");
            (0, false)
        }
        Err(Reported) => (0, true),
    };

    let phys_addr = match ctx.number(node, "phys_addr") {
        Ok(Some(addr)) => {
            let at = ctx.attr_pos(node, "phys_addr");
            if page_usable && addr % min_page != 0 {
                ctx.error(
                    at,
                    format!(
                        "phys_addr {} is not aligned to the page size {} on element 'memory_region'",
                        hex(addr),
                        hex(min_page)
                    ),
                    "a physical address must be a multiple of the region's page size".into(),
                );
                ctx.mark_bad(pos, "phys_addr");
            } else if addr.checked_add(size).is_none() {
                ctx.error(
                    at,
                    format!(
                        "memory_region at phys_addr {} with size {} goes past the end of the address space",
                        hex(addr),
                        hex(size)
                    ),
                    "check phys_addr and size: the region must end below 2^64".into(),
                );
                ctx.mark_bad(pos, "phys_addr");
            }
            Some(addr)
        }
        _ => None,
    };

    MemoryRegion {
        name,
        size,
        size_explicit,
        page_size: min_page,
        page_size_explicit: page_size.is_some(),
        phys_addr,
        prefill,
        pos,
        attrs: ctx.attr_positions(node),
    }
}

// ----- channels ------------------------------------------------------------

/// A `<channel>`: between two PDs, or a channel array (one end on a
/// template).
pub(super) enum ParsedChannel {
    Static(Channel),
    Array(ChannelArray),
}

/// One `<end>` as written: on a PD or on a template.
enum ParsedEnd {
    Pd(End),
    Template(TemplateEnd),
}

impl ParsedEnd {
    fn pp(&self) -> bool {
        match self {
            ParsedEnd::Pd(e) => e.pp,
            ParsedEnd::Template(e) => e.pp,
        }
    }

    fn attr_pos(&self, name: &str) -> Pos {
        match self {
            ParsedEnd::Pd(e) => e.attr_pos(name),
            ParsedEnd::Template(e) => e.attr_pos(name),
        }
    }
}

fn parse_end(ctx: &mut Ctx, node: Node) -> ParsedEnd {
    ctx.check_attrs(node, END_ATTRS);
    ctx.no_children(node);
    let pos = ctx.pos_elem(node);
    // With both, the end is read as a PD's (one mistake, one error).
    let has_template = node.attribute("template").is_some() && node.attribute("pd").is_none();
    if node.attribute("template").is_some() && node.attribute("pd").is_some() {
        ctx.error(
            ctx.attr_pos(node, "template"),
            "channel end names both a 'pd' and a 'template'".into(),
            "an end is on one static PD (pd=\"...\") or on a template's instances (template=\"...\")".into(),
        );
    }
    let name = if has_template {
        ctx.required_name(node, "template")
    } else {
        ctx.required_name(node, "pd")
    };
    let id = ctx.channel_id(node, "channel id");
    let pp = ctx.boolean(node, "pp", false);
    let notify = ctx.boolean(node, "notify", true);
    let setvar_id = ctx.string(node, "setvar_id");
    let attrs = ctx.attr_positions(node);
    if has_template {
        ParsedEnd::Template(TemplateEnd {
            template: name,
            template_index: usize::MAX,
            id: id.unwrap_or(0),
            pp,
            notify,
            setvar_id,
            pos,
            attrs,
        })
    } else {
        ParsedEnd::Pd(End {
            pd: name,
            pd_index: usize::MAX,
            id: id.unwrap_or(0),
            pp,
            notify,
            setvar_id,
            pos,
            attrs,
        })
    }
}

pub(super) fn parse_channel(ctx: &mut Ctx, node: Node) -> Option<ParsedChannel> {
    ctx.check_attrs(node, &[]);
    let pos = ctx.pos_elem(node);
    let mut ends = Vec::new();
    for child in ctx.elements(node) {
        if ctx.tag(child) != "end" {
            ctx.unknown_element(child, node, &["end"]);
            continue;
        }
        ends.push(parse_end(ctx, child));
    }
    let count = ends.len();
    let Ok([a, b]) = <[ParsedEnd; 2]>::try_from(ends) else {
        ctx.error(
            pos,
            format!("channel must have exactly two 'end' elements, found {count}"),
            "a channel joins exactly two PDs: <end pd=\"A\" id=\"0\"/><end pd=\"B\" id=\"0\"/>"
                .into(),
        );
        return None;
    };
    if a.pp() && b.pp() {
        ctx.error(
            b.attr_pos("pp"),
            "pp is set on both ends of the channel".into(),
            "a protected procedure call goes one way: set pp=\"true\" only on the caller's end"
                .into(),
        );
    }
    Some(match (a, b) {
        (ParsedEnd::Pd(a), ParsedEnd::Pd(b)) => {
            ParsedChannel::Static(Channel { ends: [a, b], pos })
        }
        (ParsedEnd::Pd(pd_end), ParsedEnd::Template(template_end)) => {
            ParsedChannel::Array(ChannelArray {
                pd_end,
                template_end,
                template_first: false,
                pos,
            })
        }
        (ParsedEnd::Template(template_end), ParsedEnd::Pd(pd_end)) => {
            ParsedChannel::Array(ChannelArray {
                pd_end,
                template_end,
                template_first: true,
                pos,
            })
        }
        (ParsedEnd::Template(a), ParsedEnd::Template(b)) => {
            ctx.error(
                b.attr_pos("template"),
                format!(
                    "channel joins two templates ('{}' and '{}')",
                    a.template, b.template
                ),
                "a channel array joins a template's instances to one static protection domain"
                    .into(),
            );
            return None;
        }
    })
}

// ----- domains -------------------------------------------------------------

/// Reads `<domains>`: the schedule (if complete enough) and the names of the
/// declared domains.
pub(super) fn parse_domains(ctx: &mut Ctx, node: Node) -> (Option<DomainSchedule>, Vec<String>) {
    ctx.check_attrs(node, &[]);
    let pos = ctx.pos_elem(node);
    if ctx.opts.cores > 1 {
        ctx.error(
            pos,
            format!(
                "element 'domains' is not allowed on a multi-core configuration ({} cores)",
                ctx.opts.cores
            ),
            "the domain scheduler needs a single-core configuration".into(),
        );
    }
    let mut domains: Vec<Domain> = Vec::new();
    let mut schedule_node: Option<Node> = None;
    for child in ctx.elements(node) {
        let child_pos = ctx.pos_elem(child);
        match ctx.tag(child) {
            "domain" => {
                ctx.check_attrs(child, &["name", "id"]);
                ctx.no_children(child);
                let name = ctx.required_name(child, "name");
                let id = ctx.number(child, "id").ok().flatten().and_then(|id| {
                    ctx.check_max(
                        child,
                        "id",
                        "domain id",
                        id,
                        MAX_DOMAINS - 1,
                        "domain ids are 0..=15",
                    )
                    .then_some(id)
                });
                if !name.is_empty() {
                    if let Some(first) = domains.iter().find(|d| d.name == name) {
                        let line = first.pos.line;
                        ctx.error(
                            ctx.attr_pos(child, "name"),
                            format!(
                                "duplicate domain name '{name}' (first declared at line {line})"
                            ),
                            "domain names are unique".into(),
                        );
                    }
                }
                if let Some(id) = id {
                    if let Some(first) = domains.iter().find(|d| d.id_explicit && d.id == id) {
                        let line = first.pos.line;
                        ctx.error(
                            ctx.attr_pos(child, "id"),
                            format!("duplicate domain id {id} (first used at line {line})"),
                            "domain ids are unique; leave 'id' out to get a free one".into(),
                        );
                    }
                }
                if domains.len() as u64 == MAX_DOMAINS {
                    ctx.error(
                        child_pos,
                        format!("too many domains: at most {MAX_DOMAINS} may be declared"),
                        format!("merge domains so that at most {MAX_DOMAINS} remain; a domain may hold many PDs"),
                    );
                }
                domains.push(Domain {
                    name,
                    id: id.unwrap_or(u64::MAX),
                    id_explicit: id.is_some(),
                    pos: child_pos,
                });
            }
            "domain_schedule" => {
                if schedule_node.is_some() {
                    ctx.error(
                        child_pos,
                        "more than one 'domain_schedule' in 'domains'".into(),
                        "a description has exactly one domain schedule".into(),
                    );
                } else {
                    schedule_node = Some(child);
                }
            }
            _ => ctx.unknown_element(child, node, &["domain", "domain_schedule"]),
        }
    }
    // Domains without an id get the lowest free one.
    let mut next = 0;
    for i in 0..domains.len() {
        if domains[i].id_explicit {
            continue;
        }
        while domains.iter().any(|d| d.id_explicit && d.id == next) {
            next += 1;
        }
        domains[i].id = next;
        next += 1;
    }

    let names: Vec<String> = domains.iter().map(|d| d.name.clone()).collect();
    let Some(schedule_node) = schedule_node else {
        ctx.error(
            pos,
            "element 'domains' has no 'domain_schedule'".into(),
            "add <domain_schedule> with the schedule entries".into(),
        );
        return (None, names);
    };
    let schedule_pos = ctx.pos_elem(schedule_node);
    ctx.check_attrs(schedule_node, &["start_index", "index_shift"]);
    let start_index = ctx.number_or(schedule_node, "start_index", 0);
    let index_shift = ctx.number_or(schedule_node, "index_shift", 0);
    let mut schedule = Vec::new();
    let mut end_marker: Option<Pos> = None;
    for child in ctx.elements(schedule_node) {
        let child_pos = ctx.pos_elem(child);
        let item = match ctx.tag(child) {
            "schedule_entry" => {
                ctx.check_attrs(child, &["domain", "duration"]);
                ctx.no_children(child);
                let domain = ctx.required_name(child, "domain");
                if !domain.is_empty() && !domains.iter().any(|d| d.name == domain) {
                    ctx.error(
                        ctx.attr_pos(child, "domain"),
                        format!("schedule_entry names domain '{domain}', which is not declared in 'domains'"),
                        "declare it with <domain name=\"...\"/>".into(),
                    );
                }
                let duration = ctx
                    .get(child, "duration")
                    .and_then(|(raw, at)| duration(ctx, raw, at));
                if child.attribute("duration").is_none() {
                    ctx.missing(child, "duration");
                }
                if let Some(marker) = end_marker {
                    ctx.warning(
                        child_pos,
                        format!(
                            "schedule_entry after the schedule_end_marker at line {} is never run",
                            marker.line
                        ),
                        Some("move the end marker to the end of the schedule".into()),
                    );
                }
                ScheduleItem::Entry {
                    domain,
                    duration: duration.unwrap_or(Duration::Micros(1)),
                    pos: child_pos,
                }
            }
            "schedule_end_marker" => {
                ctx.check_attrs(child, &[]);
                ctx.no_children(child);
                if let Some(first) = end_marker {
                    ctx.error(
                        child_pos,
                        format!(
                            "more than one schedule_end_marker (the first is at line {})",
                            first.line
                        ),
                        "a schedule has at most one end marker; remove this one".into(),
                    );
                }
                end_marker.get_or_insert(child_pos);
                ScheduleItem::EndMarker { pos: child_pos }
            }
            _ => {
                ctx.unknown_element(
                    child,
                    schedule_node,
                    &["schedule_entry", "schedule_end_marker"],
                );
                continue;
            }
        };
        if schedule.len() as u64 == MAX_SCHEDULE_ENTRIES {
            ctx.error(
                child_pos,
                format!("too many schedule entries: at most {MAX_SCHEDULE_ENTRIES} are allowed"),
                format!("shorten the schedule to {MAX_SCHEDULE_ENTRIES} entries, e.g. by merging neighbouring entries of one domain"),
            );
        }
        schedule.push(item);
    }
    let len = schedule.len() as u64;
    if !ctx.is_bad(schedule_pos, "start_index") && start_index >= len {
        ctx.error(
            ctx.attr_pos(schedule_node, "start_index"),
            format!(
                "start_index {start_index} is outside the schedule of {len} entries on element 'domain_schedule'"
            ),
            "start_index names the entry the schedule starts at, 0 for the first".into(),
        );
    }
    if !ctx.is_bad(schedule_pos, "index_shift")
        && len <= MAX_SCHEDULE_ENTRIES
        && index_shift.saturating_add(len) > MAX_SCHEDULE_ENTRIES
    {
        ctx.error(
            ctx.attr_pos(schedule_node, "index_shift"),
            format!(
                "index_shift {index_shift} puts the schedule of {len} entries past the kernel's {MAX_SCHEDULE_ENTRIES}-entry table on element 'domain_schedule'"
            ),
            "index_shift + number of entries must be at most 100".into(),
        );
    }
    let schedule = DomainSchedule {
        domains,
        start_index,
        index_shift,
        schedule,
        pos,
        schedule_pos,
    };
    (Some(schedule), names)
}

/// Reads a schedule duration: a number then `us` or `ticks` (a space
/// between is allowed).
fn duration(ctx: &mut Ctx, raw: &str, at: Pos) -> Option<Duration> {
    let parsed = if let Some(n) = raw.strip_suffix("ticks") {
        parse_number(n.trim_end()).ok().map(Duration::Ticks)
    } else if let Some(n) = raw.strip_suffix("us") {
        parse_number(n.trim_end()).ok().map(Duration::Micros)
    } else {
        None
    };
    match parsed {
        Some(Duration::Micros(0) | Duration::Ticks(0)) => {
            ctx.error(
                at,
                format!("duration '{raw}' must be greater than 0 on element 'schedule_entry'"),
                "give every slot some time, e.g. duration=\"1000us\", or remove the entry".into(),
            );
            None
        }
        Some(d) => Some(d),
        None => {
            ctx.error(
                at,
                format!("invalid duration '{raw}' on element 'schedule_entry'"),
                "a duration is a number followed by 'us' or 'ticks', e.g. \"1000us\"".into(),
            );
            None
        }
    }
}

// ----- IOMMU ---------------------------------------------------------------

pub(super) fn parse_io_address_space(ctx: &mut Ctx, node: Node) -> Option<IoAddressSpace> {
    let pos = ctx.pos_elem(node);
    if ctx.opts.arch != Arch::X86_64 {
        ctx.error(
            pos,
            format!(
                "element 'io_address_space' (IOMMU) is only available on x86_64, not {}",
                ctx.opts.arch
            ),
            "IOMMU address spaces are identified by x86 PCI addresses".into(),
        );
        return None;
    }
    ctx.check_attrs(node, &["name", "peripheral_id", "domain_id"]);
    let name = ctx.required_name(node, "name");
    let peripheral_id = pci_attr(ctx, node, "peripheral_id");
    let domain_id = ctx.required_number(node, "domain_id");
    let mut iomaps = Vec::new();
    for child in ctx.elements(node) {
        if ctx.tag(child) != "iomap" {
            ctx.unknown_element(child, node, &["iomap"]);
            continue;
        }
        ctx.check_attrs(child, &["mr", "iovaddr", "perms"]);
        ctx.no_children(child);
        let mr = ctx.required_string(child, "mr").unwrap_or_default();
        let iovaddr = ctx.required_number(child, "iovaddr").unwrap_or(0);
        let perms = match ctx.get(child, "perms") {
            None => Perms::RW,
            Some(("r", _)) => Perms {
                r: true,
                w: false,
                x: false,
            },
            Some(("rw" | "wr", _)) => Perms::RW,
            Some((raw, at)) => {
                ctx.error(
                    at,
                    format!("invalid perms '{raw}' on element 'iomap'"),
                    "a device mapping is \"r\" or \"rw\": never executable, never write-only"
                        .into(),
                );
                ctx.mark_bad(ctx.pos_elem(child), "perms");
                Perms::RW
            }
        };
        iomaps.push(IoMap {
            mr,
            iovaddr,
            perms,
            pos: ctx.pos_elem(child),
            attrs: ctx.attr_positions(child),
        });
    }
    Some(IoAddressSpace {
        name,
        peripheral_id: peripheral_id.unwrap_or_default(),
        domain_id: domain_id.unwrap_or(0),
        iomaps,
        pos,
        attrs: ctx.attr_positions(node),
    })
}

//! XML to model: reads every element and attribute with its position and
//! checks everything that can be checked on one element alone (known
//! attributes and children, number and boolean syntax, ranges, local rules
//! such as budget <= period). Rules that relate elements to each other live
//! in [`crate::validate`].
//!
//! Nothing stops at the first problem: a bad value is reported, replaced by
//! its default so parsing goes on, and remembered as "bad" so later checks
//! that would only repeat the same mistake in other words skip it.

mod ctx;
mod pd;
mod system;
mod template;

pub(crate) use ctx::Ctx;

use crate::model::*;
use pd::parse_pd;
use system::{parse_channel, parse_domains, parse_io_address_space, parse_mr, ParsedChannel};
use template::parse_template;

/// Highest channel id (also irq, ioport, child and vcpu ids).
pub(crate) const MAX_ID: u64 = 61;
/// Highest PD priority; the monitor runs at 255.
pub(crate) const MAX_PRIORITY: u64 = 254;
/// Default budget in microseconds.
pub(crate) const DEFAULT_BUDGET: u64 = 1000;
/// Default stack size.
pub(crate) const DEFAULT_STACK: u64 = 0x2000;
/// Stack size limits.
pub(crate) const MIN_STACK: u64 = 0x1000;
pub(crate) const MAX_STACK: u64 = 0x100_0000;
/// The two page sizes both architectures offer.
pub(crate) const SMALL_PAGE: u64 = 0x1000;
pub(crate) const LARGE_PAGE: u64 = 0x20_0000;
/// Highest x86 IRQ vector a PD may use.
pub(crate) const MAX_VECTOR: u64 = 107;
/// The x86 I/O port space is 16 bits wide.
pub(crate) const IOPORT_LIMIT: u64 = 0x1_0000;
/// Number of capability slots a `cspace` offers.
pub(crate) const CSPACE_SLOTS: u64 = 128;
/// Domain scheduler limits.
pub(crate) const MAX_DOMAINS: u64 = 16;
pub(crate) const MAX_SCHEDULE_ENTRIES: u64 = 100;
/// Most live instances a `<fork>` may allow (the kernel keeps a pending
/// bit per instance for every channel array of the template).
pub(crate) const MAX_INSTANCES: u64 = 0x1_0000;
/// Deepest nesting of child PDs; deeper would exceed the PD limit anyway.
const MAX_NESTING: usize = 63;

const SYSTEM_CHILDREN: &[&str] = &[
    "protection_domain",
    "memory_region",
    "channel",
    "domains",
    "io_address_space",
    "template",
];

/// Everything parsed from a document, before cross-element validation.
pub(crate) struct Parsed {
    pub desc: SystemDescription,
    /// Names of the declared domains when a `<domains>` element exists (even
    /// one too broken to give a schedule), so PDs' `domain` attributes can
    /// be checked against it.
    pub domain_names: Option<Vec<String>>,
}

/// Reads a parsed XML document into the model. `None` when the root is not
/// `<system>` (nothing else can be said then).
pub(crate) fn parse_document(ctx: &mut Ctx, doc: &roxmltree::Document) -> Option<Parsed> {
    let root = doc.root_element();
    let tag = ctx.tag(root);
    let pos = ctx.pos_elem(root);
    if tag != "system" {
        ctx.error(
            pos,
            format!("root element must be 'system', found '{tag}'"),
            "a system description is one <system> element".into(),
        );
        return None;
    }
    ctx.check_attrs(root, &[]);
    let mut domain_names: Option<Vec<String>> = None;
    let mut desc = SystemDescription {
        arch: ctx.opts.arch,
        protection_domains: Vec::new(),
        memory_regions: Vec::new(),
        channels: Vec::new(),
        domains: None,
        io_address_spaces: Vec::new(),
        templates: Vec::new(),
        channel_arrays: Vec::new(),
        pos,
    };
    for child in ctx.elements(root) {
        match ctx.tag(child) {
            "protection_domain" => {
                parse_pd(ctx, child, None, 0, &mut desc.protection_domains);
            }
            "memory_region" => {
                let mr = parse_mr(ctx, child);
                desc.memory_regions.push(mr);
            }
            "channel" => match parse_channel(ctx, child) {
                Some(ParsedChannel::Static(channel)) => desc.channels.push(channel),
                Some(ParsedChannel::Array(array)) => desc.channel_arrays.push(array),
                None => {}
            },
            "domains" => {
                if domain_names.is_some() {
                    ctx.error(
                        ctx.pos_elem(child),
                        "more than one 'domains' element".into(),
                        "put every domain and the one schedule in a single <domains>".into(),
                    );
                } else {
                    let (schedule, names) = parse_domains(ctx, child);
                    desc.domains = schedule;
                    domain_names = Some(names);
                }
            }
            "template" => {
                let template = parse_template(ctx, child);
                desc.templates.push(template);
            }
            "io_address_space" => {
                if let Some(space) = parse_io_address_space(ctx, child) {
                    desc.io_address_spaces.push(space);
                }
            }
            "virtual_machine" => {
                ctx.error(
                    ctx.pos_elem(child),
                    "element 'virtual_machine' must be inside a 'protection_domain'".into(),
                    "a virtual machine is managed by the PD it is declared in".into(),
                );
            }
            _ => ctx.unknown_element(child, root, SYSTEM_CHILDREN),
        }
    }
    Some(Parsed { desc, domain_names })
}

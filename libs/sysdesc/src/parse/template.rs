//! The featherweight-process extension (EdgeOS): `<template>` with its
//! `<instance_region>`s and maps, and, inside a protection domain,
//! `<instance_window>` and `<fork>`. Channel arrays (an `<end template=...>`)
//! are read with the other channels.

use roxmltree::Node;

use super::ctx::Ctx;
use super::pd::{
    map_perms, parse_map, parse_program_image, priority, scheduling, stack_size, MAP_ATTRS,
};
use super::{LARGE_PAGE, MAX_ID, MAX_INSTANCES, SMALL_PAGE};
use crate::model::*;
use crate::numbers::hex;

const TEMPLATE_ATTRS: &[&str] = &[
    "name",
    "priority",
    "budget",
    "period",
    "passive",
    "stack_size",
];
const TEMPLATE_CHILDREN: &[&str] = &["program_image", "instance_region", "map"];
const WINDOW_ATTRS: &[&str] = &[
    "template",
    "mr",
    "vaddr",
    "stride",
    "perms",
    "cached",
    "setvar_vaddr",
    "setvar_stride",
];
const FORK_ATTRS: &[&str] = &["template", "id", "max_instances", "memory"];

pub(super) fn parse_template(ctx: &mut Ctx, node: Node) -> Template {
    ctx.check_attrs(node, TEMPLATE_ATTRS);
    let pos = ctx.pos_elem(node);
    let name = ctx.required_name(node, "name");
    let priority = priority(ctx, node);
    let (budget, period) = scheduling(ctx, node);
    let passive = ctx.boolean(node, "passive", false);
    let stack_size = stack_size(ctx, node);
    let shown_name = if name.is_empty() { "?" } else { name.as_str() }.to_string();

    let mut program_image: Option<ProgramImage> = None;
    let mut instance_regions = Vec::new();
    let mut maps = Vec::new();
    for child in ctx.elements(node) {
        let child_pos = ctx.pos_elem(child);
        match ctx.tag(child) {
            "program_image" => {
                let image = parse_program_image(ctx, child);
                let owner = format!("template '{shown_name}'");
                ctx.set_once(
                    &mut program_image,
                    image,
                    |f| f.pos,
                    child_pos,
                    &owner,
                    "program_image",
                    "every instance runs the one program of its template; remove one",
                );
            }
            "instance_region" => instance_regions.push(parse_instance_region(ctx, child)),
            "map" => maps.push(TemplateMap {
                map: parse_map(ctx, child, MAP_ATTRS),
                target: RegionRef::Static(usize::MAX),
            }),
            _ => ctx.unknown_element(child, node, TEMPLATE_CHILDREN),
        }
    }
    if program_image.is_none() {
        ctx.error(
            pos,
            format!("template '{shown_name}' has no program_image"),
            "add <program_image path=\"NAME.elf\"/> inside the template".into(),
        );
    }
    Template {
        name,
        priority,
        budget,
        period,
        passive,
        stack_size,
        program_image: program_image.unwrap_or(ProgramImage {
            pos,
            ..ProgramImage::default()
        }),
        instance_regions,
        maps,
        pos,
        attrs: ctx.attr_positions(node),
    }
}

fn parse_instance_region(ctx: &mut Ctx, node: Node) -> InstanceRegion {
    ctx.check_attrs(node, &["name", "size", "page_size"]);
    ctx.no_children(node);
    let pos = ctx.pos_elem(node);
    let name = ctx.required_name(node, "name");
    let page_size = match ctx.number(node, "page_size") {
        Ok(Some(size)) if size == SMALL_PAGE || size == LARGE_PAGE => size,
        Ok(Some(size)) => {
            ctx.error(
                ctx.attr_pos(node, "page_size"),
                format!(
                    "page_size {} is not supported on element 'instance_region'",
                    hex(size)
                ),
                "page_size is 0x1000 (4 KiB, the default) or 0x200000 (2 MiB)".into(),
            );
            ctx.mark_bad(pos, "page_size");
            SMALL_PAGE
        }
        _ => SMALL_PAGE,
    };
    let size = match ctx.required_number(node, "size") {
        Some(0) => {
            ctx.error(
                ctx.attr_pos(node, "size"),
                "size must be greater than 0 on element 'instance_region'".into(),
                "give each instance at least one page, e.g. size=\"0x1000\"".into(),
            );
            ctx.mark_bad(pos, "size");
            0
        }
        Some(size) => {
            if !ctx.is_bad(pos, "page_size") && size % page_size != 0 {
                ctx.error(
                    ctx.attr_pos(node, "size"),
                    format!(
                        "size {} is not a multiple of the page size {} on element 'instance_region'",
                        hex(size),
                        hex(page_size)
                    ),
                    format!(
                        "round it up to {}",
                        hex(size.div_ceil(page_size).saturating_mul(page_size))
                    ),
                );
                ctx.mark_bad(pos, "size");
            }
            size
        }
        None => 0,
    };
    InstanceRegion {
        name,
        size,
        page_size,
        pos,
        attrs: ctx.attr_positions(node),
    }
}

pub(super) fn parse_instance_window(ctx: &mut Ctx, node: Node) -> InstanceWindow {
    ctx.check_attrs(node, WINDOW_ATTRS);
    ctx.no_children(node);
    let pos = ctx.pos_elem(node);
    let template = ctx.required_name(node, "template");
    let mr = ctx.required_name(node, "mr");
    let vaddr = ctx.required_number(node, "vaddr").unwrap_or(0);
    let stride = match ctx.number(node, "stride") {
        Ok(Some(0)) => {
            ctx.error(
                ctx.attr_pos(node, "stride"),
                "stride must be greater than 0 on element 'instance_window'".into(),
                "stride is the distance between two instances' copies; at least the region's size"
                    .into(),
            );
            ctx.mark_bad(pos, "stride");
            None
        }
        Ok(stride) => stride,
        Err(_) => None,
    };
    let perms = map_perms(ctx, node);
    let cached = ctx.boolean(node, "cached", true);
    InstanceWindow {
        template,
        template_index: usize::MAX,
        mr,
        region_index: usize::MAX,
        vaddr,
        stride: stride.unwrap_or(0),
        stride_explicit: node.attribute("stride").is_some(),
        perms,
        cached,
        setvar_vaddr: ctx.string(node, "setvar_vaddr"),
        setvar_stride: ctx.string(node, "setvar_stride"),
        pos,
        attrs: ctx.attr_positions(node),
    }
}

pub(super) fn parse_fork(ctx: &mut Ctx, node: Node) -> Fork {
    ctx.check_attrs(node, FORK_ATTRS);
    ctx.no_children(node);
    let pos = ctx.pos_elem(node);
    let template = ctx.required_name(node, "template");
    let id = ctx.required_number(node, "id").and_then(|id| {
        ctx.check_max(
            node,
            "id",
            "fork handle id",
            id,
            MAX_ID,
            "fork handle ids are 0..=61 per PD (a namespace of their own); pick a free id",
        )
        .then_some(id)
    });
    let max_instances = match ctx.required_number(node, "max_instances") {
        Some(n) if (1..=MAX_INSTANCES).contains(&n) => n,
        Some(n) => {
            ctx.error(
                ctx.attr_pos(node, "max_instances"),
                format!(
                    "max_instances {n} is out of range (1..={MAX_INSTANCES}) on element 'fork'"
                ),
                "max_instances is the ceiling on live instances of the template".into(),
            );
            ctx.mark_bad(pos, "max_instances");
            1
        }
        None => 1,
    };
    let memory = match ctx.required_number(node, "memory") {
        Some(0) => {
            ctx.error(
                ctx.attr_pos(node, "memory"),
                "memory must be greater than 0 on element 'fork'".into(),
                "memory is the quota in bytes for all live instances of the template".into(),
            );
            ctx.mark_bad(pos, "memory");
            0
        }
        Some(bytes) if bytes % SMALL_PAGE != 0 => {
            ctx.error(
                ctx.attr_pos(node, "memory"),
                format!(
                    "memory {} is not a multiple of the page size {} on element 'fork'",
                    hex(bytes),
                    hex(SMALL_PAGE)
                ),
                format!(
                    "round it up to {}",
                    hex(bytes.div_ceil(SMALL_PAGE).saturating_mul(SMALL_PAGE))
                ),
            );
            ctx.mark_bad(pos, "memory");
            bytes
        }
        Some(bytes) => bytes,
        None => 0,
    };
    Fork {
        template,
        template_index: usize::MAX,
        id: id.unwrap_or(0),
        max_instances,
        memory,
        pos,
        attrs: ctx.attr_positions(node),
    }
}

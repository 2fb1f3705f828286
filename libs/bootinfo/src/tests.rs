//! Round trips and rejection of corrupt blobs.

use alloc::vec::Vec;

use crate::*;

fn sample() -> Builder {
    let mut b = Builder::new();
    let name = b.add_string("hello");
    let code = b.add_segment_data(&[0xaa; 100]);
    let data = b.add_segment_data(&[0xbb; 5000]);
    b.segments.push(Segment { vaddr: 0x20_0000, mem_size: 100, file_size: 100, data_offset: code, perms: Perms { read: true, write: false, execute: true } });
    b.segments.push(Segment { vaddr: 0x20_1000, mem_size: 9000, file_size: 5000, data_offset: data, perms: Perms { read: true, write: true, execute: false } });
    b.regions.push(Region { paddr: 0x4100_0000, size: 0x1000, page_size: 0x1000, flags: REGION_ZERO });
    b.maps.push(Map { region: 0, vaddr: 0x100_0000, perms: Perms { read: true, write: true, execute: false }, cached: false });
    b.irqs.push(Irq { irq: 30, channel_id: 5, trigger: Trigger::Edge });
    b.pds.push(ProtectionDomain {
        name,
        priority: 200,
        passive: true,
        budget_us: 1000,
        period_us: 2000,
        parent: NO_PD,
        entry: 0x20_0010,
        stack_top: layout::PD_STACK_TOP,
        stack_size: 0x2000,
        ipc_buffer: 0x30_0000,
        segments: Range { first: 0, count: 2 },
        maps: Range { first: 0, count: 1 },
        irqs: Range { first: 0, count: 1 },
        ..Default::default()
    });
    let other = b.add_string("other");
    b.pds.push(ProtectionDomain { name: other, parent: 0, child_id: 3, budget_us: 10, period_us: 10, stack_size: 0x1000, ..Default::default() });
    b.channels.push(Channel { ends: [ChannelEnd { pd: 0, id: 1, pp: false, notify: true }, ChannelEnd { pd: 1, id: 61, pp: true, notify: false }] });
    b
}

/// `sample()` plus two templates: a channel array each way, windows, grants, template maps of
/// an instance region and of a static region.
fn with_templates() -> Builder {
    let mut b = sample();
    let rw = Perms { read: true, write: true, execute: false };
    let r = Perms { read: true, write: false, execute: false };
    let code = b.add_segment_data(&[0xcc; 64]);
    let echo_segments = Range { first: b.segments.len() as u32, count: 1 };
    b.segments.push(Segment { vaddr: 0x20_0000, mem_size: 64, file_size: 64, data_offset: code, perms: Perms { read: true, write: false, execute: true } });
    b.instance_regions.push(InstanceRegion { size: 0x10000, page_size: 0x1000 });
    b.instance_regions.push(InstanceRegion { size: 0x20_0000, page_size: 0x20_0000 });
    b.template_maps.push(TemplateMap { region: TemplateRegion::Instance(0), vaddr: 0x1000_0000, perms: r, cached: true });
    b.template_maps.push(TemplateMap { region: TemplateRegion::Static(0), vaddr: 0x2000_0000, perms: r, cached: false });
    let echo = b.add_string("echo");
    b.templates.push(Template {
        name: echo,
        priority: 50,
        passive: false,
        budget_us: 200,
        period_us: 1000,
        entry: 0x20_0000,
        stack_top: layout::PD_STACK_TOP,
        stack_size: 0x2000,
        ipc_buffer: 0x20_3000,
        segments: echo_segments,
        maps: Range { first: 0, count: 2 },
        instance_regions: Range { first: 0, count: 2 },
    });
    let worker = b.add_string("worker");
    b.templates.push(Template { name: worker, passive: true, budget_us: 10, period_us: 10, stack_size: 0x1000, ..Default::default() });
    b.channel_arrays.push(ChannelArray {
        pd: ChannelEnd { pd: 0, id: 5, pp: false, notify: true },
        template: 0,
        instance_id: 0,
        instance_pp: true,
        instance_notify: false,
    });
    b.channel_arrays.push(ChannelArray { pd: ChannelEnd { pd: 1, id: 0, pp: true, notify: true }, template: 1, instance_id: 61, ..Default::default() });
    b.instance_windows.push(InstanceWindow { pd: 0, template: 0, instance_region: 0, vaddr: 0x1_0000_0000, stride: 0x10000, perms: rw, cached: true });
    b.instance_windows.push(InstanceWindow { pd: 1, template: 0, instance_region: 1, vaddr: 0x80_0000_0000 - 1000 * 0x20_0000, stride: 0x20_0000, perms: r, cached: false });
    b.fork_grants.push(ForkGrant { pd: 1, template: 0, handle: 0, max_instances: 1000, memory: 0x400_0000 });
    b.fork_grants.push(ForkGrant { pd: 1, template: 1, handle: 61, max_instances: MAX_INSTANCES, memory: 0x1000 });
    b
}

#[test]
fn round_trip() {
    let b = sample();
    let blob = b.finish(0x4200_0000);
    assert_eq!(blob.len(), b.encoded_len());
    let info = BootInfo::parse(&blob).expect("valid blob");
    assert_eq!(info.reserved_end_paddr(), 0x4200_0000);
    assert_eq!(info.pd_count(), 2);
    assert_eq!(info.pd_name(0), "hello");
    assert_eq!(info.pd_name(1), "other");
    let pd = info.pd(0);
    assert_eq!((pd.priority, pd.passive, pd.budget_us, pd.period_us), (200, true, 1000, 2000));
    assert_eq!(info.pd(1).parent, 0);
    assert_eq!(info.pd(1).child_id, 3);
    let segs: Vec<Segment> = info.pd_segments(&pd).map(|i| info.segment(i)).collect();
    assert_eq!(segs[0].data_offset % layout::PAGE_SIZE, 0);
    assert_eq!(info.segment_data(&segs[0]), &[0xaa; 100][..]);
    assert_eq!(info.segment_data(&segs[1]), &[0xbb; 5000][..]);
    assert!(segs[0].perms.execute && !segs[0].perms.write);
    assert!(!info.map(0).cached);
    assert_eq!(info.irq(0), Irq { irq: 30, channel_id: 5, trigger: Trigger::Edge });
    assert_eq!(info.channel(0).ends[1], ChannelEnd { pd: 1, id: 61, pp: true, notify: false });
    assert_eq!(info.region(0).flags, REGION_ZERO);
}

#[test]
fn a_blob_without_templates_has_no_extension() {
    let blob = sample().finish(0);
    assert_eq!(&blob[EXT_OFFSET_FIELD..HEADER_SIZE], &[0; 8]);
    let info = BootInfo::parse(&blob).unwrap();
    assert_eq!(
        (info.template_count(), info.instance_region_count(), info.template_map_count()),
        (0, 0, 0)
    );
    assert_eq!((info.channel_array_count(), info.instance_window_count(), info.fork_grant_count()), (0, 0, 0));
    assert_eq!(info.fork_grant_of(0), None);
}

#[test]
fn round_trip_with_templates() {
    let b = with_templates();
    let blob = b.finish(0x4200_0000);
    assert_eq!(blob.len(), b.encoded_len());
    let ext = u32::from_le_bytes(blob[EXT_OFFSET_FIELD..EXT_OFFSET_FIELD + 4].try_into().unwrap()) as usize;
    assert!(ext >= HEADER_SIZE && ext.is_multiple_of(8));
    assert_eq!(&blob[ext..ext + 8], b"EDGEFWP\0");
    let info = BootInfo::parse(&blob).expect("valid blob");

    // The static part is unchanged.
    assert_eq!(info.pd_count(), 2);
    assert_eq!(info.pd_name(1), "other");
    assert_eq!(info.channel_count(), 1);

    assert_eq!(info.template_count(), 2);
    assert_eq!(info.template_name(0), "echo");
    assert_eq!(info.template_name(1), "worker");
    let echo = info.template(0);
    assert_eq!((echo.priority, echo.passive, echo.budget_us, echo.period_us), (50, false, 200, 1000));
    assert_eq!((echo.entry, echo.stack_size, echo.ipc_buffer), (0x20_0000, 0x2000, 0x20_3000));
    assert!(info.template(1).passive);
    let segs: Vec<Segment> = info.template_segments(&echo).map(|i| info.segment(i)).collect();
    assert_eq!(segs.len(), 1);
    assert_eq!(info.segment_data(&segs[0]), &[0xcc; 64][..]);
    let maps: Vec<TemplateMap> = info.template_maps(&echo).map(|i| info.template_map(i)).collect();
    assert_eq!(maps[0].region, TemplateRegion::Instance(0));
    assert_eq!(maps[1].region, TemplateRegion::Static(0));
    assert!(maps[0].cached && !maps[1].cached && !maps[1].perms.write);
    let regions: Vec<InstanceRegion> = info.template_instance_regions(&echo).map(|i| info.instance_region(i)).collect();
    assert_eq!(regions[1], InstanceRegion { size: 0x20_0000, page_size: 0x20_0000 });

    assert_eq!(info.channel_array(0), with_templates().channel_arrays[0]);
    assert_eq!(info.channel_array(1).instance_id, 61);
    assert!(info.channel_array(1).pd.pp);
    assert_eq!(info.instance_window(0), with_templates().instance_windows[0]);
    assert!(!info.instance_window(1).cached);
    assert_eq!(info.fork_grant_of(1).map(|g| (g.pd, g.handle, g.max_instances)), Some((1, 61, MAX_INSTANCES)));
    assert_eq!(info.fork_grant_of(0).map(|g| g.memory), Some(0x400_0000));
}

/// A parser that does not know the extension sees the header word at byte 88 as reserved: with
/// it cleared, the blob must still describe the whole static system.
#[test]
fn a_parser_that_ignores_the_extension_sees_the_static_system() {
    let mut blob = with_templates().finish(0x4200_0000);
    blob[EXT_OFFSET_FIELD..EXT_OFFSET_FIELD + 4].fill(0);
    let info = BootInfo::parse(&blob).expect("static part valid on its own");
    assert_eq!(info.template_count(), 0);
    assert_eq!(info.pd_count(), 2);
    assert_eq!(info.pd_segments(&info.pd(0)), 0..2);
    // The template's segment is in the shared table, but no PD names it.
    assert_eq!(info.segment_count(), 3);
    assert_eq!(info.channel_count(), 1);
}

#[test]
fn refuses_bad_extension_headers() {
    let blob = with_templates().finish(0);
    let ext = u32::from_le_bytes(blob[EXT_OFFSET_FIELD..EXT_OFFSET_FIELD + 4].try_into().unwrap()) as usize;
    let set = |at: usize, v: u32| {
        let mut bad = blob.clone();
        bad[at..at + 4].copy_from_slice(&v.to_le_bytes());
        BootInfo::parse(&bad).err()
    };
    assert_eq!(set(EXT_OFFSET_FIELD, 4), Some(Error::BadTable(Table::Extension)));
    assert_eq!(set(EXT_OFFSET_FIELD, ext as u32 + 4), Some(Error::BadTable(Table::Extension)));
    assert_eq!(set(EXT_OFFSET_FIELD, blob.len() as u32 - 8), Some(Error::BadTable(Table::Extension)));
    assert_eq!(set(ext, 0), Some(Error::BadTable(Table::Extension))); // magic
    assert_eq!(set(ext + 8, 2), Some(Error::BadExtensionVersion(2)));
    assert_eq!(set(ext + 12, 72), Some(Error::BadTable(Table::Extension)));
    assert_eq!(set(ext + 20, u32::MAX), Some(Error::BadTable(Table::Templates)));
    assert_eq!(set(ext + 56, 3), Some(Error::BadTable(Table::ForkGrants))); // misaligned offset
}

#[test]
fn refuses_inconsistent_extension_records() {
    type Corruption = fn(&mut Builder);
    let cases: Vec<(Corruption, Error)> = alloc::vec![
        (|b| b.templates[0].segments.count = 9, Error::BadRecord(Table::Templates, 0)),
        (|b| b.templates[0].maps.first = 1, Error::BadRecord(Table::Templates, 0)),
        (|b| b.templates[1].instance_regions = Range { first: 2, count: 1 }, Error::BadRecord(Table::Templates, 1)),
        (|b| b.templates[0].priority = 255, Error::BadRecord(Table::Templates, 0)),
        (|b| b.templates[1].budget_us = 0, Error::BadRecord(Table::Templates, 1)),
        (|b| b.templates[0].stack_size = 0x1800, Error::BadRecord(Table::Templates, 0)),
        (|b| b.templates[0].name.len = 1000, Error::BadRecord(Table::Templates, 0)),
        // A template's map of an instance region must name one of its own.
        (
            |b| {
                b.templates[1].maps = Range { first: 0, count: 1 };
            },
            Error::BadRecord(Table::Templates, 1),
        ),
        (|b| b.instance_regions[0].size = 0x1800, Error::BadRecord(Table::InstanceRegions, 0)),
        (|b| b.instance_regions[1].page_size = 0x10000, Error::BadRecord(Table::InstanceRegions, 1)),
        (|b| b.template_maps[0].region = TemplateRegion::Instance(2), Error::BadRecord(Table::TemplateMaps, 0)),
        (|b| b.template_maps[1].region = TemplateRegion::Static(1), Error::BadRecord(Table::TemplateMaps, 1)),
        (|b| b.template_maps[0].perms = Perms { read: true, write: true, execute: true }, Error::BadRecord(Table::TemplateMaps, 0)),
        (|b| b.channel_arrays[0].template = 2, Error::BadRecord(Table::ChannelArrays, 0)),
        (|b| b.channel_arrays[1].instance_pp = true, Error::BadRecord(Table::ChannelArrays, 1)),
        (|b| b.instance_windows[0].stride = 0x8000, Error::BadRecord(Table::InstanceWindows, 0)),
        // A window shows a region of its own template (template 1 has none).
        (|b| b.instance_windows[1].template = 1, Error::BadRecord(Table::InstanceWindows, 1)),
        (|b| b.instance_windows[1].vaddr += 0x20_0000, Error::BadRecord(Table::InstanceWindows, 1)),
        (|b| b.fork_grants[1].template = 0, Error::BadRecord(Table::ForkGrants, 1)),
        (|b| b.fork_grants[1].handle = 0, Error::BadRecord(Table::ForkGrants, 1)),
        (|b| b.fork_grants[0].max_instances = MAX_INSTANCES + 1, Error::BadRecord(Table::ForkGrants, 0)),
        (
            |b| {
                b.fork_grants.pop();
            },
            Error::BadRecord(Table::Templates, 1),
        ),
    ];
    for (i, (corrupt, want)) in cases.iter().enumerate() {
        let mut b = with_templates();
        corrupt(&mut b);
        assert_eq!(BootInfo::parse(&b.finish(0)).err(), Some(*want), "case {i}");
    }
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut blob = sample().finish(0);
    blob.extend_from_slice(&[0xff; 100]);
    assert!(BootInfo::parse(&blob).is_ok());
}

#[test]
fn refuses_bad_headers() {
    let blob = sample().finish(0);
    assert_eq!(BootInfo::parse(&blob[..50]).unwrap_err(), Error::Truncated);
    assert_eq!(BootInfo::parse(&blob[..blob.len() - 1]).unwrap_err(), Error::Truncated);
    let mut bad = blob.clone();
    bad[0] = b'X';
    assert_eq!(BootInfo::parse(&bad).unwrap_err(), Error::BadMagic);
    let mut bad = blob.clone();
    bad[8] = 9;
    assert_eq!(BootInfo::parse(&bad).unwrap_err(), Error::BadVersion(9));
    let mut bad = blob.clone();
    bad[36..40].copy_from_slice(&u32::MAX.to_le_bytes()); // PD count
    assert_eq!(BootInfo::parse(&bad).unwrap_err(), Error::BadTable(Table::ProtectionDomains));
}

#[test]
fn refuses_inconsistent_records() {
    type Corruption = fn(&mut Builder);
    let cases: [(Corruption, Error); 8] = [
        (|b| b.pds[0].segments.count = 5, Error::BadRecord(Table::ProtectionDomains, 0)),
        (|b| b.pds[1].parent = 1, Error::BadRecord(Table::ProtectionDomains, 1)),
        (|b| b.pds[0].budget_us = 3000, Error::BadRecord(Table::ProtectionDomains, 0)),
        (|b| b.segments[0].perms.write = true, Error::BadRecord(Table::Segments, 0)),
        (|b| b.segments[1].file_size = 1 << 40, Error::BadRecord(Table::Segments, 1)),
        (|b| b.maps[0].region = 7, Error::BadRecord(Table::Maps, 0)),
        (|b| b.irqs[0].channel_id = 62, Error::BadRecord(Table::Irqs, 0)),
        (|b| b.channels[0].ends[0].pd = 1, Error::BadRecord(Table::Channels, 0)),
    ];
    for (i, (corrupt, want)) in cases.iter().enumerate() {
        let mut b = sample();
        corrupt(&mut b);
        assert_eq!(BootInfo::parse(&b.finish(0)).unwrap_err(), *want, "case {i}");
    }
}

#[test]
fn corrupting_any_byte_never_panics() {
    for blob in [sample().finish(0), with_templates().finish(0)] {
        let tables_end = 0x1000.min(blob.len());
        for at in 0..tables_end {
            for v in [0u8, 0x7f, 0xff] {
                let mut bad = blob.clone();
                bad[at] = v;
                if let Ok(info) = BootInfo::parse(&bad) {
                    touch_everything(&info);
                }
            }
        }
    }
}

/// Every accessor, following every index, stays in bounds on whatever `parse` accepted.
fn touch_everything(info: &BootInfo) {
    for i in 0..info.pd_count() {
        let pd = info.pd(i);
        let _ = info.pd_name(i);
        for s in info.pd_segments(&pd) {
            let _ = info.segment_data(&info.segment(s));
        }
        for m in info.pd_maps(&pd) {
            let _ = info.region(info.map(m).region as usize);
        }
    }
    for i in 0..info.template_count() {
        let t = info.template(i);
        let _ = info.template_name(i);
        for s in info.template_segments(&t) {
            let _ = info.segment_data(&info.segment(s));
        }
        for m in info.template_maps(&t) {
            match info.template_map(m).region {
                TemplateRegion::Static(r) => {
                    let _ = info.region(r as usize);
                }
                TemplateRegion::Instance(r) => {
                    let _ = info.instance_region(r as usize);
                }
            }
        }
        for r in info.template_instance_regions(&t) {
            let _ = info.instance_region(r);
        }
        let grant = info.fork_grant_of(i).expect("every template has a grant");
        let _ = (info.pd(grant.pd as usize), info.template(grant.template as usize));
    }
    for i in 0..info.channel_array_count() {
        let a = info.channel_array(i);
        let _ = (info.pd(a.pd.pd as usize), info.template(a.template as usize));
    }
    for i in 0..info.instance_window_count() {
        let w = info.instance_window(i);
        let _ = (info.pd(w.pd as usize), info.template(w.template as usize), info.instance_region(w.instance_region as usize));
    }
}

#[test]
fn flags_round_trip_and_undefined_bits_are_refused() {
    let mut b = sample();
    assert_eq!(BootInfo::parse(&b.finish(0)).unwrap().flags(), 0);
    b.flags = FLAG_DEBUG_EXIT;
    let mut blob = b.finish(0);
    assert_eq!(BootInfo::parse(&blob).unwrap().flags(), FLAG_DEBUG_EXIT);
    blob[FLAGS_FIELD] |= 0x80;
    assert_eq!(BootInfo::parse(&blob).unwrap_err(), Error::BadFlags(0x81));
}

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
    let blob = sample().finish(0);
    let tables_end = 0x1000.min(blob.len());
    for at in 0..tables_end {
        for v in [0u8, 0x7f, 0xff] {
            let mut bad = blob.clone();
            bad[at] = v;
            if let Ok(info) = BootInfo::parse(&bad) {
                // Every accessor stays in bounds on whatever was accepted.
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
            }
        }
    }
}

//! The image builder end to end on synthetic programs: layout, patching, lowering and the
//! located errors only the builder can find.

mod common;

use bootinfo::BootInfo;
use common::{blob_of, Env};

const TWO_PDS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<system>
    <memory_region name="shared" size="0x2000" />
    <memory_region name="uart" size="0x1000" phys_addr="0x9000000" />
    <protection_domain name="client" priority="10">
        <program_image path="client.elf" />
        <map mr="shared" vaddr="0x1000000" perms="rw" setvar_vaddr="shared_vaddr" />
        <setvar symbol="shared_paddr" region_paddr="shared" />
    </protection_domain>
    <protection_domain name="server" priority="20" passive="true" budget="500" period="2000">
        <program_image path="server.elf" />
        <map mr="shared" vaddr="0x2000000" perms="r" />
        <map mr="uart" vaddr="0x3000000" perms="rw" cached="false" />
        <irq irq="33" id="5" trigger="edge" />
    </protection_domain>
    <channel>
        <end pd="client" id="1" pp="true" setvar_id="server_channel" />
        <end pd="server" id="3" notify="false" />
    </channel>
</system>
"#;

#[test]
fn lays_out_and_lowers_a_system() {
    let env = Env::new();
    env.program("client.elf", common::pd_program(&["shared_vaddr", "shared_paddr", "server_channel"]));
    env.program("server.elf", common::pd_program(&[]));
    let (image, report) = env.build(TWO_PDS).expect("builds");
    let (blob, img) = blob_of(&image);
    let info = BootInfo::parse(&blob).expect("blob parses");

    // The blob sits at the first page after the kernel (0x40200000 + 0x5000).
    let blob_seg = img.segments.iter().find(|s| s.data.starts_with(b"EDGEBOOT")).unwrap();
    assert_eq!(blob_seg.paddr, 0x4020_5000);
    assert_eq!(img.entry, 0x4020_0000);

    assert_eq!(info.pd_count(), 2);
    assert_eq!(info.pd_name(0), "client");
    // No templates: no extension block, the header's last words stay 0.
    assert_eq!(&blob[bootinfo::EXT_OFFSET_FIELD..bootinfo::HEADER_SIZE], &[0; 8]);
    assert_eq!(info.template_count(), 0);
    let server = info.pd(1);
    assert_eq!((server.priority, server.passive, server.budget_us, server.period_us), (20, true, 500, 2000));
    assert_eq!(server.ipc_buffer, 0x203000);
    assert_eq!(info.pd(0).stack_size, 0x2000);

    // Regions: 'shared' placed after the blob, page aligned and zeroed; 'uart' fixed.
    let shared = info.region(0);
    assert!(shared.paddr >= blob_seg.paddr + blob.len() as u64);
    assert_eq!(shared.paddr % 0x1000, 0);
    assert_eq!(shared.flags, bootinfo::REGION_ZERO);
    assert_eq!(info.region(1).paddr, 0x900_0000);
    assert_eq!(info.region(1).flags, bootinfo::REGION_FIXED);
    assert!(info.reserved_end_paddr() >= shared.paddr + 0x2000);

    // Maps, IRQs, channels.
    let maps: Vec<_> = info.pd_maps(&server).map(|i| info.map(i)).collect();
    assert_eq!(maps.len(), 2);
    assert!(!maps[1].cached);
    assert!(!maps[0].perms.write);
    let irq = info.irq(info.pd_irqs(&server).start);
    assert_eq!((irq.irq, irq.channel_id, irq.trigger), (33, 5, bootinfo::Trigger::Edge));
    let ch = info.channel(0);
    assert!(ch.ends[0].pp && !ch.ends[1].pp && !ch.ends[1].notify);

    // Patched variables in the client's data segment (file data at 0x201000).
    let client = info.pd(0);
    let data_seg = info.pd_segments(&client).map(|i| info.segment(i)).find(|s| s.perms.write).unwrap();
    let data = info.segment_data(&data_seg);
    let word = |vaddr: u64| u64::from_le_bytes(data[(vaddr - 0x201000) as usize..][..8].try_into().unwrap());
    assert_eq!(&data[..7], b"client\0");
    assert_eq!(word(0x201100), 0x100_0000, "setvar_vaddr");
    assert_eq!(word(0x201108), shared.paddr, "setvar region_paddr");
    assert_eq!(word(0x201110), 1, "end setvar_id");
    assert_eq!(word(0x201050), 1 << 1, "client may notify on id 1");
    assert_eq!(word(0x201058), 1 << 1, "client may pp on id 1");
    let server_seg = info.pd_segments(&server).map(|i| info.segment(i)).find(|s| s.perms.write).unwrap();
    let sdata = info.segment_data(&server_seg);
    assert_eq!(sdata[0x40], 1, "server is passive");
    assert_eq!(u64::from_le_bytes(sdata[0x48..0x50].try_into().unwrap()), 1 << 5, "server irq ids");
    assert_eq!(u64::from_le_bytes(sdata[0x50..0x58].try_into().unwrap()), 0, "server may not notify");

    for needle in ["client", "server", "shared", "0x0009000000", "client:1 =pp=> server:3", "uncached"] {
        assert!(report.contains(needle), "report lacks {needle}:\n{report}");
    }
}

#[test]
fn missing_program_image_is_located() {
    let env = Env::new();
    env.program("client.elf", common::pd_program(&["shared_vaddr", "shared_paddr", "server_channel"]));
    let errors = env.errors(TWO_PDS);
    assert_eq!(errors, vec!["system.xml:11:24: error: program image 'server.elf' of protection domain 'server' not found"]);
}

#[test]
fn missing_setvar_symbols_are_all_reported() {
    let env = Env::new();
    env.program("client.elf", common::pd_program(&[]));
    env.program("server.elf", common::pd_program(&[]));
    let errors = env.errors(TWO_PDS);
    let dir = env.path().join("client.elf").display().to_string();
    assert_eq!(
        errors,
        vec![
            format!("system.xml:17:43: error: symbol 'server_channel' not found in {dir}"),
            format!("system.xml:7:55: error: symbol 'shared_vaddr' not found in {dir}"),
            format!("system.xml:8:17: error: symbol 'shared_paddr' not found in {dir}"),
        ]
    );
}

#[test]
fn maps_over_the_program_or_stack_are_refused() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <memory_region name="m" size="0x2000" />
    <protection_domain name="a">
        <program_image path="a.elf" />
        <map mr="m" vaddr="0x201000" />
        <map mr="m" vaddr="0x3ffffff000" />
    </protection_domain>
</system>"#;
    let dir = env.path().join("a.elf").display().to_string();
    assert_eq!(
        env.errors(xml),
        vec![
            format!("system.xml:5:21: error: map of 'm' at 0x201000..0x203000 overlaps the ELF segment 0x201000..0x204000 of {dir}"),
            "system.xml:6:21: error: map of 'm' at 0x3ffffff000..0x4000001000 overlaps the stack of 'a' (0x3fffffd000..0x4000000000, guard page included)".to_string(),
        ]
    );
}

#[test]
fn writable_executable_programs_and_maps_are_refused() {
    let env = Env::new();
    let segs = [common::Seg { vaddr: 0x200000, mem_size: 0x1000, data: vec![0; 16], flags: 7 }];
    env.program("wx.elf", common::elf(0x200000, &segs, &[]));
    let xml = r#"<system>
    <memory_region name="m" size="0x1000" />
    <protection_domain name="a">
        <program_image path="wx.elf" />
        <map mr="m" vaddr="0x1000000" perms="rwx" />
    </protection_domain>
</system>"#;
    let dir = env.path().join("wx.elf").display().to_string();
    assert_eq!(
        env.errors(xml),
        vec![
            "system.xml:5:39: error: map of 'm' is both writable and executable; EdgeOS enforces W^X".to_string(),
            format!("system.xml:4:24: error: segment 0 of {dir} has perms 'rwx'; EdgeOS loads only W^X segments"),
        ]
    );
}

#[test]
fn unsupported_features_are_refused_by_board() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <domains>
        <domain name="d0" />
        <domain_schedule>
            <schedule_entry domain="d0" duration="100us" />
        </domain_schedule>
    </domains>
    <protection_domain name="a" domain="d0">
        <program_image path="a.elf" />
    </protection_domain>
</system>"#;
    assert_eq!(
        env.errors(xml),
        vec!["system.xml:2:5: error: domain scheduling ('domains') is not supported on qemu-virt-aarch64 yet"]
    );
}

#[test]
fn not_an_elf_is_refused() {
    let env = Env::new();
    env.program("a.elf", b"#!/bin/sh\necho not a program\n".to_vec());
    let xml = r#"<system>
    <protection_domain name="a">
        <program_image path="a.elf" />
    </protection_domain>
</system>"#;
    let errors = env.errors(xml);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("system.xml:3:24: error: program image "), "{errors:?}");
    assert!(errors[0].contains("is unusable: not a 64-bit little-endian ELF file"), "{errors:?}");
}

#[test]
fn memory_that_does_not_fit_is_refused() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <memory_region name="huge" size="0x40000000" page_size="0x200000" />
    <protection_domain name="a">
        <program_image path="a.elf" />
        <map mr="huge" vaddr="0x40000000" />
    </protection_domain>
</system>"#;
    let errors = env.errors(xml);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("the system needs RAM up to 0x80"), "{errors:?}");
}

#[test]
fn fixed_regions_must_avoid_the_image() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <memory_region name="dma" size="0x1000" phys_addr="0x40201000" />
    <memory_region name="nowhere" size="0x1000" phys_addr="0x1000" />
    <protection_domain name="a">
        <program_image path="a.elf" />
        <map mr="dma" vaddr="0x1000000" />
        <map mr="nowhere" vaddr="0x1001000" />
    </protection_domain>
</system>"#;
    assert_eq!(
        env.errors(xml),
        vec![
            "system.xml:3:49: error: memory region 'nowhere' at 0x1000..0x2000 is neither RAM nor a device of qemu-virt-aarch64".to_string(),
            "system.xml:2:45: error: memory region 'dma' at 0x40201000..0x40202000 overlaps the kernel and boot image (0x40200000..0x40208000)".to_string(),
        ]
    );
}

#[test]
fn the_kernel_timer_irq_is_refused() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    let xml = |irq: u32| {
        format!(
            r#"<system>
    <protection_domain name="a">
        <program_image path="a.elf" />
        <irq irq="{irq}" id="1" />
    </protection_domain>
</system>"#
        )
    };
    // The kernel keeps the virtual timer (27)...
    let errors = env.errors(&xml(27));
    assert_eq!(errors, vec!["system.xml:4:14: error: irq 27 is the kernel's own timer on qemu-virt-aarch64 and cannot be given to a PD"]);
    // ...and leaves the physical timer (30) to a driver PD, as sDDF's timer driver takes it.
    let (image, _) = env.build(&xml(30)).expect("a PD may take the physical timer's irq");
    let (blob, _) = blob_of(&image);
    let info = BootInfo::parse(&blob).unwrap();
    assert_eq!(info.irq(info.pd_irqs(&info.pd(0)).start).irq, 30);
}

#[test]
fn fixed_ram_regions_leave_the_ram_below_them_to_the_kernel() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    // An sDDF-style DMA region high in RAM.
    let xml = r#"<system>
    <memory_region name="dma" size="0x200000" phys_addr="0x60000000" page_size="0x200000" />
    <memory_region name="shared" size="0x1000" />
    <protection_domain name="a">
        <program_image path="a.elf" />
        <map mr="dma" vaddr="0x1000000" />
        <map mr="shared" vaddr="0x2000000" />
    </protection_domain>
</system>"#;
    let (image, _) = env.build(xml).expect("builds");
    let (blob, _) = blob_of(&image);
    let info = BootInfo::parse(&blob).unwrap();
    let (dma, shared) = (info.region(0), info.region(1));
    assert_eq!((dma.paddr, dma.flags), (0x6000_0000, bootinfo::REGION_FIXED | bootinfo::REGION_ZERO));
    // reserved_end is the end of the image: the kernel excludes the fixed region's frames itself.
    assert_eq!(info.reserved_end_paddr(), shared.paddr + 0x1000);
    assert!(info.reserved_end_paddr() < 0x4100_0000);
}

#[test]
fn debug_exit_marks_a_test_image() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <protection_domain name="a">
        <program_image path="a.elf" />
    </protection_domain>
</system>"#;
    let (image, report) = env.build_with(xml, true).expect("builds");
    let (blob, _) = blob_of(&image);
    assert_eq!(BootInfo::parse(&blob).unwrap().flags(), bootinfo::FLAG_DEBUG_EXIT);
    assert!(report.contains("\ndebug exit:       on (test image)\n"), "{report}");

    // Without it, a production image: no PD can end the run.
    let (image, report) = env.build(xml).expect("builds");
    let (blob, _) = blob_of(&image);
    assert_eq!(BootInfo::parse(&blob).unwrap().flags(), 0);
    assert!(report.contains("\ndebug exit:       off\n"), "{report}");
}

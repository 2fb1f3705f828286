//! Templates of featherweight processes end to end on synthetic programs: lowering into the
//! boot blob's extension, patching template and PD variables, the report and the graph, and the
//! located errors only the builder can find.

mod common;

use bootinfo::{BootInfo, TemplateRegion};
use common::{blob_of, Env};

const FEATHERWEIGHT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<system>
    <memory_region name="config" size="0x1000" />
    <template name="echo" priority="50" budget="200" period="1000" stack_size="0x2000">
        <program_image path="echo.elf" />
        <instance_region name="rx_data" size="0x10000" />
        <map mr="rx_data" vaddr="0x10000000" perms="r" setvar_vaddr="rx_data" setvar_size="rx_data_size" />
        <map mr="config" vaddr="0x20000000" perms="r" setvar_vaddr="config" />
    </template>
    <protection_domain name="virtualiser" priority="200">
        <program_image path="virtualiser.elf" />
        <instance_window template="echo" mr="rx_data" vaddr="0x100000000" stride="0x10000"
                         perms="rw" setvar_vaddr="rx_window" />
    </protection_domain>
    <protection_domain name="manager" priority="150">
        <program_image path="manager.elf" />
        <fork template="echo" id="3" max_instances="1000" memory="0x4000000" />
    </protection_domain>
    <channel>
        <end pd="virtualiser" id="5" setvar_id="echo_array" />
        <end template="echo" id="0" setvar_id="virt_channel" />
    </channel>
    <channel>
        <end template="echo" id="1" pp="true" notify="false" />
        <end pd="manager" id="0" />
    </channel>
</system>
"#;

/// The programs of FEATHERWEIGHT: extra symbols at 0x201100 + 8 * i, in the data segment.
fn programs(env: &Env) {
    env.program("echo.elf", common::pd_program(&["rx_data", "rx_data_size", "virt_channel", "config"]));
    env.program("virtualiser.elf", common::pd_program(&["rx_window", "echo_array", "edgeos_channel_arrays"]));
    env.program("manager.elf", common::pd_program(&[]));
}

/// The word at `vaddr` in a data segment that starts at 0x201000.
fn word(data: &[u8], vaddr: u64) -> u64 {
    u64::from_le_bytes(data[(vaddr - 0x201000) as usize..][..8].try_into().unwrap())
}

#[test]
fn lowers_templates_into_the_extension() {
    let env = Env::new();
    programs(&env);
    let (image, _) = env.build(FEATHERWEIGHT).expect("builds");
    let (blob, _) = blob_of(&image);
    let info = BootInfo::parse(&blob).expect("blob parses");

    // Static part: two PDs, no plain channel.
    assert_eq!(info.pd_count(), 2);
    assert_eq!(info.channel_count(), 0);

    // The template, like a PD record.
    assert_eq!(info.template_count(), 1);
    assert_eq!(info.template_name(0), "echo");
    let echo = info.template(0);
    assert_eq!((echo.priority, echo.passive, echo.budget_us, echo.period_us), (50, false, 200, 1000));
    assert_eq!((echo.entry, echo.ipc_buffer, echo.stack_size), (0x200000, 0x203000, 0x2000));
    assert_eq!(echo.stack_top, bootinfo::layout::PD_STACK_TOP);
    // Its segments follow every PD's in the shared segment table.
    assert_eq!(info.template_segments(&echo), 4..6);

    // Instance regions and maps.
    let regions: Vec<_> = info.template_instance_regions(&echo).map(|i| info.instance_region(i)).collect();
    assert_eq!(regions, vec![bootinfo::InstanceRegion { size: 0x10000, page_size: 0x1000 }]);
    let maps: Vec<_> = info.template_maps(&echo).map(|i| info.template_map(i)).collect();
    assert_eq!(maps.len(), 2);
    assert_eq!((maps[0].region, maps[0].vaddr), (TemplateRegion::Instance(0), 0x1000_0000));
    assert!(maps[0].perms.read && !maps[0].perms.write);
    assert_eq!((maps[1].region, maps[1].vaddr), (TemplateRegion::Static(0), 0x2000_0000));

    // Channel arrays, in description order.
    let a = info.channel_array(0);
    assert_eq!((a.pd.pd, a.pd.id, a.pd.pp, a.pd.notify), (0, 5, false, true));
    assert_eq!((a.template, a.instance_id, a.instance_pp, a.instance_notify), (0, 0, false, true));
    let b = info.channel_array(1);
    assert_eq!((b.pd.pd, b.pd.id, b.instance_id, b.instance_pp, b.instance_notify), (1, 0, 1, true, false));

    // The window and the grant.
    let w = info.instance_window(0);
    assert_eq!((w.pd, w.template, w.instance_region, w.vaddr, w.stride), (0, 0, 0, 0x1_0000_0000, 0x10000));
    assert!(w.perms.write && w.cached);
    let g = info.fork_grant_of(0).expect("a grant");
    assert_eq!((g.pd, g.handle, g.max_instances, g.memory), (1, 3, 1000, 0x400_0000));

    // The template's variables: what every instance starts with.
    let data_seg = info.template_segments(&echo).map(|i| info.segment(i)).find(|s| s.perms.write).unwrap();
    let data = info.segment_data(&data_seg);
    assert_eq!(&data[..5], b"echo\0", "microkit_name");
    assert_eq!(word(data, 0x201100), 0x1000_0000, "rx_data (setvar_vaddr)");
    assert_eq!(word(data, 0x201108), 0x10000, "rx_data_size (setvar_size of an instance region)");
    assert_eq!(word(data, 0x201110), 0, "virt_channel (template end setvar_id)");
    assert_eq!(word(data, 0x201118), 0x2000_0000, "config");
    assert_eq!(word(data, 0x201048), 0, "no irqs");
    assert_eq!(word(data, 0x201050), 1 << 0, "instances notify on id 0 only");
    assert_eq!(word(data, 0x201058), 1 << 1, "instances call on id 1");

    // The static PDs' variables.
    let virt = info.pd(0);
    let vseg = info.pd_segments(&virt).map(|i| info.segment(i)).find(|s| s.perms.write).unwrap();
    let vdata = info.segment_data(&vseg);
    assert_eq!(word(vdata, 0x201100), 0x1_0000_0000, "rx_window (window setvar_vaddr)");
    assert_eq!(word(vdata, 0x201108), 5, "echo_array (array end setvar_id)");
    assert_eq!(word(vdata, 0x201110), 1 << 5, "edgeos_channel_arrays");
    assert_eq!(word(vdata, 0x201050), 1 << 5, "the virtualiser notifies the array");
    let manager = info.pd(1);
    let mseg = info.pd_segments(&manager).map(|i| info.segment(i)).find(|s| s.perms.write).unwrap();
    assert_eq!(word(info.segment_data(&mseg), 0x201050), 1 << 0, "the manager notifies the array");
    assert_eq!(word(info.segment_data(&mseg), 0x201058), 0, "the manager calls no one");

    // A kernel that ignores the extension still sees the whole static system.
    let mut old = blob.clone();
    old[bootinfo::EXT_OFFSET_FIELD..bootinfo::EXT_OFFSET_FIELD + 4].fill(0);
    let static_only = BootInfo::parse(&old).expect("static part");
    assert_eq!((static_only.pd_count(), static_only.template_count()), (2, 0));
}

#[test]
fn report_shows_templates_with_windows_and_costs() {
    let env = Env::new();
    programs(&env);
    let (_, report) = env.build(FEATHERWEIGHT).expect("builds");
    for needle in [
        "Templates (1)",
        "[0] echo x1000: priority 50, budget 200 us / period 1000 us",
        "segment   0x0000200000..0x0000200100 r-x (256 B from file, shared)",
        "segment   0x0000201000..0x0000204000 rw- (512 B from file, copied per instance)",
        "instance region rx_data: 64.0 KiB (16 pages of 4.0 KiB), one per instance",
        "map       0x0010000000..0x0010010000 r-- -> rx_data (the instance's own)",
        "map       0x0020000000..0x0020001000 r-- -> config (shared @ 0x",
        "channel   id  0 -> 'virtualiser' (its array id 5) [notify]",
        "channel   id  1 -> 'manager' (its array id 0) [pp]",
        "window    rx_data in 'virtualiser' at 0x0100000000..0x0103e80000 rw- (instance i at 0x100000000 + i * 0x10000)",
        // 12 KiB of writable pages + 8 KiB of stack + 64 KiB of instance region.
        "memory    84.0 KiB per instance (writable pages 12.0 KiB, stack 8.0 KiB, instance regions 64.0 KiB) + page tables; 4.0 KiB shared read-only; snapshot 20.0 KiB",
        "fork      by 'manager' with handle 3: at most 1000 instances, quota 64 MiB (holds 780 instances); the quota binds before max_instances",
        "snapshots from free RAM",
        // In the PDs' sections.
        "array     id  5 -> every instance of template 'echo' (their id 0) [notify]",
        "window    0x0100000000..0x0103e80000 rw- -> echo/rx_data of instance i at 0x100000000 + i * 0x10000 (i < 1000)",
        "fork      handle 3 -> template 'echo' (at most 1000 instances, quota 64 MiB)",
        "Channel arrays (2)",
        "virtualiser:5 <---> echo[*]:0",
        "manager:0 <=pp= echo[*]:1",
    ] {
        assert!(report.contains(needle), "report lacks {needle:?}:\n{report}");
    }
}

#[test]
fn graph_draws_templates_as_stacked_boxes() {
    let (system, _) = sysdesc::parse("s.xml", FEATHERWEIGHT, sysdesc::Arch::Aarch64).expect("valid");
    let dot = edgeos_tool::graph::to_dot(&system);
    for needle in [
        "tpl0 [shape=box3d",
        "label=\"echo \u{d7}1000\\nprio 50\\nrx_data: 0x10000 bytes each\"",
        "tpl0 -> mr0 [arrowhead=none",
        "pd0 -> tpl0 [style=dashed",
        "window rx_data rw",
        "pd1 -> tpl0 [style=dotted, color=gray40, label=\"fork #3 \u{2264}1000, 0x4000000 bytes\"]",
        "pd0 -> tpl0 [dir=both, arrowsize=0.6, label=\"5:0 (array)\"]",
        "tpl0 -> pd1 [dir=forward",
    ] {
        assert!(dot.contains(needle), "graph lacks {needle:?}:\n{dot}");
    }
}

#[test]
fn template_programs_are_checked_like_pds() {
    let env = Env::new();
    env.program("virtualiser.elf", common::pd_program(&["rx_window", "echo_array"]));
    env.program("manager.elf", common::pd_program(&[]));
    let errors = env.errors(FEATHERWEIGHT);
    assert_eq!(errors, vec!["system.xml:5:24: error: program image 'echo.elf' of template 'echo' not found"]);

    // A template program without the symbols the description patches.
    env.program("echo.elf", common::pd_program(&[]));
    let echo = env.path().join("echo.elf").display().to_string();
    assert_eq!(
        env.errors(FEATHERWEIGHT),
        vec![
            format!("system.xml:21:37: error: symbol 'virt_channel' not found in {echo}"),
            format!("system.xml:7:56: error: symbol 'rx_data' not found in {echo}"),
            format!("system.xml:7:79: error: symbol 'rx_data_size' not found in {echo}"),
            format!("system.xml:8:55: error: symbol 'config' not found in {echo}"),
        ]
    );

    // A template program that is both writable and executable.
    let segs = [common::Seg { vaddr: 0x200000, mem_size: 0x1000, data: vec![0; 16], flags: 7 }];
    env.program("echo.elf", common::elf(0x200000, &segs, &[("rx_data", 0x200100, 8), ("rx_data_size", 0x200108, 8), ("virt_channel", 0x200110, 8), ("config", 0x200118, 8)]));
    let errors = env.errors(FEATHERWEIGHT);
    assert_eq!(errors, vec![format!("system.xml:5:24: error: segment 0 of {echo} has perms 'rwx'; EdgeOS loads only W^X segments")]);
}

#[test]
fn template_maps_and_windows_must_clear_program_and_stack() {
    let env = Env::new();
    env.program("t.elf", common::pd_program(&[]));
    env.program("m.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <template name="t">
        <program_image path="t.elf" />
        <instance_region name="r" size="0x2000" />
        <map mr="r" vaddr="0x202000" />
        <map mr="r" vaddr="0x3ffffff000" perms="r" />
    </template>
    <protection_domain name="m">
        <program_image path="m.elf" />
        <fork template="t" id="0" max_instances="16" memory="0x100000" />
        <instance_window template="t" mr="r" vaddr="0x3ffffe0000" stride="0x2000" />
        <instance_window template="t" mr="r" vaddr="0x7ffffe2000" stride="0x2000" perms="r" />
        <instance_window template="t" mr="r" vaddr="0x200000" stride="0x2000" perms="r" />
    </protection_domain>
</system>"#;
    let t = env.path().join("t.elf").display().to_string();
    let m = env.path().join("m.elf").display().to_string();
    assert_eq!(
        env.errors(xml),
        vec![
            format!("system.xml:11:46: error: instance window of 't/r' at 0x3ffffe0000..0x4000000000 overlaps the stack of 'm' (0x3fffffd000..0x4000000000, guard page included)"),
            "system.xml:12:46: error: instance window of 't/r' ends at 0x8000002000, above the user address space (0x8000000000)".to_string(),
            format!("system.xml:13:46: error: instance window of 't/r' at 0x200000..0x220000 overlaps the ELF segment 0x200000..0x201000 of {m}"),
            format!("system.xml:13:46: error: instance window of 't/r' at 0x200000..0x220000 overlaps the ELF segment 0x201000..0x204000 of {m}"),
            format!("system.xml:5:21: error: map of 'r' at 0x202000..0x204000 overlaps the ELF segment 0x201000..0x204000 of {t}"),
            "system.xml:6:21: error: map of 'r' at 0x3ffffff000..0x4000001000 overlaps the stack of 't' (0x3fffffd000..0x4000000000, guard page included)".to_string(),
        ]
    );
}

#[test]
fn writable_executable_template_maps_and_windows_are_refused() {
    let env = Env::new();
    env.program("t.elf", common::pd_program(&[]));
    env.program("m.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <template name="t">
        <program_image path="t.elf" />
        <instance_region name="r" size="0x1000" />
        <map mr="r" vaddr="0x1000000" perms="rwx" />
    </template>
    <protection_domain name="m">
        <program_image path="m.elf" />
        <fork template="t" id="0" max_instances="4" memory="0x100000" />
        <instance_window template="t" mr="r" vaddr="0x2000000" perms="rwx" />
    </protection_domain>
</system>"#;
    assert_eq!(
        env.errors(xml),
        vec![
            "system.xml:10:64: error: instance window of 't/r' is both writable and executable; EdgeOS enforces W^X",
            "system.xml:5:39: error: map of 'r' is both writable and executable; EdgeOS enforces W^X",
        ]
    );
}

#[test]
fn a_fork_quota_must_hold_one_instance() {
    let env = Env::new();
    env.program("t.elf", common::pd_program(&[]));
    env.program("m.elf", common::pd_program(&[]));
    let xml = r#"<system>
    <template name="t" stack_size="0x4000">
        <program_image path="t.elf" />
        <instance_region name="r" size="0x10000" />
        <map mr="r" vaddr="0x1000000" />
    </template>
    <protection_domain name="m">
        <program_image path="m.elf" />
        <fork template="t" id="0" max_instances="100" memory="0x10000" />
    </protection_domain>
</system>"#;
    assert_eq!(
        env.errors(xml),
        vec![
            "system.xml:9:55: error: fork quota memory=0x10000 for template 't' cannot hold one instance (0x17000 bytes: writable pages 0x3000, stack 0x4000, instance regions 0x10000)"
        ]
    );
}

#[test]
fn template_maps_of_prefilled_regions_get_the_region_size_and_file_length() {
    let env = Env::new();
    programs(&env);
    env.program("echo.elf", common::pd_program(&["rx_data", "rx_data_size", "virt_channel", "config", "config_size", "config_len"]));
    env.program("config.bin", vec![7u8; 0x1801]);
    // 'config' loses its size and gets a prefill file instead; the template map asks for both.
    let xml = FEATHERWEIGHT
        .replace(r#"<memory_region name="config" size="0x1000" />"#, r#"<memory_region name="config" prefill_path="config.bin" />"#)
        .replace(
            r#"setvar_vaddr="config" />"#,
            r#"setvar_vaddr="config" setvar_size="config_size" setvar_prefill_size="config_len" />"#,
        );
    let (image, _) = env.build(&xml).expect("builds");
    let (blob, _) = blob_of(&image);
    let info = BootInfo::parse(&blob).unwrap();
    let echo = info.template(0);
    let data_seg = info.template_segments(&echo).map(|i| info.segment(i)).find(|s| s.perms.write).unwrap();
    let data = info.segment_data(&data_seg);
    assert_eq!(word(data, 0x201120), 0x2000, "config_size: the file length rounded up to a page");
    assert_eq!(word(data, 0x201128), 0x1801, "config_len: the file length");
    assert_eq!(info.region(0).size, 0x2000);
}

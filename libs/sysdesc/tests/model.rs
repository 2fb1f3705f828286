//! Spot checks of the model built from the valid fixtures: defaults,
//! flattening of child PDs, resolved references and page sizes, and that the
//! fixtures together use every element and attribute of the format.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use sysdesc::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/valid")
        .join(name);
    fs::read_to_string(path).expect("fixture is readable")
}

fn parse_ok(name: &str, arch: Arch) -> SystemDescription {
    let text = fixture(name);
    match parse(name, &text, arch) {
        Ok((desc, warnings)) => {
            assert!(warnings.is_empty(), "{:?}", warnings);
            desc
        }
        Err(diags) => panic!("{name}:\n{}", render(&diags, &text, false)),
    }
}

#[test]
fn defaults() {
    let desc = parse_ok("minimal.xml", Arch::Aarch64);
    let pd = desc.pd_by_name("hello").expect("hello exists");
    assert_eq!(pd.priority, 0);
    assert_eq!(pd.budget, 1000);
    assert_eq!(pd.period, 1000);
    assert!(!pd.passive);
    assert_eq!(pd.stack_size, 0x2000);
    assert_eq!(pd.cpu, 0);
    assert_eq!(pd.smc, None);
    assert!(pd.fpu);
    assert_eq!(pd.domain, None);
    assert_eq!(pd.parent, None);
    assert_eq!(pd.child_id, None);
    assert_eq!(pd.program_image.path, "hello.elf");
    assert_eq!(pd.program_image.path_for_symbols, None);

    let map = &pd.maps[0];
    assert_eq!(map.mr, "buf");
    assert_eq!(map.vaddr, 0x400_0000);
    assert_eq!(map.perms, Perms::RW);
    assert_eq!(map.perms.to_string(), "rw");
    assert!(map.cached);
    assert_eq!(map.setvar_vaddr, None);

    let mr = desc.mr_by_name("buf").expect("buf exists");
    assert_eq!(mr.size, 0x1000);
    assert!(mr.size_explicit);
    assert_eq!(mr.page_size, 0x1000);
    assert!(!mr.page_size_explicit);
    assert_eq!(mr.page_count(), 1);
    assert_eq!(mr.phys_addr, None);
    assert_eq!(mr.prefill, None);

    let [a, b] = &desc.channels[0].ends;
    assert_eq!((a.pd.as_str(), a.pd_index, a.id), ("hello", 0, 0));
    assert_eq!((b.pd.as_str(), b.pd_index, b.id), ("peer", 1, 61));
    for end in [a, b] {
        assert!(end.notify);
        assert!(!end.pp);
        assert_eq!(end.setvar_id, None);
    }
    assert_eq!(desc.domains, None);
    assert!(desc.io_address_spaces.is_empty());
}

#[test]
fn positions_point_at_elements_and_attributes() {
    let text = fixture("minimal.xml");
    let desc = parse_ok("minimal.xml", Arch::Aarch64);
    let pd = &desc.protection_domains[0];
    assert_eq!((pd.pos.line, pd.pos.col), (3, 5));
    assert_eq!(&text[pd.pos.span()], "<protection_domain");
    let image = &pd.program_image;
    assert_eq!((image.pos.line, image.pos.col), (4, 9));
    let path = image.attrs.get("path").expect("path is written");
    assert_eq!(&text[path.span()], "path=\"hello.elf\"");
    assert_eq!((path.line, path.col), (4, 24));
    let vaddr = pd.maps[0].attr_pos("vaddr");
    assert_eq!(&text[vaddr.span()], "vaddr=\"0x4000000\"");
    // A defaulted attribute points at its element.
    assert_eq!(pd.attr_pos("priority"), pd.pos);
}

#[test]
fn arm_full_model() {
    let desc = parse_ok("arm_full.xml", Arch::Aarch64);
    let names: Vec<&str> = desc
        .protection_domains
        .iter()
        .map(|pd| pd.name.as_str())
        .collect();
    // Children follow their parent, depth first.
    assert_eq!(
        names,
        [
            "driver",
            "client",
            "parent",
            "child",
            "grandchild",
            "child2",
            "vmm"
        ]
    );

    let driver = &desc.protection_domains[0];
    assert_eq!(driver.priority, 254);
    assert_eq!((driver.budget, driver.period), (100, 1000));
    assert_eq!(driver.stack_size, 0x4000);
    assert_eq!(driver.smc, Some(true));
    assert!(!driver.fpu);
    assert_eq!(
        driver.program_image.path_for_symbols.as_deref(),
        Some("driver.debug.elf")
    );
    let uart = &driver.maps[0];
    assert!(!uart.cached);
    assert_eq!(uart.setvar_vaddr.as_deref(), Some("uart_base"));
    assert_eq!(
        driver.maps[1].perms,
        Perms {
            r: true,
            w: false,
            x: false
        }
    );
    let table = &driver.maps[2];
    assert_eq!(table.perms.to_string(), "rx");
    assert_eq!(table.setvar_size.as_deref(), Some("table_size"));
    assert_eq!(table.setvar_prefill_size.as_deref(), Some("table_len"));
    match &driver.irqs[0] {
        Irq::Arm {
            irq,
            id,
            trigger,
            setvar_id,
            ..
        } => {
            assert_eq!((*irq, *id, *trigger), (33, 0, Trigger::Edge));
            assert_eq!(setvar_id.as_deref(), Some("uart_irq"));
        }
        other => panic!("unexpected irq {other:?}"),
    }
    assert!(matches!(
        driver.irqs[1],
        Irq::Arm {
            trigger: Trigger::Level,
            ..
        }
    ));
    assert_eq!(driver.setvars[0].symbol, "shared_paddr");
    assert_eq!(driver.setvars[0].region_paddr, "shared");

    let client = desc.pd_by_name("client").expect("client");
    assert!(client.passive);

    let child = desc.pd_by_name("child").expect("child");
    assert_eq!(child.parent, Some(2));
    assert_eq!(child.child_id, Some(0));
    assert_eq!(child.setvar_id.as_deref(), Some("child_id"));
    let grandchild = desc.pd_by_name("grandchild").expect("grandchild");
    assert_eq!(grandchild.parent, Some(3));
    assert_eq!(grandchild.child_id, Some(3));
    let children: Vec<usize> = desc.children_of(2).collect();
    assert_eq!(children, [3, 5]);

    let parent = desc.pd_by_name("parent").expect("parent");
    let cspace = parent.cspace.as_ref().expect("cspace");
    let caps: Vec<(CapKind, u64, &str)> = cspace
        .caps
        .iter()
        .map(|c| (c.kind, c.slot, c.pd.as_str()))
        .collect();
    assert_eq!(
        caps,
        [
            (CapKind::Tcb, 1, "child"),
            (CapKind::Sc, 2, "child"),
            (CapKind::Vspace, 127, "client")
        ]
    );

    let vm = desc
        .pd_by_name("vmm")
        .and_then(|pd| pd.virtual_machine.as_ref())
        .expect("vm");
    assert_eq!(vm.name, "linux");
    assert_eq!((vm.priority, vm.budget, vm.period), (55, 500, 1000));
    assert_eq!(vm.vcpus.len(), 2);
    assert_eq!(vm.vcpus[0].cpu, Some(0));
    assert_eq!(vm.vcpus[0].setvar_id.as_deref(), Some("vcpu0"));
    assert_eq!(vm.vcpus[1].cpu, None);
    assert!(vm.maps[0].perms.x);

    // Page sizes: explicit, and the largest the size and mappings allow.
    let uart = desc.mr_by_name("uart").expect("uart");
    assert_eq!((uart.page_size, uart.page_size_explicit), (0x1000, true));
    assert_eq!(uart.phys_addr, Some(0x900_0000));
    assert_eq!(desc.mr_by_name("shared").map(|m| m.page_size), Some(0x1000));
    assert_eq!(desc.mr_by_name("big").map(|m| m.page_size), Some(0x20_0000));
    let firmware = desc.mr_by_name("firmware").expect("firmware");
    assert_eq!(firmware.prefill, Some(Prefill::Path("firmware.bin".into())));
    assert!(!firmware.size_explicit);
    assert_eq!(firmware.size_for_prefill(0x1801), Ok(0x2000));
    assert!(firmware.size_for_prefill(0).is_err());
    let table = desc.mr_by_name("table").expect("table");
    assert_eq!(table.size_for_prefill(0x2000), Ok(0x2000));
    assert!(table.size_for_prefill(0x2001).is_err());

    let [client_end, driver_end] = &desc.channels[0].ends;
    assert!(client_end.pp && client_end.notify);
    assert!(!driver_end.pp && !driver_end.notify);
    assert_eq!(client_end.setvar_id.as_deref(), Some("driver_channel"));
    assert_eq!(driver_end.pd_index, 0);
    let ends: Vec<u64> = desc.channel_ends_of(0).map(|e| e.end.id).collect();
    assert_eq!(ends, [2]);
    let peer = desc.channel_ends_of(0).next().map(|e| e.peer.pd.clone());
    assert_eq!(peer.as_deref(), Some("client"));
}

#[test]
fn domain_schedule_model() {
    let desc = parse_ok("arm_domains.xml", Arch::Aarch64);
    let domains = desc.domains.as_ref().expect("domains");
    let ids: Vec<(&str, u64, bool)> = domains
        .domains
        .iter()
        .map(|d| (d.name.as_str(), d.id, d.id_explicit))
        .collect();
    assert_eq!(ids, [("critical", 3, true), ("best_effort", 0, false)]);
    assert_eq!((domains.start_index, domains.index_shift), (1, 2));
    let durations: Vec<Option<Duration>> = domains
        .schedule
        .iter()
        .map(|item| match item {
            ScheduleItem::Entry { duration, .. } => Some(*duration),
            ScheduleItem::EndMarker { .. } => None,
        })
        .collect();
    assert_eq!(
        durations,
        [
            Some(Duration::Micros(1000)),
            Some(Duration::Ticks(500)),
            Some(Duration::Micros(16)),
            None
        ]
    );
    assert_eq!(
        desc.pd_by_name("logger")
            .and_then(|pd| pd.domain.as_deref()),
        Some("best_effort")
    );
    assert!(domains.domain_by_name("critical").is_some());
}

#[test]
fn x86_model() {
    let desc = parse_ok("x86_full.xml", Arch::X86_64);
    assert_eq!(desc.arch, Arch::X86_64);
    let serial = desc.pd_by_name("serial").expect("serial");
    assert_eq!(serial.smc, Some(false));
    let port = &serial.ioports[0];
    assert_eq!((port.id, port.addr, port.size), (0, 0x3f8, 8));
    assert_eq!(port.setvar_id.as_deref(), Some("com1_id"));
    assert_eq!(port.setvar_addr.as_deref(), Some("com1_port"));
    match &serial.irqs[0] {
        Irq::IoApic {
            id,
            ioapic,
            pin,
            vector,
            trigger,
            polarity,
            setvar_id,
            ..
        } => {
            assert_eq!((*id, *ioapic, *pin, *vector), (2, 0, 4, 4));
            assert_eq!((*trigger, *polarity), (Trigger::Edge, Polarity::High));
            assert_eq!(setvar_id.as_deref(), Some("com1_irq"));
        }
        other => panic!("unexpected irq {other:?}"),
    }
    let nic = desc.pd_by_name("nic").expect("nic");
    match &nic.irqs[0] {
        Irq::Msi {
            id,
            pcidev,
            handle,
            vector,
            ..
        } => {
            assert_eq!((*id, *handle, *vector), (0, 0, 10));
            assert_eq!(pcidev.to_string(), "00:03.0");
        }
        other => panic!("unexpected irq {other:?}"),
    }
    assert!(matches!(
        nic.irqs[1],
        Irq::IoApic {
            trigger: Trigger::Level,
            polarity: Polarity::Low,
            ioapic: 0,
            ..
        }
    ));
    assert_eq!(nic.irqs[1].id(), 1);

    let acpi = desc.mr_by_name("acpi").expect("acpi");
    assert_eq!(
        acpi.prefill,
        Some(Prefill::Bootinfo(BootinfoKind::X86AcpiRsdp))
    );
    assert_eq!((acpi.size, acpi.size_explicit), (0x1000, false));
    assert_eq!(
        desc.mr_by_name("mmap").and_then(|m| m.prefill.clone()),
        Some(Prefill::Bootinfo(BootinfoKind::X86Mbmap))
    );

    let space = &desc.io_address_spaces[0];
    assert_eq!(space.name, "nic_dma");
    assert_eq!(space.peripheral_id.to_string(), "00:03.0");
    assert_eq!(space.domain_id, 1);
    assert_eq!(space.iomaps[0].perms, Perms::RW);
    assert!(!space.iomaps[1].perms.w);
    assert_eq!(
        desc.io_address_spaces[1].peripheral_id.to_string(),
        "ff:1f.7"
    );

    let vm = desc
        .pd_by_name("vmm")
        .and_then(|pd| pd.virtual_machine.as_ref())
        .expect("vm");
    assert_eq!(vm.vcpus.len(), 1);
    assert_eq!(
        desc.mr_by_name("guest_ram").map(|m| m.page_size),
        Some(0x20_0000)
    );
}

#[test]
fn sdfgen_style_names_and_dma_regions() {
    let desc = parse_ok("sdfgen_net.xml", Arch::Aarch64);
    assert_eq!(desc.protection_domains.len(), 8);
    let rx = desc
        .mr_by_name("virtio_mmio@a003000/net/queue/rx/free")
        .expect("queue region");
    assert_eq!((rx.size, rx.page_size), (0x20_0000, 0x20_0000));
    let dma = desc
        .mr_by_name("net_virt_rx/net/data/device")
        .expect("dma region");
    assert_eq!(dma.phys_addr, Some(0x5fa0_0000));
    let ring = desc
        .mr_by_name("virtio_mmio@a003000/net/hw_ring")
        .expect("ring");
    assert_eq!(
        (ring.phys_addr, ring.page_size),
        (Some(0x5fdf_0000), 0x1000)
    );
    let eth = desc.pd_by_name("ethernet_driver").expect("driver");
    assert!(matches!(
        eth.irqs[0],
        Irq::Arm {
            irq: 79,
            trigger: Trigger::Edge,
            ..
        }
    ));
    assert_eq!(desc.channels.len(), 8);
}

#[test]
fn featherweight_model() {
    let desc = parse_ok("featherweight.xml", Arch::Aarch64);
    assert_eq!(desc.templates.len(), 2);
    assert_eq!(desc.protection_domains.len(), 2);
    // Channel arrays are kept apart from channels between PDs.
    assert_eq!(desc.channels.len(), 1);
    assert_eq!(desc.channel_arrays.len(), 3);

    let echo = &desc.templates[0];
    assert_eq!(
        (
            echo.name.as_str(),
            echo.priority,
            echo.budget,
            echo.period,
            echo.passive,
            echo.stack_size
        ),
        ("echo", 50, 200, 1000, false, 0x2000)
    );
    assert_eq!(echo.program_image.path, "echo.elf");
    assert_eq!(
        echo.program_image.path_for_symbols.as_deref(),
        Some("echo.debug.elf")
    );
    // Instance regions default to 4 KiB pages.
    let rx = &echo.instance_regions[0];
    assert_eq!(
        (rx.name.as_str(), rx.size, rx.page_size),
        ("rx_data", 0x10000, 0x1000)
    );
    assert_eq!(echo.instance_regions[1].page_size, 0x20_0000);
    assert_eq!(echo.instance_region_index("scratch"), Some(1));
    // Maps name an instance region or a static region.
    let targets: Vec<RegionRef> = echo.maps.iter().map(|m| m.target).collect();
    let config = desc
        .memory_regions
        .iter()
        .position(|m| m.name == "config")
        .unwrap();
    assert_eq!(
        targets,
        vec![
            RegionRef::Instance(0),
            RegionRef::Instance(1),
            RegionRef::Static(config)
        ]
    );
    assert_eq!(
        echo.maps[0].map.setvar_size.as_deref(),
        Some("rx_data_size")
    );
    assert!(!echo.maps[2].map.perms.w);

    // Defaults of a template.
    let worker = desc.template_by_name("worker").unwrap();
    assert_eq!(
        (
            worker.priority,
            worker.budget,
            worker.period,
            worker.passive,
            worker.stack_size
        ),
        (160, 1000, 1000, true, 0x2000)
    );

    // Instance windows: resolved, the stride defaults to the region's size.
    let virt = desc.pd_by_name("virtualiser").unwrap();
    let w0 = &virt.instance_windows[0];
    assert_eq!((w0.template_index, w0.region_index), (0, 0));
    assert_eq!(
        (w0.vaddr, w0.stride, w0.stride_explicit),
        (0x1_0000_0000, 0x10000, true)
    );
    assert_eq!(w0.setvar_vaddr.as_deref(), Some("rx_window"));
    assert_eq!(w0.setvar_stride.as_deref(), Some("rx_window_stride"));
    assert!(w0.perms.w && w0.cached);
    let w1 = &virt.instance_windows[1];
    assert_eq!(
        (w1.region_index, w1.stride, w1.stride_explicit),
        (1, 0x20_0000, false)
    );
    assert!(!w1.perms.w);
    let windows: Vec<usize> = desc.windows_of_template(0).map(|(pd, _)| pd).collect();
    assert_eq!(windows, vec![0, 0]);

    // Fork grants.
    let manager = desc.pd_index("manager").unwrap();
    let (holder, fork) = desc.fork_of(0).unwrap();
    assert_eq!(holder, manager);
    assert_eq!(
        (fork.id, fork.max_instances, fork.memory),
        (0, 1000, 0x400_0000)
    );
    assert_eq!(desc.fork_of(1).unwrap().1.id, 1);

    // Channel arrays: both ends resolved, in either order.
    let a = &desc.channel_arrays[0];
    assert!(!a.template_first);
    assert_eq!((a.pd_end.pd.as_str(), a.pd_end.id), ("virtualiser", 5));
    assert_eq!(a.pd_end.setvar_id.as_deref(), Some("echo_array"));
    let t = &a.template_end;
    assert_eq!(
        (t.template_index, t.id, t.pp, t.notify),
        (0, 0, false, true)
    );
    assert_eq!(t.setvar_id.as_deref(), Some("virt_channel"));
    let b = &desc.channel_arrays[1];
    assert!(b.template_first && b.template_end.pp && !b.pd_end.notify);
    assert_eq!(b.pd_end.pd_index, manager);
    assert_eq!(desc.channel_arrays_of_pd(manager).count(), 2);
    assert_eq!(desc.channel_arrays_of_template(0).count(), 2);
    // The plain channel_ends_of leaves arrays out.
    assert_eq!(desc.channel_ends_of(manager).count(), 1);
}

#[test]
fn templates_do_not_count_toward_the_pd_ceiling() {
    // 63 PDs (the ceiling) and 100 templates, forked by the first two PDs
    // (62 handle ids each at most).
    let mut text = String::from("<system>\n");
    for t in 0..100 {
        text.push_str(&format!(
            "    <template name=\"t{t}\"><program_image path=\"t.elf\"/></template>\n"
        ));
    }
    for pd in 0..63 {
        text.push_str(&format!(
            "    <protection_domain name=\"pd{pd}\"><program_image path=\"pd.elf\"/>"
        ));
        for t in (0..100).filter(|t| t / 50 == pd) {
            text.push_str(&format!(
                "<fork template=\"t{t}\" id=\"{}\" max_instances=\"1\" memory=\"0x1000\"/>",
                t % 50
            ));
        }
        text.push_str("</protection_domain>\n");
    }
    text.push_str("</system>\n");
    let (desc, _) = parse("many.xml", &text, Arch::Aarch64)
        .unwrap_or_else(|d| panic!("{}", render(&d, &text, false)));
    assert_eq!(desc.protection_domains.len(), 63);
    assert_eq!(desc.templates.len(), 100);
    assert_eq!(desc.fork_of(99).map(|(pd, f)| (pd, f.id)), Some((1, 49)));
}

#[test]
fn unused_instance_regions_are_a_warning() {
    let text = r#"<system>
    <template name="t">
        <program_image path="t.elf"/>
        <instance_region name="used" size="0x1000"/>
        <instance_region name="windowed" size="0x1000"/>
        <instance_region name="spare" size="0x1000"/>
        <map mr="used" vaddr="0x1000000"/>
    </template>
    <protection_domain name="m">
        <program_image path="m.elf"/>
        <fork template="t" id="0" max_instances="2" memory="0x10000"/>
        <instance_window template="t" mr="windowed" vaddr="0x2000000"/>
    </protection_domain>
</system>"#;
    let (desc, warnings) = parse("w.xml", text, Arch::Aarch64).expect("valid");
    assert_eq!(desc.templates[0].instance_regions.len(), 3);
    let lines: Vec<String> = warnings.iter().map(Diagnostic::one_line).collect();
    assert_eq!(
        lines,
        vec!["w.xml:6:9: warning: instance region 'spare' of template 't' is never mapped"]
    );
}

#[test]
fn template_maps_decide_the_page_size_of_static_regions() {
    let text = r#"<system>
    <memory_region name="big" size="0x400000"/>
    <memory_region name="small" size="0x400000"/>
    <template name="t">
        <program_image path="t.elf"/>
        <map mr="big" vaddr="0x40000000" perms="r"/>
        <map mr="small" vaddr="0x50001000" perms="r"/>
    </template>
    <protection_domain name="m">
        <program_image path="m.elf"/>
        <fork template="t" id="0" max_instances="2" memory="0x10000"/>
    </protection_domain>
</system>"#;
    let (desc, _) = parse("p.xml", text, Arch::Aarch64).expect("valid");
    assert_eq!(desc.memory_regions[0].page_size, 0x20_0000);
    assert_eq!(desc.memory_regions[1].page_size, 0x1000);
}

#[test]
fn sixty_three_pds_is_the_ceiling() {
    let desc = parse_ok("max_pds.xml", Arch::Aarch64);
    assert_eq!(desc.protection_domains.len(), 63);
    assert_eq!(desc.channels.len(), 63);
    let text = fixture("max_pds.xml");
    let one_more = text.replace(
        "</system>",
        "    <protection_domain name=\"pd63\"><program_image path=\"w.elf\"/></protection_domain>\n</system>",
    );
    let err = parse("max_pds.xml", &one_more, Arch::Aarch64).expect_err("64 PDs");
    assert_eq!(err.len(), 1);
    assert!(
        err[0].message.contains("64 declared, at most 63"),
        "{}",
        err[0].message
    );
}

#[test]
fn arm_description_is_not_valid_x86() {
    let text = fixture("arm_full.xml");
    let diags = parse("arm_full.xml", &text, Arch::X86_64).expect_err("ARM-only features");
    let messages: Vec<String> = diags.iter().map(|d| d.message.clone()).collect();
    assert!(
        messages.iter().any(|m| m.contains("smc=\"true\"")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("the ARM form (irq=)")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("unknown attribute 'priority' on element 'virtual_machine'")),
        "{messages:?}"
    );
}

#[test]
fn x86_description_is_not_valid_arm() {
    let text = fixture("x86_full.xml");
    let diags = parse("x86_full.xml", &text, Arch::Aarch64).expect_err("x86-only features");
    let count = |needle: &str| diags.iter().filter(|d| d.message.contains(needle)).count();
    assert_eq!(count("element 'ioport' is only available on x86_64"), 2);
    assert_eq!(count("form of element 'irq' is not valid on aarch64"), 3);
    assert_eq!(
        count("'prefill_bootinfo' on element 'memory_region' is only available"),
        5
    );
    assert_eq!(count("'io_address_space' (IOMMU) is only available"), 2);
}

#[test]
fn more_cores_allow_higher_cpu_numbers() {
    let text = r#"<system>
        <protection_domain name="a" cpu="1"><program_image path="a.elf"/></protection_domain>
    </system>"#;
    assert!(parse("s.xml", text, Arch::Aarch64).is_err());
    let options = Options {
        arch: Arch::Aarch64,
        cores: 2,
    };
    let (desc, _) = parse_with("s.xml", text, &options).expect("two cores");
    assert_eq!(desc.protection_domains[0].cpu, 1);
}

#[test]
fn regions_mapped_for_a_device_keep_small_pages() {
    let text = r#"<system>
        <memory_region name="dma" size="0x200000"/>
        <memory_region name="cpu_only" size="0x200000"/>
        <protection_domain name="a">
            <program_image path="a.elf"/>
            <map mr="dma" vaddr="0x40000000"/>
            <map mr="cpu_only" vaddr="0x40200000"/>
        </protection_domain>
        <io_address_space name="nic" peripheral_id="0:3.0" domain_id="1">
            <iomap mr="dma" iovaddr="0x1000"/>
        </io_address_space>
    </system>"#;
    let (desc, _) = parse("s.xml", text, Arch::X86_64).expect("valid");
    assert_eq!(desc.mr_by_name("dma").map(|m| m.page_size), Some(0x1000));
    assert_eq!(
        desc.mr_by_name("cpu_only").map(|m| m.page_size),
        Some(0x20_0000)
    );
}

#[test]
fn a_small_page_mapping_keeps_a_region_at_small_pages() {
    let text = r#"<system>
        <memory_region name="m" size="0x400000" phys_addr="0x40000000"/>
        <protection_domain name="a">
            <program_image path="a.elf"/>
            <map mr="m" vaddr="0x10001000"/>
        </protection_domain>
    </system>"#;
    let (desc, _) = parse("s.xml", text, Arch::Aarch64).expect("valid");
    assert_eq!(desc.memory_regions[0].page_size, 0x1000);
}

/// Every element and attribute of the format, and the valid fixtures that
/// must together use each of them at least once.
#[test]
fn valid_fixtures_use_every_element_and_attribute() {
    const FORMAT: &[(&str, &[&str])] = &[
        ("system", &[]),
        (
            "protection_domain",
            &[
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
            ],
        ),
        ("program_image", &["path", "path_for_symbols"]),
        (
            "map",
            &[
                "mr",
                "vaddr",
                "perms",
                "cached",
                "setvar_vaddr",
                "setvar_size",
                "setvar_prefill_size",
            ],
        ),
        (
            "irq",
            &[
                "irq",
                "id",
                "trigger",
                "setvar_id",
                "pin",
                "vector",
                "ioapic",
                "polarity",
                "pcidev",
                "handle",
            ],
        ),
        ("setvar", &["symbol", "region_paddr"]),
        (
            "ioport",
            &["id", "addr", "size", "setvar_id", "setvar_addr"],
        ),
        ("virtual_machine", &["name", "priority", "budget", "period"]),
        ("vcpu", &["id", "cpu", "setvar_id"]),
        ("cspace", &[]),
        ("cap_tcb", &["slot", "pd"]),
        ("cap_sc", &["slot", "pd"]),
        ("cap_vspace", &["slot", "pd"]),
        (
            "memory_region",
            &[
                "name",
                "size",
                "page_size",
                "phys_addr",
                "prefill_path",
                "prefill_bootinfo",
            ],
        ),
        ("channel", &[]),
        (
            "end",
            &["pd", "template", "id", "pp", "notify", "setvar_id"],
        ),
        ("domains", &[]),
        ("domain", &["name", "id"]),
        ("domain_schedule", &["start_index", "index_shift"]),
        ("schedule_entry", &["domain", "duration"]),
        ("schedule_end_marker", &[]),
        ("io_address_space", &["name", "peripheral_id", "domain_id"]),
        ("iomap", &["mr", "iovaddr", "perms"]),
        // EdgeOS extension: featherweight processes.
        (
            "template",
            &[
                "name",
                "priority",
                "budget",
                "period",
                "passive",
                "stack_size",
            ],
        ),
        ("instance_region", &["name", "size", "page_size"]),
        (
            "instance_window",
            &[
                "template",
                "mr",
                "vaddr",
                "stride",
                "perms",
                "cached",
                "setvar_vaddr",
            ],
        ),
        ("fork", &["template", "id", "max_instances", "memory"]),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for entry in fs::read_dir(dir).expect("fixture directory") {
        let text = fs::read_to_string(entry.expect("entry").path()).expect("readable");
        let doc = roxmltree::Document::parse(&text).expect("well-formed");
        for node in doc.descendants().filter(|n| n.is_element()) {
            let tag = node.tag_name().name().to_string();
            seen.insert((tag.clone(), String::new()));
            for attr in node.attributes() {
                seen.insert((tag.clone(), attr.name().to_string()));
            }
        }
    }
    let mut missing = Vec::new();
    for (element, attrs) in FORMAT {
        if !seen.contains(&(element.to_string(), String::new())) {
            missing.push(format!("<{element}>"));
        }
        for attr in *attrs {
            if !seen.contains(&(element.to_string(), attr.to_string())) {
                missing.push(format!("{element}@{attr}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not used by any valid fixture: {missing:?}"
    );
}

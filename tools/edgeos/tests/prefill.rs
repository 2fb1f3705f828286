//! Prefilled memory regions: their sizes, the `setvar_size` / `setvar_prefill_size` variables
//! patched from them (read back out of the built image), and the build-time prefill errors.

mod common;

use bootinfo::BootInfo;
use common::{blob_of, Env};

const PREFILLED: &str = r#"<system>
    <memory_region name="fw" prefill_path="fw.bin" />
    <memory_region name="cfg" size="0x4000" prefill_path="cfg.bin" />
    <protection_domain name="a">
        <program_image path="a.elf" />
        <map mr="fw" vaddr="0x1000000" perms="r" setvar_vaddr="fw_vaddr" setvar_size="fw_size" setvar_prefill_size="fw_prefill_size" />
        <map mr="cfg" vaddr="0x2000000" perms="r" setvar_size="cfg_size" setvar_prefill_size="cfg_prefill_size" />
    </protection_domain>
</system>"#;

const SYMBOLS: [&str; 5] = ["fw_vaddr", "fw_size", "fw_prefill_size", "cfg_size", "cfg_prefill_size"];

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// The 8-byte variables of PD 0's data segment, in `SYMBOLS` order (common::pd_program puts
/// extra symbols at 0x201100, 8 bytes apart, in a data segment whose file data starts at
/// 0x201000).
fn patched_words(blob: &[u8]) -> Vec<u64> {
    let info = BootInfo::parse(blob).expect("blob parses");
    let pd = info.pd(0);
    let seg = info.pd_segments(&pd).map(|i| info.segment(i)).find(|s| s.perms.write).expect("data segment");
    let data = info.segment_data(&seg);
    (0..SYMBOLS.len()).map(|i| u64::from_le_bytes(data[0x100 + 8 * i..][..8].try_into().unwrap())).collect()
}

#[test]
fn setvar_size_is_the_region_size_and_setvar_prefill_size_the_file_length() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&SYMBOLS));
    let fw = pattern(0x1234);
    env.program("fw.bin", fw.clone());
    env.program("cfg.bin", pattern(100));
    let (image, report) = env.build(PREFILLED).expect("builds");
    let (blob, img) = blob_of(&image);

    let [fw_vaddr, fw_size, fw_prefill, cfg_size, cfg_prefill] = patched_words(&blob)[..] else { unreachable!() };
    assert_eq!(fw_vaddr, 0x100_0000);
    // No written size: the file length rounded up to the page size.
    assert_eq!(fw_size, 0x2000, "setvar_size of a region sized by its prefill file");
    assert_eq!(fw_prefill, 0x1234, "setvar_prefill_size is the file's length");
    // A written size stays the size; the prefill size is still the file's length.
    assert_eq!(cfg_size, 0x4000);
    assert_eq!(cfg_prefill, 100);

    // The blob's region records and the image's prefill segments agree.
    let info = BootInfo::parse(&blob).unwrap();
    let (r_fw, r_cfg) = (info.region(0), info.region(1));
    assert_eq!((r_fw.size, r_cfg.size), (0x2000, 0x4000));
    assert_eq!(r_fw.flags & bootinfo::REGION_ZERO, 0, "a prefilled region is not zeroed over");
    let fw_seg = img.segments.iter().find(|s| s.paddr == r_fw.paddr).expect("fw prefill segment");
    assert_eq!(fw_seg.data, fw);
    assert!(report.contains("region fw"), "{report}");
}

#[test]
fn a_region_sized_by_its_prefill_file_is_checked_at_that_size() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    env.program("fw.bin", pattern(0x1800));
    // 0x1ff000 + 0x2000 reaches into the program's code page at 0x200000.
    let xml = r#"<system>
    <memory_region name="fw" prefill_path="fw.bin" />
    <protection_domain name="a">
        <program_image path="a.elf" />
        <map mr="fw" vaddr="0x1ff000" perms="r" />
    </protection_domain>
</system>"#;
    let dir = env.path().join("a.elf").display().to_string();
    assert_eq!(
        env.errors(xml),
        vec![format!("system.xml:5:22: error: map of 'fw' at 0x1ff000..0x201000 overlaps the ELF segment 0x200000..0x201000 of {dir}")]
    );
}

#[test]
fn prefill_errors_are_located_with_hints() {
    let env = Env::new();
    env.program("a.elf", common::pd_program(&[]));
    env.program("empty.bin", Vec::new());
    env.program("big.bin", pattern(0x1001));
    let xml = r#"<system>
    <memory_region name="missing" prefill_path="missing.bin" />
    <memory_region name="empty" prefill_path="empty.bin" />
    <memory_region name="small" size="0x1000" prefill_path="big.bin" />
    <protection_domain name="a">
        <program_image path="a.elf" />
        <map mr="missing" vaddr="0x1000000" perms="r" />
        <map mr="empty" vaddr="0x2000000" perms="r" />
        <map mr="small" vaddr="0x3000000" perms="r" />
    </protection_domain>
</system>"#;
    let diags = env.diagnostics(xml);
    let lines: Vec<String> = diags.iter().map(|d| d.one_line()).collect();
    assert_eq!(
        lines,
        vec![
            "system.xml:2:35: error: prefill file 'missing.bin' not found",
            "system.xml:3:33: error: prefill file of memory region 'empty' is empty",
            "system.xml:4:47: error: prefill file of memory region 'small' is 0x1001 bytes, larger than the region's size 0x1000",
        ]
    );
    let hints: Vec<&str> = diags.iter().map(|d| d.hint.as_deref().expect("every error has a hint")).collect();
    assert_eq!(hints[0], format!("searched: {}", env.path().display()));
    assert_eq!(hints[1], "a prefill file must hold at least one byte; for a zeroed region remove prefill_path");
    assert_eq!(
        hints[2],
        "make size at least 0x2000 (the file length rounded up to the page size), or remove size to take it from the file"
    );
}

//! The `edgeos` command line: exit codes, both error formats, graph output.

mod common;

use std::process::Command;

fn edgeos(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edgeos")).args(args).current_dir(dir).env("NO_COLOR", "1").output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const VALID: &str = r#"<system>
    <memory_region name="buf" size="0x1000" />
    <protection_domain name="a" priority="1">
        <program_image path="a.elf" />
        <map mr="buf" vaddr="0x1000000" perms="rw" />
    </protection_domain>
    <protection_domain name="b" priority="2">
        <program_image path="b.elf" />
        <map mr="buf" vaddr="0x1000000" perms="r" />
    </protection_domain>
    <channel>
        <end pd="a" id="0" pp="true" />
        <end pd="b" id="0" />
    </channel>
</system>
"#;

/// Two independent mistakes: both must be reported in one run.
const INVALID: &str = r#"<system>
    <protection_domain name="a" priority="300">
        <program_image path="a.elf" />
    </protection_domain>
    <protection_domain name="b">
        <program_image path="b.elf" />
    </protection_domain>
    <channel>
        <end pd="a" id="62" />
        <end pd="b" id="0" />
    </channel>
</system>
"#;

#[test]
fn check_accepts_a_valid_description() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), VALID).unwrap();
    let (code, stdout, stderr) = edgeos(&["check", "system.xml"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "system.xml: ok");
}

#[test]
fn check_reports_every_error_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), INVALID).unwrap();
    let (code, _, short) = edgeos(&["check", "--format", "short", "system.xml"], dir.path());
    assert_eq!(code, 1);
    let lines: Vec<&str> = short.lines().collect();
    assert!(lines.len() >= 3, "{short}");
    assert!(lines[0].starts_with("system.xml:2:33: error: "), "{short}");
    assert!(lines[1].starts_with("system.xml:9:21: error: "), "{short}");
    assert_eq!(*lines.last().unwrap(), "system.xml: 2 errors found");

    let (code, _, human) = edgeos(&["check", "system.xml"], dir.path());
    assert_eq!(code, 1);
    assert!(human.contains("--> system.xml:9:21"), "{human}");
    assert!(human.contains(r#"<end pd="a" id="62" />"#), "{human}");
    assert!(human.contains('^'), "{human}");
    assert!(human.contains("help:"), "{human}");
}

#[test]
fn unreadable_file_and_unknown_board_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = edgeos(&["check", "missing.xml"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: cannot read missing.xml"), "{stderr}");
    std::fs::write(dir.path().join("system.xml"), VALID).unwrap();
    let (code, _, stderr) = edgeos(&["check", "--board", "pdp11", "system.xml"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: unknown board 'pdp11'\n  help: known boards: tqma8xqp1gb, "), "{stderr}");
    assert!(stderr.contains("x86_64_generic"), "{stderr}");
}

#[test]
fn build_debug_exit_sets_the_blob_flag_and_is_documented() {
    let (code, help, _) = edgeos(&["build", "--help"], std::path::Path::new("."));
    assert_eq!(code, 0);
    assert!(help.contains("--debug-exit") && help.contains("exit status"), "{help}");

    let env = common::Env::new();
    env.program("a.elf", common::pd_program(&[]));
    env.program("b.elf", common::pd_program(&[]));
    std::fs::write(env.path().join("system.xml"), VALID).unwrap();
    // Microkit's spelling of the board works too.
    let args = ["build", "system.xml", "--board", "qemu_virt_aarch64", "--debug-exit", "-o", "t.img"];
    let (code, _, stderr) = edgeos(&args, env.path());
    assert_eq!(code, 0, "{stderr}");
    let image = std::fs::read(env.path().join("t.img")).unwrap();
    let (blob, _) = common::blob_of(&image);
    assert_eq!(bootinfo::BootInfo::parse(&blob).unwrap().flags(), bootinfo::FLAG_DEBUG_EXIT);
    let report = std::fs::read_to_string(env.path().join("t.img.report.txt")).unwrap();
    assert!(report.contains("debug exit:       on (test image)"), "{report}");
}

#[test]
fn build_refuses_boards_it_cannot_build_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), VALID).unwrap();
    let (code, _, stderr) = edgeos(&["build", "system.xml", "--board", "x86_64_generic", "-o", "x.img"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("error: cannot build images for board 'x86_64_generic' (images can be built for: qemu-virt-aarch64)"),
        "{stderr}"
    );
    let (code, _, stderr) = edgeos(&["build", "system.xml", "--board", "pdp11", "-o", "x.img"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: unknown board 'pdp11' (images can be built for: qemu-virt-aarch64)"), "{stderr}");
}

#[test]
fn build_without_kernel_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), VALID).unwrap();
    let (code, _, stderr) = edgeos(&["build", "system.xml", "-o", "x.img"], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("kernel image 'edgeos-kernel.elf' not found"), "{stderr}");
    assert!(!dir.path().join("x.img").exists());
}

#[test]
fn graph_draws_pds_regions_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), VALID).unwrap();
    let (code, dot, stderr) = edgeos(&["graph", "system.xml"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert!(dot.starts_with("digraph system {"));
    assert!(dot.contains(r#"pd0 [shape=box"#) && dot.contains(r#"label="a\nprio 1""#), "{dot}");
    assert!(dot.contains(r#"mr0 [shape=cylinder"#), "{dot}");
    assert!(dot.contains(r##"pd0 -> mr0 [arrowhead=none, color="#3c8c3c", label="rw"]"##), "{dot}");
    assert!(dot.contains(r#"pd0 -> pd1 [dir=forward"#), "{dot}");
    if Command::new("dot").arg("-V").output().is_ok() {
        let (code, _, stderr) = edgeos(&["graph", "system.xml", "-o", "s.dot", "--svg", "s.svg"], dir.path());
        assert_eq!(code, 0, "{stderr}");
        let svg = std::fs::read_to_string(dir.path().join("s.svg")).unwrap();
        assert!(svg.contains("<svg"));
    }
}

/// The example in the README must stay a valid description.
#[test]
fn readme_example_is_valid() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("```xml\n").expect("README has an xml example") + 7;
    let len = readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("system.xml"), &readme[start..start + len]).unwrap();
    let (code, stdout, stderr) = edgeos(&["check", "system.xml"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "system.xml: ok");
}

/// The default system must stay valid.
#[test]
fn default_system_is_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let (code, _, stderr) = edgeos(&["check", "system.xml"], std::path::Path::new(root));
    assert_eq!(code, 0, "{stderr}");
}

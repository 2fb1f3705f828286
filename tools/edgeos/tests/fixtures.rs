//! The `edgeos check` binary over every fixture of the description library
//! (libs/sysdesc/tests/fixtures): valid ones exit 0 with no diagnostics, invalid ones print
//! exactly their `.expected` lines (`--format short`) and a summary, and exit 1.
//!
//! The fixture's name picks the board and cores as the library's own fixture test does:
//! `x86_*` is checked for `x86_64_generic`, `smp_*` with `--cores 2`, anything else for
//! `qemu_virt_aarch64` (Microkit's spelling, on purpose) with one core.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../libs/sysdesc/tests/fixtures").join(kind)
}

/// The fixture names (`NAME.xml`) of a folder, sorted.
fn fixtures(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir(kind))
        .expect("fixture folder exists")
        .map(|e| e.expect("readable entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    names
}

/// `edgeos check --format short` on fixture `name` in folder `kind`: (exit code, stdout, stderr).
fn check(kind: &str, name: &str) -> (i32, String, String) {
    let board = if name.starts_with("x86_") { "x86_64_generic" } else { "qemu_virt_aarch64" };
    let mut args = vec!["check", "--format", "short", "--board", board];
    if name.starts_with("smp_") {
        args.extend(["--cores", "2"]);
    }
    args.push(name);
    let out = Command::new(env!("CARGO_BIN_EXE_edgeos"))
        .args(&args)
        .current_dir(fixture_dir(kind))
        .env("NO_COLOR", "1")
        .output()
        .expect("edgeos runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn check_accepts_every_valid_fixture() {
    let names = fixtures("valid");
    assert!(names.len() >= 5, "only {} valid fixtures", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let (code, stdout, stderr) = check("valid", name);
        if code != 0 || stdout.trim() != format!("{name}: ok") || !stderr.is_empty() {
            failures.push(format!("{name}: exit {code}\n{stdout}{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn check_rejects_every_invalid_fixture_with_its_expected_errors() {
    let names = fixtures("invalid");
    assert!(names.len() >= 45, "only {} invalid fixtures", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let expected_path = fixture_dir("invalid").join(name.replace(".xml", ".expected"));
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| panic!("{} exists", expected_path.display()));
        let mut expected: Vec<String> = expected.lines().map(str::to_string).collect();
        let errors = expected.iter().filter(|l| l.contains(": error: ")).count();
        expected.push(format!("{name}: {errors} error{} found", if errors == 1 { "" } else { "s" }));
        let (code, stdout, stderr) = check("invalid", name);
        let actual: Vec<String> = stderr.lines().map(str::to_string).collect();
        if code != 1 || !stdout.is_empty() || actual != expected {
            failures.push(format!(
                "{name}: exit {code}\n  expected:\n    {}\n  actual:\n    {}",
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn graph_takes_the_board_too() {
    let run = |board: &str| {
        Command::new(env!("CARGO_BIN_EXE_edgeos"))
            .args(["graph", "--board", board, "x86_full.xml"])
            .current_dir(fixture_dir("valid"))
            .output()
            .expect("edgeos runs")
    };
    let out = run("x86_64_generic");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("digraph system {"));
    // The same file is not a valid aarch64 description.
    assert!(!run("qemu_virt_aarch64").status.success());
}

//! Data-driven fixture tests, one invalid file per rule as the Microkit tool
//! keeps them.
//!
//! `tests/fixtures/invalid/NAME.xml` must fail to parse, and its diagnostics'
//! one-line forms must equal `NAME.expected` line for line. The file name
//! picks the options: `x86_*` is checked for x86-64, `smp_*` with two cores,
//! anything else for AArch64 with one core.
//!
//! After an intended message change, `SYSDESC_BLESS=1 cargo test -p
//! edgeos-sysdesc --test fixtures` rewrites the `.expected` files; review the
//! diff before committing it.

use std::fs;
use std::path::{Path, PathBuf};

use sysdesc::{parse_with, Arch, Options};

fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

/// The `.xml` files of a fixture directory, sorted.
fn xml_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(fixture_dir(kind))
        .expect("fixture directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "xml"))
        .collect();
    files.sort();
    files
}

/// Options a fixture is checked with, from its name.
fn options_for(name: &str) -> Options {
    let arch = if name.starts_with("x86_") {
        Arch::X86_64
    } else {
        Arch::Aarch64
    };
    let cores = if name.starts_with("smp_") { 2 } else { 1 };
    Options { arch, cores }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("fixture has a file name")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn invalid_fixtures_report_exactly_the_expected_errors() {
    let bless = std::env::var_os("SYSDESC_BLESS").is_some();
    let files = xml_files("invalid");
    assert!(files.len() >= 45, "only {} invalid fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = file_name(path);
        let stem = name.trim_end_matches(".xml");
        let text = fs::read_to_string(path).expect("fixture is readable UTF-8");
        let diags = match parse_with(&name, &text, &options_for(stem)) {
            Ok(_) => {
                failures.push(format!("{name}: parsed without errors"));
                continue;
            }
            Err(diags) => diags,
        };
        let actual: Vec<String> = diags.iter().map(|d| d.one_line()).collect();
        let expected_path = path.with_extension("expected");
        if bless {
            fs::write(&expected_path, actual.join("\n") + "\n").expect("write .expected");
            continue;
        }
        let Ok(expected) = fs::read_to_string(&expected_path) else {
            failures.push(format!("{name}: no {stem}.expected file"));
            continue;
        };
        let expected: Vec<&str> = expected.lines().collect();
        if actual != expected {
            failures.push(format!(
                "{name}:\n  expected:\n    {}\n  actual:\n    {}",
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
        if !actual.iter().any(|line| line.contains(": error: ")) {
            failures.push(format!("{name}: no error among the diagnostics"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every error says what to do about it (the rule: element, rule, position and a hint),
/// checked on the structured diagnostics so that a new error without a hint fails here.
#[test]
fn every_error_of_every_invalid_fixture_has_a_hint() {
    let mut missing = Vec::new();
    for path in xml_files("invalid") {
        let name = file_name(&path);
        let text = fs::read_to_string(&path).expect("fixture is readable UTF-8");
        let stem = name.trim_end_matches(".xml");
        let Err(diags) = parse_with(&name, &text, &options_for(stem)) else {
            continue;
        };
        for d in diags.iter().filter(|d| d.is_error()) {
            if d.hint.as_deref().is_none_or(|h| h.trim().is_empty()) {
                missing.push(d.one_line());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "errors without a hint:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_expected_file_has_its_fixture() {
    for entry in fs::read_dir(fixture_dir("invalid")).expect("fixture directory exists") {
        let path = entry.expect("readable directory entry").path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("xml") => assert!(
                path.with_extension("expected").exists(),
                "{} has no .expected file",
                path.display()
            ),
            Some("expected") => assert!(
                path.with_extension("xml").exists(),
                "{} has no .xml fixture",
                path.display()
            ),
            _ => panic!("unexpected file {}", path.display()),
        }
    }
}

#[test]
fn valid_fixtures_parse_without_errors() {
    let files = xml_files("valid");
    assert!(files.len() >= 5, "only {} valid fixtures", files.len());
    for path in &files {
        let name = file_name(path);
        let text = fs::read_to_string(path).expect("fixture is readable UTF-8");
        let result = parse_with(&name, &text, &options_for(&name));
        match result {
            Ok((_, warnings)) => assert!(
                warnings.is_empty(),
                "{name} has warnings:\n{}",
                sysdesc::render(&warnings, &text, false)
            ),
            Err(diags) => panic!("{name} failed:\n{}", sysdesc::render(&diags, &text, false)),
        }
    }
}

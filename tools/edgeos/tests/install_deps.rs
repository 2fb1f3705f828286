//! tools/install-deps.sh's helper modes on sample apt sources files (it installs nothing in
//! these modes): which Debian mirror it reuses for backports, whether backports is already
//! enabled, and which QEMU versions it accepts. The samples use `file:` URIs, so no mirror
//! host name is written anywhere.

use std::path::{Path, PathBuf};
use std::process::Command;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/install-deps.sh")
}

/// Runs the script with `args` (codename bookworm): (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .env("EDGEOS_DEBIAN_CODENAME", "bookworm")
        .output()
        .expect("bash runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Writes sample files into a fresh folder; returns it and the files' paths.
fn samples(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let paths = files
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        })
        .collect();
    (dir, paths)
}

fn mirror(files: &[(&str, &str)]) -> (i32, String) {
    let (_dir, paths) = samples(files);
    let mut args = vec!["--print-mirror"];
    args.extend(paths.iter().map(String::as_str));
    run(&args)
}

fn has_backports(files: &[(&str, &str)]) -> bool {
    let (_dir, paths) = samples(files);
    let mut args = vec!["--has-backports"];
    args.extend(paths.iter().map(String::as_str));
    run(&args).0 == 0
}

#[test]
fn one_line_entries_give_the_uri_not_the_option_block() {
    let list = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] file:///srv/mirror/debian bookworm main\n";
    assert_eq!(mirror(&[("sources.list", list)]), (0, "file:///srv/mirror/debian".into()));
    let list = "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] file:///srv/a/debian bookworm main contrib\n";
    assert_eq!(mirror(&[("sources.list", list)]), (0, "file:///srv/a/debian".into()));
    let list = "  deb\tfile:///srv/plain/debian  bookworm-updates main\n";
    assert_eq!(mirror(&[("sources.list", list)]), (0, "file:///srv/plain/debian".into()));
}

#[test]
fn security_third_party_and_commented_entries_are_skipped() {
    let list = "\
# deb file:///srv/old/debian bookworm main
deb-src file:///srv/src/debian bookworm main
deb file:///srv/mirror/debian-security bookworm-security main
deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] file:///srv/docker/linux/debian bookworm stable
deb [signed-by=/usr/share/keyrings/nodesource.gpg] file:///srv/nodesource/node_20.x nodistro main
deb file:///srv/main/debian bookworm main non-free-firmware
";
    assert_eq!(mirror(&[("sources.list", list)]), (0, "file:///srv/main/debian".into()));
    assert_eq!(mirror(&[("sources.list", "# nothing here\n")]).0, 1);
    assert_eq!(mirror(&[]).0, 1, "no files at all");
}

#[test]
fn deb822_sources_files_keep_working() {
    let sources = "\
Types: deb
URIs: file:///srv/mirror/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: file:///srv/disabled/debian
Suites: bookworm
Components: main

Types: deb deb-src
# a comment inside a stanza
URIs: file:///srv/mirror/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
    assert_eq!(mirror(&[("debian.sources", sources)]), (0, "file:///srv/mirror/debian".into()));
    // Mixed: a missing file, a one-line list without Debian, then deb822.
    let (_dir, paths) = samples(&[("other.list", "deb file:///srv/x/repo stable main\n"), ("debian.sources", sources)]);
    let (code, out) = run(&["--print-mirror", "/nonexistent/sources.list", &paths[0], &paths[1]]);
    assert_eq!((code, out.as_str()), (0, "file:///srv/mirror/debian"));
}

#[test]
fn only_an_enabled_backports_entry_counts() {
    let main = "deb file:///srv/mirror/debian bookworm main\n";
    assert!(!has_backports(&[("sources.list", main)]));
    let commented = "deb file:///srv/mirror/debian bookworm main\n# deb file:///srv/mirror/debian bookworm-backports main\n";
    assert!(!has_backports(&[("sources.list", commented)]), "a commented-out line is not a source");
    let enabled = "deb [signed-by=/k.gpg] file:///srv/mirror/debian bookworm-backports main\n";
    assert!(has_backports(&[("sources.list", main), ("backports.list", enabled)]));
    let deb822 = "Types: deb\nURIs: file:///srv/mirror/debian\nSuites: bookworm-backports\nComponents: main\n";
    assert!(has_backports(&[("edgeos-backports.sources", deb822)]));
    let disabled = "Types: deb\nURIs: file:///srv/mirror/debian\nSuites: bookworm-backports\nComponents: main\nEnabled: no\n";
    assert!(!has_backports(&[("edgeos-backports.sources", disabled)]));
}

#[test]
fn qemu_must_be_version_10_or_newer() {
    for (line, ok) in [
        ("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7+deb12u12)", false),
        ("QEMU emulator version 9.2.1 (Debian 1:9.2.1+ds-1~bpo12+1)", false),
        ("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)", true),
        ("QEMU emulator version 11.1.0", true),
        ("not qemu at all", false),
    ] {
        assert_eq!(run(&["--qemu-ok", line]).0 == 0, ok, "{line}");
    }
}

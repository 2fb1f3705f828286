//! Robustness without a fuzzer: every fixture, cut short and with characters
//! replaced, must give `Ok` or `Err` (never a panic), and its diagnostics
//! must render. The libFuzzer target in `fuzz/` goes further; this keeps a
//! cheap version of it in `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

use sysdesc::{parse, render, Arch};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    for kind in ["valid", "invalid"] {
        for entry in fs::read_dir(root.join(kind)).expect("fixture directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "xml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Parses for both architectures and renders whatever comes back.
fn check(text: &str) {
    for arch in [Arch::Aarch64, Arch::X86_64] {
        let diags = match parse("mutant.xml", text, arch) {
            Ok((_, warnings)) => warnings,
            Err(errors) => {
                assert!(!errors.is_empty(), "Err without diagnostics for:\n{text}");
                errors
            }
        };
        for d in &diags {
            assert!(d.span.start <= d.span.end && d.span.end <= text.len());
            assert!(d.line >= 1 && d.col >= 1);
        }
        let _ = render(&diags, text, false);
    }
}

/// Characters that change XML structure or meaning, plus multi-byte ones.
const REPLACEMENTS: &str = "<>\"/=& 0x\u{e9}\u{1f600}\t\0\u{3000}\u{2028}\r";

#[test]
fn truncated_fixtures_never_panic() {
    for path in fixtures() {
        let text = fs::read_to_string(&path).expect("readable");
        // Every 7th byte; large files more sparsely to keep the test quick.
        let step = (text.len() / 400).max(7);
        for cut in (0..text.len()).step_by(step) {
            if text.is_char_boundary(cut) {
                check(&text[..cut]);
            }
        }
    }
}

#[test]
fn fixtures_with_replaced_characters_never_panic() {
    for path in fixtures() {
        let text = fs::read_to_string(&path).expect("readable");
        let chars: Vec<char> = text.chars().collect();
        let replacements: Vec<char> = REPLACEMENTS.chars().collect();
        let step = (chars.len() / 60).max(5);
        for (n, at) in (0..chars.len()).step_by(step).enumerate() {
            let replacement = replacements[n % replacements.len()];
            let mut mutant: String = chars[..at].iter().collect();
            mutant.push(replacement);
            mutant.extend(&chars[at + 1..]);
            check(&mutant);
            // Also drop the character entirely.
            let mut shorter: String = chars[..at].iter().collect();
            shorter.extend(&chars[at + 1..]);
            check(&shorter);
        }
    }
}

#[test]
fn hostile_shapes_never_panic() {
    let deep_pds = format!(
        "<system>{}{}</system>",
        "<protection_domain name=\"p\" id=\"1\"><program_image path=\"p\"/>".repeat(3000),
        "</protection_domain>".repeat(3000)
    );
    check(&deep_pds);
    let deep_unknown = format!(
        "<system>{}{}</system>",
        "<a>".repeat(20000),
        "</a>".repeat(20000)
    );
    check(&deep_unknown);
    let many_maps = format!(
        "<system><memory_region name=\"m\" size=\"0x1000\"/><protection_domain name=\"p\"><program_image path=\"p\"/>{}</protection_domain></system>",
        "<map mr=\"m\" vaddr=\"0x1000\"/>\n".repeat(2000)
    );
    check(&many_maps);
    // Many errors on one long line (rendering is linear in the line per
    // diagnostic, so this stays small).
    let long_line = format!(
        "<system><protection_domain name=\"p\"><program_image path=\"p\"/>{}</protection_domain></system>",
        "<irq irq=\"1\" id=\"99\"/>".repeat(200)
    );
    check(&long_line);
    let huge_numbers = r#"<system>
        <memory_region name="m" size="0xffff_ffff_ffff_f000" phys_addr="0xffff_ffff_ffff_f000" page_size="0x200000"/>
        <protection_domain name="p" budget="18446744073709551615" period="18446744073709551615">
            <program_image path="p"/>
            <map mr="m" vaddr="0xffff_ffff_ffff_f000"/>
            <ioport id="0" addr="0xffffffffffffffff" size="0xffffffffffffffff"/>
        </protection_domain>
        <io_address_space name="n" peripheral_id="ff:1f.7" domain_id="18446744073709551615">
            <iomap mr="m" iovaddr="0xffff_ffff_ffff_f000"/>
        </io_address_space>
    </system>"#;
    check(huge_numbers);
    // Found by fuzzing: deep tab indentation on long lines.
    let tabs = format!(
        "<system>\n{}<protection_domain name=\"a\" priority=\"999\">{}</protection_domain>\n</system>",
        "\t".repeat(60),
        "\t".repeat(200)
    );
    check(&tabs);
    check("\u{feff}<system/>");
    check("<system>\r\n<protection_domain name=\"a\" priority=\"x\">\r\n</protection_domain>\r\n</system>");
    check("<system><protection_domain name=\"&#x0;\"/></system>");
    check("<system><protection_domain name=\"&amp;&lt;\" priority=\"&#51;\"><program_image path=\"a\"/></protection_domain></system>");
    check("<x:system xmlns:x=\"urn:x\"/>");
    check("<system xmlns=\"urn:x\" xmlns:y=\"urn:y\" y:name=\"a\"><y:protection_domain/></system>");
}

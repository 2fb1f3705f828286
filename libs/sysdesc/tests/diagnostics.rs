//! Reporting: every error of a file in one run, warnings next to a valid
//! model, the rustc-style rendering, and located errors made by the builder.

use sysdesc::*;

/// A description with several independent mistakes, one per line.
const MANY_ERRORS: &str = r#"<system>
    <memory_region name="buf" size="0x1800"/>
    <memory_region name="unused" size="0x1000"/>
    <protection_domain name="a" priority="300" colour="blue">
        <program_image path="a.elf"/>
        <map mr="buf" vaddr="0x1000" perms="wx"/>
        <map mr="missing" vaddr="0x10000"/>
    </protection_domain>
    <protection_domain name="a" stack_size="0x100">
        <program_image path="a2.elf"/>
    </protection_domain>
    <protection_domain name="b">
    </protection_domain>
    <channel>
        <end pd="b" id="70"/>
        <end pd="nobody" id="1"/>
    </channel>
    stray
</system>
"#;

#[test]
fn every_independent_error_is_reported_in_one_run() {
    let diags = parse("many.xml", MANY_ERRORS, Arch::Aarch64).expect_err("invalid");
    let lines: Vec<String> = diags.iter().map(Diagnostic::one_line).collect();
    let expected = [
        "many.xml:2:31: error: size 0x1800 is not a multiple of the page size 0x1000 on element 'memory_region'",
        "many.xml:3:5: warning: memory region 'unused' is never mapped",
        "many.xml:4:33: error: priority 300 is out of range (0..=254) on element 'protection_domain'",
        "many.xml:4:48: error: unknown attribute 'colour' on element 'protection_domain'",
        "many.xml:6:38: error: perms 'wx' on element 'map' are write-only (w without r)",
        "many.xml:7:14: error: map names unknown memory region 'missing'",
        "many.xml:9:24: error: duplicate protection domain name 'a' (first declared at line 4)",
        "many.xml:9:33: error: stack_size 0x100 is out of range (0x1000..=0x1000000) on element 'protection_domain'",
        "many.xml:12:5: error: protection domain 'b' has no program_image",
        "many.xml:15:21: error: channel id 70 is out of range (0..=61) on element 'end'",
        "many.xml:16:14: error: channel end names unknown protection domain 'nobody'",
        "many.xml:18:5: error: unexpected text 'stray' in element 'system'",
    ];
    assert_eq!(lines, expected);
    // Sorted by position, each with a hint.
    assert!(diags.windows(2).all(|w| w[0].span.start <= w[1].span.start));
    assert!(diags.iter().all(|d| d.hint.is_some()), "{diags:#?}");
}

#[test]
fn warnings_come_with_a_valid_model() {
    let text = r#"<system>
    <memory_region name="spare" size="0x1000"/>
    <protection_domain name="a"><program_image path="a.elf"/></protection_domain>
</system>"#;
    let (desc, warnings) = parse("w.xml", text, Arch::Aarch64).expect("valid");
    assert_eq!(desc.memory_regions.len(), 1);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert_eq!(
        warnings[0].one_line(),
        "w.xml:2:5: warning: memory region 'spare' is never mapped"
    );
}

#[test]
fn render_shows_source_line_caret_and_help() {
    let text = r#"<system>
    <protection_domain name="a" priority="255">
        <program_image path="a.elf"/>
    </protection_domain>
</system>
"#;
    let diags = parse("system.xml", text, Arch::Aarch64).expect_err("invalid");
    let out = render(&diags, text, false);
    assert!(
        out.contains(
            "error: priority 255 is out of range (0..=254) on element 'protection_domain'"
        ),
        "{out}"
    );
    assert!(out.contains("--> system.xml:2:33"), "{out}");
    assert!(
        out.contains(r#"    <protection_domain name="a" priority="255">"#),
        "{out}"
    );
    // The caret line underlines the attribute, starting under its column.
    let caret_line = out.lines().find(|l| l.contains('^')).expect("a caret line");
    let source_line = out
        .lines()
        .find(|l| l.contains("priority=\"255\""))
        .expect("the source line");
    assert_eq!(
        caret_line.find('^'),
        source_line.find("priority"),
        "\n{out}"
    );
    assert_eq!(caret_line.matches('^').count(), "priority=\"255\"".len());
    assert!(out.contains("help: PD priorities are 0..=254"), "{out}");
    // Color adds ANSI escapes but keeps the text.
    let colored = render(&diags, text, true);
    assert!(colored.contains('\u{1b}'));
    assert!(colored.contains("priority 255 is out of range"));
}

#[test]
fn render_of_a_warning_and_of_xml_errors() {
    let text = "<system>\n  <protection_domain name=\"a\">\n</system>\n";
    let diags = parse("bad.xml", text, Arch::Aarch64).expect_err("malformed");
    assert_eq!(diags.len(), 1);
    assert_eq!(
        diags[0].one_line(),
        "bad.xml:3:1: error: invalid XML: expected 'protection_domain' tag, not 'system'"
    );
    let out = render(&diags, text, false);
    assert!(out.contains("</system>"), "{out}");
    assert!(
        out.contains("help: the file must be well-formed XML"),
        "{out}"
    );

    let truncated = "<system>\n  <protection_domain name=\"a";
    let diags = parse("cut.xml", truncated, Arch::Aarch64).expect_err("truncated");
    assert_eq!(diags[0].line, 2, "{diags:?}");
    let _ = render(&diags, truncated, false);

    let empty = parse("empty.xml", "", Arch::Aarch64).expect_err("empty");
    assert_eq!(
        empty[0].one_line(),
        "empty.xml:1:1: error: invalid XML: the document does not have a root node"
    );
    assert!(render(&empty, "", false).contains("does not have a root node"));
}

#[test]
fn builder_errors_are_located_and_rendered_the_same_way() {
    let text = r#"<system>
    <protection_domain name="a">
        <program_image path="missing.elf"/>
    </protection_domain>
</system>
"#;
    let (desc, _) = parse("sys.xml", text, Arch::Aarch64).expect("valid");
    let image = &desc.protection_domains[0].program_image;
    let path = image.attrs.get("path").expect("path attribute");
    // The builder, which knows the search path, finds the file missing.
    let by_span = Diagnostic::error_at(
        "sys.xml",
        text,
        path.span(),
        format!("program image '{}' not found", image.path),
        Some("searched: build/".into()),
    );
    let by_pos = Diagnostic::at(
        Severity::Error,
        "sys.xml",
        path,
        format!("program image '{}' not found", image.path),
        Some("searched: build/".into()),
    );
    assert_eq!(by_span, by_pos);
    assert_eq!(
        by_span.one_line(),
        "sys.xml:3:24: error: program image 'missing.elf' not found"
    );
    let out = render(&[by_span], text, false);
    assert!(
        out.contains(r#"<program_image path="missing.elf"/>"#),
        "{out}"
    );
    assert!(out.contains("help: searched: build/"), "{out}");
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = "<system>\n<!-- \u{e9}t\u{e9} --><protection_domain name=\"\u{e9}\" budget=\"x\"><program_image path=\"a\"/></protection_domain>\n</system>";
    let diags = parse("u.xml", text, Arch::Aarch64).expect_err("bad budget");
    assert_eq!(diags.len(), 1);
    let d = &diags[0];
    assert_eq!(&text[d.span.clone()], "budget=\"x\"");
    let prefix = &text[text.find("<!--").unwrap_or(0)..d.span.start];
    assert_eq!(d.col as usize, prefix.chars().count() + 1);
    let _ = render(&diags, text, false);
}

/// Microkit strips only a lowercase `0x` before parsing hex (`sdf_parse_number`), so `0X1000`
/// is an error there and here; the hint says what to write.
#[test]
fn an_uppercase_hex_prefix_is_refused_with_a_hint() {
    let xml = "<system>\n    <memory_region name=\"m\" size=\"0X1000\" />\n</system>\n";
    let diags = parse("system.xml", xml, Arch::Aarch64).expect_err("0X is not a number");
    let d = diags
        .iter()
        .find(|d| d.message.starts_with("invalid number '0X1000'"))
        .expect("the number is reported");
    assert_eq!(
        d.one_line(),
        "system.xml:2:29: error: invalid number '0X1000' for attribute 'size' on element 'memory_region': invalid digit 'X'"
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("the hex prefix is a lowercase 0x (as in Microkit): write 0x1000")
    );
}

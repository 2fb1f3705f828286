//! Fuzz target: arbitrary bytes (as lossy UTF-8) into `parse` for both
//! architectures and a few core counts, and every result into `render`.
//! Nothing may panic, and every diagnostic must point inside the text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sysdesc::{parse_with, render, Arch, Diagnostic, Options};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let cores = 1 + u32::from(data.first().copied().unwrap_or(0) % 3);
    for arch in [Arch::Aarch64, Arch::X86_64] {
        for cores in [1, cores] {
            let diags = match parse_with("fuzz.xml", &text, &Options { arch, cores }) {
                Ok((_, warnings)) => warnings,
                Err(errors) => {
                    assert!(errors.iter().any(Diagnostic::is_error));
                    errors
                }
            };
            for d in &diags {
                assert!(d.span.start <= d.span.end && d.span.end <= text.len());
                assert!(d.line >= 1 && d.col >= 1);
            }
            let _ = render(&diags, &text, false);
            let _ = render(&diags, &text, true);
        }
    }
    // The builder's constructor with arbitrary spans, and rendering against
    // text the spans do not fit.
    let len = text.len();
    let start = usize::from(data.get(1).copied().unwrap_or(0)) * len / 256;
    let end = start.saturating_add(usize::from(data.get(2).copied().unwrap_or(0)));
    let diag = Diagnostic::error_at("fuzz.xml", &text, start..end, "m", Some("h".into()));
    let _ = render(std::slice::from_ref(&diag), &text, false);
    let _ = render(&[diag], "short", false);
});

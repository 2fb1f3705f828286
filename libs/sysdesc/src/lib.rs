//! The EdgeOS system description: parses a Microkit-dialect `system.xml`
//! into a typed [`SystemDescription`], checks it against every rule of the
//! Microkit 2.3.0 format, and reports every problem in one run as located
//! [`Diagnostic`]s (`file:line:col`, with a hint).
//!
//! ```
//! let xml = r#"<system>
//!     <memory_region name="buf" size="0x1000"/>
//!     <protection_domain name="hello" priority="10">
//!         <program_image path="hello.elf"/>
//!         <map mr="buf" vaddr="0x4000000" setvar_vaddr="buf"/>
//!     </protection_domain>
//! </system>"#;
//! let (desc, warnings) = sysdesc::parse("system.xml", xml, sysdesc::Arch::Aarch64).unwrap();
//! assert!(warnings.is_empty());
//! assert_eq!(desc.protection_domains[0].priority, 10);
//! assert_eq!(desc.protection_domains[0].budget, 1000);
//! ```
//!
//! What this crate does not check, because only the image builder knows:
//! whether program images and prefill files exist (it keeps their
//! positions; see [`MemoryRegion::size_for_prefill`]), and whether maps
//! overlap a PD's ELF segments or stack. The builder reports those with
//! [`Diagnostic::error_at`] / [`Diagnostic::at`] and [`render`]s them like
//! the rest.
//!
//! Modules: [`numbers`] (number and boolean syntax), [`model`] (the typed
//! model), `parse` (XML to model and per-element rules), `validate`
//! (cross-element rules), [`diagnostic`] (reports and rendering).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diagnostic;
pub mod model;
pub mod numbers;
mod parse;
mod validate;

pub use diagnostic::{render, Diagnostic, Severity};
pub use model::*;

use diagnostic::offset_of;
use parse::Ctx;

/// What a description is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Target architecture.
    pub arch: Arch,
    /// Number of cores of the configuration (at least 1): `cpu` attributes
    /// must be below it, and a domain schedule needs exactly 1.
    pub cores: u32,
}

impl Options {
    /// Options for `arch` with one core.
    #[must_use]
    pub fn new(arch: Arch) -> Options {
        Options { arch, cores: 1 }
    }
}

/// Parses and validates a description for `arch` on a single-core
/// configuration. See [`parse_with`].
///
/// # Errors
///
/// Every error found (and any warnings), sorted by position.
pub fn parse(
    file_name: &str,
    text: &str,
    arch: Arch,
) -> Result<(SystemDescription, Vec<Diagnostic>), Vec<Diagnostic>> {
    parse_with(file_name, text, &Options::new(arch))
}

/// Parses and validates a description.
///
/// `Ok` holds the model and any warnings (e.g. a memory region that is never
/// mapped). `Err` holds every error found, and the warnings, sorted by
/// position. `file_name` is used only in the diagnostics.
///
/// # Errors
///
/// Every error found (and any warnings), sorted by position: XML syntax,
/// unknown elements and attributes, invalid values, and broken rules.
pub fn parse_with(
    file_name: &str,
    text: &str,
    options: &Options,
) -> Result<(SystemDescription, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut ctx = Ctx::new(file_name, text, *options);
    let parsing = roxmltree::ParsingOptions {
        // A DTD could define entities; a description never needs one.
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = match roxmltree::Document::parse_with_options(text, parsing) {
        Ok(doc) => doc,
        Err(err) => {
            report_xml_error(&mut ctx, &err);
            return Err(ctx.diags);
        }
    };
    let desc =
        parse::parse_document(&mut ctx, &doc).map(|parsed| validate::validate(&mut ctx, parsed));
    let mut diags = std::mem::take(&mut ctx.diags);
    diags.sort_by_key(|d| d.span.start);
    match desc {
        Some(desc) if !diags.iter().any(Diagnostic::is_error) => Ok((desc, diags)),
        _ => Err(diags),
    }
}

/// Turns a syntax error from the XML parser into a located diagnostic.
fn report_xml_error(ctx: &mut Ctx, err: &roxmltree::Error) {
    let text = ctx.text;
    let offset = match err {
        roxmltree::Error::UnexpectedEndOfStream | roxmltree::Error::UnclosedRootNode => {
            text.trim_end().len()
        }
        roxmltree::Error::DtdDetected => text.find("<!DOCTYPE").unwrap_or(0),
        _ => {
            let at = err.pos();
            offset_of(text, at.row, at.col)
        }
    };
    let end = text[offset..]
        .chars()
        .next()
        .map_or(offset, |c| offset + c.len_utf8());
    // The parser's message says where, which the diagnostic already does.
    let message = err.to_string().replace(&format!(" at {}", err.pos()), "");
    let hint = match err {
        roxmltree::Error::DtdDetected => "a system description takes no DTD; remove <!DOCTYPE ...>",
        roxmltree::Error::NoRootNode => "a system description is one <system> element",
        _ => "the file must be well-formed XML",
    };
    let pos = ctx.pos_of(offset, end);
    ctx.error(pos, format!("invalid XML: {message}"), hint.into());
}

//! Located diagnostics: the one-line `file:line:col: error: ...` form for
//! scripts and editors, and a rustc-style rendering with the source line, a
//! caret under the column and a `help:` hint for people.

use std::ops::Range;

use annotate_snippets::{Level, Renderer, Snippet};

use crate::model::Pos;

/// How bad a diagnostic is. Any [`Severity::Error`] makes [`crate::parse()`]
/// fail; warnings ride along with a valid description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The description is invalid.
    Error,
    /// The description is valid but probably not what was meant.
    Warning,
}

impl Severity {
    /// The lowercase word used in printed diagnostics.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a description, located in its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, naming the element (e.g. `channel id 62 is out of range
    /// (0..=61) on element 'end'`).
    pub message: String,
    /// The file name as given to the parser (used only for printing).
    pub file: String,
    /// 1-based line of `span.start`.
    pub line: u32,
    /// 1-based column of `span.start`, counted in characters.
    pub col: u32,
    /// Byte range in the source text this diagnostic is about.
    pub span: Range<usize>,
    /// What to do about it, if there is advice to give.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at a model position (an element or attribute of a parsed
    /// description).
    pub fn at(
        severity: Severity,
        file: &str,
        pos: Pos,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            message: message.into(),
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            span: pos.span(),
            hint,
        }
    }

    /// An error at a byte range of `text`; line and column are computed from
    /// the text. This is what the image builder uses for problems only it can
    /// see (missing program images, maps over a PD's ELF segments or stack).
    pub fn error_at(
        file: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        Self::located(Severity::Error, file, text, span, message, hint)
    }

    /// A warning at a byte range of `text`, as [`Diagnostic::error_at`].
    pub fn warning_at(
        file: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        Self::located(Severity::Warning, file, text, span, message, hint)
    }

    fn located(
        severity: Severity,
        file: &str,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, col) = line_col(text, span.start);
        Diagnostic {
            severity,
            message: message.into(),
            file: file.to_string(),
            line,
            col,
            span,
            hint,
        }
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The plain form: `{file}:{line}:{col}: error: {message}` (or
    /// `warning`). The hint is not included.
    #[must_use]
    pub fn one_line(&self) -> String {
        format!(
            "{}:{}:{}: {}: {}",
            self.file,
            self.line,
            self.col,
            self.severity.as_str(),
            self.message
        )
    }
}

/// 1-based line and character column of byte `offset` in `text`. Offsets past
/// the end, or inside a multi-byte character, are moved back to the nearest
/// character start, so any offset is accepted.
pub fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before[line_start..].chars().count() + 1;
    (saturate(line), saturate(col))
}

/// Byte offset of 1-based `line` and character `col` in `text`, clamped to
/// the text (used to turn the XML parser's row/column into a span).
pub(crate) fn offset_of(text: &str, line: u32, col: u32) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_text = text[start..].split('\n').next().unwrap_or("");
    let skip = usize::try_from(col.saturating_sub(1)).unwrap_or(usize::MAX);
    match line_text.char_indices().nth(skip) {
        Some((i, _)) => start + i,
        None => start + line_text.len(),
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Renders diagnostics the way rustc does: a header, `--> file:line:col`, the
/// offending source line with a caret under the span, and `help: hint`.
/// `text` must be the source the diagnostics were made from; spans that do
/// not fit it are shown without a snippet rather than refused. With `color`,
/// ANSI colors are used.
#[must_use]
pub fn render(diags: &[Diagnostic], text: &str, color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let line_starts = LineStarts::new(text);
    let mut out = String::new();
    for (i, diag) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let level = match diag.severity {
            Severity::Error => Level::Error,
            Severity::Warning => Level::Warning,
        };
        let fallback_location;
        let snippet = snippet_line(text, &line_starts, &diag.span);
        let mut message = level.title(&diag.message);
        match &snippet {
            Some(line) => {
                message = message.snippet(
                    Snippet::source(&line.text)
                        .line_start(line.number)
                        .origin(&diag.file)
                        .annotation(level.span(line.range.clone())),
                );
            }
            None => {
                fallback_location = format!("at {}:{}:{}", diag.file, diag.line, diag.col);
                message = message.footer(Level::Note.title(&fallback_location));
            }
        }
        if let Some(hint) = &diag.hint {
            message = message.footer(Level::Help.title(hint));
        }
        out.push_str(&renderer.render(message).to_string());
        out.push('\n');
    }
    out
}

/// The single source line a span starts on, with the span made relative to
/// it and trimmed to it.
struct SnippetLine {
    text: String,
    number: usize,
    range: Range<usize>,
}

/// Byte offsets where the lines of a text start.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> LineStarts {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineStarts(starts)
    }

    /// 0-based line of `offset`, and the byte range of that line without
    /// its newline.
    fn line_of(&self, text: &str, offset: usize) -> (usize, Range<usize>) {
        let index = self.0.partition_point(|&s| s <= offset).saturating_sub(1);
        let begin = self.0[index];
        let end = self.0.get(index + 1).map_or(text.len(), |&next| next - 1);
        (index, begin..end)
    }
}

fn snippet_line(text: &str, lines: &LineStarts, span: &Range<usize>) -> Option<SnippetLine> {
    if span.start > text.len() || !text.is_char_boundary(span.start) {
        return None;
    }
    let start = span.start;
    let (index, line_range) = lines.line_of(text, start);
    let (line_begin, line_end) = (line_range.start, line_range.end);
    let mut line = &text[line_begin..line_end];
    if let Some(stripped) = line.strip_suffix('\r') {
        line = stripped;
    }
    // Characters the terminal would act on are not shown verbatim; such a
    // line is reported without a snippet.
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return None;
    }
    // The renderer measures indentation and annotation columns differently
    // for tabs and other whitespace, and its long-line trimming underflows
    // when they disagree (or when the annotation lies far inside the
    // indentation). So tabs are shown as single spaces (keeping every
    // offset and column), other indentation is not shown, and an annotation
    // inside the indentation is stretched to the first visible character.
    let indent = line.len() - line.trim_start().len();
    if !line[..indent].bytes().all(|b| b == b' ' || b == b'\t') {
        return None;
    }
    let rel_start = (start - line_begin).min(line.len());
    let mut rel_end = floor_char_boundary(line, span.end.saturating_sub(line_begin));
    if rel_end <= rel_start {
        // Point at one character, or just past the end of the line.
        rel_end = line[rel_start..]
            .chars()
            .next()
            .map_or(rel_start, |c| rel_start + c.len_utf8());
    }
    if rel_end <= indent && indent < line.len() {
        rel_end = floor_char_boundary(line, indent + 1);
        rel_end = line[indent..]
            .chars()
            .next()
            .map_or(rel_end, |c| indent + c.len_utf8());
    }
    Some(SnippetLine {
        text: line.replace('\t', " "),
        number: index + 1,
        range: rel_start..rel_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let text = "ab\nc\u{e9}d\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (1, 3));
        assert_eq!(line_col(text, 3), (2, 1));
        // 'd' comes after a two-byte character.
        assert_eq!(line_col(text, 6), (2, 3));
        // Inside the two-byte character: moved back to its start.
        assert_eq!(line_col(text, 5), (2, 2));
        assert_eq!(line_col(text, 1000), (3, 1));
    }

    #[test]
    fn offset_of_inverts_line_col() {
        let text = "ab\nc\u{e9}d\nlast";
        for offset in 0..=text.len() {
            if text.is_char_boundary(offset) {
                let (line, col) = line_col(text, offset);
                assert_eq!(offset_of(text, line, col), offset);
            }
        }
        assert_eq!(offset_of(text, 99, 1), text.len());
        assert_eq!(offset_of(text, 1, 99), 2);
    }

    #[test]
    fn one_line_form() {
        let d = Diagnostic::error_at("s.xml", "x\n  y", 4..5, "bad y", Some("fix".into()));
        assert_eq!(d.one_line(), "s.xml:2:3: error: bad y");
        let w = Diagnostic::warning_at("s.xml", "x", 0..1, "odd x", None);
        assert_eq!(w.one_line(), "s.xml:1:1: warning: odd x");
    }

    #[test]
    fn render_survives_deep_tab_indentation_and_spans_inside_it() {
        // Found by fuzzing: a long line indented with tabs made the
        // renderer's trimming underflow.
        let text = format!("{}<a>{}\n  \u{3000}x\n", "\t".repeat(40), "b".repeat(300));
        for start in [0, 5, 40, 41, 300, text.len() - 3] {
            let d = Diagnostic::error_at("t.xml", &text, start..start + 1, "m", None);
            let out = render(&[d], &text, false);
            assert!(out.contains("error: m"), "{out}");
        }
    }

    #[test]
    fn render_out_of_range_span_does_not_panic() {
        let d = Diagnostic {
            severity: Severity::Error,
            message: "m".into(),
            file: "f".into(),
            line: 9,
            col: 9,
            span: 100..200,
            hint: Some("h".into()),
        };
        let out = render(&[d], "short", false);
        assert!(out.contains("at f:9:9"), "{out}");
        assert!(out.contains("help: h"), "{out}");
    }
}

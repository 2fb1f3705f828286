//! The parsing context: source text and positions, the diagnostics found so
//! far, and typed accessors for attributes that report what is wrong with
//! them.

use std::collections::HashSet;

use roxmltree::{Attribute, Node};

use super::MAX_ID;
use crate::diagnostic::{floor_char_boundary, Diagnostic, Severity};
use crate::model::{AttrPositions, Pos};
use crate::numbers::{parse_bool, parse_number};
use crate::Options;

/// Marker for "this problem has already been reported".
pub(crate) struct Reported;

/// Parsing and validation state shared by [`mod@crate::parse`] and
/// [`crate::validate`]: the source, the options and what was found so far.
pub(crate) struct Ctx<'t> {
    pub file: &'t str,
    pub text: &'t str,
    pub opts: Options,
    pub diags: Vec<Diagnostic>,
    /// (element start, attribute) pairs whose value is missing or invalid.
    bad: HashSet<(usize, &'static str)>,
    /// Byte offset of the start of every line.
    line_starts: Vec<usize>,
    /// Number of characters before every multiple of [`CHAR_MARK_STRIDE`]
    /// bytes, so a column is found without scanning a whole (possibly very
    /// long) line.
    char_marks: Vec<usize>,
}

/// Spacing of [`Ctx::char_marks`], in bytes.
const CHAR_MARK_STRIDE: usize = 64;

/// Whether a byte starts a character (is not a UTF-8 continuation byte).
fn starts_char(byte: &u8) -> bool {
    byte & 0xc0 != 0x80
}

impl<'t> Ctx<'t> {
    pub fn new(file: &'t str, text: &'t str, opts: Options) -> Ctx<'t> {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut char_marks = vec![0];
        let mut chars = 0;
        for chunk in text.as_bytes().chunks(CHAR_MARK_STRIDE) {
            chars += chunk.iter().filter(|b| starts_char(b)).count();
            char_marks.push(chars);
        }
        Ctx {
            file,
            text,
            opts,
            diags: Vec::new(),
            bad: HashSet::new(),
            line_starts,
            char_marks,
        }
    }

    /// Number of characters in `text[..offset]` (`offset` on a character
    /// boundary).
    pub(crate) fn chars_before(&self, offset: usize) -> usize {
        let mark = offset / CHAR_MARK_STRIDE;
        let from = mark * CHAR_MARK_STRIDE;
        self.char_marks[mark]
            + self.text.as_bytes()[from..offset]
                .iter()
                .filter(|b| starts_char(b))
                .count()
    }

    // ----- positions -------------------------------------------------------

    /// Position of a byte range of the text (clamped to character starts).
    pub fn pos_of(&self, start: usize, end: usize) -> Pos {
        let start = floor_char_boundary(self.text, start);
        let end = floor_char_boundary(self.text, end.max(start));
        let line_index = self.line_starts.partition_point(|&s| s <= start) - 1;
        let line_start = self.line_starts[line_index];
        let col = self.chars_before(start) - self.chars_before(line_start) + 1;
        Pos {
            line: u32::try_from(line_index + 1).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            start,
            end,
        }
    }

    /// The tag name of an element exactly as written (with any prefix), and
    /// the byte offset where it ends.
    pub(crate) fn raw_tag(&self, node: Node) -> (&'t str, usize) {
        let start = node.range().start;
        let bytes = self.text.as_bytes();
        if bytes.get(start) != Some(&b'<') {
            return ("", start);
        }
        let name_start = start + 1;
        let len = bytes[name_start..]
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))
            .unwrap_or(bytes.len() - name_start);
        (&self.text[name_start..name_start + len], name_start + len)
    }

    /// The element's name as written.
    pub fn tag(&self, node: Node) -> &'t str {
        self.raw_tag(node).0
    }

    /// Position of an element: `<` and its tag name.
    pub fn pos_elem(&self, node: Node) -> Pos {
        let (_, end) = self.raw_tag(node);
        self.pos_of(node.range().start, end)
    }

    /// Position of an attribute: `name="value"`.
    pub(crate) fn pos_attr(&self, attr: &Attribute) -> Pos {
        let range = attr.range();
        self.pos_of(range.start, range.end)
    }

    /// An attribute's name exactly as written (with any prefix).
    pub(crate) fn attr_name<'a>(&self, attr: &Attribute<'a, 't>) -> &'a str
    where
        't: 'a,
    {
        if attr.namespace().is_none() {
            return attr.name();
        }
        self.text.get(attr.range_qname()).unwrap_or(attr.name())
    }

    pub(crate) fn attr_positions(&self, node: Node) -> AttrPositions {
        AttrPositions(
            node.attributes()
                .map(|a| (self.attr_name(&a).to_string(), self.pos_attr(&a)))
                .collect(),
        )
    }

    // ----- reporting -------------------------------------------------------

    /// Reports an error. The hint is required: every error says what to do about it.
    pub fn error(&mut self, pos: Pos, message: String, hint: String) {
        self.diags.push(Diagnostic::at(
            Severity::Error,
            self.file,
            pos,
            message,
            Some(hint),
        ));
    }

    /// Keeps `value` in `slot` for an element `tag` that may appear once in `owner` (as
    /// "protection domain 'x'"); a second one, at `pos`, is an error that points at the first
    /// (`first_pos`) and gives `hint`.
    #[allow(clippy::too_many_arguments)]
    pub fn set_once<T>(
        &mut self,
        slot: &mut Option<T>,
        value: T,
        first_pos: impl Fn(&T) -> Pos,
        pos: Pos,
        owner: &str,
        tag: &str,
        hint: &str,
    ) {
        match slot {
            Some(first) => {
                let line = first_pos(first).line;
                self.error(
                    pos,
                    format!("{owner} has more than one {tag} (the first is at line {line})"),
                    hint.into(),
                );
            }
            None => *slot = Some(value),
        }
    }

    pub fn warning(&mut self, pos: Pos, message: String, hint: Option<String>) {
        self.diags.push(Diagnostic::at(
            Severity::Warning,
            self.file,
            pos,
            message,
            hint,
        ));
    }

    /// Remembers that attribute `attr` of the element at `element` has no
    /// usable value.
    pub fn mark_bad(&mut self, element: Pos, attr: &'static str) {
        self.bad.insert((element.start, attr));
    }

    /// Whether attribute `attr` of the element at `element` had no usable
    /// value (already reported).
    pub fn is_bad(&self, element: Pos, attr: &'static str) -> bool {
        self.bad.contains(&(element.start, attr))
    }

    // ----- attributes ------------------------------------------------------

    /// Reports every attribute not in `allowed`.
    pub(crate) fn check_attrs(&mut self, node: Node, allowed: &[&str]) {
        self.check_attrs_except(node, allowed, &[]);
    }

    /// Reports every attribute not in `allowed`, leaving out those in
    /// `reported_elsewhere` (which get a more specific message).
    pub(crate) fn check_attrs_except(
        &mut self,
        node: Node,
        allowed: &[&str],
        reported_elsewhere: &[&str],
    ) {
        let tag = self.tag(node);
        for attr in node.attributes() {
            let name = self.attr_name(&attr);
            let plain = attr.namespace().is_none();
            if plain && (allowed.contains(&name) || reported_elsewhere.contains(&name)) {
                continue;
            }
            let hint = if allowed.is_empty() {
                format!("'{tag}' takes no attributes")
            } else {
                format!("allowed attributes on '{tag}': {}", allowed.join(", "))
            };
            let pos = self.pos_attr(&attr);
            self.error(
                pos,
                format!("unknown attribute '{name}' on element '{tag}'"),
                hint,
            );
        }
    }

    /// An attribute's value (entity references expanded) and position.
    pub(crate) fn get<'a>(&self, node: Node<'a, '_>, name: &str) -> Option<(&'a str, Pos)> {
        let attr = node.attribute_node(name)?;
        Some((attr.value(), self.pos_attr(&attr)))
    }

    /// An optional string attribute.
    pub(crate) fn string(&self, node: Node, name: &str) -> Option<String> {
        self.get(node, name).map(|(v, _)| v.to_string())
    }

    /// A required string attribute; reported (and marked bad) when missing.
    pub(crate) fn required_string(&mut self, node: Node, name: &'static str) -> Option<String> {
        match self.get(node, name) {
            Some((value, _)) => Some(value.to_string()),
            None => {
                self.missing(node, name);
                None
            }
        }
    }

    /// A required name: present and not empty.
    pub(crate) fn required_name(&mut self, node: Node, name: &'static str) -> String {
        match self.get(node, name) {
            Some(("", pos)) => {
                let tag = self.tag(node);
                self.error(
                    pos,
                    format!("attribute '{name}' on element '{tag}' must not be empty"),
                    format!("give '{tag}' a non-empty {name}, e.g. {name}=\"example\""),
                );
                self.mark_bad(self.pos_elem(node), name);
                String::new()
            }
            Some((value, _)) => value.to_string(),
            None => {
                self.missing(node, name);
                String::new()
            }
        }
    }

    pub(crate) fn missing(&mut self, node: Node, name: &'static str) {
        let tag = self.tag(node);
        let pos = self.pos_elem(node);
        self.error(
            pos,
            format!("missing required attribute '{name}' on element '{tag}'"),
            format!("add {name}=\"...\" to this '{tag}'"),
        );
        self.mark_bad(pos, name);
    }

    /// An optional number attribute: `Ok(None)` when absent, `Err` when
    /// invalid (reported and marked bad).
    pub(crate) fn number(
        &mut self,
        node: Node,
        name: &'static str,
    ) -> Result<Option<u64>, Reported> {
        let Some((raw, pos)) = self.get(node, name) else {
            return Ok(None);
        };
        match parse_number(raw) {
            Ok(value) => Ok(Some(value)),
            Err(err) => {
                let tag = self.tag(node);
                // Microkit strips only a lowercase "0x" before parsing hex, so `0X` is refused
                // there too; say so rather than leave a puzzle.
                let hint = match raw.trim_start_matches('-').strip_prefix("0X") {
                    Some(digits) => format!(
                        "the hex prefix is a lowercase 0x (as in Microkit): write 0x{digits}"
                    ),
                    None => {
                        "write a decimal number or 0x-prefixed hex, optionally with '_' separators"
                            .into()
                    }
                };
                self.error(
                    pos,
                    format!(
                        "invalid number '{raw}' for attribute '{name}' on element '{tag}': {err}"
                    ),
                    hint,
                );
                self.mark_bad(self.pos_elem(node), name);
                Err(Reported)
            }
        }
    }

    /// An optional number with a default; invalid values give the default.
    pub(crate) fn number_or(&mut self, node: Node, name: &'static str, default: u64) -> u64 {
        self.number(node, name).ok().flatten().unwrap_or(default)
    }

    /// A required number; `None` when missing or invalid (reported).
    pub(crate) fn required_number(&mut self, node: Node, name: &'static str) -> Option<u64> {
        match self.number(node, name) {
            Ok(Some(value)) => Some(value),
            Ok(None) => {
                self.missing(node, name);
                None
            }
            Err(Reported) => None,
        }
    }

    /// Reports (and marks bad) a number attribute outside `0..=max`.
    pub(crate) fn check_max(
        &mut self,
        node: Node,
        name: &'static str,
        what: &str,
        value: u64,
        max: u64,
        hint: &str,
    ) -> bool {
        if value <= max {
            return true;
        }
        let tag = self.tag(node);
        let element = self.pos_elem(node);
        let pos = self.attr_pos(node, name);
        self.error(
            pos,
            format!("{what} {value} is out of range (0..={max}) on element '{tag}'"),
            hint.to_string(),
        );
        self.mark_bad(element, name);
        false
    }

    /// Position of a written attribute, or of the element.
    pub(crate) fn attr_pos(&self, node: Node, name: &str) -> Pos {
        node.attribute_node(name)
            .map(|a| self.pos_attr(&a))
            .unwrap_or_else(|| self.pos_elem(node))
    }

    /// A channel-namespace id (0..=61): required.
    pub(crate) fn channel_id(&mut self, node: Node, what: &str) -> Option<u64> {
        let id = self.required_number(node, "id")?;
        let hint = match what {
            "channel id" => "channel ids are 0..=61 per PD (shared by channel ends, irqs and ioports); pick a free id",
            "child id" => "child ids are 0..=61 per parent PD (shared with vcpu ids); pick a free id",
            _ => "vcpu ids are 0..=61 per PD (shared with child PD ids); pick a free id",
        };
        self.check_max(node, "id", what, id, MAX_ID, hint)
            .then_some(id)
    }

    /// An optional boolean with a default.
    pub(crate) fn boolean(&mut self, node: Node, name: &'static str, default: bool) -> bool {
        self.optional_boolean(node, name).unwrap_or(default)
    }

    pub(crate) fn optional_boolean(&mut self, node: Node, name: &'static str) -> Option<bool> {
        let (raw, pos) = self.get(node, name)?;
        match parse_bool(raw) {
            Some(value) => Some(value),
            None => {
                let tag = self.tag(node);
                self.error(
                    pos,
                    format!("invalid boolean '{raw}' for attribute '{name}' on element '{tag}'"),
                    "booleans are exactly 'true' or 'false'".into(),
                );
                self.mark_bad(self.pos_elem(node), name);
                None
            }
        }
    }

    /// One of a fixed set of words.
    pub(crate) fn choice<T: Copy>(
        &mut self,
        node: Node,
        name: &'static str,
        choices: &[(&str, T)],
        default: T,
    ) -> T {
        let Some((raw, pos)) = self.get(node, name) else {
            return default;
        };
        if let Some(&(_, value)) = choices.iter().find(|(word, _)| *word == raw) {
            return value;
        }
        let tag = self.tag(node);
        let words: Vec<String> = choices.iter().map(|(w, _)| format!("'{w}'")).collect();
        self.error(
            pos,
            format!("invalid value '{raw}' for attribute '{name}' on element '{tag}'"),
            format!("'{name}' is one of {}", words.join(", ")),
        );
        self.mark_bad(self.pos_elem(node), name);
        default
    }

    // ----- content ---------------------------------------------------------

    /// Reports text and processing instructions among the children of
    /// `node`; comments and whitespace are fine.
    pub(crate) fn check_content(&mut self, node: Node) {
        let tag = self.tag(node);
        for child in node.children() {
            if child.is_text() {
                let Some(text) = child.text() else { continue };
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    continue;
                }
                let range = child.range();
                let raw = self.text.get(range.clone()).unwrap_or("");
                let lead = raw.len() - raw.trim_start().len();
                let start = range.start + lead;
                let shown: String = trimmed.chars().take(24).collect();
                let more = if trimmed.chars().count() > 24 {
                    "..."
                } else {
                    ""
                };
                let pos = self.pos_of(start, start + raw.trim().len());
                self.error(
                    pos,
                    format!("unexpected text '{shown}{more}' in element '{tag}'"),
                    "only elements and comments may appear here".into(),
                );
            } else if child.is_pi() {
                let range = child.range();
                let pos = self.pos_of(range.start, range.end);
                self.error(
                    pos,
                    format!("unexpected processing instruction in element '{tag}'"),
                    "only elements and comments may appear here".into(),
                );
            }
        }
    }

    pub(crate) fn unknown_element(&mut self, child: Node, parent: Node, allowed: &[&str]) {
        let name = self.tag(child);
        let parent_tag = self.tag(parent);
        let pos = self.pos_elem(child);
        let hint = if allowed.is_empty() {
            format!("'{parent_tag}' has no child elements")
        } else {
            format!("allowed in '{parent_tag}': {}", allowed.join(", "))
        };
        self.error(
            pos,
            format!("unknown element '{name}' in '{parent_tag}'"),
            hint,
        );
    }

    /// Child elements, after reporting stray text.
    pub(crate) fn elements<'a, 'i>(&mut self, node: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
        self.check_content(node);
        node.children().filter(Node::is_element).collect()
    }

    /// Reports any child element of an element that takes none.
    pub(crate) fn no_children(&mut self, node: Node) {
        for child in self.elements(node) {
            self.unknown_element(child, node, &[]);
        }
    }
}

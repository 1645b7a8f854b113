//! The bytes go-yaml v4 (`go.yaml.in/yaml/v4`) writes for a value, which are what a schematic ID hashes.
//!
//! The factory marshals with `yaml.Marshal`: block style, 4-space indentation, no line width,
//! sequences indented under their key, empty collections as `{}`/`[]`. A string is written
//! plain unless it would read back as something else (`"true"`, `"10"`, `"yes"`, `"1:20"`),
//! as a literal block when it holds a newline, else quoted the way libyaml's emitter chooses:
//! single quotes where they suffice, double quotes (with go-yaml v4's escapes) otherwise.
//! This module follows go-yaml v4's encoder and emitter rule for rule; the harness checks it
//! against the Go library itself on generated schematics.

use super::resolve::{resolve, Resolved};

/// A marshalled value: what the encoder turns Go values into.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Map(Vec<(Out, Out)>),
    Seq(Vec<Out>),
    Str(String),
    /// Text the encoder writes plain: integers (`strconv.FormatInt`), times (RFC 3339).
    Plain(String),
    Float(f64),
    Bool(bool),
    Null,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

const BEST_INDENT: i64 = 4;

/// Marshals `root` as `yaml.Marshal` does.
pub fn marshal(root: &Out) -> String {
    let mut e = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: -1,
        indents: Vec::new(),
    };
    e.node(root, Ctx::Root);
    // Document end: go-yaml v4 forces a line break unless the last scalar ended with one.
    e.indent = -1;
    e.write_indent();
    e.out
}

/// Where a node is emitted: it decides indentation and key/value quoting.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    SeqItem,
    SimpleKey,
    ComplexKey,
    Value,
}

struct Emitter {
    out: String,
    column: i64,
    whitespace: bool,
    indention: bool,
    indent: i64,
    indents: Vec<i64>,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    /// A source line break: `\n` is written as the emitter's break, others verbatim.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(&mut self, s: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in s.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn increase_indent(&mut self, flow: bool, in_seq_item: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if in_seq_item {
            // The first indent inside a sequence only skips the "- " indicator.
            self.indent += 2;
        } else {
            self.indent = BEST_INDENT * ((self.indent + BEST_INDENT) / BEST_INDENT);
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn node(&mut self, n: &Out, ctx: Ctx) {
        match n {
            Out::Map(entries) if entries.is_empty() => self.flow_empty("{", "}"),
            Out::Seq(items) if items.is_empty() => self.flow_empty("[", "]"),
            Out::Map(entries) => self.block_map(entries, ctx),
            Out::Seq(items) => self.block_seq(items, ctx),
            scalar => {
                let (text, style) = scalar_text(scalar);
                self.scalar(&text, style, ctx);
            }
        }
    }

    fn flow_empty(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn block_seq(&mut self, items: &[Out], ctx: Ctx) {
        self.increase_indent(false, ctx == Ctx::SeqItem);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Ctx::SeqItem);
        }
        self.pop_indent();
    }

    fn block_map(&mut self, entries: &[(Out, Out)], ctx: Ctx) {
        self.increase_indent(false, ctx == Ctx::SeqItem);
        for (k, v) in entries {
            self.write_indent();
            if simple_key(k) {
                self.node(k, Ctx::SimpleKey);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(k, Ctx::ComplexKey);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(v, Ctx::Value);
        }
        self.pop_indent();
    }

    fn scalar(&mut self, value: &str, requested: Style, ctx: Ctx) {
        let a = analyze(value);
        let simple_key = ctx == Ctx::SimpleKey;
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain_allowed || (value.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, ctx == Ctx::SeqItem);
        match style {
            Style::Plain => self.write_plain(value),
            Style::Single => self.write_single(value),
            Style::Double => self.write_double(value),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, value: &str) {
        if !value.is_empty() && !self.whitespace {
            self.put(' ');
        }
        self.write_text(value, false);
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single(&mut self, value: &str) {
        self.write_indicator("'", true, false, false);
        self.write_text(value, true);
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// The body of a plain or single-quoted scalar: a `\n` is written twice (a folded line
    /// break reads back as one), and in single quotes `'` is doubled.
    fn write_text(&mut self, value: &str, single_quoted: bool) {
        let mut breaks = false;
        for c in value.chars() {
            if c == ' ' {
                self.put(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if single_quoted && c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }

    fn write_double(&mut self, value: &str) {
        self.write_indicator("\"", true, false, false);
        // go-yaml v4 tests for a byte order mark at the start of the value, not of the character,
        // so a value that starts with one has every character escaped.
        let bom = value.starts_with('\u{feff}');
        for c in value.chars() {
            if !is_printable(c) || bom || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let short = match c {
                    '\0' => Some('0'),
                    '\u{7}' => Some('a'),
                    '\u{8}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{b}' => Some('v'),
                    '\u{c}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1b}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{a0}' => Some('_'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                match short {
                    Some(s) => self.put(s),
                    None => {
                        let v = c as u32;
                        let (mark, width) = if v <= 0xff {
                            ('x', 2)
                        } else if v <= 0xffff {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(mark);
                        for ch in format!("{v:0width$X}").chars() {
                            self.put(ch);
                        }
                    }
                }
            } else {
                self.put(c);
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        // v4's `writeBlockScalarHints` gives the indentation only for a leading space: a
        // leading line break is written as the empty first line it is (go-yaml issue 65).
        if value.starts_with(' ') {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        if let Some(chomp) = chomp_hint(value) {
            self.write_indicator(chomp, false, false, false);
        }
        // `processLineCommentLinebreak(true)`: the header's own line break (go-yaml issue 755),
        // so a leading break in the value is an empty first line.
        self.put_break();
        self.whitespace = true;
        let mut breaks = true;
        for c in value.chars() {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// `-` strips a value without a final line break, `+` keeps more than one, none clips one.
fn chomp_hint(value: &str) -> Option<&'static str> {
    let mut rev = value.chars().rev();
    match (rev.next(), rev.next()) {
        (None, _) => Some("-"),
        (Some(last), _) if !is_break(last) => Some("-"),
        (Some(_), None) => Some("+"),
        (Some(_), Some(prev)) if is_break(prev) => Some("+"),
        _ => None,
    }
}

/// A key is written `key: value` unless it spans lines or runs over 128 bytes.
fn simple_key(k: &Out) -> bool {
    match k {
        Out::Map(m) => m.is_empty(),
        Out::Seq(s) => s.is_empty(),
        scalar => {
            let (text, _) = scalar_text(scalar);
            !analyze(&text).multiline && text.len() <= 128
        }
    }
}

/// The text and the style the encoder asks for (the emitter may still quote it).
fn scalar_text(n: &Out) -> (String, Style) {
    match n {
        Out::Str(s) => (s.clone(), string_style(s)),
        Out::Plain(i) => (i.clone(), Style::Plain),
        Out::Float(f) => (go_float(*f), Style::Plain),
        Out::Bool(b) => (b.to_string(), Style::Plain),
        Out::Null => ("null".into(), Style::Plain),
        Out::Map(_) | Out::Seq(_) => unreachable!("collections are not scalars"),
    }
}

/// v4's `stringv` (`internal/libyaml/representer.go`) and its `Desolver`: text with a newline
/// is a literal block unless it is all white space (`shouldUseLiteralStyle`), then double
/// quoted; an old (YAML 1.1) boolean, a base-60 float and `<<` are single quoted; text that
/// would read back as another type is double quoted (`QuoteLegacy`); the rest is plain.
fn string_style(s: &str) -> Style {
    if s.contains('\n') {
        let literal = s.chars().count() >= 2 && s.chars().any(|c| !c.is_whitespace());
        return if literal {
            Style::Literal
        } else {
            Style::Double
        };
    }
    if is_base60_float(s) || is_old_bool(s) || s == "<<" {
        return Style::Single;
    }
    if matches!(resolve(None, s), Ok(Resolved::Str)) {
        Style::Plain
    } else {
        Style::Double
    }
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && j - start < 2 && b[j].is_ascii_digit() {
            j += 1;
        }
        let ok = match j - start {
            1 => true,
            2 => b[start] <= b'5',
            _ => false,
        };
        if !ok {
            // `[0-5]?[0-9]` may also take one digit of two ("7" of "78"), leaving the other
            // to fail below, which it does either way.
            return false;
        }
        i = j;
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// `strconv.FormatFloat(f, 'g', -1, 64)` with go-yaml v4's names for the infinities and NaN:
/// the shortest digits that read back, as `%e` when the exponent is below -4 or 6 and over.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Go's -1 precision does.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (head, tail) = digits.split_at(1);
        let frac = if tail.is_empty() {
            String::new()
        } else {
            format!(".{tail}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{head}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// libyaml's scalar analysis, as go-yaml v4 has it (block context only: tdg never emits a
/// scalar inside a flow collection).
fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let followed_by_ws = next.is_none_or(|n| n == ' ' || n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_ws => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_indicators = true,
                '#' if preceded_by_ws => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blank_or_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_break(c: char) -> bool {
    c == ' ' || c == '\t' || is_break(c) || c == '\0'
}

/// libyaml's printable set, as go-yaml v4 tests it on UTF-8 bytes: it leaves out every
/// character beyond the Basic Multilingual Plane, so those are escaped.
fn is_printable(c: char) -> bool {
    matches!(c as u32,
        0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD)
}

#[cfg(test)]
mod tests {
    use super::go_float;

    /// Each as go-yaml v4 writes it (`strconv.FormatFloat(f, 'g', -1, 64)`).
    #[test]
    fn floats_are_written_as_go_writes_them() {
        let cases = [
            (1e21, "1e+21"),
            (0.000001, "1e-06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0"),
            (100.0, "100"),
            (2.5e-10, "2.5e-10"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1, "0.1"),
            (33.333333333333336, "33.333333333333336"),
            (f64::INFINITY, ".inf"),
            (f64::NEG_INFINITY, "-.inf"),
            (f64::NAN, ".nan"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f:e}");
        }
    }
}

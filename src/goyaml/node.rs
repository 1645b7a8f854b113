//! A schematic's YAML (or JSON) as a node tree with source positions, the way go-yaml v4
//! (`go.yaml.in/yaml/v4`, which the Image Factory pins) sees it before decoding: scalars keep
//! their text, their quoting and their tag; aliases are expanded. The first document only, as
//! `Decoder.Decode` reads one; `%YAML 1.1` is the only version directive it takes.

use granit_parser::{Event, Parser, ScalarStyle, Tag};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pos {
    pub line: u64,
    pub col: u64,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub at: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Scalar {
        text: String,
        /// Quoted or block (`|`, `>`): go-yaml v4 reads such a scalar as a string, whatever it says.
        quoted: bool,
        /// A core-schema tag, short form (`!!int`).
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } => "!!str",
            Kind::Seq(_) => "!!seq",
            Kind::Map(_) => "!!map",
        }
    }
}

/// A YAML syntax error, or input this reader refuses.
#[derive(Debug)]
pub struct ReadError {
    pub at: Pos,
    pub message: String,
}

/// Expanding aliases can blow a small file up exponentially ("billion laughs").
const MAX_NODES: usize = 100_000;

/// Reads the first document of `text`; `None` for a stream with no document (the factory's
/// decoder answers such a body with EOF). What follows the first document is not read.
pub fn read(text: &str) -> Result<Option<Node>, ReadError> {
    yaml11_breaks(text)?;
    // go-yaml's `readLine` turns NEL into `\n` wherever it reads a line break, and its scanner
    // breaks lines at NEL everywhere: the same text with `\n` is what it reads.
    let nel = text
        .contains('\u{85}')
        .then(|| text.replace('\u{85}', "\n"));
    let text = nel.as_deref().unwrap_or(text);
    let mapped = controls::hide(text)?;
    let text = mapped.as_deref().unwrap_or(text);
    let mut r = Reader {
        text,
        events: Parser::new_from_str(text),
        anchors: Vec::new(),
        nodes: 0,
    };
    loop {
        let (event, at) = r.next()?;
        match event {
            Event::StreamStart => {}
            Event::StreamEnd => return Ok(None),
            Event::DocumentStart(_, Some(v)) if (v.major, v.minor) != (1, 1) => {
                // go-yaml's parser (`internal/libyaml/parser.go`) takes `%YAML 1.1` only.
                return Err(ReadError {
                    at,
                    message: format!(
                        "found incompatible YAML document (%YAML {}.{}; the factory's YAML reads 1.1 only)",
                        v.major, v.minor
                    ),
                });
            }
            Event::DocumentStart(..) => {
                let (first, first_at) = r.next()?;
                let mut root = r.node(first, first_at)?;
                if mapped.is_some() {
                    controls::show(&mut root);
                }
                return Ok(Some(root));
            }
            Event::DocumentEnd => {}
            other => {
                return Err(ReadError {
                    at,
                    message: format!("unexpected YAML event {other:?}"),
                })
            }
        }
    }
}

/// go-yaml reads U+2028 and U+2029 as line breaks where YAML 1.2 reads them as text, and
/// keeps them in a scalar where it folds other breaks (`readLine`): tdg does not model that
/// and refuses them rather than compute another ID.
fn yaml11_breaks(text: &str) -> Result<(), ReadError> {
    for (n, line) in text.split('\n').enumerate() {
        if let Some((i, c)) = line
            .char_indices()
            .find(|(_, c)| matches!(c, '\u{2028}' | '\u{2029}'))
        {
            return Err(ReadError {
                at: Pos {
                    line: n as u64 + 1,
                    col: line[..i].chars().count() as u64 + 1,
                },
                message: format!(
                    "U+{:04X} is a line break to the factory's YAML parser; write it as an escape in double quotes",
                    c as u32
                ),
            });
        }
    }
    Ok(())
}

/// What go-yaml v4 refuses in a double-quoted scalar that a YAML 1.2 parser reads: escapes it
/// does not know (JSON's `\/`), and `\u` escapes of UTF-16 surrogates (JSON's pairs).
fn bad_escape(source: &str) -> Option<String> {
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            continue;
        }
        let digits = match chars.next()? {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            '0' | 'a' | 'b' | 't' | '\t' | 'n' | 'v' | 'f' | 'r' | 'e' | ' ' | '"' | '\''
            | '\\' | 'N' | '_' | 'L' | 'P' | '\n' | '\r' => continue,
            other => {
                return Some(format!(
                    "`\\{other}` is not an escape the factory's YAML parser knows (YAML 1.1)"
                ))
            }
        };
        let hex: String = chars.by_ref().take(digits).collect();
        if u32::from_str_radix(&hex, 16).is_ok_and(|v| (0xD800..=0xDFFF).contains(&v)) {
            return Some(
                "a \\u escape of a UTF-16 surrogate (\\uD800-\\uDFFF): the factory's YAML parser refuses it; write the character itself".into(),
            );
        }
    }
    None
}

struct Reader<'a> {
    text: &'a str,
    events: Parser<'a, granit_parser::StrInput<'a>>,
    anchors: Vec<(usize, Node)>,
    nodes: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Pos), ReadError> {
        loop {
            match self.events.next() {
                None => {
                    return Err(ReadError {
                        at: Pos { line: 1, col: 1 },
                        message: "unexpected end of YAML".into(),
                    })
                }
                Some(Err(e)) => {
                    let m = e.marker();
                    return Err(ReadError {
                        at: Pos {
                            line: m.line() as u64,
                            col: m.col() as u64 + 1,
                        },
                        message: e.info(),
                    });
                }
                #[allow(unreachable_patterns)]
                Some(Ok((Event::Comment(..), _))) => continue,
                Some(Ok((e, span))) => {
                    let at = Pos {
                        line: span.start.line() as u64,
                        col: span.start.col() as u64 + 1,
                    };
                    if let Event::Scalar(_, ScalarStyle::DoubleQuoted, ..) = e {
                        let source = span.byte_range().and_then(|r| self.text.get(r));
                        if let Some(message) = source.and_then(bad_escape) {
                            return Err(ReadError { at, message });
                        }
                    }
                    return Ok((e, at));
                }
            }
        }
    }

    fn count(&mut self, at: Pos, n: usize) -> Result<(), ReadError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(ReadError {
                at,
                message: format!("more than {MAX_NODES} YAML nodes (aliases expanded)"),
            });
        }
        Ok(())
    }

    fn node(&mut self, event: Event<'a>, at: Pos) -> Result<Node, ReadError> {
        self.count(at, 1)?;
        let (node, anchor) = match event {
            Event::Alias(id) => {
                let Some((_, n)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(ReadError {
                        at,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                let n = n.clone();
                let size = size(&n);
                self.count(at, size)?;
                return Ok(Node { at, kind: n.kind });
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = core_tag(
                    tag.as_deref(),
                    at,
                    &["str", "int", "float", "bool", "null", "timestamp"],
                )?;
                let quoted = !matches!(style, ScalarStyle::Plain);
                let kind = Kind::Scalar {
                    text: text.into_owned(),
                    quoted,
                    tag,
                };
                (Node { at, kind }, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                core_tag(tag.as_deref(), at, &["seq"])?;
                let mut items = Vec::new();
                loop {
                    let (e, e_at) = self.next()?;
                    if matches!(e, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(e, e_at)?);
                }
                (
                    Node {
                        at,
                        kind: Kind::Seq(items),
                    },
                    anchor,
                )
            }
            Event::MappingStart(_, anchor, tag) => {
                core_tag(tag.as_deref(), at, &["map"])?;
                let mut entries = Vec::new();
                loop {
                    let (e, e_at) = self.next()?;
                    if matches!(e, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(e, e_at)?;
                    let (v, v_at) = self.next()?;
                    let value = self.node(v, v_at)?;
                    entries.push((key, value));
                }
                (
                    Node {
                        at,
                        kind: Kind::Map(entries),
                    },
                    anchor,
                )
            }
            other => {
                return Err(ReadError {
                    at,
                    message: format!("unexpected YAML event {other:?}"),
                })
            }
        };
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
        Ok(node)
    }
}

fn size(n: &Node) -> usize {
    1 + match &n.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => items.iter().map(size).sum(),
        Kind::Map(entries) => entries.iter().map(|(k, v)| size(k) + size(v)).sum(),
    }
}

/// Keeps `!!name` for the core-schema tags a node of this kind may carry, and a local tag
/// (`!x`) as written: go-yaml decodes a locally tagged scalar as its text, and ignores such a
/// tag on a collection. Anything else (`!!binary`, `!!set`, a `%TAG` namespace) is refused
/// rather than read some other way.
fn core_tag(tag: Option<&Tag>, at: Pos, allowed: &[&str]) -> Result<Option<String>, ReadError> {
    let Some(t) = tag else { return Ok(None) };
    if t.suffix_in_namespace("!").is_some() && !t.to_string().starts_with("!!") {
        return Ok(Some(t.to_string()));
    }
    if let Some(suffix) = t.suffix_in_namespace("tag:yaml.org,2002:") {
        if allowed.contains(&suffix.as_ref()) {
            return Ok(Some(format!("!!{suffix}")));
        }
    }
    Err(ReadError {
        at,
        message: format!("the YAML tag {t} is not supported in a schematic"),
    })
}

/// go-yaml's reader takes DEL and the C1 controls (U+007F to U+009F, but U+0085, a line break)
/// anywhere (`internal/libyaml/reader.go`); granit-parser refuses them. They are read as
/// code points of a private-use plane, then put back in every scalar.
mod controls {
    use super::{Kind, Node, Pos, ReadError};

    const BASE: u32 = 0xF0000;

    fn hidden(c: char) -> bool {
        matches!(c as u32, 0x7F..=0x9F) && c != '\u{85}'
    }

    /// `text` with each control moved to the private plane; `None` when there is none.
    pub fn hide(text: &str) -> Result<Option<String>, ReadError> {
        if !text.chars().any(hidden) {
            return Ok(None);
        }
        if let Some((i, _)) = text
            .char_indices()
            .find(|(_, c)| (BASE + 0x7F..=BASE + 0x9F).contains(&(*c as u32)))
        {
            let line = text[..i].matches('\n').count() as u64 + 1;
            return Err(ReadError {
                at: Pos { line, col: 1 },
                message: "a schematic with both raw C1 controls and plane-15 private-use characters is not read: write the controls as escapes (\\x9b) in double quotes".into(),
            });
        }
        Ok(Some(
            text.chars()
                .map(|c| {
                    if hidden(c) {
                        char::from_u32(BASE + c as u32).unwrap_or(c)
                    } else {
                        c
                    }
                })
                .collect(),
        ))
    }

    /// Puts the controls back.
    pub fn show(n: &mut Node) {
        match &mut n.kind {
            Kind::Scalar { text, .. } => {
                if text
                    .chars()
                    .any(|c| (BASE + 0x7F..=BASE + 0x9F).contains(&(c as u32)))
                {
                    *text = text
                        .chars()
                        .map(|c| match c as u32 {
                            u @ 0xF007F..=0xF009F => char::from_u32(u - BASE).unwrap_or(c),
                            _ => c,
                        })
                        .collect();
                }
            }
            Kind::Seq(items) => items.iter_mut().for_each(show),
            Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                show(k);
                show(v);
            }),
        }
    }
}

//! A schematic's YAML (or JSON) as a node tree with source positions, the way yaml.v3 sees
//! it before decoding: scalars keep their text, their quoting and their tag; aliases are
//! expanded. One document only.

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
        /// Quoted or block (`|`, `>`): yaml.v3 reads such a scalar as a string, whatever it says.
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

/// Reads the one document of `text`; `None` for a stream with no document (the factory's
/// decoder answers such a body with EOF).
pub fn read(text: &str) -> Result<Option<Node>, ReadError> {
    yaml11_breaks(text)?;
    let mut r = Reader {
        text,
        events: Parser::new_from_str(text),
        anchors: Vec::new(),
        nodes: 0,
    };
    let mut root = None;
    loop {
        let (event, at) = r.next()?;
        match event {
            Event::StreamStart => {}
            Event::StreamEnd => return Ok(root),
            Event::DocumentStart(..) if root.is_some() => {
                return Err(ReadError {
                    at,
                    message: "a schematic is one YAML document; this is a second".into(),
                })
            }
            Event::DocumentStart(..) => {
                let (first, first_at) = r.next()?;
                root = Some(r.node(first, first_at)?);
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

/// YAML 1.1 parsers (yaml.v3 among them) read U+0085, U+2028 and U+2029 as line breaks
/// where YAML 1.2 reads them as text, so the factory would see another schematic, or none.
fn yaml11_breaks(text: &str) -> Result<(), ReadError> {
    for (n, line) in text.split('\n').enumerate() {
        if let Some((i, c)) = line
            .char_indices()
            .find(|(_, c)| matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}'))
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

/// What yaml.v3 refuses in a double-quoted scalar that a YAML 1.2 parser reads: escapes it
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

/// Keeps `!!name` for the core-schema tags a node of this kind may carry; anything else
/// (`!!binary`, `!custom`, `!!set`) is refused rather than read some other way.
fn core_tag(tag: Option<&Tag>, at: Pos, allowed: &[&str]) -> Result<Option<String>, ReadError> {
    let Some(t) = tag else { return Ok(None) };
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

//! go-yaml v4 (`go.yaml.in/yaml/v4`), which Talos and the Image Factory both use: its node
//! tree ([`node`]), what a plain scalar means ([`resolve`]) and the bytes its emitter writes
//! ([`emit`]). This module decodes into Talos's Go structs.
//!
//! Decoding YAML into Talos's Go structs as `go.yaml.in/yaml/v4`'s `Decoder.Decode` does (its
//! `internal/libyaml/constructor.go`, with the v3 defaults the `Decoder` has, without
//! `KnownFields`): the first document; unknown keys ignored, a key written twice an error; null
//! the zero value; a string field takes any scalar's text but an unquoted timestamp's. The YAML
//! is read by the node reader schematics use ([`node`]), so quoting and tags are known.
//! Talos reads extension manifests (`pkg/machinery/extensions/load.go`) and extension service
//! specs (`internal/app/machined/pkg/controllers/runtime/extension_service.go`) this way.

pub mod emit;
pub mod node;
pub mod resolve;

use self::node::{Kind, Node};
use self::resolve::{resolve, Resolved};
use crate::error::Reason;

pub type Result<T> = std::result::Result<T, crate::error::Reason>;

/// The first document's root.
pub fn document(text: &str) -> Result<Node> {
    node::read(text)
        .map_err(|e| Reason(format!("line {}: {}", e.at.line, e.message)))?
        .ok_or_else(|| Reason::from("EOF: no YAML document"))
}

/// A mapping's entries (none for null); a key written twice is an error (`UniqueKeys`).
pub fn entries<'a>(n: &'a Node, into: &str) -> Result<&'a [(Node, Node)]> {
    match &n.kind {
        Kind::Map(e) => {
            for (i, (k, _)) in e.iter().enumerate() {
                if let Some((later, _)) = e[i + 1..].iter().find(|(l, _)| same(k, l)) {
                    return Err(format!(
                        "line {}: mapping key {} already defined at line {}",
                        later.at.line,
                        key(k).unwrap_or_default(),
                        k.at.line
                    )
                    .into());
                }
            }
            Ok(e)
        }
        Kind::Scalar { .. } if matches!(scalar(n)?, Some(Resolved::Null)) => Ok(&[]),
        _ => Err(mismatch(n, into)),
    }
}

/// A sequence's items (none for null).
pub fn items<'a>(n: &'a Node, into: &str) -> Result<&'a [Node]> {
    match &n.kind {
        Kind::Seq(items) => Ok(items),
        Kind::Scalar { .. } if matches!(scalar(n)?, Some(Resolved::Null)) => Ok(&[]),
        _ => Err(mismatch(n, into)),
    }
}

fn same(a: &Node, b: &Node) -> bool {
    matches!((&a.kind, &b.kind), (Kind::Scalar { text: x, .. }, Kind::Scalar { text: y, .. }) if x == y)
}

pub fn key(k: &Node) -> Result<String> {
    match &k.kind {
        Kind::Scalar { text, .. } => Ok(text.clone()),
        _ => Err(format!("line {}: a {} as a key", k.at.line, k.kind_name()).into()),
    }
}

/// What a scalar resolves to: a quoted or `!!str` scalar is a string, a locally tagged one
/// its text.
pub fn scalar(n: &Node) -> Result<Option<Resolved>> {
    let Kind::Scalar { text, quoted, tag } = &n.kind else {
        return Ok(None);
    };
    Ok(Some(match tag.as_deref() {
        Some(t) if !t.starts_with("!!") => Resolved::Local,
        Some("!!str") => Resolved::Str,
        None if *quoted => Resolved::Str,
        t => resolve(t, text).map_err(|m| Reason(format!("line {}: {m}", n.at.line)))?,
    }))
}

/// The decoder's complaint: `line N: cannot construct !!seq into string`.
pub fn mismatch(n: &Node, into: &str) -> Reason {
    let what = match (&n.kind, scalar(n)) {
        (Kind::Scalar { text, .. }, Ok(Some(r))) => format!("{} `{text}`", r.tag()),
        (Kind::Scalar { text, .. }, _) => format!("`{text}`"),
        (Kind::Seq(_), _) => "!!seq".into(),
        _ => "!!map".into(),
    };
    Reason(format!(
        "line {}: cannot construct {what} into {into}",
        n.at.line
    ))
}

/// A string field: a scalar's text, "" for null; not a timestamp, list or map.
pub fn text(n: &Node) -> Result<String> {
    match (&n.kind, scalar(n)?) {
        (_, Some(Resolved::Null)) => Ok(String::new()),
        (Kind::Scalar { text, .. }, Some(r)) if r != Resolved::Timestamp => Ok(text.clone()),
        _ => Err(mismatch(n, "string")),
    }
}

/// A `[]string`: null items are dropped, as the decoder drops them.
pub fn texts(n: &Node) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for i in items(n, "[]string")? {
        if !matches!(scalar(i)?, Some(Resolved::Null)) {
            out.push(text(i)?);
        }
    }
    Ok(out)
}

/// A bool field: `true`/`false`, and YAML 1.1's `yes`/`no`/`on`/`off`/`y`/`n` as text
/// (`constructStr` into a bool); null is false.
pub fn boolean(n: &Node) -> Result<bool> {
    match (&n.kind, scalar(n)?) {
        (_, Some(Resolved::Null)) => Ok(false),
        (_, Some(Resolved::Bool(b))) => Ok(b),
        (Kind::Scalar { text, .. }, Some(Resolved::Str)) => match text.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(false),
            _ => Err(mismatch(n, "bool")),
        },
        _ => Err(mismatch(n, "bool")),
    }
}

/// An enum Talos generates with `enumer -text`: its names as written or lower-cased
/// (`UnmarshalText`); an integer is the value itself; null is 0.
pub fn enumer(n: &Node, names: &[&str], type_name: &str) -> Result<u32> {
    match (&n.kind, scalar(n)?) {
        (_, Some(Resolved::Null)) => Ok(0),
        (_, Some(Resolved::Int(i))) => u32::try_from(i).map_err(|_| mismatch(n, type_name)),
        (Kind::Scalar { text, .. }, Some(_)) => names
            .iter()
            .position(|name| *name == text || name.to_lowercase() == text.to_lowercase())
            .map(|i| i as u32 + 1)
            .ok_or_else(|| {
                Reason(format!(
                    "line {}: {text} does not belong to {type_name} values",
                    n.at.line
                ))
            }),
        _ => Err(mismatch(n, type_name)),
    }
}

//! Node tree -> [`Schematic`], by go-yaml v4's decoding rules with `KnownFields(true)`
//! (`internal/libyaml/constructor.go`), as the factory decodes: unknown and repeated keys are
//! errors; null is the zero value; a string field takes any scalar's text (`10`, `true`) but a
//! timestamp's; a bool takes `yes`/`no`/`on`/`off` too; an integer takes `0x0a`, `1_000` and
//! whole floats; a locally tagged scalar (`!x 1`) is text; overlay options keep YAML's types.

use super::Value;
use super::{Bootloader, Customization, DiskImage, MetaValue, Overlay, Schematic, SecureBoot};
use crate::goyaml::node::{Kind, Node, Pos};
use crate::goyaml::resolve::{resolve, Resolved};

#[derive(Debug)]
pub struct DecodeError {
    pub at: Pos,
    pub message: String,
}

type Result<T> = std::result::Result<T, DecodeError>;

fn err<T>(n: &Node, message: impl Into<String>) -> Result<T> {
    Err(DecodeError {
        at: n.at,
        message: message.into(),
    })
}

/// A scalar as go-yaml v4's `scalar()` sees it: its resolved value (quoted text is a string).
fn resolved(n: &Node) -> Result<Option<(Resolved, &str)>> {
    let Kind::Scalar { text, quoted, tag } = &n.kind else {
        return Ok(None);
    };
    let r = if tag.as_deref().is_some_and(|t| !t.starts_with("!!")) {
        Resolved::Local
    } else if tag.as_deref() == Some("!!str") || (tag.is_none() && *quoted) {
        Resolved::Str
    } else {
        match resolve(tag.as_deref(), text) {
            Ok(r) => r,
            Err(m) => return err(n, m),
        }
    };
    Ok(Some((r, text)))
}

fn is_null(n: &Node) -> Result<bool> {
    Ok(matches!(resolved(n)?, Some((Resolved::Null, _))))
}

fn mismatch<T>(n: &Node, want: &str) -> Result<T> {
    match &n.kind {
        Kind::Scalar { text, .. } => {
            let tag = resolved(n)?.map_or("!!str", |(r, _)| r.tag());
            err(n, format!("cannot unmarshal {tag} `{text}` into {want}"))
        }
        _ => err(n, format!("cannot unmarshal {} into {want}", n.kind_name())),
    }
}

/// The entries of a mapping, refusing merge keys and keys written twice (same text).
fn entries<'a>(n: &'a Node, want: &str) -> Result<Option<&'a [(Node, Node)]>> {
    match &n.kind {
        Kind::Map(entries) => {
            for (i, (k, _)) in entries.iter().enumerate() {
                // go-yaml v4 merges on a `<<` key whether or not it is quoted.
                if let Kind::Scalar {
                    text, tag: None, ..
                } = &k.kind
                {
                    if text == "<<" {
                        return err(k, "merge keys (<<) are not supported in a schematic");
                    }
                }
                for (later, _) in &entries[i + 1..] {
                    if same_key(k, later) {
                        return err(
                            later,
                            format!(
                                "mapping key {} already defined at line {}",
                                key_text(k),
                                k.at.line
                            ),
                        );
                    }
                }
            }
            Ok(Some(entries))
        }
        _ if is_null(n)? => Ok(None),
        _ => mismatch(n, want),
    }
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Scalar { text: x, .. }, Kind::Scalar { text: y, .. }) => x == y,
        (Kind::Seq(_), Kind::Seq(_)) | (Kind::Map(_), Kind::Map(_)) => true,
        _ => false,
    }
}

fn key_text(k: &Node) -> String {
    match &k.kind {
        Kind::Scalar { text, .. } => format!("{text:?}"),
        _ => format!("({})", k.kind_name()),
    }
}

/// Decodes a struct: `fields` is called with each key's name and value; it answers false for
/// a name the struct does not have.
fn decode_struct(
    n: &Node,
    name: &str,
    mut field: impl FnMut(&str, &Node) -> Result<bool>,
) -> Result<()> {
    let Some(entries) = entries(n, name)? else {
        return Ok(());
    };
    for (k, v) in entries {
        let key = string(k)?;
        if !field(&key, v)? {
            return err(k, format!("field {key} not found in type {name}"));
        }
    }
    Ok(())
}

pub fn schematic(n: &Node) -> Result<Schematic> {
    let mut s = Schematic::default();
    decode_struct(n, "schematic.Schematic", |k, v| {
        match k {
            "owner" => s.owner = string(v)?,
            "overlay" => s.overlay = overlay(v)?,
            "customization" => s.customization = customization(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(s)
}

fn overlay(n: &Node) -> Result<Overlay> {
    let mut o = Overlay::default();
    decode_struct(n, "schematic.Overlay", |k, v| {
        match k {
            "image" => o.image = string(v)?,
            "name" => o.name = string(v)?,
            "options" => o.options = string_map(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(o)
}

fn customization(n: &Node) -> Result<Customization> {
    let mut c = Customization::default();
    decode_struct(n, "schematic.Customization", |k, v| {
        match k {
            "extraKernelArgs" => c.extra_kernel_args = strings(v)?,
            "meta" => c.meta = seq(v, "[]schematic.MetaValue", meta)?,
            "systemExtensions" => {
                decode_struct(v, "schematic.SystemExtensions", |k, v| {
                    match k {
                        "officialExtensions" => c.official_extensions = strings(v)?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
            }
            "bootloader" => c.bootloader = bootloader(v)?,
            "secureboot" => c.secureboot = secureboot(v)?,
            "diskImage" => {
                let mut d = DiskImage::default();
                decode_struct(v, "schematic.DiskImage", |k, v| {
                    match k {
                        "sectorSize" => d.sector_size = uint(v, u64::MAX, "uint")?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                c.disk_image = d;
            }
            "embeddedMachineConfiguration" => c.embedded_machine_configuration = string(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(c)
}

fn meta(n: &Node) -> Result<MetaValue> {
    let mut m = MetaValue::default();
    decode_struct(n, "schematic.MetaValue", |k, v| {
        match k {
            "key" => m.key = uint(v, u8::MAX.into(), "uint8")? as u8,
            "value" => m.value = string(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(m)
}

fn secureboot(n: &Node) -> Result<SecureBoot> {
    let mut s = SecureBoot::default();
    decode_struct(n, "schematic.SecureBoot", |k, v| {
        match k {
            "enrollKeys" => s.enroll_keys = string(v)?,
            "includeWellKnownCertificates" => s.include_well_known_certificates = boolean(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(s)
}

/// A typed list. go-yaml v4 drops null items from a list of strings or structs (they cannot
/// hold null), so `[a, ~]` is `[a]`.
fn seq<T>(n: &Node, want: &str, item: impl Fn(&Node) -> Result<T>) -> Result<Vec<T>> {
    match &n.kind {
        Kind::Seq(items) => {
            let mut out = Vec::new();
            for i in items {
                if !is_null(i)? {
                    out.push(item(i)?);
                }
            }
            Ok(out)
        }
        _ if is_null(n)? => Ok(Vec::new()),
        _ => mismatch(n, want),
    }
}

fn strings(n: &Node) -> Result<Vec<String>> {
    seq(n, "[]string", string)
}

/// Any scalar's text but a timestamp's (go-yaml v4 `constructTimestamp` takes no string);
/// null is "".
fn string(n: &Node) -> Result<String> {
    match resolved(n)? {
        Some((Resolved::Null, _)) => Ok(String::new()),
        Some((Resolved::Timestamp, _)) => mismatch(n, "string"),
        Some((_, text)) => Ok(text.to_string()),
        None => mismatch(n, "string"),
    }
}

fn boolean(n: &Node) -> Result<bool> {
    match resolved(n)? {
        Some((Resolved::Null, _)) => Ok(false),
        Some((Resolved::Bool(b), _)) => Ok(b),
        Some((Resolved::Str, "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON")) => Ok(true),
        Some((Resolved::Str, "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF")) => Ok(false),
        _ => mismatch(n, "bool"),
    }
}

/// An unsigned field no larger than `max`. A float only when it is a whole number (go-yaml
/// v4 `constructFloat`: the conversion must be lossless).
fn uint(n: &Node, max: u64, want: &str) -> Result<u64> {
    let v = match resolved(n)? {
        Some((Resolved::Null, _)) => Some(0),
        Some((Resolved::Int(i), _)) => u64::try_from(i).ok(),
        Some((Resolved::Uint(u), _)) => Some(u),
        Some((Resolved::Float(f), _))
            if f >= 0.0 && f.fract() == 0.0 && f < 18446744073709551616.0 =>
        {
            Some(f as u64)
        }
        _ => None,
    };
    match v {
        Some(v) if v <= max => Ok(v),
        _ => mismatch(n, want),
    }
}

/// go-yaml v4 matches the names as written, then lower-cased; `none` is the zero value.
fn bootloader(n: &Node) -> Result<Bootloader> {
    match resolved(n)? {
        Some((Resolved::Null, _)) => Ok(Bootloader::None),
        Some((_, text)) => Bootloader::parse(text).ok_or_else(|| DecodeError {
            at: n.at,
            message: format!(
                "bootloader '{text}' is not one of {}",
                Bootloader::NAMES.join(", ")
            ),
        }),
        None => mismatch(n, "schematic.Bootloader"),
    }
}

/// `map[string]any`: keys are their text (a null key is dropped, as go-yaml v4 drops it), a
/// later key replaces an earlier one with the same text.
fn string_map(n: &Node) -> Result<Vec<(String, Value)>> {
    let Some(entries) = entries(n, "map[string]interface {}")? else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(String, Value)> = Vec::new();
    for (k, v) in entries {
        if is_null(k)? {
            any(v)?;
            continue;
        }
        let key = string(k)?;
        let value = any(v)?;
        match out.iter_mut().find(|(x, _)| *x == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

/// A value decoded into `interface{}`: YAML's own types.
fn any(n: &Node) -> Result<Value> {
    match &n.kind {
        Kind::Seq(items) => Ok(Value::Seq(items.iter().map(any).collect::<Result<_>>()?)),
        Kind::Map(_) => {
            let entries = entries(n, "map")?.unwrap_or_default();
            let mut out: Vec<(Value, Value)> = Vec::new();
            for (k, v) in entries {
                let key = any(k)?;
                let scalar = match &key {
                    Value::Float(f) => !f.is_nan(),
                    Value::Time(_) | Value::Seq(_) | Value::Map(_) => false,
                    _ => true,
                };
                if !scalar {
                    return err(
                        k,
                        "a map key in overlay options must be a string, number, bool or null",
                    );
                }
                let value = any(v)?;
                match out.iter_mut().find(|(x, _)| *x == key) {
                    Some(slot) => slot.1 = value,
                    None => out.push((key, value)),
                }
            }
            Ok(Value::Map(out))
        }
        Kind::Scalar { text, .. } => Ok(match resolved(n)?.map(|(r, _)| r) {
            Some(Resolved::Null) => Value::Null,
            Some(Resolved::Bool(b)) => Value::Bool(b),
            Some(Resolved::Int(i)) => Value::Int(i),
            Some(Resolved::Uint(u)) => Value::Uint(u),
            Some(Resolved::Float(f)) => Value::Float(f),
            Some(Resolved::Timestamp) => match crate::goyaml::resolve::rfc3339_nano(text) {
                Some(t) => Value::Time(t),
                None => return err(n, format!("cannot read `{text}` as a timestamp")),
            },
            Some(Resolved::Str | Resolved::Local) | None => Value::Str(text.clone()),
        }),
    }
}

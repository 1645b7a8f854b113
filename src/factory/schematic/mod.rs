//! Image Factory schematics, offline: the ID is the lowercase hex SHA-256 of the schematic as
//! the factory re-marshals it with go-yaml v4 (struct field order, 4-space indent, empty
//! fields left out). Reading follows the factory's decoder (unknown fields are errors, lists
//! keep their order), and writing follows go-yaml v4's emitter, so the bytes, and the ID, are
//! the factory's. YAML and JSON are both read (JSON is YAML).

mod decode;
#[cfg(test)]
mod tests;

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::goyaml::emit::{self, Out};
use crate::goyaml::node;
use crate::located::LocatedError;

/// The ID of the schematic with no customization (`customization: {}`).
pub const EMPTY_ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

/// The factory's `Schematic`, fields in its order (image-factory `pkg/schematic/schematic.go`):
/// the order is the canonical form, so the ID depends on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schematic {
    /// The owner (username); only an Enterprise factory accepts a schematic that has one.
    pub owner: String,
    pub overlay: Overlay,
    pub customization: Customization,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    pub image: String,
    pub name: String,
    /// `map[string]any`: written with its keys sorted, as go-yaml v4 sorts map keys.
    pub options: Vec<(String, Value)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customization {
    pub embedded_machine_configuration: String,
    pub extra_kernel_args: Vec<String>,
    pub meta: Vec<MetaValue>,
    pub official_extensions: Vec<String>,
    pub bootloader: Bootloader,
    pub secureboot: SecureBoot,
    pub disk_image: DiskImage,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaValue {
    pub key: u8,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecureBoot {
    pub enroll_keys: String,
    pub include_well_known_certificates: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskImage {
    pub sector_size: u64,
}

/// An integer enum upstream, written by name; `none`, the zero value, is left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Bootloader {
    #[default]
    None,
    DualBoot,
    SdBoot,
    Grub,
}

impl Bootloader {
    pub const NAMES: [&'static str; 4] = ["none", "dual-boot", "sd-boot", "grub"];

    /// As written, then lower-cased, as the generated enum parser matches.
    pub fn parse(s: &str) -> Option<Self> {
        let lower = s.to_lowercase();
        let i = Self::NAMES.iter().position(|n| *n == s || *n == lower)?;
        Some([Self::None, Self::DualBoot, Self::SdBoot, Self::Grub][i])
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// An overlay option value, with YAML's types as go-yaml v4 decodes into `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    /// A timestamp, already as Go writes a `time.Time` back (RFC 3339 with nanoseconds).
    Time(String),
    Seq(Vec<Value>),
    /// Keys are scalars (null, bool, number or string), as go-yaml v4 takes them into
    /// `map[interface{}]interface{}` when not all are strings.
    Map(Vec<(Value, Value)>),
}

impl Schematic {
    /// Reads a schematic file; errors name `file:line:col`.
    pub fn load(path: &Path) -> Result<Schematic, LocatedError> {
        let text = crate::located::read_text(path, "schematic")?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Schematic, LocatedError> {
        let located = |line: u64, column: u64, message: String| LocatedError {
            file: path.to_path_buf(),
            line,
            column,
            message,
            snippet: crate::located::snippet(text, path, line, column),
        };
        let root = node::read(text)
            .map_err(|e| located(e.at.line, e.at.col, e.message))?
            .ok_or_else(|| {
                located(
                    1,
                    1,
                    "empty schematic: write `customization: {}` for none".into(),
                )
            })?;
        decode::schematic(&root).map_err(|e| located(e.at.line, e.at.col, e.message))
    }

    /// What the public Image Factory would refuse although the ID can be computed.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.owner.is_empty() {
            // image-factory pkg/schematic/schematic.go: Validate refuses an owner outside
            // the Enterprise edition.
            w.push(
                "schematic owner is only accepted by an Enterprise Image Factory; factory.talos.dev refuses it"
                    .to_string(),
            );
        }
        w
    }

    /// The bytes the factory hashes.
    pub fn canonical(&self) -> String {
        emit::marshal(&self.out())
    }

    /// The schematic ID: lowercase hex SHA-256 of [`Self::canonical`].
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.canonical().as_bytes()))
    }

    /// The marshalled form: struct fields in order, `omitempty` ones left out when zero.
    fn out(&self) -> Out {
        let mut top = Vec::new();
        if !self.owner.is_empty() {
            top.push(field("owner", str(&self.owner)));
        }
        let o = &self.overlay;
        if *o != Overlay::default() {
            let mut fields = vec![field("image", str(&o.image)), field("name", str(&o.name))];
            if !o.options.is_empty() {
                let options = o
                    .options
                    .iter()
                    .map(|(k, v)| (Value::Str(k.clone()), v.clone()));
                fields.push(field("options", value(&Value::Map(options.collect()))));
            }
            top.push(field("overlay", Out::Map(fields)));
        }
        let c = &self.customization;
        let mut fields = Vec::new();
        let strs = |v: &[String]| Out::Seq(v.iter().map(|s| str(s)).collect());
        if !c.embedded_machine_configuration.is_empty() {
            fields.push(field(
                "embeddedMachineConfiguration",
                str(&c.embedded_machine_configuration),
            ));
        }
        if !c.extra_kernel_args.is_empty() {
            fields.push(field("extraKernelArgs", strs(&c.extra_kernel_args)));
        }
        if !c.meta.is_empty() {
            let items = c
                .meta
                .iter()
                .map(|m| {
                    Out::Map(vec![
                        field("key", Out::Plain(m.key.to_string())),
                        field("value", str(&m.value)),
                    ])
                })
                .collect();
            fields.push(field("meta", Out::Seq(items)));
        }
        if !c.official_extensions.is_empty() {
            let ext = vec![field("officialExtensions", strs(&c.official_extensions))];
            fields.push(field("systemExtensions", Out::Map(ext)));
        }
        if c.bootloader != Bootloader::None {
            fields.push(field("bootloader", str(c.bootloader.name())));
        }
        let sb = &c.secureboot;
        let mut secure = Vec::new();
        if !sb.enroll_keys.is_empty() {
            secure.push(field("enrollKeys", str(&sb.enroll_keys)));
        }
        if sb.include_well_known_certificates {
            secure.push(field("includeWellKnownCertificates", Out::Bool(true)));
        }
        if !secure.is_empty() {
            fields.push(field("secureboot", Out::Map(secure)));
        }
        if c.disk_image.sector_size != 0 {
            let size = Out::Plain(c.disk_image.sector_size.to_string());
            fields.push(field(
                "diskImage",
                Out::Map(vec![field("sectorSize", size)]),
            ));
        }
        top.push(field("customization", Out::Map(fields)));
        Out::Map(top)
    }
}

fn str(s: &str) -> Out {
    Out::Str(s.to_string())
}

fn field(name: &str, v: Out) -> (Out, Out) {
    (str(name), v)
}

fn value(v: &Value) -> Out {
    match v {
        Value::Null => Out::Null,
        Value::Bool(b) => Out::Bool(*b),
        Value::Int(i) => Out::Plain(i.to_string()),
        Value::Uint(u) => Out::Plain(u.to_string()),
        Value::Float(f) => Out::Float(*f),
        Value::Str(s) => str(s),
        Value::Time(t) => Out::Plain(t.clone()),
        Value::Seq(items) => Out::Seq(items.iter().map(value).collect()),
        Value::Map(entries) => {
            let mut sorted: Vec<&(Value, Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| key_order(&a.0, &b.0));
            Out::Map(
                sorted
                    .into_iter()
                    .map(|(k, v)| (value(k), value(v)))
                    .collect(),
            )
        }
    }
}

/// go-yaml v4's map key order (`keyList.Less`): numbers and bools by value, before null, before
/// strings; strings in "natural" order, where runs of digits compare as numbers.
fn key_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    // reflect.Kind numbers: Bool 1, Int 2, Uint64 11, Float64 14, Interface 20, String 24.
    let (ka, kb) = (kind(a), kind(b));
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        if x != y {
            return x.partial_cmp(&y).unwrap_or(Equal);
        }
        if ka != kb {
            return ka.cmp(&kb);
        }
        return match (a, b) {
            (Value::Int(x), Value::Int(y)) => x.cmp(y),
            (Value::Uint(x), Value::Uint(y)) => x.cmp(y),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            _ => Equal,
        };
    }
    let (Value::Str(a), Value::Str(b)) = (a, b) else {
        return ka.cmp(&kb);
    };
    if go_less(a, b) {
        Less
    } else if go_less(b, a) {
        Greater
    } else {
        Equal
    }
}

fn kind(k: &Value) -> u8 {
    match k {
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Uint(_) => 11,
        Value::Float(_) => 14,
        Value::Null => 20,
        Value::Str(_) => 24,
        // Never keys: decoding refuses them.
        Value::Time(_) | Value::Seq(_) | Value::Map(_) => 25,
    }
}

fn number(k: &Value) -> Option<f64> {
    match k {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Int(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// The string half of `keyList.Less`, rune by rune.
fn go_less(a: &str, b: &str) -> bool {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut digits = false;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            digits = is_go_digit(ar[i]);
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return if digits { al } else { bl };
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && is_go_digit(ar[j - 1]) {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && is_go_digit(ar[ai]) {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u32) - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && is_go_digit(br[bi]) {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u32) - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// Go's `unicode.IsDigit`, for the ASCII digits (other scripts' digits in option keys are
/// compared as other characters).
fn is_go_digit(c: char) -> bool {
    c.is_ascii_digit()
}

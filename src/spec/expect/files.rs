//! `expect.files[]`: a path of the image and what it must be (checked by `check::files`; its
//! `kernel`, `initramfs`, `checksums` and `report` keys belong to those families).
//!
//! The section as written (YAML, JSON Schema), its validated form, and its validation.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::checksums::{ChecksumsExpect, ChecksumsExpectation};
use super::initramfs::{InitramfsExpect, InitramfsExpectation};
use super::kernel::{KernelExpect, UkiExpect, UkiExpectation};
use super::report::{ReportExpect, ReportExpectation};
use crate::digest::Digest;
use crate::located::LocatedError;
use crate::spec::arch::Arch;
use crate::spec::size::ByteSize;
use crate::spec::validator::Validator;

// As written.

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileExpect {
    /// Path inside the image, relative to its root.
    pub path: String,
    /// `file`, `dir` or `symlink`. A hardlink counts as a file.
    #[serde(default, rename = "type")]
    pub kind: Option<FileType>,
    /// Permission bits as 3 or 4 octal digits, quoted: `"0644"`.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[0-7]{3,4}$"))]
    pub mode: Option<Spanned<String>>,
    /// What this entry is for: shown with its failures and as the JUnit case's system-out.
    #[serde(default)]
    pub description: Option<String>,
    /// An exact size (`32MiB`, `4096`) or inclusive bounds `{min, max}`: bytes or a string with
    /// a unit (`1MiB`, `200MB`).
    #[serde(default)]
    #[schemars(with = "Option<SizeSpec>")]
    pub size: Option<Spanned<SizeSpec>>,
    /// Owner as `"UID:GID"` (numeric), e.g. `"0:0"`.
    #[serde(default)]
    #[schemars(with = "Option<String>", regex(pattern = r"^[0-9]+:[0-9]+$"))]
    pub owner: Option<Spanned<String>>,
    /// Whether any execute bit is set (`true`) or none is (`false`).
    #[serde(default)]
    pub executable: Option<bool>,
    /// Expected sha256 of the content, 64 hex digits (a `sha256:` prefix is allowed).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub sha256: Option<Spanned<String>>,
    /// Substrings the content must contain.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Regexes (Rust `regex` syntax) the content must match somewhere; `(?m)` for line anchors.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub matches: Vec<Spanned<String>>,
    /// Substrings the content must not contain.
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Regexes the content must match nowhere.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub lacks_matching: Vec<Spanned<String>>,
    /// The file is a kernel of this architecture.
    #[serde(default)]
    pub kernel: Option<KernelExpect>,
    /// The file is a UKI.
    #[serde(default)]
    pub uki: Option<UkiExpect>,
    /// The file is an initramfs.
    #[serde(default)]
    pub initramfs: Option<InitramfsExpect>,
    /// The file is a `sha256sum` listing that verifies.
    #[serde(default)]
    pub checksums: Option<ChecksumsExpect>,
    /// The file is a build report with these facts.
    #[serde(default)]
    pub report: Option<ReportExpect>,
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    File,
    Dir,
    Symlink,
}

/// `size:` as one size (exactly that) or as bounds.
#[derive(Debug, JsonSchema, Clone, Copy)]
#[serde(untagged)]
pub enum SizeSpec {
    Exact(ByteSize),
    Range(SizeRange),
}

/// By hand rather than `untagged`, whose error names the Rust type and which would take a list
/// for `{min, max}` by position.
impl<'de> Deserialize<'de> for SizeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const FORMS: &str = "a size like 512KiB (or bytes, 4096), or {min, max}";
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SizeSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(FORMS)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SizeSpec, E> {
                Ok(SizeSpec::Exact(ByteSize(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SizeSpec, E> {
                u64::try_from(v)
                    .map(|v| SizeSpec::Exact(ByteSize(v)))
                    .map_err(|_| E::custom(format!("a size cannot be negative; write {FORMS}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SizeSpec, E> {
                crate::spec::size::parse(v)
                    .map(|v| SizeSpec::Exact(ByteSize(v)))
                    .map_err(|e| E::custom(format!("{e}; write {FORMS}")))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<SizeSpec, A::Error> {
                SizeRange::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(SizeSpec::Range)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize, JsonSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct SizeRange {
    #[serde(default)]
    pub min: Option<ByteSize>,
    #[serde(default)]
    pub max: Option<ByteSize>,
}

// Validated.

/// Inclusive size bounds; at least one is set.
#[derive(Debug, Clone, Copy)]
pub struct SizeBounds {
    pub min: Option<u64>,
    pub max: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct FileExpectation {
    pub path: String,
    pub kind: Option<FileType>,
    pub mode: Option<u32>,
    pub size: Option<SizeBounds>,
    pub sha256: Option<Digest>,
    pub contains: Vec<String>,
    pub matches: Vec<regex::bytes::Regex>,
    pub lacks: Vec<String>,
    pub lacks_matching: Vec<regex::bytes::Regex>,
    /// `(uid, gid)`.
    pub owner: Option<(u64, u64)>,
    pub executable: Option<bool>,
    pub description: Option<String>,
    pub kernel: Option<Arch>,
    pub uki: Option<UkiExpectation>,
    pub initramfs: Option<InitramfsExpectation>,
    pub checksums: Option<ChecksumsExpectation>,
    pub report: Option<ReportExpectation>,
}

impl FileExpectation {
    /// Whether any key given applies only to a file's content or size: these make no sense on
    /// a directory or a symlink.
    pub fn needs_a_file(&self) -> bool {
        self.size.is_some()
            || self.sha256.is_some()
            || !self.contains.is_empty()
            || !self.matches.is_empty()
            || !self.lacks.is_empty()
            || !self.lacks_matching.is_empty()
            || self.kernel.is_some()
            || self.uki.is_some()
            || self.initramfs.is_some()
            || self.checksums.is_some()
            || self.report.is_some()
    }
}

impl Validator<'_> {
    pub(in crate::spec) fn file(
        &self,
        f: &Spanned<FileExpect>,
    ) -> Result<FileExpectation, LocatedError> {
        let v = &f.value;
        let at = &f.referenced;
        let path = self.path(&v.path, at)?;
        let mode = v.mode.as_ref().map(|m| self.mode(m)).transpose()?;
        let size = v.size.as_ref().map(|s| self.size(s)).transpose()?;
        let sha256 = v.sha256.as_ref().map(|s| self.sha256(s)).transpose()?;
        let matches = v
            .matches
            .iter()
            .map(|m| self.regex(m))
            .collect::<Result<Vec<_>, _>>()?;
        let lacks_matching = v
            .lacks_matching
            .iter()
            .map(|m| self.regex(m))
            .collect::<Result<Vec<_>, _>>()?;
        let owner = v.owner.as_ref().map(|o| self.owner(o)).transpose()?;
        let uki = match &v.uki {
            Some(u) => Some(UkiExpectation {
                cmdline_contains: u.cmdline_contains.clone(),
                initramfs: u
                    .initramfs
                    .as_ref()
                    .map(|i| self.initramfs(i, at))
                    .transpose()?,
            }),
            None => None,
        };
        let initramfs = v
            .initramfs
            .as_ref()
            .map(|i| self.initramfs(i, at))
            .transpose()?;
        let checksums = match &v.checksums {
            Some(c) => Some(ChecksumsExpectation {
                root: crate::image_path::normalize(&c.root)
                    .map_err(|e| self.err(at, e.to_string()))?,
                complete: c.complete,
            }),
            None => None,
        };
        let report = v.report.as_ref().map(|r| self.report(r, at)).transpose()?;
        let fe = FileExpectation {
            path,
            kind: v.kind,
            mode,
            size,
            sha256,
            contains: v.contains.clone(),
            matches,
            lacks: v.lacks.clone(),
            lacks_matching,
            owner,
            executable: v.executable,
            description: v.description.clone(),
            kernel: v.kernel.as_ref().map(|k| k.arch),
            uki,
            initramfs,
            checksums,
            report,
        };
        if fe.needs_a_file() && matches!(fe.kind, Some(FileType::Dir | FileType::Symlink)) {
            return Err(self.err(
                at,
                format!(
                    "'{}': size, sha256, contains, matches and the Talos checks apply to files, not to a {}",
                    fe.path,
                    if fe.kind == Some(FileType::Dir) {
                        "dir"
                    } else {
                        "symlink"
                    }
                ),
            ));
        }
        Ok(fe)
    }

    pub(in crate::spec) fn mode(&self, m: &Spanned<String>) -> Result<u32, LocatedError> {
        let ok =
            (3..=4).contains(&m.value.len()) && m.value.bytes().all(|b| (b'0'..=b'7').contains(&b));
        if !ok {
            return Err(self.err(
                &m.referenced,
                format!(
                    "invalid mode '{}': write 3 or 4 octal digits in quotes, e.g. \"0644\"",
                    m.value
                ),
            ));
        }
        Ok(u32::from_str_radix(&m.value, 8).expect("octal digits"))
    }

    pub(in crate::spec) fn owner(&self, o: &Spanned<String>) -> Result<(u64, u64), LocatedError> {
        // Linux ids are 32 bits, and 4294967295 is (uid_t)-1, "no change", never an owner.
        let id = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|v| *v != u32::MAX)
                .map(u64::from)
        };
        o.value
            .split_once(':')
            .and_then(|(u, g)| Some((id(u)?, id(g)?)))
            .ok_or_else(|| {
                self.err(
                    &o.referenced,
                    format!(
                        "invalid owner '{}': write numeric \"UID:GID\" below 4294967295, e.g. \"0:0\"",
                        o.value
                    ),
                )
            })
    }

    pub(in crate::spec) fn size(&self, s: &Spanned<SizeSpec>) -> Result<SizeBounds, LocatedError> {
        let (min, max) = match s.value {
            SizeSpec::Exact(b) => (Some(b.0), Some(b.0)),
            SizeSpec::Range(r) => (r.min.map(|b| b.0), r.max.map(|b| b.0)),
        };
        match (min, max) {
            (None, None) => Err(self.err(&s.referenced, "size needs min, max or both")),
            (Some(a), Some(b)) if a > b => Err(self.err(
                &s.referenced,
                format!("size min {a} is larger than max {b}"),
            )),
            _ => Ok(SizeBounds { min, max }),
        }
    }

    pub(in crate::spec) fn sha256(&self, s: &Spanned<String>) -> Result<Digest, LocatedError> {
        let hex = s.value.strip_prefix("sha256:").unwrap_or(&s.value);
        Digest::from_hex(hex).map_err(|_| {
            self.err(
                &s.referenced,
                format!(
                    "invalid sha256 '{}': expected 64 lowercase hex digits",
                    s.value
                ),
            )
        })
    }

    pub(in crate::spec) fn regex(
        &self,
        m: &Spanned<String>,
    ) -> Result<regex::bytes::Regex, LocatedError> {
        regex::bytes::Regex::new(&m.value).map_err(|e| {
            self.err(
                &m.referenced,
                format!("invalid regex: {}", crate::spec::last_line(&e.to_string())),
            )
        })
    }
}

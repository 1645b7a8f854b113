//! Strict loading: unknown keys, duplicate keys, wrong types, invalid values and specs that
//! check nothing are errors naming `file:line:col`.

use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::model::{self, FileType};
use super::{
    BaseSource, BootExpectation, Build, ChecksumsExpectation, Expectations,
    ExtensionImageExpectation, FileExpectation, GoldenFile, InitramfsExpectation, KeyMatch,
    ProvenanceExpectation, Redaction, ReportExpectation, ReportGolden, SignatureExpectation,
    SizeBounds, Spec, TreeExpectation, UkiExpectation, ValueMatch,
};
use crate::digest::Digest;
use crate::oci::platform::Platform;
use crate::reference::ImageRef;
use crate::talos::extensions::Requirement;

pub use crate::located::{read_text, LocatedError};

/// A spec file; `-` reads the spec from standard input, named `<stdin>` in errors, with its
/// relative paths (goldens, keys) taken from the working directory. Its files must lie inside
/// `repo` when given (`--repo`), else inside the repository it sits in
/// ([`crate::located::repo_root`]).
pub fn load_file(path: &Path, repo: Option<&Path>) -> Result<Spec, LocatedError> {
    let (path, text) = if path == Path::new("-") {
        let stdin = Path::new(STDIN);
        (stdin, crate::located::read_stdin(stdin, "spec")?)
    } else {
        (path, read_text(path, "spec")?)
    };
    load_str_within(path, &text, &crate::located::repo_root(path, repo))
}

/// What a spec read from standard input is called.
pub const STDIN: &str = "<stdin>";

/// A spec whose files (goldens, schematic, key) must lie inside `repo`: a fleet's specs inside
/// the fleet's repository, a bundled spec inside its bundle.
pub fn load_file_within(path: &Path, repo: &Path) -> Result<Spec, LocatedError> {
    load_str_within(path, &read_text(path, "spec")?, repo)
}

pub fn load_str(path: &Path, text: &str) -> Result<Spec, LocatedError> {
    load_str_within(path, text, &crate::located::repo_root(path, None))
}

fn load_str_within(path: &Path, text: &str, repo: &Path) -> Result<Spec, LocatedError> {
    let options =
        serde_saphyr::options! { strict_booleans: true, leading_zero_numbers_as_strings: true };
    let with_snippet = |mut e: LocatedError| {
        e.snippet = crate::located::snippet(text, path, e.line, e.column);
        e
    };
    let raw: model::Spec = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        with_snippet(LocatedError {
            file: path.to_path_buf(),
            line,
            column,
            message: crate::located::humane(&e.without_snippet().to_string()),
            snippet: None,
        })
    })?;
    let mut spec = Validator {
        file: path,
        repo: crate::located::absolute(repo),
    }
    .spec(raw, Digest::of(text.as_bytes()))
    .map_err(with_snippet)?;
    let files: Vec<String> = spec.expect.files.iter().map(|f| f.path.clone()).collect();
    spec.positions = super::Positions::of(text, &files, &spec.expect.absent);
    Ok(spec)
}

struct Validator<'a> {
    file: &'a Path,
    /// Every file the spec names must stay inside this directory.
    repo: PathBuf,
}

impl Validator<'_> {
    fn err(&self, at: &Location, message: impl Into<String>) -> LocatedError {
        LocatedError {
            file: self.file.to_path_buf(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
            snippet: None,
        }
    }

    fn spec(&self, raw: model::Spec, file_digest: Digest) -> Result<Spec, LocatedError> {
        let model::ApiVersion::V1 = raw.api_version;
        let name = &raw.name;
        // The name becomes a directory (evidence bundles, JUnit suites): `.` and `..` are not.
        let name_ok = !name.value.is_empty()
            && !name.value.bytes().all(|b| b == b'.')
            && name.value.len() <= 128
            && name.value.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !name_ok {
            return Err(self.err(
                &name.referenced,
                format!(
                    "invalid name '{}': use up to 128 lowercase letters, digits, '.', '_', '-' (not only dots)",
                    name.value.chars().take(128).collect::<String>()
                ),
            ));
        }
        let image: ImageRef =
            raw.image
                .value
                .parse()
                .map_err(|e: crate::reference::RefError| {
                    self.err(&raw.image.referenced, e.to_string())
                })?;
        let platform = raw
            .platform
            .as_ref()
            .map(|p| self.platform(p))
            .transpose()?;
        let digest = raw
            .digest
            .as_ref()
            .map(|d| {
                d.value
                    .parse::<Digest>()
                    .map_err(|e| self.err(&d.referenced, e.to_string()))
            })
            .transpose()?;
        let talos = match &raw.talos {
            Some(t) => Some(self.talos_version(t)?),
            None => None,
        };
        let expect = self.expect(&raw.expect)?;
        Ok(Spec {
            path: self.file.to_path_buf(),
            file_digest,
            name: name.value.clone(),
            image,
            platform,
            digest,
            build: match &raw.build {
                Some(b) => Some(self.build(b, talos.is_some())?),
                None => None,
            },
            talos,
            expect,
            positions: Default::default(),
        })
    }

    fn tree(&self, t: &Spanned<model::TreeExpect>) -> Result<TreeExpectation, LocatedError> {
        let v = &t.value;
        if v.golden.trim().is_empty() {
            return Err(self.err(&t.referenced, "tree.golden names no file"));
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        let mut redactions = Vec::new();
        for (name, r) in &v.redactions {
            let mut set = globset::GlobSetBuilder::new();
            for p in &r.paths {
                let g = globset::GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| self.err(&t.referenced, format!("redaction {name}: {e}")))?;
                set.add(g);
            }
            if r.fields.is_empty() || r.paths.is_empty() {
                return Err(self.err(
                    &t.referenced,
                    format!("redaction {name} needs paths and fields"),
                ));
            }
            redactions.push(Redaction {
                name: name.clone(),
                paths: set
                    .build()
                    .map_err(|e| self.err(&t.referenced, e.to_string()))?,
                fields: r.fields.clone(),
            });
        }
        Ok(TreeExpectation {
            golden: base.join(&v.golden),
            written: v.golden.clone(),
            repo: self.repo.clone(),
            redactions,
        })
    }

    fn image(&self, r: &Spanned<String>) -> Result<ImageRef, LocatedError> {
        r.value
            .parse()
            .map_err(|e: crate::reference::RefError| self.err(&r.referenced, e.to_string()))
    }

    fn build(&self, b: &Spanned<model::BuildSpec>, has_talos: bool) -> Result<Build, LocatedError> {
        let v = &b.value;
        if !has_talos {
            return Err(self.err(
                &b.referenced,
                "build needs the top-level `talos` version: it decides zstd (>= v1.8) or xz",
            ));
        }
        let arches = v.arch.value.to_vec();
        if arches.is_empty() {
            return Err(self.err(&v.arch.referenced, "build.arch names no architecture"));
        }
        if arches
            .iter()
            .enumerate()
            .any(|(i, a)| arches[..i].contains(a))
        {
            return Err(self.err(&v.arch.referenced, "build.arch names an architecture twice"));
        }
        let layout_ok = crate::image_path::normalize(&v.layout.replace("{arch}", "arm64"))
            .is_ok_and(|p| !p.is_empty());
        if !layout_ok {
            return Err(self.err(
                &b.referenced,
                format!(
                    "build.layout '{}' must be a path inside the image",
                    v.layout
                ),
            ));
        }
        for (k, val) in v.report.iter() {
            if k.is_empty() || k.contains(':') || k.contains('\n') || val.contains('\n') {
                return Err(self.err(&b.referenced, format!("build.report '{k}': keys need no ':' and neither keys nor values a newline")));
            }
        }
        let base = match (&v.base, &v.source) {
            (Some(b), None) => {
                let r = self.image(b)?;
                if let Some(why) = unpublished_installer(&r) {
                    return Err(self.err(&b.referenced, why));
                }
                BaseSource::Image(r)
            }
            (None, Some(src)) => self.factory_source(&src.value.factory)?,
            (Some(_), Some(src)) => {
                return Err(self.err(
                    &src.referenced,
                    "build has both `base` and `source`: name one place the kernel comes from",
                ))
            }
            (None, None) => {
                return Err(self.err(
                    &b.referenced,
                    "build needs `base` (an imager or installer image) or `source.factory`",
                ))
            }
        };
        Ok(Build {
            arches,
            base,
            extensions: v
                .extensions
                .iter()
                .map(|e| self.image(e))
                .collect::<Result<_, _>>()?,
            layout: v.layout.clone(),
            report: v.report.clone(),
            labels: v.labels.clone(),
            annotations: v.annotations.clone(),
            push: v.push.as_ref().map(|p| self.image(p)).transpose()?,
            strict: v.strict,
            signatures: v
                .signatures
                .as_ref()
                .map(|s| self.signature(s))
                .transpose()?,
            kernel_args: v.kernel_args.clone().unwrap_or_else(|| {
                super::COZYSTACK_KERNEL_ARGS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
            immutable_tags: match &v.immutable_tags {
                Some(r) => regex::Regex::new(&r.value).map_err(|e| {
                    self.err(
                        &r.referenced,
                        format!("invalid regex: {}", super::last_line(&e.to_string())),
                    )
                })?,
                None => regex::Regex::new(super::RELEASE_TAGS).expect("a valid regex"),
            },
        })
    }

    /// The schematic is read now, so a bad one is an error at load time, in its own file.
    fn factory_source(&self, f: &model::FactorySourceSpec) -> Result<BaseSource, LocatedError> {
        let factory = match &f.url {
            Some(u) => crate::factory::urls::Factory::parse(&u.value)
                .map_err(|e| self.err(&u.referenced, e.to_string()))?,
            None => crate::factory::urls::Factory::parse(crate::factory::urls::DEFAULT_FACTORY)
                .expect("the default factory URL parses"),
        };
        let dir = self.file.parent().unwrap_or(Path::new("."));
        let schematic = dir.join(&f.schematic.value);
        let in_spec = |e: LocatedError| {
            let mut err = self.err(
                &f.schematic.referenced,
                format!("source.factory.schematic: {e}"),
            );
            err.snippet = e.snippet;
            err
        };
        // Confined before it is read: an error quotes the schematic's lines, and a spec (a
        // fleet's, an evidence bundle's) must not make tdg quote /etc/shadow.
        crate::located::confine(&schematic, &self.repo).map_err(|m| {
            self.err(
                &f.schematic.referenced,
                format!("source.factory.schematic: {m}"),
            )
        })?;
        let text = read_text(&schematic, "schematic").map_err(in_spec)?;
        let s = crate::factory::schematic::Schematic::parse(&schematic, &text).map_err(in_spec)?;
        Ok(BaseSource::Factory {
            factory,
            schematic,
            schematic_id: s.id(),
            schematic_text: text,
        })
    }

    fn talos_version(&self, t: &Spanned<String>) -> Result<String, LocatedError> {
        crate::talos::version::SemVer::parse_tolerant(&t.value)
            .map_err(|m| self.err(&t.referenced, format!("invalid Talos version: {m}")))?;
        Ok(t.value.clone())
    }

    fn requirements(&self, list: &[Spanned<String>]) -> Result<Vec<Requirement>, LocatedError> {
        list.iter()
            .map(|r| {
                Requirement::parse(&r.value).map_err(|m| self.err(&r.referenced, m.to_string()))
            })
            .collect()
    }

    fn initramfs(
        &self,
        i: &model::InitramfsExpect,
        at: &Location,
    ) -> Result<InitramfsExpectation, LocatedError> {
        let bare = |n: &String| n.strip_prefix("ext-").unwrap_or(n).to_string();
        let mut out = InitramfsExpectation {
            compression: i.compression,
            arch: i.arch.map(Into::into),
            services: i
                .services
                .as_ref()
                .map(|s| crate::spec::LayerServicesExpectation {
                    present: s.present.iter().map(bare).collect(),
                    absent: s.absent.iter().map(bare).collect(),
                    wait_for_config: s
                        .wait_for_config
                        .as_ref()
                        .map(|w| w.iter().map(bare).collect()),
                }),
            ..Default::default()
        };
        if let Some(e) = &i.extensions {
            out.present = self.requirements(&e.present)?;
            out.absent = self.requirements(&e.absent)?;
            out.exact = e.exact.as_ref().map(|x| self.requirements(x)).transpose()?;
            for p in &out.present {
                if out
                    .absent
                    .iter()
                    .any(|a| a.name == p.name && a.version.is_none())
                {
                    return Err(self.err(
                        at,
                        format!("extension '{}' is expected both present and absent", p.name),
                    ));
                }
            }
        }
        if !out.checks_extensions()
            && out.compression.is_none()
            && out.services.is_none()
            && out.arch.is_none()
        {
            return Err(self.err(
                at,
                "initramfs checks nothing: give extensions, compression, services or arch",
            ));
        }
        Ok(out)
    }

    fn platform(&self, p: &Spanned<String>) -> Result<Platform, LocatedError> {
        p.value
            .parse()
            .map_err(|e: crate::oci::platform::PlatformError| {
                self.err(&p.referenced, e.to_string())
            })
    }

    fn path(&self, p: &str, at: &Location) -> Result<String, LocatedError> {
        if p.contains('\0') {
            return Err(self.err(
                at,
                format!("path {p:?} holds a NUL byte, which no file name can"),
            ));
        }
        if p.len() > 1 && p.ends_with('/') {
            return Err(self.err(
                at,
                format!("path '{p}' ends with '/': write it without (a directory is `type: dir`)"),
            ));
        }
        let norm = crate::image_path::normalize(p).map_err(|e| self.err(at, e.to_string()))?;
        if norm.is_empty() {
            return Err(self.err(
                at,
                format!("path '{p}' names the image root; name a path inside it"),
            ));
        }
        Ok(norm)
    }

    fn expect(&self, raw: &Spanned<model::Expect>) -> Result<Expectations, LocatedError> {
        let e = &raw.value;
        let platforms = match &e.platforms {
            Some(list) => Some(
                list.iter()
                    .map(|p| self.platform(p))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let mut labels = Vec::new();
        for (k, v) in e.labels.iter().flatten() {
            labels.push(KeyMatch {
                key: k.clone(),
                want: ValueMatch::parse(&v.value).map_err(|m| self.err(&v.referenced, m))?,
            });
        }
        let (files, absent) = self.files_and_absent(&e.files, &e.absent)?;
        let exp = Expectations {
            platforms,
            labels,
            files,
            absent,
            extension: e
                .extension
                .as_ref()
                .map(|x| self.extension(x))
                .transpose()?,
            tree: e.tree.as_ref().map(|t| self.tree(t)).transpose()?,
            boot: e.boot.as_ref().map(|b| self.boot(b)).transpose()?,
            signature: e
                .signature
                .as_ref()
                .map(|s| self.signature(s))
                .transpose()?,
            provenance: e
                .provenance
                .as_ref()
                .map(|p| self.provenance(p))
                .transpose()?,
        };
        if exp.is_empty() {
            let keys: Vec<&str> = exp.sections().iter().map(|(k, _)| *k).collect();
            return Err(self.err(
                &raw.referenced,
                format!(
                    "the spec checks nothing: give expect at least one of {}",
                    keys.join(", ")
                ),
            ));
        }
        Ok(exp)
    }

    /// `files` (each path once) and `absent` (none of them expected present).
    fn files_and_absent(
        &self,
        raw_files: &[Spanned<model::FileExpect>],
        raw_absent: &[Spanned<String>],
    ) -> Result<(Vec<FileExpectation>, Vec<String>), LocatedError> {
        let mut files: Vec<FileExpectation> = Vec::new();
        for f in raw_files {
            let fe = self.file(f)?;
            if files.iter().any(|o| o.path == fe.path) {
                return Err(self.err(
                    &f.referenced,
                    format!("'{}' is listed twice under files", fe.path),
                ));
            }
            files.push(fe);
        }
        let mut absent = Vec::new();
        for a in raw_absent {
            let p = self.path(&a.value, &a.referenced)?;
            if files
                .iter()
                .any(|f| f.path == p || f.path.starts_with(&format!("{p}/")))
            {
                return Err(self.err(
                    &a.referenced,
                    format!("'{p}' is expected both present (files) and absent"),
                ));
            }
            absent.push(p);
        }
        Ok((files, absent))
    }

    fn extension(
        &self,
        x: &Spanned<model::ExtensionImageExpect>,
    ) -> Result<ExtensionImageExpectation, LocatedError> {
        let talos = x
            .value
            .talos
            .as_ref()
            .map(|t| self.talos_version(t))
            .transpose()?;
        if x.value.name.trim().is_empty() {
            return Err(self.err(&x.referenced, "extension needs a name"));
        }
        Ok(ExtensionImageExpectation {
            name: x.value.name.clone(),
            version: x.value.version.clone(),
            talos,
            strict: x.value.strict,
        })
    }

    fn provenance(
        &self,
        p: &Spanned<model::ProvenanceExpect>,
    ) -> Result<ProvenanceExpectation, LocatedError> {
        let (v, at) = (&p.value, &p.referenced);
        let m = |what: &str, s: &str| {
            ValueMatch::parse(s).map_err(|e| self.err(at, format!("provenance.{what}: {e}")))
        };
        // Where GitHub's build type (actions.github.io/buildtypes/workflow/v1) puts each fact.
        let mut fields = Vec::new();
        for (what, pointer, value) in [
            (
                "repository",
                "/buildDefinition/externalParameters/workflow/repository",
                &v.repository,
            ),
            (
                "ref",
                "/buildDefinition/externalParameters/workflow/ref",
                &v.r#ref,
            ),
            (
                "commit",
                "/buildDefinition/resolvedDependencies/0/digest/gitCommit",
                &v.commit,
            ),
            (
                "workflow",
                "/buildDefinition/externalParameters/workflow/path",
                &v.workflow,
            ),
            ("builder_id", "/runDetails/builder/id", &v.builder_id),
        ] {
            if let Some(s) = value {
                fields.push((what, pointer, m(what, s)?));
            }
        }
        let signer = match (&v.key, &v.identity) {
            (Some(key), None) => self.signer_key(key, v.tlog, at, "provenance")?,
            (None, Some(identity)) => {
                if v.tlog.is_some() {
                    return Err(self.err(
                        at,
                        "provenance.tlog applies to a key; a keyless attestation is always logged",
                    ));
                }
                SignatureExpectation::Keyless {
                    identity: m("identity", identity)?,
                    issuer: v
                        .issuer
                        .clone()
                        .unwrap_or_else(|| super::GITHUB_ACTIONS_ISSUER.to_string()),
                }
            }
            _ => {
                return Err(self.err(
                    at,
                    "provenance needs identity (a keyless signer) or key: FILE (a cosign public key), not both",
                ))
            }
        };
        Ok(ProvenanceExpectation { signer, fields })
    }

    fn signer_key(
        &self,
        key: &str,
        tlog: Option<bool>,
        at: &Location,
        what: &str,
    ) -> Result<SignatureExpectation, LocatedError> {
        if key.trim().is_empty() {
            return Err(self.err(at, format!("{what}.key names no file")));
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        Ok(SignatureExpectation::Key {
            key: base.join(key),
            written: key.to_string(),
            tlog: tlog.unwrap_or(true),
        })
    }

    fn signature(
        &self,
        s: &Spanned<model::SignatureSpec>,
    ) -> Result<SignatureExpectation, LocatedError> {
        let at = &s.referenced;
        let v = match &s.value {
            model::SignatureSpec::Preset(model::SignerPreset::Siderolabs) => {
                return Ok(SignatureExpectation::Keyless {
                    identity: ValueMatch::parse(super::SIDEROLABS_IDENTITY)
                        .map_err(|m| self.err(at, m))?,
                    issuer: super::SIDEROLABS_ISSUER.to_string(),
                })
            }
            model::SignatureSpec::Signer(v) => v,
        };
        match (&v.key, &v.identity, &v.issuer) {
            (Some(key), None, None) if !key.trim().is_empty() => {
                self.signer_key(key, v.tlog, at, "signature")
            }
            (None, Some(identity), Some(issuer)) if !issuer.trim().is_empty() => {
                if v.tlog.is_some() {
                    return Err(self.err(
                        at,
                        "signature.tlog applies to a key; a keyless signature is always logged",
                    ));
                }
                Ok(SignatureExpectation::Keyless {
                    identity: ValueMatch::parse(identity)
                        .map_err(|m| self.err(at, format!("signature.identity: {m}")))?,
                    issuer: issuer.clone(),
                })
            }
            _ => Err(self.err(
                at,
                "signature needs key: FILE (a cosign public key), or identity and issuer (a keyless signer), not both",
            )),
        }
    }

    fn boot(&self, b: &Spanned<model::BootExpect>) -> Result<BootExpectation, LocatedError> {
        let (v, at) = (&b.value, &b.referenced);
        let timeout = match &v.timeout {
            Some(t) => humantime::parse_duration(t)
                .map_err(|e| self.err(at, format!("boot.timeout '{t}': {e}")))?,
            None => super::DEFAULT_TIMEOUT,
        };
        let until = v.until.as_deref().unwrap_or(super::DEFAULT_UNTIL);
        let until = regex::Regex::new(until).map_err(|e| {
            self.err(
                at,
                format!(
                    "boot.until: invalid regex: {}",
                    super::last_line(&e.to_string())
                ),
            )
        })?;
        let extensions = match &v.extensions {
            Some(x) => {
                let i = model::InitramfsExpect {
                    extensions: Some(model::ExtensionsExpect {
                        present: x.present.clone(),
                        absent: x.absent.clone(),
                        exact: x.exact.clone(),
                    }),
                    compression: None,
                    services: None,
                    arch: None,
                };
                Some(self.initramfs(&i, at)?)
            }
            None => None,
        };
        let path = |p: &Option<String>, default: &str| -> Result<String, LocatedError> {
            let p = p.clone().unwrap_or_else(|| default.to_string());
            crate::image_path::normalize(&p.replace("{arch}", "arm64"))
                .map_err(|e| self.err(at, e.to_string()))?;
            Ok(p)
        };
        let console = v.console.as_ref();
        use crate::image_path::{ASSETS, INITRD, KERNEL};
        Ok(BootExpectation {
            timeout,
            until,
            append: v.append.clone(),
            kernel: path(&v.kernel, &format!("{ASSETS}/{KERNEL}"))?,
            initrd: path(&v.initrd, &format!("{ASSETS}/{INITRD}"))?,
            extensions,
            console_contains: console.map(|c| c.contains.clone()).unwrap_or_default(),
            console_lacks: console.map(|c| c.lacks.clone()).unwrap_or_default(),
            services: v
                .services
                .as_ref()
                .map(|x| self.services(x, at))
                .transpose()?,
        })
    }

    fn services(
        &self,
        x: &model::ServicesExpect,
        at: &Location,
    ) -> Result<super::ServicesExpectation, LocatedError> {
        let all = x
            .running
            .iter()
            .chain(&x.waiting)
            .chain(&x.failed)
            .chain(&x.absent);
        if all.clone().next().is_none() {
            return Err(self.err(
                at,
                "boot.services names no service: give running, waiting, failed or absent",
            ));
        }
        for (i, n) in all.clone().enumerate() {
            if n.is_empty() || n.contains(char::is_whitespace) || n.contains(['[', ']', '(', ')']) {
                return Err(self.err(at, format!("boot.services: '{n}' is not a service name")));
            }
            if all.clone().take(i).any(|m| m == n) {
                return Err(self.err(at, format!("boot.services names {n} twice")));
            }
        }
        Ok(super::ServicesExpectation {
            running: x.running.clone(),
            waiting: x.waiting.clone(),
            failed: x.failed.clone(),
            absent: x.absent.clone(),
        })
    }

    fn file(&self, f: &Spanned<model::FileExpect>) -> Result<FileExpectation, LocatedError> {
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
        let content_checks = !v.contains.is_empty()
            || !matches.is_empty()
            || !v.lacks.is_empty()
            || !lacks_matching.is_empty()
            || sha256.is_some()
            || size.is_some()
            || v.kernel.is_some()
            || uki.is_some()
            || initramfs.is_some()
            || checksums.is_some()
            || report.is_some();
        if content_checks && matches!(v.kind, Some(FileType::Dir | FileType::Symlink)) {
            return Err(self.err(
                at,
                format!(
                    "'{path}': size, sha256, contains, matches and the Talos checks apply to files, not to a {}",
                    if v.kind == Some(FileType::Dir) {
                        "dir"
                    } else {
                        "symlink"
                    }
                ),
            ));
        }
        Ok(FileExpectation {
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
        })
    }

    fn mode(&self, m: &Spanned<String>) -> Result<u32, LocatedError> {
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

    fn owner(&self, o: &Spanned<String>) -> Result<(u64, u64), LocatedError> {
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

    fn size(&self, s: &Spanned<model::SizeSpec>) -> Result<SizeBounds, LocatedError> {
        let (min, max) = match s.value {
            model::SizeSpec::Exact(b) => (Some(b.0), Some(b.0)),
            model::SizeSpec::Range(r) => (r.min.map(|b| b.0), r.max.map(|b| b.0)),
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

    fn sha256(&self, s: &Spanned<String>) -> Result<Digest, LocatedError> {
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

    fn regex(&self, m: &Spanned<String>) -> Result<regex::bytes::Regex, LocatedError> {
        regex::bytes::Regex::new(&m.value).map_err(|e| {
            self.err(
                &m.referenced,
                format!("invalid regex: {}", super::last_line(&e.to_string())),
            )
        })
    }

    fn report(
        &self,
        r: &model::ReportExpect,
        at: &Location,
    ) -> Result<ReportExpectation, LocatedError> {
        let mut fields = Vec::new();
        for (k, val) in &r.fields {
            fields.push(KeyMatch {
                key: k.clone(),
                want: ValueMatch::parse(&val.value).map_err(|m| self.err(&val.referenced, m))?,
            });
        }
        if fields.is_empty() && r.revision.is_none() && r.golden.is_none() {
            return Err(self.err(at, "report checks nothing: give fields, revision or golden"));
        }
        let base = self.file.parent().unwrap_or(Path::new("."));
        let golden = r.golden.as_ref().map(|g| ReportGolden {
            file: GoldenFile {
                path: base.join(g),
                written: g.clone(),
                repo: self.repo.clone(),
            },
            redact: r.redact.clone(),
        });
        Ok(ReportExpectation {
            fields,
            revision: r.revision.clone(),
            golden,
        })
    }
}

/// Talos stops publishing `ghcr.io/siderolabs/installer` with 1.14: its installers come from
/// the Image Factory, and `installer-base` is the base the factory builds them on.
fn unpublished_installer(r: &ImageRef) -> Option<String> {
    let crate::reference::Location::Registry {
        registry,
        repository,
    } = &r.location
    else {
        return None;
    };
    if registry != "ghcr.io" || repository != "siderolabs/installer" {
        return None;
    }
    let v = crate::talos::version::SemVer::parse_tolerant(r.tag.as_deref()?).ok()?;
    (v.core() >= crate::talos::version::SemVer::new(1, 14, 0)).then(|| {
        format!(
            "ghcr.io/siderolabs/installer is not published for Talos {} (from 1.14): use the imager \
             (ghcr.io/siderolabs/imager), ghcr.io/siderolabs/installer-base, or the Image Factory \
             (build.source.factory)",
            r.tag.as_deref().unwrap_or_default()
        )
    })
}

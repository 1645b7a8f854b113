//! Strict loading: unknown keys, duplicate keys, wrong types, invalid values and specs that
//! check nothing are errors naming `file:line:col`.

use std::path::Path;

use serde_saphyr::Spanned;

use super::model::{self};
use super::validator::Validator;
use super::{BaseSource, Build, Spec};
use crate::digest::Digest;
use crate::reference::ImageRef;

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

impl Validator<'_> {
    pub(in crate::spec) fn spec(
        &self,
        raw: model::Spec,
        file_digest: Digest,
    ) -> Result<Spec, LocatedError> {
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

    pub(in crate::spec) fn image(&self, r: &Spanned<String>) -> Result<ImageRef, LocatedError> {
        r.value
            .parse()
            .map_err(|e: crate::reference::RefError| self.err(&r.referenced, e.to_string()))
    }

    pub(in crate::spec) fn build(
        &self,
        b: &Spanned<model::BuildSpec>,
        has_talos: bool,
    ) -> Result<Build, LocatedError> {
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
    pub(in crate::spec) fn factory_source(
        &self,
        f: &model::FactorySourceSpec,
    ) -> Result<BaseSource, LocatedError> {
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

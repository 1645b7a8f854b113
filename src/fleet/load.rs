//! Fleet files: every repository of one release, read strictly; errors name file:line:col.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::digest::Digest;
use crate::located::{read_text, LocatedError};
use crate::oci::platform::Platform;
use crate::reference::ImageRef;
use crate::spec::Spec;

pub const DEFAULT_REVISION_LABEL: &str = crate::talos::report::REVISION_LABEL;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    #[serde(rename = "apiVersion")]
    api_version: Spanned<String>,
    kind: Spanned<String>,
    name: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    revision_label: Option<String>,
    components: Spanned<Vec<RawComponent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    image: Spanned<String>,
    #[serde(default)]
    spec: Option<Spanned<String>>,
    #[serde(default)]
    platform: Option<Spanned<String>>,
}

pub struct Fleet {
    pub path: PathBuf,
    pub file_digest: Digest,
    pub name: String,
    pub revision_label: String,
    pub components: Vec<Component>,
}

pub struct Component {
    /// As written; the tag comes from here, `--tag` or the fleet's `tag`.
    pub image: ImageRef,
    /// The image names its own tag or digest, so neither `--tag` nor the fleet's applies.
    pub pinned: bool,
    pub spec: Option<Spec>,
    pub platform: Option<Platform>,
}

impl Fleet {
    /// The reference audited for `c`: its own tag, else `tag`, else the fleet's.
    pub fn reference(&self, c: &Component, tag: Option<&str>) -> Option<ImageRef> {
        if c.pinned {
            return Some(c.image.clone());
        }
        let mut r = c.image.clone();
        r.tag = Some(tag?.to_string());
        Some(r)
    }
}

/// Reads a fleet file; component specs are loaded too (relative to the fleet file), so a typo
/// in any of them fails before anything is fetched. Their files must lie inside `repo` when
/// given (`--repo`), else inside the fleet file's repository.
pub fn load_file(
    path: &Path,
    repo: Option<&Path>,
) -> Result<(Fleet, Option<String>), LocatedError> {
    let text = read_text(path, "fleet")?;
    let at = |l: &serde_saphyr::Location, m: String| LocatedError {
        file: path.to_path_buf(),
        line: l.line(),
        column: l.column(),
        message: m,
        snippet: None,
    };
    let raw: RawFleet = serde_saphyr::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        LocatedError {
            file: path.to_path_buf(),
            line,
            column,
            message: crate::located::humane(&e.without_snippet().to_string()),
            snippet: crate::located::snippet(&text, path, line, column),
        }
    })?;
    if raw.api_version.value != "tdg/v1" {
        return Err(at(
            &raw.api_version.referenced,
            format!("apiVersion must be tdg/v1, not {:?}", raw.api_version.value),
        ));
    }
    if raw.kind.value != "Fleet" {
        return Err(at(
            &raw.kind.referenced,
            format!("kind must be Fleet, not {:?}", raw.kind.value),
        ));
    }
    if raw.components.value.is_empty() {
        return Err(at(&raw.components.referenced, "components is empty".into()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let repo = crate::located::repo_root(path, repo);
    let mut components = Vec::new();
    for c in raw.components.value {
        let image: ImageRef = c
            .image
            .value
            .parse()
            .map_err(|e| at(&c.image.referenced, format!("{e}")))?;
        // As written: a reference without a tag parses to `latest`, which is not this one's.
        let last = c.image.value.rsplit('/').next().unwrap_or("");
        let pinned = last.contains(':') || c.image.value.contains('@');
        // A fleet's specs stay inside its repository: a fleet file must not make tdg read
        // (and quote in an error) a file elsewhere.
        let spec = match c.spec {
            Some(s) => {
                let file = dir.join(&s.value);
                crate::located::confine(&file, &repo)
                    .map_err(|m| at(&s.referenced, format!("spec: {m}")))?;
                Some(crate::spec::load_file_within(&file, &repo)?)
            }
            None => None,
        };
        let platform = c
            .platform
            .map(|p| {
                p.value
                    .parse()
                    .map_err(|e| at(&p.referenced, format!("platform: {e}")))
            })
            .transpose()?;
        components.push(Component {
            image,
            pinned,
            spec,
            platform,
        });
    }
    Ok((
        Fleet {
            path: path.to_path_buf(),
            file_digest: Digest::of(text.as_bytes()),
            name: raw.name,
            revision_label: raw
                .revision_label
                .unwrap_or_else(|| DEFAULT_REVISION_LABEL.to_string()),
            components,
        },
        raw.tag,
    ))
}

//! Image references: `registry/repo:tag`, `...@sha256:...`, `...:tag@sha256:...`, Docker Hub short
//! names, and `oci:<dir>[:tag|@sha256:...]` (an OCI image layout, skopeo's spelling).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;

pub const DOCKER_HUB: &str = "docker.io";

/// Whether a registry host is this machine: a registry there is spoken to in plain HTTP, as
/// Docker does.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The two image archive formats, by their reference prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    Oci,
    Docker,
}

impl ArchiveKind {
    pub fn prefix(self) -> &'static str {
        match self {
            ArchiveKind::Oci => "oci-archive",
            ArchiveKind::Docker => "docker-archive",
        }
    }
}

/// Where an image lives and which one it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    pub location: Location,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A registry host (with optional port) and a repository path.
    Registry {
        registry: String,
        repository: String,
    },
    /// An OCI image layout directory.
    Layout { dir: PathBuf },
    /// An `oci-archive:` or `docker-archive:` tar file.
    Archive { kind: ArchiveKind, file: PathBuf },
}

#[derive(Debug, thiserror::Error)]
#[error("invalid image reference '{input}': {reason}")]
pub struct RefError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> RefError {
    RefError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

impl ImageRef {
    /// The tag or digest to ask a registry for: the digest wins when both are given, because a
    /// pinned reference must not follow a moved tag.
    pub fn registry_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    pub fn registry(&self) -> Option<&str> {
        match &self.location {
            Location::Registry { registry, .. } => Some(registry),
            Location::Layout { .. } | Location::Archive { .. } => None,
        }
    }
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_repository(repo: &str) -> bool {
    !repo.is_empty()
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
                })
                && part.as_bytes()[0].is_ascii_alphanumeric()
                && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
        })
}

/// A first path component names a registry when it looks like a host: it has a dot or a port,
/// or is `localhost` (the rule Docker uses).
fn looks_like_host(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

impl FromStr for ImageRef {
    type Err = RefError;

    fn from_str(input: &str) -> Result<Self, RefError> {
        if let Some(rest) = input.strip_prefix("oci:") {
            return parse_layout(input, rest);
        }
        for kind in [ArchiveKind::Oci, ArchiveKind::Docker] {
            if let Some(rest) = input.strip_prefix(&format!("{}:", kind.prefix())) {
                return parse_archive(input, kind, rest);
            }
        }
        // A local path must never become a Docker Hub name and a lookup on the network.
        if looks_local(input) {
            return Err(err(
                input,
                "looks like a local path; name it as oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REF]",
            ));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (
                n,
                Some(d.parse::<Digest>().map_err(|e| err(input, e.to_string()))?),
            ),
            None => (input, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(err(input, format!("'{t}' is not a valid tag")));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if looks_like_host(first) => (first.to_string(), rest.to_string()),
            Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{name}")),
        };
        if registry.is_empty() || registry.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(err(input, "empty or malformed registry host"));
        }
        if !valid_repository(&repository) {
            return Err(err(input, format!("'{repository}' is not a valid repository name (lowercase letters, digits, '.', '_', '-', '/')")));
        }
        Ok(ImageRef {
            location: Location::Registry {
                registry,
                repository,
            },
            tag: tag.map(str::to_string).or(if digest.is_none() {
                Some("latest".into())
            } else {
                None
            }),
            digest,
        })
    }
}

/// `./x`, `../x`, `/x`, `~/x`, or a name ending like an archive (`x.tar`, `x.tar.gz`).
fn looks_local(input: &str) -> bool {
    let lower = input.to_ascii_lowercase();
    input.starts_with(['.', '/', '~'])
        || [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.xz"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// skopeo splits the file from the reference at the first `:`; for `docker-archive:` the
/// rest is a `name:tag` from the archive's `RepoTags`, for `oci-archive:` a tag.
fn parse_archive(input: &str, kind: ArchiveKind, rest: &str) -> Result<ImageRef, RefError> {
    let (file, tag) = match rest.split_once(':') {
        Some((f, t)) => (f, Some(t.to_string())),
        None => (rest, None),
    };
    if file.is_empty() {
        return Err(err(
            input,
            format!("missing file after '{}:'", kind.prefix()),
        ));
    }
    if let Some(t) = &tag {
        let ok = match kind {
            ArchiveKind::Oci => valid_tag(t),
            ArchiveKind::Docker => {
                !t.is_empty() && t.len() <= 255 && !t.contains(char::is_whitespace)
            }
        };
        if !ok {
            return Err(err(
                input,
                format!("'{t}' is not a valid reference in the archive"),
            ));
        }
    }
    Ok(ImageRef {
        location: Location::Archive {
            kind,
            file: PathBuf::from(file),
        },
        tag,
        digest: None,
    })
}

fn parse_layout(input: &str, rest: &str) -> Result<ImageRef, RefError> {
    // skopeo splits the layout path from the reference at the first ':'.
    let (dir, tag, digest) = if let Some((dir, d)) = rest.split_once('@') {
        (
            dir,
            None,
            Some(d.parse::<Digest>().map_err(|e| err(input, e.to_string()))?),
        )
    } else if let Some((dir, tag)) = rest.split_once(':') {
        if !valid_tag(tag) {
            return Err(err(input, format!("'{tag}' is not a valid tag")));
        }
        (dir, Some(tag.to_string()), None)
    } else {
        (rest, None, None)
    };
    if dir.is_empty() {
        return Err(err(input, "missing layout directory after 'oci:'"));
    }
    Ok(ImageRef {
        location: Location::Layout {
            dir: PathBuf::from(dir),
        },
        tag,
        digest,
    })
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Registry {
                registry,
                repository,
            } => write!(f, "{registry}/{repository}")?,
            Location::Layout { dir } => write!(f, "oci:{}", dir.display())?,
            Location::Archive { kind, file } => write!(f, "{}:{}", kind.prefix(), file.display())?,
        }
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r: ImageRef = s.parse().unwrap();
        match r.location {
            Location::Registry {
                registry,
                repository,
            } => (registry, repository, r.tag, r.digest.map(|d| d.to_string())),
            _ => panic!("not a registry ref"),
        }
    }

    const D: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn archives_and_local_paths() {
        let r: ImageRef = "docker-archive:/tmp/x.tar:ghcr.io/a/b:v1".parse().unwrap();
        assert_eq!(r.tag.as_deref(), Some("ghcr.io/a/b:v1"));
        assert_eq!(r.to_string(), "docker-archive:/tmp/x.tar:ghcr.io/a/b:v1");
        let r: ImageRef = "oci-archive:y.tar:t".parse().unwrap();
        assert!(matches!(
            r.location,
            Location::Archive {
                kind: ArchiveKind::Oci,
                ..
            }
        ));
        assert!("oci-archive:y.tar:Bad Tag".parse::<ImageRef>().is_err());
        assert!("docker-archive:".parse::<ImageRef>().is_err());
        // Paths that are no known form never become docker.io names.
        for p in [
            "good.tar",
            "./x",
            "../x",
            "/abs/dir",
            "~/img.tar.gz",
            "IMG.TAR",
        ] {
            let e = p.parse::<ImageRef>().unwrap_err();
            assert!(e.reason.contains("looks like a local path"), "{p}: {e}");
        }
        assert!("busybox".parse::<ImageRef>().is_ok());
    }

    #[test]
    fn registry_forms() {
        assert_eq!(
            reg("ghcr.io/urmanac/x:v1.11.5"),
            (
                "ghcr.io".into(),
                "urmanac/x".into(),
                Some("v1.11.5".into()),
                None
            )
        );
        assert_eq!(
            reg(&format!("ghcr.io/a/b@{D}")),
            ("ghcr.io".into(), "a/b".into(), None, Some(D.into()))
        );
        assert_eq!(
            reg(&format!("ghcr.io/a/b:t@{D}")),
            (
                "ghcr.io".into(),
                "a/b".into(),
                Some("t".into()),
                Some(D.into())
            )
        );
        assert_eq!(
            reg("127.0.0.1:5000/a/b:t"),
            (
                "127.0.0.1:5000".into(),
                "a/b".into(),
                Some("t".into()),
                None
            )
        );
        assert_eq!(
            reg("localhost/a"),
            ("localhost".into(), "a".into(), Some("latest".into()), None)
        );
    }

    #[test]
    fn docker_hub_short_names() {
        assert_eq!(
            reg("alpine"),
            (
                "docker.io".into(),
                "library/alpine".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            reg("alpine:3.20"),
            (
                "docker.io".into(),
                "library/alpine".into(),
                Some("3.20".into()),
                None
            )
        );
        assert_eq!(
            reg("user/repo:x"),
            (
                "docker.io".into(),
                "user/repo".into(),
                Some("x".into()),
                None
            )
        );
    }

    #[test]
    fn layout_forms() {
        let r: ImageRef = "oci:/tmp/lay:v1".parse().unwrap();
        assert_eq!(
            r.location,
            Location::Layout {
                dir: "/tmp/lay".into()
            }
        );
        assert_eq!(r.tag.as_deref(), Some("v1"));
        let r: ImageRef = "oci:rel/dir".parse().unwrap();
        assert_eq!(r.tag, None);
        let r: ImageRef = format!("oci:/x@{D}").parse().unwrap();
        assert_eq!(r.digest.as_ref().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("oci:/x@{D}"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "ghcr.io/A/b",
            "ghcr.io/a/b:",
            "ghcr.io/a/b@sha256:xyz",
            "ghcr.io//b",
            "oci:",
            "a/b:t t",
            "ghcr.io/a/b:-x",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad} should be rejected");
        }
    }
}

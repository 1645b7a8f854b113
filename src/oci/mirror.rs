//! Mirrors: a rewrite of a registry host to another registry (`http://` means plain HTTP) or to
//! a root of OCI layouts, where `host/org/name:tag` is looked up as `oci:<root>/org/name:tag`.
//! Given as `--mirror HOST=URL` (repeatable) and `TDG_MIRROR` (comma-separated). A registry
//! endpoint also carries how long the registry may take (`--read-timeout`, `--request-timeout`).

use std::path::PathBuf;

use super::distribution::Timeouts;
use crate::reference::{is_loopback, ImageRef, Location};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MirrorTarget {
    Registry {
        host: String,
        prefix: String,
        plain_http: bool,
    },
    Layouts {
        root: PathBuf,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Mirrors {
    rules: Vec<(String, MirrorTarget)>,
    /// How long any registry reached through these may take.
    pub timeouts: Timeouts,
}

/// Where the bytes of one image are actually read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Registry {
        host: String,
        repository: String,
        plain_http: bool,
        timeouts: Timeouts,
    },
    Layout {
        dir: PathBuf,
    },
    Archive {
        kind: super::archive::Kind,
        file: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("invalid mirror '{0}': expected HOST=URL, e.g. ghcr.io=http://127.0.0.1:5000 or ghcr.io=oci:/srv/layouts")]
pub struct MirrorError(pub String);

impl Mirrors {
    /// Rules from `TDG_MIRROR` first, then flags; a later rule for the same host wins, so a flag
    /// overrides the environment.
    pub fn parse<'a>(
        env: Option<&'a str>,
        flags: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, MirrorError> {
        let mut m = Mirrors::default();
        let from_env = env
            .into_iter()
            .flat_map(|e| e.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty());
        for rule in from_env.chain(flags) {
            let (host, target) = parse_rule(rule)?;
            m.rules.retain(|(h, _)| h != &host);
            m.rules.push((host, target));
        }
        Ok(m)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The endpoint for an image, after mirrors. A registry on loopback is spoken to in plain
    /// HTTP, as Docker does; every other registry needs TLS unless a mirror says `http://`.
    pub fn endpoint(&self, image: &ImageRef) -> Endpoint {
        match &image.location {
            Location::Layout { dir } => Endpoint::Layout { dir: dir.clone() },
            Location::Archive { kind, file } => Endpoint::Archive {
                kind: *kind,
                file: file.clone(),
            },
            Location::Registry {
                registry,
                repository,
            } => match self.rules.iter().find(|(h, _)| h == registry) {
                Some((
                    _,
                    MirrorTarget::Registry {
                        host,
                        prefix,
                        plain_http,
                    },
                )) => Endpoint::Registry {
                    host: host.clone(),
                    repository: if prefix.is_empty() {
                        repository.clone()
                    } else {
                        format!("{prefix}/{repository}")
                    },
                    plain_http: *plain_http,
                    timeouts: self.timeouts,
                },
                Some((_, MirrorTarget::Layouts { root })) => Endpoint::Layout {
                    dir: root.join(repository),
                },
                None => Endpoint::Registry {
                    host: registry.clone(),
                    repository: repository.clone(),
                    plain_http: is_loopback(registry),
                    timeouts: self.timeouts,
                },
            },
        }
    }
}
fn parse_rule(rule: &str) -> Result<(String, MirrorTarget), MirrorError> {
    let bad = || MirrorError(rule.to_string());
    let (host, url) = rule.split_once('=').ok_or_else(bad)?;
    let (host, url) = (host.trim(), url.trim());
    if host.is_empty() || host.contains('/') || url.is_empty() {
        return Err(bad());
    }
    let target = if let Some(root) = url.strip_prefix("oci:") {
        if root.is_empty() {
            return Err(bad());
        }
        MirrorTarget::Layouts {
            root: PathBuf::from(root),
        }
    } else {
        let (plain_http, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => (false, url),
        };
        let rest = rest.trim_end_matches('/');
        let (mhost, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if mhost.is_empty() {
            return Err(bad());
        }
        MirrorTarget::Registry {
            host: mhost.to_string(),
            prefix: prefix.to_string(),
            plain_http,
        }
    };
    Ok((host.to_string(), target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_and_layout_mirrors() {
        let m = Mirrors::parse(
            Some("ghcr.io=https://mirror.example/cache, quay.io=oci:/srv/l"),
            ["ghcr.io=http://127.0.0.1:5000"],
        )
        .unwrap();
        let r: ImageRef = "ghcr.io/siderolabs/spin:v0.21.0".parse().unwrap();
        assert_eq!(
            m.endpoint(&r),
            Endpoint::Registry {
                host: "127.0.0.1:5000".into(),
                repository: "siderolabs/spin".into(),
                plain_http: true,
                timeouts: Timeouts::default(),
            }
        );
        let q: ImageRef = "quay.io/a/b:c".parse().unwrap();
        assert_eq!(
            m.endpoint(&q),
            Endpoint::Layout {
                dir: "/srv/l/a/b".into()
            }
        );
        let m2 = Mirrors::parse(Some("ghcr.io=https://mirror.example/cache"), []).unwrap();
        assert_eq!(
            m2.endpoint(&r),
            Endpoint::Registry {
                host: "mirror.example".into(),
                repository: "cache/siderolabs/spin".into(),
                plain_http: false,
                timeouts: Timeouts::default(),
            }
        );
    }

    #[test]
    fn loopback_is_plain_http_and_others_are_tls() {
        let m = Mirrors::default();
        let ep = |s: &str| m.endpoint(&s.parse().unwrap());
        assert!(matches!(
            ep("127.0.0.1:5000/a:b"),
            Endpoint::Registry {
                plain_http: true,
                ..
            }
        ));
        assert!(matches!(
            ep("localhost:5000/a:b"),
            Endpoint::Registry {
                plain_http: true,
                ..
            }
        ));
        assert!(matches!(
            ep("ghcr.io/a:b"),
            Endpoint::Registry {
                plain_http: false,
                ..
            }
        ));
    }

    #[test]
    fn rejects_malformed_rules() {
        for bad in [
            "ghcr.io",
            "=http://x",
            "ghcr.io=",
            "ghcr.io=oci:",
            "gh/cr=http://x",
        ] {
            assert!(Mirrors::parse(None, [bad]).is_err(), "{bad}");
        }
    }
}

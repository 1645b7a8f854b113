//! Versions and constraints as Talos writes them (hashicorp go-version syntax): `v1.11.5`,
//! `1.88.1`, `>= v1.0.0`, `>= v1.11.0, < v1.12.0`, `~> 1.2`. A leading `v` is optional and
//! missing segments are zero.

use std::fmt;

use semver::Version;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("'{0}' is not a version")]
    NotAVersion(String),
    #[error("'{text}' is not a version: {detail}")]
    Invalid { text: String, detail: String },
    #[error("'{0}': missing version after operator")]
    MissingVersion(String),
    #[error("'{constraint}': {inner}")]
    InConstraint {
        constraint: String,
        inner: Box<VersionError>,
    },
}

pub fn parse_version(s: &str) -> Result<Version, VersionError> {
    let t = s.trim().trim_start_matches('v');
    let (core, rest) = match t.find(['-', '+']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let mut parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(VersionError::NotAVersion(s.into()));
    }
    while parts.len() < 3 {
        parts.push("0");
    }
    let norm: Vec<String> = parts
        .iter()
        .map(|p| p.trim_start_matches('0').to_string())
        .map(|p| if p.is_empty() { "0".into() } else { p })
        .collect();
    Version::parse(&format!("{}{rest}", norm.join("."))).map_err(|e| VersionError::Invalid {
        text: s.into(),
        detail: e.to_string(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `~> 1.2` means `>= 1.2, < 2`; `~> 1.2.3` means `>= 1.2.3, < 1.3`.
    Pessimistic(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    terms: Vec<(Op, Version)>,
    text: String,
}

impl Constraint {
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let mut terms = Vec::new();
        for part in s.split(',') {
            let p = part.trim();
            let (op, rest) = [
                ("~>", None),
                (">=", Some(Op::Ge)),
                ("<=", Some(Op::Le)),
                ("!=", Some(Op::Ne)),
                ("==", Some(Op::Eq)),
                (">", Some(Op::Gt)),
                ("<", Some(Op::Lt)),
                ("=", Some(Op::Eq)),
            ]
            .into_iter()
            .find_map(|(tok, op)| p.strip_prefix(tok).map(|r| (op, r)))
            .unwrap_or((Some(Op::Eq), p));
            let rest = rest.trim();
            if rest.is_empty() {
                return Err(VersionError::MissingVersion(s.into()));
            }
            let v = parse_version(rest).map_err(|e| VersionError::InConstraint {
                constraint: s.into(),
                inner: Box::new(e),
            })?;
            let op = op.unwrap_or_else(|| {
                Op::Pessimistic(
                    rest.trim_start_matches('v')
                        .split(['-', '+'])
                        .next()
                        .unwrap_or("")
                        .split('.')
                        .count(),
                )
            });
            terms.push((op, v));
        }
        Ok(Constraint {
            terms,
            text: s.trim().to_string(),
        })
    }

    pub fn matches(&self, v: &Version) -> bool {
        self.terms.iter().all(|(op, c)| match op {
            Op::Eq => v == c,
            Op::Ne => v != c,
            Op::Gt => v > c,
            Op::Ge => v >= c,
            Op::Lt => v < c,
            Op::Le => v <= c,
            Op::Pessimistic(n) => {
                let upper = if *n <= 2 {
                    Version::new(c.major + 1, 0, 0)
                } else {
                    Version::new(c.major, c.minor + 1, 0)
                };
                v >= c && *v < upper
            }
        })
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(c: &str, v: &str) -> bool {
        Constraint::parse(c)
            .unwrap()
            .matches(&parse_version(v).unwrap())
    }

    #[test]
    fn talos_constraints() {
        assert!(ok(">= v1.0.0", "v1.11.5"));
        assert!(!ok(">= v1.12.0", "v1.11.5"));
        assert!(ok(">= v1.11.0, < v1.12.0", "v1.11.5"));
        assert!(!ok(">= v1.11.0, < v1.12.0", "v1.12.0"));
        assert!(ok("~> 1.2", "1.9.0") && !ok("~> 1.2", "2.0.0"));
        assert!(ok("~> 1.2.3", "1.2.9") && !ok("~> 1.2.3", "1.3.0"));
        assert!(ok("1.88.1", "v1.88.1") && ok(">= 1.88", "1.88.1"));
        assert!(Constraint::parse(">= ").is_err());
        assert!(Constraint::parse(">= banana").is_err());
        assert_eq!(
            parse_version("v1.12.0-alpha.1").unwrap().pre.as_str(),
            "alpha.1"
        );
    }
}

//! Versions and version ranges exactly as Talos reads them: github.com/blang/semver/v4's
//! `Parse`, `ParseTolerant` and `ParseRange` (`v4/semver.go`, `v4/range.go`), after Talos's own
//! `trim` of a `v` before a digit (siderolabs/talos `pkg/machinery/extensions/validate.go`).
//! Ranges: space = AND, `||` = OR, `<`, `<=`, `>`, `>=`, `=`/`==`/none, `!`/`!=`, and `x`
//! wildcards (`1.2.x`); every version is a full `MAJOR.MINOR.PATCH`. A comma is not a separator:
//! `>= 1.11.0, < 1.12.0` is an error, as it is in Talos.

use crate::error::Reason;
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("'{text}' is not a version: {detail}")]
    Invalid { text: String, detail: String },
    #[error("'{text}' is not a version range: {detail}")]
    InvalidRange { text: String, detail: String },
}

/// A pre-release identifier: numbers sort below strings (semver 2.0.0 §11).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pre {
    Num(u64),
    Alpha(String),
}

impl Pre {
    fn cmp(&self, o: &Pre) -> Ordering {
        match (self, o) {
            (Pre::Num(a), Pre::Num(b)) => a.cmp(b),
            (Pre::Num(_), Pre::Alpha(_)) => Ordering::Less,
            (Pre::Alpha(_), Pre::Num(_)) => Ordering::Greater,
            (Pre::Alpha(a), Pre::Alpha(b)) => a.cmp(b),
        }
    }
}

/// A semantic version; build metadata is kept but, as in blang/semver, never compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SemVer {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pre: Vec<Pre>,
    build: Vec<String>,
}

const NUMBERS: &str = "0123456789";
const ALPHANUM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789";

fn contains_only(s: &str, set: &str) -> bool {
    s.chars().all(|c| set.contains(c))
}

fn has_leading_zeroes(s: &str) -> bool {
    s.len() > 1 && s.starts_with('0')
}

fn number(part: &str, what: &str) -> Result<u64, Reason> {
    if !contains_only(part, NUMBERS) {
        return Err(format!("invalid character(s) in {what} number {part:?}").into());
    }
    if has_leading_zeroes(part) {
        return Err(format!("{what} number must not have leading zeroes {part:?}").into());
    }
    part.parse()
        .map_err(|_| Reason(format!("{what} number {part:?} is not a number")))
}

impl SemVer {
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        SemVer {
            major,
            minor,
            patch,
            pre: Vec::new(),
            build: Vec::new(),
        }
    }

    /// blang/semver `Parse`: strict `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, no `v`.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        Self::parse_inner(s).map_err(|detail| VersionError::Invalid {
            text: s.to_string(),
            detail: detail.into(),
        })
    }

    fn parse_inner(s: &str) -> Result<Self, Reason> {
        if s.is_empty() {
            return Err("empty".into());
        }
        let parts: Vec<&str> = s.splitn(3, '.').collect();
        if parts.len() != 3 {
            return Err("no MAJOR.MINOR.PATCH".into());
        }
        let major = number(parts[0], "major")?;
        let minor = number(parts[1], "minor")?;
        let mut patch = parts[2];
        let mut build = Vec::new();
        if let Some(i) = patch.find('+') {
            build = patch[i + 1..].split('.').map(str::to_string).collect();
            patch = &patch[..i];
        }
        let mut pre_parts = Vec::new();
        if let Some(i) = patch.find('-') {
            pre_parts = patch[i + 1..].split('.').collect();
            patch = &patch[..i];
        }
        let patch = number(patch, "patch")?;
        let mut pre = Vec::new();
        for p in pre_parts {
            if p.is_empty() {
                return Err("empty pre-release".into());
            }
            if contains_only(p, NUMBERS) {
                if has_leading_zeroes(p) {
                    return Err(format!("numeric pre-release {p:?} has leading zeroes").into());
                }
                pre.push(Pre::Num(
                    p.parse()
                        .map_err(|_| Reason(format!("pre-release {p:?}")))?,
                ));
            } else if contains_only(p, ALPHANUM) {
                pre.push(Pre::Alpha(p.to_string()));
            } else {
                return Err(format!("invalid character(s) in pre-release {p:?}").into());
            }
        }
        for b in &build {
            if b.is_empty() || !contains_only(b, ALPHANUM) {
                return Err(format!("invalid build metadata {b:?}").into());
            }
        }
        Ok(SemVer {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    /// blang/semver `ParseTolerant`: a leading `v`, surrounding space, leading zeroes and
    /// missing minor or patch are allowed (`v1.11` is 1.11.0). Talos parses its own version so.
    pub fn parse_tolerant(s: &str) -> Result<Self, VersionError> {
        let t = s.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts: Vec<String> = t.splitn(3, '.').map(str::to_string).collect();
        for p in parts.iter_mut() {
            if p.len() > 1 {
                let mut q = p.trim_start_matches('0').to_string();
                if q.is_empty() || !q.starts_with(|c: char| c.is_ascii_digit()) {
                    q.insert(0, '0');
                }
                *p = q;
            }
        }
        if parts.len() < 3 {
            if parts.last().is_some_and(|l| l.contains(['+', '-'])) {
                return Err(VersionError::Invalid {
                    text: s.to_string(),
                    detail: "a short version cannot carry pre-release or build metadata".into(),
                });
            }
            while parts.len() < 3 {
                parts.push("0".into());
            }
        }
        Self::parse_inner(&parts.join(".")).map_err(|detail| VersionError::Invalid {
            text: s.to_string(),
            detail: detail.into(),
        })
    }

    /// MAJOR.MINOR.PATCH only: Talos compares its version so, and chooses its quirks so
    /// (`pkg/machinery/imager/quirks/quirks.go`), so `v1.12.0-beta.1` counts as 1.12.0.
    pub fn core(&self) -> SemVer {
        SemVer::new(self.major, self.minor, self.patch)
    }
}

impl Ord for SemVer {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| match (self.pre.is_empty(), o.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&o.pre) {
                        match a.cmp(b) {
                            Ordering::Equal => continue,
                            other => return other,
                        }
                    }
                    self.pre.len().cmp(&o.pre.len())
                }
            })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl fmt::Display for SemVer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        for (i, p) in self.pre.iter().enumerate() {
            f.write_str(if i == 0 { "-" } else { "." })?;
            match p {
                Pre::Num(n) => write!(f, "{n}")?,
                Pre::Alpha(s) => f.write_str(s)?,
            }
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build.join("."))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            "" | "=" | "==" => Cmp::Eq,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            "!" | "!=" => Cmp::Ne,
            _ => return None,
        })
    }

    fn holds(self, v: &SemVer, c: &SemVer) -> bool {
        let o = v.cmp(c);
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Ne => o != Ordering::Equal,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
        }
    }
}

/// A blang/semver range: an OR of ANDs of comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    any_of: Vec<Vec<(Cmp, SemVer)>>,
    text: String,
}

impl Range {
    /// A range as Talos reads `compatibility.talos.version`: its `trim`, then `ParseRange`.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let trimmed = talos_trim(s);
        parse_range(&trimmed)
            .map(|any_of| Range {
                any_of,
                text: s.trim().to_string(),
            })
            .map_err(|detail| VersionError::InvalidRange {
                text: s.to_string(),
                detail: detail.into(),
            })
    }

    pub fn matches(&self, v: &SemVer) -> bool {
        self.any_of
            .iter()
            .any(|all| all.iter().all(|(c, w)| c.holds(v, w)))
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Talos's `trim`: drops a `v` wherever a digit follows it.
fn talos_trim(s: &str) -> String {
    let mut b = s.as_bytes().to_vec();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'v' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            b.remove(i);
        }
        i += 1;
    }
    String::from_utf8(b).unwrap_or_default()
}

/// `splitAndTrim`: split on spaces, except after `>`, `<` or `=`, then drop inner spaces.
/// As in Go, a one-byte token is dropped (`last < i-1`, `last < len-1`).
fn split_and_trim(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut last, mut last_char) = (0usize, 0u8);
    for i in 0..b.len() {
        if b[i] == b' ' && !b"><=".contains(&last_char) {
            if (last as isize) < i as isize - 1 {
                out.push(&s[last..i]);
            }
            last = i + 1;
        } else if b[i] != b' ' {
            last_char = b[i];
        }
    }
    if (last as isize) < b.len() as isize - 1 {
        out.push(&s[last..]);
    }
    out.into_iter().map(|t| t.replace(' ', "")).collect()
}

/// `splitComparatorVersion`: the operator is everything before the first digit.
fn split_comparator(s: &str) -> Result<(&str, &str), Reason> {
    let i = s
        .find(|c: char| c.is_ascii_digit())
        .ok_or_else(|| Reason(format!("no version in {s:?}")))?;
    Ok((s[..i].trim(), &s[i..]))
}

fn parse_range(s: &str) -> Result<Vec<Vec<(Cmp, SemVer)>>, Reason> {
    let parts = split_and_trim(s);
    let mut or_parts: Vec<Vec<String>> = Vec::new();
    let mut last = 0;
    for (i, p) in parts.iter().enumerate() {
        if p == "||" {
            if i == 0 {
                return Err("the first element is '||'".into());
            }
            or_parts.push(parts[last..i].to_vec());
            last = i + 1;
        }
    }
    if last == parts.len() {
        return Err("the last element is '||'".into());
    }
    or_parts.push(parts[last..].to_vec());
    let mut any_of = Vec::new();
    for p in or_parts {
        let mut all = Vec::new();
        for ap in expand_wildcards(&p)? {
            let (op, v) = split_comparator(&ap)?;
            let cmp = Cmp::parse(op)
                .ok_or_else(|| Reason(format!("unknown comparator {op:?} in {ap:?}")))?;
            let v = SemVer::parse_inner(v)
                .map_err(|e| Reason(format!("version {v:?} in {ap:?}: {e}")))?;
            all.push((cmp, v));
        }
        any_of.push(all);
    }
    Ok(any_of)
}

/// `expandWildcardVersion`: `1.2.x` and `1.x` forms into plain comparisons.
fn expand_wildcards(parts: &[String]) -> Result<Vec<String>, Reason> {
    let mut out = Vec::new();
    for ap in parts {
        if !ap.contains('x') {
            out.push(ap.clone());
            continue;
        }
        let (op, v) = split_comparator(ap)?;
        let nparts = v.split('.').count();
        let wildcard = match (v.split('.').next_back() == Some("x"), nparts) {
            (true, 2) => Some(2),
            (true, 3) => Some(3),
            _ => None,
        };
        let flat = {
            let f = v.replacen(".x.x", ".x", 1).replacen(".x", ".0", 1);
            if f.split('.').count() == 2 {
                f + ".0"
            } else {
                f
            }
        };
        let (result_op, increment) = match op {
            ">" => (">=", true),
            ">=" => (">=", false),
            "<" => ("<", false),
            "<=" => ("<", true),
            "" | "=" | "==" => {
                out.push(format!(">={flat}"));
                ("<", true)
            }
            "!=" | "!" => {
                out.push(format!("<{flat}"));
                (">=", true)
            }
            _ => ("", false),
        };
        let version = if increment {
            let mut parts: Vec<String> = flat.split('.').map(str::to_string).collect();
            let bump = |p: &mut String| p.parse::<u64>().map(|n| *p = (n + 1).to_string());
            match wildcard {
                Some(3) => bump(&mut parts[1])
                    .map(|_| parts.join("."))
                    .unwrap_or_default(),
                Some(2) => bump(&mut parts[0])
                    .map(|_| parts.join("."))
                    .unwrap_or_default(),
                _ => String::new(),
            }
        } else {
            flat
        };
        out.push(format!("{result_op}{version}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(range: &str, v: &str) -> bool {
        Range::parse(range)
            .unwrap()
            .matches(&SemVer::parse_tolerant(v).unwrap().core())
    }

    #[test]
    fn talos_ranges() {
        assert!(ok(">= v1.0.0", "v1.11.5"));
        assert!(!ok(">= v1.12.0", "v1.11.5"));
        assert!(ok(">= 1.11.0 < 1.12.0", "v1.11.5"));
        assert!(!ok(">=1.11.0 <1.12.0", "v1.12.0"));
        assert!(ok("<1.10.0 || >= 1.11.0", "v1.11.5") && !ok("<1.10.0 || >= 1.11.0", "v1.10.3"));
        assert!(ok("1.11.x", "v1.11.9") && !ok("1.11.x", "v1.12.0"));
        assert!(ok("!= 1.11.5", "v1.11.4") && !ok("!1.11.5", "v1.11.5"));
        // The Talos version's pre-release is dropped before comparing.
        assert!(ok(">= v1.12.0", "v1.12.0-beta.1"));
        // Commas and go-version's ~> are not blang/semver: Talos refuses them.
        assert!(Range::parse(">= v1.11.0, < v1.12.0").is_err());
        assert!(Range::parse("~> 1.2").is_err());
        assert!(
            Range::parse(">= 1.2").is_err(),
            "every version is MAJOR.MINOR.PATCH"
        );
        assert!(Range::parse("|| >= 1.0.0").is_err());
        assert!(Range::parse(">= 1.0.0 ||").is_err());
        assert!(Range::parse(">= banana").is_err());
    }

    #[test]
    fn versions_compare_as_semver() {
        let v = |s| SemVer::parse(s).unwrap();
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-alpha.1") < v("1.0.0-alpha.beta"));
        assert!(v("1.0.0-beta.2") < v("1.0.0-beta.11"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert_eq!(v("1.0.0+build.1").cmp(&v("1.0.0")), Ordering::Equal);
        assert!(SemVer::parse("v1.0.0").is_err() && SemVer::parse("1.02.0").is_err());
        assert_eq!(
            SemVer::parse_tolerant(" v1.11 ").unwrap(),
            SemVer::new(1, 11, 0)
        );
        assert_eq!(
            SemVer::parse_tolerant("v01.012.3").unwrap(),
            SemVer::new(1, 12, 3)
        );
        assert!(SemVer::parse_tolerant("1.11-beta").is_err());
        assert_eq!(
            SemVer::parse_tolerant("v1.12.0-alpha.1")
                .unwrap()
                .to_string(),
            "1.12.0-alpha.1"
        );
    }

    #[test]
    fn go_split_quirks() {
        // A one-byte token is dropped, as splitAndTrim does.
        assert_eq!(split_and_trim("> 1.0.0 x"), [">1.0.0"]);
        assert_eq!(split_and_trim(">=  1.0.0   <2.0.0"), [">=1.0.0", "<2.0.0"]);
        assert_eq!(talos_trim(">= v1.0.0 <v2.0.0 vv1"), ">= 1.0.0 <2.0.0 v1");
    }
}

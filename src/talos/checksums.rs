//! `checksums.sha256` as `sha256sum` writes it (`<hex>  ./path`, `<hex>  path`, `<hex> *path`
//! for binary mode, and `\`-prefixed lines with escaped names), checked against the tree.

use crate::digest::Digest;
use crate::error::Reason;
use crate::layers::tree::Tree;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub digest: Digest,
    /// Relative to the checksums root, normalised (`./` dropped).
    pub path: String,
    /// As written, for messages.
    pub written: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumsError {
    #[error("line {line}: not a sha256sum line: '{text}'")]
    NotALine { line: usize, text: String },
    #[error("line {line}: {reason}")]
    BadPath { line: usize, reason: String },
    /// Lines that do not verify against the tree (at most three spelled out).
    #[error("{count} problem{}: {}{}", if *.count == 1 { "" } else { "s" }, .shown.join("; "), if *.count > 3 { "; …" } else { "" })]
    Mismatch { count: usize, shown: Vec<String> },
}

pub fn parse(text: &str) -> Result<Vec<Line>, ChecksumsError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let bad = || ChecksumsError::NotALine {
            line: n + 1,
            text: clip(raw),
        };
        let (escaped, line) = match raw.strip_prefix('\\') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        if line.len() < 66 || !line.is_char_boundary(64) {
            return Err(bad());
        }
        let (hex, rest) = line.split_at(64);
        let digest = Digest::from_hex(&hex.to_ascii_lowercase()).map_err(|_| bad())?;
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(bad)?;
        let name = if escaped {
            name.replace("\\n", "\n").replace("\\\\", "\\")
        } else {
            name.to_string()
        };
        let path = normalise(&name).map_err(|reason| ChecksumsError::BadPath {
            line: n + 1,
            reason: reason.into(),
        })?;
        out.push(Line {
            digest,
            path,
            written: name,
        });
    }
    Ok(out)
}

fn normalise(name: &str) -> Result<String, Reason> {
    let mut parts: Vec<&str> = Vec::new();
    if name.starts_with('/') {
        return Err(
            format!("'{name}' is absolute; checksums paths are relative to their root").into(),
        );
    }
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("'{name}' escapes the checksums root").into());
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(format!("'{name}' names no file").into());
    }
    Ok(parts.join("/"))
}

/// Checks every line against the tree; with `complete`, also that every regular file under
/// `root` but `checksums_path` is listed. Returns the problems, at most a few spelled out.
pub fn verify(
    lines: &[Line],
    tree: &Tree,
    root: &str,
    checksums_path: &str,
    complete: bool,
) -> Result<(), ChecksumsError> {
    let mut problems = Vec::new();
    for l in lines {
        let full = if root.is_empty() {
            l.path.clone()
        } else {
            format!("{root}/{}", l.path)
        };
        match tree.get(&full) {
            None => problems.push(format!("{}: listed but missing", l.written)),
            Some(e) if !e.kind.has_content() => {
                problems.push(format!("{}: listed but is a {}", l.written, e.kind.name()))
            }
            Some(e) if e.sha256.as_ref() != Some(&l.digest) => problems.push(format!(
                "{}: expected {}, found {}",
                l.written,
                l.digest.short(),
                e.sha256.as_ref().map_or("-", |d| d.short())
            )),
            Some(_) => {}
        }
    }
    if complete {
        let listed: std::collections::HashSet<&str> =
            lines.iter().map(|l| l.path.as_str()).collect();
        for (key, e) in tree.iter_below(root) {
            let rel = if root.is_empty() {
                key.as_str()
            } else {
                &key[root.len() + 1..]
            };
            if e.kind.has_content() && key != checksums_path && !listed.contains(rel) {
                problems.push(format!("./{rel}: not listed"));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(ChecksumsError::Mismatch {
        count: problems.len(),
        shown: problems.into_iter().take(3).collect(),
    })
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256sum_forms() {
        let h = "a".repeat(64);
        let text = format!("{h}  ./boot/vmlinuz\n{h} *boot/initramfs.xz\n\\{h}  odd\\nname\n");
        let lines = parse(&text).unwrap();
        let paths: Vec<&str> = lines.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["boot/vmlinuz", "boot/initramfs.xz", "odd\nname"]);
        assert!(parse(&format!("{h} boot/x\n"))
            .unwrap_err()
            .to_string()
            .contains("line 1: not a sha256sum line"));
        assert!(parse("xyz  a\n").is_err());
        assert!(parse(&format!("{h}  ../../etc/passwd\n"))
            .unwrap_err()
            .to_string()
            .contains("escapes the checksums root"));
        assert!(parse(&format!("{h}  /etc/passwd\n"))
            .unwrap_err()
            .to_string()
            .contains("absolute"));
    }
}

//! Where in the spec file each check comes from: the line and column of the key a check's
//! name descends from, so a failure can point at it (GitHub annotations, JSON reports).
//!
//! Check names mirror the spec's keys (`files::<path>::initramfs::extensions` is
//! `expect.files[i].initramfs.extensions`), so the positions are keyed by the same names and a
//! check finds the longest name that prefixes its own.

use crate::goyaml::node::{self, Kind, Node};

/// A 1-based line and column in a spec file.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SpecPos {
    pub line: u64,
    pub column: u64,
}

/// Check-name prefixes and the position of the key each stands for.
#[derive(Clone, Debug, Default)]
pub struct Positions(Vec<(String, SpecPos)>);

impl Positions {
    /// Reads `text` once more for key positions. `files` and `absent` are the validated
    /// (normalized) paths, in the order the spec lists them, as check names spell them. A text
    /// the position reader refuses yields no positions, never an error: the spec itself loaded.
    pub fn of(text: &str, files: &[String], absent: &[String]) -> Self {
        let mut out = Vec::new();
        let Ok(Some(root)) = node::read(text) else {
            return Positions(out);
        };
        for (k, v) in entries(&root) {
            match k {
                "expect" => {
                    out.push(("expect".to_string(), key_pos(&root, "expect")));
                    for (section, body) in entries(v) {
                        let named = |i: usize, list: &[String]| list.get(i).cloned();
                        match (section, &body.kind) {
                            ("files", Kind::Seq(items)) => {
                                for (i, item) in items.iter().enumerate() {
                                    if let Some(p) = named(i, files) {
                                        keys(&format!("files::{p}"), item, &mut out);
                                    }
                                }
                            }
                            ("absent", Kind::Seq(items)) => {
                                for (i, item) in items.iter().enumerate() {
                                    if let Some(p) = named(i, absent) {
                                        out.push((format!("absent::{p}"), pos(item)));
                                    }
                                }
                            }
                            _ => {
                                out.push((section.to_string(), key_pos(v, section)));
                                keys(section, body, &mut out);
                            }
                        }
                    }
                }
                "digest" | "platform" | "image" => out.push((k.to_string(), key_pos(&root, k))),
                _ => {}
            }
        }
        Positions(out)
    }

    /// The position of the longest recorded name that is `check` or prefixes it at a `::`,
    /// else the `expect` key's.
    pub fn find(&self, check: &str) -> Option<SpecPos> {
        let covers = |name: &str| {
            check == name
                || check
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with("::"))
        };
        self.0
            .iter()
            .filter(|(name, _)| covers(name))
            .max_by_key(|(name, _)| name.len())
            .or_else(|| self.0.iter().find(|(name, _)| name == "expect"))
            .map(|(_, at)| *at)
    }
}

/// Records every mapping key under `node`, named `prefix::key::…`.
fn keys(prefix: &str, node: &Node, out: &mut Vec<(String, SpecPos)>) {
    if !matches!(node.kind, Kind::Map(_)) {
        return;
    }
    if !out.iter().any(|(n, _)| n == prefix) {
        out.push((prefix.to_string(), pos(node)));
    }
    for (k, v) in entries(node) {
        let name = format!("{prefix}::{k}");
        out.push((name.clone(), key_pos(node, k)));
        keys(&name, v, out);
    }
}

fn entries(n: &Node) -> impl Iterator<Item = (&str, &Node)> {
    let pairs = match &n.kind {
        Kind::Map(pairs) => pairs.as_slice(),
        _ => &[],
    };
    pairs.iter().filter_map(|(k, v)| match &k.kind {
        Kind::Scalar { text, .. } => Some((text.as_str(), v)),
        _ => None,
    })
}

/// Where `key` is written in the mapping `map` (the key, not its value: a nested mapping's
/// value starts on the next line).
fn key_pos(map: &Node, key: &str) -> SpecPos {
    match &map.kind {
        Kind::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| matches!(&k.kind, Kind::Scalar { text, .. } if text == key))
            .map_or(pos(map), |(k, _)| pos(k)),
        _ => pos(map),
    }
}

fn pos(n: &Node) -> SpecPos {
    SpecPos {
        line: n.at.line,
        column: n.at.col,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "apiVersion: tdg/v1
name: x
image: oci:/l:t
digest: sha256:00
expect:
  labels:
    org.opencontainers.image.revision: abc
  files:
    - path: /boot/vmlinuz
      size: 1MiB
    - path: boot/initramfs.xz
      initramfs:
        extensions:
          present: [zfs]
  absent: [etc/shadow]
  boot:
    timeout: 60s
";

    fn at(p: &Positions, check: &str) -> (u64, u64) {
        let a = p.find(check).unwrap();
        (a.line, a.column)
    }

    #[test]
    fn a_check_points_at_the_key_it_descends_from() {
        let files = ["boot/vmlinuz".to_string(), "boot/initramfs.xz".to_string()];
        let p = Positions::of(SPEC, &files, &["etc/shadow".to_string()]);
        assert_eq!(at(&p, "files::boot/vmlinuz::size"), (10, 7));
        // A check with no key of its own: the file entry.
        assert_eq!(at(&p, "files::boot/vmlinuz::exists"), (9, 7));
        assert_eq!(
            at(&p, "files::boot/initramfs.xz::initramfs::extensions"),
            (13, 9)
        );
        assert_eq!(
            at(&p, "files::boot/initramfs.xz::initramfs::compatibility"),
            (12, 7)
        );
        assert_eq!(at(&p, "absent::etc/shadow"), (15, 12));
        assert_eq!(at(&p, "labels::org.opencontainers.image.revision"), (7, 5));
        assert_eq!(at(&p, "boot::reached"), (16, 3));
        assert_eq!(at(&p, "digest"), (4, 1));
        // Not a prefix at a `::` boundary: falls back to `expect`.
        assert_eq!(at(&p, "bootx"), (5, 1));
    }

    #[test]
    fn an_unreadable_text_has_no_positions() {
        assert!(Positions::of("{", &[], &[]).find("digest").is_none());
    }
}

//! What Talos accepts in an extension image's tree, by Talos version.
//!
//! siderolabs/talos `pkg/machinery/extensions/load.go`: the image holds `manifest.yaml` and
//! `rootfs/` and nothing else, always. `validate.go` (`validateContents`): every non-directory
//! under `rootfs/` must start (as a string, not by path component) with one of `AllowedPaths`
//! (`extensions.go`, which changes between releases) and special files are refused;
//! directories are not checked. Through Talos 1.8 the imager ran that validation on every
//! extension (`pkg/imager/extensions/extensions.go`, `ext.Validate()`); from 1.9 it runs only
//! when asked, and from 1.10 nothing asks. So for Talos >= 1.9 a path outside the list is
//! accepted, and tdg says so as a warning instead of refusing it.

use crate::layers::tree::{Kind, Tree};
use crate::talos::extensions::MANIFEST;
use crate::talos::version::SemVer;

/// v1.5.0 to v1.8.x.
const PATHS_1_5: &[&str] = &[
    "/etc/cri/conf.d",
    "/lib/firmware",
    "/lib/modules",
    "/lib64/ld-linux-x86-64.so.2",
    "/usr/etc/udev/rules.d",
    "/usr/local",
    "/usr/share/glvnd",
    "/usr/share/egl",
    "/etc/vulkan",
];
/// v1.9.x.
const PATHS_1_9: &[&str] = &[
    "/etc/cri/conf.d",
    "/lib/firmware",
    "/lib/modules",
    "/lib64/ld-linux-x86-64.so.2",
    "/sbin/ldconfig",
    "/usr/lib/udev/rules.d",
    "/usr/local",
    "/usr/share/glvnd",
    "/usr/share/egl",
    "/etc/vulkan",
];
/// v1.10.0 to v1.11.x: `/usr` merged.
const PATHS_1_10: &[&str] = &[
    "/etc/cri/conf.d",
    "/usr/lib/firmware",
    "/usr/lib/modules",
    "/usr/lib/ld-linux-x86-64.so.2",
    "/usr/bin/ldconfig",
    "/usr/lib/udev/rules.d",
    "/usr/local",
    "/usr/share/glvnd",
    "/usr/share/egl",
    "/etc/vulkan",
];
/// v1.12.x: the aarch64 loader.
const PATHS_1_12: &[&str] = &[
    "/etc/cri/conf.d",
    "/usr/lib/firmware",
    "/usr/lib/modules",
    "/usr/lib/ld-linux-x86-64.so.2",
    "/usr/lib/ld-linux-aarch64.so.1",
    "/usr/bin/ldconfig",
    "/usr/lib/udev/rules.d",
    "/usr/local",
    "/usr/share/glvnd",
    "/usr/share/egl",
    "/etc/vulkan",
];
/// v1.13.0 on: ld.so files, NVIDIA tools, nvme.
const PATHS_1_13: &[&str] = &[
    "/etc/cri/conf.d",
    "/usr/lib/firmware",
    "/usr/lib/modules",
    "/usr/lib/ld-linux-x86-64.so.2",
    "/usr/lib/ld-linux-aarch64.so.1",
    "/usr/bin/ldconfig",
    "/etc/ld.so.conf",
    "/etc/ld.so.cache",
    "/usr/bin/nvidia-modprobe",
    "/usr/bin/nvidia-pcc",
    "/usr/bin/nvidia-smi",
    "/usr/bin/nvidia-ctk",
    "/usr/bin/nvidia-cdi-hook",
    "/usr/bin/nvme",
    "/usr/lib/udev/rules.d",
    "/usr/local",
    "/usr/share/glvnd",
    "/usr/share/egl",
    "/etc/vulkan",
];

/// The path rules of one Talos version.
#[derive(Debug, Clone)]
pub struct PathRules {
    pub allowed: &'static [&'static str],
    /// Whether Talos refuses what the list does not cover (through 1.8), or builds it anyway.
    pub enforced: bool,
    /// The version the rules are for, as written; `None`: the newest rules, not enforced.
    pub talos: Option<String>,
    /// The extensions validator's rules: enforced whatever the version (`strict`).
    pub strict: bool,
}

impl PathRules {
    pub fn for_talos(talos: Option<&str>) -> Self {
        let Some(v) = talos.and_then(|t| SemVer::parse_tolerant(t).ok()) else {
            return PathRules {
                allowed: PATHS_1_13,
                enforced: false,
                talos: None,
                strict: false,
            };
        };
        let v = v.core();
        let allowed = match (v.major, v.minor) {
            (1, 13..) | (2.., _) => PATHS_1_13,
            (1, 12) => PATHS_1_12,
            (1, 10 | 11) => PATHS_1_10,
            (1, 9) => PATHS_1_9,
            _ => PATHS_1_5,
        };
        PathRules {
            allowed,
            enforced: v < SemVer::new(1, 9, 0),
            talos: talos.map(str::to_string),
            strict: false,
        }
    }

    /// The same list, enforced as siderolabs/extensions' validator enforces it.
    pub fn strict(self) -> Self {
        PathRules {
            enforced: true,
            strict: true,
            ..self
        }
    }

    /// Whether a non-directory at `rootfs/<rel>` is on the list: a string prefix of `/<rel>`.
    pub fn lists(&self, rel: &str) -> bool {
        let abs = format!("/{rel}");
        self.allowed.iter().any(|a| abs.starts_with(a))
    }

    fn versioned(&self) -> String {
        let talos = match &self.talos {
            Some(t) => format!("Talos {t}"),
            None => "Talos (newest rules)".into(),
        };
        match (&self.talos, self.strict) {
            (Some(t), true) => format!("the extensions validator (Talos {t}'s list)"),
            (None, true) => "the extensions validator (the newest Talos list)".into(),
            _ => talos,
        }
    }
}

/// What an entry of an extension image's tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageEntry<'a> {
    Manifest,
    RootfsDir,
    /// Below `rootfs/`, relative to it.
    Rootfs(&'a str),
    /// Anything else: Talos's loader refuses the extension ("unexpected file").
    Outside,
}

pub fn image_entry(path: &str) -> ImageEntry<'_> {
    match path.split_once('/') {
        None if path == MANIFEST => ImageEntry::Manifest,
        None if path == "rootfs" => ImageEntry::RootfsDir,
        Some(("rootfs", rel)) => ImageEntry::Rootfs(rel),
        _ => ImageEntry::Outside,
    }
}

/// An extension image's tree judged by [`PathRules`].
#[derive(Debug, Default)]
pub struct Review {
    pub no_rootfs: bool,
    /// Top-level entries other than `manifest.yaml` and `rootfs`, as `/path`.
    pub outside: Vec<String>,
    /// Non-directories under `rootfs/` the list does not cover, as `/rootfs/path`.
    pub unlisted: Vec<String>,
    /// Devices and fifos under `rootfs/`.
    pub special: Vec<String>,
}

pub fn review(tree: &Tree, rules: &PathRules) -> Review {
    let mut r = Review {
        no_rootfs: !tree.get("rootfs").is_some_and(|e| e.kind == Kind::Dir),
        ..Default::default()
    };
    for (p, e) in tree.iter() {
        let p = p.as_str();
        match image_entry(p) {
            ImageEntry::Manifest | ImageEntry::RootfsDir => {}
            ImageEntry::Outside => {
                // Only the top-level entry is named: what is below it goes with it.
                if !p.contains('/') {
                    r.outside.push(format!("/{p}"));
                }
            }
            ImageEntry::Rootfs(rel) => match e.kind {
                Kind::Dir => {}
                Kind::Char | Kind::Block | Kind::Fifo => r.special.push(format!("/{p}")),
                _ if !rules.lists(rel) => r.unlisted.push(format!("/{p}")),
                _ => {}
            },
        }
    }
    r
}

impl Review {
    /// Why Talos refuses the extension, if it does.
    pub fn refusal(&self, rules: &PathRules) -> Option<String> {
        if self.no_rootfs {
            return Some("no /rootfs directory".into());
        }
        if !self.outside.is_empty() {
            return Some(format!(
                "{} outside /manifest.yaml and /rootfs, which Talos's loader refuses: {}",
                count(self.outside.len(), "entry", "entries"),
                first(&self.outside)
            ));
        }
        if !rules.enforced {
            return None;
        }
        if !self.special.is_empty() {
            return Some(format!(
                "{} special file(s), which {} refuses: {}",
                self.special.len(),
                rules.versioned(),
                first(&self.special)
            ));
        }
        (!self.unlisted.is_empty()).then(|| self.unlisted_message(rules, "accepts"))
    }

    /// What the list does not cover although Talos builds it (from 1.9).
    pub fn warning(&self, rules: &PathRules) -> Option<String> {
        if rules.enforced || (self.unlisted.is_empty() && self.special.is_empty()) {
            return None;
        }
        let mut all = self.unlisted.clone();
        all.extend(self.special.iter().cloned());
        Some(format!(
            "{} outside the paths Talos lists (/rootfs{{{}}}), which {} builds without checking: {}",
            count(all.len(), "path", "paths"),
            rules.allowed.join(","),
            rules.versioned(),
            first(&all)
        ))
    }

    fn unlisted_message(&self, rules: &PathRules, verb: &str) -> String {
        format!(
            "{} outside what {} {verb} (/rootfs{{{}}}): {}",
            count(self.unlisted.len(), "path", "paths"),
            rules.versioned(),
            rules.allowed.join(","),
            first(&self.unlisted)
        )
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first three, and an ellipsis for the rest.
fn first(v: &[String]) -> String {
    let mut s = v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if v.len() > 3 {
        s.push_str(", …");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_by_version_and_prefix() {
        let r = PathRules::for_talos(Some("v1.12.0"));
        assert!(r.lists("usr/lib/ld-linux-aarch64.so.1") && !r.enforced);
        // A string prefix, as Talos's strings.HasPrefix: not by path component.
        assert!(r.lists("usr/localx/bin/tool"));
        assert!(!r.lists("etc/ssh/sshd_config"));
        let old = PathRules::for_talos(Some("v1.8.4"));
        assert!(
            old.enforced && old.lists("lib/modules/6.6/x.ko") && !old.lists("usr/lib/modules/x")
        );
        assert!(!PathRules::for_talos(Some("v1.11.5")).lists("usr/lib/ld-linux-aarch64.so.1"));
        assert!(PathRules::for_talos(Some("v1.13.0")).lists("usr/bin/nvidia-smi"));
        // A pre-release has its release's rules.
        assert!(!PathRules::for_talos(Some("v1.9.0-beta.0")).enforced);
        assert!(!PathRules::for_talos(None).enforced);
    }

    #[test]
    fn image_entries() {
        assert_eq!(image_entry("manifest.yaml"), ImageEntry::Manifest);
        assert_eq!(image_entry("rootfs"), ImageEntry::RootfsDir);
        assert_eq!(image_entry("rootfs/usr/x"), ImageEntry::Rootfs("usr/x"));
        assert_eq!(image_entry("README"), ImageEntry::Outside);
        assert_eq!(image_entry("etc/passwd"), ImageEntry::Outside);
    }
}

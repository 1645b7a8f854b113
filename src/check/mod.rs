//! Expectations to outcomes. [`plan()`] turns a spec into named checks without touching the
//! network (what `cargo test -- --list` shows); [`evaluate`] answers each against a resolved,
//! flattened image ([`Subject`]). Every reporter reads the same [`Outcome`]s.
//!
//! One module per family holds everything about its checks: the planned check (carrying its
//! expectation), its name, the content it reads, and how it is judged.
//!
//! | family | checks |
//! |---|---|
//! | [`image`] | `digest`, `platform`, `platforms`, `labels::<key>` |
//! | [`files`] | `files::<path>::{exists,type,mode,size,sha256,contains,matches}`, `absent::<path>` |
//! | [`kernel`] | `files::<path>::{kernel,uki}` |
//! | [`initramfs`] | `files::<path>::[uki::]initramfs::{extensions,compatibility,compression,services,arch}` |
//! | [`checksums`] | `files::<path>::checksums` |
//! | [`report`] | `files::<path>::report`, `::report::revision`, `::report::golden` |
//! | [`extension`] | `extension::{manifest,rootfs,compatibility}` |
//! | [`tree`] | `tree` |
//! | [`boot`] | `boot::{reached,extensions,console}` |
//! | [`signature`] | `signature` |
//! | [`provenance`] | `provenance` |
//!
//! # Adding a check
//!
//! 1. The spec key, beside this family's check: `spec/expect/<family>.rs` holds the section as
//!    written (YAML and JSON Schema), its validated form and its validation;
//!    `tdg schema > schema/spec-v1.schema.json`.
//! 2. The family module: a variant of its `Check` with the expectation it needs, its `NAME`
//!    constant, and its arm in `name`, `needs` and `judge`; planned from the spec in the
//!    family's `plan`. A new family also gets a line in [`plan()`] and the table above.
//! 3. A harness trial on an image that breaks it, and the key's entry in docs/spec.md.
//!
//! The pipeline reads what checks need ([`Needs`]: content to spool, a boot, referrers), never
//! the spec.

pub mod boot;
pub mod checksums;
pub mod extension;
pub mod files;
pub mod golden;
pub mod image;
pub mod initramfs;
pub mod kernel;
pub mod outcome;
pub mod plan;
pub mod provenance;
pub mod record;
pub mod report;
pub mod signature;
pub mod subject;
pub mod tree;

use std::time::Instant;

pub use outcome::{Outcome, Status};
pub use plan::{plan, Check, Plan};
pub use record::{exit, SpecRun};
pub use subject::{Judged, Subject, Verdict, Walks};

use crate::digest::Digest;

/// What a planned check needs from the run before it is judged: the pipeline reads these, never
/// the spec, to decide what to fetch, spool and run.
#[derive(Debug, Default)]
pub struct Needs {
    /// Paths whose content it reads; only these are spooled while flattening. A trailing `/`
    /// asks for every file directly in that directory.
    pub paths: Vec<String>,
    /// A boot of the image under QEMU.
    pub boot: Option<boot::Request>,
    /// The image's referrers (signatures, attestations).
    pub referrers: bool,
}

impl Needs {
    pub fn paths(paths: impl IntoIterator<Item = String>) -> Self {
        Needs {
            paths: paths.into_iter().collect(),
            ..Needs::default()
        }
    }

    /// What several checks need together: every path, the first boot, any referrers.
    pub fn all(needs: impl IntoIterator<Item = Needs>) -> Needs {
        let mut out = Needs::default();
        let mut seen = std::collections::HashSet::new();
        for n in needs {
            for p in n.paths {
                if seen.insert(p.clone()) {
                    out.paths.push(p);
                }
            }
            out.boot = out.boot.or(n.boot);
            out.referrers |= n.referrers;
        }
        out
    }
}

/// A planned check of one family.
pub trait Planned: std::fmt::Debug + Send + Sync {
    /// The full check name within its spec, e.g. `files::<path>::initramfs::compatibility`.
    fn name(&self) -> String;
    /// The golden file it compares the image with, if any: blessing rewrites that file and
    /// turns this check's failure into a pass.
    fn golden(&self) -> Option<&std::path::Path> {
        None
    }
    /// What the run must fetch, spool or run before the check can be judged.
    fn needs(&self) -> Needs {
        Needs::default()
    }
    fn judge(&self, s: &Subject<'_>) -> Judged;
    /// The verdict when the image has no manifest for the platform asked for: `None` (the
    /// default) when the check cannot be evaluated then.
    fn without_platform(&self, _resolved_to: &Digest, _why: &str) -> Option<Judged> {
        None
    }
}

/// Judges every planned check against one image.
pub fn evaluate(plan: &Plan, subject: &Subject<'_>) -> Vec<Outcome> {
    plan.checks
        .iter()
        .map(|c| {
            let start = Instant::now();
            let mut o = Outcome::judged(c, c.check.judge(subject));
            o.duration_ms = start.elapsed().as_secs_f64() * 1e3;
            o
        })
        .collect()
}

/// The outcomes when the image lacks the platform: what can still be said, the rest skipped.
pub fn without_platform(plan: &Plan, resolved_to: &Digest, why: &str) -> Vec<Outcome> {
    plan.checks
        .iter()
        .map(|c| match c.check.without_platform(resolved_to, why) {
            Some(j) => Outcome::judged(c, j),
            None => Outcome::new(c, Status::Skipped, format!("not evaluated: {why}")),
        })
        .collect()
}

/// The outcomes when the image could not be evaluated at all.
pub fn unevaluated(plan: &Plan, why: &str) -> Vec<Outcome> {
    plan.checks
        .iter()
        .map(|c| Outcome::new(c, Status::Error, why))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs_of(expect: &str) -> Needs {
        let text = format!(
            "apiVersion: tdg/v1\nname: n\nimage: oci:l:t\nplatform: linux/amd64\nexpect:\n{expect}"
        );
        let spec =
            crate::spec::load::load_str(std::path::Path::new("specs/n.yaml"), &text).expect("spec");
        plan(spec, None, None).needs()
    }

    /// The pipeline fetches, spools and boots what the planned checks say, and nothing else.
    #[test]
    fn a_plan_needs_what_its_checks_need() {
        let n = needs_of("  files:\n    - path: a/b\n      contains: [x]\n    - path: c\n      type: file\n    - path: d/checksums.sha256\n      checksums: {root: d}\n");
        assert_eq!(n.paths, ["a/b", "d/checksums.sha256"]);
        assert!(n.boot.is_none() && !n.referrers);
        let n = needs_of(
            "  boot:\n    timeout: 10s\n    append: quiet\n  signature:\n    key: k.pub\n",
        );
        let b = n.boot.expect("a boot");
        assert_eq!(
            (b.arch, b.kernel.as_str(), b.timeout),
            (
                crate::spec::Arch::Amd64,
                "assets/talos/amd64/boot/vmlinuz",
                std::time::Duration::from_secs(10)
            )
        );
        assert_eq!(n.paths, [b.kernel.clone(), b.initrd.clone()]);
        assert_eq!(b.append.as_deref(), Some("quiet"));
        assert!(n.referrers);
    }
}

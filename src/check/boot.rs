//! Checks on a boot under QEMU (`expect.boot`): that it reached its end with no panic, which
//! extensions Talos's init enabled, and what the console showed. The boot runs once per spec
//! run, before the checks are judged; `--no-boot` reports these checks skipped.

use std::sync::Arc;

use super::subject::{fail, BootState, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::oci::platform::Platform;
use crate::spec::{Arch, InitramfsExpectation, Spec};
use crate::talos::extensions::{Metadata, MACHINERY_AUTHOR, MODULES_DEP};

pub const REACHED: &str = "boot::reached";
pub const EXTENSIONS: &str = "boot::extensions";
pub const CONSOLE: &str = "boot::console";
pub const SERVICES: &str = "boot::services";

/// A boot under QEMU of the image's own kernel and initramfs, as `expect.boot` asks.
#[derive(Debug, Clone)]
pub struct Request {
    pub arch: Arch,
    /// Paths in the image.
    pub kernel: String,
    pub initrd: String,
    pub timeout: std::time::Duration,
    /// The console line that ends the boot.
    pub until: regex::Regex,
    /// Kernel arguments after the default ones.
    pub append: Option<String>,
}

#[derive(Debug)]
pub enum Check {
    /// Carries the boot to run: the pipeline boots what this check needs.
    Reached(Request),
    Extensions(InitramfsExpectation),
    Console {
        contains: Vec<String>,
        lacks: Vec<String>,
    },
    Services(crate::spec::ServicesExpectation),
}

/// The arch a spec's boot runs: its platform's, else arm64.
pub fn arch(platform: Option<&Platform>) -> Arch {
    match platform.map(|p| p.arch.as_str()) {
        Some("amd64") => Arch::Amd64,
        _ => Arch::Arm64,
    }
}

pub fn plan(spec: &Spec, platform: Option<&Platform>) -> Vec<Arc<dyn Planned>> {
    let Some(b) = &spec.expect.boot else {
        return Vec::new();
    };
    let a = arch(platform);
    let mut out: Vec<Arc<dyn Planned>> = vec![Arc::new(Check::Reached(Request {
        arch: a,
        kernel: b.kernel_for(a),
        initrd: b.initrd_for(a),
        timeout: b.timeout,
        until: b.until.clone(),
        append: b.append.clone(),
    }))];
    if let Some(x) = &b.extensions {
        out.push(Arc::new(Check::Extensions(x.clone())));
    }
    if !b.console_contains.is_empty() || !b.console_lacks.is_empty() {
        out.push(Arc::new(Check::Console {
            contains: b.console_contains.clone(),
            lacks: b.console_lacks.clone(),
        }));
    }
    if let Some(x) = &b.services {
        out.push(Arc::new(Check::Services(x.clone())));
    }
    out
}

impl Planned for Check {
    fn name(&self) -> String {
        match self {
            Check::Reached(_) => REACHED,
            Check::Extensions(_) => EXTENSIONS,
            Check::Console { .. } => CONSOLE,
            Check::Services(_) => SERVICES,
        }
        .into()
    }

    fn needs(&self) -> Needs {
        match self {
            Check::Reached(r) => Needs {
                paths: vec![r.kernel.clone(), r.initrd.clone()],
                boot: Some(r.clone()),
                ..Needs::default()
            },
            _ => Needs::default(),
        }
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let b = match &s.boot {
            BootState::Done(b) => b,
            BootState::Disabled => return Err(Verdict::Skip("not booted (--no-boot)".into())),
            BootState::Unbootable(m) => return Err(Verdict::Fail(m.clone())),
            BootState::Failed(m) => return Err(Verdict::Error(m.clone())),
            BootState::NotAsked => return Err(Verdict::Error("the boot did not run".into())),
        };
        match self {
            Check::Reached { .. } => match (&b.panic, b.reached) {
                (Some(p), _) => fail(format!("the kernel panicked: {p}")),
                (None, true) => Ok(()),
                (None, false) => fail(format!(
                    "the boot did not reach its end: {}{}",
                    b.ended,
                    b.hint
                        .as_ref()
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default()
                )),
            },
            Check::Services(want) => services(b, want),
            Check::Extensions(want) => {
                let layers: Vec<Metadata> = b
                    .extensions
                    .iter()
                    .map(|e| Metadata {
                        name: e.name.clone(),
                        version: e.version.clone(),
                        // The console names layers only; the machinery's are known by name.
                        author: match e.name.as_str() {
                            MODULES_DEP => MACHINERY_AUTHOR.into(),
                            "schematic" => "Image Factory".into(),
                            _ => String::new(),
                        },
                        ..Default::default()
                    })
                    .collect();
                let refs: Vec<&Metadata> = layers.iter().collect();
                super::initramfs::extensions_listed(
                    &refs,
                    &want.present,
                    &want.absent,
                    want.exact.as_deref(),
                )
                .map_err(|v| match v {
                    Verdict::Fail(m) if b.extensions.is_empty() => {
                        Verdict::Fail(format!("{m}; the console says: {}", last_words(&b.log)))
                    }
                    other => other,
                })
            }
            Check::Console { contains, lacks } => {
                let missing: Vec<String> = contains
                    .iter()
                    .filter(|c| !b.log.contains(c.as_str()))
                    .map(|c| format!("'{c}'"))
                    .collect();
                let present: Vec<String> = lacks
                    .iter()
                    .filter(|c| b.log.contains(c.as_str()))
                    .map(|c| format!("'{c}'"))
                    .collect();
                let mut problems = Vec::new();
                if !missing.is_empty() {
                    problems.push(format!("the console lacks {}", missing.join(", ")));
                }
                if !present.is_empty() {
                    problems.push(format!("the console shows {}", present.join(", ")));
                }
                if problems.is_empty() {
                    Ok(())
                } else {
                    fail(problems.join("; "))
                }
            }
        }
    }
}

/// Each named service's last state as the expectation says, or every difference.
fn services(b: &crate::boot::Booted, want: &crate::spec::ServicesExpectation) -> Judged {
    let state = |n: &str| {
        b.services
            .iter()
            .find(|s| s.name == n)
            .map(|s| s.state.as_str())
    };
    let mut problems = Vec::new();
    for (names, wanted) in [
        (&want.running, "Running"),
        (&want.waiting, "Waiting"),
        (&want.failed, "Failed"),
    ] {
        for n in names {
            match state(n) {
                Some(s) if s == wanted => {}
                Some(s) => problems.push(format!("{n} is {s}, not {wanted}")),
                None => problems.push(format!("{n} never reported (expected {wanted})")),
            }
        }
    }
    for n in &want.absent {
        if let Some(s) = state(n) {
            problems.push(format!("{n} is present ({s})"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        fail(problems.join("; "))
    }
}

/// The kernel's or init's own words on what went wrong: the last line naming an error.
fn last_words(log: &str) -> String {
    let hit = log.lines().rev().find(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("fail") || l.contains("error") || l.contains("unable")
    });
    hit.unwrap_or("nothing about it")
        .chars()
        .take(120)
        .collect()
}

//! Checks on an initramfs file, or on a UKI's `.initrd`: which extensions its
//! `extensions.yaml` lists, whether each is compatible with the spec's Talos version, and the
//! compression of its segments. A file is walked once and the walk shared by its checks.

use std::sync::Arc;

use super::files::file_check_name;
use super::subject::{fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::error::Reason;
use crate::spec::{FileExpectation, InitramfsExpectation, LayerServicesExpectation};
use crate::talos::extensions::{self, Metadata, Requirement};
use crate::talos::foreign;
use crate::talos::initramfs::{self, Compression, Initramfs, LayerScan};
use crate::talos::kernel;
use crate::talos::services::Service;

pub const EXTENSIONS: &str = "initramfs::extensions";
pub const COMPATIBILITY: &str = "initramfs::compatibility";
pub const COMPRESSION: &str = "initramfs::compression";
pub const SERVICES: &str = "initramfs::services";
pub const ARCH: &str = "initramfs::arch";
/// Prefix of the same checks on a UKI's `.initrd`: `uki::initramfs::extensions`.
pub const IN_UKI: &str = "uki::";

#[derive(Debug)]
pub struct Check {
    pub path: String,
    /// On a UKI's `.initrd` section rather than on an initramfs file.
    pub in_uki: bool,
    pub what: What,
    /// The architecture the layer scan (shared with the other checks on the file) judges by.
    pub arch: Option<foreign::Arch>,
}

#[derive(Debug)]
pub enum What {
    Extensions {
        present: Vec<Requirement>,
        absent: Vec<Requirement>,
        exact: Option<Vec<Requirement>>,
    },
    Compatibility {
        talos: String,
    },
    Compression(Compression),
    Services(LayerServicesExpectation),
    /// Nothing that serves another architecture than this one.
    Arch(foreign::Arch),
}

pub fn plan(f: &FileExpectation, talos: Option<&str>) -> Vec<Arc<dyn Planned>> {
    let in_uki = f.uki.as_ref().and_then(|u| u.initramfs.as_ref());
    let mut out: Vec<Arc<dyn Planned>> = Vec::new();
    for (exp, in_uki) in [(f.initramfs.as_ref(), false), (in_uki, true)] {
        let Some(exp) = exp else { continue };
        for what in whats(exp, talos) {
            out.push(Arc::new(Check {
                path: f.path.clone(),
                in_uki,
                what,
                arch: exp.arch,
            }));
        }
    }
    out
}

fn whats(exp: &InitramfsExpectation, talos: Option<&str>) -> Vec<What> {
    let mut out = Vec::new();
    if exp.checks_extensions() {
        out.push(What::Extensions {
            present: exp.present.clone(),
            absent: exp.absent.clone(),
            exact: exp.exact.clone(),
        });
    }
    if let Some(t) = talos {
        out.push(What::Compatibility { talos: t.into() });
    }
    if let Some(c) = exp.compression {
        out.push(What::Compression(c));
    }
    if let Some(sv) = &exp.services {
        out.push(What::Services(sv.clone()));
    }
    if let Some(a) = exp.arch {
        out.push(What::Arch(a));
    }
    out
}

impl Planned for Check {
    fn name(&self) -> String {
        let what = match self.what {
            What::Extensions { .. } => EXTENSIONS,
            What::Compatibility { .. } => COMPATIBILITY,
            What::Compression(_) => COMPRESSION,
            What::Services(_) => SERVICES,
            What::Arch(_) => ARCH,
        };
        let prefix = if self.in_uki { IN_UKI } else { "" };
        file_check_name(&self.path, &format!("{prefix}{what}"))
    }

    fn needs(&self) -> Needs {
        Needs::paths([self.path.clone()])
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        let (path, _) = s.locate(&self.path)?;
        let key = (path.clone(), self.in_uki);
        if !s.walks.0.borrow().contains_key(&key) {
            let walked = walk(s, &path, self.in_uki);
            s.walks.0.borrow_mut().insert(key.clone(), walked);
        }
        let walks = s.walks.0.borrow();
        let i = walks[&key].as_ref().map_err(Verdict::failed)?;
        // What the node gets is what the kernel unpacked; an unpack it stops is a defect
        // whatever the expectation.
        if let Some(s) = &i.stopped {
            return fail(s.clone());
        }
        match &self.what {
            What::Services(want) => {
                let scan = scan(s, &key, self.arch, i).map_err(|e| Verdict::Error(e.into()))?;
                services_listed(&scan.services, want)
            }
            What::Arch(a) => {
                let scan = scan(s, &key, Some(*a), i).map_err(|e| Verdict::Error(e.into()))?;
                if scan.foreign.is_empty() {
                    Ok(())
                } else {
                    let n = scan.foreign.len();
                    let mut m: Vec<String> = scan.foreign.iter().take(3).cloned().collect();
                    if n > 3 {
                        m.push(format!("… {} more", n - 3));
                    }
                    fail(format!(
                        "{n} file{} serving another architecture: {}",
                        if n == 1 { "" } else { "s" },
                        m.join("; ")
                    ))
                }
            }
            _ => judge_walked(&self.what, i),
        }
    }
}

/// The layers' scan, once per file for every check on it.
fn scan(
    s: &Subject<'_>,
    key: &(String, bool),
    arch: Option<foreign::Arch>,
    walked: &Initramfs,
) -> Result<std::rc::Rc<LayerScan>, Reason> {
    if let Some(done) = s.walks.1.borrow().get(key) {
        return done.clone();
    }
    let result = (|| {
        let (f, offset, len) = source(s, &key.0, key.1)?;
        let work = crate::temps::Dir::new(s.spool.scratch(), "layers-")
            .map_err(|e| Reason(format!("creating a scratch directory: {e}")))?;
        initramfs::scan_file(&f, offset, len, walked, s.limits, work.path(), arch)
            .map(std::rc::Rc::new)
            .map_err(|e| Reason(format!("{e:#}")))
    })();
    s.walks.1.borrow_mut().insert(key.clone(), result.clone());
    result
}

/// The file and the byte range the initramfs takes in it: the whole file, or a UKI's `.initrd`.
fn source(s: &Subject<'_>, path: &str, in_uki: bool) -> Result<(std::fs::File, u64, u64), Reason> {
    let mut f = s.open(path).map_err(|v| match v {
        Verdict::Fail(m) | Verdict::Error(m) | Verdict::Warn(m) | Verdict::Skip(m) => m,
    })?;
    if !in_uki {
        return Ok((f, 0, u64::MAX));
    }
    let k = kernel::sniff(&mut f).map_err(|e| Reason(format!("{e:#}")))?;
    let section = k
        .uki
        .as_ref()
        .and_then(|u| u.section(".initrd"))
        .ok_or("no .initrd section (not a UKI?)")?;
    Ok((f, section.offset, section.size))
}

fn walk(s: &Subject<'_>, path: &str, in_uki: bool) -> Result<Initramfs, Reason> {
    let (f, offset, len) = source(s, path, in_uki)?;
    let what = if in_uki { ".initrd: " } else { "" };
    initramfs::walk_file(&f, offset, len, s.limits).map_err(|e| Reason(format!("{what}{e:#}")))
}

/// The services the layers carry against `present`, `absent` and `waitForConfig`; a service
/// the node would not run (invalid spec, missing rootfs) fails whatever the expectation.
fn services_listed(found: &[Service], want: &LayerServicesExpectation) -> Judged {
    let bare = |s: &Service| s.name.trim_start_matches("ext-").to_string();
    let names: Vec<String> = found.iter().map(bare).collect();
    let mut problems: Vec<String> = found
        .iter()
        .flat_map(|s| {
            s.problems
                .iter()
                .map(move |p| format!("{} ({}): {p}", s.name, s.file))
        })
        .collect();
    for p in &want.present {
        if !names.contains(p) {
            problems.push(format!("service {p} is missing"));
        }
    }
    for a in &want.absent {
        if names.contains(a) {
            problems.push(format!("service {a} is present"));
        }
    }
    if let Some(w) = &want.wait_for_config {
        for s in found.iter().filter(|s| s.waits_for_config) {
            if !w.contains(&bare(s)) {
                problems.push(format!(
                    "{} waits for its ExtensionServiceConfig (not in waitForConfig)",
                    s.name
                ));
            }
        }
        for n in w {
            if !found.iter().any(|s| s.waits_for_config && bare(s) == *n) {
                problems.push(format!("{n} does not wait for an ExtensionServiceConfig"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let listed = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        fail(format!("{} (services: {listed})", problems.join("; ")))
    }
}

fn judge_walked(what: &What, i: &Initramfs) -> Judged {
    let layers: Vec<&Metadata> = i
        .extensions
        .iter()
        .flat_map(|c| &c.layers)
        .map(|l| &l.metadata)
        .collect();
    match what {
        What::Extensions {
            present,
            absent,
            exact,
        } => {
            // Every layer listed must be there for Talos's init to mount.
            let missing = i.problems();
            if !missing.is_empty() {
                return fail(missing.join("; "));
            }
            extensions_listed(&layers, present, absent, exact.as_deref())
        }
        What::Compatibility { talos } => {
            let bad: Vec<String> = layers
                .iter()
                .filter_map(|m| extensions::compatible(m, talos).err())
                .map(|e| e.to_string())
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                fail(bad.join("; "))
            }
        }
        What::Services(_) | What::Arch(_) => {
            unreachable!("the layers are judged in Check::judge")
        }
        What::Compression(want) => {
            let wrong: Vec<String> = i
                .segments
                .iter()
                .filter(|seg| {
                    if *want == Compression::None {
                        seg.compression != Compression::None
                    } else {
                        seg.compression != Compression::None && seg.compression != *want
                    }
                })
                .map(|seg| {
                    format!("segment at offset {} is {:?}", seg.offset, seg.compression)
                        .to_lowercase()
                })
                .collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                fail(format!("expected {want:?} segments: {}", wrong.join(", ")).to_lowercase())
            }
        }
    }
}

/// `present`, `absent` and `exact` against the layers `extensions.yaml` lists.
pub(super) fn extensions_listed(
    layers: &[&Metadata],
    present: &[Requirement],
    absent: &[Requirement],
    exact: Option<&[Requirement]>,
) -> Judged {
    let mut problems = Vec::new();
    for r in present {
        if let Err(m) = satisfied(r, layers) {
            problems.push(m.0);
        }
    }
    for r in absent {
        if let Some(m) = layers.iter().find(|m| r.check(m) == Ok(true)) {
            problems.push(format!("{} {} is present", m.name, m.version));
        }
    }
    if let Some(exact) = exact {
        // The machinery's layers (modules.dep, the factory's schematic) are not extensions
        // anyone chose; `exact` names the user's.
        let want: Vec<&str> = exact.iter().map(|r| r.name.as_str()).collect();
        let extra: Vec<&str> = layers
            .iter()
            .filter(|m| !extensions::is_machinery(m) && !want.contains(&m.name.as_str()))
            .map(|m| m.name.as_str())
            .collect();
        // What is missing is named by the requirements below; what is there besides, here.
        if !extra.is_empty() {
            problems.push(format!("not in exact: {}", extra.join(", ")));
        }
        for r in exact {
            if let Err(m) = satisfied(r, layers) {
                problems.push(m.0);
            }
        }
    }
    // Once each, in the order found.
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    if problems.is_empty() {
        Ok(())
    } else {
        fail(format!(
            "{} (extensions: {})",
            problems.join("; "),
            listed(layers)
        ))
    }
}

/// The layers, for a message: at most four, then how many more.
fn listed(layers: &[&Metadata]) -> String {
    if layers.is_empty() {
        return "none".to_string();
    }
    let mut s = layers
        .iter()
        .take(4)
        .map(|m| format!("{} {}", m.name, m.version))
        .collect::<Vec<_>>()
        .join(", ");
    if layers.len() > 4 {
        s += &format!(", … {} more", layers.len() - 4);
    }
    s
}

fn satisfied(r: &Requirement, layers: &[&Metadata]) -> Result<(), Reason> {
    let mut why = None;
    for m in layers {
        match r.check(m) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => why = Some(e.to_string()),
        }
    }
    Err(why
        .unwrap_or_else(|| format!("{} is missing", r.name))
        .into())
}

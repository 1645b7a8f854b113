//! The Talos checks: kernel architecture, UKI sections, extensions in an initramfs and their
//! Talos compatibility, segment compression, checksums files, build reports, and extension
//! images. Each reads spooled content; an initramfs is walked once per file and shared.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::evaluate::{fail, Subject, Verdict};
use super::plan::{ExtensionProp, FileProp, InitramfsPart, Plan};
use crate::layers::tree::Kind;
use crate::spec::{FileExpectation, InitramfsExpectation};
use crate::talos::extensions::{self, Requirement};
use crate::talos::initramfs::{self, Compression, Initramfs};
use crate::talos::kernel::{self, KernelInfo};
use crate::talos::{checksums, report};

pub const MANIFEST: &str = "manifest.yaml";
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// Walks of initramfs files (or UKI `.initrd` sections), shared by the checks on one file.
#[derive(Default)]
pub struct Walks(RefCell<HashMap<(String, bool), Result<Initramfs, String>>>);

fn open(s: &Subject<'_>, path: &str) -> Result<File, Verdict> {
    let e = s
        .flat
        .tree
        .get(path)
        .ok_or_else(|| Verdict::Fail(format!("/{path} is missing")))?;
    if !e.kind.has_content() {
        return fail(format!("expected a file, found a {}", e.kind.name()));
    }
    let d = s
        .flat
        .content
        .get(path)
        .ok_or_else(|| Verdict::Error(format!("content of {path} was not captured")))?;
    File::open(s.spool.path(d)).map_err(|e| Verdict::Error(format!("reading spooled {path}: {e}")))
}

fn read_text(s: &Subject<'_>, path: &str, cap: u64) -> Result<String, Verdict> {
    let mut text = String::new();
    open(s, path)?
        .take(cap)
        .read_to_string(&mut text)
        .map_err(|_| Verdict::Fail("is not UTF-8 text".into()))?;
    Ok(text)
}

fn sniff(s: &Subject<'_>, path: &str) -> Result<KernelInfo, Verdict> {
    let mut f = open(s, path)?;
    kernel::sniff(&mut f).map_err(|e| Verdict::Fail(format!("{e:#}")))
}

pub(super) fn file(
    plan: &Plan,
    f: &FileExpectation,
    path: &str,
    prop: FileProp,
    s: &Subject<'_>,
) -> Result<(), Verdict> {
    match prop {
        FileProp::Kernel => {
            let want = f.kernel.expect("planned with a kernel").as_str();
            let k = sniff(s, path)?;
            if k.arch == want {
                Ok(())
            } else {
                fail(format!(
                    "expected an {want} kernel, found {} ({})",
                    k.arch,
                    k.format.describe()
                ))
            }
        }
        FileProp::Uki => {
            let k = sniff(s, path)?;
            let Some(u) = &k.uki else {
                return fail(format!(
                    "not a UKI: a {} with no .linux section",
                    k.format.describe()
                ));
            };
            let missing: Vec<String> = f
                .uki
                .as_ref()
                .expect("planned with a uki")
                .cmdline_contains
                .iter()
                .filter(|c| !u.cmdline.as_deref().unwrap_or("").contains(c.as_str()))
                .map(|c| format!("'{c}'"))
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                fail(format!(
                    ".cmdline lacks {} (it is '{}')",
                    missing.join(", "),
                    u.cmdline
                        .as_deref()
                        .unwrap_or("")
                        .chars()
                        .take(120)
                        .collect::<String>()
                ))
            }
        }
        FileProp::Initramfs { part, in_uki } => {
            let exp = if in_uki {
                f.uki.as_ref().and_then(|u| u.initramfs.as_ref())
            } else {
                f.initramfs.as_ref()
            }
            .expect("planned with an initramfs");
            let key = (path.to_string(), in_uki);
            if !s.walks.0.borrow().contains_key(&key) {
                let walked = walk(s, path, in_uki);
                s.walks.0.borrow_mut().insert(key.clone(), walked);
            }
            let walks = s.walks.0.borrow();
            let i = walks[&key].as_ref().map_err(|m| Verdict::Fail(m.clone()))?;
            initramfs_part(plan, exp, part, i)
        }
        FileProp::Checksums => {
            let (root, complete) = f.checksums.as_ref().expect("planned with checksums");
            let text = read_text(s, path, 16 << 20)?;
            let lines = checksums::parse(&text).map_err(Verdict::Fail)?;
            if lines.is_empty() {
                return fail("lists no files");
            }
            let root = s
                .flat
                .tree
                .resolve(root, true)
                .map_err(|e| Verdict::Error(e.to_string()))?;
            if !s.flat.tree.get(&root).is_some_and(|e| e.kind == Kind::Dir) {
                return fail(format!(
                    "checksums root {root} is not a directory in the image"
                ));
            }
            checksums::verify(&lines, &s.flat.tree, &root, path, *complete).map_err(Verdict::Fail)
        }
        FileProp::Report => {
            let r = f.report.as_ref().expect("planned with a report");
            let txt = report::fields(&read_text(s, path, 16 << 20)?);
            check_fields(&r.fields, &txt, "")?;
            if let Some(stem) = path.strip_suffix(".txt") {
                let json_path = format!("{stem}.json");
                if s.flat.tree.get(&json_path).is_some() {
                    let json = report::json_fields(&read_text(s, &json_path, 16 << 20)?)
                        .map_err(Verdict::Fail)?;
                    check_fields(&r.fields, &json, "build-report.json: ")?;
                }
            }
            Ok(())
        }
        FileProp::ReportGolden => {
            let (golden, _, _) = f
                .report
                .as_ref()
                .and_then(|r| r.golden.as_ref())
                .expect("planned with a golden");
            match s.golden(golden) {
                Some(g) => g.compare().map_err(Verdict::Fail),
                // Not rendered: the report is missing or not text; say which.
                None => read_text(s, path, 16 << 20)
                    .and_then(|_| Err(Verdict::Error("the report was not rendered".into()))),
            }
        }
        FileProp::Revision => {
            let field = f
                .report
                .as_ref()
                .and_then(|r| r.revision.as_ref())
                .expect("planned with a revision field");
            let txt = report::fields(&read_text(s, path, 16 << 20)?);
            let Some(named) = txt.get(field) else {
                return fail(format!("the report has no '{field}' field"));
            };
            let labels = s.resolved.config.labels();
            let Some(label) = labels.get(REVISION_LABEL) else {
                return fail(format!(
                    "the image has no {REVISION_LABEL} label to compare '{field}' with"
                ));
            };
            if report::same_commit(named, label) {
                Ok(())
            } else {
                fail(format!("the report's {field} is {named}, but the image's {REVISION_LABEL} is {label}: the tag points at another build"))
            }
        }
        _ => unreachable!("not a Talos check"),
    }
}

fn check_fields(
    want: &[(String, crate::spec::ValueMatch)],
    got: &std::collections::BTreeMap<String, String>,
    prefix: &str,
) -> Result<(), Verdict> {
    let mut problems = Vec::new();
    for (k, m) in want {
        match got.get(k) {
            Some(v) if m.matches(v) => {}
            Some(v) => problems.push(format!(
                "{k} is '{}', expected {m}",
                v.chars().take(80).collect::<String>()
            )),
            None => problems.push(format!("no '{k}' field")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        fail(format!("{prefix}{}", problems.join("; ")))
    }
}

fn walk(s: &Subject<'_>, path: &str, in_uki: bool) -> Result<Initramfs, String> {
    let mut f = open(s, path).map_err(|v| match v {
        Verdict::Fail(m) | Verdict::Error(m) => m,
    })?;
    if !in_uki {
        return initramfs::walk(std::io::BufReader::new(f), s.limits).map_err(|e| format!("{e:#}"));
    }
    let k = kernel::sniff(&mut f).map_err(|e| format!("{e:#}"))?;
    let section = k
        .uki
        .as_ref()
        .and_then(|u| u.section(".initrd"))
        .ok_or("no .initrd section (not a UKI?)")?;
    f.seek(SeekFrom::Start(section.offset))
        .map_err(|e| e.to_string())?;
    initramfs::walk(std::io::BufReader::new(f.take(section.size)), s.limits)
        .map_err(|e| format!(".initrd: {e:#}"))
}

fn initramfs_part(
    plan: &Plan,
    exp: &InitramfsExpectation,
    part: InitramfsPart,
    i: &Initramfs,
) -> Result<(), Verdict> {
    let layers: Vec<&extensions::Metadata> = i
        .extensions
        .iter()
        .flat_map(|c| &c.layers)
        .map(|l| &l.metadata)
        .collect();
    let listed = || {
        if layers.is_empty() {
            "none".to_string()
        } else {
            layers
                .iter()
                .map(|m| format!("{} {}", m.name, m.version))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    match part {
        InitramfsPart::Extensions => {
            let mut problems = Vec::new();
            for r in &exp.present {
                if let Err(m) = satisfied(r, &layers) {
                    problems.push(m);
                }
            }
            for r in &exp.absent {
                if let Some(m) = layers.iter().find(|m| r.check(m) == Ok(true)) {
                    problems.push(format!("{} {} is present", m.name, m.version));
                }
            }
            if let Some(exact) = &exp.exact {
                let mut want: Vec<&str> = exact.iter().map(|r| r.name.as_str()).collect();
                let mut have: Vec<&str> = layers.iter().map(|m| m.name.as_str()).collect();
                want.sort();
                have.sort();
                if want != have {
                    problems.push(format!("expected exactly [{}]", want.join(", ")));
                }
                for r in exact {
                    if let Err(m) = satisfied(r, &layers) {
                        problems.push(m);
                    }
                }
            }
            problems.dedup();
            if problems.is_empty() {
                Ok(())
            } else {
                fail(format!(
                    "{} (extensions: {})",
                    problems.join("; "),
                    listed()
                ))
            }
        }
        InitramfsPart::Compatibility => {
            let talos = plan.spec.talos.as_deref().expect("planned with talos");
            let bad: Vec<String> = layers
                .iter()
                .filter_map(|m| extensions::compatible(m, talos).err())
                .collect();
            if bad.is_empty() {
                Ok(())
            } else {
                fail(bad.join("; "))
            }
        }
        InitramfsPart::Compression => {
            let want = exp.compression.expect("planned with a compression");
            let wrong: Vec<String> = i
                .segments
                .iter()
                .filter(|seg| {
                    if want == Compression::None {
                        seg.compression != Compression::None
                    } else {
                        seg.compression != Compression::None && seg.compression != want
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

fn satisfied(r: &Requirement, layers: &[&extensions::Metadata]) -> Result<(), String> {
    let mut why = None;
    for m in layers {
        match r.check(m) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => why = Some(e),
        }
    }
    Err(why.unwrap_or_else(|| format!("{} is missing", r.name)))
}

pub(super) fn extension(plan: &Plan, prop: ExtensionProp, s: &Subject<'_>) -> Result<(), Verdict> {
    let x = plan
        .spec
        .expect
        .extension
        .as_ref()
        .expect("planned with an extension");
    let tree = &s.flat.tree;
    match prop {
        ExtensionProp::Manifest | ExtensionProp::Compatibility => {
            let m = extensions::parse_manifest(&read_text(s, MANIFEST, 1 << 20)?)
                .map_err(Verdict::Fail)?;
            if prop == ExtensionProp::Compatibility {
                let talos = x
                    .talos
                    .as_deref()
                    .or(plan.spec.talos.as_deref())
                    .expect("planned with talos");
                return extensions::compatible(&m.metadata, talos).map_err(Verdict::Fail);
            }
            if m.metadata.name != x.name {
                return fail(format!(
                    "manifest names '{}', expected '{}'",
                    m.metadata.name, x.name
                ));
            }
            match &x.version {
                Some(v) if v != &m.metadata.version => fail(format!(
                    "manifest version is {}, expected {v}",
                    m.metadata.version
                )),
                _ => Ok(()),
            }
        }
        ExtensionProp::Rootfs => {
            let mut bad = Vec::new();
            for p in tree.entries.keys() {
                let ok = match p.split_once('/') {
                    None => p == MANIFEST || p == "rootfs",
                    Some(("rootfs", rel)) => extensions::rootfs_path_allowed(rel),
                    Some(_) => false,
                };
                if !ok {
                    bad.push(p.clone());
                }
            }
            if !tree.get("rootfs").is_some_and(|e| e.kind == Kind::Dir) {
                return fail("no /rootfs directory");
            }
            if bad.is_empty() {
                return Ok(());
            }
            let n = bad.len();
            let shown: Vec<String> = bad.into_iter().take(3).map(|p| format!("/{p}")).collect();
            fail(format!(
                "{n} path{} outside what Talos accepts (/manifest.yaml and /rootfs/{{{}}}): {}{}",
                if n == 1 { "" } else { "s" },
                extensions::ALLOWED_ROOTFS_PATHS.join(","),
                shown.join(", "),
                if n > 3 { ", …" } else { "" }
            ))
        }
    }
}

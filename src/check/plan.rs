//! Spec → named checks. Names are stable and readable: `digest`, `platform`, `platforms`,
//! `labels::<key>`, `files::<path>::<exists|type|mode|size|sha256|contains|matches>`,
//! `absent::<path>`.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::oci::platform::Platform;
use crate::reference::ImageRef;
use crate::spec::Spec;

#[derive(Debug, Clone)]
pub struct Plan {
    pub spec: Spec,
    /// The image to check: the spec's, or the caller's override.
    pub image: ImageRef,
    pub platform: Option<Platform>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub what: What,
}

#[derive(Debug, Clone)]
pub enum What {
    Digest(Digest),
    Platform(Platform),
    Platforms(Vec<Platform>),
    Label(usize),
    File(usize, FileProp),
    Absent(String),
    Extension(ExtensionProp),
    Tree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionProp {
    Manifest,
    Rootfs,
    Compatibility,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitramfsPart {
    Extensions,
    Compatibility,
    Compression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileProp {
    Exists,
    Type,
    Mode,
    Size,
    Sha256,
    Contains,
    Matches,
    Kernel,
    Uki,
    /// A check on an initramfs file, or (`in_uki`) on a UKI's `.initrd`.
    Initramfs {
        part: InitramfsPart,
        in_uki: bool,
    },
    Checksums,
    Report,
    Revision,
    ReportGolden,
}

impl FileProp {
    fn word(self) -> String {
        if let FileProp::Initramfs { part, in_uki } = self {
            let p = match part {
                InitramfsPart::Extensions => "extensions",
                InitramfsPart::Compatibility => "compatibility",
                InitramfsPart::Compression => "compression",
            };
            return format!("{}initramfs::{p}", if in_uki { "uki::" } else { "" });
        }
        match self {
            FileProp::Exists => "exists",
            FileProp::Type => "type",
            FileProp::Mode => "mode",
            FileProp::Size => "size",
            FileProp::Sha256 => "sha256",
            FileProp::Contains => "contains",
            FileProp::Matches => "matches",
            FileProp::Kernel => "kernel",
            FileProp::Uki => "uki",
            FileProp::Checksums => "checksums",
            FileProp::Report => "report",
            FileProp::Revision => "report::revision",
            FileProp::ReportGolden => "report::golden",
            FileProp::Initramfs { .. } => unreachable!("handled above"),
        }
        .to_string()
    }
}

pub fn plan(spec: Spec, image: Option<ImageRef>, platform: Option<Platform>) -> Plan {
    let image = image.unwrap_or_else(|| spec.image.clone());
    let platform = platform.or_else(|| spec.platform.clone());
    let mut checks = Vec::new();
    let mut add = |id: String, what: What| checks.push(Check { id, what });
    if let Some(d) = &spec.digest {
        add("digest".into(), What::Digest(d.clone()));
    }
    if let Some(p) = &platform {
        add("platform".into(), What::Platform(p.clone()));
    }
    if let Some(ps) = &spec.expect.platforms {
        add("platforms".into(), What::Platforms(ps.clone()));
    }
    for (i, (key, _)) in spec.expect.labels.iter().enumerate() {
        add(format!("labels::{key}"), What::Label(i));
    }
    for (i, f) in spec.expect.files.iter().enumerate() {
        let mut props = vec![
            (f.kind.is_some(), FileProp::Type),
            (f.mode.is_some(), FileProp::Mode),
            (f.size.is_some(), FileProp::Size),
            (f.sha256.is_some(), FileProp::Sha256),
            (!f.contains.is_empty(), FileProp::Contains),
            (!f.matches.is_empty(), FileProp::Matches),
            (f.kernel.is_some(), FileProp::Kernel),
            (f.uki.is_some(), FileProp::Uki),
        ];
        let uki_initramfs = f.uki.as_ref().and_then(|u| u.initramfs.as_ref());
        for (expectation, in_uki) in [(f.initramfs.as_ref(), false), (uki_initramfs, true)] {
            if let Some(i) = expectation {
                let part = |part| FileProp::Initramfs { part, in_uki };
                props.push((i.checks_extensions(), part(InitramfsPart::Extensions)));
                props.push((spec.talos.is_some(), part(InitramfsPart::Compatibility)));
                props.push((i.compression.is_some(), part(InitramfsPart::Compression)));
            }
        }
        props.push((f.checksums.is_some(), FileProp::Checksums));
        props.push((
            f.report.as_ref().is_some_and(|r| !r.fields.is_empty()),
            FileProp::Report,
        ));
        props.push((
            f.report.as_ref().is_some_and(|r| r.revision.is_some()),
            FileProp::Revision,
        ));
        props.push((
            f.report.as_ref().is_some_and(|r| r.golden.is_some()),
            FileProp::ReportGolden,
        ));
        let mut any = false;
        for (on, prop) in props {
            if on {
                any = true;
                add(
                    format!("files::{}::{}", f.path, prop.word()),
                    What::File(i, prop),
                );
            }
        }
        if !any {
            add(
                format!("files::{}::exists", f.path),
                What::File(i, FileProp::Exists),
            );
        }
    }
    for a in &spec.expect.absent {
        add(format!("absent::{a}"), What::Absent(a.clone()));
    }
    if spec.expect.tree.is_some() {
        add("tree".into(), What::Tree);
    }
    if let Some(x) = &spec.expect.extension {
        add(
            "extension::manifest".into(),
            What::Extension(ExtensionProp::Manifest),
        );
        add(
            "extension::rootfs".into(),
            What::Extension(ExtensionProp::Rootfs),
        );
        if x.talos.is_some() || spec.talos.is_some() {
            add(
                "extension::compatibility".into(),
                What::Extension(ExtensionProp::Compatibility),
            );
        }
    }
    Plan {
        spec,
        image,
        platform,
        checks,
    }
}

impl Plan {
    /// Paths whose content the checks read; only these are spooled while flattening.
    pub fn content_paths(&self) -> HashSet<String> {
        let files = &self.spec.expect.files;
        let mut paths: HashSet<String> = files
            .iter()
            .filter(|f| f.needs_content())
            .map(|f| f.path.clone())
            .collect();
        // A report's JSON twin is read beside it when the image has one.
        for f in files.iter().filter(|f| f.report.is_some()) {
            if let Some(stem) = f.path.strip_suffix(".txt") {
                paths.insert(format!("{stem}.json"));
            }
        }
        if self.spec.expect.extension.is_some() {
            paths.insert(super::talos::MANIFEST.to_string());
        }
        paths
    }
}

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
}

impl FileProp {
    fn word(self) -> &'static str {
        match self {
            FileProp::Exists => "exists",
            FileProp::Type => "type",
            FileProp::Mode => "mode",
            FileProp::Size => "size",
            FileProp::Sha256 => "sha256",
            FileProp::Contains => "contains",
            FileProp::Matches => "matches",
        }
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
        let props = [
            (f.kind.is_some(), FileProp::Type),
            (f.mode.is_some(), FileProp::Mode),
            (f.size.is_some(), FileProp::Size),
            (f.sha256.is_some(), FileProp::Sha256),
            (!f.contains.is_empty(), FileProp::Contains),
            (!f.matches.is_empty(), FileProp::Matches),
        ];
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
        self.spec
            .expect
            .files
            .iter()
            .filter(|f| f.needs_content())
            .map(|f| f.path.clone())
            .collect()
    }
}

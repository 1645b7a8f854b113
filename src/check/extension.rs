//! Checks on a system extension image: `/manifest.yaml` names the extension asked for, the
//! tree holds only what Talos accepts, and the extension is compatible with the Talos version.

use std::sync::Arc;

use super::subject::{fail, Judged, Subject, Verdict};
use super::{Kind, Planned};
use crate::layers::tree::Kind as EntryKind;
use crate::limits::MAX_MANIFEST;
use crate::spec::{ExtensionImageExpectation, Spec};
use crate::talos::extensions::{self, MANIFEST};

pub const MANIFEST_CHECK: &str = "extension::manifest";
pub const ROOTFS: &str = "extension::rootfs";
pub const COMPATIBILITY: &str = "extension::compatibility";

#[derive(Debug)]
pub enum Check {
    Manifest(ExtensionImageExpectation),
    Rootfs,
    Compatibility { talos: String },
}

pub fn plan(spec: &Spec) -> Vec<Arc<dyn Planned>> {
    let Some(x) = &spec.expect.extension else {
        return Vec::new();
    };
    let mut out: Vec<Arc<dyn Planned>> = vec![
        Arc::new(Check::Manifest(x.clone())),
        Arc::new(Check::Rootfs),
    ];
    if let Some(talos) = x.talos.as_ref().or(spec.talos.as_ref()) {
        out.push(Arc::new(Check::Compatibility {
            talos: talos.clone(),
        }));
    }
    out
}

impl Planned for Check {
    fn name(&self) -> String {
        match self {
            Check::Manifest(_) => MANIFEST_CHECK,
            Check::Rootfs => ROOTFS,
            Check::Compatibility { .. } => COMPATIBILITY,
        }
        .into()
    }

    fn kind(&self) -> Kind {
        Kind::Extension
    }

    fn content(&self) -> Vec<String> {
        vec![MANIFEST.to_string()]
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        match self {
            Check::Rootfs => {
                let tree = &s.flat.tree;
                let refused = extensions::refused_paths(tree.entries.keys());
                if !tree.get("rootfs").is_some_and(|e| e.kind == EntryKind::Dir) {
                    return fail("no /rootfs directory");
                }
                if refused.is_empty() {
                    Ok(())
                } else {
                    fail(extensions::describe_refused(&refused))
                }
            }
            Check::Manifest(x) => {
                let m = manifest(s)?;
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
            Check::Compatibility { talos } => {
                extensions::compatible(&manifest(s)?.metadata, talos).map_err(Verdict::failed)
            }
        }
    }
}

fn manifest(s: &Subject<'_>) -> Result<extensions::Manifest, Verdict> {
    extensions::parse_manifest(&s.read_text(MANIFEST, MAX_MANIFEST)?).map_err(Verdict::failed)
}

//! Checks on a system extension image: `/manifest.yaml` names the extension asked for, the
//! tree holds only what Talos accepts, and the extension is compatible with the Talos version.

use std::sync::Arc;

use super::subject::{fail, Judged, Subject, Verdict};
use super::{Needs, Planned};
use crate::limits::MAX_MANIFEST;
use crate::spec::{ExtensionImageExpectation, Spec};
use crate::talos::extension_paths::{self, PathRules};
use crate::talos::extensions::{self, MANIFEST};
use crate::talos::validator;

pub const MANIFEST_CHECK: &str = "extension::manifest";
pub const ROOTFS: &str = "extension::rootfs";
pub const COMPATIBILITY: &str = "extension::compatibility";
/// Strict mode: the extensions validator's own checks (version format, service specs).
pub const VALIDATOR: &str = "extension::validator";

#[derive(Debug)]
pub enum Check {
    Manifest(ExtensionImageExpectation),
    /// The tree, by the path rules of the Talos version the extension is for.
    Rootfs(PathRules),
    Compatibility {
        talos: String,
    },
    Validator,
}

pub fn plan(spec: &Spec) -> Vec<Arc<dyn Planned>> {
    let Some(x) = &spec.expect.extension else {
        return Vec::new();
    };
    let talos = x.talos.as_ref().or(spec.talos.as_ref());
    let mut rules = PathRules::for_talos(talos.map(String::as_str));
    if x.strict {
        rules = rules.strict();
    }
    let mut out: Vec<Arc<dyn Planned>> = vec![
        Arc::new(Check::Manifest(x.clone())),
        Arc::new(Check::Rootfs(rules)),
    ];
    if x.strict {
        out.push(Arc::new(Check::Validator));
    }
    if let Some(talos) = talos {
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
            Check::Rootfs(_) => ROOTFS,
            Check::Compatibility { .. } => COMPATIBILITY,
            Check::Validator => VALIDATOR,
        }
        .into()
    }

    fn needs(&self) -> Needs {
        match self {
            // Every file directly in the directory (`Wanted` reads a trailing `/` so).
            Check::Validator => Needs::paths([
                MANIFEST.to_string(),
                format!("rootfs/{}/", crate::talos::services::CONFIG_DIR),
            ]),
            _ => Needs::paths([MANIFEST.to_string()]),
        }
    }

    fn judge(&self, s: &Subject<'_>) -> Judged {
        match self {
            Check::Rootfs(rules) => {
                let review = extension_paths::review(&s.flat.tree, rules);
                match review.refusal(rules) {
                    Some(m) => fail(m),
                    None => match review.warning(rules) {
                        Some(w) => Err(Verdict::Warn(w)),
                        None => Ok(()),
                    },
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
            Check::Validator => {
                let m = manifest(s)?;
                let mut problems: Vec<String> =
                    validator::version(&m.metadata.name, &m.metadata.version)
                        .err()
                        .into_iter()
                        .map(String::from)
                        .collect();
                let mut files = Vec::new();
                for p in validator::service_files(&s.flat.tree) {
                    let path = s
                        .flat
                        .tree
                        .resolve(&p, true)
                        .map_err(|e| Verdict::Fail(format!("/{p}: {e}")))?;
                    files.push((p, s.read_text(&path, MAX_MANIFEST)?.into_bytes()));
                }
                problems.extend(validator::service_specs(&files));
                if problems.is_empty() {
                    Ok(())
                } else {
                    fail(problems.join("; "))
                }
            }
            Check::Compatibility { talos } => {
                extensions::compatible(&manifest(s)?.metadata, talos).map_err(Verdict::failed)
            }
        }
    }
}

/// `/manifest.yaml`, through a symlink within the image if it is one (Talos's `loadManifest`
/// opens it with `os.Open`, which follows it).
fn manifest(s: &Subject<'_>) -> Result<extensions::Manifest, Verdict> {
    let path = s
        .flat
        .tree
        .resolve(MANIFEST, true)
        .map_err(|e| Verdict::Fail(format!("/{MANIFEST}: {e}")))?;
    extensions::parse_manifest(&s.read_text(&path, MAX_MANIFEST)?).map_err(Verdict::failed)
}

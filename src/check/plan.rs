//! Spec → named checks, in the order reports list them: the image's own checks, then per file
//! each family's checks on it, then absent paths, the tree, and an extension image's checks.

use std::sync::Arc;

use super::{
    boot, checksums, extension, files, image, initramfs, kernel, provenance, report, signature,
    tree, Planned,
};
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

/// A planned check and its name (`Planned::name`, computed once), with the `description` of
/// the file entry it came from.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub check: Arc<dyn Planned>,
    pub description: Option<String>,
    /// Where in the spec file the check's key is written.
    pub at: Option<crate::spec::SpecPos>,
}

pub fn plan(spec: Spec, image: Option<ImageRef>, platform: Option<Platform>) -> Plan {
    let image = image.unwrap_or_else(|| spec.image.clone());
    let platform = platform.or_else(|| spec.platform.clone());
    let mut planned: Vec<Arc<dyn Planned>> = image::plan(&spec, platform.as_ref());
    // (first check, end) of each described file entry.
    let mut described: Vec<(usize, usize, String)> = Vec::new();
    for f in &spec.expect.files {
        let before = planned.len();
        planned.extend(files::plan(f));
        planned.extend(kernel::plan(f));
        planned.extend(initramfs::plan(f, spec.talos.as_deref()));
        planned.extend(checksums::plan(f));
        planned.extend(report::plan(f));
        if planned.len() == before {
            planned.push(files::exists(f));
        }
        if let Some(d) = &f.description {
            described.push((before, planned.len(), d.clone()));
        }
    }
    planned.extend(files::plan_absent(&spec.expect.absent));
    planned.extend(tree::plan(&spec));
    planned.extend(extension::plan(&spec));
    planned.extend(boot::plan(&spec, platform.as_ref()));
    planned.extend(signature::plan(&spec));
    planned.extend(provenance::plan(&spec));
    let checks = planned
        .into_iter()
        .enumerate()
        .map(|(i, check)| Check {
            id: check.name(),
            at: spec.positions.find(&check.name()),
            check,
            description: described
                .iter()
                .find(|(a, b, _)| (*a..*b).contains(&i))
                .map(|(_, _, d)| d.clone()),
        })
        .collect();
    Plan {
        spec,
        image,
        platform,
        checks,
    }
}

/// The plan that gates a push of a freshly built image (in its local layout): every check of
/// the spec but signatures and provenance, which are made after the push and judged on the
/// published image. Returns a note when it left some out.
pub fn before_publishing(spec: Spec, image: ImageRef) -> (Plan, Option<String>) {
    let mut spec = spec;
    let note = (spec.expect.signature.is_some() || spec.expect.provenance.is_some()).then(|| {
        format!(
            "{}: signature and provenance are judged on the published image, not before the push",
            spec.name
        )
    });
    spec.expect.signature = None;
    spec.expect.provenance = None;
    (plan(spec, Some(image), None), note)
}

impl Plan {
    /// What the checks need, together.
    pub fn needs(&self) -> super::Needs {
        super::Needs::all(self.checks.iter().map(|c| c.check.needs()))
    }
}
